"""`fluxwarden generate PROMPT`: moderated generation to PNG files, each with a decision sidecar.

Mounted by `moderation.cli` as `app.command("generate")(generate)`. Exit codes follow the CLI:
0 images written (flagged or blurred ones included), 1 the prompt was blocked (nothing generated)
or every image was blocked, 2 usage, input or model-loading error.

Every PNG carries an "AI-generated" marker in its metadata: PNG text chunks, an IPTC
DigitalSourceType (trainedAlgorithmicMedia) in XMP, and EXIF ImageDescription/Software naming the
decision id, so the file can be traced back to the decision (and the audit log) that let it out.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from PIL import Image

    from moderation.pipeline import ModeratedPipeline, ModeratedPipelineOutput
    from moderation.policy import Policy
    from moderation.types import Decision

EXIT_ALLOWED, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2
TINY_MODEL = "tiny"
TINY_STEPS = 2  # the tiny model draws noise; more steps only cost time
MAX_SIDE = 4096
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_EXIF_IMAGE_DESCRIPTION, _EXIF_SOFTWARE = 0x010E, 0x0131
_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'xmlns:fluxwarden="https://fluxwarden.invalid/ns/1.0/" '
    'Iptc4xmpExt:DigitalSourceType="{source}" fluxwarden:DecisionId="{decision}"/>'
    "</rdf:RDF></x:xmpmeta>"
)


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class DType(StrEnum):
    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.", show_default=False)],
    *,
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="A local diffusers FLUX folder, or 'tiny' (random weights: draws noise, for demos)."
        ),
    ] = TINY_MODEL,
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Preset (default, strict, permissive, no-agpl) or a policy YAML file.")
    ] = "default",
    num_images: Annotated[int, typer.Option("-n", "--num-images", min=1, max=16, help="Images to generate.")] = 1,
    size: Annotated[str, typer.Option("--size", help="WIDTHxHEIGHT in pixels, multiples of 16.")] = "1024x1024",
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, max=200, help="Denoising steps (default: the model's; tiny: 2).")
    ] = None,
    guidance: Annotated[
        float | None, typer.Option("--guidance", min=0.0, max=50.0, help="Guidance scale (default: the model's).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Random seed (default: a fresh one, recorded).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Directory for PNGs and sidecars.")] = Path(
        "out"
    ),
    device: Annotated[Device, typer.Option("--device", help="Where the generator runs.")] = Device.cpu,
    dtype: Annotated[
        DType | None, typer.Option("--dtype", help="Generator weights (default: bfloat16 on cuda, float32 on cpu).")
    ] = None,
    embedding_device: Annotated[
        Device, typer.Option("--embedding-device", help="Where the prompt embedding model runs (others stay on CPU).")
    ] = Device.cpu,
    offload: Annotated[
        bool, typer.Option("--offload", help="Model CPU offload (cuda only; needs accelerate).")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    audit_dir: Annotated[
        Path | None,
        typer.Option("--audit-dir", envvar="FLUXWARDEN_AUDIT_DIR", help="Write audit events to this directory."),
    ] = None,
) -> None:
    """Generate images with moderation before and after. Exit 0 written, 1 blocked, 2 error."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from moderation.moderator import InputError
    from moderation.pipeline import PromptBlockedError, UncheckableRequestError

    width, height = _parse_size(size)
    resolved_dtype = (dtype or (DType.bfloat16 if device is Device.cuda else DType.float32)).value
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"--out {out}: {exc.strerror or exc}") from None
    guarded = _build(
        model=model,
        policy_ref=policy,
        device=device.value,
        dtype=resolved_dtype,
        offload=offload,
        embedding_device=embedding_device.value,
        audit_dir=audit_dir,
    )
    seed = secrets.randbelow(2**32) if seed is None else seed
    call: dict[str, Any] = {"height": height, "width": width, "num_images_per_prompt": num_images}
    if steps is not None or model == TINY_MODEL:
        call["num_inference_steps"] = steps or TINY_STEPS
    if guidance is not None:
        call["guidance_scale"] = guidance
    import torch

    try:
        result = guarded(prompt, generator=torch.Generator().manual_seed(seed), **call)
    except PromptBlockedError as exc:
        _report_blocked(exc.decisions[0], json_)
        raise typer.Exit(EXIT_BLOCKED) from None
    except (InputError, UncheckableRequestError) as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        if guarded.pipe_loaded:
            raise  # a failure inside generation is a bug to see in full, not a one-line error
        raise _fail(f"cannot load model {model}: {type(exc).__name__}: {exc}") from None
    finally:
        _close_audit(guarded)
    generation = {
        "model": model if model == TINY_MODEL else Path(model).name,
        "seed": seed,
        "steps": call.get("num_inference_steps"),
        "guidance_scale": guidance,
        "width": width,
        "height": height,
        "device": device.value,
        "dtype": resolved_dtype,
    }
    records = write_outputs(result, out, prompt=prompt, policy=guarded.policy, generation=generation)
    if json_:
        typer.echo(json.dumps({"request_id": result.request_id, "images": records}, ensure_ascii=False, indent=2))
    else:
        for record in records:
            where = out / record["file"] if record["file"] else "(dropped)"
            typer.echo(f"{record['decision']['action']:<5} {where}  decision {out / record['sidecar']}")
    delivered_unblocked = any(d.allowed for d in result.image_decisions)
    raise typer.Exit(EXIT_ALLOWED if delivered_unblocked else EXIT_BLOCKED)


# --- building --------------------------------------------------------------------------------


def _build(
    *,
    model: str,
    policy_ref: str,
    device: str,
    dtype: str,
    offload: bool,
    embedding_device: str,
    audit_dir: Path | None,
) -> ModeratedPipeline:
    """Policy, audit, pipeline and wrapper; every set-up failure becomes one line and exit 2."""
    from moderation.cli import load_policy_or_exit, open_audit
    from moderation.pipeline import (
        ModeratedPipeline,
        check_device,
        check_model_folder,
        load_local_pipeline,
        parse_dtype,
    )

    policy = load_policy_or_exit(policy_ref)
    audit = open_audit(audit_dir, policy)

    def load() -> Any:
        if model == TINY_MODEL:
            from moderation.testing import tiny_flux_pipeline

            pipe = tiny_flux_pipeline(vae_scale=8).to(device)
            if dtype != DType.float32:
                pipe.to(dtype=parse_dtype(dtype))
        else:
            pipe = load_local_pipeline(model, device=device, torch_dtype=dtype, offload=offload)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    try:
        # Everything that can be checked without loading the model is checked now, so that a
        # bad option fails at once; the model itself loads only once the prompt has passed.
        check_device(device)
        parse_dtype(dtype)
        if model == TINY_MODEL and offload:
            raise ValueError("--offload applies to real models, not the tiny one")
        if model != TINY_MODEL:
            check_model_folder(model)
            if offload and device != "cuda":
                raise ValueError("--offload moves modules to the GPU while they run: it needs --device cuda")
        return ModeratedPipeline.lazy(load, policy, audit=audit, embedding_device=embedding_device)
    except (OSError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None


def _parse_size(size: str) -> tuple[int, int]:
    parts = size.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise _fail(f"--size must look like 1024x768, not {size!r}")
    width, height = (int(p) for p in parts)
    for name, value in (("width", width), ("height", height)):
        if not 16 <= value <= MAX_SIDE or value % 16:
            raise _fail(f"--size {name} {value} must be a multiple of 16 between 16 and {MAX_SIDE}")
    return width, height


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_ERROR)


def _close_audit(guarded: ModeratedPipeline) -> None:
    audit = guarded.moderator.audit
    if audit is not None and hasattr(audit, "close"):
        audit.close()


def _report_blocked(decision: Decision, as_json: bool) -> None:
    from moderation.pipeline import describe_reason

    if as_json:
        typer.echo(json.dumps({"blocked": True, "prompt_decision": decision.model_dump(mode="json")}, indent=2))
        return
    typer.echo(f"blocked: the prompt was not generated ({', '.join(decision.categories) or 'policy'})", err=True)
    for reason in decision.reasons:
        typer.echo(f"  - {describe_reason(reason)}", err=True)
    typer.echo(f"  decision {decision.id}, policy {decision.policy_id}@{decision.policy_version}", err=True)


# --- writing -----------------------------------------------------------------------------------


def write_outputs(
    result: ModeratedPipelineOutput,
    out: Path,
    *,
    prompt: str,
    policy: Policy,
    generation: dict[str, Any],
) -> list[dict[str, Any]]:
    """One PNG (unless dropped) and one JSON sidecar per generated image; returns the sidecars."""
    delivered = iter(result.images)
    prompt_decision = result.prompt_decision
    records = []
    for index, decision in enumerate(result.image_decisions):
        stem = f"{result.request_id}_{index}"
        png = out / f"{stem}.png"
        image = next(delivered) if result.delivered[index] else None
        if image is not None:
            save_png(image, png, decision=decision, model=str(generation.get("model")))
        record: dict[str, Any] = {
            "request_id": result.request_id,
            "index": index,
            "file": png.name if image is not None else None,
            "sidecar": f"{stem}.json",
            "delivered": image is not None,
            "ai_generated": True,
            "decision": decision.model_dump(mode="json"),
            "prompt_decision": prompt_decision.model_dump(mode="json") if prompt_decision else None,
            "generation": generation,
            **_prompt_record(prompt, policy),
        }
        (out / record["sidecar"]).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")
        records.append(record)
    return records


def _prompt_record(prompt: str, policy: Policy) -> dict[str, Any]:
    """The prompt as the policy lets it be kept: the text only when audit.store_inputs is full."""
    if policy.audit.store_inputs == "full":
        return {"prompt": prompt}
    return {"prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest()}


def provenance_text(decision: Decision, model: str) -> dict[str, str]:
    """PNG text chunks marking the file as AI-generated and naming the decision that released it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("fluxwarden")
    except PackageNotFoundError:
        ours = "unknown"
    return {
        "AI-Generated": "true",
        "DigitalSourceType": DIGITAL_SOURCE_TYPE,
        "Software": f"fluxwarden {ours}",
        "Model": model,
        "fluxwarden:decision_id": decision.id,
        "fluxwarden:action": decision.action.value,
        "fluxwarden:policy": f"{decision.policy_id}@{decision.policy_version}",
        "fluxwarden:policy_sha256": decision.policy_sha256,
    }


def save_png(image: Image.Image, path: Path, *, decision: Decision, model: str) -> None:
    """Write `image` as PNG with the AI-generated marker in text chunks, XMP and EXIF."""
    from PIL import Image as PILImage
    from PIL import PngImagePlugin

    text = provenance_text(decision, model)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    info.add_itxt("XML:com.adobe.xmp", _XMP.format(source=DIGITAL_SOURCE_TYPE, decision=decision.id))
    exif = PILImage.Exif()
    exif[_EXIF_IMAGE_DESCRIPTION] = f"AI-generated; fluxwarden decision {decision.id} ({decision.action.value})"
    exif[_EXIF_SOFTWARE] = text["Software"]
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    rgb.save(path, format="PNG", pnginfo=info, exif=exif)


def main() -> None:
    """Run this command alone (`python -m moderation.generate_cli`), e.g. before it is mounted."""
    typer.run(generate)


if __name__ == "__main__":
    main()

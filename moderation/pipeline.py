"""ModeratedPipeline: the moderation middleware around any diffusers text-to-image pipeline.

Text is checked before the generator runs, so a blocked prompt never costs a denoising step and
never produces pixels; every generated image is checked after, and leaves only as the policy
leaves it (unchanged, blurred, black, or dropped). Anything the checks cannot see is refused
rather than waved through: precomputed prompt embeddings (unless the policy trusts them) and
latent output. Every other argument reaches the wrapped pipeline untouched.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from moderation.moderator import InputError, Moderator, validate_prompt
from moderation.policy import Policy
from moderation.types import Action, Decision, Reason, Stage, most_severe

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

log = structlog.get_logger("fluxwarden.pipeline")

OUTPUT_TYPES = ("pil", "np", "pt")
DTYPES = ("bfloat16", "float16", "float32")
_EMBEDS_MARK = "prompt_embeds"  # prompt_embeds, pooled_prompt_embeds, negative_prompt_embeds, ...


class PromptBlockedError(Exception):
    """No prompt of the request may be generated; the generator was not called.

    `decisions` holds one decision per prompt of the request (each blocked), with its reasons.
    """

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.decisions = tuple(decisions)
        lines = []
        for index, decision in enumerate(self.decisions):
            label = f"prompt {index}" if len(self.decisions) > 1 else "prompt"
            reasons = "; ".join(describe_reason(r) for r in decision.reasons) or "blocked by policy"
            lines.append(f"{label} blocked ({', '.join(decision.categories) or 'policy'}): {reasons}")
        super().__init__("\n".join(lines))


def describe_reason(reason: Reason) -> str:
    """One reason as a sentence a caller can act on: what, and which classifier rule matched what."""
    where = [f"classifier {reason.classifier}"] if reason.classifier else []
    where += [f"rule {reason.rule}"] if reason.rule else []
    where += [f"matched {reason.matched!r}"] if reason.matched else []
    return f"{reason.message} ({', '.join(where)})" if where else reason.message


class UncheckableRequestError(ValueError):
    """The request asks for something the moderation cannot check (embeddings, latent output)."""


@dataclass(frozen=True)
class PromptCheck:
    """One checked text: which argument and batch position it came from, and its decision."""

    argument: str
    index: int
    decision: Decision


@dataclass
class ModeratedPipelineOutput:
    """What a moderated call returns.

    `images` and `nsfw_content_detected` are aligned (diffusers' convention): the images as the
    policy leaves them, dropped ones removed, in the requested `output_type`. `image_decisions`
    has one decision per *generated* image in generation order (dropped ones included), with
    `image_prompt_index` naming the prompt each came from and `delivered` saying whether it left.
    """

    images: list[Image.Image] | np.ndarray | torch.Tensor
    nsfw_content_detected: list[bool]
    prompt_decisions: tuple[Decision, ...]
    image_decisions: tuple[Decision, ...]
    image_prompt_index: tuple[int, ...]
    delivered: tuple[bool, ...]
    prompt_checks: tuple[PromptCheck, ...] = ()
    negative_prompt_checks: tuple[PromptCheck, ...] = ()
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex}")

    @property
    def prompt_decision(self) -> Decision | None:
        """The most severe decision over the request's prompts; None when trusted embeddings replaced text."""
        if not self.prompt_decisions:
            return None
        return max(self.prompt_decisions, key=lambda d: d.action.severity)

    @property
    def blocked_prompts(self) -> tuple[int, ...]:
        """Batch positions of prompts that were not generated."""
        return tuple(i for i, d in enumerate(self.prompt_decisions) if not d.allowed)

    @property
    def decision_ids(self) -> tuple[str, ...]:
        """Every decision id of this request; audit events carry them as `decision_id`."""
        ids = [c.decision.id for c in (*self.prompt_checks, *self.negative_prompt_checks)]
        return (*dict.fromkeys(ids), *(d.id for d in self.image_decisions))


def _as_batch(value: Any, argument: str) -> list[Any] | None:
    """A prompt-like argument as a list (None stays None); anything but str / list of str is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InputError(f"{argument} must be a string or a list of strings, got {type(value).__name__}")


def _prompt_arguments(kwargs: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Names of (positive prompt, negative prompt, embedding) arguments present in a call."""
    positive, negative, embeds = [], [], []
    for name, value in kwargs.items():
        if value is None:
            continue
        if _EMBEDS_MARK in name:
            embeds.append(name)
        elif name.startswith("negative_prompt"):
            negative.append(name)
        elif name.startswith("prompt"):
            positive.append(name)
    return positive, negative, embeds


class ModeratedPipeline:
    """Wraps a diffusers text-to-image pipeline (FluxPipeline, Flux2Pipeline, any with `prompt`).

    `guarded = ModeratedPipeline(pipe, policy="default", audit=sink)`; `guarded(prompt, ...)`
    returns a `ModeratedPipelineOutput` or raises `PromptBlockedError` when nothing may be
    generated. The moderator is built once and reused across calls.
    """

    def __init__(
        self,
        pipe: Any,
        policy: str | Path | Policy | Moderator = "default",
        *,
        audit: Any | None = None,
        classifiers: Mapping[str, Any] | None = None,
        embedding_device: str = "cpu",
    ) -> None:
        """`classifiers` maps policy classifier names to ready instances (plugins, test stand-ins).

        `embedding_device="cuda"` builds the prompt embedding model on the GPU; every other
        moderation model stays on the CPU so that it never competes with the generator for memory.
        """
        self._pipe = pipe
        self._loader: Callable[[], Any] | None = None
        self._load_lock = threading.Lock()
        if isinstance(policy, Moderator):
            if audit is not None or classifiers or embedding_device != "cpu":
                raise ValueError("give audit, classifiers and embedding_device to the Moderator, not beside it")
            self.moderator = policy
        else:
            resolved = policy if isinstance(policy, Policy) else _load_policy(policy)
            overrides = dict(classifiers or {})
            if embedding_device != "cpu":
                overrides.update(_embedding_on(resolved, embedding_device, overrides))
            self.moderator = Moderator(resolved, audit=audit, classifiers=overrides)

    @classmethod
    def lazy(
        cls, loader: Callable[[], Any], policy: str | Path | Policy | Moderator = "default", **kwargs: Any
    ) -> ModeratedPipeline:
        """Wrap a pipeline that is loaded only when the first prompt passes its checks.

        Loading FLUX takes minutes and tens of gigabytes; a request that is refused at the prompt
        stage (the CLI's one-shot `generate`, say) should cost neither.
        """
        guarded = cls(None, policy, **kwargs)
        guarded._loader = loader
        return guarded

    @property
    def pipe(self) -> Any:
        """The wrapped pipeline, loaded now if it was given as a loader."""
        with self._load_lock:
            if self._pipe is None:
                if self._loader is None:
                    raise ValueError("ModeratedPipeline has no pipeline: pass one, or use ModeratedPipeline.lazy")
                self._pipe = self._loader()
            return self._pipe

    @property
    def pipe_loaded(self) -> bool:
        return self._pipe is not None

    @property
    def policy(self) -> Policy:
        return self.moderator.policy

    # --- construction from a local folder ----------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        policy: str | Path | Policy | Moderator = "default",
        *,
        device: str = "cpu",
        torch_dtype: str | torch.dtype | None = None,
        offload: bool = False,
        audit: Any | None = None,
        embedding_device: str = "cpu",
        **pipeline_kwargs: Any,
    ) -> ModeratedPipeline:
        """Load a diffusers pipeline from a local folder (never the hub) and wrap it.

        `offload=True` keeps the pipeline's modules on the CPU and moves each to `device` only
        while it runs (diffusers' model CPU offload; needs `accelerate` and a CUDA device).
        """
        pipe = load_local_pipeline(path, device=device, torch_dtype=torch_dtype, offload=offload, **pipeline_kwargs)
        return cls(pipe, policy, audit=audit, embedding_device=embedding_device)

    # --- the call ---------------------------------------------------------------------------
    def __call__(self, prompt: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Check text, generate what may be generated, check and render every image.

        Returns a `ModeratedPipelineOutput`, or `(images, nsfw_content_detected)` when
        `return_dict=False`, like diffusers' safety-checked pipelines.
        """
        request_id = f"req_{uuid.uuid4().hex}"
        started = time.perf_counter()
        kwargs = {"prompt": prompt, **kwargs}
        return_dict = kwargs.pop("return_dict", True)
        output_type = kwargs.get("output_type") or "pil"
        self._refuse_uncheckable(kwargs, output_type)

        positive, negative, embeds = _prompt_arguments(kwargs)
        if not positive and not embeds:
            raise InputError("no prompt given: pass prompt (a string or a list of strings)")
        texts = {name: _as_batch(kwargs[name], name) for name in (*positive, *negative)}
        batch = _batch_size(texts, positive, kwargs)
        context = {"request_id": request_id} if self.moderator.audit is not None else None
        checks = self._check_texts(texts, positive, batch, context)
        negative_checks = self._check_texts(texts, negative, batch, context, required=False)
        for check in negative_checks:
            if check.decision.flagged:
                log.info(
                    "negative_prompt_flagged",
                    request_id=request_id,
                    argument=check.argument,
                    action=check.decision.action.value,
                    categories=list(check.decision.categories),
                )
        prompt_decisions = _per_prompt(checks, batch)
        allowed = [i for i, d in enumerate(prompt_decisions) if d.allowed]
        if prompt_decisions and not allowed:
            log.info(
                "prompt_blocked", request_id=request_id, prompts=batch, decision_ids=[d.id for d in prompt_decisions]
            )
            self._record_request(request_id, kwargs, prompt_decisions, (), started)
            raise PromptBlockedError(prompt_decisions)

        per_prompt = int(kwargs.get("num_images_per_prompt") or 1)
        call_kwargs = _select_prompts(kwargs, texts, allowed, batch, per_prompt)
        call_kwargs["output_type"] = output_type
        generated = self.pipe(**call_kwargs, return_dict=True).images

        prompt_index = [i for i in allowed for _ in range(per_prompt)] if prompt_decisions else []
        pil_images = to_pil(generated, output_type)
        if not prompt_index:  # trusted embeddings: one "prompt" per embedding row, undecided
            prompt_index = [i // per_prompt for i in range(len(pil_images))]
        if len(pil_images) != len(prompt_index):
            raise RuntimeError(
                f"pipeline returned {len(pil_images)} images for {len(allowed)} prompts × {per_prompt}; "
                "cannot tell which prompt each image belongs to"
            )
        image_context = dict(context or {})
        if context is not None:
            image_context["generation"] = _generation_info(call_kwargs, len(pil_images), prompt_decisions)
        decisions = self.moderator.check_images(
            pil_images,
            prompt_decisions=[prompt_decisions[i] if prompt_decisions else None for i in prompt_index],
            context=image_context or None,
        )
        images, detected, delivered = self._render(generated, pil_images, decisions, output_type)
        self._record_request(request_id, call_kwargs, prompt_decisions, decisions, started)
        for decision in decisions:
            if decision.flagged:
                log.info(
                    "image_moderated",
                    request_id=request_id,
                    decision_id=decision.id,
                    action=decision.action.value,
                    categories=list(decision.categories),
                )
        if not return_dict:
            return images, detected
        return ModeratedPipelineOutput(
            images=images,
            nsfw_content_detected=detected,
            prompt_decisions=tuple(prompt_decisions),
            image_decisions=tuple(decisions),
            image_prompt_index=tuple(prompt_index),
            delivered=tuple(delivered),
            prompt_checks=tuple(checks),
            negative_prompt_checks=tuple(negative_checks),
            request_id=request_id,
        )

    def _record_request(
        self,
        request_id: str,
        call_kwargs: Mapping[str, Any],
        prompts: Sequence[Decision],
        images: Sequence[Decision],
        started: float,
    ) -> None:
        """One audit summary per request (blocked ones too): model, seed, size, outcome, decision ids."""
        sink = self.moderator.audit
        if sink is None:
            return
        import audit

        info = _generation_info(call_kwargs, len(images), prompts)
        generator = call_kwargs.get("generator")
        seed = generator.initial_seed() if hasattr(generator, "initial_seed") else None
        config = getattr(self.pipe, "config", None)
        model_id = getattr(config, "_name_or_path", None) or type(self.pipe).__name__
        delivered = [d for d in images if d.allowed]
        if images:
            action = "allow" if delivered else "block"
        else:
            action = "block" if prompts and not any(d.allowed for d in prompts) else "allow"
        latency = round((time.perf_counter() - started) * 1000, 3)
        info |= {"model_id": str(model_id), "seed": seed, "image_decision_ids": tuple(d.id for d in images)}
        audit.record_generation(
            sink,
            info,
            action=action,
            allowed=action != "block",
            policy={"id": self.policy.id, "version": self.policy.version, "sha256": self.policy.sha256},
            request_id=request_id,
            latency_ms=latency,
        )

    # --- stages -------------------------------------------------------------------------------
    def _refuse_uncheckable(self, kwargs: Mapping[str, Any], output_type: str) -> None:
        if output_type == "latent":
            raise UncheckableRequestError(
                "output_type='latent' cannot be moderated: latents are decoded outside the image checks"
            )
        if output_type not in OUTPUT_TYPES:
            raise UncheckableRequestError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
        _, _, embeds = _prompt_arguments(kwargs)
        if embeds and not self.policy.trust_prompt_embeds:
            raise UncheckableRequestError(
                f"{', '.join(embeds)} bypass the prompt checks; policy {self.policy.id!r} does not trust "
                "precomputed embeddings (trust_prompt_embeds: false). Pass the prompt text instead."
            )
        if embeds:
            log.info("prompt_embeds_trusted", policy_id=self.policy.id, arguments=embeds)

    def _check_texts(
        self,
        texts: Mapping[str, list[str] | None],
        names: Sequence[str],
        batch: int,
        context: Mapping[str, Any] | None,
        *,
        required: bool = True,
    ) -> list[PromptCheck]:
        """One batched moderator call for every text of `names`; identical texts are checked once."""
        items: list[tuple[str, int, str]] = []
        for name in names:
            values = texts[name] or []
            if len(values) == 1 and batch > 1:
                values = values * batch  # one string applies to every prompt of the batch
            for index, text in enumerate(values):
                if not required and not text.strip():
                    continue  # an empty negative prompt is the pipelines' own default: nothing to screen
                try:
                    validate_prompt(text, self.policy)
                except InputError as exc:
                    where = f"{name}[{index}]" if batch > 1 else name
                    raise InputError(f"{where}: {exc}") from None
                items.append((name, index, text))
        unique = list(dict.fromkeys(text for _, _, text in items))
        decisions = dict(zip(unique, self.moderator.check_prompts(unique, context=context), strict=True))
        return [PromptCheck(argument=name, index=index, decision=decisions[text]) for name, index, text in items]

    def _render(
        self,
        generated: Any,
        pil_images: list[Image.Image],
        decisions: Sequence[Decision],
        output_type: str,
    ) -> tuple[Any, list[bool], list[bool]]:
        """Apply each decision to its image, keeping untouched images byte-for-byte as generated."""
        kept: list[Any] = []
        detected: list[bool] = []
        delivered: list[bool] = []
        for index, (image, decision) in enumerate(zip(pil_images, decisions, strict=True)):
            if decision.action in (Action.ALLOW, Action.FLAG):
                out = image if output_type == "pil" else generated[index]
            else:
                rendered = self.moderator.render(image, decision)
                out = rendered if rendered is None or output_type == "pil" else _from_pil(rendered, generated)
            delivered.append(out is not None)
            if out is not None:
                kept.append(out)
                detected.append(decision.action is not Action.ALLOW)
        return _stack(kept, generated, output_type), detected, delivered


# --- helpers --------------------------------------------------------------------------------


def _load_policy(ref: str | Path) -> Policy:
    from moderation.policy import load_policy

    return load_policy(ref)


def _embedding_on(policy: Policy, device: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Build the policy's embedding classifier with `device` added to its options."""
    from classifiers import registry

    out: dict[str, Any] = {}
    for spec in policy.classifier_specs(Stage.PROMPT):
        if spec.name == "embedding" and spec.name not in overrides:
            options = {**spec.options, "device": device}
            out[spec.name] = registry.build(spec.name, options, lists=policy.word_lists, policy=policy)
    if not out:
        raise ValueError(f"embedding_device={device!r}: policy {policy.id!r} runs no embedding classifier")
    return out


def _batch_size(texts: Mapping[str, list[str] | None], positive: Sequence[str], kwargs: Mapping[str, Any]) -> int:
    """Number of prompts in the request; every list-valued prompt argument must agree with it."""
    sizes = {name: len(values) for name, values in texts.items() if values is not None and len(values) != 1}
    if len(set(sizes.values())) > 1:
        raise InputError(f"prompt arguments disagree on batch size: {sizes}")
    if sizes:
        return next(iter(sizes.values()))
    if positive:
        return 1
    return 0  # trusted embeddings, no text


def _per_prompt(checks: Sequence[PromptCheck], batch: int) -> list[Decision]:
    """Per batch position, the most severe decision over all its texts (prompt, prompt_2, ...)."""
    out: list[Decision] = []
    for index in range(batch):
        mine = [c.decision for c in checks if c.index == index]
        worst = most_severe([d.action for d in mine])
        out.append(next(d for d in mine if d.action is worst))
    return out


def _select_prompts(
    kwargs: Mapping[str, Any], texts: Mapping[str, list[str] | None], allowed: list[int], batch: int, per_prompt: int
) -> dict[str, Any]:
    """The call's arguments restricted to the allowed prompts (and their generators / latents)."""
    out = dict(kwargs)
    if batch <= 1 or len(allowed) == batch:
        return out
    for name, values in texts.items():
        if values is not None and len(values) == batch:
            out[name] = [values[i] for i in allowed]
    images_per_row = [i * per_prompt + k for i in allowed for k in range(per_prompt)]
    generator = kwargs.get("generator")
    if isinstance(generator, list) and len(generator) == batch * per_prompt:
        out["generator"] = [generator[i] for i in images_per_row]
    latents = kwargs.get("latents")
    if latents is not None and getattr(latents, "shape", (0,))[0] == batch * per_prompt:
        out["latents"] = latents[images_per_row]
    return out


def _generation_info(call_kwargs: Mapping[str, Any], count: int, prompts: Sequence[Decision]) -> dict[str, Any]:
    steps = call_kwargs.get("num_inference_steps")
    guidance = call_kwargs.get("guidance_scale")
    return {
        "steps": int(steps) if steps is not None else None,
        "width": call_kwargs.get("width"),
        "height": call_kwargs.get("height"),
        "guidance_scale": float(guidance) if guidance is not None else None,
        "num_images": count,
        "prompt_decision_id": prompts[0].id if len(prompts) == 1 else None,
    }


def to_pil(images: Any, output_type: str) -> list[Image.Image]:
    """Generated images as 8-bit RGB PIL images, rounded the way diffusers' numpy_to_pil rounds."""
    import numpy as np
    from PIL import Image

    if output_type == "pil":
        return list(images)
    if output_type == "pt":
        array = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    else:
        array = np.asarray(images, dtype=np.float32)
    pixels = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return [Image.fromarray(p) for p in pixels]


def _from_pil(image: Image.Image, like: Any) -> Any:
    """One rendered image back into the float [0, 1] layout of `like` (np: HWC, pt: CHW)."""
    import numpy as np

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if isinstance(like, np.ndarray):
        return array.astype(like.dtype, copy=False)
    import torch

    return torch.from_numpy(array).permute(2, 0, 1).to(device=like.device, dtype=like.dtype)


def _stack(kept: list[Any], generated: Any, output_type: str) -> Any:
    if output_type == "pil":
        return kept
    if output_type == "np":
        import numpy as np

        return np.stack(kept) if kept else generated[:0]
    import torch

    return torch.stack(kept) if kept else generated[:0]


def parse_dtype(value: str | torch.dtype | None) -> torch.dtype | None:
    """'bfloat16' / 'float16' / 'float32' (or a torch.dtype) as a torch.dtype."""
    import torch

    if value is None or isinstance(value, torch.dtype):
        return value
    if value not in DTYPES:
        raise ValueError(f"torch_dtype must be one of {', '.join(DTYPES)}, not {value!r}")
    return getattr(torch, value)


def load_local_pipeline(
    path: str | Path,
    *,
    device: str = "cpu",
    torch_dtype: str | torch.dtype | None = None,
    offload: bool = False,
    **pipeline_kwargs: Any,
) -> Any:
    """A diffusers pipeline from a local folder; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    folder = check_model_folder(path)
    check_device(device)
    if offload and not device.startswith("cuda"):
        raise ValueError("offload=True moves modules to the GPU while they run: it needs device='cuda'")
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(
        folder, torch_dtype=parse_dtype(torch_dtype), local_files_only=True, **pipeline_kwargs
    )
    if offload:
        try:
            pipe.enable_model_cpu_offload(device=device)
        except (ImportError, RuntimeError) as exc:
            raise RuntimeError(f"offload=True failed ({exc}); install `accelerate` or drop offload") from exc
    else:
        pipe.to(device)
    return pipe


def check_model_folder(path: str | Path) -> Path:
    """`path` if it is a local diffusers pipeline folder, else FileNotFoundError saying what to give."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no such model folder. fluxwarden never downloads models: give a local diffusers "
            "folder (one with model_index.json, e.g. a save_pretrained output or a downloaded snapshot)"
        )
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder}: not a diffusers pipeline folder (model_index.json is missing)")
    return folder


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, before loading gigabytes onto it."""
    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], not {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but no CUDA device is available (torch {torch.__version__})")

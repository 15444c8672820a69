"""ModeratedPipeline around the tiny random FluxPipeline and Flux2Pipeline (real diffusers code)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classifiers import registry
from moderation.moderator import InputError, Moderator
from moderation.pipeline import (
    ModeratedPipeline,
    ModeratedPipelineOutput,
    PromptBlockedError,
    UncheckableRequestError,
)
from moderation.policy import Policy, load_policy_text
from moderation.testing import tiny_flux2_pipeline, tiny_flux_pipeline
from moderation.types import Action, ClassifierResult, Stage

BENIGN = "a lighthouse at dawn"
UNSAFE = "a nude woman on a beach"
CALL = {"height": 64, "width": 64, "num_inference_steps": 2}


class SecondImageStandIn:
    """Test stand-in for an image classifier (no explicit images may be stored here).

    It scores the second image of every batch it is given with `score` for `category`, and
    records the sizes of what it saw, so tests can steer the image stage image by image.
    """

    name, version, stage = "second_image_standin", "test", Stage.IMAGE

    def __init__(self, category: str = "sexual", score: float = 0.6, fail: bool = False) -> None:
        self.category, self.score, self.fail = category, score, fail
        self.seen: list[tuple[int, int]] = []

    def classify(self, images: Sequence[Any]) -> list[ClassifierResult]:
        if self.fail:
            raise RuntimeError("stand-in detector crashed")
        self.seen.extend((img.width, img.height) for img in images)
        return [
            ClassifierResult(
                classifier=self.name, version=self.version, scores={self.category: self.score if i == 1 else 0.0}
            )
            for i, _ in enumerate(images)
        ]

    @classmethod
    def from_options(cls, options: dict[str, Any] | None = None, **_context: Any) -> SecondImageStandIn:
        return cls(**(options or {}))


registry.register(SecondImageStandIn.name, Stage.IMAGE, SecondImageStandIn.from_options)


@cache
def standin_policy(score: float = 0.6, blocked_output: str = "black", extra: str = "", fail: bool = False) -> Policy:
    """The default preset with rule-based prompt classifiers and the stand-in image classifier."""
    text = f"""
id: pipeline-test
extends: default
{extra}
prompt:
  classifiers: [{{name: lexicon}}, {{name: names}}, {{name: minors}}]
  languages: {{other: allow}}  # rules-only prompt stage, no language classifier (tests/test_language.py)
image:
  classifiers: [{{name: second_image_standin, options: {{score: {score}, fail: {str(fail).lower()}}}}}]
  blocked_output: {blocked_output}
"""
    return load_policy_text(text, name="pipeline-test.yaml")


@cache
def standin_moderator(**kwargs: Any) -> Moderator:
    """One moderator per stand-in policy for the whole module: classifiers are built once."""
    return Moderator(standin_policy(**kwargs))


class RecordingPipeline:
    """Test spy around a real tiny pipeline: forwards every call unchanged and records its arguments."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[dict[str, Any]] = []
        self.denoising_steps = 0
        pipe.transformer.register_forward_pre_hook(self._count)

    def _count(self, *_args: Any) -> None:
        self.denoising_steps += 1

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.pipe(**kwargs)


def _quiet(pipe: Any) -> Any:
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def flux() -> Any:
    return _quiet(tiny_flux_pipeline(seed=0))


@pytest.fixture(scope="module")
def flux2() -> Any:
    return _quiet(tiny_flux2_pipeline(seed=0))


@pytest.fixture(params=["flux", "flux2"])
def any_pipe(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def blur() -> Moderator:
    return standin_moderator(score=0.6)


def _seed(value: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(value)


def _raw(pipe: Any, prompt: str = BENIGN, **kwargs: Any) -> Any:
    """The unmoderated pipeline's output for the same request, to compare pixels with."""
    return pipe(prompt=prompt, generator=_seed(), **{**CALL, **kwargs}).images


# --- prompt stage -----------------------------------------------------------------------------


def test_allowed_prompt_yields_images_with_one_decision_each(any_pipe: Any, blur: Moderator) -> None:
    """An allowed prompt generates every requested image, each with its own image decision."""
    guarded = ModeratedPipeline(any_pipe, blur)
    result = guarded(BENIGN, num_images_per_prompt=2, generator=_seed(), **CALL)
    assert isinstance(result, ModeratedPipelineOutput)
    assert result.prompt_decision is not None
    assert result.prompt_decision.action is Action.ALLOW
    assert len(result.image_decisions) == 2
    assert all(d.stage is Stage.IMAGE for d in result.image_decisions)
    assert [img.size for img in result.images] == [(64, 64), (64, 64)]


def test_blocked_prompt_never_reaches_the_generator(any_pipe: Any, blur: Moderator) -> None:
    """A blocked prompt raises before the pipeline is called: no call, not one denoising step."""
    spy = RecordingPipeline(any_pipe)
    with pytest.raises(PromptBlockedError):
        ModeratedPipeline(spy, blur)(UNSAFE, generator=_seed(), **CALL)
    assert spy.calls == []
    assert spy.denoising_steps == 0


def test_blocked_prompt_error_carries_reasons(flux: Any, blur: Moderator) -> None:
    """The refusal names the category and the rule that matched, and holds the decision."""
    with pytest.raises(PromptBlockedError) as caught:
        ModeratedPipeline(flux, blur)(UNSAFE, **CALL)
    (decision,) = caught.value.decisions
    assert decision.action is Action.BLOCK
    assert "sexual" in decision.categories
    assert "sexual" in str(caught.value)
    assert "lexicon" in str(caught.value)


def test_mixed_batch_generates_only_allowed_prompts(any_pipe: Any, blur: Moderator) -> None:
    """In a batch, blocked prompts are left out of the call; the others are generated and reported."""
    spy = RecordingPipeline(any_pipe)
    prompts = [BENIGN, UNSAFE, "a red fox in the snow"]
    result = ModeratedPipeline(spy, blur)(prompts, **CALL)
    assert spy.calls[0]["prompt"] == [BENIGN, "a red fox in the snow"]
    assert [d.action for d in result.prompt_decisions] == [Action.ALLOW, Action.BLOCK, Action.ALLOW]
    assert result.blocked_prompts == (1,)
    assert result.image_prompt_index == (0, 2)


def test_mixed_batch_keeps_each_prompts_generators(flux: Any, blur: Moderator) -> None:
    """Per-image generators follow their prompts when a blocked prompt is left out."""
    spy = RecordingPipeline(flux)
    generators = [_seed(1), _seed(2), _seed(3)]
    ModeratedPipeline(spy, blur)([BENIGN, UNSAFE, "a red fox"], generator=generators, **CALL)
    assert spy.calls[0]["generator"] == [generators[0], generators[2]]


def test_unsafe_prompt_2_is_caught(flux: Any, blur: Moderator) -> None:
    """Unsafe text in prompt_2 (FLUX's T5 prompt) blocks even when prompt is benign."""
    spy = RecordingPipeline(flux)
    with pytest.raises(PromptBlockedError):
        ModeratedPipeline(spy, blur)(BENIGN, prompt_2=UNSAFE, **CALL)
    assert spy.calls == []


def test_prompt_2_checks_are_reported(flux: Any, blur: Moderator) -> None:
    """Every checked text is reported with the argument it came from."""
    result = ModeratedPipeline(flux, blur)(BENIGN, prompt_2="a watercolor sky", **CALL)
    assert [c.argument for c in result.prompt_checks] == ["prompt", "prompt_2"]


def test_invalid_prompt_2_names_the_argument(flux: Any, blur: Moderator) -> None:
    """A control character in prompt_2 is an input error that names prompt_2."""
    with pytest.raises(InputError, match="prompt_2"):
        ModeratedPipeline(flux, blur)(BENIGN, prompt_2="a cat\x00", **CALL)


def test_negative_prompt_is_screened_and_recorded(flux: Any, blur: Moderator) -> None:
    """A negative prompt is checked and its decision reported, but it steers away and does not block."""
    result = ModeratedPipeline(flux, blur)(BENIGN, negative_prompt="nude, blurry", true_cfg_scale=2.0, **CALL)
    (check,) = result.negative_prompt_checks
    assert check.argument == "negative_prompt"
    assert check.decision.flagged
    assert len(result.images) == 1


def test_prompt_embeds_are_refused(flux: Any, blur: Moderator) -> None:
    """prompt_embeds bypass the text checks, so they are refused unless the policy trusts them."""
    spy = RecordingPipeline(flux)
    embeds, pooled, _ = flux.encode_prompt(BENIGN, BENIGN, max_sequence_length=64)
    with pytest.raises(UncheckableRequestError, match="trust_prompt_embeds"):
        ModeratedPipeline(spy, blur)(prompt_embeds=embeds, pooled_prompt_embeds=pooled, **CALL)
    assert spy.calls == []


def test_trusted_prompt_embeds_still_get_image_checks(flux: Any) -> None:
    """With trust_prompt_embeds, embeddings pass, there is no prompt decision, and images are still checked."""
    policy = standin_moderator(extra="trust_prompt_embeds: true")
    embeds, pooled, _ = flux.encode_prompt(BENIGN, BENIGN, max_sequence_length=64)
    result = ModeratedPipeline(flux, policy)(
        prompt_embeds=embeds, pooled_prompt_embeds=pooled, num_images_per_prompt=2, **CALL
    )
    assert result.prompt_decision is None
    assert [d.action for d in result.image_decisions] == [Action.ALLOW, Action.BLUR]


def test_latent_output_is_refused(flux: Any, blur: Moderator) -> None:
    """output_type='latent' cannot be checked and is refused before generation."""
    with pytest.raises(UncheckableRequestError, match="latent"):
        ModeratedPipeline(flux, blur)(BENIGN, output_type="latent", **CALL)


# --- image stage -------------------------------------------------------------------------------


def test_stand_in_sees_every_generated_image(flux: Any) -> None:
    """The image stage is given every generated image at its generated size."""
    guarded = ModeratedPipeline(flux, Moderator(standin_policy()))
    standin = guarded.moderator._runners[Stage.IMAGE].classifiers()[0][1]
    guarded(BENIGN, num_images_per_prompt=3, **CALL)
    assert standin.seen == [(64, 64)] * 3


def test_blur_is_applied_to_the_second_image_only(any_pipe: Any, blur: Moderator) -> None:
    """The flagged second image is blurred; the first is delivered exactly as generated."""
    raw = _raw(any_pipe, num_images_per_prompt=2)
    result = ModeratedPipeline(any_pipe, blur)(BENIGN, num_images_per_prompt=2, generator=_seed(), **CALL)
    assert [d.action for d in result.image_decisions] == [Action.ALLOW, Action.BLUR]
    assert result.nsfw_content_detected == [False, True]
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(raw[0]))
    assert not np.array_equal(np.asarray(result.images[1]), np.asarray(raw[1]))


def test_blocked_image_is_dropped_when_policy_says_drop(any_pipe: Any) -> None:
    """With blocked_output: drop, a blocked image is removed; its decision remains."""
    policy = standin_moderator(score=0.95, blocked_output="drop")
    result = ModeratedPipeline(any_pipe, policy)(BENIGN, num_images_per_prompt=2, **CALL)
    assert len(result.images) == 1
    assert result.nsfw_content_detected == [False]
    assert [d.action for d in result.image_decisions] == [Action.ALLOW, Action.BLOCK]
    assert result.delivered == (True, False)


def test_blocked_image_is_black_when_policy_says_black(flux: Any) -> None:
    """With blocked_output: black, a blocked image becomes black, like diffusers' safety checker."""
    result = ModeratedPipeline(flux, standin_moderator(score=0.95))(BENIGN, num_images_per_prompt=2, **CALL)
    assert not np.asarray(result.images[1]).any()
    assert np.asarray(result.images[0]).any()


def test_failing_image_classifier_blocks_every_image(flux: Any) -> None:
    """An image classifier that crashes blocks all images (fail closed)."""
    result = ModeratedPipeline(flux, standin_moderator(fail=True))(BENIGN, num_images_per_prompt=2, **CALL)
    assert all(d.action is Action.BLOCK for d in result.image_decisions)
    assert all(not np.asarray(img).any() for img in result.images)


@pytest.mark.parametrize("output_type", ["np", "pt"])
def test_array_outputs_keep_type_and_untouched_pixels(flux: Any, blur: Moderator, output_type: str) -> None:
    """np and pt outputs keep their type and layout; the allowed image is bit-identical to the raw one."""
    raw = _raw(flux, num_images_per_prompt=2, output_type=output_type)
    result = ModeratedPipeline(flux, blur)(
        BENIGN, num_images_per_prompt=2, generator=_seed(), output_type=output_type, **CALL
    )
    assert type(result.images) is type(raw)
    assert tuple(result.images.shape) == tuple(raw.shape)
    assert bool((result.images[0] == raw[0]).all())
    assert not bool((result.images[1] == raw[1]).all())


def test_other_arguments_pass_through_untouched(flux: Any, blur: Moderator) -> None:
    """Arguments the wrapper does not moderate reach the pipeline as given."""
    spy = RecordingPipeline(flux)
    generator = _seed()
    ModeratedPipeline(spy, blur)(BENIGN, generator=generator, guidance_scale=2.5, max_sequence_length=64, **CALL)
    call = spy.calls[0]
    assert call["generator"] is generator
    assert call["guidance_scale"] == 2.5
    assert call["max_sequence_length"] == 64


def test_return_dict_false_returns_images_and_flags(flux: Any, blur: Moderator) -> None:
    """return_dict=False returns (images, nsfw_content_detected) like diffusers' checked pipelines."""
    images, detected = ModeratedPipeline(flux, blur)(BENIGN, num_images_per_prompt=2, return_dict=False, **CALL)
    assert len(images) == 2
    assert detected == [False, True]


def test_decision_ids_cover_prompt_and_images(flux: Any, blur: Moderator) -> None:
    """The result lists the id of every decision taken for the request."""
    result = ModeratedPipeline(flux, blur)(BENIGN, num_images_per_prompt=2, **CALL)
    assert result.decision_ids == (result.prompt_decisions[0].id, *(d.id for d in result.image_decisions))


# --- loading -----------------------------------------------------------------------------------


def test_from_pretrained_loads_a_local_folder(tmp_path: Path, blur: Moderator) -> None:
    """from_pretrained wraps a pipeline saved on disk, with no hub access."""
    tiny_flux_pipeline().save_pretrained(tmp_path)
    guarded = ModeratedPipeline.from_pretrained(tmp_path, policy=blur, torch_dtype="float32")
    _quiet(guarded.pipe)
    assert len(guarded(BENIGN, **CALL).images) == 1


def test_from_pretrained_missing_path_is_a_clear_error(tmp_path: Path, blur: Moderator) -> None:
    """A missing model folder is a FileNotFoundError that says nothing is downloaded."""
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ModeratedPipeline.from_pretrained(tmp_path / "FLUX.1-dev", policy=blur)


def test_from_pretrained_rejects_unknown_dtype(tmp_path: Path, blur: Moderator) -> None:
    """An unknown dtype name is refused with the accepted names."""
    tiny_flux_pipeline().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="bfloat16"):
        ModeratedPipeline.from_pretrained(tmp_path, policy=blur, torch_dtype="float8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path, blur: Moderator) -> None:
    """Asking for cuda where there is none fails before loading, naming the device."""
    tiny_flux_pipeline().save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        ModeratedPipeline.from_pretrained(tmp_path, policy=blur, device="cuda")


def test_missing_prompt_is_an_input_error(flux: Any, blur: Moderator) -> None:
    """A call with neither prompt text nor embeddings is refused before generation."""
    with pytest.raises(InputError, match="no prompt"):
        ModeratedPipeline(flux, blur)(**CALL)


def test_offload_on_cpu_is_refused(tmp_path: Path, blur: Moderator) -> None:
    """offload=True without a CUDA device is a clear error, not a silent no-op."""
    tiny_flux_pipeline().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="offload"):
        ModeratedPipeline.from_pretrained(tmp_path, policy=blur, offload=True)


def test_lazy_pipeline_is_not_loaded_for_a_blocked_prompt(blur: Moderator) -> None:
    """ModeratedPipeline.lazy loads the model only once a prompt passes, and only once."""
    loads: list[int] = []

    def loader() -> Any:
        loads.append(1)
        return _quiet(tiny_flux_pipeline())

    guarded = ModeratedPipeline.lazy(loader, blur)
    with pytest.raises(PromptBlockedError):
        guarded(UNSAFE, **CALL)
    assert loads == []
    guarded(BENIGN, **CALL)
    guarded(BENIGN, **CALL)
    assert loads == [1]


def test_bfloat16_pipeline_keeps_dtype_through_moderation(blur: Moderator) -> None:
    """A bfloat16 pipeline (as on a GPU) gets its pt images back in bfloat16, with the blur applied."""
    pipe = _quiet(tiny_flux_pipeline().to(dtype=torch.bfloat16))
    result = ModeratedPipeline(pipe, blur)(BENIGN, num_images_per_prompt=2, output_type="pt", **CALL)
    assert result.images.dtype == torch.bfloat16
    assert [d.action for d in result.image_decisions] == [Action.ALLOW, Action.BLUR]


def test_audit_log_records_every_decision_of_the_request(flux: Any, tmp_path: Path) -> None:
    """With an audit log, the prompt and each image decision are written under the request's id."""
    from audit import open_log

    log = open_log(tmp_path)
    try:
        result = ModeratedPipeline(flux, standin_policy(), audit=log)(BENIGN, num_images_per_prompt=2, **CALL)
    finally:
        log.close()
    events = [json.loads(line) for path in tmp_path.glob("segment-*.jsonl") for line in path.read_text().splitlines()]
    mine = [e for e in events if e.get("request_id") == result.request_id]
    assert tuple(e["decision_id"] for e in mine if e["kind"] == "decision") == result.decision_ids


def test_audit_log_summarises_each_request(flux: Any, tmp_path: Path) -> None:
    """Each request, blocked ones included, leaves one generation summary naming its decisions and seed."""
    from audit import open_log

    log = open_log(tmp_path)
    try:
        guarded = ModeratedPipeline(flux, standin_policy(), audit=log)
        result = guarded(BENIGN, generator=torch.Generator().manual_seed(7), **CALL)
        with pytest.raises(PromptBlockedError):
            guarded("a nude woman on a bed", **CALL)
    finally:
        log.close()
    events = [json.loads(line) for path in tmp_path.glob("segment-*.jsonl") for line in path.read_text().splitlines()]
    summaries = [e for e in events if e["kind"] == "generation"]
    assert [s["action"] for s in summaries] == ["allow", "block"]
    assert summaries[0]["generation"]["seed"] == 7
    assert summaries[0]["generation"]["image_decision_ids"] == [d.id for d in result.image_decisions]

"""The tiny random FLUX pipelines: real diffusers classes, built offline, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from moderation.testing import (
    tiny_clip_tokenizer,
    tiny_flux2_pipeline,
    tiny_flux_pipeline,
    tiny_mistral_tokenizer,
    tiny_t5_tokenizer,
)

CALL = {"height": 64, "width": 64, "num_inference_steps": 2, "output_type": "np"}


def _generate(pipe, prompt: str = "a lighthouse at dawn", seed: int = 0, **overrides) -> np.ndarray:
    pipe.set_progress_bar_config(disable=True)
    kwargs = {**CALL, **overrides}
    return pipe(prompt=prompt, generator=torch.Generator().manual_seed(seed), **kwargs).images


@pytest.fixture(scope="module")
def flux():
    return tiny_flux_pipeline(seed=0)


@pytest.fixture(scope="module")
def flux2():
    return tiny_flux2_pipeline(seed=0)


def test_tiny_flux_is_a_real_flux_pipeline(flux) -> None:
    """tiny_flux_pipeline returns diffusers' own FluxPipeline, not a look-alike."""
    from diffusers import FluxPipeline

    assert type(flux) is FluxPipeline


def test_tiny_flux2_is_a_real_flux2_pipeline(flux2) -> None:
    """tiny_flux2_pipeline returns diffusers' own Flux2Pipeline."""
    from diffusers import Flux2Pipeline

    assert type(flux2) is Flux2Pipeline


def test_tiny_flux_renders_requested_size(flux) -> None:
    """A 64x64 request yields one 64x64 RGB image per prompt."""
    images = _generate(flux)
    assert images.shape == (1, 64, 64, 3)


def test_tiny_flux2_renders_with_default_call_arguments(flux2) -> None:
    """Flux2's default text_encoder_out_layers and max_sequence_length work on the tiny encoder."""
    images = _generate(flux2, output_type="pil")
    assert images[0].size == (64, 64)


def test_tiny_flux_is_deterministic_under_seed(flux) -> None:
    """Two pipelines built with the same seed give identical images for the same generator seed."""
    again = tiny_flux_pipeline(seed=0)
    assert np.array_equal(_generate(flux), _generate(again))


def test_tiny_flux2_is_deterministic_under_seed(flux2) -> None:
    """Flux2 tiny pipelines built with the same seed give identical images."""
    again = tiny_flux2_pipeline(seed=0)
    assert np.array_equal(_generate(flux2), _generate(again))


def test_build_seed_changes_weights(flux) -> None:
    """A different build seed gives different weights, hence different images."""
    other = tiny_flux_pipeline(seed=1)
    assert not np.array_equal(_generate(flux), _generate(other))


def test_modules_are_in_eval_mode(flux, flux2) -> None:
    """Every module is in eval mode, so dropout never makes outputs random."""
    modules = [flux.transformer, flux.text_encoder, flux.text_encoder_2, flux.vae]
    modules += [flux2.transformer, flux2.text_encoder, flux2.vae]
    assert not any(module.training for module in modules)


def test_flux_prompt_changes_the_image(flux) -> None:
    """The prompt reaches the transformer: two prompts give two different images."""
    assert not np.array_equal(_generate(flux, "a lighthouse"), _generate(flux, "a red fox"))


def test_flux2_prompt_survives_the_system_message(flux2) -> None:
    """The Flux2 prompt is not truncated away behind the system message."""
    assert not np.array_equal(_generate(flux2, "a lighthouse"), _generate(flux2, "a red fox"))


def test_clip_tokenizer_covers_every_byte() -> None:
    """Any text, including non-ASCII, tokenizes without unknown tokens."""
    tokenizer = tiny_clip_tokenizer()
    ids = tokenizer("café ☕ ünïcode").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1]


def test_t5_tokenizer_has_no_sentinel_ids() -> None:
    """The T5 tokenizer is character-level with no extra_ids, so its vocabulary stays tiny."""
    tokenizer = tiny_t5_tokenizer()
    assert len(tokenizer) < 200
    assert tokenizer("ab").input_ids[-1] == tokenizer.eos_token_id


def test_mistral_tokenizer_applies_a_chat_template() -> None:
    """The Flux2 stand-in processor renders chat messages, which is all Flux2Pipeline asks of it."""
    tokenizer = tiny_mistral_tokenizer()
    messages = [[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == ["[USER]hi[/USER]"]


def test_vae_scale_8_matches_the_real_model() -> None:
    """The 8x VAE variant has FLUX's real latent downscale and renders 1024x1024."""
    pipe = tiny_flux_pipeline(vae_scale=8)
    assert pipe.vae_scale_factor == 8
    images = _generate(pipe, height=1024, width=1024, num_inference_steps=1)
    assert images.shape == (1, 1024, 1024, 3)


def test_unsupported_vae_scale_is_refused() -> None:
    """A VAE scale factor that is not a power of two up to 8 raises a clear ValueError."""
    with pytest.raises(ValueError, match="vae_scale"):
        tiny_flux_pipeline(vae_scale=3)


@pytest.mark.parametrize("build", [tiny_flux_pipeline, tiny_flux2_pipeline], ids=["flux", "flux2"])
def test_save_pretrained_round_trips_offline(build, tmp_path: Path) -> None:
    """A saved tiny pipeline loads back from its folder with local_files_only and renders the same."""
    from diffusers import DiffusionPipeline

    pipe = build()
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path, local_files_only=True)
    assert type(loaded) is type(pipe)
    np.testing.assert_allclose(_generate(loaded), _generate(pipe), atol=1e-5)

"""Tiny, randomly initialised FLUX pipelines for tests, demos and benchmarks.

They run the real diffusers code path (`FluxPipeline`, `Flux2Pipeline`: text encoders, transformer,
scheduler, VAE, image post-processing) with weights small enough for a CPU, built entirely from
configs with in-memory tokenizers, so nothing is downloaded. They draw noise, not pictures: use
them to exercise moderation plumbing, never to judge image quality or classifier behaviour.

Everything is deterministic under `seed`: the same seed gives byte-identical weights and, with
the same generator seed, byte-identical images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import Flux2Pipeline, FluxPipeline
    from transformers import PreTrainedTokenizerBase

_VAE_SCALES = (1, 2, 4, 8)
# Layers of the tiny Mistral encoder: as many as Flux2Pipeline's default `text_encoder_out_layers`
# (10, 20, 30) need, so that the tiny pipeline accepts the same call arguments as the real one.
_FLUX2_TEXT_LAYERS = 30
_FLUX2_HIDDEN = 16
# Flux2's system message alone is ~170 character-level tokens: the tiny tokenizer is
# character-level, so the default 512 keeps room for the prompt itself.
FLUX2_MAX_SEQUENCE_LENGTH = 512
_FLUX2_CHAT_TEMPLATE = (
    "{% for message in messages %}[{{ message['role'] | upper }}]"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}[/{{ message['role'] | upper }}]{% endfor %}"
)


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2's table)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def tiny_clip_tokenizer() -> PreTrainedTokenizerBase:
    """A character-level CLIP tokenizer (no merges) covering every byte, built in memory."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _byte_chars():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_t5_tokenizer() -> PreTrainedTokenizerBase:
    """A character-level T5 (unigram) tokenizer over printable ASCII, built in memory."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(chr(code), -2.0) for code in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


def tiny_mistral_tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level tokenizer with a small chat template, standing in for Flux2's PixtralProcessor.

    Flux2Pipeline only calls `apply_chat_template` on its processor; the real PixtralProcessor
    needs torchvision, which this project never installs.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "[IMG]", "<s>", "</s>", "<pad>"]  # ids 0..4 match the Mistral3 config below
    vocab = {token: index for index, token in enumerate(specials)}
    for char in _byte_chars():
        vocab.setdefault(char, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=FLUX2_MAX_SEQUENCE_LENGTH,
        chat_template=_FLUX2_CHAT_TEMPLATE,
    )


def _vae_blocks(vae_scale: int) -> tuple[int, ...]:
    """VAE block widths for a pixel-to-latent downscale of `vae_scale` (one block per halving, plus one)."""
    if vae_scale not in _VAE_SCALES:
        raise ValueError(f"vae_scale must be one of {_VAE_SCALES}, got {vae_scale!r}")
    return (4,) * (vae_scale.bit_length())


def _eval(*modules: Any) -> None:
    """Inference mode for every module: T5 dropout would otherwise make outputs random."""
    for module in modules:
        module.eval()


def tiny_flux_pipeline(seed: int = 0, vae_scale: int = 2) -> FluxPipeline:
    """A real `FluxPipeline` with random tiny weights (CLIP + T5 + 1+1-layer transformer).

    `vae_scale=8` gives a 4-level VAE like the real model's, so 1024x1024 output costs
    about half a second on two CPU cores; the default 2 keeps 64x64 test images cheapest
    (a quarter of the image tokens of scale 1, whose VAE is cheaper but whose transformer is not).
    """
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    blocks = _vae_blocks(vae_scale)
    tokenizer = tiny_clip_tokenizer()
    tokenizer_2 = tiny_t5_tokenizer()
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            hidden_act="gelu",
            projection_dim=32,
            max_position_embeddings=77,
        )
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
    )
    vae = AutoencoderKL(
        **_tiny_vae_kwargs(blocks),
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    _eval(transformer, text_encoder, text_encoder_2, vae)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def tiny_flux2_pipeline(seed: int = 0, vae_scale: int = 2) -> Flux2Pipeline:
    """A real `Flux2Pipeline` with random tiny weights (Mistral3 encoder, Flux2 transformer and VAE).

    Accepts Flux2Pipeline's default call arguments (`text_encoder_out_layers=(10, 20, 30)`,
    `max_sequence_length=512`); a smaller `max_sequence_length` must leave room for the ~170
    tokens of the system message, or the prompt is cut away.
    """
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Pipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    blocks = _vae_blocks(vae_scale)
    tokenizer = tiny_mistral_tokenizer()
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * _FLUX2_HIDDEN,  # three stacked hidden-state layers
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
    )
    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": len(tokenizer),
            "hidden_size": _FLUX2_HIDDEN,
            "intermediate_size": 37,
            "max_position_embeddings": FLUX2_MAX_SEQUENCE_LENGTH,
            "num_attention_heads": 4,
            "num_hidden_layers": _FLUX2_TEXT_LAYERS,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000000.0,
            "sliding_window": None,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 37,
            "image_size": 30,
            "patch_size": 6,
            "num_channels": 3,
        },
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        image_seq_length=4,
        vision_feature_layer=-1,
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
    )
    text_encoder = Mistral3ForConditionalGeneration(config)
    vae = AutoencoderKLFlux2(
        **_tiny_vae_kwargs(blocks),
    )
    _eval(transformer, text_encoder, vae)
    return Flux2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def _tiny_vae_kwargs(blocks: tuple[int, ...]) -> dict[str, Any]:
    """The config both tiny VAEs share: one latent channel, one layer per block, no quant convs."""
    return {
        "sample_size": 32,
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * len(blocks),
        "up_block_types": ("UpDecoderBlock2D",) * len(blocks),
        "block_out_channels": blocks,
        "layers_per_block": 1,
        "latent_channels": 1,
        "norm_num_groups": 1,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }

"""A tiny randomly initialised image classifier saved like a hub checkpoint (built from a config, no download)."""

from __future__ import annotations

from pathlib import Path

LABELS = {0: "safe", 1: "gore", 2: "weapon"}


def build_tiny_vit(path: Path) -> Path:
    """Save a 1-layer ViT with labels safe/gore/weapon and its (PIL) image processor into `path`."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    torch.manual_seed(0)
    model = ViTForImageClassification(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path

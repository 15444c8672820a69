"""The training script can reuse tuned top layers (e.g. the shipped ones) instead of tuning them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scripts.train_prompt_head import TopLayers


def test_a_saved_delta_loads_back_into_the_same_layers(tmp_path: Path) -> None:
    tuned = TopLayers(1)
    with torch.no_grad():
        for param in tuned.top.parameters():
            param.add_(0.01)  # stands in for tuning: any change the file must carry
    path = tmp_path / "minilm_top1.npz"
    tuned.save_delta(path)
    loaded = TopLayers.from_delta(path)
    assert loaded.k == 1
    for (name, a), (_, b) in zip(tuned.top.state_dict().items(), loaded.top.state_dict().items(), strict=True):
        # save_delta stores fp16, so the round trip is exact to fp16 precision
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3, err_msg=name)
    assert not torch.equal(loaded.top[0].output.dense.weight, TopLayers(1).top[0].output.dense.weight)


def test_a_delta_of_lower_layers_is_refused(tmp_path: Path) -> None:
    top = TopLayers(1)
    arrays = {f"encoder.layer.2.{k}": v.numpy().astype(np.float16) for k, v in top.top[0].state_dict().items()}
    np.savez(tmp_path / "minilm_top1.npz", **arrays)
    with pytest.raises(ValueError, match="top 1"):
        TopLayers.from_delta(tmp_path / "minilm_top1.npz")

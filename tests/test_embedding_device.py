"""Embedding classifier set-up: accelerator placement and a version that names the weights."""

from __future__ import annotations

import pytest
import torch

from classifiers import registry
from classifiers.base import ClassifierLoadError


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_cuda_device_without_gpu_is_a_load_error() -> None:
    """Asking for device cuda on a machine without CUDA fails at load with a reason, never silently."""
    with pytest.raises(ClassifierLoadError, match="no CUDA device"):
        registry.build("embedding", {"device": "cuda"})


def test_onnx_backend_refuses_an_accelerator() -> None:
    """The onnxruntime build is CPU-only, so onnx + a non-CPU device is refused by name."""
    with pytest.raises(ClassifierLoadError, match="CPU only"):
        registry.build("embedding", {"backend": "onnx", "device": "cuda"})


def test_version_names_the_weights() -> None:
    """The classifier version carries a digest of the shipped weights, so audit records tell retrains apart."""
    version = registry.build("embedding").version
    assert version.rsplit("+", 1)[-1].isalnum()
    assert len(version.rsplit("+", 1)[-1]) == 10

"""The embedding model can be placed on an accelerator; without one, that is a clear load error."""

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

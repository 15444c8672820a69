"""What the sidecar holds between requests: one Moderator per policy, the generator, the pools.

Built once in the app's lifespan. Everything that blocks (classifiers, decoding, generation) runs
on a thread pool; the event loop only parses, routes and waits.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from moderation.moderator import InputError, Moderator, validate_prompt
from moderation.policy import Policy, load_policy
from moderation.types import Decision
from service.auth import KeyRing, Principal
from service.batching import PromptBatcher
from service.errors import APIError
from service.limits import GenerationQueue
from service.metrics import Metrics
from service.settings import Settings

if TYPE_CHECKING:
    from moderation.pipeline import ModeratedPipeline, ModeratedPipelineOutput

log = structlog.get_logger("fluxwarden.service")

TINY_MODEL_ID = "flux-tiny-random"


@dataclass
class PolicyRuntime:
    """A policy's moderator, its prompt batcher and its view of the generator."""

    policy: Policy
    moderator: Moderator
    batcher: PromptBatcher
    guarded: ModeratedPipeline | None = None

    def policy_info(self) -> dict[str, str]:
        return {"id": self.policy.id, "version": self.policy.version, "sha256": self.policy.sha256}


class ServiceState:
    def __init__(self, settings: Settings, *, classifiers: Mapping[str, Any] | None = None) -> None:
        """`classifiers` maps policy classifier names to ready instances (operator plugins, test stand-ins)."""
        self.settings = settings
        self.metrics = Metrics()
        self.keyring = KeyRing(settings)
        self.queue = GenerationQueue(settings.generation_queue, self.metrics)
        self.executor = ThreadPoolExecutor(settings.moderation_threads, thread_name_prefix="fluxwarden-mod")
        self.gen_executor = ThreadPoolExecutor(1, thread_name_prefix="fluxwarden-gen")
        self._classifiers = dict(classifiers or {})
        self.runtimes: dict[str, PolicyRuntime] = {}
        self.tenant_policy: dict[str, str] = {}
        self.audit: Any | None = None
        self.pipe: Any | None = None
        self.model_id: str | None = None
        self.load_errors: dict[str, str | None] = {}
        self.loaded = False

    # --- start-up / shut-down ----------------------------------------------------------------
    def load(self) -> None:
        """Load policies, classifiers and the generator; raise on anything that makes serving unsafe."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        start = time.perf_counter()
        refs = self.settings.policy_refs()
        policies = {ref: load_policy(self.settings.resolve_policy(ref)) for ref in dict.fromkeys(refs.values())}
        self.audit = self._open_audit(policies.values())
        for ref, policy in policies.items():
            moderator = Moderator(policy, audit=self.audit, classifiers=self._classifiers)
            for name, error in moderator.preload().items():
                self.load_errors[f"{policy.id}:{name}"] = error
            batcher = PromptBatcher(
                self._checker(moderator),
                self.executor,
                window_s=self.settings.batch_window_ms / 1000,
                max_items=self.settings.batch_max_items,
                max_in_flight=self.settings.batch_max_in_flight,
                on_batch=self.metrics.batch_size.observe,
            )
            self.runtimes[ref] = PolicyRuntime(policy=policy, moderator=moderator, batcher=batcher)
        self.tenant_policy = refs
        if self.settings.generation_enabled:
            self._load_generator()
        default = self.runtimes[refs[""]].policy
        self.metrics.info.labels(
            self.model_id or "none", str(self.settings.tiny_model).lower(), default.id, default.sha256
        ).set(1)
        failed = {k: v for k, v in self.load_errors.items() if v}
        log.info(
            "service_loaded",
            policies=sorted(p.id for p in policies.values()),
            model=self.model_id or "none",
            tiny_random=self.settings.tiny_model,
            audit=str(self.settings.audit_dir) if self.audit is not None else None,
            load_errors=len(failed),
            seconds=round(time.perf_counter() - start, 2),
        )
        if self.settings.tiny_model:
            log.warning(
                "tiny_random_model",
                message="no FLUX weights configured: serving a tiny random pipeline, images are noise",
                hint="set --model /path/to/flux (a local diffusers folder)",
            )
        for name, error in failed.items():
            log.error("classifier_unavailable", classifier=name, error=error, effect="its checks fail closed (block)")
        self.loaded = True

    def _open_audit(self, policies: Any) -> Any:
        required = [p.id for p in policies if p.audit.required]
        if self.settings.audit_dir is None:
            if required:
                raise RuntimeError(
                    f"policy {required[0]!r} requires an audit log (audit.required: true): set --audit-dir "
                    "or FLUXWARDEN_AUDIT_DIR"
                )
            return None
        from audit import open_log

        return open_log(self.settings.audit_dir)

    def _load_generator(self) -> None:
        from moderation.pipeline import ModeratedPipeline, load_local_pipeline

        if self.settings.tiny_model:
            from moderation.testing import tiny_flux_pipeline

            self.pipe = tiny_flux_pipeline(seed=0, vae_scale=8)  # a 4-level VAE like the real model
            self.model_id = TINY_MODEL_ID
        else:
            self.pipe = load_local_pipeline(
                self.settings.model, device=self.settings.device, torch_dtype=self.settings.torch_dtype
            )
            self.model_id = Path(self.settings.model).name
        if hasattr(self.pipe, "set_progress_bar_config"):
            self.pipe.set_progress_bar_config(disable=True)
        for runtime in self.runtimes.values():
            runtime.guarded = ModeratedPipeline(self.pipe, runtime.moderator)

    def _checker(self, moderator: Moderator) -> Any:
        metrics = self.metrics

        def check(texts: Sequence[str], context: Mapping[str, Any] | None) -> list[Decision]:
            start = time.perf_counter()
            decisions = moderator.check_prompts(list(texts), context=context)
            metrics.stage_latency.labels("prompt").observe(time.perf_counter() - start)
            metrics.record_decisions(decisions)
            return decisions

        return check

    def close(self) -> None:
        for runtime in self.runtimes.values():
            runtime.moderator.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.gen_executor.shutdown(wait=False, cancel_futures=True)
        if self.audit is not None and hasattr(self.audit, "close"):
            self.audit.close()

    # --- per request -------------------------------------------------------------------------
    def runtime_for(self, principal: Principal) -> PolicyRuntime:
        return self.runtimes[self.tenant_policy[principal.policy_tenant]]

    def validate_text(self, text: object, runtime: PolicyRuntime, label: str) -> str:
        """The prompt if it may be checked, else a 400 that says which input and why."""
        try:
            if isinstance(text, str) and len(text) > self.settings.max_prompt_chars:
                raise InputError(
                    f"prompt is {len(text)} characters; this server allows at most {self.settings.max_prompt_chars}"
                )
            return validate_prompt(text, runtime.policy)
        except InputError as exc:
            raise APIError(400, f"{label}: {exc}", param=label, code="invalid_prompt") from None

    async def check_prompts(self, runtime: PolicyRuntime, texts: Sequence[str], principal: Principal) -> list[Decision]:
        """Micro-batched prompt checks under the request time limit (texts already validated)."""
        context = principal.audit_context() if runtime.moderator.audit is not None else None
        return await self._timed(runtime.batcher.check(texts, context or None), "prompt check")

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        """A blocking moderation call on the pool, under the request time limit; InputError -> 400."""
        loop = asyncio.get_running_loop()
        return await self._timed(loop.run_in_executor(self.executor, fn, *args), "check")

    async def _timed(self, awaitable: Any, what: str) -> Any:
        from audit import AuditWriteError

        try:
            return await asyncio.wait_for(awaitable, timeout=self.settings.request_timeout_s)
        except TimeoutError:
            raise APIError(
                504, f"{what} did not finish within {self.settings.request_timeout_s:g}s", code="timeout"
            ) from None
        except InputError as exc:
            raise APIError(400, str(exc), code="invalid_input") from None
        except AuditWriteError as exc:
            log.error("audit_write_failed", error=str(exc))
            raise APIError(
                503, "the audit log could not be written; request refused", code="audit_unavailable"
            ) from None

    async def generate(self, runtime: PolicyRuntime, **kwargs: Any) -> ModeratedPipelineOutput:
        """Run the moderated pipeline on the generation thread, one request at a time.

        Raises PromptBlockedError / InputError from the wrapper, QueueFullError (429) when the
        queue is full and a 504 when the request runs past `generation_timeout_s` (the device
        stays reserved until the abandoned generation actually ends).
        """
        assert runtime.guarded is not None
        deadline = time.monotonic() + self.settings.generation_timeout_s
        try:
            await asyncio.wait_for(self.queue.acquire(), timeout=self.settings.generation_timeout_s)
        except TimeoutError:
            raise APIError(504, "timed out waiting for the generator", code="timeout") from None
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        try:
            future = loop.run_in_executor(self.gen_executor, _generate, runtime.guarded, kwargs)
        except BaseException:
            self.queue.release(None)
            raise

        def done(fut: asyncio.Future[Any]) -> None:
            elapsed = time.monotonic() - start
            self.queue.release(elapsed if not fut.cancelled() and fut.exception() is None else None)
            self.metrics.stage_latency.labels("generation").observe(elapsed)

        future.add_done_callback(done)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise APIError(
                504, f"generation did not finish within {self.settings.generation_timeout_s:g}s", code="timeout"
            ) from None


def _generate(guarded: ModeratedPipeline, kwargs: dict[str, Any]) -> ModeratedPipelineOutput:
    import torch

    seed = kwargs.pop("seed")
    generator = torch.Generator("cpu").manual_seed(seed)
    return guarded(generator=generator, output_type="pil", **kwargs)

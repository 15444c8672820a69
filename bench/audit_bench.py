"""Audit log benchmark: write cost per event (fsync batch / always), query and verify at 1,000,000 events.

    .venv/bin/python bench/audit_bench.py                 # full run (1M events, ~1 GB in a temp dir)
    .venv/bin/python bench/audit_bench.py --events 100000 # quicker

Targets (issue): write <= 0.5 ms/event with fsync: batch (always reported too); `audit query`
over 1M events <= 1 s after indexing; `verify` over 1M events <= 30 s. Prints medians.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

import audit
from audit.events import AuditEvent, FlaggedCategory, InputRecord, PolicyRef, ReasonRecord
from audit.index import AuditIndex, Filters
from audit.verify import verify
from moderation.types import Action, Decision, Reason, Stage

CATEGORIES = ("sexual", "violence", "hate", "self-harm", "public-figure", "harassment")
TENANTS = tuple(f"tenant-{i}" for i in range(20))


def _decision(rng: random.Random) -> Decision:
    action = rng.choices(list(Action), weights=(80, 10, 4, 6))[0]
    cat = rng.choice(CATEGORIES)
    flagged = action is not Action.ALLOW
    return Decision(
        stage=rng.choice(list(Stage)),
        action=action,
        allowed=action is not Action.BLOCK,
        categories=(cat,) if flagged else (),
        category_scores={c: round(rng.random(), 3) for c in CATEGORIES},
        reasons=(
            (
                Reason(
                    code="threshold",
                    category=cat,
                    action=action,
                    rule=f"term:{cat}",
                    score=0.8,
                    threshold=0.5,
                    message=f"{cat} score 0.80 >= {action} threshold 0.50",
                ),
            )
            if flagged
            else ()
        ),
        policy_id="default",
        policy_version="2026.11.1",
        policy_sha256="ab" * 32,
        classifiers=("lexicon@3", "names@1", "minors@1", "embedding@minilm-1"),
        latency_ms=3.1,
    )


def bench_write(fsync: str, events: int, runs: int) -> tuple[float, float]:
    """Median and p99 of per-call latency of audit.record_decision (the full structlog path), in ms."""
    rng = random.Random(1)
    decisions = [_decision(rng) for _ in range(256)]
    per_call: list[float] = []
    run_means = []
    for _ in range(runs):
        directory = Path(tempfile.mkdtemp(prefix="fw-audit-w-"))
        try:
            with audit.AuditLog(directory, fsync=fsync) as log:
                t_run = time.perf_counter()
                for i in range(events):
                    t0 = time.perf_counter()
                    audit.record_decision(log, decisions[i % 256], input_text=f"prompt {i}", tenant="t")
                    per_call.append(time.perf_counter() - t0)
                run_means.append((time.perf_counter() - t_run) / events)
        finally:
            shutil.rmtree(directory)
    per_call.sort()
    return statistics.median(run_means) * 1e3, per_call[int(len(per_call) * 0.99)] * 1e3


def build_log(directory: Path, n: int) -> float:
    """n events spread over 30 days, written through AuditLog.write (chain, flock, checkpoints)."""
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / n
    t0 = time.perf_counter()
    with audit.AuditLog(directory, fsync="batch") as log:
        for i in range(n):
            d = _decision(rng)
            ts = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            log.write(
                AuditEvent(
                    ts=ts,
                    node="bench-node",
                    residency="eu-west",
                    tenant=rng.choice(TENANTS),
                    request_id=f"req-{i}",
                    key_id="key_1",
                    stage=d.stage.value,
                    action=d.action,
                    allowed=d.allowed,
                    decision_id=d.id,
                    flagged=tuple(
                        FlaggedCategory(category=c, score=0.8, threshold=0.5, action=d.action) for c in d.categories
                    ),
                    scores=d.category_scores,
                    reasons=tuple(
                        ReasonRecord(
                            code=r.code,
                            action=r.action,
                            category=r.category,
                            rule=r.rule,
                            score=r.score,
                            threshold=r.threshold,
                            message=r.message,
                        )
                        for r in d.reasons
                    ),
                    policy=PolicyRef(id="default", version="2026.11.1", sha256="ab" * 32),
                    input=InputRecord(kind="text", mode="hash", chars=40, salted_sha256=f"{i:064x}"),
                    latency_ms=3.1,
                )
            )
    return time.perf_counter() - t0


def timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the query/verify log")
    parser.add_argument("--write-events", type=int, default=5000, help="events per write run")
    parser.add_argument("--runs", type=int, default=5, help="repeats (medians are reported)")
    parser.add_argument("--verify-runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="build the big log here and keep it")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # quiet debug events

    print(f"# audit bench: python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for fsync in ("batch", "always"):
        median_ms, p99_ms = bench_write(fsync, args.write_events if fsync == "batch" else 1000, args.runs)
        print(f"write fsync={fsync:<6}  median {median_ms:.3f} ms/event   p99 {p99_ms:.3f} ms  (record_decision)")

    directory = args.keep or Path(tempfile.mkdtemp(prefix="fw-audit-big-"))
    try:
        build_s = build_log(directory, args.events)
        size = sum(p.stat().st_size for p in directory.glob("segment-*.jsonl"))
        print(f"built {args.events:,} events in {build_s:.1f} s ({size / 1e6:.0f} MB)")

        with AuditIndex(directory) as index:
            t0 = time.perf_counter()
            index.update()
            print(f"index build: {time.perf_counter() - t0:.1f} s")
        week = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        queries = {
            "block+sexual, last 7d": Filters(since=week, action="block", category="sexual"),
            "tenant-3, stage image": Filters(tenant="tenant-3", stage="image"),
            "all flags": Filters(action="flag"),
        }
        for name, flt in queries.items():

            def run(flt: Filters = flt) -> int:
                # what `fluxwarden audit query` does: open, catch up with the log, query, count
                with AuditIndex(directory) as idx:
                    idx.update()
                    rows = idx.query(flt, limit=100)
                    return idx.count(flt) if len(rows) == 100 else len(rows)

            median_s, total = timed(run, args.runs)
            print(f"query [{name}]: median {median_s * 1e3:.0f} ms  ({total:,} matching)")
        cli = [sys.executable, "-m", "moderation.cli", "audit", "query", "-d", str(directory)]
        cli += ["--action", "block", "--category", "sexual", "--since", "7d", "--limit", "100"]
        median_s, _ = timed(lambda: subprocess.run(cli, capture_output=True, check=True), args.runs)
        print(
            f"`fluxwarden audit query` as a new process (interpreter start-up included): median {median_s * 1e3:.0f} ms"
        )
        with AuditIndex(directory) as idx:
            median_s, rows = timed(lambda idx=idx: idx.stats(Filters()), args.runs)
        print(f"stats (day x action x category): median {median_s * 1e3:.0f} ms ({len(rows)} rows)")

        median_s, report = timed(lambda: verify(directory), args.verify_runs)
        print(
            f"verify: median {median_s:.1f} s  (ok={report.ok}, {report.records:,} records, "
            f"{report.segments} segments, {report.checkpoints} checkpoints)"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(directory)


if __name__ == "__main__":
    main()

"""Retention: delete whole old segments so that what remains still verifies.

Only a prefix of segments is removed (never the newest), each entirely older than the cutoff. Before
deleting, a signed `prune` entry in checkpoints.jsonl records where the remaining chain starts
(first seq and its `prev` hash) and which segments went, so the verifier starts from that anchor
instead of reporting the removal as tampering; a `retention` event in the log itself records that
the prune happened, who ran it (node) and what it removed. A log that does not verify is not
pruned unless forced: deleting evidence of tampering would be the wrong default.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.ages import format_ts
from audit.chain import RecordFormatError, open_record
from audit.files import Segment, fsync_dir, list_segments, read_tail
from audit.processors import audit_logger
from audit.sink import AuditLog, utc_now_iso
from audit.verify import verify


class PruneRefusedError(RuntimeError):
    """The log does not verify; pruning it could destroy evidence."""


@dataclass(frozen=True)
class PruneResult:
    cutoff: str
    removed: list[str] = field(default_factory=list)
    removed_records: int = 0
    first_seq: int | None = None
    dry_run: bool = False


def prune(
    directory: str | Path,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    force: bool = False,
    **log_options: Any,
) -> PruneResult:
    directory = Path(directory)
    if not force:
        report = verify(directory)
        if not report.ok:
            first = report.first_problem
            assert first is not None
            raise PruneRefusedError(
                f"the log does not verify ({first.kind} at {first.where}: {first.message}); "
                "refusing to prune — investigate, or pass --force"
            )
    cutoff = (now or datetime.now(UTC)) - older_than
    cutoff_iso = format_ts(cutoff)
    with AuditLog(directory, **log_options) as log:
        log.checkpoint()
        with log.exclusive():
            segments = list_segments(directory)
            removable = _removable(segments, cutoff_iso)
            if not removable:
                return PruneResult(cutoff=cutoff_iso, dry_run=dry_run)
            first_removed = _first_record(removable[0])
            keep_first = _first_record(segments[len(removable)])
            assert keep_first is not None  # _removable stops before a segment without records
            removed_records = keep_first.seq - (first_removed.seq if first_removed else keep_first.seq)
            result = PruneResult(
                cutoff=cutoff_iso,
                removed=[s.name for s in removable],
                removed_records=removed_records,
                first_seq=keep_first.seq,
                dry_run=dry_run,
            )
            if dry_run:
                return result
            log.sign_entry(
                {
                    "type": "prune",
                    "first_seq": keep_first.seq,
                    "prev": keep_first.prev,
                    "removed": result.removed,
                    "before": cutoff_iso,
                    "ts": utc_now_iso(),
                    "node": log.node,
                }
            )
            for seg in removable:
                seg.path.unlink()
            fsync_dir(directory)
        audit_logger(log).info(
            "retention",
            stage="audit",
            detail={
                "removed_segments": len(result.removed),
                "removed_records": removed_records,
                "first_seq": keep_first.seq,
                "before": cutoff_iso,
            },
        )
    return result


def _removable(segments: list[Segment], cutoff_iso: str) -> list[Segment]:
    """The longest prefix (excluding the newest segment) whose last event is older than the cutoff."""
    out: list[Segment] = []
    for seg, following in itertools.pairwise(segments):
        tail = read_tail(seg.path)
        try:
            last_ts = json.loads(tail.line)["ts"] if tail.line else None
        except (ValueError, KeyError):
            last_ts = None
        if last_ts is None or last_ts >= cutoff_iso or _first_record(following) is None:
            break
        out.append(seg)
    return out


def _first_record(seg: Segment) -> Any:
    with open(seg.path, "rb") as fh:
        for line in fh:
            try:
                return open_record(line)
            except RecordFormatError:
                continue
    return None

"""Verify an audit directory: every record's own hash, the chain, the order, and signed checkpoints.

One linear pass over the segments in order. What each finding means:
  edited        a record's bytes no longer match its hash, a line is not a record at all, the chain
                link to the previous record is broken, or a record differs from a signed checkpoint
  missing       sequence numbers are skipped (lines or whole segments deleted)
  reordered     a record appears after one with a higher sequence number (or twice)
  truncated     the log ends before a record that a valid checkpoint signed
  torn          the last line is incomplete (a writer died mid-write) and no writer has sealed it off
  bad_signature a checkpoint whose signature does not verify under the trusted public key
  unsigned      records exist but no valid checkpoint vouches for them
Torn writes that a later writer sealed off with a `recovery` event are reported as notices.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import GENESIS, RecordFormatError, open_record
from audit.checkpoints import line_hash, signature_ok
from audit.files import CHECKPOINT_FILE, list_segments
from audit.keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, fingerprint, load_public_key

PROBLEM_KINDS = ("edited", "missing", "reordered", "truncated", "torn", "bad_signature", "unsigned")


@dataclass
class Finding:
    kind: str
    where: str  # "segment-000001-20261124.jsonl:42" (line numbers are 1-based) or "checkpoints.jsonl:3"
    message: str
    seq: int | None = None
    order: tuple[int, int] = (1 << 30, 0)  # (segment index, line) for "first broken record"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "seq": self.seq, "message": self.message}


@dataclass
class VerifyReport:
    directory: Path
    records: int = 0
    segments: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    last_signed_seq: int | None = None
    key: str | None = None
    key_source: str | None = None
    problems: list[Finding] = field(default_factory=list)
    notices: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Finding | None:
        return min(self.problems, key=lambda f: f.order) if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        first = self.first_problem
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "records": self.records,
            "segments": self.segments,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "checkpoints": self.checkpoints,
            "last_signed_seq": self.last_signed_seq,
            "key": self.key,
            "key_source": self.key_source,
            "first_problem": first.as_dict() if first else None,
            "problems": [p.as_dict() for p in sorted(self.problems, key=lambda f: f.order)],
            "notices": [n.as_dict() for n in self.notices],
        }


@dataclass
class _Signed:
    checkpoints: dict[int, tuple[str, int, str]] = field(default_factory=dict)  # seq -> (hash, n, where)
    anchor_seq: int = 1
    anchor_prev: str = GENESIS
    pruned: set[str] = field(default_factory=set)  # segment names a signed prune entry removed


def verify(directory: str | Path, *, public_key: str | Path | None = None) -> VerifyReport:
    """Check the whole directory; never raises on tampering, only on an unusable directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"audit directory {directory} does not exist")
    report = VerifyReport(directory=directory)
    key = _trusted_key(directory, public_key, report)
    signed = _read_checkpoints(directory, key, report)
    _walk_segments(directory, signed, report)
    return report


def _trusted_key(directory: Path, pinned: str | Path | None, report: VerifyReport) -> Ed25519PublicKey | None:
    if pinned is not None:
        key = load_public_key(Path(pinned))
        report.key_source = f"pinned ({pinned})"
    elif (directory / PUBLIC_KEY_FILE).exists():
        key = load_public_key(directory / PUBLIC_KEY_FILE)
        report.key_source = f"log directory ({PUBLIC_KEY_FILE}; pin a copy kept elsewhere with --public-key)"
    elif (directory / PRIVATE_KEY_FILE).exists():
        from audit.keys import _read_private_key

        key = _read_private_key(directory / PRIVATE_KEY_FILE).public_key()
        report.key_source = f"log directory ({PRIVATE_KEY_FILE})"
    else:
        report.key_source = None
        return None
    report.key = fingerprint(key)
    return key


def _read_checkpoints(directory: Path, key: Ed25519PublicKey | None, report: VerifyReport) -> _Signed:
    signed = _Signed()
    path = directory / CHECKPOINT_FILE
    if not path.exists():
        return signed
    expected_n = 1
    prev_line_hash: str | None = GENESIS
    with open(path, "rb") as fh:
        lines = fh.readlines()
    for i, line in enumerate(lines, 1):
        where = f"{CHECKPOINT_FILE}:{i}"
        order = (1 << 29, i)
        try:
            entry = json.loads(line)
            n = int(entry["n"])
        except (ValueError, KeyError, TypeError):
            # A crash mid-append leaves a fragment; it vouches for nothing, and removing or garbling a
            # real entry still shows as a gap in `n` / `cp_prev` at the next entry.
            report.notices.append(Finding("torn", where, "not a checkpoint entry (interrupted write?); ignored"))
            continue
        if key is None:
            report.problems.append(
                Finding("bad_signature", where, "no public key to check checkpoint signatures", order=order)
            )
            break
        if not signature_ok(entry, key):
            why = (
                f"signed by a different key ({entry.get('key')}, trusted {report.key})"
                if entry.get("key") != report.key
                else "signature does not verify: the checkpoint was edited or forged"
            )
            report.problems.append(Finding("bad_signature", where, f"checkpoint n={n}: {why}", order=order))
            expected_n, prev_line_hash = n + 1, None  # the next entry's link is to the unforged original
            continue
        if n != expected_n or (prev_line_hash is not None and entry.get("cp_prev") != prev_line_hash):
            kind = "missing" if n > expected_n else "reordered"
            report.problems.append(
                Finding(
                    kind,
                    where,
                    f"checkpoint n={n} follows n={expected_n - 1}: checkpoint entries were "
                    f"{'removed' if kind == 'missing' else 'reordered or replayed'}",
                    order=order,
                )
            )
        expected_n, prev_line_hash = n + 1, line_hash(line)
        report.checkpoints += 1
        if entry.get("type") == "prune":
            signed.anchor_seq, signed.anchor_prev = int(entry["first_seq"]), str(entry["prev"])
            signed.pruned.update(str(name) for name in entry.get("removed", []))
            signed.checkpoints = {s: v for s, v in signed.checkpoints.items() if s >= signed.anchor_seq}
        else:
            seq = int(entry["seq"])
            signed.checkpoints[seq] = (str(entry["hash"]), n, where)
            report.last_signed_seq = max(report.last_signed_seq or 0, seq)
    return signed


_Fragment = tuple[str, int, str, tuple[int, int], bool]  # where, offset, sha256, order, newline-terminated


def _walk_segments(directory: Path, signed: _Signed, report: VerifyReport) -> None:
    walker = _ChainWalker(signed, report)
    segments = list_segments(directory)
    report.segments = len(segments)
    for si, seg in enumerate(segments):
        if seg.name in signed.pruned:
            report.notices.append(Finding("pruned", seg.name, "segment was pruned by retention but is still present"))
            continue
        offset = 0
        with open(seg.path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                start, offset = offset, offset + len(line)
                walker.line(seg.name, si, lineno, start, line)
    if walker.fragment is not None:
        _unacknowledged(walker.fragment, report)
    _check_tail(signed, report, walker.expected_seq - 1, walker.prev_where)


class _ChainWalker:
    """State of the single pass: the next expected seq and prev hash, gaps seen, a pending fragment."""

    def __init__(self, signed: _Signed, report: VerifyReport) -> None:
        self.report = report
        self.checkpoints = signed.checkpoints
        self.expected_seq, self.expected_prev = signed.anchor_seq, signed.anchor_prev
        self.prev_where = "start of log" if signed.anchor_seq == 1 else "the retention anchor"
        self.gaps: list[tuple[int, int, Finding]] = []
        self.fragment: _Fragment | None = None

    def line(self, segment: str, si: int, lineno: int, start: int, line: bytes) -> None:
        report = self.report
        try:
            rec = open_record(line)
        except RecordFormatError:
            if self.fragment is not None:
                _unacknowledged(self.fragment, report)
            complete = line.endswith(b"\n")
            digest = hashlib.sha256(line[:-1] if complete else line).hexdigest()
            self.fragment = (f"{segment}:{lineno}", start, digest, (si, lineno), complete)
            return
        if self.fragment is not None:
            if b'"kind":"recovery"' in line and _acknowledges(line, segment, self.fragment):
                report.notices.append(
                    Finding("torn", self.fragment[0], f"torn write sealed off by recovery event seq {rec.seq}")
                )
            else:
                _unacknowledged(self.fragment, report)
            self.fragment = None
        report.records += 1
        if report.first_seq is None:
            report.first_seq = rec.seq
        where, order = f"{segment}:{lineno}", (si, lineno)
        if not rec.valid:
            report.problems.append(
                Finding("edited", where, "record bytes do not match its hash (edited)", rec.seq, order)
            )
            self.expected_seq, self.expected_prev, self.prev_where = self.expected_seq + 1, rec.hash, where
            return
        if rec.seq < self.expected_seq:
            _out_of_order(rec.seq, where, order, self.gaps, report)
            return
        if rec.seq > self.expected_seq:
            self._gap(rec.seq, where, order)
        elif rec.prev != self.expected_prev:
            report.problems.append(
                Finding(
                    "edited",
                    self.prev_where,
                    f"chain broken: record seq {rec.seq} ({where}) commits to a different previous record "
                    f"than the one at {self.prev_where} (replaced or re-chained)",
                    rec.seq - 1,
                    order,
                )
            )
        hit = self.checkpoints.get(rec.seq)
        if hit is not None and hit[0] != rec.hash:
            report.problems.append(
                Finding(
                    "edited",
                    where,
                    f"record seq {rec.seq} differs from signed checkpoint n={hit[1]} ({hit[2]}): "
                    f"the log was rewritten after signing",
                    rec.seq,
                    order,
                )
            )
        self.expected_seq, self.expected_prev, self.prev_where = rec.seq + 1, rec.hash, where
        report.last_seq = rec.seq

    def _gap(self, seq: int, where: str, order: tuple[int, int]) -> None:
        first = self.expected_seq
        gone = f"record seq {first} is" if seq - 1 == first else f"records seq {first}..{seq - 1} are"
        finding = Finding(
            "missing", where, f"{gone} missing before this record (lines or segments deleted)", seq, order
        )
        self.report.problems.append(finding)
        self.gaps.append((first, seq - 1, finding))


def _acknowledges(line: bytes, segment: str, fragment: _Fragment) -> bool:
    try:
        detail = json.loads(line).get("detail") or {}
    except ValueError:
        return False
    return (
        detail.get("segment") == segment and detail.get("offset") == fragment[1] and detail.get("sha256") == fragment[2]
    )


def _unacknowledged(fragment: _Fragment, report: VerifyReport) -> None:
    where, _, _, order, complete = fragment
    if complete:
        report.problems.append(Finding("edited", where, "line is not a valid sealed record (edited)", None, order))
    else:
        report.problems.append(
            Finding(
                "torn",
                where,
                "last line is incomplete (a writer died mid-write); it is not accepted as a record — "
                "opening the log for writing seals it off with a recovery event",
                None,
                order,
            )
        )


def _out_of_order(
    seq: int, where: str, order: tuple[int, int], gaps: list[tuple[int, int, Finding]], report: VerifyReport
) -> None:
    for first, last, finding in gaps:
        if first <= seq <= last:
            finding.kind = "reordered"
            finding.message = f"records out of order: seq {seq} appears later, at {where}"
            return
    report.problems.append(Finding("reordered", where, f"record seq {seq} appears again or out of order", seq, order))


def _check_tail(signed: _Signed, report: VerifyReport, last_seq: int, last_where: str) -> None:
    beyond = [(seq, n, where) for seq, (_, n, where) in signed.checkpoints.items() if seq > last_seq]
    if beyond:
        seq, n, where = max(beyond)
        report.problems.append(
            Finding(
                "truncated",
                f"after {last_where}",
                f"the log ends at seq {last_seq} but checkpoint n={n} ({where}) signed seq {seq}: "
                f"records {last_seq + 1}..{seq} were cut off (tail truncated or last segment deleted)",
                last_seq + 1,
            )
        )
    if report.records and not signed.checkpoints and report.last_signed_seq is None:
        report.problems.append(
            Finding(
                "unsigned",
                CHECKPOINT_FILE,
                f"{report.records} records but no valid signed checkpoint: truncation cannot be ruled out",
            )
        )
    elif report.last_seq is not None and (report.last_signed_seq or 0) < report.last_seq:
        report.notices.append(
            Finding(
                "unsigned",
                CHECKPOINT_FILE,
                f"records after seq {report.last_signed_seq} are protected by the chain only "
                f"(no checkpoint yet; one is signed every N events and on close)",
            )
        )

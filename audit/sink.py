"""Where audit events go: the `AuditSink` protocol and `AuditLog`, the append-only file log.

Concurrency design — one shared file, serialised by `flock`. Every writer (thread or uvicorn
worker process) takes an exclusive `flock` on `DIR/.lock`, brings its view of the chain head up to
date (one `fstat`; the tail is re-read only when another process appended), appends one sealed
line with a single `write(2)`, and releases. We chose this over one file per process because it
gives a single total order and a single chain: "reordered" and "missing" mean the same thing to
every reviewer, verification is one linear pass, and a worker that dies leaves no orphan chain
that a checkpoint must vouch for. The cost — an uncontended `flock` and an `fstat` per event —
is a few microseconds (see bench/audit_bench.py).

Durability: `fsync="always"` calls `fdatasync` before `write()` returns, so an event whose call
returned survives power loss. `fsync="batch"` syncs every `batch_events` events or
`batch_interval_s` seconds (and at checkpoints and close); a killed *process* still loses nothing
that was written, only a machine crash can lose the unsynced tail, which the last checkpoint then
reports as truncated.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import structlog

from audit.chain import GENESIS, RecordFormatError, SealedRecord, open_record, seal
from audit.checkpoints import append_entry
from audit.events import AuditEvent
from audit.files import (
    CHECKPOINT_FILE,
    INPUTS_DIR,
    LOCK_FILE,
    Segment,
    fsync_dir,
    list_segments,
    parse_segment,
    read_tail,
    segment_name,
)
from audit.keys import load_or_create_salt, load_or_create_signing_key, salted_digest

FsyncMode = Literal["always", "batch"]
log = structlog.get_logger("fluxwarden.audit")


class AuditWriteError(RuntimeError):
    """An event could not be made durable; callers must treat the request as failed (fail closed)."""


@runtime_checkable
class AuditSink(Protocol):
    """Anything that can durably record an audit event and salt-hash inputs for it."""

    node: str | None
    residency: str | None

    def write(self, event: AuditEvent) -> str:
        """Record the event; return its id once it is as durable as the sink promises."""
        ...

    def salted_digest(self, data: bytes) -> str:
        """Keyed digest of an input, stable within one deployment."""
        ...


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Append-only, hash-chained JSON Lines log with signed checkpoints; safe across processes."""

    def __init__(
        self,
        directory: str | Path,
        *,
        fsync: FsyncMode = "batch",
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_daily: bool = True,
        node: str | None = None,
        residency: str | None = None,
        signing_key_path: str | Path | None = None,
        checkpoint_every: int = 1000,
        batch_events: int = 256,
        batch_interval_s: float = 0.25,
    ) -> None:
        if fsync not in ("always", "batch"):
            raise ValueError(f"fsync must be 'always' or 'batch', got {fsync!r}")
        if rotate_bytes < 4096:
            raise ValueError(f"rotate_bytes must be at least 4096, got {rotate_bytes}")
        if checkpoint_every < 1 or batch_events < 1:
            raise ValueError("checkpoint_every and batch_events must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(self.directory, os.W_OK):
            raise PermissionError(f"audit directory {self.directory} is not writable")
        self.fsync: FsyncMode = fsync
        self.rotate_bytes = rotate_bytes
        self.rotate_daily = rotate_daily
        self.checkpoint_every = checkpoint_every
        self.batch_events = batch_events
        self.batch_interval_s = batch_interval_s
        self.node = node or os.environ.get("FLUXWARDEN_AUDIT_NODE") or socket.gethostname()
        self.residency = residency or os.environ.get("FLUXWARDEN_AUDIT_RESIDENCY") or None
        self._salt = load_or_create_salt(self.directory)
        self._key = load_or_create_signing_key(
            self.directory, Path(signing_key_path) if signing_key_path is not None else None
        )
        self._mutex = threading.Lock()
        self._pid = -1
        self._lock_fd = -1
        self._fd: int | None = None
        self._segment: Segment | None = None
        self._offset = 0
        self._seq = 0
        self._hash = GENESIS
        self._pending = 0
        self._last_sync = time.monotonic()
        self._closed = False
        with self._locked():
            self._sync(_today())

    # --- public -------------------------------------------------------------------------
    def write(self, event: AuditEvent | Mapping[str, Any]) -> str:
        """Append one event; with fsync='always' it is on disk before this returns."""
        if not isinstance(event, AuditEvent):
            event = AuditEvent.model_validate(event)
        payload = event.model_dump_json(exclude_none=True).encode("utf-8")
        with self._locked():
            self._sync(_today())
            self._append(payload)
        return event.id

    def salted_digest(self, data: bytes) -> str:
        return salted_digest(self._salt, data)

    def store_input_file(self, data: bytes, sha256: str, suffix: str) -> str:
        """Keep an input file (only when the policy says `full`); returns its path in the directory."""
        folder = self.directory / INPUTS_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        name = f"{sha256}{suffix}"
        target = folder / name
        if not target.exists():
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return f"{INPUTS_DIR}/{name}"

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record this writer knows of."""
        return self._seq, self._hash

    def checkpoint(self) -> None:
        """Sign the current chain head now (also done every `checkpoint_every` events and on close)."""
        with self._locked():
            self._sync(_today())
            self._checkpoint()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the cross-process writer lock with the head up to date (retention); no write() inside."""
        with self._locked():
            self._sync(_today())
            yield

    def sign_entry(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append a signed entry to the checkpoint file; call only inside `exclusive()`."""
        self._flush()
        return append_entry(self.directory / CHECKPOINT_FILE, self._key, fields)

    def close(self) -> None:
        """Flush, sign a final checkpoint if events were added since the last one, release files."""
        with self._mutex:
            if self._closed:
                return
        with self._locked():
            self._sync(_today())
            if self._seq > _last_signed_seq(self.directory / CHECKPOINT_FILE):
                self._checkpoint()
            else:
                self._flush()
            self._closed = True
        with self._mutex:
            self._close_fds()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- locking ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            if self._closed:
                raise AuditWriteError(f"audit log {self.directory} is closed")
            if self._pid != os.getpid():  # first use, or we were forked: flock is per open file
                self._reopen_after_fork()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _reopen_after_fork(self) -> None:
        for inherited in (self._lock_fd, self._fd):
            if inherited is not None and inherited >= 0:
                os.close(inherited)
        self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        if self._fd is not None and self._segment is not None:
            self._fd = os.open(self._segment.path, os.O_WRONLY | os.O_APPEND)
        self._pid = os.getpid()

    def _close_fds(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # --- chain head ---------------------------------------------------------------------
    def _sync(self, day: str) -> None:
        """Make (segment, offset, seq, hash) describe the true end of the log; rotate if due."""
        if self._fd is not None and self._segment is not None:
            st = os.fstat(self._fd)
            if st.st_nlink == 0:  # our segment was removed under us
                os.close(self._fd)
                self._fd, self._segment = None, None
            else:
                if st.st_size != self._offset:
                    self._adopt(self._segment)
                if not self._rotation_due(day):
                    return
        segments = list_segments(self.directory)
        if segments and (self._segment is None or segments[-1].number != self._segment.number):
            self._open(segments[-1])
            if not self._rotation_due(day):
                return
        if self._segment is None:  # a fresh directory: the chain starts at genesis or a prune anchor
            self._seq, self._hash = _anchor_head(self.directory)
        self._create((segments[-1].number if segments else 0) + 1, day)

    def _rotation_due(self, day: str) -> bool:
        assert self._segment is not None
        if self._offset >= self.rotate_bytes:
            return True
        return self.rotate_daily and self._segment.day != day and self._offset > 0

    def _open(self, segment: Segment) -> None:
        if self._fd is not None:
            self._flush()
            os.close(self._fd)
        self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND)
        self._segment = segment
        self._adopt(segment)

    def _create(self, number: int, day: str) -> None:
        path = self.directory / segment_name(number, day)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
        fsync_dir(self.directory)
        if self._fd is not None:
            self._flush()  # the old segment's unsynced tail is synced before its handle goes
            os.close(self._fd)
        self._fd, self._segment, self._offset = fd, parse_segment(path), 0
        log.debug("audit_segment_opened", segment=path.name, seq=self._seq + 1)

    def _adopt(self, segment: Segment) -> None:
        """Read the head from the segment's end; seal off a torn last line left by a crashed writer."""
        tail = read_tail(segment.path)
        last = _last_record_in(segment.path, tail) or _head_before(self.directory, segment)
        self._seq, self._hash = (last.seq, last.hash) if isinstance(last, SealedRecord) else last
        self._offset = tail.size
        if tail.torn:
            self._recover_torn(segment, tail.size - len(tail.torn), tail.torn)

    def _recover_torn(self, segment: Segment, offset: int, torn: bytes) -> None:
        """Terminate the fragment and chain a `recovery` event naming it, in one write.

        The fragment stays in the file (the log is append-only); the verifier reports it as a
        torn write acknowledged by this event instead of accepting it silently.
        """
        import hashlib

        event = AuditEvent(
            kind="recovery",
            ts=utc_now_iso(),
            node=self.node,
            residency=self.residency,
            stage="audit",
            detail={
                "reason": "torn_write",
                "segment": segment.name,
                "offset": offset,
                "length": len(torn),
                "sha256": hashlib.sha256(torn).hexdigest(),
            },
        )
        seq = self._seq + 1
        line, digest = seal(seq, self._hash, event.model_dump_json(exclude_none=True).encode())
        self._write_all(b"\n" + line)
        self._offset += 1 + len(line)
        self._seq, self._hash = seq, digest
        self._flush()
        log.warning("audit_torn_write_recovered", segment=segment.name, offset=offset, length=len(torn))

    # --- appending ----------------------------------------------------------------------
    def _append(self, payload: bytes) -> None:
        seq = self._seq + 1
        line, digest = seal(seq, self._hash, payload)
        self._write_all(line)
        self._offset += len(line)
        self._seq, self._hash = seq, digest
        self._pending += 1
        if (
            self.fsync == "always"
            or self._pending >= self.batch_events
            or time.monotonic() - self._last_sync >= self.batch_interval_s
        ):
            self._flush()
        if seq % self.checkpoint_every == 0:
            self._checkpoint()

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._offset = -1  # force the next writer to re-read (and repair) the tail
            raise AuditWriteError(f"cannot append to {self._segment.name if self._segment else '?'}: {exc}") from exc

    def _flush(self) -> None:
        if self._fd is not None:
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                raise AuditWriteError(f"fsync of audit segment failed: {exc}") from exc
        self._pending = 0
        self._last_sync = time.monotonic()

    def _checkpoint(self) -> None:
        if self._seq == 0 or self._segment is None:
            return
        self._flush()
        append_entry(
            self.directory / CHECKPOINT_FILE,
            self._key,
            {
                "type": "checkpoint",
                "seq": self._seq,
                "hash": self._hash,
                "segment": self._segment.name,
                "ts": utc_now_iso(),
                "node": self.node,
            },
        )


def _today() -> str:
    return time.strftime("%Y%m%d", time.gmtime())


def _last_record_in(path: Path, tail: Any) -> SealedRecord | None:
    """The last sealed record of a segment (usually its last line; a full scan only after a crash)."""
    if tail.line is not None:
        with contextlib.suppress(RecordFormatError):
            return open_record(tail.line)
    last = None
    with open(path, "rb") as fh:
        for line in fh:
            if line.endswith(b"\n"):
                with contextlib.suppress(RecordFormatError):
                    last = open_record(line)
    return last


def _head_before(directory: Path, segment: Segment) -> tuple[int, str]:
    for earlier in reversed([s for s in list_segments(directory) if s.number < segment.number]):
        rec = _last_record_in(earlier.path, read_tail(earlier.path))
        if rec is not None:
            return rec.seq, rec.hash
    return _anchor_head(directory)


def _anchor_head(directory: Path) -> tuple[int, str]:
    """Head implied by the latest retention anchor (records before it were pruned), else genesis."""
    path = directory / CHECKPOINT_FILE
    head = (0, GENESIS)
    if path.exists():
        with open(path, "rb") as fh:
            for line in fh:
                with contextlib.suppress(ValueError, KeyError):
                    entry = json.loads(line)
                    if entry.get("type") == "prune":
                        head = (int(entry["first_seq"]) - 1, str(entry["prev"]))
    return head


def _last_signed_seq(path: Path) -> int:
    if not path.exists():
        return 0
    tail = read_tail(path)
    if tail.line is None:
        return 0
    try:
        entry = json.loads(tail.line)
    except ValueError:
        return 0
    if entry.get("type") == "prune":
        return int(entry.get("first_seq", 1)) - 1
    return int(entry.get("seq", 0))

"""Crashes and concurrent writers: nothing acknowledged is lost, torn writes are reported and sealed."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import audit
from audit.chain import open_record
from audit.verify import verify
from tests.audit.conftest import make_decision, only_segment, read_records, write_events

REPO = Path(__file__).resolve().parents[2]

_WRITER = textwrap.dedent(
    """
    import sys
    import audit
    from tests.audit.conftest import make_decision
    log = audit.AuditLog(sys.argv[1], fsync="always", checkpoint_every=7)
    i = 0
    while True:
        event_id = audit.record_decision(log, make_decision("block"), input_text=f"p{i}")
        print(event_id, flush=True)  # printed only after write() returned
        i += 1
    """
)


def test_sigkill_loses_no_acknowledged_event_and_writing_resumes(tmp_path: Path) -> None:
    """A writer killed with SIGKILL keeps every event whose call returned; a new writer continues the chain."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    acknowledged = []
    assert proc.stdout is not None
    while len(acknowledged) < 60:
        line = proc.stdout.readline()
        assert line, "writer exited early"
        if line.startswith("evt_"):  # other stdout lines are structlog's console output
            acknowledged.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    on_disk = {r["id"] for r in read_records(tmp_path)}
    assert len(acknowledged) == 60
    assert set(acknowledged) <= on_disk
    with audit.AuditLog(tmp_path) as log:
        before_seq, _ = log.head
        audit.record_decision(log, make_decision("allow"), input_text="after the crash")
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    assert report.last_seq == before_seq + 1


def test_torn_last_line_is_reported_not_accepted(tmp_path: Path) -> None:
    """A half-written last line (what a crash mid-write leaves) makes verify fail with 'torn'."""
    write_events(tmp_path, 8)
    seg = only_segment(tmp_path)
    whole = seg.read_bytes()
    first_line = whole.splitlines(keepends=True)[0]
    with open(seg, "ab") as fh:  # simulated crash: the prefix of a record, no newline
        fh.write(first_line[: len(first_line) // 2])
    report = verify(tmp_path)
    assert [(p.kind, p.where) for p in report.problems] == [("torn", f"{seg.name}:9")]


def test_writer_seals_off_torn_line_and_chain_stays_valid(tmp_path: Path) -> None:
    """Reopening after a torn write appends a recovery event chained to the last good record."""
    write_events(tmp_path, 8)
    seg = only_segment(tmp_path)
    last_good = open_record(seg.read_bytes().splitlines(keepends=True)[-1])
    with open(seg, "ab") as fh:
        fh.write(b'{"seq":9,"prev":"' + last_good.hash.encode() + b'","v":1,"ki')
    write_events(tmp_path, 2)
    records = read_records(tmp_path)
    recovery = next(r for r in records if r["kind"] == "recovery")
    assert recovery["seq"] == 9
    assert recovery["prev"] == last_good.hash
    assert recovery["detail"]["reason"] == "torn_write"
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    assert [n.kind for n in report.notices] == ["torn"]


def _write_from_process(directory: str, worker: int, n: int) -> None:
    with audit.AuditLog(directory, rotate_bytes=16384, checkpoint_every=50) as log:
        for i in range(n):
            audit.record_decision(log, make_decision("flag"), input_text=f"w{worker}-{i}", tenant=f"worker-{worker}")


def test_four_concurrent_processes_leave_a_verifiable_log(tmp_path: Path) -> None:
    """Four processes appending (and rotating) at once produce one gap-free, verifiable chain."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_from_process, args=(str(tmp_path), w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    records = read_records(tmp_path)
    assert [r["seq"] for r in records] == list(range(1, 601))
    assert {r["tenant"] for r in records} == {f"worker-{w}" for w in range(4)}
    assert report.segments > 1


def test_fsync_always_syncs_before_write_returns(tmp_path: Path, monkeypatch) -> None:
    """With fsync='always' every write() calls fdatasync on the segment before returning."""
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    with audit.AuditLog(tmp_path, fsync="always") as log:
        for i in range(5):
            audit.record_decision(log, make_decision(), input_text=str(i))
            assert len(calls) == i + 1


def test_fsync_batch_syncs_every_n_events(tmp_path: Path, monkeypatch) -> None:
    """With fsync='batch' the log syncs once per batch, not per event."""
    calls: list[int] = []
    monkeypatch.setattr(os, "fdatasync", calls.append)
    log = audit.AuditLog(tmp_path, fsync="batch", batch_events=10, batch_interval_s=3600)
    for i in range(25):
        audit.record_decision(log, make_decision(), input_text=str(i))
    assert len(calls) == 2
    log.close()


def test_rotation_chains_across_segments(tmp_path: Path) -> None:
    """The first record of a new segment links to the last record of the previous one."""
    write_events(tmp_path, 40, rotate_bytes=8192)
    segments = sorted(tmp_path.glob("segment-*.jsonl"))
    assert len(segments) > 1
    last = open_record(segments[0].read_bytes().splitlines()[-1])
    first = open_record(segments[1].read_bytes().splitlines()[0])
    assert (first.seq, first.prev) == (last.seq + 1, last.hash)


def test_daily_rotation_opens_a_new_segment_per_utc_day(tmp_path: Path, monkeypatch) -> None:
    """When the UTC day changes, the next event goes to a segment named for the new day."""
    import audit.sink

    monkeypatch.setattr(audit.sink, "_today", lambda: "20261124")
    log = audit.AuditLog(tmp_path)
    audit.record_decision(log, make_decision(), input_text="monday")
    monkeypatch.setattr(audit.sink, "_today", lambda: "20261125")
    audit.record_decision(log, make_decision(), input_text="tuesday")
    log.close()
    names = sorted(p.name for p in tmp_path.glob("segment-*.jsonl"))
    assert names == ["segment-000001-20261124.jsonl", "segment-000002-20261125.jsonl"]
    assert verify(tmp_path).ok


def test_reopened_log_continues_the_sequence(tmp_path: Path) -> None:
    """A second writer session appends after the first with consecutive sequence numbers."""
    write_events(tmp_path, 3)
    write_events(tmp_path, 3)
    assert [r["seq"] for r in read_records(tmp_path)] == [1, 2, 3, 4, 5, 6]
    assert json.loads((tmp_path / "checkpoints.jsonl").read_text().splitlines()[-1])["seq"] == 6


def _write_with_inherited_log(log: audit.AuditLog, n: int) -> None:
    for i in range(n):
        audit.record_decision(log, make_decision("allow"), input_text=f"child {i}")
    log.close()


def test_log_opened_before_fork_stays_safe_in_both_processes(tmp_path: Path) -> None:
    """A log object inherited across fork re-opens its lock, so parent and child still serialise."""
    ctx = multiprocessing.get_context("fork")
    log = audit.AuditLog(tmp_path)
    audit.record_decision(log, make_decision(), input_text="parent first")
    child = ctx.Process(target=_write_with_inherited_log, args=(log, 100))
    child.start()
    for i in range(100):
        audit.record_decision(log, make_decision(), input_text=f"parent {i}")
    child.join(30)
    log.close()
    assert child.exitcode == 0
    assert [r["seq"] for r in read_records(tmp_path)] == list(range(1, 202))
    assert verify(tmp_path).ok


def test_torn_checkpoint_line_is_sealed_and_signing_continues(tmp_path: Path) -> None:
    """A crash while appending a checkpoint leaves a fragment that later writers step over."""
    write_events(tmp_path, 3)
    with open(tmp_path / "checkpoints.jsonl", "ab") as fh:
        fh.write(b'{"cp_prev":"ab')
    write_events(tmp_path, 3)
    write_events(tmp_path, 3)
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    assert report.last_signed_seq == 9
    assert [n.kind for n in report.notices] == ["torn"]

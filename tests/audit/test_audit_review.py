"""The review side: SQLite index, the `fluxwarden audit` commands, and retention."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import audit
from audit.ages import parse_age
from audit.chain import open_record
from audit.cli import app
from audit.index import AuditIndex, Filters
from audit.retention import PruneRefusedError, prune
from audit.verify import verify
from tests.audit.conftest import make_decision, only_segment, read_records, write_events

runner = CliRunner()


def _mixed_log(directory: Path) -> list[str]:
    ids = []
    with audit.AuditLog(directory) as log:
        for i in range(12):
            action = ("allow", "flag", "block")[i % 3]
            ids.append(
                audit.record_decision(
                    log,
                    make_decision(action, stage="prompt" if i < 8 else "image"),
                    input_text="p" if i < 8 else None,
                    image_sha256=None if i < 8 else "ab" * 32,
                    tenant="acme" if i % 2 else "globex",
                )
            )
    return ids


def test_query_filters_by_action_tenant_stage_and_category(tmp_path: Path) -> None:
    """Index queries combine filters the way a reviewer expects."""
    _mixed_log(tmp_path)
    with AuditIndex(tmp_path) as index:
        index.update()
        assert index.count(Filters(action="block")) == 4
        assert index.count(Filters(action="block", tenant="acme")) == 2
        assert index.count(Filters(stage="image")) == 4
        assert index.count(Filters(category="sexual")) == 8
        assert index.count(Filters(category="violence")) == 0


def test_index_catches_up_incrementally(tmp_path: Path) -> None:
    """Events appended after indexing are picked up by the next update, and only those."""
    write_events(tmp_path, 5)
    with AuditIndex(tmp_path) as index:
        assert index.update().added == 5
        write_events(tmp_path, 3)
        stats = index.update()
        assert (stats.added, index.total()) == (3, 8)


def test_index_reindexes_a_rewritten_segment(tmp_path: Path) -> None:
    """A segment that shrank (e.g. tampered) is re-read from scratch rather than trusted."""
    write_events(tmp_path, 6)
    with AuditIndex(tmp_path) as index:
        index.update()
        seg = only_segment(tmp_path)
        seg.write_bytes(b"".join(seg.read_bytes().splitlines(keepends=True)[:4]))
        stats = index.update()
        assert (stats.reindexed_segments, index.total()) == (1, 4)


def test_verify_command_exits_zero_when_intact(tmp_path: Path) -> None:
    """`audit verify DIR` exits 0 and says OK for an untouched log."""
    write_events(tmp_path, 4)
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 0
    assert "OK: the log is intact" in result.output


def test_verify_command_names_the_first_broken_record(tmp_path: Path) -> None:
    """`audit verify` exits 1 and names the first broken record and what is wrong with it."""
    write_events(tmp_path, 6)
    seg = only_segment(tmp_path)
    lines = seg.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"allowed":true', b'"allowed":fals', 1)
    seg.write_bytes(b"".join(lines))
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 1
    assert f"BROKEN: first problem: edited at {seg.name}:3" in result.output


def test_verify_command_reports_json(tmp_path: Path) -> None:
    """`audit verify --format json` gives a machine-readable report."""
    write_events(tmp_path, 2)
    result = runner.invoke(app, ["verify", str(tmp_path), "--format", "json"])
    assert json.loads(result.output)["ok"] is True


def test_query_command_outputs_json_rows(tmp_path: Path) -> None:
    """`audit query --format json` lists matching events with their ids."""
    ids = _mixed_log(tmp_path)
    result = runner.invoke(app, ["query", "-d", str(tmp_path), "--action", "flag", "--format", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == [ids[i] for i in range(12) if i % 3 == 1]


def test_query_command_rejects_unknown_category(tmp_path: Path) -> None:
    """An unknown category is a usage error listing valid ones, not an empty result."""
    write_events(tmp_path, 1)
    result = runner.invoke(app, ["query", "-d", str(tmp_path), "--category", "sexy"])
    assert result.exit_code == 2
    assert "valid categories" in result.output


def test_query_since_until_bound_the_time_window(tmp_path: Path) -> None:
    """--since/--until accept dates and relative ages and bound results in UTC."""
    write_events(tmp_path, 3)
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    none_yet = runner.invoke(app, ["query", "-d", str(tmp_path), "--since", future, "--format", "json"])
    recent = runner.invoke(app, ["query", "-d", str(tmp_path), "--since", "1h", "--until", future, "--format", "json"])
    assert json.loads(none_yet.output) == []
    assert len(json.loads(recent.output)) == 3


def test_show_command_prints_the_logged_record(tmp_path: Path) -> None:
    """`audit show EVENT_ID` prints the record from the log, hashes included."""
    ids = _mixed_log(tmp_path)
    result = runner.invoke(app, ["show", ids[5], "-d", str(tmp_path)])
    assert result.exit_code == 0
    record = json.loads(result.output)
    assert record["id"] == ids[5]
    assert len(record["hash"]) == 64


def test_stats_command_counts_per_day_action_category(tmp_path: Path) -> None:
    """`audit stats` counts events per day x action x category."""
    _mixed_log(tmp_path)
    result = runner.invoke(app, ["stats", "-d", str(tmp_path), "--format", "json"])
    rows = {(r["action"], r["category"]): r["count"] for r in json.loads(result.output)}
    assert rows == {("allow", "-"): 4, ("flag", "sexual"): 4, ("block", "sexual"): 4}


def test_export_jsonl_lines_are_sealed_records(tmp_path: Path) -> None:
    """A JSONL export contains the log's own lines, each still matching its hash."""
    log_dir = tmp_path / "log"
    _mixed_log(log_dir)
    out = tmp_path / "review.jsonl"
    result = runner.invoke(app, ["export", "-d", str(log_dir), "--action", "block", "--out", str(out)])
    assert result.exit_code == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == 4
    assert all(open_record(line).valid for line in lines)


def test_export_csv_has_one_row_per_event(tmp_path: Path) -> None:
    """A CSV export flattens flagged categories, rules, policy and input digest for spreadsheets."""
    log_dir = tmp_path / "log"
    _mixed_log(log_dir)
    out = tmp_path / "review.csv"
    runner.invoke(app, ["export", "-d", str(log_dir), "--out", str(out)])
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12
    assert rows[2]["flagged"] == "sexual=0.91>=0.5:block"
    assert rows[2]["policy_sha256"].startswith("c0ffee")


def test_prune_removes_old_segments_and_the_rest_still_verifies(tmp_path: Path) -> None:
    """Pruning deletes whole old segments, leaves a signed anchor, and verify stays green."""
    write_events(tmp_path, 60, rotate_bytes=8192)
    before = len(list(tmp_path.glob("segment-*.jsonl")))
    result = prune(tmp_path, timedelta(days=90), now=datetime.now(UTC) + timedelta(days=91), rotate_bytes=8192)
    assert len(result.removed) == before - 1
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    assert report.first_seq == result.first_seq
    assert read_records(tmp_path)[-1]["kind"] == "retention"


def test_prune_keeps_recent_segments(tmp_path: Path) -> None:
    """Nothing newer than the cutoff is removed."""
    write_events(tmp_path, 60, rotate_bytes=8192)
    assert prune(tmp_path, timedelta(days=90)).removed == []


def test_prune_refuses_a_log_that_does_not_verify(tmp_path: Path) -> None:
    """A tampered log is not pruned (that could destroy the evidence) unless forced."""
    write_events(tmp_path, 10)
    seg = only_segment(tmp_path)
    seg.write_bytes(b"".join(seg.read_bytes().splitlines(keepends=True)[:-2]))
    with pytest.raises(PruneRefusedError, match="truncated"):
        prune(tmp_path, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=5))


def test_deleting_a_segment_after_prune_is_still_detected(tmp_path: Path) -> None:
    """After a prune, removing a remaining segment is still reported as missing records."""
    write_events(tmp_path, 90, rotate_bytes=8192)
    prune(tmp_path, timedelta(days=90), now=datetime.now(UTC) + timedelta(days=91), rotate_bytes=8192)
    write_events(tmp_path, 60, rotate_bytes=8192)
    segments = sorted(tmp_path.glob("segment-*.jsonl"))
    segments[1].unlink()
    assert verify(tmp_path).first_problem.kind == "missing"


def test_parse_age_rejects_ambiguous_values() -> None:
    """Retention ages need a unit; '90' alone is an error, not 90 seconds."""
    assert parse_age("90d") == timedelta(days=90)
    with pytest.raises(ValueError, match="90d"):
        parse_age("90")

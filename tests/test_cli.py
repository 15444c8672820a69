"""The command line: exit codes, JSON output, batch checks, policy tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moderation.cli import app
from tests.conftest import RULES_ONLY_POLICY

runner = CliRunner()


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_ONLY_POLICY)
    return str(path)


def test_benign_prompt_exits_zero(policy_file: str) -> None:
    """An allowed prompt prints allow and exits 0."""
    result = runner.invoke(app, ["check", "prompt", "a watercolor of a lighthouse at dawn", "-p", policy_file])
    assert result.exit_code == 0 and result.stdout.startswith("allow")


def test_blocked_prompt_exits_one_with_reason(policy_file: str) -> None:
    """A blocked prompt exits 1 and names the classifier and matched term."""
    result = runner.invoke(app, ["check", "prompt", "a n.u.d.e woman on a beach", "-p", policy_file])
    assert result.exit_code == 1 and "block" in result.stdout and "lexicon" in result.stdout


def test_json_output_is_a_decision(policy_file: str) -> None:
    """--json prints the full decision."""
    result = runner.invoke(app, ["check", "prompt", "a red apple", "-p", policy_file, "--json"])
    data = json.loads(result.stdout)
    assert data["action"] == "allow" and data["policy_id"] == "rules-only"


def test_empty_prompt_exits_two(policy_file: str) -> None:
    """An empty prompt is an input error (exit 2) with a message."""
    result = runner.invoke(app, ["check", "prompt", "  ", "-p", policy_file])
    assert result.exit_code == 2 and "empty" in result.stderr


def test_bad_policy_exits_two_with_position(tmp_path: Path) -> None:
    """A broken policy file exits 2 and prints file:line:col."""
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nextends: default\nprompt:\n  categories:\n    sexual/minors: {block: 0.9}\n")
    result = runner.invoke(app, ["check", "prompt", "a cat", "-p", str(path)])
    assert result.exit_code == 2 and f"{path}:5:" in result.stderr


def test_batch_keeps_ids_and_reports_bad_lines(tmp_path: Path, policy_file: str) -> None:
    """check prompts writes one decision per good line with its id, reports bad lines and exits 2."""
    lines = [
        json.dumps({"id": "a", "text": "a lighthouse"}),
        "{not json",
        json.dumps({"id": "b", "text": "p0rn"}),
        json.dumps({"id": "c", "text": "bad\u0000nul"}),
        json.dumps({"id": "d"}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "e", "text": "\xff"}\n')
    result = runner.invoke(app, ["check", "prompts", "--jsonl", str(path), "-p", policy_file])
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["action"]) for o in out] == [("a", "allow"), ("b", "block")]
    assert f"{path}:2:" in result.stderr and f"{path}:4:" in result.stderr and f"{path}:5:" in result.stderr
    assert f"{path}:6:" in result.stderr and result.exit_code == 2


def test_batch_record_has_the_documented_fields(tmp_path: Path, policy_file: str) -> None:
    """Each batch line carries id, action, allowed, categories, category_scores, reasons."""
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": 7, "text": "a nude statue"}) + "\n")
    result = runner.invoke(app, ["check", "prompts", "--jsonl", str(path), "-p", policy_file])
    record = json.loads(result.stdout)
    assert {"id", "action", "allowed", "categories", "category_scores", "reasons"} <= record.keys()
    assert result.exit_code == 0


def test_policy_validate_ok() -> None:
    """validate prints the policy id and sha256 for a good file."""
    result = runner.invoke(app, ["policy", "validate", "default"])
    assert result.exit_code == 0 and "sha256" in result.stdout


def test_policy_validate_typo(tmp_path: Path) -> None:
    """validate reports a typo'd key with file:line:col and the field."""
    path = tmp_path / "p.yaml"
    path.write_text("id: x\nextends: default\nimage:\n  blocked_outptu: drop\n")
    result = runner.invoke(app, ["policy", "validate", str(path)])
    assert result.exit_code == 2 and f"{path}:4:3: image.blocked_outptu" in result.stderr


def test_policy_schema_is_json() -> None:
    """schema prints a JSON Schema document."""
    result = runner.invoke(app, ["policy", "schema"])
    assert json.loads(result.stdout)["title"] == "fluxwarden policy"


def test_policy_test_reports_failures(tmp_path: Path, policy_file: str) -> None:
    """policy test exits 1 and names the failing case."""
    cases = tmp_path / "x.cases.yaml"
    cases.write_text(
        f"policy: {policy_file}\ncases:\n"
        "  - {name: benign, prompt: a red apple, expect: allow}\n"
        "  - {name: wrong, prompt: a nude woman, expect: allow}\n"
    )
    result = runner.invoke(app, ["policy", "test", str(cases)])
    assert result.exit_code == 1 and "FAIL wrong" in result.stdout and "1 passed, 1 failed" in result.stdout


def test_help_loads_no_models() -> None:
    """fluxwarden --help answers in a fresh process without importing torch (bench/cli_startup.py times it)."""
    code = "import sys; from moderation.cli import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    help_run = subprocess.run([sys.executable, "-m", "moderation.cli", "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0 and "check" in help_run.stdout


def test_subprocess_exit_codes(policy_file: str) -> None:
    """As a real process, allow exits 0 and block exits 1."""
    cmd = [sys.executable, "-m", "moderation.cli", "check", "prompt", "-p", policy_file]
    assert subprocess.run([*cmd, "a lighthouse"], capture_output=True).returncode == 0
    assert subprocess.run([*cmd, "s3x on the beach"], capture_output=True).returncode == 1

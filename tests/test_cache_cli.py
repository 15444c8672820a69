"""`fluxwarden cache`: stale derived files go, what this install loads and foreign files stay."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifiers.embedding import HEAD_FILE, assets_dir
from moderation.cache_cli import TMP_GRACE_S, in_use
from moderation.cli import app

runner = CliRunner()
STALE = [
    "minilm-l6-0123456789abcdef.onnx",
    "minilm-l6-0123456789abcdef.onnx.lock",
    "minilm-l6-0123456789abcdef-ort-fused.onnx",
    "minilm-l6-0123456789abcdef.4242.tmp",
    "py3langid-00000000deadbeef.npz",
]
FOREIGN = ["notes.txt", "minilm-l6-handmade.onnx", "other-tool.npz"]
EXPORTING = "minilm-l6-fedcba9876543210.777.tmp"  # another process's export in progress


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLUXWARDEN_CACHE_DIR", str(tmp_path))
    for name in [*STALE, *FOREIGN, *in_use(), EXPORTING]:
        (tmp_path / name).write_bytes(b"x" * 1000)
    old = time.time() - 2 * TMP_GRACE_S
    os.utime(tmp_path / STALE[3], (old, old))
    return tmp_path


def test_the_installed_heads_graphs_and_the_language_copy_are_in_use(cache: Path) -> None:
    names = in_use()
    assert any(n.endswith("-ort-fused.onnx") for n in names) and any(n.startswith("py3langid-") for n in names)
    assert not names & set(STALE)


def test_prune_removes_only_stale_files_fluxwarden_wrote(cache: Path) -> None:
    kept = in_use()
    dry = runner.invoke(app, ["cache", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert all((cache / name).exists() for name in STALE)
    assert all(f"would remove {name}" in dry.output for name in STALE)

    done = runner.invoke(app, ["cache", "prune"])
    assert done.exit_code == 0, done.output
    left = {p.name for p in cache.iterdir()}
    assert left == kept | set(FOREIGN) | {EXPORTING}
    assert "freed 0.0 MB" in done.output  # five 1 kB files: rounds to 0.0 MB


def test_a_kept_head_keeps_its_graphs(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """An operator's own head (a policy's head_path) is named with --keep-head; its graphs stay."""
    other = tmp_path_factory.mktemp("head")
    for name in (HEAD_FILE, "minilm_top1.npz", "word_toxicity.npz"):
        shutil.copy(assets_dir() / name, other / name)
    delta = other / "minilm_top1.npz"
    delta.write_bytes(delta.read_bytes() + b"retrained")  # another delta: another export key
    extra = in_use([other / HEAD_FILE]) - in_use()
    assert len(extra) == 4  # plain, fused and their locks
    for name in extra:
        (cache / name).write_bytes(b"x")
    result = runner.invoke(app, ["cache", "prune", "--keep-head", str(other / HEAD_FILE)])
    assert result.exit_code == 0, result.output
    assert all((cache / name).exists() for name in extra)
    runner.invoke(app, ["cache", "prune"])
    assert not any((cache / name).exists() for name in extra)


def test_show_marks_what_is_in_use(cache: Path) -> None:
    result = runner.invoke(app, ["cache", "show"])
    assert result.exit_code == 0, result.output
    for name in in_use():
        assert any(line.startswith("in use") and line.endswith(name) for line in result.output.splitlines())
    assert any(line.startswith("stale") and line.endswith(STALE[0]) for line in result.output.splitlines())
    assert any(line.startswith("busy") and line.endswith(EXPORTING) for line in result.output.splitlines())
    assert "notes.txt" not in result.output


def test_a_head_that_does_not_load_is_a_usage_error(cache: Path) -> None:
    result = runner.invoke(app, ["cache", "prune", "--keep-head", str(cache / "missing.npz")])
    assert result.exit_code == 2
    assert all((cache / name).exists() for name in STALE)

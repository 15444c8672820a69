"""The packaged embedding head works from an installed wheel, not only from the source tree, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter outside the repo: sockets refuse to connect before anything is imported.
_PROBE = r"""
import json, socket, sys

def _refuse(*args, **kwargs):
    raise OSError("network disabled by test")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse

import classifiers
from classifiers.embedding import EmbeddingClassifier
from moderation.normalise import normalise

clf = EmbeddingClassifier.from_options({"backend": "torch", "threads": 1})
(benign, explicit) = clf.classify([normalise("a bowl of fruit on a table"), normalise("naked woman having sex, porn")])
print(json.dumps({"file": classifiers.__file__, "version": clf.version,
                  "benign": benign.scores["sexual"], "explicit": explicit.scores["sexual"]}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        cwd=out,
        capture_output=True,
    )
    (path,) = out.glob("fluxwarden-*.whl")
    return path


def test_wheel_contains_the_head_weights(wheel: Path) -> None:
    """The built wheel carries the head and the word model it stacks as package data."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "classifiers/assets/prompt_head.npz" in names
    assert "classifiers/assets/word_toxicity.npz" in names


def test_installed_wheel_classifies_with_networking_disabled(wheel: Path, tmp_path: Path) -> None:
    """Installed from the wheel into a clean target and run outside the repo with sockets refused, the head loads and scores."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).resolve().is_relative_to(target.resolve())
    assert result["explicit"] > 0.5 > result["benign"]

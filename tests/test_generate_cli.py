"""`fluxwarden generate`: moderated generation to PNGs with decision sidecars and provenance marks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from moderation.generate_cli import DIGITAL_SOURCE_TYPE, generate
from tests.conftest import RULES_ONLY_POLICY
from tests.test_pipeline import SecondImageStandIn  # registers the stand-in image classifier

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--size", "64x64", "--seed", "7"]

app = typer.Typer()
app.command()(generate)
runner = CliRunner()

DROP_SECOND_POLICY = f"""
id: drop-second
extends: default
prompt:
  classifiers: [{{name: lexicon}}, {{name: names}}, {{name: minors}}]
  languages: {{other: allow}}  # rules-only prompt stage, no language classifier (tests/test_language.py)
image:
  classifiers: [{{name: {SecondImageStandIn.name}, options: {{score: 0.95}}}}]
  blocked_output: drop
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_ONLY_POLICY)
    return str(path)


def _run(*args: str) -> typer.testing.Result:
    return runner.invoke(app, list(args))


def _sidecars(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def test_generate_writes_png_and_decision_on_a_fresh_checkout(tmp_path: Path) -> None:
    """The README command, run as a process with the default policy, writes one PNG and its decision JSON."""
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "moderation.cli", "generate", "a lighthouse at dawn", "--model", "tiny"]
    proc = subprocess.run(
        [*cmd, "--out", str(out), *SMALL], capture_output=True, text=True, cwd=REPO, env=env, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    (png,) = out.glob("*.png")
    (sidecar,) = _sidecars(out)
    assert sidecar["file"] == png.name
    assert sidecar["decision"]["stage"] == "image"
    assert sidecar["decision"]["policy_id"] == "default"


def test_blocked_prompt_exits_one_with_reasons_and_writes_nothing(tmp_path: Path, rules_file: str) -> None:
    """A blocked prompt exits 1, prints why, and leaves the output directory empty."""
    out = tmp_path / "out"
    result = _run("a nude woman on a beach", "--policy", rules_file, "--out", str(out), *SMALL)
    assert result.exit_code == 1
    assert "blocked" in result.stderr
    assert "sexual" in result.stderr
    assert list(out.iterdir()) == []


def test_png_carries_ai_generated_marker_with_decision_id(tmp_path: Path, rules_file: str) -> None:
    """The PNG's text chunks, XMP and EXIF mark it AI-generated and name its decision."""
    result = _run("a lighthouse at dawn", "--policy", rules_file, "--out", str(tmp_path), *SMALL)
    assert result.exit_code == 0, result.output
    (png,) = tmp_path.glob("*.png")
    (sidecar,) = _sidecars(tmp_path)
    with Image.open(png) as image:
        text, exif = dict(image.text), image.getexif()
    assert text["AI-Generated"] == "true"
    assert text["fluxwarden:decision_id"] == sidecar["decision"]["id"]
    assert DIGITAL_SOURCE_TYPE in text["XML:com.adobe.xmp"]
    assert sidecar["decision"]["id"] in exif[0x010E]


def test_sidecar_keeps_a_prompt_hash_not_the_prompt(tmp_path: Path, rules_file: str) -> None:
    """Under store_inputs: hash the sidecar holds the prompt's SHA-256, never its text."""
    _run("a lighthouse at dawn", "--policy", rules_file, "--out", str(tmp_path), *SMALL)
    (sidecar,) = _sidecars(tmp_path)
    assert "prompt" not in sidecar
    assert len(sidecar["prompt_sha256"]) == 64


def test_one_png_and_sidecar_per_image(tmp_path: Path, rules_file: str) -> None:
    """-n 2 writes two PNGs, each with its own decision sidecar."""
    result = _run("a lighthouse at dawn", "-n", "2", "--policy", rules_file, "--out", str(tmp_path), *SMALL)
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.png"))) == 2
    assert len({s["decision"]["id"] for s in _sidecars(tmp_path)}) == 2


def test_seed_is_recorded_and_reproduces_pixels(tmp_path: Path, rules_file: str) -> None:
    """The same --seed gives the same pixels, and the sidecar records it."""
    for name in ("a", "b"):
        _run("a lighthouse at dawn", "--policy", rules_file, "--out", str(tmp_path / name), *SMALL)
    (first,), (second,) = (list((tmp_path / n).glob("*.png")) for n in ("a", "b"))
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))
    assert _sidecars(tmp_path / "a")[0]["generation"]["seed"] == 7


def test_dropped_image_has_a_sidecar_but_no_png(tmp_path: Path) -> None:
    """An image the policy drops is not written; its sidecar still records the block."""
    policy = tmp_path / "drop.yaml"
    policy.write_text(DROP_SECOND_POLICY)
    out = tmp_path / "out"
    result = _run("a lighthouse at dawn", "-n", "2", "--policy", str(policy), "--out", str(out), *SMALL)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) == 1
    dropped = [s for s in _sidecars(out) if not s["delivered"]]
    assert [s["decision"]["action"] for s in dropped] == ["block"]
    assert dropped[0]["file"] is None


def test_bad_size_is_a_usage_error(tmp_path: Path, rules_file: str) -> None:
    """A size that is not WxH in multiples of 16 exits 2 with the rule."""
    result = _run("a cat", "--size", "100x64", "--policy", rules_file, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "multiple of 16" in result.stderr


def test_missing_model_folder_is_a_clear_error(tmp_path: Path, rules_file: str) -> None:
    """A model path that does not exist exits 2 saying nothing is downloaded."""
    result = _run("a cat", "--model", str(tmp_path / "FLUX.1-dev"), "--policy", rules_file, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "never downloads" in result.stderr


def test_local_model_folder_is_used(tmp_path: Path, rules_file: str) -> None:
    """--model PATH loads a saved diffusers folder and records its name in the sidecar."""
    from moderation.testing import tiny_flux_pipeline

    tiny_flux_pipeline().save_pretrained(tmp_path / "tiny-flux")
    out = tmp_path / "out"
    args = ["a lighthouse", "--model", str(tmp_path / "tiny-flux"), "--steps", "2", "--policy", rules_file]
    result = _run(*args, "--out", str(out), *SMALL)
    assert result.exit_code == 0, result.output
    assert _sidecars(out)[0]["generation"]["model"] == "tiny-flux"


def test_blocked_prompt_never_loads_the_model(tmp_path: Path, rules_file: str) -> None:
    """A blocked prompt is refused before the model folder is even read (exit 1, not a load error)."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    args = ["a nude woman on a beach", "--model", str(broken), "--policy", rules_file, "--out", str(tmp_path)]
    assert _run(*args, *SMALL).exit_code == 1


def test_unloadable_model_is_a_clear_error(tmp_path: Path, rules_file: str) -> None:
    """A model folder that cannot be loaded exits 2 with a one-line reason."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    args = ["a lighthouse", "--model", str(broken), "--policy", rules_file, "--out", str(tmp_path / "out")]
    result = _run(*args, *SMALL)
    assert result.exit_code == 2
    assert "cannot load model" in result.stderr

"""The shipped policy cases pass against the shipped presets, with the real classifiers."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from moderation.cases import load_cases, run_cases
from moderation.moderator import Moderator

CASES = sorted(Path(str(resources.files("policies").joinpath("cases"))).glob("*.cases.yaml"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_shipped_cases_pass(path: Path) -> None:
    """Every case in the shipped cases file gets its expected action."""
    suite = load_cases(path)
    report = run_cases(Moderator.from_policy(suite.policy_ref(path)), suite)
    assert report.ok, "\n".join(report.failures)


def test_cases_ship_as_package_data() -> None:
    """At least the default preset has a cases file in the package."""
    assert any(p.name == "default.cases.yaml" for p in CASES)

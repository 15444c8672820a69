"""Shared fixtures. Models are never downloaded: everything here is offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from moderation.policy import Policy, load_policy_text

RULES_ONLY_POLICY = """
id: rules-only
version: "t1"
prompt:
  classifiers: [{name: lexicon}, {name: names}, {name: minors}]
  categories:
    sexual: {flag: 0.3, block: 0.5}
    sexual/minors: {block: 0.3}
    violence/graphic: {flag: 0.3, block: 0.5}
    hate: {flag: 0.3, block: 0.5}
    public-figure: {flag: 0.5, block: 0.8}
    living-artist-style: {flag: 0.5}
image:
  classifiers: []
  categories:
    sexual: {flag: 0.2, blur: 0.5, block: 0.9}
"""


@pytest.fixture(scope="session")
def rules_policy() -> Policy:
    """A policy with only the rule-based prompt classifiers (no model loads)."""
    return load_policy_text(RULES_ONLY_POLICY, name="rules-only.yaml")

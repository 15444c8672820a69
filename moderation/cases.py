"""Policy test cases (OPA-style): prompts with the action a policy must take on them.

Operators keep a `*.cases.yaml` beside each policy and run `fluxwarden policy test` in their CI,
so a threshold edit that lets a known-bad prompt through fails before it ships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from moderation.moderator import InputError, Moderator
from moderation.taxonomy import parse_category
from moderation.types import Action
from moderation.yaml_source import YamlSourceError, load_yaml_file


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="Label shown in the report.")
    prompt: str = Field(description="The prompt to check.")
    expect: list[Action] = Field(description="Acceptable actions (one or a list).")
    categories: list[str] = Field(default_factory=list, description="Categories that must be among those flagged.")

    @field_validator("expect", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("categories")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        return [parse_category(v).value for v in value]


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(default="default", description="Preset name or path relative to the cases file.")
    cases: list[Case] = Field(min_length=1)

    def policy_ref(self, cases_file: Path) -> str:
        if "/" in self.policy or self.policy.endswith((".yaml", ".yml")):
            return str((cases_file.parent / self.policy).resolve())
        return self.policy


class CasesError(ValueError):
    pass


def load_cases(path: Path) -> Suite:
    try:
        doc = load_yaml_file(path)
        return Suite.model_validate(doc.data)
    except YamlSourceError as exc:
        raise CasesError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        where = doc.position(loc) or path
        raise CasesError(f"{where}: {'.'.join(map(str, loc))}: {first['msg']}") from None


@dataclass
class Report:
    passed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        return [*self.failures, f"{self.passed} passed, {len(self.failures)} failed"]


def run_cases(moderator: Moderator, suite: Suite) -> Report:
    report = Report()
    prompts = [c.prompt for c in suite.cases]
    try:
        decisions = moderator.check_prompts(prompts)
    except InputError as exc:
        report.failures.append(f"FAIL input: {exc}")
        return report
    for i, (case, decision) in enumerate(zip(suite.cases, decisions, strict=True)):
        label = case.name or f"case {i + 1}"
        missing = [c for c in case.categories if c not in decision.categories]
        if decision.action in case.expect and not missing:
            report.passed += 1
            continue
        expected = "|".join(a.value for a in case.expect)
        detail = f"expected {expected}, got {decision.action.value} {list(decision.categories)}"
        if missing:
            detail += f"; missing categories {missing}"
        report.failures.append(f"FAIL {label}: {detail}: {case.prompt!r}")
    return report

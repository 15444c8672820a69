"""`fluxwarden` command line: check prompts and images, generate, serve, edit policies, review audit.

Exit codes everywhere: 0 allowed (flagged counts as allowed), 1 blocked, 2 usage or input error.
Nothing heavy is imported at module level, so `fluxwarden --help` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from moderation.moderator import Moderator
    from moderation.policy import Policy
    from moderation.types import Decision

app = typer.Typer(
    name="fluxwarden",
    help="Self-hosted safety layer for FLUX text-to-image generation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
check_app = typer.Typer(help="Moderate prompts and images against a policy.", no_args_is_help=True)
policy_app = typer.Typer(help="Validate, document and test policy files.", no_args_is_help=True)
app.add_typer(check_app, name="check")
app.add_typer(policy_app, name="policy")


@app.callback()
def _root(
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="FLUXWARDEN_LOG_LEVEL", help="debug, info, warning or error.")
    ] = "warning",
) -> None:
    """Self-hosted safety layer for FLUX text-to-image generation."""
    from moderation.logs import configure_logging

    level = log_level.lower()
    if level not in ("debug", "info", "warning", "error"):
        raise fail(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    configure_logging(level)  # type: ignore[arg-type]


def _mount() -> None:
    """Commands that live beside their packages; their modules import nothing heavy at top level."""
    from audit.cli import app as audit_app
    from moderation.cache_cli import cache_app
    from moderation.generate_cli import generate
    from moderation.image_cli import check_image
    from service.cli import serve, serve_key

    check_app.command("image")(check_image)
    app.command("generate")(generate)
    app.command("serve")(serve)
    app.command("serve-key")(serve_key)
    app.add_typer(audit_app, name="audit")
    app.add_typer(cache_app, name="cache")


_mount()

EXIT_ALLOWED, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2
BATCH_SIZE = 64

PolicyOpt = Annotated[
    str, typer.Option("--policy", "-p", help="Preset (default, strict, permissive, no-agpl) or a policy YAML file.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the full decision as JSON.")]
AuditDirOpt = Annotated[
    Path | None,
    typer.Option("--audit-dir", envvar="FLUXWARDEN_AUDIT_DIR", help="Write audit events to this directory."),
]


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_policy_or_exit(ref: str) -> Policy:
    from moderation.policy import PolicyError, load_policy

    try:
        return load_policy(ref)
    except PolicyError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(EXIT_ERROR) from None


def open_audit(audit_dir: Path | None, policy: Policy) -> Any:
    """The audit log for `--audit-dir`/FLUXWARDEN_AUDIT_DIR, or None; refuses if the policy requires one."""
    from audit import AuditDirRequiredError, open_log, resolve_audit_dir

    try:
        directory = resolve_audit_dir(audit_dir, required=policy.audit.required, policy_id=policy.id)
    except AuditDirRequiredError as exc:
        raise fail(str(exc)) from None
    return None if directory is None else open_log(directory)


def build_moderator(policy_ref: str, audit_dir: Path | None = None) -> Moderator:
    """Policy + audit sink + moderator, turning every set-up failure into a one-line error and exit 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from moderation.moderator import Moderator

    policy = load_policy_or_exit(policy_ref)
    try:
        return Moderator(policy, audit=open_audit(audit_dir, policy))
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from None


def decision_summary(decision: Decision) -> str:
    line = f"{decision.action.value}"
    if decision.categories:
        line += f" [{', '.join(decision.categories)}]"
    details = []
    for reason in decision.reasons:
        part = reason.message
        if reason.classifier:
            part += f" (classifier {reason.classifier}"
            part += f", rule {reason.rule}" if reason.rule else ""
            part += f", matched {reason.matched!r}" if reason.matched else ""
            part += ")"
        details.append(f"  - {part}")
    return "\n".join([line, *details])


def decision_record(decision: Decision, **extra: Any) -> dict[str, Any]:
    """The compact JSON line used by batch checks (and read by bench/)."""
    return {
        **extra,
        "action": decision.action.value,
        "allowed": decision.allowed,
        "categories": list(decision.categories),
        "category_scores": decision.category_scores,
        "reasons": [r.model_dump(mode="json", exclude_none=True) for r in decision.reasons],
        "decision_id": decision.id,
    }


@check_app.command("prompt")
def check_prompt(
    text: Annotated[str, typer.Argument(help="The prompt to check.")],
    policy: PolicyOpt = "default",
    json_: JsonOpt = False,
    audit_dir: AuditDirOpt = None,
) -> None:
    """Check one prompt. Exit 0 allowed, 1 blocked, 2 input error."""
    from moderation.moderator import InputError

    moderator = build_moderator(policy, audit_dir)
    try:
        decision = moderator.check_prompt(text)
    except InputError as exc:
        raise fail(str(exc)) from None
    finally:
        _close_audit(moderator)
    if json_:
        typer.echo(decision.model_dump_json(indent=2))
    else:
        typer.echo(decision_summary(decision))
    raise typer.Exit(EXIT_ALLOWED if decision.allowed else EXIT_BLOCKED)


def _close_audit(moderator: Moderator) -> None:
    if moderator.audit is not None and hasattr(moderator.audit, "close"):
        moderator.audit.close()


def _jsonl_items(raw: bytes, name: str) -> Iterator[tuple[int, str | None, Any, str | None]]:
    """(line number, id, text, error) per non-blank line; errors name the line and keep going."""
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, None, f"{name}:{number}: invalid UTF-8 at byte {exc.start}"
            continue
        try:
            obj = json.loads(decoded)
        except json.JSONDecodeError as exc:
            yield number, None, None, f"{name}:{number}: malformed JSON: {exc.msg} at column {exc.colno}"
            continue
        if not isinstance(obj, dict) or "text" not in obj:
            yield number, None, None, f'{name}:{number}: expected an object with "text" (and "id")'
            continue
        item_id = obj.get("id", number)
        yield number, item_id, obj["text"], None


@check_app.command("prompts")
def check_prompts(
    jsonl: Annotated[Path, typer.Option("--jsonl", help='JSON Lines file of {"id", "text"} objects; - for stdin.')],
    policy: PolicyOpt = "default",
    audit_dir: AuditDirOpt = None,
) -> None:
    """Check many prompts; print one JSON decision per line with the input's id.

    Bad lines are reported on stderr with their line number and skipped; the exit code is then 2.
    """
    from moderation.moderator import InputError, validate_prompt

    try:
        raw = sys.stdin.buffer.read() if str(jsonl) == "-" else jsonl.read_bytes()
    except OSError as exc:
        raise fail(f"{jsonl}: {exc.strerror or exc}") from None
    moderator = build_moderator(policy, audit_dir)
    errors = 0
    batch: list[tuple[Any, str]] = []

    def flush() -> None:
        if not batch:
            return
        decisions = moderator.check_prompts([t for _, t in batch])
        for (item_id, _), decision in zip(batch, decisions, strict=True):
            typer.echo(json.dumps(decision_record(decision, id=item_id), ensure_ascii=False))
        batch.clear()

    try:
        for number, item_id, text, parse_error in _jsonl_items(raw, str(jsonl)):
            error = parse_error
            if error is None:
                try:
                    validate_prompt(text, moderator.policy)
                except InputError as exc:
                    error = f"{jsonl}:{number}: {exc}"
            if error is not None:
                errors += 1
                typer.echo(error, err=True)
                continue
            batch.append((item_id, text))
            if len(batch) >= BATCH_SIZE:
                flush()
        flush()
    finally:
        _close_audit(moderator)
    if errors:
        typer.echo(f"{errors} line(s) could not be checked", err=True)
        raise typer.Exit(EXIT_ERROR)


@policy_app.command("validate")
def policy_validate(file: Annotated[str, typer.Argument(help="Policy YAML file or preset name.")]) -> None:
    """Check a policy file; print file:line:col and the field for every problem."""
    policy = load_policy_or_exit(file)
    typer.echo(f"ok: {policy.id} version {policy.version} sha256 {policy.sha256}")


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the policy JSON Schema (for editor completion and validation)."""
    from moderation.policy import policy_json_schema

    typer.echo(json.dumps(policy_json_schema(), indent=2))


@policy_app.command("show")
def policy_show(file: Annotated[str, typer.Argument(help="Policy YAML file or preset name.")]) -> None:
    """Print the fully resolved policy (after extends) as YAML."""
    import yaml

    policy = load_policy_or_exit(file)
    typer.echo(f"# sha256: {policy.sha256}")
    typer.echo(yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False))


@policy_app.command("test")
def policy_test(
    cases: Annotated[Path, typer.Argument(help="A *.cases.yaml file of prompts and expected actions.")],
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Override the policy named in the file.")] = None,
) -> None:
    """Run policy test cases (prompt → expected action); exit 1 if any fails."""
    from moderation.cases import CasesError, load_cases, run_cases

    try:
        suite = load_cases(cases)
    except CasesError as exc:
        raise fail(str(exc)) from None
    moderator = build_moderator(policy or suite.policy_ref(cases))
    report = run_cases(moderator, suite)
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(EXIT_ALLOWED if report.ok else EXIT_BLOCKED)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

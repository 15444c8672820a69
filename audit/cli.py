"""`fluxwarden audit ...`: verify, query, show, stats, export, prune, reindex.

Exit codes: 0 success (verify: intact), 1 the log does not verify / refused, 2 bad usage or input.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from audit.ages import format_ts, is_age, parse_age
from audit.files import INDEX_FILE

app = typer.Typer(
    help="Review the tamper-evident audit log: verify integrity, query, export for compliance, prune.",
    no_args_is_help=True,
)

EXIT_BROKEN = 1
EXIT_USAGE = 2
ENV = "FLUXWARDEN_AUDIT_DIR"

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", "-d", envvar=ENV, help="Audit directory (default: $FLUXWARDEN_AUDIT_DIR)."),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="From this time (UTC): 2026-11-24, 2026-11-24T08:00, or 7d ago.")
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Before this time (UTC, exclusive); same forms as --since.")
]
ActionOpt = Annotated[str | None, typer.Option("--action", help="allow | flag | blur | block")]
CategoryOpt = Annotated[str | None, typer.Option("--category", help="A flagged category, e.g. sexual/minors.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant id.")]
StageOpt = Annotated[str | None, typer.Option("--stage", help="prompt | image | generation | audit")]

_ACTIONS = ("allow", "flag", "blur", "block")
_STAGES = ("prompt", "image", "generation", "audit")


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _directory(value: Path | None) -> Path:
    if value is None:
        raise _fail(f"no audit directory: pass --dir DIR or set {ENV}")
    if not value.is_dir():
        raise _fail(f"audit directory {value} does not exist")
    return value


def parse_time(text: str | None, *, now: datetime | None = None) -> str | None:
    """A bound as the log's own ts format, so SQLite compares strings in time order."""
    if text is None:
        return None
    if is_age(text):
        moment = (now or datetime.now(UTC)) - parse_age(text)
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _fail(f"cannot read time {text!r}: use 2026-11-24, 2026-11-24T08:00:00Z or 7d") from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return format_ts(moment)


def _filters(
    since: str | None,
    until: str | None,
    *,
    action: str | None = None,
    category: str | None = None,
    tenant: str | None = None,
    stage: str | None = None,
) -> Any:
    from audit.index import Filters

    if action is not None and action not in _ACTIONS:
        raise _fail(f"unknown action {action!r}; choose from {', '.join(_ACTIONS)}")
    if stage is not None and stage not in _STAGES:
        raise _fail(f"unknown stage {stage!r}; choose from {', '.join(_STAGES)}")
    if category is not None:
        from moderation.taxonomy import UnknownCategoryError, parse_category

        try:
            category = parse_category(category).value
        except UnknownCategoryError as exc:
            raise _fail(str(exc)) from None
    return Filters(parse_time(since), parse_time(until), action, category, tenant, stage)


def _index(directory: Path, *, rebuild: bool = False) -> Any:
    from audit.index import AuditIndex

    index = AuditIndex(directory)
    index.update(rebuild=rebuild)
    return index


def _emit(rows: list[dict[str, Any]], fmt: str, columns: tuple[str, ...]) -> None:
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(buf.getvalue(), nl=False)
    elif fmt == "table":
        typer.echo(_table(rows, columns))
    else:
        raise _fail(f"unknown format {fmt!r}; choose table, json or csv")


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


@app.command()
def verify(
    directory: Annotated[Path | None, typer.Argument(envvar=ENV, help="Audit directory.")] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="Trusted public key (PEM) kept outside the log directory.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """Check every record's hash, the chain, the order and the signed checkpoints; exit 1 if broken."""
    from audit.keys import AuditKeyError
    from audit.verify import verify as run_verify

    directory = _directory(directory)
    try:
        report = run_verify(directory, public_key=public_key)
    except AuditKeyError as exc:
        raise _fail(str(exc)) from None
    if fmt == "json":
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        span = f"seq {report.first_seq}..{report.last_seq}" if report.records else "no records"
        typer.echo(
            f"{report.records} records in {report.segments} segments ({span}); "
            f"{report.checkpoints} signed entries, last signs seq {report.last_signed_seq}"
        )
        typer.echo(f"key: {report.key or 'none'} from {report.key_source or '-'}")
        for notice in report.notices:
            typer.echo(f"notice: {notice.kind} at {notice.where}: {notice.message}")
        first = report.first_problem
        if first is None:
            typer.echo("OK: the log is intact")
        else:
            typer.echo(f"BROKEN: first problem: {first.kind} at {first.where}: {first.message}")
            others = sorted(report.problems, key=lambda f: f.order)
            for problem in others[1:21]:
                typer.echo(f"  also: {problem.kind} at {problem.where}: {problem.message}")
            if len(others) > 21:
                typer.echo(f"  ... and {len(others) - 21} more")
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)


@app.command()
def query(
    *,
    directory: DirOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    action: ActionOpt = None,
    category: CategoryOpt = None,
    tenant: TenantOpt = None,
    stage: StageOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many rows; 0 = all.")] = 100,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest events first.")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help=f"Rebuild {INDEX_FILE} from the log first.")] = False,
) -> None:
    """List events matching the filters (from the SQLite index, caught up with the log first)."""
    from audit.index import COLUMNS

    directory = _directory(directory)
    filters = _filters(since, until, action=action, category=category, tenant=tenant, stage=stage)
    with _index(directory, rebuild=rebuild) as index:
        rows = index.query(filters, limit=limit or None, newest_first=newest_first)
        total = index.count(filters) if limit and len(rows) == limit else len(rows)
    _emit(rows, fmt, COLUMNS)
    if fmt == "table" and total > len(rows):
        typer.echo(f"({len(rows)} of {total} events; raise --limit or use export)", err=True)


@app.command()
def show(event_id: Annotated[str, typer.Argument(help="An event id (evt_...).")], directory: DirOpt = None) -> None:
    """Print one event as recorded in the log."""
    directory = _directory(directory)
    with _index(directory) as index:
        record = index.get(event_id)
    if record is None:
        raise _fail(f"no event {event_id!r} in {directory}", EXIT_BROKEN)
    typer.echo(json.dumps(record, indent=2, ensure_ascii=False))


@app.command()
def stats(
    directory: DirOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    stage: StageOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
) -> None:
    """Counts per day x action x category ('-' = no category flagged)."""
    directory = _directory(directory)
    with _index(directory) as index:
        rows = index.stats(_filters(since, until, stage=stage))
    _emit(rows, fmt, ("day", "action", "category", "count"))


_EXPORT_COLUMNS = (
    "seq",
    "id",
    "ts",
    "kind",
    "stage",
    "action",
    "allowed",
    "tenant",
    "request_id",
    "key_id",
    "decision_id",
    "flagged",
    "rules",
    "policy_id",
    "policy_version",
    "policy_sha256",
    "classifiers",
    "model_id",
    "seed",
    "steps",
    "width",
    "height",
    "input_kind",
    "input_mode",
    "input_digest",
    "latency_ms",
    "node",
    "residency",
    "prev",
    "hash",
)


def export_row(record: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: nested fields flattened to readable strings."""
    policy = record.get("policy") or {}
    gen = record.get("generation") or {}
    inp = record.get("input") or {}
    return {
        **{k: record.get(k) for k in ("seq", "id", "ts", "kind", "stage", "action", "allowed", "tenant")},
        **{k: record.get(k) for k in ("request_id", "key_id", "decision_id", "latency_ms", "node", "residency")},
        "flagged": ";".join(
            f"{f['category']}={f.get('score')}>={f.get('threshold')}:{f.get('action')}"
            for f in record.get("flagged", [])
        ),
        "rules": ";".join(
            f"{r.get('code')}:{r.get('rule') or r.get('category') or ''}" for r in record.get("reasons", [])
        ),
        "policy_id": policy.get("id"),
        "policy_version": policy.get("version"),
        "policy_sha256": policy.get("sha256"),
        "classifiers": ";".join(f"{c['name']}@{c['version']}" for c in record.get("classifiers", [])),
        **{k: gen.get(k) for k in ("model_id", "seed", "steps", "width", "height")},
        "input_kind": inp.get("kind"),
        "input_mode": inp.get("mode"),
        "input_digest": inp.get("salted_sha256") or inp.get("sha256"),
        "prev": record.get("prev"),
        "hash": record.get("hash"),
    }


@app.command()
def export(
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.jsonl or .csv).")],
    directory: DirOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    action: ActionOpt = None,
    category: CategoryOpt = None,
    tenant: TenantOpt = None,
    stage: StageOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl | csv (default: from --out)")] = None,
) -> None:
    """Write matching events for a compliance review: JSONL (sealed lines, hashes included) or CSV."""
    import hashlib

    directory = _directory(directory)
    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise _fail(f"unknown export format {fmt!r}; choose jsonl or csv")
    filters = _filters(since, until, action=action, category=category, tenant=tenant, stage=stage)
    count = 0
    with _index(directory) as index, open(out, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for line in index.raw_lines(filters):
                fh.write(line.decode("utf-8"))
                count += 1
        else:
            writer = csv.DictWriter(fh, fieldnames=list(_EXPORT_COLUMNS))
            writer.writeheader()
            for line in index.raw_lines(filters):
                writer.writerow(export_row(json.loads(line)))
                count += 1
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    typer.echo(f"exported {count} events to {out} ({fmt}); sha256 {digest}")


@app.command()
def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Remove segments older than this: 90d, 12w.")],
    directory: DirOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Prune even if the log does not verify.")] = False,
) -> None:
    """Delete whole segments older than the cutoff, leaving a signed anchor so the rest still verifies."""
    from audit.retention import PruneRefusedError
    from audit.retention import prune as run_prune

    directory = _directory(directory)
    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        result = run_prune(directory, age, dry_run=dry_run, force=force)
    except PruneRefusedError as exc:
        raise _fail(str(exc), EXIT_BROKEN) from None
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {len(result.removed)} segments ({result.removed_records} events) older than {result.cutoff}"
        + (f"; the log now starts at seq {result.first_seq}" if result.removed and not dry_run else "")
    )
    for name in result.removed:
        typer.echo(f"  {name}")


@app.command()
def reindex(directory: DirOpt = None) -> None:
    """Rebuild the SQLite query index from the log (it is derived data; safe to delete)."""
    directory = _directory(directory)
    from audit.index import AuditIndex

    with AuditIndex(directory) as index:
        index.update(rebuild=True)
        total = index.total()
    typer.echo(f"indexed {total} events from the log")

"""`fluxwarden serve` and `fluxwarden serve-key`: typer-compatible functions the main CLI mounts.

Nothing heavy is imported here: uvicorn and the app load only when the command runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.settings import Settings

EXIT_ERROR = 2


def serve(  # noqa: PLR0917 - typer maps each parameter to an option
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address [default 127.0.0.1]; others need API keys.")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port [default 8000].")] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Preset or policy file for requests without a tenant policy.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Local diffusers FLUX folder, 'tiny' (random weights) or 'none' [default tiny]."),
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes (each loads the models).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML config file (tenants, keys, limits).", envvar="FLUXWARDEN_CONFIG"),
    ] = None,
    audit_dir: Annotated[
        Path | None, typer.Option("--audit-dir", help="Write an audit event per decision here.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="Generator device: cpu or cuda[:N].")] = None,
) -> None:
    """Run the HTTP sidecar (OpenAI-compatible /v1/moderations and /v1/images/generations)."""
    from pydantic import ValidationError

    from service.settings import CONFIG_ENV, Settings, UnsafeBindError, check_bind, settings_env

    if config is not None:
        if not config.is_file():
            typer.echo(f"error: {config}: no such config file", err=True)
            raise typer.Exit(EXIT_ERROR)
        os.environ[CONFIG_ENV] = str(config.resolve())
    overrides = {
        "host": host,
        "port": port,
        "policy": policy,
        "model": model,
        "workers": workers,
        "audit_dir": audit_dir,
        "device": device,
    }
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except (ValidationError, FileNotFoundError) as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    try:
        warnings = check_bind(settings)
    except UnsafeBindError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    _check_policies(settings)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if settings.tiny_model:
        typer.echo(
            "warning: no FLUX weights configured (--model): serving a tiny random pipeline; generated images are noise",
            err=True,
        )
    os.environ.update(settings_env(overrides))  # every worker process rebuilds Settings from these
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import uvicorn

    typer.echo(f"fluxwarden sidecar on http://{settings.host}:{settings.port} (policy {settings.policy})", err=True)
    uvicorn.run(
        "service.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=settings.access_log,
        log_level="info",
    )


def _check_policies(settings: Settings) -> None:
    """Every tenant's policy loads, or exit 2 with file:line:col problems before starting a server."""
    from moderation.policy import PolicyError, load_policy

    failed = False
    for ref in dict.fromkeys(settings.policy_refs().values()):
        try:
            load_policy(settings.resolve_policy(ref))
        except PolicyError as exc:
            failed = True
            for problem in exc.problems:
                typer.echo(problem, err=True)
    if failed:
        raise typer.Exit(EXIT_ERROR)


def serve_key(
    tenant: Annotated[str, typer.Argument(help="Tenant the key belongs to.")],
    key_id: Annotated[str, typer.Option("--id", help="Name of the key in logs and audit events.")] = "key-1",
) -> None:
    """Make a new API key: prints the key once (give it to the team) and the config entry to store."""
    from service.auth import new_key

    key, digest = new_key()
    typer.echo(f"key (shown once): {key}", err=True)
    typer.echo(f"tenants:\n  {tenant}:\n    keys:\n      - {{id: {key_id}, sha256: {digest}}}")


app = typer.Typer(help="The fluxwarden HTTP sidecar.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve)
app.command("serve-key")(serve_key)

if __name__ == "__main__":
    app()

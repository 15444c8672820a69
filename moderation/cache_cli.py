"""`fluxwarden cache show|prune`: the files derived from packaged models in the cache directory.

Each encoder version gets its own exported ONNX graphs (about 180 MB a pair), and each py3langid
model its own plain copy, so upgrades and retrained heads leave stale files behind. `prune`
keeps what this install loads (the shipped head's graphs, plus those of heads named with
`--keep-head`, and the language model's copy) and removes the rest. It only ever touches files
named the way fluxwarden names them, so a cache directory shared with other tools is safe.
A pruned file that some other install still needs is rebuilt there on its next start.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated

import typer

cache_app = typer.Typer(help="Show or prune derived model files (ONNX exports, language model).", no_args_is_help=True)

# What export_onnx, fused_onnx and the language classifier write, with their locks and temp files.
OWN_FILE = re.compile(
    r"^(?:minilm-l6-[0-9a-f]{16}(?:-ort-fused)?(?:\.onnx(?:\.lock)?|\.\d+\.tmp)"
    r"|py3langid-[0-9a-f]{16}(?:\.npz|\.\d+\.tmp))$"
)
TMP_GRACE_S = 3600  # a younger temp file may be an export in progress in another process
KeepHeadOpt = Annotated[
    list[Path] | None,
    typer.Option("--keep-head", help="Also keep the graphs of this head .npz (a policy's head_path). Repeatable."),
]


def in_use(keep_heads: list[Path] | None = None) -> set[str]:
    """File names this install loads: the shipped head's graphs, `keep_heads`' graphs, the language copy."""
    from py3langid import langid

    from classifiers.base import ClassifierLoadError
    from classifiers.embedding import HEAD_FILE, PromptHead, assets_dir
    from classifiers.language import installed_model_file, plain_model_path
    from classifiers.minilm_encoder import cache_dir, export_paths

    directory = cache_dir()
    graphs: set[str] = set()
    for head_path in [assets_dir() / HEAD_FILE, *(keep_heads or [])]:
        try:
            head = PromptHead.load(head_path)
        except (ClassifierLoadError, OSError, ValueError, KeyError) as exc:
            raise typer.BadParameter(f"{head_path}: not a prompt head ({exc})", param_hint="--keep-head") from exc
        delta = head_path.parent / head.delta_file if head.delta_file else None
        graphs.update(path.name for path in export_paths(delta, directory))
    language = plain_model_path(installed_model_file(langid), directory).name
    return graphs | {name + ".lock" for name in graphs} | {language}


def _listing(keep_heads: list[Path] | None) -> tuple[Path, list[tuple[Path, int, str]]]:
    """(file, size, "in use" | "busy" | "stale") for each file fluxwarden wrote in the cache."""
    from classifiers.minilm_encoder import cache_dir

    directory = cache_dir()
    keep = in_use(keep_heads)
    files = (
        sorted(p for p in directory.glob("*") if p.is_file() and OWN_FILE.match(p.name)) if directory.is_dir() else []
    )
    now = time.time()
    listing = []
    for p in files:
        stat = p.stat()
        busy = p.suffix == ".tmp" and now - stat.st_mtime < TMP_GRACE_S
        listing.append((p, stat.st_size, "in use" if p.name in keep else "busy" if busy else "stale"))
    return directory, listing


@cache_app.command("show")
def cache_show(keep_head: KeepHeadOpt = None) -> None:
    """List the derived files, their sizes, and whether this install uses them."""
    directory, files = _listing(keep_head)
    for path, size, state in files:
        typer.echo(f"{state:7} {size / 1e6:9.1f} MB  {path.name}")
    stale = sum(size for _, size, state in files if state == "stale")
    total = sum(size for _, size, _ in files)
    typer.echo(f"{directory}: {total / 1e6:.1f} MB in {len(files)} files, {stale / 1e6:.1f} MB stale")


@cache_app.command("prune")
def cache_prune(
    keep_head: KeepHeadOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
) -> None:
    """Remove derived files this install does not load (other heads' graphs, old language models)."""
    directory, files = _listing(keep_head)
    freed = 0
    for path, size, state in files:
        if state != "stale":
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        freed += size
        typer.echo(f"{'would remove' if dry_run else 'removed'} {path.name}")
    typer.echo(f"{directory}: {'would free' if dry_run else 'freed'} {freed / 1e6:.1f} MB")

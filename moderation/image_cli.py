"""`fluxwarden check image FILE...`: one decision per image, optionally the image as the policy leaves it.

Mounted by `moderation.cli` as `check_app.command("image")(check_image)`. Exit codes follow the
CLI: 0 all allowed (flag and blur count as allowed), 1 any blocked, 2 any input or usage error;
an input error wins because a file that could not be checked must never look like a pass.
Unreadable files are reported on stderr, one line each, naming the file; the rest are still checked.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from PIL import Image

    from moderation.images import LoadedImage
    from moderation.moderator import Moderator
    from moderation.types import Decision

EXIT_ALLOWED, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2
IMAGE_BATCH = 8  # images decoded and checked together; bounds memory at max_pixels × 3 bytes each

FilesArg = Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG or WebP).", show_default=False)]
ImagePolicyOpt = Annotated[
    str, typer.Option("--policy", "-p", help="Preset (default, strict, permissive, no-agpl) or a policy YAML file.")
]
ImageJsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object per image (JSON Lines).")]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Write each image as the policy leaves it (blurred, black) into this directory; dropped images are not written.",
        file_okay=False,
    ),
]
ImageAuditDirOpt = Annotated[
    Path | None,
    typer.Option("--audit-dir", envvar="FLUXWARDEN_AUDIT_DIR", help="Write audit events to this directory."),
]


def check_image(
    files: FilesArg,
    policy: ImagePolicyOpt = "default",
    json_: ImageJsonOpt = False,
    out: OutOpt = None,
    audit_dir: ImageAuditDirOpt = None,
) -> None:
    """Check images against the policy's image stage. Exit 0 allowed, 1 blocked, 2 input error."""
    from moderation.cli import build_moderator

    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            typer.echo(f"error: --out {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(EXIT_ERROR) from None
    moderator = build_moderator(policy, audit_dir)
    writer = _OutputWriter(out) if out is not None else None
    any_error = any_blocked = False
    try:
        for start in range(0, len(files), IMAGE_BATCH):
            chunk = files[start : start + IMAGE_BATCH]
            loaded: list[tuple[Path, LoadedImage]] = []
            for path in chunk:
                image, error = _load(moderator, path)
                if image is None:
                    any_error = True
                    typer.echo(f"error: {error}", err=True)
                    if json_:
                        typer.echo(json.dumps({"file": str(path), "error": error}, ensure_ascii=False))
                    continue
                loaded.append((path, image))
            if not loaded:
                continue
            decisions = moderator.check_images([img for _, img in loaded])
            for (path, image), decision in zip(loaded, decisions, strict=True):
                any_blocked |= not decision.allowed
                written = writer.write(path, image, decision, moderator) if writer is not None else None
                _report(path, decision, written, json_=json_, out_requested=writer is not None)
    finally:
        if moderator.audit is not None and hasattr(moderator.audit, "close"):
            moderator.audit.close()
    raise typer.Exit(EXIT_ERROR if any_error else EXIT_BLOCKED if any_blocked else EXIT_ALLOWED)


def _load(moderator: Moderator, path: Path) -> tuple[LoadedImage | None, str]:
    """Decode one file; the error text always starts with the file name (ImageInputError's source)."""
    from moderation.moderator import InputError

    try:
        return moderator.load_image(path), ""
    except InputError as exc:
        message = str(exc)
        return None, message if message.startswith(str(path)) else f"{path}: {message}"


def _report(path: Path, decision: Decision, written: Path | None, *, json_: bool, out_requested: bool) -> None:
    from moderation.cli import decision_summary

    if json_:
        record: dict[str, Any] = {"file": str(path), "decision": decision.model_dump(mode="json")}
        if out_requested:
            record["output"] = str(written) if written is not None else None
        typer.echo(json.dumps(record, ensure_ascii=False))
        return
    typer.echo(f"{path}: {decision_summary(decision)}")
    if out_requested:
        typer.echo(f"  -> {written}" if written is not None else "  -> dropped (not written)")


class _OutputWriter:
    """Writes rendered images into one directory without clobbering inputs or each other."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._used: set[str] = set()

    def write(self, source: Path, image: LoadedImage, decision: Decision, moderator: Moderator) -> Path | None:
        from moderation.images import OUTPUT_FORMATS, encode_image

        rendered: Image.Image | None = moderator.render(image.image, decision)
        if rendered is None:
            return None
        suffix = source.suffix.lower() if source.suffix.lower() in OUTPUT_FORMATS else ".png"
        target = self._target(source, suffix)
        data = encode_image(rendered, OUTPUT_FORMATS[suffix])
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".fluxwarden-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def _target(self, source: Path, suffix: str) -> Path:
        stem = source.stem or "image"
        candidate = self.directory / f"{stem}{suffix}"
        n = 0
        while candidate.name in self._used or _same_file(candidate, source):
            n += 1
            candidate = self.directory / f"{stem}.moderated{'' if n == 1 else f'-{n}'}{suffix}"
        self._used.add(candidate.name)
        return candidate


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False

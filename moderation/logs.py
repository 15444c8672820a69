"""Operational logging (not the audit log): structlog events to stderr, never to stdout.

stdout belongs to command output (`--json`, JSON Lines), so logs must never land there. Events
carry names and fields, not sentences, and never raw prompts.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

Level = Literal["debug", "info", "warning", "error"]


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    # Resolved per call: test runners and daemons swap sys.stderr after configuration.
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: Level = "warning", *, json: bool = False) -> None:
    """Route structlog to stderr at `level`; JSON lines for services, console rendering for people."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )

"""Names and low-level reads of the files in an audit directory.

segment-000001-20261124.jsonl   the log: sealed records, rotated daily or by size
checkpoints.jsonl               signed checkpoints and retention anchors
salt, signing_key.pem/.pub      per-directory secrets (audit.keys)
.lock                           flock target serialising writers across processes
index.sqlite                    derived query index, rebuilt at will (audit.index)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_FILE = "checkpoints.jsonl"
LOCK_FILE = ".lock"
INDEX_FILE = "index.sqlite"
INPUTS_DIR = "inputs"
_SEGMENT = re.compile(r"^segment-(\d{6,})-(\d{8})\.jsonl$")


@dataclass(frozen=True)
class Segment:
    path: Path
    number: int
    day: str  # YYYYMMDD, UTC, the day the segment was opened

    @property
    def name(self) -> str:
        return self.path.name


def segment_name(number: int, day: str) -> str:
    return f"segment-{number:06d}-{day}.jsonl"


def parse_segment(path: Path) -> Segment | None:
    m = _SEGMENT.match(path.name)
    return Segment(path, int(m.group(1)), m.group(2)) if m else None


def list_segments(directory: Path) -> list[Segment]:
    """Segments in log order (by number, which rotation only ever increases)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            seg = parse_segment(Path(entry.path))
            if seg is not None and entry.is_file():
                found.append(seg)
    return sorted(found, key=lambda s: s.number)


@dataclass(frozen=True)
class Tail:
    """The end of a file: its last complete line and any bytes after the last newline."""

    line: bytes | None  # last newline-terminated line, newline included
    line_offset: int  # where that line starts
    torn: bytes  # bytes after the last newline (an interrupted write), usually empty
    size: int


def read_tail(path: Path, *, block: int = 65536) -> Tail:
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        buf = b""
        pos = size
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            last_nl = buf.rfind(b"\n")
            if last_nl == -1:
                continue
            torn = buf[last_nl + 1 :]
            prev_nl = buf.rfind(b"\n", 0, last_nl)
            if prev_nl != -1 or pos == 0:
                start = prev_nl + 1
                return Tail(buf[start : last_nl + 1], pos + start, torn, size)
        return Tail(None, 0, buf, size)


def fsync_dir(directory: Path) -> None:
    """Make a file creation or removal in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

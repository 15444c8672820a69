"""Signed checkpoints: periodic Ed25519 signatures over the chain head, kept beside the log.

The chain alone shows that records were not edited or removed *between* others; a checkpoint says
"the log held record `seq` with hash `hash`", so cutting the tail or deleting whole segments is
detectable as well. Entries are numbered (`n`) and chained (`cp_prev`), and a retention prune
leaves a signed `prune` entry that anchors where the remaining chain now starts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.chain import GENESIS
from audit.files import read_tail
from audit.keys import fingerprint


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def append_entry(path: Path, key: Ed25519PrivateKey, fields: dict[str, Any], *, fsync: bool = True) -> dict[str, Any]:
    """Sign `fields` as the next entry of the checkpoint file; the caller holds the log lock."""
    n, cp_prev = 1, GENESIS
    last_line = _last_entry_line(path)
    if last_line is not None:
        n, cp_prev = int(json.loads(last_line)["n"]) + 1, line_hash(last_line)
    body = {**fields, "n": n, "cp_prev": cp_prev, "key": fingerprint(key.public_key())}
    body["sig"] = base64.b64encode(key.sign(canonical(body))).decode("ascii")
    line = canonical(body) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if tail_is_torn(path):
            os.write(fd, b"\n")
        os.write(fd, line)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return body


def _last_entry_line(path: Path) -> bytes | None:
    """The last parseable entry (a crash can leave a sealed-off fragment after it)."""
    if not path.exists():
        return None
    tail = read_tail(path)
    if tail.line is not None and _parses(tail.line):
        return tail.line
    with open(path, "rb") as fh:
        lines = [line for line in fh if line.endswith(b"\n") and _parses(line)]
    return lines[-1] if lines else None


def _parses(line: bytes) -> bool:
    try:
        entry = json.loads(line)
        int(entry["n"])
    except (ValueError, KeyError, TypeError):
        return False
    return True


def tail_is_torn(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return False
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) != b"\n"


def signature_ok(entry: dict[str, Any], key: Ed25519PublicKey) -> bool:
    body = {k: v for k, v in entry.items() if k != "sig"}
    try:
        key.verify(base64.b64decode(entry.get("sig", ""), validate=True), canonical(body))
    except (InvalidSignature, ValueError):
        return False
    return True

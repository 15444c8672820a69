"""The hash chain: how one JSON line commits to its own bytes and to the line before it.

A record is `{"seq":N,"prev":"<hex>",<event fields>,"hash":"<hex>"}` followed by a newline, where
`hash` is SHA-256 of the exact bytes of the record with the `,"hash":...` member removed (the body
ends with `}`). Hashing raw bytes instead of a re-serialisation means the verifier needs no JSON
parser and no canonical form to agree with the writer, and `seq`/`prev` sit at fixed places so a
million lines verify in seconds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

GENESIS = "0" * 64
_HASH_MEMBER_LEN = len(',"hash":"') + 64 + len('"}')  # 75 bytes after the body
_HEAD = re.compile(rb'\{"seq":([0-9]{1,19}),"prev":"([0-9a-f]{64})",')
_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}')


class RecordFormatError(ValueError):
    """A line that is not a sealed record (torn, hand-edited beyond recognition, or not ours)."""


@dataclass(frozen=True, slots=True)
class SealedRecord:
    seq: int
    prev: str
    hash: str
    valid: bool  # stored hash matches the bytes


def seal(seq: int, prev: str, event_json: bytes) -> tuple[bytes, str]:
    """Return the newline-terminated record line for an event's JSON object, and its hash."""
    if not (event_json.startswith(b"{") and event_json.endswith(b"}")) or len(event_json) < 3:
        raise ValueError("event must serialise to a non-empty JSON object")
    body = b'{"seq":%d,"prev":"%s",%s' % (seq, prev.encode("ascii"), event_json[1:])
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n', digest


def open_record(line: bytes) -> SealedRecord:
    """Parse a line (with or without its newline) into its chain fields and check its own hash."""
    if line.endswith(b"\n"):
        line = line[:-1]
    head = _HEAD.match(line)
    tail = _TAIL.fullmatch(line, len(line) - _HASH_MEMBER_LEN) if len(line) > _HASH_MEMBER_LEN else None
    if head is None or tail is None:
        raise RecordFormatError("not a sealed audit record")
    stored = tail.group(1).decode("ascii")
    body = line[:-_HASH_MEMBER_LEN] + b"}"
    return SealedRecord(
        seq=int(head.group(1)),
        prev=head.group(2).decode("ascii"),
        hash=stored,
        valid=hashlib.sha256(body).hexdigest() == stored,
    )

"""Each kind of tampering is detected and named, at the first broken record."""

from __future__ import annotations

import json
from pathlib import Path

from audit.files import CHECKPOINT_FILE
from audit.keys import PUBLIC_KEY_FILE, public_pem
from audit.verify import verify
from tests.audit.conftest import only_segment, write_events


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_untouched_log_verifies(tmp_path: Path) -> None:
    """A log written and closed normally verifies with no problems."""
    write_events(tmp_path, 25, checkpoint_every=10)
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    assert (report.records, report.first_seq, report.last_seq, report.last_signed_seq) == (25, 1, 25, 25)


def test_edited_byte_is_named_edited_at_that_line(tmp_path: Path) -> None:
    """Changing one byte of a record (block -> blocj) is reported as 'edited' at that record."""
    write_events(tmp_path, 20)
    seg = only_segment(tmp_path)
    lines = _lines(seg)
    lines[9] = lines[9].replace(b'"action":"block"', b'"action":"blocj"', 1)
    seg.write_bytes(b"".join(lines))
    first = verify(tmp_path).first_problem
    assert first is not None
    assert (first.kind, first.where, first.seq) == ("edited", f"{seg.name}:10", 10)


def test_deleted_line_is_named_missing(tmp_path: Path) -> None:
    """Removing a line is reported as 'missing' with the absent sequence number."""
    write_events(tmp_path, 20)
    seg = only_segment(tmp_path)
    lines = _lines(seg)
    del lines[6]
    seg.write_bytes(b"".join(lines))
    first = verify(tmp_path).first_problem
    assert first is not None
    assert first.kind == "missing"
    assert "seq 7" in first.message
    assert first.where == f"{seg.name}:7"


def test_swapped_lines_are_named_reordered(tmp_path: Path) -> None:
    """Swapping two adjacent lines is reported as 'reordered', not as missing."""
    write_events(tmp_path, 20)
    seg = only_segment(tmp_path)
    lines = _lines(seg)
    lines[4], lines[5] = lines[5], lines[4]
    seg.write_bytes(b"".join(lines))
    report = verify(tmp_path)
    assert [p.kind for p in report.problems] == ["reordered"]
    assert report.problems[0].where == f"{seg.name}:5"


def test_truncated_tail_is_named_truncated(tmp_path: Path) -> None:
    """Cutting whole lines off the end is caught by the signed checkpoint and named 'truncated'."""
    write_events(tmp_path, 20)
    seg = only_segment(tmp_path)
    seg.write_bytes(b"".join(_lines(seg)[:-3]))
    report = verify(tmp_path)
    assert [p.kind for p in report.problems] == ["truncated"]
    assert "records 18..20" in report.problems[0].message


def test_forged_checkpoint_is_named_bad_signature(tmp_path: Path) -> None:
    """Editing a checkpoint's signed fields breaks its signature."""
    write_events(tmp_path, 20, checkpoint_every=5)
    cp = tmp_path / CHECKPOINT_FILE
    lines = _lines(cp)
    entry = json.loads(lines[1])
    entry["seq"] = 9
    lines[1] = (json.dumps(entry) + "\n").encode()
    cp.write_bytes(b"".join(lines))
    report = verify(tmp_path)
    assert [(p.kind, p.where) for p in report.problems] == [("bad_signature", f"{CHECKPOINT_FILE}:2")]


def test_rechained_log_with_new_key_fails_against_pinned_key(tmp_path: Path) -> None:
    """Re-signing with a fresh key is caught when the reviewer pins the original public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    write_events(tmp_path, 10)
    pinned = tmp_path.parent / "pinned.pub"
    pinned.write_bytes((tmp_path / PUBLIC_KEY_FILE).read_bytes())
    attacker = Ed25519PrivateKey.generate()
    (tmp_path / "signing_key.pem").write_bytes(
        attacker.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / PUBLIC_KEY_FILE).write_bytes(public_pem(attacker.public_key()))
    (tmp_path / CHECKPOINT_FILE).unlink()
    write_events(tmp_path, 1)  # the attacker's writer signs a fresh checkpoint file
    assert verify(tmp_path).ok  # the directory's own key vouches for itself...
    report = verify(tmp_path, public_key=pinned)  # ...the pinned key does not
    first = report.first_problem
    assert first is not None
    assert first.kind == "bad_signature"
    assert "different key" in first.message


def test_deleted_middle_segment_is_named_missing(tmp_path: Path) -> None:
    """Removing a whole rotated segment shows as missing records at the next segment."""
    write_events(tmp_path, 60, rotate_bytes=8192)
    segments = sorted(tmp_path.glob("segment-*.jsonl"))
    assert len(segments) >= 3
    segments[1].unlink()
    first = verify(tmp_path).first_problem
    assert first is not None
    assert first.kind == "missing"
    assert first.where.startswith(segments[2].name)


def test_deleted_last_segment_is_named_truncated(tmp_path: Path) -> None:
    """Removing the newest segment is caught by the final checkpoint."""
    write_events(tmp_path, 60, rotate_bytes=8192)
    sorted(tmp_path.glob("segment-*.jsonl"))[-1].unlink()
    assert [p.kind for p in verify(tmp_path).problems] == ["truncated"]


def test_deleted_checkpoint_file_is_named_unsigned(tmp_path: Path) -> None:
    """Without any checkpoint the verifier says truncation cannot be ruled out."""
    write_events(tmp_path, 5)
    (tmp_path / CHECKPOINT_FILE).unlink()
    assert [p.kind for p in verify(tmp_path).problems] == ["unsigned"]


def test_rehashed_edit_is_caught_by_the_chain(tmp_path: Path) -> None:
    """An edit whose own hash was recomputed still breaks the next record's link."""
    from audit.chain import open_record, seal

    write_events(tmp_path, 10)
    seg = only_segment(tmp_path)
    lines = _lines(seg)
    rec = open_record(lines[3])
    body = json.loads(lines[3])
    body["action"] = "allow"
    event_json = json.dumps({k: v for k, v in body.items() if k not in ("seq", "prev", "hash")}).encode()
    lines[3], _ = seal(rec.seq, rec.prev, event_json.replace(b", ", b",").replace(b": ", b":"))
    seg.write_bytes(b"".join(lines))
    first = verify(tmp_path).first_problem
    assert first is not None
    assert (first.kind, first.where) == ("edited", f"{seg.name}:4")

"""What an audit event records, and what it never records unless the policy says so."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pydantic
import pytest

import audit
from audit.events import AuditEvent
from audit.index import AuditIndex
from tests.audit.conftest import POLICY_SHA, make_decision, read_records

SECRET_PROMPT = "Quixotic zebra-7Q stands beside the marmalade lighthouse, contact ana@example.org"


def _one(tmp_path: Path, **kwargs: object) -> dict:
    with audit.AuditLog(tmp_path, node="node-a", residency="eu-west") as log:
        audit.record_decision(log, kwargs.pop("decision", make_decision("block")), **kwargs)
    (record,) = read_records(tmp_path)
    return record


def test_event_carries_verdict_evidence_policy_and_context(tmp_path: Path) -> None:
    """A decision event holds action, flagged category with score and threshold, rule ids, policy and classifiers."""
    rec = _one(tmp_path, input_text="x", request_id="req-1", tenant="acme", key_id="key_42")
    assert (rec["stage"], rec["action"], rec["allowed"]) == ("prompt", "block", False)
    assert rec["flagged"] == [{"category": "sexual", "score": 0.91, "threshold": 0.5, "action": "block"}]
    assert rec["reasons"][0]["rule"] == "term:explicit"
    assert rec["policy"] == {"id": "default", "version": "2026.11.1", "sha256": POLICY_SHA}
    assert rec["classifiers"] == [{"name": "lexicon", "version": "3"}, {"name": "embedding", "version": "minilm-1"}]
    assert (rec["request_id"], rec["tenant"], rec["key_id"]) == ("req-1", "acme", "key_42")
    assert (rec["node"], rec["residency"], rec["latency_ms"]) == ("node-a", "eu-west", 4.5)


def test_timestamp_is_utc_with_z_suffix(tmp_path: Path) -> None:
    """Event time is ISO 8601 UTC, so records from nodes in different zones sort together."""
    rec = _one(tmp_path, input_text="x")
    assert rec["ts"].endswith("Z")
    assert len(rec["ts"]) == len("2026-11-24T08:00:00.000000Z")


def test_generation_parameters_are_recorded(tmp_path: Path) -> None:
    """A generation event names model, seed, steps, size and the decisions it involved."""
    with audit.AuditLog(tmp_path) as log:
        audit.record_generation(
            log,
            {
                "model_id": "black-forest-labs/FLUX.1-schnell",
                "seed": 7,
                "steps": 4,
                "width": 1024,
                "height": 768,
                "prompt_decision_id": "dec_1",
                "image_decision_ids": ["dec_2"],
            },
            action="blur",
            allowed=True,
            request_id="req-9",
            latency_ms=812.0,
        )
    (rec,) = read_records(tmp_path)
    assert rec["kind"] == "generation"
    assert rec["stage"] == "generation"
    assert rec["generation"]["seed"] == 7
    assert (rec["generation"]["width"], rec["generation"]["height"], rec["generation"]["steps"]) == (1024, 768, 4)
    assert rec["generation"]["image_decision_ids"] == ["dec_2"]


def test_hash_mode_leaves_no_prompt_text_anywhere_in_the_directory(tmp_path: Path) -> None:
    """With store_inputs: hash neither the prompt nor its matched words appear in any file, index included."""
    with audit.AuditLog(tmp_path) as log:
        for _ in range(3):
            audit.record_decision(log, make_decision("block", matched="marmalade lighthouse"), input_text=SECRET_PROMPT)
    with AuditIndex(tmp_path) as index:
        index.update()
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()).lower()
    for fragment in ("quixotic", "zebra-7q", "marmalade", "lighthouse", "ana@example.org"):
        assert fragment.encode() not in blob
    digests = {r["input"]["salted_sha256"] for r in read_records(tmp_path)}
    assert len(digests) == 1


def test_hash_mode_digest_depends_on_the_directory_salt(tmp_path: Path) -> None:
    """The same prompt hashes differently in two deployments (no cross-deployment rainbow table)."""
    a = _one(tmp_path / "a", input_text=SECRET_PROMPT)
    b = _one(tmp_path / "b", input_text=SECRET_PROMPT)
    assert a["input"]["salted_sha256"] != b["input"]["salted_sha256"]


def test_none_mode_keeps_only_the_length(tmp_path: Path) -> None:
    """store_inputs: none records that there was an input and its length, nothing derived from it."""
    rec = _one(tmp_path, input_text=SECRET_PROMPT, store_inputs="none")
    assert rec["input"] == {"kind": "text", "mode": "none", "chars": len(SECRET_PROMPT)}


def test_redacted_mode_masks_matched_terms_and_identifiers(tmp_path: Path) -> None:
    """store_inputs: redacted keeps the text with matched terms and e-mail addresses masked."""
    rec = _one(
        tmp_path,
        decision=make_decision("block", matched="marmalade lighthouse"),
        input_text=SECRET_PROMPT,
        store_inputs="redacted",
    )
    assert rec["input"]["text"] == "Quixotic zebra-7Q stands beside the [sexual], contact [email]"
    assert "matched" not in rec["reasons"][0]


def test_full_mode_keeps_text_and_matches(tmp_path: Path) -> None:
    """store_inputs: full keeps the prompt verbatim and the matched text in reasons."""
    rec = _one(
        tmp_path, decision=make_decision("block", matched="lighthouse"), input_text=SECRET_PROMPT, store_inputs="full"
    )
    assert rec["input"]["text"] == SECRET_PROMPT
    assert rec["reasons"][0]["matched"] == "lighthouse"


def test_images_are_recorded_as_sha256_only_by_default(tmp_path: Path) -> None:
    """An image decision stores the file's SHA-256 and size, never pixels."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="PNG")
    png = buf.getvalue()
    rec = _one(tmp_path, decision=make_decision("blur", stage="image"), image_bytes=png)
    import hashlib

    assert rec["input"] == {
        "kind": "image",
        "mode": "hash",
        "bytes": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
    }
    assert not (tmp_path / "inputs").exists()


def test_phash_mode_adds_a_perceptual_hash(tmp_path: Path) -> None:
    """store_images: phash adds a 64-bit difference hash that survives re-encoding."""
    from PIL import Image

    img = Image.linear_gradient("L").convert("RGB")
    a, b = io.BytesIO(), io.BytesIO()
    img.save(a, format="PNG")
    img.save(b, format="JPEG", quality=70)
    with audit.AuditLog(tmp_path) as log:
        for data in (a.getvalue(), b.getvalue()):
            audit.record_decision(log, make_decision("allow", stage="image"), image_bytes=data, store_images="phash")
    first, second = read_records(tmp_path)
    assert first["input"]["sha256"] != second["input"]["sha256"]
    assert first["input"]["phash"] == second["input"]["phash"]


def test_full_image_mode_stores_the_file_beside_the_log(tmp_path: Path) -> None:
    """store_images: full keeps a copy under inputs/ named by its SHA-256, referenced from the event."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(buf, format="PNG")
    png = buf.getvalue()
    rec = _one(tmp_path, decision=make_decision("block", stage="image"), image_bytes=png, store_images="full")
    assert (tmp_path / rec["input"]["path"]).read_bytes() == png
    assert len(rec["input"]["phash"]) == 16


def test_unknown_fields_are_rejected_not_logged(tmp_path: Path) -> None:
    """A field outside the event schema (e.g. a raw prompt passed by mistake) is an error, not a leak."""
    with audit.AuditLog(tmp_path) as log, pytest.raises(pydantic.ValidationError):
        audit.processors.audit_logger(log).info("decision", stage="prompt", prompt=SECRET_PROMPT)
    assert read_records(tmp_path) == []


def test_events_pass_through_the_structlog_processor_chain(tmp_path: Path) -> None:
    """The chain stamps id, ts and node before the sink sees the event."""
    seen: list[AuditEvent] = []

    class Collecting:
        node, residency = "n1", "r1"

        def write(self, event: AuditEvent) -> str:
            seen.append(event)
            return event.id

        def salted_digest(self, data: bytes) -> str:
            return "d" * 64

    event_id = audit.record_decision(Collecting(), make_decision(), input_text="x")
    assert seen[0].id == event_id
    assert (seen[0].node, seen[0].residency, seen[0].input.salted_sha256) == ("n1", "r1", "d" * 64)
    assert seen[0].ts.endswith("Z")


def test_required_audit_dir_refuses_to_run_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy with audit.required: true and no --audit-dir / env var is refused with a clear message."""
    monkeypatch.delenv(audit.AUDIT_DIR_ENV, raising=False)
    with pytest.raises(audit.AuditDirRequiredError, match="--audit-dir"):
        audit.resolve_audit_dir(None, required=True, policy_id="strict")


def test_audit_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FLUXWARDEN_AUDIT_DIR is used when no directory is passed explicitly."""
    monkeypatch.setenv(audit.AUDIT_DIR_ENV, str(tmp_path))
    assert audit.resolve_audit_dir(None, required=True) == tmp_path


def test_secrets_are_owner_only(tmp_path: Path) -> None:
    """The salt and the signing key are created with mode 0600."""
    audit.AuditLog(tmp_path).close()
    assert (tmp_path / "salt").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "signing_key.pem").stat().st_mode & 0o777 == 0o600


def test_index_never_holds_input_text(tmp_path: Path) -> None:
    """Even with store_inputs: full, the query index keeps routing fields only."""
    with audit.AuditLog(tmp_path) as log:
        audit.record_decision(log, make_decision(), input_text=SECRET_PROMPT, store_inputs="full")
    with AuditIndex(tmp_path) as index:
        index.update()
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    dump = json.dumps([list(r) for r in conn.execute("SELECT * FROM events")])
    conn.close()
    assert "zebra" not in dump

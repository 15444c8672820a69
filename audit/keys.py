"""Per-log-directory secrets: the salt for input digests and the Ed25519 checkpoint key.

Both are created on first use, readable only by the owner (0600), and published atomically (write
a temporary file, then hard-link it into place) so that several worker processes starting at once
agree on one salt and one key. The public key is written beside the private one for convenience;
real tamper-evidence needs a copy kept somewhere the log's writers cannot change (see docs/audit.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SALT_FILE = "salt"
PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "signing_key.pub"


class AuditKeyError(RuntimeError):
    """A salt or key file that exists but cannot be used."""


def _publish_once(path: Path, data: bytes, mode: int) -> bytes:
    """Create `path` with `data` unless it exists; return what the file holds afterwards."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def load_or_create_salt(directory: Path) -> bytes:
    path = directory / SALT_FILE
    raw = path.read_bytes() if path.exists() else _publish_once(path, secrets.token_hex(32).encode(), 0o600)
    try:
        salt = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise AuditKeyError(f"{path}: salt file is not hex") from None
    if len(salt) < 16:
        raise AuditKeyError(f"{path}: salt is {len(salt)} bytes; at least 16 are needed")
    return salt


def salted_digest(salt: bytes, data: bytes) -> str:
    """HMAC-SHA256 keyed with the directory's salt: equal inputs correlate, dictionaries cannot invert it."""
    return hmac.new(salt, data, hashlib.sha256).hexdigest()


def load_or_create_signing_key(directory: Path, path: Path | None = None) -> Ed25519PrivateKey:
    """The checkpoint signing key: `path` if given (must exist), else `directory/signing_key.pem`."""
    if path is not None:
        if not path.exists():
            raise AuditKeyError(f"signing key {path} does not exist")
        return _read_private_key(path)
    key_path = directory / PRIVATE_KEY_FILE
    if not key_path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _publish_once(key_path, pem, 0o600)
    key = _read_private_key(key_path)
    pub_path = directory / PUBLIC_KEY_FILE
    if not pub_path.exists():
        _publish_once(pub_path, public_pem(key.public_key()), 0o644)
    return key


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path}: not an Ed25519 key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise AuditKeyError(f"{path}: cannot read public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path}: not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]

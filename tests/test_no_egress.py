"""No egress: the whole moderation path runs with every non-loopback connection made to fail.

Operators self-host to keep data in their jurisdiction; this shows that prompt checks (rules and
the embedding model), a generation, image checks (NudeNet, open-NSFW), rendering and the audit
log need no network. The guard wraps Python's socket layer (connect, connect_ex, DNS lookups),
which every HTTP client and the model hubs go through.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

import audit
from audit.verify import verify


def _loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_egress(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make every non-loopback connection (and DNS lookup) fail; yields the refused attempts."""
    attempts: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _loopback(address):
            attempts.append(address)
            raise OSError(errno.ENETUNREACH, f"egress blocked by test: {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _loopback(address):
            attempts.append(address)
            return errno.ENETUNREACH
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback((host.decode() if isinstance(host, bytes) else host, 0)):
            attempts.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"DNS blocked by test: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def test_guard_refuses_outside_connections(no_egress: list[Any]) -> None:
    """The guard itself works: a connection to a public address fails and is recorded."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(OSError, match="egress blocked"):
        sock.connect(("203.0.113.7", 443))
    with pytest.raises(socket.gaierror):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    assert no_egress == [("203.0.113.7", 443), "huggingface.co"]


def test_guard_allows_loopback(no_egress: list[Any]) -> None:
    """Loopback stays usable (the sidecar listens there), so the guard is not simply 'no sockets'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
    assert no_egress == []


@pytest.mark.slow
def test_whole_moderation_path_runs_without_network(no_egress: list[Any], tmp_path: Path) -> None:
    """Default policy, real classifiers, a local FLUX pipeline and the audit log all work offline."""
    import torch

    from moderation.moderator import Moderator
    from moderation.pipeline import ModeratedPipeline, PromptBlockedError
    from moderation.testing import tiny_flux_pipeline

    with audit.AuditLog(tmp_path, fsync="always") as log:
        moderator = Moderator.from_policy("default", audit=log)
        pipe = tiny_flux_pipeline(seed=0)
        pipe.set_progress_bar_config(disable=True)
        guarded = ModeratedPipeline(pipe, moderator)
        call = {"height": 64, "width": 64, "num_inference_steps": 2, "generator": torch.Generator().manual_seed(0)}
        result = guarded("a lighthouse at dawn", **call)
        with pytest.raises(PromptBlockedError):
            guarded("a nude woman on a beach", **call)
        moderator.close()
    assert len(result.images) == 1
    assert [d.stage.value for d in result.prompt_decisions] == ["prompt"]
    assert len(result.image_decisions) == 1
    report = verify(tmp_path)
    assert report.ok, report.as_dict()
    records = [r for r in _records(tmp_path) if r["kind"] == "decision"]
    assert {r["stage"] for r in records} == {"prompt", "image"}
    assert any(r["action"] == "block" for r in records)
    assert no_egress == []


def _records(directory: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for seg in sorted(directory.glob("segment-*.jsonl")) for line in seg.open("rb")]

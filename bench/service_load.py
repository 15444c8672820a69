"""Load benchmark for the sidecar's /v1/moderations: throughput and latency at several concurrencies.

Starts `fluxwarden serve` as a subprocess (or targets --url), drives it with a minimal keep-alive
HTTP/1.1 client (asyncio streams, so the load generator itself costs little CPU), and prints per
concurrency: requests/s, p50/p99 latency, errors; then RSS of the server after a sustained run.

    .venv/bin/python bench/service_load.py                       # full: 20 s per level, 5 min sustained
    .venv/bin/python bench/service_load.py --phase-seconds 5 --duration 30
    .venv/bin/python bench/service_load.py --server-cpus 0,1 --client-cpus 2,3   # pin (on bigger hosts)

Targets (issue): >= 400 requests/s at p99 <= 50 ms on 2 cores for one short prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
PROMPT = "a red bicycle leaning against a brick wall at sunset"


@dataclass
class Phase:
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu_s: float | None = None

    @property
    def cpu_ms_per_request(self) -> float:
        if self.server_cpu_s is None or not self.latencies_ms:
            return float("nan")
        return self.server_cpu_s * 1000 / len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _request_bytes(host: str, port: int, body: bytes, auth: str | None) -> bytes:
    headers = [
        "POST /v1/moderations HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    if auth:
        headers.append(f"Authorization: Bearer {auth}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _worker(  # noqa: PLR0917 - a task body, called in one place
    host: str, port: int, next_request: Callable[[], bytes], phase: Phase, stop_at: float, record: bool
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while time.perf_counter() < stop_at:
            request = next_request()
            start = time.perf_counter()
            writer.write(request)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                phase.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            elapsed = (time.perf_counter() - start) * 1000
            if record:
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
                if status == 200:
                    phase.latencies_ms.append(elapsed)
                else:
                    phase.errors += 1
    finally:
        writer.close()


async def run_phase(  # noqa: PLR0917 - a benchmark helper with defaults
    url: str,
    concurrency: int,
    seconds: float,
    auth: str | None,
    warmup: float = 1.0,
    pid: int | None = None,
    distinct: bool = False,
) -> Phase:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    fixed = _request_bytes(host, port, json.dumps({"input": PROMPT}).encode(), auth)
    counter = itertools.count()

    def request() -> bytes:
        # --distinct: a different text every time, so the server cannot reuse work for repeated prompts
        if not distinct:
            return fixed
        return _request_bytes(host, port, json.dumps({"input": f"{PROMPT}, variant {next(counter)}"}).encode(), auth)

    if warmup:
        await asyncio.gather(
            *(
                _worker(host, port, request, Phase(concurrency, 0), time.perf_counter() + warmup, False)
                for _ in range(concurrency)
            )
        )
    phase = Phase(concurrency, seconds)
    cpu_start = cpu_seconds(pid) if pid else None
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(_worker(host, port, request, phase, stop_at, True) for _ in range(concurrency)))
    if pid and cpu_start is not None:
        phase.server_cpu_s = cpu_seconds(pid) - cpu_start
    return phase


def _tree(pid: int) -> list[int]:
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn workers): robust on a busy host."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_mib(pid: int) -> float:
    """RSS of a process and its children (uvicorn workers), in MiB."""
    total = 0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _cpus(text: str | None) -> set[int] | None:
    return {int(c) for c in text.split(",")} if text else None


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "service.cli", "serve",
        "--port", str(port), "--policy", args.policy, "--model", args.model, "--workers", str(args.workers),
    ]  # fmt: skip
    server_cpus = _cpus(args.server_cpus)
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if args.quiet else None,
        preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus)) if server_cpus else None,  # noqa: PLW1509
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not become ready in 300 s")


def _fmt(phase: Phase, label: str) -> str:
    return (
        f"{label:>12} {phase.concurrency:>4} {len(phase.latencies_ms):>9} {phase.rps:>9.1f} "
        f"{phase.percentile(0.5):>8.2f} {phase.percentile(0.99):>8.2f} {phase.errors:>7} {phase.cpu_ms_per_request:>10.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="Target a running server instead of starting one.")
    parser.add_argument("--api-key", help="Bearer key for --url servers with auth.")
    parser.add_argument("--concurrency", default="1,8,16,32", help="Comma-separated concurrency levels.")
    parser.add_argument("--phase-seconds", type=float, default=20.0, help="Measured seconds per level.")
    parser.add_argument("--duration", type=float, default=300.0, help="Sustained run (s) before measuring RSS.")
    parser.add_argument("--sustained-concurrency", type=int, default=32)
    parser.add_argument("--distinct", action="store_true", help="A different prompt per request (no reuse).")
    parser.add_argument("--policy", default="default")
    parser.add_argument("--model", default="tiny", help="Server --model (tiny loads the random FLUX too).")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server-cpus", help="Pin the started server to these CPUs, e.g. 0,1.")
    parser.add_argument("--client-cpus", help="Pin this load generator to these CPUs.")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--quiet", action="store_true", help="Hide the server's log.")
    args = parser.parse_args()

    client_cpus = _cpus(args.client_cpus)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args)
    try:
        phases = []
        rss_start = rss_mib(proc.pid) if proc else None
        print(
            f"target {url}  prompt {len(PROMPT)} chars  cpus {os.cpu_count()}  server cpus {args.server_cpus or 'all'}"
        )
        print(
            f"{'phase':>12} {'conc':>4} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'srv cpu ms':>10}"
        )
        for level in (int(c) for c in args.concurrency.split(",")):
            phase = asyncio.run(
                run_phase(
                    url, level, args.phase_seconds, args.api_key, pid=proc.pid if proc else None, distinct=args.distinct
                )
            )
            phases.append(phase)
            print(_fmt(phase, "level"), flush=True)
        sustained = None
        if args.duration > 0:
            sustained = asyncio.run(
                run_phase(
                    url,
                    args.sustained_concurrency,
                    args.duration,
                    args.api_key,
                    warmup=0,
                    pid=proc.pid if proc else None,
                    distinct=args.distinct,
                )
            )
            print(_fmt(sustained, f"sustained {args.duration:g}s"), flush=True)
        rss_end = rss_mib(proc.pid) if proc else None
        if proc:
            print(f"server RSS: {rss_start:.0f} MiB after start-up, {rss_end:.0f} MiB after the sustained run")
        if args.json:
            figures = {
                "url": url,
                "phases": [
                    {"concurrency": p.concurrency, "requests": len(p.latencies_ms), "rps": p.rps,
                     "p50_ms": p.percentile(0.5), "p99_ms": p.percentile(0.99), "errors": p.errors,
                     "server_cpu_ms_per_request": p.cpu_ms_per_request}
                    for p in [*phases, *([sustained] if sustained else [])]
                ],
                "rss_mib_start": rss_start,
                "rss_mib_end": rss_end,
                "median_rps": statistics.median(p.rps for p in phases),
            }  # fmt: skip
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

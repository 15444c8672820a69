"""Time `fluxwarden --help` and a rules-only `check prompt` in fresh processes (median of N runs).

.venv/bin/python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = [sys.executable, "-m", "moderation.cli"]
    print(f"fluxwarden --help            median {_time([*base, '--help'], args.runs) * 1000:7.1f} ms")
    print(
        f"fluxwarden policy validate   median {_time([*base, 'policy', 'validate', 'default'], args.runs) * 1000:7.1f} ms"
    )


if __name__ == "__main__":
    main()

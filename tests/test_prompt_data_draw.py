"""The training data draw is the same in every process (Python salts str hashes per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRAW = (
    "import hashlib, sys; sys.path.insert(0, sys.argv[1]); from scripts import prompt_data; "
    "rows = list(prompt_data._chat()); "
    "print(len(rows), hashlib.sha256('\\n'.join(r.text for r in rows).encode()).hexdigest())"
)


def _draw(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", DRAW, str(REPO)], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_chat_negatives_do_not_depend_on_the_hash_seed() -> None:
    """The 9,000 chit-chat turns were drawn from a set in set order: a different draw per process."""
    first = _draw("1")
    assert first.startswith("9000 ")
    assert _draw("2") == first

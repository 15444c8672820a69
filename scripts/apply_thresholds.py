"""Write the shipped head's validation-chosen thresholds into the preset policies.

    .venv/bin/python scripts/apply_thresholds.py [--check]

Reads `thresholds_from_val`, `lexicon_cap_from_val` and `corroboration_from_val` from
classifiers/assets/prompt_head.metrics.json (written by scripts/train_prompt_head.py from the
*validation* split only) and rewrites, in
policies/{default,strict,permissive}.yaml, the numbers of each head category's line in place: the
actions a preset lists stay the ones it lists (permissive only flags sexual prompts, for example),
comments and every other line are untouched. `--check` exits 1 if a policy is out of date.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = REPO / "classifiers" / "assets" / "prompt_head.metrics.json"
PRESETS = ("default", "strict", "permissive")
_LINE = re.compile(r"^(?P<indent>\s+)(?P<cat>[a-z/-]+): \{(?P<body>[^}]*)\}(?P<rest>.*)$")
_HEAD_COMMENT = re.compile(r"(by scripts/train_prompt_head\.py for head )\S+?(:?)$")
_LEXICON = re.compile(r"^(?P<head>\s+- \{name: lexicon, options: \{)(?P<body>[^}]*)(?P<tail>\}\}.*)$")


def _set_options(body: str, options: dict[str, float]) -> str:
    """`cap: 1, max_evidence: 8` with `options` set in place (added at the end when missing)."""
    items = [item.split(":", 1) for item in body.split(",") if item.strip()]
    current = {k.strip(): v.strip() for k, v in items}
    current.update({k: f"{v:g}" for k, v in options.items()})
    return ", ".join(f"{k}: {v}" for k, v in current.items())


def rewrite(
    text: str, thresholds: dict[str, dict[str, float]], version: str, lexicon: dict[str, float] | None = None
) -> str:
    """Only lines inside the top-level `prompt:` section change (the image stage has its own `sexual`).

    `lexicon` sets the lexicon's options (`cap`, `corroborate_below`, `corroborate_at`) where the
    preset lists the classifier (default.yaml; the others inherit it)."""
    out = []
    section = ""
    for raw in text.splitlines():
        line = raw
        if line and not line[0].isspace() and not line.startswith("#"):
            section = line.split(":")[0]
        m = _LINE.match(line)
        if section == "prompt" and m and m["cat"] in thresholds:
            new = thresholds[m["cat"]]
            parts = []
            for item in m["body"].split(","):
                action = item.split(":")[0].strip()
                parts.append(f"{action}: {new[action]:g}" if action in new else item.strip())
            line = f"{m['indent']}{m['cat']}: {{{', '.join(parts)}}}{m['rest']}"
        elif section == "prompt" and lexicon and (s := _LEXICON.match(line)):
            line = f"{s['head']}{_set_options(s['body'], lexicon)}{s['tail']}"
        elif section == "prompt":
            line = _HEAD_COMMENT.sub(lambda c: f"{c[1]}{version}{c[2]}", line)
        out.append(line)
    return "\n".join(out) + "\n"


def lexicon_options(metrics: dict) -> dict[str, float]:
    """The lexicon options chosen on validation: its cap, and which terms a model must corroborate."""
    out: dict[str, float] = {}
    if cap := metrics.get("lexicon_cap_from_val"):
        out["cap"] = float(cap["cap"])
    if corroboration := metrics.get("corroboration_from_val"):
        out["corroborate_below"] = float(corroboration["corroborate_below"])
        out["corroborate_at"] = float(corroboration["corroborate_at"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="report stale policies instead of writing")
    args = ap.parse_args()
    metrics = json.loads(METRICS.read_text())
    version = metrics["meta"]["version"]
    stale = []
    for preset in PRESETS:
        path = REPO / "policies" / f"{preset}.yaml"
        old = path.read_text()
        new = rewrite(old, metrics["thresholds_from_val"][preset], version, lexicon_options(metrics))
        if new != old:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    print(("stale: " if args.check else "updated: ") + (", ".join(stale) or "none"))
    sys.exit(1 if args.check and stale else 0)


if __name__ == "__main__":
    main()

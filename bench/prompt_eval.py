"""Prompt-stage accuracy against peers, per dataset, in one run:

    .venv/bin/python bench/prompt_eval.py            # prints a markdown table (docs/evaluation.md)

Systems: fluxwarden's full stack under the default policy (Moderator), each of its prompt
classifiers alone (at the default policy's thresholds), and peers: alt-profanity-check,
better-profanity and a keyword filter over the SneakyPrompt NSFW word list.

Metrics: recall = unsafe prompts flagged or blocked; FPR = safe prompts flagged or blocked;
AUPRC = average precision of the system's score for "unsafe" (any category), with a seeded
bootstrap 95% interval (rows resampled with replacement). The full stack is also scored over the
13 OpenAI-taxonomy categories only ("OpenAI categories" row: same decisions, but its "any" score
leaves out public-figure and living-artist-style, which no evaluation set labels). The OpenAI
moderation set, XSTest, HarmBench and the two written T2I sets in bench/data/ are evaluation-only;
every other set is its seeded *test* part (scripts/prompt_data.py), never seen in training or
threshold choice.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from scripts import prompt_data  # noqa: E402

if TYPE_CHECKING:
    from moderation.policy import Policy

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# (score in [0, 1] for "unsafe", flagged?) per text; a scorer may also return several named outputs
Output = tuple[np.ndarray, np.ndarray]
Scorer = Callable[[Sequence[str]], Output | dict[str, Output]]
BOOTSTRAP_ROUNDS = 1000


@dataclass
class EvalSet:
    name: str
    texts: list[str]
    labels: np.ndarray  # 1 unsafe, 0 safe
    note: str


def eval_sets() -> list[EvalSet]:
    def from_pairs(name: str, pairs: list[tuple[str, int]], note: str) -> EvalSet:
        return EvalSet(name, [t for t, _ in pairs], np.asarray([y for _, y in pairs]), note)

    # i2p_clean is not trained on by the shipped head; its test part is read like the others'.
    rows = [r for r in prompt_data.load_training_rows(i2p_clean=True) if r.split == "test"]

    def test_part(name: str, sources: tuple[str, ...], note: str) -> EvalSet:
        part = [r for r in rows if r.source in sources]
        return EvalSet(name, [r.text for r in part], np.asarray([int(r.unsafe) for r in part]), note)

    return [
        from_pairs("openai_moderation", prompt_data.openai_moderation(), "eval-only, 1,680, any category"),
        from_pairs("xstest", prompt_data.xstest(), "eval-only, 250 safe / 200 unsafe"),
        from_pairs("harmbench", prompt_data.harmbench(), "eval-only, 200 harmful requests"),
        from_pairs("t2i_probe_dev", prompt_data.t2i_probe("dev"), "eval-only, T2I probe, half looked at"),
        from_pairs("t2i_probe_held", prompt_data.t2i_probe("held"), "eval-only, T2I probe, half never looked at"),
        from_pairs("t2i_common", prompt_data.t2i_common(), "eval-only, everyday T2I prompts, all benign"),
        from_pairs("t2i_probe2", prompt_data.t2i_probe2(), "eval-only, second T2I probe (twelfth session), read"),
        from_pairs("t2i_probe3", prompt_data.t2i_probe3(), "eval-only, third T2I probe (thirteenth session), unread"),
        from_pairs(
            "t2i_probe4",
            prompt_data.t2i_probe4(),
            "eval-only, fourth T2I probe (fifteenth session), used once as a gate",
        ),
        test_part("t2i_benign", ("partiprompts", "drawbench", "coco"), "test part: Parti + DrawBench + COCO"),
        test_part("rece", ("rece",), "test part, explicit-intent T2I prompts"),
        test_part("ringabell", ("ringabell", "ringabell_pairs"), "test part, adversarial violence"),
        test_part("nibbler", ("adversarial_nibbler",), "test part, validated text-unsafe"),
        test_part("i2p_cut", ("i2p",), "test part, nudity>=50% or inappropriate>=50% & toxicity>=0.5"),
        test_part("i2p_clean", ("i2p_clean",), "test part, real lexica prompts whose images came out clean"),
        test_part("written", ("written",), "test part, prompts written for fluxwarden"),
        test_part("written_texts", ("written_texts",), "test part, general texts written for fluxwarden"),
        test_part(
            "written_t2i", ("written_t2i",), "test part, T2I look-alikes and unsafe prompts written for fluxwarden"
        ),
        test_part("chitchat", ("chitchat",), "test part, benign open-domain chat"),
    ]


def _flag_by_policy(scores: list[dict[str, float]], policy: object) -> np.ndarray:
    from moderation.types import Stage

    rules = {str(k): v for k, v in policy.rules(Stage.PROMPT).items()}  # type: ignore[attr-defined]
    return np.asarray(
        [any(cat in rules and rules[cat].triggered(s) is not None for cat, s in sc.items()) for sc in scores]
    )


CANDIDATE: list[Path] = []  # --candidate: a head folder from train_prompt_head.py --out, with its thresholds


def default_policy() -> Policy:
    """The shipped default policy, or with --candidate that policy with the candidate's head and
    validation thresholds (bench/validation_gates.py; nothing in the repository changes)."""
    from moderation.policy import load_policy

    if not CANDIDATE:
        return load_policy("default")
    from bench.validation_gates import candidate_policy

    return candidate_policy(CANDIDATE[0])


def full_stack() -> Scorer:
    from moderation.moderator import Moderator
    from moderation.taxonomy import OPENAI_CATEGORIES

    # The default policy as shipped, except its per-call time limit: on a shared 2-core machine a
    # batch of long OpenAI-set texts can overrun 5 s, and a timeout blocks (fail closed), which
    # would measure the machine, not the classifiers. Decisions that still carry a classifier
    # error are counted and reported.
    policy = default_policy()
    policy = policy.model_copy(update={"prompt": policy.prompt.model_copy(update={"timeout_s": 600.0})})
    moderator = Moderator(policy)
    limit = moderator.policy.max_prompt_chars

    def run(texts: Sequence[str]) -> dict[str, Output]:
        # The service refuses prompts over max_prompt_chars; here they are cut to it and scored, so
        # the 22 long OpenAI texts count by their content, not by the length rule.
        # 28 Ring-A-Bell prompts hold control characters, which the moderator refuses as input
        # errors; they are replaced by spaces here so that their content is what gets scored.
        clipped = [CONTROL.sub(" ", t[:limit]) for t in texts]
        decisions = []
        for start in range(0, len(clipped), 64):
            decisions += moderator.check_prompts(clipped[start : start + 64])
        errors = sum(any(r.code == "classifier_error" for r in d.reasons) for d in decisions)
        print(f"# fluxwarden: {errors} decisions with a classifier error", file=sys.stderr)
        score = np.asarray([max(d.category_scores.values(), default=0.0) for d in decisions])
        openai = np.asarray([max(d.category_scores.get(c.value, 0.0) for c in OPENAI_CATEGORIES) for d in decisions])
        flagged = np.asarray([d.flagged for d in decisions])
        return {"": (score, flagged), ", OpenAI categories": (openai, flagged)}

    return run


EMBEDDING_OPTIONS: dict[str, str] = {}  # --head points the embedding column at another head file


def classifier_alone(name: str, options: dict | None = None) -> Scorer:
    from classifiers import registry
    from moderation.engine import effective_scores
    from moderation.normalise import normalise
    from moderation.taxonomy import Signal

    policy = default_policy()
    # The classifier as the default policy configures it (the lexicon's cap), unless told otherwise.
    configured = {spec.name: spec.options for spec in policy.prompt.classifiers}
    clf = registry.build(name, options or configured.get(name, {}), lists=policy.word_lists, policy=policy)

    def run(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        results = []
        for start in range(0, len(texts), 64):
            results += clf.classify([normalise(t) for t in texts[start : start + 64]])
        scores = [effective_scores([r])[0] for r in results]  # alone: no model to confirm a topic word
        # sexual-if-adult is an input to the engine's minors rule, not a category score.
        any_score = [max((v for k, v in s.items() if k != Signal.SEXUAL_IF_ADULT), default=0.0) for s in scores]
        return np.asarray(any_score), _flag_by_policy(scores, policy)

    return run


def alt_profanity_check() -> Scorer:
    from profanity_check import predict_prob

    def run(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(predict_prob(list(texts)), dtype=float)
        return p, p >= 0.5

    return run


def better_profanity() -> Scorer:
    from better_profanity import profanity

    profanity.load_censor_words()

    def run(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        hit = np.asarray([profanity.contains_profanity(t) for t in texts])
        return hit.astype(float), hit

    return run


def sneakyprompt_keywords() -> Scorer:
    words = sorted({w.strip().lower() for w in prompt_data.sneakyprompt_words() if w.strip()}, key=len, reverse=True)
    pattern = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in words) + r")(?![a-z0-9])")

    def run(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        hit = np.asarray([bool(pattern.search(t.lower())) for t in texts])
        return hit.astype(float), hit

    return run


SYSTEMS: dict[str, Callable[[], Scorer]] = {
    "fluxwarden (default policy)": full_stack,
    "embedding alone": lambda: classifier_alone("embedding", EMBEDDING_OPTIONS),
    "lexicon alone": lambda: classifier_alone("lexicon"),
    "names alone": lambda: classifier_alone("names"),
    "minors alone": lambda: classifier_alone("minors"),
    "alt-profanity-check": alt_profanity_check,
    "better-profanity": better_profanity,
    "sneakyprompt keywords": sneakyprompt_keywords,
}


def _auprc(score: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import average_precision_score

    if labels.min() == labels.max():
        return None
    return float(average_precision_score(labels, score))


def _auprc_interval(score: np.ndarray, labels: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS) -> str:
    """AUPRC with a seeded bootstrap 95% interval: the sets are small and peers differ by a few points."""
    point = _auprc(score, labels)
    if point is None:
        return _fmt(None)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(rounds):
        pick = rng.integers(0, len(labels), len(labels))
        if labels[pick].min() != labels[pick].max():
            draws.append(_auprc(score[pick], labels[pick]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return f"{point:.3f} ({low:.3f}–{high:.3f})"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS), help="subset of: " + ", ".join(SYSTEMS))
    ap.add_argument("--sets", nargs="*", help="only these datasets (default: all)")
    ap.add_argument("--head", type=Path, help="embedding column: use this head .npz instead of the shipped one")
    ap.add_argument(
        "--candidate",
        type=Path,
        help="fluxwarden columns: this train_prompt_head.py --out folder's head, tuned layer and validation "
        "thresholds instead of the shipped ones (in memory)",
    )
    args = ap.parse_args()
    if args.head:
        EMBEDDING_OPTIONS["head_path"] = str(args.head)
    if args.candidate:
        CANDIDATE.append(args.candidate)
        print(f"# fluxwarden and embedding columns: candidate head {args.candidate}, its validation thresholds")

    sets = [s for s in eval_sets() if not args.sets or s.name in args.sets]
    texts = sorted({t for s in sets for t in s.texts})
    index = {t: i for i, t in enumerate(texts)}
    outputs: dict[str, Output | str] = {}
    for name in args.systems:
        t0 = time.perf_counter()
        try:
            scorer = SYSTEMS[name]()
            out = scorer(texts)
            outputs.update({name + suffix: o for suffix, o in out.items()} if isinstance(out, dict) else {name: out})
        except Exception as exc:  # a system that cannot run is reported, not silently dropped
            outputs[name] = f"{type(exc).__name__}: {exc}"[:120]
        print(f"# {name}: {time.perf_counter() - t0:.1f}s for {len(texts)} texts", file=sys.stderr, flush=True)

    for s in sets:
        pos, neg = int(s.labels.sum()), int(len(s.labels) - s.labels.sum())
        print(f"\n### {s.name} ({s.note}; {pos} unsafe / {neg} safe)\n")
        print("| system | recall | FPR | AUPRC (95% bootstrap interval) |\n|---|---|---|---|")
        idx = np.asarray([index[t] for t in s.texts])
        for name, out in outputs.items():
            if isinstance(out, str):
                print(f"| {name} | n/a ({out}) | | |")
                continue
            score, flagged = out[0][idx], out[1][idx]
            recall = float(flagged[s.labels == 1].mean()) if pos else None
            fpr = float(flagged[s.labels == 0].mean()) if neg else None
            print(f"| {name} | {_fmt(recall)} | {_fmt(fpr)} | {_auprc_interval(score, s.labels)} |")


if __name__ == "__main__":
    main()

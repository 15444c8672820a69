"""Train the embedding classifier's head (and optionally the encoder's top layer): seeded, reproducible.

    .venv/bin/python scripts/train_prompt_head.py                     # what ships: see docs/model_card.md
    .venv/bin/python scripts/train_prompt_head.py --head lr --no-write  # compare a variant, write nothing

Data: scripts/prompt_data.py (mapping table and split). Only the *train* part is fitted; the
*val* part picks the head's hyper-parameters, its calibration and the policy thresholds; the
*test* part is reported. The OpenAI moderation set, XSTest and HarmBench are never read here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from classifiers.embedding import HEAD_FILE, PromptHead, assets_dir, lexical_terms  # noqa: E402
from classifiers.minilm_encoder import (  # noqa: E402
    MiniLMEncoder,
    Windowing,
    WindowTokenizer,
    export_key,
    load_torch_model,
    model_dir,
)
from classifiers.word_toxicity import WORD_MODEL_FILE, WordToxicityModel  # noqa: E402
from scripts import prompt_data  # noqa: E402
from scripts.prompt_data import HEAD_CATEGORIES, SEED, Row, load_training_rows  # noqa: E402

CACHE = REPO / ".cache" / "train_embeddings"
T2I_BENIGN = ("partiprompts", "drawbench", "coco")


def embed_cached(encoder: MiniLMEncoder, texts: list[str], key: str) -> np.ndarray:
    """First-window embeddings, cached on disk by text hash so variants retrain in seconds."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.npz"
    store: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            store = dict(zip(data["keys"].tolist(), data["vecs"], strict=True))
    hashes = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    todo = sorted({h: t for h, t in zip(hashes, texts, strict=True) if h not in store}.items())
    if todo:
        print(f"embedding {len(todo)} new texts", flush=True)
        t0 = time.time()
        for start in range(0, len(todo), 2048):
            chunk = todo[start : start + 2048]
            vecs = encoder.embed([t for _, t in chunk])
            store.update({h: v for (h, _), v in zip(chunk, vecs, strict=True)})
            print(f"  {start + len(chunk)}/{len(todo)} {time.time() - t0:.0f}s", flush=True)
        # Write then rename: two training runs side by side must not leave a torn cache behind.
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.asarray(list(store)), vecs=np.stack(list(store.values())))
        os.replace(tmp, path)
    return np.stack([store[h] for h in hashes])


def label_matrix(rows: list[Row]) -> tuple[np.ndarray, np.ndarray]:
    """Y (0/1) and M (1 where the label is known), [n_rows, n_categories]."""
    y = np.zeros((len(rows), len(HEAD_CATEGORIES)), dtype=np.float32)
    m = np.zeros_like(y)
    for i, row in enumerate(rows):
        for j, cat in enumerate(HEAD_CATEGORIES):
            if cat in row.labels:
                y[i, j] = row.labels[cat]
                m[i, j] = 1.0
    return y, m


def source_weights(rows: list[Row], cap: int) -> np.ndarray:
    """Each source counts at most `cap` rows' worth, so 24k tweets do not outvote 100 T2I prompts."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.source] = counts.get(r.source, 0) + 1
    return np.asarray([min(1.0, cap / counts[r.source]) for r in rows], dtype=np.float32)


def cap_sources(rows: list[Row], cap: int, seed: int) -> list[Row]:
    """A seeded subset with at most `cap` rows per source (keeps fine-tuning within minutes)."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[Row]] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    out: list[Row] = []
    for src in sorted(by_source):
        group = by_source[src]
        if len(group) > cap:
            group = [group[i] for i in sorted(rng.choice(len(group), cap, replace=False))]
        out += group
    return out


def train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    m: np.ndarray,
    w: np.ndarray,
    *,
    hidden: int,
    epochs: int,
    seed: int,
    weight_decay: float = 1e-4,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Masked multi-label BCE; hidden=0 is per-category logistic regression (one shared optimiser)."""
    import torch

    torch.manual_seed(seed)
    n_in, n_out = x.shape[1], y.shape[1]
    layers: list[torch.nn.Module] = (
        [torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(hidden, n_out)]
        if hidden
        else [torch.nn.Linear(n_in, n_out)]
    )
    net = torch.nn.Sequential(*layers)
    # Positive weight per category so rare categories are not ignored.
    pos = (y * m * w[:, None]).sum(0)
    neg = ((1 - y) * m * w[:, None]).sum(0)
    pos_weight = torch.tensor(np.clip(neg / np.maximum(pos, 1.0), 1.0, 50.0) ** 0.5, dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=weight_decay)
    xt, yt, mt, wt = (torch.from_numpy(a) for a in (x, y, m, w))
    gen = torch.Generator().manual_seed(seed)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=gen).split(256):
            opt.zero_grad()
            loss = (loss_fn(net(xt[idx]), yt[idx]) * mt[idx] * wt[idx, None]).sum() / mt[idx].sum().clamp(min=1)
            loss.backward()
            opt.step()
    net.eval()
    linear = [mod for mod in net if isinstance(mod, torch.nn.Linear)]
    return (
        [mod.weight.detach().numpy().T.copy() for mod in linear],
        [mod.bias.detach().numpy().copy() for mod in linear],
    )


def merge_heads(
    heads: list[tuple[list[np.ndarray], list[np.ndarray]]], shares: Sequence[Any] | np.ndarray | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """K one-hidden-layer MLPs as one MLP K times as wide whose logits are their weighted mean (equal
    shares unless given): the hidden layers side by side, the output layers stacked and scaled by
    their shares. The shipped file and the run-time code stay the same; the cost is one wider
    matrix product. `shares` is one weight per head, or one row of per-category weights per head
    (a category can keep one head's logits while others are blended)."""
    if len(heads) == 1:
        return heads[0]
    if any(len(w) != 2 for w, _ in heads):
        raise ValueError("only one-hidden-layer heads can be merged")
    n_out = heads[0][0][1].shape[1]
    share = np.full(len(heads), 1.0 / len(heads)) if shares is None else np.asarray(shares, dtype=np.float64)
    if share.ndim == 1:
        share = np.repeat(share[:, None], n_out, axis=1)
    if share.shape != (len(heads), n_out) or (share < 0).any() or not np.allclose(share.sum(axis=0), 1.0):
        raise ValueError(
            "shares must be one non-negative weight per head (or per head and category), summing to 1 per category"
        )
    weights = [
        np.hstack([w[0] for w, _ in heads]),
        np.vstack([w[1] * s for (w, _), s in zip(heads, share, strict=True)]).astype(np.float32),
    ]
    biases = [
        np.concatenate([b[0] for _, b in heads]),
        np.sum([b[1] * s for (_, b), s in zip(heads, share, strict=True)], axis=0).astype(np.float32),
    ]
    return weights, biases


def blend_shares(categories: Sequence[str], share: float, keep: Sequence[str]) -> np.ndarray:
    """Per-category shares for (existing head, new heads): `share` for the existing head, except the
    `keep` categories, whose logits stay the existing head's alone."""
    unknown = sorted(set(keep) - set(categories))
    if unknown:
        raise ValueError(f"--blend-keep: unknown categories {unknown}; the head has {list(categories)}")
    own = np.asarray([1.0 if c in keep else share for c in categories])
    return np.vstack([own, 1.0 - own])


class TopLayers:
    """Fine-tune the encoder's top `k` layers + the head on cached inputs to those layers.

    The bottom layers stay frozen, so their output is computed once per text and training pays
    only for the top layers: a few minutes on 2 cores instead of an hour for the whole encoder.
    """

    def __init__(self, k: int) -> None:
        import copy

        import torch

        self.torch = torch
        self.k = k
        self.model = load_torch_model(None)
        self.n_layers = len(self.model.encoder.layer)
        self.top = copy.deepcopy(self.model.encoder.layer[self.n_layers - k :])
        self.tokenizer = WindowTokenizer(model_dir(), Windowing())

    @classmethod
    def from_delta(cls, path: Path) -> TopLayers:
        """Top layers already tuned (a `save_delta` file, e.g. the shipped one), kept frozen."""
        import torch

        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        indices = sorted({int(name.split(".")[2]) for name in arrays})
        self = cls(len(indices))
        if indices != list(range(self.n_layers - self.k, self.n_layers)):
            raise ValueError(f"{path}: tuned layers {indices} are not the encoder's top {self.k}")
        for j, layer in enumerate(self.top):
            prefix = f"encoder.layer.{self.n_layers - self.k + j}."
            state = {name[len(prefix) :]: torch.from_numpy(a.astype(np.float32)) for name, a in arrays.items()
                     if name.startswith(prefix)}  # fmt: skip
            layer.load_state_dict(state, strict=True)
        self.top.eval()
        return self

    def bottom_outputs(self, texts: list[str]) -> list:
        """fp16 hidden states entering the top layers, one [tokens, 384] tensor per text (first window)."""
        torch = self.torch
        ids, owner = self.tokenizer.windows(texts)
        first: dict[int, list[int]] = {}
        for seq, o in zip(ids, owner, strict=True):
            first.setdefault(o, seq)
        seqs = [first[i] for i in range(len(texts))]
        out: list = [None] * len(texts)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        t0 = time.time()
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                chunk = order[start : start + 64]
                input_ids, mask = self._pad([seqs[i] for i in chunk])
                h = self.model.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
                add = self._additive(mask)
                for layer in self.model.encoder.layer[: self.n_layers - self.k]:
                    h = layer(h, attention_mask=add)
                for row, i in enumerate(chunk):
                    out[i] = h[row, : len(seqs[i])].to(torch.float16).clone()
                if start % 6400 == 0:
                    print(f"  bottom {start}/{len(order)} {time.time() - t0:.0f}s", flush=True)
        return out

    def _pad(self, batch: list[list[int]]) -> tuple:
        torch = self.torch
        width = max(len(x) for x in batch)
        input_ids = torch.zeros((len(batch), width), dtype=torch.int64)
        mask = torch.zeros((len(batch), width), dtype=torch.int64)
        for row, seq in enumerate(batch):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return input_ids, mask

    def _additive(self, mask: Any) -> Any:
        torch = self.torch
        return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min

    def _batch(self, hidden: list, idx: list[int]) -> tuple:
        torch = self.torch
        width = max(hidden[i].shape[0] for i in idx)
        h = torch.zeros((len(idx), width, hidden[idx[0]].shape[1]), dtype=torch.float32)
        mask = torch.zeros((len(idx), width), dtype=torch.int64)
        for row, i in enumerate(idx):
            n = hidden[i].shape[0]
            h[row, :n] = hidden[i].float()
            mask[row, :n] = 1
        return h, mask

    def pooled(self, h: Any, mask: Any) -> Any:
        torch = self.torch
        add = self._additive(mask)
        for layer in self.top:
            h = layer(h, attention_mask=add)
        weights = mask.unsqueeze(-1).float()
        pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    def embed(self, hidden: list) -> np.ndarray:
        torch = self.torch
        self.top.eval()
        out = np.zeros((len(hidden), 384), dtype=np.float32)
        order = sorted(range(len(hidden)), key=lambda i: hidden[i].shape[0])
        with torch.inference_mode():
            for start in range(0, len(order), 128):
                chunk = order[start : start + 128]
                out[chunk] = self.pooled(*self._batch(hidden, chunk)).numpy()
        return out

    def train(
        self,
        hidden: list,
        y: np.ndarray,
        m: np.ndarray,
        w: np.ndarray,
        init: tuple[list, list],
        *,
        epochs: int,
        seed: int,
        lr: float,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Joint training of the top layers and a head initialised from the frozen-encoder head."""
        torch = self.torch
        torch.manual_seed(seed)
        weights, biases = init
        linears = [torch.nn.Linear(wt.shape[0], wt.shape[1]) for wt in weights]
        for lin, wt, bs in zip(linears, weights, biases, strict=True):
            lin.weight.data = torch.from_numpy(wt.T.copy())
            lin.bias.data = torch.from_numpy(bs.copy())
        parts: list = []
        for i, lin in enumerate(linears):
            parts.append(lin)
            if i < len(linears) - 1:
                parts += [torch.nn.ReLU(), torch.nn.Dropout(0.2)]
        head = torch.nn.Sequential(*parts)
        opt = torch.optim.AdamW(
            [{"params": self.top.parameters(), "lr": lr}, {"params": head.parameters(), "lr": 5e-4}],
            weight_decay=1e-4,
        )
        pos = (y * m * w[:, None]).sum(0)
        neg = ((1 - y) * m * w[:, None]).sum(0)
        pos_weight = torch.tensor(np.clip(neg / np.maximum(pos, 1.0), 1.0, 50.0) ** 0.5, dtype=torch.float32)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
        yt, mt, wt_ = (torch.from_numpy(a) for a in (y, m, w))
        rng = np.random.default_rng(seed)
        order = sorted(range(len(hidden)), key=lambda i: hidden[i].shape[0])
        batches = [order[s : s + 32] for s in range(0, len(order), 32)]
        self.top.train()
        head.train()
        t0 = time.time()
        for epoch in range(epochs):
            for step, b in enumerate(rng.permutation(len(batches))):
                idx = batches[b]
                h, mask = self._batch(hidden, idx)
                opt.zero_grad()
                logits = head(self.pooled(h, mask))
                mm = mt[idx] * wt_[idx, None]
                loss = (loss_fn(logits, yt[idx]) * mm).sum() / mt[idx].sum().clamp(min=1)
                loss.backward()
                opt.step()
                if step % 200 == 0:
                    print(f"  epoch {epoch} step {step}/{len(batches)} loss {loss.item():.4f} "
                          f"{time.time() - t0:.0f}s", flush=True)  # fmt: skip
        self.top.eval()
        lin_out = [mod for mod in head if isinstance(mod, torch.nn.Linear)]
        return (
            [mod.weight.detach().numpy().T.copy() for mod in lin_out],
            [mod.bias.detach().numpy().copy() for mod in lin_out],
        )

    def save_delta(self, path: Path) -> None:
        """The tuned layers as fp16 arrays named like the base model's weights."""
        arrays = {}
        for j, layer in enumerate(self.top):
            index = self.n_layers - self.k + j
            for name, tensor in layer.state_dict().items():
                arrays[f"encoder.layer.{index}.{name}"] = tensor.detach().numpy().astype(np.float16)
        np.savez_compressed(path, **arrays)


def train_lexical(
    texts: list[str], y: np.ndarray, m: np.ndarray, w: np.ndarray, *, min_df: int, c: float, prune: float
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Per-category logistic regression over binary word/bigram presence; weak weights pruned."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    docs = [lexical_terms(t) for t in texts]
    df: dict[str, int] = {}
    for d in docs:
        for term in d:
            df[term] = df.get(term, 0) + 1
    vocab = sorted(t for t, n in df.items() if n >= min_df)
    index = {t: i for i, t in enumerate(vocab)}
    indptr, indices = [0], []
    for d in docs:
        indices.extend(sorted(index[t] for t in d if t in index))
        indptr.append(len(indices))
    x = csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(docs), len(vocab)))
    weights = np.zeros((len(vocab), y.shape[1]), dtype=np.float32)
    bias = np.zeros(y.shape[1], dtype=np.float32)
    for j in range(y.shape[1]):
        known = m[:, j] > 0
        yj = y[known, j]
        if len(np.unique(yj)) < 2:
            continue
        pos_w = min(50.0, (yj == 0).sum() / max(1, (yj == 1).sum())) ** 0.5
        sw = w[known] * np.where(yj == 1, pos_w, 1.0)
        lr = LogisticRegression(C=c, max_iter=2000, solver="liblinear").fit(x[known], yj, sample_weight=sw)
        weights[:, j] = lr.coef_[0]
        bias[j] = lr.intercept_[0]
    keep = np.abs(weights).max(axis=1) >= prune
    print(f"lexical: {len(vocab)} terms, {int(keep.sum())} kept", flush=True)
    return tuple(t for t, k in zip(vocab, keep, strict=True) if k), weights[keep], bias


def fit_stacks(
    ze: np.ndarray, extras: list[np.ndarray], y: np.ndarray, m: np.ndarray
) -> list[tuple[float, float, list[float]]]:
    """Per category: (embedding weight, intercept, [weight of each extra logit]), fitted on validation."""
    out = []
    for j in range(y.shape[1]):
        known = m[:, j] > 0
        out.append(fit_stack(ze[known, j], [e[known, j] for e in extras], y[known, j]))
    return out


def fit_stack(ze: np.ndarray, extras: list[np.ndarray], y: np.ndarray) -> tuple[float, float, list[float]]:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return 1.0, 0.0, [0.0] * len(extras)
    feats = np.stack([ze, *extras], axis=1)
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(feats, y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0]), [float(c) for c in lr.coef_[0, 1:]]


def auprc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")


def evaluate(head: PromptHead, p: np.ndarray, rows: list[Row], y: np.ndarray, m: np.ndarray) -> dict:
    """Per-category AUPRC (known labels) and per-source 'any' recall / FPR at 0.5, on the given rows."""
    out: dict[str, dict] = {"category_auprc": {}, "sources": {}}
    for j, cat in enumerate(head.categories):
        known = m[:, j] > 0
        out["category_auprc"][cat] = round(auprc(p[known, j], y[known, j]), 4)
    anyp = p.max(1)
    for src in sorted({r.source for r in rows}):
        idx = np.asarray([r.source == src for r in rows])
        unsafe = np.asarray([r.unsafe for r in rows])[idx]
        flagged = anyp[idx] >= 0.5
        out["sources"][src] = {
            "n": int(idx.sum()),
            "recall@0.5": round(float(flagged[unsafe].mean()), 4) if unsafe.any() else None,
            "fpr@0.5": round(float(flagged[~unsafe].mean()), 4) if (~unsafe).any() else None,
        }
    return out


def _lowest_threshold(p: np.ndarray, negatives: np.ndarray, benign: np.ndarray, *, fpr: float,
                      benign_fpr: float, floor: float) -> float:  # fmt: skip
    """The lowest score >= floor at which at most `fpr` of the category's negatives and at most
    `benign_fpr` of the benign T2I prompts score at or above it."""
    for t in np.round(np.arange(floor, 0.991, 0.01), 2):
        over_neg = (p[negatives] >= t).mean() if negatives.any() else 0.0
        over_benign = (p[benign] >= t).mean() if benign.any() else 0.0
        if over_neg <= fpr and over_benign <= benign_fpr:
            return float(t)
    return 0.99


# Operating points per preset and action: (FPR over the category's validation negatives, FPR over
# benign T2I validation prompts, floor, FPR over benign T2I prompts for *any* category). Floors keep a
# threshold meaningful as a probability. The last budget is the union over all twelve categories: a
# prompt is flagged if any category fires, so per-category budgets alone let the total add up
# (0.5% of benign validation prompts flagged with 0.2% per category, measured).
OPERATING_POINTS = {
    "strict": {"flag": (0.10, 0.005, 0.2, 0.005), "block": (0.05, 0.002, 0.35, 0.002)},
    "default": {"flag": (0.05, 0.002, 0.3, 0.0025), "block": (0.03, 0.001, 0.5, 0.002)},
    "permissive": {"flag": (0.02, 0.001, 0.5, 0.001), "block": (0.01, 0.0005, 0.7, 0.0005)},
}


def choose_thresholds(
    p: np.ndarray, rows: list[Row], y: np.ndarray, m: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Per preset, action and category, on *validation* rows only (see OPERATING_POINTS)."""
    benign_rows = np.asarray([r.source in T2I_BENIGN for r in rows])
    presets: dict[str, dict[str, dict[str, float]]] = {}
    for preset, actions in OPERATING_POINTS.items():
        out: dict[str, dict[str, float]] = {cat: {} for cat in HEAD_CATEGORIES}
        for action, (fpr, benign_fpr, action_floor, union_fpr) in actions.items():
            for j, cat in enumerate(HEAD_CATEGORIES):
                negatives = (m[:, j] > 0) & (y[:, j] == 0)
                floor = max(action_floor, out[cat].get("flag", 0.0))
                out[cat][action] = _lowest_threshold(
                    p[:, j], negatives, benign_rows, fpr=fpr, benign_fpr=benign_fpr, floor=floor
                )
            _fit_union_budget(p[benign_rows], out, action, union_fpr)
        presets[preset] = out
    return presets


def _fit_union_budget(benign: np.ndarray, out: dict[str, dict[str, float]], action: str, budget: float) -> None:
    """Raise, 0.01 at a time, the threshold of the category that fires on the most benign prompts
    until at most `budget` of them trigger `action` in any category."""
    while len(benign):
        hits = np.stack([benign[:, j] >= out[cat][action] for j, cat in enumerate(HEAD_CATEGORIES)], axis=1)
        if hits.any(axis=1).mean() <= budget:
            return
        counts = hits.sum(axis=0)
        counts[[out[cat][action] >= 0.99 for cat in HEAD_CATEGORIES]] = -1
        worst = int(counts.argmax())
        if counts[worst] <= 0:
            return
        out[HEAD_CATEGORIES[worst]][action] = round(out[HEAD_CATEGORIES[worst]][action] + 0.01, 2)


def fit_calibration(
    args: argparse.Namespace,
    head: PromptHead,
    parts: dict[str, list[Row]],
    *,
    x_val: np.ndarray,
    ys: dict[str, tuple[np.ndarray, np.ndarray]],
    w: np.ndarray,
) -> tuple[dict[str, Any], list[tuple[float, float, list[float]]]]:
    """Stack the word-level models beside the head's logits, per category, on *validation* rows:
    the trained word/bigram model if --lexical, the word toxicity model unless --no-word-model.
    Returns the PromptHead fields for those models and the fitted (weight, intercept, extras).
    With --calibrate-on-real, fitted on real rows only, as the thresholds are: synthetic tagged
    copies calibrate the scores for a population no operator serves (with --blend-keep they moved
    the kept categories). Off by default, because the shipped head was calibrated with them."""
    n = len(HEAD_CATEGORIES)
    fields: dict[str, Any] = {}
    extras: list[np.ndarray] = []  # [n_real_val, n_categories] logits each
    real = np.asarray(
        [not args.calibrate_on_real or r.source not in prompt_data.DERIVED_SOURCES for r in parts["val"]], dtype=bool
    )
    val_texts = [r.text for r, keep in zip(parts["val"], real, strict=True) if keep]
    y_val, m_val = (a[real] for a in ys["val"])
    if args.lexical:
        y, m = ys["train"]
        vocab, lw, lb = train_lexical([r.text for r in parts["train"]], y, m, w, min_df=3, c=args.lex_c, prune=0.02)
        fields |= {"lex_vocab": vocab, "lex_weights": lw, "lex_bias": lb, "calib_lex": np.ones(n)}
        lex_head = PromptHead(HEAD_CATEGORIES, head.weights, head.biases, np.zeros(n), np.zeros(n), {}, **fields)
        extras.append(lex_head.lexical_logits(val_texts))
    if not args.no_word_model:
        fields["word_model"] = WordToxicityModel.load(assets_dir() / WORD_MODEL_FILE)
        extras.append(np.repeat(fields["word_model"].logits(val_texts)[:, None], n, axis=1))
    stack = fit_stacks(head.logits(x_val[real]), extras, y_val, m_val)
    k = 0
    if args.lexical:
        fields["calib_lex"] = np.asarray([c[k] for _, _, c in stack], dtype=np.float32)
        k += 1
    if "word_model" in fields:
        fields["calib_word"] = np.asarray([c[k] for _, _, c in stack], dtype=np.float32)
    return fields, stack


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head", choices=["lr", "mlp"], default="mlp")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--source-cap", type=int, default=3000)
    ap.add_argument("--no-general", action="store_true", help="T2I sets only (the narrow baseline)")
    ap.add_argument("--no-written", action="store_true", help="leave out every scripts/data/written_*.jsonl file")
    ap.add_argument(
        "--written-general",
        action="store_true",
        help="add scripts/data/written_general.jsonl (measured, not in the shipped head; docs/evaluation.md); "
        "pass it again with --rethreshold for such a head, whose validation rows include it",
    )
    ap.add_argument(
        "--written-t2i-implicit",
        action="store_true",
        help="add scripts/data/written_t2i_implicit.jsonl as more written_t2i rows (candidate F, measured, not "
        "shipped; docs/evaluation.md); pass it again with --rethreshold for such a head",
    )
    ap.add_argument(
        "--i2p-clean",
        action="store_true",
        help="add I2P prompts whose images came out clean as negatives (measured, not in the shipped head); "
        "pass it again with --rethreshold for such a head",
    )
    ap.add_argument(
        "--tagged",
        action="store_true",
        help="add T2I subjects rewritten with real prompts' style tags (scripts/data/style_tags.json); "
        "pass it again with --rethreshold for such a head",
    )
    ap.add_argument(
        "--tagged-unsafe-copies", type=int, default=1, help="with --tagged: tag each unsafe subject N times"
    )
    ap.add_argument("--no-chat", action="store_true", help="leave out the chit-chat negatives (chitchat-dataset)")
    ap.add_argument("--no-word-model", action="store_true", help="do not stack the word toxicity model's logit")
    ap.add_argument(
        "--calibrate-on-real",
        action="store_true",
        help="fit calibration and the word-model stack on real validation rows only, not tagged copies "
        "(measured, not in the shipped head; docs/evaluation.md)",
    )
    ap.add_argument(
        "--lexical", action="store_true", help="add the word/bigram model (measured: lower OpenAI-set AUPRC; off)"
    )
    ap.add_argument("--lex-c", type=float, default=0.5, help="inverse L2 strength of the word/bigram model")
    ap.add_argument("--finetune-top", type=int, default=0, help="also fine-tune the top N encoder layers")
    ap.add_argument("--ft-epochs", type=int, default=1)
    ap.add_argument("--max-per-source", type=int, default=0, help="cap rows per source (train; val/test a quarter)")
    ap.add_argument("--ft-lr", type=float, default=5e-5)
    ap.add_argument("--ensemble", type=int, default=1, help="average N MLP heads (seeds seed..seed+N-1)")
    ap.add_argument(
        "--top-from", type=Path, help="use these tuned top layers (a minilm_top*.npz), frozen, instead of tuning"
    )
    ap.add_argument("--blend", type=Path, help="average the new heads' logits with this head (same encoder)")
    ap.add_argument("--blend-share", type=float, default=0.5, help="with --blend: that head's share of the logits")
    ap.add_argument(
        "--blend-keep",
        type=lambda v: tuple(c.strip() for c in v.split(",") if c.strip()),
        default=(),
        help="with --blend: comma-separated categories whose logits stay that head's alone (share 1)",
    )
    ap.add_argument(
        "--davidson-offensive",
        choices=prompt_data.DAVIDSON_OFFENSIVE,
        default="harassment",
        help="what Davidson's offensive-language class is labelled (see scripts/prompt_data.py)",
    )
    ap.add_argument(
        "--rethreshold",
        action="store_true",
        help="only recompute thresholds_from_val and the lexicon cap for the head in --out",
    )
    ap.add_argument(
        "--match-recall-of",
        type=Path,
        help="default operating point: keep this head's validation recall, fewest false positives (see "
        "match_incumbent_recall), instead of the budget thresholds for sexual and violence",
    )
    ap.add_argument(
        "--match-per-source",
        action="store_true",
        help="with --match-recall-of: keep the recall of each unsafe T2I source, not only their total",
    )
    ap.add_argument("--no-write", action="store_true", help="report only; do not overwrite the shipped head")
    ap.add_argument("--out", type=Path, default=assets_dir())
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    args = ap.parse_args()
    if args.blend_keep and not args.blend:
        ap.error("--blend-keep needs --blend (the head whose logits those categories keep)")
    return args


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def train_heads(
    args: argparse.Namespace,
    parts: dict[str, list[Row]],
    *,
    xs: dict[str, np.ndarray],
    y: np.ndarray,
    m: np.ndarray,
    w: np.ndarray,
    hidden: int,
) -> tuple[list[np.ndarray], list[np.ndarray], TopLayers | None, dict[str, np.ndarray]]:
    """The head's layers (and the tuned top encoder layers, with the embeddings they give)."""
    blend = None
    if args.blend:  # checked before any training: a blend needs the other head's own encoder
        blend = PromptHead.load(args.blend)
        delta = args.blend.parent / blend.delta_file if blend.delta_file else None
        if args.top_from is None or delta is None or delta.read_bytes() != args.top_from.read_bytes():
            raise SystemExit(f"--blend {args.blend}: pass its tuned layers ({delta}) as --top-from")
    top = None
    if args.top_from:
        # The tuned layers are given and stay frozen: only heads are trained, on their embeddings.
        top = TopLayers.from_delta(args.top_from)
        xs = {s: top.embed(top.bottom_outputs([r.text for r in part])) for s, part in parts.items()}
    t0 = time.time()
    weights, biases = train_mlp(xs["train"], y, m, w, hidden=hidden, epochs=args.epochs, seed=args.seed)
    print(f"trained {args.head} in {time.time() - t0:.1f}s", flush=True)
    if args.finetune_top and not args.top_from:
        top = TopLayers(args.finetune_top)
        hidden_in = {s: top.bottom_outputs([r.text for r in part]) for s, part in parts.items()}
        t0 = time.time()
        weights, biases = top.train(
            hidden_in["train"], y, m, w, (weights, biases), epochs=args.ft_epochs, seed=args.seed, lr=args.ft_lr
        )
        print(f"fine-tuned top {args.finetune_top} layer(s) in {time.time() - t0:.0f}s", flush=True)
        xs = {s: top.embed(h) for s, h in hidden_in.items()}

    if args.ensemble > 1 and hidden:
        # Extra heads on the final (fine-tuned) embeddings, one seed each, averaged with the first.
        t0 = time.time()
        extra = [
            train_mlp(xs["train"], y, m, w, hidden=hidden, epochs=args.epochs, seed=args.seed + k)
            for k in range(1, args.ensemble)
        ]
        weights, biases = merge_heads([(weights, biases), *extra])
        print(f"trained {args.ensemble - 1} more heads in {time.time() - t0:.0f}s", flush=True)
    if blend is not None:  # averaged (by logits) with an existing head on the same encoder
        shares = blend_shares(HEAD_CATEGORIES, args.blend_share, args.blend_keep)
        weights, biases = merge_heads([(list(blend.weights), list(blend.biases)), (weights, biases)], shares)
    return weights, biases, top, xs


def main() -> None:
    args = parse_args()
    _set_threads(args.threads)
    rows = load_training_rows(
        general=not args.no_general,
        written=not args.no_written,
        chat=not args.no_chat,
        davidson_offensive=args.davidson_offensive,
        written_general=args.written_general,
        written_t2i_implicit=args.written_t2i_implicit,
        i2p_clean=args.i2p_clean,
        tagged=args.tagged,
        tagged_unsafe_copies=args.tagged_unsafe_copies,
    )
    parts = {s: [r for r in rows if r.split == s] for s in ("train", "val", "test")}
    # Thresholds use every real validation row, not the capped subset; not the tagged rows, which
    # are synthetic copies of other rows (their scores would set the operating point for a
    # population no operator serves: the tenth session's tagged heads got sexual at 0.79).
    all_val = [r for r in parts["val"] if r.source not in prompt_data.DERIVED_SOURCES]
    if args.rethreshold:
        rethreshold(args.out, all_val, args.match_recall_of, per_source=args.match_per_source)
        return
    if args.max_per_source:
        parts = {s: cap_sources(part, args.max_per_source if s == "train" else args.max_per_source // 4, args.seed)
                 for s, part in parts.items()}  # fmt: skip
    encoder = MiniLMEncoder(backend="onnx")
    xs = {s: embed_cached(encoder, [r.text for r in part], "base-" + export_key(None)) for s, part in parts.items()}
    ys = {s: label_matrix(part) for s, part in parts.items()}

    y, m = ys["train"]
    w = source_weights(parts["train"], args.source_cap)
    hidden = args.hidden if args.head == "mlp" else 0
    weights, biases, top, xs = train_heads(args, parts, xs=xs, y=y, m=m, w=w, hidden=hidden)
    n = len(HEAD_CATEGORIES)
    head = PromptHead(HEAD_CATEGORIES, tuple(weights), tuple(biases), np.ones(n), np.zeros(n), {"version": "raw"})
    extra_fields, stack = fit_calibration(args, head, parts, x_val=xs["val"], ys=ys, w=w)
    meta = build_meta(args, encoder, parts, hidden, top)
    head = PromptHead(
        HEAD_CATEGORIES, tuple(weights), tuple(biases),
        np.asarray([a for a, _, _ in stack], dtype=np.float32), np.asarray([b for _, b, _ in stack], dtype=np.float32),
        meta, **extra_fields,
    )  # fmt: skip
    probs = {s: head.probabilities(xs[s], head.word_logits([r.text for r in parts[s]])) for s in parts}
    thresholds = choose_thresholds(probs["val"], parts["val"], *ys["val"])
    report = {
        "thresholds_from_val": thresholds,
        "val": evaluate(head, probs["val"], parts["val"], *ys["val"]),
        "test": evaluate(head, probs["test"], parts["test"], *ys["test"]),
    }
    print(json.dumps(report, indent=1))
    if not args.no_write:
        write(args.out, head, top, meta, report)
        rethreshold(args.out, all_val, args.match_recall_of, per_source=args.match_per_source)


def rethreshold(out: Path, val: list[Row], match_recall_of: Path | None = None, *, per_source: bool = False) -> None:
    """Policy thresholds for the head in `out`, from *all* validation rows scored exactly as at run
    time (every normalised form, window and clause segment, max over them): thresholds picked on
    first-window scores of the original text came out too low for the full classifier, which scores
    more pieces and so reaches higher maxima on benign prompts."""
    metrics_path = out / "prompt_head.metrics.json"
    metrics = json.loads(metrics_path.read_text())
    probs = full_scores(out / HEAD_FILE, val)
    metrics["thresholds_from_val"] = choose_thresholds(probs, val, *label_matrix(val))
    metrics["thresholds_scoring"] = {"rows": len(val), "scoring": "full classifier (forms, windows, segments)"}
    metrics["lexicon_cap_from_val"] = choose_lexicon_cap(probs, val)
    metrics["corroboration_from_val"] = choose_corroboration(
        probs, val, metrics["thresholds_from_val"]["default"], metrics["lexicon_cap_from_val"]["cap"]
    )
    if match_recall_of is not None:
        metrics["matched_point_from_val"] = match_incumbent_recall(
            probs, val, metrics, match_recall_of, per_source=per_source
        )
    metrics_path.write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics["thresholds_from_val"]["default"]))
    print(json.dumps(metrics["lexicon_cap_from_val"]))
    print(json.dumps(metrics["corroboration_from_val"]))


def lowest_action_thresholds(thresholds: dict[str, dict[str, float]]) -> np.ndarray:
    """Per head category, the score from which a preset acts at all (its flag, else its block)."""
    return np.asarray([thresholds[c].get("flag", thresholds[c].get("block", 1.0)) for c in HEAD_CATEGORIES])


def full_scores(head_path: Path, rows: list[Row]) -> np.ndarray:
    """The head's category scores as at run time (every form, window and clause segment)."""
    from classifiers.embedding import EmbeddingClassifier
    from moderation.normalise import normalise

    clf = EmbeddingClassifier(head_path=head_path, backend="onnx")
    results = clf.classify([normalise(r.text) for r in rows])
    return np.asarray([[res.scores[c] for c in HEAD_CATEGORIES] for res in results], dtype=np.float32)


def stack_scores(probs: np.ndarray, val: list[Row], cap: float, floor: float) -> np.ndarray:
    """Head + word lists as the engine merges them (cap, corroboration floor, subcategory scores
    counted for their parent), per validation row and head category."""
    from classifiers.lexicon import LexiconClassifier
    from moderation.engine import effective_scores
    from moderation.normalise import normalise
    from moderation.taxonomy import PARENT
    from moderation.types import ClassifierResult

    lexicon = LexiconClassifier(cap=cap, corroborate_below=CORROBORATE_BELOW)
    stack = probs.copy()
    for i, res in enumerate(lexicon.classify([normalise(r.text) for r in val])):
        head = ClassifierResult(
            classifier="embedding", scores=dict(zip(HEAD_CATEGORIES, probs[i].tolist(), strict=True))
        )
        merged = effective_scores([res.model_copy(update={"corroboration_floor": floor}), head])[0]
        stack[i] = np.maximum(probs[i], [merged.get(c, 0.0) for c in HEAD_CATEGORIES])
    index = {c: j for j, c in enumerate(HEAD_CATEGORIES)}
    for child, parent in PARENT.items():
        if child.value in index and parent.value in index:
            stack[:, index[parent.value]] = np.maximum(stack[:, index[parent.value]], stack[:, index[child.value]])
    return stack


def matched_point(
    stack: np.ndarray, at: np.ndarray, *, unsafe: np.ndarray, needs: list[tuple[np.ndarray, int]]
) -> tuple[int, float, float] | None:
    """(negatives flagged, sexual flag, violence flag) with the fewest non-`unsafe` rows flagged among
    grid points that flag, for each (rows, n) in `needs`, at least n of those rows; ties go to the
    lower thresholds. Every other category stays at its threshold in `at`."""
    cols = [HEAD_CATEGORIES.index(c) for c in MATCHED]
    rest = np.ones(len(HEAD_CATEGORIES), dtype=bool)
    rest[cols] = False
    others = (stack[:, rest] >= at[rest]).any(axis=1)
    best: tuple[int, float, float, float] | None = None
    for ts in MATCH_GRID:
        by_sexual = others | (stack[:, cols[0]] >= ts)
        for tv in MATCH_GRID:
            flagged = by_sexual | (stack[:, cols[1]] >= tv)
            if any(flagged[rows].sum() < n for rows, n in needs):
                continue
            key = (int(flagged[~unsafe].sum()), float(ts + tv), float(ts), float(tv))
            if best is None or key < best:
                best = key
    return None if best is None else (best[0], best[2], best[3])


MATCHED = ("sexual", "violence")  # the categories whose validation budgets bind (the rest sit at floors)
MATCH_GRID = np.round(np.arange(0.30, 0.801, 0.01), 2)


def match_incumbent_recall(
    probs: np.ndarray, val: list[Row], metrics: dict, incumbent: Path, *, per_source: bool = False
) -> dict[str, Any]:
    """A successor head's default operating point that keeps the incumbent's validation recall.

    The budget rule (OPERATING_POINTS) sets thresholds from captions and tweets; a head that scores
    those lower gets lower thresholds and spends its gain on recall. This instead searches the
    sexual and violence flag thresholds for the point with the fewest flagged real validation
    negatives whose recall on unsafe T2I prompts (in total, or in each T2I source with
    `per_source`) and on all unsafe rows is at least the incumbent's, scored the same way (head +
    word lists). Updates `metrics` in place.
    """
    y, m = label_matrix(val)
    unsafe = (y * m).max(axis=1) > 0
    sources = np.asarray([MATCH_SOURCES.get(r.source, r.source) for r in val])
    t2i = np.isin(sources, list(MATCH_SOURCES.values())) & unsafe
    groups = {"unsafe": unsafe}
    if per_source:
        groups |= {source: (sources == source) & unsafe for source in sorted(set(MATCH_SOURCES.values()))}
    else:
        groups["unsafe_t2i"] = t2i

    old_metrics = json.loads((incumbent.parent / "prompt_head.metrics.json").read_text())
    old = stack_scores(
        full_scores(incumbent, val), val,
        old_metrics["lexicon_cap_from_val"]["cap"], old_metrics["corroboration_from_val"]["corroborate_at"],
    )  # fmt: skip
    old_flagged = (old >= lowest_action_thresholds(old_metrics["thresholds_from_val"]["default"])).any(axis=1)
    needs = {name: int(old_flagged[rows].sum()) for name, rows in groups.items()}

    default = metrics["thresholds_from_val"]["default"]
    new = stack_scores(
        probs, val, metrics["lexicon_cap_from_val"]["cap"], metrics["corroboration_from_val"]["corroborate_at"]
    )
    at = lowest_action_thresholds(default)
    best = matched_point(new, at, unsafe=unsafe, needs=[(groups[name], n) for name, n in needs.items()])
    budget_flagged = int((new >= at).any(axis=1)[~unsafe].sum())
    report = {
        "incumbent": old_metrics["meta"]["version"],
        "incumbent_flagged": needs,
        "incumbent_negatives_flagged": int(old_flagged[~unsafe].sum()),
        "budget_point_negatives_flagged": budget_flagged,
        "negatives": int((~unsafe).sum()),
    }
    if best is None:
        report["chosen"] = None  # the budget point already falls short of the incumbent: keep it
        return report
    for cat, t in zip(MATCHED, best[1:], strict=True):
        default[cat] = {"flag": t, "block": max(t, default[cat]["block"])}
        for action, value in metrics["thresholds_from_val"]["permissive"][cat].items():  # stays the laxer
            metrics["thresholds_from_val"]["permissive"][cat][action] = max(value, default[cat][action])
    report["chosen"] = {c: default[c] for c in MATCHED}
    report["negatives_flagged"] = best[0]
    return report


LEXICON_CAPS = (1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8)


def choose_lexicon_cap(probs: np.ndarray, val: list[Row], tolerance: float = 0.001) -> dict[str, Any]:
    """The policy's lexicon `cap`, on validation rows: the engine keeps the max of the lexicon's
    and the head's score per category, and a word-list hit at full weight (a slur quoted in a
    benign tweet scores 1.0) outranks the head's confident positives. Of the caps whose
    any-category AUPRC is within `tolerance` of the best, the largest: the lexicon is limited no
    more than the data asks."""
    from classifiers.lexicon import LexiconClassifier
    from moderation.normalise import normalise

    lexicon = LexiconClassifier()
    lex = np.asarray(
        [
            [res.scores.get(c, 0.0) for c in HEAD_CATEGORIES]
            for res in lexicon.classify([normalise(r.text) for r in val])
        ]
    )
    y, m = label_matrix(val)
    unsafe = (y * m).max(axis=1)
    by_cap = {c: auprc(np.maximum(probs, np.minimum(lex, c)).max(axis=1), unsafe) for c in LEXICON_CAPS}
    best = max(by_cap.values())
    cap = max(c for c, a in by_cap.items() if a >= best - tolerance)
    return {"cap": cap, "auprc_by_cap": {f"{c:g}": round(a, 4) for c, a in by_cap.items()}}


CORROBORATE_BELOW = 0.8  # list weights of 0.8 and up are explicit terms (docs/word-lists.md)
CORROBORATE_FLOORS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
UNSAFE_T2I = ("i2p", "adversarial_nibbler", "rece", "ringabell", "ringabell_pairs", "written")
# Unsafe T2I sources whose recall the operating point keeps (Ring-A-Bell's pairs count with it).
MATCH_SOURCES = {s: s for s in UNSAFE_T2I} | {"ringabell_pairs": "ringabell"}


def choose_corroboration(
    probs: np.ndarray, val: list[Row], thresholds: dict[str, dict[str, float]], cap: float
) -> dict[str, Any]:
    """The lexicon's `corroborate_at`, on validation rows: a topic word (weight under 0.8) counts
    only if the head scores its category at least this. Of the floors that flag every unsafe T2I
    validation prompt the uncorroborated stack flags (word lists are there for T2I prompts), the
    largest: it drops the most topic-word false alarms on chat and posts."""
    from classifiers.lexicon import LexiconClassifier
    from moderation.engine import effective_scores
    from moderation.normalise import normalise
    from moderation.types import ClassifierResult

    lexicon = LexiconClassifier(cap=cap, corroborate_below=CORROBORATE_BELOW)
    lex = lexicon.classify([normalise(r.text) for r in val])
    y, m = label_matrix(val)
    unsafe = (y * m).max(axis=1) > 0
    t2i = np.asarray([r.source in UNSAFE_T2I for r in val]) & unsafe
    flag_at = lowest_action_thresholds(thresholds)
    by_floor: dict[str, dict[str, float]] = {}
    flagged_t2i: dict[float, np.ndarray] = {}
    for floor in CORROBORATE_FLOORS:
        stack = np.zeros_like(probs)
        for i, res in enumerate(lex):
            head = ClassifierResult(
                classifier="embedding", scores=dict(zip(HEAD_CATEGORIES, probs[i].tolist(), strict=True))
            )
            weak = res.model_copy(update={"corroboration_floor": floor})
            merged = effective_scores([weak, head])[0]
            stack[i] = np.maximum(probs[i], [merged.get(c, 0.0) for c in HEAD_CATEGORIES])
        flagged = (stack >= flag_at).any(axis=1)
        flagged_t2i[floor] = flagged[t2i]
        by_floor[f"{floor:g}"] = {
            "auprc": round(auprc(stack.max(axis=1), unsafe.astype(int)), 4),
            "recall": round(float(flagged[unsafe].mean()), 4),
            "unsafe_t2i_recall": round(float(flagged[t2i].mean()), 4),
            "benign_flagged": round(float(flagged[~unsafe].mean()), 4),
        }
    keeps = [f for f in CORROBORATE_FLOORS if (flagged_t2i[f] >= flagged_t2i[0.0]).all()]
    return {"corroborate_below": CORROBORATE_BELOW, "corroborate_at": max(keeps), "by_floor": by_floor}


def build_meta(
    args: argparse.Namespace, encoder: MiniLMEncoder, parts: dict[str, list[Row]], hidden: int, top: TopLayers | None
) -> dict:
    today = dt.date.today().isoformat()
    top_k = top.k if top is not None else 0  # tuned here, or reused from --top-from (then 0 epochs)
    tuned_here = top is not None and not args.top_from
    tuned = f"-ft{top_k}" if top_k else ""
    lexical = ("+lex" if args.lexical else "") + ("" if args.no_word_model else "+word")
    ensemble = f"x{args.ensemble}" if args.ensemble > 1 and hidden else ""
    ensemble += f"+blend{args.blend_share:g}" if args.blend else ""
    ensemble += f"-keep{len(args.blend_keep)}" if args.blend and args.blend_keep else ""
    return {
        "version": f"minilm-l6{tuned}+{args.head}{hidden or ''}{ensemble}{lexical}-{today}",
        "trained": today,
        "seed": args.seed,
        "head": args.head,
        "hidden": hidden,
        "epochs": args.epochs,
        "source_cap": args.source_cap,
        "general_sets": not args.no_general,
        "written_prompts": not args.no_written,
        "chat_negatives": not args.no_chat,
        "lexical": args.lexical,
        "word_model": None if args.no_word_model else WORD_MODEL_FILE,
        "lex_c": args.lex_c,
        "max_tokens": encoder.windowing.max_tokens,
        "encoder_delta": f"minilm_top{top_k}.npz" if top_k else None,
        "finetune_top": top_k,
        "ft_epochs": args.ft_epochs if tuned_here else 0,
        "ft_lr": args.ft_lr if tuned_here else 0,
        "rows": {k: len(v) for k, v in parts.items()},
        "max_per_source": args.max_per_source,
        "davidson_offensive": args.davidson_offensive,
        "written_general": args.written_general,
        "written_t2i_implicit": args.written_t2i_implicit,
        "i2p_clean": args.i2p_clean,
        "tagged": args.tagged,
        "tagged_unsafe_copies": args.tagged_unsafe_copies if args.tagged else 0,
        "ensemble": args.ensemble if hidden else 1,
        "encoder_from": args.top_from.name if args.top_from else None,
        "calibrate_on_real": args.calibrate_on_real,
        "blend": {"head": str(args.blend), "share": args.blend_share, "keep": list(args.blend_keep)}
        if args.blend
        else None,
    }


def write(out: Path, head: PromptHead, top: TopLayers | None, meta: dict, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / HEAD_FILE)
    for stale in out.glob("minilm_top*.npz"):
        stale.unlink()
    if top is not None and meta["encoder_delta"]:
        top.save_delta(out / meta["encoder_delta"])
    (out / "prompt_head.metrics.json").write_text(json.dumps({"meta": meta, **report}, indent=1))
    print(f"wrote {out / HEAD_FILE} ({(out / HEAD_FILE).stat().st_size} bytes)")


if __name__ == "__main__":
    main()

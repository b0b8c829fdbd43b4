"""Character n-gram language models and CTC prefix beam search with shallow fusion.

The ContentTokenizer's CTC head reads 12.5 Hz tokens; greedy (best-path) decoding of it gives
test CER zh 0.40 / en 0.11 with the default checkpoint: many errors are homophones and
near-homophones (zh) or single letters (en) that the acoustics cannot separate but the
sentence context can. A small per-language character n-gram model, added to the CTC score of
each prefix during a beam search (Hannun et al. 2014, "shallow fusion"), supplies that context
without touching the tokens or the network.

The model is interpolated Kneser-Ney (Chen & Goodman 1998, one discount per order) over the
normalised text (`text_units.normalize_text`) padded with `order - 1` begin markers and one
end marker. Everything it needs follows from the highest-order n-gram counts: lower orders use
continuation counts (how many distinct symbols precede a shorter n-gram), so `to_text` writes
only those counts, one `ngram count` per line, and a checkpoint stores the model as a plain
string in its config (no pickles, loads with `weights_only`).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Callable, Iterable, Sequence

import numpy as np

BOS = "<"  # begin / end markers: normalize_text never keeps '<' or '>' (not alphanumeric)
EOS = ">"


class CharNgramLM:
    """P(next symbol | previous order-1 symbols) over `alphabet` + EOS, interpolated Kneser-Ney.

    `counts` maps each highest-order n-gram (a string of `order` symbols; BOS-padded at the
    start) to its count. The per-context tables are built on first use (~0.06 s for the
    6-gram English model of data/corpus), so a node that only tokenizes never pays for them."""

    def __init__(self, order: int, alphabet: Iterable[str], counts: dict[str, int]):
        if order < 1:
            raise ValueError(f"n-gram order must be >= 1, got {order}")
        self.order = order
        self.symbols = sorted(set(alphabet) - {BOS, EOS}) + [EOS]
        self.index = {s: i for i, s in enumerate(self.symbols)}
        bad = [g for g in counts if len(g) != order or g[-1] not in self.index]
        if bad:
            raise ValueError(f"n-grams must have {order} symbols and end in the alphabet; got {bad[:3]}")
        self.counts = dict(counts)
        self._tables: list[dict[str, tuple[np.ndarray, np.ndarray, float]]] | None = None

    # -- estimation and storage --------------------------------------------------------------
    @classmethod
    def estimate(cls, texts: Iterable[str], order: int, alphabet: Iterable[str]) -> "CharNgramLM":
        """Count the `order`-grams of normalised `texts`; characters outside `alphabet` are dropped
        (the recogniser cannot write them anyway)."""
        alphabet = set(alphabet)
        counts: Counter[str] = Counter()
        for text in texts:
            padded = BOS * (order - 1) + "".join(ch for ch in text if ch in alphabet) + EOS
            counts.update(padded[i : i + order] for i in range(len(padded) - order + 1))
        return cls(order, alphabet, dict(counts))

    def to_text(self) -> str:
        """'ngram count' lines; the count is after the last space (an n-gram may hold spaces)."""
        return "\n".join(f"{g} {n}" for g, n in sorted(self.counts.items()))

    @classmethod
    def from_text(cls, text: str, alphabet: Iterable[str]) -> "CharNgramLM":
        """The model `to_text` wrote; its order is the n-grams' length."""
        counts = {}
        for line in filter(None, text.split("\n")):
            gram, count = line.rsplit(" ", 1)
            counts[gram] = int(count)
        if not counts:
            raise ValueError("no n-grams in the language model text")
        return cls(len(next(iter(counts))), alphabet, counts)

    # -- probabilities -----------------------------------------------------------------------
    def _build(self) -> list[dict[str, tuple[np.ndarray, np.ndarray, float]]]:
        """Per order k (1..order): context (k-1 symbols) -> (symbol indices, discounted
        probability mass of each, back-off weight gamma)."""
        by_order: list[Counter[str]] = [Counter() for _ in range(self.order + 1)]
        by_order[self.order].update(self.counts)
        for k in range(self.order - 1, 0, -1):  # continuation counts: distinct left neighbours
            by_order[k].update(g[1:] for g in by_order[k + 1])
        tables = []
        for k in range(1, self.order + 1):
            hist = Counter(by_order[k].values())
            n1, n2 = hist.get(1, 0), hist.get(2, 0)
            discount = n1 / (n1 + 2 * n2) if n1 else 0.5  # Ney et al. 1994's estimate
            grouped: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for g, n in by_order[k].items():
                grouped[g[:-1]].append((self.index[g[-1]], n))
            table = {}
            for context, pairs in grouped.items():
                ids = np.array([i for i, _ in pairs])
                n = np.array([c for _, c in pairs], dtype=np.float64)
                total = n.sum()
                table[context] = (ids, np.maximum(n - discount, 0.0) / total, discount * len(pairs) / total)
            tables.append(table)
        return tables

    def distribution(self, context: str) -> np.ndarray:
        """P(s | context) for every s in `symbols` (sums to 1). `context` is the text so far;
        only its last order-1 symbols matter, BOS-padded at the start of an utterance."""
        key = (BOS * (self.order - 1) + context)[len(context) :] if self.order > 1 else ""
        if self._tables is None:
            self._tables = self._build()
        p = np.full(len(self.symbols), 1.0 / len(self.symbols))
        for k, table in enumerate(self._tables):  # orders 1..n, each interpolated with the one below
            entry = table.get(key[len(key) - k :] if k else "")
            if entry is None:  # unseen context: the lower order's estimate stands
                continue
            ids, mass, gamma = entry
            p = gamma * p
            p[ids] += mass
        return p

    def log_prob(self, text: str, context: str = "", end: bool = True) -> float:
        """Natural-log probability of `text` (then EOS when `end`) after `context`."""
        total = 0.0
        for i, ch in enumerate(text + (EOS if end else "")):
            total += math.log(self.distribution(context + text[:i])[self.index[ch]])
        return total


class FusionScorer:
    """A CharNgramLM seen through a CTC alphabet: log P over unit ids (-inf for units the LM
    does not know, e.g. the other language's characters) and log P(EOS), per prefix context.

    Results are cached per context: hypotheses share most contexts, so the cache answers ~4
    in 5 queries (dev, default settings). It is emptied at `max_cached` entries (~1.1 kB each
    for the 283-unit alphabet, ~23 MB in all) to bound memory in a long-running process."""

    def __init__(self, lm: CharNgramLM, units: Sequence[str], max_cached: int = 20000):
        self.lm = lm
        self.units = list(units)
        self.to_lm = np.array([lm.index.get(u, -1) if i else -1 for i, u in enumerate(self.units)])
        self.max_cached = max_cached
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, float]] = {}

    def __call__(self, prefix: tuple[int, ...]) -> tuple[np.ndarray, float]:
        key = prefix[len(prefix) - self.lm.order + 1 :] if self.lm.order > 1 else ()
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            p = self.lm.distribution("".join(self.units[i] for i in key))
            with np.errstate(divide="ignore"):
                logp = np.where(self.to_lm >= 0, np.log(p[self.to_lm]), -np.inf).astype(np.float32)
            hit = self._cache[key] = (logp, math.log(p[-1]))
        return hit


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def ctc_prefix_beam_search(log_probs: np.ndarray, beam: int = 8, lm: Callable | None = None, lm_weight: float = 0.0,
                           length_bonus: float = 0.0, prune: float = 8.0, blank: int = 0) -> list[int]:
    """Most probable unit sequence of CTC log-probabilities [T, V] (rows may hold -inf for
    masked units) under score = log P_ctc(prefix) + lm_weight * log P_lm(prefix, EOS at the end)
    + length_bonus * len(prefix), kept to the `beam` best prefixes per frame.

    Per frame only units within `prune` nats of the frame's best are extended. The head is
    peaky (dev: 75 % of frames are >0.99 blank), so prune 8 leaves 2.3 units a frame on average
    (blank included) against 7.2 at 12 and 26 at 16, which find the same dev CER 2-5x slower.
    `lm(prefix) -> (log P over units, log P(EOS))`, e.g. a FusionScorer."""
    fuse = lm is not None and lm_weight != 0.0
    # prefix -> [log P(ends in blank), log P(ends in a unit)], and its LM + length score
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, -math.inf]}
    extra: dict[tuple[int, ...], float] = {(): 0.0}
    ninf = -math.inf
    for row in log_probs:
        best = float(row.max())
        cands = np.nonzero(row >= best - prune)[0].tolist()
        frame = row.tolist()
        p_blank = frame[blank]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [ninf, ninf])
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            stay = nxt[prefix]
            stay[0] = _logadd(stay[0], total + p_blank)
            last = prefix[-1] if prefix else None
            if last is not None:  # the last unit repeated without a blank: same prefix
                stay[1] = _logadd(stay[1], pnb + frame[last])
            lm_row = None
            for c in cands:
                if c == blank:
                    continue
                new = prefix + (c,)
                entry = nxt[new]
                entry[1] = _logadd(entry[1], (pb if c == last else total) + frame[c])
                if new not in extra:  # the LM is asked once per new prefix, not per frame
                    if fuse and lm_row is None:
                        lm_row = lm(prefix)[0]
                    extra[new] = extra[prefix] + length_bonus + (lm_weight * float(lm_row[c]) if fuse else 0.0)
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]) + extra[kv[0]], reverse=True)
        beams = dict(ranked[:beam])
    end = (lambda p: lm_weight * lm(p)[1]) if fuse else (lambda p: 0.0)
    return list(max(beams.items(), key=lambda kv: _logadd(*kv[1]) + extra[kv[0]] + end(kv[0]))[0])

"""Which sentence goes to which split, with which speaker and emotion.

Splits (defaults, configurable): train 0.80, dev 0.05, test 0.10, test_unseen_speakers 0.05.
- No sentence appears in two splits (pairs are unique in English and in Chinese).
- Sentences that use a held-out (adjective, noun) or (verb, noun) combination go only to the two
  test splits, half of whose pairs are drawn from them (`unseen_combo`); the other half and dev
  are fresh sentences of seen combinations.
- Unseen speakers (default s11, s12) render test_unseen_speakers only; the other speakers render
  train, dev and test.
- Within a split, (speaker, emotion) cycles through all combinations in seeded shuffled blocks, so
  speakers and emotions stay balanced; the jitter and the source language of a pair come from an
  rng keyed by (seed, pair_id), so a pair is rendered the same whichever worker or run renders it.

A planner hands out candidates per split on request (`take`); the builder asks again when filters
drop pairs, and the order of requests is fixed, so a seed always yields the same corpus.
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from dragoman.nodes.data.grammar import Grammar, heldout_combos
from dragoman.nodes.data.voices import Emotion, Prosody, Speaker, item_rng, jittered
from dragoman.nodes.errors import DragomanError

SPLITS = ("train", "dev", "test", "test_unseen_speakers")
DEFAULT_PROPORTIONS = {"train": 0.80, "dev": 0.05, "test": 0.10, "test_unseen_speakers": 0.05}
TEST_SPLITS = ("test", "test_unseen_speakers")


@dataclass(frozen=True)
class PlannedPair:
    pair_id: str
    split: str
    zh: str
    en: str
    speaker: Speaker
    prosody: Prosody
    source_lang: str
    extra: dict = field(default_factory=dict, compare=False)


def quotas(n_pairs: int, proportions: dict[str, float]) -> dict[str, int]:
    """Pairs per split (largest remainder), in SPLITS order."""
    unknown = set(proportions) - set(SPLITS)
    if unknown:
        raise DragomanError(f"unknown split {sorted(unknown)[0]!r} (splits: {', '.join(SPLITS)})")
    if any(v < 0 for v in proportions.values()) or sum(proportions.values()) <= 0:
        raise DragomanError("split proportions must be non-negative and not all zero")
    total = sum(proportions.values())
    raw = {s: n_pairs * proportions.get(s, 0.0) / total for s in SPLITS}
    out = {s: int(raw[s]) for s in SPLITS}
    for s in sorted(SPLITS, key=lambda s: raw[s] - out[s], reverse=True)[: n_pairs - sum(out.values())]:
        out[s] += 1
    return out


class Casting:
    """Speaker, emotion, jitter and source language for the k-th pair of a split."""

    def __init__(self, seed: int, speakers: list[Speaker], unseen: list[Speaker], emotions: list[Emotion]):
        if not speakers:
            raise DragomanError("no training speakers left after holding out the unseen ones")
        self.seed = seed
        self.emotions = emotions
        self.voices = {s: (unseen if s == "test_unseen_speakers" else speakers) for s in SPLITS}

    def cast(self, split: str, k: int, pair_id: str) -> tuple[Speaker, Prosody, str]:
        voices = self.voices[split]
        if not voices:
            raise DragomanError(f"split {split} has pairs but no speakers (give --unseen-speakers)")
        combos = [(v, e) for v in voices for e in self.emotions]
        block, index = divmod(k, len(combos))
        item_rng(self.seed, f"{split}:block{block}").shuffle(combos)
        speaker, emotion = combos[index]
        rng = item_rng(self.seed, pair_id)
        return speaker, jittered(emotion, rng), rng.choice(["zh", "en"])


class GrammarPlanner:
    """Candidates from the project's grammar; never runs out."""

    def __init__(self, seed: int, casting: Casting, heldout: frozenset[str] | None = None):
        self.casting = casting
        self.heldout = heldout_combos() if heldout is None else heldout
        self._stream = Grammar().unique_pairs(random.Random(seed))
        self._queues = {True: deque(), False: deque()}
        self._taken = {s: 0 for s in SPLITS}

    def _next(self, unseen_combo: bool):
        queue = self._queues[unseen_combo]
        while not queue:
            pair = next(self._stream)
            self._queues[bool(pair.combos & self.heldout)].append(pair)
        return queue.popleft()

    def take(self, split: str, count: int) -> list[PlannedPair]:
        out = []
        for _ in range(count):
            k = self._taken[split]
            self._taken[split] += 1
            unseen_combo = split in TEST_SPLITS and k % 2 == 0
            sentence = self._next(unseen_combo)
            pair_id = f"{split}-{k:06d}"
            speaker, prosody, source = self.casting.cast(split, k, pair_id)
            out.append(PlannedPair(pair_id, split, sentence.zh, sentence.en, speaker, prosody, source,
                                   {"template": sentence.template, "unseen_combo": unseen_combo}))
        return out


class ListPlanner:
    """Candidates from a finite list of (zh, en, fields) rows, e.g. a user's TSV.

    Rows that name their split keep it; the others are shuffled (seeded) and dealt to splits by
    the proportions. Rows may name their speaker and emotion (already validated by the importer).
    """

    def __init__(self, rows: list[tuple[str, str, dict]], seed: int, proportions: dict[str, float],
                 casting: Casting, speakers: dict[str, Speaker], emotions: dict[str, Emotion]):
        self.casting, self.speakers, self.emotions = casting, speakers, emotions
        self._queues = {s: deque() for s in SPLITS}
        free = [r for r in rows if not r[2].get("split")]
        for row in rows:
            if row[2].get("split"):
                self._queues[row[2]["split"]].append(row)
        random.Random(seed).shuffle(free)
        start = 0
        for split, n in quotas(len(free), proportions).items():
            self._queues[split].extend(free[start:start + n])
            start += n
        self.sizes = {s: len(q) for s, q in self._queues.items()}
        self._taken = {s: 0 for s in SPLITS}
        self.seed = seed

    def take(self, split: str, count: int) -> list[PlannedPair]:
        out = []
        queue = self._queues[split]
        while queue and len(out) < count:
            zh, en, fields = queue.popleft()
            k = self._taken[split]
            self._taken[split] += 1
            pair_id = f"{split}-{k:06d}"
            speaker, prosody, source = self.casting.cast(split, k, pair_id)
            if fields.get("speaker"):
                speaker = self.speakers[fields["speaker"]]
            if fields.get("emotion"):
                prosody = jittered(self.emotions[fields["emotion"]], item_rng(self.seed, pair_id))
            if fields.get("source_lang"):
                source = fields["source_lang"]
            extra = {k: v for k, v in fields.items() if k not in ("split", "speaker", "emotion", "source_lang")}
            out.append(PlannedPair(pair_id, split, zh, en, speaker, prosody, source, extra))
        return out

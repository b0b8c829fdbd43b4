"""Split planning without audio: disjoint sentences, held-out combinations and speakers, balance."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from dragoman.nodes.data.build import make_casting
from dragoman.nodes.data.grammar import Grammar, heldout_combos
from dragoman.nodes.data.planning import SPLITS, GrammarPlanner, ListPlanner, quotas
from dragoman.nodes.data.voices import EMOTIONS, SPEAKERS
from dragoman.nodes.errors import DragomanError

TARGETS = {"train": 800, "dev": 50, "test": 100, "test_unseen_speakers": 50}


def plan(seed: int) -> dict[str, list]:
    planner = GrammarPlanner(seed, make_casting(seed))
    # Two rounds, as when filters drop pairs and the builder asks again.
    out = {s: planner.take(s, n - 10) for s, n in TARGETS.items()}
    for s in SPLITS:
        out[s] += planner.take(s, 10)
    return out


@pytest.fixture(scope="module")
def planned():
    return plan(0)


def test_same_seed_same_plan_other_seed_other_plan(planned):
    again, other = plan(0), plan(1)
    assert [(p.pair_id, p.en, p.speaker, p.prosody) for p in planned["train"]] == \
           [(p.pair_id, p.en, p.speaker, p.prosody) for p in again["train"]]
    assert [p.en for p in planned["train"]] != [p.en for p in other["train"]]


def test_no_sentence_in_two_splits(planned):
    for lang in ("en", "zh"):
        seen = {}
        for split, pairs in planned.items():
            for p in pairs:
                text = getattr(p, lang)
                assert text not in seen, (text, seen.get(text), split)
                seen[text] = split


def test_heldout_combinations_only_in_test_splits(planned):
    held = heldout_combos()
    assert not any(p.extra["unseen_combo"] for s in ("train", "dev") for p in planned[s])
    for split in ("test", "test_unseen_speakers"):
        flagged = [p.extra["unseen_combo"] for p in planned[split]]
        assert abs(sum(flagged) - len(flagged) / 2) <= 1
    # Re-derive the combinations of training sentences from the grammar stream itself.
    stream = Grammar().unique_pairs(random.Random(0))
    train_en = {p.en for p in planned["train"]}
    checked = 0
    for pair in stream:
        if pair.en in train_en:
            assert not (pair.combos & held), pair.en
            checked += 1
            if checked == len(train_en):
                break
    assert checked == len(train_en)


def test_unseen_speakers_only_in_their_split(planned):
    unseen = {"s11", "s12"}
    for split, pairs in planned.items():
        names = {p.speaker.name for p in pairs}
        if split == "test_unseen_speakers":
            assert names == unseen
        else:
            assert not names & unseen and len(names) == 10


def test_speakers_and_emotions_are_balanced(planned):
    train = planned["train"]
    speakers, emotions = Counter(p.speaker.name for p in train), Counter(p.prosody.emotion for p in train)
    assert max(speakers.values()) - min(speakers.values()) <= 1 and len(speakers) == 10
    assert max(emotions.values()) - min(emotions.values()) <= 1 and set(emotions) == set(EMOTIONS)
    assert Counter(p.source_lang for p in train)["zh"] == pytest.approx(len(train) / 2, abs=len(train) * 0.1)


def test_quotas_use_largest_remainder_and_reject_unknown_splits():
    assert quotas(2000, {"train": 0.8, "dev": 0.05, "test": 0.1, "test_unseen_speakers": 0.05}) == \
           {"train": 1600, "dev": 100, "test": 200, "test_unseen_speakers": 100}
    assert sum(quotas(7, {"train": 1, "dev": 1, "test": 1}).values()) == 7
    with pytest.raises(DragomanError, match="unknown split 'eval'"):
        quotas(10, {"eval": 1.0})


def test_list_planner_keeps_named_splits_and_casting():
    rows = [(f"我有{i}只猫。", f"I have {i} cats.", {}) for i in range(20)]
    rows.append(("他在家。", "He is at home.", {"split": "test", "speaker": "s03", "emotion": "sad"}))
    planner = ListPlanner(rows, 0, {"train": 0.9, "dev": 0.1}, make_casting(0), SPEAKERS, EMOTIONS)
    assert planner.sizes == {"train": 18, "dev": 2, "test": 1, "test_unseen_speakers": 0}
    (named,) = planner.take("test", 5)
    assert (named.en, named.speaker.name, named.prosody.emotion) == ("He is at home.", "s03", "sad")
    assert len(planner.take("train", 100)) == 18 and planner.take("train", 1) == []

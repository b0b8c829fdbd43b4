"""`dragoman data text`: grammar text pairs that keep held-out combinations and sentences out."""
from __future__ import annotations

import json
import random

import pytest

from dragoman.graphs.cli import main
from dragoman.nodes.data.grammar import Grammar, heldout_combos
from dragoman.nodes.data.text_pairs import grammar_text_pairs
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import read_manifest, write_manifest
from dragoman.nodes.text_units import normalize_text


def test_rows_come_in_zh_en_pairs_and_never_use_a_heldout_combination():
    rows = list(grammar_text_pairs(300, seed=3, exclude=set()))
    assert len(rows) == 600
    held = heldout_combos()
    by_text = {}
    for pair in Grammar().unique_pairs(random.Random(3), max_draws=20000):
        by_text[pair.en] = pair
    for zh, en in zip(rows[::2], rows[1::2]):
        assert (zh["lang"], en["lang"]) == ("zh", "en") and zh["pair_id"] == en["pair_id"]
        assert zh["translation"] == en["text"] and en["translation"] == zh["text"]
        assert not (by_text[en["text"]].combos & held)
    assert len({r["pair_id"] for r in rows}) == 300


def test_excluded_sentences_do_not_appear_in_either_language():
    first = list(grammar_text_pairs(50, seed=4, exclude=set()))
    banned = {normalize_text(first[0]["text"], "en"), normalize_text(first[3]["text"], "en")}  # a zh and an en sentence
    again = list(grammar_text_pairs(50, seed=4, exclude=banned))
    texts = {normalize_text(r["text"], "en") for r in again}
    assert not banned & texts
    assert first[0]["pair_id"] == "text-000000" and again[0]["text"] != first[0]["text"]


def test_same_seed_same_pairs():
    assert list(grammar_text_pairs(40, seed=9, exclude=set())) == list(grammar_text_pairs(40, seed=9, exclude=set()))


def test_negative_count_is_refused():
    with pytest.raises(DragomanError, match="--pairs"):
        list(grammar_text_pairs(-1, seed=0, exclude=set()))


def test_cli_writes_the_manifest_and_excludes_the_given_splits(tmp_path, capsys):
    probe = list(grammar_text_pairs(20, seed=1, exclude=set()))
    test_split = tmp_path / "test.jsonl"
    write_manifest(test_split, [{"text": probe[4]["text"], "translation": probe[5]["text"], "lang": "zh"}])
    out = tmp_path / "text.jsonl"
    code = main(["data", "text", "--out", str(out), "--pairs", "20", "--seed", "1", "--exclude", str(test_split), "--json"])
    report = json.loads(capsys.readouterr().out)
    rows = read_manifest(out)
    assert code == 0 and report["pairs"] == 20 and len(rows) == 40 and report["excluded_sentences"] == 2
    assert probe[4]["text"] not in {r["text"] for r in rows} and probe[5]["text"] not in {r["text"] for r in rows}


def test_cli_names_a_missing_exclude_manifest(tmp_path, capsys):
    code = main(["data", "text", "--out", str(tmp_path / "t.jsonl"), "--pairs", "5", "--exclude", str(tmp_path / "nope.jsonl")])
    err = capsys.readouterr().err
    assert code != 0 and "nope.jsonl" in err and len(err.strip().splitlines()) == 1

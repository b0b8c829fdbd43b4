"""The sentence grammar: size, well-formedness, agreement and measure words against references."""
from __future__ import annotations

import random
import re
import subprocess

import pytest

from dragoman.nodes.data import lexicon as L
from dragoman.nodes.data.grammar import (MAX_EN_WORDS, MIN_EN_WORDS, Grammar, en_clause, heldout_combos, np_bare,
                                         np_count, np_demonstrative, zh_predicate)
from dragoman.nodes.data.tts import EspeakBackend

from .conftest import needs_espeak

# Measure words checked against a dictionary, independently of the lexicon table.
REFERENCE_MEASURES = {"book": "本", "cat": "只", "dog": "只", "fish": "条", "horse": "匹", "car": "辆", "bike": "辆",
                      "table": "张", "ticket": "张", "map": "张", "umbrella": "把", "chair": "把", "key": "把",
                      "pen": "支", "shirt": "件", "dress": "条", "letter": "封", "flower": "朵", "hat": "顶",
                      "computer": "台", "banana": "根", "apple": "个", "window": "扇", "newspaper": "份"}


@pytest.fixture(scope="module")
def sample():
    return list(Grammar().unique_pairs(random.Random(0), max_draws=8000))


def test_grammar_yields_well_over_5000_distinct_pairs(sample):
    assert len(sample) >= 5000
    assert len({p.en for p in sample}) == len({p.zh for p in sample}) == len(sample)
    assert len({p.template for p in sample}) >= 15


def test_sentences_are_well_formed(sample):
    for p in sample:
        words = p.en[:-1].split()
        assert MIN_EN_WORDS <= len(words) <= MAX_EN_WORDS, p.en
        assert p.en[0].isupper() and "  " not in p.en
        assert re.fullmatch(r"[A-Za-z' ]+[.?]", p.en), p.en
        assert re.fullmatch(r"[\u4e00-\u9fff]+[。？]", p.zh), p.zh
        assert (p.en[-1] == "?") == (p.zh[-1] == "？"), (p.en, p.zh)


def test_noun_phrases_match_references():
    apple, fish, box, car = (L.NOUNS[k] for k in ("apple", "fish", "box", "car"))
    red, old = L.ADJECTIVES["red"], L.ADJECTIVES["old"]
    assert np_count(apple, 1, None) == ("an apple", "一个苹果")
    assert np_count(apple, 1, red) == ("a red apple", "一个红色的苹果")
    assert np_count(car, 1, old) == ("an old car", "一辆旧车")
    assert np_count(fish, 2, None) == ("two fish", "两条鱼")
    assert np_count(box, 12, red) == ("twelve red boxes", "十二个红色的盒子")
    assert np_bare(car, red) == ("a red car", "红色的车")
    assert np_demonstrative(box, True, 0, None) == ("these boxes", "这些盒子")
    assert np_demonstrative(box, False, 3, red) == ("those three red boxes", "那三个红色的盒子")
    for key, measure in REFERENCE_MEASURES.items():
        assert np_count(L.NOUNS[key], 3, None)[1] == "三" + measure + L.NOUNS[key].zh, key


def test_verb_agreement_and_aspect_match_references():
    p = L.PEOPLE
    forms = ("buy", "buys", "bought", "buying")
    assert en_clause(p["mother"], "present", "affirm", forms) == ["my mother", "buys"]
    assert en_clause(p["we"], "present", "negate", forms) == ["we", "do not", "buy"]
    assert en_clause(p["he"], "present", "ask", forms) == ["does", "he", "buy"]
    assert en_clause(p["i"], "progressive", "affirm", forms) == ["I", "am buying"]
    assert en_clause(p["children"], "progressive", "negate", forms) == ["the children", "are not", "buying"]
    assert en_clause(p["you"], "past", "ask", forms) == ["did", "you", "buy"]
    assert zh_predicate("past", "affirm", "买", "三个苹果") == "买了三个苹果"
    assert zh_predicate("past", "negate", "买", "苹果") == "没有买苹果"
    assert zh_predicate("future", "negate", "买", "车") == "不会买车"
    assert zh_predicate("progressive", "affirm", "看", "一本书", "图书馆里") == "正在图书馆里看一本书"
    assert zh_predicate("present", "negate", "工作", loc="家里") == "不在家里工作"


def test_heldout_combinations_leave_every_word_in_training():
    held = heldout_combos()
    assert 30 <= len(held) <= 120
    for noun in L.NOUNS.values():
        adjs = [a for a in noun.adjectives if f"adj_noun:{a}+{noun.key}" not in held]
        assert adjs or not noun.adjectives, noun.key
    for verb in L.VERBS.values():
        objects = [n for n in L.NOUNS.values() if n.kind in verb.kinds and f"verb_noun:{verb.key}+{n.key}" not in held]
        assert objects, verb.key
    assert held == heldout_combos()  # the same for every call (and every seed)


@needs_espeak
def test_every_chinese_word_is_read_from_the_mandarin_dictionary():
    backend = EspeakBackend()
    text = "\n".join(backend.reading(w + "。", "zh") for w in L.all_zh_words())
    out = subprocess.run(["espeak-ng", "-q", "-v", "cmn-latn-pinyin", "-x", text],
                         capture_output=True, text=True, check=True).stdout
    assert "(en)" not in out  # a character missing from the dictionary switches to English


@needs_espeak
def test_misread_words_are_given_as_pinyin():
    backend = EspeakBackend()
    assert backend.reading("我去银行了。", "zh") == "我去 yin2 hang2 了。"

    def phonemes(text):
        return subprocess.run(["espeak-ng", "-q", "-v", "cmn-latn-pinyin", "-x", text],
                              capture_output=True, text=True, check=True).stdout

    # Measure word 只 is zhi1 (tone 55); the dictionary says zhi3 (tone 214/21).
    assert "ts.'i.21" in phonemes("两只猫") or "ts.'i.214" in phonemes("两只猫")
    assert "ts.'i.55" in phonemes(backend.reading("两只猫", "zh"))

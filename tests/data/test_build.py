"""The corpus builder end to end: manifests, determinism, resume after a crash, UniST filters."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dragoman.nodes.data.build import build_corpus
from dragoman.nodes.data.filters import RecognitionFilter, error_rate, judge_durations, speech_bounds
from dragoman.nodes.data.importers import import_text_pairs
from dragoman.nodes.data.planning import SPLITS
from dragoman.nodes.manifest import read_manifest

from .conftest import ToneBackend

REQUIRED = {"audio_filepath", "duration", "text", "lang", "speaker", "emotion", "pair_id", "split", "hq",
            "translation", "source_lang", "duration_ratio", "render"}


def manifests(out) -> dict[str, list[dict]]:
    return {s: read_manifest(out / f"{s}.jsonl") for s in SPLITS}


def without_paths(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "audio_filepath"} for r in rows]


def test_manifests_pair_zh_and_en_lines(espeak_corpus):
    out, report, proportions = espeak_corpus
    rows = manifests(out)
    assert {s: len(r) // 2 for s, r in rows.items()} == {"train": 6, "dev": 2, "test": 2, "test_unseen_speakers": 2}
    for split, lines in rows.items():
        by_pair = defaultdict(list)
        for row in lines:
            assert REQUIRED <= set(row) and row["split"] == split
            by_pair[row["pair_id"]].append(row)
        for pair in by_pair.values():
            zh, en = sorted(pair, key=lambda r: r["lang"] != "zh")
            assert (zh["lang"], en["lang"]) == ("zh", "en")
            for key in ("speaker", "emotion", "hq", "source_lang", "duration_ratio"):
                assert zh[key] == en[key]
            assert zh["translation"] == en["text"] and en["translation"] == zh["text"]
            assert zh["render"]["prosody"] == en["render"]["prosody"]
            assert 0.5 <= zh["duration_ratio"] <= 2.0
    assert report["splits"]["train"]["hours"] > 0 and report["rendered_per_second"] > 0


def test_manifest_durations_match_the_wav_files(espeak_corpus):
    out, _, _ = espeak_corpus
    for lines in manifests(out).values():
        for row in lines:
            info = sf.info(row["audio_filepath"])
            assert (info.samplerate, info.channels) == (16000, 1)
            assert info.frames / 16000 == pytest.approx(row["duration"], abs=1e-3)
            assert 0.5 < row["duration"] < 6.0


def test_same_seed_gives_the_same_manifests_apart_from_paths(espeak_corpus, tmp_path):
    out, _, proportions = espeak_corpus
    build_corpus(tmp_path, 12, seed=3, jobs=1, proportions=proportions, progress=False)
    first, again = manifests(out), manifests(tmp_path)
    for split in SPLITS:
        assert without_paths(first[split]) == without_paths(again[split]) and first[split]


def test_rerun_reuses_finished_files_and_renders_only_missing_ones(tmp_path):
    proportions = {"train": 1.0}
    first = build_corpus(tmp_path, 6, seed=0, proportions=proportions, unseen_speakers=[], backend=ToneBackend(),
                         progress=False)
    total = first["rendered_utterances"]
    again = build_corpus(tmp_path, 6, seed=0, proportions=proportions, unseen_speakers=[], backend=ToneBackend(),
                         progress=False)
    assert (again["rendered_utterances"], again["reused_utterances"]) == (0, total)
    victim = read_manifest(tmp_path / "train.jsonl")[3]["audio_filepath"]
    Path(victim).unlink()
    third = build_corpus(tmp_path, 6, seed=0, proportions=proportions, unseen_speakers=[], backend=ToneBackend(),
                         progress=False)
    assert (third["rendered_utterances"], third["reused_utterances"]) == (1, total - 1)


def test_fresh_and_resumed_measurements_are_identical(espeak_corpus, tmp_path):
    out, _, _ = espeak_corpus
    again = tmp_path / "again"
    shutil.copytree(out / "wavs", again / "wavs")
    first = {s: without_paths(rows) for s, rows in manifests(out).items()}
    report = build_corpus(again, 12, seed=3, jobs=1, proportions=espeak_corpus[2], progress=False)
    assert report["rendered_utterances"] == 0
    assert {s: without_paths(rows) for s, rows in manifests(again).items()} == first


def test_a_crash_keeps_finished_wavs_and_leaves_no_manifest(tmp_path):
    kwargs = dict(seed=1, proportions={"train": 1.0}, unseen_speakers=[], progress=False)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(tmp_path, 8, backend=ToneBackend(fail_after=7), **kwargs)
    assert not (tmp_path / "train.jsonl").exists() and not (tmp_path / "build_report.json").exists()
    wavs = sorted((tmp_path / "wavs").rglob("*"))
    assert len([w for w in wavs if w.is_file()]) == 7 and not [w for w in wavs if w.name.startswith(".")]
    report = build_corpus(tmp_path, 8, backend=ToneBackend(), **kwargs)
    assert report["reused_utterances"] == 7 and len(read_manifest(tmp_path / "train.jsonl")) == 16


def test_duration_filters_on_constructed_durations():
    assert judge_durations(2.0, 1.0, 1.8, 0.9).keep
    assert not judge_durations(2.0, 0.98, 1.8, 0.9).keep
    assert judge_durations(1.0, 2.0, 0.8, 1.2).keep and not judge_durations(1.0, 2.02, 0.8, 1.2).keep
    verdict = judge_durations(2.0, 2.6, 1.0, 1.6)  # whole files 1.3 (hq range) but speech 1.6
    assert verdict.keep and not verdict.hq and verdict.speech_ratio == pytest.approx(1.6)
    assert judge_durations(2.0, 1.5, 1.0, 0.7).hq and not judge_durations(2.0, 1.5, 1.0, 0.69).hq


def test_speech_bounds_trim_leading_and_trailing_silence():
    rate = 16000
    tone = 0.2 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)
    wav = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate * 3 // 10)])
    start, end = speech_bounds(wav, rate)
    assert abs(start - rate // 2) <= rate // 100 and abs(end - (rate // 2 + rate)) <= rate // 100


def _pairs_file(tmp_path, rows):
    path = tmp_path / "pairs.tsv"
    path.write_text("zh\ten\tsource_lang\n" + "".join(f"{zh}\t{en}\ten\n" for zh, en in rows), encoding="utf-8")
    return path


def test_builder_drops_pairs_outside_the_ratio_and_flags_hq(tmp_path):
    # 0.25 s per Han character or English word, padded with 0.5 s of silence on both sides, so
    # whole-file and speech-only ratios differ. The second pair is a truncated translation, the
    # kind of misaligned pair the UniST filter exists to catch.
    rows = [("我有一只猫。", "I have a cat."),  # 5 units vs 4: ratio 1.125, speech 1.25 -> hq
            ("我妈妈昨天在市场里买了三个红色的苹果。", "My mother."),  # 18 vs 2: 3.67 -> dropped
            ("我们昨天回家了。", "We went home yesterday.")]  # 7 vs 4: 1.375, speech 1.75 -> kept, not hq
    report = import_text_pairs(_pairs_file(tmp_path, rows), tmp_path / "out", proportions={"train": 1.0},
                               unseen_speakers=[], backend=ToneBackend(pad=0.5), progress=False)
    assert report["dropped"]["duration_ratio"] == 1 and report["splits"]["train"]["pairs"] == 2
    kept = {r["text"]: r for r in read_manifest(tmp_path / "out" / "train.jsonl") if r["lang"] == "en"}
    assert kept["I have a cat."]["hq"] and kept["I have a cat."]["duration_ratio"] == pytest.approx(1.125, abs=0.01)
    late = kept["We went home yesterday."]
    assert not late["hq"] and late["duration_ratio"] == pytest.approx(1.375, abs=0.01)
    assert late["speech_ratio"] == pytest.approx(1.75, abs=0.02)


def test_grammar_build_replaces_dropped_pairs(tmp_path):
    # A Chinese sentence has ~1.6x as many characters as its translation has words; at 1.3x the
    # time per character, zh/en ratios centre near 2 and many pairs fall outside [0.5, 2].
    report = build_corpus(tmp_path, 20, seed=2, proportions={"train": 0.9, "test": 0.1}, unseen_speakers=[],
                          backend=ToneBackend(pad=0.0, zh_scale=1.3), progress=False)
    assert report["dropped"]["duration_ratio"] >= 5
    assert report["candidate_pairs"] >= 20 + report["dropped"]["duration_ratio"]
    rows = read_manifest(tmp_path / "train.jsonl") + read_manifest(tmp_path / "test.jsonl")
    assert len(rows) == 40 and all(0.5 <= r["duration_ratio"] <= 2.0 for r in rows)


class LookupRecognizer:
    """Recognises tone 'speech' by its length; mishears every six-unit English utterance."""

    name = "lookup"

    def __init__(self, texts: dict[tuple[str, int], str]):
        self.texts = texts

    def transcribe(self, wavs, lang):
        units = [round((len(w) / 16000 - 0.2) / 0.25) for w in wavs]
        return ["something else entirely" if (lang, n) == ("en", 6) else self.texts[(lang, n)] for n in units]


def test_recognition_filter_drops_misrecognised_pairs(tmp_path):
    rows = [("我有一只猫。", "I have a cat."), ("我有两只黑猫。", "I have two black cats."),
            ("我们有三只小黑猫。", "We have three small black cats.")]
    texts = {}
    for zh, en in rows:
        texts[("zh", ToneBackend.units(zh, "zh"))], texts[("en", len(en.split()))] = zh, en
    from dragoman.nodes.data.build import CorpusBuilder, make_casting
    from dragoman.nodes.data.importers import read_text_pairs
    from dragoman.nodes.data.planning import ListPlanner
    from dragoman.nodes.data.voices import EMOTIONS, SPEAKERS

    pairs, _, _ = read_text_pairs(_pairs_file(tmp_path, rows))
    planner = ListPlanner(pairs, 0, {"train": 1.0}, make_casting(0, unseen_speakers=[]), SPEAKERS, EMOTIONS)
    builder = CorpusBuilder(tmp_path / "out", ToneBackend(), recognition=RecognitionFilter(LookupRecognizer(texts)),
                            progress=False)
    report = builder.build(planner, planner.sizes)
    assert report["dropped"]["recognition"] == 1
    kept = {r["text"] for r in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert "We have three small black cats." not in kept and "I have a cat." in kept
    assert json.loads((tmp_path / "out" / "build_report.json").read_text())["dropped"]["recognition"] == 1


def test_error_rate_matches_hand_counts():
    assert error_rate("The cat sat.", "the cat sit", "en") == pytest.approx(1 / 3)
    assert error_rate("I have a cat.", "I have cat", "en") == pytest.approx(1 / 4)
    assert error_rate("我有一只猫。", "我有一只狗", "zh") == pytest.approx(1 / 5)
    assert error_rate("我有猫。", "", "zh") == 1.0

"""Importing user text pairs and CoVoST/CVSS-style corpora: malformed lines are skipped and
counted, audio is converted to 16 kHz, pairs are filtered by duration ratio."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dragoman.nodes.data.importers import import_covost, read_text_pairs
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import read_manifest

TSV = """zh\ten\temotion\tspeaker
# a comment line is not data
我有一只猫。\tI have a cat.\thappy\ts02
他在家。\tHe is at home.

只有一列
\tI have a dog.
I have a dog.\t我有一只狗。
我有一只狗。\tI have a dog.\tbored
我有一只狗。\tI have a dog.\tsad\ts99
她有一本书。\tShe has a book.\tsad\ts05\textra
我有一只猫。\tI have a black cat.
"""


def test_tsv_malformed_lines_are_skipped_counted_and_located(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(TSV, encoding="utf-8")
    rows, bad, duplicates = read_text_pairs(path)
    assert [(zh, en) for zh, en, _ in rows] == [("我有一只猫。", "I have a cat."), ("他在家。", "He is at home.")]
    assert rows[0][2] == {"emotion": "happy", "speaker": "s02"}
    reasons = dict(bad)
    assert sorted(reasons) == [6, 7, 8, 9, 10, 11]
    assert "columns" in reasons[6] and "missing" in reasons[7] and "no Chinese" in reasons[8]
    assert "unknown emotion 'bored'" in reasons[9] and "unknown speaker 's99'" in reasons[10]
    assert "columns" in reasons[11]
    assert duplicates == 1


def test_jsonl_pairs_with_bad_json_lines(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"zh": "我有一只猫。", "en": "I have a cat.", "split": "test"}\n{"zh": "坏\n[1, 2]\n'
                    '{"zh": "他在家。", "en": "He is at home.", "source_lang": "fr"}\n', encoding="utf-8")
    rows, bad, _ = read_text_pairs(path)
    assert rows == [("我有一只猫。", "I have a cat.", {"split": "test"})]
    assert [n for n, _ in bad] == [2, 3, 4] and "unknown source_lang 'fr'" in bad[2][1]


def test_missing_or_non_utf8_pairs_file_is_a_one_line_error(tmp_path):
    with pytest.raises(DragomanError, match="no such file"):
        read_text_pairs(tmp_path / "nope.tsv")
    path = tmp_path / "latin1.tsv"
    path.write_bytes("caf\xe9\tcoffee\n".encode("latin-1"))
    with pytest.raises(DragomanError, match="not UTF-8"):
        read_text_pairs(path)


def _tone(path, seconds, rate=48000):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), rate, format="WAV")


def test_covost_with_cvss_targets(tmp_path):
    clips, targets = tmp_path / "clips", tmp_path / "cvss"
    clips.mkdir(), targets.mkdir()
    _tone(clips / "a.mp3", 2.0)  # soundfile writes WAV whatever the name says; read by content
    _tone(clips / "b.mp3", 1.0)
    _tone(clips / "c.mp3", 2.0)
    _tone(targets / "a.mp3.wav", 2.2, rate=24000)
    _tone(targets / "b.mp3.wav", 3.0, rate=24000)  # 3x the source: dropped by the ratio filter
    _tone(targets / "c.mp3.wav", 1.8, rate=24000)
    covost = tmp_path / "covost.tsv"
    covost.write_text("path\tsentence\ttranslation\tclient_id\tsplit\n"
                      "a.mp3\t我有一只猫。\tI have a cat.\tspk1\ttrain\n"
                      "b.mp3\t他在家。\tHe is at home.\tspk2\ttrain\n"
                      "c.mp3\t她有一本书。\tShe has a book.\tspk1\ttest\n"
                      "d.mp3\t我们去公园。\tWe go to the park.\tspk3\ttrain\n"
                      "e.mp3\tonly two\tcolumns\n", encoding="utf-8")
    cvss = tmp_path / "cvss.tsv"
    cvss.write_text("a.mp3\ti have a cat\nb.mp3\the is at home\nc.mp3\tshe has a book\nd.mp3\twe go to the park\n"
                    "broken line\n", encoding="utf-8")
    report = import_covost(covost, clips, tmp_path / "out", "zh-CN", cvss_tsv=cvss, cvss_audio_dir=targets,
                           progress=False)
    assert (report["pairs"], report["duration_ratio"], report["bad_audio"], report["malformed_lines"]) == (2, 1, 1, 2)
    train = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [(r["lang"], r["text"], r["speaker"]) for r in train] == [("zh", "我有一只猫。", "spk1"),
                                                                     ("en", "i have a cat", "spk1")]
    assert train[0]["duration_ratio"] == pytest.approx(1.1, abs=0.01) and train[0]["hq"]
    for row in train + read_manifest(tmp_path / "out" / "test.jsonl"):
        info = sf.info(row["audio_filepath"])
        assert info.samplerate == 16000 and info.frames / 16000 == pytest.approx(row["duration"], abs=1e-3)


def test_covost_without_targets_writes_source_lines(tmp_path):
    (tmp_path / "clips").mkdir()
    _tone(tmp_path / "clips" / "a.wav", 1.0)
    covost = tmp_path / "covost.tsv"
    covost.write_text("path\tsentence\ttranslation\na.wav\tI have a cat.\t我有一只猫。\n", encoding="utf-8")
    report = import_covost(covost, tmp_path / "clips", tmp_path / "out", "en", split="dev", progress=False)
    (row,) = read_manifest(tmp_path / "out" / "dev.jsonl")
    assert report["source_only"] == 1 and (row["lang"], row["translation"]) == ("en", "我有一只猫。")
    bad = tmp_path / "bad.tsv"
    bad.write_text("file\ttext\n", encoding="utf-8")
    with pytest.raises(DragomanError, match="not a CoVoST TSV"):
        import_covost(bad, tmp_path / "clips", tmp_path / "out2", "en", progress=False)

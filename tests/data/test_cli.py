"""`dragoman data` from the command line: JSON output, stats files, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dragoman.graphs.cli import main

from .conftest import needs_espeak


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@needs_espeak
def test_build_json_prints_one_object_with_the_report(tmp_path, capsys):
    code, out, _ = run_cli(["data", "build", "--out", str(tmp_path), "--pairs", "4", "--seed", "5", "--jobs", "1",
                            "--split", "train=0.5,test=0.25,test_unseen_speakers=0.25", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    assert {s: v["pairs"] for s, v in report["splits"].items()} == {"train": 2, "dev": 0, "test": 1,
                                                                    "test_unseen_speakers": 1}
    assert report["splits"]["test_unseen_speakers"]["speakers"] == ["s11"] or \
        report["splits"]["test_unseen_speakers"]["speakers"] == ["s12"]
    assert json.loads((tmp_path / "build_report.json").read_text())["splits"] == report["splits"]


def test_stats_writes_summary_and_plots(espeak_corpus, tmp_path, capsys):
    corpus, _, _ = espeak_corpus
    code, out, _ = run_cli(["data", "stats", str(corpus / "train.jsonl"), "-o", str(tmp_path), "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["utterances"] == 12 and summary["pairs"] == 6
    assert set(summary["hours_per_lang"]) == {"zh", "en"}
    assert sum(m["utterances"] for m in summary["prosody_per_emotion"].values()) == 12
    for name in ("durations.png", "f0_per_emotion.png", "f0_per_speaker.png", "duration_ratio.png", "summary.json"):
        data = (tmp_path / name).read_bytes()
        assert len(data) > 1000 and (name.endswith(".json") or data[:8] == b"\x89PNG\r\n\x1a\n")


@needs_espeak  # the unwritable-folder case is checked after espeak-ng is found
def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (["data", "build", "--out", str(blocker / "sub"), "--pairs", "2"], "cannot write the corpus here"),
        (["data", "build", "--out", str(tmp_path / "o"), "--pairs", "2", "--emotions", "happy,bored"],
         "unknown emotion 'bored'"),
        (["data", "build", "--out", str(tmp_path / "o"), "--pairs", "2", "--speakers", "s01,s99"],
         "unknown speaker 's99'"),
        (["data", "build", "--out", str(tmp_path / "o"), "--pairs", "2", "--split", "train=lots"],
         "expected NAME=SHARE"),
        (["data", "stats", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "s")], "no such manifest"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "o").exists()


def test_missing_espeak_is_reported_with_install_hint_and_nothing_written(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # a PATH without espeak-ng
    done = subprocess.run([sys.executable, "-m", "dragoman.graphs.cli", "data", "build", "--out",
                           str(tmp_path / "corpus"), "--pairs", "2"], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("dragoman: error: espeak-ng not found") and done.stderr.count("\n") == 1
    assert "apt-get install espeak-ng" in done.stderr and not (tmp_path / "corpus").exists()


@needs_espeak
def test_import_pairs_reports_malformed_lines(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("我有一只猫。\tI have a cat.\n坏行\n他在家。\tHe is at home.\ts02\thappy\n", encoding="utf-8")
    code, out, _ = run_cli(["data", "import", "pairs", str(pairs), "--out", str(tmp_path / "c"), "--jobs", "1",
                            "--split", "train=1"], capsys)
    assert code == 0 and "malformed lines skipped: 1" in out and "line 2:" in out
    rows = [json.loads(line) for line in (tmp_path / "c" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and {r["emotion"] for r in rows if r["text"] in ("他在家。", "He is at home.")} == {"happy"}


@pytest.mark.parametrize("argv", [["data"], ["data", "import"]])
def test_data_without_a_verb_prints_help(argv, capsys):
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "usage: dragoman data" in out

"""The command line: cheap --help, graph check over the library, one-line errors with exit 2."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from dragoman.graphs.spec import library_graphs


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dragoman.graphs.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_imports_no_heavy_modules():
    code = (
        "import sys, contextlib, io\n"
        "from dragoman.graphs.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'nemo', 'omegaconf', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"--help imported {out.stdout.strip()}"


def test_help_lists_commands():
    out = cli("--help")
    assert out.returncode == 0
    for command in ("translate", "graph"):
        assert command in out.stdout


@pytest.mark.parametrize("name", library_graphs())
def test_every_shipped_graph_passes_check(name):
    out = cli("graph", "check", name)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hostile_graph_refused_in_one_line(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("nodes:\n  x: {_target_: os.system, config: {command: 'touch pwned'}}\n")
    out = cli("graph", "check", path, cwd=tmp_path)
    assert out.returncode == 2
    assert "refusing `_target_: os.system`" in out.stdout
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content, problem", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt garbage", "not a readable audio file"),
    (b"", "empty file"),
    (b"hello, I am text", "not a readable audio file"),
])
def test_bad_audio_to_translate_is_one_line_exit_2(tmp_path, content, problem):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    out = cli("translate", bad, "--graph", "segment", "-o", tmp_path / "out.wav")
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.startswith("dragoman: error:")]
    assert len(lines) == 1 and problem in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out.wav").exists()


def test_batch_translate_continues_past_a_bad_file(tmp_path):
    t = np.arange(32000) / 16000
    good = tmp_path / "good.wav"
    sf.write(good, 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0), 16000)
    missing = tmp_path / "missing.wav"
    out = cli("translate", missing, good, "--graph", "segment", "--out-dir", tmp_path / "out")
    assert out.returncode == 2
    assert "missing.wav: no such file" in out.stderr
    assert (tmp_path / "out" / "good.out.wav").is_file()


def test_flag_for_a_param_the_graph_lacks_is_refused(tmp_path):
    out = cli("translate", "x.wav", "--graph", "segment", "--mode", "performance", "-o", tmp_path / "o.wav")
    assert out.returncode == 2 and "has no param 'mode'" in out.stderr


def test_graph_show_draws_png(tmp_path):
    out = cli("graph", "show", "segment", "-o", tmp_path / "g.png")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

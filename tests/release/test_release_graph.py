"""`graphs/uniss_release.yaml` on the tiny release: loading, an end-to-end run, CLI errors."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dragoman.graphs.cli import main
from dragoman.graphs.runtime import Graph
from dragoman.nodes.errors import GraphError

from .tiny_release import TINY_WIDTHS

TINY = [f"nodes.speaker.config.widths.{k}={v}" for k, v in TINY_WIDTHS.items()]


@pytest.fixture
def source_wav(tmp_path):
    t = np.arange(40_000) / 16000
    wav = 0.3 * np.sin(2 * np.pi * 190 * t) * (np.sin(2 * np.pi * 2 * t) > -0.5)
    path = tmp_path / "source.wav"
    sf.write(path, wav.astype("float32"), 16000)
    return path


def test_release_graph_checks_without_weights_and_refuses_to_run_without_them():
    graph = Graph.load("uniss_release")
    assert {"speaker", "content", "translator", "decoder"} <= set(graph.order)
    with pytest.raises(GraphError, match="--weights DIR"):
        graph.setup()


@pytest.mark.parametrize("mode", ["quality", "direct"])
def test_release_graph_end_to_end_produces_audio(release_root, source_wav, mode):
    overrides = [f"weights={release_root}", f"mode={mode}", "nodes.prompter.config.max_new_tokens=24", *TINY]
    graph = Graph.load("uniss_release", overrides=overrides).setup()
    out = graph.run({"audio_path": [str(source_wav)]},
                    expose=["parser.semantic_tokens", "content.content_tokens", "speaker.speaker_tokens"])
    assert out["audio"][0].shape[0] == 40_000          # stitched back on the source's timeline
    assert float(out["audio"][0].abs().max()) > 0
    semantic = out["parser.semantic_tokens"]
    assert semantic and all(0 < s.numel() <= 24 for s in semantic)
    assert all(s.numel() == 32 for s in out["speaker.speaker_tokens"])


def test_release_translate_cli_names_the_missing_subfolder(partial_release, source_wav, tmp_path, capsys):
    root = partial_release(skip="bicodec/BiCodec")
    code = main(["translate", str(source_wav), "--graph", "uniss_release", "--weights", str(root),
                 "-o", str(tmp_path / "out.wav"), *(x for item in TINY for x in ("--set", item))])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("dragoman: error:") and "missing sub-folder 'bicodec/BiCodec/'" in err
    assert not (tmp_path / "out.wav").exists()

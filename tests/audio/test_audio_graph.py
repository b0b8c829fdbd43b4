"""The three audio nodes wired in a graph: their port types connect (and refuse a wrong edge),
and a file goes load -> segment -> stitch with its timing intact."""
import textwrap

import numpy as np
import pytest
import soundfile as sf

from dragoman.graphs.runtime import Graph
from dragoman.nodes.errors import AudioError, GraphError

SR = 16_000

GRAPH = """
name: audio_round_trip
inputs:
  audio_path: [loader.path, vad.path]
nodes:
  loader: {_target_: audio_loader}
  vad: {_target_: vad_segmenter, config: {max_segment_s: 6.0}}
  stitcher: {_target_: stitcher}
connections:
  - loader.audio -> vad.audio
  - vad.segments -> stitcher.audio
  - {layout_edge}
outputs:
  audio: stitcher.audio
  layout: vad.layout
  duration: loader.duration
"""


def _graph_file(tmp_path, layout_edge="vad.layout -> stitcher.layout"):
    path = tmp_path / "graph.yaml"
    path.write_text(textwrap.dedent(GRAPH).replace("{layout_edge}", layout_edge))
    return path


def _tone_bursts(path, seconds=20.0, bursts=((1.0, 4.0), (5.0, 12.5), (15.0, 16.0))):
    """Harmonic bursts with syllable-rate modulation, written as 22.05 kHz stereo PCM_16."""
    rate = 22_050
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 10))
    envelope = np.zeros_like(t)
    for a, b in bursts:
        envelope[(t >= a) & (t < b)] = 0.55 - 0.45 * np.cos(2 * np.pi * 4 * t[(t >= a) & (t < b)])
    mono = 0.2 * voiced * envelope
    sf.write(path, np.stack([mono, mono], axis=1), rate, subtype="PCM_16")


def test_file_through_loader_vad_stitcher(tmp_path):
    wav_path = tmp_path / "talk.wav"
    _tone_bursts(wav_path)
    graph = Graph.load(_graph_file(tmp_path))
    out = graph.run({"audio_path": [str(wav_path)]})
    assert out["duration"] == [pytest.approx(20.0)]
    layout = out["layout"][0]
    assert layout.length == 20 * SR and len(out["audio"][0]) == 20 * SR
    assert all(b - a <= 6 * SR for a, b in layout.segments)  # the 7.5 s burst is split
    starts = [a / SR for a, _ in layout.segments]
    # the last segment ends where its speech does plus the 0.35 s of silence a segment keeps
    assert starts[0] == pytest.approx(1.0, abs=0.1) and max(b for _, b in layout.segments) / SR == pytest.approx(16.35, abs=0.1)


def test_silent_file_error_names_the_file(tmp_path):
    wav_path = tmp_path / "silent.wav"
    sf.write(wav_path, np.zeros(3 * SR), SR)
    with pytest.raises(AudioError, match=f"^{wav_path}: no speech found"):
        Graph.load(_graph_file(tmp_path)).run({"audio_path": [str(wav_path)]})


def test_spans_cannot_feed_a_layout_port(tmp_path):
    with pytest.raises(GraphError, match=r"mistyped edge vad.spans -> stitcher.layout"):
        Graph.load(_graph_file(tmp_path, "vad.spans -> stitcher.layout"))

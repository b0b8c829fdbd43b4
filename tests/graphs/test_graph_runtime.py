"""Graph loading and running: allowlist, edge types, overrides, topological execution."""
import dataclasses
import textwrap

import pytest

from dragoman.graphs.runtime import Graph
from dragoman.nodes import types as T
from dragoman.nodes.base import Node
from dragoman.nodes.errors import DragomanError, GraphError, UnsafeTargetError
from dragoman.nodes.registry import BUILTIN_NODES, register_node


@dataclasses.dataclass
class ScaleConfig:
    factor: float = 2.0
    rate: int = 16000


class Scale(Node):
    """audio -> audio * factor (at a configurable rate)."""

    node_name = "t_scale"
    Config = ScaleConfig

    @classmethod
    def port_types(cls, cfg):
        return {"audio": T.audio(cfg.rate)}, {"audio": T.audio(cfg.rate)}

    def run(self, audio):
        return {"audio": [a * self.cfg.factor for a in audio]}


class Count(Node):
    """audio -> semantic tokens (one per 320 samples)."""

    node_name = "t_count"

    @classmethod
    def port_types(cls, cfg):
        return {"audio": T.audio(16000)}, {"tokens": T.tokens(T.SemanticTokensType, 50)}

    def run(self, audio):
        return {"tokens": [list(range(len(a) // 320)) for a in audio]}


@dataclasses.dataclass
class RenderConfig:
    codes: int = 0  # > 0: declares a semantic codebook of that size


class Render(Node):
    """semantic tokens + optional speaker tokens -> number of samples."""

    node_name = "t_render"
    optional_inputs = frozenset({"speaker"})
    Config = RenderConfig

    def codebooks(self):
        return {"semantic": self.cfg.codes} if self.cfg.codes else {}

    @classmethod
    def port_types(cls, cfg):
        return (
            {"tokens": T.tokens(T.SemanticTokensType, 50), "speaker": T.tokens(T.SpeakerTokensType)},
            {"samples": T.audio(16000)},
        )

    def run(self, tokens, speaker=None):
        return {"samples": [len(t) * 320 for t in tokens]}


@pytest.fixture(autouse=True)
def _registered():
    for cls in (Scale, Count, Render):
        register_node(cls.node_name, f"{cls.__module__}:{cls.__qualname__}")
    yield
    for cls in (Scale, Count, Render):
        BUILTIN_NODES.pop(cls.node_name, None)


def write(tmp_path, text, name="g.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
name: toy
params: {factor: 3.0}
inputs: {wave: scale.audio}
nodes:
  scale: {_target_: t_scale, config: {factor: "${params.factor}"}}
  count: {_target_: t_count}
  render: {_target_: t_render}
connections:
  - scale.audio -> count.audio
  - count.tokens -> render.tokens
outputs: {samples: render.samples}
"""


def test_runs_in_topological_order_and_exposes_intermediate_ports(tmp_path):
    import torch

    graph = Graph.load(write(tmp_path, GOOD))
    assert graph.order == ["scale", "count", "render"]
    out = graph.run({"wave": [torch.ones(3200), torch.ones(640)]}, expose=["scale.audio"])
    assert out["samples"] == [3200, 640]
    assert torch.equal(out["scale.audio"][0], torch.full((3200,), 3.0))


def test_nodes_that_disagree_on_a_codebook_are_refused_at_setup(tmp_path):
    two = GOOD.replace("render: {_target_: t_render}", "render: {_target_: t_render, config: {codes: 256}}\n"
                       "  other: {_target_: t_render, config: {codes: 1000}}")
    two = two.replace("  - count.tokens -> render.tokens", "  - count.tokens -> render.tokens\n  - count.tokens -> other.tokens")
    with pytest.raises(GraphError, match=r"node '\w+' has (256|1000) semantic codes but node '\w+' has (1000|256)"):
        Graph.load(write(tmp_path, two)).setup()
    Graph.load(write(tmp_path, two.replace("codes: 1000", "codes: 256"))).setup()


def test_override_reaches_interpolated_config(tmp_path):
    import torch

    graph = Graph.load(write(tmp_path, GOOD), overrides=["factor=0.5"])
    assert float(graph.run({"wave": [torch.ones(320)]}, expose=["scale.audio"])["scale.audio"][0][0]) == 0.5
    graph = Graph.load(write(tmp_path, GOOD), overrides=["nodes.scale.config.factor=5"])
    assert float(graph.run({"wave": [torch.ones(320)]}, expose=["scale.audio"])["scale.audio"][0][0]) == 5.0


def test_unknown_override_is_refused(tmp_path):
    with pytest.raises(GraphError, match="unknown override 'speed'"):
        Graph.load(write(tmp_path, GOOD), overrides=["speed=2"])


def test_mistyped_edge_names_both_ports_and_types(tmp_path):
    bad = GOOD.replace("count.tokens -> render.tokens", "scale.audio -> render.tokens")
    with pytest.raises(GraphError) as err:
        Graph.load(write(tmp_path, bad))
    message = str(err.value)
    assert "scale.audio -> render.tokens" in message
    assert "AudioSignal(freq=16000)" in message and "SemanticTokensType(rate=50)" in message
    assert "\n" not in message


def test_sample_rate_mismatch_is_a_type_error(tmp_path):
    bad = GOOD.replace("config: {factor: \"${params.factor}\"}", "config: {factor: 1.0, rate: 8000}")
    with pytest.raises(GraphError, match=r"AudioSignal\(freq=8000\).*AudioSignal\(freq=16000\)"):
        Graph.load(write(tmp_path, bad))


@pytest.mark.parametrize("target", ["os.system", "subprocess.Popen", "builtins.eval", "torch.nn.Linear"])
def test_hostile_target_is_refused_without_import(tmp_path, target):
    bad = GOOD.replace("_target_: t_count", f"_target_: {target}")
    with pytest.raises(UnsafeTargetError, match="refusing"):
        Graph.load(write(tmp_path, bad))


def test_trusted_target_must_still_be_a_node(tmp_path):
    bad = GOOD.replace("_target_: t_count", "_target_: os.system")
    with pytest.raises(UnsafeTargetError, match="not a dragoman node class"):
        Graph.load(write(tmp_path, bad), trust=True)


def test_unknown_node_lists_known_ones(tmp_path):
    with pytest.raises(GraphError, match="unknown node 'no_such_node'.*t_count"):
        Graph.load(write(tmp_path, GOOD.replace("_target_: t_count", "_target_: no_such_node")))


@pytest.mark.parametrize(
    "text, match",
    [
        ("nodes: [1, 2\n", "invalid YAML at line"),
        ("- just a list\n", "must be a YAML mapping"),
        ("nodes: {}\n", "non-empty mapping"),
        (GOOD.replace("outputs:", "outputz:"), "unknown top-level key"),
        (GOOD.replace("count: {_target_: t_count}", "count: {_target_: t_count, weight: 1}"), "unknown field"),
        (GOOD.replace("config: {factor: \"${params.factor}\"}", "config: {factr: 1}"), "bad config"),
        (GOOD.replace("- scale.audio -> count.audio", "- scale.audio => count.audio"), "must read"),
        (GOOD.replace("- scale.audio -> count.audio", "- scale.audio -> cont.audio"), "unknown node 'cont'"),
        (GOOD.replace("- scale.audio -> count.audio", "- scale.sound -> count.audio"), "no output port 'sound'"),
        (GOOD.replace("  - scale.audio -> count.audio\n", ""), "count.audio is not connected"),
    ],
)
def test_malformed_graphs_give_one_line_errors(tmp_path, text, match):
    with pytest.raises(GraphError, match=match) as err:
        Graph.load(write(tmp_path, text))
    assert "\n" not in str(err.value)


def test_cycle_is_reported(tmp_path):
    cyclic = """
    nodes:
      a: {_target_: t_scale}
      b: {_target_: t_scale}
    connections:
      - a.audio -> b.audio
      - b.audio -> a.audio
    """
    with pytest.raises(GraphError, match="cycle"):
        Graph.load(write(tmp_path, cyclic))


def test_double_fed_port_is_refused(tmp_path):
    bad = GOOD.replace("inputs: {wave: scale.audio}", "inputs: {wave: [scale.audio, count.audio]}")
    with pytest.raises(GraphError, match="fed twice"):
        Graph.load(write(tmp_path, bad))


def test_run_checks_inputs(tmp_path):
    graph = Graph.load(write(tmp_path, GOOD))
    with pytest.raises(DragomanError, match="missing input"):
        graph.run({})
    with pytest.raises(DragomanError, match="must be a list"):
        graph.run({"wave": "not a list"})

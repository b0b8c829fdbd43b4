"""Which classes a graph may name (DESIGN §4).

A graph's `_target_` is resolved here and nowhere else. It may be:
- a registered name: `audio_loader` (built-in) or a name a package declares under the
  `dragoman.nodes` entry-point group (`my_vad = "mypkg.vad:MyVad"` in its pyproject);
- a dotted class path inside the allowlisted namespace `dragoman.nodes.`;
- any other dotted path only with `trust=True` (the CLI's `--trust-graph`).
Everything else is refused *before* any import, so `_target_: os.system` never runs code. Even a
trusted target must be a node class (it must declare ports), not an arbitrary callable.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from dragoman.nodes.errors import GraphError, UnsafeTargetError

ALLOWED_NAMESPACES = ("dragoman.nodes.",)
ENTRY_POINT_GROUP = "dragoman.nodes"

# name -> "module:Class". Kept as strings so that listing nodes imports nothing.
BUILTIN_NODES: dict[str, str] = {
    "audio_loader": "dragoman.nodes.audio.loader:AudioLoader",
    "vad_segmenter": "dragoman.nodes.audio.vad:VadSegmenter",
    "stitcher": "dragoman.nodes.audio.stitcher:Stitcher",
    "emotion_tokenizer": "dragoman.nodes.emotion_tokenizer:EmotionTokenizer",
    "speaker_encoder": "dragoman.nodes.speaker_encoder:SpeakerEncoder",
    "content_tokenizer": "dragoman.nodes.content_tokenizer:ContentTokenizer",
    "translator": "dragoman.nodes.translator:Translator",
    "cot_prompter": "dragoman.nodes.controller:CoTPrompter",
    "cot_parser": "dragoman.nodes.controller:CoTParser",
    "task_prompter": "dragoman.nodes.controller:TaskPrompter",
    "source_language": "dragoman.nodes.controller:SourceLanguage",
    "semantic_tokenizer": "dragoman.nodes.semantic_tokenizer:SemanticTokenizer",
    "decoder": "dragoman.nodes.decoder:Decoder",
    "wave_decoder": "dragoman.nodes.decoder:WaveDecoder",
    "uniss_speaker_encoder": "dragoman.nodes.release.uniss_nodes:UniSSSpeakerEncoder",
    "uniss_semantic_tokenizer": "dragoman.nodes.release.uniss_nodes:UniSSSemanticTokenizer",
    "uniss_decoder": "dragoman.nodes.release.uniss_nodes:UniSSDecoder",
    "uniss_content_tokenizer": "dragoman.nodes.release.uniss_nodes:UniSSContentTokenizer",
}


@lru_cache(maxsize=1)
def _entry_point_nodes() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def registered_nodes() -> dict[str, str]:
    """All node names a graph may use without a trust flag."""
    nodes = dict(_entry_point_nodes())
    nodes.update(BUILTIN_NODES)  # built-ins win over a third-party name clash
    return nodes


def register_node(name: str, target: str) -> None:
    """Register a node class path ("module:Class" or "module.Class") under `name` at run time."""
    if ":" not in target:
        module, _, cls = target.rpartition(".")
        target = f"{module}:{cls}"
    BUILTIN_NODES[name] = target


def _import(target: str, where: str):
    module_name, _, class_name = target.replace(":", ".").rpartition(".")
    if ":" in target:
        module_name, class_name = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as err:
        raise GraphError(f"{where}: cannot import node class '{target}' ({err})") from None


def resolve_node_class(target: str, trust: bool = False, where: str = "graph"):
    """Return the node class for a `_target_`, or raise a one-line GraphError."""
    from dragoman.nodes.base import PortsMixin

    if not isinstance(target, str) or not target:
        raise GraphError(f"{where}: `_target_` must be a node name or class path, got {target!r}")
    nodes = registered_nodes()
    if target in nodes:
        cls = _import(nodes[target], where)
    elif target.startswith(ALLOWED_NAMESPACES) or trust:
        if "." not in target and ":" not in target:
            raise GraphError(f"{where}: unknown node '{target}'; known nodes: {', '.join(sorted(nodes))}")
        cls = _import(target, where)
    elif "." not in target and ":" not in target:
        raise GraphError(f"{where}: unknown node '{target}'; known nodes: {', '.join(sorted(nodes))}")
    else:
        raise UnsafeTargetError(
            f"{where}: refusing `_target_: {target}`: not a registered dragoman node "
            f"(allowed: registered names or classes under {', '.join(ALLOWED_NAMESPACES)}; "
            f"pass --trust-graph only for graph files you trust)"
        )
    if not (isinstance(cls, type) and issubclass(cls, PortsMixin)):
        raise UnsafeTargetError(f"{where}: `_target_: {target}` is not a dragoman node class (it declares no ports)")
    return cls

"""Graph files: parsing, command-line overrides, and the shape checks that need no imports.

Format (documented for users in graphs/README.md):

    name: quality
    params: {mode: quality, target_lang: en}          # values overridable as `mode=performance`
    inputs: {audio_path: loader.path}                 # graph input -> node.port (or a list)
    nodes:
      loader: {_target_: audio_loader, config: {sample_rate: 16000}}
      decoder: {_target_: decoder, restore_from: default}
    connections:
      - loader.audio -> vad.audio                     # output port -> input port
    outputs: {segments: vad.segments}                 # graph output <- node.port

YAML is read with OmegaConf (a safe YAML loader: no Python tags) and `${...}` interpolation is
resolved after overrides, so `mode=performance` reaches every `${params.mode}`.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

from dragoman.nodes.errors import GraphError

NODE_FIELDS = {"_target_", "config", "restore_from", "weights"}
TOP_FIELDS = {"name", "description", "params", "inputs", "nodes", "connections", "outputs"}
GRAPH_DIR = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Endpoint:
    node: str
    port: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


@dataclasses.dataclass
class NodeSpec:
    name: str
    target: str
    config: dict
    restore_from: str | None = None
    weights: str | None = None


@dataclasses.dataclass
class GraphSpec:
    name: str
    source: str
    description: str
    params: dict
    nodes: dict[str, NodeSpec]
    inputs: dict[str, list[Endpoint]]
    edges: list[tuple[Endpoint, Endpoint]]
    outputs: dict[str, Endpoint]


def find_graph_file(name_or_path: str | os.PathLike) -> Path:
    """A path to a YAML file, or the name of a graph in the library (`quality`, `cascade`...)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise GraphError(f"{p}: no such graph file")
        return p
    candidate = GRAPH_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(library_graphs())
    raise GraphError(f"{name_or_path}: no such graph file or library graph (library: {known})")


def library_graphs() -> list[str]:
    return sorted(p.stem for p in GRAPH_DIR.glob("*.yaml"))


def _parse_endpoint(text: Any, where: str) -> Endpoint:
    if not isinstance(text, str) or text.count(".") != 1 or not all(text.split(".")):
        raise GraphError(f"{where}: expected 'node.port', got {text!r}")
    node, port = text.strip().split(".")
    return Endpoint(node.strip(), port.strip())


def _parse_override(item: str, root, source: str) -> tuple[str, Any]:
    import yaml

    if "=" not in item:
        raise GraphError(f"{source}: override {item!r} is not KEY=VALUE")
    key, _, raw = item.partition("=")
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    params = root.get("params") or {}
    if "." not in key:
        if key not in params:
            raise GraphError(f"{source}: unknown override {key!r}; graph params are {sorted(params) or 'none'}")
        return f"params.{key}", value
    head, *rest = key.split(".")
    if head == "params" and rest and rest[0] in params:
        return key, value
    if head == "nodes" and len(rest) >= 2 and rest[0] in (root.get("nodes") or {}):
        if rest[1] not in NODE_FIELDS - {"_target_"} and rest[1] != "_target_":
            raise GraphError(f"{source}: override {key!r}: nodes have fields {sorted(NODE_FIELDS)}")
        return key, value
    raise GraphError(f"{source}: unknown override {key!r} (use a param name, params.X or nodes.NODE.FIELD)")


def load_spec(name_or_path: str | os.PathLike, overrides: Sequence[str] = ()) -> GraphSpec:
    """Read a graph file, apply overrides, resolve interpolations, check its shape."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    import yaml

    path = find_graph_file(name_or_path)
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise GraphError(f"{source}: invalid YAML{at} ({getattr(err, 'problem', None) or err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise GraphError(f"{source}: cannot read graph file ({err})") from None
    if not isinstance(raw, dict):
        raise GraphError(f"{source}: a graph file must be a YAML mapping")
    unknown = sorted(set(raw) - TOP_FIELDS)
    if unknown:
        raise GraphError(f"{source}: unknown top-level key(s) {unknown}; allowed: {sorted(TOP_FIELDS)}")
    if not isinstance(raw.get("nodes"), dict) or not raw["nodes"]:
        raise GraphError(f"{source}: `nodes` must be a non-empty mapping of node name -> spec")
    try:
        root = OmegaConf.create(raw)
        for item in overrides:
            key, value = _parse_override(item, raw, source)
            OmegaConf.update(root, key, value, merge=True, force_add=True)
        data = OmegaConf.to_container(root, resolve=True)
    except OmegaConfBaseException as err:
        raise GraphError(f"{source}: {str(err).splitlines()[0]}") from None
    return _build_spec(data, source)


def _build_spec(data: dict, source: str) -> GraphSpec:
    nodes: dict[str, NodeSpec] = {}
    for name, spec in data["nodes"].items():
        where = f"{source}: node '{name}'"
        if not isinstance(spec, dict):
            raise GraphError(f"{where}: spec must be a mapping with `_target_`")
        bad = sorted(set(spec) - NODE_FIELDS)
        if bad:
            raise GraphError(f"{where}: unknown field(s) {bad}; allowed: {sorted(NODE_FIELDS)}")
        if "_target_" not in spec:
            raise GraphError(f"{where}: missing `_target_`")
        config = spec.get("config") or {}
        if not isinstance(config, dict):
            raise GraphError(f"{where}: `config` must be a mapping")
        nodes[name] = NodeSpec(name, spec["_target_"], config, spec.get("restore_from"), spec.get("weights"))

    inputs: dict[str, list[Endpoint]] = {}
    for name, targets in (data.get("inputs") or {}).items():
        targets = targets if isinstance(targets, list) else [targets]
        inputs[name] = [_parse_endpoint(t, f"{source}: input '{name}'") for t in targets]

    edges = []
    for item in data.get("connections") or []:
        if not isinstance(item, str) or "->" not in item:
            raise GraphError(f"{source}: connection {item!r} must read 'node.port -> node.port'")
        left, right = item.split("->", 1)
        where = f"{source}: connection '{item}'"
        edges.append((_parse_endpoint(left.strip(), where), _parse_endpoint(right.strip(), where)))

    outputs = {name: _parse_endpoint(ep, f"{source}: output '{name}'") for name, ep in (data.get("outputs") or {}).items()}
    for where, endpoint in [*((f"input '{n}'", e) for n, es in inputs.items() for e in es),
                            *((f"connection '{a} -> {b}'", e) for a, b in edges for e in (a, b)),
                            *((f"output '{n}'", e) for n, e in outputs.items())]:
        if endpoint.node not in nodes:
            raise GraphError(f"{source}: {where} names unknown node '{endpoint.node}'; nodes are {sorted(nodes)}")
    return GraphSpec(
        name=str(data.get("name") or Path(source).stem),
        source=source,
        description=str(data.get("description") or ""),
        params=dict(data.get("params") or {}),
        nodes=nodes,
        inputs=inputs,
        edges=edges,
        outputs=outputs,
    )

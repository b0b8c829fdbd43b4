"""Running a graph: resolve node classes, check every edge's types, then run in topological order.

`Graph.load()` does everything that needs no weights or audio: it parses the file, resolves each
`_target_` through the registry (refusing unregistered code), derives each node's port types from
its config and checks every connection. Only `Graph.setup()` builds nodes and loads weights, so
`dragoman graph check` is cheap and a mistyped edge is reported before anything heavy happens.
"""
from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Any, Iterable, Mapping, Sequence

from dragoman.graphs.spec import Endpoint, GraphSpec, load_spec
from dragoman.nodes.base import make_config
from dragoman.nodes.errors import DragomanError, GraphError
from dragoman.nodes.registry import resolve_node_class


class Graph:
    def __init__(self, spec: GraphSpec, trust: bool = False):
        from dragoman.nodes import types as T

        self.spec = spec
        self.classes = {}
        self.in_types: dict[str, dict] = {}
        self.out_types: dict[str, dict] = {}
        for name, node in spec.nodes.items():
            where = f"{spec.source}: node '{name}'"
            cls = resolve_node_class(node.target, trust=trust, where=where)
            self.classes[name] = cls
            config = make_config(cls.Config, node.config, owner=where)
            try:
                self.in_types[name], self.out_types[name] = cls.port_types(config)
            except DragomanError:
                raise
            except Exception as err:  # a config the node rejects is the graph's problem
                raise GraphError(f"{where}: bad config for {node.target} ({err})") from None
        self._check_ports(T)
        self.order = self._topological_order()
        self.nodes: dict[str, Any] = {}

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path, overrides: Sequence[str] = (), trust: bool = False) -> "Graph":
        return cls(load_spec(name_or_path, overrides), trust=trust)

    def _port(self, endpoint: Endpoint, side: str, where: str):
        table = self.in_types if side == "input" else self.out_types
        ports = table[endpoint.node]
        if endpoint.port not in ports:
            cls = self.classes[endpoint.node].__name__
            raise GraphError(
                f"{self.spec.source}: {where}: node '{endpoint.node}' ({cls}) has no {side} port "
                f"'{endpoint.port}'; its {side} ports are {sorted(ports)}"
            )
        return ports[endpoint.port]

    def _check_ports(self, T) -> None:
        fed: dict[Endpoint, str] = {}
        for name, targets in self.spec.inputs.items():
            for dst in targets:
                self._port(dst, "input", f"input '{name}'")
                if dst in fed:
                    raise GraphError(f"{self.spec.source}: input port {dst} is fed twice ({fed[dst]} and input '{name}')")
                fed[dst] = f"input '{name}'"
        for src, dst in self.spec.edges:
            where = f"connection '{src} -> {dst}'"
            out_t = self._port(src, "output", where)
            in_t = self._port(dst, "input", where)
            if not T.accepts(in_t, out_t):
                raise GraphError(
                    f"{self.spec.source}: mistyped edge {src} -> {dst}: output {src} is {T.describe(out_t)} "
                    f"but input {dst} expects {T.describe(in_t)}"
                )
            if dst in fed:
                raise GraphError(f"{self.spec.source}: input port {dst} is fed twice ({fed[dst]} and {src})")
            fed[dst] = str(src)
        for name, cls in self.classes.items():
            for port in self.in_types[name]:
                if Endpoint(name, port) not in fed and port not in cls.optional_inputs:
                    raise GraphError(f"{self.spec.source}: input port {name}.{port} is not connected")
        for name, src in self.spec.outputs.items():
            self._port(src, "output", f"output '{name}'")

    def _topological_order(self) -> list[str]:
        deps: dict[str, set[str]] = {name: set() for name in self.spec.nodes}
        for src, dst in self.spec.edges:
            deps[dst.node].add(src.node)
        users = defaultdict(set)
        for node, before in deps.items():
            for b in before:
                users[b].add(node)
        ready = deque(sorted(n for n, d in deps.items() if not d))
        order, remaining = [], {n: len(d) for n, d in deps.items()}
        while ready:
            node = ready.popleft()
            order.append(node)
            for user in sorted(users[node]):
                remaining[user] -= 1
                if remaining[user] == 0:
                    ready.append(user)
        if len(order) != len(deps):
            cycle = sorted(n for n, k in remaining.items() if k > 0)
            raise GraphError(f"{self.spec.source}: connections form a cycle through {cycle}")
        return order

    # -- running ---------------------------------------------------------------------------
    def setup(self, device: str | None = None) -> "Graph":
        """Build every node and load its weights (the expensive step)."""
        for name in self.order:
            if name not in self.nodes:
                self.nodes[name] = self._build(name, device)
        self._check_codebooks()
        return self

    def _check_codebooks(self) -> None:
        """Nodes that write or read the same kind of token must agree on its codebook size: a
        translator trained on 256 semantic codes feeding a 1,000-code decoder passes every port
        type yet says nonsense (nodes declare theirs in `codebooks()`)."""
        seen: dict[str, tuple[str, int]] = {}
        for name in self.order:
            sizes = getattr(self.nodes[name], "codebooks", None)
            for kind, size in (sizes() if callable(sizes) else {}).items():
                if kind in seen and seen[kind][1] != size:
                    other, known = seen[kind]
                    raise GraphError(f"{self.spec.source}: node '{other}' has {known} {kind} codes but node "
                                     f"'{name}' has {size}; use checkpoints trained together")
                seen.setdefault(kind, (name, size))

    def _build(self, name: str, device: str | None):
        spec, cls = self.spec.nodes[name], self.classes[name]
        where = f"{self.spec.source}: node '{name}'"
        if hasattr(cls, "from_graph_spec"):
            node = cls.from_graph_spec(spec, where=where, device=device)
        else:
            if spec.restore_from or spec.weights:
                raise GraphError(f"{where}: {cls.__name__} has no weights; remove restore_from/weights")
            node = cls(spec.config)
            node.setup()
        return node

    def run(self, inputs: Mapping[str, list], expose: Iterable[str] = (), timings: dict | None = None) -> dict[str, list]:
        """Run on one batch. `inputs` maps graph input names to lists (one entry per item);
        `expose` adds intermediate ports ('node.port') to the result; `timings` collects
        seconds per node."""
        missing = sorted(set(self.spec.inputs) - set(inputs))
        if missing:
            raise DragomanError(f"graph '{self.spec.name}': missing input(s) {missing}")
        unknown = sorted(set(inputs) - set(self.spec.inputs))
        if unknown:
            raise DragomanError(f"graph '{self.spec.name}': unknown input(s) {unknown}; it takes {sorted(self.spec.inputs)}")
        wanted = {name: ep for name, ep in self.spec.outputs.items()}
        for item in expose:
            from dragoman.graphs.spec import _parse_endpoint

            ep = _parse_endpoint(item, f"graph '{self.spec.name}': expose")
            if ep.node not in self.spec.nodes:
                raise DragomanError(f"graph '{self.spec.name}': cannot expose {item}: no node '{ep.node}'")
            self._port(ep, "output", f"expose '{item}'")
            wanted[item] = ep
        self.setup()
        feeds: dict[str, dict[str, Any]] = defaultdict(dict)
        for name, targets in self.spec.inputs.items():
            value = inputs[name]
            if not isinstance(value, (list, tuple)):
                raise DragomanError(f"graph input '{name}' must be a list (one entry per batch item)")
            for dst in targets:
                feeds[dst.node][dst.port] = list(value)
        produced: dict[str, dict[str, list]] = {}
        for name in self.order:
            started = time.perf_counter()
            out = self.nodes[name].run(**feeds[name])
            if timings is not None:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            produced[name] = out
            for src, dst in self.spec.edges:
                if src.node == name:
                    if src.port not in out:
                        raise DragomanError(f"node '{name}' did not produce its output port '{src.port}'")
                    feeds[dst.node][dst.port] = out[src.port]
        return {key: produced[ep.node][ep.port] for key, ep in wanted.items()}

    def describe_ports(self) -> dict[str, dict[str, dict[str, str]]]:
        from dragoman.nodes import types as T

        return {
            name: {
                "inputs": {p: T.describe(t) for p, t in self.in_types[name].items()},
                "outputs": {p: T.describe(t) for p, t in self.out_types[name].items()},
            }
            for name in self.order
        }

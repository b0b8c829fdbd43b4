"""The node contract (DESIGN §3).

A node has typed ports and a `run(**inputs) -> {output: values}` method, where every value is a
list with one entry per batch item. Ports are declared by the classmethod `port_types(cfg)`, so a
graph is checked edge by edge from configs alone, before any node is built or any weight or
audio is read. Construction is cheap; `setup()` loads weights (Haystack's warm-up step).

Two kinds of node share this contract:
- `Node` (here): no weights — loader, VAD, stitcher, controller. Plain Python, no NeMo import.
- `TrainableNode` (`dragoman.nodes.trainable`): a NeMo `ModelPT`, so a LightningModule with
  `.nemo` save/restore. Its network is a plain torch module in `dragoman.nodes.modules`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from dragoman.nodes.errors import DragomanError, GraphError


@dataclasses.dataclass
class NoConfig:
    """Config of a node that has no settings."""


def make_config(schema: type, cfg: Mapping | None = None, owner: str = "node"):
    """Merge `cfg` onto the dataclass `schema`; unknown keys or wrong value types are one-line
    GraphErrors naming the node, never silently ignored."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(schema)
    if cfg is None:
        return base
    try:
        return OmegaConf.merge(base, cfg)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise GraphError(f"{owner}: bad config ({message})") from None


class PortsMixin:
    """Typed ports shared by plain and trainable nodes."""

    #: Registry name, e.g. "audio_loader" (set by subclasses).
    node_name: ClassVar[str] = ""
    #: Input ports that a graph may leave unconnected (run() then receives None for them).
    optional_inputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def port_types(cls, cfg) -> tuple[dict[str, Any], dict[str, Any]]:
        """(input name -> NeuralType, output name -> NeuralType) for a node built from `cfg`."""
        raise NotImplementedError

    @property
    def input_types(self):
        return self.port_types(self.cfg)[0]

    @property
    def output_types(self):
        return self.port_types(self.cfg)[1]

    def check_inputs(self, inputs: Mapping[str, Any]) -> int:
        """Validate a run() call: known port names, all required ports present, equal batch sizes.
        Returns the batch size."""
        declared = self.input_types
        unknown = sorted(set(inputs) - set(declared))
        if unknown:
            raise DragomanError(f"{self.node_name}: unknown input port(s) {unknown}; it has {sorted(declared)}")
        missing = sorted(p for p in declared if inputs.get(p) is None and p not in self.optional_inputs)
        if missing:
            raise DragomanError(f"{self.node_name}: missing input port(s) {missing}")
        sizes = {name: len(value) for name, value in inputs.items() if value is not None}
        if len(set(sizes.values())) > 1:
            raise DragomanError(f"{self.node_name}: inputs have different batch sizes {sizes}")
        return next(iter(sizes.values()), 0)


class Node(PortsMixin):
    """A node without weights. Subclasses set `Config` (a dataclass), `node_name`,
    `port_types` and `run`."""

    Config: ClassVar[type] = NoConfig

    def __init__(self, cfg: Mapping | None = None, **overrides):
        merged = dict(cfg or {})
        merged.update(overrides)
        self.cfg = make_config(self.Config, merged, owner=self.node_name or type(self).__name__)

    def setup(self) -> None:
        """Load weights or other heavy state; nodes without any do nothing."""

    def run(self, **inputs) -> dict[str, list]:
        raise NotImplementedError

    def __call__(self, **inputs) -> dict[str, list]:
        return self.run(**inputs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.cfg)})"

"""Named, swappable judges for `dragoman eval`: recognisers, speaker judges, emotion classifiers.

Each kind has one `Registry`. A judge is chosen on the command line as `NAME` or `NAME:ARG`
(ARG is usually a checkpoint path) and built by its factory, `factory(arg) -> judge`. Factories
come from two places, both trusted code: `register(name, factory)` calls in dragoman (a node
module registers its adapter when imported, tests register toy judges) and installed packages
that declare an entry point in the group `dragoman.eval.<kind>` (e.g.
`[project.entry-points."dragoman.eval.recognizers"] my-asr = "my_pkg.asr:make"`). Nothing is
imported from a name typed on the command line.
"""
from __future__ import annotations

from typing import Any, Callable

from dragoman.nodes.errors import DragomanError

Factory = Callable[[str | None], Any]


class Registry:
    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._factories: dict[str, Factory] = {}

    def register(self, name: str, factory: Factory) -> None:
        if not name or ":" in name:
            raise ValueError(f"bad {self.kind} name {name!r}")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def _entry_points(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        return sorted(set(self._factories) | set(self._entry_points()))

    def has(self, name: str) -> bool:
        return name in self._factories or name in self._entry_points()

    def create(self, spec: str) -> Any:
        """Build the judge named by `spec` ("NAME" or "NAME:ARG"); unknown names are a one-line
        error listing the known ones."""
        name, _, arg = spec.partition(":")
        factory = self._factories.get(name)
        if factory is None:
            ep = self._entry_points().get(name)
            if ep is None:
                known = ", ".join(self.names()) or "none registered"
                raise DragomanError(f"unknown {self.kind} {name!r} (known: {known})")
            factory = ep.load()
        return factory(arg or None)

"""The `dragoman` command line.

Each subcommand lives in its own module under `dragoman.graphs.commands` and exposes
`register(subparsers)` (argument definitions only) and `run(args) -> int`. Those modules import
nothing heavy at module level: `dragoman --help` must not import torch or NeMo (~10 s), which the
command bodies import when they run.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from dragoman.graphs import commands as _commands

# Preferred order in `dragoman --help`; modules not listed here follow alphabetically. A command
# appears only once its module exists, so the CLI never advertises something that is not real.
_ORDER = ("translate", "graph", "data", "eval", "node", "train", "bench")


def command_names() -> list[str]:
    found = [m.name for m in pkgutil.iter_modules(_commands.__path__) if not m.name.startswith("_")]
    return sorted(found, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dragoman",
        description="Expressive speech-to-speech translation (zh<->en) as composable NeMo nodes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_names():
        module = importlib.import_module(f"dragoman.graphs.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    from dragoman.nodes.errors import DragomanError

    try:
        return int(args.handler(args) or 0)
    except DragomanError as err:
        print(f"dragoman: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dragoman: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

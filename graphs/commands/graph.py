"""`dragoman graph check|show|nodes`: validate and draw graph files without weights or audio."""
from __future__ import annotations

import json


def register(sub) -> None:
    parser = sub.add_parser("graph", help="check, draw or list graph files")
    graph_sub = parser.add_subparsers(dest="graph_command", metavar="ACTION", required=True)

    check = graph_sub.add_parser("check", help="validate graph files: node names, config keys, every edge's port types")
    check.add_argument("files", nargs="+", help="graph YAML files or library graph names")
    check.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                       help="override a param or node field before checking (repeatable)")
    check.add_argument("--trust-graph", action="store_true", help="allow `_target_` classes outside registered nodes")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(handler=_check)

    show = graph_sub.add_parser("show", help="draw a graph (nodes, ports, types) to a PNG")
    show.add_argument("file", help="graph YAML file or library graph name")
    show.add_argument("-o", "--output", required=True, help="PNG path to write")
    show.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    show.add_argument("--trust-graph", action="store_true")
    show.set_defaults(handler=_show)

    nodes = graph_sub.add_parser("nodes", help="list the node names graphs may use")
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(handler=_nodes)


def _check(args) -> int:
    from dragoman.graphs.runtime import Graph
    from dragoman.nodes.errors import DragomanError

    results, failed = {}, 0
    for item in args.files:
        try:
            graph = Graph.load(item, overrides=args.sets, trust=args.trust_graph)
            results[item] = {"ok": True, "nodes": len(graph.order), "edges": len(graph.spec.edges)}
            if not args.json:
                print(f"ok  {item}: {len(graph.order)} nodes, {len(graph.spec.edges)} edges, types match")
        except DragomanError as err:
            failed += 1
            results[item] = {"ok": False, "error": str(err)}
            if not args.json:
                print(f"FAIL {item}: {err}")
    if args.json:
        print(json.dumps({"graphs": results, "failed": failed}))
    return 2 if failed else 0


def _show(args) -> int:
    from dragoman.graphs.draw import draw_graph
    from dragoman.graphs.runtime import Graph

    graph = Graph.load(args.file, overrides=args.sets, trust=args.trust_graph)
    path = draw_graph(graph, args.output)
    print(f"wrote {path}")
    return 0


def _nodes(args) -> int:
    from dragoman.nodes.registry import registered_nodes

    nodes = registered_nodes()
    if args.json:
        print(json.dumps(nodes))
    else:
        for name, target in sorted(nodes.items()):
            print(f"{name:20s} {target}")
    return 0

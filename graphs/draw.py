"""Draw a graph as a PNG: one box per node (input ports left, output ports right), columns by
dependency depth, one arrow per connection labelled with its neural type. matplotlib only (no
graphviz binary needed)."""
from __future__ import annotations

from pathlib import Path

ROW = 0.42  # height of one port row, in axis units
BOX_W = 3.6
COL_W = 6.4


def _depths(graph) -> dict[str, int]:
    depth = {name: 0 for name in graph.order}
    for name in graph.order:  # topological order: parents are final before children
        for src, dst in graph.spec.edges:
            if dst.node == name:
                depth[name] = max(depth[name], depth[src.node] + 1)
    return depth


def draw_graph(graph, output: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    from dragoman.nodes import types as T

    depth = _depths(graph)
    columns: dict[int, list[str]] = {}
    for name in graph.order:
        columns.setdefault(depth[name] + 1, []).append(name)  # column 0 holds graph inputs

    port_xy: dict[tuple[str, str, str], tuple[float, float]] = {}
    boxes = []
    max_height = 0.0
    for col, names in columns.items():
        y = 0.0
        for name in names:
            ins, outs = list(graph.in_types[name]), list(graph.out_types[name])
            rows = max(len(ins), len(outs), 1)
            height = (rows + 1.2) * ROW
            x = col * COL_W
            boxes.append((name, x, -y - height, height))
            for i, port in enumerate(ins):
                port_xy[(name, "in", port)] = (x, -y - (i + 1.5) * ROW)
            for i, port in enumerate(outs):
                port_xy[(name, "out", port)] = (x + BOX_W, -y - (i + 1.5) * ROW)
            y += height + 0.8
        max_height = max(max_height, y)

    fig_w = max(8.0, (max(columns) + 2) * COL_W * 0.55)
    fig, ax = plt.subplots(figsize=(fig_w, max(3.5, max_height * 0.75)))
    for name, x, y0, height in boxes:
        ax.add_patch(FancyBboxPatch((x, y0), BOX_W, height, boxstyle="round,pad=0.05", fc="#eef3fb", ec="#34558b"))
        ax.text(x + BOX_W / 2, y0 + height - 0.45 * ROW, f"{name}  ({graph.spec.nodes[name].target})",
                ha="center", va="center", fontsize=8, weight="bold")
        for (node, side, port), (px, py) in port_xy.items():
            if node == name:
                ax.text(px + (0.1 if side == "in" else -0.1), py, port, fontsize=7,
                        ha="left" if side == "in" else "right", va="center")

    def arrow(a, b, label, color):
        ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color=color, lw=1.1,
                                                        connectionstyle="arc3,rad=0.08"))
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, label, fontsize=6, color=color, ha="center")

    for src, dst in graph.spec.edges:
        t = graph.out_types[src.node][src.port]
        arrow(port_xy[(src.node, "out", src.port)], port_xy[(dst.node, "in", dst.port)], T.describe(t), "#1f6f43")
    for i, (name, targets) in enumerate(graph.spec.inputs.items()):
        start = (0.4, -(i + 1) * ROW * 2.5)
        ax.text(start[0], start[1], f"input: {name}", fontsize=8, ha="left", va="center", color="#8a3b12", weight="bold")
        for dst in targets:
            arrow((start[0] + 2.6, start[1]), port_xy[(dst.node, "in", dst.port)], "", "#8a3b12")
    right = (max(columns) + 1) * COL_W
    for i, (name, src) in enumerate(graph.spec.outputs.items()):
        end = (right, -(i + 1) * ROW * 2.5)
        arrow(port_xy[(src.node, "out", src.port)], end, "", "#6b2a8a")
        ax.text(end[0] + 0.1, end[1], f"output: {name}", fontsize=8, ha="left", va="center", color="#6b2a8a", weight="bold")

    n_side = max(len(graph.spec.inputs), len(graph.spec.outputs))
    ax.set_xlim(-0.2, right + 3.5)
    ax.set_ylim(min(-max_height, -(n_side + 1) * ROW * 2.5) - 0.5, 0.6)
    ax.axis("off")
    ax.set_title(f"graph '{graph.spec.name}'  ({graph.spec.source})", fontsize=9)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return out

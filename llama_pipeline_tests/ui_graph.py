"""Reading Dagster's global asset graph in the browser: the nodes and edges drawn, against the
definitions' own asset graph."""

from __future__ import annotations

import re


def expected_graph(monkeypatch) -> tuple[set[str], set[tuple[str, str]]]:
    """Every asset of the code location and every (upstream, downstream) edge, from the definitions."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    edges = {(p.to_user_string(), k.to_user_string()) for k in keys for p in graph.get(k).parent_keys}
    return {k.to_user_string() for k in keys}, edges


def shown_name(label: str, names: set[str]) -> str:
    """The asset a node label stands for: zoomed out, the UI shortens long names to 'project_dai…_stats'."""
    if label in names:
        return label
    head, sep, tail = label.partition("…")
    matches = [n for n in names if sep and n.startswith(head) and n.endswith(tail)]
    assert len(matches) == 1, f"node label {label!r} matches {matches}"
    return matches[0]


# Asset nodes (foreignObjects holding an asset name) and edges (paths ending in an arrow marker), in the
# graph's SVG coordinates.
GRAPH_JS = """() => {
  const svg = document.querySelector('svg[class*=svgContainer]');
  if (!svg) return {nodes: [], edges: []};
  const nodes = [...svg.querySelectorAll('foreignObject')].flatMap(fo => {
    const name = fo.querySelector('[class*=assetName]');
    if (!name) return [];
    const n = k => parseFloat(fo.getAttribute(k));
    return [{label: name.textContent.trim(), x: n('x'), y: n('y'), w: n('width'), h: n('height')}];
  });
  const edges = [...svg.querySelectorAll('path[marker-end]')].map(p => p.getAttribute('d'));
  return {nodes, edges};
}"""


def edges_drawn(graph: dict, names: set[str]) -> set[tuple[str, str]]:
    """(upstream, downstream) of every arrow: it leaves the right side of one node and ends at the left
    side of another (the layout is horizontal)."""
    nodes = [dict(node, name=shown_name(node["label"], names)) for node in graph["nodes"]]

    def at(x: float, y: float, side: str) -> str:
        hits = [n["name"] for n in nodes
                if abs((n["x"] + n["w"] if side == "right" else n["x"]) - x) <= 15 and n["y"] <= y <= n["y"] + n["h"]]
        assert len(hits) == 1, f"no single node at the {side} side of ({x}, {y}): {hits}"
        return hits[0]

    drawn = set()
    for d in graph["edges"]:
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
        (x0, y0), (x1, y1) = numbers[:2], numbers[-2:]
        assert x0 < x1, f"an edge runs right to left: {d}"
        drawn.add((at(x0, y0, "right"), at(x1, y1, "left")))
    return drawn

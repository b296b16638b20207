"""Drawings of networks and of rescalings, as graphviz graphs.

:func:`draw` lays a network out left to right by V_in level: inputs as boxes,
the bias unit as a circle marked 1, hidden units with their activation,
outputs as double circles. Edge colour gives the sign of the weight (blue
positive, red negative) and width its magnitude; unit-level edges are
labelled with their weight, group edges with their shape and norm.

:func:`draw_rescaling` shows a network beside a rescaled member of its
equivalence class, each hidden unit labelled with its factor c, and lists a
few path products, which the two share.

Rendering to PNG or SVG needs the graphviz ``dot`` program (Debian package
``graphviz``); building the graph does not.
"""

from __future__ import annotations

import itertools

import graphviz
import numpy as np

from dagnet.layering import node_levels_in
from dagnet.rescaling import rescale

__all__ = ["draw", "draw_rescaling"]

_STYLE = {
    "input": {"shape": "box", "style": "filled", "fillcolor": "#dbe9f6"},
    "bias": {"shape": "circle", "style": "filled", "fillcolor": "#e6e6e6"},
    "hidden": {"shape": "circle", "style": "filled", "fillcolor": "#fde2c8"},
    "output": {"shape": "doublecircle", "style": "filled", "fillcolor": "#d9f0d3"},
}


def _name(v):
    """``(node, i)`` units print as ``node[i]``."""
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], int):
        return f"{v[0]}[{v[1]}]"
    return str(v)


def _node_label(net, v, note=None):
    name = _name(v)
    if net.role(v) == "bias":
        name = f"{_name(v)}\n1"
    elif net.role(v) == "hidden":
        name = f"{_name(v)}\n{net.activation(v)}"
    if net.size(v) > 1:
        name += f"\n[{net.size(v)}]"
    return name if note is None else f"{name}\n{note}"


def _add_network(dot, net, prefix="", notes=None, digits=3):
    notes = notes or {}
    level = node_levels_in(net)
    by_level = itertools.groupby(sorted(net.graph, key=lambda v: level[v]),
                                 key=lambda v: level[v])
    for _, nodes in by_level:
        with dot.subgraph() as rank:
            rank.attr(rank="same")
            for v in nodes:
                rank.node(prefix + str(v), _node_label(net, v, notes.get(v)),
                          **_STYLE[net.role(v)])
    magnitudes = [float(np.sqrt(np.mean(np.square(net.weight(u, v)))))
                  for u, v in net.edges]
    top = max(magnitudes, default=1.0) or 1.0
    for (u, v), m in zip(net.edges, magnitudes):
        w = net.weight(u, v)
        if np.ndim(w) == 0:
            label, sign = f"{w:.{digits}g}", w
        else:
            label, sign = f"{w.shape[0]}x{w.shape[1]}\nrms {m:.{digits}g}", np.sum(w)
        dot.edge(prefix + str(u), prefix + str(v), label=label,
                 color="#2166ac" if sign >= 0 else "#b2182b",
                 penwidth=f"{0.6 + 3.4 * m / top:.2f}")


def draw(net, *, title=None, digits=3, max_nodes=200):
    """A graphviz drawing of ``net``.

    Parameters
    ----------
    net : DagNet
    title : str, optional
    digits : int
        Significant digits of edge labels.
    max_nodes : int
        Refuse larger graphs (a drawing of thousands of nodes is unreadable);
        group nodes count once.

    Examples
    --------
    >>> import dagnet
    >>> dot = draw(dagnet.layered([2, 2, 1], groups=False, seed=0))
    >>> "('input', 0)" in dot.source
    True
    """
    n = net.graph.number_of_nodes()
    if n > max_nodes:
        raise ValueError(f"the network has {n} nodes, over max_nodes={max_nodes}")
    dot = graphviz.Digraph(graph_attr={"rankdir": "LR", "label": title or "",
                                       "labelloc": "t"})
    _add_network(dot, net, digits=digits)
    return dot


def _path_products(net, k):
    """Up to ``k`` source-to-output paths (of nodes) and their weight products."""
    found = []

    def walk(path, prod):
        if len(found) >= k:
            return
        v = path[-1]
        if net.role(v) == "output":
            found.append((path, prod))
        for x in net.graph.successors(v):
            walk(path + [x], prod * float(np.ravel(net.weight(v, x))[0]))

    for s in [*net.inputs, *([net.bias] if net.bias is not None else [])]:
        walk([s], 1.0)
    return found[:k]


def draw_rescaling(net, factors, *, digits=3, n_paths=4):
    """``net`` beside ``rescale(net, factors)``, hidden units labelled with c.

    ``factors`` maps hidden units to positive factors, as for
    :func:`dagnet.rescale`. The caption lists ``n_paths`` path products of
    each network (the first scalar weight of any group edge is used): they
    agree, since path products are rescaling invariant.
    """
    other = rescale(net, factors)
    dot = graphviz.Digraph(graph_attr={"rankdir": "LR", "compound": "true"})
    for prefix, member, notes, title in (
            ("a/", net, {}, "w"),
            ("b/", other, {v: f"c = {c:.{digits}g}" for v, c in factors.items()},
             "rho_c(w)")):
        with dot.subgraph(name=f"cluster_{prefix[0]}") as box:
            box.attr(label=title, style="rounded")
            _add_network(box, member, prefix=prefix, notes=notes, digits=digits)
    lines = []
    for (path, p1), (_, p2) in zip(_path_products(net, n_paths),
                                   _path_products(other, n_paths)):
        lines.append(f"{' > '.join(map(_name, path))}: {p1:.{digits}g} | {p2:.{digits}g}")
    dot.attr(label="path products (w | rho_c(w))\\l" + "\\l".join(lines) + "\\l",
             labelloc="b", labeljust="l")
    return dot

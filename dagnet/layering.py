"""V_in / V_out layering of a network and its depth.

``V_in^i`` holds the units whose longest path from any source (inputs and the
bias unit) has ``i`` edges; ``V_out^i`` those whose longest path to any output
has ``i`` edges. Every edge goes from a lower ``V_in`` level to a higher one,
so the ``V_in`` levels are a valid evaluation schedule: the compiled module
evaluates one level at a time.

All units of a group node share its level, since a group edge connects every
unit of one node to every unit of the other.
"""

from __future__ import annotations

import networkx as nx

from dagnet.network import as_network

__all__ = ["depth", "layers_in", "layers_out", "node_levels_in", "node_levels_out"]


def node_levels_in(net):
    """``{node: i}`` with ``i`` the longest path length from any source."""
    level = {}
    for v in nx.topological_sort(net.graph):
        level[v] = max((level[u] + 1 for u in net.graph.predecessors(v)), default=0)
    return level


def node_levels_out(net):
    """``{node: i}`` with ``i`` the longest path length to any output.

    Sources and hidden nodes that reach no output cannot occur in a valid
    network except for unused inputs and an unused bias, which get level 0.
    """
    level = {}
    for v in reversed(list(nx.topological_sort(net.graph))):
        level[v] = max((level[x] + 1 for x in net.graph.successors(v)), default=0)
    return level


def _as_layers(net, level):
    layers = [set() for _ in range(max(level.values()) + 1)]
    for v, i in level.items():
        layers[i].update(net.units(v))
    return layers


def layers_in(net):
    """The levels ``V_in^0, V_in^1, ...`` as a list of sets of unit names.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([2, 3, 1], bias=False, skips=[(0, 2)], groups=False)
    >>> for layer in layers_in(net):
    ...     print(sorted(layer))
    [('input', 0), ('input', 1)]
    [('hidden1', 0), ('hidden1', 1), ('hidden1', 2)]
    ['output']
    """
    net = as_network(net)
    return _as_layers(net, node_levels_in(net))


def layers_out(net):
    """The levels ``V_out^0, V_out^1, ...`` as a list of sets of unit names.

    ``V_out^0`` holds the outputs (and any source with no outgoing edge).
    """
    net = as_network(net)
    return _as_layers(net, node_levels_out(net))


def depth(net):
    """The number of edges on the longest input-to-output path.

    Examples
    --------
    >>> import dagnet
    >>> depth(dagnet.layered([4, 5, 5, 2], skips=[(0, 3)]))
    3
    """
    net = as_network(net)
    level = node_levels_in(net)
    return max(level[v] for v in net.outputs)

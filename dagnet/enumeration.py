r"""Input-to-output paths: counting, enumeration and the path vector pi(w).

A path is a sequence of unit-level edges from a source (an input unit or the
bias unit) to an output unit. Its product is the product of its edge
weights, and the path vector ``pi(w)`` lists the products of all paths. The
number of paths ``N`` obeys the recursion

.. math::

    N(s) = 1 \text{ for a source unit } s, \qquad
    N(v) = \sum_{u \to v} N(u), \qquad
    \#\text{paths} = \sum_{v \text{ output}} N(v),

which :func:`count_paths` evaluates on the node-level graph with Python
integers: a group edge ``u -> v`` of sizes ``m, n`` stands for ``m * n``
unit edges, and all units of a node share one ``N``.

Caveats
-------
Every function takes a DagNet or a compiled module (read back in float64
with ``to_dagnet()``). The number of paths grows exponentially with depth:
:func:`paths`, :func:`path_vector` and :func:`path_scaling_enumerated` list
them all, so they refuse networks with more than ``limit`` paths (the
message gives the count); they are oracles for testing the dynamic programmes of
:mod:`dagnet.pathnorm`, not replacements. Group networks are expanded to
unit level first, so paths are tuples of unit names (``(v, i)`` for unit
``i`` of a group node ``v``).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from dagnet.compiled import CompiledDagNet
from dagnet.pathnorm import check_p

__all__ = ["DEFAULT_LIMIT", "count_paths", "path_scaling_enumerated", "path_vector",
           "paths", "unit_level"]

DEFAULT_LIMIT = 100_000
"""Enumeration refuses networks with more paths than this unless told otherwise."""


def unit_level(net):
    """``net`` itself when every node is one unit, else ``net.expand()``."""
    return net if net.is_unit_level else net.expand(max_edges=max(net.n_params, 1))


def _network(net):
    """A DagNet; a compiled module is read back with ``to_dagnet()``."""
    return net.to_dagnet() if isinstance(net, CompiledDagNet) else net


def count_paths(net):
    """The exact number of source-to-output paths between units.

    Sources are the input units and the bias unit. Counts are Python
    integers, exact however large.

    Examples
    --------
    >>> import dagnet
    >>> count_paths(dagnet.layered([784, 4000, 4000, 10], bias=False))
    125440000000
    >>> count_paths(dagnet.layered([2, 3, 1], bias=True))  # 6 + 3 from the bias, + 1
    10
    """
    net, n = _network(net), {}
    for v in nx.topological_sort(net.graph):
        if net.role(v) in ("input", "bias"):
            n[v] = 1
        else:
            n[v] = sum(net.size(u) * n[u] for u in net.graph.predecessors(v))
    return sum(net.size(v) * n[v] for v in net.outputs)


def _guard(net, limit):
    net = _network(net)
    count = count_paths(net)
    if count > limit:
        raise ValueError(
            f"the network has {count} input-to-output paths, over limit={limit}; "
            f"pass a larger limit to enumerate them anyway")
    return unit_level(net)


def _walk(g):
    """Yield every source-to-output path of the unit graph ``g`` as a tuple."""
    for s in g:
        if g.nodes[s]["role"] not in ("input", "bias"):
            continue
        stack = [(s,)]
        while stack:
            path = stack.pop()
            v = path[-1]
            if g.nodes[v]["role"] == "output":
                yield path
                continue
            stack.extend(path + (x,) for x in reversed(list(g.successors(v))))


def paths(net, *, limit=DEFAULT_LIMIT):
    """Iterate over all source-to-output paths, each a tuple of unit names.

    Sources are visited in the graph's node order and successors in the
    graph's edge order, depth first; :func:`path_vector` uses the same order.

    Raises
    ------
    ValueError
        If the network has more than ``limit`` paths.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 2, 1], bias=False, groups=False)
    >>> list(paths(net))
    [('input', ('hidden1', 0), 'output'), ('input', ('hidden1', 1), 'output')]
    """
    return _walk(_guard(net, limit).graph)


def path_vector(net, *, limit=DEFAULT_LIMIT):
    r"""The path vector ``pi(w)``: ``pi_P = prod_{e in P} w_e`` for each path P.

    Returns
    -------
    numpy.ndarray
        float64, one entry per path, in the order of :func:`paths`.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1], bias=False, groups=False, skips=[(0, 2)])
    >>> net = net.with_weights({("input", "hidden1"): 2.0, ("hidden1", "output"): -3.0,
    ...                         ("input", "output"): 0.5})
    >>> path_vector(net)
    array([-6. ,  0.5])
    """
    g = _guard(net, limit).graph
    w = nx.get_edge_attributes(g, "weight")
    return np.array([math.prod(w[e] for e in zip(P, P[1:])) for P in _walk(g)],
                    dtype=np.float64)


def path_scaling_enumerated(net, p=2, *, limit=DEFAULT_LIMIT):
    r"""``gamma_p(w, e)`` of every edge by summing over the listed paths.

    .. math::

        \gamma_p(w, e) = \Big(\sum_{P \ni e} \prod_{e' \in P, e' \ne e}
        |w_{e'}|^p\Big)^{2/p},

    with the sum a maximum and the exponent 2 for ``p = inf``. The products
    over ``e' != e`` come from prefix and suffix products, never from a
    division, so zero weights are exact.

    Returns
    -------
    dict
        ``{(u, v): gamma}`` in the network's edge order: a float for an edge
        between single units, an array of the weight's shape otherwise (the
        same layout as :func:`dagnet.path_scaling`).
    """
    p = check_p(p)
    net = _network(net)
    unit_net = _guard(net, limit)
    g = unit_net.graph
    use_max = p == math.inf
    power = 1.0 if use_max else p
    total = dict.fromkeys(g.edges, 0.0)
    for P in _walk(g):
        a = [abs(g.edges[e]["weight"]) ** power for e in zip(P, P[1:])]
        prefix = np.concatenate([[1.0], np.cumprod(a)[:-1]])
        suffix = np.concatenate([np.cumprod(a[::-1])[::-1][1:], [1.0]])
        for e, rest in zip(zip(P, P[1:]), prefix * suffix):
            total[e] = max(total[e], rest) if use_max else total[e] + rest
    k = 2.0 if use_max else 2.0 / p
    result = {}
    for u, v in net.edges:
        gamma = np.array([[total[uj, vi] for uj in net.units(u)] for vi in net.units(v)])
        gamma = gamma ** k
        shape = np.shape(net.weight(u, v))
        result[u, v] = float(gamma[0, 0]) if shape == () else gamma.reshape(shape)
    return result

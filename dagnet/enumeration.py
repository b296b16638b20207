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
:func:`paths`, :func:`path_vector`, :func:`enumerated_path_norm` and
:func:`path_scaling_enumerated` list
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

from dagnet.network import as_network
from dagnet.pathnorm import check_p

__all__ = ["DEFAULT_LIMIT", "count_paths", "enumerated_path_norm",
           "path_scaling_enumerated", "path_vector", "paths", "unit_level"]

DEFAULT_LIMIT = 100_000
"""Enumeration refuses networks with more paths than this unless told otherwise."""


def unit_level(net):
    """``net`` itself when every node is one unit, else ``net.expand()``."""
    net = as_network(net)
    return net if net.is_unit_level else net.expand(max_edges=max(net.n_params, 1))


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
    net, n = as_network(net), {}
    for v in nx.topological_sort(net.graph):
        if net.role(v) in ("input", "bias"):
            n[v] = 1
        else:
            n[v] = sum(net.size(u) * n[u] for u in net.graph.predecessors(v))
    return sum(net.size(v) * n[v] for v in net.outputs)


def _guard(net, limit):
    net = as_network(net)
    count = count_paths(net)
    if count > limit:
        raise ValueError(
            f"the network has {count} input-to-output path{'s' * (count != 1)}, over "
            f"limit={limit}; "
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


def _times(product, x):
    """``(m, e)`` times the float ``x``: ``m 2^e`` with ``0.5 <= |m| < 1`` (or
    ``m = 0``), so that products of any length never overflow or underflow."""
    m, e = product
    f, k = math.frexp(x)
    m, j = math.frexp(m * f)
    return m, e + k + j


def _ldexp(m, e):
    """``m 2^e`` as a float64, ``inf`` or 0 where it is out of range."""
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(m, np.clip(e, -4000, 4000))


def _lp(mantissas, exponents, p):
    """``(mu, E)`` with ``||(m_i 2^{e_i})_i||_p = mu 2^E`` and ``mu`` in ``[0.5, n]``
    (``(0.0, 0)`` for an empty or zero vector)."""
    m = np.abs(np.asarray(mantissas, dtype=np.float64))
    e = np.asarray(exponents, dtype=np.int64)
    if not (m > 0).any():
        return 0.0, 0
    top = int(e[m > 0].max())
    x = _ldexp(m, np.where(m > 0, e - top, 0))
    biggest = float(x.max())
    if p == math.inf:
        return biggest, top
    with np.errstate(under="ignore"):
        return biggest * float(np.linalg.norm(x / biggest, ord=p)), top


def _path_products(g):
    """``(m, e)`` of every path product of ``g``, in the order of :func:`paths`."""
    w = nx.get_edge_attributes(g, "weight")
    products = []
    for P in _walk(g):
        product = (1.0, 0)
        for edge in zip(P, P[1:]):
            product = _times(product, w[edge])
        products.append(product)
    return products


def path_vector(net, *, limit=DEFAULT_LIMIT):
    r"""The path vector ``pi(w)``: ``pi_P = prod_{e in P} w_e`` for each path P.

    Products are formed as mantissa and exponent: an entry is ``inf`` or 0
    only when the product itself is out of float64's range.

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
    products = _path_products(_guard(net, limit).graph)
    if not products:
        return np.zeros(0)
    m, e = zip(*products)
    return _ldexp(np.array(m, dtype=np.float64), np.array(e, dtype=np.int64))


def enumerated_path_norm(net, p=2, *, limit=DEFAULT_LIMIT):
    r"""``phi_p(w) = ||pi(w)||_p`` by listing every path.

    The norm is taken over the products as mantissa and exponent, scaled by
    the largest: it is ``inf`` or 0 only when ``phi_p`` itself is out of
    float64's range, whatever the range of the products.

    Raises
    ------
    ValueError
        If ``p < 1`` or the network has more than ``limit`` paths.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights(dict(zip(net.edges, [1e200, 1e200, 1e-200, 1e-200])))
    >>> round(enumerated_path_norm(net, 3), 12)  # 1e200 * 1e200 alone would overflow
    1.0
    """
    p = check_p(p)
    products = _path_products(_guard(net, limit).graph)
    mu, top = _lp(*zip(*products), p) if products else (0.0, 0)
    return float(_ldexp(mu, top))


def path_scaling_enumerated(net, p=2, *, limit=DEFAULT_LIMIT):
    r"""``gamma_p(w, e)`` of every edge by summing over the listed paths.

    .. math::

        \gamma_p(w, e) = \Big(\sum_{P \ni e} \prod_{e' \in P, e' \ne e}
        |w_{e'}|^p\Big)^{2/p} = \big\|(r_P)_{P \ni e}\big\|_p^2, \qquad
        r_P = \prod_{e' \in P, e' \ne e} |w_{e'}|,

    with the sum a maximum for ``p = inf``. The products ``r_P`` come from
    prefix and suffix products, never from a division, so zero weights are
    exact; they are kept as mantissa and exponent and the norm is scaled by
    the largest, so a ``gamma`` is ``inf`` or 0 only when it is itself out of
    float64's range.

    Returns
    -------
    dict
        ``{(u, v): gamma}`` in the network's edge order: a float for an edge
        between single units, an array of the weight's shape otherwise (the
        same layout as :func:`dagnet.path_scaling`).
    """
    p = check_p(p)
    net = as_network(net)
    g = _guard(net, limit).graph
    rest = {e: ([], []) for e in g.edges}
    for P in _walk(g):
        edges = list(zip(P, P[1:]))
        a = [abs(g.edges[e]["weight"]) for e in edges]
        prefix, suffix = [(1.0, 0)], [(1.0, 0)]
        for x in a[:-1]:
            prefix.append(_times(prefix[-1], x))
        for x in a[:0:-1]:
            suffix.append(_times(suffix[-1], x))
        for e, (m1, e1), (m2, e2) in zip(edges, prefix, reversed(suffix)):
            m, k = math.frexp(m1 * m2)
            rest[e][0].append(m)
            rest[e][1].append(e1 + e2 + k)
    gamma = {}
    for e, (m, k) in rest.items():
        mu, top = _lp(m, k, p)
        gamma[e] = float(_ldexp(mu * mu, 2 * top))
    result = {}
    for u, v in net.edges:
        block = np.array([[gamma[uj, vi] for uj in net.units(u)] for vi in net.units(v)])
        shape = np.shape(net.weight(u, v))
        result[u, v] = float(block[0, 0]) if shape == () else block.reshape(shape)
    return result

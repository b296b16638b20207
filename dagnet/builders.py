"""Builders for common architectures and random DAGs, and their initialisation.

Weights are drawn from the *balanced* initialisation of the Path-SGD paper:
the weights into a unit ``v``, its bias edge included, are i.i.d. Gaussian
with standard deviation ``1 / sqrt(fan_in(v))``. :func:`dagnet.unbalanced`
builds the paper's unbalanced initialisation from a balanced one.
"""

from __future__ import annotations

import numbers

import networkx as nx
import numpy as np

from dagnet.network import DagNet, as_network

__all__ = ["balanced_init", "layered", "random_dag"]


def balanced_init(net, seed=None):
    """A copy of ``net`` with weights into every unit ~ N(0, 1 / fan_in).

    ``fan_in`` counts the scalar edges into the unit, bias edge included.
    The draw visits edges in the graph's order, so a seed fixes the weights.
    """
    net = as_network(net)
    rng = np.random.default_rng(seed)
    fan_in = {v: sum(net.size(u) for u in net.graph.predecessors(v)) for v in net.graph}
    weights = {}
    for u, v in net.edges:
        w = rng.standard_normal((net.size(v), net.size(u))) / np.sqrt(fan_in[v])
        weights[u, v] = float(w[0, 0]) if w.shape == (1, 1) else w
    return net.with_weights(weights)


def layered(sizes, *, bias=True, skips=(), activation="relu", groups=True, seed=0):
    """A layered ReLU network, optionally with skip connections.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first and output last, e.g. ``[784, 4000,
        4000, 10]``. Layers are named ``"input"``, ``"hidden1"``, ...,
        ``"output"``; the bias unit is ``"bias"``.
    bias : bool, default True
        Add a bias unit with an edge into every hidden and output layer.
    skips : iterable of (int, int)
        Extra full connections from layer ``i`` to layer ``j > i + 1``
        (layer 0 is the input), e.g. ``[(0, 3)]`` for input-to-output.
    activation : str, default "relu"
        Activation of the hidden layers.
    groups : bool, default True
        One node per layer (weights are matrices). With ``False``, one node
        per unit: the result equals ``layered(...).expand()``.
    seed : int or None
        Seed of the balanced initialisation.

    Examples
    --------
    >>> net = layered([784, 4000, 4000, 10])
    >>> net.graph.number_of_nodes(), net.graph.number_of_edges(), net.n_params
    (5, 6, 19184010)
    """
    def positive_int(s):
        return isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1

    if len(sizes) < 2 or not all(positive_int(s) for s in sizes):
        raise ValueError(f"sizes must list at least two positive integer layer sizes; "
                         f"got {list(sizes)}")
    sizes = [int(s) for s in sizes]
    last = len(sizes) - 1
    names = ["input"] + [f"hidden{i}" for i in range(1, last)] + ["output"]
    g = nx.DiGraph()
    for i, (name, n) in enumerate(zip(names, sizes)):
        role = "input" if i == 0 else "output" if i == last else "hidden"
        attrs = {"activation": activation} if role == "hidden" else {}
        g.add_node(name, role=role, size=n, **attrs)
    pairs = [(i, i + 1) for i in range(last)]
    for i, j in skips:
        if not 0 <= i < j <= last:
            raise ValueError(f"skip ({i}, {j}) must join layers 0 <= i < j <= {last} "
                             f"(0 is the input, {last} the output)")
        if j == i + 1:
            raise ValueError(f"skip ({i}, {j}) joins adjacent layers, which are "
                             f"connected already")
        pairs.append((i, j))
    for i, j in sorted(set(pairs)):
        g.add_edge(names[i], names[j], weight=np.zeros((sizes[j], sizes[i])))
    if bias:
        g.add_node("bias", role="bias", size=1)
        for name, n in zip(names[1:], sizes[1:]):
            g.add_edge("bias", name, weight=np.zeros((n, 1)))
    _scalar_weights(g)
    net = balanced_init(DagNet(g), seed)
    return net if groups else net.expand()


def _scalar_weights(g):
    for _, _, d in g.edges(data=True):
        if d["weight"].shape == (1, 1):
            d["weight"] = 0.0


def random_dag(n_inputs, n_hidden, n_outputs, *, edge_prob=0.5, bias=True, seed=None,
               activation="relu"):
    """A random unit-level DAG with skip connections, balanced-initialised.

    Units are inputs ``"x0"...``, hidden ``"h0"...`` and outputs ``"y0"...``
    (and ``"b"``, the bias). Each allowed edge (input or earlier hidden unit
    to a later hidden unit or an output, bias to any hidden or output) is
    present with probability ``edge_prob``; edges are then added where needed
    so that every hidden unit lies on an input-to-output path and every output
    has an edge in.

    Examples
    --------
    >>> net = random_dag(3, 5, 2, seed=1)
    >>> net.n_inputs, len(net.hidden), net.n_outputs, net.bias
    (3, 5, 2, 'b')
    """
    for name, n, least in (("n_inputs", n_inputs, 1), ("n_hidden", n_hidden, 0),
                           ("n_outputs", n_outputs, 1)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {n!r}")
    if isinstance(edge_prob, bool) or not isinstance(edge_prob, numbers.Real) \
            or not 0 <= edge_prob <= 1:
        raise ValueError(f"edge_prob must be a probability in [0, 1]; got {edge_prob!r}")
    rng = np.random.default_rng(seed)
    xs = [f"x{i}" for i in range(n_inputs)]
    hs = [f"h{i}" for i in range(n_hidden)]
    ys = [f"y{i}" for i in range(n_outputs)]
    g = nx.DiGraph()
    g.add_nodes_from(xs, role="input")
    g.add_nodes_from(hs, role="hidden", activation=activation)
    g.add_nodes_from(ys, role="output")
    for j, h in enumerate(hs):
        feeders = xs + hs[:j]
        chosen = [u for u in feeders if rng.random() < edge_prob]
        if not chosen:
            chosen = [feeders[rng.integers(len(feeders))]]
        g.add_edges_from((u, h) for u in chosen)
    for u in xs + hs:
        g.add_edges_from((u, y) for y in ys if rng.random() < edge_prob)
    for y in ys:
        if g.in_degree(y) == 0:
            feeders = xs + hs
            g.add_edge(feeders[rng.integers(len(feeders))], y)
    for j in reversed(range(n_hidden)):
        if g.out_degree(hs[j]) == 0:
            later = hs[j + 1:] + ys
            g.add_edge(hs[j], later[rng.integers(len(later))])
    if bias:
        g.add_node("b", role="bias")
        g.add_edges_from(("b", v) for v in hs + ys if rng.random() < edge_prob)
    nx.set_edge_attributes(g, 0.0, "weight")
    return balanced_init(DagNet(g), seed=rng.integers(2**32))

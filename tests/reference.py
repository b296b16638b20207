"""Naive references for the tests: node-by-node evaluation and path enumeration.

Deliberately independent of dagnet's level layout and dynamic programmes: they
work on the unit-level graph with plain Python loops in float64.
"""

import math

import networkx as nx
import numpy as np

ACT = {
    "relu": lambda z: max(z, 0.0),
    "linear": lambda z: z,
    "leaky_relu": lambda z: z if z > 0 else 0.01 * z,
    "tanh": math.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + math.exp(-z)),
}


def unit_graph(net):
    return net.expand().graph if not net.is_unit_level else net.graph


def evaluate(net, x):
    """Outputs of ``net`` on rows of ``x``, one unit at a time."""
    g = unit_graph(net)
    inputs = [v for v in g if g.nodes[v]["role"] == "input"]
    outputs = [v for v in g if g.nodes[v]["role"] == "output"]
    order = list(nx.topological_sort(g))
    result = np.zeros((len(x), len(outputs)))
    for row, xs in enumerate(np.asarray(x, dtype=float)):
        h = dict(zip(inputs, xs))
        for v in order:
            role = g.nodes[v]["role"]
            if role == "bias":
                h[v] = 1.0
            elif role != "input":
                z = sum(g.edges[u, v]["weight"] * h[u] for u in g.predecessors(v))
                act = ACT[g.nodes[v].get("activation", "relu")]
                h[v] = act(z) if role == "hidden" else z
        result[row] = [h[v] for v in outputs]
    return result


def all_paths(net):
    """Every source-to-output path of the unit graph, as a list of nodes."""
    g = unit_graph(net)
    found = []

    def walk(path):
        v = path[-1]
        if g.nodes[v]["role"] == "output":
            found.append(list(path))
        for x in g.successors(v):
            walk(path + [x])

    for s in g:
        if g.nodes[s]["role"] in ("input", "bias"):
            walk([s])
    return g, found


def brute_path_norm(net, p):
    g, paths = all_paths(net)
    prods = [abs(math.prod(g.edges[a, b]["weight"] for a, b in zip(P, P[1:])))
             for P in paths]
    if p == math.inf:
        return max(prods, default=0.0)
    return sum(x ** p for x in prods) ** (1 / p)


def brute_gamma(net, p):
    """gamma_p(w, e) for every unit edge, by summing over the paths through e."""
    g, paths = all_paths(net)
    total = {e: 0.0 for e in g.edges}
    for P in paths:
        edges = list(zip(P, P[1:]))
        for e in edges:
            rest = abs(math.prod(g.edges[f]["weight"] for f in edges if f != e))
            total[e] = max(total[e], rest) if p == math.inf else total[e] + rest ** p
    k = 2.0 if p == math.inf else 2.0 / p
    return {e: t ** k for e, t in total.items()}

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


def brute_count(net):
    """The number of source-to-output paths, by listing them."""
    return len(all_paths(net)[1])


def brute_path_products(net):
    """``{path as a tuple of units: product of its weights}``."""
    g, paths = all_paths(net)
    return {tuple(P): math.prod(g.edges[a, b]["weight"] for a, b in zip(P, P[1:]))
            for P in paths}


def brute_group_norm(net, p, q):
    """mu_{p,q}, one unit at a time: the l_q norm of the incoming l_p norms."""
    g = unit_graph(net)
    norms = []
    for v in g:
        ws = [abs(g.edges[u, v]["weight"]) for u in g.predecessors(v)]
        if ws:
            norms.append(max(ws) if p == math.inf else sum(w ** p for w in ws) ** (1 / p))
    if q == math.inf:
        return max(norms, default=0.0)
    return sum(n ** q for n in norms) ** (1 / q)


def _rescalable(g):
    return [v for v in nx.topological_sort(g) if g.nodes[v]["role"] == "hidden"
            and g.nodes[v].get("activation", "relu") in ("relu", "linear", "leaky_relu")]


def brute_rescaled(net, factors):
    """``{unit edge: weight}`` after rho with ``{unit: c}``, edge by edge."""
    g = unit_graph(net)
    return {(u, v): w * factors.get(v, 1.0) / factors.get(u, 1.0)
            for u, v, w in g.edges(data="weight")}


def brute_canonical(net, p):
    """Canonical weights ``{unit edge: weight}``: normalise units one at a time."""
    g = unit_graph(net)
    w = {(u, v): x for u, v, x in g.edges(data="weight")}
    for h in _rescalable(g):
        ins = [abs(w[u, h]) for u in g.predecessors(h)]
        n = max(ins) if p == math.inf else sum(x ** p for x in ins) ** (1 / p)
        if n > 0:
            for u in g.predecessors(h):
                w[u, h] /= n
            for x in g.successors(h):
                w[h, x] *= n
    return w


def brute_balance(net, sweeps=20000, tol=1e-13):
    """Balanced weights ``{unit edge: weight}`` by cyclic coordinate descent.

    Each update rescales one unit by ``(out / in) ** (1/4)`` (squared l2 norms),
    the exact minimiser of sum w^2 along that coordinate.
    """
    g = unit_graph(net)
    w = {(u, v): x for u, v, x in g.edges(data="weight")}
    units = _rescalable(g)
    for _ in range(sweeps):
        worst = 0.0
        for h in units:
            into = sum(w[u, h] ** 2 for u in g.predecessors(h))
            out = sum(w[h, x] ** 2 for x in g.successors(h))
            worst = max(worst, abs(into - out) / (into + out))
            c = (out / into) ** 0.25
            for u in g.predecessors(h):
                w[u, h] *= c
            for x in g.successors(h):
                w[h, x] /= c
        if worst < tol:
            break
    return w


def brute_factors(a, b):
    """Factors with rho(a) = b, read off one nonzero in-edge per unit, or None.

    Needs every rescalable unit to have a nonzero in-edge; checks every edge.
    """
    ga, gb = unit_graph(a), unit_graph(b)
    c = {}
    for h in _rescalable(ga):
        u = next(u for u in ga.predecessors(h) if ga.edges[u, h]["weight"] != 0)
        c[h] = gb.edges[u, h]["weight"] / ga.edges[u, h]["weight"] * c.get(u, 1.0)
        if c[h] <= 0:
            return None
    for (u, v), w in brute_rescaled(a, c).items():
        if not math.isclose(w, gb.edges[u, v]["weight"], rel_tol=1e-9, abs_tol=0.0):
            return None
    return c


def brute_min_max_weight(net, iters=200):
    """min over rescalings of max_e |w_e| (mu_{inf,inf}), by bisection on t.

    ``max |w'| <= e^t`` is the system z_v - z_u <= t - log|w_uv| of difference
    constraints, feasible exactly when the constraint graph (edge u -> v of
    length t - log|w_uv|, sources and outputs merged into one node of z = 0)
    has no negative cycle: Bellman-Ford.
    """
    g = unit_graph(net)
    free = set(_rescalable(g))
    node = {v: (v if v in free else "0") for v in g}
    arcs = [(node[u], node[v], math.log(abs(w))) for u, v, w in g.edges(data="weight")
            if w != 0]
    names = sorted({x for a, b, _ in arcs for x in (a, b)}, key=str)

    def feasible(t):
        dist = dict.fromkeys(names, 0.0)
        for _ in range(len(names) + 1):
            changed = False
            for a, b, lw in arcs:  # z_b <= z_a + (t - lw)
                if dist[a] + t - lw < dist[b] - 1e-15:
                    dist[b] = dist[a] + t - lw
                    changed = True
            if not changed:
                return True
        return False

    lo = min(a[2] for a in arcs) - 1
    hi = max(a[2] for a in arcs) + 1
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    return math.exp(hi)

"""Small hand-made networks shared by several test modules."""

import networkx as nx

import dagnet


def chain(weights):
    """x -> h0 -> ... -> y with these weights: one path, ReLU units, no bias."""
    g = nx.DiGraph()
    names = ["x", *(f"h{i}" for i in range(len(weights) - 1)), "y"]
    g.add_node("x", role="input")
    g.add_nodes_from(names[1:-1], role="hidden")
    g.add_node("y", role="output")
    for u, v, w in zip(names, names[1:], weights):
        g.add_edge(u, v, weight=w)
    return dagnet.DagNet(g)


def tanh_net():
    """x -> t (tanh) -> h (ReLU) -> y with skips x -> h and t -> y."""
    g = nx.DiGraph()
    g.add_node("x", role="input")
    g.add_node("t", role="hidden", activation="tanh")
    g.add_node("h", role="hidden")
    g.add_node("y", role="output")
    g.add_edges_from([("x", "t", {"weight": 2.0}), ("t", "h", {"weight": -1.0}),
                      ("h", "y", {"weight": 3.0}), ("x", "h", {"weight": 0.5}),
                      ("t", "y", {"weight": 1.5})])
    return dagnet.DagNet(g)

"""Worked example: a toy DAG with a skip connection, from graph to Path-SGD.

    python examples/toy_dag.py

Builds a 2-input, 2-hidden, 1-output ReLU network with a bias unit and an
input-to-output skip edge, evaluates it, computes its path norm and Path-SGD
scalings two ways (dynamic programming and by listing every path), checks
that a rescaling leaves the function and the path norm unchanged, and takes
Path-SGD steps from both the network and its rescaled copy.
"""

import math

import networkx as nx
import torch

import dagnet

# 1. The graph: every parameter is an edge weight; "b" is the bias unit.
g = nx.DiGraph()
g.add_node("x1", role="input")
g.add_node("x2", role="input")
g.add_node("b", role="bias")
g.add_node("h1", role="hidden")            # activation defaults to ReLU
g.add_node("h2", role="hidden")
g.add_node("y", role="output")             # outputs are linear
g.add_weighted_edges_from([
    ("x1", "h1", 1.0), ("x2", "h1", -2.0), ("b", "h1", 0.5),
    ("x1", "h2", 3.0), ("h1", "h2", 1.0),
    ("h1", "y", 2.0), ("h2", "y", -1.0),
    ("x2", "y", 4.0),                      # the skip connection
])
net = dagnet.DagNet.from_networkx(g)
print(net)
print("V_in levels:", [sorted(layer) for layer in dagnet.layers_in(net)])
print("depth:", dagnet.depth(net))

# 2. Compile and evaluate. In float64 the round trip to the graph is exact.
model = net.compile(dtype=torch.float64)
x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
print("outputs:", model(x).detach().squeeze(1).tolist())
# By hand for x = (1, 0): h1 = relu(1 + 0.5) = 1.5, h2 = relu(3 + 1.5) = 4.5,
# y = 2 * 1.5 - 4.5 + 0 = -1.5.
assert model(x)[0, 0].item() == -1.5

# 3. The path norm and the Path-SGD scaling, by DP and by listing every path.
for p in (1, 2, math.inf):
    dp, listed = dagnet.path_norm(net, p), dagnet.path_norm(net, p, method="enumerate")
    print(f"phi_{p}: dynamic programming {dp:.6f}, enumeration {listed:.6f}")
    assert math.isclose(dp, listed, rel_tol=1e-12)
gamma = dagnet.path_scaling(net, p=2)
print("gamma_2:", {f"{u}->{v}": round(val, 6) for (u, v), val in gamma.items()})

# 4. A rescaling rho_{c,v} changes the weights, not the function or phi.
scaled = dagnet.rescale(net, {"h1": 10.0, "h2": 0.1})
same = torch.allclose(scaled.compile(dtype=torch.float64)(x), model(x))
print("rescaled weights h1->y:", scaled.weight("h1", "y"), "function unchanged:", same)
assert same and math.isclose(dagnet.path_norm(scaled), dagnet.path_norm(net))

# 5. Path-SGD from both: the trained networks stay rescalings of each other.
target = torch.tensor([[0.0], [1.0], [-1.0]], dtype=torch.float64)
trained = []
for start in (net, scaled):
    m = start.compile(dtype=torch.float64)
    opt = dagnet.PathSGD(m, lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(m(x), target).backward()
        opt.step()
    trained.append(m.to_dagnet())
again = dagnet.rescale(trained[0], {"h1": 10.0, "h2": 0.1})
gap = max(abs(again.weight(*e) - trained[1].weight(*e)) for e in net.edges)
print(f"after 20 Path-SGD steps, largest weight gap to the rescaled run: {gap:.2e}")
assert gap < 1e-9

"""Pick the density below which a partial block should use the sparse kernel.

    python benchmarks/sparse_threshold.py [n]     # n units per level, default 1000

For a bipartite block of n x n units with a given edge density, times forward
plus backward at batch 100 with the block scattered into a dense matrix and
with the sparse COO kernel, and prints the ratio sparse / scatter per
density and the crossover (compare with dagnet.compiled.SPARSE_BELOW).
"""

import sys

import networkx as nx
import numpy as np
import torch
from common import interleaved

import dagnet


def bipartite(n, density, seed=0):
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    g.add_nodes_from((f"x{i}" for i in range(n)), role="input")
    g.add_nodes_from((f"y{i}" for i in range(n)), role="output")
    rows, cols = np.nonzero(rng.random((n, n)) < density)
    g.add_weighted_edges_from((f"x{j}", f"y{i}", 0.1) for i, j in zip(rows, cols))
    for i in range(n):  # every output needs an edge in for a fair comparison
        if g.in_degree(f"y{i}") == 0:
            g.add_edge(f"x{i}", f"y{i}", weight=0.1)
    return dagnet.DagNet(g)


def main(argv):
    n = int(argv[0]) if argv else 1000
    x = torch.randn(100, n)
    crossover = None
    print(f"block {n} x {n}, batch 100, forward + backward")
    for density in (0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.3):
        net = bipartite(n, density)
        kinds = {"scatter": net.compile(sparse_below=0.0),
                 "sparse": net.compile(sparse_below=2.0)}

        def step(model):
            def run():
                model.zero_grad()
                model(x).square().sum().backward()
            return run

        t = interleaved({k: step(m) for k, m in kinds.items()}, repeats=15)
        ratio = t["sparse"] / t["scatter"]
        if ratio < 1:
            crossover = density
        print(f"density {density:6.3f}: scatter {t['scatter'] * 1e3:7.2f} ms, "
              f"sparse {t['sparse'] * 1e3:7.2f} ms, ratio sparse / scatter = {ratio:.2f}")
    print(f"sparse is faster up to density {crossover} "
          f"(dagnet.compiled.SPARSE_BELOW = {dagnet.compiled.SPARSE_BELOW})")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Forward + backward of a compiled layered DagNet against the same nn.Sequential.

    python benchmarks/forward_backward.py [sizes...]   # default 784 4000 4000 10

Prints the median time of each and the ratio compiled / Sequential (target
<= 1.05), measured in one run with the two timed in alternation.
"""

import sys

import torch
from common import interleaved, paper_sizes, threads

import dagnet


def main(argv):
    sizes = paper_sizes(argv)
    net = dagnet.layered(sizes, seed=0)
    compiled = net.compile()
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    sequential = torch.nn.Sequential(*layers[:-1])
    x = torch.randn(100, sizes[0])
    y = torch.randint(sizes[-1], (100,))

    def step(model):
        def run():
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
        return run

    t = interleaved({"sequential": step(sequential), "compiled": step(compiled)},
                    repeats=30)
    print(f"sizes {sizes}, batch 100, {threads()} threads")
    print(f"nn.Sequential   {t['sequential'] * 1e3:8.2f} ms")
    print(f"CompiledDagNet  {t['compiled'] * 1e3:8.2f} ms")
    print(f"ratio compiled / sequential = {t['compiled'] / t['sequential']:.3f}"
          f"  (target <= 1.05)")


if __name__ == "__main__":
    main(sys.argv[1:])

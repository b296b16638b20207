"""A full Path-SGD step against a plain SGD step on the same compiled network.

    python benchmarks/pathsgd_step.py [--eager] [sizes...]   # default 784 4000 4000 10

A step is zero_grad, forward, backward and the update, at batch 100. Prints
the median time of each and the ratio Path-SGD / SGD (target <= 1.10),
measured in one run with the two timed in alternation. ``--eager`` turns the
torch.compile-fused update off (``PathSGD(..., fused=False)``); ``CC=false``
in the environment makes the build of dagnet.native fail, which shows the
step without it.
"""

import sys

import torch
from common import interleaved, paper_sizes, threads

import dagnet


def main(argv):
    fused = False if "--eager" in argv else None
    sizes = paper_sizes([a for a in argv if a != "--eager"])
    net = dagnet.layered(sizes, seed=0)
    x = torch.randn(100, sizes[0])
    y = torch.randint(sizes[-1], (100,))
    models = {"sgd": net.compile(), "pathsgd": net.compile()}
    optims = {"sgd": torch.optim.SGD(models["sgd"].parameters(), lr=1e-6),
              "pathsgd": dagnet.PathSGD(models["pathsgd"], lr=1e-6, fused=fused)}

    def step(name):
        model, opt = models[name], optims[name]

        def run():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return run

    t = interleaved({name: step(name) for name in models}, repeats=30)
    route = "eager" if fused is False else \
        "fused, meeting block by dagnet.native" if dagnet.native.available() else \
        "fused, dagnet.native unavailable"
    print(f"sizes {sizes}, batch 100, {threads()} threads, update {route}")
    print(f"SGD step       {t['sgd'] * 1e3:8.2f} ms")
    print(f"Path-SGD step  {t['pathsgd'] * 1e3:8.2f} ms")
    print(f"ratio Path-SGD / SGD = {t['pathsgd'] / t['sgd']:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main(sys.argv[1:])

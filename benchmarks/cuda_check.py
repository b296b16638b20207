"""The CUDA checks in one short script, for a machine with a GPU.

    python benchmarks/cuda_check.py

Runs the CUDA tests (compiled forward and Path-SGD steps against the CPU in
float64), then the two benchmarks of docs/results.md on the GPU, each ratio
measured in one run with CUDA synchronised around every timing. Exits 1 if
CUDA is missing or a test fails.
"""

import subprocess
import sys
import time

import torch

import dagnet


def timed(fn, repeats=30, warmup=5):
    """Median seconds of ``fn`` on the GPU."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    if not torch.cuda.is_available():
        print("CUDA is not available to this torch build")
        return 1
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs",
                            "-p", "no:cacheprovider", "-k", "cuda",
                            "tests/test_compiled.py", "tests/test_optim.py"])
    sizes = [784, 4000, 4000, 10]
    net = dagnet.layered(sizes, seed=0)
    x = torch.randn(100, sizes[0], device="cuda")
    y = torch.randint(sizes[-1], (100,), device="cuda")
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    sequential = torch.nn.Sequential(*layers[:-1]).cuda()
    compiled = net.compile().cuda()

    def fwd_bwd(model):
        def run():
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
        return run

    ratio_fb = timed(fwd_bwd(compiled)) / timed(fwd_bwd(sequential))
    print(f"forward + backward, compiled / Sequential = {ratio_fb:.3f}  (target <= 1.05)")

    models = {"sgd": net.compile().cuda(), "pathsgd": net.compile().cuda()}
    optims = {"sgd": torch.optim.SGD(models["sgd"].parameters(), lr=1e-6),
              "pathsgd": dagnet.PathSGD(models["pathsgd"], lr=1e-6)}

    def step(name):
        def run():
            optims[name].zero_grad()
            torch.nn.functional.cross_entropy(models[name](x), y).backward()
            optims[name].step()
        return run

    ratio_step = timed(step("pathsgd")) / timed(step("sgd"))
    print(f"full step, Path-SGD / SGD = {ratio_step:.3f}  (target <= 1.10)")
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())

"""The step-size sweep behind dagnet's default learning rates.

    python examples/lr_sweep.py [--epochs N] [--hidden H [H ...]]

For each optimiser and each step size on a half-decade grid, trains the
balanced network of the default experiment on the embedded MNIST subset with
a sixth of its training points held out, and prints the best validation error
and the epoch that reached it (the paper's protocol, on a finer grid).
"""

import argparse
import math

import torch

from dagnet.data import load_dataset
from dagnet.experiment import OPTIMIZERS, ExperimentConfig, _networks, train_network

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--hidden", type=int, nargs="+", default=[500, 500])
parser.add_argument("--dataset", default="mnist-subset")
parser.add_argument("--grid", type=float, nargs="+",
                    default=[1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001])
args = parser.parse_args()

config = ExperimentConfig(dataset=args.dataset, hidden=tuple(args.hidden),
                          epochs=args.epochs)
data = load_dataset(config.dataset, seed=config.seed)
split = data.split_validation(data.n_train // 6, seed=config.seed)
net = _networks(config, split.n_features, split.n_classes)["balanced"]
print(f"{'optimizer':9s} {'lr':>7s} {'best val err':>13s} {'epoch':>6s}")
for optimizer in OPTIMIZERS:
    best = None
    for lr in args.grid:
        rows = train_network(net, optimizer, lr, split, epochs=config.epochs,
                             dtype=getattr(torch, config.dtype))
        errors = [r["test_error"] for r in rows[1:]]
        err = min((e for e in errors if not math.isnan(e)), default=math.nan)
        epoch = errors.index(err) + 1 if not math.isnan(err) else "-"
        print(f"{optimizer:9s} {lr:7g} {err:13.4f} {epoch!s:>6s}", flush=True)
        if not math.isnan(err) and (best is None or err < best[1]):
            best = (lr, err)
    print(f"{optimizer:9s} best step size {best[0]:g}" if best
          else f"{optimizer}: all diverged")

"""The main job driven from Python: the paper's experiment on real digits.

    python examples/main_job.py [--epochs N] [--hidden H [H ...]] [--out DIR]

Runs SGD, AdaGrad and Path-SGD from a balanced and an unbalanced
initialisation of the same network on the embedded MNIST subset, prints the
final table and writes the CSV, the JSON summary and the Figure-2-style plot.
"""

import argparse

from dagnet.experiment import ExperimentConfig, run_experiment
from dagnet.report import format_table, write_results

parser = argparse.ArgumentParser(description="The paper's experiment, driven from Python.")
parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
parser.add_argument("--hidden", type=int, nargs="+", default=[500, 500],
                    help="hidden layer sizes (default 500 500)")
parser.add_argument("--dataset", default="mnist-subset",
                    help="mnist-subset or digits, both shipped with installed packages")
parser.add_argument("--out", default="dagnet-results", help="folder for the results")
args = parser.parse_args()

config = ExperimentConfig(dataset=args.dataset, hidden=tuple(args.hidden),
                          epochs=args.epochs)
result = run_experiment(config)
print(format_table(result))

# Path-SGD is rescaling invariant: its two curves coincide; SGD's do not.
assert result.max_difference("pathsgd") < 1e-6, result.max_difference("pathsgd")
print("wrote", *write_results(result, args.out).values())

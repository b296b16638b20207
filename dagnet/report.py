"""Results of the main job: a CSV, a JSON summary, a table and the paper's Figure 2.

The figure has the layout of Figure 2 of Neyshabur et al. (2015): three panels
(training objective, training error, test error) against epoch, with one
curve per optimiser x initialisation; colours name the optimiser, solid
lines the balanced and dashed lines with open circles the unbalanced
initialisation (so that coinciding curves stay visible).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["format_table", "plot_curves", "write_results"]

COLUMNS = ("optimizer", "init", "lr", "epoch", "objective", "train_error", "test_error")
LABELS = {"sgd": "SGD", "adagrad": "AdaGrad", "pathsgd": "Path-SGD"}
COLOURS = {"sgd": "tab:blue", "adagrad": "tab:green", "pathsgd": "tab:red"}
METRICS = (("objective", "cross-entropy (training)"), ("train_error", "training error"),
           ("test_error", "test error"))


def format_table(result):
    """The final epoch of every run, and balanced-vs-unbalanced differences."""
    lines = [f"{'optimizer':10s} {'init':11s} {'lr':>8s} {'objective':>10s} "
             f"{'train err':>10s} {'test err':>9s}"]
    for r in result.final():
        objective = r["objective"]
        objective = (f"{objective:10.4f}" if abs(objective) < 1e5
                     else f"{objective:10.3e}")  # diverged runs keep the columns
        lines.append(f"{LABELS[r['optimizer']]:10s} {r['init']:11s} {r['lr']:8.2g} "
                     f"{objective} {r['train_error']:10.4f} {r['test_error']:9.4f}")
    lines.append("")
    lines.append("largest |balanced - unbalanced| over all epochs and curves:")
    for o in result.config.optimizers:
        lines.append(f"  {LABELS[o]:10s} {result.max_difference(o):.3g}")
    return "\n".join(lines)


def plot_curves(result, path):
    """Write the Figure-2-style PNG of ``result`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (metric, title) in zip(axes, METRICS):
        for o in result.config.optimizers:
            for init, style in (("balanced", "-"), ("unbalanced", "--")):
                y = result.curves(o, init, metric)
                label = f"{LABELS[o]} ({init})"
                finite = np.flatnonzero(np.isfinite(y))
                if len(finite) < len(y):
                    label += " diverged"
                    if len(finite):
                        ax.plot(finite[-1], y[finite[-1]], "x", color=COLOURS[o], ms=9)
                marks = {} if style == "-" else {"marker": "o", "mfc": "none", "ms": 4}
                ax.plot(range(len(y)), y, style, color=COLOURS[o],
                        lw=1.8 if style == "-" else 1.2, label=label, **marks)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if metric == "objective":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    d = result.dataset
    fig.suptitle(f"{d['name']}: {d['n_train']} training / {d['n_test']} test points, "
                 f"hidden {list(result.config.hidden)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(result, out_dir):
    """Write ``results.csv``, ``summary.json`` and ``curves.png``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "json": out / "summary.json",
             "png": out / "curves.png"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: r[k] for k in COLUMNS} for r in result.records)
    with open(paths["json"], "w") as f:
        json.dump(result.summary(), f, indent=2, default=str)
    plot_curves(result, paths["png"])
    return paths

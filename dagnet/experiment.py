"""The Path-SGD paper's experiment: SGD, AdaGrad and Path-SGD from balanced and
unbalanced initialisations of the same network, on real data.

Every run of one experiment sees the same mini-batches in the same order and
the same dropout masks, so that runs differ only in optimiser and in
initialisation. The unbalanced initialisation is a rescaling of the balanced
one (the same function), so Path-SGD, being rescaling invariant, must trace
the same curves from both; SGD and AdaGrad do not.

Recorded per epoch (epoch 0 is before training): the training objective
(mean cross-entropy over the whole training set, without dropout), the
training error and the test error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from dagnet.builders import layered
from dagnet.data import load_dataset
from dagnet.optim import PathSGD
from dagnet.pathnorm import check_p
from dagnet.rescaling import unbalanced

__all__ = ["OPTIMIZERS", "ExperimentConfig", "ExperimentResult", "run_experiment",
           "select_learning_rate", "train_network"]

OPTIMIZERS = ("sgd", "adagrad", "pathsgd")
INITS = ("balanced", "unbalanced")
DEFAULT_LR = {"sgd": 0.3, "adagrad": 0.01, "pathsgd": 0.03}
"""Defaults for the embedded dataset, from the sweep reported in docs/results.md."""


@dataclass
class ExperimentConfig:
    """Everything a run of :func:`run_experiment` depends on.

    ``dropout`` is the probability of dropping a hidden unit (the paper's
    "retain 0.5" is ``dropout=0.5``). ``unbalanced_units`` defaults to a
    quarter of the hidden units (the paper's 2000 of 8000); each drawn unit is
    rescaled by ``10 ** e``, ``e ~ LogNormal(unbalanced_mean, unbalanced_sigma)``.
    ``lr`` maps an optimiser name to its step size (missing names take
    :data:`DEFAULT_LR`). Training defaults to float64: Path-SGD's balanced
    and unbalanced runs then agree to about 1e-10, while in float32 rounding
    differences of 1e-7, amplified by the training dynamics, can grow to
    visible gaps over a few epochs (use ``dtype="float32"`` for speed).
    """

    dataset: str = "mnist-subset"
    data_dir: str | None = None
    hidden: tuple = (500, 500)
    skips: tuple = ()
    bias: bool = True
    epochs: int = 20
    batch_size: int = 100
    optimizers: tuple = OPTIMIZERS
    lr: dict = field(default_factory=dict)
    p: float = 2.0
    dropout: float = 0.0
    seed: int = 0
    unbalanced_units: int | None = None
    unbalanced_mean: float = 0.0
    unbalanced_sigma: float = 0.5
    device: str = "cpu"
    dtype: str = "float64"

    def __post_init__(self):
        unknown = [o for o in self.optimizers if o not in OPTIMIZERS]
        if unknown:
            raise ValueError(f"unknown optimiser(s) {unknown}; choose from {OPTIMIZERS}")
        bad = [k for k in self.lr if k not in OPTIMIZERS]
        if bad:
            raise ValueError(f"learning rates given for unknown optimiser(s) {bad}")
        for name, value in self.lr.items():
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"learning rate for {name} must be > 0; got {value!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1; got {self.epochs}, "
                             f"{self.batch_size}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        if not self.hidden or any(int(n) != n or n < 1 for n in self.hidden):
            raise ValueError(f"hidden must list positive layer sizes; got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")
        check_p(self.p)
        try:
            device = torch.device(self.device)
        except RuntimeError as err:
            raise ValueError(f"unknown device {self.device!r} ({err})") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but CUDA is not "
                             f"available to this torch build")

    def learning_rate(self, optimizer):
        return float(self.lr.get(optimizer, DEFAULT_LR[optimizer]))


@dataclass
class ExperimentResult:
    """Per-epoch records and the summary of one experiment."""

    config: ExperimentConfig
    records: list  # dicts: optimizer, init, lr, epoch, objective, train_error, test_error
    dataset: dict

    def curves(self, optimizer, init, metric):
        rows = [r for r in self.records
                if r["optimizer"] == optimizer and r["init"] == init]
        return np.array([r[metric] for r in sorted(rows, key=lambda r: r["epoch"])])

    def max_difference(self, optimizer):
        """Largest |balanced - unbalanced| over the three curves of an optimiser."""
        diffs = [np.nanmax(np.abs(self.curves(optimizer, "balanced", m)
                                  - self.curves(optimizer, "unbalanced", m)))
                 for m in ("objective", "train_error", "test_error")]
        return float(max(diffs))

    def final(self):
        """The last epoch's record of every optimiser x initialisation."""
        last = max(r["epoch"] for r in self.records)
        return [r for r in self.records if r["epoch"] == last]

    def summary(self):
        return {
            "config": asdict(self.config),
            "dataset": self.dataset,
            "final": self.final(),
            "balanced_vs_unbalanced_max_difference": {
                o: self.max_difference(o) for o in self.config.optimizers},
        }


def _make_optimizer(name, module, lr, p):
    if name == "sgd":
        return torch.optim.SGD(module.parameters(), lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(module.parameters(), lr=lr)
    return PathSGD(module, lr=lr, p=p)


@torch.no_grad()
def _evaluate(module, x, y, batch=2000):
    module.eval()
    loss, wrong = 0.0, 0
    for start in range(0, len(x), batch):
        logits = module(x[start:start + batch])
        loss += float(F.cross_entropy(logits, y[start:start + batch], reduction="sum"))
        wrong += int((logits.argmax(dim=1) != y[start:start + batch]).sum())
    module.train()
    return loss / len(x), wrong / len(x)


def train_network(net, optimizer, lr, data, *, epochs, batch_size=100, p=2.0, dropout=0.0,
                  seed=0, device="cpu", dtype=torch.float32, progress=None):
    """Train one network with one optimiser; return one record per epoch.

    ``data`` is a :class:`dagnet.data.Dataset`. The mini-batch order and the
    dropout masks depend only on ``seed``. A run whose objective becomes
    non-finite stops there; its later epochs are recorded as NaN.
    ``progress`` is an optional callable invoked once per step.
    """
    torch.manual_seed(seed)
    module = net.compile(dtype=dtype, device=device, dropout=dropout)
    opt = _make_optimizer(optimizer, module, lr, p)
    tensors = [torch.as_tensor(a, device=device) for a in
               (data.x_train, data.y_train, data.x_test, data.y_test)]
    x_train, y_train, x_test, y_test = tensors
    x_train, x_test = x_train.to(dtype), x_test.to(dtype)
    order = torch.Generator().manual_seed(seed)
    records, diverged = [], False
    for epoch in range(epochs + 1):
        if epoch > 0 and not diverged:
            for batch in torch.randperm(len(x_train), generator=order).split(batch_size):
                batch = batch.to(device)
                opt.zero_grad()
                F.cross_entropy(module(x_train[batch]), y_train[batch]).backward()
                opt.step()
                if progress:
                    progress()
        objective, train_error = _evaluate(module, x_train, y_train)
        test_error = _evaluate(module, x_test, y_test)[1]
        diverged = diverged or not math.isfinite(objective)
        if diverged:
            objective = train_error = test_error = math.nan
        records.append({"epoch": epoch, "objective": objective,
                        "train_error": train_error, "test_error": test_error})
    return records


def _networks(config, n_features, n_classes):
    sizes = [n_features, *config.hidden, n_classes]
    balanced = layered(sizes, bias=config.bias, skips=config.skips, seed=config.seed)
    skewed = unbalanced(balanced, config.unbalanced_units, mean=config.unbalanced_mean,
                        sigma=config.unbalanced_sigma, seed=config.seed + 1)
    return {"balanced": balanced, "unbalanced": skewed}


def _steps(n_train, batch_size, epochs):
    return epochs * math.ceil(n_train / batch_size)


def run_experiment(config=None, *, data=None, progress=None):
    """Run every optimiser from both initialisations; see the module docstring.

    Parameters
    ----------
    config : ExperimentConfig, optional
    data : dagnet.data.Dataset, optional
        Overrides ``config.dataset`` (useful for tests and custom data).
    progress : callable, optional
        ``progress(total_steps)`` returns a per-step callback (e.g. a tqdm
        bar's ``update``); nothing is printed otherwise.
    """
    config = config or ExperimentConfig()
    data = data or load_dataset(config.dataset, config.data_dir, seed=config.seed)
    dtype = getattr(torch, config.dtype)
    nets = _networks(config, data.n_features, data.n_classes)
    runs = [(o, i) for o in config.optimizers for i in INITS]
    tick = progress(len(runs) * _steps(data.n_train, config.batch_size, config.epochs)) \
        if progress else None
    records = []
    for optimizer, init in runs:
        lr = config.learning_rate(optimizer)
        for row in train_network(nets[init], optimizer, lr, data, epochs=config.epochs,
                                 batch_size=config.batch_size, p=config.p,
                                 dropout=config.dropout, seed=config.seed,
                                 device=config.device, dtype=dtype, progress=tick):
            records.append({"optimizer": optimizer, "init": init, "lr": lr, **row})
    info = {"name": data.name, "n_train": data.n_train, "n_test": data.n_test,
            "n_features": data.n_features, "n_classes": data.n_classes}
    return ExperimentResult(config, records, info)


def select_learning_rate(config, optimizer, *, exponents=range(0, 5), n_val=None,
                         data=None, progress=None):
    """Choose ``10 ** -a`` for one optimiser on a held-out validation split.

    As in the paper: hold out ``n_val`` training points (default a sixth of
    them, the paper's 10000 of 60000), train the balanced network with each
    candidate for ``config.epochs`` epochs, and keep the step size with the
    lowest validation error, ties going to the one that reached it in fewer
    epochs. Returns ``(lr, table)`` with one ``(lr, best_error, epoch)`` row
    per candidate.
    """
    bad = [a for a in exponents if not -300 < a < 300]
    if bad:
        raise ValueError(f"step-size exponents a (for 10^-a) must lie in (-300, 300); "
                         f"got {bad}")
    data = data or load_dataset(config.dataset, config.data_dir, seed=config.seed)
    split = data.split_validation(n_val or max(1, data.n_train // 6), seed=config.seed)
    net = _networks(replace(config, optimizers=(optimizer,)), split.n_features,
                    split.n_classes)["balanced"]
    table = []
    for a in exponents:
        lr = 10.0 ** -a
        rows = train_network(net, optimizer, lr, split, epochs=config.epochs,
                             batch_size=config.batch_size, p=config.p,
                             dropout=config.dropout, seed=config.seed, device=config.device,
                             dtype=getattr(torch, config.dtype), progress=progress)
        errors = [r["test_error"] for r in rows[1:]]
        best = min(errors, key=lambda e: math.inf if math.isnan(e) else e)
        epoch = (errors.index(best) + 1) if not math.isnan(best) else None
        table.append((lr, best, epoch))
    finite = [row for row in table if row[2] is not None]
    if not finite:
        raise RuntimeError(f"every candidate step size diverged for {optimizer}: {table}")
    lr = min(finite, key=lambda row: (row[1], row[2]))[0]
    return lr, table

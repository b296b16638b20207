r"""Rescaling operators rho_{c,v} and the paper's unbalanced initialisation.

For a hidden unit ``v`` and ``c > 0``, rho_{c,v} multiplies every edge into
``v`` (its bias edge included) by ``c`` and divides every edge out of ``v`` by
``c``. For positively homogeneous activations (ReLU, leaky ReLU, linear:
``s(c z) = c s(z)`` for ``c >= 0``) the network's function is unchanged, and
so is every path product.

Caveats
-------
``c <= 0``, sources, outputs and non-homogeneous activations (``tanh``,
``sigmoid``) are refused: those maps change the function.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from dagnet.network import HOMOGENEOUS, DagNet

__all__ = ["random_rescale", "rescale", "rescale_module_", "unbalanced"]


def _factors(net, v, c):
    """Validate a rescaling of node (or unit) ``v``; return ``(node, vector)``."""
    node, index = v, None
    if v not in net.graph and isinstance(v, tuple) and len(v) == 2 and v[0] in net.graph:
        node, index = v
    if node not in net.graph:
        raise KeyError(f"the network has no unit {v!r}")
    if net.role(node) != "hidden":
        raise ValueError(
            f"only hidden units can be rescaled; {v!r} has role {net.role(node)!r}")
    if net.activation(node) not in HOMOGENEOUS:
        raise ValueError(
            f"unit {v!r} has activation {net.activation(node)!r}, which is not "
            f"positively homogeneous: rescaling it would change the function")
    if isinstance(c, (bool, np.bool_)) or np.asarray(c).dtype.kind not in "iuf":
        raise ValueError(f"rescaling factors must be real numbers; got {c!r} for {v!r}")
    c = np.asarray(c, dtype=np.float64)
    n = net.size(node)
    if index is not None:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < n:
            raise KeyError(f"the network has no unit {v!r}: node {node!r} has units "
                           f"0..{n - 1}")
        if c.ndim:
            raise ValueError(f"unit {v!r} takes a scalar factor; got shape {c.shape}")
        full = np.ones(n)
        full[index] = c
        c = full
    elif c.ndim == 0:
        c = np.full(n, float(c))
    elif c.shape != (n,):
        raise ValueError(f"node {v!r} has {n} units; got factors of shape {c.shape}")
    bad = c[~(np.isfinite(c) & (c > 0))]
    if bad.size:
        raise ValueError(f"rescaling factors must be finite and > 0; got {bad[0]} "
                         f"for {v!r}")
    return node, c


def _rescaled_weights(net, scale):
    """New weights after applying the factor vectors ``scale = {node: c}``."""
    weights = {}
    for u, v in net.edges:
        if u not in scale and v not in scale:
            continue
        w = net.weight_matrix(u, v)
        if v in scale:
            w = w * scale[v][:, None]
        if u in scale:
            w = w / scale[u][None, :]
        weights[u, v] = float(w[0, 0]) if np.ndim(net.weight(u, v)) == 0 else w
    return weights


def rescale(net, v, c=None):
    """rho_{c,v}(net): a new network with ``v``'s in-edges times ``c``, out-edges / ``c``.

    Parameters
    ----------
    net : DagNet
    v : node or unit
        A hidden node, or a unit ``(node, i)`` inside a group node.
    c : float or array
        A positive factor, or for a group node one factor per unit.
    Several units at once: pass a dict ``{v: c}`` as ``v`` and omit ``c``.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights({("input", "hidden1"): 2.0, ("hidden1", "output"): 3.0})
    >>> r = rescale(net, "hidden1", 4.0)
    >>> r.weight("input", "hidden1"), r.weight("hidden1", "output")
    (8.0, 0.75)
    """
    if not isinstance(net, DagNet):
        raise TypeError(f"rescale takes a DagNet; got {type(net).__name__} (for a compiled "
                        f"module use rescale_module_, which works in place)")
    if c is None and not isinstance(v, dict):
        raise TypeError("rescale needs a factor c, or a dict {unit: c} as v")
    factors = v if c is None else {v: c}
    scale = {}
    for unit, factor in factors.items():
        node, vec = _factors(net, unit, factor)
        scale[node] = scale.get(node, np.ones(net.size(node))) * vec
    return net.with_weights(_rescaled_weights(net, scale))



def rescale_module_(module, v, c):
    """Apply rho_{c,v} to a compiled module's weights in place (no networkx trip)."""
    node, vec = _factors(_ModuleView(module), v, c)
    module.rescale_(node, vec)
    return module


class _ModuleView:
    """The little of the DagNet interface that :func:`_factors` needs."""

    def __init__(self, module):
        self.graph = module._structure

    def role(self, v):
        return self.graph.nodes[v]["role"]

    def size(self, v):
        return self.graph.nodes[v]["size"]

    def activation(self, v):
        return self.graph.nodes[v].get("activation", "linear")


def _draw_units(net, n_units, rng):
    units = [u for v in net.hidden for u in net.units(v)]
    if n_units is None:
        return units
    if isinstance(n_units, (bool, np.bool_)) or not isinstance(n_units, (int, np.integer)) \
            or n_units < 0:
        raise ValueError(f"n_units must be an integer >= 0; got {n_units!r}")
    if n_units and not units:
        raise ValueError("the network has no hidden unit to rescale")
    return [units[i] for i in rng.integers(len(units), size=n_units)] if n_units else []


def random_rescale(net, n_units=None, *, exponent="lognormal", mean=0.0, sigma=1.0,
                   low=-3.0, high=3.0, base=10.0, seed=None, return_factors=False):
    """Apply rho_{c,v} at many random hidden units at once.

    Parameters
    ----------
    n_units : int, optional
        Draw this many units uniformly *with replacement* (a unit drawn twice
        is rescaled twice). By default every hidden unit once.
    exponent : {"lognormal", "uniform"}
        ``c = base ** e`` with ``e ~ LogNormal(mean, sigma)`` (the paper's
        unbalanced initialisation) or ``e ~ Uniform(low, high)``.
    seed : int, optional
    return_factors : bool
        Also return the total factor of every rescaled unit, ``{unit: c}``.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([3, 4, 2], seed=0)
    >>> r = random_rescale(net, exponent="uniform", seed=1)
    >>> abs(dagnet.path_norm(r) - dagnet.path_norm(net)) < 1e-12
    True
    """
    for name, x in (("mean", mean), ("sigma", sigma), ("low", low), ("high", high),
                    ("base", base)):
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
            raise ValueError(f"{name} must be a finite number; got {x!r}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0; got {sigma!r}")
    if low > high:
        raise ValueError(f"low must be <= high; got low={low!r}, high={high!r}")
    if base <= 0:
        raise ValueError(f"base must be > 0; got {base!r}")
    rng = np.random.default_rng(seed)
    units = _draw_units(net, n_units, rng)
    if exponent == "lognormal":
        e = rng.lognormal(mean, sigma, size=len(units))
    elif exponent == "uniform":
        e = rng.uniform(low, high, size=len(units))
    else:
        raise ValueError(f"exponent must be 'lognormal' or 'uniform'; got {exponent!r}")
    total = {}
    for unit, k in zip(units, e):
        total[unit] = total.get(unit, 1.0) * base ** k
    out = rescale(net, total) if total else net.copy()
    return (out, total) if return_factors else out


def unbalanced(net, n_units=None, *, mean=0.0, sigma=0.5, base=10.0, seed=None):
    """The paper's unbalanced initialisation built from a balanced ``net``.

    Picks ``n_units`` hidden units at random with replacement (default: a
    quarter of the hidden units, the paper's 2000 of 8000) and rescales each
    by ``c = base ** e``, ``e ~ LogNormal(mean, sigma)``: incoming edges times
    ``c``, outgoing divided by ``c``. The function is unchanged.
    """
    if n_units is None:
        n_units = sum(net.size(v) for v in net.hidden) // 4
    return random_rescale(net, n_units, mean=mean, sigma=sigma, base=base, seed=seed)

r"""Norms of weights grouped by the unit they enter; their minima over a rescaling class.

.. math::

    \mu_{p,q}(w) = \Big(\sum_{v} \Big(\sum_{u \to v} |w_{uv}|^p\Big)^{q/p}\Big)^{1/q},

the outer sum over every unit with an edge in (hidden units and outputs).
``mu_{2,2}`` is the root of weight decay's ``sum_e w_e^2``; ``q = inf`` gives
the per-unit (max-norm) regulariser ``mu_{p,inf}``.

A rescaling with log-scales ``z`` (``z = log c`` on hidden units, 0 on
sources and outputs) maps ``log|w_uv|`` to ``log|w_uv| + z_v - z_u``, so

.. math::

    \log \|w'_{in}(v)\|_p = \tfrac1p \log \sum_{u \to v} \exp\big(p(\log|w_{uv}|
    + z_v - z_u)\big)

is a log-sum-exp of affine functions of ``z``: convex. Two convex problems
follow. :func:`min_per_unit_norm` minimises ``t`` subject to
``log ||w'_in(v)||_p <= t`` for every ``v`` by a log-barrier interior-point
method (for ``p = inf`` a linear programme, solved the same way).
:func:`balance` minimises ``sum_e w'^2_e``, a sum of exponentials of affine
functions of ``z``, by Newton's method.

Caveats
-------
Only hidden units with a positively homogeneous activation are rescaled;
other hidden units keep ``z = 0``. Both problems work at unit level (group
networks are expanded) and key their factors by unit name. A rescalable unit
on no source-to-output path of nonzero weights makes the minimum of
:func:`min_per_unit_norm` an infimum that is not attained (reported, see
there) and :func:`balance` impossible (refused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from dagnet.network import HOMOGENEOUS, as_network
from dagnet.pathnorm import check_p
from dagnet.enumeration import unit_level
from dagnet.rescaling import rescale

__all__ = ["RescalingOptimum", "balance", "dead_units", "group_norm", "log_norm",
           "min_per_unit_norm", "per_unit_norm", "rescalable_units", "scaled_norm"]


@dataclass
class RescalingOptimum:
    """The solution of an optimisation over a rescaling class.

    Attributes
    ----------
    value : float
        The optimal value (see the function that returned it).
    factors : dict
        ``{hidden unit: c}`` such that ``dagnet.rescale(net, factors)`` is the
        optimum (``math.inf`` or ``0.0`` for units of an unattained infimum).
    net : DagNet
        The optimal network (or the limit network of an unattained infimum).
    iterations : int
    converged : bool
    attained : bool, default True
    """

    value: float
    factors: dict
    net: object
    iterations: int
    converged: bool
    attained: bool = True


def scaled_norm(x, p=2):
    r"""``||x||_p`` computed as ``m ||x / m||_p`` with ``m = max |x_i|``.

    The powers ``|x_i / m|^p`` are at most 1 and one of them is 1, so nothing
    overflows on the way and what underflows is negligible against ``m``: the
    result is ``inf`` (or 0) only when the norm itself is out of float64's range.

    Examples
    --------
    >>> round(scaled_norm([3e200, 4e200]) / 1e200, 12), scaled_norm([1e-200, 1e-200], 1)
    (5.0, 2e-200)
    """
    x = np.abs(np.ravel(np.asarray(x, dtype=np.float64)))
    m = float(x.max(initial=0.0))
    if m == 0 or p == math.inf or not math.isfinite(m):
        return m
    with np.errstate(under="ignore"):
        return m * float(np.linalg.norm(x / m, ord=p))


def log_norm(logs, p=2):
    r"""``log ||x||_p`` from ``logs = log|x_i|`` (finite), by a log-sum-exp.

    .. math::

        \log \|x\|_p = M + \tfrac1p \log \sum_i e^{p(\log|x_i| - M)}, \qquad
        M = \max_i \log|x_i|.
    """
    logs = np.asarray(logs, dtype=np.float64)
    top = float(logs.max())
    if p == math.inf:
        return top
    with np.errstate(under="ignore"):
        return top + math.log(float(np.exp(p * (logs - top)).sum())) / p


def group_norm(net, p=2, q=2):
    r"""``mu_{p,q}(w)``: the l_q norm over units of their incoming l_p norms.

    Both norms are scaled (:func:`scaled_norm`): the result overflows to
    ``inf`` only when ``mu_{p,q}`` itself exceeds float64's range.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([2, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights({(("input", 0), "hidden1"): 3.0,
    ...                         (("input", 1), "hidden1"): 4.0,
    ...                         ("hidden1", "output"): 12.0})
    >>> group_norm(net, 2, 2), group_norm(net, 2, 1), group_norm(net, 1, math.inf)
    (13.0, 17.0, 12.0)
    """
    p, q = check_p(p), check_p(q)
    net = as_network(net)
    norms = [scaled_norm(row, p)
             for v in net.graph if net.graph.in_degree(v)
             for row in np.hstack([net.weight_matrix(u, v)
                                   for u in net.graph.predecessors(v)])]
    return scaled_norm(norms, q) if norms else 0.0


def per_unit_norm(net, p=2):
    """``mu_{p,inf}(w)``: the largest incoming l_p norm of any unit."""
    return group_norm(net, p, math.inf)


def rescalable_units(net):
    """Unit names of the hidden units with a positively homogeneous activation."""
    net = as_network(net)
    return [u for v in net.hidden if net.activation(v) in HOMOGENEOUS
            for u in net.units(v)]


def _reach(g, starts, forward):
    """Units reachable from ``starts`` along edges of nonzero weight."""
    seen, stack = set(starts), list(starts)
    while stack:
        v = stack.pop()
        step = g.out_edges(v, "weight") if forward else g.in_edges(v, "weight")
        for a, b, w in step:
            x = b if forward else a
            if w != 0 and x not in seen:
                seen.add(x)
                stack.append(x)
    return seen


def dead_units(net):
    """Rescalable units on no source-to-output path of nonzero weights.

    Returns
    -------
    no_in, no_out : list
        Units reached by no nonzero path from a source (or from a hidden unit
        that cannot be rescaled), and, of the others, those from which no
        nonzero path reaches an output (or such a unit); in topological order.
    """
    g = unit_level(net).graph
    free = set(rescalable_units(net))
    fixed = [v for v in g if v not in free]
    fwd = _reach(g, [v for v in fixed if g.nodes[v]["role"] != "output"], True)
    bwd = _reach(g, [v for v in fixed if g.nodes[v]["role"] not in ("input", "bias")],
                 False)
    order = [v for v in nx.topological_sort(g) if v in free]
    no_in = [v for v in order if v not in fwd]
    return no_in, [v for v in order if v in fwd and v not in bwd]


def _zero_units(net, units):
    """A copy of ``net`` with every edge into or out of ``units`` set to 0."""
    units, weights = set(units), {}
    for u, v in net.edges:
        rows = [i for i, x in enumerate(net.units(v)) if x in units]
        cols = [j for j, x in enumerate(net.units(u)) if x in units]
        if rows or cols:
            w = net.weight_matrix(u, v).copy()  # a view of net's own array
            w[rows, :] = 0.0
            w[:, cols] = 0.0
            weights[u, v] = float(w[0, 0]) if np.ndim(net.weight(u, v)) == 0 else w
    return net.with_weights(weights)


def _live_edges(g, variables, dead):
    """Nonzero edges between live units: head units, and arrays of the head's and
    tail's variable index (-1 if not a variable) and of ``log|w|``."""
    index = {x: i for i, x in enumerate(variables)}
    rows = [(b, a, math.log(abs(w))) for a, b, w in g.edges(data="weight")
            if w != 0 and a not in dead and b not in dead]
    heads = [b for b, _, _ in rows]
    head = np.array([index.get(b, -1) for b in heads], dtype=int)
    tail = np.array([index.get(a, -1) for _, a, _ in rows], dtype=int)
    return heads, head, tail, np.array([r[2] for r in rows])


def _min_log_norm(k, head, tail, a, n, p, tol, max_iter):
    r"""Minimise ``max_v g_v(z)``, ``g_v`` the log-norms, by a log-barrier method.

    Edge ``e`` enters constraint ``k[e]`` and joins the variables ``tail[e]``
    to ``head[e]`` (-1: a source or an output, ``z = 0``), so that
    ``s_e = a_e + z_head - z_tail``; ``g_v = (1/p) log sum_{e in v} exp(p s_e)``.
    Newton's method minimises ``tau t - sum_v log(t - g_v(z))`` for ``tau``
    growing tenfold until the duality gap bound ``m / tau`` is below ``tol``.
    Returns ``(z, newton steps, converged)``.
    """
    m = int(k.max()) + 1
    D = np.zeros((len(a), n))
    np.add.at(D, (np.flatnonzero(head >= 0), head[head >= 0]), 1.0)
    np.add.at(D, (np.flatnonzero(tail >= 0), tail[tail >= 0]), -1.0)

    def log_norms(z):
        s = p * (a + D @ z)
        top = np.full(m, -np.inf)
        np.maximum.at(top, k, s)
        e = np.exp(s - top[k])
        total = np.zeros(m)
        np.add.at(total, k, e)
        share = e / total[k]
        G = np.zeros((m, n))
        np.add.at(G, k, share[:, None] * D)
        return (top + np.log(total)) / p, share, G

    def barrier(x, tau):
        r = x[n] - log_norms(x[:n])[0]
        return tau * x[n] - np.log(r).sum() if r.min() > 0 else np.inf

    def newton(x, tau):
        g, share, G = log_norms(x[:n])
        r = x[n] - g
        grad = np.append(G.T @ (1 / r), tau - (1 / r).sum())
        R = np.hstack([-G, np.ones((m, 1))])
        H = (R.T * r ** -2) @ R
        H[:n, :n] += p * ((D.T * (share / r[k])) @ D - (G.T / r) @ G)
        scale = 1 / np.sqrt(np.diag(H))  # Jacobi scaling: H grows like tau^2
        dx = -scale * np.linalg.solve(H * scale * scale[:, None], grad * scale)
        return dx, -(grad @ dx)

    x = np.append(np.zeros(n), log_norms(np.zeros(n))[0].max() + 1.0)
    tau, steps, inner = 1.0, 0, 0
    while steps < max_iter:
        dx, decrement = newton(x, tau)
        step, f0 = 1.0, barrier(x, tau)
        f1 = barrier(x + dx, tau)
        while f1 > f0 - 0.25 * step * decrement and step > 1e-12:
            step /= 2
            f1 = barrier(x + step * dx, tau)
        # centred, or so nearly that float64 can lower the barrier no further
        stalled = decrement < 1e-2 and not f1 < f0 - 1e-13 * abs(f0)
        if decrement <= NEWTON_TOL or stalled:
            if m / tau <= tol:
                return x[:n], steps, True
            tau, inner = tau * 10.0, 0
        elif inner == MAX_CENTRING or step <= 1e-12:
            break
        else:
            x, steps, inner = x + step * dx, steps + 1, inner + 1
    return x[:n], steps, False


MAX_CENTRING = 50
"""Newton steps per value of tau before moving on."""

NEWTON_TOL = 1e-5
"""Centring stops once the Newton decrement ``grad . H^-1 grad`` is below this; the
gap bound ``m / tau`` then holds up to a factor ``1 + O(sqrt(NEWTON_TOL))``."""


def min_per_unit_norm(net, p=2, *, tol=1e-10, max_iter=1000):
    r"""``min_{w' ~ w} mu_{p,inf}(w')``, solved as a convex programme in log-scales.

    .. math::

        \min_{z, t} \; t \quad \text{s.t.} \quad \tfrac1p \log \sum_{u \to v}
        e^{p(\log|w_{uv}| + z_v - z_u)} \le t \text{ for every unit } v,

    with ``z`` on the rescalable hidden units (see the module caveats).

    Parameters
    ----------
    p : float >= 1 or math.inf
    tol : float
        Bound on the duality gap in ``t``: the value is within a factor
        ``exp(tol)`` (a relative error of about ``tol``) of the minimum.
    max_iter : int
        Most Newton steps of the barrier method.

    Returns
    -------
    RescalingOptimum
        ``value`` is ``mu_{p,inf}`` computed from the weights of the returned
        network ``net``: never below the true minimum.

    Notes
    -----
    A unit of :func:`dead_units` (no nonzero path from a source, or none to
    an output) lets ``c -> inf`` (resp. ``0``) shrink its outgoing (incoming)
    edges towards 0 without bound: the infimum is not attained. It is
    then computed with every edge at those units set to 0, which is the limit
    of the minimising sequence and has the same path vector; ``factors`` gives
    them ``math.inf`` / ``0.0`` and ``attained`` is False.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights({("input", "hidden1"): 8.0, ("hidden1", "output"): 2.0})
    >>> opt = min_per_unit_norm(net, p=2)
    >>> round(opt.value, 9), round(opt.factors["hidden1"], 9)  # both edges become 4
    (4.0, 0.5)
    """
    p = check_p(p)
    net = as_network(net)
    g = unit_level(net).graph
    no_in, no_out = dead_units(net)
    dead = set(no_in) | set(no_out)
    variables = [x for x in rescalable_units(net) if x not in dead]
    heads, head, tail, a = _live_edges(g, variables, dead)
    z, nit, ok = np.zeros(len(variables)), 0, True
    if variables and len(a):
        if p == math.inf:  # a linear programme: one constraint s_e <= t per edge
            k, p_eff = np.arange(len(a)), 1.0
        else:
            index = {b: i for i, b in enumerate(dict.fromkeys(heads))}
            k, p_eff = np.array([index[b] for b in heads]), p
        z, nit, ok = _min_log_norm(k, head, tail, a, len(variables), p_eff, tol, max_iter)
    factors = dict(zip(variables, np.exp(z).tolist()))
    best = _zero_units(rescale(net, factors) if factors else net.copy(), dead)
    factors |= dict.fromkeys(no_in, math.inf) | dict.fromkeys(no_out, 0.0)
    return RescalingOptimum(per_unit_norm(best, p), factors, best, nit, ok, not dead)


def balance(net, *, tol=1e-10, max_iter=100):
    r"""The balanced representative: ``min_{w' ~ w} sum_e w'^2_e``, by Newton's method.

    With ``s_e = log|w_e| + z_v - z_u`` for ``e = (u -> v)`` and ``f_e = e^{2 s_e}``,
    the objective ``F(z) = sum_e f_e`` has gradient ``2 (I_h - O_h)`` and Hessian
    ``4 (I_h + O_h)`` on the diagonal, ``-4 f_e`` between the ends of ``e``,
    where ``I_h`` (``O_h``) sums ``f_e`` over the edges into (out of) ``h``.
    At the optimum every rescalable unit has equal incoming and outgoing l2
    norms, ``I_h = O_h``.

    Everything is computed from the logs ``s_e``: ``log I_h`` and ``log O_h`` by
    log-sum-exp, the Newton system with row ``h`` divided by ``I_h + O_h`` (its
    entries are then at most 4 in magnitude) and the line search on ``log F``,
    so weights far outside ``[1e-154, 1e154]`` neither overflow nor underflow.
    Newton's method starts from the least-squares fit ``min_z sum_e s_e^2``,
    improved by sweeps of exact coordinate minimisation
    ``z_h += (log O_h - log I_h) / 4`` (at most ``SWEEPS``, until no unit moves
    by more than ``SWEEP_TOL``); far from the optimum, where one exponential
    dominates ``F``, Newton's method alone would advance ``z`` by about 1/2 a
    step.

    Parameters
    ----------
    tol : float
        Stop when ``max_h |I_h - O_h| / (I_h + O_h) <= tol``; a NaN never
        passes this test.
    max_iter : int
        Most Newton steps (the sweeps are not counted).

    Returns
    -------
    RescalingOptimum
        ``value`` is ``sum_e w_e^2`` of the balanced network ``net`` (``inf``
        only if that sum exceeds float64's range).

    Raises
    ------
    ValueError
        If a rescalable unit lies on no source-to-output path of nonzero
        weights: the minimum does not exist; or if a balancing factor is
        outside float64's range.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights({("input", "hidden1"): 8.0, ("hidden1", "output"): 2.0})
    >>> opt = balance(net)
    >>> round(opt.value, 12), round(opt.net.weight("input", "hidden1"), 12), opt.converged
    (32.0, 4.0, True)
    """
    net = as_network(net)
    no_in, no_out = dead_units(net)
    if no_in or no_out:
        unit, side = (no_in[0], "from a source") if no_in else (no_out[0], "to an output")
        raise ValueError(
            f"hidden unit {unit!r} has no path of nonzero weights {side}: its rescaling "
            f"can shrink the weights without bound and no balanced form exists")
    variables = rescalable_units(net)
    _, head, tail, a = _live_edges(unit_level(net).graph, variables, set())
    n, z, it, ok = len(variables), np.zeros(len(variables)), 0, True
    if n:
        z, it, ok = _balance_log_scales(head, tail, a, n, tol, max_iter)
    with np.errstate(over="ignore", under="ignore"):
        factors = dict(zip(variables, np.exp(z).tolist()))
    for unit, log_c in zip(variables, z.tolist()):
        if not 0 < factors[unit] < math.inf:
            raise ValueError(f"the balancing factor of unit {unit!r} is e^{log_c:.6g}, "
                             f"outside float64's range")
    best = rescale(net, factors) if factors else net.copy()
    w = np.concatenate([best.weight_matrix(u, v).ravel() for u, v in best.edges] or [[]])
    m = float(np.abs(w).max(initial=0.0))
    value = m * m * float(np.sum((w / m) ** 2)) if m > 0 else 0.0
    return RescalingOptimum(value, factors, best, it, ok)


SWEEPS = 100
"""Most sweeps of coordinate minimisation before :func:`balance`'s Newton steps."""

SWEEP_TOL = 1e-3
"""The sweeps stop once no log-scale moves by more than this."""


def _segment_logsumexp(x, index, m):
    """``log sum_{e: index[e] = k} exp(x_e)`` for ``k < m`` (``-inf`` for none);
    entries with ``index == m`` or ``-1`` are ignored."""
    keep = (index >= 0) & (index < m)
    top = np.full(m, -np.inf)
    np.maximum.at(top, index[keep], x[keep])
    shift = np.where(np.isfinite(top), top, 0.0)
    total = np.zeros(m)
    with np.errstate(under="ignore"):
        np.add.at(total, index[keep], np.exp(x[keep] - shift[index[keep]]))
    with np.errstate(divide="ignore"):
        return shift + np.log(total)


def _balance_log_scales(head, tail, a, n, tol, max_iter):
    r"""Log-scales ``z`` minimising ``F(z) = sum_e exp(2 (a_e + z_head - z_tail))``.

    ``head`` and ``tail`` index the variables (-1: a fixed unit, ``z = 0``).
    Returns ``(z, newton steps, converged)``.
    """
    E = len(a)
    D = np.zeros((E, n))
    np.add.at(D, (np.flatnonzero(head >= 0), head[head >= 0]), 1.0)
    np.add.at(D, (np.flatnonzero(tail >= 0), tail[tail >= 0]), -1.0)
    both = (head >= 0) & (tail >= 0)

    def logs(z):
        """``2 s_e``, ``log I_h``, ``log O_h``."""
        t = 2 * (a + D @ z)
        return t, _segment_logsumexp(t, head, n), _segment_logsumexp(t, tail, n)

    def imbalance(log_in, log_out):
        """``(I_h - O_h) / (I_h + O_h)``; NaN where it is undefined."""
        return np.tanh((log_in - log_out) / 2)

    # least squares on the log-weights, then exact coordinate minimisation
    z = np.linalg.lstsq(D, -a, rcond=None)[0]
    into = [np.flatnonzero(head == h) for h in range(n)]
    out = [np.flatnonzero(tail == h) for h in range(n)]
    for _ in range(SWEEPS):
        t, moved = 2 * (a + D @ z), 0.0
        for h in range(n):
            step = (log_norm(t[out[h]], 1) - log_norm(t[into[h]], 1)) / 4
            t[into[h]] += 2 * step
            t[out[h]] -= 2 * step
            z[h] += step
            moved = max(moved, abs(step))
        if not moved > SWEEP_TOL:
            break

    it = 0
    t, log_in, log_out = logs(z)
    while True:
        rho = imbalance(log_in, log_out)
        if not np.all(np.isfinite(z)) or not np.all(np.isfinite(rho)):
            return z, it, False
        if np.abs(rho).max() <= tol:
            return z, it, True
        if it == max_iter:
            return z, it, False
        # Newton system, row h divided by I_h + O_h = exp(log_sum[h])
        log_sum = np.logaddexp(log_in, log_out)
        A = 4 * np.eye(n)
        with np.errstate(under="ignore"):
            np.add.at(A, (head[both], tail[both]),
                      -4 * np.exp(t[both] - log_sum[head[both]]))
            np.add.at(A, (tail[both], head[both]),
                      -4 * np.exp(t[both] - log_sum[tail[both]]))
        d = np.linalg.solve(A, -2 * rho)
        # Armijo on F, relative to F(z): slope = g.d / F(z)
        log_f = _segment_logsumexp(t, np.zeros(E, dtype=int), 1)[0]
        with np.errstate(under="ignore"):
            slope = float(2 * rho * np.exp(log_sum - log_f) @ d)
        step = 1.0
        if slope < -1e-12:
            while step > 1e-12:
                t_new = 2 * (a + D @ (z + step * d))
                change = _segment_logsumexp(t_new, np.zeros(E, dtype=int), 1)[0] - log_f
                if change <= math.log1p(1e-4 * step * slope):
                    break
                step /= 2
        z = z + step * d
        t, log_in, log_out = logs(z)
        it += 1

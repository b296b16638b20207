r"""Rescaling equivalence: deciding it, canonical forms and the invariants.

In log space a rescaling with log-factors ``z`` (one per rescalable hidden
unit) acts as ``log|w| -> log|w| + B z`` with

.. math::

    B_{(u,v),h} = [v = h] - [u = h],

and keeps every sign and every zero. So ``w ~ w'`` exactly when the signs
and zeros agree and ``log|w'| - log|w|`` (over the nonzero edges) lies in
the range of ``B`` restricted to those edges. The functions of the rescaling
class, :math:`\log|w| \mapsto x^\top \log|w|` with ``x^T B = 0``, form a space
of dimension ``|E| - rank(B)``; path products span it.

Caveats
-------
Everything here works at unit level: group networks are expanded (with the
size guard of :meth:`dagnet.DagNet.expand` lifted to the network's own
size), and factors are keyed by unit name. Only hidden units with a
positively homogeneous activation can be rescaled; a ``tanh`` or ``sigmoid``
unit gets no column in ``B``, and path products then no longer generate all
the invariants (:func:`invariants` says how many they miss). Path products
alone do not decide equivalence: flipping every sign around a unit keeps
them all but changes the function, and :func:`equivalent` says no.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import networkx as nx
import numpy as np

from dagnet.network import as_network
from dagnet.norms import rescalable_units, scaled_norm
from dagnet.pathnorm import check_p
from dagnet.enumeration import DEFAULT_LIMIT, paths, unit_level
from dagnet.rescaling import rescale

__all__ = ["InvariantBasis", "canonical", "equivalent", "invariants", "rescaling_matrix"]


def rescaling_matrix(net):
    """``B``, one row per unit edge and one column per rescalable unit.

    Returns
    -------
    B : numpy.ndarray
        ``(n_edges, n_units)`` of -1, 0 and 1.
    edges : list
        Unit edges ``(u, v)``, the rows, in the order of ``net.expand()``.
    units : list
        Rescalable hidden units, the columns (:func:`dagnet.norms.rescalable_units`).

    Examples
    --------
    >>> import dagnet
    >>> B, edges, units = rescaling_matrix(dagnet.layered([1, 1, 1], bias=False))
    >>> B.tolist(), edges, units
    ([[1.0], [-1.0]], [('input', 'hidden1'), ('hidden1', 'output')], ['hidden1'])
    """
    edges = unit_level(net).edges
    units = rescalable_units(net)
    column = {h: j for j, h in enumerate(units)}
    B = np.zeros((len(edges), len(units)))
    for i, (u, v) in enumerate(edges):
        if v in column:
            B[i, column[v]] += 1.0
        if u in column:
            B[i, column[u]] -= 1.0
    return B, edges, units


def _same_graph(a, b):
    """Raise ValueError naming the first node or edge where ``a`` and ``b`` differ."""
    for first, second, name in ((a, b, "second"), (b, a, "first")):
        for v in first.graph:
            if v not in second.graph:
                raise ValueError(f"node {v!r} is missing from the {name} network")
        for e in first.edges:
            if not second.graph.has_edge(*e):
                raise ValueError(f"edge {e[0]!r} -> {e[1]!r} is missing from the {name} "
                                 f"network")
    for v in a.graph:
        for attr in ("role", "size", "activation"):
            x, y = getattr(a, attr)(v), getattr(b, attr)(v)
            if x != y:
                raise ValueError(f"node {v!r} has {attr} {x!r} in the first network and "
                                 f"{y!r} in the second")
    for attr in ("inputs", "outputs"):  # the column order of x and of the output
        x, y = getattr(a, attr), getattr(b, attr)
        if x != y:
            raise ValueError(f"the {attr} are ordered {x} in the first network and {y} "
                             f"in the second")


def _check_tol(tol):
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) \
            or not 0 <= tol < math.inf:
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    return float(tol)


def _longest_path(g, length):
    """The largest sum of ``length[(u, v)]`` along any path of the DAG ``g``."""
    reach = {}
    for v in nx.topological_sort(g):
        reach[v] = max((reach[u] + length[u, v] for u in g.predecessors(v)),
                       default=0.0)
    return max(reach.values(), default=0.0)


def _unit_weights(net, edges):
    g = unit_level(net).graph
    return np.array([g.edges[e]["weight"] for e in edges], dtype=np.float64)


def equivalent(a, b, *, tol=1e-9):
    r"""Decide whether ``b = rho(a)`` for some rescaling; return its factors or None.

    With ``d = log|w_b| - log|w_a|`` over the nonzero edges, ``z`` the
    least-squares solution of ``B z = d`` and ``r = d - B z`` the residual,
    ``b`` is accepted when the signs and zeros agree and

    .. math::

        \max_P \sum_{e \in P} |r_e| \le \mathrm{tol},

    the maximum over all paths ``P`` of the unit graph (a longest-path
    computation, linear in the number of edges).

    Parameters
    ----------
    a, b : DagNet or CompiledDagNet
        Networks with the same nodes (roles, sizes, activations), edges and
        order of inputs and outputs. Compiled modules are read back with
        ``to_dagnet()``.
    tol : float, default 1e-9
        Finite and ``>= 0``: the relative error allowed on any path product.

    Returns
    -------
    dict or None
        ``{hidden unit: c}`` with ``dagnet.rescale(a, c)`` equal to ``b`` up to
        rounding; None when the signs, the zeros or the magnitudes disagree.
        Factors that no nonzero edge determines are 1.

    Raises
    ------
    ValueError
        If the graphs differ (the message names the first differing node or
        edge, or the differing order of inputs or outputs), or for a bad ``tol``.
    TypeError
        If ``a`` or ``b`` is neither a DagNet nor a compiled module.

    Notes
    -----
    ``B z`` sums to zero along every source-to-output path (its terms
    telescope), so on such a path ``P`` the sum of ``r_e`` is the log of the
    ratio of the path products of ``b`` and ``a``, whatever ``z``. Hence:

    * accepted: ``b`` is ``rescale(a, exp(z))`` with weight ``e`` changed by the
      factor ``exp(r_e)``, and along any path these changes multiply to at
      most ``exp(tol)``; every path product of ``b`` is within a relative
      ``exp(tol) - 1`` of that of ``a``, however deep the network;
    * refused: a change of some path product by a relative ``delta`` gives
      ``sum |r_e| >= |log(1 + delta)|`` on that path, so ``delta`` above about
      ``tol`` is refused however long the path. A bound on each ``|r_e|``
      alone would not be: on a chain of ``k`` edges the residual of one
      perturbed weight spreads evenly, ``delta / k`` on every edge.

    Invariants that are not combinations of path products (at
    non-homogeneous units) are bounded by the edges' own ``|r_e| <= tol``.
    ``z`` is the least-squares choice, not the one that minimises the sum
    above, so a network within ``tol`` of the class by another ``z`` may be
    refused; for a genuine rescaling ``r`` is rounding error, about ``1e-16``
    per edge on the path.

    Examples
    --------
    >>> import dagnet
    >>> a = dagnet.layered([1, 1, 1], bias=False, groups=False)
    >>> a = a.with_weights({("input", "hidden1"): 2.0, ("hidden1", "output"): 3.0})
    >>> c = equivalent(a, dagnet.rescale(a, "hidden1", 4.0))
    >>> {unit: round(factor, 12) for unit, factor in c.items()}
    {'hidden1': 4.0}
    >>> print(equivalent(a, dagnet.rescale(a, "hidden1", 4.0).with_weights(
    ...     {("input", "hidden1"): -8.0, ("hidden1", "output"): -0.75})))
    None
    """
    tol = _check_tol(tol)
    a, b = as_network(a, "the first network"), as_network(b, "the second network")
    _same_graph(a, b)
    B, edges, units = rescaling_matrix(a)
    wa, wb = _unit_weights(a, edges), _unit_weights(b, edges)
    if np.any(np.sign(wa) != np.sign(wb)):
        return None
    nz = wa != 0
    d = np.log(np.abs(wb[nz])) - np.log(np.abs(wa[nz]))
    z = np.zeros(len(units))
    if nz.any() and units:
        z = np.linalg.lstsq(B[nz], d, rcond=None)[0]
    r = np.zeros(len(edges))
    r[nz] = np.abs(d - B[nz] @ z)
    if r.size and _longest_path(unit_level(a).graph, dict(zip(edges, r))) > tol:
        return None
    return dict(zip(units, np.exp(z).tolist()))


def canonical(net, p=2):
    r"""The canonical representative: every rescalable unit's incoming l_p norm is 1.

    Units are visited in topological order; unit ``v`` is rescaled by
    ``c_v = 1 / ||(w_uv / c_u)_{u -> v}||_p`` (``c_u = 1`` for sources and
    units that are not rescaled), which normalises its incoming weights
    without touching those of earlier units. The factors are carried as
    mantissa and exponent and the norms are scaled (:func:`dagnet.norms.scaled_norm`),
    so weights near the ends of float64's range give the same form as any
    equivalent network.

    Equivalent networks have equal canonical forms up to rounding, and
    inequivalent ones different forms, provided every rescalable unit has a
    nonzero incoming weight.

    Notes
    -----
    A unit whose incoming weights are all zero is left as it is (``c = 1``):
    its outgoing weights can then be scaled freely within the class, so two
    equivalent networks that differ there keep different canonical forms.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights({("input", "hidden1"): -4.0, ("hidden1", "output"): 3.0})
    >>> c = canonical(net)
    >>> c.weight("input", "hidden1"), c.weight("hidden1", "output")
    (-1.0, 12.0)
    """
    p = check_p(p)
    g = unit_level(net).graph
    free = set(rescalable_units(net))
    scale = {}  # c_v = mantissa * 2**exponent, never out of range on the way
    for v in nx.topological_sort(g):
        if v not in free:
            continue
        parts = []
        for u, _, w in g.in_edges(v, "weight"):
            if w != 0:
                mantissa, exponent = scale.get(u, (1.0, 0))
                f, k = math.frexp(w / mantissa)
                parts.append((f, k - exponent))
        if parts:
            top = max(k for _, k in parts)
            nu = scaled_norm([math.ldexp(f, k - top) for f, k in parts], p)
            scale[v] = (1.0 / nu, -top)
    factors = {}
    for v, (mantissa, exponent) in scale.items():
        with np.errstate(over="ignore", under="ignore"):
            factors[v] = float(np.ldexp(mantissa, exponent))
        if not 0 < factors[v] < math.inf:
            raise ValueError(
                f"the canonical factor of unit {v!r} is {mantissa!r} * 2**{exponent}, "
                f"outside float64's range")
    return rescale(net, factors) if factors else net.copy()


@dataclass
class InvariantBasis:
    """The rescaling invariants of a network.

    Attributes
    ----------
    count : int
        ``|E| - rank(B)``, the number of independent invariants (unit edges).
    paths : list of tuple
        Paths whose edge-incidence vectors are linearly independent; the
        logs of their absolute products are a basis of the invariants of the
        magnitudes when every hidden unit is rescalable (then
        ``len(paths) == count``).
    """

    count: int
    paths: list


def invariants(net, *, limit=DEFAULT_LIMIT):
    """The number of independent rescaling invariants and a basis of paths.

    Paths are taken greedily in the order of :func:`dagnet.enumeration.paths`, each kept
    when its 0/1 edge-incidence vector is independent of those kept so far
    (Gram-Schmidt, tolerance 1e-8), until ``count`` are found.

    Examples
    --------
    >>> import dagnet
    >>> inv = invariants(dagnet.layered([1, 2, 1], bias=False))
    >>> inv.count, inv.paths  # 4 edges - 2 hidden units
    (2, [('input', ('hidden1', 0), 'output'), ('input', ('hidden1', 1), 'output')])
    """
    B, edges, _ = rescaling_matrix(net)
    count = len(edges) - (int(np.linalg.matrix_rank(B)) if B.size else 0)
    row = {e: i for i, e in enumerate(edges)}
    basis, Q = [], np.zeros((0, len(edges)))
    for P in paths(net, limit=limit):
        if len(basis) == count:
            break
        x = np.zeros(len(edges))
        x[[row[e] for e in zip(P, P[1:])]] = 1.0
        r = x - Q.T @ (Q @ x)
        r -= Q.T @ (Q @ r)  # twice is enough for orthogonality in float64
        if np.linalg.norm(r) > 1e-8 * np.linalg.norm(x):
            Q = np.vstack([Q, r / np.linalg.norm(r)])
            basis.append(P)
    return InvariantBasis(count, basis)

r"""``dagnet check``: every statement of the theory, computed two ways on toy graphs.

For each network (the built-in suite, or graphs a user supplies) and one
random rescaling ``rho`` of it (factors ``10^U(-1, 1)`` at every rescalable
unit), the suite compares a formula with an independent computation:
invariance under ``rho`` (the function, ``pi(w)``, ``phi_p``), the dynamic
programmes against enumeration (``phi_p``, ``gamma_p``, the path count),
Lemma 3.1 against the convex programme, Theorem 4.1 by training both
networks, equivalence decisions, canonical and balanced forms, and the
number of invariants. Statements that do not hold as equalities (``||w||_2``
under ``rho``, SGD and AdaGrad, Lemma 3.1 outside its conditions) are
reported with the relation found and never fail.

Graph files are networkx node-link JSON: ``{"directed": true, "nodes":
[{"id": "x", "role": "input"}, {"id": "h", "role": "hidden", "size": 3,
"activation": "relu"}, ...], "edges": [{"source": "x", "target": "h",
"weight": [[0.1], [0.2], [0.3]]}, ...]}`` (``"links"`` is accepted for
``"edges"``; weights are numbers or nested lists of shape ``(size_v,
size_u)``). Without any weight the graph gets the balanced initialisation.
``module:function`` names a callable with no arguments returning a DagNet or
such a DiGraph; the module is looked up in the current directory first.

Caveats
-------
Enumeration-based checks are skipped on graphs with more than ``limit``
paths; checks that need rescaling are vacuous without rescalable units.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import numbers
import os
import sys
import warnings
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch

from dagnet.builders import balanced_init, layered, random_dag
from dagnet.equivalence import canonical, equivalent, invariants, rescaling_matrix
from dagnet.layering import depth, node_levels_in
from dagnet.network import HOMOGENEOUS, DagNet, NetworkError
from dagnet.norms import balance, dead_units, group_norm, min_per_unit_norm, \
    rescalable_units, scaled_norm
from dagnet.optim import PathSGD
from dagnet.pathnorm import check_p, path_norm, path_scaling
from dagnet.enumeration import DEFAULT_LIMIT, count_paths, path_vector, paths, unit_level
from dagnet.rescaling import rescale, rescale_module_

__all__ = ["CheckResult", "add_arguments", "builtin_nets", "format_table", "load_net",
           "main", "run_checks"]

RTOL = 1e-9
"""Relative error allowed for identities computed two ways in float64."""

OPT_RTOL = 1e-8
"""Relative error allowed where one side is an optimisation (or 50 training steps)."""


@dataclass
class CheckResult:
    """One row of the table: ``value`` by formula against ``reference``.

    For invariance checks the reference is the same quantity on ``rho(w)``.
    ``verdict`` is ``"pass"``, ``"FAIL"``, ``"report: ..."`` (a relation
    found, not asserted) or ``"skipped: ..."``.
    """

    check: str
    graph: str
    value: object
    reference: object
    rel_error: float
    verdict: str

    @property
    def passed(self):
        return self.verdict != "FAIL"


def _flat(net):
    return np.concatenate([net.weight_matrix(u, v).ravel() for u, v in net.edges])


def _norm(x):
    return scaled_norm(x)  # the l2 norm of huge entries need not overflow


def _rel(a, b):
    """``max |a - b| / max |b|``; nan where infinities meet (``inf - inf``)."""
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    scale = np.abs(b).max(initial=0.0)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b).max(initial=0.0)
        return float(diff / scale) if scale > 0 else float(diff)


def _rel_entries(a, b):
    """``max_i |a_i - b_i| / max(|a_i|, |b_i|)`` (0 where both are 0)."""
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    scale = np.maximum(np.abs(a), np.abs(b))
    both = scale > 0
    return float((np.abs(a - b)[both] / scale[both]).max(initial=0.0))


def _row(check, graph, value, reference, rel, ok, rtol=RTOL):
    return CheckResult(check, graph, value, reference, rel,
                       "pass" if ok and rel <= rtol else "FAIL")


def _relation(value, reference, rtol=OPT_RTOL):
    if abs(value - reference) <= rtol * max(abs(value), abs(reference)):
        return "="
    return "<" if value < reference else ">"


def _train(net, make_opt, X, Y, steps):
    """Weights after ``steps`` full-batch steps on the squared error, or None."""
    module = net.compile(dtype=torch.float64)
    opt = make_opt(module)
    for _ in range(steps):
        opt.zero_grad()
        ((module(X) - Y) ** 2).mean().backward()
        opt.step()
    try:
        return module.to_dagnet()
    except NetworkError:  # diverged to non-finite weights
        return None


def _lemma_conditions(net):
    """Why Lemma 3.1's conditions fail (empty when it applies)."""
    level, d = node_levels_in(net), depth(net)
    why = [] if net.bias is None else ["bias"]
    if any(level[v] != level[u] + 1 for u, v in net.edges if u != net.bias) or \
            any(level[v] != d for v in net.outputs):
        why.append("skips")
    if net.n_outputs > 1:
        why.append(f"{net.n_outputs} outputs")
    if any(net.activation(v) not in HOMOGENEOUS for v in net.hidden):
        why.append("non-homogeneous units")
    return why


def _bumped(net, delta=1e-6):
    """``net`` with one weight times ``1 + delta``, or None if all weights are 0.

    The weight is the nonzero one of least leverage in ``B``: the farthest from
    a change that a rescaling could make alone.
    """
    B, edges, _ = rescaling_matrix(net)
    nz = np.flatnonzero(_flat(unit_level(net)))
    if not len(nz):
        return None
    U, s, _ = np.linalg.svd(B[nz], full_matrices=False) if B.size else (None, [], None)
    lev = (U[:, np.asarray(s) > 1e-10] ** 2).sum(axis=1) if len(s) else np.zeros(len(nz))
    return _with_unit_weight(net, edges[nz[int(np.argmin(lev))]], lambda w: w * (1 + delta))


def _with_unit_weight(net, edge, fn):
    """A copy of ``net`` with one unit edge's weight replaced by ``fn(weight)``."""
    unit = unit_level(net)
    (a, b), node = edge, {x: v for v in net.graph for x in net.units(v)}
    u, v = node[a], node[b]
    w = net.weight_matrix(u, v).copy()  # a view of net's own array
    i, j = net.units(v).index(b), net.units(u).index(a)
    w[i, j] = fn(unit.weight(a, b))
    return net.with_weights({(u, v): float(w[0, 0]) if np.ndim(net.weight(u, v)) == 0
                             else w})


@dataclass
class _Case:
    """One network of the suite, a random rescaling ``rho`` of it and a batch."""

    name: str
    net: DagNet
    p: float
    steps: int
    limit: int
    seed: int

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        self.c = {u: float(10 ** rng.uniform(-1, 1)) for u in rescalable_units(self.net)}
        self.rho = rescale(self.net, self.c) if self.c else self.net.copy()
        self.X = torch.as_tensor(rng.standard_normal((16, self.net.n_inputs)))
        self.Y = torch.as_tensor(rng.standard_normal((16, self.net.n_outputs)))
        self.enumerable = count_paths(self.net) <= self.limit
        self.bumped = _bumped(self.net)


def _invariance(case):
    net, rho, name, p = case.net, case.rho, case.name, case.p
    f, f_rho = (n.compile(dtype=torch.float64)(case.X).detach().numpy() for n in (net, rho))
    module = net.compile(dtype=torch.float64)
    for u, factor in case.c.items():
        rescale_module_(module, u, factor)
    in_place = _flat(module.to_dagnet())
    phi, phi_rho = path_norm(net, p), path_norm(rho, p)
    l2, l2_rho = group_norm(net, 2, 2), group_norm(rho, 2, 2)
    rows = [_row("function invariant under rho", name, _norm(f), _norm(f_rho),
                 _rel(f_rho, f), True),
            _row("rescale_module_ = rescale", name, _norm(_flat(rho)),
                 _norm(in_place), _rel(in_place, _flat(rho)), True),
            _row(f"phi_{p:g} invariant under rho", name, phi, phi_rho, _rel(phi_rho, phi),
                 True),
            CheckResult("||w||_2 under rho (not invariant)", name, l2, l2_rho,
                        _rel(l2_rho, l2), "report: " + _relation(l2, l2_rho, RTOL))]
    if case.enumerable:
        pi, pi_rho = path_vector(net, limit=case.limit), path_vector(rho, limit=case.limit)
        rows.insert(2, _row("pi(w) invariant under rho", name, scaled_norm(pi),
                            scaled_norm(pi_rho), _rel(pi_rho, pi), True))
    return rows


def _enumeration(case):
    net, name, p, limit = case.net, case.name, case.p, case.limit
    n_paths = count_paths(net)
    if not case.enumerable:
        return [CheckResult("DP = enumeration", name, n_paths, limit, math.nan,
                            f"skipped: {n_paths} paths > limit")]
    listed = sum(1 for _ in paths(net, limit=limit))
    dp, en = path_norm(net, p), path_norm(net, p, method="enumerate")
    g_dp, g_en = (np.concatenate([np.ravel(g[e]) for e in net.edges]) for g in
                  (path_scaling(net, p), path_scaling(net, p, method="enumerate")))
    inv = invariants(net, limit=limit)
    expected = net.n_params - len(case.c)
    basis = _row("invariants: |E| - rank B = |E| - |H|", name, inv.count, expected, 0.0,
                 inv.count == expected == len(inv.paths))
    if inv.count == expected and len(case.c) < sum(net.size(v) for v in net.hidden):
        basis.verdict = f"report: paths give {len(inv.paths)}"  # see dagnet.invariants
    return [_row("count_paths = len(paths)", name, n_paths, listed, 0.0, n_paths == listed),
            _row(f"phi_{p:g}: DP = enumeration", name, dp, en, _rel(dp, en), True),
            _row(f"gamma_{p:g}: DP = enumeration", name, g_dp.max(), g_en.max(),
                 _rel(g_dp, g_en), True),
            basis]


def _lemma(case):
    net, p = case.net, case.p
    phi = path_norm(net, p)
    opt = min_per_unit_norm(net, p)
    bound = opt.value ** depth(net)
    why = _lemma_conditions(net)
    if why:
        return [CheckResult(f"Lemma 3.1 phi_{p:g} vs min mu^d ({', '.join(why)})",
                            case.name, phi, bound, _rel(bound, phi),
                            "report: " + _relation(phi, bound))]
    return [_row(f"Lemma 3.1 phi_{p:g} = min mu^d", case.name, phi, bound, _rel(bound, phi),
                 opt.converged, OPT_RTOL)]


def _training(case):
    p, inverse = case.p, {u: 1.0 / factor for u, factor in case.c.items()}
    optimisers = [("Path-SGD", lambda m: PathSGD(m, lr=LR, p=p), True),
                  ("SGD", lambda m: torch.optim.SGD(m.parameters(), lr=LR), False),
                  ("AdaGrad", lambda m: torch.optim.Adagrad(m.parameters(), lr=LR), False)]
    rows = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the network has activations", UserWarning)
        for label, make, invariant in optimisers:
            for n in sorted({1, case.steps}) if invariant else [case.steps]:
                check = f"{label}, {n} step{'s' * (n > 1)}, commutes with rho"
                check = "Thm 4.1 " + check if invariant else check + " (not invariant)"
                a = _train(case.net, make, case.X, case.Y, n)
                b = _train(case.rho, make, case.X, case.Y, n)
                if a is None or b is None:
                    rows.append(CheckResult(check, case.name, math.nan, math.nan, math.inf,
                                            "FAIL" if invariant else "report: diverged"))
                    continue
                back = _flat(rescale(b, inverse) if inverse else b)
                rel = _rel(back, _flat(a))
                rows.append(CheckResult(
                    check, case.name, _norm(_flat(a)), _norm(back), rel,
                    ("pass" if rel <= OPT_RTOL else "FAIL") if invariant else
                    "report: " + ("commutes" if rel <= OPT_RTOL else "differs")))
    return rows


def _equivalence(case):
    net, name = case.net, case.name
    found = equivalent(net, case.rho)
    rel = math.inf if found is None else _rel(_flat(rescale(net, found)), _flat(case.rho))
    rows = [_row("equivalent(w, rho w) = yes", name, "yes" if found is not None else "no",
                 "yes", rel, found is not None)]
    for label, other in [("1e-6 perturbation", case.bumped),
                         ("sign flip at a unit", _flipped(net))]:
        if other is not None:
            said = equivalent(net, other)
            rows.append(CheckResult(f"equivalent(w, {label}) = no", name,
                                    "yes" if said is not None else "no", "no",
                                    _rel(_flat(other), _flat(net)),
                                    "pass" if said is None else "FAIL"))
    return rows


def _representatives(case):
    net, rho, name, p = case.net, case.rho, case.name, case.p
    can, can_rho = _flat(canonical(net, p)), _flat(canonical(rho, p))
    g = unit_level(net).graph
    rows = [_row("canonical(w) = canonical(rho w)", name, _norm(can), _norm(can_rho),
                 _rel(can_rho, can), True)]
    if any(all(w == 0 for _, _, w in g.in_edges(h, "weight")) for h in case.c):
        rows[0].verdict = "skipped: a unit has all-zero inputs"
    if case.bumped is not None:  # entry by entry: the bumped weight may be small
        can_bumped = _flat(canonical(case.bumped, p))
        apart = _rel_entries(can_bumped, can)
        rows.append(CheckResult("canonical(w) != canonical(perturbed)", name, _norm(can),
                                _norm(can_bumped), apart,
                                "pass" if apart > APART else "FAIL"))
    if any(dead_units(net)):
        return rows + [CheckResult("balance", name, math.nan, math.nan, math.nan,
                                   "skipped: a unit has no nonzero path")]
    bal, bal_rho = balance(net), balance(rho)
    l2 = group_norm(rho, 2, 2)  # compared as norms: a sum of squares may overflow
    smaller = group_norm(bal_rho.net, 2, 2) <= l2 * (1 + RTOL)
    return rows + [
        _row("balance(w) = balance(rho w)", name, bal.value, bal_rho.value,
             _rel(_flat(bal_rho.net), _flat(bal.net)),
             bal.converged and bal_rho.converged, OPT_RTOL),
        _row("balanced: in-norm = out-norm, min sum w^2", name, bal_rho.value, l2 * l2,
             _imbalance(bal_rho.net), smaller, OPT_RTOL)]


def _imbalance(net):
    """``max_h |I_h - O_h| / (I_h + O_h)`` over rescalable units, ``I`` (``O``) the
    squared l2 norm of the weights into (out of) ``h``."""
    g = unit_level(net).graph
    worst = 0.0
    for h in rescalable_units(net):
        into = scaled_norm([w for _, _, w in g.in_edges(h, "weight")])
        out = scaled_norm([w for _, _, w in g.out_edges(h, "weight")])
        m = max(into, out)  # I and O in units of m^2: nothing overflows
        worst = max(worst, abs((into / m) ** 2 - (out / m) ** 2)
                    / ((into / m) ** 2 + (out / m) ** 2))
    return worst


CHECKS = (_invariance, _enumeration, _lemma, _training, _equivalence,
          _representatives)
"""The groups of checks run on every network, in table order."""

LR = 0.01
"""Step size of every optimiser in the training checks."""

APART = 1e-9
"""Canonical forms of inequivalent networks must differ by more than this (relative);
the perturbation is 1e-6."""


def _flipped(net):
    """``net`` with every edge at its first rescalable unit negated (c = -1), or None."""
    g = unit_level(net).graph
    for h in rescalable_units(net):
        edges = [e for e in list(g.in_edges(h)) + list(g.out_edges(h))
                 if g.edges[e]["weight"] != 0]
        if edges:
            out = net
            for e in edges:
                out = _with_unit_weight(out, e, lambda w: -w)
            return out
    return None


def builtin_nets(seed=0):
    """The built-in suite: ``[(name, DagNet)]``."""
    return [
        ("fig1 1-2-1", layered([1, 2, 1], bias=False, groups=False, seed=seed)),
        ("layered 2-3-3-1", layered([2, 3, 3, 1], bias=False, groups=False, seed=seed)),
        ("groups 3-4-4-1", layered([3, 4, 4, 1], bias=False, seed=seed)),
        ("groups 3-4-2 +bias", layered([3, 4, 2], seed=seed)),
        ("skips 2-3-3-1", layered([2, 3, 3, 1], bias=False, skips=[(0, 2), (1, 3)],
                                  groups=False, seed=seed)),
        ("random 2-5-2 +bias", random_dag(2, 5, 2, seed=seed)),
        ("random 3-6-1", random_dag(3, 6, 1, bias=False, seed=seed + 1)),
    ]


def _as_net(obj, seed, spec):
    """A DagNet from what ``spec`` gave; a ValueError naming ``spec`` otherwise."""
    if isinstance(obj, DagNet):
        return obj
    if not isinstance(obj, nx.DiGraph):
        raise ValueError(f"{spec} gave a {type(obj).__name__}; expected a DagNet or a "
                         f"networkx.DiGraph")
    try:
        if any("weight" in d for _, _, d in obj.edges(data=True)):
            return DagNet(obj)
        g = obj.copy()
        for v, size in g.nodes(data="size", default=1):
            if not isinstance(size, numbers.Integral) or isinstance(size, bool) \
                    or size < 1:
                raise NetworkError(f"node {v!r} has size {size!r}; expected an "
                                   f"integer >= 1")
        for u, v, d in g.edges(data=True):
            d["weight"] = np.zeros((g.nodes[v].get("size", 1), g.nodes[u].get("size", 1)))
        return balanced_init(DagNet(g), seed)
    except NetworkError as err:
        raise NetworkError(f"{spec}: {err}") from err


def _json_kind(x):
    """What a JSON value is, in words: "an array", "a string", ..."""
    kinds = {dict: "an object", list: "an array", str: "a string", int: "a number",
             float: "a number", bool: "a boolean", type(None): "null"}
    return kinds.get(type(x), "a value")


def _read_node_link(path):
    """The DiGraph of a node-link JSON file; ValueError naming ``path`` if it is not one."""
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory; expected a node-link JSON graph file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except UnicodeDecodeError as err:
        raise ValueError(f"graph file {path!r} is not UTF-8 text; expected node-link "
                         f"JSON ({err.reason} at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"graph file {path!r} is not valid JSON: {err}") from err
    except OSError as err:
        raise ValueError(f"cannot read graph file {path!r}: {err.strerror}") from err
    if not isinstance(data, dict):
        raise ValueError(f"graph file {path!r} holds {_json_kind(data)}; expected an "
                         f'object with "nodes" and "edges" (node-link JSON)')
    edges = "links" if "links" in data and "edges" not in data else "edges"
    for key, kind in (("nodes", "nodes"), (edges, 'edges (or "links")')):
        if not isinstance(data.get(key), list):
            found = "none" if key not in data else _json_kind(data[key])
            raise ValueError(f'graph file {path!r} needs a list of {kind} under "{key}"; '
                             f"found {found}")
    if not isinstance(data.get("graph", {}), dict):
        raise ValueError(f'graph file {path!r} has {_json_kind(data["graph"])} under '
                         f'"graph"; expected an object of graph attributes')
    seen = {}
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise ValueError(f'graph file {path!r}: node {i} is {node!r}; expected an '
                             f'object with an "id"')
        _once(seen, ("node", node["id"]), i, "nodes",
              f"graph file {path!r}: node id {node['id']!r} appears twice")
    for i, edge in enumerate(data[edges]):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            raise ValueError(f'graph file {path!r}: edge {i} is {edge!r}; expected an '
                             f'object with a "source" and a "target"')
        _once(seen, ("edge", edge["source"], edge["target"]), i, "edges",
              f"graph file {path!r}: edge {edge['source']!r} -> {edge['target']!r} "
              f"appears twice")
    try:
        g = nx.node_link_graph(data, directed=True, multigraph=False, edges=edges)
        return nx.DiGraph(g)
    except (TypeError, ValueError, KeyError, nx.NetworkXError) as err:
        raise ValueError(f"graph file {path!r} is not a valid node-link graph: "
                         f"{err}") from err


def _once(seen, key, i, entries, message):
    """Record ``key`` as entry ``i``; ValueError with ``message`` if it was seen."""
    try:
        first = seen.setdefault(key, i)
    except TypeError:  # an unhashable id: node_link_graph refuses it by name
        return
    if first != i:
        raise ValueError(f"{message} ({entries} {first} and {i}); each may appear once")


def _import(spec, module):
    """Import ``module``, looking in the current directory first."""
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"{spec!r}: cannot import module {module!r} ({err})") from err
    except Exception as err:  # noqa: BLE001 - user code: report it under the spec
        raise ValueError(f"{spec!r}: importing module {module!r} raised "
                         f"{type(err).__name__}: {err}") from err
    finally:
        if added and here in sys.path:
            sys.path.remove(here)


def _call_spec(spec):
    """What the function named by ``module:function`` returns."""
    module, _, function = spec.partition(":")
    found = _import(spec, module)
    fn = getattr(found, function, None)
    if fn is None:
        raise ValueError(f"{spec!r}: module {module!r} has no attribute {function!r}")
    if not callable(fn):
        raise ValueError(f"{spec!r}: {module}.{function} is a {type(fn).__name__}, not "
                         f"a function")
    try:
        needed = [name for name, par in inspect.signature(fn).parameters.items()
                  if par.default is par.empty
                  and par.kind not in (par.VAR_POSITIONAL, par.VAR_KEYWORD)]
    except (TypeError, ValueError):  # no signature to read (some builtins)
        needed = []
    if needed:
        raise ValueError(f"{spec!r}: {module}.{function} needs arguments {needed}; "
                         f"expected a function called with none")
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - user code: report it under the spec
        raise ValueError(f"{spec!r}: {module}.{function}() raised "
                         f"{type(err).__name__}: {err}") from err


def load_net(spec, seed=0):
    """``(name, DagNet)`` from a node-link JSON file or a ``module:function`` spec.

    Raises
    ------
    FileNotFoundError
        If ``spec`` is neither an existing path nor of the form ``module:function``.
    ValueError
        If the file is not a node-link JSON graph of a valid network (a node
        id or an edge given twice included), or the module or function cannot
        be found or imported, needs arguments, raises, or returns no valid
        network; the message names ``spec``.
    """
    if os.path.exists(spec):
        return os.path.basename(spec), _as_net(_read_node_link(spec), seed, spec)
    module, sep, function = spec.partition(":")
    if not sep or not module or not function:
        raise FileNotFoundError(f"no graph file {spec!r}, and it is not module:function")
    return spec, _as_net(_call_spec(spec), seed, spec)


def run_checks(nets=None, *, p=2, seed=0, steps=50, limit=DEFAULT_LIMIT):
    """Run the suite; ``nets`` is ``[(name, DagNet)]``, ``[DagNet]`` or None (built-in)."""
    p = check_p(p)
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    nets = builtin_nets(seed) if nets is None else list(nets)
    results = []
    for i, item in enumerate(nets):
        name, net = item if isinstance(item, tuple) else (f"net{i}", item)
        case = _Case(name, net, p, steps, limit, seed)
        for check in CHECKS:
            results += check(case)
    return results


def _fmt(x):
    return str(x) if isinstance(x, (str, int, np.integer)) else f"{x:.6g}"


def format_table(results):
    """A plain-text table of ``results`` with a one-line summary."""
    header = ("check", "graph", "value", "reference", "rel. error", "verdict")
    rows = [(r.check, r.graph, _fmt(r.value), _fmt(r.reference),
             "-" if math.isnan(r.rel_error) else f"{r.rel_error:.1e}", r.verdict)
            for r in results]
    widths = [max(len(row[k]) for row in rows + [header]) for k in range(6)]
    line = lambda row: "  ".join(s.ljust(w) for s, w in zip(row, widths)).rstrip()  # noqa: E731
    failed = sum(not r.passed for r in results)
    reported = sum(r.verdict.startswith("report") for r in results)
    return "\n".join([line(header), line(["-" * w for w in widths])]
                     + [line(row) for row in rows]
                     + [f"{len(results)} checks: {failed} failed, {reported} reported"])


def add_arguments(parser):
    """Add the ``dagnet check`` options to ``parser``."""
    parser.add_argument("--graph", action="append", default=[],
                        metavar="FILE_OR_MODULE:FUNC",
                        help="a node-link JSON file or module:function returning a DagNet "
                             "or DiGraph; repeatable (default: the built-in suite)")
    parser.add_argument("--builtin", action="store_true",
                        help="with --graph, run the built-in suite as well")
    parser.add_argument("--p", type=float, default=2.0,
                        help="p of phi_p and gamma_p, >= 1 or inf (default 2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random rescaling, inputs and initialisations "
                             "(default 0)")
    parser.add_argument("--steps", type=int, default=50,
                        help="full-batch training steps in the Theorem 4.1 rows (Path-SGD, "
                             "SGD and AdaGrad from w and from rho(w); default 50)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help="skip enumeration on graphs with more paths than this "
                             f"(default {DEFAULT_LIMIT})")


def main(args):
    """Run the checks of ``args`` (see :func:`add_arguments`); 0 if all pass, else 1."""
    nets = [load_net(spec, args.seed) for spec in args.graph]
    if args.builtin or not nets:
        nets = builtin_nets(args.seed) + nets
    results = run_checks(nets, p=args.p, seed=args.seed, steps=args.steps, limit=args.limit)
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1

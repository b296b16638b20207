"""Networks whose architecture is a directed acyclic graph.

A :class:`DagNet` holds a ``networkx.DiGraph`` in which every parameter is an
edge weight. Node attributes:

``role``
    ``"input"``, ``"hidden"``, ``"output"`` or ``"bias"`` (a source whose value
    is always 1; at most one per network, of size 1).
``activation``
    For hidden nodes, one of :data:`ACTIVATIONS` (default ``"relu"``). Outputs
    are always linear; sources have none.
``size``
    Number of units the node stands for (default 1). An edge ``u -> v``
    between nodes of sizes ``m`` and ``n`` carries a weight matrix of shape
    ``(n, m)``; when both sizes are 1 the weight is a scalar. Unit ``i`` of a
    node ``v`` of size greater than 1 is called ``(v, i)``.

Caveats
-------
Only the positively homogeneous activations (:data:`HOMOGENEOUS`) keep the
function invariant under rescaling; the rescaling tools refuse the others.
Input columns follow the order in which input nodes were added to the graph;
output columns likewise.
"""

from __future__ import annotations

import math
import numbers

import networkx as nx
import numpy as np

__all__ = [
    "ACTIVATIONS",
    "HOMOGENEOUS",
    "ROLES",
    "DagNet",
    "NetworkError",
    "as_network",
]

ROLES = ("input", "hidden", "output", "bias")
ACTIVATIONS = ("relu", "linear", "leaky_relu", "tanh", "sigmoid")
HOMOGENEOUS = ("relu", "linear", "leaky_relu")


class NetworkError(ValueError):
    """A graph that is not a valid network; the message names the culprit."""


def _as_weight(u, v, w, shape):
    """Return ``w`` as a float (1x1 edge) or a float64 array of ``shape``."""
    if w is None:
        raise NetworkError(f"edge {u!r} -> {v!r} has no 'weight' attribute")
    if isinstance(w, (bool, np.bool_, str, bytes)):
        raise NetworkError(f"edge {u!r} -> {v!r} has non-numeric weight {w!r}")
    if shape == (1, 1) and isinstance(w, numbers.Real):
        try:
            w = float(w)
        except OverflowError:  # an int beyond float64, e.g. 10**400
            raise NetworkError(f"edge {u!r} -> {v!r} has a weight beyond float64's "
                               f"range ({type(w).__name__} of {len(str(abs(w)))} "
                               f"digits)") from None
        if not math.isfinite(w):
            raise NetworkError(f"edge {u!r} -> {v!r} has non-finite weight {w}")
        return w
    try:
        obj = np.asarray(w)
        real = obj.dtype.kind in "iuf" or obj.dtype.kind == "O" and all(
            isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))
            for x in obj.ravel())  # "O": e.g. Python ints beyond int64
        arr = np.array(w, dtype=np.float64) if real else None
    except OverflowError:
        raise NetworkError(f"edge {u!r} -> {v!r} has weights beyond float64's "
                           f"range") from None
    except (TypeError, ValueError):
        arr = None
    if arr is None:
        raise NetworkError(f"edge {u!r} -> {v!r} has non-numeric weight {w!r}; "
                           f"weights must be real numbers")
    if shape == (1, 1) and arr.size == 1:
        return _as_weight(u, v, float(arr.reshape(())), shape)
    if arr.shape != shape:
        raise NetworkError(
            f"edge {u!r} -> {v!r} has a weight of shape {arr.shape}; "
            f"the node sizes require {shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise NetworkError(f"edge {u!r} -> {v!r} has non-finite weights")
    arr.flags.writeable = False  # a DagNet is a value: edit a copy, then with_weights
    return arr


def _unreached(g, starts, forward):
    """Nodes of ``g`` not reachable from ``starts`` (backwards if not forward)."""
    seen = set(starts)
    stack = list(starts)
    step = g.successors if forward else g.predecessors
    while stack:
        for x in step(stack.pop()):
            if x not in seen:
                seen.add(x)
                stack.append(x)
    return [v for v in g if v not in seen]


def _validated_graph(g, prune):
    """The one guard for "is a valid network"; returns a normalised copy."""
    if not isinstance(g, nx.DiGraph) or g.is_multigraph():
        raise NetworkError(f"expected a networkx.DiGraph, got {type(g).__name__}")
    h = nx.DiGraph()
    for v, data in g.nodes(data=True):
        attrs = dict(data)
        role = attrs.get("role")
        if role not in ROLES:
            raise NetworkError(f"node {v!r} has role {role!r}; expected one of {ROLES}")
        size = attrs.get("size", 1)
        if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
            raise NetworkError(f"node {v!r} has size {size!r}; expected an integer >= 1")
        attrs["size"] = int(size)
        if role == "hidden":
            act = attrs.setdefault("activation", "relu")
            if act not in ACTIVATIONS:
                raise NetworkError(
                    f"node {v!r} has activation {act!r}; expected one of {ACTIVATIONS}"
                )
        elif attrs.get("activation", None) not in (None, "linear"):
            raise NetworkError(
                f"{role} node {v!r} has activation {attrs['activation']!r}; "
                f"only hidden nodes take an activation"
            )
        else:
            attrs.pop("activation", None)
        if role == "bias" and attrs["size"] != 1:
            raise NetworkError(f"bias node {v!r} has size {attrs['size']}; it must be 1")
        h.add_node(v, **attrs)
    for v in h:  # (node, i) names the units of a group node: no node may take them
        if isinstance(v, tuple) and len(v) == 2 and v[0] in h and v[0] != v \
                and h.nodes[v[0]]["size"] > 1:
            raise NetworkError(
                f"node {v!r} has the name of unit {v[1]!r} of group node {v[0]!r}; "
                f"rename one of them")

    biases = [v for v, r in h.nodes(data="role") if r == "bias"]
    if len(biases) > 1:
        raise NetworkError(f"a network has at most one bias node; found {biases}")
    for role in ("input", "output"):
        if not any(r == role for _, r in h.nodes(data="role")):
            raise NetworkError(f"the network has no {role} node")

    for u, v, data in g.edges(data=True):
        ru, rv = h.nodes[u]["role"], h.nodes[v]["role"]
        if rv in ("input", "bias"):
            raise NetworkError(f"edge {u!r} -> {v!r} enters {rv} node {v!r}")
        if ru == "output":
            raise NetworkError(f"edge {u!r} -> {v!r} leaves output node {u!r}")
        attrs = dict(data)
        shape = (h.nodes[v]["size"], h.nodes[u]["size"])
        attrs["weight"] = _as_weight(u, v, data.get("weight"), shape)
        h.add_edge(u, v, **attrs)

    if not nx.is_directed_acyclic_graph(h):
        cycle = nx.find_cycle(h)
        raise NetworkError(f"the graph has a cycle: {cycle}")

    inputs = [v for v, r in h.nodes(data="role") if r == "input"]
    outputs = [v for v, r in h.nodes(data="role") if r == "output"]
    unfed = set(_unreached(h, inputs, True))
    useless = set(_unreached(h, outputs, False))
    dead = [v for v in h if v in unfed | useless and h.nodes[v]["role"] == "hidden"]
    if dead and not prune:
        parts = [f"{what}: {nodes}" for what, nodes in (
            ("no input reaches", [v for v in dead if v in unfed]),
            ("reach no output", [v for v in dead if v in useless and v not in unfed]))
            if nodes]
        raise NetworkError(
            f"hidden node(s) {dead} are not on any input-to-output path ("
            f"{'; '.join(parts)}); remove them or pass prune=True"
        )
    # Removing off-path nodes breaks no input-to-output path: one pass is enough.
    h.remove_nodes_from(dead)
    return h


class DagNet:
    """A neural network on a DAG, with every parameter an edge weight.

    Build one with :meth:`from_networkx` or a builder such as
    :func:`dagnet.layered`; the constructor is the same as ``from_networkx``.

    Parameters
    ----------
    graph : networkx.DiGraph
        Nodes with a ``role`` (and optional ``activation``, ``size``), edges
        with a ``weight``; see the module docstring. The graph is copied.
    prune : bool, default False
        Drop hidden nodes that lie on no input-to-output path instead of
        raising :class:`NetworkError`. A node fed by the bias alone is such a
        node; dropping it shifts the outputs it fed by a constant.

    Raises
    ------
    NetworkError
        For a cycle, an edge into a source or out of an output, an unknown
        role or activation, a missing, misshapen or non-finite weight, a
        hidden node on no input-to-output path, or no inputs or outputs.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.DiGraph()
    >>> g.add_node("x", role="input"); g.add_node("h", role="hidden")
    >>> g.add_node("y", role="output")
    >>> g.add_edge("x", "h", weight=2.0); g.add_edge("h", "y", weight=-1.0)
    >>> g.add_edge("x", "y", weight=0.5)
    >>> net = DagNet.from_networkx(g)
    >>> net.inputs, net.outputs, net.hidden
    (['x'], ['y'], ['h'])
    >>> net.weight("x", "h")
    2.0
    """

    def __init__(self, graph, *, prune=False):
        self._g = _validated_graph(graph, prune)
        roles = nx.get_node_attributes(self._g, "role")
        self.inputs = [v for v in self._g if roles[v] == "input"]
        self.outputs = [v for v in self._g if roles[v] == "output"]
        self.hidden = [v for v in self._g if roles[v] == "hidden"]
        biases = [v for v in self._g if roles[v] == "bias"]
        self.bias = biases[0] if biases else None

    @classmethod
    def from_networkx(cls, g, *, prune=False):
        """Build a network from a DiGraph with the attributes described above."""
        return cls(g, prune=prune)

    def to_networkx(self):
        """A deep copy of the graph, weights included."""
        g = nx.DiGraph()
        g.add_nodes_from((v, dict(d)) for v, d in self._g.nodes(data=True))
        for u, v, d in self._g.edges(data=True):
            d = dict(d)
            if isinstance(d["weight"], np.ndarray):
                d["weight"] = np.array(d["weight"])  # a writable copy
            g.add_edge(u, v, **d)
        return g

    def copy(self):
        """An independent copy of the network."""
        return DagNet(self._g)

    @property
    def graph(self):
        """The underlying DiGraph; treat it as read-only."""
        return self._g

    def role(self, v):
        """The role of node ``v``."""
        return self._g.nodes[v]["role"]

    def size(self, v):
        """The number of units node ``v`` stands for."""
        return self._g.nodes[v]["size"]

    def activation(self, v):
        """The activation of node ``v`` (``"linear"`` for non-hidden nodes)."""
        return self._g.nodes[v].get("activation", "linear")

    def weight(self, u, v):
        """The weight of ``u -> v``: a float or a read-only ``(size_v, size_u)`` array."""
        try:
            return self._g.edges[u, v]["weight"]
        except KeyError:
            raise KeyError(f"the network has no edge {u!r} -> {v!r}") from None

    def weight_matrix(self, u, v):
        """The weight of ``u -> v`` as a ``(size_v, size_u)`` float64 array."""
        return np.asarray(self.weight(u, v), dtype=np.float64).reshape(
            self.size(v), self.size(u))

    @property
    def edges(self):
        """The edges ``(u, v)`` in the graph's order."""
        return list(self._g.edges)

    @property
    def n_inputs(self):
        """The number of input units (columns of the input)."""
        return sum(self.size(v) for v in self.inputs)

    @property
    def n_outputs(self):
        """The number of output units (columns of the output)."""
        return sum(self.size(v) for v in self.outputs)

    @property
    def n_params(self):
        """The number of unit-level edges, i.e. of scalar weights."""
        return sum(self.size(u) * self.size(v) for u, v in self._g.edges)

    @property
    def is_unit_level(self):
        """True when every node stands for a single unit."""
        return all(s == 1 for _, s in self._g.nodes(data="size"))

    def with_weights(self, weights):
        """A copy with the weights of the edges in ``weights`` replaced.

        ``weights`` maps ``(u, v)`` to a new weight; edges not named keep
        theirs. Unknown edges, and keys that are not ``(u, v)`` pairs, raise
        ``KeyError``.
        """
        g = self.to_networkx()
        for edge, w in weights.items():
            if not (isinstance(edge, tuple) and len(edge) == 2):
                raise KeyError(f"weights are keyed by edges (u, v); got key {edge!r}")
            u, v = edge
            if not g.has_edge(u, v):
                raise KeyError(f"the network has no edge {u!r} -> {v!r}")
            g.edges[u, v]["weight"] = w
        return DagNet(g)

    def unit(self, v, i):
        """The name of unit ``i`` of node ``v`` in :meth:`expand`."""
        if not 0 <= i < self.size(v):
            raise IndexError(f"node {v!r} has {self.size(v)} units; got index {i}")
        return v if self.size(v) == 1 else (v, i)

    def units(self, v):
        """The unit names of node ``v``, in order."""
        return [self.unit(v, i) for i in range(self.size(v))]

    def expand(self, max_edges=1_000_000):
        """The unit-level network: one node per unit, one edge per scalar weight.

        A node of size 1 keeps its name; unit ``i`` of a larger node ``v`` is
        ``(v, i)``. Refuses graphs with more than ``max_edges`` scalar weights.
        """
        if self.n_params > max_edges:
            raise ValueError(
                f"expanding would create {self.n_params} edges, over "
                f"max_edges={max_edges}; raise the limit to proceed"
            )
        g = nx.DiGraph()
        for v, d in self._g.nodes(data=True):
            attrs = {k: x for k, x in d.items() if k != "size"}
            for unit in self.units(v):
                g.add_node(unit, **attrs)
        for u, v in self._g.edges:
            w = self.weight_matrix(u, v)
            for i, vi in enumerate(self.units(v)):
                for j, uj in enumerate(self.units(u)):
                    g.add_edge(uj, vi, weight=float(w[i, j]))
        return DagNet(g)

    def compile(self, dtype=None, device=None, *, dropout=0.0, sparse_below=None):
        """Compile to a torch module; see :class:`dagnet.CompiledDagNet`."""
        from dagnet.compiled import CompiledDagNet

        kwargs = {} if sparse_below is None else {"sparse_below": sparse_below}
        return CompiledDagNet(self, dtype=dtype, device=device, dropout=dropout,
                              **kwargs)

    def __repr__(self):
        return (f"DagNet({self._g.number_of_nodes()} nodes, "
                f"{self._g.number_of_edges()} edges, {self.n_inputs} input units, "
                f"{self.n_outputs} output units)")


def as_network(net, name="net"):
    """The DagNet behind ``net``: itself, or a compiled module's weights read back.

    The one guard of the analysis functions; anything else is a TypeError
    that says what was passed instead.
    """
    if isinstance(net, DagNet):
        return net
    to_dagnet = getattr(net, "to_dagnet", None)
    if callable(to_dagnet):
        return to_dagnet()
    if isinstance(net, nx.Graph):
        raise TypeError(f"{name} is a networkx {type(net).__name__}; build the network "
                        f"with dagnet.DagNet(g) first")
    raise TypeError(f"{name} is a {type(net).__name__}; expected a DagNet or a compiled "
                    f"module (DagNet.compile())")

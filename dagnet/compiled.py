"""A DagNet compiled to a torch module that evaluates it level by level.

The units are laid out by V_in level (:mod:`dagnet.layering`): level 0 holds
the inputs in column order, level ``j`` the units whose longest path from a
source has ``j`` edges. For every pair (source level ``i``, target level
``j``) joined by edges the module keeps one weight *block*:

``dense``
    every unit of level ``i`` feeds every unit of level ``j``: the parameter
    is a ``(n_j, n_i)`` matrix used exactly as ``nn.Linear`` uses its weight,
    so a layered network runs through the same kernels as ``nn.Sequential``.
``scatter``
    some pairs are missing but the block is at least ``sparse_below`` dense:
    the parameter holds one value per edge and is scattered into a dense
    matrix at each forward pass.
``sparse``
    sparser than that: a sparse COO matrix product (``torch.sparse.mm``).

The bias unit's edges into level ``j`` form a block of their own, a vector
added as ``nn.Linear`` adds its bias. Every scalar parameter is exactly one
unit-level edge of the network; :meth:`CompiledDagNet.to_dagnet` writes them
back. Blocks are listed in :attr:`CompiledDagNet.blocks` in parameter order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dagnet.layering import node_levels_in
from dagnet.network import HOMOGENEOUS, DagNet

__all__ = ["Block", "CompiledDagNet"]

SPARSE_BELOW = 0.01
"""Partial blocks below this density use a sparse COO product; the crossover
measured by ``benchmarks/sparse_threshold.py`` is about 0.01 (1000 x 1000 block)."""

_ACTIVATIONS = {
    "relu": torch.relu,
    "linear": lambda z: z,
    "leaky_relu": F.leaky_relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


@dataclass
class Block:
    """One weight block of a compiled network.

    ``source`` is a level index or ``"bias"``; ``target`` a level index.
    ``kind`` is ``"dense"``, ``"scatter"`` or ``"sparse"``; for the last two
    ``rows`` and ``cols`` name the buffers of unit positions (within the
    target and source levels) of each value, in row-major order.
    """

    source: int | str
    target: int
    kind: str
    param: str
    rows: str | None = None
    cols: str | None = None


class CompiledDagNet(nn.Module):
    """A torch module computing a :class:`~dagnet.DagNet`'s outputs (logits).

    Maps a ``(batch, n_inputs)`` tensor to ``(batch, n_outputs)``. Hidden
    units apply their activation, outputs are linear. With ``dropout > 0``
    the outputs of hidden units are dropped with that probability in
    training mode.

    Parameters
    ----------
    net : DagNet
    dtype : torch.dtype, default torch.float32
    device : torch.device or str, optional
    dropout : float, default 0.0
        Probability of dropping a hidden unit's output (0.5 retains half).
    sparse_below : float, default SPARSE_BELOW
        Density under which a partial block uses the sparse kernel.

    Notes
    -----
    Writing back with :meth:`to_dagnet` is exact in float64. In float32 each
    weight is rounded once, at compilation.
    """

    def __init__(self, net, dtype=None, device=None, *, dropout=0.0,
                 sparse_below=SPARSE_BELOW):
        super().__init__()
        if not isinstance(net, DagNet):
            raise TypeError(f"expected a DagNet, got {type(net).__name__}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        if not 0.0 <= sparse_below < math.inf:
            raise ValueError(f"sparse_below must be a density >= 0; got {sparse_below}")
        dtype = torch.float32 if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype such as torch.float32; "
                            f"got {dtype!r}")
        try:
            device = None if device is None else torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device {device!r} is not a torch device ({err})") from None
        self.dropout = float(dropout)
        self.n_inputs, self.n_outputs = net.n_inputs, net.n_outputs
        self._structure = _strip_weights(net.graph)
        self._lay_out_units(net)
        self.blocks = []
        self._slots = []  # (u, v, block index, index into the parameter)
        self._build_blocks(net, dtype, sparse_below)
        self.register_buffer("anchor", torch.zeros(0, dtype=dtype), persistent=False)
        self.to(device)

    # -- construction -------------------------------------------------------
    def _lay_out_units(self, net):
        level = node_levels_in(net)
        for v in net.outputs:  # an output with no edge in is at level 0
            level[v] = max(level[v], 1)
        n_levels = max(level.values()) + 1
        members = [[] for _ in range(n_levels)]
        members[0] = list(net.inputs)
        for v in net.graph:
            if level[v] > 0:
                members[level[v]].append(v)
        self.place = {}  # node -> (level, start, stop)
        self.level_sizes = []
        self._segments = []  # per level: [(start, stop, activation)]
        self._hidden_levels = set()
        for j, nodes in enumerate(members):
            start, segs = 0, []
            for v in nodes:
                stop = start + net.size(v)
                self.place[v] = (j, start, stop)
                act = net.activation(v)
                if segs and segs[-1][2] == act and segs[-1][1] == start:
                    segs[-1] = (segs[-1][0], stop, act)
                else:
                    segs.append((start, stop, act))
                if net.role(v) == "hidden":
                    self._hidden_levels.add(j)
                start = stop
            self.level_sizes.append(start)
            self._segments.append(segs)
        out_ranges = []
        for v in net.outputs:
            j, a, b = self.place[v]
            if out_ranges and out_ranges[-1][0] == j and out_ranges[-1][2] == a:
                out_ranges[-1] = (j, out_ranges[-1][1], b)
            else:
                out_ranges.append((j, a, b))
        last = n_levels - 1
        self._direct_output = out_ranges == [(last, 0, self.level_sizes[last])]
        self._out_ranges = out_ranges
        self.output_mask = [np.zeros(n, dtype=bool) for n in self.level_sizes]
        for v in net.outputs:
            j, a, b = self.place[v]
            self.output_mask[j][a:b] = True
        self.n_levels = n_levels
        self.homogeneous = all(
            net.activation(v) in HOMOGENEOUS for v in net.hidden)

    def _build_blocks(self, net, dtype, sparse_below):
        groups = {}
        for u, v in net.edges:
            src = "bias" if u == net.bias else self.place[u][0]
            groups.setdefault((src, self.place[v][0]), []).append((u, v))
        order = sorted(groups, key=lambda k: (k[1], k[0] != "bias", str(k[0])))
        for src, tgt in order:
            edges = groups[(src, tgt)]
            n_src = 1 if src == "bias" else self.level_sizes[src]
            n_tgt = self.level_sizes[tgt]
            nnz = sum(net.size(u) * net.size(v) for u, v in edges)
            name = f"w_bias_{tgt}" if src == "bias" else f"w_{src}_{tgt}"
            index = len(self.blocks)
            if nnz == n_src * n_tgt:
                self._dense_block(net, edges, src, tgt, name, index, dtype)
            else:
                kind = "scatter" if nnz >= sparse_below * n_src * n_tgt else "sparse"
                self._partial_block(net, edges, src, tgt, name, index, dtype, kind)

    def _position(self, node, src):
        if src == "bias":
            return 0, 1
        return self.place[node][1:]

    def _dense_block(self, net, edges, src, tgt, name, index, dtype):
        shape = (self.level_sizes[tgt], 1 if src == "bias" else self.level_sizes[src])
        w = np.zeros(shape)
        for u, v in edges:
            r0, r1 = self.place[v][1:]
            c0, c1 = self._position(u, src)
            w[r0:r1, c0:c1] = net.weight_matrix(u, v)
            self._slots.append((u, v, index, (slice(r0, r1), slice(c0, c1))))
        if src == "bias":
            w = w[:, 0]
        self.register_parameter(name, nn.Parameter(torch.tensor(w, dtype=dtype)))
        self.blocks.append(Block(src, tgt, "dense", name))

    def _partial_block(self, net, edges, src, tgt, name, index, dtype, kind):
        rows, cols, vals, owner = [], [], [], []
        for e, (u, v) in enumerate(edges):
            r0, r1 = self.place[v][1:]
            c0, c1 = self._position(u, src)
            rr, cc = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
            rows.append(rr.ravel())
            cols.append(cc.ravel())
            vals.append(net.weight_matrix(u, v).ravel())
            owner.append(np.full(rr.size, e))
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        vals, owner = np.concatenate(vals), np.concatenate(owner)
        perm = np.lexsort((cols, rows))
        rank = np.empty_like(perm)
        rank[perm] = np.arange(perm.size)
        start = 0
        for u, v in edges:
            n = net.size(u) * net.size(v)
            self._slots.append((u, v, index, rank[start:start + n]))
            start += n
        self.register_parameter(
            name, nn.Parameter(torch.tensor(vals[perm], dtype=dtype)))
        self.register_buffer(name + "_rows", torch.tensor(rows[perm]))
        block = Block(src, tgt, kind, name, rows=name + "_rows")
        if src != "bias":
            self.register_buffer(name + "_cols", torch.tensor(cols[perm]))
            block.cols = name + "_cols"
        self.blocks.append(block)

    # -- evaluation ---------------------------------------------------------
    def block_matrix(self, block, values=None):
        """The block as a dense ``(n_target, n_source)`` tensor (a vector for bias).

        ``values`` replaces the parameter (e.g. by ``|w|^p``) when given.
        """
        w = getattr(self, block.param) if values is None else values
        if block.kind == "dense":
            return w
        rows = getattr(self, block.rows)
        n_tgt = self.level_sizes[block.target]
        if block.source == "bias":
            return w.new_zeros(n_tgt).index_put((rows,), w)
        n_src = self.level_sizes[block.source]
        return w.new_zeros(n_tgt, n_src).index_put((rows, getattr(self, block.cols)), w)

    def _level_input(self, j, h):
        z, bias, sparse = None, None, []
        for block in self._into[j]:
            if block.source == "bias":
                bias = self.block_matrix(block)
            elif block.kind == "sparse":
                sparse.append(block)
            else:
                w = self.block_matrix(block)
                z = F.linear(h[block.source], w, bias) if z is None else \
                    torch.addmm(z, h[block.source], w.t())
                bias = None
        if z is None:
            z = h[0].new_zeros(h[0].shape[0], self.level_sizes[j])
        if bias is not None:
            z = z + bias
        for block in sparse:
            z = z + torch.sparse.mm(self._sparse_matrix(block), h[block.source].t()).t()
        return z

    def _sparse_matrix(self, block):
        """A sparse block as a coalesced COO tensor (its values are the parameter)."""
        rows, cols = getattr(self, block.rows), getattr(self, block.cols)
        shape = (self.level_sizes[block.target], self.level_sizes[block.source])
        values = getattr(self, block.param)
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape,
                                       is_coalesced=True, check_invariants=False)

    def _activate(self, j, z):
        segs = self._segments[j]
        if len(segs) == 1:
            return _ACTIVATIONS[segs[0][2]](z)
        return torch.cat([_ACTIVATIONS[act](z[:, a:b]) for a, b, act in segs], dim=1)

    @property
    def _into(self):
        into = getattr(self, "_into_cache", None)
        if into is None:
            into = [[] for _ in range(self.n_levels)]
            for block in self.blocks:
                into[block.target].append(block)
            self._into_cache = into
        return into

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of shape (batch, {self.n_inputs}); "
                            f"got {type(x).__name__} (convert with torch.as_tensor)")
        if x.dim() != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(
                f"expected input of shape (batch, {self.n_inputs}); got {tuple(x.shape)}")
        if x.dtype != self.anchor.dtype:
            raise ValueError(f"expected input of dtype {self.anchor.dtype}; got {x.dtype} "
                             f"(convert with x.to({self.anchor.dtype}))")
        h, kept = [x], [x]
        drop = self.dropout > 0 and self.training
        for j in range(1, self.n_levels):
            a = self._activate(j, self._level_input(j, h))
            kept.append(a)
            if drop and j in self._hidden_levels:
                a = F.dropout(a, self.dropout, training=True)
            h.append(a)
        if self._direct_output:
            return kept[-1]
        return torch.cat([kept[j][:, a:b] for j, a, b in self._out_ranges], dim=1)

    # -- weights <-> edges --------------------------------------------------
    def _read(self, index, pos, u, v, arrays):
        block = self.blocks[index]
        w = arrays[index]
        shape = (self._structure.nodes[v]["size"], self._structure.nodes[u]["size"])
        if block.kind == "dense" and block.source == "bias":
            return w[pos[0]].reshape(shape)
        return w[pos].reshape(shape)

    def _per_edge(self, tensors):
        """``{(u, v): float or array}`` read from per-block tensors, in edge order."""
        arrays = [t.detach().cpu().double().numpy() for t in tensors]
        found = {(u, v): self._read(index, pos, u, v, arrays)
                 for u, v, index, pos in self._slots}
        return {e: float(found[e][0, 0]) if found[e].shape == (1, 1) else found[e].copy()
                for e in self._structure.edges}

    def edge_gradients(self):
        """``{(u, v): dL/dw}`` from the parameters' ``.grad`` (0 where there is none)."""
        return self._per_edge(
            torch.zeros_like(w) if w.grad is None else w.grad
            for w in (getattr(self, b.param) for b in self.blocks))

    def to_dagnet(self):
        """A DagNet with the same graph and this module's current weights."""
        weights = self._per_edge(getattr(self, b.param) for b in self.blocks)
        g = nx.DiGraph()
        g.add_nodes_from(self._structure.nodes(data=True))
        for u, v, attrs in self._structure.edges(data=True):
            g.add_edge(u, v, **attrs)
            g.edges[u, v]["weight"] = weights[u, v]
        return DagNet(g)

    def rescale_(self, v, c):
        """Apply rho_{c,v} in place: scale edges into ``v`` by ``c``, out of it by 1/c.

        ``c`` is a positive scalar or, for a node of size ``n``, a vector of
        ``n`` factors. Validation of ``v`` and ``c`` is :func:`dagnet.rescale`'s;
        this method trusts its caller.
        """
        size = self._structure.nodes[v]["size"]
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), (size,))
        with torch.no_grad():
            for u, x, index, pos in self._slots:
                if x == v:
                    self._scale_slot(index, pos, c[:, None] * np.ones((1, self._size(u))))
                elif u == v:
                    self._scale_slot(index, pos, np.ones((self._size(x), 1)) / c[None, :])
        return self

    def _size(self, v):
        return self._structure.nodes[v]["size"]

    def _scale_slot(self, index, pos, factor):
        block = self.blocks[index]
        w = getattr(self, block.param)
        f = torch.as_tensor(factor, dtype=w.dtype, device=w.device)
        if block.kind != "dense":
            w[torch.as_tensor(pos, device=w.device)] *= f.reshape(-1)
        elif block.source == "bias":
            w[pos[0]] *= f[:, 0]
        else:
            w[pos] *= f

    def extra_repr(self):
        kinds = ", ".join(f"{b.param}:{b.kind}" for b in self.blocks)
        return (f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, "
                f"levels={self.level_sizes}, dropout={self.dropout}, blocks=[{kinds}]")


def _strip_weights(g):
    h = nx.DiGraph()
    h.add_nodes_from(g.nodes(data=True))
    h.add_edges_from((u, v, {k: x for k, x in d.items() if k != "weight"})
                     for u, v, d in g.edges(data=True))
    return h

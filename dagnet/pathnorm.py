r"""Path norms and Path-SGD scalings by dynamic programming.

For a path P from a source to an output, its product is the product of its
edge weights; the l_p path regulariser is ``phi_p(w) = ||pi(w)||_p`` over all
paths. Its p-th power needs one pass over the levels:

.. math::

    \alpha(s) = 1 \text{ for sources}, \qquad
    \alpha(v) = \sum_{u \to v} |w_{uv}|^p \, \alpha(u), \qquad
    \phi_p(w)^p = \sum_{v \text{ output}} \alpha(v),

and symmetrically ``beta(output) = 1``, ``beta(u) = sum_{u->x} |w_ux|^p
beta(x)``. The Path-SGD scaling of edge ``e = (u -> v)`` is

.. math::

    \gamma_p(w, e) = \Big(\sum_{P \ni e} \prod_{e' \in P, e' \ne e}
    |w_{e'}|^p\Big)^{2/p} = \big(\alpha(u)\,\beta(v)\big)^{2/p}.

For ``p = inf`` sums become maxima and powers ``|w|``, so that
``phi_inf`` is the largest absolute path product and
``gamma_inf(e) = (alpha(u) beta(v))^2``.

Each level's alpha (beta) is kept as a vector whose largest entry lies in
[1/2, 1) times ``2 ** exponent``, the exponent a Python float, so deep or
badly unbalanced networks do not overflow in float32; scaling by powers of
two loses no precision.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dagnet.kernels import FUSED_MIN_ELEMENTS, power_into, power_products
from dagnet.compiled import CompiledDagNet
from dagnet.network import as_network

__all__ = ["alpha_beta", "path_norm", "path_scaling", "check_p"]



def pow2(x):
    """``2 ** x`` as a float, saturating to 0 and inf instead of raising."""
    if x > 1023:
        return math.inf
    return 0.0 if x < -1074 else 2.0 ** x


def check_p(p):
    """Return ``p`` as a float, refusing values below 1."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"p must be a number >= 1 or inf; got {p!r}") from None
    if not p >= 1:
        raise ValueError(f"p must be >= 1 (or inf); got {p}")
    return p


CHUNK_ELEMENTS = 1 << 16
"""Dense blocks are raised to the power p a chunk of rows at a time, each chunk
about this many entries, so |w|^p stays in cache and is never stored whole."""


def workspace(module, numel, dtype=None):
    """A scratch tensor of at least ``numel`` entries, reused across calls."""
    buf = getattr(module, "_workspace", None)
    anchor = module.anchor
    dtype = dtype or anchor.dtype
    if buf is None or buf.numel() < numel or buf.dtype != dtype \
            or buf.device != anchor.device:
        buf = anchor.new_empty(numel, dtype=dtype)
        module._workspace = buf
    return buf[:numel]


def row_chunks(w):
    """``(rows, view of w)`` pieces of a dense block small enough for the cache."""
    if w.dim() == 1:
        yield slice(None), w
        return
    step = max(1, CHUNK_ELEMENTS // max(1, w.shape[1]))
    for start in range(0, w.shape[0], step):
        rows = slice(start, start + step)
        yield rows, w[rows]


def _weight(module, block, dtype):
    w = getattr(module, block.param)
    return w if dtype is None else w.to(dtype)


def _block_exponent(w):
    """``k`` with ``max |w| = m 2^k``, 1/2 <= m < 1 (0 for an all-zero block)."""
    top = float(w.abs().max()) if w.numel() else 0.0
    return math.frexp(top)[1] if 0 < top < math.inf else 0


def _sweep(module, block, p, fwd=None, bwd=None, fused=False, dtype=None):
    """``|W|^p @ fwd`` and ``|W|^p.T @ bwd`` (max-products for p = inf).

    Returns ``((f, e_f), (b, e_b))``: the products are ``f * 2^e_f`` and
    ``b * 2^e_b`` (None for a vector not given). The bias source takes
    ``fwd = None`` and gives its column of ``|w|^p``. ``dtype`` casts the
    weights first.

    With ``fused`` True or None (see :func:`alpha_beta`) the products are
    first taken unscaled, a large dense block through
    :func:`dagnet.kernels.power_products`, and kept if :func:`_exact` finds
    them free of overflow and underflow. Otherwise, and always with ``fused``
    False, the block is first divided by the power of two nearest its largest
    entry, so that ``|w|^p`` cannot overflow. If that still leaves products
    that :func:`_exact` rejects (entries that matter far below the largest,
    say in the column of a dead unit), a block below float64 is taken once
    more in float64. Outside the compiled kernels a dense block is raised to
    the power a chunk of rows at a time, both products taken from the same
    chunk.
    """
    w = _weight(module, block, dtype)
    terms = 1 if p == math.inf else max(1, w.numel())  # at most, per entry

    def exact(f, b):
        return _exact(f, terms, lambda rows: _has_terms(module, block, w, fwd, rows, 0)) \
            and _exact(b, terms, lambda cols: _has_terms(module, block, w, bwd, cols, 1))

    if fused is not False and dtype is None:
        f, b, _ = _sweep_at(module, block, p, w, fwd, bwd, fused, 0)
        if exact(f, b):
            return (f, 0.0), (b, 0.0)
    k = _block_exponent(w)
    f, b, e = _sweep_at(module, block, p, w, fwd, bwd, False, k)
    if w.dtype == torch.float64 or exact(f, b):
        return (f, e), (b, e)
    f, b, e = _sweep_at(module, block, p, w.double(), _double(fwd), _double(bwd), False, k)
    return split_exponent(f, w.dtype, e), split_exponent(b, w.dtype, e)


def _double(v):
    return None if v is None else v.double()


def split_exponent(v, dtype, e=0.0):
    """``(x, e')`` with ``v 2^e = x 2^e'``, ``x`` in ``dtype`` with its largest
    entry in [1/2, 1) (``e' = e`` when ``v`` has no positive finite largest
    entry; ``(None, e)`` for ``v`` None)."""
    if v is None:
        return None, e
    top = float(v.max()) if v.numel() else 0.0
    shift = math.frexp(top)[1] if 0 < top < math.inf else 0
    return (v * pow2(-shift)).to(dtype), e + shift


def _has_terms(module, block, w, vec, entries, axis):
    """Whether any of the given entries of the product along ``axis`` (0:
    ``|W|^p @ vec``, rows; 1: ``|W|^p.T @ vec``, columns) has a nonzero term."""
    m = module.block_matrix(block, w)  # w itself for a dense block: no copy
    if m.dim() == 1:  # the bias source's column: no vector
        return bool((m[entries] != 0).any())
    m = (m[entries] if axis == 0 else m[:, entries].t()) != 0  # only those entries read
    return bool((m & (vec != 0)[None, :]).any()) if vec is not None else bool(m.any())


def _exact(v, n_terms, has_terms):
    """Whether products summing ``n_terms`` terms each can be trusted.

    They must be finite and at most ``2^-8`` of the dtype's largest (so that
    a few such terms add up without overflow), and no entry may lie below
    ``n_terms`` times the smallest normal number over the epsilon, where
    underflowed terms could weigh in its last bits; an entry that is exactly
    0 is trusted only where ``has_terms`` shows it has no nonzero term.
    """
    if v is None:
        return True
    info = torch.finfo(v.dtype)
    if not bool(torch.isfinite(v).all()) or float(v.max()) > info.max * 2.0 ** -8:
        return False
    small = v < n_terms * info.tiny / info.eps
    if not bool(small.any()):
        return True
    return not bool((v[small] != 0).any()) and not has_terms(small)


def _sweep_at(module, block, p, w, fwd, bwd, fused, k):
    """The products of :func:`_sweep` with ``w`` divided by ``2^k`` first."""
    use_max = p == math.inf
    q = 1.0 if use_max else p
    dense = block.kind == "dense" and block.source != "bias"
    if k == 0 and dense and fused is not False and \
            (fused or w.numel() >= FUSED_MIN_ELEMENTS):
        products = power_products(w, fwd, bwd, p)
        if products is not None:
            return (*products, 0.0)
    half, e = pow2(-k // 2), q * k  # 2^-k in two factors: 2^1074 overflows
    rest = pow2(-k - (-k // 2))
    if block.kind != "dense" or block.source == "bias":
        s = (w * half * rest).abs() if k else w.abs()
        s = s if q == 1.0 else s.pow(q)
        if block.source == "bias":
            return module.block_matrix(block, s) if block.kind != "dense" else s, None, e
        return (*_products(module.block_matrix(block, s), fwd, bwd, use_max), e)
    f = w.new_empty(w.shape[0]) if fwd is not None else None
    b = w.new_zeros(w.shape[1]) if bwd is not None else None
    for rows, chunk in row_chunks(w):
        s = workspace(module, chunk.numel(), w.dtype).view_as(chunk)
        power_into(s, torch.mul(chunk, half, out=s).mul_(rest) if k else chunk, p)
        fc, bc = _products(s, fwd, None if bwd is None else bwd[rows], use_max)
        if f is not None:
            f[rows] = fc
        if b is not None:
            torch.maximum(b, bc, out=b) if use_max else b.add_(bc)
    return f, b, e


def _products(m, fwd, bwd, use_max):
    f = b = None
    if fwd is not None:
        f = (m * fwd).amax(dim=1) if use_max else m @ fwd
    if bwd is not None:
        b = (m * bwd[:, None]).amax(dim=0) if use_max else bwd @ m
    return f, b


def _normalised(terms, like, use_max):
    """Combine ``[(vector, exponent)]`` into one normalised ``(vector, exponent)``.

    The common exponent comes from each term's largest entry, not from its
    nominal exponent alone: a term that is all 0 (a zero-initialised block)
    must not set it, or the real terms would be flushed to 0.
    """
    sized = []
    for t, s in terms:
        top = float(t.max()) if t.numel() and s > -math.inf else 0.0
        if top > 0 or math.isnan(top):
            sized.append((t, s, math.frexp(top)[1] if math.isfinite(top) else 0))
    terms = [(t, s) for t, s, _ in sized]
    if not terms:
        return torch.zeros_like(like), -math.inf
    ref = max(s + e for _, s, e in sized)
    total = None
    for t, s in terms:
        t = t * pow2(s - ref)
        total = t if total is None else (torch.maximum(total, t) if use_max else total + t)
    top = float(total.max())
    if top <= 0 or not math.isfinite(top):
        return (torch.zeros_like(total), -math.inf) if top <= 0 else (total, ref)
    exponent = math.frexp(top)[1]
    return total * pow2(-exponent), ref + exponent


def meeting_block(module):
    """The largest dense block whose backward term is needed (not out of the inputs).

    Its forward and backward terms share one pass.
    """
    dense = [k for k, b in enumerate(module.blocks)
             if b.kind == "dense" and b.source not in ("bias", 0)]
    if not dense:
        return None
    return max(dense, key=lambda k: getattr(module, module.blocks[k].param).numel())


@torch.no_grad()
def alpha_beta(module, p=2, fused=False, dtype=None, meeting=None):
    """Normalised alpha and beta per level of a compiled network.

    Returns
    -------
    alpha, beta : list of (torch.Tensor, float)
        For level ``j``, ``(a_j, L_j)`` with ``alpha = a_j * 2 ** L_j`` and
        ``1/2 <= max(a_j) < 1``, unless all of level ``j``'s alpha is 0 (then
        ``L_j = -inf``). Tensors have the module's dtype and device. The beta
        of the input level is not needed by any gamma and is left None.

    Parameters
    ----------
    fused : bool or None, default False
        Take the products of large dense blocks with the compiled kernels of
        :func:`dagnet.kernels.power_products` (None: for blocks of at least
        ``FUSED_MIN_ELEMENTS`` entries), and every block's products unscaled
        first: faster, and a block whose unscaled products over- or underflow
        (or hold a 0) is recomputed scaled. False: every block is scaled by a
        power of two first, so nothing over- or underflows on the way. Either
        way the combined alpha or beta of a level can still overflow the
        module's dtype; the caller checks (Path-SGD then uses float64).
    dtype : torch.dtype, optional
        Compute in this dtype instead of the module's (e.g. float64 when
        ``|w|^p`` overflows float32).
    meeting : callable, optional
        ``meeting(index, (a_s, L_s), (b_t, L_t))`` is asked for the meeting
        block's two terms (see Notes) before they are computed: it returns
        ``((f, e_f), (b, e_b))`` with ``|W|^p @ a_s = f 2^{e_f}`` and
        ``|W|^p.T @ b_t = b 2^{e_b}`` in the dtype of ``a_s``, or None to let
        them be computed here. Path-SGD uses it to update that block in the
        same pass (:mod:`dagnet.native`).

    Notes
    -----
    Every weight block is read once, except that blocks out of levels at or
    above the largest block's target are read twice. The largest dense
    block (i -> j) not out of the inputs, the meeting block, gives both its
    terms in one pass: all betas down to level j are computed first, then
    all alphas, then the remaining betas. So alpha_i and beta_j, which set
    that block's own gamma, are final when its terms are needed.
    """
    p = check_p(p)
    use_max = p == math.inf
    blocks, anchor = module.blocks, module.anchor
    if dtype is not None:
        anchor = anchor.to(dtype)
        fused = False
    meet = meeting_block(module)
    top = module.n_levels if meet is None else blocks[meet].target
    fwd_terms = {k: [] for k in range(module.n_levels)}
    bwd_terms = {k: [] for k in range(module.n_levels)}
    beta = [None] * module.n_levels

    def finish_beta(k):
        mask = torch.as_tensor(module.output_mask[k], dtype=anchor.dtype,
                               device=anchor.device)
        terms = [(mask, 0.0)] if module.output_mask[k].any() else []
        beta[k] = _normalised(terms + bwd_terms[k], mask, use_max)

    def add_bwd(index):
        block = blocks[index]
        vec, log = beta[block.target]
        _, (b, e) = _sweep(module, block, p, bwd=vec, fused=fused, dtype=dtype)
        bwd_terms[block.source].append((b, log + e))

    for k in reversed(range(max(top, 1), module.n_levels)):
        for index, block in enumerate(blocks):
            if block.source == k:
                add_bwd(index)
        finish_beta(k)
    alpha = [(anchor.new_ones(module.level_sizes[0]), 0.0)]
    for k in range(1, module.n_levels):
        for index, block in enumerate(blocks):
            if block.target != k:
                continue
            vec, log = (None, 0.0) if block.source == "bias" else alpha[block.source]
            if index == meet:
                terms = meeting and meeting(index, alpha[block.source], beta[k])
                if not terms:
                    terms = _sweep(module, block, p, fwd=vec, bwd=beta[k][0], fused=fused,
                                   dtype=dtype)
                (f, e), (b, eb) = terms
                bwd_terms[block.source].append((b, beta[k][1] + eb))
            else:
                (f, e), _ = _sweep(module, block, p, fwd=vec, fused=fused, dtype=dtype)
            fwd_terms[k].append((f, log + e))
        alpha.append(_normalised(fwd_terms[k], anchor.new_zeros(module.level_sizes[k]),
                                 use_max))
    for k in reversed(range(1, top)):
        for index, block in enumerate(blocks):
            if block.source == k and index != meet:
                add_bwd(index)
        finish_beta(k)
    return alpha, beta


def _compiled64(net):
    if isinstance(net, CompiledDagNet):
        return net
    return as_network(net).compile(dtype=torch.float64)


def path_norm(net, p=2, *, method="dp", limit=None):
    """The l_p path norm ``phi_p(w) = ||pi(w)||_p`` of a network.

    Parameters
    ----------
    net : DagNet or CompiledDagNet
        A DagNet is evaluated in float64; a compiled module in its own dtype.
    p : float >= 1 or math.inf
    method : {"dp", "enumerate"}
        ``"enumerate"`` lists every path (see :func:`dagnet.path_vector`).
    limit : int, optional
        For ``"enumerate"``: refuse networks with more paths than this
        (default :data:`dagnet.enumeration.DEFAULT_LIMIT`).

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([2, 2, 1], bias=False, groups=False)
    >>> net = net.with_weights({e: 1.0 for e in net.edges})
    >>> path_norm(net, p=2)  # four paths of product 1
    2.0
    """
    p = check_p(p)
    if method == "enumerate":
        from dagnet.enumeration import DEFAULT_LIMIT, enumerated_path_norm

        return enumerated_path_norm(net, p, limit=DEFAULT_LIMIT if limit is None else limit)
    if method != "dp":
        raise ValueError(f"method must be 'dp' or 'enumerate'; got {method!r}")
    module = _compiled64(net)
    alpha, _ = alpha_beta(module, p)
    terms = []
    for j, (a, log) in enumerate(alpha):
        mask = module.output_mask[j]
        if mask.any() and log > -math.inf:
            a = a.double().cpu().numpy()[mask]
            top = a.max() if p == math.inf else a.sum()
            if top > 0:
                terms.append((float(top), log))
    if not terms:
        return 0.0
    ref = max(log for _, log in terms)
    combine = max if p == math.inf else sum
    total = combine(top * pow2(log - ref) for top, log in terms)
    if p == math.inf:
        return total * pow2(ref)
    if abs(ref) < 1000:
        return (total * pow2(ref)) ** (1 / p)
    return pow2((math.log2(total) + ref) / p)


def block_gamma_factors(module, alpha, beta, p):
    """Per block, ``(ra, rb, exponent)`` with gamma = 2 ** exponent * rb ra^T.

    ``ra`` (source side) and ``rb`` (target side) are ``a^(2/p)`` and
    ``b^(2/p)``; for ``p = inf`` the exponent is 2. The bias source has
    ``ra = [1]``.
    """
    k = gamma_power(p)
    out = []
    for block in module.blocks:
        b = beta[block.target][0]
        a = b.new_ones(1) if block.source == "bias" else alpha[block.source][0]
        out.append((a.pow(k), b.pow(k), gamma_exponent(alpha, beta, block, k)))
    return out


def gamma_power(p):
    """``k`` of ``gamma = (alpha beta)^k``: ``2 / p``, and 2 for ``p = inf``."""
    return 2.0 if p == math.inf else 2.0 / p


def gamma_exponent(alpha, beta, block, k):
    """``k (L_s + L_t)``: gamma of ``block`` is ``2^{k (L_s + L_t)}`` times
    ``b_t^k a_s^k`` for the normalised vectors (the bias source: ``a = [1]``,
    ``L = 0``)."""
    la = 0.0 if block.source == "bias" else alpha[block.source][1]
    return k * (la + beta[block.target][1])


def path_scaling(net, p=2, *, method="dp", limit=None):
    """The Path-SGD scaling ``gamma_p(w, e)`` of every edge.

    Returns
    -------
    dict
        ``{(u, v): gamma}``: a float for an edge between two single units, an
        array of the weight's shape ``(size_v, size_u)`` otherwise.

    Examples
    --------
    >>> import dagnet
    >>> net = dagnet.layered([1, 1, 1], bias=False, groups=False)
    >>> net = net.with_weights({("input", "hidden1"): 3.0, ("hidden1", "output"): 2.0})
    >>> path_scaling(net, p=2)
    {('input', 'hidden1'): 4.0, ('hidden1', 'output'): 9.0}
    """
    p = check_p(p)
    if method == "enumerate":
        from dagnet.enumeration import DEFAULT_LIMIT, path_scaling_enumerated

        return path_scaling_enumerated(net, p,
                                       limit=DEFAULT_LIMIT if limit is None else limit)
    if method != "dp":
        raise ValueError(f"method must be 'dp' or 'enumerate'; got {method!r}")
    module = _compiled64(net)
    alpha, beta = alpha_beta(module, p)
    factors = block_gamma_factors(module, alpha, beta, p)
    result = {}
    for u, v, index, _ in module._slots:
        ra, rb, log = (np.asarray(f.cpu()) if torch.is_tensor(f) else f
                       for f in factors[index])
        rows = slice(*module.place[v][1:])
        cols = slice(0, 1) if module.blocks[index].source == "bias" \
            else slice(*module.place[u][1:])
        if abs(log) < 1000:
            gamma = np.outer(rb[rows], ra[cols]) * pow2(log)
        else:  # the scale alone over- or underflows: combine in log space
            with np.errstate(divide="ignore"):
                gamma = np.exp2(np.log2(rb[rows])[:, None] + np.log2(ra[cols])[None, :]
                                + log)
        result[u, v] = float(gamma[0, 0]) if gamma.shape == (1, 1) else gamma
    return {e: result[e] for e in module._structure.edges}

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

from dagnet.network import DagNet

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


def _power(w, p):
    return w.abs() if p in (1.0, math.inf) else w.abs().pow(p)


def _normalised(terms, like, use_max):
    """Combine ``[(vector, exponent)]`` into one normalised ``(vector, exponent)``."""
    terms = [(t, s) for t, s in terms if s > -math.inf]
    if not terms:
        return torch.zeros_like(like), -math.inf
    ref = max(s for _, s in terms)
    total = None
    for t, s in terms:
        t = t * pow2(s - ref)
        total = t if total is None else (torch.maximum(total, t) if use_max else total + t)
    top = float(total.max())
    if top <= 0 or not math.isfinite(top):
        return (torch.zeros_like(total), -math.inf) if top <= 0 else (total, ref)
    exponent = math.frexp(top)[1]
    return total * pow2(-exponent), ref + exponent


def _times(block, module, s, vec, transpose, use_max):
    """``S @ vec`` (or ``S.T @ vec``) for block values ``s`` = |w|^p."""
    if block.source == "bias":
        if transpose:
            raise AssertionError("the bias unit has no beta")
        return s if block.kind == "dense" else module.block_matrix(block, s)
    if block.kind == "dense":
        m = s
    elif not use_max and block.kind == "sparse":
        rows, cols = getattr(module, block.rows), getattr(module, block.cols)
        if transpose:
            n = module.level_sizes[block.source]
            return vec.new_zeros(n).index_add(0, cols, s * vec[rows])
        n = module.level_sizes[block.target]
        return vec.new_zeros(n).index_add(0, rows, s * vec[cols])
    else:
        m = module.block_matrix(block, s)
    if transpose:
        m = m.t()
    if use_max:
        return (m * vec[None, :]).amax(dim=1)
    return m @ vec


@torch.no_grad()
def alpha_beta(module, p=2):
    """Normalised alpha and beta per level of a compiled network.

    Returns
    -------
    alpha, beta : list of (torch.Tensor, float)
        For level ``j``, ``(a_j, L_j)`` with ``alpha = a_j * 2 ** L_j`` and
        ``1/2 <= max(a_j) < 1``, unless all of level ``j``'s alpha is 0 (then
        ``L_j = -inf``). Tensors have the module's dtype and device.
    """
    p = check_p(p)
    use_max = p == math.inf
    powered = [_power(getattr(module, b.param), p) for b in module.blocks]
    first = module.anchor
    alpha = [(first.new_ones(module.level_sizes[0]), 0.0)]
    for j in range(1, module.n_levels):
        terms = []
        for block, s in zip(module.blocks, powered):
            if block.target == j:
                src_vec, src_log = (None, 0.0) if block.source == "bias" \
                    else alpha[block.source]
                terms.append((_times(block, module, s, src_vec, False, use_max), src_log))
        alpha.append(_normalised(terms, first.new_zeros(module.level_sizes[j]), use_max))
    beta = [None] * module.n_levels
    for j in reversed(range(module.n_levels)):
        mask = torch.as_tensor(module.output_mask[j], dtype=first.dtype,
                               device=first.device)
        terms = [(mask, 0.0)] if module.output_mask[j].any() else []
        for block, s in zip(module.blocks, powered):
            if block.source == j:
                vec, log = beta[block.target]
                terms.append((_times(block, module, s, vec, True, use_max), log))
        beta[j] = _normalised(terms, mask, use_max)
    return alpha, beta


def _compiled64(net):
    if isinstance(net, DagNet):
        return net.compile(dtype=torch.float64)
    return net


def path_norm(net, p=2, *, method="dp"):
    """The l_p path norm ``phi_p(w) = ||pi(w)||_p`` of a network.

    Parameters
    ----------
    net : DagNet or CompiledDagNet
        A DagNet is evaluated in float64; a compiled module in its own dtype.
    p : float >= 1 or math.inf
    method : {"dp", "enumerate"}
        ``"enumerate"`` lists every path (see :func:`dagnet.path_vector`).

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
        from dagnet.paths import path_vector

        pi = path_vector(net)
        return float(np.abs(pi).max(initial=0.0) if p == math.inf
                     else np.linalg.norm(pi, ord=p))
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
    k = 2.0 if p == math.inf else 2.0 / p
    out = []
    for block in module.blocks:
        b, lb = beta[block.target]
        if block.source == "bias":
            a, la = b.new_ones(1), 0.0
        else:
            a, la = alpha[block.source]
        out.append((a.pow(k), b.pow(k), k * (la + lb)))
    return out


def path_scaling(net, p=2, *, method="dp"):
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
        from dagnet.paths import path_scaling_enumerated

        return path_scaling_enumerated(net, p)
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

r"""Path-SGD: steepest descent with respect to the l_p path regulariser.

Each step updates every edge ``e = (u -> v)`` by

.. math::

    w_e \leftarrow w_e - \eta \, \frac{\partial L / \partial w_e}{\gamma_p(w, e)},
    \qquad \gamma_p(w, e) = \big(\alpha(u)\,\beta(v)\big)^{2/p},

with alpha and beta recomputed from the current weights at every step by the
two passes of :mod:`dagnet.pathnorm` (bias edges and skip connections
included). With momentum ``mu`` the scaled gradient feeds a buffer,
``b <- mu b + grad / gamma`` and ``w <- w - eta b``.

alpha and beta are computed from the weights as they are when the step is
taken (nothing derived from the weights is kept between steps, so edits of
any kind, ``.data`` included, are seen). Large dense blocks go through the
fused kernels of :mod:`dagnet.kernels` in the module's dtype; a block whose
products over- or underflow there is recomputed with its weights scaled by a
power of two (in float64 if that is not enough), and alpha and beta are
recomputed in float64 if they still overflow. With momentum the buffer holds
``grad / gamma`` without ``lr``, so it can overflow float32 where the step
would not. In a float32 network on CPU the largest hidden-to-hidden block is
stepped in the very pass that takes its share of alpha and beta
(:mod:`dagnet.native`), so it is read once a step, as in SGD.

In float32, an alpha or beta more than about 2^149 below the largest of its
level (a range no float32 vector holds) is stored as 0, and the edges whose
gamma it sets get no step; between 2^126 and 2^149 below it keeps fewer bits,
and so do the alphas and betas computed from it. Networks with such ranges
need float64.

Edges with ``gamma = 0`` lie only on paths through another zero weight; for
positively homogeneous activations their gradient is zero too and their step
is set to exactly 0, never 0 / 0.

The update is invariant under rescaling (Theorem 4.1 of Neyshabur et al.,
2015) for positively homogeneous activations; with ``tanh`` or ``sigmoid``
units it is still defined but loses that property.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from torch.optim import Optimizer

from dagnet import native
from dagnet.compiled import CompiledDagNet
from dagnet.kernels import FUSED_MIN_ELEMENTS, dense_update_, scratch_size
from dagnet.native import meeting_step_
from dagnet.pathnorm import (alpha_beta, check_p, gamma_exponent, gamma_power,
                             meeting_block, pow2, split_exponent, workspace)

__all__ = ["PathSGD", "path_sgd_step_"]



def _real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _inverse(x):
    """``1 / x`` with 0 where ``x`` is 0 (gamma = 0: the step there is 0)."""
    inv = torch.where(x > 0, x.reciprocal(), torch.zeros_like(x))
    return inv.clamp_(max=torch.finfo(x.dtype).max)


def _finite(vectors):
    return bool(torch.isfinite(torch.cat(vectors)).all())


def _alpha_beta(module, p, fused, meeting=None):
    """alpha and beta for a step, in float64 where the module's dtype
    overflows. (Blocks whose unscaled products over- or underflow are
    recomputed scaled one by one inside :func:`alpha_beta`.)"""
    alpha, beta = alpha_beta(module, p, fused=fused, meeting=meeting)
    if not _finite([v for v, _ in alpha] + [x[0] for x in beta if x]):
        alpha, beta = alpha_beta(module, p, dtype=torch.float64, meeting=meeting)
    return alpha, beta


class _MeetingStep:
    """Steps the meeting block of :func:`dagnet.pathnorm.alpha_beta` while
    its alpha / beta terms are taken, in one pass (:mod:`dagnet.native`).

    Its gamma needs only alpha of its source level and beta of its target
    level, both final when ``alpha_beta`` asks for the block's terms. The
    first call decides: where the fused kernel applies (no momentum, a
    gradient, those two vectors finite, the step representable in float32,
    a float32 CPU block), it updates the block and keeps its terms, which a
    later call (the float64 recomputation of ``_alpha_beta``) is given back,
    since the block has changed since; otherwise every call answers None and
    the block is stepped as any other.
    """

    def __init__(self, module, lr, p):
        self.module, self.lr, self.p = module, lr, p
        self.index = None
        self.terms = None

    def __call__(self, index, alpha_s, beta_t):
        if self.terms is None:
            self.terms = self._step(index, alpha_s, beta_t) or False
            self.index = index if self.terms else None
        if not self.terms:
            return None
        dtype = alpha_s[0].dtype
        return tuple((v.to(dtype), e) for v, e in self.terms)

    def _step(self, index, alpha_s, beta_t):
        block = self.module.blocks[index]
        w = getattr(self.module, block.param)
        if w.grad is None or not _finite([alpha_s[0], beta_t[0]]):
            return None
        inverses = _InverseFactors({block.source: alpha_s}, {block.target: beta_t}, self.p)
        log = inverses.log(block)
        if log == -math.inf:  # gamma = 0 on the whole block: nothing to step
            return None
        value = -self.lr * pow2(min(-log, 1023))
        (inv_ra, max_a), (inv_rb, max_b) = (inverses.get("alpha", block.source, w.dtype),
                                            inverses.get("beta", block.target, w.dtype))
        if not _representable(value, max_a, max_b, w.dtype):
            return None
        products = meeting_step_(w, w.grad, alpha_s[0], beta_t[0], inv_rb, inv_ra, value,
                                 self.p)
        if products is None:
            return None
        f, b = products
        return split_exponent(f, w.dtype), split_exponent(b, w.dtype)


class _InverseFactors:
    """``1 / a^k`` of the alpha or beta vectors of a level, built once a step.

    gamma of a block ``(s -> t)`` is ``2^{k (L_s + L_t)} rb ra^T`` with
    ``ra = a_s^k``, ``rb = b_t^k`` (normalised vectors, ``k = 2/p``; 2 for
    ``p = inf``); the bias source has ``a = [1]``, ``L = 0``. Blocks that share
    a level share its inverse.
    """

    def __init__(self, alpha, beta, p):
        self.k = gamma_power(p)
        self.levels = {"alpha": alpha, "beta": beta}
        self.memo = {}

    def log(self, block):
        """``log2`` of the scale of gamma on ``block``."""
        return gamma_exponent(self.levels["alpha"], self.levels["beta"], block, self.k)

    def get(self, side, level, dtype):
        """``(1 / x^k in dtype, its largest entry)``; entries with ``x = 0`` are 0."""
        key = (side, level)
        if key not in self.memo:
            if level == "bias":
                x = self.levels["alpha"][0][0].new_ones(1, dtype=torch.float64)
            else:
                x = self.levels[side][level][0].double()
            inv = _inverse(x if self.k == 1.0 else x.pow(self.k))
            self.memo[key] = {torch.float64: inv, "max": float(inv.max())}
        entry = self.memo[key]
        if dtype not in entry:
            entry[dtype] = entry[torch.float64].to(dtype)
        return entry[dtype], entry["max"]


def _representable(value, max_a, max_b, dtype):
    """Whether ``value * outer(inv_rb, inv_ra)`` can be formed in ``dtype``."""
    info = torch.finfo(dtype)
    return info.tiny < abs(value) and abs(value) * max_a * max_b < info.max and \
        max_a * max_b < info.max and \
        max_a < info.max and max_b < info.max


def _scaled_gradient(module, block, grad, inv_ra, inv_rb):
    """``grad / gamma`` up to the block's scale, from the inverse factors."""
    if block.kind == "dense" and block.source != "bias":
        return grad * torch.outer(inv_rb, inv_ra)
    if block.kind == "dense":  # the bias vector
        return grad * inv_rb
    rows = getattr(module, block.rows)
    if block.source == "bias":
        return grad * inv_rb[rows]
    return grad * (inv_rb[rows] * inv_ra[getattr(module, block.cols)])


def _meeting_applies(module, fused, momentum):
    """Whether to try the one-pass kernel on the meeting block."""
    index = meeting_block(module)
    if fused is False or momentum or index is None:
        return False
    w = getattr(module, module.blocks[index].param)
    return w.device.type == "cpu" and w.dtype == torch.float32 and \
        (fused or w.numel() >= FUSED_MIN_ELEMENTS)


@torch.no_grad()
def path_sgd_step_(module, lr, p=2, momentum=0.0, buffers=None, fused=None):
    """One Path-SGD update of a compiled network's weights, in place.

    Parameters
    ----------
    module : CompiledDagNet
        Its parameters' ``.grad`` hold dL/dw; parameters without a gradient
        are left alone.
    lr : float
    p : float >= 1 or math.inf
    momentum : float in [0, 1)
    buffers : list, optional
        One momentum buffer (or None) per block, updated in place.
    fused : bool or None
        Use the compiled kernels of :mod:`dagnet.kernels` for the alpha / beta
        products and the update of dense blocks, and :mod:`dagnet.native` for
        the meeting block (None: for blocks of at least ``FUSED_MIN_ELEMENTS``
        entries; False: never).

    Returns
    -------
    list
        The momentum buffers (all None when ``momentum == 0``).
    """
    p = check_p(p)
    meeting = _MeetingStep(module, lr, p) if _meeting_applies(module, fused, momentum) \
        else None
    inverses = _InverseFactors(*_alpha_beta(module, p, fused, meeting), p)
    buffers = [None] * len(module.blocks) if buffers is None else buffers
    for i, block in enumerate(module.blocks):
        w = getattr(module, block.param)
        log = inverses.log(block)
        if meeting is not None and i == meeting.index:
            continue  # stepped already, in the same pass as its alpha / beta terms
        if w.grad is None or log == -math.inf:  # gamma = 0 everywhere: so is the gradient
            continue
        value = -lr * pow2(min(-log, 1023))
        (inv_ra, max_a), (inv_rb, max_b) = (inverses.get("alpha", block.source, w.dtype),
                                            inverses.get("beta", block.target, w.dtype))
        if not _representable(value, max_a, max_b, w.dtype):
            # 1 / gamma spans more than w's dtype can hold: scale in float64.
            step = _scaled_gradient(module, block, w.grad.double(),
                                    inverses.get("alpha", block.source, torch.float64)[0],
                                    inverses.get("beta", block.target, torch.float64)[0])
            w.add_((step * value).to(w.dtype))
            continue
        if block.kind == "dense" and block.source != "bias" and momentum == 0:
            dense_update_(w, w.grad, inv_rb, inv_ra, value, fused=fused,
                          scratch=workspace(module, scratch_size(w)))
            continue
        step = _scaled_gradient(module, block, w.grad, inv_ra, inv_rb)
        if not momentum:  # value holds lr: the step never exceeds what it adds to w
            w.add_(step.mul_(value))
            continue
        step.mul_(-value / lr)  # the buffer holds grad / gamma, lr apart, as in SGD
        if buffers[i] is None:
            buffers[i] = step
        else:
            buffers[i].mul_(momentum).add_(step)
        w.add_(buffers[i], alpha=-lr)
    return buffers


class PathSGD(Optimizer):
    r"""Path-SGD (Neyshabur, Salakhutdinov and Srebro, 2015) for any DAG network.

    Parameters
    ----------
    module : CompiledDagNet
        The network to optimise; all its parameters form one group.
    lr : float
        Step size ``eta``.
    p : float, default 2
        Which path regulariser ``phi_p`` defines the geometry (``p >= 1``).
    momentum : float, default 0
        Heavy-ball momentum on the path-scaled gradient.
    fused : bool or None, default None
        Take the alpha / beta products of dense blocks and update them with
        ``torch.compile``-fused kernels (None: for blocks of at least
        ``dagnet.kernels.FUSED_MIN_ELEMENTS`` entries; True: all; False:
        none). See :mod:`dagnet.kernels`. Where it applies (float32 on CPU,
        no momentum), the largest hidden-to-hidden block is stepped in the
        pass that takes its products instead (:mod:`dagnet.native`).

    Notes
    -----
    gamma comes from the weights as they are at each step; the optimiser
    keeps nothing derived from them (only momentum buffers, in its state).

    Examples
    --------
    >>> import torch, dagnet
    >>> model = dagnet.layered([4, 8, 3], seed=0).compile()
    >>> opt = dagnet.PathSGD(model, lr=0.1)
    >>> loss = model(torch.randn(5, 4)).square().mean()
    >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, module, lr, p=2, momentum=0.0, fused=None):
        if not isinstance(module, CompiledDagNet):
            raise TypeError(
                f"PathSGD needs a CompiledDagNet (net.compile()); got "
                f"{type(module).__name__}")
        if not _real(lr) or not 0 < lr < math.inf:
            raise ValueError(f"lr must be positive and finite; got {lr!r}")
        if not _real(momentum) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        check_p(p)
        if not module.homogeneous:
            warnings.warn("the network has activations that are not positively "
                          "homogeneous; Path-SGD then loses its rescaling invariance",
                          stacklevel=2)
        if _meeting_applies(module, fused, momentum):
            native.available(stacklevel=2)  # build now: a failure warns at the caller
        params = [getattr(module, b.param) for b in module.blocks]
        super().__init__(params, dict(lr=lr, p=p, momentum=momentum))
        self.module = module
        self.fused = fused

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("PathSGD owns exactly one group: the module's parameters")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure=None):
        """Take one step; ``closure`` re-evaluates the loss as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        params = group["params"]
        buffers = [self.state[w].get("momentum_buffer") for w in params]
        buffers = path_sgd_step_(self.module, group["lr"], group["p"],
                                 group["momentum"], buffers, self.fused)
        for w, buf in zip(params, buffers):
            if buf is not None:
                self.state[w]["momentum_buffer"] = buf
        return loss

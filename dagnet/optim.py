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
fused kernels of :mod:`dagnet.kernels` in the module's dtype; where ``|w|^p``
overflows or underflows there (an alpha or beta that is not finite or is
0), the step recomputes them with every block scaled by a power of two, and
in float64 if that still overflows.

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

from dagnet.compiled import CompiledDagNet
from dagnet.kernels import dense_update_, scratch_size
from dagnet.pathnorm import (alpha_beta, block_gamma_factors, check_p, finite, pow2,
                             workspace)

__all__ = ["PathSGD", "path_sgd_step_"]



def _real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _inverse(x):
    """``1 / x`` with 0 where ``x`` is 0 (gamma = 0: the step there is 0)."""
    inv = torch.where(x > 0, x.reciprocal(), torch.zeros_like(x))
    return inv.clamp_(max=torch.finfo(x.dtype).max)


def _trusted(alpha, beta):
    """Whether unscaled alpha and beta can be used as they are: all finite and
    nonzero (a 0 may be an underflow, and is then recomputed with scaling)."""
    vectors = [v for v, _ in alpha] + [x[0] for x in beta if x]
    return all(bool(torch.isfinite(v).all() and (v != 0).all()) for v in vectors)


def _representable(value, inv_ra, inv_rb, dtype):
    """Whether ``value * outer(inv_rb, inv_ra)`` can be formed in ``dtype``."""
    info = torch.finfo(dtype)
    largest = abs(value) * float(inv_ra.max()) * float(inv_rb.max())
    return info.tiny < abs(value) and largest < info.max and \
        float(inv_ra.max()) < info.max and float(inv_rb.max()) < info.max


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
        products and the update of dense blocks (None: for blocks of at least
        ``FUSED_MIN_ELEMENTS`` entries; False: never).

    Returns
    -------
    list
        The momentum buffers (all None when ``momentum == 0``).
    """
    p = check_p(p)
    alpha, beta = alpha_beta(module, p, fused=fused)
    if fused is not False and not _trusted(alpha, beta):
        alpha, beta = alpha_beta(module, p)  # every block scaled first
    if not finite(alpha, beta):  # |w|^p overflowed the module's dtype
        alpha, beta = alpha_beta(module, p, dtype=torch.float64)
    factors = block_gamma_factors(module, alpha, beta, p)
    buffers = [None] * len(module.blocks) if buffers is None else buffers
    for i, (block, (ra, rb, log)) in enumerate(zip(module.blocks, factors)):
        w = getattr(module, block.param)
        if w.grad is None or log == -math.inf:  # gamma = 0 everywhere: so is the gradient
            continue
        inv_ra, inv_rb = _inverse(ra.double()), _inverse(rb.double())
        value = -lr * pow2(min(-log, 1023))
        if not _representable(value, inv_ra, inv_rb, w.dtype):
            # 1 / gamma spans more than w's dtype can hold: scale in float64.
            step = _scaled_gradient(module, block, w.grad.double(), inv_ra, inv_rb)
            w.add_((step * value).to(w.dtype))
            continue
        inv_ra, inv_rb = inv_ra.to(w.dtype), inv_rb.to(w.dtype)
        if block.kind == "dense" and block.source != "bias" and momentum == 0:
            dense_update_(w, w.grad, inv_rb, inv_ra, value, fused=fused,
                          scratch=workspace(module, scratch_size(w)))
            continue
        step = _scaled_gradient(module, block, w.grad, inv_ra, inv_rb).mul_(-value / lr)
        if momentum:
            if buffers[i] is None:
                buffers[i] = step
            else:
                buffers[i].mul_(momentum).add_(step)
            step = buffers[i]
        w.add_(step, alpha=-lr)
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
        none). See :mod:`dagnet.kernels`.

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

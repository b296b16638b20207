r"""Path-SGD: steepest descent with respect to the l_p path regulariser.

Each step updates every edge ``e = (u -> v)`` by

.. math::

    w_e \leftarrow w_e - \eta \, \frac{\partial L / \partial w_e}{\gamma_p(w, e)},
    \qquad \gamma_p(w, e) = \big(\alpha(u)\,\beta(v)\big)^{2/p},

with alpha and beta recomputed from the current weights at every step by the
two passes of :mod:`dagnet.pathnorm` (bias edges and skip connections
included). With momentum ``mu`` the scaled gradient feeds a buffer,
``b <- mu b + grad / gamma`` and ``w <- w - eta b``.

Edges with ``gamma = 0`` lie only on paths through another zero weight; for
positively homogeneous activations their gradient is zero too and their step
is set to exactly 0, never 0 / 0.

The update is invariant under rescaling (Theorem 4.1 of Neyshabur et al.,
2015) for positively homogeneous activations; with ``tanh`` or ``sigmoid``
units it is still defined but loses that property.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.optim import Optimizer

from dagnet.compiled import CompiledDagNet
from dagnet.pathnorm import alpha_beta, block_gamma_factors, check_p, pow2

__all__ = ["PathSGD", "path_sgd_step_"]



def _positive_or_inf(x):
    return torch.where(x > 0, x, torch.full_like(x, math.inf))


def _scaled_gradient(module, block, grad, ra, rb):
    """``grad / (rb ra^T)`` for one block, with 0 wherever gamma is 0."""
    ra, rb = _positive_or_inf(ra), _positive_or_inf(rb)
    if block.kind == "dense":
        if block.source == "bias":
            return grad / rb
        return grad / torch.outer(rb, ra)
    rows = getattr(module, block.rows)
    if block.source == "bias":
        return grad / rb[rows]
    return grad / (rb[rows] * ra[getattr(module, block.cols)])


@torch.no_grad()
def path_sgd_step_(module, lr, p=2, momentum=0.0, buffers=None):
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

    Returns
    -------
    list
        The momentum buffers (all None when ``momentum == 0``).
    """
    p = check_p(p)
    alpha, beta = alpha_beta(module, p)
    factors = block_gamma_factors(module, alpha, beta, p)
    buffers = [None] * len(module.blocks) if buffers is None else buffers
    for i, (block, (ra, rb, log)) in enumerate(zip(module.blocks, factors)):
        w = getattr(module, block.param)
        if w.grad is None:
            continue
        if log == -math.inf:  # gamma is 0 everywhere in the block: so is the gradient
            step = torch.zeros_like(w)
        elif block.kind == "dense" and block.source != "bias" and momentum == 0:
            scale = pow2(min(-log, 1023))
            w.addcdiv_(w.grad, torch.outer(_positive_or_inf(rb), _positive_or_inf(ra)),
                       value=-lr * scale)
            continue
        else:
            step = _scaled_gradient(module, block, w.grad, ra, rb)
            step.mul_(pow2(min(-log, 1023)))
        if momentum:
            if buffers[i] is None:
                buffers[i] = step.clone()
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

    Examples
    --------
    >>> import torch, dagnet
    >>> model = dagnet.layered([4, 8, 3], seed=0).compile()
    >>> opt = dagnet.PathSGD(model, lr=0.1)
    >>> loss = model(torch.randn(5, 4)).square().mean()
    >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, module, lr, p=2, momentum=0.0):
        if not isinstance(module, CompiledDagNet):
            raise TypeError(
                f"PathSGD needs a CompiledDagNet (net.compile()); got "
                f"{type(module).__name__}")
        if not lr > 0:
            raise ValueError(f"lr must be positive; got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")
        check_p(p)
        if not module.homogeneous:
            warnings.warn("the network has activations that are not positively "
                          "homogeneous; Path-SGD then loses its rescaling invariance",
                          stacklevel=2)
        params = [getattr(module, b.param) for b in module.blocks]
        super().__init__(params, dict(lr=lr, p=p, momentum=momentum))
        self.module = module

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
                                 group["momentum"], buffers)
        for w, buf in zip(params, buffers):
            if buf is not None:
                self.state[w]["momentum_buffer"] = buf
        return loss

"""The dense-block Path-SGD update as one fused kernel, with an eager fallback.

For a dense block with gradient ``G`` and Path-SGD factors ``1 / rb`` and
``1 / ra`` (gamma = rb ra^T), the update is

    W <- W + value * G * (inv_rb inv_ra^T),    then    P <- |W|^p

where ``P`` is the copy of ``|W|^p`` the next step's alpha / beta passes read.
Eagerly that takes several passes over the weights; ``torch.compile`` fuses
it into one, which is what keeps a Path-SGD step within a few percent of an
SGD step on CPU. Compilation needs a C++ compiler on CPU (Triton on GPU) and
costs a few seconds on first use per shape; if it fails, dagnet warns once
and falls back to the eager, chunked version, which gives the same numbers
up to rounding.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["FUSED_MIN_ELEMENTS", "dense_update_", "power_into", "row_reduce",
           "scratch_size"]

FUSED_MIN_ELEMENTS = 1 << 20
"""Blocks at least this large use the compiled kernel when ``fused`` is None."""

CHUNK_ELEMENTS = 1 << 20
"""The eager update works on chunks of rows of about this many entries."""

_compiled = {}
_failed = []


def power_into(out, w, p):
    """``out <- |w|^p``, in place, without a temporary for p in {1, 2, inf}."""
    if p == 2.0:
        return torch.mul(w, w, out=out)
    torch.abs(w, out=out)
    return out if p in (1.0, float("inf")) else out.pow_(p)


def _power(w, p):
    if p == 2.0:
        return w * w
    return w.abs() if p in (1.0, float("inf")) else w.abs().pow(p)


def row_reduce(s, p):
    """Row sums of ``s = |W|^p`` (row maxima for p = inf): ``|W|^p`` times ones."""
    return s.amax(dim=1) if p == float("inf") else s.sum(dim=1)


def _refresh(powered, w, p):
    if powered.dim() == 1:
        powered.copy_(row_reduce(_power(w, p), p))
    else:
        powered.copy_(_power(w, p))


def _update(w, grad, inv_rb, inv_ra, value, powered, p):
    w.add_(grad * (inv_rb[:, None] * inv_ra[None, :]) * value)
    if powered is not None:
        _refresh(powered, w, p)


def scratch_size(w):
    """Entries of scratch space the eager update of ``w`` needs."""
    return min(w.numel(), (CHUNK_ELEMENTS // max(1, w.shape[1]) + 1) * w.shape[1])


def _eager_update(w, grad, inv_rb, inv_ra, value, powered, p, scratch):
    step = max(1, CHUNK_ELEMENTS // max(1, w.shape[1]))
    for start in range(0, w.shape[0], step):
        rows = slice(start, start + step)
        chunk = w[rows]
        factor = scratch[:chunk.numel()].view_as(chunk)
        torch.outer(inv_rb[rows], inv_ra, out=factor)
        chunk.addcmul_(grad[rows], factor, value=value)
        if powered is not None:
            _refresh(powered[rows], chunk, p)


def dense_update_(w, grad, inv_rb, inv_ra, value, *, p=2.0, powered=None, fused=None,
                  scratch=None):
    """``w += value * grad * outer(inv_rb, inv_ra)``; then ``powered <- |w|^p``.

    A one-dimensional ``powered`` receives the row sums of ``|w|^p`` instead
    (row maxima for p = inf), all a block out of the input level needs.

    ``fused`` True / False forces the compiled / eager kernel; None picks the
    compiled one for blocks of at least :data:`FUSED_MIN_ELEMENTS` entries.
    ``scratch`` is a reusable buffer for the eager version.
    """
    if fused is None:
        fused = w.numel() >= FUSED_MIN_ELEMENTS
    if fused and not _failed:
        key = (p, powered is None)
        try:
            if key not in _compiled:
                _compiled[key] = torch.compile(_update, dynamic=False)
            value_t = torch.tensor(value, dtype=w.dtype, device=w.device)
            _compiled[key](w, grad, inv_rb, inv_ra, value_t, powered, p)
            return
        except Exception as err:  # noqa: BLE001 - any compiler failure means: go eager
            _failed.append(err)
            warnings.warn(f"torch.compile of the Path-SGD update failed ({err!r:.200}); "
                          f"using the eager kernel", stacklevel=3)
    if scratch is None or scratch.numel() < scratch_size(w):
        scratch = w.new_empty(scratch_size(w))
    _eager_update(w, grad, inv_rb, inv_ra, value, powered, p, scratch)

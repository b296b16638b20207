"""Fused kernels for Path-SGD on large dense blocks, with eager fallbacks.

Two kernels touch a dense block ``W`` of a compiled network in each step:

- :func:`power_products`, the block's share of the alpha / beta passes,
  ``f = |W|^p @ fwd`` and ``b = |W|^p.T @ bwd``, read from ``W`` itself:
  ``|W|^p`` is formed and consumed inside the kernel, never stored;
- :func:`dense_update_`, ``W <- W + value * G * (inv_rb inv_ra^T)``, the
  path-scaled step, in one pass like SGD's ``W <- W - lr * G``.

Eagerly each would take several passes over the weights; ``torch.compile``
fuses each into one (two for ``b``). On CPU the largest hidden-to-hidden block
of a float32 network goes through :mod:`dagnet.native` instead, which does
both in one pass. Compilation needs a C++ compiler
on CPU (Triton on GPU) and costs a few seconds on first use per shape; if it
fails, dagnet warns once and falls back to eager code, which gives the same
numbers up to rounding.
"""

from __future__ import annotations

import math
import warnings

import torch

__all__ = ["FUSED_MIN_ELEMENTS", "dense_update_", "power_into", "power_products",
           "scratch_size"]

FUSED_MIN_ELEMENTS = 1 << 20
"""Blocks at least this large use the compiled kernels when ``fused`` is None."""

CHUNK_ELEMENTS = 1 << 20
"""The eager update works on chunks of rows of about this many entries."""

_compiled = {}
_failed = []


def power_into(out, w, p):
    """``out <- |w|^p``, in place, without a temporary for p in {1, 2, inf}."""
    if p == 2.0:
        return torch.mul(w, w, out=out)
    torch.abs(w, out=out)
    return out if p in (1.0, math.inf) else out.pow_(p)


def _power(w, p):
    if p == 2.0:
        return w * w
    return w.abs() if p == 1.0 else w.abs().pow(p)


def _forward_products(w, fwd, p):
    return (_power(w, p) * fwd[None, :]).sum(dim=1)


def _backward_products(w, bwd, p, rows):
    # Summing over groups of ``rows`` rows first lets the compiler keep the
    # inner loop on contiguous columns; a plain sum(dim=0) is several times slower.
    s = _power(w, p) * bwd[:, None]
    return s.view(-1, rows, w.shape[1]).sum(dim=1).sum(dim=0)


def _row_group(n_rows):
    """A divisor of ``n_rows`` between 8 and 32 (16 preferred), or None."""
    for rows in (16, 8, 32, *range(9, 32)):
        if n_rows % rows == 0:
            return rows
    return None


def _run_compiled(name, fn, *args):
    """``(fn(*args),)`` through torch.compile, or None once compilation has failed."""
    if _failed:
        return None
    try:
        if name not in _compiled:
            _compiled[name] = torch.compile(fn, dynamic=False)
        return (_compiled[name](*args),)
    except Exception as err:  # noqa: BLE001 - any compiler failure means: go eager
        _failed.append(err)
        warnings.warn(f"torch.compile of a Path-SGD kernel failed ({err!r:.200}); "
                      f"using eager kernels", stacklevel=4)
        return None


def power_products(w, fwd=None, bwd=None, p=2.0):
    """``(|w|^p @ fwd, |w|^p.T @ bwd)`` of a large dense block, fused, or None.

    Either vector may be None (its product is then None). Returns None where
    the compiled kernels do not apply (p = inf, a row count with no divisor
    between 8 and 32) or could not be compiled; the caller then takes the
    eager route. Nothing guards against ``|w|^p`` overflowing or underflowing
    the block's dtype: the caller checks the results.
    """
    rows = _row_group(w.shape[0])
    if p == math.inf or rows is None:
        return None
    f = b = None
    if fwd is not None:
        f = _run_compiled(("fwd", p), _forward_products, w, fwd, p)
        if f is None:
            return None
        f = f[0]
    if bwd is not None:
        b = _run_compiled(("bwd", p, rows), _backward_products, w, bwd, p, rows)
        if b is None:
            return None
        b = b[0]
    return f, b


def _update(w, grad, inv_rb, inv_ra, value):
    w.add_(grad * (inv_rb[:, None] * inv_ra[None, :]) * value)


def scratch_size(w):
    """Entries of scratch space the eager update of ``w`` needs."""
    return min(w.numel(), (CHUNK_ELEMENTS // max(1, w.shape[1]) + 1) * w.shape[1])


def _eager_update(w, grad, inv_rb, inv_ra, value, scratch):
    step = max(1, CHUNK_ELEMENTS // max(1, w.shape[1]))
    for start in range(0, w.shape[0], step):
        rows = slice(start, start + step)
        chunk = w[rows]
        factor = scratch[:chunk.numel()].view_as(chunk)
        torch.outer(inv_rb[rows], inv_ra, out=factor)
        chunk.addcmul_(grad[rows], factor, value=value)


def dense_update_(w, grad, inv_rb, inv_ra, value, *, fused=None, scratch=None):
    """``w += value * grad * outer(inv_rb, inv_ra)``, in place.

    ``fused`` True / False forces the compiled / eager kernel; None picks the
    compiled one for blocks of at least :data:`FUSED_MIN_ELEMENTS` entries.
    ``scratch`` is a reusable buffer for the eager version.
    """
    if fused is None:
        fused = w.numel() >= FUSED_MIN_ELEMENTS
    if fused:
        value_t = torch.tensor(value, dtype=w.dtype, device=w.device)
        if _run_compiled("update", _update, w, grad, inv_rb, inv_ra, value_t) is not None:
            return
    if scratch is None or scratch.numel() < scratch_size(w):
        scratch = w.new_empty(scratch_size(w))
    _eager_update(w, grad, inv_rb, inv_ra, value, scratch)

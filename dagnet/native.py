r"""A compiled CPU kernel for Path-SGD's largest dense block.

In a Path-SGD step the block ``W`` out of level ``s`` into level ``t`` that
:func:`dagnet.pathnorm.alpha_beta` calls the meeting block is special: its own
``gamma = (alpha_s beta_t)^{2/p}`` does not depend on ``W``, while the rest of
the network's alpha and beta need the products ``|W|^p @ alpha_s`` and
``|W|^p.T @ beta_t``. :func:`meeting_step_` takes those products from the
weights and applies the path-scaled step to the same weights in one pass, so
that the block is read once per step, as in SGD, instead of three times.

The kernel (``meeting_step.c``, next to this file) is compiled with the
system C compiler (``$CC``, else ``cc``) with OpenMP on first use, into a
temporary directory, and runs on the OpenMP threads torch uses. It covers
float32 blocks on CPU and p in {1, 2, inf}; :func:`meeting_step_` returns
None for anything else, and if compiling or loading fails dagnet warns once
and Path-SGD takes its other route (:mod:`dagnet.kernels`), which gives the
same numbers up to float32 rounding.

Notes
-----
The kernel shares torch's thread pool only where torch was built with the
GNU OpenMP runtime (the pip wheels for Linux are); elsewhere it runs on a
second pool of its own, which is correct but can be slower.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess
import sysconfig
import tempfile
import warnings
from pathlib import Path

import torch

__all__ = ["SOURCE", "available", "meeting_step_"]

SOURCE = Path(__file__).with_name("meeting_step.c")

_FLAGS = (["-march=native", "-mprefer-vector-width=512"], ["-march=native"], [])
_BASE_FLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-shared", "-fPIC"]
_KINDS = {1.0: 1, 2.0: 2, math.inf: 0}

COMPILE_TIMEOUT = 120
"""Seconds the compiler may take before the kernel is given up."""

PARALLEL_MIN = 1 << 16
"""Blocks with fewer entries run on the calling thread only."""

SMALLEST_ENTRY = 2.0 ** -24
"""Nonzero entries of ``fwd`` and ``bwd`` must lie in [SMALLEST_ENTRY, 1]."""

_library = {}


def _compiler():
    """The compiler: ``$CC`` if set, else Python's own compiler, ``cc`` or ``gcc``."""
    chosen = os.environ.get("CC")
    if chosen:
        if not shutil.which(chosen.split()[0]):
            raise OSError(f"CC={chosen!r} is not an executable on PATH")
        return chosen.split()
    for name in (sysconfig.get_config_var("CC"), "cc", "gcc"):
        if name and shutil.which(name.split()[0]):
            return name.split()
    raise OSError("no C compiler found (set CC)")


def _build():
    """Compile and load the kernel; raise OSError with the reason if impossible."""
    compiler = _compiler()
    errors = []
    with tempfile.TemporaryDirectory(prefix="dagnet-") as tmp:
        target = Path(tmp) / "meeting_step.so"
        for extra in _FLAGS:
            cmd = [*compiler, *_BASE_FLAGS, *extra, str(SOURCE), "-o", str(target)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  timeout=COMPILE_TIMEOUT)
            if done.returncode == 0:
                lib = ctypes.CDLL(str(target))  # stays mapped once the file is gone
                break
            lines = done.stderr.strip().splitlines() or ["no message"]
            errors.append(next((x for x in lines if "error" in x), lines[-1]))
        else:
            raise OSError(f"{' '.join(compiler)} failed on {SOURCE.name}: {errors[-1]}")
    try:
        fn = lib.dagnet_meeting_step
    except AttributeError as err:
        raise OSError(f"the library built from {SOURCE.name} lacks its entry "
                      f"point") from err
    ptr, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    fn.argtypes = [ptr, ptr, i64, i64, ptr, ptr, ptr, ptr, f32, i32, f32, f32, i32,
                   ptr, ptr, ptr]
    fn.restype = None
    return fn


def _kernel(stacklevel=4):
    """The loaded kernel, or None once building it has failed (warned once)."""
    if "fn" not in _library:
        try:
            _library["fn"] = _build()
        except (OSError, subprocess.SubprocessError) as err:
            _library["fn"] = None
            warnings.warn(f"dagnet's CPU Path-SGD kernel is unavailable ({err}); "
                          f"Path-SGD uses its other kernels", stacklevel=stacklevel)
    return _library["fn"]


def available(stacklevel=1):
    """Whether the kernel is compiled and loaded here (builds it on first call).

    A failed build warns once, attributed ``stacklevel`` frames up (1: the caller).
    """
    return _kernel(stacklevel + 2) is not None


def _safe_range(p, n_cols):
    """``(lo, hi)``: rows whose nonzero ``|w|`` all lie here are taken in float32.

    Between them ``|w|^p`` is at least ``2^24`` times the smallest normal
    float32, so its products with vector entries down to ``SMALLEST_ENTRY``
    stay normal, and a sum of ``max(n, 32)`` such terms times entries of at
    most 1 stays below a quarter of the largest float32 (a max-product,
    p = inf, cannot overflow).
    """
    info = torch.finfo(torch.float32)
    lo = info.tiny / SMALLEST_ENTRY
    top = info.max if p == math.inf else info.max / (4.0 * max(n_cols, 32))
    return (math.sqrt(lo), math.sqrt(top)) if p == 2.0 else (lo, top)


def _normalised(v):
    """Whether every entry of ``v`` is 0 or in [SMALLEST_ENTRY, 1] (NaN: no)."""
    low, high = torch.aminmax(v)
    smallest = torch.where(v > 0, v, torch.ones_like(v)).min()
    return float(low) >= 0.0 and float(high) <= 1.0 and float(smallest) >= SMALLEST_ENTRY


def _shares_memory(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def meeting_step_(w, grad, fwd, bwd, inv_rb, inv_ra, value, p):
    r"""Products of ``|w|^p`` with ``fwd`` and ``bwd``, then the step, in one pass.

    Computes, from ``w`` as it is on entry,

    .. math::

        f = |W|^p \, \mathrm{fwd}, \qquad b = |W|^{p\,T} \, \mathrm{bwd}

    (max-products for ``p = inf``), then sets
    ``w <- w + value * grad * outer(inv_rb, inv_ra)`` in place, with the same
    float32 operations as :func:`dagnet.kernels.dense_update_`.

    ``fwd`` and ``bwd`` are normalised vectors: every entry must be 0 or lie
    in [``SMALLEST_ENTRY``, 1] (2^-24 to 1). Within that, every product is taken
    without overflow or underflow: in float32 for rows whose ``|w|`` lie in
    the range of :func:`_safe_range`, in float64 for the other rows (NaN or
    inf included, which then reach ``f`` and ``b`` as in torch).

    Returns
    -------
    (f, b) : float64 tensors, or None
        None (and ``w`` untouched) where the kernel does not apply: not a
        contiguous float32 CPU block (or an empty one, or one sharing memory
        with ``grad``), p not in {1, 2, inf}, nonzero vector entries outside
        [2^-24, 1], or no kernel.
    """
    kind = _KINDS.get(float(p))
    tensors = (w, grad, fwd, bwd, inv_rb, inv_ra)
    if kind is None or w.dim() != 2 or any(
            t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    if not (w.is_contiguous() and grad.is_contiguous()) or grad.shape != w.shape \
            or w.numel() == 0 or _shares_memory(w, grad):
        return None
    m, n = w.shape
    for name, t, size in (("fwd", fwd, n), ("bwd", bwd, m), ("inv_rb", inv_rb, m),
                          ("inv_ra", inv_ra, n)):
        if t.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},) for a block of shape "
                             f"{tuple(w.shape)}; got {tuple(t.shape)}")
    if not (_normalised(fwd) and _normalised(bwd)):
        return None
    fn = _kernel()
    if fn is None:
        return None
    fwd, bwd, inv_rb, inv_ra = (t.contiguous() for t in (fwd, bwd, inv_rb, inv_ra))
    threads = torch.get_num_threads() if w.numel() >= PARALLEL_MIN else 1
    f = torch.empty(m, dtype=torch.float64)
    col64 = torch.zeros(threads, n, dtype=torch.float64)
    col32 = torch.empty(threads, n, dtype=torch.float32)
    lo, hi = _safe_range(float(p), n)
    fn(w.data_ptr(), grad.data_ptr(), m, n, fwd.data_ptr(), bwd.data_ptr(),
       inv_rb.data_ptr(), inv_ra.data_ptr(), value, kind, lo, hi, threads,
       f.data_ptr(), col64.data_ptr(), col32.data_ptr())
    torch.autograd.graph.increment_version(w)  # written behind autograd's back
    b = col64.amax(dim=0) if kind == 0 else col64.sum(dim=0)
    return f, b

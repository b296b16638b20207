"""Shared timing helpers for the benchmarks: interleaved repeats, median ratio."""

import statistics
import time

import torch


def interleaved(fns, repeats, warmup=3):
    """Median seconds of each function, timed in alternation to share the noise."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def paper_sizes(argv):
    """Layer sizes from the command line, the paper's 784-4000-4000-10 by default."""
    return [int(a) for a in argv] or [784, 4000, 4000, 10]


def threads():
    return torch.get_num_threads()

"""Memory: sizes as users write them (`--max-memory 2G`), what this process holds, and what is free.

The budget (Stylizer's `max_memory`) is the most the process may hold at once: on the CPU its resident memory
(RSS, as `top` shows it, the Python and PyTorch libraries included), on a GPU the device memory PyTorch
allocates. By default it is what the process holds now plus DEFAULT_SHARE of what is free (MemAvailable,
or the container's cgroup limit where that is lower; on a GPU, the device's free memory)."""
from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path

import torch

DEFAULT_SHARE = 0.8  # of the free memory, leaving the rest to the rest of the system

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'2G', '1.5GB', '512M', '800MiB', '4000000000' (bytes) -> bytes (K, M, G, T are powers of 1024).
    ValueError with a message for anything else, or for 0."""
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a memory size; give e.g. 2G, 1.5G or 512M")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(size) or size < 1:
        raise ValueError(f"{text!r}: a memory size must be more than 0")
    return int(size)


def format_size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def process_rss() -> int:
    """The resident memory of this process now, in bytes."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is an upper bound of the present
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def available_ram() -> int:
    """Memory the system can give this process without swapping: MemAvailable, capped by a cgroup limit."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            free = 4 * 2**30  # nothing to go by: a modest machine
    v1 = "/sys/fs/cgroup/memory/memory."
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   (v1 + "limit_in_bytes", v1 + "usage_in_bytes")):
        try:  # a container's limit (cgroup v2, or v1) binds before the machine's
            limit = Path(limit_file).read_text().strip()
            if limit != "max" and int(limit) < 2**60:  # v1 writes "no limit" as a huge number
                free = min(free, max(0, int(limit) - int(Path(usage_file).read_text())))
        except (OSError, ValueError):
            pass
    return free


M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter (malloc.h)


@functools.cache  # a process-wide setting: once is enough (plan() runs per frame of a tiled video)
def return_freed_memory() -> None:
    """Have the C allocator give large freed blocks back to the system at once (glibc; elsewhere nothing).

    glibc starts by mapping each block over 128 KiB on its own and unmapping it when freed, but after the first
    such free it raises that threshold (up to 32 MiB) and keeps later blocks in its heap, where the freed ones
    stay resident: the same tiled picture under the same plan then peaks at a different height each run, over
    the budget now and then. With the threshold set, glibc stops moving it and the peak is the same every run
    (figures: docs/large-pictures.md). Called when a budget binds (tiles), where a page fault per fresh block
    costs little beside the work on it."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 2**10)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt): nothing to set
        pass


def in_use(device: torch.device) -> int:
    """What this process holds now, counted as the budget counts it."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    return process_rss()


def default_budget(device: torch.device) -> int:
    """What the process holds now plus DEFAULT_SHARE of what is free."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return in_use(device) + int(DEFAULT_SHARE * (free + cached))
    return in_use(device) + int(DEFAULT_SHARE * available_ram())


# What stylizing needs beyond what the process holds before it starts, in bytes per pixel of the (padded)
# picture: the rise of peak RSS on the CPU, with a margin (benchmarks/bench_large.py --memory). On a GPU the
# CPU's torch figure is used, halved for FP16. How they were measured: docs/large-pictures.md.
UNTILED_BYTES_PER_PIXEL = {"torch": 1150, "openvino": 400, "onnxruntime": 650}
# Allocator rounding, Python objects, small tensors, and library code first touched while the picture runs;
# sized on a freshly installed environment (docs/large-pictures.md, "The memory estimate's figures").
SLACK = 224 * 2**20


def untiled_bytes(backend: str, pixels: int, fp16: bool = False) -> int:
    per_pixel = UNTILED_BYTES_PER_PIXEL.get(backend, UNTILED_BYTES_PER_PIXEL["torch"])
    return int(pixels * per_pixel * (0.5 if fp16 else 1.0)) + SLACK


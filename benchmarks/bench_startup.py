"""How long the command takes to answer before it does any work: `--help`, `video --help` and `styles`.

    python benchmarks/bench_startup.py                       # this checkout, 15 runs of each
    python benchmarks/bench_startup.py --root /tmp/before    # another checkout (e.g. a git worktree of an
                                                             # older commit), with this same Python
    python benchmarks/bench_startup.py --runs 5

Each figure is the median wall time of a fresh `python -m nst_video ...` subprocess (interpreter start
included), run from the checkout's root so its own `nst_video` is the one imported. The machine's other load
shows in the spread (min..max), not in the median. Also printed: the CPU, and the heavy modules each command
imported (torch, openvino, cv2, av, the training code), which is what the time is mostly made of.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (("--help",), ("video", "--help"), ("styles",))
HEAVY = ("torch", "openvino", "cv2", "av", "nst_video.training.train", "nst_video.training.optimize",
         "nst_video.training.distill")
# Prints, after the command has run (at exit), which of HEAVY it imported.
PROBE = ("import atexit, runpy, sys\n"
         "atexit.register(lambda: print('imported:', ' '.join(m for m in {heavy!r} if m in sys.modules) or 'none',"
         " file=sys.stderr))\n"
         "sys.argv = ['nst-video', *sys.argv[1:]]\n"
         "runpy.run_module('nst_video', run_name='__main__')\n")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    marks = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("amx_tile", "avx512_bf16"))
    return f"{model} ({marks}; {os.cpu_count()} cores visible)"


def run_once(root: Path, args: tuple[str, ...], env: dict) -> float:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nst_video", *args], cwd=root, env=env, capture_output=True,
                       text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"nst-video {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return elapsed


def imported(root: Path, args: tuple[str, ...], env: dict) -> str:
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], cwd=root, env=env,
                       capture_output=True, text=True)
    lines = [line for line in r.stderr.splitlines() if line.startswith("imported:")]
    return lines[-1].removeprefix("imported:").strip() if lines else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to time (default: this one)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    root = args.root.resolve()
    env = dict(os.environ, PYTHONPATH=str(root))  # the checkout's own package, whatever is installed
    print(f"CPU: {cpu_name()}")
    print(f"Python {platform.python_version()} ({sys.executable}); checkout {root}; {args.runs} runs each")
    for command in COMMANDS:
        run_once(root, command, env)  # warm the file cache (and compile .pyc files) first
        times = [run_once(root, command, env) for _ in range(args.runs)]
        print(f"nst-video {' '.join(command):<14} median {statistics.median(times):.3f} s  "
              f"(min {min(times):.3f}, max {max(times):.3f})  imports: {imported(root, command, env)}")


if __name__ == "__main__":
    main()

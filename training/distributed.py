"""Training on several processes or GPUs (torchrun): the plumbing `train` and `distill` share.

One code path: a plain run is world size 1 of the same loop, where every collective below does nothing.

  join(device, ...)    reads what torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE), checks it,
                       picks the device (cuda:LOCAL_RANK on GPUs) and starts the process group (NCCL on CUDA,
                       gloo on the CPU); leaving its `with` block ends the group
  Ranks.wrap(model)    DistributedDataParallel: the gradients are averaged over the ranks in backward
  Ranks.share          this rank's slots of each step's global batch (training/data.py takes them), so N ranks
                       at batch B/N see exactly the photos one process at batch B sees, in the same order
  Ranks.mean(x)        a value averaged over the ranks (the loss terms rank 0 shows and logs)
  Ranks.stop_agreed()  a stop signal on any rank stops every rank after the same step
  launch(nproc, args)  `--nproc N`: the same command again under torch.distributed.run (torchrun)

Rank 0 alone writes checkpoints, samples, logs and the style file, and shows the progress; the other ranks'
console is quiet (nst_video.report)."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

import nst_video
from nst_video import report
from nst_video.errors import NstError
from nst_video.runtimes import default_threads  # the cores this process may run on (its taskset share)
from nst_video.signals import exit_code, note_signal
from nst_video.stylizer import pick_device
from nst_video.training.config import DIST_BACKENDS as BACKENDS

# torchrun's grace between forwarding a stop signal to the ranks and killing them: a rank finishes its step
# and rank 0 writes a checkpoint in that time (a step of a 256 px batch of 4 takes seconds even on a CPU).
SHUTDOWN_GRACE_S = 120
# How long a rank other than 0 waits, after bad input, for rank 0 to say it (and torchrun to end them all).
ERROR_GRACE_S = 10


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise NstError(f"${name}={os.environ[name]!r}: not a whole number (torchrun sets it)") from None


def check_world(world: int, local_world: int, batch_size: int, device: torch.device, backend: str) -> str:
    """The backend to use for `world` processes on `device`, or a one-line NstError saying why they cannot run.
    The same check for `--nproc` (before anything starts) and for each rank under torchrun."""
    if backend not in BACKENDS:
        raise NstError(f"--dist-backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise NstError("--dist-backend nccl needs CUDA GPUs and PyTorch sees none here: use gloo (the default on "
                       "the CPU)")
    if backend == "nccl" and device.type != "cuda":
        raise NstError(f"--dist-backend nccl needs --device cuda (this run is on the {device.type}): use gloo")
    if world > 1 and device.type == "mps":
        raise NstError("several processes cannot share Apple's MPS GPU: train in one process, or on the CPU "
                       "(--device cpu)")
    if device.type == "cuda" and local_world > torch.cuda.device_count():
        raise NstError(f"{local_world} processes on this machine but only {torch.cuda.device_count()} CUDA GPU(s): "
                       "one process per GPU at most")
    if device.type == "cpu" and local_world > (cores := default_threads()):
        raise NstError(f"{local_world} processes but only {cores} CPU core(s) here: at most one process per core")
    if batch_size % world:
        lower, upper = batch_size // world * world, (batch_size // world + 1) * world
        hint = f"--batch-size {lower} or {upper}" if lower else f"--batch-size {upper}"
        raise NstError(f"--batch-size {batch_size} does not divide among {world} processes (each takes an equal "
                       f"share of every step's batch): try {hint}")
    return backend


@dataclass
class Ranks:
    """This process's place among the training processes; world size 1 for a plain run."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str = "gloo"
    batch_size: int = 1  # the global batch: every rank's share together

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def share(self) -> slice:
        """This rank's slots of each step's global batch: contiguous, equal (check_world made sure)."""
        per_rank = self.batch_size // self.world
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _tensor(self, values) -> torch.Tensor:
        # NCCL reduces only CUDA tensors; gloo takes CPU ones (a copy of a few numbers a step)
        return torch.as_tensor(values, dtype=torch.float32,
                               device=self.device if self.backend == "nccl" else "cpu")

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """`x` averaged over the ranks (no gradient flows through it)."""
        if not self.distributed:
            return x
        total = self._tensor(x.detach().float())
        dist.all_reduce(total)
        return (total / self.world).to(x.device)

    def stop_agreed(self, requested: int | None) -> bool:
        """Whether any rank got a stop signal (`requested`: this rank's, or None). Every rank learns the signal,
        so every one exits with the same status (128 + its number)."""
        if not self.distributed:
            return requested is not None
        signum = self._tensor([requested or 0])
        dist.all_reduce(signum, op=dist.ReduceOp.MAX)
        if signum.item() and requested is None:
            note_signal(int(signum.item()))
        return bool(signum.item())

    def union(self, items: set[int]) -> set[int]:
        """The union of every rank's set (the unreadable photos each rank met in its share)."""
        if not self.distributed:
            return items
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, sorted(items))
        return set().union(*map(set, gathered))

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def __enter__(self) -> "Ranks":
        return self

    def __exit__(self, kind, error, tb) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        if self.distributed and not self.main:
            if isinstance(error, NstError):
                _bad_input_off_rank_0(self.rank, error)
            if isinstance(error, Exception):
                report.console.quiet = False  # anything else (a bug, a lost peer) is this rank's own to tell


def _bad_input_off_rank_0(rank: int, error: NstError):
    """Bad input is the same on every rank (the same files, the same options): rank 0 says it once, and torchrun
    ends this rank when rank 0 leaves. Said here, with the rank, only where rank 0 has not met it by then."""
    time.sleep(ERROR_GRACE_S)
    report.console.quiet = False
    report.error(f"rank {rank}: {error}")
    raise SystemExit(1) from None


def join(device_name: str, backend: str, batch_size: int) -> Ranks:
    """This process's Ranks from torchrun's environment (none set: a plain run of world size 1), with the process
    group started when there are several."""
    world, rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0)
    local_rank, local_world = _env_int("LOCAL_RANK", 0), _env_int("LOCAL_WORLD_SIZE", 1)
    if rank != 0:
        report.console.quiet = True  # rank 0 shows the progress and says what happens
    try:
        device = pick_device(device_name)
        if device.type == "cuda" and world > 1:
            device = torch.device("cuda", local_rank if device.index is None else device.index)
        backend = check_world(world, local_world, batch_size, device, backend)
    except NstError as e:
        if rank != 0:
            _bad_input_off_rank_0(rank, e)
        raise
    ranks = Ranks(rank, world, local_rank, local_world, device, backend, batch_size)
    if not ranks.distributed:
        return ranks
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # The cores are shared out: N ranks each with every core would fight over them (torchrun's default is 1).
    torch.set_num_threads(max(1, default_threads() // local_world))
    dist.init_process_group(backend, rank=rank, world_size=world)
    return ranks


def stopped_status() -> int:
    """The exit status of a run stopped by a signal: 128 + its number, from rank 0 (or a plain run); 0 from the
    other ranks, which have done their part by then. Rank 0's status is the run's, and torchrun stops every rank
    still running the moment one leaves with a failure status: rank 0 could be cut off while it says how to
    resume, or end with that SIGTERM's status instead of its own."""
    return exit_code() if _env_int("RANK", 0) == 0 else 0


def launch(nproc: int, args: list[str]) -> int:
    """Run `nst-video ARGS` (without --nproc) as `nproc` ranks under torch.distributed.run on this machine, and
    return the exit status: the ranks' own (0, 1 for bad input, 128 + a stop signal's number)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # The ranks say what went wrong (rank 0 once); torchrun's own report of a failed or stopped rank is a page
    # of traceback around the same line. Its modules each set their logger's level, so each is quietened.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, default_threads() // nproc)))  # torchrun warns when unset
    root = Path(nst_video.__file__).resolve().parent.parent
    if (root / "nst_video_main.py").is_file():  # a checkout run without installing: the ranks import it from there
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    launcher = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}",
                                             f"--shutdown-timeout={SHUTDOWN_GRACE_S}", "--module", "nst_video", *args])
    try:
        run(launcher)
    except ChildFailedError as e:
        failures = e.failures
        code = (failures.get(0) or failures[min(failures)]).exitcode
        return 128 - code if code < 0 else code  # killed by a signal: the shell's convention
    except SignalException as e:
        return 128 + int(e.sigval)
    return 0


def without_nproc(args: list[str]) -> list[str]:
    """The command line less its --nproc option: what each rank runs."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out

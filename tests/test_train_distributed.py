"""Training on several processes (torchrun, `--nproc`): real ranks, 2 processes on the CPU (gloo over loopback),
at tiny sizes. The same global batch and seed give one process's losses; a stop signal on the launcher or on one
rank stops every rank after one checkpoint, which --resume continues; distill runs the same way; bad input is
one line."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nst_video.runtimes import default_threads as cpu_cores
from nst_video.styles import load_style
from nst_video.training.distributed import without_nproc
from nst_video.training.train import TrainConfig, train
from tests.conftest import run_cli, wait_until

two_cores = pytest.mark.skipif(cpu_cores() < 2, reason="2 ranks need 2 CPU cores (one process per core at most)")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# Large weights put every term at 0.5..50, so the log's 6 decimals are far below the tolerance below; a small
# lr keeps Adam's first, sign-like steps from amplifying float rounding (see TOLERANCE).
SETTINGS = dict(image_size=32, style_size=64, batch_size=4, max_steps=4, log_interval=1, device="cpu", seed=7,
                lr=1e-4, style_weight=1e8, content_weight=1e3, tv_weight=1e-2)
# 2 ranks sum their halves of the batch and average the halves' gradients, one thread each, where one process
# sums the whole batch on all its threads: the same arithmetic in another order, so float32 rounding differs
# (measured: 2.2e-7 relative at step 1, up to 3.4e-6 by step 4 after Adam's updates, docs/training.md). 1e-4
# leaves a margin of 30 over that, and a wrong split of the photos is far outside it (half the batch: 1.3e-2,
# checked below).
TOLERANCE = 1e-4


def _flags(settings: dict) -> list[str]:
    return [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def _train_args(data: Path, run: Path, name: str = "d") -> list[str]:
    return ["train", "--content-dir", str(data / "content"), "--style-image", str(data / "style.png"), "--name", name,
            "--output", str(run / f"{name}.safetensors"), "--checkpoint-dir", str(run / "ck"), "--vgg-weights",
            str(data / "vgg.pth")]


def _losses(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "ck" / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if "total" in r}


@two_cores
@pytest.mark.slow
def test_two_ranks_give_the_losses_of_one_process_at_the_same_global_batch(tiny_data, tmp_path):
    one = tmp_path / "one"
    paths = dict(content_dir=str(tiny_data / "content"), style_image=str(tiny_data / "style.png"),
                 vgg_weights=str(tiny_data / "vgg.pth"))
    train(TrainConfig(name="d", output=str(one / "d.safetensors"), checkpoint_dir=str(one / "ck"), **paths,
                      **SETTINGS))
    two = tmp_path / "two"
    r = subprocess.run([*TORCHRUN, "-m", "nst_video", *_train_args(tiny_data, two), *_flags(SETTINGS)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("wrote style 'd'") == 1  # rank 0 alone speaks and writes
    expected, got = _losses(one), _losses(two)
    assert sorted(got) == [1, 2, 3, 4]
    for step, row in expected.items():
        for term in ("total", "content", "style", "tv"):
            assert got[step][term] == pytest.approx(row[term], rel=TOLERANCE), (step, term)
    # The tolerance tells splits apart: one process on half the batch (other photos) is far outside it.
    half = tmp_path / "half"
    train(TrainConfig(name="d", output=str(half / "d.safetensors"), checkpoint_dir=str(half / "ck"), **paths,
                      **{**SETTINGS, "batch_size": 2, "max_steps": 1}))
    assert abs(_losses(half)[1]["total"] / expected[1]["total"] - 1) > 50 * TOLERANCE
    info = load_style(two / "d.safetensors")[0]
    assert info.training["processes"] == 2 and info.training["batch_size"] == 4 and info.training["steps"] == 4


def _rank_pid(launcher: int, rank: int) -> int:
    """The process id of a rank among the launcher's children (torchrun starts them directly)."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in children:
        if f"RANK={rank}" in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0"):
            return int(pid)
    raise AssertionError(f"no rank {rank} among {children}")


@two_cores
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the ranks in /proc (Linux)")
@pytest.mark.parametrize("target, signum", [("launcher", signal.SIGTERM), ("rank 1", signal.SIGINT)],
                         ids=["term-launcher", "int-rank1"])
def test_a_stop_signal_on_any_rank_checkpoints_once_and_resume_continues(tiny_data, tmp_path, target, signum):
    settings = {k: v for k, v in SETTINGS.items() if k != "max_steps"}
    args = [sys.executable, "-m", "nst_video", *_train_args(tiny_data, tmp_path, "s"), "--nproc", "2",
            *_flags(settings), "--max-steps", "100000"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = tmp_path / "ck" / "log.jsonl"
        wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, "3 steps", timeout=180)
        pid = proc.pid if target == "launcher" else _rank_pid(proc.pid, 1)
        os.kill(pid, signum)
        _, err = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err  # every rank and the launcher: the signal's status
    assert err.count("checkpoint saved") == 1 and "Traceback" not in err, err
    saved = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["step"]
    assert saved == max(_losses(tmp_path)) >= 3  # the step every rank stopped after
    assert not (tmp_path / "s.safetensors").exists()
    more = [*args[:-1], str(saved + 2), "--resume"]  # --max-steps is the last flag
    r = subprocess.run(more, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(f"resuming from step {saved}") == 1
    assert load_style(tmp_path / "s.safetensors")[0].training["steps"] == saved + 2
    assert sorted(_losses(tmp_path))[-2:] == [saved + 1, saved + 2]


@two_cores
@pytest.mark.slow
def test_distill_on_two_ranks(tiny_data, style_dir, tmp_path):
    r = run_cli("distill", "--from", style_dir / "randomstyle.safetensors", "--name", "r-lite", "--content-dir",
                tiny_data / "content", "--style-image", tiny_data / "style.png", "--vgg-weights", tiny_data / "vgg.pth",
                "--output", tmp_path / "r-lite.safetensors", "--checkpoint-dir", tmp_path / "ck", "--image-size", "32",
                "--style-size", "64", "--batch-size", "2", "--max-steps", "2", "--log-interval", "1", "--device", "cpu",
                "--nproc", "2")
    assert r.returncode == 0, r.stderr
    info = load_style(tmp_path / "r-lite.safetensors")[0]
    assert info.architecture == "lite" and info.training["processes"] == 2 and info.training["steps"] == 2
    assert [row["distill"] > 0 for row in _losses(tmp_path).values()] == [True, True]


@two_cores
@pytest.mark.slow
def test_bad_input_found_by_the_ranks_is_one_line(tiny_data, tmp_path):
    bad = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    r = run_cli(*_train_args(tiny_data, tmp_path)[:-1], bad, "--nproc", "2", "--batch-size", "2", "--device", "cpu")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [f"nst-video: error: {bad}: not VGG16 features weights (missing "
                                             "features.0.bias)"], r.stderr


@pytest.mark.parametrize("extra, status, message", [
    (["--nproc", "0"], 2, "Invalid value for '--nproc': 0 is not in the range x>=1"),
    (["--nproc", "2", "--batch-size", "3"], 1,
     "--batch-size 3 does not divide among 2 processes (each takes an equal share of every step's batch): try "
     "--batch-size 2 or 4"),
    (["--nproc", str(cpu_cores() + 1), "--batch-size", str(cpu_cores() + 1)], 1,
     f"{cpu_cores() + 1} processes but only {cpu_cores()} CPU core(s) here: at most one process per core"),
    (["--nproc", "1", "--dist-backend", "nccl"], 1,
     "--dist-backend nccl needs CUDA GPUs and PyTorch sees none here: use gloo (the default on the CPU)"),
], ids=["nproc-0", "batch-not-divisible", "more-than-cores", "nccl-without-cuda"])
def test_bad_numbers_of_processes_are_one_line(tiny_data, tmp_path, extra, status, message):
    if "nccl" in extra and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: NCCL is fine here")
    if extra[-2:] == ["--batch-size", "3"] and cpu_cores() < 2:  # on one core the core count is refused first
        pytest.skip("2 ranks need 2 CPU cores (one process per core at most)")
    r = run_cli(*_train_args(tiny_data, tmp_path), "--device", "cpu", "--batch-size", "2", *extra)
    assert r.returncode == status and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    if status == 1:
        assert r.stderr.strip().splitlines() == [f"nst-video: error: {message}"]
    assert not (tmp_path / "ck").exists()


def test_nproc_under_torchrun_is_refused(tiny_data, tmp_path):
    r = run_cli(*_train_args(tiny_data, tmp_path), "--device", "cpu", "--nproc", "2",
                env_extra={"WORLD_SIZE": "2", "RANK": "0"})
    assert r.returncode == 1 and r.stderr.startswith("nst-video: error: --nproc under torchrun"), r.stderr


def test_the_ranks_run_the_command_without_its_nproc():
    assert without_nproc(["train", "--nproc", "2", "--name", "x", "--nproc=3", "--seed", "1"]) == \
        ["train", "--name", "x", "--seed", "1"]

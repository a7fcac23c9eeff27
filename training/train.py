"""`nst-video train`: the Johnson et al. recipe, hardened. Readable top to bottom:

  TrainConfig -> build() (networks, loss, data) -> resume -> loop { batch -> guarded_step() -> log /
  checkpoint / sample } -> style file

Hardening: mixed precision on GPU (Grams and sums in fp32), gradient clipping, a guard that keeps NaN/Inf
away from the weights (skip; on repeats halve the lr and roll back to the last good checkpoint), atomic
checkpoints with everything needed to continue exactly, and a stop signal (Ctrl-C, SIGTERM, SIGHUP) that
finishes the step and saves before leaving. `diagnose` runs the same build() and guarded_step().

Several processes or GPUs (torchrun, `--nproc`): the same loop on each rank, with its share of every step's
batch, the gradients averaged by DistributedDataParallel and rank 0 alone writing (training/distributed.py); a
plain run is world size 1 of it."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nst_video.atomic import atomic_output
from nst_video.errors import NstError
from nst_video.model import ARCHITECTURES, TransformerNet, build_network
from nst_video.progress import fields_lines, progress_bar
from nst_video.report import say
from nst_video.signals import StopFlag, signal_name
from nst_video.styles import StyleInfo, check_new_style, load_model, load_style, save_style
from nst_video.stylizer import pick_device
from nst_video.training.config import TrainConfig
from nst_video.training.data import ContentImages, content_loader, find_images, load_rgb_tensor
from nst_video.training.distributed import Ranks, check_world, join
from nst_video.training.frozen_norms import needs_statistics, with_frozen_statistics
from nst_video.training.loss_net import PerceptualLoss, load_vgg_weights
from nst_video.training.video_pairs import VideoPairs

CHECKPOINT_FORMAT = "nst-video-train-checkpoint"
MAX_ROLLBACKS = 5
STATISTICS_PHOTOS = 64  # training crops that fix a fixed-norm network's statistics (--init-from an instance-norm one)


@dataclass
class Session:
    """Everything a training step needs, built once from a config."""
    cfg: TrainConfig
    device: torch.device
    use_amp: bool
    model: TransformerNet
    teacher: TransformerNet | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss_net: PerceptualLoss
    dataset: ContentImages
    videos: VideoPairs | None  # frame pairs for the flow term
    ranks: Ranks = field(default_factory=Ranks)  # this process among the training processes (one: a plain run)
    net: torch.nn.Module | None = None  # the model as trained: wrapped in DistributedDataParallel on several ranks
    ema: AveragedModel | None = None  # --ema-decay: the moving average of the weights, what the style file gets

    @property
    def final_model(self) -> torch.nn.Module:
        """The network the style file gets (and the samples show): the average with --ema-decay."""
        return self.ema.module if self.ema is not None else self.model


@dataclass
class StepOutcome:
    terms: dict[str, float]   # the weighted loss terms of the step (empty when the loss was not finite)
    grad_norm: float          # before clipping
    problem: str | None       # "non-finite loss" / "non-finite gradient": the weights were not touched


def init_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Start from another style's weights. Across architectures of the same widths (lite -> fast) the layers
    whose shapes match are taken and the rest start fresh (said once): the inner layers already know how to
    paint."""
    own = model.state_dict()
    weights = dict(weights)
    folded = getattr(model, "pixel_shuffle", 1) ** 2
    for key in ("down.0.0.1.weight", "out.1.weight", "out.1.bias"):  # first and last layers, to 2x2 blocks
        if key in weights and key in own and folded > 1 and own[key].numel() == weights[key].numel() * folded:
            # The fast network then starts as the lite one on the picture at half size, each painted pixel
            # repeated 2x2: folded inputs averaged per colour, each output colour copied to its 4 positions.
            axis = 1 if key.startswith("down") else 0
            scale = 1 / folded if axis == 1 else 1.0
            weights[key] = weights[key].repeat_interleave(folded, dim=axis) * scale
    matching = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if len(matching) == len(own) == len(weights):
        model.load_state_dict(weights)
        return
    if len(matching) < len(own) / 2:  # another width: a stray bias or two of the same shape is no start
        raise NstError(f"--init-from {source}: its layers do not fit this network (another architecture's width)")
    model.load_state_dict(matching, strict=False)
    fresh = sorted({k.rsplit(".", 2)[0] for k in own if k not in matching})
    say(f"init from {source}: {len(matching)} of {len(own)} tensors taken; fresh: {', '.join(fresh)}")


def statistics_batches(content: ContentImages) -> Iterable[torch.Tensor]:
    """The first STATISTICS_PHOTOS crops of the run, in batches of 8."""
    for start in range(0, STATISTICS_PHOTOS, 8):
        yield torch.stack([content[divmod(start + i, content.batch_size)][0] for i in range(8)])


def build(cfg: TrainConfig, device: torch.device | None = None, content_dir: Path | None = None,
          vgg_state: dict[str, torch.Tensor] | None = None, ranks: Ranks | None = None) -> Session:
    """Networks, optimiser, loss network (with the style's Grams cached) and content photos. `content_dir` and
    `vgg_state` override the config's folder and weights file (diagnose has them at hand already); `ranks`: the
    training processes (default: this one alone)."""
    check_config(cfg)
    device = ranks.device if ranks else device or pick_device(cfg.device)
    ranks = ranks or Ranks(device=device, batch_size=cfg.batch_size)
    use_amp = cfg.amp and device.type in ("cuda", "cpu")
    torch.manual_seed(cfg.seed)
    if cfg.architecture not in ARCHITECTURES:
        raise NstError(f"--architecture {cfg.architecture}: choose one of {', '.join(ARCHITECTURES)}")
    model = build_network(cfg.architecture).to(device)
    content = ContentImages(content_dir or Path(cfg.content_dir), cfg.image_size, cfg.batch_size, cfg.seed,
                            cfg.max_zoom)
    if cfg.init_from:
        source_info, weights = load_style(Path(cfg.init_from))
        if needs_statistics(model, weights):  # an instance-norm style into a fixed-norm network
            weights = with_frozen_statistics(source_info.architecture, weights, statistics_batches(content),
                                             into=model)
            say(f"init from {Path(cfg.init_from).name}: its instance norms' statistics frozen, measured on "
                f"{STATISTICS_PHOTOS} training photos")
        init_weights(model, weights, Path(cfg.init_from).name)
    teacher = None
    if cfg.teacher:
        teacher = load_model(Path(cfg.teacher))[1].to(device).eval().requires_grad_(False)
    loss_net = PerceptualLoss(vgg_state or load_vgg_weights(cfg.vgg_weights), cfg.content_weight, cfg.style_weight,
                              cfg.tv_weight).to(device)
    loss_net.set_style(load_rgb_tensor(Path(cfg.style_image), max_size=cfg.style_size).unsqueeze(0).to(device))
    # use_buffers: a fixed-norm network's frozen statistics are buffers; the average copies them as they are
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
           if cfg.ema_decay > 0 else None)
    return Session(cfg, device, use_amp, model, teacher, torch.optim.Adam(model.parameters(), lr=cfg.lr),
                   torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda"), loss_net,
                   content,
                   VideoPairs(Path(cfg.video_dir), cfg.image_size, cfg.batch_size, cfg.seed)
                   if cfg.flow_weight > 0 else None, ranks, ranks.wrap(model), ema)


def random_motion(images: torch.Tensor, max_shift: float, max_turn_degrees: float = 2.0, max_scale: float = 0.02,
                  seed: int = 0, share: slice = slice(None), total: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random small camera motion per image of the batch (shift up to `max_shift` pixels, turn, zoom) as a
    sampling grid for `moved_by`, and the (N, 1, H, W) mask of the pixels that have a source in the picture.
    Synthetic motion stands in for video: the network learns to move its texture along with what it paints
    (after Wang et al., "Consistent video style transfer via compound regularization", AAAI 2020). The motions
    are a function of `seed` (training passes its seed and the step, so a resumed run draws the same ones).
    `images` may be the `share` of a batch of `total` (a rank's, under torchrun): the motions are drawn for the
    whole batch and each image gets the one it would get in one process."""
    n, _, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    uniform = lambda: (torch.rand(total or n, generator=g) * 2 - 1)[share]  # noqa: E731
    turn = uniform() * math.radians(max_turn_degrees)
    scale = 1 + uniform() * max_scale
    # affine_grid works in [-1, 1] units: a shift of p pixels is 2p / size.
    shift_x, shift_y = uniform() * 2 * max_shift / w, uniform() * 2 * max_shift / h
    cos, sin = torch.cos(turn) * scale, torch.sin(turn) * scale
    theta = torch.stack([torch.stack([cos, -sin * h / w, shift_x], 1), torch.stack([sin * w / h, cos, shift_y], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(images.device), [n, 1, h, w], align_corners=False)
    inside = ((grid.abs() <= 1).all(dim=-1)).unsqueeze(1).float()
    return grid, inside


def moved_by(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border",
                                           align_corners=False)


def guarded_step(s: Session, content: torch.Tensor, poison: bool = False, step: int = 0) -> StepOutcome:
    """One optimiser step on a batch (the `step`-th: it picks the random motions); nothing non-finite reaches
    the weights. `poison` makes the loss NaN (fault injection for the tests of this guard)."""
    cfg, net, ranks = s.cfg, s.net if s.net is not None else s.model, s.ranks
    half = torch.float16 if s.device.type == "cuda" else torch.bfloat16
    with torch.autocast(s.device.type, dtype=half, enabled=s.use_amp):
        output = net(content)
        terms = s.loss_net(output, content)
        if s.teacher is not None:
            with torch.no_grad():
                target = s.teacher(content)
            terms["distill"] = cfg.distill_weight * torch.nn.functional.mse_loss(output.float(), target.float())
            terms["total"] = terms["total"] + terms["distill"]
        if cfg.stability_weight > 0:
            noised = net(content + cfg.stability_noise * torch.randn_like(content))
            terms["stability"] = cfg.stability_weight * torch.nn.functional.mse_loss(noised.float(), output.float())
            terms["total"] = terms["total"] + terms["stability"]
        if cfg.motion_weight > 0:
            # A seed per (run seed, step): the same motions after --resume, different ones every step.
            grid, inside = random_motion(content, cfg.motion_shift, seed=cfg.seed * 1_000_003 + step,
                                         share=ranks.share, total=cfg.batch_size)
            moved = net(moved_by(content, grid))
            difference = (moved.float() - moved_by(output.float(), grid)) ** 2 * inside
            # Divided by the ranks' mean pixel count, the ranks' mean of this term is the one-process term.
            pixels = ranks.mean(inside.sum() * output.shape[1]).clamp(min=1)
            terms["motion"] = cfg.motion_weight * difference.sum() / pixels
            terms["total"] = terms["total"] + terms["motion"]
        if s.videos is not None:
            # The warping error itself, on real consecutive frames: output t vs output t-1 moved along the
            # input's flow, where that flow is trusted (video_pairs.py).
            prev, cur, grid, mask = (x[ranks.share].to(s.device) for x in s.videos.batch(step))
            outputs = net(torch.cat([prev, cur])).float()
            warped = moved_by(outputs[: len(prev)], grid)
            difference = (outputs[len(prev):] - warped) ** 2 * mask
            pixels = ranks.mean(mask.sum() * outputs.shape[1]).clamp(min=1)  # as for the motion term
            terms["flow"] = cfg.flow_weight * difference.sum() / pixels
            terms["total"] = terms["total"] + terms["flow"]
    loss = terms["total"] * float("nan") if poison else terms["total"]
    # The terms averaged over the ranks (each a mean over its share of the batch: together the one-process
    # value), before backward: a non-finite loss on any rank makes every rank skip the step.
    names = list(terms)
    means = ranks.mean(torch.stack([loss.detach().float() if k == "total" else terms[k].detach().float()
                                    for k in names]))
    s.optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(means).all():
        return StepOutcome({}, float("nan"), "non-finite loss")
    s.scaler.scale(loss).backward()  # DistributedDataParallel averages the gradients over the ranks here
    s.scaler.unscale_(s.optimizer)
    # Adam is invariant to the gradient's scale, so clipping only stops single bad batches from throwing the
    # weights far; the norm returned is the one before clipping.
    grad_norm = float(torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.clip_grad_norm))
    problem = None
    if math.isfinite(grad_norm):
        s.scaler.step(s.optimizer)
        s.scaler.update()
    elif s.scaler.is_enabled():
        s.scaler.update()  # fp16 overflow: the scaler lowers its scale and skips; normal under AMP
    else:
        problem = "non-finite gradient"
    s.optimizer.zero_grad(set_to_none=True)
    return StepOutcome(dict(zip(names, means.tolist(), strict=True)), grad_norm, problem)


def train(cfg: TrainConfig, poison_steps: Iterable[int] = ()) -> Path | None:
    """Run (or continue) training. Returns the style file, or None when stopped early by a stop signal.
    `poison_steps`: steps whose loss is made NaN, once each (for the tests of the guard). Under torchrun this
    process is one rank of several (training/distributed.py); alone it is the only one."""
    with join(cfg.device, cfg.dist_backend, cfg.batch_size) as ranks:
        check_start(cfg)  # before any work
        return _train(cfg, ranks, set(poison_steps))


def _train(cfg: TrainConfig, ranks: Ranks, poison: set[int]) -> Path | None:
    s = build(cfg, ranks=ranks)
    ckpt_path = cfg.checkpoint_path
    if cfg.force and not cfg.resume and ckpt_path.exists() and ranks.main:
        ckpt_path.unlink()  # start afresh: the old run is what --force replaces (after build() checked the rest)
    step, lr, skipped = _resume_or_start(s, ckpt_path)
    main = ranks.main  # the one rank that writes: checkpoints, samples, logs, the style file
    sample_photos = _fixed_sample_photos(s.dataset, cfg.image_size) if main else None
    log_file = ckpt_path.parent / "log.jsonl"
    writer = _tensorboard(ckpt_path.parent) if main else None
    workers = cfg.num_workers if cfg.num_workers >= 0 else (4 if s.device.type == "cuda" else 0)

    def log(record: dict) -> None:
        if main:
            _log(log_file, record)

    def save_checkpoint():
        nonlocal skipped
        skipped = ranks.union(skipped)  # every rank comes here at the same steps
        if main:
            _save_checkpoint(ckpt_path, s, step, lr, skipped)

    def on_stop(signum):
        progress.console.print(f"[yellow]{signal_name(signum)}: saving a checkpoint after this step "
                               "(again to abort)[/]")

    bad_in_a_row, rollbacks, started, first_step = 0, 0, time.time(), step
    with progress_bar("it/s") as progress, StopFlag(on_stop) as stop:
        task = progress.add_task(f"training {cfg.name}", total=cfg.max_steps, completed=step, status="")
        batches = iter(content_loader(s.dataset, step, cfg.max_steps, workers, ranks.share))
        # A signal reaches one rank, or all at slightly different moments: they agree before each step.
        while step < cfg.max_steps and not ranks.stop_agreed(stop.requested):
            content, used = next(batches)
            skipped |= _skipped_indices(s.dataset, step, used, ranks.share.start)
            outcome = guarded_step(s, content.to(s.device, non_blocking=True), poison=step in poison, step=step)
            poison.discard(step)  # each injected fault fires once, so a rollback can recover

            if outcome.problem:  # the same on every rank: the loss and the gradients are the ranks' means
                bad_in_a_row += 1
                log({"step": step, "event": outcome.problem, "lr": lr})
                progress.console.print(f"[red]step {step}: {outcome.problem}; step skipped[/]")
                if bad_in_a_row < cfg.nan_patience:
                    step += 1  # move past the bad batch
                    progress.update(task, completed=step)
                    continue
                rollbacks += 1
                if rollbacks > MAX_ROLLBACKS:
                    raise NstError(f"training keeps producing non-finite values ({rollbacks} rollbacks); "
                                   "run `nst-video diagnose` on the same images and weights")
                lr /= 2
                if ckpt_path.exists():
                    step, _, skipped = _load_checkpoint(ckpt_path, s)
                _set_lr(s.optimizer, lr)
                bad_in_a_row = 0
                log({"step": step, "event": "rollback", "lr": lr})
                progress.console.print(f"[red]{cfg.nan_patience} bad steps in a row: lr halved to {lr:g}, "
                                       f"rolled back to step {step}[/]")
                progress.update(task, completed=step)
                batches = iter(content_loader(s.dataset, step, cfg.max_steps, workers, ranks.share))
                continue

            bad_in_a_row = 0
            step += 1
            if s.ema is not None:  # its first update copies the weights; later ones blend them in
                s.ema.update_parameters(s.model)
            values = outcome.terms
            # the bar shows the total only (it must fit 80 columns); the log lines below carry every term
            progress.update(task, completed=step, status=f"loss {values['total']:.4g}")
            if step % cfg.log_interval == 0 or step == cfg.max_steps:
                skipped = ranks.union(skipped)
                rate = (step - first_step) / max(time.time() - started, 1e-9)
                log({"step": step, **values, "lr": lr, "it_s": round(rate, 3), "skipped": len(skipped)})
                fields = [f"step {step}/{cfg.max_steps}", f"loss {values['total']:.4g}", f"{rate:.2f} it/s",
                          *(f"{k} {v:.4g}" for k, v in values.items() if k != "total")]
                for line in fields_lines(fields, progress.console.width):
                    progress.console.print(line, soft_wrap=True, markup=False, highlight=False)
                if writer:
                    for k, v in values.items():
                        writer.add_scalar(f"loss/{k}", v, step)
            if step % cfg.checkpoint_interval == 0:
                save_checkpoint()
            if main and (step % cfg.sample_interval == 0 or step == cfg.max_steps):
                _save_samples(s.final_model, sample_photos, ckpt_path.parent / "samples" / f"step_{step:06d}.jpg")

    save_checkpoint()
    try:
        if not main:
            return cfg.output_path if step >= cfg.max_steps else None
        if skipped:
            say(f"skipped {len(skipped)} unreadable image(s) in {cfg.content_dir}")
        if step < cfg.max_steps:
            say(f"stopped at step {step}; checkpoint saved to {ckpt_path}; continue with the same command plus "
                "--resume")
            return None
        return _write_style(s, step, lr, skipped)
    finally:
        # The ranks leave together, after rank 0 has written and said everything: torchrun stops the others as
        # soon as one rank exits after a stop (a non-zero status).
        ranks.barrier()


def check_start(cfg: TrainConfig) -> None:
    """What can be refused before any work: the style's name and file, the settings, the checkpoint against
    --resume and --force (`--nproc` checks these once before it starts the ranks)."""
    check_new_style(cfg.name, cfg.output_path, replace=cfg.resume or cfg.force)
    check_config(cfg)
    ckpt_path = cfg.checkpoint_path
    if cfg.resume and not ckpt_path.exists():
        raise NstError(f"--resume: no checkpoint at {ckpt_path}")
    if ckpt_path.exists() and not (cfg.resume or cfg.force):
        raise NstError(f"{ckpt_path} exists: pass --resume to continue it, or choose another --checkpoint-dir")


def check_config(cfg: TrainConfig) -> None:
    """The bounds declared in TrainConfig (the CLI enforces the same ones when parsing), and the paths."""
    for f in fields(cfg):
        low, value = f.metadata.get("min"), getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):  # nan passes every comparison below
            raise NstError(f"--{f.name.replace('_', '-')} {value}: must be a finite number")
        if f.metadata.get("max") is not None and value > f.metadata["max"]:
            raise NstError(f"--{f.name.replace('_', '-')} {value}: must be at most {f.metadata['max']}")
        if low is not None and (value < low or (f.metadata.get("min_open") and value == low)):
            bound = f"greater than {low:g}" if f.metadata.get("min_open") else f"at least {low:g}"
            raise NstError(f"--{f.name.replace('_', '-')} {value}: must be {bound}")
    if not Path(cfg.style_image).is_file():
        raise NstError(f"--style-image {cfg.style_image}: no such file")
    if cfg.flow_weight > 0 and not cfg.video_dir:
        raise NstError("--flow-weight needs --video-dir (a folder of video clips)")
    if not cfg.name or any(c in cfg.name for c in "/\\"):
        raise NstError("--name must be a plain name (letters, digits, _ or -)")


def check_launch(cfg: TrainConfig, nproc: int) -> None:
    """`--nproc N`: what the ranks would refuse, refused once here before N processes start."""
    if "WORLD_SIZE" in os.environ:
        raise NstError("--nproc under torchrun: give the number of processes once (torchrun's --nproc-per-node, "
                       "or --nproc alone)")
    check_world(nproc, nproc, cfg.batch_size, pick_device(cfg.device), cfg.dist_backend)
    check_start(cfg)
    find_images(Path(cfg.content_dir))


def _resume_or_start(s: Session, ckpt_path: Path) -> tuple[int, float, set[int]]:
    """check_start() has matched the checkpoint with --resume and --force."""
    if s.cfg.resume:
        step, lr, skipped = _load_checkpoint(ckpt_path, s)
        say(f"resuming from step {step} ({ckpt_path})")
        return step, lr, skipped
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    return 0, s.cfg.lr, set()


def training_record(config: dict) -> dict:
    """A style file's "training" metadata from a run's TrainConfig (as a dict, e.g. a checkpoint's "config"):
    the settings that made it, folders and files by name only (no local paths)."""
    unrecorded = ("output", "resume", "force", "checkpoint_dir", "vgg_weights", "title", "credit", "name",
                  "num_workers", "architecture", "dist_backend")
    by_name = ("content_dir", "style_image", "teacher", "init_from", "video_dir")  # where set
    training = {k: v for k, v in config.items() if k not in unrecorded and k not in by_name}
    training.update({key: Path(config[key]).name for key in by_name if config.get(key)})
    return training


def _write_style(s: Session, step: int, lr: float, skipped: set[int]) -> Path:
    cfg = s.cfg
    training = training_record(asdict(cfg))
    training.update(steps=step, device=torch.cuda.get_device_name() if s.device.type == "cuda" else s.device.type,
                    content_images=len(s.dataset) - len(skipped), final_lr=lr)
    if s.ranks.distributed:
        training["processes"] = s.ranks.world  # batch_size is the global batch, shared among them
    if s.videos is not None:
        training.update(video_clips=s.videos.clips, video_pairs=len(s.videos))
    else:
        training.pop("video_dir", None)
    info = StyleInfo(name=cfg.name, title=cfg.title or cfg.name.replace("_", " ").title(), credit=cfg.credit,
                     training=training, architecture=cfg.architecture)
    out = save_style(cfg.output_path, s.final_model.state_dict(), info)
    say(f"wrote style '{cfg.name}' to {out}")
    return out


def _skipped_indices(dataset: ContentImages, step: int, used: torch.Tensor, first_slot: int = 0) -> set[int]:
    """Files passed over because they could not be read: from the requested index up to the one used.
    `used`: the files of the slots from `first_slot` on (a rank's share of the batch)."""
    out = set()
    n = len(dataset)
    for slot, actual in enumerate(used.tolist(), start=first_slot):
        i = dataset.file_index(step, slot)
        while i != actual:
            out.add(i)
            i = (i + 1) % n
    return out


def _save_checkpoint(path: Path, s: Session, step: int, lr: float, skipped: set[int]) -> None:
    state = {"format": CHECKPOINT_FORMAT, "step": step, "lr": lr, "config": asdict(s.cfg),
             "model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(), "scaler": s.scaler.state_dict(),
             "torch_rng": torch.get_rng_state(), "skipped": sorted(skipped)}
    if s.ema is not None:
        state["ema"] = s.ema.state_dict()
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def checkpoint_weights(state: dict, raw: bool = False) -> dict[str, torch.Tensor]:
    """The network weights in a loaded checkpoint, as the finished run would write them: the moving average
    with --ema-decay (AveragedModel keeps them under "module."), unless `raw` (the last step's own)."""
    if "ema" not in state or raw:
        return state["model"]
    return {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}


def _load_checkpoint(path: Path, s: Session) -> tuple[int, float, set[int]]:
    try:
        state = torch.load(path, map_location=s.device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a training checkpoint")
        s.model.load_state_dict(state["model"])
        s.optimizer.load_state_dict(state["optimizer"])
        s.scaler.load_state_dict(state["scaler"])
        if s.ema is not None and "ema" in state:  # without one (--ema-decay added on resume) it starts here
            s.ema.load_state_dict(state["ema"])
    except Exception as e:
        raise NstError(f"{path}: cannot resume from this checkpoint ({type(e).__name__}: {e})") from None
    torch.set_rng_state(state["torch_rng"].cpu())
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    _set_lr(s.optimizer, state["lr"])
    return int(state["step"]), float(state["lr"]), set(state.get("skipped", []))


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _fixed_sample_photos(dataset: ContentImages, size: int) -> torch.Tensor:
    """The same few photos at every sample step, so progress can be seen by eye."""
    photos = []
    for path in dataset.files[:: max(1, len(dataset.files) // 4)][:4]:
        try:
            photos.append(load_rgb_tensor(path))
        except NstError:
            continue
    return torch.stack([torch.nn.functional.interpolate(p[None], size=(size, size), mode="bilinear",
                                                        align_corners=False)[0] for p in photos]) if photos else None


@torch.no_grad()
def _save_samples(model, photos, path: Path) -> None:
    if photos is None:
        return
    was_training = model.training
    model.eval()
    styled = model(photos.to(next(model.parameters()).device)).float().cpu()
    model.train(was_training)
    grid = torch.cat([torch.cat(list(photos), dim=2), torch.cat(list(styled), dim=2)], dim=1)
    rgb = (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="JPEG", quality=90)


def _log(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v)
                            for k, v in record.items()}) + "\n")


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: optional
        return None
    return SummaryWriter(str(folder / "tensorboard"))


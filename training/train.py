"""`nst-video train`: the Johnson et al. recipe, hardened. Readable top to bottom:

  config -> networks -> (resume) -> loop { batch -> forward -> guarded step -> log / checkpoint / sample }
  -> style file

Hardening: mixed precision on GPU (Grams and sums in fp32), gradient clipping, a guard that keeps NaN/Inf
away from the weights (skip; on repeats halve the lr and roll back to the last good checkpoint), atomic
checkpoints with everything needed to continue exactly, and Ctrl-C that saves before leaving."""
from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nst_video.atomic import atomic_output
from nst_video.errors import NstError
from nst_video.model import TransformerNet
from nst_video.progress import progress_bar, stderr_console
from nst_video.styles import StyleInfo, load_style, save_style, user_styles_dir
from nst_video.stylizer import pick_device
from training.data import ContentImages, content_loader, load_rgb_tensor
from training.loss_net import PerceptualLoss, load_vgg_weights

CHECKPOINT_FORMAT = "nst-video-train-checkpoint"
MAX_ROLLBACKS = 5


@dataclass
class TrainConfig:
    content_dir: str
    style_image: str
    name: str
    output: str | None = None            # default: <user styles folder>/<name>.safetensors
    title: str = ""                      # shown by `nst-video styles`
    credit: str = ""                     # who made the style image
    vgg_weights: str | None = None
    checkpoint_dir: str | None = None    # default: runs/<name>
    resume: bool = False
    init_from: str | None = None         # start from another style's weights (fine-tuning converges faster)
    batch_size: int = 4
    image_size: int = 256
    style_size: int = 512                # long side of the style image; sets the scale of its texture
    lr: float = 1e-3
    max_steps: int = 40_000
    num_workers: int = -1                # -1: 4 on GPU, 0 on CPU (workers would compete with the model)
    content_weight: float = 1.0
    style_weight: float = 1e5
    tv_weight: float = 1e-5
    stability_weight: float = 0.0        # outputs of a frame and a noised copy should agree (anti-flicker)
    stability_noise: float = 0.02
    clip_grad_norm: float = 10.0
    nan_patience: int = 3                # non-finite steps in a row before rolling back
    checkpoint_interval: int = 1000
    sample_interval: int = 1000
    log_interval: int = 50
    amp: bool = False
    device: str = "auto"
    seed: int = 42
    inject_nan_at: list[int] = field(default_factory=list)  # fault injection for tests of the NaN guard

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or Path("runs") / self.name) / "last.pt"

    @property
    def output_path(self) -> Path:
        return Path(self.output) if self.output else user_styles_dir() / f"{self.name}.safetensors"


class StopRequested:
    """First Ctrl-C: finish the current step, save, exit. Second Ctrl-C: stop at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        stderr_console.print("[yellow]Ctrl-C: saving a checkpoint after this step (again to abort)[/]")

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def train(cfg: TrainConfig) -> Path | None:
    """Run (or continue) training. Returns the style file, or None when stopped early by Ctrl-C."""
    _validate(cfg)
    device = pick_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    torch.manual_seed(cfg.seed)

    # --- networks ------------------------------------------------------------------------------------
    model = TransformerNet().to(device)
    if cfg.init_from:
        model.load_state_dict(load_style(Path(cfg.init_from))[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_net = PerceptualLoss(load_vgg_weights(cfg.vgg_weights), cfg.content_weight, cfg.style_weight,
                              cfg.tv_weight).to(device)
    loss_net.set_style(load_rgb_tensor(Path(cfg.style_image), max_size=cfg.style_size).unsqueeze(0).to(device))
    dataset = ContentImages(Path(cfg.content_dir), cfg.image_size, cfg.batch_size, cfg.seed)
    workers = cfg.num_workers if cfg.num_workers >= 0 else (4 if device.type == "cuda" else 0)

    # --- resume --------------------------------------------------------------------------------------
    ckpt_path = cfg.checkpoint_path
    step, lr = 0, cfg.lr
    skipped: set[int] = set()
    if ckpt_path.exists():
        if not cfg.resume:
            raise NstError(f"{ckpt_path} exists: pass --resume to continue it, or choose another --checkpoint-dir")
        step, lr, skipped = _load_checkpoint(ckpt_path, model, optimizer, scaler, device)
        stderr_console.print(f"resuming from step {step} ({ckpt_path})")
    elif cfg.resume:
        raise NstError(f"--resume: no checkpoint at {ckpt_path}")
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    sample_photos = _fixed_sample_photos(dataset, cfg.image_size)
    log_file = ckpt_path.parent / "log.jsonl"
    writer = _tensorboard(ckpt_path.parent)

    def save_checkpoint():
        _save_checkpoint(ckpt_path, model, optimizer, scaler, step, lr, cfg, skipped)

    # --- loop ----------------------------------------------------------------------------------------
    bad_in_a_row, rollbacks, started, first_step = 0, 0, time.time(), step
    nan_steps = set(cfg.inject_nan_at)  # each injected fault fires once, so a rollback can recover
    with StopRequested() as stop, progress_bar("it/s") as progress:
        task = progress.add_task(f"training {cfg.name}", total=cfg.max_steps, completed=step, status="")
        batches = iter(content_loader(dataset, step, cfg.max_steps, workers))
        while step < cfg.max_steps and not stop.requested:
            content, used = next(batches)
            skipped |= _skipped_indices(dataset, step, used)
            content = content.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                output = model(content)
                terms = loss_net(output, content)
                if cfg.stability_weight > 0:
                    noised = model(content + cfg.stability_noise * torch.randn_like(content))
                    terms["stability"] = cfg.stability_weight * torch.nn.functional.mse_loss(
                        noised.float(), output.float())
                    terms["total"] = terms["total"] + terms["stability"]
            loss = terms["total"]
            if step in nan_steps:
                nan_steps.discard(step)
                loss = loss * float("nan")

            # --- the guarded step: nothing non-finite reaches the weights ---
            optimizer.zero_grad(set_to_none=True)
            problem = None
            if not torch.isfinite(loss):
                problem = "non-finite loss"
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                if torch.isfinite(grad_norm):
                    scaler.step(optimizer)
                    scaler.update()
                elif use_amp:
                    scaler.update()  # fp16 overflow: the scaler lowers its scale and skips; normal under AMP
                    optimizer.zero_grad(set_to_none=True)
                else:
                    problem = "non-finite gradient"
            if problem:
                optimizer.zero_grad(set_to_none=True)
                bad_in_a_row += 1
                _log(log_file, {"step": step, "event": problem, "lr": lr})
                progress.console.print(f"[red]step {step}: {problem}; step skipped[/]")
                if bad_in_a_row >= cfg.nan_patience:
                    rollbacks += 1
                    if rollbacks > MAX_ROLLBACKS:
                        raise NstError(f"training keeps producing non-finite values ({rollbacks} rollbacks); "
                                       "run `nst-video diagnose` on the same images and weights")
                    lr /= 2
                    if ckpt_path.exists():
                        step, _, skipped = _load_checkpoint(ckpt_path, model, optimizer, scaler, device)
                    _set_lr(optimizer, lr)
                    bad_in_a_row = 0
                    _log(log_file, {"step": step, "event": "rollback", "lr": lr})
                    progress.console.print(f"[red]{cfg.nan_patience} bad steps in a row: lr halved to {lr:g}, "
                                           f"rolled back to step {step}[/]")
                    progress.update(task, completed=step)
                    batches = iter(content_loader(dataset, step, cfg.max_steps, workers))
                    continue
                step += 1  # move past the bad batch
                progress.update(task, completed=step)
                continue
            bad_in_a_row = 0
            step += 1

            values = {k: v.item() for k, v in terms.items()}
            progress.update(task, completed=step, status="  ".join(f"{k} {v:.3g}" for k, v in values.items()))
            if step % cfg.log_interval == 0 or step == cfg.max_steps:
                rate = (step - first_step) / max(time.time() - started, 1e-9)
                _log(log_file, {"step": step, **values, "lr": lr, "it_s": round(rate, 3), "skipped": len(skipped)})
                progress.console.print(f"step {step:>6}/{cfg.max_steps}  " + "  ".join(
                    f"{k} {v:9.4g}" for k, v in values.items()) + f"  {rate:.2f} it/s", soft_wrap=True)
                if writer:
                    for k, v in values.items():
                        writer.add_scalar(f"loss/{k}", v, step)
            if step % cfg.checkpoint_interval == 0:
                save_checkpoint()
            if step % cfg.sample_interval == 0 or step == cfg.max_steps:
                _save_samples(model, sample_photos, ckpt_path.parent / "samples" / f"step_{step:06d}.jpg")

    save_checkpoint()
    if skipped:
        stderr_console.print(f"skipped {len(skipped)} unreadable image(s) in {cfg.content_dir}")
    if step < cfg.max_steps:
        stderr_console.print(f"stopped at step {step}; checkpoint saved to {ckpt_path}; "
                             "continue with the same command plus --resume")
        return None
    training = {k: v for k, v in asdict(cfg).items()
                if k not in ("output", "resume", "checkpoint_dir", "vgg_weights", "inject_nan_at", "title",
                             "credit", "name", "num_workers")}
    training.update(steps=step, device=torch.cuda.get_device_name() if device.type == "cuda" else device.type,
                    content_dir=Path(cfg.content_dir).name, style_image=Path(cfg.style_image).name,
                    content_images=len(dataset) - len(skipped), final_lr=lr)
    info = StyleInfo(name=cfg.name, title=cfg.title or cfg.name.replace("_", " ").title(), credit=cfg.credit,
                     training=training)
    out = save_style(cfg.output_path, model.state_dict(), info)
    stderr_console.print(f"wrote style '{cfg.name}' to {out}")
    return out


def _validate(cfg: TrainConfig) -> None:
    if not Path(cfg.style_image).is_file():
        raise NstError(f"--style-image {cfg.style_image}: no such file")
    if not cfg.name or any(c in cfg.name for c in "/\\"):
        raise NstError("--name must be a plain name (letters, digits, _ or -)")
    for key in ("batch_size", "image_size", "max_steps", "checkpoint_interval", "sample_interval", "log_interval"):
        if getattr(cfg, key) < 1:
            raise NstError(f"--{key.replace('_', '-')} must be at least 1")
    if cfg.image_size < 16:
        raise NstError("--image-size must be at least 16")


def _skipped_indices(dataset: ContentImages, step: int, used: torch.Tensor) -> set[int]:
    """Files passed over because they could not be read: from the requested index up to the one used."""
    out = set()
    n = len(dataset)
    for slot, actual in enumerate(used.tolist()):
        i = dataset.file_index(step, slot)
        while i != actual:
            out.add(i)
            i = (i + 1) % n
    return out


def _save_checkpoint(path, model, optimizer, scaler, step, lr, cfg, skipped) -> None:
    state = {"format": CHECKPOINT_FORMAT, "step": step, "lr": lr, "config": asdict(cfg),
             "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
             "torch_rng": torch.get_rng_state(), "skipped": sorted(skipped)}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path, model, optimizer, scaler, device) -> tuple[int, float, set[int]]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a training checkpoint")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
    except Exception as e:
        raise NstError(f"{path}: cannot resume from this checkpoint ({type(e).__name__}: {e})") from None
    torch.set_rng_state(state["torch_rng"].cpu())
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    _set_lr(optimizer, state["lr"])
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


def config_fields() -> list[str]:
    return [f.name for f in fields(TrainConfig)]

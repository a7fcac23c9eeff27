"""`nst-video optimize`: style transfer by optimising the picture itself (Gatys et al., CVPR 2016) - any
painting, no training; slow (minutes), but it is the reference a trained style tries to reach. Readable top
to bottom:

  OptimizeConfig -> check() inputs and output -> plan_levels() (coarse to fine) -> estimate_memory() against
  available_memory() -> the loss network (the same PerceptualLoss as `train`, scale-free, the style Grams
  mixed by weight) -> per level { content and style at that size -> start image -> loop { guarded step ->
  progress / --save-every / stop } } -> the final image, written atomically

Stable by construction:
  - the start image is the photo plus a little noise (`init`), so step 0 is already a sensible picture;
  - scale-free loss terms (loss_net.py): content and each style layer relative to the target's mean square
    (+ eps), TV per pixel, so the weights mean the same at every size and no layer dominates;
  - gradients clipped at CLIP_FACTOR x the median norm of the recent steps (a spike is cut, normal steps are
    untouched; the loss's scale does not matter); Adam's step size decays to a tenth over each level;
  - every step is checked: a non-finite loss, gradient or image, or a loss jumping to DIVERGE_FACTOR x the
    best so far, is never kept: the image rolls back to the last good one, the step size halves and the
    optimiser's memory is cleared; after `max_failures` in a row it stops and says so, writing nothing under
    the output's name (the last good image, if a step succeeded, goes to OUT.last-good.EXT);
  - the image stays in [0, 1]: it is clamped after every step (a projected gradient method);
  - big outputs are done coarse to fine: the coarsest level (long side <= coarse_size) lays out the strokes,
    each level above, twice as large, starts from the one below upscaled and only refines, so strokes stay
    large relative to the picture; memory is estimated before anything runs and a size that does not fit is
    refused with the figures, and an allocation failure during the run still keeps the last good image (as
    OUT.last-good.EXT).

A stop signal (Ctrl-C, SIGTERM, SIGHUP) finishes the step, saves the current image and returns None."""
from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from nst_video.errors import NstError
from nst_video.images import IMAGE_SUFFIXES, LoadedImage, load_image, save_image
from nst_video.memory import available_ram
from nst_video.progress import progress_bar
from nst_video.report import say
from nst_video.signals import StopFlag, signal_name
from nst_video.stylizer import pick_device, transfer_luminance
from nst_video.training.config import MIN_SIDE, OptimizeConfig
from nst_video.training.loss_net import PerceptualLoss, load_vgg_weights

# Gatys et al.'s layers, as far as the weights go (they stop at relu4_3: no relu5_1).
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
ADAM_FINAL_LR = 0.1        # Adam's step size decays exponentially to this fraction over each level
LBFGS_HISTORY = 20         # curvature pairs kept (memory: 2 x 20 copies of the image)
CLIP_FACTOR = 10.0         # clip a gradient above this multiple of the median norm of the last CLIP_WINDOW
CLIP_WINDOW = 20
DIVERGE_FACTOR = 10.0      # a loss above this multiple of the level's best counts as a failed step
REFINE_FRACTION = 0.5      # each finer level runs this fraction of --steps


@dataclass
class Level:
    width: int
    height: int
    steps: int


@dataclass
class OptimizeResult:
    output: Path
    width: int
    height: int
    steps: int                              # steps done, all levels together
    levels: list[Level]
    terms: dict[str, float]                 # the loss terms of the image written
    failures: list[tuple[int, str]]         # (step, what went wrong): each one rolled back
    intermediates: list[Path]
    seconds: float
    stop_signal: int | None = None          # set when a stop signal ended the run early


class _BadStep(Exception):
    """A step whose result must not be kept (the message says why)."""


def parse_style_spec(spec: str) -> tuple[str, float]:
    """'painting.jpg' -> (path, 1.0); 'painting.jpg:0.7' -> (path, 0.7). A name that exists as a file as it
    is wins (a file may have ':' in its name)."""
    path, sep, weight = spec.rpartition(":")
    if not sep or Path(spec).exists() or not path:
        return spec, 1.0
    try:
        value = float(weight)
    except ValueError:
        return spec, 1.0  # not a weight: a path with a colon in it (it is checked when it is read)
    if not math.isfinite(value) or value <= 0:
        raise NstError(f"style image {spec}: the weight after ':' must be a number above 0")
    return path, value


def check(cfg: OptimizeConfig) -> None:
    """The bounds declared in OptimizeConfig, and the output: everything that can be refused before work."""
    for f in fields(cfg):
        value, meta = getattr(cfg, f.name), f.metadata
        flag = "--" + f.name.replace("_", "-")
        if meta.get("choices") and value not in meta["choices"]:
            raise NstError(f"{flag} {value}: choose one of {', '.join(meta['choices'])}")
        if isinstance(value, float) and not math.isfinite(value):  # nan passes every comparison below
            raise NstError(f"{flag} {value}: must be a finite number")
        if meta.get("max") is not None and value is not None and value > meta["max"]:
            raise NstError(f"{flag} {value}: must be at most {meta['max']}")
        low = meta.get("min")
        if low is not None and value is not None and (value < low or (meta.get("min_open") and value == low)):
            raise NstError(f"{flag} {value}: must be {'greater than' if meta.get('min_open') else 'at least'} {low:g}")
    if not cfg.styles:
        raise NstError("no style image given")
    for path, weight in cfg.styles:
        if not (math.isfinite(weight) and weight > 0):
            raise NstError(f"style image {path}: weight {weight} must be a number above 0")
    out = Path(cfg.output)
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise NstError(f"{out}: unknown image format '{out.suffix or '(no extension)'}'; use e.g. .png or .jpg")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise NstError(f"{out}: output folder {folder} does not exist")
    for src in [cfg.content, *(p for p, _ in cfg.styles)]:
        if Path(src).exists() and out.exists() and out.resolve() == Path(src).resolve():
            raise NstError(f"{out}: the output would overwrite an input")


# --- sizes and memory ---


def plan_levels(width: int, height: int, size: int, coarse_size: int, steps: int) -> list[Level]:
    """The sizes to optimise at, coarse to fine: the result (long side `size`, the photo's aspect), and below
    it halves until the long side is at most `coarse_size` (never a short side under 64 px)."""
    scale = size / max(width, height)
    final = (max(1, round(width * scale)), max(1, round(height * scale)))
    if min(final) < MIN_SIDE:
        raise NstError(f"at --size {size} the result would be {final[0]}x{final[1]}: too thin for the loss network "
                       f"(at least {MIN_SIDE} px each way); raise --size")
    sizes = [final]
    while max(sizes[0]) > coarse_size and min(sizes[0]) // 2 >= 64:
        w, h = sizes[0]
        sizes.insert(0, (max(1, round(w / 2)), max(1, round(h / 2))))
    return [Level(w, h, steps if i == 0 else max(1, round(steps * REFINE_FRACTION)))
            for i, (w, h) in enumerate(sizes)]


# Float32 values per pixel of the loss network's activations up to relu4_2 that autograd keeps for the backward
# pass (the input, conv outputs = ReLU outputs in place, pools: 3+64+64 at full size, 64+128+128 at 1/4,
# 128+256+256+256 at 1/16, 256+512+512 at 1/64), plus the gradients alive during the backward pass (about two
# of the largest maps). CALIBRATION and BASE_BYTES fit the peak resident memory measured on the CPU (Adam at
# 256x192: 1.21 GiB, at 1024x768: 2.73 GiB, at 2048x1536: 7.54 GiB, estimated 7.8; L-BFGS at 512x384:
# 1.61-1.65 GiB, estimated 1.66).
_SAVED_PER_PIXEL = 3 + 64 + 64 + (64 + 128 + 128) / 4 + (128 + 3 * 256) / 16 + (256 + 2 * 512) / 64
_BACKWARD_PER_PIXEL = 2 * 64
CALIBRATION = 1.3
BASE_BYTES = {"cpu": 1152 * 2**20, "other": 256 * 2**20}  # CPU: the process (PyTorch, libraries, VGG weights)


def estimate_memory(levels: list[Level], style_pixels: list[int], optimizer: str, device_type: str = "cpu") -> int:
    """Bytes at the peak (the finest level): the loss network forward and backward on the image, the style
    images' forward pass (no gradients), the optimiser's state and the image copies kept for rollback; on the
    CPU also the process itself (on a GPU only the weights and caches count against its memory)."""
    pixels = levels[-1].width * levels[-1].height
    network = (_SAVED_PER_PIXEL + _BACKWARD_PER_PIXEL) * pixels * 4
    style_forward = 2 * 64 * max(style_pixels, default=0) * 4  # the two largest maps alive at once
    image = 3 * pixels * 4
    state = (2 * LBFGS_HISTORY + 4) * image if optimizer == "lbfgs" else 3 * image
    base = BASE_BYTES["cpu" if device_type == "cpu" else "other"]
    return int(base + CALIBRATION * (max(network, style_forward) + state + 4 * image))


def available_memory(device: torch.device) -> int | None:
    """Bytes free for this process on the device: the GPU's free memory, or on the CPU what the system can
    give without swapping (nst_video.memory.available_ram, which respects a container's limit). None where it
    cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    return available_ram()


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


# --- images ---


def _to_tensor(loaded: LoadedImage) -> torch.Tensor:
    return torch.from_numpy(np.array(loaded.rgb)).permute(2, 0, 1).float().div(255.0)[None].contiguous()


def _resize(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    if x.shape[-2:] == (height, width):
        return x
    down = height < x.shape[-2] or width < x.shape[-1]
    return F.interpolate(x, size=(height, width), mode="bilinear" if down else "bicubic", align_corners=False,
                         antialias=down).clamp(0, 1)


def _style_size(width: int, height: int, level: Level, scale: float) -> tuple[int, int]:
    """A style image's size at a level: its long side `scale` x the level's long side, its aspect kept."""
    factor = scale * max(level.width, level.height) / max(width, height)
    return max(MIN_SIDE, round(width * factor)), max(MIN_SIDE, round(height * factor))


def _style_at(style: torch.Tensor, level: Level, scale: float) -> torch.Tensor:
    return _resize(style, *_style_size(style.shape[-1], style.shape[-2], level, scale))


def _cover(style: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The style image scaled to cover width x height, centre-cropped (for --init style)."""
    h, w = style.shape[-2:]
    factor = max(width / w, height / h)
    big = _resize(style, max(width, math.ceil(w * factor)), max(height, math.ceil(h * factor)))
    top, left = (big.shape[-2] - height) // 2, (big.shape[-1] - width) // 2
    return big[..., top:top + height, left:left + width]


def _start_image(cfg: OptimizeConfig, content: torch.Tensor, first_style: torch.Tensor) -> torch.Tensor:
    if cfg.init == "noise":
        return torch.rand(content.shape, device=content.device)
    if cfg.init == "style":
        return _cover(first_style, content.shape[-1], content.shape[-2]).clone()
    return (content + cfg.init_noise * torch.randn(content.shape, device=content.device)).clamp(0, 1)


def _check_readable(loaded: LoadedImage, what: str) -> None:
    h, w = loaded.rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise NstError(f"{loaded.path}: {w}x{h} is too small for a {what} (at least {MIN_SIDE} px each way)")


# --- the run ---


def optimize(cfg: OptimizeConfig, poison: Callable[[int], str | None] | None = None) -> OptimizeResult | None:
    """Render the photo in the style. Returns the result, or None when a stop signal ended it early (the
    current image is saved either way). `poison(step)` may return "loss" or "image" to make that attempt's
    loss or image NaN, or "oom" to fail an allocation: fault injection for the tests, not part of the
    command."""
    check(cfg)
    device = pick_device(cfg.device)
    content_img = load_image(Path(cfg.content), max_size=cfg.size)  # never needed larger than the result
    h, w = content_img.rgb.shape[:2]
    levels = plan_levels(w, h, cfg.size, cfg.coarse_size, cfg.steps)
    _check_readable(content_img, "photo")
    style_imgs = []
    for path, _ in cfg.styles:  # never decoded larger than the finest level needs
        style_imgs.append(load_image(Path(path), max_size=max(MIN_SIDE, math.ceil(cfg.size * cfg.style_scale))))
        _check_readable(style_imgs[-1], "style image")
    style_pixels = [math.prod(_style_size(s.rgb.shape[1], s.rgb.shape[0], levels[-1], cfg.style_scale))
                    for s in style_imgs]
    need, free = estimate_memory(levels, style_pixels, cfg.optimizer, device.type), available_memory(device)
    final = levels[-1]
    if free is not None and need > 0.9 * free:
        raise NstError(f"--size {cfg.size} ({final.width}x{final.height}) needs about {_gib(need)} of "
                       f"{'GPU ' if device.type == 'cuda' else ''}memory for the optimisation, and {_gib(free)} is "
                       f"free: choose a smaller --size{' or --optimizer adam' if cfg.optimizer == 'lbfgs' else ''}")
    say(f"optimizing {cfg.content} in the style of {', '.join(Path(p).name for p, _ in cfg.styles)}: "
        + ", then ".join(f"{lv.width}x{lv.height} {lv.steps} steps" for lv in levels)
        + f" ({cfg.optimizer}; about {_gib(need)} of memory" + (f", {_gib(free)} free)" if free else ")"))

    loss_net = PerceptualLoss(load_vgg_weights(cfg.vgg_weights), cfg.content_weight, cfg.style_weight,
                              cfg.tv_weight, content_layer=CONTENT_LAYER, style_layers=STYLE_LAYERS,
                              scale_free=True).to(device)
    content_full = _to_tensor(content_img).to(device)
    styles_full = [_to_tensor(s).to(device) for s in style_imgs]
    weights = [wt for _, wt in cfg.styles]
    torch.manual_seed(cfg.seed)
    run = _Run(cfg, loss_net, levels, poison)
    started = time.time()

    def on_stop(signum):
        run.progress.console.print(f"[yellow]{signal_name(signum)}: saving the current image after this step "
                                   "(again to abort)[/]")

    image = None
    try:
        with progress_bar("it/s") as run.progress, StopFlag(on_stop) as run.stop:
            for index, level in enumerate(levels):
                content = _resize(content_full, level.width, level.height)
                loss_net.set_content(content)
                loss_net.set_style([_style_at(s, level, cfg.style_scale) for s in styles_full], weights)
                image = (_start_image(cfg, content, styles_full[0]) if image is None
                         else _resize(image, level.width, level.height))
                image = run.level(index, image, content)
                if run.stop:
                    break
    except _GiveUp as e:
        raise NstError(f"{e} {_keep_last_good(cfg, run, content_full, content_img, final)}") from None
    except RuntimeError as e:  # the estimate was too low, or something else took the memory meanwhile
        if not _out_of_memory(e):
            raise
        raise NstError(f"ran out of memory during the optimisation at {run.level_size}: choose a smaller --size. "
                       f"{_keep_last_good(cfg, run, content_full, content_img, final)}") from None

    out = _write(cfg, image, content_full, content_img, final)
    result = OptimizeResult(Path(cfg.output), final.width, final.height, run.total_steps, levels, run.final_terms,
                            run.failures, run.intermediates, time.time() - started,
                            run.stop.requested if run.stop else None)
    rate = result.steps / max(result.seconds, 1e-9)
    rollbacks = f"; {len(run.failures)} failed step(s) rolled back" if run.failures else ""
    if result.stop_signal:
        say(f"stopped after {result.steps} steps: saved the current image to {out}{rollbacks}")
        return None
    say(f"wrote {out} ({final.width}x{final.height}, {result.steps} steps in {result.seconds:.0f} s, "
        f"{rate:.2f} it/s{rollbacks})")
    return result


class _GiveUp(Exception):
    pass


class _Run:
    """The optimisation loop and its guard; state shared across levels (step count, failures, saves)."""

    def __init__(self, cfg: OptimizeConfig, loss_net: PerceptualLoss, levels: list[Level], poison):
        self.cfg, self.loss_net, self.levels, self.poison = cfg, loss_net, levels, poison
        self.total_steps = 0
        self.failures: list[tuple[int, str]] = []
        self.intermediates: list[Path] = []
        self.final_terms: dict[str, float] = {}
        self.last_good: torch.Tensor | None = None
        self.last_good_step = 0
        self.level_size = ""
        self.progress = None
        self.stop: StopFlag | None = None

    def _optimizer(self, image: torch.Tensor, lr: float) -> torch.optim.Optimizer:
        if self.cfg.optimizer == "lbfgs":
            # one iteration per step() call, so every step is checked; tolerances off: the loss's scale is ours
            return torch.optim.LBFGS([image], lr=lr, max_iter=1, history_size=LBFGS_HISTORY, tolerance_grad=0,
                                     tolerance_change=0)
        return torch.optim.Adam([image], lr=lr)

    def level(self, index: int, start: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        cfg, lvl = self.cfg, self.levels[index]
        self.level_size = f"{lvl.width}x{lvl.height}"
        image = start.detach().contiguous().clone().requires_grad_(True)
        backoff = 1.0
        optimizer = self._optimizer(image, cfg.step_size)
        self.last_good, best, norms = image.detach().clone(), math.inf, deque(maxlen=CLIP_WINDOW)
        in_a_row, step, started = 0, 0, time.time()
        label = f"optimize {self.level_size}" + (f" ({index + 1}/{len(self.levels)})" if len(self.levels) > 1 else "")
        task = self.progress.add_task(label, total=lvl.steps, status="")

        fault = None

        def closure():
            nonlocal best
            optimizer.zero_grad(set_to_none=True)
            terms = self.loss_net(image)
            total = terms["total"]
            if fault == "loss":
                total = total * float("nan")
            elif fault == "oom":
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory (injected)")
            value = float(total.detach())
            if not math.isfinite(value):
                raise _BadStep("non-finite loss")
            if value > DIVERGE_FACTOR * best:
                raise _BadStep(f"loss jumped to {value:.3g} ({value / best:.0f}x the best so far)")
            total.backward()
            norm = float(image.grad.norm())
            if not math.isfinite(norm):
                raise _BadStep("non-finite gradient")
            if len(norms) >= 5 and norm > CLIP_FACTOR * statistics.median(norms):
                image.grad.mul_(CLIP_FACTOR * statistics.median(norms) / norm)
            norms.append(norm)
            # this image has a finite, sane loss: it is the one a later failure rolls back to
            best = min(best, value)
            self.last_good = image.detach().clone()
            self.last_good_step = self.total_steps
            self.final_terms = {k: float(v.detach()) for k, v in terms.items()}
            return total.detach()

        while step < lvl.steps and not self.stop:
            if cfg.optimizer == "adam":
                for group in optimizer.param_groups:
                    group["lr"] = cfg.step_size * backoff * ADAM_FINAL_LR ** (step / lvl.steps)
            fault = self.poison(self.total_steps) if self.poison else None
            try:
                optimizer.step(closure)
                with torch.no_grad():
                    if fault == "image":
                        image.fill_(float("nan"))
                    if not bool(torch.isfinite(image).all()):
                        raise _BadStep("non-finite image")
                    image.clamp_(0, 1)
            except _BadStep as e:
                in_a_row += 1
                backoff /= 2
                self.failures.append((self.total_steps, str(e)))
                with torch.no_grad():
                    image.copy_(self.last_good)
                optimizer = self._optimizer(image, cfg.step_size * backoff)
                norms.clear()
                self.progress.console.print(f"[red]step {self.total_steps}: {e}: rolled back to the last good "
                                            f"image, step size x{backoff:g}[/]")
                if in_a_row >= cfg.max_failures:
                    raise _GiveUp(f"the optimisation failed {in_a_row} steps in a row ({e}; step size down to "
                                  f"x{backoff:g}): try --optimizer adam, a lower --lr or --style-weight.") from None
                continue
            in_a_row = 0
            step += 1
            self.total_steps += 1
            status = "  ".join(f"{k} {v:.3g}" for k, v in self.final_terms.items())
            self.progress.update(task, completed=step, status=status)
            if step % cfg.log_interval == 0 or step == lvl.steps:
                rate = step / max(time.time() - started, 1e-9)
                self.progress.console.print(f"step {step:>5}/{lvl.steps} {self.level_size}  {status}  "
                                            f"{rate:.2f} it/s", markup=False)
            if cfg.save_every and self.total_steps % cfg.save_every == 0:
                self._save_intermediate(image.detach(), content)  # finite and in range: checked above

        # the image to keep: the last step's result where its loss passes the same checks, else the last good one
        with torch.no_grad():
            terms = self.loss_net(image)
        if math.isfinite(float(terms["total"])) and float(terms["total"]) <= DIVERGE_FACTOR * best:
            self.final_terms = {k: float(v) for k, v in terms.items()}
            self.last_good = image.detach().clone()
        return self.last_good

    def _save_intermediate(self, image: torch.Tensor, content: torch.Tensor) -> None:
        out = Path(self.cfg.output)
        digits = max(4, len(str(sum(lvl.steps for lvl in self.levels))))
        path = out.with_name(f"{out.stem}.step{self.total_steps:0{digits}d}{out.suffix}")
        save_image(path, _to_uint8(_finish(self.cfg, image, content)))
        self.intermediates.append(path)


def _finish(cfg: OptimizeConfig, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    if cfg.preserve_color:
        image = transfer_luminance(image, _resize(content, image.shape[-1], image.shape[-2]))
    return image.clamp(0, 1)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return image[0].detach().mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()


def last_good_path(output: str | Path) -> Path:
    """Where a failed run keeps its last good image: OUT.last-good.EXT, never OUTPUT itself."""
    out = Path(output)
    return out.with_name(f"{out.stem}.last-good{out.suffix}")


def _keep_last_good(cfg: OptimizeConfig, run: _Run, content: torch.Tensor, content_img: LoadedImage,
                    final: Level) -> str:
    """After a failure: nothing under OUTPUT (a failed run must not leave what looks like its result); the
    last good image under a name that says so, where at least one step succeeded (before that it is only the
    start image). Returns the sentence that says which."""
    if run.last_good is None or run.last_good_step == 0:
        return f"Nothing was written to {cfg.output}."
    path = _write(cfg, run.last_good.detach().cpu(), content.cpu(), content_img, final, last_good_path(cfg.output))
    return f"Saved the last good image ({run.last_good_step} steps) to {path}; nothing was written to {cfg.output}."


def _write(cfg: OptimizeConfig, image: torch.Tensor, content: torch.Tensor, content_img: LoadedImage,
           final: Level, path: Path | None = None) -> Path:
    """The result at the final size (a run stopped at a coarse level is upscaled), the photo's alpha kept, to
    `path` (default: the output)."""
    image = _resize(image.detach(), final.width, final.height)
    alpha = content_img.alpha
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize((final.width, final.height), Image.Resampling.LANCZOS))
    path = Path(path or cfg.output)
    save_image(path, _to_uint8(_finish(cfg, image, content.to(image.device))), alpha)
    return path


def _out_of_memory(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text



"""The settings of the training commands - TrainConfig (`train`, `distill`, `diagnose`) and OptimizeConfig
(`optimize`) - with each field's default, help text, lower bound and choices: the one declaration the CLI
builds its options from (nst_video/cli.py, dataclass_options) and the jobs check for callers from Python.

Plain data, without torch: `nst-video --help` reads it (docs/architecture.md)."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path

from nst_video.styles import user_styles_dir  # plain paths (no torch)

# `nst-video distill` (training/distill.py): DISTILL_WEIGHT puts the teacher term at about the size of the
# perceptual terms at the start; DISTILL_STEPS is where the samples stopped changing visibly (docs/training.md).
DISTILL_WEIGHT = 1e3
DISTILL_STEPS = 1500

# `nst-video optimize` (training/optimize.py)
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}  # L-BFGS: its own step lengths times this; Adam: pixels (0..1) per step
MIN_SIDE = 16              # pixels: below this VGG's pooling leaves nothing of an image


def setting(default=MISSING, help: str = "", min: float | None = None, min_open: bool = False, choices=None,
            max: float | None = None):
    """A config field with its help text, bounds and choices: the CLI builds its options from these, and the
    jobs (train(), optimize's check()) enforce the same bounds for callers from Python."""
    return field(default=default, metadata={"help": help, "min": min, "min_open": min_open, "max": max,
                                            "choices": choices})


# Seeds go to numpy's and torch's generators, which take 0 .. 2**64-1 (training adds the step to it, times a
# million): a larger one would be an internal error, not a usage error.
MAX_SEED = 2**32 - 1
# Each data loading process is a Python with torch loaded: hundreds of them are a machine out of memory.
MAX_WORKERS = 64
# How the processes of a run under torchrun (or --nproc) exchange gradients (training/distributed.py).
DIST_BACKENDS = ("auto", "gloo", "nccl")


@dataclass
class TrainConfig:
    content_dir: str = setting(help="Folder of training photos (recursive).")
    style_image: str = setting(help="The painting to learn.")
    name: str = setting(help="Style name (file name and `--style` name).")
    output: str | None = setting(None, "Finished style file (default: the user styles folder, <name>.safetensors).")
    title: str = setting("", "Display title (default: from the name).")
    credit: str = setting("", "Credit of the style image (artist, work, year, licence).")
    vgg_weights: str | None = setting(None, "VGG16 weights (.pth state dict); default $NST_VIDEO_VGG_WEIGHTS, "
                                      "else torchvision's download.")
    checkpoint_dir: str | None = setting(None, "Default: runs/<name>.")
    resume: bool = setting(False, "Continue from the checkpoint in --checkpoint-dir.")
    force: bool = setting(False, "Replace an existing style file of that name, starting afresh (its checkpoint is "
                          "removed).")
    init_from: str | None = setting(None, "Start from another style's weights (name or file) instead of random.")
    architecture: str = setting("johnson", "The network to train (johnson: the paper's; lite: half width, "
                                "real time on a CPU; johnson-fixed-norm: the paper's with statistics frozen, "
                                "made --init-from a johnson style; nst_video/architectures.py).")
    teacher: str | None = setting(None, "Distil from this style file: its outputs become targets beside the "
                                  "perceptual loss (`nst-video distill`).")
    distill_weight: float = setting(0.0, "Weight of the teacher term (mean squared difference of the outputs).",
                                    min=0)
    batch_size: int = setting(4, min=1)
    image_size: int = setting(256, "Training crop size (pixels).", min=16)
    max_zoom: float = setting(1.0, "Enlarge each photo by a random factor up to this before cropping (1 = off): "
                              "crops as smooth as a patch of a high-resolution picture, which a "
                              "johnson-fixed-norm network otherwise paints at low contrast (docs/training.md).",
                              min=1)
    style_size: int = setting(512, "Long side of the style image: sets the scale of its texture.", min=16)
    lr: float = setting(1e-3, "Adam's learning rate.", min=0, min_open=True)
    max_steps: int = setting(40_000, min=1)
    num_workers: int = setting(-1, "Data loading processes (-1: 4 on GPU, 0 on CPU, where workers would "
                               "compete with the model).", min=-1, max=MAX_WORKERS)
    content_weight: float = setting(1.0, min=0)
    style_weight: float = setting(1e5, min=0)
    tv_weight: float = setting(1e-5, min=0)
    stability_weight: float = setting(0.0, "Weight of the anti-flicker term (output of a frame vs a noised copy). "
                                      "0 = off.", min=0)
    stability_noise: float = setting(0.02, min=0)
    motion_weight: float = setting(0.0, "Weight of the motion term: the output of a slightly moved copy of a photo "
                                   "(shifted, turned, scaled) vs the output moved the same way, so the network "
                                   "moves its texture with the picture instead of redrawing it. 0 = off.", min=0)
    motion_shift: float = setting(3.0, "Largest shift (pixels) of the motion term; turns up to 2 degrees and "
                                  "scales up to 2% come with it.", min=0)
    video_dir: str | None = setting(None, "Folder of video clips for the flow term (recursive).")
    flow_weight: float = setting(0.0, "Weight of the flow term: the output of a video frame vs the output of the "
                                 "frame before, moved along the input's optical flow where it is trusted (the "
                                 "warping error, on real clips from --video-dir). 0 = off.", min=0)
    ema_decay: float = setting(0.0, "Also keep a moving average of the weights (this much of the average kept per "
                               "step: 0.99 is about the last 100 steps; 0 = off) and write the style file from it: "
                               "at a small batch each step moves the weights by noise that the average cancels.",
                               min=0, max=0.9999)
    clip_grad_norm: float = setting(10.0, min=0, min_open=True)
    nan_patience: int = setting(3, "Non-finite steps in a row before rolling back.", min=1)
    checkpoint_interval: int = setting(1000, min=1)
    sample_interval: int = setting(1000, min=1)
    log_interval: int = setting(50, min=1)
    amp: bool = setting(False, "Mixed precision: FP16 on a GPU, bfloat16 on a CPU (fast where it has AMX or "
                        "AVX512-BF16); Grams and loss sums stay fp32.")
    device: str = setting("auto", "auto, cpu, cuda or mps.")
    seed: int = setting(42, min=0, max=MAX_SEED)
    dist_backend: str = setting("auto", "Several processes (torchrun, --nproc): how they average gradients. auto: "
                                "nccl on CUDA GPUs, gloo on the CPU.", choices=DIST_BACKENDS)

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or Path("runs") / self.name) / "last.pt"

    @property
    def output_path(self) -> Path:
        return Path(self.output) if self.output else user_styles_dir() / f"{self.name}.safetensors"


@dataclass
class OptimizeConfig:
    content: str = setting(help="The photo.")
    styles: list[tuple[str, float]] = setting(help="Style images and their relative weights.")
    output: str = setting(help="The result (any image format: .png, .jpg, ...).")
    size: int = setting(512, "Long side of the result (pixels); the photo is scaled to it.", min=MIN_SIDE)
    steps: int = setting(300, "Steps at the coarsest size (finer sizes refine with half as many).", min=1)
    optimizer: str = setting("lbfgs", "lbfgs: fewest steps; adam: less memory, steadier on odd inputs.",
                             choices=OPTIMIZERS)
    lr: float | None = setting(None, "Step size (default: 1 for L-BFGS, 0.02 for Adam, which decays to a tenth).",
                               min=0, min_open=True)
    content_weight: float = setting(1.0, "Weight of the photo's content (relu4_2, relative error).", min=0)
    style_weight: float = setting(30.0, "Weight of the painting's style (Grams at relu1_1..relu4_1, relative "
                                       "error, summed).", min=0)
    tv_weight: float = setting(1.0, "Weight of total variation (mean neighbour difference): smoothness.", min=0)
    init: str = setting("content", "Start image: content (the photo plus a little noise), noise or style.",
                        choices=INITS)
    init_noise: float = setting(0.05, "Noise added to the photo with --init content (0..1 pixel units).", min=0)
    style_scale: float = setting(1.0, "Size of the style images relative to the result (smaller: finer "
                                      "strokes).", min=0, min_open=True)
    preserve_color: bool = setting(False, "Keep the photo's colours; transfer only luminance.")
    save_every: int = setting(0, "Also write the image every N steps (OUT.stepNNNN.EXT; 0 = off).", min=0)
    coarse_size: int = setting(512, "Long side of the coarsest level: larger results start at this size "
                                    "and double.", min=MIN_SIDE)
    max_failures: int = setting(5, "Failed steps in a row before giving up.", min=1)
    log_interval: int = setting(50, "A progress line every N steps.", min=1)
    device: str = setting("auto", "auto, cpu, cuda or mps.")
    vgg_weights: str | None = setting(None, "VGG16 weights (.pth), as for `train`; default $NST_VIDEO_VGG_WEIGHTS.")
    seed: int = setting(0, "Seed of the start image's noise.", min=0, max=MAX_SEED)

    @property
    def step_size(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

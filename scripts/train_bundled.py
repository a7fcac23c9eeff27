"""Train (or continue training) the bundled styles in checkpoints/ with `nst-video train`.

    python scripts/train_bundled.py --data ../shared/data                 # all six, CPU settings
    python scripts/train_bundled.py --data ../shared/data --gpu           # the full recipe on a GPU
    python scripts/train_bundled.py --data ../shared/data --only udnie --max-steps 800
    python scripts/train_bundled.py --data ../shared/data --only mosaic,starry_night --steady  # steadier on video
    python scripts/train_bundled.py --only mosaic --steady --flow-weight 1000 --style-weight 1e5  # + real clips

Every run resumes from runs/<name>/last.pt when it exists, so a long training can be done in pieces (e.g.
10-minute slots on a GPU machine); a finished run there is refused, not resumed. The first style trains from
random weights; the others may start from it (--init-from), which reaches a clearly stylized result in far
fewer steps: the decoder has already learned to paint, only the palette and texture must change. Settings end
up in each style's metadata.

--steady fine-tunes a finished style in place for video: from its own weights, at a fifth of the learning
rate, with the motion term (`--motion-weight`: the network learns to move its texture with the picture
instead of redrawing it), in runs/<name>-steady; with --flow-weight also the flow term on real clips
(TRAINING_CLIPS, none of which the benchmarks measure), in runs/<name>-steady-flow. All bundled styles but
`the_scream` (whose frames moved away from its painting) went through --steady; all but `great_wave` then through

    python scripts/train_bundled.py --only mosaic,udnie --steady --flow-weight 1000 --style-weight 1e5
    python scripts/train_bundled.py --only starry_night,composition_vii,the_scream --steady --flow-weight 1000 \
        --style-weight 1.5e5

(the flow term alone washes texture out of flat regions; the higher style weight wins it back; README,
"Flicker"). The lites were distilled again from their new teachers where that came out better.

--finetune-256 continues a finished style from its own weights at 256 px crops (batch 4, bfloat16 autocast),
with the temporal terms it was last steadied with (its metadata's motion and flow weights), on the training photos
less a held-out split (HELD_OUT_COUNT photos of train256, picked by held_out_photos(); scripts/measure_styles.py
measures on them). The style image stays at 256 px, so the texture keeps its scale; the network sees twice the context
per crop. Each style weight gets its own run folder, runs/<name>-ft256-sw<weight>, and the finished style is
written there, not into checkpoints/: it replaces the bundled one only where the held-out measurement says it
is better (docs/training.md). A short probe and the full run at the same weight share the folder, so

    python scripts/train_bundled.py --only great_wave --finetune-256 --style-weight 1e5 --max-steps 40
    python scripts/train_bundled.py --only great_wave --finetune-256 --style-weight 1e5 --max-steps 800

continues the probe to 800 steps; run either again after a stop to resume it (docs/training.md, "Fine-tuning
at 256 px on the CPU", has what ran and what was kept). With --fixed-norm the fine-tune turns the style into the
johnson-fixed-norm network (its instance norms' statistics frozen at the start, nst_video/architectures.py), in
runs/<name>-ft256-fixed-norm-sw<weight>; give it --max-zoom 4 (docs/training.md, "Large pictures"). --input-norm: the
same into johnson-input-norm (its first norm stays per picture), in runs/<name>-ft256-input-norm-...
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent

# name -> (style image under <data>/styles or the project, title, credit)
STYLES = {
    "starry_night": ("styles/starry_night.jpg", "The Starry Night",
                     "Vincent van Gogh, The Starry Night (1889), public domain"),
    "mosaic": ("samples/styles/mosaic.png", "Mosaic",
               "rendered by training/make_mosaic.py (seed 0): the project's own image, MIT"),
    "great_wave": ("styles/great_wave_crop.jpg", "The Great Wave",
                   "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831), public domain"),
    "the_scream": ("styles/the_scream.jpg", "The Scream", "Edvard Munch, The Scream (1893), public domain"),
    "composition_vii": ("styles/composition_vii.jpg", "Composition VII",
                        "Wassily Kandinsky, Composition VII (1913), public domain"),
    "udnie": ("styles/udnie.jpg", "Udnie", "Francis Picabia, Udnie (1913), public domain"),
}
BASE = "starry_night"
STEADY_LR, STEADY_STEPS, STEADY_MOTION_WEIGHT = 2e-4, 300, 200.0  # --steady, on the CPU (README, "Flicker")
# The clips of <data>/videos that the flow term learns from: none of those the benchmarks measure
# (bench_temporal.py, compare_networks.py), so its figures are on motion the network has not seen.
TRAINING_CLIPS = ["car-detection__intel.mp4", "asl-thanks__intel.mkv", "cockatoo__imageio.mp4", "tree__opencv.avi",
                  "sample_webcam__exoplayer.mp4", "realshort__imageio.mp4"]
FINETUNE_LR, FINETUNE_STEPS = 5e-4, 800
HELD_OUT_COUNT = 40


def held_out_photos(content: Path) -> list[Path]:
    """HELD_OUT_COUNT photos of `content`, evenly spread over its sorted listing (so every source of the
    folder is represented), that --finetune-256 leaves out of training."""
    files = sorted(p for p in content.iterdir() if p.is_file())
    return files[:: max(1, len(files) // HELD_OUT_COUNT)][:HELD_OUT_COUNT]


def training_split(content: Path) -> Path:
    """runs/train256-less-held-out: links to the photos of `content` but the held-out ones (the trainer reads
    a folder; this one is rebuilt from the listing each time, so it cannot go stale)."""
    folder = ROOT / "runs" / f"{content.name}-less-held-out"
    held = {p.name for p in held_out_photos(content)}
    folder.mkdir(parents=True, exist_ok=True)
    for link in folder.iterdir():
        if link.name in held:
            link.unlink()
    for photo in content.iterdir():
        link = folder / photo.name
        if photo.is_file() and photo.name not in held and not link.exists():
            link.symlink_to(photo.resolve())
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--only", help="comma-separated style names (default: all, base first)")
    ap.add_argument("--gpu", action="store_true", help="full recipe: 256 px, batch 4, 40k steps, AMP")
    ap.add_argument("--max-steps", type=int, help="override the step count")
    ap.add_argument("--from-scratch", action="store_true", help="no --init-from for the non-base styles")
    ap.add_argument("--init-from", type=Path, help="style file the non-base styles start from "
                    "(default: the bundled base style)")
    ap.add_argument("--style-weight", type=float, default=4e4,
                    help="at 128 px the trainer's default (1e5) buried the photo under the texture")
    ap.add_argument("--out", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--steady", action="store_true", help="fine-tune the finished styles with the motion term")
    ap.add_argument("--motion-weight", type=float, default=STEADY_MOTION_WEIGHT, help="for --steady")
    ap.add_argument("--flow-weight", type=float, default=0.0,
                    help="for --steady: the flow term on TRAINING_CLIPS (runs in runs/<name>-steady-flow); for "
                    "--finetune-256: instead of the style's own (its metadata's)")
    ap.add_argument("--finetune-256", action="store_true",
                    help="continue finished styles at 256 px, less the held-out photos (see above)")
    norms = ap.add_mutually_exclusive_group()
    norms.add_argument("--fixed-norm", action="store_true",
                       help="--finetune-256 into the johnson-fixed-norm network (udnie's blobs; docs/training.md)")
    norms.add_argument("--input-norm", action="store_true",
                       help="--finetune-256 into the johnson-input-norm network (great_wave's droplets)")
    ap.add_argument("--max-zoom", type=float, default=1.0,
                    help="--finetune-256: train --max-zoom (photos enlarged up to this before the crop; 4 for "
                    "--fixed-norm, which otherwise paints large pictures at low contrast: docs/training.md)")
    ap.add_argument("--ema-decay", type=float, default=0.0,
                    help="--finetune-256: train --ema-decay (the style file from the weights' moving average)")
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                    help="--finetune-256: bfloat16 autocast (fast with AMX; --no-amp where float32 is faster)")
    ap.add_argument("--pid-file", type=Path, help="write the training process's id here (to pause it)")
    ap.add_argument("--retry-killed", type=int, default=0, metavar="N",
                    help="--finetune-256: resume up to N times when the training is killed (out of memory)")
    args = ap.parse_args()
    if args.finetune_256:
        return finetune_256(args)

    names = args.only.split(",") if args.only else list(STYLES)
    for name in names:
        image, title, credit = STYLES[name]
        image_path = ROOT / image if image.startswith("samples/") else args.data / image
        if args.gpu:
            steps = args.max_steps or 40_000
            settings = ["--image-size", "256", "--style-size", "512", "--batch-size", "4", "--amp",
                        "--max-steps", str(steps), "--checkpoint-interval", "500"]
        else:  # CPU: the recipe at reduced size and steps (see README: a GPU retrain is due)
            steps = args.max_steps or (STEADY_STEPS if args.steady else
                                       1500 if name == BASE or args.from_scratch else 600)
            settings = ["--image-size", "128", "--style-size", "256", "--batch-size", "4",
                        "--max-steps", str(steps), "--checkpoint-interval", "100", "--sample-interval", "100"]
            if args.steady:
                settings.append("--amp")  # bfloat16 autocast on the CPU, as the lite distillations use
        runs = ROOT / "runs" / (name + ("-steady" if args.steady else "") + ("-flow" if args.flow_weight else ""))
        cmd = [sys.executable, "-m", "nst_video", "train", "--content-dir", str(args.data / "content" / "train256"),
               "--style-image", str(image_path), "--name", name, "--title", title, "--credit", credit,
               "--vgg-weights", str(args.data / "vgg" / "vgg16_to_relu4_3_fp16.pth"),
               "--style-weight", str(args.style_weight), "--checkpoint-dir", str(runs),
               "--output", str(args.out / f"{name}.safetensors"),
               *settings]
        if args.steady:
            cmd += ["--init-from", str(args.out / f"{name}.safetensors"), "--lr", str(STEADY_LR),
                    "--motion-weight", str(args.motion_weight)]
            if args.flow_weight:
                cmd += ["--video-dir", str(training_clips(args.data)), "--flow-weight", str(args.flow_weight)]
        elif name != BASE and not args.from_scratch:
            cmd += ["--init-from", str(args.init_from or args.out / f"{BASE}.safetensors")]
        resume = resume_flag(runs, steps)
        cmd += resume
        if not resume and (args.out / f"{name}.safetensors").exists():
            cmd.append("--force")  # retraining the bundled file is the point (train refuses to replace it otherwise)
        code = run(cmd)
        if code != 0:
            return code
    return 0


def finetune_256(args) -> int:
    """--finetune-256, one style at a time."""
    for name in args.only.split(",") if args.only else list(STYLES):
        image, title, credit = STYLES[name]
        image_path = ROOT / image if image.startswith("samples/") else args.data / image
        style_file = ROOT / "checkpoints" / f"{name}.safetensors"
        # the temporal terms it was steadied with, kept so that a stronger style does not flicker more
        training = json.loads(safe_open(str(style_file), "np").metadata()["training"])
        motion, flow = training.get("motion_weight", 0.0), args.flow_weight or training.get("flow_weight") or 0.0
        steps = args.max_steps or FINETUNE_STEPS
        architecture = ("johnson-fixed-norm" if args.fixed_norm else "johnson-input-norm" if args.input_norm
                        else None)
        runs = ROOT / "runs" / (f"{name}-ft256{architecture.removeprefix('johnson') if architecture else ''}"
                                f"{f'-flow{args.flow_weight:g}' if args.flow_weight else ''}"
                                f"{f'-zoom{args.max_zoom:g}' if args.max_zoom > 1 else ''}-sw{args.style_weight:g}"
                                f"{f'-ema{args.ema_decay:g}' if args.ema_decay else ''}")
        cmd = [sys.executable, "-m", "nst_video", "train",
               "--content-dir", str(training_split(args.data / "content" / "train256")),
               "--style-image", str(image_path), "--name", name, "--title", title, "--credit", credit,
               "--vgg-weights", str(args.data / "vgg" / "vgg16_to_relu4_3_fp16.pth"),
               "--style-weight", str(args.style_weight), "--checkpoint-dir", str(runs),
               "--output", str(runs / f"{name}.safetensors"), "--init-from", str(style_file),
               "--image-size", "256", "--style-size", "256", "--batch-size", "4", "--lr", str(FINETUNE_LR),
               "--max-steps", str(steps), "--checkpoint-interval", "25", "--sample-interval", "100",
               "--log-interval", "10", "--motion-weight", str(motion), "--max-zoom", str(args.max_zoom)]
        cmd += ["--amp"] if args.amp else []
        cmd += ["--ema-decay", str(args.ema_decay)] if args.ema_decay else []
        if architecture:
            cmd += ["--architecture", architecture]
        if flow:
            cmd += ["--video-dir", str(training_clips(args.data)), "--flow-weight", str(flow)]
        for _ in range(1 + args.retry_killed):
            code = run(cmd + resume_flag(runs, steps), args.pid_file)
            # SIGKILL: the kernel's out-of-memory killer on a shared machine (a stop signal saves and exits
            # normally); the checkpoint every 25 steps bounds what is lost
            if code != -signal.SIGKILL:
                break
            print(f"{name}: the training process was killed (SIGKILL); resuming from its last checkpoint", flush=True)
        if code != 0:
            return code
    return 0


def resume_flag(runs: Path, max_steps: int) -> list[str]:
    """["--resume"] for an unfinished run in `runs`, [] for none. A finished one is refused: resuming it would
    only write its old weights again (over a style that may have been retrained since)."""
    checkpoint = runs / "last.pt"
    if not checkpoint.exists():
        return []
    import torch
    # mmap: only the step is read, not the whole checkpoint (weights and optimiser state) into memory
    step = int(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["step"])
    if step >= max_steps:
        raise SystemExit(f"{runs} holds a finished run ({step} steps): move it away to train again, "
                         "or raise --max-steps to continue it")
    return ["--resume"]


def training_clips(data: Path) -> Path:
    """runs/training-clips: links to TRAINING_CLIPS, the folder --video-dir reads."""
    folder = ROOT / "runs" / "training-clips"
    folder.mkdir(parents=True, exist_ok=True)
    for clip in TRAINING_CLIPS:
        link = folder / clip
        if not link.exists():
            link.symlink_to((data / "videos" / clip).resolve())
    return folder


def run(cmd: list[str], pid_file: Path | None = None) -> int:
    """Show the command, run it from the repository root, return its exit status; `pid_file` gets the
    process's id while it runs (this script's own would not pause the training)."""
    print("+", " ".join(cmd), flush=True)
    process = subprocess.Popen(cmd, cwd=ROOT)
    if pid_file:
        pid_file.write_text(f"{process.pid}\n")
    try:
        return process.wait()
    except KeyboardInterrupt:  # the training got the same Ctrl-C: let it save its checkpoint
        return process.wait()


if __name__ == "__main__":
    sys.exit(main())

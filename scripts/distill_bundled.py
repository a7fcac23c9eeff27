"""Distil a lite style (NAME-lite) from every bundled style in checkpoints/ with `nst-video distill`: run it
again after the full styles are retrained.

    python scripts/distill_bundled.py --data ../shared/data                # all six
    python scripts/distill_bundled.py --data ../shared/data --only udnie   # one
    python scripts/distill_bundled.py --data ../shared/data --only mosaic --again --steps 250
    python scripts/distill_bundled.py --only udnie --again --steps 250 --flow-weight 500 --held-out --style-weight 1.5e5
    python scripts/distill_bundled.py --only udnie --architecture lite-fixed-norm --teacher runs/.../udnie.safetensors \
        --max-zoom 4 --held-out --steps 600 --flow-weight 500   # a fixed-norm teacher's lite network (docs/training.md)

Every run resumes from runs/<name>-lite/last.pt when it exists (a finished one is refused). The first style is
distilled from random weights for --base-steps; the others start from its lite weights (--init-from) and need
--steps: the small decoder has already learned to paint, only palette and texture change (as for the full
styles, see scripts/train_bundled.py).

--held-out distils a candidate: on train256 less the held-out split that scripts/measure_styles.py measures on
(train_bundled.held_out_photos(), the links in runs/train256-less-held-out, as for --finetune-256), into
runs/<name>-lite[-again][-flow]-held-out[-sw<style weight>]/, network included: it replaces the bundled lite
network only where `measure_styles.py --lite --after NAME=FILE` and benchmarks/compare_networks.py say so
(docs/training.md, "The lite styles on held-out photos")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train_bundled import BASE, ROOT, STYLES, resume_flag, run, training_clips, training_split

from nst_video.architectures import is_fixed_norm, network_family

# Styles whose lite network stays short of its teacher's style at the teacher's weights: distilled with them it
# came out less stylized, and twice the style weight won the style back (figures: docs/training.md, "The lite
# styles"; scripts/evaluate_styles.py).
STYLE_WEIGHT = {"the_scream": 8e4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--only", help="comma-separated style names (default: all, base first)")
    ap.add_argument("--base-steps", type=int, default=900)
    ap.add_argument("--steps", type=int, default=450)
    ap.add_argument("--out", type=Path, default=ROOT / "checkpoints")
    ap.add_argument("--again", action="store_true", help="start from each style's own lite weights (after its "
                    "full style was retrained, e.g. with train_bundled.py --steady)")
    ap.add_argument("--motion-weight", type=float, default=0.0, help="the motion term (see train_bundled.py --steady)")
    ap.add_argument("--flow-weight", type=float, default=0.0, help="the flow term on train_bundled.TRAINING_CLIPS "
                    "(runs in runs/<name>-lite[-again]-flow)")
    ap.add_argument("--architecture", default="lite", choices=("lite", "fast", "lite-fixed-norm", "fast-fixed-norm",
                                                               "lite-input-norm", "fast-input-norm"),
                    help="fast: NAME-fast, started from NAME-lite's layers (the same widths; see "
                         "nst_video/architectures.py), for CPUs that compute in fp32; *-fixed-norm, *-input-norm: "
                         "NAME-lite or NAME-fast with their norms' statistics frozen (all but the first: input-norm), "
                         "started from the bundled one, for a johnson-fixed-norm or -input-norm teacher (--teacher)")
    ap.add_argument("--teacher", type=Path, help="the full style's file (default: --out/NAME.safetensors)")
    ap.add_argument("--max-zoom", type=float, default=1.0, help="see `nst-video distill --max-zoom`; a fixed-norm "
                    "student needs it as its teacher did (docs/training.md)")
    ap.add_argument("--image-size", type=int, default=128, help="training crops (the teacher's may be larger)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--style-weight", type=float, help="instead of STYLE_WEIGHT's or the teacher's")
    ap.add_argument("--held-out", action="store_true", help="a candidate: the held-out photos left out, the "
                    "network written into its run folder, not --out")
    ap.add_argument("--ema-decay", type=float, default=0.0, help="see `nst-video train --ema-decay`")
    ap.add_argument("--checkpoint-interval", type=int, default=100)
    ap.add_argument("--pid-file", type=Path, help="gets the training process's id while it runs (to pause it)")
    args = ap.parse_args()

    names = args.only.split(",") if args.only else list(STYLES)
    base_lite = args.out / f"{BASE}-lite.safetensors"
    for name in names:
        image, _, _ = STYLES[name]
        image_path = ROOT / image if image.startswith("samples/") else args.data / image
        fixed_norm = is_fixed_norm(args.architecture)
        lite = f"{name}-{network_family(args.architecture)}"
        norm = args.architecture.removeprefix(network_family(args.architecture))  # "", "-fixed-norm", "-input-norm"
        runs = ROOT / "runs" / (lite + norm + ("-again" if args.again else "")
                                + ("-flow" if args.flow_weight else "")
                                + (f"-zoom{args.max_zoom:g}" if args.max_zoom > 1 else "")
                                + (f"-ema{args.ema_decay:g}" if args.ema_decay else ""))
        style_weight = args.style_weight or STYLE_WEIGHT.get(name)
        content = args.data / "content" / "train256"
        output = args.out / f"{lite}.safetensors"
        if args.held_out:
            runs = runs.with_name(runs.name + "-held-out" + (f"-sw{style_weight:g}" if style_weight else ""))
            content, output = training_split(content), runs / f"{lite}.safetensors"
        teacher = args.teacher or args.out / f"{name}.safetensors"
        cmd = [sys.executable, "-m", "nst_video", "distill", "--from", str(teacher),
               "--name", lite, "--content-dir", str(content),
               "--style-image", str(image_path), "--vgg-weights", str(args.data / "vgg" / "vgg16_to_relu4_3_fp16.pth"),
               "--checkpoint-dir", str(runs), "--output", str(output),
               "--checkpoint-interval", str(args.checkpoint_interval), "--sample-interval", "150", "--device", "cpu",
               "--architecture", args.architecture, "--image-size", str(args.image_size), "--lr", str(args.lr),
               "--max-steps", str(steps := args.base_steps if name == BASE and not args.again
                                  and args.architecture == "lite" else args.steps)]
        if fixed_norm:  # the bundled network of the same widths, its statistics frozen by distill
            cmd += ["--init-from", str(args.out / f"{lite}.safetensors")]
        elif args.architecture == "fast" and not args.again:
            cmd += ["--init-from", str(args.out / f"{name}-lite.safetensors")]
        elif args.again:
            cmd += ["--init-from", str(args.out / f"{lite}.safetensors")]
        elif name != BASE:
            cmd += ["--init-from", str(base_lite)]
        if args.motion_weight:
            cmd += ["--motion-weight", str(args.motion_weight)]
        if args.flow_weight:
            cmd += ["--video-dir", str(training_clips(args.data)), "--flow-weight", str(args.flow_weight)]
        if style_weight:
            cmd += ["--style-weight", str(style_weight)]
        if args.max_zoom > 1:
            cmd += ["--max-zoom", str(args.max_zoom)]
        if args.ema_decay:
            cmd += ["--ema-decay", str(args.ema_decay)]
        resume = resume_flag(runs, steps)
        cmd += resume
        if not resume and output.exists():
            cmd.append("--force")
        code = run(cmd, args.pid_file)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

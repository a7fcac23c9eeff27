"""Write a style file from a training checkpoint (e.g. to use or fine-tune from a run that is still going).

    python scripts/export_checkpoint.py runs/starry_night/last.pt out.safetensors --name starry_night
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from nst_video.architectures import DEFAULT_ARCHITECTURE
from nst_video.styles import StyleInfo, save_style
from nst_video.training.train import CHECKPOINT_FORMAT, checkpoint_weights, training_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--raw", action="store_true", help="a run with --ema-decay: the last step's weights instead "
                    "of their moving average")
    args = ap.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise SystemExit(f"{args.checkpoint}: not an nst-video training checkpoint")
    cfg = state["config"]
    training = training_record(cfg)
    training.update(steps=state["step"], final_lr=state["lr"], exported_from_checkpoint=True)
    info = StyleInfo(name=args.name, title=cfg.get("title") or args.name, credit=cfg.get("credit", ""),
                     training=training, architecture=cfg.get("architecture") or DEFAULT_ARCHITECTURE)
    if "ema" not in state or args.raw:  # the step's own weights, not a moving average
        training.pop("ema_decay", None)
    print(save_style(args.output, checkpoint_weights(state, args.raw), info))


if __name__ == "__main__":
    main()

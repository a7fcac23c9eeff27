"""How a style's activations change with a picture's scale: the variance that reaches each norm layer, per
picture and channel, averaged, for the same pictures as 256-px training crops and as large pictures.

    python scripts/norm_scale.py checkpoints/great_wave.safetensors runs/great_wave-.../great_wave.safetensors

An instance norm divides that variance out per picture, so a network with instance norms paints a large
picture with the contrast it learned on crops. A johnson-fixed-norm network divides by a constant: where
the variance at the large size is lower than at 256 px, it paints that picture at lower contrast
(docs/training.md, "The fixed-norm network"). Pictures: 8 held-out training photos (256 px, and enlarged to
1080 px on the long side) and 6 frames of three real clips at their own size (540-720 lines) and scaled down
to 256 lines. Printed per norm: variance at the large size / at 256 px ("ratio"), the figure that matters.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from measure_styles import scaled  # noqa: E402
from train_bundled import held_out_photos  # noqa: E402

from nst_video.images import load_image  # noqa: E402
from nst_video.styles import load_model  # noqa: E402
from nst_video.training.data import rgb_tensor  # noqa: E402
from nst_video.training.frozen_norms import norm_input_statistics  # noqa: E402

CLIPS = ("cockatoo__imageio.mp4", "sample_webcam__exoplayer.mp4", "flower__mdn-cc0.mp4")


def clip_frames(data: Path) -> list[np.ndarray]:
    import av  # only here: the I/O modules keep PyAV to themselves in the app
    frames = []
    for clip in CLIPS:
        with av.open(str(data / "videos" / clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in (0, 10):
                    frames.append(frame.to_ndarray(format="rgb24"))
                if i >= 10:
                    break
    return frames


@torch.no_grad()
def norm_variances(net: torch.nn.Module, pictures: list[np.ndarray]) -> dict[str, float]:
    """Per norm layer: the mean over pictures and channels of the variance of its input over the picture."""
    batches = (rgb_tensor(picture)[None] for picture in pictures)
    return {name: float(var.mean()) for name, (_, var) in norm_input_statistics(net, batches).items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("styles", nargs="+", type=Path, help="style files")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    photos = [load_image(p).rgb for p in held_out_photos(args.data / "content" / "train256")[::5]]
    frames = clip_frames(args.data)
    pairs = {"photos 1080 px / 256 px": ([scaled(p, 1080) for p in photos], photos),
             "clip frames, own size / 256 lines": (frames, [scaled(f, round(256 * max(f.shape[:2]) / min(f.shape[:2])))
                                                             for f in frames])}
    for path in args.styles:
        info, net = load_model(path)
        net.eval()
        print(f"== {path} ({info.architecture})")
        for label, (large, small) in pairs.items():
            big, crop = norm_variances(net, large), norm_variances(net, small)
            print(f"  {label}: ratio of the variance reaching each norm, first to last")
            print("   ", " ".join(f"{big[n] / crop[n]:.2f}" for n in crop))
            print(f"    geometric mean {np.exp(np.mean([np.log(big[n] / crop[n]) for n in crop])):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

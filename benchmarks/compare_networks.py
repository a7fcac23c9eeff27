"""Two networks of one style, alone (`--temporal 0`): the warping error and style distance of each on the same
clips (as bench_temporal.py measures them), and the ratios. For a fine-tune such as train_bundled.py --steady:

    git show COMMIT:checkpoints/udnie.safetensors > /tmp/udnie-before.safetensors   # the weights before it
    python benchmarks/compare_networks.py /tmp/udnie-before.safetensors checkpoints/udnie.safetensors
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_temporal import VGG, StyleDistance, load_clip, style_image_for  # noqa: E402

from nst_video.errors import NstError  # noqa: E402
from nst_video.styles import StyleRegistry  # noqa: E402
from nst_video.stylizer import Stylizer  # noqa: E402
from nst_video.temporal import warping_error  # noqa: E402

CLIPS = ["asl-book__intel.mkv", "flower__mdn-cc0.mp4", "stream-of-water__mdn.mp4", "desks__exoplayer.3gp",
         "samples/clips/bunny.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--clips", type=lambda s: s.split(","), default=CLIPS)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--device", default="cpu", help="where the two networks run: cpu, cuda, ... (the warping error "
                                                    "and style distance are measured on the CPU)")
    args = ap.parse_args()
    distance = StyleDistance(style_image_for(args.first), VGG)
    try:
        networks = [Stylizer(StyleRegistry().load(s)[1], device=args.device) for s in (args.first, args.second)]
    except NstError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"warping error x1000 (style distance), --temporal 0: {args.first} -> {args.second}")
    for clip in args.clips:
        sources = load_clip(clip, args.frames, args.size)
        (w0, s0), (w1, s1) = [(1000 * warping_error(sources, out), distance(sources, out, 4))
                              for out in (n.stylize(sources) for n in networks)]
        print(f"  {Path(clip).name:>24}: {w0:6.2f} ({s0:5.2f}) -> {w1:6.2f} ({s1:5.2f}): "
              f"{w1 / w0:.2f}x, {s1 / s0:.2f}x", flush=True)


if __name__ == "__main__":
    main()

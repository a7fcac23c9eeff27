"""Temporal coherence, measured the standard way: the warping error (Lai et al., ECCV 2018) of the input and
of the output with `--temporal 0`, with the old 8x8 block blending and with flow blending (nst_video's
TemporalBlender), the style distance of the frames to the painting, and the blender's cost per frame.

    python benchmarks/bench_temporal.py --style mosaic                 # the default clips (../shared/data)
    python benchmarks/bench_temporal.py --clips asl-book__intel.mkv,cut:asl-book__intel.mkv+friday__mdn-cc0.mp4
    python benchmarks/bench_temporal.py --cost-only                    # only the cost per 640x480 frame
    python benchmarks/bench_temporal.py --inputs-only                  # only the clips' own figures
    python benchmarks/bench_temporal.py --strip samples/temporal_strip.jpg --strip-clip samples/clips/bunny.mp4 \
        --strip-start 37 --strip-frames 4 --strip-crop 20,0,220,180        # consecutive frames: no ghosts

Figures:
  warping error  mean over frames of sum(M * (O_t - warp(O_t-1))^2) / sum(M), RGB in 0..1 per channel,
                 x1000; flow on the *input* frames (OpenCV DIS, preset medium, full size: not the blender's
                 own fast flow), M: forward-backward consistent, off motion boundaries, not out of the frame
  style          VGG16 Gram style loss of each output frame against the style's painting (as in
                 scripts/evaluate_styles.py: relu1_2..relu4_3, x1e5), mean over every --style-every'th frame
  still flicker  mean change (0..255) of the output in 8x8 blocks where the input changed < 2 grey levels
                 (of the input itself too, per clip: the level a still background can reach)
  ms/frame       the blender alone (flow + warp + blend), at the clip's size, wall clock
A clip is a file name in ../shared/data/videos, a path, or `cut:A+B`: the first half of the frames from A,
the second from B (scaled and cropped to A's size), a scene cut in the middle.

The cost section times the blender on real 640x480 frames: inline (flow in the call) and with the flow
prepared on its thread while a network runs, wall clock and CPU time, and the load average: on a shared
machine wall-clock figures are inflated by the other processes.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))  # evaluate_styles: the style distance, measured one way

from nst_video.stylizer import Stylizer, frames_to_tensor  # noqa: E402
from nst_video.temporal import (  # noqa: E402
    FLOW_PRESET,
    FLOW_SIDE,
    OFFLINE_FLOW_PRESET,
    OFFLINE_FLOW_SIDE,
    TemporalBlender,
    block_motion,
    flicker,
    warping_error,
)
from nst_video.video_io import VideoSource  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "videos"
VGG = ROOT.parent / "shared" / "data" / "vgg" / "vgg16_to_relu4_3_fp16.pth"
DEFAULT_CLIPS = ["asl-book__intel.mkv", "flower__mdn-cc0.mp4", "stream-of-water__mdn.mp4", "desks__exoplayer.3gp",
                 "cut:asl-book__intel.mkv+friday__mdn-cc0.mp4"]
KINDS = {"asl-book__intel.mkv": "still camera, person signing", "flower__mdn-cc0.mp4": "moving flower, slow camera",
         "stream-of-water__mdn.mp4": "camera panning", "desks__exoplayer.3gp": "camera panning, H.263",
         "sample_webcam__exoplayer.mp4": "webcam, face", "cockatoo__imageio.mp4": "moving bird and camera",
         "friday__mdn-cc0.mp4": "old film"}


class BlockBlender:
    """The old method (before flow blending), kept here to compare with: blend with the previous output,
    unmoved, in 8x8 blocks where the input did not change (keep = weight * 0.9 * stillness); a block beside
    motion is left alone, and more than 60% of the blocks moving is a cut."""

    MOTION_LEVEL, CUT_FRACTION, MAX_KEEP, BLOCK = 10.0, 0.6, 0.9, 8

    def __init__(self, weight: float):
        self.weight = weight
        self.prev_source = self.prev_output = None

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        prev_source, prev_output, self.prev_source = self.prev_source, self.prev_output, source
        if prev_source is None or prev_source.shape != source.shape:
            self.prev_output = stylized.astype(np.float32)
            return stylized
        motion = block_motion(prev_source, source)
        if np.mean(motion > self.MOTION_LEVEL) > self.CUT_FRACTION:
            self.prev_output = stylized.astype(np.float32)
            return stylized
        keep = self.weight * self.MAX_KEEP * np.clip(1.0 - _dilate_blocks(motion) / self.MOTION_LEVEL, 0, 1)
        keep = np.repeat(np.repeat(keep, self.BLOCK, 0), self.BLOCK, 1)[:source.shape[0], :source.shape[1], None]
        out = stylized + keep * (prev_output - stylized)
        self.prev_output = out
        return (out + 0.5).astype(np.uint8)


def _dilate_blocks(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, mode="edge")
    h, w = m.shape
    return np.max([p[y:y + h, x:x + w] for y in range(3) for x in range(3)], axis=0)


def load_clip(spec: str, frames: int, size: int, start: float = 0.0) -> list[np.ndarray]:
    if spec.startswith("cut:"):
        a, b = spec[4:].split("+")
        first = load_clip(a, frames - frames // 2, size, start)
        h, w = first[0].shape[:2]
        return first + [fit(f, w, h) for f in load_clip(b, frames // 2, size, start)]
    path = Path(spec) if Path(spec).exists() else VIDEOS / spec
    out = []
    with VideoSource(path, start=start, max_size=size) as source:
        for frame in source:
            out.append(frame.rgb)
            if len(out) == frames:
                break
    return out


def fit(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """Scale to cover w x h and crop the middle."""
    im = Image.fromarray(rgb)
    scale = max(w / im.width, h / im.height)
    im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))), Image.Resampling.LANCZOS)
    left, top = (im.width - w) // 2, (im.height - h) // 2
    return np.asarray(im.crop((left, top, left + w, top + h)))


class StyleDistance:
    """The style loss of scripts/evaluate_styles.py, of video frames."""

    def __init__(self, style_image: Path, vgg: Path):
        from evaluate_styles import measuring_loss

        from nst_video.training.data import load_rgb_tensor
        self.net = measuring_loss(vgg)
        self.net.set_style(load_rgb_tensor(style_image, max_size=256)[None])

    @torch.no_grad()
    def __call__(self, sources: list[np.ndarray], outputs: list[np.ndarray], every: int) -> float:
        losses = [self.net(frames_to_tensor([o]), frames_to_tensor([s]))["style"].item()
                  for s, o in list(zip(sources, outputs, strict=True))[::every]]
        return float(np.mean(losses))


def style_image_for(style: str) -> Path | None:
    from evaluate_styles import find_style_image

    from nst_video.styles import StyleRegistry
    return find_style_image(StyleRegistry().load(style)[0].training.get("style_image", ""))


def run_blender(blender, sources, styled, stylizer=None, prepare: bool = False):
    """The outputs of `blender` and its time per frame (ms, wall clock; the network excluded). With a
    stylizer, the network is run on what blender.stabilize() gives it, as nst-video does."""
    out, spent = [], 0.0
    for s, y in zip(sources, styled, strict=True):
        start = time.perf_counter()
        if prepare:
            blender.prepare(s)
        if stylizer is not None:
            held = blender.stabilize(s)
            spent += time.perf_counter() - start
            y = y if held is s else stylizer.stylize([held])[0]
            start = time.perf_counter()
        out.append(blender(s, y))
        spent += time.perf_counter() - start
    return out, 1000 * spent / len(sources)


class HoldOnly:
    """Ablation: only the input side of flow blending (TemporalBlender.stabilize), no blending after."""

    def __init__(self, weight: float):
        self.weight, self.inner = weight, TemporalBlender(weight)

    def stabilize(self, source):
        return self.inner.stabilize(source)

    def __call__(self, source, stylized):
        return stylized


def bench_clips(args) -> None:
    stylizer = Stylizer.from_style(args.style, device=args.device)
    style_image = style_image_for(args.style)
    distance = None
    if style_image and Path(args.vgg_weights).is_file():
        distance = StyleDistance(style_image, Path(args.vgg_weights))
    else:
        print(f"(no style distance: style image {style_image} or VGG weights {args.vgg_weights} not found)")
    print(f"style {args.style} on {stylizer.backend}; {args.frames} frames per clip, long side {args.size}; "
          f"weights {args.weights}; flow {args.preset} at {args.flow_side} px; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    # (label, what makes the blender): each clip gets fresh ones
    methods = [("off", None)] + [(f"block {w:g}", functools.partial(BlockBlender, w)) for w in args.weights] \
        + ([(f"hold {w:g}", functools.partial(HoldOnly, w)) for w in args.weights] if args.ablation else []) \
        + [(f"flow {w:g}", functools.partial(TemporalBlender, w, args.flow_side, args.preset)) for w in args.weights]
    rows = []
    for clip in args.clips:
        sources = load_clip(clip, args.frames, args.size, args.start)
        start = time.perf_counter()
        styled = stylizer.stylize(sources)
        fps = len(sources) / (time.perf_counter() - start)
        h, w = sources[0].shape[:2]
        name = clip_name(clip)
        input_error, input_figures = describe_input(sources)
        print(f"\n{name}: {len(sources)} frames {w}x{h}, network {fps:.1f} frames/s; {input_figures}")
        row = {"clip": name, "size": f"{len(sources)}x {w}x{h}", "input": input_error}
        for label, make_blender in methods:
            blender = make_blender() if make_blender else None
            if blender is not None:
                outputs, ms = run_blender(blender, sources, styled,
                                          stylizer if hasattr(blender, "stabilize") else None)
            else:
                outputs, ms = styled, 0.0
            we = warping_error(sources, outputs)
            style = distance(sources, outputs, args.style_every) if distance else float("nan")
            cuts = getattr(blender, "cuts", "")
            row[label] = (we, style)
            print(f"  {label:>10}: warping error {1000 * we:7.3f}  style {style:7.3f}  still flicker "
                  f"{flicker(sources, outputs):5.2f}  {ms:6.1f} ms/frame{f'  cuts {cuts}' if cuts != '' else ''}",
                  flush=True)
        rows.append(row)
    print("\n| clip | frames | input | " + " | ".join(label for label, _ in methods) + " | "
          + " | ".join(f"{label} / off" for label, _ in methods[1:]) + " |")
    print("|---" * (3 + 2 * len(methods) - 1) + "|")
    print("warping error x1000 (style distance):")
    for row in rows:
        off_we, off_style = row["off"]
        cells = [f"{1000 * row[label][0]:.3f} ({row[label][1]:.2f})" for label, _ in methods]
        ratios = [f"{row[label][0] / off_we:.2f}x ({row[label][1] / off_style:.2f}x)" for label, _ in methods[1:]]
        print(f"| {row['clip']} | {row['size']} | {1000 * row['input']:.3f} | " + " | ".join(cells + ratios) + " |")


def bench_inputs(args) -> None:
    """The clips' own figures, no network: what the outputs' warping error and still flicker are measured
    against (a still background is as still as it can be when its flicker is the input's own)."""
    print(f"inputs only; {args.frames} frames per clip, long side {args.size}")
    for clip in args.clips:
        sources = load_clip(clip, args.frames, args.size, args.start)
        h, w = sources[0].shape[:2]
        print(f"{clip_name(clip)}: {len(sources)} frames {w}x{h}; {describe_input(sources)[1]}")


def describe_input(sources: list[np.ndarray]) -> tuple[float, str]:
    """The input's own warping error, and it with the input's still flicker as printed per clip."""
    error = warping_error(sources, sources)
    return error, f"input warping error {1000 * error:.3f}, still flicker {flicker(sources, sources):.2f}"


def clip_name(clip: str) -> str:
    return clip.removeprefix("cut:").replace("__intel", "").replace("__mdn-cc0", "").replace("__mdn", "")


def bench_cost(args) -> None:
    """The blender alone on 640x480 frames of a real clip (the webcam's default size): inline, and with the
    flow prepared on its thread while the network runs on the frame."""
    sources = load_clip(args.cost_clip, 24, 640)
    sources = [fit(s, 640, 480) for s in sources]
    styled = [255 - s for s in sources]  # the cost does not depend on the style
    print(f"\ncost per 640x480 frame ({args.cost_clip}, {len(sources)} frames; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for make_blender, use in ((TemporalBlender, "the webcam"), (TemporalBlender.for_video_files, "video files")):
        for _ in range(2):  # the first pass warms up OpenCV's buffers and thread pool
            blender = make_blender(1.0)
            cpu, start = time.process_time(), time.perf_counter()
            for s, y in zip(sources, styled, strict=True):
                blender.stabilize(s)
                blender(s, y)
            ms = 1000 * (time.perf_counter() - start) / len(sources)
            cpu_ms = 1000 * (time.process_time() - cpu) / len(sources)
        print(f"  stabilize + flow + warp + blend, inline, DIS {blender.preset} at {blender.flow_side} px ({use}): "
              f"{ms:.1f} ms wall, {cpu_ms:.1f} ms CPU (all threads)")
    if args.cost_network:
        stylizer = Stylizer.from_style(args.cost_network, device=args.device, batch_size=1)
        stylizer.stylize(sources[:1])
        for label, weight, prepare in (("off", 0.0, False), ("inline", 1.0, False), ("prepared", 1.0, True)):
            blender = TemporalBlender(weight)
            start = time.perf_counter()
            for s in sources:
                if prepare:
                    blender.prepare(s)
                blender(s, stylizer.stylize([blender.stabilize(s)])[0])
            ms = 1000 * (time.perf_counter() - start) / len(sources)
            print(f"  webcam-like loop ({args.cost_network} on {stylizer.backend}), temporal {label}: "
                  f"{ms:.1f} ms per frame, {1000 / ms:.2f} frames/s")


def make_strip(args) -> None:
    """Consecutive frames of a moving object: input, --temporal 0 and flow blending, one row each."""
    sources = load_clip(args.strip_clip, args.strip_start + args.strip_frames, args.size)
    stylizer = Stylizer.from_style(args.style, device=args.device)
    styled = stylizer.stylize(sources)
    outputs, _ = run_blender(TemporalBlender(1.0, args.flow_side, args.preset), sources, styled, stylizer)
    pick = range(args.strip_start, args.strip_start + args.strip_frames, args.strip_step)
    x0, y0, x1, y1 = args.strip_crop or (0, 0, sources[0].shape[1], sources[0].shape[0])
    rows = [np.concatenate([seq[i][y0:y1, x0:x1] for i in pick], axis=1) for seq in (sources, styled, outputs)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.strip, quality=85)
    print(f"wrote {args.strip}: rows input, --temporal 0, --temporal 1; frames {list(pick)} of {args.strip_clip}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="mosaic")
    parser.add_argument("--clips", type=lambda s: s.split(","), default=DEFAULT_CLIPS)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--start", type=float, default=0.0, help="seconds into each clip")
    parser.add_argument("--size", type=int, default=320, help="long side the clips are scaled to")
    parser.add_argument("--weights", type=lambda s: [float(w) for w in s.split(",")], default=[0.5, 1.0],
                        help="--temporal weights to measure, comma-separated")
    parser.add_argument("--ablation", action="store_true", help="also `hold W`: the input side alone")
    parser.add_argument("--flow-side", type=int, default=OFFLINE_FLOW_SIDE,
                        help=f"long side (at most) the blender computes its flow at: {OFFLINE_FLOW_SIDE} (nst-video "
                             f"video, the default) or {FLOW_SIDE} (the webcam)")
    parser.add_argument("--preset", default=OFFLINE_FLOW_PRESET, choices=["ultrafast", "fast", "medium"],
                        help=f"the blender's DIS preset: {OFFLINE_FLOW_PRESET} (nst-video video, the default) or "
                             f"{FLOW_PRESET} (the webcam)"),
    parser.add_argument("--style-every", type=int, default=4, help="style distance on every N'th frame")
    parser.add_argument("--vgg-weights", default=str(VGG))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--inputs-only", action="store_true",
                        help="only the clips' own warping error and still flicker (no network)")
    parser.add_argument("--no-cost", action="store_true")
    parser.add_argument("--cost-clip", default="asl-book__intel.mkv")
    parser.add_argument("--cost-network", default=None,
                        help="also time a webcam-like loop with this style's network (e.g. mosaic-lite)")
    parser.add_argument("--strip", type=Path, help="write a strip of consecutive frames here, and stop")
    parser.add_argument("--strip-clip", default="asl-book__intel.mkv")
    parser.add_argument("--strip-start", type=int, default=40)
    parser.add_argument("--strip-frames", type=int, default=5)
    parser.add_argument("--strip-step", type=int, default=1)
    parser.add_argument("--strip-crop", type=lambda s: tuple(int(v) for v in s.split(",")), help="X0,Y0,X1,Y1")
    args = parser.parse_args()
    if args.strip:
        make_strip(args)
        return
    if args.inputs_only:
        bench_inputs(args)
        return
    if not args.cost_only:
        bench_clips(args)
    if not args.no_cost:
        bench_cost(args)


if __name__ == "__main__":
    main()

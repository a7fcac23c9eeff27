"""Large pictures: tiled inference (bands with whole-picture statistics) against one pass, and stroke scale.

    python benchmarks/bench_large.py                    # agreement + time at ~2.8 MP, memory at 20 MP, figures
    python benchmarks/bench_large.py --quick            # small sizes: a smoke test of the figures
    python benchmarks/bench_large.py --stats            # how to get the statistics: estimates against exact
    python benchmarks/bench_large.py --memory           # bytes per pixel behind nst_video/memory.py, tiling.py

Every run is a fresh subprocess (`--child`), so its peak RSS (what `--max-memory` bounds) is its own.
Figures printed:
  agreement  PSNR (dB) of the tiled result against one pass of the same network (torch), uint8 outputs
  time       wall seconds of Stylizer.stylize_image; ratio = tiled / one pass (torch), and against the
             default CPU runtime (OpenVINO) where it is installed
  peak RSS   the process's peak resident memory (Python and the libraries included), against the budget
The pictures are made from samples/photos (a collage at their own resolution, so the detail is real; a 20 MP
one for memory), or --photo PATH. Figures (--figures DIR, default docs/): a crop across band borders (tiled,
one pass, and naive tiles with their own statistics) and a side-by-side of --style-scale 1 and auto.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHOTOS = ROOT / "samples" / "photos"


def collage(width: int, height: int, photo: str | None = None) -> np.ndarray:
    """A width x height picture of real photos at their own resolution (mirrored copies side by side)."""
    sources = [Path(photo)] if photo else sorted(PHOTOS.glob("*.[jp][pn]g"))
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in sources]
    out = np.empty((height, width, 3), np.uint8)
    y, row = 0, 0
    while y < height:
        x, k = 0, row
        th = min(t.shape[0] for t in tiles)
        while x < width:
            t = tiles[k % len(tiles)][:th]
            t = t[:, ::-1] if (k // len(tiles) + row) % 2 else t
            n = min(t.shape[1], width - x)
            out[y:y + th, x:x + n][: height - y] = t[: height - y, :n]
            x, k = x + n, k + 1
        y, row = y + th, row + 1
    return out


def big_photo(width: int, height: int, photo: str | None = None) -> np.ndarray:
    """A photo scaled up to width x height (Lanczos): a smooth large picture."""
    src = Image.open(photo or PHOTOS / "raccoon.jpg").convert("RGB")
    return np.asarray(src.resize((width, height), Image.Resampling.LANCZOS))


def child(args) -> None:
    """One run, in this process: prints a JSON line; the result goes to --save (.npy)."""
    import torch

    from nst_video.memory import parse_size, process_rss
    from nst_video.stylizer import Stylizer
    picture = (collage if args.kind == "collage" else big_photo)(args.width, args.height, args.photo)
    stylizer = Stylizer.from_style(args.style, device="cpu", backend=args.backend,
                                   max_memory=parse_size(args.max_memory) if args.max_memory else None,
                                   style_scale=args.style_scale)
    stylizer.stylize_image(picture[:64, :64])  # warm: the runtime's first call
    base = process_rss()
    plan = stylizer.plan(args.height, args.width)
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = stylizer.stylize_image(picture)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = peak_rss()
    if args.save:
        np.save(args.save, out)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "band": plan.band_pixels, "peak": peak, "base": base,
                      "tiled": plan.band_pixels is not None,
                      "maps": str(plan.map_dtype).removeprefix("torch."), "estimate": plan.need,
                      "budget": stylizer.max_memory}))


def peak_rss() -> int:
    """This process's peak RSS: VmHWM, not getrusage's ru_maxrss, which Linux carries over from the parent
    across fork and exec (a child of a big parent would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(**kw) -> dict:
    cmd = [sys.executable, __file__, "--child"]
    for k, v in kw.items():
        if v is not None:
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def agreement(args, tmp: Path) -> None:
    w, h = args.mid
    print(f"\n## tiled against one pass: {w}x{h} ({w * h / 1e6:.1f} MP collage of samples/photos), "
          f"style {args.style}")
    common = dict(width=w, height=h, style=args.style, kind="collage", photo=args.photo, style_scale=1)
    one = run_child(backend="torch", max_memory="64G", save=tmp / "one.npy", **common)
    tiled = run_child(backend="torch", max_memory=args.mid_budget, save=tmp / "tiled.npy", **common)
    ov = run_child(backend="auto", max_memory="64G", **common)
    for name, r in (("one pass, torch", one), (f"tiled, --max-memory {args.mid_budget}", tiled),
                    ("one pass, auto runtime", ov)):
        if "error" in r:
            print(f"| {name} | failed: {r['error']} |")
        else:
            print(f"| {name} | {r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU | peak RSS {gib(r['peak'])} | "
                  f"tiled: {r['tiled']} "
                  f"({r['maps']} maps) |")
    if "error" not in one and "error" not in tiled:
        a, b = np.load(tmp / "one.npy"), np.load(tmp / "tiled.npy")
        print(f"PSNR tiled vs one pass: {psnr(a, b):.2f} dB; max difference {np.abs(a.astype(int) - b).max()} "
              f"levels; time ratio tiled / one pass (torch): {tiled['seconds'] / one['seconds']:.2f} wall, "
              f"{tiled['cpu'] / one['cpu']:.2f} CPU"
              + (f"; against the auto runtime: {tiled['seconds'] / ov['seconds']:.2f} wall" if "error" not in ov
                 else ""))
        if args.figures:
            seam_figure(a, b, tiled["band"] // w, args, Path(args.figures))


def seam_figure(one: np.ndarray, tiled: np.ndarray, rows: int, args, folder: Path) -> None:
    """Crops across band borders: tiled | one pass | naive tiles (each with its own statistics)."""
    import torch

    from nst_video.styles import StyleRegistry
    from nst_video.stylizer import frames_to_tensor, tensor_to_frames
    h, w = one.shape[:2]
    picture = collage(w, h, args.photo)
    y0 = max(0, min(h - 192, rows - 96))  # centred on the first band border at full resolution
    x0 = w // 3
    _, model = StyleRegistry().load(args.style)
    model.eval()
    with torch.inference_mode():  # naive: two tiles split at the crop's middle, each normalised by itself
        top = tensor_to_frames(model(frames_to_tensor([picture[: y0 + 96]])))[0]
        bottom = tensor_to_frames(model(frames_to_tensor([picture[y0 + 96:]])))[0]
    naive = np.concatenate([top, bottom])
    crops = [c[y0:y0 + 192, x0:x0 + 256] for c in (tiled, one, naive)]
    gap = np.full((192, 8, 3), 255, np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "tiling_seams.png"
    Image.fromarray(np.concatenate([crops[0], gap, crops[1], gap, crops[2]], axis=1)).save(out)
    print(f"wrote {out} (192x256 crops at row {y0}, a band border at row {rows}; "
          "tiled | one pass | naive tiles split at the middle)")


def large(args) -> None:
    w, h = args.large
    print(f"\n## {w}x{h} ({w * h / 1e6:.1f} MP), --style-scale 1, budgets: peak RSS of the whole process")
    for budget in args.large_budgets:
        r = run_child(width=w, height=h, style=args.style, kind="photo", photo=args.photo, backend="auto",
                      max_memory=budget, style_scale=1)
        if "error" in r:
            print(f"| --max-memory {budget} | {r['error']} |")
        else:
            print(f"| --max-memory {budget} | peak RSS {gib(r['peak'])} (before: {gib(r['base'])}; estimated "
                  f"{gib(r['base'] + r['estimate'])}) | {r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU | "
                  f"tiled: {r['tiled']} "
                  f"({r['maps']} maps) |")
    r = run_child(width=w, height=h, style=args.style, kind="photo", photo=args.photo, backend="auto",
                  max_memory=args.large_budgets[0], style_scale="auto")
    if "error" not in r:
        print(f"| --style-scale auto, --max-memory {args.large_budgets[0]} | peak RSS {gib(r['peak'])} | "
              f"{r['seconds']:.1f} s |")


def scale_figure(args) -> None:
    """Side by side, each shown at 640 px wide: --style-scale 1 and auto on a 4x-upscaled photo, and 1:1 crops."""
    from nst_video.stylizer import Stylizer
    src = Image.open(args.photo or PHOTOS / "raccoon.jpg").convert("RGB")
    w, h = src.size
    big = np.asarray(src.resize((w * 4, h * 4), Image.Resampling.LANCZOS))
    rows = []
    for scale in (1, "auto"):
        s = Stylizer.from_style(args.style, device="cpu", style_scale=scale)
        out = Image.fromarray(s.stylize_image(big))
        small = out.resize((w, h), Image.Resampling.LANCZOS)
        crop = out.crop((w * 2 - w // 2, h * 2 - h // 2, w * 2 + w // 2, h * 2 + h // 2))
        rows.append(np.concatenate([np.asarray(small), np.full((h, 8, 3), 255, np.uint8), np.asarray(crop)], 1))
    figure = np.concatenate([rows[0], np.full((8, rows[0].shape[1], 3), 255, np.uint8), rows[1]], 0)
    folder = Path(args.figures)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "style_scale.jpg"
    Image.fromarray(figure).save(out, quality=88)
    print(f"wrote {out}: a {w * 4}x{h * 4} photo, top --style-scale 1, bottom auto; left whole (scaled to "
          f"{w}x{h}), right a 1:1 crop")


def stats_methods(args) -> None:
    """PSNR against one pass of: naive tiles, statistics from a scaled-down copy, the exact bands."""
    import torch
    import torch.nn.functional as F

    from nst_video.model import InstanceNorm
    from nst_video.styles import StyleRegistry
    from nst_video.tiling import stylize_bands
    w, h = args.mid
    picture = collage(w, h, args.photo)
    _, model = StyleRegistry().load(args.style)
    model.eval()
    x = torch.from_numpy(picture.copy()).permute(2, 0, 1)[None].float() / 255
    norms = [m for m in model.modules() if isinstance(m, InstanceNorm)]

    def q(t):
        return t.mul(255).round().clamp(0, 255).squeeze(0).permute(1, 2, 0).numpy().astype(np.uint8)

    def with_stats(stats, fn):  # every norm layer with given statistics
        originals = [n.forward for n in norms]
        for n, (mean, var) in zip(norms, stats, strict=True):
            n.forward = (lambda t, n=n, mean=mean, var=var: F.batch_norm(
                t, mean, var, n.weight, n.bias, training=False, eps=n.eps))
        try:
            return fn()
        finally:
            for n, f in zip(norms, originals, strict=True):
                n.forward = f

    def recorded(t):
        stats = []
        hooks = [n.register_forward_pre_hook(lambda m, a: stats.append(
            (a[0].float().mean((0, 2, 3)), a[0].float().var((0, 2, 3), unbiased=False)))) for n in norms]
        model(t)
        for hk in hooks:
            hk.remove()
        return stats

    def tiles(fn, size=1024, margin=56):  # overlapping tiles (margin >= the receptive field), cores kept
        out = torch.empty_like(x)
        for y0 in range(0, h, size):
            for x0 in range(0, w, size):
                ya, xa = max(0, y0 - margin), max(0, x0 - margin)
                t = fn(x[..., ya:min(h, y0 + size + margin), xa:min(w, x0 + size + margin)])
                out[..., y0:y0 + size, x0:x0 + size] = t[..., y0 - ya:y0 - ya + size, x0 - xa:x0 - xa + size]
        return out

    print(f"\n## statistics for tiles: {w}x{h} collage, style {args.style}; PSNR against one pass, uint8")
    with torch.inference_mode():
        start = time.perf_counter()
        one = q(model(x))
        t_one = time.perf_counter() - start
        print(f"| one pass | reference | {t_one:.1f} s |")
        start = time.perf_counter()
        print(f"| 1024 px tiles, each with its own statistics | {psnr(q(tiles(model)), one):.2f} dB | "
              f"{time.perf_counter() - start:.1f} s |")
        for fraction in (1 / 16, 1 / 4):
            start = time.perf_counter()
            small = F.interpolate(x, scale_factor=fraction ** 0.5, mode="bilinear", antialias=True)
            stats = recorded(small)
            out = with_stats(stats, lambda: tiles(model))
            print(f"| tiles, statistics from a copy with {fraction:.3g} of the pixels | {psnr(q(out), one):.2f} dB"
                  f" | {time.perf_counter() - start:.1f} s |")
        for dtype in (torch.float32, torch.float16):
            start = time.perf_counter()
            out = torch.empty_like(x)
            for a, band in stylize_bands(model, lambda a, b: x[..., a:b, :], h, w, map_dtype=dtype):
                out[..., a:a + band.shape[-2], :] = band
            print(f"| bands, exact statistics, {str(dtype)[6:]} maps | {psnr(q(out), one):.2f} dB | "
                  f"{time.perf_counter() - start:.1f} s |")


def memory_figures(args) -> None:
    """Peak RSS rise per pixel: one pass per backend, and the bands (for memory.py and tiling.py)."""
    from nst_video.runtimes import BACKEND_PREFERENCE, installed
    w, h = args.mid
    print(f"\n## bytes per pixel at {w}x{h} (peak RSS rise of stylize_image, over the process before it)")
    for backend in [b for b in BACKEND_PREFERENCE if installed(b)]:
        r = run_child(width=w, height=h, style=args.style, kind="collage", photo=args.photo, backend=backend,
                      max_memory="64G", style_scale=1)
        if "error" not in r:
            print(f"| one pass, {backend} | {(r['peak'] - r['base']) / (w * h):.0f} B/px |")
    r = run_child(width=w, height=h, style=args.style, kind="collage", photo=args.photo, backend="torch",
                  max_memory=args.mid_budget, style_scale=1)
    if "error" not in r:
        print(f"| bands ({r['maps']} maps), --max-memory {args.mid_budget} | "
              f"{(r['peak'] - r['base']) / (w * h):.0f} B/px; estimated {r['estimate'] / (w * h):.0f} B/px |")


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="mosaic")
    p.add_argument("--photo", help="a photo to use instead of samples/photos")
    p.add_argument("--mid", type=size, default=(1920, 1440), help="size where one pass fits (WxH)")
    p.add_argument("--mid-budget", default="2G", help="--max-memory that makes the mid size run tiled")
    p.add_argument("--large", type=size, default=(6028, 3391), help="the big size (WxH)")
    p.add_argument("--large-budgets", nargs="+", default=["2G", "1.5G"])
    p.add_argument("--figures", default=str(ROOT / "docs"), help="folder for the figures ('' for none)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--stats", action="store_true")
    p.add_argument("--memory", action="store_true")
    p.add_argument("--only", choices=["agreement", "large", "figures"], help="one part of the default run")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("width", "height"):
        p.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    for name in ("kind", "backend", "max-memory", "style-scale", "save"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        if args.style_scale not in (None, "auto"):
            args.style_scale = float(args.style_scale)
        return child(args)
    if args.quick:
        args.mid, args.large, args.mid_budget, args.large_budgets = (640, 480), (1600, 1200), "900M", ["1.2G"]
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch threads: all")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        if args.stats:
            stats_methods(args)
        elif args.memory:
            memory_figures(args)
        else:
            if args.only in (None, "agreement"):
                agreement(args, Path(tmp))
            if args.only in (None, "large"):
                large(args)
            if args.figures and args.only in (None, "figures"):
                scale_figure(args)


if __name__ == "__main__":
    main()

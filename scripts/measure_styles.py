"""A style before and after a retrain, on photos no fine-tune trained on, in one run (issue 32's targets).

    python scripts/measure_styles.py --styles great_wave,udnie                       # HEAD's vs the working tree's
    python scripts/measure_styles.py --styles great_wave \\
        --after great_wave=runs/great_wave-ft256-sw100000/great_wave.safetensors     # a candidate

Photos: the held-out split of train256 (scripts/train_bundled.py, held_out_photos(): 40 photos that
--finetune-256 leaves out) and samples/photos, each scaled so its long side is --sizes (384 and 1080 by
default; every photo at 384; at 1080, where one photo costs seconds, the sample photos and the --bright
brightest held-out photos, since the blobs below appear over bright areas). Per style and size, the mean over
the photos of
  style     the Gram style loss of the output against the painting (scripts/evaluate_styles.py's measure:
            relu1_2..relu4_3, x1e5, painting at 256 px), lower = closer to the painting;
  ratio     the photo's own style loss over the output's: how far the style moves the photo;
  content   the relu2_2 content loss of the output against the photo;
  dark      the share of 16x16 blocks where the photo is bright (mean luma > BRIGHT) and the output near
            black (mean luma < NEAR_BLACK): udnie's blobs; "worst" is the highest share on one photo;
  drops     the share of 16x16 blocks whose colour is at least DROP_OUTPUT (RGB distance, 0-1 per channel) from
            the median colour of the 7x7 blocks around it while the photo's block is within DROP_PHOTO of its
            own: a spot the photo does not have, of any colour (great_wave's droplets; docs/training.md).
            Calibrated on 43 photos at 384 px: the bundled styles 0-0.17% on their worst photo (starry_night
            0.69%), the droplet networks 1.0-1.6%;
  blind     the largest change of the output (0-1) when the last photo is swapped for a copy at half the
            contrast around mid-grey: near 0 means the network cannot see a photo's brightness (the
            instance norm after its first convolution removes it; docs/training.md).
"before" is the style file at git revision --before (default HEAD), "after" the working tree's
checkpoints/<name>.safetensors or the --after files (several: numbered, each against "before"). The flicker
(warping error) on clips is measured by benchmarks/compare_networks.py.

--lite compares each style's lite and fast networks with its full network instead (issue 27: lite/full ratios on
photos the distillation never saw), all from the working tree; each --after NAME=FILE adds a candidate lite or
fast network, also measured against the full one:

    python scripts/measure_styles.py --lite --sizes 384 --styles udnie,the_scream \\
        --after udnie=runs/udnie-lite-held-out/udnie-lite.safetensors
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_webcam import cpu_name  # noqa: E402
from evaluate_styles import find_style_image, measuring_loss  # noqa: E402
from train_bundled import held_out_photos  # noqa: E402

from nst_video.images import load_image  # noqa: E402
from nst_video.styles import load_model, load_style  # noqa: E402
from nst_video.stylizer import Stylizer, frames_to_tensor  # noqa: E402
from nst_video.training.data import load_rgb_tensor  # noqa: E402
from nst_video.training.loss_net import gram  # noqa: E402

BRIGHT, NEAR_BLACK, BLOCK = 0.5, 0.1, 16
DROP_OUTPUT, DROP_PHOTO, NEIGHBOURS = 0.4, 0.05, 7


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", required=True, help="comma-separated bundled style names")
    ap.add_argument("--before", default="HEAD", help="git revision of checkpoints/ to compare with (none: "
                    "measure the candidates alone)")
    ap.add_argument("--after", action="append", default=[], metavar="NAME=FILE",
                    help="a candidate for NAME, repeatable (default: the working tree's checkpoints/NAME.safetensors)")
    ap.add_argument("--sizes", default="384,1080", help="long sides the photos are scaled to")
    ap.add_argument("--bright", type=int, default=10, help="at sizes over 512: the n brightest held-out photos")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--lite", action="store_true", help="NAME-lite, NAME-fast (and --after candidates for them) "
                    "against NAME, all the working tree's: ratios lite / full")
    args = ap.parse_args()

    torch.set_grad_enabled(False)
    names = args.styles.split(",")
    candidates = [tuple(item.split("=", 1)) for item in args.after]
    missing = [f for _, f in candidates if not Path(f).is_file()]
    if missing:  # before the minutes of loading photos and networks
        ap.error(f"--after: no such file: {', '.join(missing)}")
    held_out = held_out_photos(args.data / "content" / "train256")
    samples = sorted((ROOT / "samples" / "photos").iterdir())
    loss_net = measuring_loss(args.data / "vgg" / "vgg16_to_relu4_3_fp16.pth")
    print(f"CPU: {cpu_name()}", flush=True)
    print(f"photos: {len(held_out)} held out of train256 + {len(samples)} samples/photos; "
          f"bright > {BRIGHT}, near-black < {NEAR_BLACK} (mean luma of a {BLOCK}x{BLOCK} block); "
          f"torch threads {torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        versions = {}
        for name in names:
            mine = [Path(file) for n, file in candidates if n == name]
            # numbered when there are several, so that each ratio row says which one it is
            numbered = [(f"{' ' + str(i) if len(mine) > 1 else ''} ({file})", file) for i, file in enumerate(mine, 1)]
            if args.lite:
                versions[name] = [("full (working tree)", ROOT / "checkpoints" / f"{name}.safetensors")]
                versions[name] += [(f"{kind} (working tree)", ROOT / "checkpoints" / f"{name}-{kind}.safetensors")
                                   for kind in ("lite", "fast")
                                   if (ROOT / "checkpoints" / f"{name}-{kind}.safetensors").is_file()]
                versions[name] += [(f"candidate{label}", file) for label, file in numbered]
                continue
            working_tree = ROOT / "checkpoints" / f"{name}.safetensors"
            afters = ([(f"after{label}", file) for label, file in numbered]
                      or [(f"after ({working_tree})", working_tree)])
            if args.before == "none":  # the candidates alone (their before measured already)
                versions[name] = afters
                continue
            before = Path(tmp) / f"{name}.safetensors"
            before.write_bytes(subprocess.run(["git", "show", f"{args.before}:checkpoints/{name}.safetensors"],
                                              cwd=ROOT, capture_output=True, check=True).stdout)
            versions[name] = [(f"before ({args.before})", before)]
            versions[name] += [(label, file) for label, file in afters if file.read_bytes() != before.read_bytes()]
        for size in (int(s) for s in args.sizes.split(",")):
            photos = (held_out if size <= 512 else brightest(held_out, args.bright)) + samples
            measure_size(loss_net, versions, photos, size)
    return 0


def measure_size(loss_net, versions, paths: list[Path], size: int) -> None:
    started = time.time()
    photos = [scaled(load_image(p).rgb, size) for p in paths]
    # the photos' own features, once for every style: content target and Grams
    photo_feats = []
    for rgb in photos:
        feats = loss_net.features(frames_to_tensor([rgb]), upto=loss_net.deepest)
        photo_feats.append((feats[loss_net.content_layer], [gram(feats[n]) for n in loss_net.style_layers]))
    print(f"\n== long side {size} px: {len(photos)} photos "
          f"({sum(1 for p in paths if 'samples' in p.parts)} of them samples/photos)", flush=True)
    print(f"{'style':<17}{'version':<58}{'style':>9}{'ratio':>7}{'content':>9}{'dark %':>8}{'worst %':>9}"
          f"{'drops %':>9}{'worst %':>9}{'blind':>8}")
    for name, variants in versions.items():
        info, _ = load_style(variants[0][1])
        style_path = find_style_image(info.training.get("style_image", ""))
        loss_net.set_style(load_rgb_tensor(style_path, max_size=256)[None])
        targets = loss_net.style_grams
        figures = []
        for label, path in variants:
            stylizer = Stylizer.from_style(str(path), device="cpu", backend="torch")
            blind = brightness_blindness(path, photos[-1])
            rows = []
            for rgb, (content_target, grams) in zip(photos, photo_feats, strict=True):
                styled_rgb = stylizer.stylize([rgb])[0]
                feats = loss_net.features(frames_to_tensor([styled_rgb]), upto=loss_net.deepest)
                style = sum(loss_net._distance(gram(feats[n]), g)
                            for n, g in zip(loss_net.style_layers, targets, strict=True))
                photo_style = sum(loss_net._distance(g_p, g) for g_p, g in zip(grams, targets, strict=True))
                content = loss_net._distance(feats[loss_net.content_layer].float(), content_target.float())
                rows.append((1e5 * float(style), float(photo_style) / float(style), float(content),
                             dark_share(rgb, styled_rgb), drop_share(rgb, styled_rgb)))
            a = np.array(rows)
            figures.append(a[:, :4].mean(0).tolist() + [a[:, 3].max(), a[:, 4].mean(), a[:, 4].max()])
            style, ratio, content, dark, worst, drops, worst_drops = figures[-1]
            print(f"{name:<17}{label:<58}{style:9.3f}{ratio:7.2f}{content:9.3f}{100 * dark:8.3f}{100 * worst:9.3f}"
                  f"{100 * drops:9.3f}{100 * worst_drops:9.3f}{blind:8.4f}", flush=True)
        (s0, _, c0, d0, *_), first = figures[0], variants[0][0].split(" (")[0]
        for (label, _), (s1, _, c1, d1, *_) in zip(variants[1:], figures[1:], strict=True):
            versus = f"{label.split(' (')[0]} / {first}"
            print(f"{name:<17}{versus:<58}{s1 / s0:8.2f}x{'':7}{c1 / c0:8.2f}x"
                  f"{(d1 / d0 if d0 else float('nan')):7.2f}x", flush=True)
    print(f"({time.time() - started:.0f} s)", flush=True)


def brightness_blindness(style_file: Path, rgb: np.ndarray) -> float:
    """The largest change (0-1 scale) of the network's output when the photo is replaced by a dimmer,
    flatter copy (half the contrast, around mid-grey): ~0 when the network cannot tell them apart."""
    _, model = load_model(style_file)
    x = frames_to_tensor([rgb])
    return float((model(x) - model(0.5 * x + 0.25)).abs().max())


def brightest(paths: list[Path], n: int) -> list[Path]:
    return sorted(paths, key=lambda p: -load_image(p).rgb.mean())[:n]


def scaled(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    k = long_side / max(h, w)
    return np.asarray(Image.fromarray(rgb).resize((round(w * k), round(h * k)), Image.BICUBIC))


def dark_share(photo: np.ndarray, styled: np.ndarray) -> float:
    """The share of BLOCK x BLOCK blocks that are bright in the photo and near black in the output."""
    def block_luma(rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(rgb)).float().div(255)
        luma = (x * torch.tensor([0.299, 0.587, 0.114])).sum(-1)
        return F.avg_pool2d(luma[None, None], BLOCK)[0, 0]
    p, s = block_luma(photo), block_luma(styled)
    return float(((p > BRIGHT) & (s < NEAR_BLACK)).float().mean())


def drop_share(photo: np.ndarray, styled: np.ndarray) -> float:
    """The share of BLOCK x BLOCK blocks that stand out from their neighbourhood (NEIGHBOURS x NEIGHBOURS blocks)
    by DROP_OUTPUT in the output where the photo's stand out by less than DROP_PHOTO: spots the style added."""
    def standing_out(rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(rgb)).float().div(255).permute(2, 0, 1)[None]
        blocks = F.avg_pool2d(x, BLOCK)[0]
        c, h, w = blocks.shape
        around = F.unfold(F.pad(blocks[None], (NEIGHBOURS // 2,) * 4, mode="replicate"), NEIGHBOURS)
        return (blocks - around.view(c, NEIGHBOURS ** 2, h, w).median(1).values).norm(dim=0)
    return float(((standing_out(styled) >= DROP_OUTPUT) & (standing_out(photo) < DROP_PHOTO)).float().mean())


if __name__ == "__main__":
    sys.exit(main())

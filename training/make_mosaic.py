"""Render the project's own "mosaic" style image: a Roman/Byzantine floor of irregular tesserae.

    python -m training.make_mosaic samples/styles/mosaic.png --size 768 --seed 0

The design (a flower medallion, corner rosettes, a guilloche border, swirling bands in a starry blue field)
is drawn as a map of colour classes. Tiles are laid like a mosaicist lays them: in rings around each
medallion, in rows along the border and in a jittered grid in the field; each tile is the cell of its seed
(a rounded-square Voronoi cell turned to the row's direction), cut again wherever the design changes colour.
Grout fills the gaps; every tile gets its own shade, a tilt and a bevel. numpy + Pillow only, and the same
seed always gives the same picture.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

# Colour classes: (base RGB, spread of the per-tile shade). Kept brighter than the grout so grout reads dark.
PALETTE = {
    "lapis": ((34, 60, 122), 0.10), "azure": ((52, 100, 164), 0.10), "turquoise": ((40, 140, 140), 0.10),
    "emerald": ((34, 112, 72), 0.10), "gold": ((222, 172, 58), 0.09), "ochre": ((190, 124, 48), 0.09),
    "terracotta": ((184, 84, 48), 0.09), "crimson": ((150, 30, 42), 0.10), "ivory": ((236, 226, 198), 0.05),
    "slate": ((70, 64, 66), 0.08),
}
NAMES = list(PALETTE)
GROUT = np.array([24, 21, 19], np.float32)
FRAME = 0.19  # border width, as a fraction of the half-size
TILES_ACROSS = 64  # tile size in the field: the side over this


def design(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour class index for points (u, v) in [-1, 1]^2 (the picture is the square, y down)."""
    c = {name: i for i, name in enumerate(NAMES)}
    out = np.full(u.shape, c["lapis"], np.int32)
    r, phi = np.hypot(u, v), np.arctan2(v, u)

    # Field: swirling bands (logarithmic spirals) leaving the medallion, edged in gold.
    swirl = np.sin(6 * phi + 9 * np.log(r + 1e-6))
    out[swirl > 0.55] = c["turquoise"]
    out[(swirl > 0.12) & (swirl <= 0.55)] = c["gold"]
    out[(swirl < -0.8)] = c["azure"]

    # Central medallion: ring of dots, gold and slate rings, an ivory ground with sunburst rays and a flower.
    out[r < 0.50] = c["crimson"]
    dots = np.hypot(u - 0.465 * np.cos(np.round(phi / (2 * np.pi / 28)) * 2 * np.pi / 28),
                    v - 0.465 * np.sin(np.round(phi / (2 * np.pi / 28)) * 2 * np.pi / 28)) < 0.022
    out[dots & (r < 0.50)] = c["ivory"]
    out[r < 0.43] = c["gold"]
    out[r < 0.41] = c["slate"]
    out[r < 0.38] = c["ivory"]
    rays = (np.abs(np.sin(8 * phi)) < 0.4) & (r > 0.1)
    out[rays & (r < 0.38)] = c["ochre"]
    outer = r < 0.37 * (0.35 + 0.65 * np.abs(np.cos(4 * phi)) ** 0.7)
    out[outer] = c["terracotta"]
    out[outer & (r < 0.37 * (0.35 + 0.65 * np.abs(np.cos(4 * phi)) ** 0.7) - 0.035)] = c["crimson"]
    inner = r < 0.24 * (0.3 + 0.7 * np.abs(np.sin(4 * phi)) ** 0.8)
    out[inner] = c["gold"]
    out[inner & (r < 0.24 * (0.3 + 0.7 * np.abs(np.sin(4 * phi)) ** 0.8) - 0.03)] = c["ochre"]
    out[r < 0.1] = c["emerald"]
    out[r < 0.075] = c["gold"]
    out[r < 0.035] = c["crimson"]

    # Corner rosettes: an emerald ring round a four-petalled crimson flower on ivory.
    for cu, cv in corner_centres():
        rr, pp = np.hypot(u - cu, v - cv), np.arctan2(v - cv, u - cu)
        out[rr < 0.15] = c["emerald"]
        out[rr < 0.125] = c["ivory"]
        out[rr < 0.115 * np.abs(np.cos(2 * pp)) ** 0.5] = c["crimson"]
        out[rr < 0.035] = c["gold"]

    # Border: slate edge, a gold and ivory guilloche (two interlaced strands) on lapis, terracotta and slate rims.
    edge = 1 - np.maximum(np.abs(u), np.abs(v))
    along = np.where(np.abs(u) > np.abs(v), v, u)
    band = np.clip((edge - 0.035) / 0.12, 0, 1)
    wave = 0.32 * np.sin(2 * np.pi * along / 0.25)
    strand1, strand2 = np.abs(band - 0.5 - wave) < 0.14, np.abs(band - 0.5 + wave) < 0.14
    on_top = np.cos(2 * np.pi * along / 0.25) > 0  # the strands swap over at each crossing
    eye = (np.abs(band - 0.5) < 0.09) & (np.abs(wave) > 0.24)
    frame = np.full(u.shape, c["lapis"], np.int32)
    frame[eye] = c["crimson"]
    frame[strand2] = c["ivory"]
    frame[strand1 & (on_top | ~strand2)] = c["gold"]
    frame[edge < 0.035] = c["slate"]
    frame[(edge >= 0.155) & (edge < 0.17)] = c["slate"]
    frame[edge >= 0.17] = c["terracotta"]
    corner = (np.abs(u) > 1 - FRAME) & (np.abs(v) > 1 - FRAME)
    diamond = np.abs(np.abs(u) - (1 - FRAME / 2)) + np.abs(np.abs(v) - (1 - FRAME / 2))
    frame[corner] = np.where(diamond[corner] < 0.07, c["gold"], c["crimson"])
    frame[corner & (diamond < 0.03)] = c["ivory"]
    frame[corner & (edge < 0.035)] = c["slate"]
    return np.where(edge < FRAME, frame, out)


def corner_centres() -> list[tuple[float, float]]:
    return [(su * 0.63, sv * 0.63) for su in (-1, 1) for sv in (-1, 1)]


def lay_tiles(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Tile seeds (x, y in pixels) and each tile's direction: the andamento, the flow of the rows."""
    step = size / TILES_ACROSS
    half = size / 2
    pts, angles = [], []

    def add(x, y, a, keep):
        x, y = x + rng.normal(0, 0.12 * step, x.shape), y + rng.normal(0, 0.12 * step, y.shape)
        k = keep((x - half) / half, (y - half) / half)
        pts.append(np.stack([x[k], y[k]], 1))
        angles.append(a[k] + rng.normal(0, 0.08, k.sum()))

    def rings(cu, cv, radius, tile):
        for ring in np.arange(tile / 2, radius * half + tile, tile):
            n = max(1, round(2 * np.pi * ring / tile))
            t = (np.arange(n) + rng.random()) * 2 * np.pi / n
            yield half * (1 + cu) + ring * np.cos(t), half * (1 + cv) + ring * np.sin(t), t + np.pi / 2

    def in_medallion(u, v):
        return np.hypot(u, v) < 0.5

    def in_corner(u, v):
        return np.min([np.hypot(u - cu, v - cv) for cu, cv in corner_centres()], axis=0) < 0.15

    def in_frame(u, v):
        return 1 - np.maximum(np.abs(u), np.abs(v)) < FRAME

    def in_frame_corner(u, v):
        return (np.abs(u) > 1 - FRAME) & (np.abs(v) > 1 - FRAME)

    for x, y, a in rings(0, 0, 0.5, 0.85 * step):
        add(x, y, a, lambda u, v: in_medallion(u, v))
    for cu, cv in corner_centres():
        for x, y, a in rings(cu, cv, 0.15, 0.8 * step):
            add(x, y, a, lambda u, v, cu=cu, cv=cv: np.hypot(u - cu, v - cv) < 0.15)
    # Border rows run along each side (a point belongs to the side it is nearest to), in smaller tiles so the
    # guilloche reads; the corner squares get a grid of their own.
    tile = 0.62 * step
    for depth in np.arange(tile / 2, FRAME * half + tile, tile):
        along = np.arange(0, size, tile) + rng.random() * tile
        for side in range(4):
            x, y = (along, np.full_like(along, depth)) if side % 2 == 0 else (np.full_like(along, depth), along)
            if side >= 2:
                x, y = size - x, size - y
            a = np.full_like(along, 0.0 if side % 2 == 0 else np.pi / 2)

            def nearest_side(u, v, side=side):
                d = np.stack([v + 1, u + 1, 1 - v, 1 - u])  # top, left, bottom, right
                return in_frame(u, v) & ~in_frame_corner(u, v) & (d.argmin(0) == side)
            add(x, y, a, nearest_side)
    cx, cy = np.meshgrid(np.arange(tile / 2, size, tile), np.arange(tile / 2, size, tile))
    add(cx.ravel(), cy.ravel(), np.zeros(cx.size), in_frame_corner)
    # Field: a jittered grid, the opus tessellatum of the background.
    gx, gy = np.meshgrid(np.arange(step / 2, size, step), np.arange(step / 2, size, step))
    add(gx.ravel(), gy.ravel(), np.zeros(gx.size),
        lambda u, v: ~in_frame(u, v) & ~in_medallion(u, v) & ~in_corner(u, v))
    return np.concatenate(pts), np.concatenate(angles)


def voronoi(size: int, seeds: np.ndarray, angles: np.ndarray, reach: float):
    """Nearest seed (label, -1 for none) and its distance per pixel, in a rounded-square metric turned to each
    tile. Each seed only claims pixels within `reach`, so this is a loop of small windows, not N x H x W."""
    d1 = np.full((size, size), np.inf, np.float32)
    label = np.full((size, size), -1, np.int32)
    r = int(np.ceil(reach))
    for i, ((sx, sy), a) in enumerate(zip(seeds, angles, strict=True)):
        x0, x1 = max(0, int(sx) - r), min(size, int(sx) + r + 1)
        y0, y1 = max(0, int(sy) - r), min(size, int(sy) + r + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = dx + 0.5 - sx, dy + 0.5 - sy
        p, q = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
        d = 0.6 * np.maximum(np.abs(p), np.abs(q)) + 0.4 * np.hypot(p, q)
        w1, lab = d1[y0:y1, x0:x1], label[y0:y1, x0:x1]
        closer = d < w1
        w1[:] = np.where(closer, d, w1)
        lab[:] = np.where(closer, i, lab)
    return d1, label


def merge_slivers(classes: np.ndarray, label: np.ndarray, n: int, keep: float = 0.3) -> np.ndarray:
    """Where the design cuts a tile into a big piece and a sliver, give the sliver the big piece's colour: a
    mosaicist would not cut a stone that thin, and the outlines get the stepped edge of real tesserae."""
    k = len(NAMES)
    tile = np.maximum(label, 0)
    counts = np.bincount((tile * k + classes).ravel(), minlength=n * k).reshape(n, k)
    piece = counts[tile, classes]
    small = piece < keep * counts.sum(1)[tile]
    return np.where(small, counts.argmax(1)[tile], classes)


def distance_to_edge(pieces: np.ndarray, limit: int) -> np.ndarray:
    """Chessboard distance (capped at `limit`) from each pixel to the nearest edge between two pieces (the
    pixel just before each change, so an edge is one pixel wide)."""
    dist = np.full(pieces.shape, float(limit), np.float32)
    edge = np.zeros(pieces.shape, bool)
    edge[:-1] |= pieces[1:] != pieces[:-1]
    edge[:, :-1] |= pieces[:, 1:] != pieces[:, :-1]
    reached = edge
    for k in range(limit):
        dist[reached & (dist == limit)] = k
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        reached = grown
    return dist


def smooth_noise(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    small = Image.fromarray(rng.normal(0, 1, (cells, cells)).astype(np.float32), "F")
    return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC))


def render_mosaic(size: int = 768, seed: int = 0) -> np.ndarray:
    """The mosaic as an RGB uint8 array (size x size). Drawn at twice the size and scaled down, so tile edges
    are smooth and the grout can be 1.5 pixels wide."""
    rng = np.random.default_rng(seed)
    big = 2 * size
    step = big / TILES_ACROSS
    seeds, angles = lay_tiles(big, rng)
    dist, label = voronoi(big, seeds, angles, reach=1.6 * step)

    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) + 0.5
    classes = design(xx / big * 2 - 1, yy / big * 2 - 1)
    classes = merge_slivers(classes, label, len(seeds))
    # A piece is one seed's cell cut by the design's outlines (as a mosaicist cuts stones to an outline); grout
    # runs between pieces (1.5 px wide in the final image; 0.5 px below 512 px, where tiles are tiny) and fills
    # any gap left between seeds.
    bevel = step * 0.35
    inner = distance_to_edge(label * len(NAMES) + classes, int(np.ceil(bevel)) + 2)
    grout = (inner < (2 if size >= 512 else 1)) | (dist > 1.25 * step) | (label < 0)

    # Per tile: a shade of its class (some tiles borrow a lighter or darker stone), gold stars in the lapis.
    n = len(seeds)
    base = np.array([PALETTE[name][0] for name in NAMES], np.float32)
    spread = np.array([PALETTE[name][1] for name in NAMES], np.float32)
    shade = 1 + rng.normal(0, 1, (n, len(NAMES))) * spread
    hue = rng.normal(0, 0.04, (n, len(NAMES), 3))
    star = rng.random(n) < 0.035
    tile = np.maximum(label, 0)
    colour = base[classes] * (shade[tile, classes][..., None] + hue[tile, classes])
    lapis = classes == NAMES.index("lapis")
    colour[lapis & star[tile]] = base[NAMES.index("gold")] * 1.05

    # Relief: each tile tilted a little and bevelled at its edges, lit from the upper left.
    tilt = rng.normal(0, 0.06, (n, 2)).astype(np.float32)
    light = tilt[tile, 0] * (xx - seeds[tile, 0]) / step + tilt[tile, 1] * (yy - seeds[tile, 1]) / step
    height = np.clip((inner - 1) / bevel, 0, 1)
    height = height * height * (3 - 2 * height)
    gy, gx = np.gradient(height)
    light += 0.55 * (-gx - gy) / np.sqrt(2) * 2 - 0.15 * (1 - height)
    grain = 0.05 * smooth_noise(big, big // 6, rng) + 0.04 * rng.normal(0, 1, (big, big))
    rgb = colour * (1 + light + grain)[..., None]

    grout_colour = GROUT * (1 + 0.25 * smooth_noise(big, big // 12, rng))[..., None]
    rgb = np.where(grout[..., None], grout_colour, rgb)
    image = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output image (.png)")
    parser.add_argument("--size", type=int, default=768, help="side in pixels (default 768)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.size < 64:
        parser.error("--size must be at least 64")
    from nst_video.atomic import atomic_output

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as tmp:
        Image.fromarray(render_mosaic(args.size, args.seed)).save(tmp, format="PNG", optimize=True)
    print(f"wrote {args.out} ({args.size}x{args.size}, seed {args.seed})")


if __name__ == "__main__":
    main()

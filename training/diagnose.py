"""`nst-video diagnose CONTENT STYLE`: the checks users otherwise do by hand after a NaN or a dull style.

Looks at the images, the VGG weights, the size of each loss term under the chosen weights, and the gradient
norms over a few real training steps, then says what it would change."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from rich.table import Table

from nst_video.errors import NstError
from nst_video.images import load_image
from nst_video.report import console as stderr_console
from nst_video.stylizer import pick_device
from nst_video.training.data import find_images
from nst_video.training.loss_net import load_vgg_weights
from nst_video.training.train import TrainConfig, build, guarded_step


def diagnose(content: str, style: str, cfg: TrainConfig, steps: int = 5, console=stderr_console) -> list[str]:
    """Print a report; return the advice lines (empty when everything looks right)."""
    advice: list[str] = []
    device = pick_device(cfg.device)

    # --- images ---
    content_path = Path(content)
    files = find_images(content_path) if content_path.is_dir() else [content_path]
    unreadable = []
    for f in files:
        try:
            load_image(f)
        except NstError as e:
            unreadable.append(str(e))
    # paths as they are: markup off wherever a user's name is printed (a "[/]" in one would be a crash)
    console.print(f"content: {len(files) - len(unreadable)} readable image(s) of {len(files)} in {content}",
                  markup=False)
    for line in unreadable[:5]:
        console.print(f"  skipped: {line}", markup=False)
    if len(unreadable) == len(files):
        raise NstError(f"{content}: no readable images")
    if unreadable:
        advice.append(f"{len(unreadable)} content image(s) are unreadable; training skips them (listed above)")
    style_rgb = load_image(Path(style)).rgb
    console.print(f"style: {style} {style_rgb.shape[1]}x{style_rgb.shape[0]}", markup=False)
    if max(style_rgb.shape[:2]) < cfg.style_size // 2:
        advice.append(f"the style image is small ({max(style_rgb.shape[:2])} px): its texture will look blurry "
                      f"at --style-size {cfg.style_size}; use a larger scan")

    # --- VGG ---
    vgg = load_vgg_weights(cfg.vgg_weights)  # raises a clear error when missing, foreign or non-finite
    console.print(f"VGG16 weights: found, {sum(v.numel() for v in vgg.values()):,} values, all finite")

    # --- loss terms and gradients over a few real training steps (the same build and step as `train`) ---
    folder = content_path if content_path.is_dir() else content_path.parent
    session = build(cfg, device, content_dir=folder, vgg_state=vgg)
    table = Table("step", "content", "style", "tv", "total", "grad norm", box=None)
    rows = []
    for step in range(steps):
        batch = torch.stack([session.dataset[(step, slot)][0] for slot in range(cfg.batch_size)]).to(device)
        outcome = guarded_step(session, batch, step=step)
        row = {"content": math.nan, "style": math.nan, "tv": math.nan, "total": math.nan} | outcome.terms
        row["grad"] = outcome.grad_norm
        rows.append(row)
        table.add_row(str(step), *(f"{row[k]:.4g}" for k in ("content", "style", "tv", "total", "grad")))
    console.print(f"loss terms (weighted: content {cfg.content_weight:g}, style {cfg.style_weight:g}, "
                  f"tv {cfg.tv_weight:g}) over {steps} steps at {cfg.image_size} px, batch {cfg.batch_size}:")
    console.print(table)
    advice += advise(rows, cfg)
    if advice:
        console.print("[bold]would change:[/]")
        for line in advice:
            console.print(f"  - {line}", markup=False)
    else:
        console.print("[green]looks right: nothing to change[/]")
    return advice


def advise(rows: list[dict], cfg: TrainConfig) -> list[str]:
    """Rules of thumb from the loss magnitudes of an untrained network (first step) and the gradient norms."""
    out = []
    if any(not math.isfinite(v) for r in rows for v in r.values()):
        return ["non-finite loss or gradient: check the images and the VGG file, drop --amp, lower --lr "
                f"(now {cfg.lr:g}) by 10x"]
    first = rows[0]
    ratio = first["style"] / max(first["content"], 1e-12)
    if ratio < 0.5:
        out.append(f"style term is only {ratio:.2g}x the content term at the start: the result will barely "
                   f"change the photo; raise --style-weight to about {cfg.style_weight * 5 / max(ratio, 1e-3):.2g}")
    elif ratio > 500:
        out.append(f"style term is {ratio:.3g}x the content term at the start: the photo will be lost in "
                   f"texture; lower --style-weight to about {cfg.style_weight * 50 / ratio:.2g}")
    if first["tv"] > 0.2 * (first["content"] + first["style"]):
        out.append(f"total variation dominates ({first['tv']:.3g}): the result will be blurred; "
                   f"lower --tv-weight to {cfg.tv_weight / 10:g}")
    if all(r["grad"] < 1e-6 for r in rows):
        out.append(f"gradient norms are vanishing ({rows[-1]['grad']:.2g}): the network gets no learning signal; "
                   "raise the loss weights together")
    if len(rows) > 1 and rows[-1]["total"] > rows[0]["total"] * 1.5:
        out.append(f"the loss rose over {len(rows)} steps: lower --lr (now {cfg.lr:g})")
    return out

"""`--precision int8`: a network's OpenVINO graph with 8-bit weights and activations, made by NNCF's post-training
quantisation (an extra: `pip install 'nst-video[int8]'`) and kept in the graph cache beside the FP32 one.

Calibration (the range of each quantised activation) runs on crops of the three sample photos shipped in
runtimes/calibration (samples/photos at 384 px; public domain and CC0: samples/README.md), so the same
network always gets the same graph, on any machine. What it costs the picture, per bundled style:
docs/cpu-runtimes.md."""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nst_video.errors import NstError
from nst_video.report import event
from nst_video.runtimes.graphs import write_openvino_graph

INSTALL = "pip install 'nst-video[int8]'"
CROP = 128           # the training crops' size: the activations' ranges as the network learnt them
CROPS_PER_PHOTO = 6  # 18 crops, a few scales each: NNCF's default of 300 samples gave the same ranges here


def nncf_version() -> str:
    """NNCF's version (part of the cache key), or an NstError naming the extra where it is missing."""
    try:
        import nncf
    except Exception:  # missing or broken: either way int8 cannot be made here
        raise NstError(f"--precision int8 needs NNCF to quantise the network: {INSTALL}") from None
    return nncf.__version__


def calibration_crops(size: int = CROP, per_photo: int = CROPS_PER_PHOTO) -> list[torch.Tensor]:
    """(1, 3, size, size) float crops of the shipped photos, at a few scales, the same every time."""
    from PIL import Image

    rng = np.random.default_rng(0)
    crops = []
    folder = resources.files("nst_video.runtimes") / "calibration"
    for photo in sorted((p for p in folder.iterdir() if p.name.endswith(".jpg")), key=lambda p: p.name):
        with resources.as_file(photo) as path, Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        for _ in range(per_photo):
            side = int(rng.integers(size, min(h, w) + 1))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(rgb[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
            crops.append(torch.from_numpy(np.asarray(crop)).permute(2, 0, 1)[None].float() / 255)
    return crops


def write_int8_graph(model: nn.Module, path: Path) -> None:
    """Quantise a copy of `model` (not modified) and write its OpenVINO graph to `path`, as graphs.write_graph
    writes the float one."""
    nncf_version()
    import nncf

    event("int8", "quantising a network for this precision (a few seconds, once: kept in the graph cache)")
    model = copy.deepcopy(model).cpu().float().eval().requires_grad_(False)
    with warnings.catch_warnings(), _quiet():  # NNCF's and tracing's notes and bars: nothing a user acts on
        warnings.simplefilter("ignore")
        crops = calibration_crops()
        quantized = nncf.quantize(model, nncf.Dataset(crops), subset_size=len(crops))
        write_openvino_graph(quantized, crops[0], path)


@contextlib.contextmanager
def _quiet():
    """NNCF's log lines and progress bars, and torch's note on building NNCF's extension, kept off the screen
    while the graph is made (a few seconds, once per network)."""
    loggers = [logging.getLogger("torch.utils.cpp_extension"), logging.getLogger("nncf")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

"""Still images in and out, via Pillow: orientation, alpha and odd pixel formats handled so the Stylizer
only ever sees RGB uint8."""
from __future__ import annotations

import glob
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nst_video.atomic import atomic_output
from nst_video.errors import InputTooLarge, NstError, UnsupportedInput, reason

# Pillow warns above MAX_IMAGE_PIXELS and errors above twice that; we refuse at the warning level, because a
# 90-megapixel image would need tens of GB through the network anyway.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
                  ".tga", ".jp2", ".ico"}
ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff", ".tga", ".gif", ".ico"}


@dataclass
class LoadedImage:
    rgb: np.ndarray            # (H, W, 3) uint8
    alpha: np.ndarray | None   # (H, W) uint8, or None when the image is opaque
    path: Path


def is_image_path(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(path: Path | BinaryIO, max_size: int | None = None, name: str | None = None) -> LoadedImage:
    """Decode an image fully (so truncation shows here, not later), upright per EXIF, as RGB uint8 + alpha.
    `path` may also be an open binary file (an upload); messages then call it `name`."""
    source = path
    if hasattr(path, "read"):
        path = Path(name or "image")
    else:
        path = source = Path(path)
        if not path.exists():
            raise NstError(f"{path}: no such file")
        if path.is_dir():
            raise NstError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                im = ImageOps.exif_transpose(im)
                im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputTooLarge(f"{path}: image is too large to decode safely (over {MAX_PIXELS:,} pixels; "
                       "a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise UnsupportedInput(f"{path}: not an image (or a format Pillow cannot read)") from None
    except PermissionError:
        raise NstError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise NstError(f"{path}: cannot read image ({reason(e)}); the file may be truncated or corrupt") from None
    rgb, alpha = to_rgb_alpha(im)
    if max_size and max(rgb.shape[:2]) > max_size:
        rgb, alpha = _downscale(rgb, alpha, max_size)
    return LoadedImage(rgb=rgb, alpha=alpha, path=path)


def to_rgb_alpha(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode -> RGB uint8 and an optional alpha channel."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High bit depth grey: scale to the full 8-bit range. convert("L") would clip everything above 255.
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        grey = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2), None
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "La", "PA"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        arr = np.asarray(im.convert("RGBA"))
        alpha = arr[:, :, 3].copy()
        return np.ascontiguousarray(arr[:, :, :3]), (None if alpha.min() == 255 else alpha)
    # CMYK, YCbCr, LAB, L, 1, RGB...: Pillow converts these correctly.
    return np.ascontiguousarray(np.asarray(im.convert("RGB"))), None


def _downscale(rgb: np.ndarray, alpha: np.ndarray | None, max_size: int):
    h, w = rgb.shape[:2]
    scale = max_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.LANCZOS))
    return rgb, alpha


def save_image(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95) -> None:
    """Write atomically; the format comes from the extension. Alpha is kept where the format holds it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise NstError(f"{path}: unknown image format '{suffix or '(no extension)'}'; use e.g. .png or .jpg")
    try:
        with atomic_output(path) as tmp:
            encode_image(tmp, rgb, alpha, suffix, quality)
    except NstError:
        raise
    except OSError as e:
        raise NstError(f"{path}: cannot write ({reason(e)})") from None


def encode_image(out: Path | BinaryIO, rgb: np.ndarray, alpha: np.ndarray | None = None, suffix: str = ".png",
                 quality: int = 95) -> None:
    """Encode into `out` (a path, or a binary file such as BytesIO) in the format of `suffix` (".png", ".jpg",
    ...). Alpha is kept where the format holds it."""
    suffix = suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise NstError(f"unknown image format '{suffix}'; use e.g. .png or .jpg")
    im = Image.fromarray(rgb, "RGB")
    if alpha is not None and suffix in ALPHA_SUFFIXES:
        im.putalpha(Image.fromarray(alpha, "L"))
    options = {"quality": quality} if suffix in (".jpg", ".jpeg", ".webp") else {}
    if suffix == ".gif":
        im = im.convert("RGBA" if alpha is not None else "RGB")
    im.save(out, format=Image.registered_extensions().get(suffix), **options)


def expand_inputs(specs: list[str]) -> list[Path]:
    """Files, folders (recursively, images only) and glob patterns -> a sorted list of image files, in the
    order given. A name that matches nothing is an error, not silently skipped."""
    found: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_path(p))
            if not files:
                raise NstError(f"{spec}: folder holds no images")
            found.extend(files)
        elif path.exists():
            found.append(path)
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not matches:
                raise NstError(f"{spec}: pattern matches no files")
            found.extend(matches)
        else:
            raise NstError(f"{spec}: no such file or folder")
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p, None)
    return list(unique)

"""Style files and the registry that finds them.

One style = one `.safetensors` file: the TransformerNet weights (fp16 on disk: 3.4 MB) and string metadata
(name, title, credit, training settings, format version). safetensors holds no code, so loading a style
from anywhere never runs anything.

Listing styles reads only the files' headers, without torch (`nst-video styles` answers at once); torch is
imported by what reads or writes weights.
"""
from __future__ import annotations

import importlib.resources
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nst_video.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from nst_video.atomic import atomic_output
from nst_video.errors import NstError
from nst_video.paths import user_styles_dir  # noqa: F401  (where the registry looks; train and distill write)

if TYPE_CHECKING:
    import torch

    from nst_video.model import TransformerNet

FORMAT = "nst-video-style"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
LITE_SUFFIX = "-lite"  # a lite style distilled from NAME is named NAME-lite (scripts/distill_bundled.py)
FAST_SUFFIX = "-fast"  # and its fast network (for CPUs computing in fp32) NAME-fast
VARIANT_SUFFIXES = (LITE_SUFFIX, FAST_SUFFIX)
BUNDLED_DIR = Path(str(importlib.resources.files("nst_video.checkpoints")))  # checkpoints/ in the repository


def base_name(name: str) -> str:
    """The style a network paints: mosaic for mosaic, mosaic-lite and mosaic-fast."""
    return next((name.removesuffix(s) for s in VARIANT_SUFFIXES if name.endswith(s)), name)


def counterpart(name: str) -> str:
    """The other network of the same style: mosaic <-> mosaic-lite; mosaic-fast -> mosaic."""
    return base_name(name) if base_name(name) != name else name + LITE_SUFFIX


def next_network(name: str, names: list[str]) -> str | None:
    """The next of the style's networks that is installed, in the order full, lite, fast (the webcam's `l`);
    None where it has no other."""
    base = base_name(name)
    order = [n for n in (base, base + LITE_SUFFIX, base + FAST_SUFFIX) if n in names]
    if name not in order or len(order) < 2:
        return None
    return order[(order.index(name) + 1) % len(order)]


def one_per_style(names: list[str], lite: bool | tuple[str, ...] = False) -> list[str]:
    """Each style of `names` once: as its first network in `lite` (suffixes in order of preference; True:
    the lite one) that is there, else as the full one; full styles first, then the distilled-only ones."""
    prefer = (LITE_SUFFIX,) if lite is True else tuple(lite or ())
    full = [n for n in names if base_name(n) == n]
    bases = set(full)
    for n in names:  # a distilled network whose full style is not installed is a style of its own
        if base_name(n) not in bases:
            full.append(n)
            bases.add(base_name(n))
    return [next((base_name(n) + s for s in prefer if base_name(n) + s in names), n) for n in full]


@dataclass
class StyleInfo:
    name: str
    title: str = ""
    credit: str = ""
    training: dict = field(default_factory=dict)
    path: Path | None = None
    architecture: str = DEFAULT_ARCHITECTURE  # which network of nst_video.model.ARCHITECTURES

    @property
    def key(self) -> str:
        """What `--style` takes to find this style again: its file's name without the suffix (the metadata's
        name where there is no file)."""
        return style_key(self.path) if self.path else self.name


def style_key(path: Path) -> str:
    return Path(path).name.removesuffix(SUFFIX)


def save_style(path: Path, state_dict: dict[str, torch.Tensor], info: StyleInfo,
               dtype: torch.dtype | None = None) -> Path:
    """Write a style file atomically. Weights are stored as `dtype`, by default float16 (half the size;
    loading upcasts)."""
    import torch
    from safetensors.torch import save_file

    dtype = dtype or torch.float16
    path = Path(path)
    _check_tensors(path, {k: tuple(v.shape) for k, v in state_dict.items()}, _network(path, info.architecture))
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state_dict.items()}
    metadata = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION),
        "name": info.name, "title": info.title or info.name, "credit": info.credit,
        "training": json.dumps(info.training, sort_keys=True), "architecture": info.architecture,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_info(path: Path, check_weights: bool = True) -> StyleInfo:
    """Read only the metadata (fast: the header), validating that this is a style file: a whole file of the
    safetensors layout, with our format header and version, of a network this nst-video knows; with
    `check_weights`, also that its tensors are that network's (this needs torch)."""
    path = Path(path)
    meta, shapes = _open(path, with_tensors=False)
    info = _info_from(meta, path)
    _check_architecture(path, info.architecture)
    if check_weights:
        _check_tensors(path, shapes, _network(path, info.architecture))
    return info


def load_style(path: Path) -> tuple[StyleInfo, dict[str, torch.Tensor]]:
    """Read metadata and weights (as float32) of a style file, or raise NstError saying what is wrong."""
    import torch

    path = Path(path)
    meta, tensors = _open(path, with_tensors=True)
    info = _info_from(meta, path)
    _check_tensors(path, {k: tuple(v.shape) for k, v in tensors.items()}, _network(path, info.architecture))
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise NstError(f"{path}: style file has non-finite weights (in {bad[0]}); it is corrupt")
    return info, {k: v.float() for k, v in tensors.items()}


def load_model(path: Path) -> tuple[StyleInfo, TransformerNet]:
    from nst_video.model import build_network

    info, state = load_style(path)
    model = build_network(info.architecture)
    model.load_state_dict(state)
    return info, model.eval()


def _check_architecture(path: Path, architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise NstError(f"{path}: uses the network '{architecture}', which this nst-video does not know "
                       f"(it knows {', '.join(ARCHITECTURES)}); update nst-video")


def _network(path: Path, architecture: str) -> dict[str, torch.Tensor]:
    """The state dict a style file of this architecture must hold."""
    from nst_video.model import build_network

    _check_architecture(path, architecture)
    return build_network(architecture).state_dict()


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple]]:
    """The metadata and tensor shapes of a safetensors file, from its header alone (no torch): 8 bytes of
    header length, a JSON header, then the data, which must end where the header says (else the file is
    truncated or padded)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError("shorter than a header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(size - 8, 100 * 2**20):
            raise ValueError(f"header length {length} does not fit in the file")
        header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("the metadata is not a table of strings")
    shapes, end = {}, 0
    for name, entry in header.items():
        try:
            begin, stop = entry["data_offsets"]
            shapes[name] = tuple(int(n) for n in entry["shape"])
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"tensor {name!r} is not described by a dtype, shape and offsets") from None
        end = max(end, int(stop))
    if 8 + length + end != size:
        raise ValueError(f"the data ends at byte {8 + length + end}, the file at {size}")
    return meta, shapes


def _open(path: Path, with_tensors: bool):
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise NstError(f"style file not found: {path}")
    try:
        if with_tensors:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                payload = {k: f.get_tensor(k) for k in f.keys()} if meta.get("format") == FORMAT else {}
        else:
            meta, payload = _read_header(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise NstError(f"{path}: not a readable style file (truncated or foreign format: {e})") from None
    if meta.get("format") != FORMAT:
        raise NstError(f"{path}: not an nst-video style file (no '{FORMAT}' header)")
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        version = 0
    if version < 1 or version > FORMAT_VERSION:
        raise NstError(f"{path}: style format version {meta.get('format_version')!r} is not supported "
                       f"(this nst-video reads version {FORMAT_VERSION}); update nst-video")
    return meta, payload


def _check_tensors(path: Path, shapes: dict[str, tuple], expected: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    wrong = [k for k in expected if k in shapes and tuple(shapes[k]) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                else f"{wrong[0]} has shape {tuple(shapes[wrong[0]])}")
        raise NstError(f"{path}: weights do not fit the transformer network ({what})")


def _info_from(meta: dict[str, str], path: Path) -> StyleInfo:
    try:
        training = json.loads(meta.get("training") or "{}")
    except json.JSONDecodeError:
        training = {}
    return StyleInfo(name=meta.get("name") or style_key(path), title=meta.get("title", ""),
                     credit=meta.get("credit", ""), training=training, path=path,
                     architecture=meta.get("architecture") or DEFAULT_ARCHITECTURE)


def check_new_style(name: str, output: Path, replace: bool) -> None:
    """The one rule for a style file that `train` or `distill` is about to write, checked before any work:
    in the user styles folder (the default output) a bundled style's name is refused, since the bundled
    style would hide it (the registry looks there first); and an existing file is replaced only when
    `replace` (--force, or --resume continuing its run)."""
    output = Path(output)
    key = style_key(output)
    if (output.parent.resolve() == user_styles_dir().resolve() and (BUNDLED_DIR / f"{key}{SUFFIX}").is_file()):
        raise NstError(f"'{key}' is the name of a bundled style, which would hide a style of yours by that name "
                       f"(--style {key} would still give the bundled one); choose another --name")
    if output.exists() and not replace:
        raise NstError(f"style '{name}' exists ({output}); choose another --name, --resume an interrupted run, "
                       "or --force to replace it")


class StyleRegistry:
    """Finds styles by name in the bundled folder, then the user folder; or takes a path as is."""

    def __init__(self, folders: list[Path] | None = None):
        self.folders = folders if folders is not None else [BUNDLED_DIR, user_styles_dir()]

    def available(self, check_weights: bool = True) -> list[StyleInfo]:
        """All valid styles, first folder wins on a name clash; broken files are skipped here and reported
        when named explicitly. Without `check_weights`, from the headers alone (see read_info: no torch)."""
        found: dict[str, StyleInfo] = {}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                try:
                    info = read_info(path, check_weights)
                except NstError:
                    continue
                found.setdefault(style_key(path), info)
        return list(found.values())

    def names(self) -> list[str]:
        return [info.key for info in self.available()]

    def resolve(self, name_or_path: str) -> Path:
        """A style's file: an existing path, or a name looked up in the folders."""
        as_path = Path(name_or_path).expanduser()
        if as_path.suffix == SUFFIX or os.sep in name_or_path or as_path.is_file():
            if not as_path.is_file():
                raise NstError(f"style file not found: {name_or_path}")
            return as_path
        for folder in self.folders:
            candidate = folder / f"{name_or_path}{SUFFIX}"
            if candidate.is_file():
                return candidate
        names = self.names()
        listing = ", ".join(names) if names else "none installed (train one with `nst-video train`)"
        raise NstError(f"unknown style '{name_or_path}'; available styles: {listing}")

    def load(self, name_or_path: str) -> tuple[StyleInfo, TransformerNet]:
        return load_model(self.resolve(name_or_path))

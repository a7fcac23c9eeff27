"""Style files and the registry that finds them.

One style = one `.safetensors` file: the TransformerNet weights (fp16 on disk: 3.4 MB) and string metadata
(name, title, credit, training settings, format version). safetensors holds no code, so loading a style
from anywhere never runs anything.
"""
from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from nst_video.atomic import atomic_output
from nst_video.errors import NstError
from nst_video.model import ARCHITECTURES, DEFAULT_ARCHITECTURE, TransformerNet, build_network

FORMAT = "nst-video-style"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
LITE_SUFFIX = "-lite"  # a lite style distilled from NAME is named NAME-lite (scripts/distill_bundled.py)
BUNDLED_DIR = Path(str(importlib.resources.files("nst_video.checkpoints")))  # checkpoints/ in the repository
USER_DIR_ENV = "NST_VIDEO_STYLES"


def counterpart(name: str) -> str:
    """The other network of the same style: mosaic <-> mosaic-lite."""
    return name.removesuffix(LITE_SUFFIX) if name.endswith(LITE_SUFFIX) else name + LITE_SUFFIX


def one_per_style(names: list[str], lite: bool = False) -> list[str]:
    """Each style of `names` once: as its lite network where `lite` and one is there, else as the full one;
    full styles first, then the lite-only ones."""
    full = [n for n in names if not n.endswith(LITE_SUFFIX)]
    full += [n for n in names if n.endswith(LITE_SUFFIX) and counterpart(n) not in names]  # lite-only styles
    if not lite:
        return full
    return [counterpart(n) if counterpart(n) in names and not n.endswith(LITE_SUFFIX) else n for n in full]


def user_styles_dir() -> Path:
    """Where `nst-video train` puts new styles and the registry looks after the bundled ones."""
    if os.environ.get(USER_DIR_ENV):
        return Path(os.environ[USER_DIR_ENV]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "nst-video" / "styles"


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
               dtype: torch.dtype = torch.float16) -> Path:
    """Write a style file atomically. Weights are stored as `dtype` (fp16 halves the size; loading upcasts)."""
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


def read_info(path: Path) -> StyleInfo:
    """Read only the metadata (fast: the header), validating that this is a style file."""
    path = Path(path)
    meta, shapes = _open(path, with_tensors=False)
    info = _info_from(meta, path)
    _check_tensors(path, shapes, _network(path, info.architecture))
    return info


def load_style(path: Path) -> tuple[StyleInfo, dict[str, torch.Tensor]]:
    """Read metadata and weights (as float32) of a style file, or raise NstError saying what is wrong."""
    path = Path(path)
    meta, tensors = _open(path, with_tensors=True)
    info = _info_from(meta, path)
    _check_tensors(path, {k: tuple(v.shape) for k, v in tensors.items()}, _network(path, info.architecture))
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise NstError(f"{path}: style file has non-finite weights (in {bad[0]}); it is corrupt")
    return info, {k: v.float() for k, v in tensors.items()}


def load_model(path: Path) -> tuple[StyleInfo, TransformerNet]:
    info, state = load_style(path)
    model = build_network(info.architecture)
    model.load_state_dict(state)
    return info, model.eval()


def _network(path: Path, architecture: str) -> dict[str, torch.Tensor]:
    """The state dict a style file of this architecture must hold."""
    if architecture not in ARCHITECTURES:
        raise NstError(f"{path}: uses the network '{architecture}', which this nst-video does not know "
                       f"(it knows {', '.join(ARCHITECTURES)}); update nst-video")
    return build_network(architecture).state_dict()


def _open(path: Path, with_tensors: bool):
    if not path.is_file():
        raise NstError(f"style file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise NstError(f"{path}: not an nst-video style file (no '{FORMAT}' header)")
            if with_tensors:
                payload = {k: f.get_tensor(k) for k in f.keys()}
            else:
                payload = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except NstError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise NstError(f"{path}: not a readable style file (truncated or foreign format: {e})") from None
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


class StyleRegistry:
    """Finds styles by name in the bundled folder, then the user folder; or takes a path as is."""

    def __init__(self, folders: list[Path] | None = None):
        self.folders = folders if folders is not None else [BUNDLED_DIR, user_styles_dir()]

    def available(self) -> list[StyleInfo]:
        """All valid styles, first folder wins on a name clash; broken files are skipped here and reported
        when named explicitly."""
        found: dict[str, StyleInfo] = {}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                try:
                    info = read_info(path)
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

"""`nst-video distill`: a lite style from a full one. The student (nst_video.model ARCHITECTURES["lite"])
learns from two signals at once: the teacher's outputs on the same photos (a mean squared difference, so it
paints what the full style paints) and the perceptual loss against the painting (so it keeps the painting's
texture where its smaller capacity cannot copy the teacher exactly). Everything else - resume, the NaN guard,
stop signals, progress, samples - is `train`'s loop: distilling is training with a teacher.

The defaults, DISTILL_WEIGHT and DISTILL_STEPS, and why: training/config.py."""
from __future__ import annotations

from pathlib import Path

from nst_video.architectures import network_family
from nst_video.styles import StyleRegistry, read_info, user_styles_dir
from nst_video.training.config import DISTILL_STEPS, DISTILL_WEIGHT  # noqa: F401  (the defaults, by name)
from nst_video.training.train import TrainConfig

INHERITED = ("style_weight", "content_weight", "image_size", "style_size")  # from the teacher's training


def distill_config(teacher: str, name: str, force: bool = False, **options) -> TrainConfig:
    """The TrainConfig of a distillation: the teacher resolved, its training settings as defaults for what
    the caller left as None. train() checks the name and an existing file as for `train` (--force, --resume:
    nst_video.styles.check_new_style)."""
    teacher_path = StyleRegistry().resolve(teacher)
    info = read_info(teacher_path)
    for key in INHERITED:
        if options.get(key) is None:
            value = info.training.get(key)
            options[key] = value if value is not None else TrainConfig.__dataclass_fields__[key].default
    output = Path(options.get("output") or user_styles_dir() / f"{name}.safetensors")
    cfg = TrainConfig(name=name, teacher=str(teacher_path), force=force, **{**options, "output": str(output)})
    # "Udnie (fast)": the webcam's overlay and `nst-video styles` tell a style's networks apart by it
    network = network_family(cfg.architecture)
    cfg.title = cfg.title or f"{info.title or info.name}" + (f" ({network})" if network != "johnson" else "")
    cfg.credit = cfg.credit or info.credit
    return cfg

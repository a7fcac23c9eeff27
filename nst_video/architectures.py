"""The networks a style file can name in its metadata ("architecture"); files without the field are "johnson".

Plain data, without torch, so that reading a style file's header (`nst-video styles`) needs no torch:
nst_video.model builds the networks from it.

  johnson  the paper's network: the quality reference, real time on a GPU
  lite     half the width everywhere (a quarter of the multiply-adds): on 2 CPU cores with OpenVINO, 640x480
           takes about a quarter of the full network's time. Chosen by measurement over fewer blocks and
           narrower layers (benchmarks/bench_backends.py --candidates; README: Real time on a CPU): the half
           width keeps all of Johnson's layers and receptive field, and cutting further saved a few ms only.
  fast     the lite network's layers run on 2x2 pixel blocks folded into channels (space to depth) and
           painting 2x2 pixels per position: about a quarter of lite's work, for CPUs without AMX or
           AVX512-BF16, where lite runs in float32 (docs/cpu-runtimes.md, "Real time without AMX").
  johnson-fixed-norm  Johnson's network with its instance norms' statistics frozen after training (FixedNorm):
           it sees a photo's brightness, and no spot can steer a whole channel (udnie's blobs; issue 32,
           docs/training.md). Made from a johnson style by `train --architecture johnson-fixed-norm --init-from`.
  lite-fixed-norm, fast-fixed-norm  the same for lite and fast: made from a lite or fast style by
           `distill --architecture ... --init-from` (a fixed-norm teacher's lite networks; give them --max-zoom 4).
  johnson-input-norm  johnson-fixed-norm with the first norm left per picture (an instance norm on the
           photo's own features): every large or low-contrast photo is evened out before the network paints,
           and still no spot the network paints can steer a channel (great_wave's droplets; docs/training.md).
  lite-input-norm, fast-input-norm  the same for lite and fast: an input-norm teacher's lite networks, made by
           `distill --architecture ... --init-from` a lite or fast style.
"""
ARCHITECTURES = {
    "johnson": {"widths": (32, 64, 128), "blocks": 5},
    "lite": {"widths": (16, 32, 64), "blocks": 5},
    "fast": {"widths": (16, 32, 64), "blocks": 5, "pixel_shuffle": 2},
    "johnson-fixed-norm": {"widths": (32, 64, 128), "blocks": 5, "norm": "fixed"},
    "johnson-input-norm": {"widths": (32, 64, 128), "blocks": 5, "norm": "fixed", "first_norm": "instance"},
    "lite-fixed-norm": {"widths": (16, 32, 64), "blocks": 5, "norm": "fixed"},
    "fast-fixed-norm": {"widths": (16, 32, 64), "blocks": 5, "pixel_shuffle": 2, "norm": "fixed"},
    "lite-input-norm": {"widths": (16, 32, 64), "blocks": 5, "norm": "fixed", "first_norm": "instance"},
    "fast-input-norm": {"widths": (16, 32, 64), "blocks": 5, "pixel_shuffle": 2, "norm": "fixed",
                        "first_norm": "instance"},
}
DEFAULT_ARCHITECTURE = "johnson"


def network_family(architecture: str) -> str:
    """The network an architecture is, whatever its norm ("lite-fixed-norm" -> "lite"): style titles and run
    folders name a style's networks by it."""
    return architecture.removesuffix("-fixed-norm").removesuffix("-input-norm")


def is_fixed_norm(architecture: str) -> bool:
    return ARCHITECTURES[architecture].get("norm") == "fixed"

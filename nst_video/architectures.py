"""The networks a style file can name in its metadata ("architecture"); files without the field are "johnson".

Plain data, without torch, so that reading a style file's header (`nst-video styles`) needs no torch:
nst_video.model builds the networks from it.

  johnson  the paper's network: the quality reference, real time on a GPU
  lite     half the width everywhere (a quarter of the multiply-adds): on 2 CPU cores with OpenVINO, 640x480
           takes about a quarter of the full network's time. Chosen by measurement over fewer blocks and
           narrower layers (benchmarks/bench_backends.py --candidates; README: Real time on a CPU): the half
           width keeps all of Johnson's layers and receptive field, and cutting further saved a few ms only.
"""
ARCHITECTURES = {
    "johnson": {"widths": (32, 64, 128), "blocks": 5},
    "lite": {"widths": (16, 32, 64), "blocks": 5},
}
DEFAULT_ARCHITECTURE = "johnson"

"""nst-video: fast neural style transfer (Johnson et al., ECCV 2016) for webcam, video and images.

Data flows one way: Source -> Stylizer -> Temporal -> Sink.
  model.py      the networks (Johnson's and the lite one)
  styles.py     style files (weights + metadata) and the registry that finds them
  stylizer.py   device, batching, tiling and post-processing (strength, preserve colour)
  runtimes/     what runs the network (PyTorch, OpenVINO, ONNX Runtime); graphs.py caches exported graphs
  temporal.py   flow-guided blending against flicker
  images.py     still images in and out (PIL)
  tiling.py     pictures of any size: layer by layer in bands, with whole-picture statistics
  guided.py     stroke scale: stylize smaller, bring back up with the photo's detail
  memory.py     the memory budget: sizes, what is held and free, per-pixel estimates
  video_io.py   video files in and out (PyAV): VideoSource, VideoSink, the table of video file types
  audio_io.py   the audio a video job carries along (PyAV)
  video_job.py  the video-file job: decode, stylize and encode overlapped; a clean stop on signals
  signals.py    stop signals; report.py: the one writer of user messages
  cli.py        wires the pieces into the `nst-video` command
  web/          `nst-video serve`: the web app and HTTP API, calling the same jobs (see web/__init__.py)
"""

import os
import sys

__version__ = "0.1.0"


class _OpenCVBeforePyAV:
    """The package's one import-order rule: OpenCV before PyAV, in every process that uses nst_video.

    Both wheels bundle libxcb-shm under the same name; with PyAV's copy loaded first, OpenCV's Qt window
    hangs for ever while connecting to the X server (window.py refuses to open then). So the first import of
    `av`, from whatever module, imports cv2 just before it. Only then: `nst-video --help` loads neither.
    tests/test_structure.py checks the order from the libraries a process has loaded."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "av":
            sys.meta_path.remove(cls)  # once is enough
            if "av" not in sys.modules:
                try:
                    import cv2  # noqa: F401
                except ImportError:  # a broken install: the window (the only one to care) says so later
                    pass
        return None  # the usual finders do the importing


if not any(finder is _OpenCVBeforePyAV for finder in sys.meta_path):
    sys.meta_path.insert(0, _OpenCVBeforePyAV)


class _CheckoutLayout:
    """Run from a checkout without installing (`python nst_video_main.py ...`): the repository keeps training/
    and checkpoints/ at its top, where people look for them, and an installed nst-video holds them inside the
    package (pyproject.toml's package-dir). Here they are found as nst_video.training and nst_video.checkpoints
    the same way, when they are not inside the package (an install) and are beside it (a checkout)."""

    folders: dict[str, str] = {}

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        folder = cls.folders.get(name)
        if folder is None:
            return None
        import importlib.util

        return importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                      submodule_search_locations=[folder])


def _checkout_folders() -> dict[str, str]:
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(here)
    return {f"{__name__}.{name}": os.path.join(top, name) for name in ("training", "checkpoints")
            if not os.path.isdir(os.path.join(here, name)) and os.path.isfile(os.path.join(top, name, "__init__.py"))}


_CheckoutLayout.folders = _checkout_folders()
if _CheckoutLayout.folders and not any(getattr(f, "__qualname__", "") == "_CheckoutLayout" for f in sys.meta_path):
    sys.meta_path.insert(0, _CheckoutLayout)

"""nst-video: fast neural style transfer (Johnson et al., ECCV 2016) for webcam, video and images.

Data flows one way: Source -> Stylizer -> Temporal -> Sink. The modules, their layers and the rules that hold
them (what imports what, and the two below) are in docs/architecture.md; tests/test_structure.py checks them.
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
        # (it stays in sys.meta_path: removing itself here would make the import skip the next finder)
        if name == "av" and "cv2" not in sys.modules:
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

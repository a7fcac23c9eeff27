import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_video.model import TransformerNet
from nst_video.styles import StyleInfo, save_style
from nst_video.training.loss_net import vgg16_features_to_relu4_3

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# The stop-signal tests send SIGHUP and SIGINT to the processes they start. A suite run under `nohup`, or as
# a background job of a non-interactive shell (`cmd &` in a script), would hand its children an ignored SIGHUP
# or SIGINT, which nst-video keeps ignored on purpose (nst_video/signals.py): give them the default
# disposition a terminal's children have.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def make_random_style(path: Path, name: str = "randomstyle", seed: int = 0) -> Path:
    """A style file with random weights: a test fixture only, never shipped as a style."""
    torch.manual_seed(seed)
    model = TransformerNet()
    return save_style(path, model.state_dict(), StyleInfo(name=name, title="Random (test)", credit="tests"))


@pytest.fixture(scope="session")
def style_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("styles")
    make_random_style(folder / "randomstyle.safetensors")
    make_random_style(folder / "otherstyle.safetensors", name="otherstyle", seed=1)
    return folder


@pytest.fixture(scope="session")
def graph_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _user_styles(style_dir, graph_cache, monkeypatch):
    monkeypatch.setenv("NST_VIDEO_STYLES", str(style_dir))
    monkeypatch.setenv("NST_VIDEO_CACHE", str(graph_cache))  # exported graphs: never the user's own cache


@pytest.fixture
def photo(tmp_path) -> Path:
    """A small natural-ish test photo (gradients + shapes), 333x517: odd sizes on purpose."""
    h, w = 333, 517
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], axis=2).astype(np.uint8)
    rgb[100:200, 150:300] = (200, 40, 40)
    from PIL import Image
    path = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(path, quality=92)
    return path


def run_cli(*args, env_extra=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `nst-video` CLI in a subprocess, as a user would."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "nst_video", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


def wait_until(condition, what: str, timeout: float = 60, poll: float = 0.005):
    """Wait for `condition()` to hold: tests wait for what they need, never for a fixed time. The timeout only
    turns a hang into a failure that says `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def needs_shared_data(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data is not present on this machine)")
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A random-weight VGG file in torchvision's layout, a few small photos, and a style image."""
    root = tmp_path_factory.mktemp("train")
    torch.manual_seed(0)
    vgg = {f"features.{k}": v for k, v in vgg16_features_to_relu4_3().state_dict().items()}
    torch.save(vgg, root / "vgg.pth")
    rng = np.random.default_rng(0)
    content = root / "content"
    (content / "nested").mkdir(parents=True)
    for i in range(5):
        yy, xx = np.mgrid[0:48, 0:56]
        img = np.stack([(xx * (i + 1)) % 256, (yy * 3 + i * 40) % 256, (xx + yy) % 256], 2).astype(np.uint8)
        Image.fromarray(img).save((content if i % 2 else content / "nested") / f"p{i}.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 12), dtype=np.uint8), "L").save(content / "small_grey.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "style.png")
    return root

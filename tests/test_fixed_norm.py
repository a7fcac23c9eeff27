"""The johnson-fixed-norm network (issue 32, udnie's blobs): an instance-norm style turned into a network with
frozen statistics sees a photo's brightness, starts close to the style it came from, trains from the shell,
and paints the same through every runtime and in tiles."""
import numpy as np
import pytest
import torch
from PIL import Image

from nst_video import tiling
from nst_video.architectures import network_family
from nst_video.model import build_network
from nst_video.styles import StyleInfo, load_style, save_style
from nst_video.stylizer import Stylizer, frames_to_tensor
from nst_video.training.frozen_norms import needs_statistics, with_frozen_statistics
from nst_video.training.train import init_weights, train
from tests.conftest import ROOT
from tests.test_training import _cfg

PHOTOS = sorted((ROOT / "samples" / "photos").iterdir())


def _crops(size=64, count=16, seed=0):
    """Crops of the sample photos, in batches of 8: the 'training photos' the statistics are measured on."""
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        rgb = np.asarray(Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((160, 120)))
        top, left = rng.integers(0, 120 - size), rng.integers(0, 160 - size)
        crops.append(torch.from_numpy(rgb[top:top + size, left:left + size].copy()).permute(2, 0, 1).float() / 255)
    return [torch.stack(crops[i:i + 8]) for i in range(0, count, 8)]


def _converted(architecture: str):
    """A random instance-norm network and the `architecture` network made from it."""
    torch.manual_seed(0)
    family = network_family(architecture)
    source = build_network(family).eval().requires_grad_(False)
    fixed = build_network(architecture).eval().requires_grad_(False)
    assert needs_statistics(fixed, source.state_dict())
    weights = with_frozen_statistics(family, source.state_dict(), _crops(), into=fixed)
    assert not needs_statistics(fixed, weights)
    init_weights(fixed, weights, "source")
    return source, fixed


@pytest.fixture(scope="module")
def pair():
    return _converted("johnson-fixed-norm")


@torch.no_grad()
def test_the_fixed_norm_network_sees_a_photos_brightness_where_instance_norm_cannot(pair):
    source, fixed = pair
    x = _crops()[0][:2]
    dimmer = 0.5 * x + 0.25  # half the contrast around mid-grey
    assert (source(x) - source(dimmer)).abs().max() < 0.02  # instance norm removes it: the network is blind
    assert (fixed(x) - fixed(dimmer)).abs().mean() > 0.02
    assert float(fixed(torch.full_like(x, 0.9)).mean()) != pytest.approx(float(fixed(torch.full_like(x, 0.1)).mean()),
                                                                         abs=0.01)


@torch.no_grad()
@pytest.mark.parametrize("architecture", ["johnson-fixed-norm", "johnson-input-norm"])
def test_a_spot_the_network_paints_cannot_steer_the_picture_far_from_it(architecture):
    # The droplets (docs/training.md): with instance norms a spike inside the network shifts a whole channel's
    # statistics and so the whole picture; with frozen ones (the input-norm network's first norm sees only the
    # photo) it changes its own neighbourhood and nothing else.
    source, converted = _converted(architecture)
    x = _crops(size=96, count=1)[0]

    def spike(_module, _inputs, output):
        output = output.clone()
        output[:, :, 2, 2] += 50.0  # near the top-left corner, at a quarter of the resolution
        return output

    for network, steered in ((source, True), (converted, False)):
        plain = network(x)
        handle = network.res[2].register_forward_hook(spike)
        spiked = network(x)
        handle.remove()
        assert (spiked - plain)[..., :24, :24].abs().max() > 0.05  # the spot itself
        far = (spiked - plain)[..., 64:, 64:].abs().max()
        assert (far > 1e-3) if steered else (far < 1e-5), (architecture, steered, float(far))


@torch.no_grad()
@pytest.mark.parametrize("architecture", ["johnson-fixed-norm", "johnson-input-norm"])
def test_statistics_frozen_on_one_photo_reproduce_the_style_on_that_photo(architecture):
    # Each norm's frozen statistics are the mean of what it saw per picture: measured on one photo they are
    # that photo's own, so the fixed network paints it exactly as the instance-norm one; on another photo not.
    _, weights = load_style(ROOT / "checkpoints" / "mosaic.safetensors")  # instance norms
    source = build_network("johnson").eval()
    source.load_state_dict(weights)
    photo, other = _crops(size=96, count=8)[0][:2]
    fixed = build_network(architecture).eval()
    init_weights(fixed, with_frozen_statistics("johnson", weights, [photo[None]], into=fixed), "mosaic")
    assert (source(photo[None]) - fixed(photo[None])).abs().max() < 1e-3
    assert (source(other[None]) - fixed(other[None])).abs().mean() > 0.01


@torch.no_grad()
@pytest.mark.parametrize("architecture", ["johnson-fixed-norm", "johnson-input-norm", "fast-input-norm"])
def test_a_fixed_norm_style_paints_alike_through_the_runtimes_and_in_tiles(architecture, tmp_path):
    _, fixed = _converted(architecture)
    path = tmp_path / "fixed.safetensors"
    save_style(path, fixed.state_dict(), StyleInfo(name="fixed", architecture=architecture))
    info, weights = load_style(path)
    assert info.architecture == architecture and torch.allclose(weights["down.1.1.mean"], fixed.down[1][1].mean,
                                                                atol=1e-3)
    rgb = np.asarray(Image.open(PHOTOS[-1]).convert("RGB").resize((150, 110)))
    expected = fixed(frames_to_tensor([rgb]))[0]
    for backend in ("torch", "openvino", "onnxruntime"):
        painted = Stylizer.from_style(str(path), device="cpu", backend=backend).stylize([rgb])[0]
        got = torch.from_numpy(painted).permute(2, 0, 1).float() / 255
        assert (got - expected).abs().mean() < 2 / 255, backend
    if not tiling.supported(fixed):  # the fast networks paint whole (a quarter of the work: no tiles)
        return
    x = frames_to_tensor([rgb])
    out = torch.full_like(x, -1.0)
    for a, band in tiling.stylize_bands(fixed, lambda a, b: x[..., a:b, :], 110, 150, 3000, torch.float32, False):
        out[..., a:a + band.shape[-2], :] = band
    assert (out[0] - expected).abs().max() < 1e-4  # bands join exactly (the input norm's statistics: the whole map's)


@pytest.mark.parametrize("architecture,target", [("johnson", "johnson-fixed-norm"), ("lite", "lite-fixed-norm"),
                                                 ("fast", "fast-fixed-norm"), ("johnson", "johnson-input-norm")])
def test_train_turns_an_instance_norm_style_into_a_fixed_norm_one(tiny_data, tmp_path, capsys, architecture, target):
    torch.manual_seed(1)
    source = tmp_path / "source.safetensors"
    save_style(source, build_network(architecture).state_dict(), StyleInfo(name="source", architecture=architecture))
    written = train(_cfg(tiny_data, tmp_path / "run", architecture=target,
                         init_from=str(source), max_steps=2, max_zoom=2.0))
    assert "instance norms' statistics frozen" in capsys.readouterr().err
    info, weights = load_style(written)
    assert info.architecture == target
    assert weights["down.1.1.var"].min() > 0 and not torch.equal(weights["down.1.1.mean"],
                                                                torch.zeros_like(weights["down.1.1.mean"]))
    # the input-norm network's first norm keeps each picture's own statistics: none frozen for it
    assert ("down.0.1.mean" in weights) == (target != "johnson-input-norm")

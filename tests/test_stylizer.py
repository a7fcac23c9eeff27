import numpy as np
import pytest
import torch

from nst_video.errors import NstError
from nst_video.model import TransformerNet
from nst_video.stylizer import Stylizer, frames_to_tensor, pick_device, tensor_to_frames, transfer_luminance


@pytest.fixture
def stylizer():
    torch.manual_seed(0)
    return Stylizer(TransformerNet(), device="cpu")


def _frames(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_mixed_sizes_come_back_in_order_and_size(stylizer):
    frames = _frames(3, 40, 52) + _frames(2, 17, 9, seed=1)
    out = stylizer.stylize([frames[0], frames[3], frames[1], frames[4], frames[2]])
    assert [o.shape for o in out] == [(40, 52, 3), (17, 9, 3), (40, 52, 3), (17, 9, 3), (40, 52, 3)]
    assert all(o.dtype == np.uint8 for o in out)
    # batching must not change results: the same frame alone gives the same output
    alone = stylizer.stylize([frames[1]])[0]
    assert np.abs(alone.astype(int) - out[2].astype(int)).max() <= 1


def test_strength_zero_returns_the_original(stylizer):
    frame = _frames(1, 32, 32)[0]
    stylizer.strength = 0.0
    assert np.array_equal(stylizer.stylize_image(frame), frame)


def test_strength_half_is_between(stylizer):
    frame = _frames(1, 32, 32)[0]
    full = stylizer.stylize_image(frame).astype(float)
    stylizer.strength = 0.5
    half = stylizer.stylize_image(frame).astype(float)
    assert np.abs(half - (full + frame) / 2).max() <= 1.0


def test_preserve_color_keeps_chroma_of_the_original():
    # A grey original: with preserve colour the output must be grey too, whatever colours the style adds.
    torch.manual_seed(0)
    grey = np.repeat(np.random.default_rng(0).integers(0, 256, (32, 32, 1), dtype=np.uint8), 3, axis=2)
    colourful = Stylizer(TransformerNet(), device="cpu").stylize_image(grey).astype(int)
    torch.manual_seed(0)
    kept = Stylizer(TransformerNet(), device="cpu", preserve_color=True).stylize_image(grey).astype(int)
    assert np.abs(colourful[..., 0] - colourful[..., 2]).mean() > 2
    assert np.abs(kept[..., 0] - kept[..., 2]).max() <= 2


def test_transfer_luminance_identity():
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(transfer_luminance(x, x), x, atol=2e-3, rtol=0)


def test_uint8_round_trip_is_exact():
    frames = _frames(2, 5, 7)
    back = tensor_to_frames(frames_to_tensor(frames))
    assert all(np.array_equal(a, b) for a, b in zip(frames, back, strict=True))


def test_bad_device_and_strength_are_user_errors():
    with pytest.raises(NstError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(NstError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(NstError, match="strength"):
        Stylizer(TransformerNet(), device="cpu", strength=1.5)


def test_fp16_is_ignored_on_cpu():
    s = Stylizer(TransformerNet(), device="cpu", fp16=True)
    assert s.dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_matches_fp32_on_gpu():
    torch.manual_seed(0)
    model = TransformerNet()
    frames = _frames(2, 360, 640)
    a = Stylizer(model, device="cuda").stylize(frames)
    b = Stylizer(model, device="cuda", fp16=True).stylize(frames)
    diff = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
    assert diff.mean() < 1.0 and np.percentile(diff, 99.9) <= 8

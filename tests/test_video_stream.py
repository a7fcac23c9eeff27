"""Stylizer.stylize_stream, the frame pipeline's network stage: same results as stylize(), in order, on the
CPU; on CUDA also the pinned / double-buffered path and FP16 against FP32 (skipped without a GPU)."""
import numpy as np
import pytest
import torch

from nst_video.model import TransformerNet
from nst_video.stylizer import Stylizer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _frames(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], axis=2)
    return [np.clip(base + rng.integers(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def _batches(frames, size):
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def _model(seed=0):
    torch.manual_seed(seed)
    return TransformerNet()


def test_stream_matches_stylize_in_order_with_a_short_last_batch_and_a_size_change():
    stylizer = Stylizer(_model(), device="cpu", batch_size=3, backend="torch")  # exact: bf16 runtimes are not
    frames = _frames(7, 24, 32) + _frames(2, 17, 21, seed=1)
    batches = _batches(frames[:7], 3) + [frames[7:]]
    streamed = [f for batch in stylizer.stylize_stream(iter(batches)) for f in batch]
    expected = [stylizer.stylize_image(f) for f in frames]
    assert len(streamed) == len(expected)
    for got, want in zip(streamed, expected, strict=True):
        assert got.shape == want.shape and np.abs(got.astype(int) - want).max() <= 1


@needs_cuda
def test_cuda_stream_matches_the_plain_path():
    frames = _frames(9, 72, 128)
    plain = Stylizer(_model(), device="cuda", batch_size=4).stylize(frames)
    stylizer = Stylizer(_model(), device="cuda", batch_size=4)
    streamed = [f for batch in stylizer.stylize_stream(_batches(frames, 4)) for f in batch]
    for got, want in zip(streamed, plain, strict=True):
        assert np.abs(got.astype(int) - want).max() <= 1


@needs_cuda
@pytest.mark.parametrize("strength,preserve_color", [(1.0, False), (0.6, True)])
def test_cuda_fp16_matches_fp32(strength, preserve_color):
    # 540x960: large enough for instance-norm statistics to overflow or lose precision if computed in fp16.
    frames = _frames(4, 540, 960)
    kwargs = dict(device="cuda", batch_size=2, strength=strength, preserve_color=preserve_color)
    fp32 = [f for b in Stylizer(_model(), **kwargs).stylize_stream(_batches(frames, 2)) for f in b]
    fp16 = [f for b in Stylizer(_model(), fp16=True, **kwargs).stylize_stream(_batches(frames, 2)) for f in b]
    for a, b in zip(fp32, fp16, strict=True):
        diff = np.abs(a.astype(int) - b)
        assert diff.mean() < 1.5 and np.percentile(diff, 99.9) <= 12

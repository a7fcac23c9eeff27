"""TemporalBlender: less flicker where the picture is still, no ghosts where it moves, a fresh start at cuts."""
import numpy as np
import pytest

from nst_video.temporal import TemporalBlender, flicker

H, W = 64, 96


def _scene(rng, square_x=None):
    """A still background (smooth, plus a little sensor noise) with an optional 16x16 square at x."""
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([xx * 2, yy * 3, np.full_like(xx, 100)], axis=2).astype(np.int16)
    rgb += rng.integers(-1, 2, rgb.shape, dtype=np.int16)
    if square_x is not None:
        rgb[24:40, square_x:square_x + 16] = (250, 250, 20)
    return rgb.clip(0, 255).astype(np.uint8)


def _flickering_style(rng, source):
    """What a style network does to a still scene: a fixed look plus large frame-to-frame noise."""
    noise = rng.normal(0, 20, source.shape)
    return np.clip(255 - source.astype(float) + noise, 0, 255).astype(np.uint8)


def test_off_returns_the_stylized_frame_unchanged():
    rng = np.random.default_rng(0)
    blender = TemporalBlender(0.0)
    for _ in range(3):
        src = _scene(rng)
        styled = _flickering_style(rng, src)
        assert np.array_equal(blender(src, styled), styled)


def test_blending_cuts_flicker_where_the_input_is_still():
    rng = np.random.default_rng(1)
    sources = [_scene(rng) for _ in range(12)]
    styled = [_flickering_style(rng, s) for s in sources]
    results = {}
    for weight in (0.0, 0.5, 1.0):
        blender = TemporalBlender(weight)
        results[weight] = flicker(sources, [blender(s, y) for s, y in zip(sources, styled, strict=True)])
    assert results[0.0] > 10
    assert results[1.0] < results[0.5] < results[0.0]
    assert results[1.0] < 0.5 * results[0.0]


def test_no_ghost_where_the_input_moved():
    rng = np.random.default_rng(2)
    blender = TemporalBlender(1.0)
    for x in (10, 10, 10, 30):  # the square jumps from x=10 to x=30 in the last frame
        src = _scene(rng, square_x=x)
        styled = _flickering_style(rng, src)
        out = blender(src, styled)
    # Where the square left and where it arrived, the new stylized frame is taken as it is.
    assert np.array_equal(out[24:40, 10:46], styled[24:40, 10:46])
    # Far from the motion, the still background is still blended.
    assert not np.array_equal(out[:, 70:], styled[:, 70:])


def test_scene_cut_reset_and_size_change_start_afresh():
    rng = np.random.default_rng(3)
    blender = TemporalBlender(1.0)
    src = _scene(rng)
    blender(src, _flickering_style(rng, src))
    other = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)  # a cut: everything changes at once
    styled = _flickering_style(rng, other)
    assert np.array_equal(blender(other, styled), styled)
    blender.reset()
    styled = _flickering_style(rng, other)
    assert np.array_equal(blender(other, styled), styled)
    small = _scene(rng)[:32, :40]
    styled = _flickering_style(rng, small)
    assert np.array_equal(blender(small, styled), styled)


def test_weight_can_change_between_frames():
    rng = np.random.default_rng(4)
    blender = TemporalBlender(1.0)
    src = _scene(rng)
    blender(src, _flickering_style(rng, src))
    styled = _flickering_style(rng, src)
    assert not np.array_equal(blender(src, styled), styled)
    blender.weight = 0.0
    styled = _flickering_style(rng, src)
    assert np.array_equal(blender(src, styled), styled)


def test_flicker_measure():
    rng = np.random.default_rng(5)
    still = [_scene(rng) for _ in range(4)]
    assert flicker(still, still) < 1.0  # only the sensor noise changes
    assert flicker(still, [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(4)]) > 50
    moving = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(4)]
    assert np.isnan(flicker(moving, moving))  # nothing held still: nothing to measure


@pytest.mark.parametrize("shape", [(7, 5, 3), (49, 65, 3)])
def test_odd_and_tiny_sizes(shape):
    rng = np.random.default_rng(6)
    blender = TemporalBlender(0.7)
    src = rng.integers(0, 256, shape, dtype=np.uint8)
    for _ in range(3):
        out = blender(src, rng.integers(0, 256, shape, dtype=np.uint8))
    assert out.shape == shape and out.dtype == np.uint8

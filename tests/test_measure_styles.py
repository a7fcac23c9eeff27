"""scripts/measure_styles.py's picture measures: what they count is what a user would call a defect."""
import importlib.util

import numpy as np
import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("measure_styles", ROOT / "scripts" / "measure_styles.py")
measure = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measure)


def _photo(size=160):
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([xx, yy, (xx + yy) // 2], axis=2).astype(np.uint8)  # a smooth gradient


def _styled(photo):
    return (photo * 0.5 + np.array([40, 70, 120])).astype(np.uint8)  # recoloured, nothing added


def test_a_spot_the_style_adds_is_a_drop_in_any_colour():
    photo = _photo()
    assert measure.drop_share(photo, _styled(photo)) == 0
    for colour in ((250, 250, 60), (0, 0, 0), (255, 120, 200)):
        styled = _styled(photo)
        styled[64:96, 64:96] = colour  # 2x2 of the 10x10 blocks
        assert measure.drop_share(photo, styled) == pytest.approx(4 / 100), colour


def test_a_spot_the_photo_has_is_not_a_drop():
    photo = _photo()
    photo[64:96, 64:96] = (250, 250, 250)  # a star, a lamp: the style may keep it
    styled = _styled(photo)
    styled[64:96, 64:96] = (250, 250, 60)
    assert measure.drop_share(photo, styled) == 0

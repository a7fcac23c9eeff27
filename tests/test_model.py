import pytest
import torch

from nst_video.model import TransformerNet


def test_parameter_count_matches_johnson():
    assert sum(p.numel() for p in TransformerNet().parameters()) == 1_679_235


@pytest.mark.parametrize("h,w", [(333, 517), (256, 256), (1, 1), (3, 2), (9, 1001), (64, 7)])
def test_output_size_equals_input_size_and_range(h, w):
    torch.manual_seed(0)
    y = TransformerNet().eval()(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.min() >= 0 and y.max() <= 1


def test_padding_does_not_change_the_visible_region_much():
    # A crop stylized alone (padded inside the network) should match the same region of the whole image away
    # from the padded border: the network is convolutional; only instance-norm statistics shift slightly.
    torch.manual_seed(0)
    model = TransformerNet().eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        whole = model(x)
        odd = model(x[..., :63, :61])
    assert odd.shape == (1, 3, 63, 61)
    assert (whole[..., :24, :24] - odd[..., :24, :24]).abs().mean() < 0.02


@pytest.mark.parametrize("h,w", [(333, 517), (1, 1), (9, 1001), (64, 7)])
def test_the_fast_network_takes_any_size_and_paints_every_pixel(h, w):
    from nst_video.model import build_network

    torch.manual_seed(0)
    model = build_network("fast").eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, h, w))
    assert y.shape == (1, 3, h, w) and y.min() >= 0 and y.max() <= 1
    if h > 16 and w > 16:  # painted per pixel, not upsampled: neighbours in a 2x2 block differ
        assert (y[..., 0::2, :][..., : h // 2, :] - y[..., 1::2, :][..., : h // 2, :]).abs().mean() > 1e-3


def test_the_fast_network_starts_from_the_lite_ones_inner_layers(tmp_path):
    from nst_video.model import build_network
    from nst_video.training.train import init_weights

    lite, fast = build_network("lite"), build_network("fast")
    init_weights(fast, lite.state_dict(), "lite.safetensors")
    assert torch.equal(fast.res[0].body[0][1].weight, lite.res[0].body[0][1].weight)
    assert fast.out[1].weight.shape[0] == 12  # painting 2x2 pixels per position: its own, fresh
    with pytest.raises(Exception, match="its layers do not fit this network"):
        init_weights(build_network("johnson"), lite.state_dict(), "lite.safetensors")

"""`nst-video distill`: a lite style trained from a full one, with train's hardening; and the style files'
architecture field."""
import json

import pytest
import torch
from conftest import make_random_style, run_cli
from safetensors.torch import load_file

from nst_video.errors import NstError
from nst_video.model import build_network
from nst_video.styles import StyleInfo, load_model, read_info, save_style
from nst_video.training.train import checkpoint_weights


def _distill(tiny_data, tmp_path, *extra):
    return run_cli("distill", "--from", "randomstyle", "--name", "randomstyle-lite", "--content-dir",
                   tiny_data / "content", "--style-image", tiny_data / "style.png", "--vgg-weights",
                   tiny_data / "vgg.pth", "--output", tmp_path / "randomstyle-lite.safetensors", "--checkpoint-dir",
                   tmp_path / "ck", "--image-size", "32", "--batch-size", "2", "--style-size", "64", "--log-interval",
                   "1", "--device", "cpu", *extra)


@pytest.mark.slow
def test_distill_writes_a_lite_style_that_follows_its_teacher(tiny_data, tmp_path):
    r = _distill(tiny_data, tmp_path, "--max-steps", "12", "--distill-weight", "1e3", "--style-weight", "0",
                 "--content-weight", "0", "--lr", "3e-3")
    assert r.returncode == 0, r.stderr
    info, student = load_model(tmp_path / "randomstyle-lite.safetensors")
    assert info.architecture == "lite" and info.training["teacher"] == "randomstyle.safetensors"
    assert sum(p.numel() for p in student.parameters()) < 0.3 * sum(p.numel() for p in build_network().parameters())
    log = [json.loads(line) for line in (tmp_path / "ck" / "log.jsonl").read_text().splitlines()]
    distill = [row["distill"] for row in log if "distill" in row]
    assert distill[-1] < 0.7 * distill[0]  # only the teacher term was on: the student learns to copy it
    r = run_cli("image", tiny_data / "content" / "p1.jpg", tmp_path / "out.png", "--style",
                tmp_path / "randomstyle-lite.safetensors")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_distill_refuses_an_existing_name_and_resumes(tiny_data, tmp_path):
    assert _distill(tiny_data, tmp_path, "--max-steps", "2").returncode == 0
    again = _distill(tiny_data, tmp_path, "--max-steps", "4")
    assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr
    resumed = _distill(tiny_data, tmp_path, "--max-steps", "4", "--resume")
    assert resumed.returncode == 0 and "resuming from step 2" in resumed.stderr, resumed.stderr
    assert read_info(tmp_path / "randomstyle-lite.safetensors").training["steps"] == 4
    forced = _distill(tiny_data, tmp_path, "--max-steps", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert read_info(tmp_path / "randomstyle-lite.safetensors").training["steps"] == 1


@pytest.mark.parametrize("extra", [(), ("--force",)], ids=["plain", "force"])
def test_distill_refuses_a_bundled_style_s_name(tiny_data, style_dir, tmp_path, extra):
    """A user style named like a bundled one would be hidden by it (`--style mosaic` gives the bundled one):
    refused before any work, even with --force, which cannot help."""
    user = tmp_path / "user-styles"
    r = run_cli("distill", "--from", style_dir / "randomstyle.safetensors", "--name", "mosaic", "--content-dir",
                tiny_data / "content", "--style-image", tiny_data / "style.png", "--vgg-weights",
                tiny_data / "vgg.pth", "--checkpoint-dir", tmp_path / "ck", "--image-size", "32", "--batch-size", "2",
                "--max-steps", "1", "--device", "cpu", *extra, env_extra={"NST_VIDEO_STYLES": str(user)})
    assert r.returncode == 1 and "'mosaic' is the name of a bundled style" in r.stderr, r.stderr
    assert r.stderr.startswith("nst-video: error:") and not user.exists() and not (tmp_path / "ck").exists()


def test_distill_from_a_style_that_does_not_exist(tiny_data, tmp_path):
    r = run_cli("distill", "--from", "nosuchstyle", "--name", "x-lite", "--content-dir", tiny_data / "content",
                "--style-image", tiny_data / "style.png")
    assert r.returncode == 1 and "unknown style 'nosuchstyle'" in r.stderr and "Traceback" not in r.stderr


def test_a_style_file_of_an_unknown_network_is_one_clear_error(tmp_path):
    path = make_random_style(tmp_path / "odd.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    save_file(load_file(str(path)), str(path), metadata={**meta, "architecture": "hypernet-9000"})
    with pytest.raises(NstError, match="hypernet-9000.*update nst-video"):
        load_model(path)
    r = run_cli("image", tmp_path / "odd.safetensors", tmp_path / "x.png", "--style", path)
    assert r.returncode == 1 and "hypernet-9000" in r.stderr


def test_lite_weights_under_the_full_name_are_refused(tmp_path):
    with pytest.raises(NstError, match="do not fit"):
        save_style(tmp_path / "x.safetensors", build_network("lite").state_dict(), StyleInfo(name="x"))
    torch.manual_seed(0)
    path = save_style(tmp_path / "y.safetensors", build_network("lite").state_dict(),
                      StyleInfo(name="y", architecture="lite"))
    assert read_info(path).architecture == "lite"


@pytest.mark.parametrize("network,norm", [("lite", "fixed-norm"), ("fast", "fixed-norm"), ("lite", "input-norm"),
                                          ("fast", "input-norm")])
def test_distill_makes_a_fixed_norm_network_from_an_instance_norm_one(tiny_data, tmp_path, network, norm):
    """A fixed-norm or input-norm teacher's lite and fast networks (issue 32): from today's, their statistics
    frozen (an input-norm network's first norm keeps each picture's own); with --ema-decay the style file is the
    moving average of the steps, as for `train`."""
    torch.manual_seed(0)
    old = tmp_path / "old.safetensors"
    save_style(old, build_network(network).state_dict(), StyleInfo(name="old", architecture=network))
    r = _distill(tiny_data, tmp_path, "--architecture", f"{network}-{norm}", "--init-from", old, "--max-zoom",
                 "4", "--max-steps", "2", "--ema-decay", "0.5")
    assert r.returncode == 0, r.stderr
    assert "statistics frozen" in r.stderr
    info, _ = load_model(tmp_path / "randomstyle-lite.safetensors")
    assert info.architecture == f"{network}-{norm}"
    weights = load_file(tmp_path / "randomstyle-lite.safetensors")  # as stored: float16
    assert ("down.0.1.mean" in weights) == (norm == "fixed-norm") and "down.1.1.mean" in weights
    state = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)
    average, last_step = checkpoint_weights(state), checkpoint_weights(state, raw=True)
    assert all(torch.equal(weights[k], average[k].half()) for k in average)
    assert any(not torch.equal(weights[k], last_step[k].half()) for k in average)
    assert info.title.endswith(f" ({network})")  # the overlay's name: which network of the style it is

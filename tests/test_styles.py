import pytest
import torch

from nst_video.errors import NstError
from nst_video.model import TransformerNet
from nst_video.styles import StyleInfo, StyleRegistry, load_model, load_style, read_info, save_style
from tests.conftest import make_random_style


def test_round_trip_keeps_metadata_and_weights_to_fp16_precision(tmp_path):
    torch.manual_seed(3)
    model = TransformerNet()
    info = StyleInfo(name="x", title="X title", credit="Someone, 1889", training={"steps": 10, "image_size": 128})
    path = save_style(tmp_path / "x.safetensors", model.state_dict(), info)
    assert 3_000_000 < path.stat().st_size < 3_600_000  # fp16 on disk
    loaded_info, state = load_style(path)
    assert (loaded_info.name, loaded_info.title, loaded_info.credit) == ("x", "X title", "Someone, 1889")
    assert loaded_info.training == {"steps": 10, "image_size": 128}
    for k, v in model.state_dict().items():
        assert state[k].dtype == torch.float32
        torch.testing.assert_close(state[k], v.float(), atol=2e-3, rtol=1e-3)


def test_truncated_file_gives_clear_error(tmp_path):
    path = make_random_style(tmp_path / "t.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NstError, match="truncated or foreign"):
        load_style(path)


def test_foreign_files_are_refused(tmp_path):
    pickle_file = tmp_path / "model.pth"
    torch.save(TransformerNet().state_dict(), pickle_file)
    with pytest.raises(NstError, match="not a readable style file"):
        load_style(pickle_file)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(NstError):
        read_info(text)


def test_safetensors_with_wrong_tensors_is_refused(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "nst-video-style", "format_version": "1"})
    with pytest.raises(NstError, match="do not fit"):
        load_model(path)


def test_newer_format_version_is_refused(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "future.safetensors"
    state = {k: v.contiguous() for k, v in TransformerNet().state_dict().items()}
    save_file(state, str(path), metadata={"format": "nst-video-style", "format_version": "99"})
    with pytest.raises(NstError, match="version"):
        load_style(path)


def test_registry_finds_by_name_and_path_and_lists(tmp_path, style_dir):
    registry = StyleRegistry([tmp_path / "bundled", style_dir])
    assert registry.names() == ["otherstyle", "randomstyle"]
    assert registry.resolve("randomstyle") == style_dir / "randomstyle.safetensors"
    assert registry.resolve(str(style_dir / "otherstyle.safetensors")).name == "otherstyle.safetensors"
    with pytest.raises(NstError, match="available styles: otherstyle, randomstyle"):
        registry.resolve("nope")


def test_bundled_folder_wins_over_user_folder(tmp_path, style_dir):
    bundled = tmp_path / "bundled"
    make_random_style(bundled / "randomstyle.safetensors", name="bundled-one")
    registry = StyleRegistry([bundled, style_dir])
    assert registry.resolve("randomstyle").parent == bundled

"""Every option of every command, walked: numbers that are not finite are a usage error (exit 2) at parsing,
never an "internal error" from deep inside a job; and messages print names as they are."""
import click
import pytest
from click.testing import CliRunner
from PIL import Image

from nst_video.cli import FiniteFloat, main
from tests.conftest import run_cli

TEXT_TYPES = (click.types.StringParamType, click.Path, click.Choice, click.types.BoolParamType)


def _value_options():
    """(command, option) for every option that takes a value which is not free text, a path or a choice."""
    for name, command in sorted(main.commands.items()):
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag and not isinstance(param.type, TEXT_TYPES):
                yield name, param


VALUE_OPTIONS = [pytest.param(name, param, id=f"{name} {param.opts[-1]}") for name, param in _value_options()]


def test_the_walk_sees_the_float_options_of_every_command():
    seen = {(name, param.opts[-1]) for name, param in _value_options()}
    for expected in [("optimize", "--lr"), ("optimize", "--style-scale"), ("optimize", "--init-noise"),
                     ("distill", "--lr"), ("train", "--motion-shift"), ("image", "--strength"),
                     ("video", "--temporal"), ("webcam", "--strength"), ("serve", "--keep-results")]:
        assert expected in seen, expected


@pytest.mark.parametrize("name, param", VALUE_OPTIONS)
def test_every_number_option_refuses_nan_and_infinity_as_a_usage_error(name, param):
    if isinstance(param.type, click.types.FloatParamType):  # the one float type, declared once in cli.py
        assert isinstance(param.type, FiniteFloat), f"{name} {param.opts[-1]}: use FINITE_FLOAT/FiniteFloatRange"
    for value in ("nan", "inf", "-inf", "1e999", "-Infinity"):
        result = CliRunner().invoke(main, [name, param.opts[-1], value])
        assert result.exit_code == 2, (value, result.output)
        # the option's own error, not a missing argument of the command (click checks given options first)
        assert param.opts[-1] in result.output and "Missing" not in result.output, (value, result.output)


@pytest.mark.parametrize("args", [["train", "--seed"], ["distill", "--seed"], ["diagnose", "--seed"],
                                  ["optimize", "--seed"], ["train", "--num-workers"], ["image", "--threads"],
                                  ["serve", "--threads"]], ids=" ".join)
def test_integers_past_what_the_job_can_take_are_a_usage_error(args):
    """Once an internal error (a seed past numpy's and torch's generators, threads past a runtime's C int) or
    a machine out of memory (10**30 data loading processes): bounded where the options are declared."""
    result = CliRunner().invoke(main, [*args, "1" + "0" * 30])
    assert result.exit_code == 2 and args[1] in result.output and "range" in result.output, result.output


def test_error_lines_print_file_names_as_they_are(tmp_path):
    """rich's emoji codes are off: ':fire:' stays as typed, in the error line and in the progress line; no blank
    line before the error line on a pipe."""
    name = tmp_path / "my:fire:photo.jpg"
    r = run_cli("image", name, tmp_path / "out.png")
    assert r.returncode == 1 and r.stderr == f"nst-video: error: {name}: no such file or folder\n", r.stderr
    name.write_text("not a picture")  # one good picture and this one: a progress bar, whose status is the name
    Image.new("RGB", (32, 24)).save(tmp_path / "good.png")
    r = run_cli("image", tmp_path / "good.png", name, "-o", tmp_path / "out", "--backend", "torch")
    assert r.returncode == 1 and "\U0001f525" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    # the bar's status is the name, as typed (at 80 columns the status may be cut short: its start is kept)
    assert lines[0].startswith(f"nst-video: error: {name}: not an image") and "my:fire:photo" in lines[1]
    assert "" not in lines, r.stderr
    r = run_cli("image", name, tmp_path / "out.png", "--backend", "torch")  # one picture: no bar, no blank line
    assert r.returncode == 1 and r.stderr.startswith(f"nst-video: error: {name}: not an image"), r.stderr


def test_the_style_list_prints_titles_and_credits_as_they_are(tmp_path):
    """A style file's metadata is anyone's: no markup, no emoji codes."""
    import torch

    from nst_video.model import TransformerNet
    from nst_video.styles import StyleInfo, save_style

    save_style(tmp_path / "odd.safetensors", TransformerNet().state_dict(),
               StyleInfo(name="odd", title="[bold]Hot[/bold] :fire:", credit="[link=http://x]me[/link]"))
    r = run_cli("styles", env_extra={"NST_VIDEO_STYLES": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "[bold]Hot[/bold] :fire:" in r.stdout and "[link=http://x]me[/link]" in r.stdout, r.stdout
    assert torch  # (the style above needs torch's weights)

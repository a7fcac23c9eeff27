"""VideoSource / VideoSink without the network: a decode -> encode round trip must keep everything but the
pixels' compression noise (frame count, timestamps, rate, size, orientation, colours, audio); a segment
(--start/--duration) and a size cap (--max-size) must give just that part, timed from 0, with its audio."""
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from nst_video.audio_io import AudioTrack
from nst_video.errors import NstError
from nst_video.video_io import VideoSink, VideoSource
from tests.conftest import needs_shared_data
from tests.video_media import (
    NTSC,
    beep_times,
    make_audio_only,
    make_broken_audio_clip,
    make_clip,
    mean_abs_diff,
    picture,
    probe,
)


def passthrough(src, dst, start=0.0, duration=None, max_size=None, **kwargs):
    with VideoSource(src, start=start, duration=duration, max_size=max_size) as source:
        info = source.info
        with VideoSink(dst, info.width, info.height, info.time_base, info.frame_rate, audio_from=src,
                       audio_start=info.segment_start, colorspace=info.colorspace, **kwargs) as sink:
            for frame in source:
                sink.write(frame.rgb, frame.pts, frame.duration)
    return info


def test_ntsc_rate_timestamps_and_audio_are_kept(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=15, rate=NTSC)
    passthrough(src, tmp_path / "out.mp4")
    a, b = probe(src, pictures=True), probe(tmp_path / "out.mp4", pictures=True)
    assert b.frames == a.frames == 15
    assert b.average_rate == NTSC  # 29.97 stays 30000/1001, not 29 or 30
    assert b.times == pytest.approx(a.times, abs=1e-6)
    assert b.video_end == pytest.approx(a.video_end, abs=1e-3)
    assert (b.width, b.height, b.codec) == (64, 48, "h264")
    assert b.audio == "aac" and b.audio_seconds == pytest.approx(a.audio_seconds, abs=0.03)
    assert max(mean_abs_diff(x, y) for x, y in zip(a.pictures, b.pictures, strict=True)) < 3


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".webm"])
def test_variable_frame_rate_is_kept(tmp_path, suffix):
    # The Matroska header says 29.97 fps, as a webcam's does: only the timestamps tell the rate varies.
    pts = [0, 33, 70, 100, 180, 190, 250, 400, 401, 450]  # milliseconds, as a webcam records
    src = make_clip(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000), audio=None)
    info = passthrough(src, tmp_path / f"out{suffix}", codec=None, preset="ultrafast")
    assert not info.constant_rate and info.time_base == Fraction(1, 1000)
    out = probe(tmp_path / f"out{suffix}")
    assert out.times == pytest.approx([p / 1000 for p in pts], abs=1e-6)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi", ".webm", ".mov"])
def test_constant_rate_is_written_at_its_own_rate_in_every_container(tmp_path, suffix):
    # 29.97 fps in the 1/30000 time base that MP4 files use, with audio (AVI: MP3, whose encoder delay once
    # shifted the video by an empty entry); the output must say 30000/1001, with one entry per frame.
    src = make_clip(tmp_path / "in.mp4", frames=20, pts=[1001 * i for i in range(20)], time_base=Fraction(1, 30000))
    info = passthrough(src, tmp_path / f"out{suffix}", codec=None, preset="ultrafast")
    assert info.constant_rate and info.frame_rate == NTSC and info.time_base == 1 / NTSC
    out = probe(tmp_path / f"out{suffix}")
    assert out.average_rate == NTSC and out.frames == 20 and out.audio
    if suffix in (".avi", ".mp4", ".mov"):  # the containers whose header counts frames (AVI: its entries)
        assert out.header_frames == 20
    assert np.diff(out.times) == pytest.approx(float(1 / NTSC), abs=1e-3)


def test_odd_sizes_are_padded_by_one_pixel(tmp_path):
    src = make_clip(tmp_path / "odd.mkv", width=65, height=49, pix_fmt="yuv444p", audio="libopus")
    passthrough(src, tmp_path / "out.mp4")
    a, b = probe(src, pictures=True), probe(tmp_path / "out.mp4", pictures=True)
    assert (b.width, b.height) == (66, 50) and b.frames == a.frames
    assert mean_abs_diff(a.pictures[3], b.pictures[3][:49, :65]) < 5  # 4:4:4 -> 4:2:0 at a tiny size
    assert mean_abs_diff(b.pictures[3][49], b.pictures[3][48]) < 3  # the padding repeats the last row
    assert b.audio == "opus"  # Opus goes into MP4 as it is


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    src = make_clip(tmp_path / "rot.mp4", rotation=rotation, audio=None, frames=3)
    passthrough(src, tmp_path / "out.mp4")
    out = probe(tmp_path / "out.mp4", pictures=True)
    upright = np.rot90(picture(0, 48, 64), rotation // 90)  # counter-clockwise, as FFmpeg's autorotate does
    assert (out.height, out.width) == upright.shape[:2]
    assert mean_abs_diff(out.pictures[0], upright) < 4


@pytest.mark.parametrize("codec,pix_fmt,suffix", [("libx264", "yuv444p", ".mkv"), ("mpeg4", "yuv420p", ".avi"),
                                                  ("libx264rgb", "rgb24", ".mkv"), ("libx264", "yuvj420p", ".mp4")])
def test_pixel_formats_and_codecs(tmp_path, codec, pix_fmt, suffix):
    src = make_clip(tmp_path / f"in{suffix}", codec=codec, pix_fmt=pix_fmt, audio=None, frames=5)
    passthrough(src, tmp_path / "out.mp4")
    a, b = probe(src, pictures=True), probe(tmp_path / "out.mp4", pictures=True)
    assert b.frames == 5
    assert mean_abs_diff(a.pictures[2], b.pictures[2]) < 4


def test_audio_is_transcoded_where_the_container_cannot_take_it(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=12)  # AAC, which AVI does not take as it is
    passthrough(src, tmp_path / "out.avi")
    out = probe(tmp_path / "out.avi")
    assert out.audio == "mp3" and out.audio_seconds == pytest.approx(12 / NTSC, abs=0.1)


def test_broken_audio_warns_and_keeps_the_video(tmp_path):
    src = make_broken_audio_clip(tmp_path / "in.mkv")
    warnings = []
    passthrough(src, tmp_path / "out.mp4", on_warning=warnings.append)
    out = probe(tmp_path / "out.mp4")
    assert out.frames == 10 and out.audio is None
    assert len(warnings) == 1 and "audio" in warnings[0] and "without it" in warnings[0]


def test_sink_writes_atomically(tmp_path):
    final = tmp_path / "out.mp4"
    with VideoSink(final, 64, 48, Fraction(1, 1000), codec="libx264") as sink:
        for i in range(3):
            sink.write(picture(i, 48, 64), i * 40)
        assert not final.exists() and sink.tmp.exists()
    assert final.exists() and list(tmp_path.iterdir()) == [final]
    assert probe(final).frames == 3


def test_sink_keeps_a_playable_file_on_ctrl_c_and_nothing_on_errors(tmp_path):
    kept, dropped = tmp_path / "kept.mp4", tmp_path / "dropped.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoSink(kept, 65, 49, Fraction(1, 1000)) as sink:  # odd size: the sink pads it itself
            for i in range(4):
                sink.write(picture(i, 49, 65), i * 33)
            raise KeyboardInterrupt
    assert probe(kept).frames == 4
    with pytest.raises(RuntimeError):
        with VideoSink(dropped, 64, 48, Fraction(1, 1000)) as sink:
            sink.write(picture(0, 48, 64), 0)
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.mp4"]


def test_sink_repairs_repeated_timestamps_and_writes_nothing_without_frames(tmp_path):
    with VideoSink(tmp_path / "out.mp4", 64, 48, Fraction(1, 1000)) as sink:
        for pts in (0, 40, 40, 80):  # two frames in the same millisecond
            sink.write(picture(0, 48, 64), pts)
    assert probe(tmp_path / "out.mp4").times == pytest.approx([0, 0.04, 0.041, 0.08])
    VideoSink(tmp_path / "empty.mp4", 64, 48, Fraction(1, 30)).close()
    assert not (tmp_path / "empty.mp4").exists()


def test_sink_refuses_what_cannot_work(tmp_path):
    with pytest.raises(NstError, match="cannot hold"):
        VideoSink(tmp_path / "out.webm", 64, 48, Fraction(1, 30), codec="libx264")
    with pytest.raises(NstError, match="unknown video encoder"):
        VideoSink(tmp_path / "out.mp4", 64, 48, Fraction(1, 30), codec="nosuchcodec")
    with pytest.raises(NstError, match="extension"):
        VideoSink(tmp_path / "out", 64, 48, Fraction(1, 30))
    with pytest.raises(NstError, match="does not exist"):
        VideoSink(tmp_path / "missing" / "out.mp4", 64, 48, Fraction(1, 30))
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_fail_with_one_clear_reason(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video\n" * 50)
    cases = {tmp_path / "text.mp4": "not a video", tmp_path / "nope.mp4": "no such file",
             make_audio_only(tmp_path / "sound.m4a"): "no video stream", tmp_path: "folder"}
    for path, message in cases.items():
        with pytest.raises(NstError, match=message):
            VideoSource(path)


@pytest.mark.parametrize("suffix,keep", [(".mp4", 0.5), (".mkv", 0.6)])
def test_truncated_files_are_refused(tmp_path, suffix, keep):
    whole = make_clip(tmp_path / f"whole{suffix}", frames=60, audio=None)
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(NstError, match="truncated"):
        with VideoSource(cut) as source:
            for _ in source:
                pass


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["tree__opencv.avi", "desks__exoplayer.3gp", "flower__mdn-cc0.webm",
                                  "asl-thanks__intel.mkv"])
def test_real_clips_round_trip(tmp_path, name):
    """Cinepak rgb24 AVI with 'repeat' frames, H.263 3GP starting at 0.128 s with 8 kHz AAC, VP8 + Vorbis
    WebM (Vorbis is transcoded to AAC for MP4), full-range (yuvj420p) H.264 in Matroska."""
    src = needs_shared_data("videos", name)
    info = passthrough(src, tmp_path / "out.mp4", preset="ultrafast")
    a, b = probe(src, pictures=True), probe(tmp_path / "out.mp4", pictures=True)
    assert b.frames == a.frames and (b.width, b.height) == (info.width, info.height)
    if info.constant_rate:  # exactly on the grid; the file's own times were rounded (to the ms in Matroska)
        rate = info.frame_rate
        assert b.times == pytest.approx([(round(a.times[0] * rate) + k) / rate for k in range(b.frames)], abs=1e-6)
        assert b.times == pytest.approx(a.times, abs=0.5 / rate)
        assert b.average_rate == rate
    else:
        assert b.times == pytest.approx(a.times, abs=1e-4)
    assert b.video_end == pytest.approx(a.video_end, abs=0.01)
    assert (b.audio is None) == (a.audio is None)
    if a.audio:
        assert b.audio_seconds == pytest.approx(a.audio_seconds, abs=0.1)
    assert np.mean([mean_abs_diff(x, y) for x, y in zip(a.pictures, b.pictures, strict=True)]) < 3


@pytest.mark.parametrize("plan", ["transcode", "copy"])
def test_a_segment_is_timed_from_zero_with_its_own_audio(tmp_path, monkeypatch, plan):
    beeps = [0.2, 0.7, 1.3, 2.1, 2.6]
    src = make_clip(tmp_path / "in.mp4", frames=90, beeps=beeps)  # 3 s at 29.97 fps
    if plan == "copy":  # as where the transcoding encoder is missing: the fallback copies (packet accuracy)
        real = AudioTrack.create.__func__
        monkeypatch.setattr(AudioTrack, "create", classmethod(
            lambda cls, source, container, how, *args: None if how == "transcode" else
            real(cls, source, container, how, *args)))
    info = passthrough(src, tmp_path / "out.mp4", start=0.6, duration=1.9, preset="ultrafast")
    start = 18 * 1001 / 30000  # the first frame at or after 0.6 s
    assert info.segment_start == pytest.approx(start) and info.frame_count == 57
    out = probe(tmp_path / "out.mp4")
    assert out.frames == 57 and out.times[0] == 0 and out.video_end == pytest.approx(57 * 1001 / 30000, abs=1e-3)
    assert out.audio == "aac"
    # The beeps inside the segment, at their time from its start: the audio is in step with the video.
    assert beep_times(tmp_path / "out.mp4") == pytest.approx([t - start for t in beeps[1:4]], abs=0.002)
    # Cut where the video ends: to the sample (plus the encoder's last, padded frame: 1024 samples), or to
    # the packet when copied.
    assert out.video_end - 0.001 <= out.audio_seconds <= out.video_end + 1024 / 44100 + 0.001


def test_a_segment_seeks_and_drops_what_comes_before_its_start(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=150, rate=Fraction(25), audio=None)  # one keyframe, at 0
    with VideoSource(src, start=4.5) as source:
        assert source.info.segment_start == pytest.approx(4.52)
        frames = list(source)
    assert len(frames) == 150 - 113 and [f.pts for f in frames[:3]] == [0, 1, 2]
    assert mean_abs_diff(frames[0].rgb, picture(113, 48, 64)) < 4  # frame 113 (4.52 s): the first at or after


def test_a_segment_cannot_start_beyond_the_end(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=30)  # 1 s
    with pytest.raises(NstError, match="cannot start at 5.00 s: the video is 1.00 s long"):
        VideoSource(src, start=5)
    with pytest.raises(ValueError):
        VideoSource(src, start=-1)


@pytest.mark.parametrize("rotation", [None, 90])
def test_max_size_caps_the_long_side_keeping_the_aspect_in_even_sizes(tmp_path, rotation):
    src = make_clip(tmp_path / "in.mp4", width=96, height=72, frames=4, rotation=rotation, audio=None)
    with VideoSource(src, max_size=41) as source:
        frames = list(source)
        size = (source.info.width, source.info.height)
    assert size == ((40, 30) if rotation is None else (30, 40))
    upright = picture(2, 72, 96) if rotation is None else np.rot90(picture(2, 72, 96))
    expected = np.asarray(Image.fromarray(upright).resize(size, Image.Resampling.BICUBIC))
    assert frames[2].rgb.shape == (size[1], size[0], 3) and mean_abs_diff(frames[2].rgb, expected) < 6
    with VideoSource(src, max_size=500) as source:  # never scaled up
        assert (source.info.width, source.info.height) == _upright(96, 72, rotation)


def _upright(width, height, rotation):
    return (height, width) if rotation in (90, -90, 270) else (width, height)


def test_a_task_keeps_its_decoder_and_encoder_to_its_threads(tmp_path):
    """codec_threads (a cluster task's CPUs): the round trip is the same, on the threads asked for."""
    src = make_clip(tmp_path / "in.mp4", frames=12)
    with VideoSource(src, codec_threads=1) as source:
        info = source.info
        assert source.stream.thread_count == 1
        with VideoSink(tmp_path / "out.mp4", info.width, info.height, info.time_base, info.frame_rate,
                       codec_threads=1) as sink:
            for frame in source:
                sink.write(frame.rgb, frame.pts, frame.duration)
            assert sink.stream.codec_context.thread_count == 1
    assert probe(tmp_path / "out.mp4").frames == 12


def test_segments_encoded_for_joining_leave_a_steadier_join(tmp_path):
    """joinable (cluster.py's segments): the pair of frames across a join changes less than with the encoder's
    defaults, which lower the quality of an encode's last frames (docs/cluster.md)."""
    from nst_video.temporal import warping_error

    sources = probe(make_clip(tmp_path / "in.mp4", width=96, height=64, frames=60), pictures=True).pictures

    def join_error(joinable: bool) -> float:
        outputs = []
        for a, b in ((0, 30), (30, 60)):
            path = tmp_path / f"segment{a}-{joinable}.mp4"
            with VideoSink(path, 96, 64, Fraction(1, 30), Fraction(30), joinable=joinable, codec_threads=1) as sink:
                for i in range(a, b):
                    sink.write(sources[i], i - a)
            outputs += probe(path, pictures=True).pictures
        return warping_error(sources[29:31], outputs[29:31])

    assert join_error(True) < 0.8 * join_error(False)

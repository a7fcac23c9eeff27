"""segments.py, without Ray: a video cut at its keyframes and joined back by stream copy (what `--cluster` does
around the tasks)."""
import io
from fractions import Fraction

import av
import numpy as np
import pytest

from nst_video.errors import NstError
from nst_video.segments import SegmentJoiner, cut_segments, plan_segments, scan_packets
from nst_video.video_io import VideoSink
from tests.video_media import NTSC, make_clip, probe


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=60, keyint=15)


def decoded_times(data: bytes) -> list[float]:
    with av.open(io.BytesIO(data)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(c.streams.video[0])]


def test_cuts_hold_their_frames_and_the_warm_up_before_them(clip):
    scan = scan_packets(clip)
    assert scan.frames == 60 and scan.clean_cuts() == [0, 15, 30, 45] and scan.has_audio
    plans = plan_segments(scan, 4, warmup=5, min_frames=10)
    assert [(p.start, p.end) for p in plans] == [(0, 15), (15, 30), (30, 45), (45, 60)]
    assert [(p.cut_start, p.drop, p.warmup) for p in plans] == [(0, 0, 0), (0, 10, 5), (15, 10, 5), (30, 10, 5)]
    for plan, data in cut_segments(scan, plans):
        times = decoded_times(data)
        assert len(times) == plan.end - plan.cut_start
        assert times[plan.start - plan.cut_start] == pytest.approx(float(plan.start_pts * scan.time_base), abs=1e-3)


def test_segments_are_no_shorter_than_asked(clip):
    plans = plan_segments(scan_packets(clip), 8, min_frames=25)
    assert [(p.start, p.end) for p in plans] == [(0, 30), (30, 60)]


def test_a_part_of_the_file_is_cut_from_the_frame_start_shows_to_its_end(clip):
    # --start/--duration with --cluster: frames [first, end) as VideoSource keeps them; the first segment starts
    # cold at `first` (as the one-machine job does), the last, ending between two keyframes, is sent up to the
    # next one and its task writes only up to `end`
    scan = scan_packets(clip)
    first, end = scan.frame_range(0.4, 1.2)  # 29.97 fps: frames 12 (0.400 s) to 47 (1.568 s)
    assert (first, end) == (12, 48)
    plans = plan_segments(scan, 4, warmup=5, min_frames=10, first=first, end=end)
    assert [(p.start, p.end) for p in plans] == [(12, 30), (30, 48)]
    assert [(p.cut_start, p.drop, p.warmup, p.sent_end) for p in plans] == [(0, 12, 0, 30), (15, 10, 5, 60)]
    for plan, data in cut_segments(scan, plans):
        times = decoded_times(data)
        assert len(times) == plan.sent_end - plan.cut_start
        assert times[plan.start - plan.cut_start] == pytest.approx(float(plan.start_pts * scan.time_base), abs=1e-3)
    assert scan.frame_range(1.9, None) == (57, 60)
    with pytest.raises(NstError, match="cannot start at 2.10 s: the video is 1.97 s long"):
        scan.frame_range(2.1, None)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_joined_segments_keep_the_inputs_timestamps_and_audio(tmp_path, clip, suffix):
    """Each segment encoded on its own (as a task does, timed from its own 0), joined: one file with the
    frames at the input's times and the input's audio, once (AAC copied into MP4, transcoded into WebM)."""
    scan = scan_packets(clip)
    plans = plan_segments(scan, 3, min_frames=10)
    encoded = []
    for plan in plans:
        path = tmp_path / f"segment{plan.index}{suffix}"
        with VideoSink(path, 64, 48, 1 / NTSC, NTSC, codec=None, crf=0) as sink:
            for i in range(plan.frames):
                sink.write(np.full((48, 64, 3), 8 * (plan.start + i) % 256, np.uint8), i)
        encoded.append(path.read_bytes())
    out = tmp_path / f"joined{suffix}"
    joiner = SegmentJoiner(out, encoded[0], audio_from=clip)
    for plan, data in zip(plans, encoded, strict=True):
        assert joiner.add_segment(data, Fraction(plan.start_pts) * scan.time_base) == plan.frames
    joiner.close()
    joined, source = probe(out, pictures=True), probe(clip)
    assert joined.frames == 60 and joined.times == pytest.approx(source.times, abs=1e-3)
    levels = [float(p.mean()) for p in joined.pictures]  # each frame in its place (grey levels, +-2 for YUV)
    assert levels == pytest.approx([8 * i % 256 for i in range(60)], abs=2)
    assert joined.audio == ("aac" if suffix == ".mp4" else "opus")
    assert joined.audio_seconds == pytest.approx(source.audio_seconds, abs=0.03)
    assert sorted(p.name for p in tmp_path.iterdir() if "joined" in p.name) == [out.name]  # no partial left

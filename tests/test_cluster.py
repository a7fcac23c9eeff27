"""`--cluster`: the video and image jobs on a real local Ray cluster (local:2, loopback), against the same jobs
on one machine. Every run is the real CLI in a subprocess; each starts and stops its own cluster."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import run_cli, wait_until
from tests.video_media import make_clip, probe

pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e '.[cluster]')")

pytestmark = pytest.mark.slow

CLIP_FRAMES, KEYINT = 90, 15  # 3 s at 29.97 fps, a keyframe every half second: local:2 cuts it in 3 segments
ONE_THREAD = ("--threads", "1")  # the same network threads on both sides: the same arithmetic, the same frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def segments_in(stderr: str) -> int:
    match = re.search(r"on (\d+) segments on \d+ Ray workers", stderr)
    assert match, stderr
    return int(match.group(1))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", width=96, height=64, frames=CLIP_FRAMES,
                     keyint=KEYINT)


def test_clustered_video_matches_one_machine(tmp_path, clip):
    # --crf 0 (lossless): what is compared is the stylized frames, not two encoders' noise (docs/cluster.md)
    one = run_cli("video", clip, tmp_path / "one.mp4", "--style", "randomstyle", "--crf", "0", *ONE_THREAD)
    assert one.returncode == 0, one.stderr
    many = run_cli("video", clip, tmp_path / "many.mp4", "--style", "randomstyle", "--crf", "0", *ONE_THREAD,
                   "--cluster", "local:2")
    assert many.returncode == 0 and "Traceback" not in many.stderr, many.stderr
    assert segments_in(many.stderr) >= 2
    a, b = probe(tmp_path / "one.mp4", pictures=True), probe(tmp_path / "many.mp4", pictures=True)
    assert b.frames == a.frames == CLIP_FRAMES
    assert b.times == a.times and b.video_end == a.video_end and b.average_rate == a.average_rate
    assert b.audio == a.audio == "aac" and b.audio_seconds == a.audio_seconds
    assert min(psnr(x, y) for x, y in zip(a.pictures, b.pictures, strict=True)) >= 45
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.mp4", "one.mp4"]  # nothing else left here


def test_a_clustered_part_matches_one_machine(tmp_path, clip):
    # --start/--duration: the part from a frame between two keyframes to another, timed from 0, its audio cut
    # from the same place, as on one machine
    part = ("--start", "0.4", "--duration", "2.4", "--crf", "0", *ONE_THREAD)
    one = run_cli("video", clip, tmp_path / "one.mp4", "--style", "randomstyle", *part)
    assert one.returncode == 0, one.stderr
    many = run_cli("video", clip, tmp_path / "many.mp4", "--style", "randomstyle", *part, "--cluster", "local:2")
    assert many.returncode == 0 and "Traceback" not in many.stderr, many.stderr
    assert segments_in(many.stderr) >= 2
    a, b = probe(tmp_path / "one.mp4", pictures=True), probe(tmp_path / "many.mp4", pictures=True)
    assert b.frames == a.frames == 72 and a.times[0] == 0
    assert b.times == a.times and b.video_end == a.video_end
    assert b.audio == a.audio == "aac" and b.audio_seconds == a.audio_seconds
    assert min(psnr(x, y) for x, y in zip(a.pictures, b.pictures, strict=True)) >= 45


def test_temporal_leaves_no_seam_at_the_joins(tmp_path, clip):
    """--temporal 1: each segment warms the blender on the frames before it, so the warping error across a
    join is no worse than 1.2x the clip's average (lossless, so that an encoder's keyframe at each join is not
    what is measured)."""
    from nst_video.temporal import warping_error

    out = tmp_path / "steady.mp4"
    r = run_cli("video", clip, out, "--style", "mosaic", "--temporal", "1", "--crf", "0", *ONE_THREAD,
                "--cluster", "local:2")
    assert r.returncode == 0, r.stderr
    count = segments_in(r.stderr)
    assert count >= 2
    sources, outputs = probe(clip, pictures=True).pictures, probe(out, pictures=True).pictures
    errors = [warping_error(sources[i - 1:i + 1], outputs[i - 1:i + 1]) for i in range(1, len(outputs))]
    joins = [j * CLIP_FRAMES // count for j in range(1, count)]  # equal thirds fall on keyframes here
    assert all(j % KEYINT == 0 for j in joins)
    average = float(np.mean(errors))
    assert max(errors[j - 1] for j in joins) <= 1.2 * average, (errors, joins)


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _segment_workers(pid: int) -> list[int]:
    """The Ray worker processes under `pid` running a video segment (Ray names them after the task)."""
    running = []
    for child in _descendants(pid):
        try:
            if b"ray::_run_segment" in Path(f"/proc/{child}/cmdline").read_bytes():
                running.append(child)
        except OSError:
            continue
    return running


def _start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nst_video", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def test_a_worker_killed_mid_job_costs_nothing_but_time(tmp_path, clip):
    out = tmp_path / "out.mp4"
    proc = _start_cli("video", clip, out, "--style", "mosaic", "--crf", "0", *ONE_THREAD, "--cluster", "local:2")
    wait_until(lambda: proc.poll() is not None or _segment_workers(proc.pid), "a segment running", timeout=120)
    workers = _segment_workers(proc.pid)
    assert workers, proc.communicate()[1]
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    assert re.search(r"wrote .*out\.mp4: 90 frames", stderr), stderr
    done = probe(out)
    assert done.frames == CLIP_FRAMES and done.times == pytest.approx([i / Fraction(30000, 1001) for i in
                                                                       range(CLIP_FRAMES)], abs=1e-6)


def test_a_stop_signal_cancels_the_tasks_and_leaves_a_playable_file_or_nothing(tmp_path, clip):
    out = tmp_path / "out.mp4"
    proc = _start_cli("video", clip, out, "--style", "mosaic", *ONE_THREAD, "--cluster", "local:2")
    wait_until(lambda: proc.poll() is not None or _segment_workers(proc.pid), "a segment running", timeout=120)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr, stderr
    if out.exists():  # the segments done from the start
        assert 0 < probe(out).frames < CLIP_FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["out.mp4"])  # no segment or partial file
    left = [p for p in Path(tempfile.gettempdir()).glob("nst-video-segment-*")
            if not Path("/proc", p.name.split("-")[3]).exists()]  # the killed workers' folders are gone too
    assert not left
    wait_until(lambda: not _descendants(proc.pid), "the local cluster to stop", timeout=30)


def _broken_in_its_second_half(src: Path, dst: Path) -> Path:
    """`src` with the video packets of its second half replaced by random bytes: that part cannot decode."""
    rng = np.random.default_rng(0)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for i, packet in enumerate(p for p in inp.demux(stream) if p.size):
            if i >= CLIP_FRAMES // 2:
                broken = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                broken.pts, broken.dts, broken.time_base = packet.pts, packet.dts, packet.time_base
                broken.is_keyframe = packet.is_keyframe
                packet = broken
            packet.stream = copy
            out.mux(packet)
    return dst


def test_a_segment_failing_on_every_try_fails_the_job_naming_it(tmp_path, clip):
    src = _broken_in_its_second_half(clip, tmp_path / "broken.mp4")
    r = run_cli("video", src, tmp_path / "out.mp4", "--style", "randomstyle", *ONE_THREAD, "--cluster", "local:2")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.search(r"nst-video: error: segment \d of \d .* failed on every try \(3\): ", r.stderr), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["unreachable", "no ray", "no cpu"])
def test_bad_clusters_get_one_line_and_exit_1(tmp_path, clip, case):
    args = ["video", clip, tmp_path / "out.mp4", "--style", "randomstyle", "--cluster"]
    if case == "unreachable":
        started = time.monotonic()
        r = run_cli(*args, f"127.0.0.1:{_closed_port()}")
        assert time.monotonic() - started < 30  # Ray alone would wait minutes
        expected = "cannot reach a Ray cluster there"
    elif case == "no ray":  # as where the extra is not installed: `import ray` fails
        r = subprocess.run([sys.executable, "-c", "import sys; sys.modules['ray'] = None\nfrom nst_video.cli import "
                            "main\nmain()", *map(str, args), "local:2"], capture_output=True, text=True, timeout=120)
        expected = "--cluster needs Ray, which is not installed: pip install 'nst-video[cluster]'"
    else:
        r = run_cli(*args, "local:0")
        expected = "no CPU for the job"
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("nst-video: error: "), r.stderr
    assert expected in lines[0]
    assert not (tmp_path / "out.mp4").exists()


def test_clustered_images_match_one_machine_with_the_same_names_and_errors(tmp_path, photo):
    from PIL import Image

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.open(photo).save(src / "a.jpg")
    Image.open(photo).resize((120, 80)).save(src / "sub" / "b.png")
    (src / "broken.jpg").write_bytes(b"not a picture")
    one = run_cli("image", src, "-o", tmp_path / "one", "--style", "randomstyle", *ONE_THREAD)
    many = run_cli("image", src, "-o", tmp_path / "many", "--style", "randomstyle", *ONE_THREAD,
                   "--cluster", "local:2")
    for r in (one, many):
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "broken.jpg: not an image" in r.stderr and "1 of 3 image(s) failed" in r.stderr, r.stderr
    names = sorted(str(p.relative_to(tmp_path / "one")) for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert names == ["a.jpg", "sub/b.png"]
    assert names == sorted(str(p.relative_to(tmp_path / "many")) for p in (tmp_path / "many").rglob("*")
                           if p.is_file())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes()


def test_a_live_stream_does_not_go_with_a_cluster(tmp_path, clip):
    r = run_cli("video", clip, tmp_path / "o.mp4", "--style", "randomstyle", "--cluster", "local:2",
                "--stream", "udp://127.0.0.1:5000")
    assert r.returncode == 2 and "--stream does not go with it" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.mp4").exists()

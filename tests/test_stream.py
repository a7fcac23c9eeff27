"""`--stream URL`: the stylized frames as a live stream another program opens. End to end through the real
command (a clip standing in for the camera, a PyAV receiver on loopback), RTMP against FFmpeg acting as the
server, a receiver that stalls costing frames and never time, and bad URLs refused in one line."""
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from nst_video import stream_out
from nst_video.camera import to_rgb
from nst_video.stream_out import StreamOutput, check_stream_url
from tests.stream_media import UdpReceiver, luma_psnr

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "samples" / "clips" / "bunny.mp4"  # 320x180, 25 fps, 75 frames
SIZE = (320, 180)


def clip_frames() -> list[np.ndarray]:
    """The clip's frames as the webcam's camera delivers them (OpenCV, cropped and scaled to SIZE)."""
    import cv2
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            return frames
        frames.append(to_rgb(bgr, SIZE))


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webcam_streams_the_stylized_frames_in_order_at_the_clips_rate():
    proc = None
    receiver = UdpReceiver(done=lambda: proc is not None and proc.poll() is not None)
    max_frames = 30
    proc = subprocess.Popen([sys.executable, "-m", "nst_video", "webcam", "--no-window", "--camera", CLIP,
                             "--size", "x".join(map(str, SIZE)), "--paint-size", "x".join(map(str, SIZE)),
                             "--styles", "mosaic-lite",
                             "--stream", receiver.url, "--max-frames", str(max_frames)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    received = receiver.join()
    closed = next(line for line in err.splitlines() if line.startswith(f"webcam: stream {receiver.url}") and
                  " closed (" in line)
    sent, dropped = (int(word) for word in closed.replace("(", " ").split() if word.isdigit())
    # every frame shown went to the stream (the clip may end first on a slow CPU: the summary counts them)
    shown = int(re.search(r"webcam: summary: (\d+) frames", err)[1])
    assert sent + dropped == shown and sent >= shown // 2 and shown >= 10, (closed, shown)
    assert len(received) == sent, (len(received), closed)  # loopback loses nothing

    # Each received frame is the clip's frame of its timestamp (the camera's timing kept), stylized as the
    # Stylizer does it, within the codec's loss, and clearly not the unstylized frame; in the clip's order.
    from nst_video.stylizer import Stylizer
    originals = clip_frames()
    stylizer = Stylizer.from_style("mosaic-lite", batch_size=1)
    styled = [stylizer.stylize([rgb])[0] for rgb in originals]
    rate = 25.0
    times = [frame.time for frame in received]
    assert times == sorted(set(times)), f"out of order: {times}"
    first = None
    for frame in received:
        scores = [luma_psnr(frame.rgb, s) for s in styled]
        best = int(np.argmax(scores))
        first = best if first is None else first
        on_time = first + round(frame.time * rate)
        # within a frame of the timeline: the capture thread is paced by sleeping, late by a few ms under load
        assert abs(best - on_time) <= 1, f"frame at {frame.time:.3f} s is clip frame {best}, not {on_time}"
        assert scores[best] > 25, f"frame at {frame.time:.3f} s: {scores[best]:.1f} dB from the stylized frame"
        assert luma_psnr(frame.rgb, originals[best]) < scores[best] - 6, "the frame is not stylized"


def rtmp_listening(port: int) -> bool:
    with open("/proc/net/tcp") as table:
        return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in list(table)[1:])


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="waits for the listening socket in /proc/net/tcp")
def test_rtmp_push_to_a_server():
    """FFmpeg acting as the RTMP server (as `ffplay -listen 1 rtmp://...` does) receives every frame, in order."""
    url = f"rtmp://127.0.0.1:{free_tcp_port()}/live/nst"
    received, errors = [], []

    def serve():
        try:
            with av.open(url, options={"listen": "1", "timeout": "60"}) as container:
                for frame in container.decode(video=0):
                    received.append((float(frame.time), frame.to_ndarray(format="rgb24").mean()))
        except av.FFmpegError as e:  # the publisher hanging up ends the stream with an I/O error
            errors.append(e)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    deadline = time.monotonic() + 30
    while not rtmp_listening(int(url.split(":")[2].split("/")[0])):
        assert time.monotonic() < deadline, "the RTMP server did not start listening"
        time.sleep(0.01)
    output = StreamOutput(check_stream_url(url), (160, 120))
    start = time.monotonic()
    for i in range(20):
        sent = time.monotonic()
        output.send(np.full((120, 160, 3), 10 * i, np.uint8), start + i / 20)
        while output.sent + output.dropped <= i and time.monotonic() - sent < 5:  # one frame at a time
            time.sleep(0.002)
    assert output.close().startswith(f"stream {url} closed")
    server.join(30)
    assert output.sent == 20 and len(received) == 20, (output.summary(), len(received), errors)
    assert [round(t * 20) for t, _ in received] == list(range(20))  # the capture times kept
    assert all(abs(mean - 10 * i) < 4 for i, (_, mean) in enumerate(received))


def test_a_stalled_receiver_drops_frames_and_never_holds_up_the_loop(monkeypatch):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    output = StreamOutput(check_stream_url(f"udp://127.0.0.1:{receiver.getsockname()[1]}"), (64, 48))
    entered, release = threading.Event(), threading.Event()
    real_write = stream_out._StreamEncoder.write

    def stalled_write(self, rgb, pts, duration=None):  # the network blocks, as a stalled receiver's TCP does
        entered.set()
        release.wait(30)
        real_write(self, rgb, pts, duration)

    monkeypatch.setattr(stream_out._StreamEncoder, "write", stalled_write)
    frame = np.zeros((48, 64, 3), np.uint8)
    output.send(frame, time.monotonic())
    assert entered.wait(10)
    slowest = 0.0
    for _ in range(100):
        start = time.monotonic()
        output.send(frame, time.monotonic())
        slowest = max(slowest, time.monotonic() - start)
    assert slowest < 0.05, f"send() waited {slowest * 1000:.0f} ms"
    assert output.dropped == 99  # all but the newest, which waits for the encoder
    release.set()
    summary = output.close()
    assert output.sent == 2 and "2 frames sent, 99 dropped" in summary, summary
    receiver.close()


@pytest.mark.parametrize("url, message", [
    ("srt://127.0.0.1:5000", "unknown scheme 'srt'"),
    ("127.0.0.1:5000", "not a URL"),
    ("udp://127.0.0.1", "needs a host and a port"),
    ("udp://no-such-host.invalid:5000", "cannot resolve host 'no-such-host.invalid'"),
    ("rtmp://127.0.0.1:1935", "needs a path"),
    ("rtmp://127.0.0.1:{port}/live/nst", "cannot start the stream"),  # nothing listens: refused
])
def test_bad_stream_url_is_one_line_before_the_camera_opens(url, message):
    from click.testing import CliRunner

    from nst_video.cli import main

    url = url.format(port=free_tcp_port())
    # camera 7 does not exist: the stream's error coming first shows it is checked before the camera opens
    r = CliRunner().invoke(main, ["webcam", "--camera", "7", "--no-window", "--stream", url])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("nst-video: error: --stream") and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_video_file_played_as_a_live_stream_and_written(tmp_path):
    """`video IN OUT --stream URL --realtime`: the file is written as ever, and every frame also goes out live,
    stylized, in order, with the file's timestamps, none sent before its time in the file."""
    from nst_video.stylizer import Stylizer
    from nst_video.video_io import VideoSource

    proc = None
    receiver = UdpReceiver(done=lambda: proc is not None and proc.poll() is not None)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "nst_video", "video", CLIP, out, "--stream", receiver.url,
                             "--realtime", "--style", "mosaic-lite", "--duration", "1"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    received = receiver.join()
    assert "closed (25 frames sent, 0 dropped" in err, err
    with VideoSource(CLIP, duration=1) as source:
        originals = [frame.rgb for frame in source]
    with VideoSource(out) as written:
        assert sum(1 for _ in written) == len(originals) == 25
    stylizer = Stylizer.from_style("mosaic-lite", batch_size=1)
    assert [round(frame.time * 25) for frame in received] == list(range(25))
    for frame, original in zip(received, originals, strict=True):
        expected = stylizer.stylize([original])[0]
        assert luma_psnr(frame.rgb, expected) > 25 and luma_psnr(frame.rgb, original) < 20


@pytest.mark.parametrize("realtime", [True, False])
def test_realtime_sends_each_frame_at_its_time_in_the_file(monkeypatch, realtime):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    handed = []
    monkeypatch.setattr(StreamOutput, "send", lambda self, rgb, due, wait=False: handed.append((time.monotonic(), due)))
    sink = stream_out.StreamSink(check_stream_url(f"udp://127.0.0.1:{receiver.getsockname()[1]}"), 32, 24,
                                 time_base=stream_out.Fraction(1, 20), realtime=realtime)
    for pts in range(6):  # 20 fps: 0.25 s of video
        sink.write(np.zeros((24, 32, 3), np.uint8), pts)
    sink.close()
    receiver.close()
    # each frame is timed as in the file (its due time: the stream's timestamp) ...
    assert [round((due - handed[0][1]) * 20, 3) for _, due in handed] == list(range(6))
    if realtime:  # ... and handed over no sooner (late is allowed: a slow CPU)
        assert all(at >= due for at, due in handed), handed
    else:
        assert handed[-1][0] - handed[0][0] < 0.2, handed


@pytest.mark.parametrize("args, message", [
    ([], "no output: give OUTPUT, or --stream URL"),
    (["out.mp4", "--realtime"], "--realtime paces a live stream"),
])
def test_video_stream_usage_errors(args, message):
    from click.testing import CliRunner

    from nst_video.cli import main

    r = CliRunner().invoke(main, ["video", str(CLIP), *args])
    assert r.exit_code == 2 and message in r.stderr, r.output


def test_v_pauses_the_live_outputs_and_the_overlay_says_so(tmp_path):
    from nst_video.camera import Camera
    from nst_video.stylizer import Stylizer
    from nst_video.webcam import WebcamApp, load_styles
    from nst_video.webcam_loop import process_frames
    from tests.webcam_media import FakeCapture

    class Output:
        name = "stream udp://127.0.0.1:5000?pkt_size=1316"
        sent: list = []

        def send(self, rgb, captured):
            self.sent.append(captured)

    styles = load_styles(["randomstyle"])
    app = WebcamApp(Stylizer(styles[0][1], device="cpu", batch_size=1), styles, snapshot_dir=tmp_path)
    output = Output()
    app.outputs = [output]
    with Camera(FakeCapture(frames=100), (32, 24), "fake") as camera:
        process_frames(app, camera, 3, threading.Event())
        assert len(output.sent) == 3
        assert ("LIVE stream udp://127.0.0.1:5000", (255, 60, 60)) in app.overlay_lines()
        app.handle_key("v")
        process_frames(app, camera, 6, threading.Event())  # three more frames, shown but not sent
        assert app.stats.frames == 6 and len(output.sent) == 3
        assert any(text.startswith("LIVE paused (v)") for text, _ in app.overlay_lines())
        app.handle_key("v")
        process_frames(app, camera, 7, threading.Event())
        assert len(output.sent) == 4


def test_sigterm_ends_the_stream_properly_and_exits_143(tmp_path):
    """A stop signal ends a streaming session as q does: the stream flushed and closed, what was sent counted,
    and every frame sent reaches the receiver."""
    import signal

    from tests.webcam_media import Session, write_clip

    clip = write_clip(tmp_path / "cam.mp4", frames=600, fps=10, moving=True)  # a minute: still going at the signal
    proc = None
    receiver = UdpReceiver(done=lambda: proc is not None and proc.poll() is not None)
    session = Session(None, "--no-window", "--camera", clip, "--size", "64x48", "--styles", "randomstyle",
                      "--stream", receiver.url)
    proc = session.proc
    while len(receiver.frames) < 3:  # frames are arriving
        assert proc.poll() is None and time.monotonic() - receiver._started < 120, session.lines
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert session.finish() == 143
    closed = session.wait_for(f"webcam: stream {receiver.url}")
    assert " closed (" in closed, closed
    sent = int(closed.split(" closed (")[1].split()[0])
    assert len(receiver.join()) == sent

"""`webcam --virtual-camera [NAME]`: the stylized frames as a camera other programs (Zoom, Meet, Teams,
Discord, OBS, a browser) list and open.

  Linux          a v4l2loopback device (/dev/videoN), written through FFmpeg's v4l2 output (PyAV): nothing
                 to install in Python, only the kernel module (MODPROBE below)
  Windows, macOS OBS Studio's Virtual Camera, through pyvirtualcam: an optional extra
                 (`pip install 'nst-video[virtualcam]'`), not a default dependency, as its licence is the GPL-2.0

Frames go through stream_out.LiveOutput: written on their own thread, dropped (counted) where a reader
holds the device up, never slowing the live loop. Where no virtual camera can be had, `open_virtual_camera`
says what to install, in one NstError, before the camera opens."""
from __future__ import annotations

import contextlib
import errno
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from nst_video.errors import NstError, reason
from nst_video.stream_out import LiveOutput

MODPROBE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="nst-video"'
LINUX_INSTALL = ("install v4l2loopback (Debian/Ubuntu: sudo apt install v4l2loopback-dkms; Fedora: "
                 "sudo dnf install v4l2loopback) and load it: " + MODPROBE)
OTHER_INSTALL = ("install OBS Studio (its Virtual Camera is the device; start it once from OBS) and "
                 "pip install 'nst-video[virtualcam]' (pyvirtualcam, GPL-2.0)")
SYSFS = Path("/sys/class/video4linux")
AUTO = "auto"  # --virtual-camera without a name: the first loopback device (Linux) or OBS's (elsewhere)


def loopback_devices(sysfs: Path = SYSFS) -> list[tuple[str, str]]:
    """The v4l2loopback devices: (/dev/videoN, card label), in number order. A loopback device is the
    v4l2loopback module's: its sysfs node is virtual (no bus device behind it) and the module is loaded."""
    if not Path("/sys/module/v4l2loopback").exists() or not sysfs.is_dir():
        return []
    found = []
    for node in sorted(sysfs.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 1 << 30):
        if "/virtual/" in os.path.realpath(node):
            label = (node / "name").read_text().strip() if (node / "name").exists() else ""
            found.append((f"/dev/{node.name}", label))
    return found


def open_virtual_camera(name: str | None, size: tuple[int, int], fps: float = 30.0, on_event=None) -> LiveOutput:
    """The virtual camera `name` (AUTO, a /dev/videoN path or a card label on Linux; AUTO elsewhere), open
    and ready for frames; NstError where there is none, saying what to install."""
    if sys.platform.startswith("linux"):
        device = _pick_linux_device(name or AUTO)
        writer = _V4L2Writer(device, size, fps)
    else:
        writer = _PyVirtualCamWriter(size, fps)
        device = writer.device
    output = LiveOutput(f"virtual camera {device}", writer, size, on_event)
    if on_event:
        on_event(f"virtual camera on: {device} ({size[0]}x{size[1]}); choose it as the camera in the other program")
    return output


def _pick_linux_device(name: str) -> str:
    devices = loopback_devices()
    if name == AUTO:
        if not devices:
            raise NstError(f"--virtual-camera: no v4l2loopback device here; {LINUX_INSTALL}")
        return devices[0][0]
    for device, label in devices:
        if name in (device, label) or os.path.realpath(name) == device:
            return device
    if not os.path.exists(name) and name.startswith("/dev/"):
        raise NstError(f"--virtual-camera {name}: no such device; {LINUX_INSTALL}")
    known = ", ".join(f"{d} ({label})" for d, label in devices) or "none"
    raise NstError(f"--virtual-camera {name}: not a v4l2loopback device (loopback devices here: {known}); "
                   f"a real camera cannot be written to")


class _V4L2Writer:
    """Raw frames into a v4l2loopback device through FFmpeg's v4l2 output (PyAV), as YUV 4:2:0, the format
    browsers and video-call programs take."""

    def __init__(self, device: str, size: tuple[int, int], fps: float):
        import av  # here, not at the top: only Linux writes through PyAV

        self.device, self.size = device, size
        try:
            self.container = av.open(device, "w", format="v4l2")
            self.stream = self.container.add_stream("rawvideo", rate=Fraction(fps).limit_denominator(1000))
            self.stream.width, self.stream.height, self.stream.pix_fmt = size[0], size[1], "yuv420p"
            self.stream.time_base = self.stream.codec_context.time_base = Fraction(1, 1000)
            self.container.start_encoding()
        except (av.FFmpegError, OSError) as e:
            with contextlib.suppress(Exception):
                self.container.close()
            if getattr(e, "errno", None) == errno.EBUSY:
                raise NstError(f"--virtual-camera {device}: taken by another program (close it, or load "
                               "v4l2loopback with devices=2 for a second device)") from None
            if getattr(e, "errno", None) == errno.EACCES:
                raise NstError(f"--virtual-camera {device}: permission denied (add yourself to the 'video' "
                               "group: sudo usermod -aG video $USER, then log in again)") from None
            raise NstError(f"--virtual-camera {device}: cannot write to it ({reason(e)})") from None
        self._last = -1

    def write(self, rgb: np.ndarray, pts: int) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
        frame.pts, self._last = max(int(pts), self._last + 1), max(int(pts), self._last + 1)
        frame.time_base = self.stream.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()  # the device released: other programs see the camera go


class _PyVirtualCamWriter:
    """OBS Studio's Virtual Camera (Windows, macOS) through pyvirtualcam, the optional extra."""

    def __init__(self, size: tuple[int, int], fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise NstError(f"--virtual-camera needs pyvirtualcam here; {OTHER_INSTALL}") from None
        try:
            self.camera = pyvirtualcam.Camera(width=size[0], height=size[1], fps=fps, backend="obs")
        except Exception as e:  # pyvirtualcam raises RuntimeError for a missing or busy OBS camera
            raise NstError(f"--virtual-camera: OBS Virtual Camera is not available ({e}); {OTHER_INSTALL}") \
                from None
        self.device = self.camera.device

    def write(self, rgb: np.ndarray, pts: int) -> None:
        self.camera.send(np.ascontiguousarray(rgb))

    def close(self) -> None:
        self.camera.close()

"""The live camera over a WebSocket (`/live`): the page sends camera frames, the server sends them back
stylized, frame by frame, through the device worker (the Stylizer every other request uses).

Protocol (all JSON text messages have a "type"):
  page -> server  text   {"style": NAME, "strength": 0..1, "preserve_color": bool, "max_size": N} (any of them)
                  binary one frame, JPEG (or PNG/WebP)
  server -> page  text   {"type": "ready", "style", "styles", "max_size"} once; {"type": "settings", ...} after
                         a change; {"type": "frame", "style", "network", "network_ms", "width", "height",
                         "paint", "dropped"} right before each stylized frame ("paint": the size the network
                         painted at, WxH, chosen to hold LIVE_FPS as the webcam's is) ("network": "lite" or
                         "fast" where a CPU server runs the style's lite or fast network for live frames);
                         {"type": "busy",
                         "retry_after_ms"} when the worker is full;
                         {"type": "error", "message"} for a bad setting, with "frame": true for a frame
                         that could not be stylized (the connection stays open)
                  binary the stylized frame (JPEG)

Latency stays low because only the newest frame is kept: the page sends the next frame when the last one
comes back (one in flight), and should frames arrive faster anyway, the server drops all but the newest
(counted in "dropped")."""
from __future__ import annotations

import asyncio
import io
import json
import math
import time
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from nst_video.errors import NstError
from nst_video.images import encode_image, load_image
from nst_video.paint_size import PaintSizeController
from nst_video.web.catalog import StyleCatalog, use_style
from nst_video.web.httperrors import ApiError
from nst_video.web.worker import Busy, DeviceWorker
from nst_video.webcam_loop import too_slow

JPEG_QUALITY = 85
LIVE_FPS = 24.0  # the frame rate a live session's paint size is chosen to hold (a round trip is on top of it)


@dataclass
class LiveSettings:
    style: str
    strength: float = 1.0
    preserve_color: bool = False
    max_size: int = 480

    def update(self, message: dict, catalog: StyleCatalog, max_side: int) -> None:
        """Apply a settings message, all or nothing; ValueError or ApiError saying what is wrong."""
        new = LiveSettings(self.style, self.strength, self.preserve_color, self.max_size)
        if "style" in message:
            new.style = str(message["style"])
            catalog.info(new.style)  # 404-style error for an unknown one
        if "strength" in message:
            new.strength = _number(message, "strength", 0.0, 1.0)
        if "preserve_color" in message:
            if not isinstance(message["preserve_color"], bool):
                raise ValueError("preserve_color must be true or false")
            new.preserve_color = message["preserve_color"]
        if "max_size" in message:
            new.max_size = min(_number(message, "max_size", 16, None, integer=True), max_side)
        self.__dict__.update(new.__dict__)


def _number(message: dict, key: str, low: float, high: float | None, integer: bool = False) -> float | int:
    """A numeric setting, every one checked here alike: a number (or a string of one; not true/false), finite
    (JSON's 1e999 parses as infinity, and int() of it would raise where no handler expects it), whole where
    `integer`, within [low, high]; ValueError saying what is wanted."""
    value, number = message[key], None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits
            pass
    if (number is None or not math.isfinite(number) or (integer and not number.is_integer()) or number < low
            or (high is not None and number > high)):
        span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ValueError(f"{key} must be {'an integer' if integer else 'a number'} {span}, not {shown}")
    return int(number) if integer else number


class LiveSession:
    def __init__(self, websocket: WebSocket, worker: DeviceWorker, catalog: StyleCatalog, max_side: int,
                 max_frame_bytes: int):
        self.ws, self.worker, self.catalog = websocket, worker, catalog
        self.max_side, self.max_frame_bytes = max_side, max_frame_bytes
        self.settings = LiveSettings(catalog.default, max_size=min(480, max_side))
        self.latest: bytes | None = None     # the newest frame not yet stylized
        self.paint = PaintSizes()
        self.dropped = 0
        self.arrived = asyncio.Event()
        self.closed = False

    async def run(self) -> None:
        await self.ws.accept()
        await self._send({"type": "ready", "style": self.settings.style, "styles": self.catalog.names(),
                          "max_size": self.settings.max_size})
        reader = asyncio.create_task(self._read())
        try:
            while not self.closed:
                await self.arrived.wait()
                self.arrived.clear()
                frame, self.latest = self.latest, None
                if frame is not None:
                    await self._process(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):  # the page went away mid-send
            pass
        finally:
            self.closed = True
            reader.cancel()

    async def _read(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    data = message["bytes"]
                    if len(data) > self.max_frame_bytes:
                        await self._send({"type": "error", "message": f"frame too large ({len(data)} bytes; "
                                                                      f"at most {self.max_frame_bytes})"})
                        continue
                    if self.latest is not None:
                        self.dropped += 1  # a newer frame replaces one not yet begun: latency stays low
                    self.latest = data
                    self.arrived.set()
                elif message.get("text") is not None:
                    await self._configure(message["text"])
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self.closed = True
            self.arrived.set()

    async def _configure(self, text: str) -> None:
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError("a settings message is a JSON object")
            self.settings.update(message, self.catalog, self.max_side)
        except ApiError as e:
            await self._send({"type": "error", "message": e.message})
        except (ValueError, TypeError, RecursionError) as e:  # RecursionError: JSON nested too deep to parse
            await self._send({"type": "error", "message": f"bad settings message: {e}"})
        else:
            await self._send({"type": "settings", **self.settings.__dict__})

    async def _process(self, frame: bytes) -> None:
        settings = LiveSettings(**self.settings.__dict__)  # as they are now, even if they change meanwhile
        try:
            data, meta = await self.worker.run(lambda stylizer: _stylize_frame(stylizer, self.catalog, frame,
                                                                               settings, self.paint))
        except Busy as e:
            await self._send({"type": "busy", "retry_after_ms": 250 if e.retry_after <= 1 else 1000})
            return
        except (ApiError, NstError) as e:  # "frame": this frame is answered; the page sends the next
            await self._send({"type": "error", "message": getattr(e, "message", str(e)), "frame": True})
            return
        except asyncio.CancelledError:
            raise
        await self._send({"type": "frame", **meta, "dropped": self.dropped})
        if not self.closed:
            await self.ws.send_bytes(data)

    async def _send(self, message: dict) -> None:
        if not self.closed:
            await self.ws.send_text(json.dumps(message))


def _stylize_frame(stylizer, catalog: StyleCatalog, frame: bytes, settings: LiveSettings,
                   paint: PaintSizes | None = None) -> tuple[bytes, dict]:
    """On the device worker: decode, stylize (at the paint size `paint` holds for frames of this size, brought
    back up with the frame's detail, as the webcam does), encode one frame."""
    started = time.perf_counter()
    image = load_image(io.BytesIO(frame), max_size=settings.max_size, name="frame")
    height, width = image.rgb.shape[:2]
    # On a CPU a full network is not real time (docs/cpu-runtimes.md): live frames use the style's lite network
    # where one is installed, or its fast one where the lite one is timed too slow, as the webcam does; images
    # and videos keep the full one.
    lite = stylizer.device.type == "cpu"
    fast = lite and paint is not None and paint.too_slow_for_lite(stylizer, catalog, settings.style, width, height)
    use_style(stylizer, catalog, settings.style, settings.strength, settings.preserve_color, lite, fast)
    controller = paint.for_size(width, height) if paint else None
    painted = controller.size if controller else (width, height)
    network_started = time.perf_counter()
    styled = stylizer.stylize_at(image.rgb, painted[::-1])
    network_ms = (time.perf_counter() - network_started) * 1000
    out = io.BytesIO()
    encode_image(out, styled, suffix=".jpg", quality=JPEG_QUALITY)
    if controller:
        controller.update(time.perf_counter() - started)
    network = catalog.network_info(settings.style, lite, fast).architecture
    return out.getvalue(), {"style": settings.style, "network": network, "network_ms": round(network_ms, 1),
                            "width": width, "height": height, "paint": f"{painted[0]}x{painted[1]}"}


class PaintSizes:
    """A live session's paint size (nst_video/paint_size.py), chosen anew when the page's frames change size, and
    for each style and frame size whether its lite network is too slow (then its fast one paints)."""

    def __init__(self, target_fps: float = LIVE_FPS):
        self.target_fps = target_fps
        self.controller: PaintSizeController | None = None
        self._lite_too_slow: dict[tuple[str, int, int], bool] = {}

    def too_slow_for_lite(self, stylizer, catalog: StyleCatalog, style: str, width: int, height: int) -> bool:
        """Whether `style` has a fast network and its lite one cannot hold the target frame rate at the frame's
        full size: timed on this worker once per style and size (webcam_loop.too_slow, the webcam's measure)."""
        key = (style, width, height)
        if key not in self._lite_too_slow:
            lite = catalog.network_info(style, lite=True)
            has_fast = catalog.network_info(style, lite=True, fast=True) is not lite
            self._lite_too_slow[key] = has_fast and too_slow(stylizer, (lite, catalog.model(style, lite=True)),
                                                             (width, height), self.target_fps)
        return self._lite_too_slow[key]

    def for_size(self, width: int, height: int) -> PaintSizeController:
        if self.controller is None or self.controller.window != (width, height):
            self.controller = PaintSizeController((width, height), self.target_fps)
        return self.controller

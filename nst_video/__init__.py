"""nst-video: fast neural style transfer (Johnson et al., ECCV 2016) for webcam, video and images.

Data flows one way: Source -> Stylizer -> Temporal -> Sink.
  model.py      the networks (Johnson's and the lite one)
  styles.py     style files (weights + metadata) and the registry that finds them
  stylizer.py   device, batching, tiling and post-processing (strength, preserve colour)
  runtimes/     what runs the network (PyTorch, OpenVINO, ONNX Runtime); graphs.py caches exported graphs
  temporal.py   flow-guided blending against flicker
  images.py     still images in and out (PIL)
  tiling.py     pictures of any size: layer by layer in bands, with whole-picture statistics
  guided.py     stroke scale: stylize smaller, bring back up with the photo's detail
  memory.py     the memory budget: sizes, what is held and free, per-pixel estimates
  video_io.py   video files in and out (PyAV): VideoSource, VideoSink, the table of video file types
  audio_io.py   the audio a video job carries along (PyAV)
  video_job.py  the video-file job: decode, stylize and encode overlapped; a clean stop on signals
  signals.py    stop signals; report.py: the one writer of user messages
  cli.py        wires the pieces into the `nst-video` command
  web/          `nst-video serve`: the web app and HTTP API, calling the same jobs (see web/__init__.py)
"""

__version__ = "0.1.0"

"""`nst-video serve`: the web app and HTTP API. One local server (Starlette on uvicorn) whose routes call the
same jobs the CLI calls: images go through the Stylizer with images.load_image / encode_image, videos through
video_job.run_video, the live camera through the Stylizer frame by frame.

  server.py     ServeOptions and serve(): the styles, the device's workers, the socket, uvicorn, signals
  app.py        the routes (HTTP API and the page), the guard (host, origin, token), JSON errors
  uploads.py    reading uploads within size limits; the request's parameters, checked
  worker.py     DeviceWorker: the one thread that runs short work (images, live frames, thumbnails) on
                the device, from a bounded queue (full: 503 with Retry-After)
  jobs.py       VideoJobs: the bounded queue of video jobs and the thread that runs them one at a time
  catalog.py    the styles served (loaded on first use) and their thumbnails (rendered once, cached)
  live.py       the camera WebSocket: newest frame only, one in flight
  httperrors.py ApiError: a message and a status code, sent as JSON
  static/       the page (HTML, JS, CSS; no build step, nothing from a CDN) and the thumbnails' photo
"""

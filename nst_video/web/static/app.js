// nst-video's page: drop or choose images and videos, pick a style, see and download the result; or stylize the
// browser's own camera live over a WebSocket. Plain JavaScript, no build step, nothing from elsewhere.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token");
  const IMAGE_EXT = /\.(jpe?g|png|gif|bmp|webp|tiff?|ppm|pgm|pnm|tga|jp2|ico)$/i;
  const VIDEO_EXT = /\.(mp4|m4v|mov|mkv|webm|avi|ogv|ogg|flv|wmv|mpe?g|vob|ts|mts|m2ts|3gp|3g2|y4m|gifv)$/i;

  const state = { styles: [], index: 0, strength: 1, preserve: false, mode: "files", file: null, health: null };

  // A URL of the API, relative to the page (so a path prefix works), carrying the token where there is one.
  function url(path, params = {}) {
    const u = new URL(path, document.baseURI);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    if (token) u.searchParams.set("token", token);
    return u.toString();
  }

  let messageTimer = null;
  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (e) { /* not JSON */ }
    return `${response.status} ${response.statusText}`;
  }

  function style() { return state.styles[state.index] || { name: "", title: "" }; }

  function fileName(disposition, fallback) {
    const match = /filename="([^"]+)"/.exec(disposition || "");
    return match ? match[1] : fallback;
  }

  // --- the gallery and the options ---

  async function loadStyles() {
    const response = await fetch(url("styles"));
    if (!response.ok) throw new Error(await errorText(response));
    const data = await response.json();
    state.styles = data.styles;
    state.index = Math.max(0, data.styles.findIndex((s) => s.name === data.default));
    const gallery = $("gallery");
    gallery.textContent = "";
    data.styles.forEach((s, i) => {
      const card = document.createElement("button");
      card.type = "button";
      card.className = "style-card";
      card.setAttribute("role", "option");
      card.dataset.style = s.name;
      card.title = s.credit ? `${s.title}: ${s.credit}` : s.title;
      const img = document.createElement("img");
      img.src = url(s.thumbnail);
      img.alt = `${s.title} (thumbnail)`;
      img.loading = "lazy";
      card.append(img);
      if (i < 9) {
        const key = document.createElement("span");
        key.className = "key";
        key.textContent = String(i + 1);
        card.append(key);
      }
      const title = document.createElement("div");
      title.className = "title";
      title.textContent = s.title;
      const credit = document.createElement("div");
      credit.className = "credit";
      credit.textContent = s.credit;
      card.append(title, credit);
      card.addEventListener("click", () => selectStyle(i));
      gallery.append(card);
    });
    markSelected();
  }

  function markSelected() {
    document.querySelectorAll(".style-card").forEach((card, i) => {
      card.setAttribute("aria-selected", String(i === state.index));
    });
  }

  function selectStyle(i) {
    const n = state.styles.length;
    if (!n) return;
    state.index = ((i % n) + n) % n;
    markSelected();
    const card = document.querySelectorAll(".style-card")[state.index];
    if (card && card.scrollIntoView) card.scrollIntoView({ block: "nearest" });
    settingsChanged();
  }

  function setStrength(value) {
    state.strength = Math.round(Math.min(1, Math.max(0, value)) * 100) / 100;
    $("strength").value = String(state.strength);
    $("strength-value").textContent = state.strength.toFixed(2);
    settingsChanged();
  }

  function setPreserve(on) {
    state.preserve = on;
    $("preserve-color").checked = on;
    settingsChanged();
  }

  function settingsChanged() {
    if (state.mode === "files") {
      if (state.file) scheduleRestyle();
    } else {
      live.sendSettings();
    }
  }

  function maxSize() { return parseInt($("max-size").value, 10) || 0; }

  // The file and the options, as /stylize and /jobs take them.
  function uploadForm(field, file) {
    const form = new FormData();
    form.append(field, file, file.name);
    form.append("style", style().name);
    form.append("strength", String(state.strength));
    form.append("preserve_color", String(state.preserve));
    if (maxSize()) form.append("max_size", String(maxSize()));
    return form;
  }

  // --- still images ---

  let imageRequest = null;
  let restyleTimer = null;
  let resultURL = null;
  let originalURL = null;

  function scheduleRestyle() {
    clearTimeout(restyleTimer);
    restyleTimer = setTimeout(() => stylizeImage(state.file), 250);
  }

  async function stylizeImage(file) {
    if (state.health && file.size > state.health.limits.max_image_bytes) {
      showMessage(`${file.name} is too large: the server takes images up to ${state.health.limits.max_image_bytes / 1e6} MB`);
      return;
    }
    const result = $("result-image");
    if (state.file !== file || !originalURL) {
      if (originalURL) URL.revokeObjectURL(originalURL);
      originalURL = URL.createObjectURL(file);
      $("original-image").src = originalURL;
      state.file = file;
    }
    $("image-result").hidden = false;
    $("image-status").textContent = "stylizing…";
    result.dataset.ready = "0";
    if (imageRequest) imageRequest.abort();
    const controller = (imageRequest = new AbortController());
    const form = uploadForm("image", file);
    const started = performance.now();
    try {
      const response = await fetch(url("stylize"), { method: "POST", body: form, signal: controller.signal });
      if (!response.ok) throw new Error(await errorText(response));
      const blob = await response.blob();
      if (controller !== imageRequest) return;
      const name = fileName(response.headers.get("content-disposition"), "stylized.png");
      if (resultURL) URL.revokeObjectURL(resultURL);
      resultURL = URL.createObjectURL(blob);
      result.onload = () => { result.dataset.ready = "1"; };
      result.dataset.style = response.headers.get("x-style") || "";
      result.src = resultURL;
      const download = $("download-image");
      download.href = resultURL;
      download.download = name;
      download.hidden = false;
      const ms = Math.round(performance.now() - started);
      $("image-status").textContent =
        `${style().title} · ${response.headers.get("x-image-size") || ""} · ${ms} ms`;
    } catch (e) {
      if (e.name === "AbortError") return;
      $("image-status").textContent = "failed";
      showMessage(e.message);
    }
  }

  // --- video jobs ---

  function ordinal(n) { return n === 1 ? "next" : `${n}th in line`.replace(/^2th/, "2nd").replace(/^3th/, "3rd"); }

  function clock(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function createJob(file) {
    if (state.health && file.size > state.health.limits.max_video_bytes) {
      showMessage(`${file.name} is too large: the server takes videos up to ${state.health.limits.max_video_bytes / 1e6} MB`);
      return;
    }
    const el = $("job-template").content.firstElementChild.cloneNode(true);
    el.querySelector(".job-name").textContent = file.name;
    el.querySelector(".job-style").textContent = style().title;
    el.querySelector(".job-original").src = URL.createObjectURL(file);
    $("jobs").prepend(el);
    const form = uploadForm("video", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url("jobs"));
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((100 * e.loaded) / e.total);
      el.querySelector(".job-progress").value = pct;
      el.querySelector(".job-text").textContent = `uploading… ${pct}%`;
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 202 && body) {
        el.dataset.id = body.id;
        updateJob(el, body);
        pollJob(el);
      } else {
        failJob(el, (body && body.error) || `upload failed: ${xhr.status} ${xhr.statusText}`);
      }
    };
    xhr.onerror = () => failJob(el, "upload failed (the connection was lost, or the file is too large)");
    el.querySelector(".job-cancel").addEventListener("click", () => cancelJob(el, xhr));
    xhr.send(form);
  }

  function failJob(el, text) {
    el.dataset.state = "failed";
    el.querySelector(".job-text").textContent = text;
    el.querySelector(".job-cancel").textContent = "Remove";
    showMessage(text);
  }

  function updateJob(el, job) {
    el.dataset.state = job.state;
    el.querySelector(".job-progress").value = job.percent;
    const text = el.querySelector(".job-text");
    if (job.state === "queued") {
      text.textContent = `queued (${ordinal(job.queue_position || 1)})`;
    } else if (job.state === "running") {
      const parts = [`${job.frames} / ${job.total_frames ?? "?"} frames`, `${job.percent.toFixed(0)}%`];
      if (job.fps) parts.push(`${job.fps.toFixed(1)} fps`);
      if (job.eta_seconds != null) parts.push(`ETA ${clock(job.eta_seconds)}`);
      text.textContent = parts.join(" · ");
    } else if (job.state === "done") {
      text.textContent = `done: ${job.frames} frames, ${job.width}x${job.height}, ${job.seconds} s of video, in ` +
        `${clock(job.elapsed_seconds)}`;
      const result = el.querySelector(".job-result");
      if (!result.src) result.src = url(job.result_url);
      const download = el.querySelector(".job-download");
      download.href = url(job.download_url);
      download.download = job.download_name;
      download.hidden = false;
      el.querySelector(".job-cancel").textContent = "Remove";
    } else if (job.state === "failed") {
      text.textContent = `failed: ${job.error}`;
      el.querySelector(".job-cancel").textContent = "Remove";
    } else if (job.state === "cancelled") {
      text.textContent = "cancelled";
      el.querySelector(".job-cancel").textContent = "Remove";
    }
  }

  async function pollJob(el) {
    while (el.isConnected && ["queued", "running"].includes(el.dataset.state)) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      try {
        const response = await fetch(url(`jobs/${el.dataset.id}`));
        if (!response.ok) { failJob(el, await errorText(response)); return; }
        updateJob(el, await response.json());
      } catch (e) { /* the server is briefly away: try again */ }
    }
  }

  async function cancelJob(el, xhr) {
    const finished = ["done", "failed", "cancelled"].includes(el.dataset.state);
    if (!el.dataset.id) {
      xhr.abort();
      el.remove();
      return;
    }
    try {
      const response = await fetch(url(`jobs/${el.dataset.id}`), { method: "DELETE" });
      if (response.ok && !finished) updateJob(el, await response.json());
    } catch (e) { /* gone anyway */ }
    if (finished) el.remove();
  }

  function handleFiles(files) {
    for (const file of files) {
      const video = file.type.startsWith("video/") || (!file.type.startsWith("image/") && VIDEO_EXT.test(file.name));
      if (video) createJob(file);
      else stylizeImage(file); // images, and anything else: the server says what it is
    }
  }

  // --- the camera ---

  const live = {
    ws: null, stream: null, running: false, inFlight: false, original: false, frames: 0, times: [],
    sentAt: 0, latency: 0, meta: null, shownURL: null, canvas: document.createElement("canvas"),

    async start() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        showMessage("this browser gives the page no camera here: open it on localhost, or over HTTPS");
        return;
      }
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      } catch (e) {
        showMessage(`camera: ${e.message || e.name}`);
        return;
      }
      const video = $("camera-video");
      video.srcObject = this.stream;
      $("live-original").srcObject = this.stream;
      try { await video.play(); } catch (e) { /* autoplay: it plays once it can */ }
      this.running = true;
      this.frames = 0;
      this.times = [];
      $("camera-start").disabled = true;
      $("camera-stop").disabled = false;
      $("live-stats").textContent = "connecting…";
      const wsURL = new URL(url("live"));
      wsURL.protocol = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = (this.ws = new WebSocket(wsURL));
      ws.binaryType = "blob";
      ws.onopen = () => { this.sendSettings(); this.sendFrame(); };
      ws.onmessage = (event) => this.receive(event);
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        if (this.running) showMessage(`live connection closed${event.reason ? ": " + event.reason : ""}`);
        this.stop();
      };
    },

    stop() {
      this.running = false;
      this.inFlight = false;
      if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
      if (this.stream) { this.stream.getTracks().forEach((t) => t.stop()); this.stream = null; }
      $("camera-start").disabled = false;
      $("camera-stop").disabled = true;
      $("live-stats").textContent = "camera off";
    },

    sendSettings() {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.ws.send(JSON.stringify({ style: style().name, strength: state.strength, preserve_color: state.preserve,
        max_size: parseInt($("live-size").value, 10) }));
    },

    sendFrame() {
      if (!this.running || this.inFlight || this.original || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const video = $("camera-video");
      if (video.readyState < 2 || !video.videoWidth) { setTimeout(() => this.sendFrame(), 50); return; }
      const side = parseInt($("live-size").value, 10);
      const scale = Math.min(1, side / Math.max(video.videoWidth, video.videoHeight));
      const canvas = this.canvas;
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      this.inFlight = true;
      canvas.toBlob((blob) => {
        if (!blob || !this.ws || this.ws.readyState !== WebSocket.OPEN) { this.inFlight = false; return; }
        this.sentAt = performance.now();
        this.ws.send(blob);
      }, "image/jpeg", 0.85);
    },

    receive(event) {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        if (message.type === "frame") {
          this.meta = message;
        } else if (message.type === "busy") {
          this.inFlight = false;
          setTimeout(() => this.sendFrame(), message.retry_after_ms || 500);
        } else if (message.type === "error") {
          showMessage(message.message);
          if (message.frame) { this.inFlight = false; setTimeout(() => this.sendFrame(), 500); }
        }
        return;
      }
      // a stylized frame
      const now = performance.now();
      this.inFlight = false;
      this.frames += 1;
      this.latency = now - this.sentAt;
      this.times.push(now);
      while (this.times.length > 2 && now - this.times[0] > 2000) this.times.shift();
      const img = $("live-image");
      if (this.shownURL) URL.revokeObjectURL(this.shownURL);
      this.shownURL = URL.createObjectURL(event.data);
      img.src = this.shownURL;
      img.dataset.frames = String(this.frames);
      const span = (this.times[this.times.length - 1] - this.times[0]) / 1000;
      const fps = this.times.length > 1 && span > 0 ? (this.times.length - 1) / span : 0;
      const stats = $("live-stats");
      stats.dataset.fps = fps.toFixed(2);
      stats.dataset.frames = String(this.frames);
      const meta = this.meta || {};
      stats.textContent = `${meta.style || style().name} · ${fps.toFixed(1)} fps · latency ${Math.round(this.latency)} ms` +
        (meta.network_ms != null ? ` · network ${Math.round(meta.network_ms)} ms` : "") +
        (meta.width ? ` · ${meta.width}x${meta.height}` : "") + ` · ${this.frames} frames`;
      this.sendFrame();
    },

    toggleOriginal() {
      this.original = !this.original;
      $("live-image").hidden = this.original;
      $("live-original").hidden = !this.original;
      $("live-caption").textContent = this.original ? "Original (space: stylized)" : "Stylized";
      if (!this.original) this.sendFrame();
    },
  };

  // --- modes, keys, dropping ---

  function setMode(mode) {
    state.mode = mode;
    const camera = mode === "camera";
    $("files-panel").hidden = camera;
    $("camera-panel").hidden = !camera;
    $("size-control").hidden = camera;
    $("live-size-control").hidden = !camera;
    $("mode-files").classList.toggle("active", !camera);
    $("mode-camera").classList.toggle("active", camera);
    $("mode-files").setAttribute("aria-pressed", String(!camera));
    $("mode-camera").setAttribute("aria-pressed", String(camera));
    if (!camera) live.stop();
  }

  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (target.matches("select, textarea, input[type=text], input[type=number]")) return;
    const arrowsTaken = target.matches("input[type=range]");
    const k = e.key;
    if (k === "n" || (k === "ArrowRight" && !arrowsTaken)) selectStyle(state.index + 1);
    else if (k === "p" || (k === "ArrowLeft" && !arrowsTaken)) selectStyle(state.index - 1);
    else if (/^[1-9]$/.test(k)) { if (+k <= state.styles.length) selectStyle(+k - 1); }
    else if (k === "+" || k === "=") setStrength(state.strength + 0.1);
    else if (k === "-" || k === "_") setStrength(state.strength - 0.1);
    else if (k === "c") setPreserve(!state.preserve);
    else if (k === " " && state.mode === "camera" && live.running) live.toggleOriginal();
    else return;
    e.preventDefault();
  });

  const zone = $("drop-zone");
  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) handleFiles(e.dataTransfer.files);
  });
  // A file dropped beside the zone is not opened by the browser in place of the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter") $("file-input").click(); });
  $("file-input").addEventListener("change", (e) => {
    handleFiles(e.target.files);
    e.target.value = "";
  });

  $("strength").addEventListener("input", (e) => setStrength(parseFloat(e.target.value)));
  $("preserve-color").addEventListener("change", (e) => setPreserve(e.target.checked));
  $("max-size").addEventListener("change", settingsChanged);
  $("live-size").addEventListener("change", settingsChanged);
  $("mode-files").addEventListener("click", () => setMode("files"));
  $("mode-camera").addEventListener("click", () => setMode("camera"));
  $("camera-start").addEventListener("click", () => live.start());
  $("camera-stop").addEventListener("click", () => live.stop());

  async function init() {
    try {
      const response = await fetch(url("health"));
      if (response.ok) {
        state.health = await response.json();
        $("server-info").textContent = `${state.health.backend}`;
        if (state.health.device !== "cpu") $("live-size").value = "480";
      }
      await loadStyles();
      document.body.dataset.ready = "1";
    } catch (e) {
      showMessage(`cannot reach the server: ${e.message}`);
    }
  }
  init();
})();

// CityWatch web page: login, camera tiles with live view, playback with a purpose.
"use strict";

const api = (path, opts = {}) =>
  fetch("/api/v1" + path, { credentials: "same-origin", ...opts }).then(async (r) => {
    if (r.status === 204) return null;
    const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
    if (!r.ok) throw Object.assign(new Error(body.detail || r.statusText), { status: r.status, body });
    return body;
  });

const $ = (sel) => document.querySelector(sel);
let me = null;
let cameras = [];
const players = new Map(); // camera id -> {close()}

function show(view) {
  $("#login-view").hidden = view !== "login";
  $("#app-view").hidden = view !== "app";
  $("#logout").hidden = view !== "app";
}

async function boot() {
  try {
    me = await api("/auth/me");
  } catch (e) {
    show("login");
    return;
  }
  $("#who").textContent = `${me.username} (${me.role})`;
  $("#tab-add").hidden = !me.permissions.includes("camera.manage");
  document.querySelector('[data-tab="playback"]').hidden = !me.permissions.includes("playback");
  show("app");
  await refreshCameras();
  setInterval(refreshStatus, 3000);
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await api("/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: f.get("username"), password: f.get("password") }),
    });
    $("#login-error").textContent = "";
    boot();
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/auth/logout", { method: "POST" }).catch(() => {});
  location.reload();
});

document.querySelectorAll("nav button").forEach((b) =>
  b.addEventListener("click", () => {
    document.querySelectorAll("nav button").forEach((x) => x.classList.toggle("active", x === b));
    document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== b.dataset.tab));
  })
);

async function refreshCameras() {
  const page = await api("/cameras?limit=1000");
  cameras = page.items;
  const tiles = $("#tiles");
  for (const cam of cameras) {
    if (document.getElementById("tile-" + cam.id)) continue;
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.id = "tile-" + cam.id;
    tile.innerHTML = `<video muted autoplay playsinline></video>
      <div class="meta"><span class="name"></span><span class="state"></span></div>`;
    tile.querySelector(".name").textContent = `${cam.name} (${cam.id})`;
    tiles.appendChild(tile);
    players.set(cam.id, startLive(cam.id, tile));
  }
  const sel = $("#pb-camera");
  sel.innerHTML = "";
  for (const cam of cameras) sel.add(new Option(`${cam.name} (${cam.id})`, cam.id));
  updateStates();
}

async function refreshStatus() {
  try {
    cameras = (await api("/cameras?limit=1000")).items;
    updateStates();
  } catch (e) {
    if (e.status === 401) location.reload();
  }
}

function updateStates() {
  for (const cam of cameras) {
    const el = document.querySelector(`#tile-${CSS.escape(cam.id)} .state`);
    if (!el) continue;
    const h = cam.health;
    el.textContent = h.state + (h.state === "online" ? ` ${h.fps.toFixed(1)} fps` : "");
    el.className = "state " + h.state;
    el.title = h.last_error || "";
  }
}

// Live view: fMP4 fragments over a WebSocket into Media Source Extensions, or, where
// MSE or the codec is missing, an MJPEG <img>.
function startLive(cameraId, tile) {
  const video = tile.querySelector("video");
  if (!window.MediaSource) return mjpegFallback(cameraId, tile);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  let ws, ms, sb, queue = [], closed = false;

  function codecOf(init) {
    const u8 = new Uint8Array(init);
    for (let i = 0; i + 8 < u8.length; i++) {
      if (u8[i] === 0x61 && u8[i + 1] === 0x76 && u8[i + 2] === 0x63 && u8[i + 3] === 0x43) {
        const hex = (b) => b.toString(16).padStart(2, "0");
        return "avc1." + hex(u8[i + 5]) + hex(u8[i + 6]) + hex(u8[i + 7]);
      }
    }
    return null;
  }
  function pump() {
    if (!sb || sb.updating || !queue.length) return;
    try {
      sb.appendBuffer(queue.shift());
    } catch (e) {
      // The buffer is unusable (full, or the stream changed): start over.
      reset();
      if (ws) ws.close(); // onclose reconnects and the server sends a fresh init segment
    }
  }
  function reset() {
    sb = null;
    queue = [];
  }
  function onInit(init) {
    const codec = codecOf(init);
    const mime = `video/mp4; codecs="${codec}"`;
    if (!codec || !MediaSource.isTypeSupported(mime)) {
      ws.close();
      closed = true;
      mjpegFallback(cameraId, tile);
      return;
    }
    ms = new MediaSource();
    video.src = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      sb = ms.addSourceBuffer(mime);
      sb.mode = "segments";
      const mine = sb;
      mine.addEventListener("updateend", () => {
        if (sb !== mine) return; // a newer stream replaced this buffer
        // Stay near the live edge, and keep the buffer short.
        const b = sb.buffered;
        if (b.length) {
          const end = b.end(b.length - 1);
          if (end - video.currentTime > 1.5) video.currentTime = end - 0.2;
          if (!sb.updating && video.currentTime - b.start(0) > 30) {
            sb.remove(b.start(0), video.currentTime - 10);
            return;
          }
        }
        pump();
      });
      queue.unshift(init);
      pump();
      video.play().catch(() => {});
    }, { once: true });
  }
  function connect() {
    ws = new WebSocket(`${proto}://${location.host}/api/v1/cameras/${encodeURIComponent(cameraId)}/live`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return; // hello: {"camera", "codec"}
      const u8 = new Uint8Array(ev.data, 4, 4);
      const isInit = String.fromCharCode(...u8) === "ftyp";
      if (isInit) {
        reset();
        onInit(ev.data);
      } else {
        queue.push(ev.data);
        pump();
      }
    };
    ws.onclose = () => {
      if (!closed) setTimeout(connect, 2000);
    };
  }
  connect();
  return { close() { closed = true; ws && ws.close(); } };
}

function mjpegFallback(cameraId, tile) {
  const img = document.createElement("img");
  img.alt = `live view of ${cameraId}`;
  img.src = `/api/v1/cameras/${encodeURIComponent(cameraId)}/live.mjpeg?width=640`;
  tile.querySelector("video").replaceWith(img);
  return { close() { img.src = ""; } };
}

// Playback ----------------------------------------------------------------------------
function rangeFromForm() {
  const f = new FormData($("#playback-form"));
  const start = Date.parse(f.get("start") + "Z") / 1000;
  const end = start + Number(f.get("minutes")) * 60;
  const q = new URLSearchParams({ start, end, purpose: f.get("purpose") });
  if (f.get("case_ref")) q.set("case_ref", f.get("case_ref"));
  return { camera: f.get("camera"), start, end, q };
}

async function drawTimeline(camera, start, end) {
  const t = await api(`/cameras/${encodeURIComponent(camera)}/timeline?start=${start}&end=${end}`);
  const bar = $("#timeline");
  bar.innerHTML = "";
  for (const r of t.recorded) {
    const d = document.createElement("div");
    d.className = "rec";
    d.style.left = (100 * (Math.max(r.start_ts, start) - start)) / (end - start) + "%";
    d.style.width = (100 * (Math.min(r.end_ts, end) - Math.max(r.start_ts, start))) / (end - start) + "%";
    bar.appendChild(d);
  }
  bar.onclick = (ev) => {
    const rect = bar.getBoundingClientRect();
    const frac = (ev.clientX - rect.left) / rect.width;
    const at = start + frac * (end - start);
    play(camera, at, end);
  };
}

function play(camera, start, end) {
  const { q } = rangeFromForm();
  q.set("start", start);
  q.set("end", end);
  const url = `/api/v1/cameras/${encodeURIComponent(camera)}/playback.mp4?${q}`;
  const video = $("#pb-video");
  $("#pb-error").textContent = "";
  fetch(url, { method: "GET", credentials: "same-origin" }).then(async (r) => {
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      $("#pb-error").textContent = body.detail || r.statusText;
      return;
    }
    const blob = await r.blob();
    video.src = URL.createObjectURL(blob);
    video.play().catch(() => {});
  }).catch((e) => {
    $("#pb-error").textContent = "playback failed: " + e.message;
  });
}

$("#playback-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const { camera, start, end } = rangeFromForm();
  try {
    await drawTimeline(camera, start, end);
  } catch (e) {
    $("#pb-error").textContent = e.message;
  }
  play(camera, start, end);
});

$("#pb-download").addEventListener("click", () => {
  const form = $("#playback-form");
  if (!form.reportValidity()) return;
  const { camera, q } = rangeFromForm();
  q.set("download", "true");
  location.href = `/api/v1/cameras/${encodeURIComponent(camera)}/playback.mp4?${q}`;
});

$("#add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {
    id: f.get("id"),
    name: f.get("name"),
    main_stream: { url: f.get("url"), username: f.get("username") || null, password: f.get("password") || null },
    purpose: f.get("purpose"),
    legal_basis: f.get("legal_basis"),
    location: { address: f.get("address") || "" },
  };
  try {
    await api("/cameras", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    $("#add-msg").textContent = `Camera ${body.id} added.`;
    ev.target.reset();
    refreshCameras();
  } catch (e) {
    $("#add-msg").textContent = e.message;
  }
});

// Default the playback start to 10 minutes ago (UTC).
(() => {
  const d = new Date(Date.now() - 10 * 60 * 1000);
  document.querySelector('#playback-form [name="start"]').value = d.toISOString().slice(0, 19);
})();

boot();

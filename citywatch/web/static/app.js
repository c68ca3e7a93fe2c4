// CityWatch web page: login, camera tiles with live view and track overlays, alerts,
// events, counts, the zone/line editor, and playback with a purpose.
"use strict";

const api = (path, opts = {}) =>
  fetch("/api/v1" + path, { credentials: "same-origin", ...opts }).then(async (r) => {
    if (r.status === 204) return null;
    const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
    if (!r.ok) throw Object.assign(new Error(body.detail || r.statusText), { status: r.status, body });
    return body;
  });
const sendJson = (path, method, body) =>
  api(path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const wsUrl = (path) => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1${path}`;
const enc = encodeURIComponent;

const $ = (sel) => document.querySelector(sel);
let me = null;
let cameras = [];
const players = new Map(); // camera id -> {close()}
const overlays = new Map(); // camera id -> track overlay of its tile
const can = (permission) => !!me && me.permissions.includes(permission);

// Small DOM helper: h("li", {class: "x", onclick: f}, "text", child, ...).
function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c);
  return e;
}
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

// Times: the page speaks UTC, like the playback form.
const iso = (ts) => new Date(ts * 1000).toISOString();
const clock = (ts) => iso(ts).slice(11, 19);
const stamp = (ts) => iso(ts).slice(0, 10) + " " + clock(ts) + " UTC";
const toInput = (ts) => iso(ts).slice(0, 19);
const fromInput = (v) => (v ? Date.parse(v + "Z") / 1000 : null);
function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
const camName = (id) => {
  const c = cameras.find((x) => x.id === id);
  return c ? `${c.name} (${id})` : id;
};
const timeEl = (ts, text) => h("time", { datetime: iso(ts), title: stamp(ts) }, text ?? clock(ts));

function show(view) {
  $("#login-view").hidden = view !== "login";
  $("#app-view").hidden = view !== "app";
  $("#logout").hidden = view !== "app";
}

let booted = false;
async function boot() {
  try {
    me = await api("/auth/me");
  } catch (e) {
    show("login");
    return;
  }
  $("#who").textContent = `${me.username} (${me.role})`;
  $("#tab-add").hidden = !can("camera.manage");
  $("#tab-zones").hidden = !can("camera.manage");
  document.querySelector('[data-tab="playback"]').hidden = !can("playback");
  $("#alerts-panel").hidden = !can("live.view");
  $("#ed-play").hidden = !can("playback");
  $("#tab-plates").hidden = !can("search");
  $("#tab-hotlists").hidden = !can("search");
  if (!mayEditHotlists()) document.querySelectorAll(".hl-edit").forEach((e) => (e.hidden = true));
  $("#tab-authorisations").hidden = !mayAuthorisations();
  $("#tab-watchlists").hidden = !can("faces.watchlist");
  $("#tab-facesearch").hidden = !can("faces.request");
  $("#tab-cases").hidden = !can("case.manage");
  $("#review-panel").hidden = !can("faces.review");
  $("#au-new").hidden = !can("faces.request");
  show("app");
  await refreshCameras();
  if (booted) return;
  booted = true;
  setInterval(refreshStatus, 3000);
  if (can("live.view")) {
    loadAlerts();
    startFeed();
  }
  if (can("faces.review")) loadCandidates();
  // The authority and auditors have no live view: they start where their work is.
  if (!can("live.view") && mayAuthorisations()) showTab("authorisations");
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

// Tabs ----------------------------------------------------------------------------------
const onTab = {}; // tab id -> called when the tab is shown
function showTab(name) {
  document.querySelectorAll("nav button").forEach((x) => {
    x.classList.toggle("active", x.dataset.tab === name);
    if (x.dataset.tab === name) x.setAttribute("aria-current", "page");
    else x.removeAttribute("aria-current");
  });
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== name));
  onTab[name]?.();
}
document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

async function refreshCameras() {
  const page = await api("/cameras?limit=1000");
  cameras = page.items;
  const tiles = $("#tiles");
  for (const cam of cameras) {
    if (document.getElementById("tile-" + cam.id)) continue;
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.id = "tile-" + cam.id;
    tile.innerHTML = `<div class="view"><video muted autoplay playsinline></video>
      <canvas class="overlay" aria-hidden="true" data-boxes="0" data-frames="0" data-ws="off"></canvas></div>
      <div class="meta"><span class="name"></span><span class="state"></span></div>`;
    tile.querySelector(".name").textContent = `${cam.name} (${cam.id})`;
    tiles.appendChild(tile);
    players.set(cam.id, can("live.view") ? startLive(cam.id, tile) : noLive(tile));
    overlays.set(cam.id, trackOverlay(cam, tile));
  }
  fillCameraSelect($("#pb-camera"), false);
  fillCameraSelect($("#ev-camera"), true);
  fillCameraSelect($("#ze-camera"), false);
  fillCameraSelect($("#pl-camera"), true);
  updateStates();
}

function fillCameraSelect(sel, withAll) {
  const keep = sel.value;
  sel.innerHTML = "";
  if (withAll) sel.add(new Option("All cameras", ""));
  for (const cam of cameras) sel.add(new Option(`${cam.name} (${cam.id})`, cam.id));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
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
    overlays.get(cam.id)?.setConfig(cam.analytics);
    const el = document.querySelector(`#tile-${CSS.escape(cam.id)} .state`);
    if (!el) continue;
    const health = cam.health;
    el.textContent = health.state + (health.state === "online" ? ` ${health.fps.toFixed(1)} fps` : "");
    el.className = "state " + health.state;
    el.title = health.last_error || "";
  }
  const names = new Set();
  for (const cam of cameras) for (const x of [...cam.analytics.zones, ...cam.analytics.lines]) names.add(x.name);
  const list = $("#ev-zones");
  if (list.dataset.names !== [...names].join("\n")) {
    list.dataset.names = [...names].join("\n");
    list.replaceChildren(...[...names].sort().map((n) => new Option(n)));
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

// Roles without live.view (the authority, auditors) see the camera, not its picture.
function noLive(tile) {
  tile.querySelector("video").replaceWith(h("div", { class: "no-live muted" }, "No live view for your role"));
  return { close() {} };
}

function mjpegFallback(cameraId, tile) {
  const img = document.createElement("img");
  img.alt = `live view of ${cameraId}`;
  img.src = `/api/v1/cameras/${encodeURIComponent(cameraId)}/live.mjpeg?width=640`;
  tile.querySelector("video").replaceWith(img);
  return { close() { img.src = ""; } };
}


// Drawing over pictures ----------------------------------------------------------------
// Zones, lines, boxes and paths are in fractions of the picture (0..1); a canvas lies over
// the <video>/<img> and is redrawn in CSS pixels at the device's resolution.
const ZONE_COLOURS = ["#58a6ff", "#d2a8ff", "#e3b341", "#56d364", "#ff9bce", "#79c0ff", "#ffa657"];
const CLASS_COLOURS = { person: "#56d364", bicycle: "#e3b341", motorcycle: "#e3b341" };
const VEHICLE_COLOUR = "#58a6ff";

function fitCanvas(canvas) {
  const w = canvas.clientWidth, hgt = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
  const pw = Math.max(1, Math.round(w * dpr)), ph = Math.max(1, Math.round(hgt * dpr));
  if (canvas.width !== pw || canvas.height !== ph) {
    canvas.width = pw;
    canvas.height = ph;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  return { ctx, w, h: hgt };
}

// Where the picture lies in its element (object-fit: contain letterboxes it).
function pictureRect(media, w, hgt) {
  const mw = media?.videoWidth || media?.naturalWidth || 0;
  const mh = media?.videoHeight || media?.naturalHeight || 0;
  if (!mw || !mh) return { x: 0, y: 0, w, h: hgt };
  const s = Math.min(w / mw, hgt / mh);
  return { x: (w - mw * s) / 2, y: (hgt - mh * s) / 2, w: mw * s, h: mh * s };
}

function tag(ctx, text, x, y, bg, fg = "#0d1116") {
  ctx.font = "600 12px system-ui, sans-serif";
  const tw = ctx.measureText(text).width + 8;
  const bx = Math.min(Math.max(0, x), ctx.canvas.clientWidth - tw);
  const by = Math.max(0, y - 16);
  ctx.fillStyle = bg;
  ctx.fillRect(bx, by, tw, 16);
  ctx.fillStyle = fg;
  ctx.textBaseline = "middle";
  ctx.fillText(text, bx + 4, by + 8.5);
}

function sideLabel(ctx, text, x, y, colour) {
  ctx.beginPath();
  ctx.arc(x, y, 8, 0, 2 * Math.PI);
  ctx.fillStyle = "rgba(13,17,22,.8)";
  ctx.fill();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.fillStyle = colour;
  ctx.font = "700 11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x, y + 0.5);
  ctx.textAlign = "start";
}

function drawZone(ctx, r, zone, colour, opts = {}) {
  const pts = zone.polygon.map(([x, y]) => [r.x + x * r.w, r.y + y * r.h]);
  ctx.beginPath();
  pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  if (!opts.open) ctx.closePath();
  ctx.globalAlpha = opts.open ? 0 : opts.selected ? 0.3 : 0.16;
  ctx.fillStyle = colour;
  ctx.fill();
  ctx.globalAlpha = 1;
  ctx.strokeStyle = colour;
  ctx.lineWidth = opts.selected ? 3 : 1.5;
  ctx.setLineDash(opts.open ? [6, 4] : []);
  ctx.stroke();
  ctx.setLineDash([]);
  if (opts.handles) for (const [x, y] of pts) ctx.fillRect(x - 3, y - 3, 6, 6);
  if (zone.name && pts.length) {
    const top = pts.reduce((a, b) => (b[1] < a[1] ? b : a));
    tag(ctx, zone.name, top[0], top[1], colour);
  }
}

function drawLine(ctx, r, line, colour, opts = {}) {
  const [ax, ay] = [r.x + line.a[0] * r.w, r.y + line.a[1] * r.h];
  const [bx, by] = [r.x + line.b[0] * r.w, r.y + line.b[1] * r.h];
  ctx.strokeStyle = colour;
  ctx.lineWidth = opts.selected ? 4 : 2.5;
  ctx.beginPath();
  ctx.moveTo(ax, ay);
  ctx.lineTo(bx, by);
  ctx.stroke();
  ctx.fillStyle = colour;
  for (const [x, y] of [[ax, ay], [bx, by]]) {
    ctx.beginPath();
    ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  // Side A is on the right hand of someone walking from a to b (analytics/zones.py):
  // in image coordinates (y down) that is the direction (-dy, dx).
  const len = Math.hypot(bx - ax, by - ay) || 1;
  const nx = -(by - ay) / len, ny = (bx - ax) / len;
  const mx = (ax + bx) / 2, my = (ay + by) / 2;
  sideLabel(ctx, "A", mx + nx * 16, my + ny * 16, colour);
  sideLabel(ctx, "B", mx - nx * 16, my - ny * 16, colour);
  if (line.name) tag(ctx, line.name, ax + 6, ay - 4, colour);
}

function drawGeometry(ctx, r, cfg, selected = null) {
  let i = 0;
  for (const z of cfg.zones || []) drawZone(ctx, r, z, ZONE_COLOURS[i++ % ZONE_COLOURS.length], { selected: z === selected });
  for (const ln of cfg.lines || []) drawLine(ctx, r, ln, ZONE_COLOURS[i++ % ZONE_COLOURS.length], { selected: ln === selected });
}

function drawBox(ctx, r, box, text, colour, dashed = false) {
  const [x1, y1, x2, y2] = box;
  const x = r.x + x1 * r.w, y = r.y + y1 * r.h;
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.setLineDash(dashed ? [5, 3] : []);
  ctx.strokeRect(x, y, (x2 - x1) * r.w, (y2 - y1) * r.h);
  ctx.setLineDash([]);
  if (text) tag(ctx, text, x, y, colour);
}

// A live tile's overlay: the camera's zones and lines, and the boxes of its tracks from
// /live?types=tracks&camera=ID. The WebSocket is open only while the tile is on screen.
const STALE_MS = 2000;
// Closing a socket that is still connecting makes the browser log an error: wait for it.
function hangUp(sock) {
  if (sock.readyState === WebSocket.CONNECTING) sock.addEventListener("open", () => sock.close());
  else sock.close();
}
const tileSeen = new IntersectionObserver((entries) => {
  for (const e of entries) overlays.get(e.target.dataset.camera)?.visible(e.isIntersecting);
});
document.addEventListener("visibilitychange", () => overlays.forEach((o) => o.update()));

function trackOverlay(cam, tile) {
  const canvas = tile.querySelector("canvas.overlay");
  let cfg = cam.analytics, cfgKey = JSON.stringify(cfg);
  let boxes = [], at = 0, ws = null, onScreen = false, staleTimer = null, retry = null;

  function draw() {
    const { ctx, w, h: hgt } = fitCanvas(canvas);
    const r = pictureRect(tile.querySelector(".view video, .view img"), w, hgt);
    if (!cfg.enabled) {
      canvas.dataset.boxes = "0";
      return;
    }
    drawGeometry(ctx, r, cfg);
    const live = Date.now() - at < STALE_MS ? boxes : [];
    for (const b of live) {
      const colour = CLASS_COLOURS[b.class] || VEHICLE_COLOUR;
      drawBox(ctx, r, b.box, `${b.class} #${b.id}`, colour, b.stationary);
    }
    canvas.dataset.boxes = String(live.length);
  }
  const wanted = () => onScreen && !document.hidden && cfg.enabled && can("live.view");
  function update() {
    if (wanted() && !ws) connect();
    else if (!wanted() && ws) {
      hangUp(ws);
      ws = null;
      canvas.dataset.ws = "off";
      boxes = [];
      draw();
    }
  }
  function connect() {
    clearTimeout(retry);
    const sock = new WebSocket(wsUrl(`/live?types=tracks&camera=${enc(cam.id)}`));
    ws = sock;
    canvas.dataset.ws = "connecting";
    sock.onopen = () => { if (ws === sock) canvas.dataset.ws = "open"; };
    sock.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type !== "tracks" || ws !== sock) return;
      boxes = m.boxes;
      at = Date.now();
      canvas.dataset.frames = String(Number(canvas.dataset.frames) + 1);
      draw();
      clearTimeout(staleTimer);
      staleTimer = setTimeout(draw, STALE_MS + 50); // boxes vanish when analysis goes quiet
    };
    sock.onclose = () => {
      if (ws !== sock) return; // closed on purpose
      ws = null;
      canvas.dataset.ws = "off";
      retry = setTimeout(update, 2000);
    };
  }
  tile.dataset.camera = cam.id;
  tileSeen.observe(tile);
  new ResizeObserver(draw).observe(canvas);
  for (const type of ["loadedmetadata", "resize", "load"]) tile.querySelector(".view").addEventListener(type, draw, true);
  return {
    visible(v) { onScreen = v; update(); },
    update,
    setConfig(next) {
      const key = JSON.stringify(next);
      if (key === cfgKey) return;
      cfg = next;
      cfgKey = key;
      update();
      draw();
    },
  };
}

// Alerts and the live feed ---------------------------------------------------------------
const MAX_ALERTS = 200;
const alertItems = new Map(); // alert id -> <li>

function describe(kind, zone, direction) {
  switch (kind) {
    case "enter": return `entered ${zone}`;
    case "leave": return `left ${zone}`;
    case "dwell": return `loitering in ${zone}`;
    case "cross": return `crossed ${zone}${direction ? " " + direction : ""}`;
    default: return "seen";
  }
}

// The list API nests class/zone/direction in `details`; the feed sends them flat.
const normAlert = (a) => ({ ...a, ...(a.details || {}) });

function addAlert(raw, source) {
  const a = normAlert(raw);
  if (alertItems.has(a.id)) return;
  const li = h("li", {
    class: `alert prio-${a.priority}` + (source === "feed" ? " fresh" : ""),
    dataset: { id: a.id, ts: a.ts, source, received: Date.now(), raisedAt: a.raised_at ?? "", kind: a.kind },
  });
  const what = a.kind === "hotlist" ? plateHitText(a)
    : a.kind === "face" ? faceHitText(a)
    : `${a.class || "object"} ${describe(a.kind, a.zone, a.direction)}`;
  const open = h("button", {
    type: "button",
    class: "open",
    disabled: a.event_id == null,
    title: a.event_id == null ? "no event recorded" : "show the event",
    "aria-label": `${a.priority} alert: ${a.rule}, ${what}, ${camName(a.camera_id)}, ${stamp(a.ts)}. Show the event.`,
    onclick: () => openEvent(a.event_id),
  },
    h("span", { class: "prio" }, a.priority),
    h("span", { class: "rule" }, a.rule),
    timeEl(a.ts),
    h("span", { class: "what" }, what),
    h("span", { class: "where" }, camName(a.camera_id)),
  );
  li.append(open);
  const hit = a.kind === "hotlist" ? plateHit(a) : a.kind === "face" ? faceHit(a) : null;
  if (hit) li.append(hit);
  if (a.acknowledged_at) markAcked(li, a.acknowledged_by);
  else li.append(h("button", { type: "button", class: "ack", onclick: () => acknowledge(a.id, li) }, "Acknowledge"));
  // Newest first, by the time it happened.
  const list = $("#alerts-list");
  const after = [...list.children].find((x) => Number(x.dataset.ts) < a.ts);
  list.insertBefore(li, after || null);
  alertItems.set(a.id, li);
  while (list.children.length > MAX_ALERTS) {
    const last = list.lastElementChild;
    alertItems.delete(Number(last.dataset.id));
    last.remove();
  }
  countAlerts();
  if (source === "feed") flashTile(a.camera_id);
}

// A hotlist hit: the plate read, its crop and a playback link (crops need the search
// permission, playback the playback permission: shown only to those who have them).
function plateHitText(a) {
  const near = a.confusions ? ` (listed as ${a.entry}, ${a.confusions} OCR confusion)` : "";
  return `plate ${a.plate} on “${a.hotlist}”${near}`;
}

function plateHit(a) {
  const crop = a.crop && can("search")
    ? h("img", { class: "plate-crop", src: a.crop, alt: `plate ${a.plate}`, title: a.reason || "" })
    : null;
  const at = a.playback ? new URL(a.playback, location.origin).searchParams : null;
  const play = at && can("playback")
    ? h("button", { type: "button", class: "play", "aria-label": `Play ${camName(a.camera_id)} at ${stamp(a.ts)}`,
                    onclick: () => playAt(a.camera_id, Number(at.get("start")), Number(at.get("end")), null) }, "Play")
    : null;
  const attach = attachButton("alert", a.id, `the alert for plate ${a.plate}`);
  return crop || play || attach ? h("div", { class: "plate-hit" }, crop, play, attach) : null;
}

function markAcked(li, by) {
  li.classList.add("acked");
  li.querySelector(".ack")?.remove();
  li.append(h("span", { class: "acked-note" }, by && by !== me?.username ? `ack'd by ${by}` : "acknowledged"));
}

async function acknowledge(id, li) {
  const btn = li.querySelector(".ack");
  btn.disabled = true;
  try {
    const a = await api(`/alerts/${id}/ack`, { method: "POST" });
    markAcked(li, a.acknowledged_by);
    $("#alerts-error").textContent = "";
  } catch (e) {
    btn.disabled = false;
    $("#alerts-error").textContent = `Could not acknowledge: ${e.message}`;
  }
  countAlerts();
}

function countAlerts() {
  const open = document.querySelectorAll("#alerts-list .alert:not(.acked)").length;
  const badge = $("#alerts-count");
  badge.textContent = String(open);
  badge.classList.toggle("hot", open > 0);
  $("#alerts-empty").hidden = $("#alerts-list").children.length > 0;
}

function flashTile(cameraId) {
  const tile = document.getElementById("tile-" + cameraId);
  if (!tile) return;
  tile.classList.add("alerting");
  clearTimeout(tile._flash);
  tile._flash = setTimeout(() => tile.classList.remove("alerting"), 4000);
}

async function loadAlerts() {
  try {
    const page = await api("/alerts?unacknowledged=true&limit=100");
    for (const a of page.items) addAlert(a, "list");
    countAlerts();
  } catch (e) {
    $("#alerts-error").textContent = `Alerts unavailable: ${e.message}`;
  }
}

// One WebSocket for alerts and event starts/ends; it reconnects and then re-reads the
// alert list so that nothing raised in between is missed.
function startFeed() {
  const state = $("#feed-state");
  let first = true;
  function connect() {
    // Reviewers also get candidate face matches and their reviews (the server sends them
    // to reviewers only).
    const types = "alert,event.start,event.end" + (can("faces.review") ? ",face.candidate,face.review" : "");
    const ws = new WebSocket(wsUrl("/live?types=" + types));
    ws.onopen = () => {
      state.textContent = "live";
      state.classList.add("open");
      if (!first) {
        loadAlerts();
        if (can("faces.review")) loadCandidates();
      }
      first = false;
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "alert") addAlert(m, "feed");
      else if (m.type === "event.start" || m.type === "event.end") eventNews(m);
      else if (m.type === "face.candidate" || m.type === "face.review") showCandidate(m, "feed");
    };
    ws.onclose = () => {
      state.textContent = "reconnecting";
      state.classList.remove("open");
      setTimeout(connect, 3000);
    };
  }
  connect();
}

// Events -------------------------------------------------------------------------------
const EVENTS_PAGE = 24;
const evState = { offset: 0, total: 0, loaded: false, fresh: 0 };
const snapshotUrl = (id, full = false) => `/api/v1/events/${id}/snapshot.jpg${full ? "?full=true" : ""}`;

function eventQuery() {
  const f = new FormData($("#events-form"));
  const q = new URLSearchParams({ offset: evState.offset, limit: EVENTS_PAGE });
  for (const k of ["camera", "class", "zone"]) if (f.get(k)) q.set(k, f.get(k).trim());
  for (const k of ["start", "end"]) if (f.get(k)) q.set(k, fromInput(f.get(k)));
  return q;
}

function placeChips(e) {
  return [
    ...e.zones.map((z) => h("span", { class: "chip", title: "entered zone" }, z)),
    ...e.crossings.map((c) => h("span", { class: "chip line", title: `crossed at ${stamp(c.ts)}` }, `${c.line} ${c.direction}`)),
  ];
}

function eventCard(e) {
  const when = e.end_ts == null
    ? [timeEl(e.start_ts), " – ", h("span", { class: "ongoing" }, "ongoing")]
    : [timeEl(e.start_ts), " – ", timeEl(e.end_ts), " ", h("span", { class: "dur" }, `(${span(e.end_ts - e.start_ts)})`)];
  const label = `${e.class} #${e.track_id}, ${camName(e.camera_id)}, ${stamp(e.start_ts)}`;
  const thumb = e.has_snapshot && can("live.view")
    ? h("img", { class: "thumb", src: snapshotUrl(e.id), alt: `picture of ${e.class} #${e.track_id}`, loading: "lazy" })
    : h("span", { class: "thumb" }, "no picture");
  return h("li", {},
    h("button", { type: "button", class: "ev-card", dataset: { id: e.id, ended: e.end_ts == null ? "0" : "1" },
                  "aria-label": `Event: ${label}`, onclick: () => openEvent(e.id) },
      thumb,
      h("span", { class: "title" }, `${e.class} #${e.track_id} `, h("span", { class: "conf" }, `${Math.round(e.max_confidence * 100)}%`)),
      h("span", { class: "cam" }, camName(e.camera_id)),
      h("span", { class: "when" }, ...when),
      h("span", { class: "chips" }, ...placeChips(e)),
    ),
  );
}

async function loadEvents() {
  evState.loaded = true;
  evState.fresh = 0;
  $("#ev-new").hidden = true;
  $("#ev-error").textContent = "";
  let page;
  try {
    page = await api("/events?" + eventQuery());
  } catch (e) {
    $("#ev-error").textContent = e.message;
    return;
  }
  evState.total = page.total;
  $("#ev-grid").replaceChildren(...page.items.map(eventCard));
  const first = page.total ? page.offset + 1 : 0;
  $("#ev-summary").textContent = page.total
    ? `Events ${first}–${page.offset + page.items.length} of ${page.total}, newest first (times UTC).`
    : "No events match.";
  $("#ev-prev").disabled = page.offset === 0;
  $("#ev-next").disabled = page.offset + page.items.length >= page.total;
}

$("#events-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  evState.offset = 0;
  loadEvents();
});
$("#events-form").addEventListener("reset", () => setTimeout(() => { evState.offset = 0; loadEvents(); }));
$("#ev-prev").addEventListener("click", () => { evState.offset = Math.max(0, evState.offset - EVENTS_PAGE); loadEvents(); });
$("#ev-next").addEventListener("click", () => { evState.offset += EVENTS_PAGE; loadEvents(); });
$("#ev-new").addEventListener("click", () => { evState.offset = 0; loadEvents(); });
onTab.events = () => { if (!evState.loaded) loadEvents(); };

// The feed tells of new and finished events: offer to show them rather than moving the
// list under the user's pointer; refresh an open detail when its event ends.
function eventNews(m) {
  if (m.type === "event.start" && evState.loaded) {
    evState.fresh += 1;
    const b = $("#ev-new");
    b.textContent = `${evState.fresh} new event${evState.fresh > 1 ? "s" : ""}: show`;
    b.hidden = false;
  }
  if (m.type === "event.end" && $("#event-dialog").open && Number($("#event-dialog").dataset.id) === m.id) {
    openEvent(m.id);
  }
}

// Event detail: best picture, the whole frame with the path, facts, and Play.
let detail = null;
async function openEvent(id) {
  const dlg = $("#event-dialog");
  $("#ed-error").textContent = "";
  let e;
  try {
    e = await api(`/events/${id}`);
  } catch (err) {
    $("#ed-title").textContent = `Event ${id}`;
    $("#ed-meta").replaceChildren();
    $("#ed-error").textContent = err.message;
    if (!dlg.open) dlg.showModal();
    return;
  }
  detail = e;
  dlg.dataset.id = e.id;
  $("#ed-title").textContent = `${e.class} #${e.track_id} on ${camName(e.camera_id)}`;
  const pics = e.has_snapshot && can("live.view");
  for (const [sel, full] of [["#ed-snap", false], ["#ed-full", true]]) {
    const img = $(sel);
    img.closest("figure").hidden = !pics;
    if (pics && img.getAttribute("src") !== snapshotUrl(e.id, full)) {
      img.src = snapshotUrl(e.id, full);
      img.alt = full ? `whole picture at the time of event ${e.id}` : `${e.class} #${e.track_id}`;
    }
  }
  const facts = [
    ["Class", `${e.class} (up to ${Math.round(e.max_confidence * 100)}% sure)`],
    ["Camera", camName(e.camera_id)],
    ["Start", stamp(e.start_ts)],
    ["End", e.end_ts == null ? "ongoing" : `${stamp(e.end_ts)} (${span(e.end_ts - e.start_ts)})`],
    ["Zones", e.zones.length ? e.zones.join(", ") : "none"],
    ["Crossings", e.crossings.length ? e.crossings.map((c) => `${c.line} ${c.direction} at ${clock(c.ts)}`).join(", ") : "none"],
  ];
  $("#ed-path-note").hidden = !e.path.length;
  $("#ed-path-none").hidden = e.path.length > 0;
  if (e.stationary) facts.push(["Stationary", "yes"]);
  if (!pics && !e.has_snapshot) facts.push(["Picture", "none kept"]);
  $("#ed-meta").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  drawPath();
  if (!dlg.open) dlg.showModal();
}

function drawPath() {
  const canvas = $("#ed-path"), img = $("#ed-full");
  const { ctx, w, h: hgt } = fitCanvas(canvas);
  canvas.dataset.points = "0";
  if (!detail || !img.naturalWidth) return;
  const r = pictureRect(img, w, hgt);
  const cam = cameras.find((c) => c.id === detail.camera_id);
  if (cam) drawGeometry(ctx, r, cam.analytics);
  drawBox(ctx, r, detail.box, `${detail.class} #${detail.track_id}`, CLASS_COLOURS[detail.class] || VEHICLE_COLOUR);
  const pts = detail.path.map(([, x, y]) => [r.x + x * r.w, r.y + y * r.h]);
  if (pts.length) {
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2.5;
    ctx.lineJoin = "round";
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    for (const [[x, y], colour] of [[pts[0], "#56d364"], [pts[pts.length - 1], "#ff7b72"]]) {
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.fillStyle = colour;
      ctx.fill();
    }
  }
  canvas.dataset.points = String(pts.length);
}
$("#ed-full").addEventListener("load", drawPath);
new ResizeObserver(drawPath).observe($("#ed-path"));
$("#ed-close").addEventListener("click", () => $("#event-dialog").close());
$("#event-dialog").addEventListener("click", (ev) => {
  if (ev.target === ev.currentTarget) ev.currentTarget.close(); // a click on the backdrop
});

// Play: the Playback tab, filled in for the event (2 s either side); playing needs a
// stated purpose, so it plays at once only if one is already there.
$("#ed-play").addEventListener("click", () => {
  if (!detail) return;
  const e = detail;
  const start = Math.floor(e.start_ts - 2);
  const end = (e.end_ts ?? Date.now() / 1000) + 2;
  $("#event-dialog").close();
  showTab("playback");
  const form = $("#playback-form");
  const f = form.elements;
  f.namedItem("camera").value = e.camera_id;
  f.namedItem("start").value = toInput(start);
  f.namedItem("minutes").value = String(Math.max(1, Math.ceil((end - start) / 60)));
  const purpose = f.namedItem("purpose");
  if (purpose.value.trim().length >= 3) {
    $("#pb-hint").textContent = "";
    form.requestSubmit();
  } else {
    $("#pb-hint").textContent = `State the purpose, then Play: ${e.class} #${e.track_id} on ${camName(e.camera_id)} from ${stamp(start)}.`;
    purpose.focus();
  }
});
$("#playback-form").addEventListener("submit", () => ($("#pb-hint").textContent = ""));

// Counts --------------------------------------------------------------------------------
const KIND_LABEL = { enter: "entries", dwell: "loitering", "A->B": "crossings A→B", "B->A": "crossings B→A" };
const HOURS = 24;

function bars(buckets, t0) {
  const counts = new Array(HOURS).fill(0);
  for (const [ts, n] of buckets) {
    const i = Math.floor((ts - t0) / 3600);
    if (i >= 0 && i < HOURS) counts[i] += n;
  }
  const max = Math.max(1, ...counts), bw = 5, gap = 1, ht = 22;
  const chart = svg("svg", { class: "bars", width: HOURS * (bw + gap), height: ht, role: "img",
                             "aria-label": `per hour: ${counts.join(", ")}` });
  counts.forEach((n, i) => {
    const bh = n ? Math.max(2, (n / max) * ht) : 1;
    const rect = svg("rect", { x: i * (bw + gap), y: ht - bh, width: bw, height: bh, class: n ? "" : "zero" });
    rect.append(svg("title", {}, `${clock(t0 + i * 3600).slice(0, 5)} UTC: ${n}`));
    chart.append(rect);
  });
  return chart;
}

async function cameraCounts(cam, t0, t1) {
  const data = await api(`/cameras/${enc(cam.id)}/counts?start=${t0}&end=${t1}&bucket_s=3600`);
  // Every configured zone and line gets a row, counted or not.
  const rows = new Map();
  const want = (name, kind) => rows.set(`${name}:${kind}`, { name, kind, total: 0, by_class: {}, buckets: [] });
  for (const z of cam.analytics.zones) {
    want(z.name, "enter");
    if (z.dwell_s) want(z.name, "dwell");
  }
  for (const ln of cam.analytics.lines) {
    want(ln.name, "A->B");
    want(ln.name, "B->A");
  }
  for (const s of data.series) rows.set(`${s.name}:${s.kind}`, s);
  const card = h("section", { class: "panel", dataset: { camera: cam.id } }, h("h3", {}, camName(cam.id)));
  if (!rows.size) {
    card.append(h("p", { class: "muted" }, cam.analytics.enabled ? "No zones or lines on this camera." : "Analytics is off for this camera."));
    return card;
  }
  const body = [...rows.values()].map((s) =>
    h("tr", { dataset: { name: s.name, kind: s.kind } },
      h("td", {}, s.name),
      h("td", {}, KIND_LABEL[s.kind] || s.kind),
      h("td", { class: "num total" }, String(s.total)),
      h("td", {}, Object.entries(s.by_class).map(([c, n]) => `${c || "?"} ${n}`).join(", ") || "–"),
      h("td", {}, bars(s.buckets, t0)),
    ));
  card.append(h("table", {},
    h("thead", {}, h("tr", {}, ...["Zone or line", "What", "Total", "By class", "Per hour"].map((t, i) =>
      h("th", { scope: "col", class: i === 2 ? "num" : null }, t)))),
    h("tbody", {}, ...body)));
  return card;
}

async function loadCounts() {
  const t1 = Math.ceil(Date.now() / 1000 / 3600) * 3600; // to the end of this hour
  const t0 = t1 - HOURS * 3600;
  $("#counts-error").textContent = "";
  const list = $("#counts-list");
  const cards = await Promise.all(cameras.map((c) => cameraCounts(c, t0, t1).catch((e) =>
    h("section", { class: "panel" }, h("h3", {}, camName(c.id)), h("p", { class: "error" }, e.message)))));
  list.replaceChildren(...cards);
  list.dataset.loaded = String(Date.now());
}
onTab.counts = loadCounts;
$("#counts-refresh").addEventListener("click", loadCounts);

// Zone and line editor (camera.manage) ----------------------------------------------------
const ze = { camera: null, zones: [], lines: [], draft: [], hover: null, selected: null, saved: "" };
const zeMode = () => document.querySelector('input[name="ze-mode"]:checked').value;
const round4 = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const ZE_HELP = {
  zone: "Click the corners of a zone on the picture; double-click, press Enter or use “Close zone” to finish it.",
  line: "Click the two ends of a counting line. Crossings count A→B and B→A; side A is on your right when walking from the first end to the second.",
};

function zeNextName(kind) {
  const taken = new Set([...ze.zones, ...ze.lines].map((x) => x.name));
  for (let i = 1; ; i++) if (!taken.has(`${kind} ${i}`)) return `${kind} ${i}`;
}

function zeDirty() {
  return JSON.stringify({ zones: ze.zones, lines: ze.lines }) !== ze.saved;
}

async function zeLoad(cameraId) {
  ze.camera = cameraId;
  ze.draft = [];
  ze.selected = null;
  $("#ze-error").textContent = "";
  $("#ze-msg").textContent = "";
  if (!cameraId) return;
  try {
    const cfg = await api(`/cameras/${enc(cameraId)}/analytics`);
    if (ze.camera !== cameraId) return;
    ze.zones = cfg.zones;
    ze.lines = cfg.lines;
    ze.saved = JSON.stringify({ zones: ze.zones, lines: ze.lines });
    if (!cfg.enabled) $("#ze-msg").textContent = "Analytics is off for this camera: zones are kept but not used.";
  } catch (e) {
    $("#ze-error").textContent = e.message;
    ze.zones = [];
    ze.lines = [];
  }
  $("#ze-name").value = zeNextName(zeMode());
  zePicture();
  zeRender();
}

function zePicture() {
  const img = $("#ze-bg");
  img.alt = `latest picture of ${camName(ze.camera)}`;
  img.src = `/api/v1/cameras/${enc(ze.camera)}/snapshot.jpg?width=960&at=${Date.now()}`;
}
$("#ze-bg").addEventListener("load", () => {
  $("#ze-stage").classList.remove("nopic");
  zeDraw();
});
$("#ze-bg").addEventListener("error", () => {
  $("#ze-stage").classList.add("nopic");
  $("#ze-error").textContent = "No picture from this camera yet; you can still draw, or try “New picture”.";
  zeDraw();
});

function zeDraw() {
  const canvas = $("#ze-canvas");
  const { ctx, w, h: hgt } = fitCanvas(canvas);
  const img = $("#ze-bg");
  const r = pictureRect(img.complete && img.naturalWidth ? img : null, w, hgt);
  drawGeometry(ctx, r, { zones: ze.zones, lines: ze.lines }, ze.selected);
  const pts = ze.hover ? [...ze.draft, ze.hover] : ze.draft;
  if (pts.length) {
    const colour = "#ffffff";
    if (zeMode() === "line") {
      if (pts.length >= 2) drawLine(ctx, r, { name: $("#ze-name").value, a: pts[0], b: pts[1] }, colour);
      else drawZone(ctx, r, { polygon: pts, name: "" }, colour, { open: true, handles: true });
    } else {
      drawZone(ctx, r, { polygon: pts, name: ze.draft.length ? $("#ze-name").value : "" }, colour,
        { open: pts.length < 3, handles: true });
    }
  }
  canvas.dataset.shapes = String(ze.zones.length + ze.lines.length);
  canvas.dataset.draft = String(ze.draft.length);
}
new ResizeObserver(zeDraw).observe($("#ze-canvas"));

function zeRender() {
  const items = [
    ...ze.zones.map((z) => ({ kind: "zone", obj: z, list: ze.zones })),
    ...ze.lines.map((ln) => ({ kind: "line", obj: ln, list: ze.lines })),
  ];
  $("#ze-list").replaceChildren(...items.map(({ kind, obj, list }, i) => {
    const desc = kind === "zone"
      ? `zone, ${obj.polygon.length} corners` + (obj.dwell_s ? `, loitering alarm after ${obj.dwell_s} s` : "")
      : "line, counts A→B and B→A";
    const name = h("input", { value: obj.name, maxlength: 64, "aria-label": `name of ${kind} ${i + 1}` });
    name.addEventListener("input", () => {
      obj.name = name.value;
      zeChanged(false);
    });
    const li = h("li", { dataset: { kind, index: list.indexOf(obj) } },
      h("span", { class: "swatch", style: `background:${ZONE_COLOURS[i % ZONE_COLOURS.length]}` }),
      name,
      h("button", { type: "button", "aria-label": `Delete ${kind} ${obj.name}`, onclick: () => {
        list.splice(list.indexOf(obj), 1);
        if (ze.selected === obj) ze.selected = null;
        zeChanged();
      } }, "Delete"),
      h("span", { class: "desc" }, desc),
    );
    li.addEventListener("focusin", () => { ze.selected = obj; zeDraw(); });
    li.addEventListener("mouseenter", () => { ze.selected = obj; zeDraw(); });
    li.addEventListener("mouseleave", () => { ze.selected = null; zeDraw(); });
    return li;
  }));
  $("#ze-empty").hidden = items.length > 0;
  zeDraw();
}

function zeChanged(rerender = true) {
  $("#ze-error").textContent = "";
  $("#ze-msg").textContent = zeDirty() ? "Unsaved changes." : "";
  if (rerender) zeRender();
  else zeDraw();
}

function zePoint(ev) {
  const canvas = $("#ze-canvas");
  const rect = canvas.getBoundingClientRect();
  const img = $("#ze-bg");
  const r = pictureRect(img.naturalWidth ? img : null, rect.width, rect.height);
  return [round4((ev.clientX - rect.left - r.x) / r.w), round4((ev.clientY - rect.top - r.y) / r.h)];
}

function zeFinish() {
  const name = $("#ze-name").value.trim();
  if (zeMode() === "zone") {
    if (ze.draft.length < 3) {
      $("#ze-error").textContent = "A zone needs at least three corners.";
      return;
    }
    const dwell = Number($("#ze-dwell").value);
    ze.zones.push({ name, polygon: ze.draft, dwell_s: dwell > 0 ? dwell : null, classes: null });
  } else {
    if (ze.draft.length < 2) return;
    ze.lines.push({ name, a: ze.draft[0], b: ze.draft[1], classes: null });
  }
  ze.draft = [];
  ze.hover = null;
  $("#ze-name").value = zeNextName(zeMode());
  zeChanged();
}

const zeCanvas = $("#ze-canvas");
zeCanvas.addEventListener("click", (ev) => {
  if (ev.detail > 1) return; // the second click of a double-click closes the zone instead
  ze.draft.push(zePoint(ev));
  $("#ze-error").textContent = "";
  if (zeMode() === "line" ? ze.draft.length === 2 : ze.draft.length === 64) zeFinish();
  else zeDraw();
});
zeCanvas.addEventListener("dblclick", (ev) => {
  ev.preventDefault();
  if (zeMode() === "zone") zeFinish();
});
zeCanvas.addEventListener("mousemove", (ev) => {
  ze.hover = ze.draft.length ? zePoint(ev) : null;
  zeDraw();
});
zeCanvas.addEventListener("mouseleave", () => {
  ze.hover = null;
  zeDraw();
});
zeCanvas.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") zeFinish();
  else if (ev.key === "Backspace") ze.draft.pop();
  else if (ev.key === "Escape") ze.draft = [];
  else return;
  ev.preventDefault();
  zeDraw();
});
$("#ze-finish").addEventListener("click", zeFinish);
$("#ze-undo").addEventListener("click", () => { ze.draft.pop(); zeDraw(); });
$("#ze-cancel").addEventListener("click", () => { ze.draft = []; ze.hover = null; zeDraw(); });
$("#ze-shot").addEventListener("click", () => { $("#ze-error").textContent = ""; zePicture(); });
$("#ze-name").addEventListener("input", zeDraw);
$("#ze-camera").addEventListener("change", (ev) => zeLoad(ev.target.value));
$("#ze-revert").addEventListener("click", () => zeLoad(ze.camera));
document.querySelectorAll('input[name="ze-mode"]').forEach((r) => r.addEventListener("change", () => {
  const mode = zeMode();
  ze.draft = [];
  $("#ze-help").textContent = ZE_HELP[mode];
  $("#ze-finish").disabled = mode !== "zone";
  $("#ze-dwell").disabled = mode !== "zone";
  const name = $("#ze-name");
  if (/^(zone|line) \d+$/.test(name.value) || !name.value) name.value = zeNextName(mode);
  zeDraw();
}));
$("#ze-help").textContent = ZE_HELP.zone;

// Save: the API validates (names, coordinates, unique names) and answers problem+json;
// its message is shown, and the zone or line it names is marked.
$("#ze-save").addEventListener("click", async () => {
  const cameraId = ze.camera;
  const btn = $("#ze-save");
  btn.disabled = true;
  $("#ze-error").textContent = "";
  $("#ze-msg").textContent = "Saving…";
  document.querySelectorAll("#ze-list li").forEach((li) => li.removeAttribute("aria-invalid"));
  try {
    const cfg = await sendJson(`/cameras/${enc(cameraId)}/zones`, "PUT", { zones: ze.zones, lines: ze.lines });
    // The editor works on copies: unsaved shapes must not reach the live overlays.
    ze.zones = structuredClone(cfg.zones);
    ze.lines = structuredClone(cfg.lines);
    ze.saved = JSON.stringify({ zones: ze.zones, lines: ze.lines });
    const cam = cameras.find((c) => c.id === cameraId);
    if (cam) {
      cam.analytics = cfg;
      overlays.get(cameraId)?.setConfig(cfg);
      updateStates();
    }
    const n = (k, w) => `${k} ${w}${k === 1 ? "" : "s"}`;
    $("#ze-msg").textContent = `Saved: ${n(cfg.zones.length, "zone")}, ${n(cfg.lines.length, "line")}.`;
    zeRender();
  } catch (e) {
    $("#ze-msg").textContent = "";
    $("#ze-error").textContent = `Not saved: ${zeProblem(e)}`;
  } finally {
    btn.disabled = false;
  }
});

function zeProblem(e) {
  const err = e.body?.errors?.[0];
  const loc = err?.loc || [];
  const at = loc.indexOf("zones") >= 0 ? loc.indexOf("zones") : loc.indexOf("lines");
  if (at < 0 || loc.length < at + 2) return e.message;
  const kind = loc[at] === "zones" ? "zone" : "line";
  const obj = (kind === "zone" ? ze.zones : ze.lines)[Number(loc[at + 1])];
  if (!obj) return e.message;
  const li = document.querySelector(`#ze-list li[data-kind="${kind}"][data-index="${Number(loc[at + 1])}"]`);
  li?.setAttribute("aria-invalid", "true");
  const field = loc.slice(at + 2).join(".");
  return `${kind} “${obj.name}”${field ? ", " + field : ""}: ${err.msg}`;
}
onTab.zones = () => {
  const sel = $("#ze-camera");
  if (sel.value && sel.value !== ze.camera) zeLoad(sel.value);
  else zeDraw();
};

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

// Plates: search, a vehicle's trail on a map of the cameras, hotlists --------------------
// Plate search, trails and hotlists need the "search" permission; every search and trail
// states a purpose, which the API requires and audits with the query.
const PL_PAGE = 50;
const pl = { offset: 0, query: null, why: null, trail: null };
const mayEditHotlists = () => can("search"); // the API guards hotlist changes by "search"
const PL_HELP = {
  exact: "Exact: spaces, dashes and case do not matter (“bg 123ab” finds BG 123-AB).",
  partial: "Partial: * stands for any characters, ? for one (“*12*”, “BG12?AB”); without either, reads containing the text.",
  fuzzy: "Fuzzy: reads up to 1 or 2 edits away; a usual OCR confusion (O/0, I/1, B/8, S/5) counts half an edit.",
};
const pct = (x) => `${Math.round(x * 100)}%`;

function plateSearchQuery() {
  const f = new FormData($("#plates-form"));
  const q = new URLSearchParams({ q: (f.get("q") || "").trim(), mode: f.get("mode") });
  if (f.get("mode") === "fuzzy") q.set("edits", f.get("edits"));
  if (f.get("camera")) q.set("camera", f.get("camera"));
  for (const k of ["start", "end"]) if (f.get(k)) q.set(k, fromInput(f.get(k)));
  if (f.get("direction")) q.set("direction", f.get("direction"));
  // No check here: the API refuses a search without a purpose, and its reason is shown.
  const why = new URLSearchParams();
  const purpose = (f.get("purpose") || "").trim(), caseRef = (f.get("case_ref") || "").trim();
  if (purpose) why.set("purpose", purpose);
  if (caseRef) why.set("case_ref", caseRef);
  return { q, why };
}

const matchLabel = (r) => {
  if (r.match === "fuzzy") return `≈ ${r.distance} edit${r.distance === 1 ? "" : "s"}`;
  return r.match === "partial" ? "pattern" : "exact";
};

function plateCrop(r, cls = "plate-crop") {
  return r.crop_url
    ? h("img", { class: cls, src: r.crop_url, alt: `plate ${r.text}`, loading: "lazy" })
    : h("span", { class: cls + " none" }, "no crop");
}

function playButton(r, label = "Play") {
  if (!can("playback")) return null;
  return h("button", { type: "button", class: "play", "aria-label": `Play ${camName(r.camera_id)} at ${stamp(r.ts)}`,
                       onclick: () => playAt(r.camera_id, r.playback.start, r.playback.end, pl.why) }, label);
}

function plateRow(r, rank) {
  const kind = r.format || "unformatted";
  return h("tr", { dataset: { id: r.id, ts: r.ts, camera: r.camera_id, plate: r.normalised, rank } },
    h("td", { class: "num rank" }, String(rank)),
    h("td", {}, plateCrop(r)),
    h("td", {}, h("span", { class: "plate-text" }, r.text), h("span", { class: "muted small fmt" }, kind)),
    h("td", { class: "match" }, matchLabel(r)),
    h("td", { class: "cam" }, camName(r.camera_id)),
    h("td", {}, timeEl(r.ts, stamp(r.ts))),
    h("td", { class: "num conf" }, pct(r.confidence)),
    h("td", { class: "dir" }, r.direction || "–"),
    h("td", { class: "actions" },
      h("button", { type: "button", class: "trail-btn", "aria-label": `Where was ${r.text}`,
                    onclick: () => loadTrail(r.normalised, r.text) }, "Where was it"),
      playButton(r),
      attachButton("plate_read", r.id, `the read of ${r.text} at ${stamp(r.ts)}`, "Attach")),
  );
}

async function searchPlates() {
  const { q, why } = plateSearchQuery();
  $("#pl-error").textContent = "";
  const params = new URLSearchParams([...q, ...why, ["limit", PL_PAGE], ["offset", pl.offset]]);
  let page;
  try {
    page = await api("/plates/search?" + params);
  } catch (e) {
    $("#pl-error").textContent = `Search refused: ${e.message}`;
    $("#pl-summary").textContent = "";
    $("#pl-results").hidden = true;
    $("#pl-results tbody").replaceChildren();
    $("#pl-prev").disabled = $("#pl-next").disabled = true;
    return;
  }
  pl.query = q;
  pl.why = why;
  const rows = page.items.map((r, i) => plateRow(r, page.offset + i + 1));
  $("#pl-results tbody").replaceChildren(...rows);
  $("#pl-results").hidden = !rows.length;
  const order = q.get("mode") === "fuzzy" ? "closest first, then newest" : "newest first";
  $("#pl-summary").textContent = rows.length
    ? `Reads ${page.offset + 1}–${page.offset + rows.length} for “${q.get("q")}”, ${order}. This search is in the audit log.`
    : `No reads match “${q.get("q")}”. This search is in the audit log.`;
  $("#pl-prev").disabled = page.offset === 0;
  $("#pl-next").disabled = rows.length < PL_PAGE;
}

$("#plates-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  pl.offset = 0;
  searchPlates();
});
$("#pl-prev").addEventListener("click", () => { pl.offset = Math.max(0, pl.offset - PL_PAGE); searchPlates(); });
$("#pl-next").addEventListener("click", () => { pl.offset += PL_PAGE; searchPlates(); });
$("#pl-mode").addEventListener("change", (ev) => {
  $("#pl-edits").disabled = ev.target.value !== "fuzzy";
  $("#pl-help").textContent = PL_HELP[ev.target.value] + " Every search needs a purpose (a case or a reason) and is audited.";
});
$("#pl-mode").dispatchEvent(new Event("change"));

// Open the Playback tab at a moment of a camera. With a stated purpose (the search's),
// it plays at once; otherwise it asks for one first.
function playAt(cameraId, start, end, why) {
  showTab("playback");
  const form = $("#playback-form");
  const f = form.elements;
  const t0 = Math.floor(start);
  f.namedItem("camera").value = cameraId;
  f.namedItem("start").value = toInput(t0);
  f.namedItem("minutes").value = String(Math.max(1, Math.ceil((end - t0) / 60)));
  const purpose = f.namedItem("purpose");
  if (why?.get("purpose")) {
    purpose.value = why.get("purpose");
    f.namedItem("case_ref").value = why.get("case_ref") || "";
    $("#pb-hint").textContent = "";
    form.requestSubmit();
  } else {
    $("#pb-hint").textContent = `State the purpose, then Play: ${camName(cameraId)} from ${stamp(t0)}.`;
    purpose.focus();
  }
}

// Trail: the plate's reads in time order, on a plot of the cameras' coordinates.
async function loadTrail(plate, text) {
  const box = $("#pl-trail");
  box.hidden = false;
  $("#pl-trail-title").textContent = `Where was ${text}`;
  $("#pl-trail-error").textContent = "";
  $("#pl-trail-summary").textContent = "Loading…";
  const params = new URLSearchParams([["plate", plate], ...(pl.why || [])]);
  for (const k of ["start", "end"]) if (pl.query?.get(k)) params.set(k, pl.query.get(k));
  let t;
  try {
    t = await api("/plates/trail?" + params);
  } catch (e) {
    $("#pl-trail-summary").textContent = "";
    $("#pl-trail-error").textContent = `Trail refused: ${e.message}`;
    return;
  }
  pl.trail = t;
  const pts = t.points;
  const places = new Set(pts.map((p) => p.camera_id));
  const range = pl.query?.get("start") || pl.query?.get("end") ? " in the searched time range" : "";
  $("#pl-trail-summary").textContent = pts.length
    ? `${pts.length} sighting${pts.length === 1 ? "" : "s"} at ${places.size} camera${places.size === 1 ? "" : "s"}${range}, ` +
      `${stamp(pts[0].ts)} to ${stamp(pts[pts.length - 1].ts)}, oldest first.`
    : `No sightings${range}.`;
  drawTrailMap(pts);
  $("#pl-trail-list").replaceChildren(...pts.map((p, i) => trailItem(p, i, pts[i - 1])));
  box.scrollIntoView({ block: "nearest" });
}

function trailItem(p, i, prev) {
  const gap = prev ? h("span", { class: "gap muted" }, `+${span(p.ts - prev.ts)}`) : null;
  const where = p.lat == null || p.lon == null
    ? h("span", { class: "muted small" }, "camera has no map position")
    : h("span", { class: "muted small" }, p.address || `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}`);
  const li = h("li", { dataset: { n: i + 1, ts: p.ts, camera: p.camera_id } },
    h("span", { class: "stop-no", "aria-hidden": "true" }, String(i + 1)),
    plateCrop(p, "plate-crop small"),
    h("span", { class: "stop-info" },
      h("span", {}, timeEl(p.ts, stamp(p.ts)), " ", gap),
      h("span", { class: "cam" }, `${p.camera_name} (${p.camera_id})`),
      where,
      h("span", { class: "muted small" }, `${p.text}, ${pct(p.confidence)}${p.direction ? ", " + p.direction : ""}`)),
    playButton(p),
  );
  const mark = (on) => document.querySelector(`#pl-map .stop[data-n="${i + 1}"]`)?.classList.toggle("hi", on);
  li.addEventListener("mouseenter", () => mark(true));
  li.addEventListener("mouseleave", () => mark(false));
  return li;
}

// An equirectangular plot (x scaled by cos(latitude)), fitted to the bounding box of the
// cameras; no tiles, no network. Several sightings at one camera sit in a ring round it.
function drawTrailMap(pts) {
  const W = 640, H = 420, M = 48;
  const map = $("#pl-map");
  const located = new Map(); // camera id -> {lat, lon, name}
  for (const c of cameras) {
    const loc = c.location || {};
    if (loc.lat != null && loc.lon != null) located.set(c.id, { lat: loc.lat, lon: loc.lon, name: c.name });
  }
  for (const p of pts) if (p.lat != null && p.lon != null) located.set(p.camera_id, { lat: p.lat, lon: p.lon, name: p.camera_name });
  map.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const kids = [svg("defs", {}, svg("marker", { id: "pl-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" })))];
  kids.push(svg("rect", { x: 0, y: 0, width: W, height: H, class: "map-bg" }));
  if (!located.size) {
    kids.push(svg("text", { x: W / 2, y: H / 2, class: "map-note", "text-anchor": "middle" }, "No camera has a map position."));
    map.replaceChildren(...kids);
    map.dataset.points = "0";
    return;
  }
  const all = [...located.values()];
  const lat0 = all.reduce((a, c) => a + c.lat, 0) / all.length;
  const kx = Math.cos((lat0 * Math.PI) / 180);
  const xs = all.map((c) => c.lon * kx), ys = all.map((c) => c.lat);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const dx = x1 - x0, dy = y1 - y0;
  const s = dx || dy ? Math.min(dx ? (W - 2 * M) / dx : Infinity, dy ? (H - 2 * M) / dy : Infinity) : 1;
  const proj = (c) => [W / 2 + (c.lon * kx - (x0 + x1) / 2) * s, H / 2 - (c.lat - (y0 + y1) / 2) * s];
  // A scale bar: degrees of latitude are ~111.32 km.
  if (dx || dy) {
    const pxPerM = s / 111320;
    const target = 120 / pxPerM;
    const unit = 10 ** Math.floor(Math.log10(target));
    const len = [5, 2, 1].map((k) => k * unit).find((v) => v <= target) || unit;
    const bar = len * pxPerM;
    kids.push(svg("g", { class: "scale" },
      svg("line", { x1: 12, y1: H - 14, x2: 12 + bar, y2: H - 14 }),
      svg("text", { x: 12, y: H - 20 }, len >= 1000 ? `${len / 1000} km` : `${len} m`)));
  }
  const visits = new Map();
  pts.forEach((p) => visits.set(p.camera_id, (visits.get(p.camera_id) || 0) + 1));
  for (const [id, c] of located) {
    const [x, y] = proj(c);
    const g = svg("g", { class: "cam" + (visits.has(id) ? " seen" : "") },
      svg("circle", { cx: x, cy: y, r: 6 }),
      svg("text", { x: x + 10, y: y - 10 }, c.name),
      svg("title", {}, `${c.name} (${id})`));
    g.setAttribute("data-camera", id);
    kids.push(g);
  }
  // Positions of the numbered stops: one per located sighting.
  const seenAt = new Map();
  const stops = [];
  pts.forEach((p, i) => {
    const c = located.get(p.camera_id);
    if (!c || p.lat == null || p.lon == null) return;
    const [cx, cy] = proj(c);
    const k = visits.get(p.camera_id), j = seenAt.get(p.camera_id) || 0;
    seenAt.set(p.camera_id, j + 1);
    const a = (2 * Math.PI * j) / k - Math.PI / 2, r = k > 1 ? 18 : 0;
    stops.push({ n: i + 1, p, x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) });
  });
  const R = 10;
  for (let i = 1; i < stops.length; i++) {
    const a = stops[i - 1], b = stops[i];
    const len = Math.hypot(b.x - a.x, b.y - a.y);
    if (len < 2 * R + 4) continue;
    const ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
    kids.push(svg("line", { class: "leg", x1: a.x + ux * R, y1: a.y + uy * R, x2: b.x - ux * (R + 1), y2: b.y - uy * (R + 1),
                            "marker-end": "url(#pl-arrow)", "data-from": a.n, "data-to": b.n }));
  }
  for (const st of stops) {
    const g = svg("g", { class: "stop" },
      svg("circle", { cx: st.x, cy: st.y, r: R }),
      svg("text", { x: st.x, y: st.y, "text-anchor": "middle", "dominant-baseline": "central" }, String(st.n)),
      svg("title", {}, `${st.n}: ${st.p.camera_name}, ${stamp(st.p.ts)}`));
    Object.assign(g.dataset, { n: st.n, ts: st.p.ts, camera: st.p.camera_id, x: st.x.toFixed(1), y: st.y.toFixed(1) });
    kids.push(g);
  }
  map.replaceChildren(...kids);
  map.dataset.points = String(stops.length);
}
$("#pl-trail-close").addEventListener("click", () => { $("#pl-trail").hidden = true; });

// Hotlists ------------------------------------------------------------------------------
const hl = { lists: [], selected: null };
const hlWhen = (ts) => (ts == null ? "never" : stamp(ts));
const hlExpired = (x) => x.expires_at != null && x.expires_at * 1000 <= Date.now();

async function loadHotlists(select = hl.selected) {
  $("#hl-error").textContent = "";
  try {
    hl.lists = (await api("/hotlists")).items;
  } catch (e) {
    $("#hl-error").textContent = e.message;
    return;
  }
  $("#hl-lists").replaceChildren(...hl.lists.map((x) => h("li", {},
    h("button", { type: "button", class: `hl-item prio-${x.priority}` + (x.id === select ? " selected" : ""),
                  dataset: { id: x.id }, "aria-current": x.id === select ? "true" : null, onclick: () => openHotlist(x.id) },
      h("span", { class: "name" }, x.name),
      h("span", { class: "prio" }, x.priority),
      h("span", { class: "muted small" }, `owner ${x.owner}` + (hlExpired(x) ? ", expired" : x.expires_at ? `, until ${hlWhen(x.expires_at)}` : ""))))));
  $("#hl-empty").hidden = hl.lists.length > 0;
  if (select != null && hl.lists.some((x) => x.id === select)) await openHotlist(select);
  else {
    hl.selected = null;
    $("#hl-detail").hidden = true;
  }
}
onTab.hotlists = () => loadHotlists();

async function openHotlist(id) {
  hl.selected = id;
  document.querySelectorAll("#hl-lists .hl-item").forEach((b) => {
    b.classList.toggle("selected", Number(b.dataset.id) === id);
    if (Number(b.dataset.id) === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  });
  const box = $("#hl-detail");
  $("#hl-d-error").textContent = "";
  $("#hl-confirm").hidden = true;
  let x;
  try {
    x = await api(`/hotlists/${id}`);
  } catch (e) {
    $("#hl-d-error").textContent = e.message;
    return;
  }
  if (hl.selected !== id) return;
  box.hidden = false;
  box.dataset.id = String(id);
  $("#hl-form").hidden = true;
  $("#hl-d-title").textContent = x.name;
  const prio = $("#hl-d-prio");
  prio.textContent = x.priority;
  prio.className = `badge prio-${x.priority}`;
  const facts = [
    ["Owner", x.owner], ["Reason", x.reason], ["Legal basis", x.legal_basis],
    ["Expires", hlWhen(x.expires_at) + (hlExpired(x) ? " (expired: no alerts)" : "")],
    ["Created", `${stamp(x.created_at)} by ${x.created_by}`],
  ];
  $("#hl-d-meta").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const edit = mayEditHotlists();
  $("#hl-entries tbody").replaceChildren(...x.entries.map((e) => h("tr", { dataset: { id: e.id, plate: e.plate } },
    h("td", {}, h("span", { class: "plate-text" }, e.plate)),
    h("td", {}, e.reason || "–"),
    h("td", {}, hlWhen(e.expires_at) + (hlExpired(e) ? " (expired)" : "")),
    h("td", { class: "muted small" }, `${stamp(e.created_at)} by ${e.created_by}`),
    edit ? h("td", {}, h("button", { type: "button", class: "remove", "aria-label": `Remove ${e.plate}`,
                                    onclick: (ev) => removeEntry(id, e, ev.target) }, "Remove")) : null)));
  $("#hl-entries").hidden = !x.entries.length;
  $("#hl-entries-empty").hidden = x.entries.length > 0;
  $("#hl-confirm-text").textContent = `Delete “${x.name}” and its ${x.entries.length} entr${x.entries.length === 1 ? "y" : "ies"}?`;
}

async function removeEntry(id, e, btn) {
  btn.disabled = true;
  $("#hl-d-error").textContent = "";
  try {
    await api(`/hotlists/${id}/entries/${e.id}`, { method: "DELETE" });
    await openHotlist(id);
    $("#hl-d-msg").textContent = `Removed ${e.plate}.`;
  } catch (err) {
    btn.disabled = false;
    $("#hl-d-error").textContent = `Not removed: ${err.message}`;
  }
}

// Problem details of a refused body: the first field and why, else the detail.
function fieldProblem(e) {
  const err = e.body?.errors?.[0];
  if (!err) return e.message;
  const field = (err.loc || []).filter((p) => p !== "body").join(".");
  return field ? `${field}: ${err.msg}` : err.msg;
}

$("#hl-new").addEventListener("click", () => {
  $("#hl-form").hidden = false;
  $("#hl-detail").hidden = true;
  $("#hl-form-error").textContent = "";
  $("#hl-form [name=name]").focus();
});
$("#hl-form-cancel").addEventListener("click", () => {
  $("#hl-form").reset();
  $("#hl-form").hidden = true;
  if (hl.selected != null) openHotlist(hl.selected);
});
$("#hl-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {
    name: f.get("name"), reason: f.get("reason"), legal_basis: f.get("legal_basis"), priority: f.get("priority"),
    owner: (f.get("owner") || "").trim() || null,
    expires_at: f.get("expires_at") ? fromInput(f.get("expires_at")) : null,
  };
  $("#hl-form-error").textContent = "";
  try {
    const x = await sendJson("/hotlists", "POST", body);
    ev.target.reset();
    ev.target.hidden = true;
    await loadHotlists(x.id);
    $("#hl-d-msg").textContent = `Created “${x.name}”.`;
  } catch (e) {
    $("#hl-form-error").textContent = `Not created: ${fieldProblem(e)}`;
  }
});
$("#hl-entry-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = hl.selected;
  const f = new FormData(ev.target);
  const body = { plate: f.get("plate"), reason: f.get("reason") || "",
                 expires_at: f.get("expires_at") ? fromInput(f.get("expires_at")) : null };
  $("#hl-d-error").textContent = "";
  $("#hl-d-msg").textContent = "";
  try {
    const e = await sendJson(`/hotlists/${id}/entries`, "POST", body);
    ev.target.reset();
    await openHotlist(id);
    $("#hl-d-msg").textContent = `Added ${e.plate}.`;
  } catch (e) {
    $("#hl-d-error").textContent = `Not added: ${fieldProblem(e)}`;
  }
});
$("#hl-delete").addEventListener("click", () => { $("#hl-confirm").hidden = false; $("#hl-confirm-no").focus(); });
$("#hl-confirm-no").addEventListener("click", () => { $("#hl-confirm").hidden = true; });
$("#hl-confirm-yes").addEventListener("click", async () => {
  const id = hl.selected;
  try {
    await api(`/hotlists/${id}`, { method: "DELETE" });
    hl.selected = null;
    $("#hl-detail").hidden = true;
    await loadHotlists(null);
    $("#hl-error").textContent = "";
  } catch (e) {
    $("#hl-d-error").textContent = `Not deleted: ${e.message}`;
  }
});

// Faces under legal authorisation, and cases ----------------------------------------------
// Each screen shows by the permissions of the user's role: investigators request
// authorisations, keep watchlists and search recorded video by photo; the authority
// approves or revokes; reviewers confirm or reject candidate matches (two different
// reviewers confirm one before it becomes an alert); auditors and the authority read the use
// log. The administrator has no biometric powers. The API decides; the page shows its
// refusals as they are.
const mayAuthorisations = () => ["faces.request", "faces.approve", "faces.review", "faces.use_log"].some((p) => can(p));
const MODE_LABEL = { realtime: "real-time matching", retrospective: "retrospective search" };
const STATUS_LABEL = { pending: "pending approval", scheduled: "approved, not yet valid", active: "active", expired: "expired", revoked: "revoked" };
const when = (ts) => (ts == null ? "–" : stamp(ts));
const score3 = (x) => Number(x).toFixed(3);
const camNames = (ids) => ids.map(camName).join(", ");
// Inputs for a window that must lie inside another: whole seconds, rounded inwards.
const inputUp = (ts) => toInput(Math.ceil(ts));
const inputDown = (ts) => toInput(Math.floor(ts));

function checkboxes(box, items, checked = () => false) {
  const legend = box.querySelector("legend");
  box.replaceChildren(legend, ...items.map(([value, text]) =>
    h("label", {}, h("input", { type: "checkbox", value, checked: checked(value) }), " ", text)));
  if (!items.length) box.append(h("span", { class: "muted small" }, "none available"));
}
const checkedValues = (box) => [...box.querySelectorAll("input:checked")].map((i) => i.value);

// Authorisations ------------------------------------------------------------------------
const au = { items: [], selected: null };

async function loadAuthorisations(select = au.selected) {
  $("#au-error").textContent = "";
  try {
    au.items = await api("/authorisations");
  } catch (e) {
    $("#au-error").textContent = e.message;
    return;
  }
  $("#au-list").replaceChildren(...au.items.map((a) => h("li", {},
    h("button", { type: "button", class: "hl-item au-item" + (a.id === select ? " selected" : ""),
                  dataset: { id: a.id, status: a.status }, "aria-current": a.id === select ? "true" : null,
                  onclick: () => showAuthorisation(a.id) },
      h("span", { class: "name" }, `#${a.id} ${a.objective}`),
      h("span", { class: `status st-${a.status}` }, a.status),
      h("span", { class: "muted small" }, `${MODE_LABEL[a.mode]}; ${a.authority}, ${a.authority_ref}`)))));
  $("#au-empty").hidden = au.items.length > 0;
  if (select != null && au.items.some((a) => a.id === select)) showAuthorisation(select);
  else {
    au.selected = null;
    $("#au-detail").hidden = true;
  }
}
onTab.authorisations = () => {
  $("#au-d-msg").textContent = "";
  loadAuthorisations();
};

function showAuthorisation(id) {
  const a = au.items.find((x) => x.id === id);
  if (!a) return;
  if (au.selected !== id) {
    $("#au-d-msg").textContent = "";
    $("#au-log").hidden = true;
  }
  au.selected = id;
  document.querySelectorAll("#au-list .au-item").forEach((b) => {
    const on = Number(b.dataset.id) === id;
    b.classList.toggle("selected", on);
    if (on) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  });
  $("#au-form").hidden = true;
  const box = $("#au-detail");
  box.hidden = false;
  box.dataset.id = String(id);
  box.dataset.status = a.status;
  $("#au-d-error").textContent = "";
  $("#au-d-title").textContent = `Authorisation #${a.id}: ${MODE_LABEL[a.mode]}`;
  const st = $("#au-d-status");
  st.textContent = STATUS_LABEL[a.status] || a.status;
  st.className = `status st-${a.status}`;
  const lists = a.watchlists || a.watchlist_ids.map((w) => ({ id: w, name: `#${w}` }));
  const facts = [
    ["Objective", a.objective],
    ["Legal basis", a.legal_basis],
    ["Issued by", `${a.authority}, ref. ${a.authority_ref}`],
    ["Cameras", camNames(a.camera_ids)],
    ["Watchlists", lists.length ? lists.map((w) => w.name).join(", ") : "none"],
    ["Valid", `${when(a.valid_from)} to ${when(a.valid_to)}`],
  ];
  if (a.mode === "retrospective") facts.push(["Footage", `${when(a.footage_from)} to ${when(a.footage_to)}`]);
  facts.push(["Keeps confirmed matches", `${a.keep_matches_days} days`]);
  if (a.case_ref) facts.push(["Case", a.case_ref]);
  facts.push(["Requested", `${when(a.created_at)} by ${a.created_by}`]);
  facts.push(["Approved", a.approved_at != null ? `${when(a.approved_at)} by ${a.approved_by}`
    : "not yet: a different user with the authority role approves it"]);
  if (a.revoked_at != null) facts.push(["Revoked", `${when(a.revoked_at)} by ${a.revoked_by}: ${a.revoke_reason}`]);
  if (a.started_at != null) facts.push(["In use", `${when(a.started_at)} to ${a.ended_at != null ? when(a.ended_at) : "now"}`]);
  const purged = Object.entries(a.purged || {});
  if (purged.length) facts.push(["Deleted at its end", purged.map(([k, n]) => `${n} ${k.replaceAll("_", " ")}`).join(", ")]);
  $("#au-d-meta").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  // The requester is offered Approve too: the API says why they may not.
  const mine = a.created_by === me.username;
  const live = ["pending", "scheduled", "active"].includes(a.status);
  $("#au-approve").hidden = a.status !== "pending" || !(can("faces.approve") || mine);
  $("#au-revoke-form").hidden = !live || !(can("faces.approve") || mine);
  $("#au-uselog").hidden = !can("faces.use_log");
  const exp = $("#au-export");
  exp.hidden = !can("faces.use_log");
  exp.href = `/api/v1/authorisations/${a.id}/use-log?download=true`;
}

$("#au-approve").addEventListener("click", async () => {
  const id = au.selected;
  $("#au-d-error").textContent = "";
  $("#au-d-msg").textContent = "";
  try {
    const a = await api(`/authorisations/${id}/approve`, { method: "POST" });
    await loadAuthorisations(id);
    $("#au-d-msg").textContent = `Approved: ${STATUS_LABEL[a.status] || a.status}.`;
  } catch (e) {
    $("#au-d-error").textContent = `Not approved: ${e.message}`;
  }
});

$("#au-revoke-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = au.selected;
  $("#au-d-error").textContent = "";
  $("#au-d-msg").textContent = "";
  try {
    await sendJson(`/authorisations/${id}/revoke`, "POST", { reason: new FormData(ev.target).get("reason") });
    ev.target.reset();
    await loadAuthorisations(id);
    $("#au-d-msg").textContent = "Revoked: matching under it has stopped.";
  } catch (e) {
    $("#au-d-error").textContent = `Not revoked: ${fieldProblem(e)}`;
  }
});

function logDetails(d) {
  return Object.entries(d || {}).map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`).join("; ");
}

$("#au-uselog").addEventListener("click", async () => {
  const id = au.selected;
  $("#au-d-error").textContent = "";
  let log;
  try {
    log = await api(`/authorisations/${id}/use-log`);
  } catch (e) {
    $("#au-d-error").textContent = `Use log unavailable: ${e.message}`;
    return;
  }
  if (au.selected !== id) return;
  const n = log.entries.length;
  $("#au-log-summary").textContent = `${n} entr${n === 1 ? "y" : "ies"}, oldest first; the audit chain is ` +
    (log.chain.verified ? "intact (verified)." : "BROKEN: entries were altered or removed.");
  $("#au-log-table tbody").replaceChildren(...log.entries.map((e) => {
    const details = logDetails(e.details);
    return h("tr", { dataset: { action: e.action, seq: e.seq } },
      h("td", { class: "num" }, String(e.seq)),
      h("td", {}, timeEl(e.ts, stamp(e.ts))),
      h("td", {}, e.actor),
      h("td", {}, e.action),
      h("td", {}, e.outcome),
      h("td", { class: "details small", title: details }, details.length > 240 ? details.slice(0, 240) + "…" : details));
  }));
  $("#au-log").hidden = false;
});

async function openRequestForm() {
  const form = $("#au-form");
  form.hidden = false;
  $("#au-detail").hidden = true;
  $("#au-form-error").textContent = "";
  $("#au-d-msg").textContent = "";
  checkboxes($("#au-cameras"), cameras.map((c) => [c.id, `${c.name} (${c.id})`]));
  let lists = [];
  if (can("faces.watchlist")) {
    try {
      lists = await api("/faces/watchlists");
    } catch (e) {
      $("#au-form-error").textContent = `Watchlists unavailable: ${e.message}`;
    }
  }
  checkboxes($("#au-watchlists"), lists.map((w) => [String(w.id), w.name]));
  const f = form.elements;
  const now = Math.floor(Date.now() / 1000);
  if (!f.namedItem("valid_from").value) f.namedItem("valid_from").value = toInput(now);
  if (!f.namedItem("valid_to").value) f.namedItem("valid_to").value = toInput(now + 7 * 86400);
  if (!f.namedItem("footage_from").value) f.namedItem("footage_from").value = toInput(now - 86400);
  if (!f.namedItem("footage_to").value) f.namedItem("footage_to").value = toInput(now);
  $("#au-mode").dispatchEvent(new Event("change"));
  f.namedItem("legal_basis").focus();
}
$("#au-new").addEventListener("click", openRequestForm);
$("#au-mode").addEventListener("change", (ev) => {
  $("#au-footage").hidden = ev.target.value !== "retrospective";
});
$("#au-form-cancel").addEventListener("click", () => {
  $("#au-form").reset();
  $("#au-form").hidden = true;
  if (au.selected != null) showAuthorisation(au.selected);
});
$("#au-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const retro = f.get("mode") === "retrospective";
  const body = {
    mode: f.get("mode"),
    legal_basis: f.get("legal_basis"),
    authority: f.get("authority"),
    authority_ref: f.get("authority_ref"),
    objective: f.get("objective"),
    camera_ids: checkedValues($("#au-cameras")),
    watchlist_ids: checkedValues($("#au-watchlists")).map(Number),
    valid_from: fromInput(f.get("valid_from")),
    valid_to: fromInput(f.get("valid_to")),
    footage_from: retro ? fromInput(f.get("footage_from")) : null,
    footage_to: retro ? fromInput(f.get("footage_to")) : null,
    keep_matches_days: Number(f.get("keep_matches_days") || 0),
    case_ref: f.get("case_ref") || "",
  };
  $("#au-form-error").textContent = "";
  try {
    const a = await sendJson("/authorisations", "POST", body);
    ev.target.reset();
    ev.target.hidden = true;
    await loadAuthorisations(a.id);
    $("#au-d-msg").textContent = `Requested: authorisation #${a.id} waits for approval by the authority.`;
  } catch (e) {
    $("#au-form-error").textContent = `Not requested: ${fieldProblem(e)}`;
  }
});

// Face watchlists -------------------------------------------------------------------------
const wl = { lists: [], selected: null };

async function loadWatchlists(select = wl.selected) {
  $("#wl-error").textContent = "";
  try {
    wl.lists = await api("/faces/watchlists");
  } catch (e) {
    $("#wl-error").textContent = e.message;
    return;
  }
  $("#wl-lists").replaceChildren(...wl.lists.map((x) => h("li", {},
    h("button", { type: "button", class: "hl-item wl-item" + (x.id === select ? " selected" : ""), dataset: { id: x.id },
                  "aria-current": x.id === select ? "true" : null, onclick: () => openWatchlist(x.id) },
      h("span", { class: "name" }, x.name),
      h("span", { class: "muted small" }, `by ${x.created_by}, changed ${when(x.updated_at)}`)))));
  $("#wl-empty").hidden = wl.lists.length > 0;
  if (select != null && wl.lists.some((x) => x.id === select)) await openWatchlist(select);
  else {
    wl.selected = null;
    $("#wl-detail").hidden = true;
  }
}
onTab.watchlists = () => {
  $("#wl-d-msg").textContent = "";
  loadWatchlists();
};

async function openWatchlist(id) {
  if (wl.selected !== id) $("#wl-d-msg").textContent = "";
  wl.selected = id;
  document.querySelectorAll("#wl-lists .wl-item").forEach((b) => {
    const on = Number(b.dataset.id) === id;
    b.classList.toggle("selected", on);
    if (on) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  });
  $("#wl-d-error").textContent = "";
  let x;
  try {
    x = await api(`/faces/watchlists/${id}`);
  } catch (e) {
    $("#wl-d-error").textContent = e.message;
    return;
  }
  if (wl.selected !== id) return;
  $("#wl-form").hidden = true;
  const box = $("#wl-detail");
  box.hidden = false;
  box.dataset.id = String(id);
  $("#wl-d-title").textContent = x.name;
  const images = x.persons.reduce((n, p) => n + p.enrolments.length, 0);
  const facts = [
    ["Legal basis", x.legal_basis],
    ...(x.description ? [["Description", x.description]] : []),
    ["Created", `${when(x.created_at)} by ${x.created_by}`],
    ["Contents", `${x.persons.length} person${x.persons.length === 1 ? "" : "s"}, ${images} image${images === 1 ? "" : "s"}`],
    ["Version", h("code", { title: x.version }, x.version.slice(0, 16))],
  ];
  $("#wl-d-meta").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  $("#wl-persons").replaceChildren(...x.persons.map(personItem));
  $("#wl-persons-empty").hidden = x.persons.length > 0;
}

function qualityText(q) {
  if (!q) return "";
  const parts = [];
  if (q.score != null) parts.push(`quality ${pct(q.score)}`);
  if (q.size != null) parts.push(`${Math.round(q.size)} px`);
  if (q.sharpness != null) parts.push(`sharpness ${Number(q.sharpness).toFixed(0)}`);
  return parts.join(", ");
}

function personItem(p) {
  const images = p.enrolments.map((e) => h("figure", { class: "enrolment", dataset: { id: e.id } },
    h("img", { class: "face-thumb", src: e.image, alt: `enrolled image ${e.id} of ${p.label}`, loading: "lazy" }),
    h("figcaption", {},
      h("span", { class: "source" }, `Source: ${e.source}`),
      h("span", { class: "basis" }, `Legal basis: ${e.legal_basis}`),
      h("span", {}, `${qualityText(e.quality)}`),
      h("span", {}, `added by ${e.added_by}, ${when(e.added_at)}`)),
    h("button", { type: "button", class: "remove", "aria-label": `Remove image ${e.id} of ${p.label}`,
                  onclick: (ev) => removeEnrolment(e, p, ev.target) }, "Remove")));
  const err = h("p", { class: "error enrol-error", role: "alert" });
  const form = h("form", { class: "enrol-form", "aria-label": `Enrol an image of ${p.label}` },
    h("label", {}, "Photo (one face)", h("input", { type: "file", name: "image", accept: "image/jpeg,image/png,image/webp,image/bmp" })),
    h("label", {}, "Source (required)", h("input", { name: "source", maxlength: 500, "aria-required": "true", placeholder: "where the image comes from" })),
    h("label", {}, "Legal basis (required)", h("input", { name: "legal_basis", maxlength: 2000, "aria-required": "true", placeholder: "why it may be enrolled" })),
    h("button", { type: "submit" }, "Enrol image"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    enrolImage(p, form, err);
  });
  return h("li", { class: "person", dataset: { id: p.id, label: p.label } },
    h("div", { class: "person-head" },
      h("h4", {}, p.label),
      p.notes ? h("span", { class: "muted small" }, p.notes) : null,
      h("button", { type: "button", class: "remove", "aria-label": `Remove ${p.label} from the list`,
                    onclick: (ev) => removePerson(p, ev.target) }, "Remove person")),
    h("div", { class: "enrolments" }, ...images,
      images.length ? null : h("p", { class: "muted small" }, "No image enrolled: this person cannot be matched.")),
    form, err);
}

async function enrolImage(p, form, err) {
  const data = new FormData(form);
  const file = data.get("image");
  err.textContent = "";
  $("#wl-d-msg").textContent = "";
  if (!file || !file.size) {
    err.textContent = "Not enrolled: choose a photo first.";
    return;
  }
  const btn = form.querySelector("button");
  btn.disabled = true;
  btn.textContent = "Checking the face…";
  try {
    await api(`/faces/persons/${p.id}/enrolments`, { method: "POST", body: data });
    await openWatchlist(wl.selected);
    $("#wl-d-msg").textContent = `Enrolled an image of ${p.label}.`;
  } catch (e) {
    err.textContent = `Not enrolled: ${fieldProblem(e)}`;
  } finally {
    btn.disabled = false;
    btn.textContent = "Enrol image";
  }
}

async function removeEnrolment(e, p, btn) {
  btn.disabled = true;
  $("#wl-d-error").textContent = "";
  try {
    await api(`/faces/enrolments/${e.id}`, { method: "DELETE" });
    await openWatchlist(wl.selected);
    $("#wl-d-msg").textContent = `Removed an image of ${p.label}.`;
  } catch (err) {
    btn.disabled = false;
    $("#wl-d-error").textContent = `Not removed: ${err.message}`;
  }
}

async function removePerson(p, btn) {
  btn.disabled = true;
  $("#wl-d-error").textContent = "";
  try {
    await api(`/faces/persons/${p.id}`, { method: "DELETE" });
    await openWatchlist(wl.selected);
    $("#wl-d-msg").textContent = `Removed ${p.label} and their images.`;
  } catch (err) {
    btn.disabled = false;
    $("#wl-d-error").textContent = `Not removed: ${err.message}`;
  }
}

$("#wl-new").addEventListener("click", () => {
  $("#wl-form").hidden = false;
  $("#wl-detail").hidden = true;
  $("#wl-form-error").textContent = "";
  $("#wl-form [name=name]").focus();
});
$("#wl-form-cancel").addEventListener("click", () => {
  $("#wl-form").reset();
  $("#wl-form").hidden = true;
  if (wl.selected != null) openWatchlist(wl.selected);
});
$("#wl-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("#wl-form-error").textContent = "";
  try {
    const x = await sendJson("/faces/watchlists", "POST",
      { name: f.get("name"), legal_basis: f.get("legal_basis"), description: f.get("description") || "" });
    ev.target.reset();
    ev.target.hidden = true;
    await loadWatchlists(x.id);
    $("#wl-d-msg").textContent = `Created “${x.name}”.`;
  } catch (e) {
    $("#wl-form-error").textContent = `Not created: ${fieldProblem(e)}`;
  }
});
$("#wl-person-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("#wl-d-error").textContent = "";
  $("#wl-d-msg").textContent = "";
  try {
    const p = await sendJson(`/faces/watchlists/${wl.selected}/persons`, "POST", { label: f.get("label"), notes: f.get("notes") || "" });
    ev.target.reset();
    await openWatchlist(wl.selected);
    $("#wl-d-msg").textContent = `Added ${p.label}: enrol an image of them.`;
  } catch (e) {
    $("#wl-d-error").textContent = `Not added: ${fieldProblem(e)}`;
  }
});
$("#wl-delete").addEventListener("click", async () => {
  const id = wl.selected;
  $("#wl-d-error").textContent = "";
  try {
    await api(`/faces/watchlists/${id}`, { method: "DELETE" });
    wl.selected = null;
    await loadWatchlists(null);
  } catch (e) {
    $("#wl-d-error").textContent = `Not deleted: ${e.message}`;
  }
});

// Candidate matches: four-eyes review in the command centre -------------------------------
const CONFIRMATIONS = 2;
const rv = new Map(); // candidate id -> {c, li}

async function loadCandidates() {
  $("#rv-error").textContent = "";
  let list;
  try {
    list = await api("/faces/candidates?status=pending&limit=200");
  } catch (e) {
    $("#rv-error").textContent = `Candidates unavailable: ${e.message}`;
    return;
  }
  const ids = new Set(list.map((c) => c.id));
  for (const [id, x] of rv) {
    if (!ids.has(id) && x.c.status === "pending") {
      x.li.remove();
      rv.delete(id);
    }
  }
  for (const c of list) showCandidate(c, "list");
}
$("#rv-refresh").addEventListener("click", loadCandidates);

function showCandidate(c, source) {
  const old = rv.get(c.id);
  if (old) {
    c = { ...old.c, ...c, person: c.person || old.c.person };
    // The same news twice (the review's answer and the feed): keep the card as it is.
    if (c.status === old.c.status && JSON.stringify(c.reviews) === JSON.stringify(old.c.reviews)) {
      old.c = c;
      return;
    }
  } else if (c.status !== "pending") return; // decided before this page saw it
  const li = candidateCard(c, source);
  if (old) old.li.replaceWith(li);
  else {
    const list = $("#rv-list");
    const after = [...list.children].find((x) => Number(x.dataset.ts) < c.ts);
    list.insertBefore(li, after || null);
  }
  rv.set(c.id, { c, li });
  if (c.status !== "pending") {
    // Decided: it stays in view a while, then leaves the queue.
    setTimeout(() => {
      const x = rv.get(c.id);
      if (x && x.c.status !== "pending") {
        x.li.remove();
        rv.delete(c.id);
        countCandidates();
      }
    }, 60_000);
  }
  countCandidates();
}

function countCandidates() {
  const pending = [...rv.values()].filter((x) => x.c.status === "pending").length;
  const badge = $("#rv-count");
  badge.textContent = String(pending);
  badge.classList.toggle("hot", pending > 0);
  $("#rv-empty").hidden = rv.size > 0;
}

function reviewState(c) {
  const confirms = c.reviews.filter((r) => r.decision === "confirm").map((r) => r.by);
  if (c.status === "confirmed") return `Confirmed by ${confirms.join(" and ")}: alert raised.`;
  if (c.status === "rejected") {
    const r = c.reviews.find((x) => x.decision === "reject");
    return `Rejected by ${r ? r.by : "a reviewer"}${r?.note ? ` (${r.note})` : ""}: no alert.`;
  }
  const who = confirms.length ? ` (${confirms.join(", ")})` : "";
  const mine = confirms.includes(me.username) ? "; you confirmed, a second reviewer must" : "";
  return `${confirms.length} of ${CONFIRMATIONS} confirmations${who}${mine}`;
}

function candidateCard(c, source) {
  const err = h("p", { class: "error", role: "alert" });
  const pending = c.status === "pending";
  const q = qualityText(c.quality);
  const above = c.score >= c.threshold;
  const li = h("li", { class: `candidate st-${c.status}` + (source === "feed" && c.status === "pending" ? " fresh" : ""),
                       dataset: { id: c.id, ts: c.ts, status: c.status, camera: c.camera_id } },
    h("div", { class: "faces" },
      h("figure", {},
        c.crop ? h("img", { class: "face-img live-crop", src: c.crop, alt: `face seen on ${camName(c.camera_id)}` })
               : h("span", { class: "face-img none" }, "no crop"),
        h("figcaption", {}, "Seen live")),
      h("figure", {},
        h("img", { class: "face-img enrolled", src: c.enrolled_image, alt: `enrolled image of ${c.person}` }),
        h("figcaption", {}, "Enrolled"))),
    h("div", { class: "facts" },
      h("span", { class: "person" }, c.person || `person #${c.person_id}`),
      h("span", { class: "score" }, `score ${score3(c.score)} ${above ? "≥" : "<"} threshold ${score3(c.threshold)}`),
      q ? h("span", { class: "quality muted small" }, q) : null,
      h("span", { class: "cam" }, camName(c.camera_id)),
      h("span", {}, timeEl(c.ts, stamp(c.ts))),
      h("span", { class: "muted small" }, `authorisation #${c.authorisation_id}`),
      h("span", { class: "state", role: "status" }, reviewState(c))),
    pending ? h("div", { class: "actions" },
      h("button", { type: "button", class: "primary confirm-btn", "aria-label": `Confirm: this is ${c.person}`,
                    onclick: () => review(c, "confirm", li, err) }, "Confirm"),
      h("button", { type: "button", class: "danger reject-btn", "aria-label": `Reject: this is not ${c.person}`,
                    onclick: () => review(c, "reject", li, err) }, "Reject")) : null,
    err);
  return li;
}

async function review(c, decision, li, err) {
  li.querySelectorAll(".actions button").forEach((b) => (b.disabled = true));
  err.textContent = "";
  try {
    const r = await sendJson(`/faces/candidates/${c.id}/review`, "POST", { decision });
    showCandidate(r, "review");
  } catch (e) {
    li.querySelectorAll(".actions button").forEach((b) => (b.disabled = false));
    err.textContent = `Not recorded: ${e.message}`;
  }
}

// A confirmed face match in the alerts panel: the faces for those who may see them.
function faceHitText(a) {
  const by = (a.confirmed_by || []).join(" and ");
  return `face match: ${a.person} (score ${score3(a.score)})${by ? `, confirmed by ${by}` : ""}`;
}

function faceHit(a) {
  const pics = can("faces.review") && a.crop
    ? [h("img", { class: "face-img small live-crop", src: a.crop, alt: `face seen on ${camName(a.camera_id)}` }),
       h("img", { class: "face-img small enrolled", src: a.enrolled_image, alt: `enrolled image of ${a.person}` })]
    : [];
  const at = a.playback ? new URL(a.playback, location.origin).searchParams : null;
  const play = at && can("playback")
    ? h("button", { type: "button", class: "play", "aria-label": `Play ${camName(a.camera_id)} at ${stamp(a.ts)}`,
                    onclick: () => playAt(a.camera_id, Number(at.get("start")), Number(at.get("end")), null) }, "Play")
    : null;
  const attach = attachButton("alert", a.id, `the face match of ${a.person}`);
  return pics.length || play || attach ? h("div", { class: "plate-hit face-hit" }, ...pics, play, attach) : null;
}

// Search by photo (retrospective) ---------------------------------------------------------
const fs = { auths: [], job: null, timer: null, why: null };
const FS_DONE = ["done", "failed", "cancelled", "stopped"];

async function loadSearchTab() {
  $("#fs-error").textContent = "";
  try {
    fs.auths = (await api("/authorisations")).filter((a) => a.mode === "retrospective" && a.status === "active");
  } catch (e) {
    $("#fs-error").textContent = e.message;
    fs.auths = [];
  }
  const sel = $("#fs-auth");
  const keep = sel.value;
  sel.replaceChildren(...fs.auths.map((a) => new Option(`#${a.id} ${a.objective} (${a.authority_ref})`, String(a.id))));
  if (!fs.auths.length) sel.add(new Option("no active retrospective authorisation", ""));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  scopeOfSearch();
  loadSearches();
}
onTab.facesearch = loadSearchTab;

// The form starts at the authorisation's whole scope: its cameras and footage window.
function scopeOfSearch() {
  const a = fs.auths.find((x) => String(x.id) === $("#fs-auth").value);
  const f = $("#fs-form").elements;
  checkboxes($("#fs-cameras"), (a?.camera_ids || []).map((id) => [id, camName(id)]), () => true);
  if (!a) {
    $("#fs-scope").textContent = "A search by photo needs an active retrospective authorisation: request one in the Authorisations tab.";
    return;
  }
  f.namedItem("start").value = inputUp(a.footage_from);
  f.namedItem("end").value = inputDown(a.footage_to);
  if (!f.namedItem("case_ref").value && a.case_ref) f.namedItem("case_ref").value = a.case_ref;
  $("#fs-scope").textContent = `Authorisation #${a.id} covers ${camNames(a.camera_ids)}, footage from ${when(a.footage_from)} ` +
    `to ${when(a.footage_to)}, until ${when(a.valid_to)}. A search cannot reach outside it; every search is in its use log.`;
}
$("#fs-auth").addEventListener("change", scopeOfSearch);

$("#fs-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("#fs-error").textContent = "";
  const file = f.get("probe");
  if (!file || !file.size) {
    $("#fs-error").textContent = "Search refused: choose a photo of the person first.";
    return;
  }
  const body = new FormData();
  body.set("probe", file);
  body.set("authorisation_id", f.get("authorisation_id") || "");
  body.set("camera_ids", checkedValues($("#fs-cameras")).join(","));
  body.set("start", String(fromInput(f.get("start")) ?? ""));
  body.set("end", String(fromInput(f.get("end")) ?? ""));
  body.set("purpose", f.get("purpose") || "");
  body.set("case_ref", f.get("case_ref") || "");
  const btn = ev.target.querySelector("button[type=submit]");
  btn.disabled = true;
  try {
    const row = await api("/faces/searches", { method: "POST", body });
    showSearch(row);
    loadSearches();
  } catch (e) {
    $("#fs-error").textContent = `Search refused: ${fieldProblem(e)}`;
  } finally {
    btn.disabled = false;
  }
});

function searchStatus(s) {
  const faces = `${s.faces_seen} face${s.faces_seen === 1 ? "" : "s"} found`;
  switch (s.status) {
    case "queued": return "Queued: waiting for the search worker…";
    case "running": return `Reading the recordings: ${s.segments_done} of ${s.segments_total} segments, ${faces} so far.`;
    case "done": return `Done: ${s.segments_total} segment${s.segments_total === 1 ? "" : "s"} read, ${faces}.`;
    case "failed": return `Failed: ${s.error}`;
    case "stopped": return `Stopped: ${s.error}`;
    case "cancelled": return "Cancelled.";
    default: return s.status;
  }
}

function showSearch(s) {
  clearTimeout(fs.timer);
  const fresh = fs.job !== s.id;
  fs.job = s.id;
  fs.why = new URLSearchParams({ purpose: s.purpose, case_ref: s.case_ref });
  const box = $("#fs-job");
  box.hidden = false;
  box.dataset.id = String(s.id);
  box.dataset.status = s.status;
  $("#fs-job-title").textContent = `Search #${s.id}, case ${s.case_ref}: ${camNames(s.camera_ids)}, ${when(s.from_ts)} to ${when(s.to_ts)}`;
  const probe = $("#fs-probe");
  if (s.probe && probe.getAttribute("src") !== s.probe) probe.src = s.probe;
  probe.hidden = !s.probe;
  const bar = $("#fs-progress");
  bar.value = s.progress;
  bar.textContent = pct(s.progress);
  bar.setAttribute("aria-valuetext", `${pct(s.progress)}, ${s.status}`);
  $("#fs-status").textContent = searchStatus(s);
  $("#fs-cancel").hidden = FS_DONE.includes(s.status);
  $("#fs-attach").replaceChildren(attachButton("face_search", s.id, `search #${s.id}`) || "");
  if (fresh) {
    $("#fs-results").hidden = true;
    $("#fs-results tbody").replaceChildren();
  }
  if (FS_DONE.includes(s.status)) loadSearchResults(s.id);
  else fs.timer = setTimeout(() => pollSearch(s.id), 1000);
}

async function pollSearch(id) {
  if (fs.job !== id) return;
  try {
    const s = await api(`/faces/searches/${id}`);
    if (fs.job === id) showSearch(s);
    if (FS_DONE.includes(s.status)) loadSearches();
  } catch (e) {
    $("#fs-error").textContent = e.message;
    fs.timer = setTimeout(() => pollSearch(id), 3000);
  }
}

async function loadSearchResults(id) {
  let r;
  try {
    r = await api(`/faces/searches/${id}/results?limit=50`);
  } catch (e) {
    $("#fs-error").textContent = `Results unavailable: ${e.message}`;
    return;
  }
  if (fs.job !== id) return;
  const rows = r.results.map((x, i) => searchRow(x, i + 1));
  $("#fs-results tbody").replaceChildren(...rows);
  $("#fs-results").hidden = !rows.length;
  const matches = r.results.filter((x) => x.match).length;
  $("#fs-status").textContent = searchStatus(r.search) + " " + (rows.length
    ? `Best ${rows.length} shown, most similar first; ${matches} at or above the threshold (${score3(r.threshold)}). Viewing them is in the use log.`
    : "No faces in this footage.");
}

function searchRow(x, rank) {
  const at = new URL(x.playback, location.origin).searchParams;
  return h("tr", { dataset: { id: x.id, ts: x.ts, camera: x.camera_id, score: x.score, match: String(x.match), rank } },
    h("td", { class: "num rank" }, String(rank)),
    h("td", {}, x.crop ? h("img", { class: "face-thumb", src: x.crop, alt: `face ${rank}` }) : h("span", { class: "muted" }, "no crop")),
    h("td", { class: "num score" }, score3(x.score)),
    h("td", { class: "match" + (x.match ? " yes" : "") }, x.match ? "match" : "below threshold"),
    h("td", { class: "cam" }, camName(x.camera_id)),
    h("td", {}, timeEl(x.ts, stamp(x.ts))),
    h("td", { class: "actions" }, can("playback")
      ? h("button", { type: "button", class: "play", "aria-label": `Play ${camName(x.camera_id)} at ${stamp(x.ts)}`,
                      onclick: () => playAt(x.camera_id, Number(at.get("start")), Number(at.get("end")), fs.why) }, "Play")
      : null));
}

$("#fs-cancel").addEventListener("click", async () => {
  const id = fs.job;
  try {
    showSearch(await api(`/faces/searches/${id}/cancel`, { method: "POST" }));
    loadSearches();
  } catch (e) {
    $("#fs-error").textContent = `Not cancelled: ${e.message}`;
  }
});

async function loadSearches() {
  let list;
  try {
    list = await api("/faces/searches");
  } catch (e) {
    $("#fs-error").textContent = e.message;
    return;
  }
  $("#fs-list").replaceChildren(...list.map((s) => h("li", {},
    h("button", { type: "button", class: "hl-item fs-item", dataset: { id: s.id, status: s.status }, onclick: () => showSearch(s) },
      h("span", { class: "name" }, `#${s.id} case ${s.case_ref}: ${s.purpose}`),
      h("span", { class: `status st-${s.status}` }, s.status),
      h("span", { class: "muted small" }, `${camNames(s.camera_ids)}; by ${s.created_by}, ${when(s.created_at)}`)))));
  $("#fs-list-empty").hidden = list.length > 0;
}

// Cases ------------------------------------------------------------------------------------
const cs = { list: [], selected: null };
const KIND_TEXT = { plate_read: "plate read", alert: "alert", face_search: "face search" };

async function loadCases(select = cs.selected) {
  $("#cs-error").textContent = "";
  try {
    cs.list = await api("/cases");
  } catch (e) {
    $("#cs-error").textContent = e.message;
    return;
  }
  $("#cs-list").replaceChildren(...cs.list.map((c) => h("li", {},
    h("button", { type: "button", class: "hl-item cs-item" + (c.id === select ? " selected" : ""), dataset: { id: c.id, open: String(c.open) },
                  "aria-current": c.id === select ? "true" : null, onclick: () => openCase(c.id) },
      h("span", { class: "name" }, c.reference),
      h("span", { class: `status ${c.open ? "st-active" : "st-expired"}` }, c.open ? "open" : "closed"),
      h("span", { class: "muted small" }, c.title || `opened by ${c.created_by}`)))));
  $("#cs-empty").hidden = cs.list.length > 0;
  if (select != null && cs.list.some((c) => c.id === select)) await openCase(select);
  else {
    cs.selected = null;
    $("#cs-detail").hidden = true;
  }
}
onTab.cases = () => {
  $("#cs-d-msg").textContent = "";
  loadCases();
};

async function openCase(id) {
  if (cs.selected !== id) $("#cs-d-msg").textContent = "";
  cs.selected = id;
  document.querySelectorAll("#cs-list .cs-item").forEach((b) => {
    const on = Number(b.dataset.id) === id;
    b.classList.toggle("selected", on);
    if (on) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  });
  $("#cs-d-error").textContent = "";
  let c;
  try {
    c = await api(`/cases/${id}`);
  } catch (e) {
    $("#cs-d-error").textContent = e.message;
    return;
  }
  if (cs.selected !== id) return;
  const box = $("#cs-detail");
  box.hidden = false;
  box.dataset.id = String(id);
  box.dataset.open = String(c.open);
  $("#cs-d-title").textContent = c.title ? `${c.reference}: ${c.title}` : c.reference;
  const st = $("#cs-d-state");
  st.textContent = c.open ? "open" : "closed";
  st.className = `status ${c.open ? "st-active" : "st-expired"}`;
  $("#cs-close").hidden = !c.open;
  const facts = [["Opened", `${when(c.created_at)} by ${c.created_by}`]];
  if (!c.open) facts.push(["Closed", `${when(c.closed_at)} by ${c.closed_by}: its items follow ordinary retention again`]);
  $("#cs-d-meta").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  $("#cs-items tbody").replaceChildren(...c.items.map((i) => h("tr", { dataset: { kind: i.kind, ref: i.ref_id } },
    h("td", {}, `${KIND_TEXT[i.kind] || i.kind} #${i.ref_id}`),
    h("td", {}, i.note || "–"),
    h("td", { class: "muted small" }, `${when(i.added_at)} by ${i.added_by}`),
    h("td", {}, c.open ? h("button", { type: "button", class: "remove", "aria-label": `Detach ${KIND_TEXT[i.kind] || i.kind} ${i.ref_id}`,
                                       onclick: (ev) => detach(c, i, ev.target) }, "Detach") : null))));
  $("#cs-items").hidden = !c.items.length;
  $("#cs-items-empty").hidden = c.items.length > 0;
}

async function detach(c, i, btn) {
  btn.disabled = true;
  $("#cs-d-error").textContent = "";
  try {
    await api(`/cases/${c.id}/items/${enc(i.kind)}/${i.ref_id}`, { method: "DELETE" });
    await openCase(c.id);
    $("#cs-d-msg").textContent = `Detached ${KIND_TEXT[i.kind] || i.kind} #${i.ref_id}.`;
  } catch (e) {
    btn.disabled = false;
    $("#cs-d-error").textContent = `Not detached: ${e.message}`;
  }
}

$("#cs-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("#cs-form-error").textContent = "";
  try {
    const c = await sendJson("/cases", "POST", { reference: f.get("reference"), title: f.get("title") || "" });
    ev.target.reset();
    await loadCases(c.id);
    $("#cs-d-msg").textContent = `Opened case ${c.reference}.`;
  } catch (e) {
    $("#cs-form-error").textContent = `Not opened: ${fieldProblem(e)}`;
  }
});
$("#cs-close").addEventListener("click", async () => {
  const id = cs.selected;
  $("#cs-d-error").textContent = "";
  try {
    const c = await api(`/cases/${id}/close`, { method: "POST" });
    await loadCases(id);
    $("#cs-d-msg").textContent = `Closed case ${c.reference}.`;
  } catch (e) {
    $("#cs-d-error").textContent = `Not closed: ${e.message}`;
  }
});

// "Attach to case": an alert, a plate read or a face search, to an open case.
const attaching = { kind: null, ref: null };
function attachButton(kind, refId, label, text = "Attach to case") {
  if (!can("case.manage")) return null;
  return h("button", { type: "button", class: "attach", "aria-label": `Attach ${label} to a case`,
                       onclick: () => openAttach(kind, refId, label) }, text);
}

async function openAttach(kind, refId, label) {
  Object.assign(attaching, { kind, ref: refId });
  const dlg = $("#attach-dialog");
  $("#at-what").textContent = `Attach ${label} to an open case: it is kept while the case is open.`;
  $("#at-msg").textContent = "";
  $("#at-error").textContent = "";
  $("#attach-form").reset();
  const sel = $("#at-case");
  sel.replaceChildren();
  $("#at-submit").disabled = true;
  if (!dlg.open) dlg.showModal();
  let open = [];
  try {
    open = await api("/cases?open_only=true");
  } catch (e) {
    $("#at-error").textContent = e.message;
    return;
  }
  for (const c of open) sel.add(new Option(c.title ? `${c.reference}: ${c.title}` : c.reference, String(c.id)));
  if (!open.length) $("#at-error").textContent = "No open case: open one in the Cases tab first.";
  $("#at-submit").disabled = !open.length;
}
$("#attach-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const caseId = Number(f.get("case"));
  $("#at-msg").textContent = "";
  $("#at-error").textContent = "";
  try {
    const c = await sendJson(`/cases/${caseId}/items`, "POST", { kind: attaching.kind, ref_id: attaching.ref, note: f.get("note") || "" });
    $("#at-msg").textContent = `Attached to case ${c.reference}.`;
    if (cs.selected === caseId && !$("#cs-detail").hidden) openCase(caseId);
  } catch (e) {
    $("#at-error").textContent = `Not attached: ${fieldProblem(e)}`;
  }
});
$("#at-cancel").addEventListener("click", () => $("#attach-dialog").close());

// Default the playback start to 10 minutes ago (UTC).
(() => {
  const d = new Date(Date.now() - 10 * 60 * 1000);
  document.querySelector('#playback-form [name="start"]').value = d.toISOString().slice(0, 19);
})();

boot();

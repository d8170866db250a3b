/* fer-edge dashboard: the page's state, fed by the server's event stream (/events), with bounded memory.
   The server sends one snapshot on every (re)connection, then one change per MQTT message. The page
   keeps at most what the server's limits say (events, summaries of the last hour, ids for de-dup),
   so it can stay open on a kiosk for days. Rendering is batched into one animation frame. */
"use strict";

const Dash = {
  devices: new Map(),            // id -> device (see newDevice)
  broker: null,                  // {connected, address, error, since}
  counters: {},
  prefix: "",
  limits: { events_per_device: 30, summary_window_s: 3600, summaries_per_camera: 360, seen_ids: 2048 },
  ticker: [],                    // latest per-face events of the whole fleet, newest (event time) first
  tickerMax: 14,
  tickerDirty: false,            // a per-face event arrived: rebuild the ticker before the next render
  stream: "connecting",          // connecting | open | lost
  // message-to-screen latency (ms) of live events: publish time (event epoch) to the frame that showed it
  latency: [], latencyMax: 20000, latencyNext: 0, pending: [],
  received: 0,
  dirty: new Set(), fleetDirty: true, frame: 0,
};
window.ferDash = Dash;
Dash.ingest = (msg) => ingest(msg);
Dash.redraw = () => schedule();
Dash.history = false;            // the server keeps a history store (snapshot.history.enabled)

function newDevice(id) {
  return { id, status: null, since: null, stats: null, config: null, heard: 0, per_face: false, gaps: 0,
           cameras: new Map(), events: [], seen: new Map(), newest: 0 };
}

function cameraOf(dev, name) {
  let cam = dev.cameras.get(name);
  if (!cam) { cam = { state: null, summaries: [] }; dev.cameras.set(name, cam); }
  return cam;
}

function device(id) {
  let dev = Dash.devices.get(id);
  if (!dev) { dev = newDevice(id); Dash.devices.set(id, dev); }
  return dev;
}

/* true the first time an event id is seen on this device; the set forgets its oldest ids. The server
   already de-duplicates (its window: limits.seen_ids); the page only guards its own view, so a
   shorter window is enough and keeps a kiosk's memory small. */
const PAGE_SEEN_IDS = 512;
function firstSight(dev, id) {
  if (dev.seen.has(id)) return false;
  dev.seen.set(id, true);
  if (dev.seen.size > Math.min(PAGE_SEEN_IDS, Dash.limits.seen_ids)) dev.seen.delete(dev.seen.keys().next().value);
  return true;
}

function pruneSummaries(cam, nowS) {
  const lim = Dash.limits;
  while (cam.summaries.length > lim.summaries_per_camera) cam.summaries.shift();
  while (cam.summaries.length && cam.summaries[0].epoch < nowS - lim.summary_window_s) cam.summaries.shift();
}

function addEvent(dev, ev, live) {
  if (!firstSight(dev, ev.id)) return false;
  if (typeof ev.epoch === "number" && ev.epoch > dev.newest) dev.newest = ev.epoch;
  if (ev.type === "summary") {
    const cam = cameraOf(dev, ev.camera);
    cam.summaries.push(ev);
    pruneSummaries(cam, Date.now() / 1000);
    return true;
  }
  dev.per_face = true;
  // kept in event-time order: a late (re-delivered, queued) event goes where it happened, not on top
  let i = dev.events.length;
  while (i > 0 && dev.events[i - 1].epoch > ev.epoch) i -= 1;
  dev.events.splice(i, 0, ev);
  if (dev.events.length > Dash.limits.events_per_device) dev.events.shift();
  Dash.tickerDirty = true;
  if (live && typeof ev.epoch === "number") Dash.pending.push(ev.epoch * 1000);
  return true;
}

/* The fleet's latest per-face events, newest event time first, fair between cameras: each camera
   (device + camera) may fill at most its share of the list (tickerMax / cameras with events, at
   least 2), so one busy camera cannot push every other device's events off it. */
function buildTicker() {
  const all = [];
  for (const dev of Dash.devices.values()) for (const ev of dev.events) all.push([dev, ev]);
  all.sort((a, b) => b[1].epoch - a[1].epoch);
  const sources = new Set(all.map(([dev, ev]) => `${dev.id}\u0000${ev.camera}`));
  const share = Math.max(2, Math.ceil(Dash.tickerMax / Math.max(1, sources.size)));
  const taken = new Map(), out = [];
  for (const [dev, ev] of all) {
    const key = `${dev.id}\u0000${ev.camera}`;
    const n = taken.get(key) || 0;
    if (n >= share) continue;
    taken.set(key, n + 1);
    out.push(Object.assign({ device: dev.id, name: (dev.stats && dev.stats.name) || dev.id }, ev));
    if (out.length >= Dash.tickerMax) break;
  }
  Dash.ticker = out;
  Dash.tickerDirty = false;
}

function loadSnapshot(snap) {
  Dash.devices.clear();
  Dash.ticker = [];
  Dash.prefix = snap.prefix;
  Object.assign(Dash.limits, snap.limits || {});
  Dash.counters = snap.counters || {};
  Dash.broker = snap.broker || null;
  Dash.history = !!(snap.history && snap.history.enabled);
  for (const d of snap.devices || []) {
    const dev = device(d.id);
    Object.assign(dev, { status: d.status, since: d.since, stats: d.stats, config: d.config, heard: d.heard,
                         per_face: d.per_face, gaps: d.gaps, newest: d.newest || 0 });
    for (const [name, c] of Object.entries(d.cameras || {})) {
      const cam = cameraOf(dev, name);
      cam.state = c.state;
      for (const ev of c.summaries || []) addEvent(dev, ev, false);
    }
    for (const ev of d.events || []) addEvent(dev, ev, false);
  }
  buildTicker();
}

/* Apply one change from the server; returns the device id it touched (or "*" for the whole page). */
function apply(msg) {
  switch (msg.t) {
    case "snapshot": loadSnapshot(msg); return "*";
    case "broker": Dash.broker = msg; return "*";
    case "removed": Dash.devices.delete(msg.device); Dash.tickerDirty = true; return "*";
    default: break;
  }
  const dev = device(msg.device);
  dev.heard = msg.rx || Date.now() / 1000;
  switch (msg.t) {
    case "status": dev.status = msg.data; dev.since = msg.since; break;
    case "stats": dev.stats = msg.data; break;
    case "config": dev.config = msg.data; break;
    case "state": cameraOf(dev, msg.camera).state = msg.data; break;
    case "camera_removed": dev.cameras.delete(msg.camera); break;
    case "event": dev.gaps = msg.gaps || 0; if (!addEvent(dev, msg.data, true)) return null; break;
    default: return null;
  }
  return dev.id;
}

function onMessage(e) {
  let msg;
  try { msg = JSON.parse(e.data); } catch (err) { return; }
  ingest(msg);
}

/* one change from the server (also the entry point of the page's memory test) */
function ingest(msg) {
  Dash.received += 1;
  const touched = apply(msg);
  if (touched === "*") { Dash.fleetDirty = true; Dash.dirty.clear(); Dash.dirty.add("*"); }
  else if (touched) Dash.dirty.add(touched);
  schedule();
}

function schedule() {
  if (!Dash.frame) Dash.frame = requestAnimationFrame(renderFrame);
}

function renderFrame() {
  Dash.frame = 0;
  if (Dash.tickerDirty && !location.hash.startsWith("#/device/")) buildTicker();   // only the fleet view shows it
  window.ferViews.render(Dash);
  Dash.dirty.clear();
  Dash.fleetDirty = false;
  // the events just applied are on screen now: record their message-to-screen latency
  const now = performance.timeOrigin + performance.now();
  for (const published of Dash.pending) {
    Dash.latency[Dash.latencyNext] = now - published;
    Dash.latencyNext = (Dash.latencyNext + 1) % Dash.latencyMax;
  }
  Dash.pending.length = 0;
}

function connect() {
  const es = new EventSource("events");
  es.onopen = () => { Dash.stream = "open"; Dash.fleetDirty = true; schedule(); };
  es.onmessage = onMessage;
  es.onerror = () => { Dash.stream = "lost"; Dash.fleetDirty = true; schedule(); };   // EventSource retries itself
}

/* Kiosk mode (dark, large, no controls): ?kiosk in the address, the button, or the k key; remembered. */
function setKiosk(on) {
  document.body.classList.toggle("kiosk", on);
  try { localStorage.setItem("fer-edge-kiosk", on ? "1" : "0"); } catch (err) { /* private mode */ }
  Dash.fleetDirty = true; Dash.dirty.add("*"); schedule();
}

function startRotation(seconds) {
  // kiosk with ?rotate=N: show each device's camera view for N s in turn, then the fleet view
  let i = -1;
  setInterval(() => {
    const ids = Array.from(Dash.devices.keys()).sort();
    i = (i + 1) % (ids.length + 1);
    location.hash = i === ids.length ? "#/" : "#/device/" + encodeURIComponent(ids[i]);
  }, Math.max(5, seconds) * 1000);
}

function init() {
  const params = new URLSearchParams(location.search);
  let stored = null;
  try { stored = localStorage.getItem("fer-edge-kiosk"); } catch (err) { /* private mode */ }
  if (params.has("dark")) document.body.classList.add("dark");
  setKiosk(params.has("kiosk") ? params.get("kiosk") !== "0" : stored === "1");
  document.getElementById("kiosk-toggle").onclick = () => setKiosk(!document.body.classList.contains("kiosk"));
  document.addEventListener("keydown", (e) => {
    if (e.key === "k" && !e.ctrlKey && !e.metaKey && !e.altKey) setKiosk(!document.body.classList.contains("kiosk"));
  });
  window.addEventListener("hashchange", () => { Dash.fleetDirty = true; Dash.dirty.add("*"); schedule(); });
  window.addEventListener("resize", () => { Dash.dirty.add("*"); schedule(); });
  // relative times ("3 min ago") and the timeline's moving window advance even without messages
  setInterval(() => { Dash.fleetDirty = true; Dash.dirty.add("*"); schedule(); }, 5000);
  if (params.get("rotate")) startRotation(Number(params.get("rotate")) || 20);
  connect();
}

document.addEventListener("DOMContentLoaded", init);

/* fer-edge dashboard: the fleet view (#/) and the camera view of one device (#/device/<id>).
   Only textContent is ever set from data (never innerHTML): a device id or label cannot inject markup. */
"use strict";

const C = window.ferChart;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "style") Object.assign(el.style, v);   // CSSOM: allowed by the page's CSP, a style attribute is not
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function clock(epochS) {
  if (!epochS) return "?";
  const d = new Date(epochS * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function ago(epochS) {
  if (!epochS) return "";
  const s = Math.max(0, Date.now() / 1000 - epochS);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 360) / 10} h`;
  return `${Math.round(s / 8640) / 10} d`;
}

function fmt(v, digits, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return (typeof v === "number" ? v.toFixed(digits) : String(v)) + (unit || "");
}

function stateOf(dev) { return (dev.status && dev.status.state) || "unknown"; }

/* Only an online device shows live faces, emotions and fps; an offline or stopped one shows what was last seen. */
function isLive(dev) { return stateOf(dev) === "online"; }

/* device.name and device.location (published in its stats) first, the id second */
function nameOf(dev) { const st = dev.stats || {}; return (typeof st.name === "string" && st.name) || dev.id; }
function placeOf(dev) { const st = dev.stats || {}; return typeof st.location === "string" ? st.location : ""; }

function deviceTitle(dev, big) {
  const named = nameOf(dev) !== dev.id;
  return h("span", { class: "dev-title" },
    h("span", { class: "dev-name" + (big ? " big" : "") }, nameOf(dev)),
    placeOf(dev) ? h("span", { class: "dev-place" }, placeOf(dev)) : null,
    named ? h("span", { class: "dev-id muted" }, dev.id) : null);
}

/* Seconds the device's newest event or summary (event time) lags its latest stats (wall time), when it
   lags by more than two summary intervals and a minute: a video playing slower than real time, a stuck
   camera clock, a backlog. null when it keeps up or nothing is known. */
function lagOf(dev) {
  const st = dev.stats;
  if (!st || typeof st.epoch !== "number" || !dev.newest) return null;
  let interval = 60;
  for (const cam of dev.cameras.values()) {
    const last = cam.summaries[cam.summaries.length - 1];
    if (last && last.summary && last.summary.interval_s) interval = last.summary.interval_s;
  }
  const lag = st.epoch - dev.newest;
  return lag > 2 * interval + 60 ? lag : null;
}

function lagNote(dev) {
  const lag = isLive(dev) ? lagOf(dev) : null;
  return lag ? h("div", { class: "lag", data: { lag: Math.round(lag) } },
    `behind real time: newest event ${ago(Date.now() / 1000 - lag)} older than its stats`) : null;
}

function lastSeenText(dev, st) {
  const when = (st && st.epoch) || dev.heard;
  if (!st || !st.faces) return `not live · last report ${clock(when)}: no face in view`;
  return `not live · last seen ${clock(when)}: ${st.faces} ${st.faces === 1 ? "face" : "faces"}` +
    (st.dominant ? `, mostly ${st.dominant}` : "");
}

function statusBadge(dev) {
  const state = stateOf(dev);
  const since = dev.since ? ` since ${clock(dev.since)} (${ago(dev.since)})` : "";
  return h("span", { class: `state badge ${state}`, data: { state } }, state, h("small", null, since));
}

/* The config's outcome as a word and, when something went wrong, its reason as visible text (a kiosk or a
   touch screen has no hover). A refused push marks the device until a later change applies or rolls back;
   "nothing to roll back" changed nothing and is only a note. */
function configOutcome(cfg) {
  if (!cfg) return null;
  const error = cfg.error || "";
  if (cfg.status === "rolled_back" || /^rolled back/.test(error)) return { word: "ROLLED BACK", cls: "bad", reason: error };
  if (cfg.ok) return { word: "applied", cls: "ok", reason: "" };
  if (/^nothing to roll back/.test(error)) return { word: "applied", cls: "ok", reason: "", note: error };
  return { word: "REJECTED", cls: "bad", reason: error };
}

function configLine(dev) {
  const st = dev.stats || {}, cfg = dev.config;
  const version = (cfg && cfg.version) || st.config_version;
  const out = configOutcome(cfg);
  const groups = (cfg && cfg.groups) || st.groups || [];
  return h("div", { class: "meta" },
    h("span", null, "v", st.version || (dev.status && dev.status.version) || "?"),
    h("span", { title: version || "" }, "config ", version ? version.slice(0, 8) : "–"),
    out && h("span", { class: `outcome ${out.cls}`, data: { outcome: out.word } }, out.word),
    groups.length ? h("span", null, "groups ", groups.join(", ")) : null,
    out && out.reason ? h("div", { class: "reason bad" }, out.reason) : null,
    out && out.note ? h("div", { class: "reason muted" }, out.note) : null);
}

function health(dev, big) {
  const st = isLive(dev) ? dev.stats || {} : {};
  const q = st.queue || {};
  const rows = [
    ["fps", fmt(st.processing_fps, 1)], [big ? "input fps" : "in", fmt(st.input_fps, 1)],
    [big ? "inference" : "infer", fmt(st.inference_ms, 1, "ms")], [big ? "dropped frames" : "drop", fmt(st.dropped_frames, 0)],
    ["queue", fmt(q.depth, 0) + (q.oldest_age_s ? ` (${fmt(q.oldest_age_s, 0, "s")} old)` : "")],
    [big ? "CPU temperature" : "CPU temp", fmt(st.cpu_temp_c, 0, "°C")],
  ];
  const last = (dev.stats || {}).epoch;
  if (big) rows.push(["uptime", st.uptime_s ? ago(Date.now() / 1000 - st.uptime_s) : "–"],
                     ["pipeline up", st.pipeline_uptime_s !== undefined ? ago(Date.now() / 1000 - st.pipeline_uptime_s) : "–"],
                     ["seq gaps", String(dev.gaps || 0)], ["stats at", last ? clock(last) : "–"]);
  return h("dl", { class: "health" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", { data: { k } }, v)]));
}

function previewLink(dev) {
  const url = dev.stats && dev.stats.preview && dev.stats.preview.mjpeg;
  if (typeof url !== "string" || !/^https?:\/\//.test(url)) return null;
  return h("a", { class: "preview", href: url, target: "_blank", rel: "noopener" }, "live preview (MJPEG)");
}

function cameraSummary(dev, name, cam) {
  const st = cam.state || { faces: 0, mix: {}, dominant: null };
  if (!isLive(dev)) {
    return h("div", { class: "cam-mini stale", data: { camera: name } },
      h("span", { class: "cam-name" }, name), h("span", { class: "last-seen" }, lastSeenText(dev, cam.state)));
  }
  return h("div", { class: "cam-mini", data: { camera: name } },
    h("span", { class: "cam-name" }, name),
    h("span", { class: "faces", data: { faces: st.faces } }, String(st.faces)),
    h("span", { class: "muted" }, st.faces === 1 ? "face" : "faces"),
    C.mixBar(st.mix || {}, false));
}

function card(dev) {
  const agg = !dev.per_face && [...dev.cameras.values()].some((c) => c.summaries.length);
  return h("a", { class: `card ${stateOf(dev)}`, href: "#/device/" + encodeURIComponent(dev.id), data: { device: dev.id } },
    h("div", { class: "card-head" }, deviceTitle(dev, false), statusBadge(dev)),
    configLine(dev), lagNote(dev), health(dev, false),
    [...dev.cameras.entries()].sort().map(([n, c]) => cameraSummary(dev, n, c)),
    agg ? h("div", { class: "tag" }, "aggregate only") : null);
}

function eventText(ev) {
  const track = ev.track_id !== null && ev.track_id !== undefined ? `#${ev.track_id}` : "";
  if (ev.type === "face_appeared") return [`face ${track} appeared`, ev.label ? ` · ${ev.label}` : ""];
  if (ev.type === "emotion_changed") {
    return ev.previous_label ? [`face ${track} `, `${ev.previous_label} → ${ev.label}`] : [`face ${track} reads ${ev.label}`];
  }
  if (ev.type === "face_left") return [`face ${track} left`, ` · dwell ${fmt(ev.duration_s, 1, " s")}`];
  return [ev.type];
}

function eventRow(ev, withDevice) {
  return h("li", { class: `event ${ev.type}`, data: { type: ev.type, id: ev.id, device: ev.device || "" } },
    h("span", { class: "when" }, clock(ev.epoch)),
    withDevice ? h("span", { class: "dev-id" }, ev.name || ev.device, " ", h("small", null, ev.camera)) : null,
    h("i", { class: "dot", style: { background: C.colorOf(ev.label) } }),
    h("span", { class: "what" }, eventText(ev)),
    ev.score !== null && ev.score !== undefined ? h("span", { class: "muted" }, ` ${Math.round(ev.score * 100)}%`) : null);
}

const cardEls = new Map();
let cardIds = "";

function renderFleet(Dash, main, full) {
  let cards = main.querySelector("#cards");
  if (!cards || full) {
    main.replaceChildren(
      h("section", { class: "fleet" }, h("div", { id: "cards", class: "cards" })),
      h("section", { class: "ticker" }, h("h2", null, "Latest events"), h("ol", { id: "ticker" })),
      h("p", { class: "history-link", hidden: !Dash.history }, h("a", { class: "chip", href: "#/history" }, "History of the fleet, by group and location")));
    cards = main.querySelector("#cards");
    cardEls.clear(); cardIds = "";
  }
  const ids = [...Dash.devices.keys()].sort((a, b) =>
    nameOf(Dash.devices.get(a)).localeCompare(nameOf(Dash.devices.get(b))) || (a < b ? -1 : a > b ? 1 : 0));
  const key = ids.join("\u0000");
  if (key !== cardIds || Dash.dirty.has("*")) {
    cardEls.clear();
    cards.replaceChildren(...ids.map((id) => { const el = card(Dash.devices.get(id)); cardEls.set(id, el); return el; }));
    if (!ids.length) cards.append(h("p", { class: "muted" }, `no device under ${Dash.prefix}/ yet`));
    cardIds = key;
  } else {
    for (const id of Dash.dirty) {
      const old = cardEls.get(id), dev = Dash.devices.get(id);
      if (old && dev) { const el = card(dev); old.replaceWith(el); cardEls.set(id, el); }
    }
  }
  const rows = Dash.ticker.map((ev) => eventRow(ev, true));
  main.querySelector("#ticker").replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, "no event yet")]));
}

/* seconds the timeline spans: the last hour, or ?window=MINUTES (5 .. the server's summary window) */
function timelineWindow(Dash) {
  const full = Dash.limits.summary_window_s;
  const asked = Number(new URLSearchParams(location.search).get("window")) * 60;
  return asked > 0 ? Math.min(full, Math.max(300, asked)) : full;
}

function cameraPanel(Dash, dev, name, cam) {
  const st = cam.state || { faces: 0, mix: {}, dominant: null };
  const canvas = h("canvas", { class: "timeline" });
  const labels = new Set(Object.keys(st.mix || {}));
  for (const s of cam.summaries) for (const k of Object.keys(C.summaryValues(s))) labels.add(k);
  const events = dev.events.filter((e) => e.camera === name).slice().reverse();
  const now = isLive(dev)
    ? h("div", { class: "now" },
      h("div", { class: "bignum" }, h("span", { class: "faces", data: { faces: st.faces } }, String(st.faces)),
        h("small", null, st.faces === 1 ? "face in view" : "faces in view")),
      h("div", { class: "grow" }, h("div", { class: "dominant" }, st.dominant ? `mostly ${st.dominant}` : "—"),
        C.mixBar(st.mix || {}, true)))
    : h("div", { class: "now stale" }, h("span", { class: "last-seen" }, lastSeenText(dev, cam.state)));
  const panel = h("section", { class: "cam", data: { camera: name } },
    h("h2", null, name), now,
    h("h3", null, `Last ${timelineWindow(Dash) >= 3600 ? "hour" : Math.round(timelineWindow(Dash) / 60) + " minutes"} (faces in view by emotion: the mean over each summary interval)`), canvas, C.legend(C.orderedLabels(Object.fromEntries([...labels].map((l) => [l, 1])))),
    dev.per_face ? h("h3", null, "Latest events") : h("p", { class: "tag" }, "aggregate only: this device publishes summaries and the emotion mix, no per-face events"),
    dev.per_face ? h("ol", { class: "events" }, events.length ? events.map((e) => eventRow(e, false)) : h("li", { class: "muted" }, "no event yet")) : null);
  if (Dash.history) panel.append(historyBlock(Dash, { device: dev.id, camera: name }, `fer-edge-${dev.id}-${name}`));
  requestAnimationFrame(() => C.drawTimeline(canvas, cam.summaries, Date.now() / 1000, timelineWindow(Dash)));
  return panel;
}

/* ---- history (/api/history): fetched once a minute per scope and range, drawn from the cache ---- */
const History = { range: "7d", cache: new Map(), REFRESH_MS: 60000 };
const RANGE_NAMES = { today: "today", "7d": "7 days", "30d": "30 days" };

function historyQuery(scope) {
  const q = new URLSearchParams(Object.entries(scope).filter(([, v]) => v));
  q.set("range", History.range);
  q.set("tz", String(-new Date().getTimezoneOffset()));
  return q.toString();
}

/* The cached view of a scope (null until fetched); fetches (again) when missing or older than a minute. */
function historyOf(Dash, scope) {
  const key = historyQuery(scope);
  const hit = History.cache.get(key);
  if (!hit || (Date.now() - hit.at > History.REFRESH_MS && !hit.loading)) {
    const entry = hit || { at: 0, data: null, error: null };
    entry.loading = true;
    History.cache.set(key, entry);
    fetch("api/history?" + key).then((r) => r.ok ? r.json() : r.text().then((t) => { throw new Error(t.trim()); }))
      .then((data) => { entry.data = data; entry.error = null; })
      .catch((err) => { entry.error = String(err.message || err); })
      .finally(() => { entry.at = Date.now(); entry.loading = false; Dash.dirty.add("*"); window.ferDash.redraw(); });
    if (History.cache.size > 64) History.cache.delete(History.cache.keys().next().value);
  }
  return History.cache.get(key);
}

function pct(v) { return v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`; }

function historyTotals(data) {
  const t = data.totals, b = data.before;
  const span = RANGE_NAMES[data.range];
  const before = data.range === "today" ? "the day before" : `the ${span} before`;
  return h("p", { class: "hist-totals" },
    h("b", null, fmt(t.faces_in_view, 2)), ` faces in view on average over ${span} (${before}: ${fmt(b.faces_in_view, 2)}); `,
    h("b", null, fmt(t.faces_seen, 0)), ` faces seen (${before}: ${fmt(b.faces_seen, 0)}); `,
    t.dominant ? [`mostly ${t.dominant} `, h("b", null, pct(t.mix[t.dominant])), "; "] : null,
    "negative ", h("b", null, pct(t.negative)), ` (${before}: ${pct(b.negative)})`);
}

function historyBlock(Dash, scope, csvName) {
  const entry = historyOf(Dash, scope);
  const data = entry && entry.data;
  const buttons = Object.entries(RANGE_NAMES).map(([k, label]) => h("button", {
    type: "button", class: k === History.range ? "on" : null, data: { range: k } }, label));
  const box = h("div", { class: "history", data: { scope: JSON.stringify(scope) } },
    h("div", { class: "hist-head" }, h("h3", null, "History"), buttons,
      h("a", { class: "csv", href: "api/history?" + historyQuery(scope) + "&format=csv", download: csvName + ".csv" }, "CSV"),
      h("a", { class: "csv", href: "api/history?" + historyQuery(scope), target: "_blank" }, "JSON")));
  for (const b of box.querySelectorAll("button")) {
    b.onclick = (e) => { e.preventDefault(); History.range = b.dataset.range; Dash.dirty.add("*"); window.ferDash.redraw(); };
  }
  if (!data) {
    box.append(h("p", { class: "muted" }, entry && entry.error ? `history unavailable: ${entry.error}` : "loading history…"));
    return box;
  }
  const chart = h("canvas", { class: "timeline hist-chart" });
  const grid = h("canvas", { class: "hourgrid" });
  const labels = new Set();
  for (const bar of data.bars) for (const k of Object.keys(bar.rate)) labels.add(k);
  box.append(historyTotals(data),
    h("h4", null, `Faces in view by emotion, per ${data.bar_s >= 86400 ? "day" : "hour"} (mean over the ${data.bar_s >= 86400 ? "day" : "hour"}; a rate, whatever the summary interval)`),
    chart, C.legend(C.orderedLabels(Object.fromEntries([...labels].map((l) => [l, 1])))),
    h("h4", null, "Hour of day by day (colour: the emotion most seen; strength: faces in view)"), grid);
  requestAnimationFrame(() => { C.drawHistory(chart, data); C.drawHourGrid(grid, data); });
  return box;
}

function rankingTable(data) {
  if (!data || !data.ranking || !data.ranking.length) return null;
  return h("table", { class: "ranking" },
    h("thead", null, h("tr", null, ["camera", "where", "faces in view", "negative", "mostly"].map((c) => h("th", null, c)))),
    h("tbody", null, data.ranking.map((r) => h("tr", { data: { device: r.device, camera: r.camera } },
      h("td", null, h("a", { href: "#/device/" + encodeURIComponent(r.device) }, r.name), " ", h("small", { class: "muted" }, `${r.device} ${r.camera}`)),
      h("td", null, r.location || "–"), h("td", null, fmt(r.faces_in_view, 2)), h("td", null, pct(r.negative)),
      h("td", null, r.dominant || "–")))));
}

/* #/history[?group=G|location=L]: the fleet's history, by group or location, and its cameras ranked by negative share */
function renderHistory(Dash, main, query) {
  const params = new URLSearchParams(query);
  const scope = { group: params.get("group") || "", location: params.get("location") || "" };
  const groups = new Set(), places = new Set();
  for (const dev of Dash.devices.values()) {
    for (const g of (dev.config && dev.config.groups) || (dev.stats && dev.stats.groups) || []) groups.add(g);
    if (placeOf(dev)) places.add(placeOf(dev));
  }
  const link = (label, q, on) => h("a", { class: "chip" + (on ? " on" : ""), href: "#/history" + (q ? "?" + q : "") }, label);
  const title = scope.group ? `group ${scope.group}` : scope.location ? scope.location : "the whole fleet";
  const block = historyBlock(Dash, scope, "fer-edge-" + (scope.group || scope.location || "fleet"));
  const entry = History.cache.get(historyQuery(scope));
  main.replaceChildren(h("section", { class: "cam fleet-history" },
    h("h2", null, `History of ${title}`),
    h("div", { class: "chips" }, link("whole fleet", "", !scope.group && !scope.location),
      [...groups].sort().map((g) => link(`group ${g}`, "group=" + encodeURIComponent(g), g === scope.group)),
      [...places].sort().map((l) => link(l, "location=" + encodeURIComponent(l), l === scope.location))),
    block,
    h("h3", null, "Cameras, most negative first"), rankingTable(entry && entry.data) || h("p", { class: "muted" }, "no camera recorded in this span")));
}

function renderDevice(Dash, main, id) {
  const dev = Dash.devices.get(id);
  if (!dev) {
    main.replaceChildren(h("p", { class: "muted" }, `device ${id} is not (or no longer) under ${Dash.prefix}/`), h("a", { href: "#/" }, "back to the fleet"));
    return;
  }
  main.replaceChildren(
    h("section", { class: `device ${stateOf(dev)}`, data: { device: dev.id } },
      h("div", { class: "card-head" }, deviceTitle(dev, true), statusBadge(dev), isLive(dev) ? previewLink(dev) : null),
      configLine(dev), lagNote(dev), health(dev, true),
      // several cameras: the device's history as a whole too (each camera's is in its panel)
      Dash.history && dev.cameras.size > 1 ? historyBlock(Dash, { device: dev.id }, `fer-edge-${dev.id}`) : null),
    h("div", { class: "cams" }, [...dev.cameras.entries()].sort().map(([n, c]) => cameraPanel(Dash, dev, n, c))));
}

function renderHeader(Dash) {
  const counts = { online: 0, offline: 0, stopped: 0 };
  for (const dev of Dash.devices.values()) { const s = stateOf(dev); if (s in counts) counts[s] += 1; }
  document.getElementById("prefix").textContent = Dash.prefix ? `${Dash.prefix}/` : "";
  document.getElementById("totals").replaceChildren(...Object.entries(counts).map(([k, n]) => h("span", { class: `count ${k}`, data: { state: k } }, `${n} ${k}`)));
  const b = Dash.broker, badge = document.getElementById("broker");
  const state = Dash.stream !== "open" ? "server-lost" : b && b.connected ? "connected" : "disconnected";
  badge.className = `badge ${state}`;
  badge.dataset.state = state;
  const kiosk = document.body.classList.contains("kiosk");     // a wall screen shows no address
  badge.textContent = state === "connected" ? (kiosk ? "live" : `broker ${b.address}`) : state === "server-lost" ? "dashboard server unreachable" : "broker down";
  const banner = document.getElementById("banner");
  let text = "";
  if (state === "server-lost") text = "The dashboard server cannot be reached; retrying. What you see may be out of date.";
  else if (state === "disconnected") text = `${(b && b.error) || "broker not connected"} since ${clock(b && b.since)}: what you see is from then; reconnecting.`;
  banner.hidden = !text;
  banner.textContent = text;
  document.getElementById("clock").textContent = clock(Date.now() / 1000);
  const c = Dash.counters || {};
  document.getElementById("footer").textContent = `${Dash.devices.size} devices · ${Dash.received} updates received` +
    (c.rejected && Object.keys(c.rejected).length ? ` · ignored at the server: ${JSON.stringify(c.rejected)}` : "");
}

let lastRoute = "";

function render(Dash) {
  renderHeader(Dash);
  const main = document.getElementById("main");
  const hash = location.hash;
  if (hash.startsWith("#/history")) {
    lastRoute = hash;
    if (Dash.dirty.has("*") || Dash.fleetDirty) renderHistory(Dash, main, hash.split("?")[1] || "");
    return;
  }
  const route = hash.startsWith("#/device/") ? decodeURIComponent(hash.slice(9)) : "";
  const full = route !== lastRoute;
  lastRoute = route;
  if (!route) renderFleet(Dash, main, full);
  else if (full || Dash.dirty.has("*") || Dash.dirty.has(route)) renderDevice(Dash, main, route);
}

window.ferViews = { render };

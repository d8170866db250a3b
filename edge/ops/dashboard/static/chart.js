/* fer-edge dashboard: emotion colours, the mix bar and the stacked one-hour timeline (canvas).
   Plain JavaScript, no dependency. Everything is drawn from the summaries the page already holds. */
"use strict";

const EMOTIONS = ["happiness", "neutral", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown"];
const COLORS = {
  happiness: "#f2c230", neutral: "#9aa3ad", surprise: "#ff8a3d", sadness: "#3d8fe0", anger: "#e5433a",
  disgust: "#6fb33f", fear: "#9b6ae0", contempt: "#1fa896", unknown: "#5b6168",
};

function colorOf(label) { return COLORS[label] || "#777"; }

/* known emotions first, in a fixed order, then anything else a future model may send */
function orderedLabels(obj) {
  const keys = Object.keys(obj || {});
  const known = EMOTIONS.filter((e) => keys.includes(e));
  return known.concat(keys.filter((k) => !EMOTIONS.includes(k)).sort());
}

/* A horizontal bar split by share; each segment carries data-emotion and data-share (tests read them). */
function mixBar(mix, big) {
  const bar = document.createElement("div");
  bar.className = "mix" + (big ? " big" : "");
  const labels = orderedLabels(mix).filter((k) => mix[k] > 0);
  if (!labels.length) {
    bar.classList.add("empty");
    bar.textContent = "no face in view";
    return bar;
  }
  for (const label of labels) {
    const seg = document.createElement("span");
    seg.className = "mix-seg";
    seg.dataset.emotion = label;
    seg.dataset.share = String(mix[label]);
    seg.style.flexGrow = String(mix[label]);
    seg.style.background = colorOf(label);
    seg.title = `${label} ${Math.round(mix[label] * 100)} %`;
    if (mix[label] >= (big ? 0.12 : 0.2)) seg.textContent = big ? `${label} ${Math.round(mix[label] * 100)}%` : label;
    bar.appendChild(seg);
  }
  return bar;
}

/* Face-seconds per emotion of one summary (its `seconds`, or its `counts` for older devices). */
function summaryValues(ev) {
  const s = ev.summary || {};
  return s.seconds && Object.keys(s.seconds).length ? s.seconds : (s.counts || {});
}

/* What a bar of the timeline shows: the mean faces in view per emotion over the summary's interval
   (face-seconds / seconds), a rate that does not change with events.summary_interval_s. Devices that
   send no `seconds` give counts per interval, shown as they are. */
function summaryRates(ev) {
  const s = ev.summary || {};
  if (!(s.seconds && Object.keys(s.seconds).length)) return s.counts || {};
  const interval = s.interval_s || 60, out = {};
  for (const [k, v] of Object.entries(s.seconds)) out[k] = v / interval;
  return out;
}

/* Stacked bars of the summaries of the last `windowS` seconds, one bar per summary interval. */
function drawTimeline(canvas, summaries, nowS, windowS) {
  const [ctx, w, h, font, fg] = prepare(canvas, 220);
  const left = font * 3.6, bottom = font * 1.8, top = font * 0.6, right = font * 0.6;
  const pw = w - left - right, ph = h - top - bottom;
  const t0 = nowS - windowS;
  let max = 0;
  for (const ev of summaries) {
    const total = Object.values(summaryRates(ev)).reduce((a, b) => a + b, 0);
    if (total > max) max = total;
  }
  const x = (t) => left + ((t - t0) / windowS) * pw;
  // axes and grid: about six lines, at 1, 2, 5, 10, 15 or 30 minutes, labelled with minutes ago
  const step = [1, 2, 5, 10, 15, 30].find((m) => windowS / 60 / m <= 6) || 60;
  ctx.strokeStyle = fg; ctx.fillStyle = fg; ctx.globalAlpha = 0.25; ctx.lineWidth = 1;
  ctx.beginPath();
  for (let m = 0; m <= windowS / 60; m += step) { const gx = x(nowS - m * 60); ctx.moveTo(gx, top); ctx.lineTo(gx, top + ph); }
  ctx.moveTo(left, top + ph); ctx.lineTo(left + pw, top + ph);
  ctx.stroke();
  ctx.globalAlpha = 0.9; ctx.textBaseline = "top";
  for (let m = 0; m <= windowS / 60; m += step) { ctx.textAlign = m ? "center" : "right"; ctx.fillText(m ? `-${m} min` : "now", x(nowS - m * 60), top + ph + font * 0.3); }
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  ctx.fillText(max ? fmtNum(max) : "0", left - font * 0.3, top + font * 0.5);
  ctx.fillText("0", left - font * 0.3, top + ph);
  ctx.globalAlpha = 1;
  if (!summaries.length) {
    ctx.textAlign = "center";
    ctx.fillText("no summary yet (one per events.summary_interval_s)", left + pw / 2, top + ph / 2);
    return;
  }
  for (const ev of summaries) {
    const interval = (ev.summary && ev.summary.interval_s) || 60;
    const x1 = Math.min(x(ev.epoch), left + pw), x0 = Math.max(x(ev.epoch - interval), left);
    if (x1 <= left) continue;
    const values = summaryRates(ev);
    let y = top + ph;
    for (const label of orderedLabels(values)) {
      const bh = max ? (values[label] / max) * ph : 0;
      ctx.fillStyle = colorOf(label);
      ctx.fillRect(x0 + 0.5, y - bh, Math.max(1, x1 - x0 - 1), bh);
      y -= bh;
    }
  }
}

function fmtNum(v) { return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10); }

/* The colour key under a timeline. */
function legend(labels) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const label of labels) {
    const item = document.createElement("span");
    const dot = document.createElement("i");
    dot.style.background = colorOf(label);
    item.append(dot, label);
    box.appendChild(item);
  }
  return box;
}

/* Canvas set to its CSS size times the device pixel ratio; returns [ctx, width, height, font size, fg colour]. */
function prepare(canvas, defaultHeight) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || defaultHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(canvas);
  const font = parseFloat(style.fontSize) || 14;
  ctx.font = `${font}px sans-serif`;
  return [ctx, w, h, font, style.color || "#ddd"];
}

/* The history of /api/history: one stacked bar per hour (today, 7 days) or day (30 days), each emotion's
   mean faces in view, over [from, to). Day lines and labels in the page's local time. */
function drawHistory(canvas, data) {
  const [ctx, w, h, font, fg] = prepare(canvas, 220);
  const left = font * 3.2, bottom = font * 1.8, top = font * 0.6, right = font * 0.6;
  const pw = w - left - right, ph = h - top - bottom;
  const span = data.to - data.from;
  const x = (t) => left + ((t - data.from) / span) * pw;
  let max = 0;
  for (const b of data.bars) max = Math.max(max, b.faces_in_view || 0);
  ctx.strokeStyle = fg; ctx.fillStyle = fg; ctx.globalAlpha = 0.25; ctx.lineWidth = 1;
  ctx.beginPath();
  const days = Math.round(span / 86400);
  const ticks = [];
  if (days <= 1) for (let hr = 0; hr <= 24; hr += 3) ticks.push([data.from + hr * 3600, `${String(hr).padStart(2, "0")}:00`]);
  else for (let d = 0; d <= days; d += days > 10 ? 5 : 1) {
    const t = data.from + d * 86400;
    ticks.push([t, new Date(t * 1000).toLocaleDateString([], { weekday: days > 10 ? undefined : "short", day: "numeric", month: "short" })]);
  }
  for (const [t] of ticks) { ctx.moveTo(x(t), top); ctx.lineTo(x(t), top + ph); }
  ctx.moveTo(left, top + ph); ctx.lineTo(left + pw, top + ph);
  ctx.stroke();
  ctx.globalAlpha = 0.9; ctx.textBaseline = "top"; ctx.textAlign = "left";
  for (const [t, label] of ticks) if (x(t) < left + pw - font * 2) ctx.fillText(label, x(t) + 2, top + ph + font * 0.3);
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  ctx.fillText(max ? fmtNum(max) : "0", left - font * 0.3, top + font * 0.5);
  ctx.fillText("0", left - font * 0.3, top + ph);
  ctx.globalAlpha = 1;
  if (!data.bars.length) {
    ctx.textAlign = "center";
    ctx.fillText("nothing recorded in this span", left + pw / 2, top + ph / 2);
    return;
  }
  const bw = (data.bar_s / span) * pw;
  for (const b of data.bars) {
    let y = top + ph;
    for (const label of orderedLabels(b.rate)) {
      const bh = max ? (b.rate[label] / max) * ph : 0;
      ctx.fillStyle = colorOf(label);
      ctx.fillRect(x(b.start) + 0.5, y - bh, Math.max(1, bw - 1), bh);
      y -= bh;
    }
  }
}

/* Hour of day (columns) by day (rows): the cell's colour is the dominant emotion, its strength the faces in view. */
function drawHourGrid(canvas, data) {
  const [ctx, w, h, font, fg] = prepare(canvas, 160);
  const days = [...new Set(data.hour_of_day.map((c) => c.day))].sort();
  const all = [];
  for (let d = data.from; d < data.to; d += 86400) all.push(d);
  const rows = all.length ? all : days;
  const left = font * 5.5, top = font * 1.4;
  const cw = (w - left - 4) / 24, ch = Math.max(4, (h - top - 2) / Math.max(1, rows.length));
  let max = 0;
  for (const c of data.hour_of_day) max = Math.max(max, c.faces_in_view || 0);
  ctx.fillStyle = fg; ctx.textBaseline = "middle"; ctx.textAlign = "center";
  for (let hr = 0; hr < 24; hr += 3) ctx.fillText(String(hr), left + (hr + 0.5) * cw, font * 0.6);
  ctx.textAlign = "right";
  const index = new Map(rows.map((d, i) => [d, i]));
  rows.forEach((d, i) => {
    if (ch >= font * 0.8 || i % Math.ceil(font / ch) === 0) {
      ctx.fillText(new Date(d * 1000).toLocaleDateString([], { weekday: "short", day: "numeric" }), left - 4, top + (i + 0.5) * ch);
    }
  });
  for (const c of data.hour_of_day) {
    const i = index.get(c.day);
    if (i === undefined || !c.faces_in_view) continue;
    ctx.globalAlpha = 0.25 + 0.75 * (max ? c.faces_in_view / max : 0);
    ctx.fillStyle = colorOf(c.dominant);
    ctx.fillRect(left + c.hour * cw + 0.5, top + i * ch + 0.5, cw - 1, ch - 1);
  }
  ctx.globalAlpha = 1;
}

window.ferChart = { EMOTIONS, COLORS, colorOf, orderedLabels, mixBar, drawTimeline, legend, summaryValues,
                    summaryRates, drawHistory, drawHourGrid };

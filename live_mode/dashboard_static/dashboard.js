// The live dashboard's page: the status every second (/api/status), the windows as they come
// (server-sent events, /api/feed; after a reconnect the feed resumes from the last event id and
// /api/windows fills in anything older), the timeline drawn on a canvas, the per-stream bars and
// the latest window's keyframes. The video is an <img> on the MJPEG stream, restarted if it breaks.
"use strict";

const COLORS = ["#4aa3ff", "#f5b83d", "#ef5b5b", "#7adf9a", "#c58af9", "#5ad1d1", "#f08fc0"];
const HISTORY_S = 120;           // seconds of source time the timeline shows
const state = { classes: [], windows: [], events: [], lastSeq: 0, info: {} };
window.dashboard = state;        // for the browser test and for curious people

const $ = (id) => document.getElementById(id);
const fmt = (x, digits = 2, unit = "") => (x === null || x === undefined) ? "\u2013" : x.toFixed(digits) + unit;

function setText(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  el.className = cls || "";
}

// -- status --------------------------------------------------------------------------------
async function pollStatus() {
  try {
    const r = await fetch("/api/status", { cache: "no-store" });
    const s = await r.json();
    state.info = s;
    if (s.classes && state.classes.length === 0) { state.classes = s.classes; drawLegend(); }
    const reconnecting = s.connected === false;
    const st = s.state === "running" && reconnecting ? "reconnecting" : s.state;
    setText("state", st, "pill " + st);
    setText("source", s.source || "");
    setText("st-source", s.source || "\u2013");
    setText("st-connected", s.connected === undefined ? "\u2013" : (s.connected ? "yes" : "no: reconnecting"),
            s.connected === false ? "bad" : "good");
    setText("st-rate", s.windows_per_s === undefined ? "\u2013" :
            `${fmt(s.windows_per_s)} (needs ${fmt(s.needed_windows_per_s)})`,
            s.windows_per_s !== null && s.windows_per_s < s.needed_windows_per_s ? "bad" : "");
    setText("st-latency", `${fmt(s.latency_mean_s, 3, " s")} / ${fmt(s.latency_p95_s, 3, " s")}`);
    setText("st-windows", s.windows === undefined ? "\u2013" : String(s.windows));
    setText("st-dropped", s.dropped === undefined ? "\u2013" : `${s.dropped} / ${s.gap_windows}`, s.dropped ? "bad" : "");
    setText("st-keeps", s.keeps_up === undefined ? "\u2013" : (s.keeps_up ? "yes" : "no"), s.keeps_up ? "good" : "bad");
    setText("st-audio", s.audio || "\u2013", s.audio === "missing" ? "bad" : "");
    setText("st-reconnects", s.drops === undefined ? "\u2013" : `${s.drops} / ${s.reconnects}`);
    setText("st-window", s.window_s ? `${s.window_s} s / ${s.stride_s} s` : "\u2013");
  } catch (e) {
    setText("state", "server gone", "pill stopped");
  }
}

// -- windows ---------------------------------------------------------------------------------
function addWindow(w) {
  if (w.seq <= state.lastSeq && state.windows.some((x) => x.seq === w.seq)) return;
  state.windows.push(w);
  state.windows.sort((a, b) => a.seq - b.seq);
  state.lastSeq = Math.max(state.lastSeq, w.seq);
  if (!w.dropped) {
    setText("label", `${w.shown}  ${fmt(Math.max(...Object.values(w.smoothed)))}`, "label");
    drawStreams(w);
    drawKeyframes(w);
  }
  scheduleDraw();
}

function addEvent(e) {
  state.events.push(e);
  state.lastSeq = Math.max(state.lastSeq, e.seq);
  scheduleDraw();
}

async function backfill() {
  const r = await fetch(`/api/windows?after=${state.lastSeq}`, { cache: "no-store" });
  const data = await r.json();
  data.windows.forEach(addWindow);
}

function connectFeed() {
  const feed = new EventSource(`/api/feed?after=${state.lastSeq}`);
  feed.addEventListener("window", (m) => addWindow(JSON.parse(m.data)));
  feed.addEventListener("source", (m) => addEvent(JSON.parse(m.data)));
  feed.addEventListener("stopped", () => { feed.close(); pollStatus(); });
  feed.onerror = () => { feed.close(); setTimeout(() => backfill().then(connectFeed, connectFeed), 1500); };
}

// -- drawing ---------------------------------------------------------------------------------
function drawLegend() {
  $("legend").innerHTML = state.classes.map((c, i) =>
    `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${c}</span>`).join("");
}

function drawStreams(w) {
  const rows = Object.entries(w.streams || {}).map(([name, probs]) => {
    if (!probs) return `<div class="stream"><div class="name">${name}: missing</div></div>`;
    const bars = state.classes.map((c, i) =>
      `<div title="${c} ${fmt(probs[c])}" style="width:${(100 * probs[c]).toFixed(1)}%;background:${COLORS[i % COLORS.length]}"></div>`).join("");
    const top = state.classes.reduce((a, c) => (probs[c] > probs[a] ? c : a), state.classes[0]);
    return `<div class="stream"><div class="name">${name}: ${top} ${fmt(probs[top])}</div><div class="bars">${bars}</div></div>`;
  });
  $("streams").innerHTML = rows.join("");
}

function drawKeyframes(w) {
  // one thumbnail per distinct keyframe (a selection may repeat a frame); a thumbnail that is
  // gone because a newer window replaced the keyframes meanwhile is hidden
  const stamp = Date.now();
  const times = w.keyframe_times || [];
  $("keyframes").innerHTML = times.map((t, i) => (times.indexOf(t) !== i) ? "" :
    `<figure><img src="/api/keyframes/${i}.jpg?w=${w.window}&t=${stamp}" alt="keyframe at ${t} s"
      onerror="this.parentNode.style.display='none'"><figcaption>${t.toFixed(2)} s</figcaption></figure>`).join("");
}

let drawPending = false;
function scheduleDraw() {
  if (!drawPending) { drawPending = true; requestAnimationFrame(() => { drawPending = false; drawTimeline(); }); }
}

function drawTimeline() {
  const canvas = $("timeline");
  const ratio = window.devicePixelRatio || 1;
  const W = canvas.clientWidth, H = canvas.clientHeight;
  if (canvas.width !== Math.round(W * ratio)) { canvas.width = Math.round(W * ratio); canvas.height = Math.round(H * ratio); }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, W, H);
  const pad = { l: 36, r: 10, t: 8, b: 22 };
  const predicted = state.windows.filter((w) => !w.dropped);
  const tEnd = Math.max(20, ...state.windows.map((w) => w.end_s));
  const tStart = Math.max(0, tEnd - HISTORY_S);
  const x = (t) => pad.l + (W - pad.l - pad.r) * (t - tStart) / Math.max(1e-6, tEnd - tStart);
  const y = (p) => pad.t + (H - pad.t - pad.b) * (1 - p);
  g.strokeStyle = "#2d3440"; g.fillStyle = "#8a93a0"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    g.beginPath(); g.moveTo(pad.l, y(p)); g.lineTo(W - pad.r, y(p)); g.stroke();
    g.fillText(p.toFixed(2), 4, y(p) + 4);
  }
  const step = Math.max(1, Math.ceil((tEnd - tStart) / 10));
  for (let t = Math.ceil(tStart / step) * step; t <= tEnd; t += step) g.fillText(`${t} s`, x(t) - 8, H - 6);
  // source gaps: a grey band from each drop to its reconnection (or to now)
  g.fillStyle = "rgba(140,147,160,0.25)";
  state.events.filter((e) => e.event === "source_dropped").forEach((d) => {
    const back = state.events.find((e) => e.event === "source_reconnected" && e.seq > d.seq);
    const a = Math.max(d.time_s, tStart), b = back ? back.time_s : tEnd;
    if (b > tStart) g.fillRect(x(a), pad.t, x(b) - x(a), H - pad.t - pad.b);
  });
  state.classes.forEach((c, i) => {
    const color = COLORS[i % COLORS.length];
    for (const [key, width, alpha] of [["probs", 1, 0.45], ["smoothed", 2.5, 1]]) {
      g.strokeStyle = color; g.globalAlpha = alpha; g.lineWidth = width; g.beginPath();
      let prevEnd = null;
      predicted.forEach((w) => {
        const px = x(w.end_s), py = y(w[key][c]);
        if (prevEnd === null || w.end_s - prevEnd > 2.5 * (state.info.stride_s || 1)) g.moveTo(px, py); else g.lineTo(px, py);
        prevEnd = w.end_s;
      });
      g.stroke();
    }
    g.globalAlpha = 1;
  });
  canvas.dataset.points = String(predicted.length);
}

// -- video -------------------------------------------------------------------------------------
function startVideo() {
  const img = $("video");
  img.onerror = () => setTimeout(startVideo, 1000);
  img.src = `/video.mjpg?t=${Date.now()}`;
}

window.addEventListener("resize", scheduleDraw);
pollStatus().then(() => backfill()).catch(() => {}).finally(connectFeed);
setInterval(pollStatus, 1000);
startVideo();

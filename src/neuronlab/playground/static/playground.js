// neuronlab playground page: settings form <-> URL hash, a session on the server, and a
// server-sent-event stream of its state drawn on canvases. No build step, no libraries.
// trace.js (one example step by step) and race.js (optimizers side by side) load first.
"use strict";

const $ = (id) => document.getElementById(id);
const NUMERIC = ["noise", "n_points", "test_fraction", "seed", "l2", "dropout", "lr", "batch_size"];
const SELECTS = ["dataset", "activation", "init", "optimizer"];
let opts = null;        // /api/options: choices, defaults, limits, class colours
let settings = null;    // the settings the server accepted last
let sessionId = null;
let source = null;      // EventSource of the session's states
let state = null;       // latest state
let applyTimer = null;
let editing = false;    // a field was typed in and its change is not sent yet
let uploaded = null;    // {rows, classes} of this session's uploaded CSV, or null

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

async function api(method, path, body) {
  const init = { method, headers: { "Content-Type": "application/json" } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  let data = {};
  try { data = await r.json(); } catch (_) { /* empty body */ }
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

// -- settings <-> URL hash -------------------------------------------------------------
// A value that is not a number is sent as text, so the server names it in its error.
function numOrText(v) {
  const n = Number(v);
  return String(v).trim() !== "" && Number.isFinite(n) ? n : v;
}

function encodeHash(s) {
  const p = new URLSearchParams();
  for (const k of [...SELECTS, ...NUMERIC]) p.set(k, s[k]);
  p.set("hidden", s.hidden.join(","));
  p.set("batchnorm", s.batchnorm ? "1" : "0");
  if (s.points.length) p.set("points", s.points.map((q) => q.join(":")).join(";"));
  return "#" + p.toString();
}

function decodeHash(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  const s = {};
  for (const k of SELECTS) if (p.has(k)) s[k] = p.get(k);
  for (const k of NUMERIC) if (p.has(k)) s[k] = numOrText(p.get(k));
  if (p.has("hidden")) {
    const h = p.get("hidden");
    s.hidden = h === "" ? [] : h.split(",").map(numOrText);
  }
  if (p.has("batchnorm")) s.batchnorm = p.get("batchnorm") === "1";
  if (p.has("points")) {
    s.points = p.get("points").split(";").filter(Boolean).map((q) => q.split(":").map(numOrText));
  }
  return s;
}

// -- the form --------------------------------------------------------------------------
function fillSelect(id, names) {
  $(id).innerHTML = names.map((n) => `<option value="${n}">${n}</option>`).join("");
}

function renderLayers(hidden) {
  $("layers").innerHTML = hidden.map((h, i) =>
    `<div class="layer-row"><span>hidden layer ${i + 1}</span>` +
    `<input class="layer-units" type="number" step="1" value="${h}" aria-label="units in layer ${i + 1}"></div>`
  ).join("") || "<p class=\"hint\">no hidden layer: a linear classifier</p>";
  for (const input of document.querySelectorAll(".layer-units")) {
    input.addEventListener("input", () => { editing = true; });
    input.addEventListener("change", scheduleApply);
  }
}

function ensureUploadOption(present) {
  const sel = $("dataset");
  const has = [...sel.options].some((o) => o.value === "upload");
  if (present && !has) sel.insertAdjacentHTML("beforeend", "<option value=\"upload\">uploaded CSV</option>");
}

function fillForm(s) {
  ensureUploadOption(uploaded !== null);
  for (const k of SELECTS) $(k).value = s[k];
  for (const k of NUMERIC) $(k).value = s[k];
  $("batchnorm").checked = s.batchnorm;
  renderLayers(s.hidden);
  const k = s.dataset === "upload" && uploaded ? uploaded.classes : opts.datasets[s.dataset];
  const cls = $("click-class");
  const keep = Math.min(Number(cls.value) || 0, k - 1);
  cls.innerHTML = Array.from({ length: k }, (_, i) => `<option value="${i}">class ${i}</option>`).join("");
  cls.value = keep;
}

function readForm() {
  const s = { ...settings };
  for (const k of SELECTS) s[k] = $(k).value;
  for (const k of NUMERIC) s[k] = numOrText($(k).value);
  s.hidden = [...document.querySelectorAll(".layer-units")].map((i) => numOrText(i.value));
  s.batchnorm = $("batchnorm").checked;
  return s;
}

// Applies run one after another, each building its settings when its turn comes (from the
// settings the server accepted last), so that two quick edits cannot undo each other.
let applyQueue = Promise.resolve();

function apply(make) {
  applyQueue = applyQueue.then(() => sendSettings(make()));
  return applyQueue;
}

async function sendSettings(s) {
  try {
    const r = await api("POST", `/api/sessions/${sessionId}/reset`, s);
    settings = r.settings;
    showError(null);
    history.replaceState(null, "", encodeHash(settings));
  } catch (e) {
    showError(e.message);
  }
  // back to what the server runs (a refused value is shown in the error), unless the user
  // has edited the form meanwhile (typed, or changed): that edit is about to be sent and must
  // not be overwritten
  if (applyTimer === null && !editing) fillForm(settings);
}

function scheduleApply() {
  editing = false;
  clearTimeout(applyTimer);
  applyTimer = setTimeout(() => { applyTimer = null; apply(readForm); }, 200);
}

// -- drawing ---------------------------------------------------------------------------
function pct(v) { return v == null ? "–" : (100 * v).toFixed(1) + "%"; }
function num(v) { return v == null ? "–" : v.toPrecision(3); }

function setMetric(id, v, fmt) {
  $(id).textContent = fmt(v);
  $(id).dataset.value = v == null ? "" : v;
}

function toPixel(x, y, w, h, e) { return [(x + e) / (2 * e) * w, (e - y) / (2 * e) * h]; }

function drawPoints(s) {
  const c = $("plot"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const colors = opts.colors;
  if (trace.data) {  // the example being traced: a cross-hair
    const [px, py] = toPixel(trace.data.input[0], trace.data.input[1], c.width, c.height, s.extent);
    g.strokeStyle = "#7b2d8b"; g.lineWidth = 2;
    g.beginPath(); g.arc(px, py, 9, 0, 2 * Math.PI); g.stroke();
    g.beginPath(); g.moveTo(px - 14, py); g.lineTo(px + 14, py); g.moveTo(px, py - 14); g.lineTo(px, py + 14); g.stroke();
  }
  for (const [part, filled] of [["test", false], ["train", true]]) {
    for (const [x, y, k] of s.points[part]) {
      const [px, py] = toPixel(x, y, c.width, c.height, s.extent);
      g.beginPath();
      g.arc(px, py, filled ? 3.5 : 4, 0, 2 * Math.PI);
      if (filled) {
        g.fillStyle = colors[k % colors.length]; g.fill();
        g.strokeStyle = "#333"; g.lineWidth = 0.8; g.stroke();
      } else {
        g.strokeStyle = colors[k % colors.length]; g.lineWidth = 2; g.stroke();
      }
    }
  }
}

function drawCurves(curves) {
  const c = $("curves"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const all = [...curves.loss, ...curves.val_loss].filter((v) => v != null);
  if (!curves.epoch.length || !all.length) return;
  const top = Math.max(...all) * 1.05 || 1, n = curves.epoch[curves.epoch.length - 1];
  const pad = 24;
  g.strokeStyle = "#ccc"; g.lineWidth = 1;
  g.strokeRect(pad, 4, c.width - pad - 4, c.height - pad - 4);
  g.fillStyle = "#666"; g.font = "10px sans-serif";
  g.fillText(top.toPrecision(2), 0, 12); g.fillText("0", 10, c.height - pad);
  g.fillText(`epoch ${n}`, c.width - 60, c.height - 6);
  for (const [key, color] of [["loss", "#1f5fa8"], ["val_loss", "#d9541e"]]) {
    g.beginPath(); g.strokeStyle = color; g.lineWidth = 1.5;
    let started = false;
    curves[key].forEach((v, i) => {
      if (v == null) return;
      const x = pad + (c.width - pad - 4) * (curves.epoch[i] / Math.max(n, 1));
      const y = 4 + (c.height - pad - 4) * (1 - v / top);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    });
    g.stroke();
  }
}

function drawUnits(units) {
  const box = $("units");
  const shape = units.map((u) => u.length).join(",");
  if (box.dataset.shape !== shape) {  // rebuild only when the architecture changed
    box.dataset.shape = shape;
    box.innerHTML = units.map((u, l) =>
      `<div class="unit-layer"><div class="title">layer ${l + 1}: ${u.length} units</div>` +
      u.map((_, j) => `<img class="unit" alt="layer ${l + 1} unit ${j + 1}" title="layer ${l + 1} unit ${j + 1}">`).join("") +
      "</div>").join("") || "<p class=\"hint\">no hidden layers</p>";
  }
  const imgs = box.querySelectorAll("img.unit");
  units.flat().forEach((src, i) => { imgs[i].src = src; });
}

function ratioClass(r) {
  if (r == null) return "bad";
  return r > 3e-2 || r < 1e-5 ? "bad" : (r > 1e-2 || r < 1e-4 ? "warn" : "ok");
}

function drawBabysit(b) {
  $("diagnosis-title").hidden = !b.started;
  if (!b.started) {  // nothing is measured before the first step
    $("babysit").innerHTML = "<p class=\"hint\" id=\"babysit-waiting\">starts when training starts</p>";
    $("diagnosis").innerHTML = "";
    return;
  }
  let html = "<table><tr><th>weights</th><th>update/weight</th></tr>";
  for (const r of b.ratios) {
    html += `<tr><td>${r.param}</td><td class="${ratioClass(r.ratio)}">${r.ratio == null ? "–" : r.ratio.toExponential(1)}</td></tr>`;
  }
  html += "</table><table><tr><th>layer</th><th>dead</th><th>saturated</th></tr>";
  for (const l of b.layers) {
    const dead = l.dead_fraction, sat = l.saturation;
    html += `<tr><td>${l.layer} ${l.type}</td>` +
      `<td class="${dead > 0.3 ? "bad" : "ok"}">${dead == null ? "–" : pct(dead)}</td>` +
      `<td class="${sat > 0.5 ? "bad" : "ok"}">${sat == null ? "–" : pct(sat)}</td></tr>`;
  }
  html += "</table>";
  $("babysit").innerHTML = b.step == null ? "<p class=\"hint\">press play or step</p>" : html;
  const esc = (t) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  $("diagnosis").innerHTML = b.diagnosis.length
    ? b.diagnosis.map((f) => `<li class="${f.severity}"><b>${f.rule}</b>: ${esc(f.message)}<br><i>try:</i> ${esc(f.action)}</li>`).join("")
    : "<li>no problems found</li>";
}

function render(s) {
  state = s;
  if (s.upload) uploaded = s.upload;
  $("status").textContent = s.status;
  $("epoch").textContent = s.epoch;
  setMetric("train-acc", s.train.acc, pct);
  setMetric("train-loss", s.train.loss, num);
  setMetric("test-acc", s.test ? s.test.acc : null, pct);
  setMetric("test-loss", s.test ? s.test.loss : null, num);
  if ($("region").getAttribute("src") !== s.region) $("region").src = s.region;
  drawPoints(s);
  drawCurves(s.curves);
  drawUnits(s.units);
  drawBabysit(s.babysitting);
  drawRace(s.race);
  markStale(s);
  drawExport(s);
  if (s.error) showError(`${s.status}: ${s.error}`);
  $("play").disabled = s.status === "running" || s.status === "diverged" || s.status === "finished";
  $("step").disabled = s.status === "diverged" || s.status === "finished";
}

// -- wiring ----------------------------------------------------------------------------
function control(action) {
  return async () => {
    try { await api("POST", `/api/sessions/${sessionId}/${action}`); }
    catch (e) { showError(e.message); }
  };
}

function addPoint(ev) {
  if (!state) return;
  const c = $("plot"), rect = c.getBoundingClientRect(), e = state.extent;
  const x = ((ev.clientX - rect.left) / rect.width) * 2 * e - e;
  const y = e - ((ev.clientY - rect.top) / rect.height) * 2 * e;
  const label = Number($("click-class").value);
  const point = [+x.toFixed(3), +y.toFixed(3), label];
  if ($("click-mode").value === "trace") { requestTrace({ point }); return; }
  apply(() => ({ ...settings, points: [...settings.points, point] }));
}

// -- your own points, and the trained network as files -------------------------------------
async function uploadCsv() {
  const input = $("upload-file"), file = input.files[0];
  input.value = "";  // the same file may be chosen again after a fix
  if (!file) return;
  if (file.size > opts.upload.max_bytes) {
    showError(`upload refused: ${file.name} has ${file.size} bytes, over the limit of ${opts.upload.max_bytes}`);
    return;
  }
  applyQueue = applyQueue.then(async () => {
    try {
      const r = await fetch(`/api/sessions/${sessionId}/upload`, { method: "POST", headers: { "Content-Type": "text/csv" }, body: file });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
      uploaded = data.upload;
      settings = data.settings;
      showError(null);
      $("upload-status").textContent = `${file.name}: ${uploaded.rows} points, ${uploaded.classes} classes`;
      $("upload-status").dataset.rows = uploaded.rows;
      history.replaceState(null, "", encodeHash(settings));
      fillForm(settings);
    } catch (e) {
      showError(`upload refused (${file.name}): ${e.message}`);
    }
  });
}

function snippet(fromCsv) {
  const where = fromCsv ? "your CSV's coordinates" : "the playground's coordinates";
  return [
    "import numpy as np",
    "import neuronlab as nl",
    "",
    "model = nl.load(\"playground.safetensors\")  # the network and its trained weights",
    `X = np.array([[0.5, -0.25], [-0.75, 0.6]], dtype=np.float32)  # points (x, y) in ${where}`,
    "print(model.predict_proba(X))  # class probabilities, one row per point",
    "print(model.predict(X))  # the most likely class of each point",
    "",
    "# the ONNX file runs without neuronlab:",
    "# import onnxruntime as ort",
    "# proba = ort.InferenceSession(\"playground.onnx\").run([\"probabilities\"], {\"x\": X})[0]",
  ].join("\n");
}

function drawExport(s) {
  const text = snippet(s.settings.dataset === "upload");
  if ($("export-snippet").textContent !== text) $("export-snippet").textContent = text;
}

function connect() {
  source = new EventSource(`/api/sessions/${sessionId}/events`);
  source.onmessage = (ev) => render(JSON.parse(ev.data));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) $("status").textContent = "disconnected (reload)";
  };
}

async function start() {
  opts = await api("GET", "/api/options");
  fillSelect("dataset", Object.keys(opts.datasets));
  fillSelect("activation", opts.activations);
  fillSelect("init", opts.inits);
  fillSelect("optimizer", opts.optimizers);
  const wanted = decodeHash(location.hash);
  let created;
  try {
    created = await api("POST", "/api/sessions", wanted);
  } catch (e) {
    if (!Object.keys(wanted).length) { showError(e.message); $("status").textContent = "no session"; return; }
    showError(`settings in the URL refused: ${e.message} (using the defaults)`);
    try { created = await api("POST", "/api/sessions", {}); }
    catch (e2) { showError(e2.message); $("status").textContent = "no session"; return; }
  }
  sessionId = created.id;
  settings = created.state.settings;
  $("export-safetensors").href = `/api/sessions/${sessionId}/export/safetensors`;
  $("export-onnx").href = `/api/sessions/${sessionId}/export/onnx`;
  fillForm(settings);
  history.replaceState(null, "", encodeHash(settings));
  render(created.state);
  connect();
  for (const id of [...SELECTS, ...NUMERIC, "batchnorm"]) {
    $(id).addEventListener("input", () => { editing = true; });
    $(id).addEventListener("change", scheduleApply);
  }
  $("play").addEventListener("click", control("play"));
  $("pause").addEventListener("click", control("pause"));
  $("step").addEventListener("click", control("step"));
  $("reset").addEventListener("click", () => apply(readForm));
  $("add-layer").addEventListener("click", () => {
    apply(() => {
      const h = settings.hidden;
      return { ...readForm(), hidden: [...h, h.length ? h[h.length - 1] : 8] };
    });
  });
  $("remove-layer").addEventListener("click", () => apply(() => ({ ...readForm(), hidden: settings.hidden.slice(0, -1) })));
  $("clear-points").addEventListener("click", () => apply(() => ({ ...readForm(), points: [] })));
  $("plot").addEventListener("click", addPoint);
  $("click-mode").addEventListener("change", () => {
    $("plot").title = $("click-mode").value === "trace" ? "click to step that point through the network" : "click to add a training point";
  });
  $("upload-file").addEventListener("change", uploadCsv);
  initTrace();
  initRace();
  window.addEventListener("hashchange", () => {
    if (location.hash !== encodeHash(settings)) apply(() => ({ ...settings, ...decodeHash(location.hash) }));
  });
}

start().catch((e) => showError(`could not start: ${e.message}`));

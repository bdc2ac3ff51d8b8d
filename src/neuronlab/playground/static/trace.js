// Step one example through the network: the server's /trace answer (every layer's output,
// the gradient arriving at it, every parameter and its gradient) drawn as an SVG diagram and
// revealed phase by phase: the input, each layer forward, the loss, each layer backward,
// the gradient at the input. Every unit and weight carries its numbers in data attributes
// (data-value, data-grad, data-weight) and shows them on hover.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const trace = { data: null, phase: -1, index: -1, key: null };

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function fmt(v) { return v == null ? "–" : Number(v).toPrecision(5); }

// phases: 0 input, 1..L forward through layer p-1, L+1 loss, L+2..2L+1 backward through
// layer 2L+1-p, 2L+2 the gradient at the input
function traceLayers() { return trace.data ? trace.data.layers.length : 0; }
function maxPhase() { return 2 * traceLayers() + 2; }
function forwardDone(i) { return trace.phase >= i + 1; }          // output of layer i shown
function backwardDone(i) { return trace.phase >= 2 * traceLayers() + 1 - i; }  // its gradient

async function requestTrace(body) {
  try {
    const r = await api("POST", `/api/sessions/${sessionId}/trace`, body);
    trace.data = r;
    trace.key = networkKey(settings);
    if (r.index != null) trace.index = r.index;
    const ex = $("trace-example");
    const where = r.index != null ? `training example ${r.index} of ${r.n_train}` : "the clicked point";
    ex.textContent = `${where}: x = (${fmt(r.input[0])}, ${fmt(r.input[1])}), label ${r.label}`;
    Object.assign(ex.dataset, { x: String(r.input[0]), y: String(r.input[1]), label: String(r.label),
      index: r.index == null ? "" : String(r.index), step: String(r.step) });
    drawNet();
    setPhase(0);
    showError(null);
    if (state) drawPoints(state);
  } catch (e) {
    showError(`trace: ${e.message}`);
  }
}

function networkKey(s) {
  return JSON.stringify([s.dataset, s.hidden, s.activation, s.batchnorm, s.dropout, s.seed,
    s.n_points, s.noise, s.test_fraction, s.points.length]);
}

function nextExample() {
  const n = state ? state.points.train.length : 0;
  if (!n) return;
  trace.index = (trace.index + 1) % n;
  requestTrace({ index: trace.index });
}

function clearTrace(reason) {
  trace.data = null; trace.phase = -1;
  $("net").innerHTML = "";
  $("net").setAttribute("width", 0);
  $("net").setAttribute("height", 0);
  $("trace-phase").textContent = reason || "";
  $("trace-phase").dataset.phase = "-1";
  $("trace-phase").dataset.max = "-1";
  $("trace-stale").hidden = true;
  for (const id of ["trace-back", "trace-forward", "trace-all"]) $(id).disabled = true;
}

// -- the diagram ---------------------------------------------------------------------------
function columns() {
  // [{id, title, n, layer}] : the input, each layer's output, the probabilities
  const d = trace.data;
  const cols = [{ id: "in", title: "input x", n: d.input.length, layer: null }];
  d.layers.forEach((l) => cols.push({ id: String(l.index), title: `${l.index} ${l.name}`, n: l.n_out, layer: l }));
  cols.push({ id: "p", title: "softmax p", n: d.proba.length, layer: null });
  return cols;
}

function drawNet() {
  const svg = $("net");
  svg.innerHTML = "";
  const cols = columns();
  const most = Math.max(...cols.map((c) => c.n));
  const gap = most > 24 ? 11 : most > 12 ? 18 : 30;
  const top = 44, colW = 120;
  const H = Math.max(220, top + gap * most + 30), W = colW * (cols.length - 1) + 120;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  // drawn at its own size: a wide network scrolls sideways instead of shrinking out of sight
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const r = Math.max(3, Math.min(9, gap * 0.35));
  const pos = cols.map((c, k) => {
    const x = 50 + k * colW, h = gap * (c.n - 1);
    const y0 = top + (gap * (most - 1) - h) / 2;
    return Array.from({ length: c.n }, (_, j) => [x, y0 + j * gap]);
  });
  const bands = svgEl("g", { id: "net-bands" }, svg);
  cols.forEach((c, k) => {
    svgEl("rect", { id: `band-${c.id}`, class: "band", x: 50 + k * colW - 40, y: 4, width: 80, height: H - 8, rx: 6 }, bands);
    const t = svgEl("text", { class: "col-title", x: 50 + k * colW, y: 18, "text-anchor": "middle" }, svg);
    t.textContent = c.title;
  });
  const edges = svgEl("g", { id: "net-edges" }, svg);
  cols.forEach((c, k) => {
    if (k === 0) return;
    const from = pos[k - 1], to = pos[k];
    if (c.layer === null) {  // scores -> probabilities: softmax mixes them all
      to.forEach((b, j) => svgEl("line", { class: "edge link", x1: from[j][0], y1: from[j][1], x2: b[0], y2: b[1] }, edges));
      return;
    }
    const l = c.layer;
    if (l.kind === "elementwise") {
      to.forEach((b, j) => svgEl("line", { class: "edge link", x1: from[j][0], y1: from[j][1], x2: b[0], y2: b[1] }, edges));
      return;
    }
    const W = l.params.W.value;
    const weight = (a, j) => (l.kind === "maxout" ? W[a][j][l.winner[j]] : W[a][j]);
    let big = 1e-12;
    from.forEach((_, a) => to.forEach((__, j) => { big = Math.max(big, Math.abs(weight(a, j) || 0)); }));
    from.forEach((p, a) => to.forEach((q, j) => {
      const w = weight(a, j);
      svgEl("line", {
        id: `edge-${l.index}-${a}-${j}`, class: `edge weight ${w >= 0 ? "pos" : "neg"}`,
        x1: p[0] + r, y1: p[1], x2: q[0] - r, y2: q[1],
        "stroke-width": (0.4 + 3.6 * Math.abs(w) / big).toFixed(2),
        "data-layer": l.index, "data-from": a, "data-to": j, "data-weight": String(w),
      }, edges);
    }));
  });
  const units = svgEl("g", { id: "net-units" }, svg);
  cols.forEach((c, k) => pos[k].forEach(([x, y], j) => {
    svgEl("circle", { id: `unit-${c.id}-${j}`, class: "unit", cx: x, cy: y, r, fill: "#fafafa", stroke: "#888", "data-col": c.id, "data-unit": j }, units);
    if (most <= 12) {
      svgEl("text", { id: `value-${c.id}-${j}`, class: "unit-value", x: x + r + 3, y: y - 2 }, units);
      svgEl("text", { id: `grad-${c.id}-${j}`, class: "unit-grad", x: x + r + 3, y: y + 10 }, units);
    }
  }));
  svg.onmouseover = (ev) => hover(ev.target);
}

function colour(v, big) {
  if (v == null) return "#fafafa";
  const a = Math.min(1, Math.abs(v) / (big || 1));
  const [r, g, b] = v >= 0 ? [230, 120, 0] : [0, 110, 200];
  const mix = (c) => Math.round(255 + a * (c - 255));
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

function setUnit(colId, j, value, grad, bigV, bigG) {
  const c = $(`unit-${colId}-${j}`);
  if (!c) return;
  if (value === undefined) { delete c.dataset.value; } else { c.dataset.value = value == null ? "" : String(value); }
  if (grad === undefined) { delete c.dataset.grad; } else { c.dataset.grad = grad == null ? "" : String(grad); }
  c.setAttribute("fill", colour(value === undefined ? null : value, bigV));
  const g = grad === undefined || grad == null ? 0 : Math.abs(grad) / (bigG || 1);
  c.setAttribute("stroke", grad === undefined ? "#888" : "#7b2d8b");
  c.setAttribute("stroke-width", grad === undefined ? 1 : (1 + 3.5 * g).toFixed(2));
  const vt = $(`value-${colId}-${j}`), gt = $(`grad-${colId}-${j}`);
  if (vt) vt.textContent = value === undefined ? "" : fmt(value);
  if (gt) gt.textContent = grad === undefined ? "" : `∂ ${fmt(grad)}`;
}

function maxAbs(xs) { return Math.max(1e-12, ...xs.map((v) => Math.abs(v || 0))); }

function setPhase(p) {
  const d = trace.data;
  if (!d) return;
  const L = d.layers.length;
  trace.phase = Math.max(0, Math.min(maxPhase(), p));
  p = trace.phase;
  // the input: its value from the start, its gradient at the very end
  d.input.forEach((v, j) => setUnit("in", j, v, p >= 2 * L + 2 ? d.grad_input[j] : undefined,
    maxAbs(d.input), maxAbs(d.grad_input)));
  d.layers.forEach((l, i) => {
    const bigV = maxAbs(l.output), bigG = maxAbs(l.grad);
    l.output.forEach((v, j) => setUnit(String(i), j, forwardDone(i) ? v : undefined,
      backwardDone(i) ? l.grad[j] : undefined, bigV, bigG));
    if (l.kind !== "elementwise") {
      const G = l.params.W.grad, b = l.params.b;
      for (const e of document.querySelectorAll(`line.weight[data-layer="${i}"]`)) {
        const a = Number(e.dataset.from), j = Number(e.dataset.to);
        const g = l.kind === "maxout" ? G[a][j][l.winner[j]] : G[a][j];
        if (backwardDone(i)) e.dataset.grad = String(g); else delete e.dataset.grad;
        e.classList.toggle("current", p === i + 1 || p === 2 * L + 1 - i);
      }
      if (b) l.output.forEach((_, j) => {
        const c = $(`unit-${i}-${j}`);
        const bv = l.kind === "maxout" ? b.value[j][l.winner[j]] : b.value[j];
        const bg = l.kind === "maxout" ? b.grad[j][l.winner[j]] : b.grad[j];
        c.dataset.bias = String(bv);
        if (backwardDone(i)) c.dataset.biasGrad = String(bg); else delete c.dataset.biasGrad;
      });
    }
  });
  d.proba.forEach((v, j) => setUnit("p", j, p >= L + 1 ? v : undefined, undefined, 1, 1));
  for (const band of document.querySelectorAll("#net .band")) band.classList.remove("current");
  const current = p === 0 ? "in" : p <= L ? String(p - 1) : p === L + 1 ? "p" : p <= 2 * L + 1 ? String(2 * L + 1 - p) : "in";
  const band = $(`band-${current}`);
  if (band) band.classList.add("current");
  const box = $("trace-phase");
  box.dataset.phase = String(p);
  box.dataset.max = String(maxPhase());
  box.textContent = phaseText(p);
  $("trace-back").disabled = p <= 0;
  $("trace-forward").disabled = p >= maxPhase();
  $("trace-all").disabled = p >= maxPhase();
}

function phaseText(p) {
  const d = trace.data, L = d.layers.length;
  const step = `step ${p} of ${maxPhase()} · `;
  if (p === 0) return `${step}input x = (${fmt(d.input[0])}, ${fmt(d.input[1])}), label ${d.label}: press forward ▶`;
  if (p <= L) { const l = d.layers[p - 1]; return `${step}forward through layer ${l.index} (${l.name}): ${l.formula}`; }
  if (p === L + 1) return `${step}loss: ${d.loss_formula} = ${fmt(d.loss)} (label ${d.label}, predicted ${d.prediction})`;
  if (p <= 2 * L + 1) { const l = d.layers[2 * L + 1 - p]; return `${step}backward through layer ${l.index} (${l.name}): ${l.backward || "dL/dx = dL/dy"}`; }
  return `${step}the gradient reaches the input: dL/dx = (${fmt(d.grad_input[0])}, ${fmt(d.grad_input[1])}). Hover any unit or weight.`;
}

// -- hover -----------------------------------------------------------------------------------
function hover(el) {
  if (!trace.data || !el || !el.classList) return;
  const box = $("trace-info"), d = trace.data;
  const line = (k, v) => `<div><span class="k">${k}</span> <b>${v}</b></div>`;
  let html = "";
  if (el.classList.contains("unit")) {
    const col = el.dataset.col, j = Number(el.dataset.unit);
    const value = el.dataset.value, grad = el.dataset.grad;
    if (col === "in") {
      html = `<h4>input x${j + 1}</h4>` + line("value", fmt(d.input[j])) +
        (grad !== undefined ? line("dL/dx", fmt(Number(grad))) : "");
    } else if (col === "p") {
      html = `<h4>class ${j}: probability</h4><p>${d.loss_formula}</p>` +
        (value !== undefined ? line("p", fmt(Number(value))) + line("loss L", fmt(d.loss)) : "") +
        `<p>${d.loss_backward}</p>`;
    } else {
      const l = d.layers[Number(col)];
      html = `<h4>layer ${l.index} · ${l.name} · unit ${j}</h4><p>forward: ${l.formula}</p>`;
      if (value !== undefined) {
        const prev = Number(col) === 0 ? null : d.layers[Number(col) - 1];
        if (l.kind === "elementwise") html += line("input x", fmt(prev ? prev.output[j] : d.input[j]));
        if (el.dataset.bias !== undefined) html += line("bias b", fmt(Number(el.dataset.bias)));
        html += line("output y", fmt(Number(value)));
      }
      if (grad !== undefined) {
        html += line("dL/dy", fmt(Number(grad)));
        if (el.dataset.biasGrad !== undefined) html += line("dL/db", fmt(Number(el.dataset.biasGrad)));
        html += `<p>backward: ${l.backward}</p>`;
      }
    }
  } else if (el.classList.contains("weight")) {
    const l = d.layers[Number(el.dataset.layer)], a = Number(el.dataset.from), j = Number(el.dataset.to);
    const piece = l.kind === "maxout" ? `, piece ${l.winner[j]} (the winner)` : "";
    html = `<h4>layer ${l.index} · ${l.name} · W[${a}, ${j}]${piece}</h4>` +
      line("weight", fmt(Number(el.dataset.weight))) +
      (el.dataset.grad !== undefined ? line("dL/dW", fmt(Number(el.dataset.grad))) +
        `<p>dL/dW[${a}, ${j}] = x${a} · dL/dy${j}</p>` : "<p>its gradient appears on the way back</p>");
  } else {
    return;
  }
  box.innerHTML = html;
  box.dataset.for = el.id;
}

function markStale(s) {
  if (!trace.data) return;
  if (networkKey(s.settings) !== trace.key) { clearTrace("the network or data changed: pick an example again"); return; }
  const stale = s.step !== trace.data.step;
  $("trace-stale").hidden = !stale;
  if (stale) $("trace-stale").textContent = `the weights have changed since this trace (step ${trace.data.step}, now ${s.step}): trace again to see them`;
}

function initTrace() {
  $("trace-next").addEventListener("click", nextExample);
  $("trace-back").addEventListener("click", () => setPhase(trace.phase - 1));
  $("trace-forward").addEventListener("click", () => setPhase(trace.phase + 1));
  $("trace-all").addEventListener("click", () => setPhase(maxPhase()));
}

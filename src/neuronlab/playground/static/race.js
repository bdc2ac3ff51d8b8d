// Race optimizers: pick update rules and learning rates, start a race on the server, and draw
// the state it streams: one loss curve per optimizer on a shared SVG chart (each a
// path.race-series with data-optimizer and data-points) and a small decision-region panel each.
"use strict";

const RACE_COLORS = { sgd: "#d62728", momentum: "#1f77b4", nesterov: "#9467bd", adam: "#2ca02c",
  adamw: "#17becf", rmsprop: "#ff7f0e", adagrad: "#8c564b" };
const RACE_DEFAULT = ["sgd", "momentum", "adam"];

function raceColor(name) { return RACE_COLORS[name] || "#555"; }

function fillRaceOptions() {
  $("race-optimizers").innerHTML = opts.optimizers.map((n) =>
    `<div class="race-opt"><label class="check"><input type="checkbox" id="race-use-${n}"` +
    `${RACE_DEFAULT.includes(n) ? " checked" : ""}><span class="sw" style="background:${raceColor(n)}"></span> ${n}</label>` +
    `<label class="inline">lr <input id="race-lr-${n}" type="number" step="any" value="${opts.race.lrs[n]}"></label></div>`
  ).join("");
  $("race-epochs").value = Math.min(100, opts.max_epochs);
}

async function startRace() {
  const racers = opts.optimizers.filter((n) => $(`race-use-${n}`).checked)
    .map((n) => ({ optimizer: n, lr: numOrText($(`race-lr-${n}`).value) }));
  try {
    // drawn from the state stream, which may already be ahead of this reply
    await api("POST", `/api/sessions/${sessionId}/race`, { racers, epochs: numOrText($("race-epochs").value) });
    showError(null);
  } catch (e) {
    showError(`race: ${e.message}`);
  }
}

async function stopRace() {
  try { await api("DELETE", `/api/sessions/${sessionId}/race`); }
  catch (e) { showError(`race: ${e.message}`); }
}

function drawRaceChart(race) {
  const svg = $("race-chart");
  svg.innerHTML = "";
  const W = 520, H = 220, left = 40, bottom = 24, top = 8, right = 8;
  const all = race.racers.flatMap((r) => r.curve.loss.filter((v) => v != null));
  const last = Math.max(1, ...race.racers.map((r) => r.curve.epoch.length ? r.curve.epoch[r.curve.epoch.length - 1] : 0));
  const xmax = Math.max(race.epochs, last);
  const ymax = all.length ? Math.max(...all) * 1.05 : 1;
  const X = (e) => left + (W - left - right) * (e / xmax);
  const Y = (v) => top + (H - top - bottom) * (1 - v / ymax);
  svgEl("rect", { class: "frame", x: left, y: top, width: W - left - right, height: H - top - bottom }, svg);
  const label = (x, y, text, anchor) => { const t = svgEl("text", { class: "axis", x, y, "text-anchor": anchor }, svg); t.textContent = text; };
  label(left - 4, top + 10, ymax.toPrecision(2), "end");
  label(left - 4, H - bottom, "0", "end");
  label(W - right, H - 6, `epoch ${xmax}`, "end");
  label(left, H - 6, "training loss", "start");
  for (const r of race.racers) {
    const pts = [];
    r.curve.loss.forEach((v, i) => { if (v != null) pts.push([X(r.curve.epoch[i]), Y(v)]); });
    svgEl("path", {
      class: "race-series", "data-optimizer": r.optimizer, "data-points": String(pts.length),
      d: pts.length ? "M" + pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join("L") : "",
      stroke: raceColor(r.optimizer), fill: "none", "stroke-width": 1.8,
    }, svg);
  }
}

function drawRacePanels(race) {
  const box = $("race-regions");
  const key = race.racers.map((r) => r.optimizer).join(",");
  if (box.dataset.key !== key) {
    box.dataset.key = key;
    box.innerHTML = race.racers.map((r) =>
      `<figure class="race-panel" data-optimizer="${r.optimizer}">` +
      `<img class="race-region" alt="${r.optimizer} decision regions">` +
      `<figcaption><span class="sw" style="background:${raceColor(r.optimizer)}"></span> ` +
      `<b>${r.optimizer}</b> <span class="race-caption"></span></figcaption></figure>`).join("");
  }
  race.racers.forEach((r, i) => {
    const fig = box.children[i];
    const img = fig.querySelector("img");
    if (img.getAttribute("src") !== r.region) img.src = r.region;
    const loss = r.train.loss == null ? "–" : r.train.loss.toPrecision(3);
    const note = r.status === "running" || r.status === "finished" ? "" : ` · ${r.status}`;
    fig.querySelector(".race-caption").textContent =
      `lr ${r.lr} · epoch ${r.epoch} · loss ${loss} · acc ${pct(r.train.acc)}${note}`;
    fig.dataset.status = r.status;
    fig.dataset.epoch = String(r.epoch);
    fig.title = r.error || "";
  });
}

function drawRace(race) {
  if (!race) {
    $("race-status").textContent = "";
    $("race-stop").disabled = true;
    return;
  }
  drawRaceChart(race);
  drawRacePanels(race);
  $("race-status").textContent = `race ${race.status}`;
  $("race-status").dataset.status = race.status;
  $("race-stop").disabled = race.status !== "running";
}

function clearRace() {
  $("race-chart").innerHTML = "";
  $("race-regions").innerHTML = "";
  delete $("race-regions").dataset.key;
  drawRace(null);
}

function initRace() {
  fillRaceOptions();
  $("race-start").addEventListener("click", startRace);
  $("race-stop").addEventListener("click", stopRace);
}

// The page of `ionfno app`: inputs -> POST /api/run -> tables and plotly figures.
// Every number cell carries its full value in data-value (the text shows 5 significant digits);
// #status[data-run] counts the results drawn, so a test can wait for the next one.
"use strict";

const $ = (id) => document.getElementById(id);
const page = { info: null, waveform: null, seq: 0, runs: 0, timer: null };

const BIOMARKERS = [
  ["V peak", "v_peak", "v"],
  ["upstroke time", "t_upstroke", "time"],
  ["APD90", "apd90", "time"],
  ["APD50", "apd50", "time"],
  ["V rest", "v_rest", "v"],
];

function fmt(v) {
  if (v === null || v === undefined) return "\u2013";
  if (typeof v === "boolean") return v ? "yes" : "no";
  return Number(v).toPrecision(5);
}

function td(id, value) {
  const c = document.createElement("td");
  c.id = id;
  c.textContent = fmt(value);
  c.dataset.value = value === null || value === undefined ? "" : String(value);
  return c;
}

function th(text) {
  const c = document.createElement("th");
  c.textContent = text;
  return c;
}

async function api(path, body) {
  const opt = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const r = await fetch(path, opt);
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

function unitOf(kind) {
  const i = page.info;
  if (!i) return "";
  return { current: i.current_unit, time: i.time_unit, v: i.units.V }[kind] || "";
}

async function loadSurrogates(selected) {
  const list = (await api("/api/surrogates")).surrogates;
  const sel = $("surrogate");
  sel.innerHTML = "";
  for (const s of list) {
    const o = document.createElement("option");
    o.value = s.id;
    o.textContent = s.label;
    sel.appendChild(o);
  }
  if (!list.length) {
    showError("No pretrained surrogate is installed: add a run folder above.");
    $("status").textContent = "no surrogate";
    return;
  }
  sel.value = selected || list[0].id;
  await describe(sel.value);
}

async function describe(id) {
  const i = await api("/api/describe?id=" + encodeURIComponent(id));
  page.info = i;
  for (const span of document.querySelectorAll(".unit")) {
    const u = unitOf(span.dataset.unit);
    span.textContent = u && u !== "1" ? "[" + u + "]" : "";
  }
  $("amplitude").value = i.example.amplitude;
  $("duration").value = i.example.duration;
  $("onset").value = 0;
  $("beats").value = 1;
  $("period").value = i.t_end / 2;
  const states = $("states");
  states.innerHTML = "";
  for (const s of i.states) {
    const o = document.createElement("option");
    o.value = s;
    o.textContent = s + (i.units[s] && i.units[s] !== "1" ? " [" + i.units[s] + "]" : "");
    o.selected = i.default_states.includes(s);
    states.appendChild(o);
  }
  let text = `${i.model}: ${i.states.length} states, ${i.n_points} points over [0, ${i.t_end}] ${i.time_unit}` +
    `, input ${i.input_encoding}.`;
  if (i.test_error !== null && i.test_error !== undefined) {
    text += ` Test error ${(100 * i.test_error).toFixed(2)} % (study metric).`;
  }
  const r = i.trained_range;
  if (r) {
    const span = (a) => `${Number(a[0]).toPrecision(3)}\u2013${Number(a[1]).toPrecision(3)}`;
    text += ` Trained on one pulse from t = 0: amplitude ${span(r.amplitude)} ${i.current_unit}` +
      `, duration ${span(r.duration)} ${i.time_unit}.`;
  }
  $("surrogate-info").textContent = text;
}

function stimulus() {
  if ($("kind-waveform").checked) {
    if (!page.waveform) throw new Error("Choose a waveform file (CSV with columns t,i_app, or .npz).");
    return { kind: "waveform", content: page.waveform.content, filename: page.waveform.name,
      interp: $("interp").value };
  }
  return {
    kind: "pulse",
    amplitude: Number($("amplitude").value),
    duration: Number($("duration").value),
    onset: Number($("onset").value),
    n_beats: Number($("beats").value),
    period: Number($("period").value),
  };
}

function chosenStates() {
  return Array.from($("states").selectedOptions).map((o) => o.value);
}

function schedule() {
  clearTimeout(page.timer);
  page.timer = setTimeout(runNow, 250);
}

async function runNow() {
  if (!page.info) return;
  const seq = ++page.seq;
  $("status").textContent = "computing...";
  let res;
  try {
    res = await api("/api/run", { surrogate: $("surrogate").value, stimulus: stimulus(), states: chosenStates() });
  } catch (e) {
    if (seq !== page.seq) return;
    showError(e.message);
    $("status").textContent = "error";
    $("status").dataset.error = String(seq);
    return;
  }
  if (seq !== page.seq) return;  // a newer request is on its way
  showError("");
  render(res);
  page.runs += 1;
  $("status").dataset.run = String(page.runs);
  $("status").textContent = `result ${page.runs}: surrogate ${(1e3 * res.seconds.surrogate).toFixed(1)} ms, ` +
    `solver ${(1e3 * res.seconds.solver).toFixed(1)} ms`;
}

function render(res) {
  const ul = $("warnings");
  ul.innerHTML = "";
  for (const w of res.warnings) {
    const li = document.createElement("li");
    li.textContent = w;
    ul.appendChild(li);
  }
  const bm = $("biomarkers").tBodies[0];
  bm.innerHTML = "";
  const timeRow = document.createElement("tr");
  timeRow.appendChild(th("run time [ms]"));
  timeRow.appendChild(td("time-solver", 1e3 * res.seconds.solver));
  timeRow.appendChild(td("time-surrogate", 1e3 * res.seconds.surrogate));
  bm.appendChild(timeRow);
  const speedRow = document.createElement("tr");
  speedRow.appendChild(th("speed-up of the surrogate"));
  speedRow.appendChild(document.createElement("td"));
  speedRow.appendChild(td("time-ratio", res.seconds.solver / res.seconds.surrogate));
  bm.appendChild(speedRow);
  for (const [label, key, kind] of BIOMARKERS) {
    const a = res.biomarkers.solver[key];
    const b = res.biomarkers.surrogate[key];
    const u = unitOf(kind);
    const tr = document.createElement("tr");
    tr.appendChild(th(label + (u && u !== "1" ? " [" + u + "]" : "")));
    tr.appendChild(td("bm-solver-" + key, a));
    tr.appendChild(td("bm-surrogate-" + key, b));
    tr.appendChild(td("bm-diff-" + key, a === null || b === null ? null : b - a));
    bm.appendChild(tr);
  }
  const fires = document.createElement("tr");
  fires.appendChild(th("fires"));
  fires.appendChild(td("bm-solver-fires", res.biomarkers.solver.fires));
  fires.appendChild(td("bm-surrogate-fires", res.biomarkers.surrogate.fires));
  bm.appendChild(fires);

  const et = $("errors").tBodies[0];
  et.innerHTML = "";
  const names = Object.keys(res.states);
  const overall = document.createElement("tr");
  overall.appendChild(th("all states (mean)"));
  overall.appendChild(td("err-rel_l2-all", res.rel_l2 === null ? null : 100 * res.rel_l2));
  et.appendChild(overall);
  for (const s of names) {
    const e = res.errors[s];
    const tr = document.createElement("tr");
    tr.appendChild(th(s));
    tr.appendChild(td("err-rel_l2-" + s, e.rel_l2 === null ? null : 100 * e.rel_l2));
    tr.appendChild(td("err-rmse-" + s, e.rmse));
    tr.appendChild(td("err-max_abs-" + s, e.max_abs));
    const unit = document.createElement("td");
    unit.textContent = res.units[s];
    tr.appendChild(unit);
    et.appendChild(tr);
  }
  $("errors").tHead.rows[0].cells[1].textContent = "study metric [%]";

  const tu = unitOf("time");
  const cfg = { responsive: true, displaylogo: false };
  Plotly.react("plot-iapp", [{ x: res.t, y: res.i_app, mode: "lines", line: { color: "#7b3294" }, name: "I_app" }], {
    margin: { t: 10, b: 35, l: 60, r: 10 },
    xaxis: { title: { text: "t [" + tu + "]" } },
    yaxis: { title: { text: "I_app [" + unitOf("current") + "]" } },
  }, cfg);
  const holder = $("plots");
  for (const div of Array.from(holder.children)) {
    if (!names.includes(div.dataset.state)) { Plotly.purge(div); div.remove(); }
  }
  for (const s of names) {
    let div = document.getElementById("plot-" + s);
    if (!div) {
      div = document.createElement("div");
      div.id = "plot-" + s;
      div.dataset.state = s;
      div.className = "plot";
      holder.appendChild(div);
    }
    const u = res.units[s] && res.units[s] !== "1" ? " [" + res.units[s] + "]" : "";
    const err = res.states[s].surrogate.map((v, k) => v - res.states[s].solver[k]);
    Plotly.react(div, [
      { x: res.t, y: res.states[s].solver, name: "solver", mode: "lines", line: { color: "black" } },
      { x: res.t, y: res.states[s].surrogate, name: "surrogate (FNO)", mode: "lines",
        line: { color: "#ff7f0e", dash: "dash" } },
      { x: res.t, y: err, name: "surrogate \u2212 solver", mode: "lines", line: { color: "#d62728" },
        xaxis: "x2", yaxis: "y2" },
    ], {
      margin: { t: 30, b: 40, l: 70, r: 10 },
      title: { text: s + u, font: { size: 14 }, x: 0.99, xanchor: "right" },
      grid: { rows: 2, columns: 1, pattern: "independent", roworder: "top to bottom" },
      yaxis: { domain: [0.4, 1], title: { text: s + u } },
      yaxis2: { domain: [0, 0.28], title: { text: "error" + u } },
      xaxis2: { matches: "x", title: { text: "t [" + tu + "]" } },
      legend: { orientation: "h", y: 1.12 },
    }, cfg);
  }
}

function readWaveform(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => {
      const bytes = new Uint8Array(r.result);
      let bin = "";
      for (let k = 0; k < bytes.length; k += 0x8000) {
        bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
      }
      resolve({ name: file.name, content: btoa(bin) });
    };
    r.onerror = () => reject(r.error);
    r.readAsArrayBuffer(file);
  });
}

function init() {
  for (const id of ["amplitude", "duration", "onset", "beats", "period"]) {
    $(id).addEventListener("input", schedule);
  }
  for (const id of ["states", "interp"]) $(id).addEventListener("change", schedule);
  for (const id of ["kind-pulse", "kind-waveform"]) {
    $(id).addEventListener("change", () => {
      $("pulse-inputs").hidden = $("kind-waveform").checked;
      $("waveform-inputs").hidden = !$("kind-waveform").checked;
      schedule();
    });
  }
  $("waveform").addEventListener("change", async () => {
    const f = $("waveform").files[0];
    page.waveform = f ? await readWaveform(f) : null;
    schedule();
  });
  $("surrogate").addEventListener("change", async () => {
    try { await describe($("surrogate").value); schedule(); } catch (e) { showError(e.message); }
  });
  $("add-run").addEventListener("click", async () => {
    try {
      const entry = await api("/api/surrogates", { path: $("run-path").value });
      await loadSurrogates(entry.id);
      schedule();
    } catch (e) { showError(e.message); }
  });
  $("run").addEventListener("click", runNow);
  loadSurrogates().then(runNow).catch((e) => showError(e.message));
}

document.addEventListener("DOMContentLoaded", init);

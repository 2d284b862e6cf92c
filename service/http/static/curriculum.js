// The curriculum page: lists the caller's runs (GET /v1/runs) and plots the selected run's
// history (GET /v1/runs/{id}/history), polling for new steps. Plain script, no build step;
// uPlot (vendored, MIT) draws the charts. Every request goes to this origin, with the key
// typed in (sessionStorage: gone with the tab), so the page sees what the API lets that key see.
"use strict";

(function () {
  const POLL_MS = 1000; // new steps of the selected run
  const RUNS_MS = 5000; // the run list
  const PAGE = 1000; // history entries per request (the API's maximum)
  const COLOURS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#9c36b5", "#c2255c", "#0b7285",
    "#e67700", "#5c940d", "#364fc7", "#862e9c"];
  const KEY = "spard-api-key";
  // The step axis: whole steps only (uPlot's default increments include 0.2, 0.5, ...).
  const STEP_INCRS = [];
  for (let scale = 1; scale <= 1e9; scale *= 10) STEP_INCRS.push(scale, 2 * scale, 5 * scale);

  // Each chart: a title, a note, and how an entry gives its series (names per run).
  const CHARTS = [
    { id: "weights", title: "Reward weights", note: "weight of each objective at each step",
      series: (run) => run.objectives.map((o) => [o, (e) => e.reward_weights[o]]) },
    { id: "sample-weights", title: "Sample weights", note: "spread of the per-prompt data weights",
      series: () => ["min", "p10", "p50", "p90", "max"].map((q) => [q, (e) => e.sample_weights[q]]) },
    { id: "zero-signal", title: "Zero-signal fraction", note: "prompts whose rollouts carry no signal",
      range: [0, 1],
      series: () => [["zero-signal", (e) => e.sample_weights.prompts
        ? e.sample_weights.zero_signal / e.sample_weights.prompts : null]] },
    { id: "level", title: "Level", note: "EMA of each objective's batch mean, its own units",
      series: (run) => run.objectives.map((o) => [o, stat(o, "level")]) },
    { id: "progress", title: "Progress", note: "EMA of the level's step-to-step gains",
      series: (run) => run.objectives.map((o) => [o, stat(o, "progress")]) },
    { id: "reliability", title: "Reliability", note: "progress / noise: signal-to-noise of the trend",
      series: (run) => run.objectives.map((o) => [o, stat(o, "reliability")]) },
  ];

  function stat(objective, name) {
    return (entry) => {
      const stats = entry.stats && entry.stats[objective];
      const value = stats ? stats[name] : null;
      return value === undefined ? null : value;
    };
  }

  const state = { runs: [], selected: null, view: null, timer: null, busy: false };
  const $ = (id) => document.getElementById(id);

  function setStatus(text) { $("status").textContent = text || ""; }

  async function api(path) {
    const headers = { accept: "application/json" };
    const key = sessionStorage.getItem(KEY);
    if (key) headers.authorization = "Bearer " + key;
    const response = await fetch(path, { headers: headers, cache: "no-store" });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  async function loadRuns() {
    try {
      const body = await api("/v1/runs?limit=200");
      state.runs = body.runs;
      // A list read before the selected run's latest steps were polled must not step it back.
      const shown = state.view && state.runs.find((r) => r.run_id === state.view.run.run_id);
      if (shown && state.view.after !== null &&
          (shown.last_step === null || shown.last_step < state.view.after)) {
        shown.last_step = state.view.after;
      }
      setStatus(state.runs.length ? "" : "no runs yet: create one with POST /v1/runs");
    } catch (error) {
      state.runs = [];
      // "Needs a key" only when none was sent; a refused key's answer says why on its own
      // (unknown key, or a service that runs without auth).
      const keyless = error.status === 401 && !sessionStorage.getItem(KEY);
      setStatus(keyless ? "this service needs an API key: " + error.message
        : "cannot list runs: " + error.message);
      if (error.status === 401) $("api-key").focus();
    }
    renderRuns();
    const wanted = wantedRun();
    const ids = state.runs.map((r) => r.run_id);
    const next = ids.includes(state.selected) ? state.selected
      : ids.includes(wanted) ? wanted : ids[0] || null;
    if (next !== state.selected) select(next);
  }

  // The run named in the address (#run=...); a malformed escape (%E0%A4%A) names none.
  function wantedRun() {
    try {
      return decodeURIComponent(location.hash.replace(/^#run=/, ""));
    } catch (error) {
      return null;
    }
  }

  function renderRuns() {
    const list = $("runs");
    list.replaceChildren();
    for (const run of state.runs) {
      const item = document.createElement("li");
      item.dataset.runId = run.run_id;
      item.className = run.run_id === state.selected ? "selected" : "";
      item.textContent = run.run_id;
      const detail = document.createElement("small");
      const step = run.last_step === null ? "no step yet" : "step " + run.last_step;
      detail.textContent = run.strategy + ", " + step + ", " + run.objectives.length + " objectives";
      item.appendChild(detail);
      item.addEventListener("click", () => select(run.run_id));
      list.appendChild(item);
    }
  }

  function select(runId) {
    state.selected = runId;
    if (runId) history.replaceState(null, "", "#run=" + encodeURIComponent(runId));
    for (const item of $("runs").children) {
      item.className = item.dataset.runId === runId ? "selected" : "";
    }
    for (const chart of state.view ? state.view.charts : []) chart.plot.destroy();
    $("charts").replaceChildren();
    state.view = null;
    const run = state.runs.find((r) => r.run_id === runId);
    $("run-title").textContent = run ? run.run_id : "no run selected";
    $("run-meta").textContent = run ? describe(run) : "";
    if (run) {
      state.view = makeView(run);
      poll();
    }
  }

  function describe(run) {
    const config = run.config || {};
    return run.strategy + " · objectives: " + run.objectives.join(", ") + " · warmup " +
      config.warmup + " · pawa_mode " + config.pawa_mode;
  }

  function chartWidth() {
    return Math.max(400, Math.floor(($("charts").clientWidth - 12) / 2) - 14);
  }

  function resize() {
    const width = chartWidth();
    for (const chart of state.view ? state.view.charts : []) {
      chart.plot.setSize({ width: width, height: chart.plot.height });
    }
  }

  function makeView(run) {
    const view = { run: run, after: null, steps: [], charts: [] };
    const width = chartWidth();
    for (const spec of CHARTS) {
      const box = document.createElement("div");
      box.className = "chart";
      box.id = "chart-" + spec.id;
      box.dataset.points = "0";
      const title = document.createElement("h3");
      title.textContent = spec.title;
      const note = document.createElement("p");
      note.textContent = spec.note;
      box.append(title, note);
      $("charts").appendChild(box);
      const series = spec.series(run);
      const options = {
        width: width,
        height: 220,
        scales: spec.range ? { x: { time: false }, y: { range: spec.range } } : { x: { time: false } },
        axes: [{ label: "step", incrs: STEP_INCRS, values: (u, ticks) => ticks.map(String) },
          {}],
        series: [{ label: "step" }].concat(series.map(([name], i) => ({
          label: name, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
          points: { show: false },
        }))),
      };
      const data = [[]].concat(series.map(() => []));
      view.charts.push({ box: box, series: series, data: data, plot: new uPlot(options, data, box) });
    }
    return view;
  }

  async function poll() {
    const view = state.view;
    if (!view || state.busy) return;
    state.busy = true;
    try {
      for (;;) {
        const query = "limit=" + PAGE + (view.after === null ? "" : "&after=" + view.after);
        const page = await api("/v1/runs/" + encodeURIComponent(view.run.run_id) +
          "/history?" + query);
        if (view !== state.view) return; // another run was selected meanwhile
        append(view, page.entries);
        if (page.next_after === null) break;
      }
    } catch (error) {
      if (view === state.view) setStatus("cannot read " + view.run.run_id + ": " + error.message);
    } finally {
      state.busy = false;
    }
  }

  function append(view, entries) {
    if (!entries.length) return;
    for (const chart of view.charts) {
      for (const entry of entries) {
        chart.data[0].push(entry.step);
        chart.series.forEach(([, value], i) => {
          const v = value(entry);
          chart.data[i + 1].push(v === undefined || v === null || !isFinite(v) ? null : v);
        });
      }
      chart.plot.setData(chart.data);
      chart.box.dataset.points = String(chart.data[0].length);
      // What the chart holds now, read back from uPlot: each series' last value, by name.
      const plotted = chart.plot.data;
      const end = plotted[0].length - 1;
      chart.box.dataset.last = JSON.stringify(Object.fromEntries(
        chart.series.map(([name], i) => [name, plotted[i + 1][end]])));
    }
    view.after = entries[entries.length - 1].step;
    const last = entries[entries.length - 1];
    $("run-meta").textContent = describe(view.run) + " · last step " + last.step;
    // The list refreshes every few seconds; the selected run's entry follows its steps now
    // (the list's own entry: a refresh replaced the objects the view was made from).
    view.run.last_step = last.step;
    const listed = state.runs.find((r) => r.run_id === view.run.run_id);
    if (listed && (listed.last_step === null || listed.last_step < last.step)) {
      listed.last_step = last.step;
    }
    renderRuns();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("api-key").value = sessionStorage.getItem(KEY) || "";
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
      state.selected = null;
      select(null);
      loadRuns();
    });
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(resize, 100);
    });
    loadRuns();
    setInterval(poll, POLL_MS);
    setInterval(loadRuns, RUNS_MS);
  });
})();

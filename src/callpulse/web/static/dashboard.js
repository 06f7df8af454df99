// The callpulse dashboard: reads /api/v1 and draws tiles, charts and tables.
// Everything from the API goes into the page through textContent / DOM calls only: a caller can
// put anything into a callback, and none of it may ever be parsed as HTML.
"use strict";

(function () {
  const API = "/api/v1/";
  const REFRESH_MS = 10000;
  const PRESETS = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
  const COLORS = { ok: "#2f855a", bad: "#c53030", other: "#a0aec0", line: "#2b6cb0" };
  const BAND_COLORS = ["#2f855a", "#68d391", "#ecc94b", "#ed8936", "#e53e3e", "#9b2c2c"];

  const state = {
    preset: "24h",
    custom: null, // {since, until} as Date when preset is "custom"
    to: "",
    region: "",
    status: "",
    problems: false, // only calls with data problems
    callsCursor: null,
    callsPaged: false, // older pages shown: a refresh must not throw them away
    quarantineCursor: null,
    quarantinePaged: false,
    loading: false,
    pending: false,
  };
  const charts = {};
  const seen = { to: new Set(), region: new Set() };
  const $ = (id) => document.getElementById(id);

  // ---- formatting -------------------------------------------------------------------------
  const dash = "—";
  const int = (n) => (n === null || n === undefined ? dash : n.toLocaleString("en-US"));
  const pct = (x) => (x === null || x === undefined ? dash : (x * 100).toFixed(1) + " %");
  const mos = (x) => (x === null || x === undefined ? dash : x.toFixed(2));
  function seconds(s) {
    if (s === null || s === undefined) return dash;
    const whole = Math.round(s);
    return whole < 60 ? whole + " s" : Math.floor(whole / 60) + " m " + (whole % 60) + " s";
  }
  const secs = (s) => (s === null || s === undefined ? dash : Math.round(s) + " s");
  const pad = (n) => String(n).padStart(2, "0");
  // Every time is shown in UTC: buckets are UTC hours and days, whatever the browser's zone.
  function when(iso, withSeconds) {
    const d = new Date(iso);
    const day = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
    const time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + (withSeconds ? ":" + pad(d.getUTCSeconds()) : "");
    return day + " " + time;
  }
  function bucketLabel(iso, bucket, span) {
    const d = new Date(iso);
    const hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    const md = pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
    if (bucket === "day") return md;
    return span > 86400e3 ? md + " " + hm : hm;
  }

  // ---- DOM helpers --------------------------------------------------------------------------
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
    return tr;
  }
  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  // ---- the API ------------------------------------------------------------------------------
  function span() {
    if (state.preset === "custom" && state.custom) return state.custom;
    const until = new Date();
    return { since: new Date(until.getTime() - PRESETS[state.preset]), until: until };
  }
  function bucketFor(ms) {
    if (ms <= 3 * 3600e3) return "minute";
    if (ms <= 14 * 86400e3) return "hour";
    return "day";
  }
  function params(range, extra) {
    const p = new URLSearchParams();
    p.set("since", range.since.toISOString());
    p.set("until", range.until.toISOString());
    if (state.to) p.set("to", state.to);
    if (state.region) p.set("region", state.region);
    for (const [key, value] of Object.entries(extra || {})) if (value) p.set(key, value);
    return p;
  }
  async function get(path, query) {
    const response = await fetch(API + path + (query ? "?" + query : ""), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.status === 401) {
      window.location.reload(); // the session ended: back to the log-in form
      throw new Error("logged out");
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  // ---- tiles --------------------------------------------------------------------------------
  // better: +1 when up is good, -1 when up is bad, 0 when neither. note: a line of context.
  const TILES = [
    {
      kpi: "calls", label: "Calls", value: (s) => s.calls, show: (s) => int(s.calls),
      note: (s) => int(s.failed) + " failed", delta: "relative", better: 0,
    },
    {
      kpi: "success_rate", label: "Success rate", value: (s) => s.success_rate, show: (s) => pct(s.success_rate),
      note: () => "of completed + failed", delta: "points", better: 1,
    },
    {
      kpi: "mos", label: "MOS mean / p50", value: (s) => s.mos.mean, show: (s) => mos(s.mos.mean) + " / " + mos(s.mos.p50),
      note: (s) => "p05 " + mos(s.mos.p05) + " · p95 " + mos(s.mos.p95) + " · " + pct(s.mos.coverage) + " scored",
      delta: "absolute", better: 1,
    },
    {
      kpi: "poor_rate", label: "Poor calls", value: (s) => s.mos.poor_rate, show: (s) => pct(s.mos.poor_rate),
      note: (s) => "MOS below " + s.mos.poor_threshold, delta: "points", better: -1,
    },
    {
      kpi: "acd", label: "Avg call duration", value: (s) => s.duration.acd_s, show: (s) => seconds(s.duration.acd_s),
      note: (s) => "p50 " + secs(s.duration.p50_s) + " · p90 " + secs(s.duration.p90_s), delta: "relative", better: 0,
    },
    {
      kpi: "short_call_rate", label: "Short calls", value: (s) => s.short_call_rate, show: (s) => pct(s.short_call_rate),
      note: (s) => "completed, under " + s.short_call_threshold_s + " s", delta: "points", better: -1,
    },
    {
      kpi: "repeat_callers", label: "Repeat callers", value: (s) => s.repeat_callers, show: (s) => int(s.repeat_callers),
      note: () => "called again within 24 h", delta: "relative", better: -1,
    },
    {
      kpi: "busiest_hour", label: "Busiest hour", value: (s) => (s.busiest_hour ? s.busiest_hour.erlangs : null),
      show: (s) => (s.busiest_hour ? s.busiest_hour.erlangs.toFixed(2) + " Erl" : dash),
      note: (s) => (s.busiest_hour ? when(s.busiest_hour.start).slice(5) + " · " + int(s.busiest_hour.calls) + " calls" : ""),
      delta: "relative", better: 0,
    },
  ];
  function deltaText(tile, now, before, previousCalls) {
    if (!previousCalls || now === null || before === null) return ["no calls in the previous period", 0];
    if (tile.delta === "relative" && before === 0) {
      return [now === 0 ? "±0 vs previous" : "none in the previous period", 0];
    }
    // Shown rounded; a change that rounds to nothing is no change (and gets no colour).
    let change;
    let text;
    if (tile.delta === "points") {
      change = Number(((now - before) * 100).toFixed(1));
      text = change.toFixed(1) + " pt";
    } else if (tile.delta === "absolute") {
      change = Number((now - before).toFixed(2));
      text = change.toFixed(2);
    } else if (now / before >= 10) {
      change = 1;
      text = "×" + (now / before).toFixed(0);
    } else {
      change = Number((((now - before) / before) * 100).toFixed(1));
      text = change.toFixed(1) + " %";
    }
    if (change === 0) return ["±0 vs previous", 0];
    return [(change > 0 && !text.startsWith("×") ? "+" : "") + text + " vs previous", Math.sign(change) * tile.better];
  }
  function drawTiles(summary) {
    const box = $("tiles");
    const tiles = TILES.map((tile) => {
      const node = el("div", null, "tile");
      node.dataset.kpi = tile.kpi;
      const [text, mood] = deltaText(tile, tile.value(summary), tile.value(summary.previous), summary.previous.calls);
      node.append(
        el("div", tile.label, "label"),
        el("div", tile.show(summary), "value"),
        el("div", tile.note(summary), "note"),
        el("div", text, "delta " + (mood > 0 ? "good" : mood < 0 ? "bad" : "flat"))
      );
      return node;
    });
    box.replaceChildren(...tiles);
  }

  // ---- charts -------------------------------------------------------------------------------
  function chart(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
      return;
    }
    config.options = Object.assign(
      { animation: false, maintainAspectRatio: false, responsive: true, plugins: { legend: { display: config.legend === true } } },
      config.options || {}
    );
    charts[id] = new window.Chart($(id), config);
  }
  function drawCharts(points, summary, bucket, ms) {
    const labels = points.map((p) => bucketLabel(p.bucket_start, bucket, ms));
    chart("chart-volume", {
      type: "bar",
      legend: true,
      data: {
        labels: labels,
        datasets: [
          { label: "completed", data: points.map((p) => p.completed), backgroundColor: COLORS.ok, stack: "s" },
          { label: "failed", data: points.map((p) => p.failed), backgroundColor: COLORS.bad, stack: "s" },
          { label: "other", data: points.map((p) => p.calls - p.completed - p.failed), backgroundColor: COLORS.other, stack: "s" },
        ],
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    chart("chart-success", {
      type: "line",
      data: {
        labels: labels,
        datasets: [{ label: "success rate %", data: points.map((p) => (p.success_rate === null ? null : p.success_rate * 100)), borderColor: COLORS.ok, pointRadius: 0, spanGaps: true }],
      },
      options: { scales: { y: { min: 0, max: 100 } } },
    });
    chart("chart-mos", {
      type: "line",
      data: {
        labels: labels,
        datasets: [{ label: "MOS", data: points.map((p) => p.mos_mean), borderColor: COLORS.line, pointRadius: 0, spanGaps: true }],
      },
      options: { scales: { y: { min: 1, max: 5 } } },
    });
    const bands = summary.mos.bands;
    chart("chart-bands", {
      type: "bar",
      data: {
        labels: bands.map((b) => b.name),
        datasets: [{ label: "calls", data: bands.map((b) => b.calls), backgroundColor: bands.map((_, i) => BAND_COLORS[i % BAND_COLORS.length]) }],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
  }

  function drawStaffing(plan, ms) {
    const hours = plan.intervals;
    chart("chart-staffing", {
      type: "bar",
      legend: true,
      data: {
        labels: hours.map((h) => bucketLabel(h.start, "hour", ms)),
        datasets: [
          { label: "agents", data: hours.map((h) => h.agents), backgroundColor: COLORS.line },
          { label: "scheduled", type: "line", data: hours.map((h) => h.scheduled), borderColor: COLORS.other, pointRadius: 0, stepped: "middle", spanGaps: true },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    let peak = null;
    for (const h of hours) if (h.agents && (!peak || h.agents > peak.agents)) peak = h;
    $("staffing-peak").textContent = peak
      ? "peak " + int(peak.agents) + (peak.agents === 1 ? " agent" : " agents") + " (" + int(peak.scheduled) +
        " scheduled) at " + when(peak.start)
      : "no calls in this range";
  }

  // ---- tables -------------------------------------------------------------------------------
  function groupRows(id, rows, key, filter) {
    const body = $(id).tBodies[0];
    body.replaceChildren(
      ...rows.map((r) => {
        const name = el("td");
        const link = el("button", r[key], "link");
        link.type = "button";
        link.title = "show only " + r[key];
        link.addEventListener("click", () => setFilter(filter, r[key]));
        name.append(link);
        const poor = "poor_rate" in r ? [pct(r.poor_rate)] : [];
        return row([name, int(r.calls), pct(r.success_rate), mos(r.mos_mean), ...poor, seconds(r.acd_s)]);
      })
    );
    if (!rows.length) body.append(row([el("td", "no calls in this range", "muted")]));
  }
  function callRow(c) {
    const status = el("td", c.status, "status " + c.status);
    // A call that did not complete had no audio to score, whatever the sender put in the field.
    const score = c.status === "completed" ? mos(c.mos) : dash;
    const problems = c.problems.map((p) => p.field + ": " + p.why + (p.value ? " (" + p.value + ")" : "")).join("\n");
    return row([when(c.started_at, true), c.from, c.to, c.region, status, seconds(c.duration_s), score,
      el("td", c.call_sid, "sid"), el("td", problems, "problems")]);
  }
  function drawProblems(summary) {
    const line = $("problems-line");
    line.hidden = !summary.problems;
    line.textContent = int(summary.problems) + (summary.problems === 1 ? " call" : " calls") +
      " with data problems (fields not taken as sent)";
  }
  function drawCalls(page, append) {
    const body = $("calls").tBodies[0];
    const rows = page.calls.map(callRow);
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    if (!body.rows.length) body.append(row([el("td", "no calls match", "muted")]));
    state.callsCursor = page.next_cursor;
    $("calls-more").hidden = !page.next_cursor;
  }
  function quarantineRow(q) {
    const errors = Object.entries(q.errors).map(([field, why]) => field + ": " + why).join("\n");
    const body = el("td");
    body.append(el("pre", q.body, "body"));
    return row([when(q.received_at, true), q.reason, el("td", errors, "errors"), q.method + " " + q.url, body]);
  }
  function drawQuarantine(page, append) {
    const body = $("quarantine").tBodies[0];
    const rows = page.entries.map(quarantineRow);
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    if (!body.rows.length) body.append(row([el("td", "nothing rejected", "muted")]));
    $("quarantine-counts").textContent = int(page.kept) + " kept, " + int(page.dropped) + " dropped";
    state.quarantineCursor = page.next_cursor;
    $("quarantine-more").hidden = !page.next_cursor;
  }
  function fillSelect(id, values, current) {
    const select = $(id);
    const options = [el("option", "all")];
    options[0].value = "";
    for (const value of [...values].sort()) {
      const option = el("option", value);
      option.value = value;
      options.push(option);
    }
    select.replaceChildren(...options);
    select.value = current;
  }

  // ---- loading ------------------------------------------------------------------------------
  async function load(firstView) {
    if (state.loading) {
      state.pending = true; // a filter changed mid-flight: load again once this one is done
      return;
    }
    state.loading = true;
    const range = span();
    const ms = range.until - range.since;
    const bucket = bucketFor(ms);
    const q = params(range);
    try {
      const [summary, points, staffing, numbers, regions, calls, quarantine] = await Promise.all([
        get("summary", q),
        get("timeseries", params(range, { bucket: bucket })),
        get("staffing", q),
        get("numbers", q),
        get("regions", q),
        state.callsPaged ? null : get("calls", callParams(range)),
        state.quarantinePaged ? null : get("quarantine", "limit=20"),
      ]);
      drawTiles(summary);
      drawProblems(summary);
      drawCharts(points, summary, bucket, ms);
      drawStaffing(staffing, ms);
      numbers.forEach((n) => seen.to.add(n.to));
      regions.forEach((r) => seen.region.add(r.region));
      fillSelect("filter-to", seen.to, state.to);
      fillSelect("filter-region", seen.region, state.region);
      groupRows("numbers", numbers, "to", "to");
      groupRows("regions", regions, "region", "region");
      if (calls) drawCalls(calls, false);
      if (quarantine) drawQuarantine(quarantine, false);
      showError("");
      $("updated").textContent = "updated " + when(new Date().toISOString(), true) + " UTC";
      if (firstView) {
        document.body.dataset.firstViewMs = String(Math.round(performance.now()));
        document.body.dataset.ready = "1";
      }
    } catch (error) {
      showError("Could not load: " + error.message);
    } finally {
      state.loading = false;
      if (state.pending) {
        state.pending = false;
        load(firstView);
      }
    }
  }
  function callParams(range, extra) {
    return params(range, { status: state.status, problems: state.problems ? "true" : "", limit: "50", ...extra });
  }
  async function moreCalls() {
    const range = span();
    try {
      drawCalls(await get("calls", callParams(range, { cursor: state.callsCursor })), true);
      state.callsPaged = true;
    } catch (error) {
      showError("Could not load: " + error.message);
    }
  }
  async function moreQuarantine() {
    try {
      const q = new URLSearchParams({ limit: "20", cursor: state.quarantineCursor });
      drawQuarantine(await get("quarantine", q), true);
      state.quarantinePaged = true;
    } catch (error) {
      showError("Could not load: " + error.message);
    }
  }
  function reload() {
    state.callsPaged = false;
    state.quarantinePaged = false;
    load(false);
  }
  function setFilter(name, value) {
    state[name] = value;
    reload();
  }
  function setPreset(preset) {
    state.preset = preset;
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === preset));
    }
    $("custom-range").hidden = preset !== "custom";
    if (preset !== "custom") reload();
  }

  function start() {
    for (const button of document.querySelectorAll("[data-range]")) {
      button.addEventListener("click", () => setPreset(button.dataset.range));
    }
    $("custom-range").addEventListener("submit", (event) => {
      event.preventDefault();
      const since = new Date($("custom-since").value + "Z"); // the inputs are UTC
      const until = new Date($("custom-until").value + "Z");
      if (!(since < until)) return showError("The custom range must start before it ends.");
      state.custom = { since: since, until: until };
      reload();
    });
    $("filter-to").addEventListener("change", (e) => setFilter("to", e.target.value));
    $("filter-region").addEventListener("change", (e) => setFilter("region", e.target.value));
    $("filter-status").addEventListener("change", (e) => setFilter("status", e.target.value));
    $("filter-problems").addEventListener("change", (e) => setFilter("problems", e.target.checked));
    $("problems-line").addEventListener("click", () => {
      $("filter-problems").checked = true;
      setFilter("problems", true);
    });
    $("calls-more").addEventListener("click", moreCalls);
    $("quarantine-more").addEventListener("click", moreQuarantine);
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === state.preset));
    }
    // Live: a preset range slides with the clock; a custom range is fixed, nothing to refresh.
    setInterval(() => {
      if (!document.hidden && state.preset !== "custom") load(false);
    }, REFRESH_MS);
    load(true);
  }

  start();
})();

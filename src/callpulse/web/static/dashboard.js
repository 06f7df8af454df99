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
  const FEW_CALLS = 10; // a bucket or a line with fewer calls is drawn hollow / not judged
  const page = document.body.dataset;
  const TARGET_SUCCESS = Number(page.targetSuccess || 0.95);
  const MAX_POOR = Number(page.maxPoor || 0.05);
  const BROWSER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  const state = {
    preset: "24h",
    custom: null, // {since, until} as Date when preset is "custom"
    to: "",
    region: "",
    status: "",
    problems: false, // only calls with data problems
    tz: page.timezone || "UTC",
    sort: { numbers: null, regions: null }, // {key, dir}; null: worst first
    callsCursor: null,
    callsPaged: false, // older pages shown: a refresh must not throw them away
    quarantineCursor: null,
    quarantinePaged: false,
    loading: false,
    pending: false,
  };
  const charts = {};
  const inView = { numbers: [], regions: [], calls: [], poorThreshold: 3.5 }; // what CSV downloads
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
  const plural = (n, one, many) => int(n) + " " + (n === 1 ? one : many);
  // Wall-clock fields of an instant in the chosen zone, 24-hour.
  const formatters = {};
  function wall(ms, tz) {
    if (!formatters[tz]) {
      formatters[tz] = new Intl.DateTimeFormat("en-US", {
        timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    }
    const parts = {};
    for (const part of formatters[tz].formatToParts(new Date(ms))) parts[part.type] = part.value;
    return parts;
  }
  function when(iso, withSeconds) {
    const w = wall(new Date(iso).getTime(), state.tz);
    return w.year + "-" + w.month + "-" + w.day + " " + w.hour + ":" + w.minute + (withSeconds ? ":" + w.second : "");
  }
  // The zone's offset at an instant, and the instant a wall-clock time of the zone names.
  function offsetMs(ms, tz) {
    const w = wall(ms, tz);
    return Date.UTC(+w.year, +w.month - 1, +w.day, +w.hour, +w.minute, +w.second) - Math.floor(ms / 1000) * 1000;
  }
  function fromWall(text, tz) {
    const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})$/.exec(text.trim());
    if (!m) return null;
    const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    const first = guess - offsetMs(guess, tz);
    return new Date(guess - offsetMs(first, tz));
  }
  function zoneLabel(tz) {
    return tz === "UTC" ? "UTC" : tz.replace(/_/g, " ");
  }
  function bucketLabel(iso, bucket, span) {
    const full = when(iso, false);
    if (bucket === "day") return full.slice(5, 10);
    return span > 86400e3 ? full.slice(5) : full.slice(11);
  }
  const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
  function regionName(code) {
    // Callers that are not phone numbers have regions of their own kind: sip, client, unknown, withheld.
    if (!/^[A-Z]{2}$/.test(code) || !regionNames) return code;
    try {
      const name = regionNames.of(code);
      return name && name !== code ? name + " (" + code + ")" : code;
    } catch (error) {
      return code;
    }
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
      note: (s) => (s.busiest_hour ? when(s.busiest_hour.start).slice(5) + " · " + plural(s.busiest_hour.calls, "call", "calls") : ""),
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
    config.options = Object.assign(
      { animation: false, maintainAspectRatio: false, responsive: true, plugins: { legend: { display: config.legend === true } } },
      config.options || {}
    );
    if (charts[id]) {
      // The options too: tooltips read the points of this refresh, not of the first one.
      charts[id].data = config.data;
      charts[id].options = config.options;
      charts[id].update("none");
      return;
    }
    charts[id] = new window.Chart($(id), config);
  }
  // Honest lines: a gap where there were no calls, a point where a value stands alone, and a
  // hollow point where a value rests on only a few calls; the tooltip tells how many.
  function lineDataset(label, values, points, color) {
    const alone = (i) => values[i] !== null && (i === 0 || values[i - 1] === null) && (i === values.length - 1 || values[i + 1] === null);
    const few = (i) => values[i] !== null && points[i].calls < FEW_CALLS;
    return {
      label: label, data: values, borderColor: color, spanGaps: false,
      pointRadius: (ctx) => (alone(ctx.dataIndex) || few(ctx.dataIndex) ? 3 : 0),
      pointHoverRadius: 4,
      pointBackgroundColor: (ctx) => (few(ctx.dataIndex) ? "#fff" : color),
      pointBorderColor: color,
    };
  }
  function callsFooter(points) {
    return (items) => (items.length ? plural(points[items[0].dataIndex].calls, "call", "calls") : "");
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
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
    const success = points.map((p) => (p.success_rate === null ? null : p.success_rate * 100));
    chart("chart-success", {
      type: "line",
      data: { labels: labels, datasets: [lineDataset("success rate", success, points, COLORS.ok)] },
      options: {
        scales: { y: { min: 0, max: 100, ticks: { callback: (v) => v + " %" } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: {
          label: (item) => "success " + item.parsed.y.toFixed(1) + " %", footer: callsFooter(points) } } },
      },
    });
    const mosMeans = points.map((p) => p.mos_mean);
    chart("chart-mos", {
      type: "line",
      data: { labels: labels, datasets: [lineDataset("MOS", mosMeans, points, COLORS.line)] },
      options: {
        scales: { y: { min: 1, max: 5, ticks: { callback: (v) => Number(v).toFixed(1) } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: {
          label: (item) => "MOS " + item.parsed.y.toFixed(2), footer: callsFooter(points) } } },
      },
    });
    const bands = summary.mos.bands;
    const scored = bands.reduce((sum, b) => sum + b.calls, 0);
    chart("chart-bands", {
      type: "bar",
      data: {
        labels: bands.map((b) => b.name),
        datasets: [{ label: "share", data: bands.map((b) => (scored ? (b.calls / scored) * 100 : 0)), backgroundColor: bands.map((_, i) => BAND_COLORS[i % BAND_COLORS.length]) }],
      },
      options: {
        scales: { y: { beginAtZero: true, max: 100, ticks: { callback: (v) => v + " %" } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: {
          label: (item) => item.parsed.y.toFixed(1) + " % · " + plural(bands[item.dataIndex].calls, "call", "calls") } } },
      },
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
  // A line is judged only on enough calls; then below-target success, too many poor calls or a
  // poor mean MOS turn its cell red.
  function judged(td, r, bad) {
    if (r.calls < FEW_CALLS) {
      td.title = "too few calls to judge";
    } else if (bad) {
      td.classList.add("bad");
    }
    return td;
  }
  function badness(r) {
    // Worst first: breaches before the rest, then the lowest success rate, then the most poor calls.
    if (r.calls < FEW_CALLS) return [2, 0, 0];
    const breach = r.success_rate < TARGET_SUCCESS || (r.poor_rate || 0) > MAX_POOR;
    return [breach ? 0 : 1, r.success_rate === null ? 1 : r.success_rate, -(r.poor_rate || 0)];
  }
  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // empty last, whatever the direction
    if (b === null || b === undefined) return -1;
    return a < b ? -1 : 1;
  }
  function sorted(id, rows) {
    const how = state.sort[id];
    const copy = rows.slice();
    if (!how) {
      copy.sort((a, b) => {
        const x = badness(a);
        const y = badness(b);
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
        return b.calls - a.calls;
      });
    } else {
      copy.sort((a, b) => {
        const order = compare(a[how.key], b[how.key]);
        return a[how.key] === null || b[how.key] === null ? order : order * how.dir;
      });
    }
    return copy;
  }
  function numCell(text, className) {
    return el("td", text, "num" + (className ? " " + className : ""));
  }
  function groupRows(id, rows, key, filter) {
    inView[id] = rows;
    const body = $(id).tBodies[0];
    for (const th of $(id).tHead.rows[0].cells) {
      const how = state.sort[id];
      th.setAttribute("aria-sort", how && how.key === th.dataset.key ? (how.dir > 0 ? "ascending" : "descending") : "none");
    }
    body.replaceChildren(
      ...sorted(id, rows).map((r) => {
        const name = el("td");
        const link = el("button", key === "region" ? regionName(r[key]) : r[key], "link");
        link.type = "button";
        link.title = "show only " + r[key];
        link.addEventListener("click", () => setFilter(filter, r[key]));
        name.append(link);
        const cells = [
          name,
          numCell(int(r.calls)),
          judged(numCell(pct(r.success_rate)), r, r.success_rate !== null && r.success_rate < TARGET_SUCCESS),
          judged(numCell(mos(r.mos_mean)), r, r.mos_mean !== null && r.mos_mean < inView.poorThreshold),
        ];
        if ("poor_rate" in r) cells.push(judged(numCell(pct(r.poor_rate)), r, r.poor_rate !== null && r.poor_rate > MAX_POOR));
        cells.push(numCell(seconds(r.acd_s), "low"));
        return row(cells);
      })
    );
    if (!rows.length) body.append(row([el("td", "no calls in this range", "muted")]));
  }
  function sortBy(id, key) {
    const how = state.sort[id];
    // First click: the worst end of the column (lowest success or MOS, most calls or poor calls).
    const firstDir = key === "success_rate" || key === "mos_mean" || key === "to" || key === "region" ? 1 : -1;
    state.sort[id] = how && how.key === key ? (how.dir === firstDir ? { key: key, dir: -firstDir } : null) : { key: key, dir: firstDir };
    groupRows(id, inView[id], id === "numbers" ? "to" : "region", id === "numbers" ? "to" : "region");
    writeUrl();
  }
  function callRow(c) {
    const status = el("td", c.status, "status " + c.status);
    // A call that did not complete had no audio to score, whatever the sender put in the field.
    const score = c.status === "completed" ? mos(c.mos) : dash;
    const problems = c.problems.map((p) => p.field + ": " + p.why + (p.value ? " (" + p.value + ")" : "")).join("\n");
    return row([el("td", when(c.started_at, true), "nowrap"), c.from, c.to, el("td", regionName(c.region), "low"), status,
      numCell(seconds(c.duration_s), "nowrap"), numCell(score), el("td", c.call_sid, "sid low"), el("td", problems, "problems low")]);
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
    inView.calls = append ? inView.calls.concat(page.calls) : page.calls;
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    if (!body.rows.length) body.append(row([el("td", "no calls match", "muted")]));
    state.callsCursor = page.next_cursor;
    $("calls-more").hidden = !page.next_cursor;
  }
  function quarantineRow(q) {
    const errors = Object.entries(q.errors).map(([field, why]) => field + ": " + why).join("\n");
    const body = el("td");
    // The API keeps the start of a large body: say so, and where the whole entry is.
    const cut = q.body_size > new TextEncoder().encode(q.body).length;
    body.append(el("pre", q.body + (cut ? "…" : ""), "body"));
    if (cut) body.append(el("div", int(q.body_size) + " bytes in all: callpulse quarantine show " + q.id, "muted small"));
    const id = el("td", String(q.id), "num");
    id.title = "callpulse quarantine show " + q.id;
    return row([id, el("td", when(q.received_at, true), "nowrap"), q.reason, el("td", errors, "errors low"),
      el("td", q.method + " " + q.url, "low"), body]);
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
  // ---- alerts -------------------------------------------------------------------------------
  function alertValue(metric, value) {
    if (value === null || value === undefined) return dash;
    if (metric === "success_rate" || metric === "poor_rate") return pct(value);
    if (metric === "mos_p50") return mos(value);
    return Number(value.toFixed(2)).toLocaleString("en-US");
  }
  function scopeParts(scope) {
    // "all", or key=value filters joined by commas: to=+18005550100,region=US
    return scope === "all" ? [] : scope.split(",").map((part) => part.split("="));
  }
  function scopeCell(scope) {
    const td = el("td");
    const parts = scopeParts(scope);
    if (!parts.length) td.textContent = "all calls";
    for (const [key, value] of parts) {
      if (key === "to" || key === "region") {
        const link = el("button", key === "region" ? regionName(value) : value, "link");
        link.type = "button";
        link.title = "show only " + value;
        link.addEventListener("click", () => setFilter(key, value));
        td.append(link, " ");
      } else {
        td.append(el("span", key + " " + value), " ");
      }
    }
    return td;
  }
  function drawAlerts(alerts) {
    const firing = alerts.active.filter((a) => a.state === "firing");
    const banner = $("alerts-banner");
    banner.hidden = !firing.length;
    const items = firing.map((a) => {
      const item = el("span", null, "alert-item " + (a.severity || "warning"));
      item.append(el("strong", a.rule), " " + (a.scope === "all" ? "all calls" : a.scope.replace(/,/g, ", ")) +
        ": " + alertValue(a.metric, a.value) + " (threshold " + alertValue(a.metric, a.threshold) + ")" +
        (a.started_at ? " since " + when(a.started_at, false).slice(5) : ""));
      return item;
    });
    banner.replaceChildren(el("span", plural(firing.length, "alert firing", "alerts firing") + ": ", "alert-count"), ...items);
    $("alerts-counts").textContent = plural(firing.length, "firing", "firing") + ", " +
      int(alerts.active.length - firing.length) + " pending";
    const active = $("alerts-active").tBodies[0];
    active.replaceChildren(...alerts.active.map((a) => row([
      a.rule, el("td", a.severity || dash, "low"), scopeCell(a.scope), el("td", a.state + (a.silenced_until ? " (silenced)" : ""), "state " + a.state),
      numCell(alertValue(a.metric, a.value)), numCell(alertValue(a.metric, a.threshold), "low"),
      el("td", a.started_at ? when(a.started_at, false) : a.at ? when(a.at, false) : dash, "nowrap"),
    ])));
    if (!alerts.active.length) active.append(row([el("td", "no alert is pending or firing", "muted")]));
    const history = $("alerts-history").tBodies[0];
    history.replaceChildren(...alerts.history.map((a) => row([
      el("td", a.at ? when(a.at, false) : dash, "nowrap"), a.rule, scopeCell(a.scope), el("td", a.state, "state " + a.state),
      numCell(alertValue(a.metric, a.value)), numCell(alertValue(a.metric, a.threshold), "low"),
    ])));
    if (!alerts.history.length) history.append(row([el("td", "no alert has fired yet", "muted")]));
  }

  function fillSelect(id, values, current, name) {
    const select = $(id);
    const options = [el("option", "all")];
    options[0].value = "";
    for (const value of [...values].sort()) {
      const option = el("option", name ? name(value) : value);
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
      const [summary, points, staffing, numbers, regions, calls, quarantine, alerts] = await Promise.all([
        get("summary", q),
        get("timeseries", params(range, { bucket: bucket, tz: state.tz })),
        get("staffing", params(range, { tz: state.tz })),
        get("numbers", q),
        get("regions", q),
        state.callsPaged ? null : get("calls", callParams(range)),
        state.quarantinePaged ? null : get("quarantine", "limit=20"),
        get("alerts", "limit=20"),
      ]);
      inView.poorThreshold = summary.mos.poor_threshold;
      drawTiles(summary);
      drawProblems(summary);
      drawCharts(points, summary, bucket, ms);
      drawStaffing(staffing, ms);
      numbers.forEach((n) => seen.to.add(n.to));
      regions.forEach((r) => seen.region.add(r.region));
      fillSelect("filter-to", seen.to, state.to);
      fillSelect("filter-region", seen.region, state.region, regionName);
      groupRows("numbers", numbers, "to", "to");
      groupRows("regions", regions, "region", "region");
      if (calls) drawCalls(calls, false);
      if (quarantine) drawQuarantine(quarantine, false);
      drawAlerts(alerts);
      showError("");
      $("updated").textContent = "updated " + when(new Date().toISOString(), true).slice(11);
      $("updated").title = "times in " + zoneLabel(state.tz);
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
    writeUrl();
    load(false);
  }
  function setFilter(name, value) {
    state[name] = value;
    if (name === "to" || name === "region") $("filter-" + name).value = value;
    reload();
  }
  function pressRange() {
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === state.preset));
    }
    $("custom-range").hidden = state.preset !== "custom";
    // A custom range is fixed (nothing refreshes): its inputs take the place of the clock.
    $("updated").hidden = state.preset === "custom";
  }
  function fillCustomInputs() {
    const range = span();
    $("custom-since").value = when(range.since.toISOString(), false);
    $("custom-until").value = when(range.until.toISOString(), false);
  }
  function setPreset(preset) {
    if (preset === "custom") fillCustomInputs(); // start from the range on screen
    state.preset = preset;
    pressRange();
    if (preset !== "custom") reload();
  }

  // ---- the view in the URL: a reload or a link shows the same range, filters and zone --------
  function writeUrl() {
    const p = new URLSearchParams();
    if (state.preset === "custom" && state.custom) {
      p.set("since", state.custom.since.toISOString());
      p.set("until", state.custom.until.toISOString());
    } else if (state.preset !== "custom") {
      p.set("range", state.preset);
    }
    for (const key of ["to", "region", "status"]) if (state[key]) p.set(key, state[key]);
    if (state.problems) p.set("problems", "1");
    if (state.tz !== (page.timezone || "UTC")) p.set("tz", state.tz);
    for (const id of ["numbers", "regions"]) {
      const how = state.sort[id];
      if (how) p.set("sort_" + id, (how.dir < 0 ? "-" : "") + how.key);
    }
    const query = p.toString();
    history.replaceState(null, "", query ? "?" + query : window.location.pathname);
  }
  function readUrl() {
    const p = new URLSearchParams(window.location.search);
    const since = new Date(p.get("since") || "");
    const until = new Date(p.get("until") || "");
    if (!isNaN(since) && !isNaN(until) && since < until) {
      state.preset = "custom";
      state.custom = { since: since, until: until };
    } else if (p.get("range") in PRESETS) {
      state.preset = p.get("range");
    }
    for (const key of ["to", "region", "status"]) state[key] = p.get(key) || "";
    if (state.to) seen.to.add(state.to); // so the select shows it before the first answer
    if (state.region) seen.region.add(state.region);
    state.problems = p.get("problems") === "1";
    if (p.get("tz") && zoneWorks(p.get("tz"))) state.tz = p.get("tz");
    for (const id of ["numbers", "regions"]) {
      const raw = p.get("sort_" + id);
      if (raw) state.sort[id] = { key: raw.replace(/^-/, ""), dir: raw.startsWith("-") ? -1 : 1 };
    }
  }
  function zoneWorks(tz) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
      return true;
    } catch (error) {
      return false;
    }
  }
  function fillZones() {
    const zones = [["UTC", "UTC"]];
    const configured = page.timezone || "UTC";
    if (configured !== "UTC") zones.push([configured, zoneLabel(configured) + " (call center)"]);
    if (![...zones.map((z) => z[0])].includes(BROWSER_TZ)) zones.push([BROWSER_TZ, zoneLabel(BROWSER_TZ) + " (this browser)"]);
    if (!zones.some((z) => z[0] === state.tz)) zones.push([state.tz, zoneLabel(state.tz)]);
    $("filter-tz").replaceChildren(...zones.map(([value, label]) => {
      const option = el("option", label);
      option.value = value;
      return option;
    }));
    $("filter-tz").value = state.tz;
  }

  // ---- CSV of what is in view -----------------------------------------------------------------
  const CSV_COLUMNS = {
    numbers: ["to", "calls", "completed", "failed", "success_rate", "mos_mean", "poor_rate", "acd_s", "problems"],
    regions: ["region", "calls", "completed", "failed", "success_rate", "mos_mean", "acd_s", "problems"],
    calls: ["started_at", "account_sid", "call_sid", "from", "to", "region", "status", "duration_s", "mos", "problems"],
  };
  function csvCell(value) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) value = value.map((p) => p.field + ": " + p.why).join("; ");
    const text = String(value);
    // Quoted when needed; a leading = + - @ is defused so a spreadsheet never runs it as a formula.
    const safe = /^[=+\-@\t\r]/.test(text) && !/^[-+]?\d/.test(text) ? "'" + text : text;
    return /[",\r\n]/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
  }
  function downloadCsv(what) {
    const columns = CSV_COLUMNS[what];
    const rows = what === "calls" ? inView.calls : sorted(what, inView[what]);
    const lines = [columns.join(",")].concat(rows.map((r) => columns.map((c) => csvCell(r[c])).join(",")));
    const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
    const link = document.createElement("a");
    const range = span();
    link.href = URL.createObjectURL(blob);
    link.download = "callpulse-" + what + "-" + range.since.toISOString().slice(0, 16).replace(":", "") +
      "-" + range.until.toISOString().slice(0, 16).replace(":", "") + ".csv";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  function start() {
    readUrl();
    fillZones();
    pressRange();
    if (state.preset === "custom") fillCustomInputs();
    $("filter-status").value = state.status;
    $("filter-problems").checked = state.problems;
    for (const button of document.querySelectorAll("[data-range]")) {
      button.addEventListener("click", () => setPreset(button.dataset.range));
    }
    $("custom-range").addEventListener("submit", (event) => {
      event.preventDefault();
      const since = fromWall($("custom-since").value, state.tz);
      const until = fromWall($("custom-until").value, state.tz);
      if (!since || !until) return showError("Give the custom range as YYYY-MM-DD HH:MM (" + zoneLabel(state.tz) + ").");
      if (!(since < until)) return showError("The custom range must start before it ends.");
      state.custom = { since: since, until: until };
      reload();
    });
    $("filter-to").addEventListener("change", (e) => setFilter("to", e.target.value));
    $("filter-region").addEventListener("change", (e) => setFilter("region", e.target.value));
    $("filter-status").addEventListener("change", (e) => setFilter("status", e.target.value));
    $("filter-problems").addEventListener("change", (e) => setFilter("problems", e.target.checked));
    $("filter-tz").addEventListener("change", (e) => {
      state.tz = e.target.value;
      if (state.preset === "custom") fillCustomInputs();
      reload();
    });
    $("problems-line").addEventListener("click", () => {
      $("filter-problems").checked = true;
      setFilter("problems", true);
    });
    for (const id of ["numbers", "regions"]) {
      for (const th of $(id).tHead.rows[0].cells) {
        th.tabIndex = 0;
        th.title = "sort (again: the other way, a third time: worst first)";
        const sort = () => sortBy(id, th.dataset.key);
        th.addEventListener("click", sort);
        th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
      }
    }
    for (const button of document.querySelectorAll("[data-csv]")) {
      button.addEventListener("click", () => downloadCsv(button.dataset.csv));
    }
    $("calls-more").addEventListener("click", moreCalls);
    $("quarantine-more").addEventListener("click", moreQuarantine);
    // Live: a preset range slides with the clock; a custom range is fixed, nothing to refresh.
    setInterval(() => {
      if (!document.hidden && state.preset !== "custom") load(false);
    }, REFRESH_MS);
    writeUrl();
    load(true);
  }

  start();
})();

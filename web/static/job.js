// A job's own page (/jobs/<id>): its health and settings, the actions, its checks on demand (Verify,
// Verify and repair, Find deleted rows), and its run history: a chart of rows per run, and per run
// its verification result, deleted rows and the alerts it sent.
import { api } from "./api.js";
import { fetchConnections } from "./connection-list.js";
import { $, el, formatBytes, healthBadge, show, svg, when } from "./dom.js";
import { showError } from "./errors.js";
import { actionButtons, useJobActions } from "./job-actions.js";
import { describeSchedule } from "./schedule.js";

const jobId = $("#job-page").dataset.jobId;
const SHOWN_RUNS = 100;  // the table's first rows; "Show all runs" for the rest
const CHARTED_RUNS = 60;
// Runs that check the job's rows and load none (on_demand.py): not charted as loads
const CHECK_TRIGGERS = new Set(["verify", "sweep"]);
const CHECK_STALE_MS = 15 * 60 * 1000;  // a check still "running" after this: its request died with its server

let job = null;
let runs = [];
let connections = [];
let showAll = false;
let refreshTimer = null;
let watchUntil = 0;  // after Run now, refresh quickly until the run shows up
let checking = null;  // the check on demand in progress: its buttons stay disabled until it answers

async function load() {
  clearTimeout(refreshTimer);
  try {
    [{ job }, { runs }, connections] = await Promise.all([
      api(`/api/etl/jobs/${jobId}/`), api(`/api/etl/jobs/${jobId}/runs/`), fetchConnections()]);
  } catch (e) {
    showError($("#job-status"), e);
    if (e.status === 404) {
      $("#job-body").hidden = true;
      $("#job-status").append(" ", el("a", { href: "/jobs", text: "Back to the jobs" }));
      return;
    }
    refreshTimer = setTimeout(load, 10000);
    return;
  }
  render();
  const running = runs.some((r) => (r.status === "running" || r.status === "committing")
    && !(CHECK_TRIGGERS.has(r.trigger) && Date.now() - Date.parse(r.started_at) > CHECK_STALE_MS));
  refreshTimer = setTimeout(load, running || Date.now() < watchUntil ? 1500 : 10000);
}

function render() {
  document.title = `${job.name} · ETL Wizard`;
  $("#job-title").textContent = job.name;
  $("#job-body").hidden = false;
  $("#job-health").replaceChildren("Health: ", healthBadge(job.health),
    ...(job.health && job.health.reason && job.health.status !== "ok" ? [" ", el("span", { class: "reason", text: job.health.reason })] : []));
  $("#job-actions").replaceChildren(...actionButtons(job));
  renderCheckActions();
  renderSettings();
  renderRuns();
}

// ---- checks on demand ----------------------------------------------------------------------------

function renderCheckActions() {
  const button = (label, action, title) => el("button", { type: "button", "data-check": action, title,
    disabled: checking !== null, onclick: () => runCheck(action, label), text: label });
  const sweeps = job.checks && job.checks.deleted_rows !== "keep";
  const buttons = [
    button("Verify", "verify", "Compare all committed rows with the source"),
    button("Verify and repair", "repair", "Compare, and load the days that differ again"),
  ];
  if (sweeps) {
    buttons.push(button("Find deleted rows", "sweep",
      `Find the rows the source no longer has and ${job.checks.deleted_rows === "mark" ? "mark" : "remove"} them`));
  }
  $("#check-actions").replaceChildren(...buttons);
}

async function runCheck(action, label) {
  checking = action;
  renderCheckActions();
  const result = $("#check-result");
  result.replaceChildren(action === "sweep" ? "Finding deleted rows…"
    : `Verifying all committed rows${action === "repair" ? ", then repairing what differs" : ""}…`);
  try {
    const answer = action === "sweep"
      ? await api(`/api/etl/jobs/${jobId}/sweep/`, { method: "POST", body: {} })
      : await api(`/api/etl/jobs/${jobId}/verify/`, { method: "POST", body: { repair: action === "repair" } });
    result.replaceChildren(...(action === "sweep"
      ? [el("span", { class: "check-label", text: "Deleted rows: " }), sweepResult(answer.deleted_rows)]
      : [el("span", { class: "check-label", text: "Verification: " }), ...verification(answer.verification)]));
  } catch (e) {
    showError(result, e);
    result.prepend(`${label}: `);
  } finally {
    checking = null;
  }
  await load();  // the check's run in the history, and the job's health
}

function sweepResult(d) {
  return el("span", { class: `verdict ${d.status === "failed" ? "failed" : ""}`, text: deletedRows(d) });
}

// ---- settings ------------------------------------------------------------------------------------

function renderSettings() {
  const c = connections.find((x) => x.id === job.connection_id);
  const source = `${c ? `${c.name} (${c.type})` : `(deleted connection ${job.connection_id})`}: ${job.schema_name}.${job.table_name}`;
  const d = job.destination;
  const items = [
    ["Source", source],
    ["Destination", `${d.dataset}.${d.table} (${d.mode === "existing" ? "an existing table" : "a table the job made"})`],
    ["Load", job.load_type === "transactional" ? `transactional: new and changed rows by ${job.timestamp_column}` : "catalog: the whole table each run"],
    ["Primary key", job.primary_key.length ? job.primary_key.join(", ") : "none"],
    ["Columns", job.selected_columns.join(", ")],
    job.load_type === "transactional" && ["Backfill from", job.historical_start_date || "all history"],
    ["Schedule", describeSchedule(job)],
    ["Next runs", job.next_runs.length ? job.next_runs.map(when).join(" · ") : "—"],
    ["State", job.state],
    job.load_type === "transactional" && ["Watermark", job.watermark || "none yet: the first run reads from the backfill start"],
    job.checks && ["Verification", !job.checks.verify ? `not after runs${job.checks.repair ? "; Verify repairs what differs" : ""}`
      : `after every run${job.checks.repair ? ", and repairs the buckets that differ" : ""}`],
    job.checks && job.checks.verify_schedule && ["Verification schedule", verifySchedule(job.checks.verify_schedule)],
    job.checks && ["Rows deleted at the source", deletedRowsSetting(job)],
    job.alerts && ["Alerts to", alertChannels(job.alerts)],
    job.bigquery_by_month && job.bigquery_by_month.length && ["BigQuery per month", job.bigquery_by_month.map(monthUse).join(" · ")],
    ["Created", when(job.created_at)],
    ["Updated", when(job.updated_at)],
    ["Job id", job.id],
  ].filter(Boolean);
  $("#job-settings").replaceChildren(...items.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
}

// checks.verify_schedule, shaped as the job's schedule: verification on a schedule of its own.
function verifySchedule(s) {
  const at = s.type === "hourly" ? ` at :${String(s.time || "0").split(":").pop().padStart(2, "0")}`
    : s.type === "cron" ? ` ${s.cron}` : ` at ${s.time}`;
  const day = s.type === "weekly" ? ` on ${s.day_of_week}` : s.type === "monthly" ? ` on day ${s.day_of_month}` : "";
  return `${s.type}${day}${at} (${s.timezone})`;
}

function deletedRowsSetting(j) {
  if (j.load_type === "catalog") return "dropped with each snapshot (a catalog load)";
  const mode = { keep: "kept", mark: "marked (_etl_deleted_at)", remove: "removed" }[j.checks.deleted_rows];
  if (!mode) return show(j.checks.deleted_rows);
  if (j.checks.deleted_rows === "keep") return mode;
  const swept = j.last_swept_at ? `; last swept ${when(j.last_swept_at)}` : "";
  return `${mode}, swept ${j.checks.sweep_every_run ? "after every run" : "once a day after a run"}${swept}`;
}

function alertChannels(channels) {
  const to = [channels.webhook_host && `webhook at ${channels.webhook_host}`, channels.topic && `Pub/Sub topic ${channels.topic}`];
  return to.filter(Boolean).join(" and ") || "the deployment's default channels";
}

// A value whose shape another part of the product owns (alerts settings, a bucket, a delivery): its
// fields as "name: value", never "[object Object]".
function describe(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.length ? value.map(describe).join("; ") : "none";
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k.replaceAll("_", " ")}: ${typeof v === "object" && v !== null ? describe(v) : show(v)}`).join(", ");
  return show(value);
}

// ---- run history ---------------------------------------------------------------------------------

// What a run (or a month of runs) used of BigQuery (run/costs.py): its jobs, bytes billed or, where
// the API reports none (the emulator), bytes processed.
function bigqueryUse(b) {
  if (!b || !b.jobs) return "—";
  const billed = b.bytes_billed ?? b.bytes_processed;
  return `${b.jobs} jobs${billed === null || billed === undefined ? "" : `, ${formatBytes(billed)} billed`}`;
}

function monthUse(m) {
  return `${m.month}: ${m.runs} runs, ${bigqueryUse(m)}`;
}

function renderRuns() {
  const shown = showAll ? runs : runs.slice(0, SHOWN_RUNS);
  $("#runs-more").hidden = shown.length === runs.length;
  $("#runs-more").textContent = `Show all ${runs.length} runs`;
  $("#runs-table tbody").replaceChildren(...(shown.length ? shown.map(runRow)
    : [el("tr", {}, el("td", { colspan: 12, text: "No runs yet: Run now starts one." }))]));
  const loads = runs.filter((r) => !CHECK_TRIGGERS.has(r.trigger));
  drawChart([...loads.slice(0, CHARTED_RUNS)].reverse().filter((r) => r.status !== "skipped"));
}

function runRow(r) {
  return el("tr", { class: r.status, "data-run": r.id },
    el("td", { text: when(r.started_at) }), el("td", { text: r.trigger }), el("td", { class: "run-status", text: r.status }),
    el("td", { class: "num", text: r.rows.toLocaleString() }), el("td", { class: "num", text: formatBytes(r.bytes) }),
    el("td", { class: "num", text: r.duration_seconds === null ? "…" : `${r.duration_seconds.toFixed(1)} s` }),
    el("td", { text: r.window ? `${r.window.lower || "start"} → ${r.window.upper}` : CHECK_TRIGGERS.has(r.trigger) ? "—" : "whole table" }),
    el("td", { class: "verification" }, ...verification(r.verification)),
    el("td", { class: "num deleted-rows", text: deletedRows(r.deleted_rows) }),
    el("td", { class: "alerts" }, ...alerts(r.alerts)),
    el("td", { class: "num bigquery", text: bigqueryUse(r.bigquery) }),
    el("td", { text: r.error || "" }));
}

// A run's verification (run/verify.py): {status: matched | mismatched | skipped | failed, checked_at,
// scope, buckets, rows, mismatched: [{bucket, source_rows, destination_rows}], message}
function verification(v) {
  if (!v || !v.status) return ["—"];
  const of = Number.isInteger(v.buckets) ? `${v.buckets} bucket${v.buckets === 1 ? "" : "s"}` : "";
  const bad = Array.isArray(v.mismatched) ? v.mismatched : [];
  const summary = {
    matched: `matched${of ? `: ${of}` : ""}`,
    mismatched: `mismatched: ${bad.length}${of ? ` of ${of}` : " buckets"}`,
    skipped: `not verified${v.message ? `: ${v.message}` : ""}`,
  }[v.status] || `could not verify${v.message ? `: ${v.message}` : ""}`;
  const parts = [el("span", { class: `verdict ${v.status}`, text: summary })];
  if (bad.length) {
    parts.push(el("details", {}, el("summary", { text: "Buckets that differ" }),
      el("ul", {}, ...bad.map((b) => el("li", { text: "bucket" in b
        ? `${b.bucket}: ${show(b.source_rows)} rows at the source, ${show(b.destination_rows)} in BigQuery` : describe(b) })))));
  }
  const checked = [v.scope, v.checked_at && `checked ${when(v.checked_at)}`].filter(Boolean).join(", ");
  if (checked) parts.push(el("div", { class: "muted", text: checked }));
  if (v.repaired && typeof v.repaired === "object") {
    const [verdict, ...rest] = verification(v.repaired);
    const note = v.repaired.message && v.repaired.status !== "skipped" && v.repaired.status !== "failed" ? v.repaired.message : "";
    parts.push(el("div", { class: "repaired" }, "After repair: ", verdict, note ? ` (${note})` : "", ...rest.filter((p) => p.tagName === "DETAILS")));
  }
  return parts;
}

// A run's sweep for rows deleted at the source (run/deletes.py): a count, or {status: done | skipped
// | failed, mode: mark | remove, deleted, buckets, differing, keys_read, message}.
function deletedRows(d) {
  if (d === undefined || d === null) return "—";
  if (typeof d !== "object") return typeof d === "number" ? d.toLocaleString() : show(d);
  if (d.status === "failed") return `sweep failed${d.message ? `: ${d.message}` : ""}`;
  if (d.status === "skipped") return d.message || "not swept";
  if (typeof d.deleted === "number") return `${d.deleted.toLocaleString()} ${d.mode === "remove" ? "removed" : "marked"}`;
  return describe(d);
}

// What was said about a run, and to whom (run/state.py's AlertSent): [{kind, at, message,
// deliveries: [{channel, target, ok, attempts, error}], repeat_of}].
function alerts(list) {
  if (!Array.isArray(list) || !list.length) return ["—"];
  return [el("ul", { class: "plain" }, ...list.map((a) => {
    if (typeof a !== "object" || a === null) return el("li", { text: show(a) });
    const kind = String(a.kind || "alert").replaceAll("_", " ");
    const deliveries = Array.isArray(a.deliveries) ? a.deliveries : [];
    const sent = a.repeat_of ? `already alerted with run ${a.repeat_of}`
      : deliveries.length ? deliveries.map((d) => `${d.channel} ${d.target}: ${d.ok ? "sent"
        : `failed${d.error ? ` (${d.error})` : ""}`}`).join("; ")
        : "no channel set";
    const failed = !a.repeat_of && deliveries.length > 0 && !deliveries.some((d) => d.ok);
    return el("li", { class: failed ? "failed" : null, title: a.message || null, text: `${kind} → ${sent}` });
  }))];
}

function drawChart(charted) {
  const chart = $("#history-chart");
  const width = 640, height = 180, pad = 30;
  chart.replaceChildren();
  if (!charted.length) { chart.append(svg("text", { x: pad, y: height / 2 }, "No runs yet.")); return; }
  const maxRows = Math.max(1, ...charted.map((r) => r.rows));
  const maxSeconds = Math.max(0.001, ...charted.map((r) => r.duration_seconds || 0));
  const step = (width - 2 * pad) / charted.length;
  charted.forEach((r, i) => {
    const h = ((height - 2 * pad) * r.rows) / maxRows;
    const mismatched = r.verification && r.verification.status === "mismatched" ? " mismatched" : "";
    const bar = svg("rect", { x: pad + i * step + 2, y: height - pad - h, width: Math.max(2, step - 4), height: h,
      class: `bar ${r.status}${mismatched}` });
    bar.append(svg("title", {}, `${when(r.started_at)}: ${r.rows} rows, ${r.duration_seconds} s, ${r.status}`));
    chart.append(bar);
  });
  const points = charted.map((r, i) => `${pad + i * step + step / 2},${height - pad - ((height - 2 * pad) * (r.duration_seconds || 0)) / maxSeconds}`);
  chart.append(svg("polyline", { points: points.join(" "), class: "duration" }));
  chart.append(svg("text", { x: 4, y: pad - 8 }, `${maxRows.toLocaleString()} rows`));
  chart.append(svg("text", { x: width - 4, y: pad - 8, "text-anchor": "end" }, `${maxSeconds.toFixed(1)} s`));
}

$("#runs-more").addEventListener("click", () => { showAll = true; renderRuns(); });

useJobActions({
  status: $("#job-status"),
  reload: load,
  afterRun: () => { watchUntil = Date.now() + 30000; },
  afterDelete: (deleted, message) => {
    clearTimeout(refreshTimer);
    $("#job-body").hidden = true;
    $("#job-status").replaceChildren(message, " ", el("a", { href: "/jobs", text: "Back to the jobs" }));
  },
});

load();

// The jobs page: every job with its last and next run, the actions, and a job's run history.
import { api } from "./api.js";
import { connectionLabel, fetchConnections } from "./connection-list.js";
import { $, $$, el, formatBytes, when } from "./dom.js";
import { showError } from "./errors.js";
import { describeSchedule, scheduleFrom } from "./schedule.js";

let jobs = [];
let connections = [];
let historyJob = null;
let refreshTimer = null;
let watchUntil = 0;  // after Run now, refresh quickly until the run shows up

async function loadJobs() {
  try {
    [{ jobs }, connections] = await Promise.all([api("/api/etl/jobs/"), fetchConnections()]);
  } catch (e) {
    showError($("#jobs-status"), e);
    return;
  }
  renderJobs();
  if (historyJob) await loadHistory(historyJob);
  scheduleRefresh();
}

function connectionName(id) {
  const c = connections.find((x) => x.id === id);
  return c ? c.name : `(deleted connection ${id})`;
}

function lastRun(job) {
  const r = job.last_run;
  if (!r) return "never";
  const rows = `${r.rows.toLocaleString()} rows`;
  return r.status === "running" ? `running: ${rows} so far` : `${r.status}, ${rows}, ${when(r.started_at)}`;
}

function renderJobs() {
  $("#no-jobs").hidden = jobs.length > 0;
  $("#jobs-table").hidden = jobs.length === 0;
  $("#jobs-table tbody").replaceChildren(...jobs.map((job) => {
    const paused = job.state === "paused";
    const act = (label, handler, cls) => el("button", { type: "button", class: cls, "data-action": label.toLowerCase(),
      "aria-label": `${label} ${job.name}`, onclick: () => handler(job), text: label });
    return el("tr", { id: `job-${job.id}`, "data-job": job.name },
      el("th", { scope: "row" }, el("button", { type: "button", class: "link", onclick: () => loadHistory(job.id),
        "aria-label": `Run history of ${job.name}`, text: job.name })),
      el("td", { text: `${connectionName(job.connection_id)}: ${job.schema_name}.${job.table_name}` }),
      el("td", { text: `${job.destination.dataset}.${job.destination.table}` }),
      el("td", { text: job.load_type === "transactional" ? `transactional (${job.timestamp_column})` : "catalog" }),
      el("td", { text: describeSchedule(job) }),
      el("td", { class: `state ${job.state}`, text: job.state }),
      el("td", { class: "last-run", text: lastRun(job) }),
      el("td", { text: job.next_runs.length ? when(job.next_runs[0]) : "—" }),
      el("td", { class: "actions" }, act("Run now", runNow), act("Edit", openEdit), act("Reconnect", openReconnect),
        paused ? act("Resume", (j) => setState(j, "resume")) : act("Pause", (j) => setState(j, "pause")),
        act("Delete", openDelete, "danger")));
  }));
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const running = jobs.some((j) => j.last_run && j.last_run.status === "running");
  refreshTimer = setTimeout(loadJobs, running || Date.now() < watchUntil ? 1500 : 10000);
}

async function act(promise, message) {
  $("#jobs-status").textContent = "Working…";
  try {
    await promise;
    $("#jobs-status").textContent = message;
  } catch (e) {
    showError($("#jobs-status"), e);
  }
  await loadJobs();
}

function runNow(job) {
  historyJob = job.id;
  watchUntil = Date.now() + 30000;
  return act(api(`/api/etl/jobs/${job.id}/run/`, { method: "POST", body: {} }), `Run of ${job.name} started.`);
}

function setState(job, action) {
  return act(api(`/api/etl/jobs/${job.id}/${action}/`, { method: "POST", body: {} }),
    `${job.name} ${action === "pause" ? "paused" : "resumed"}.`);
}

// ---- history ----------------------------------------------------------------------------------

async function loadHistory(jobId) {
  historyJob = jobId;
  const job = jobs.find((j) => j.id === jobId);
  if (!job) { $("#history").hidden = true; return; }
  let runs;
  try {
    ({ runs } = await api(`/api/etl/jobs/${jobId}/runs/`));
  } catch (e) {
    showError($("#jobs-status"), e);  // caught here so the page keeps refreshing
    return;
  }
  $("#history").hidden = false;
  $("#history-title").textContent = `Run history: ${job.name}`;
  $("#runs-table tbody").replaceChildren(...runs.map((r) => el("tr", { class: r.status },
    el("td", { text: when(r.started_at) }), el("td", { text: r.trigger }), el("td", { text: r.status }),
    el("td", { class: "num", text: r.rows.toLocaleString() }), el("td", { class: "num", text: formatBytes(r.bytes) }),
    el("td", { class: "num", text: r.duration_seconds === null ? "…" : `${r.duration_seconds.toFixed(1)} s` }),
    el("td", { text: r.window ? `${r.window.lower || "start"} → ${r.window.upper}` : "whole table" }),
    el("td", { text: r.error || "" }))));
  drawChart([...runs].reverse().filter((r) => r.status !== "skipped"));
}

function drawChart(runs) {
  const svg = $("#history-chart");
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text) n.textContent = text;
    return n;
  };
  const width = 640, height = 180, pad = 30;
  svg.replaceChildren();
  if (!runs.length) { svg.append(node("text", { x: pad, y: height / 2 }, "No runs yet.")); return; }
  const maxRows = Math.max(1, ...runs.map((r) => r.rows));
  const maxSeconds = Math.max(0.001, ...runs.map((r) => r.duration_seconds || 0));
  const step = (width - 2 * pad) / runs.length;
  runs.forEach((r, i) => {
    const h = ((height - 2 * pad) * r.rows) / maxRows;
    const bar = node("rect", { x: pad + i * step + 2, y: height - pad - h, width: Math.max(2, step - 4), height: h,
      class: `bar ${r.status}` });
    bar.append(node("title", {}, `${when(r.started_at)}: ${r.rows} rows, ${r.duration_seconds} s, ${r.status}`));
    svg.append(bar);
  });
  const points = runs.map((r, i) => `${pad + i * step + step / 2},${height - pad - ((height - 2 * pad) * (r.duration_seconds || 0)) / maxSeconds}`);
  svg.append(node("polyline", { points: points.join(" "), class: "duration" }));
  svg.append(node("text", { x: 4, y: pad - 8 }, `${maxRows.toLocaleString()} rows`));
  svg.append(node("text", { x: width - 4, y: pad - 8, "text-anchor": "end" }, `${maxSeconds.toFixed(1)} s`));
}

// ---- edit, reconnect, delete ------------------------------------------------------------------

let editing = null;

async function openEdit(job) {
  editing = job;
  const s = job.schedule;
  $("#edit-type").value = s.type;
  $("#edit-minute").value = s.type === "hourly" ? (s.time || "0").split(":").pop() : "0";
  $("#edit-time").value = s.time && s.time.includes(":") ? s.time : "02:00";
  $("#edit-dow").value = s.day_of_week || "mon";
  $("#edit-dom").value = s.day_of_month || 1;
  $("#edit-cron").value = s.cron || "";
  $("#edit-tz").value = s.timezone || "UTC";
  $("#edit-error").replaceChildren();
  $("#edit-columns").replaceChildren(el("p", { text: "Reading the source's columns…" }));
  $("#edit-dialog").showModal();
  try {
    const p = await api(`/api/connections/${job.connection_id}/fetch-table-preview/`,
      { method: "POST", body: { schema_name: job.schema_name, table_name: job.table_name } });
    $("#edit-columns").replaceChildren(...p.columns.map((c, i) => el("div", { class: "choice" },
      el("input", { type: "checkbox", id: `edit-col-${i}`, value: c.name, checked: job.selected_columns.includes(c.name) }),
      el("label", { for: `edit-col-${i}`, text: `${c.name} (${c.bigquery_type})` }))));
  } catch (e) {
    $("#edit-columns").replaceChildren();
    showError($("#edit-error"), e);
  }
}

$("#edit-save").addEventListener("click", async () => {
  const body = { schedule: scheduleFrom($("#edit-schedule")) };
  const columns = $$("#edit-columns input:checked").map((i) => i.value);
  if (columns.length) body.selected_columns = columns;
  try {
    await api(`/api/etl/jobs/${editing.id}/`, { method: "PATCH", body });
    $("#edit-dialog").close();
    $("#jobs-status").textContent = `${editing.name} saved.`;
    await loadJobs();
  } catch (e) {
    showError($("#edit-error"), e);
  }
});

let reconnecting = null;

function openReconnect(job) {
  reconnecting = job;
  $("#reconnect-connection").replaceChildren(...connections.map((c) => el("option", { value: c.id, text: connectionLabel(c) })));
  $("#reconnect-connection").value = job.connection_id;
  $("#reconnect-schema").value = job.schema_name;
  $("#reconnect-table").value = job.table_name;
  $("#reconnect-error").replaceChildren();
  $("#reconnect-dialog").showModal();
}

$("#reconnect-save").addEventListener("click", async () => {
  try {
    await api(`/api/etl/jobs/${reconnecting.id}/reconnect/`, { method: "POST", body: {
      connection_id: $("#reconnect-connection").value, schema_name: $("#reconnect-schema").value.trim(),
      table_name: $("#reconnect-table").value.trim() } });
    $("#reconnect-dialog").close();
    $("#jobs-status").textContent = `${reconnecting.name} reconnected; its destination and watermark are kept.`;
    await loadJobs();
  } catch (e) {
    showError($("#reconnect-error"), e);
  }
});

let deleting = null;

function openDelete(job) {
  deleting = job;
  $("#delete-text").textContent = `Delete “${job.name}”? Its schedule and run history go. The table `
    + `${job.destination.dataset}.${job.destination.table} and its rows are kept unless you tick the box.`;
  $("#delete-drop-table").checked = false;
  $("#delete-dialog").showModal();
}

$("#delete-confirm").addEventListener("click", async () => {
  const drop = $("#delete-drop-table").checked;
  $("#delete-dialog").close();
  if (historyJob === deleting.id) { historyJob = null; $("#history").hidden = true; }
  await act(api(`/api/etl/jobs/${deleting.id}/`, { method: "DELETE", body: { drop_table: drop } }),
    `${deleting.name} deleted; the table was ${drop ? "dropped" : "kept"}.`);
});

const fromHash = location.hash.startsWith("#job-") ? location.hash.slice(5) : null;
if (fromHash) historyJob = fromHash;
loadJobs();

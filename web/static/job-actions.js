// The actions on one job, the same on the jobs list and on a job's own page: Run now, Edit (schedule,
// columns, checks with verification's own schedule, and alert channels), Reconnect, Pause/Resume and Delete, with the dialogs of
// templates/job_dialogs.html.
import { api } from "./api.js";
import { connectionLabel, fetchConnections } from "./connection-list.js";
import { $, $$, el } from "./dom.js";
import { showError } from "./errors.js";
import { scheduleFrom } from "./schedule.js";

// What the page around the actions does: where it says what happened, how it shows the change,
// what it does once a run was asked for, and after a job is deleted (default: say so, reload).
const page = {
  status: null,
  reload: async () => {},
  afterRun: () => {},
  afterDelete: null,
};

export function useJobActions(options) {
  Object.assign(page, options);
}

// The action buttons of a job; each names its job for a screen reader ("Run now Orders").
export function actionButtons(job) {
  const button = (label, handler, cls) => el("button", { type: "button", class: cls, "data-action": label.toLowerCase(),
    "aria-label": `${label} ${job.name}`, onclick: () => handler(job), text: label });
  return [button("Run now", runNow), button("Edit", openEdit), button("Reconnect", openReconnect),
    job.state === "paused" ? button("Resume", (j) => setState(j, "resume")) : button("Pause", (j) => setState(j, "pause")),
    button("Delete", openDelete, "danger")];
}

async function act(promise, message) {
  page.status.textContent = "Working…";
  try {
    await promise;
    page.status.textContent = message;
  } catch (e) {
    showError(page.status, e);
  }
  await page.reload();
}

function runNow(job) {
  page.afterRun(job);
  return act(api(`/api/etl/jobs/${job.id}/run/`, { method: "POST", body: {} }), `Run of ${job.name} started.`);
}

function setState(job, action) {
  return act(api(`/api/etl/jobs/${job.id}/${action}/`, { method: "POST", body: {} }),
    `${job.name} ${action === "pause" ? "paused" : "resumed"}.`);
}

// ---- edit ----------------------------------------------------------------------------------------

let editing = null;

async function openEdit(job) {
  editing = job;
  fillSchedule($("#edit-schedule"), job.schedule);
  fillChecks(job);
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

// A schedule (the API's object) into the [data-schedule=...] fields under root, as scheduleFrom reads them.
function fillSchedule(root, s) {
  const field = (name) => $(`[data-schedule=${name}]`, root);
  field("type").value = s.type;
  field("minute").value = s.type === "hourly" ? (s.time || "0").split(":").pop() : "0";
  field("time").value = s.time && s.time.includes(":") ? s.time : "02:00";
  field("day_of_week").value = s.day_of_week || "mon";
  field("day_of_month").value = s.day_of_month || 1;
  field("cron").value = s.cron || "";
  field("timezone").value = s.timezone || "UTC";
}

// The verification schedule's fields: those its type uses ([data-when]), none when there is none.
function toggleVerifySchedule() {
  const type = $("#edit-vtype").value;
  $$("#edit-verify-schedule [data-when]").forEach((e) => { e.hidden = !e.dataset.when.split(" ").includes(type); });
}
$("#edit-vtype").addEventListener("change", toggleVerifySchedule);

// A job's checks and its own alert channels in the dialog. Rows deleted at the source can be marked
// or removed only for a transactional job with a primary key (the server's reason otherwise); the
// webhook's URL is never shown (the job knows its host only): left empty, it stays.
function fillChecks(job) {
  const checks = job.checks || { verify: true, repair: false, deleted_rows: "keep", sweep_every_run: false };
  $("#edit-verify").checked = checks.verify;
  $("#edit-repair").checked = checks.repair;
  $("#edit-deleted-rows").value = checks.deleted_rows;
  $("#edit-sweep-every-run").checked = checks.sweep_every_run;
  fillSchedule($("#edit-verify-schedule"), checks.verify_schedule || { type: "manual", timezone: job.schedule.timezone });
  toggleVerifySchedule();
  const why = job.load_type === "catalog" ? "A catalog load drops deleted rows with each snapshot."
    : job.primary_key.length ? "" : $("#edit-dialog").dataset.noKey;
  $("#edit-deleted-rows").disabled = Boolean(why);
  $("#edit-deleted-why").hidden = !why;
  $("#edit-deleted-why").textContent = why ? `${why[0].toUpperCase()}${why.slice(1).replace(/\.?$/, ".")}` : "";
  toggleSweep();
  const alerts = job.alerts || {};
  $("#edit-webhook").value = "";
  $("#edit-webhook-remove").checked = false;
  $("#edit-webhook-now").textContent = alerts.webhook_host
    ? `Now: a webhook at ${alerts.webhook_host}. A new URL replaces it; left empty, it stays.` : "None now.";
  $("#edit-webhook-remove-label").hidden = !alerts.webhook_host;
  $("#edit-topic").value = alerts.topic || "";
}

function toggleSweep() {
  $("#edit-sweep").hidden = $("#edit-deleted-rows").value === "keep";
}
$("#edit-deleted-rows").addEventListener("change", toggleSweep);

function checksAndAlerts(job) {
  const deleted = $("#edit-deleted-rows").value;
  const body = { checks: { verify: $("#edit-verify").checked, repair: $("#edit-repair").checked,
    deleted_rows: deleted, sweep_every_run: deleted !== "keep" && $("#edit-sweep-every-run").checked } };
  const verifyOn = scheduleFrom($("#edit-verify-schedule"));
  body.checks.verify_schedule = verifyOn.type === "manual" ? null : verifyOn;
  const alerts = {};
  const webhook = $("#edit-webhook").value.trim();
  if (webhook) alerts.webhook_url = webhook;
  else if ($("#edit-webhook-remove").checked) alerts.webhook_url = "";
  const topic = $("#edit-topic").value.trim();
  if (topic !== ((job.alerts && job.alerts.topic) || "")) alerts.topic = topic;
  if (Object.keys(alerts).length) body.alerts = alerts;
  return body;
}

$("#edit-save").addEventListener("click", async () => {
  const body = { schedule: scheduleFrom($("#edit-schedule")), ...checksAndAlerts(editing) };
  const columns = $$("#edit-columns input:checked").map((i) => i.value);
  if (columns.length) body.selected_columns = columns;
  try {
    await api(`/api/etl/jobs/${editing.id}/`, { method: "PATCH", body });
    $("#edit-dialog").close();
    page.status.textContent = `${editing.name} saved.`;
    await page.reload();
  } catch (e) {
    showError($("#edit-error"), e);
  }
});

// ---- reconnect -----------------------------------------------------------------------------------

let reconnecting = null;

async function openReconnect(job) {
  reconnecting = job;
  let connections;
  try {
    connections = await fetchConnections();
  } catch (e) {
    showError(page.status, e);
    return;
  }
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
    page.status.textContent = `${reconnecting.name} reconnected; its destination and watermark are kept.`;
    await page.reload();
  } catch (e) {
    showError($("#reconnect-error"), e);
  }
});

// ---- delete --------------------------------------------------------------------------------------

let deleting = null;

function openDelete(job) {
  deleting = job;
  $("#delete-text").textContent = `Delete “${job.name}”? Its schedule and run history go. The table `
    + `${job.destination.dataset}.${job.destination.table} and its rows are kept unless you tick the box.`;
  $("#delete-drop-table").checked = false;
  $("#delete-dialog").showModal();
}

$("#delete-confirm").addEventListener("click", async () => {
  const job = deleting;
  const drop = $("#delete-drop-table").checked;
  $("#delete-dialog").close();
  const message = `${job.name} deleted; the table was ${drop ? "dropped" : "kept"}.`;
  const deleted = api(`/api/etl/jobs/${job.id}/`, { method: "DELETE", body: { drop_table: drop } });
  if (!page.afterDelete) {
    await act(deleted, message);
    return;
  }
  page.status.textContent = "Working…";
  try {
    await deleted;
  } catch (e) {
    showError(page.status, e);
    return;
  }
  page.afterDelete(job, message);
});

// The five-step wizard: connection -> table -> columns -> load, checks & destination -> schedule & create.
import { api } from "./api.js";
import { connectionLabel, connectionPayload, fetchConnections } from "./connection-list.js";
import { $, $$, el, show, when } from "./dom.js";
import { showError } from "./errors.js";
import { COMMON_ZONES, scheduleFrom } from "./schedule.js";

const form = $("#wizard");
const state = { step: 1, connection: null, tables: [], table: null, preview: null, compat: null };

// ---- navigation -------------------------------------------------------------------------------

function showStep(step, focus = true) {
  state.step = step;
  $$(".step").forEach((s) => { s.hidden = Number(s.dataset.step) !== step; });
  $$(".progress li").forEach((li) => {
    const n = Number(li.dataset.step);
    li.classList.toggle("done", n < step);
    if (n === step) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
  });
  $("#back").hidden = step === 1;
  $("#next").hidden = step === 5;
  const heading = $(`.step[data-step="${step}"] h2`);
  heading.setAttribute("tabindex", "-1");
  if (focus) heading.focus();  // screen readers and keyboards land on the new step
}

function clearErrors() {
  $$(".field-error").forEach((e) => e.replaceChildren());
}

// Shows an error under the field it names (error-<field>, or error-<prefix of a dotted field>),
// else under fallbackId, and turns to the step that field is on. The connection form's fields
// have their own prefix: its "name" is not the job's name.
function reportError(error, fallbackId = "error-form", prefix = "error-") {
  const field = error.field || "";
  const target = (field && ($(`[id="${prefix}${field}"]`) || $(`[id="${prefix}${field.split(".")[0]}"]`)))
    || $(`[id="${fallbackId}"]`);
  showError(target, error);
  const section = target.closest(".step");
  if (section && Number(section.dataset.step) !== state.step) showStep(Number(section.dataset.step));
  return false;
}

const validators = {
  1: () => state.connection || reportError({ field: "connection", message: "Choose a connection, or add one." }),
  2: () => state.table || reportError({ field: "table", message: "Choose a table." }),
  3: () => selectedColumns().length > 0 || reportError({ field: "selected_columns", message: "Select at least one column." }),
  4: () => {
    if (loadType() === "transactional" && !$("#timestamp_column").value) {
      return reportError({ field: "timestamp_column", message: "A transactional load needs a timestamp column." });
    }
    if (loadType() === "transactional" && $("#historical_backfill").value === "custom" && !$("#historical_start_date").value) {
      return reportError({ field: "historical_start_date", message: "Pick the first day to load." });
    }
    if (!$("#destination_dataset").value.trim()) return reportError({ field: "destination.dataset", message: "Name a dataset." });
    if (destinationMode() === "new" && !$("#destination_table").value.trim()) {
      return reportError({ field: "destination.table", message: "Name the new table." });
    }
    if (destinationMode() === "existing") {
      if (!state.compat) return reportError({ field: "destination.dataset", message: "Choose an existing table." });
      if (!state.compat.compatible) return reportError({ field: "destination.dataset", message: "This table cannot take these columns: see the errors above." });
    }
    return true;
  },
};

const enter = {
  2: loadTables,
  3: loadPreview,
  4: prepareDestination,
  5: prepareReview,
};

$("#next").addEventListener("click", async () => {
  clearErrors();
  if (!validators[state.step]()) return;
  const next = state.step + 1;
  showStep(next);
  if (enter[next]) {
    $("#next").disabled = true;  // until the step has what it needs from the server
    try {
      await enter[next]();
    } finally {
      $("#next").disabled = false;
    }
  }
});
$("#back").addEventListener("click", () => { clearErrors(); showStep(state.step - 1); });

// ---- step 1: connection -----------------------------------------------------------------------

const CONNECTION_FIELDS = [
  ["name", "Name", "text"], ["type", "Type", "select"], ["host", "Host", "text"], ["port", "Port", "number"],
  ["database", "Database", "text"], ["user", "User", "text"], ["password", "Password", "password"],
  ["project", "Google Cloud project (BigQuery)", "text"],
];

function connectionForm(root) {
  root.replaceChildren(...CONNECTION_FIELDS.flatMap(([name, label, kind]) => {
    const id = `conn-${name}`;
    const input = kind === "select"
      ? el("select", { id, name }, ...["postgresql", "mysql", "bigquery"].map((t) => el("option", { value: t, text: t })))
      : el("input", { id, name, type: kind, autocomplete: kind === "password" ? "new-password" : "off" });
    return [el("label", { for: id, text: label }), input, el("div", { class: "field-error", id: `error-conn-${name}`, role: "alert" })];
  }));
}

// The demo's sample shop (data-featured-connection) comes first, chosen until the user picks another.
async function loadConnections(selectId = form.dataset.featuredConnection) {
  const featured = form.dataset.featuredConnection;
  const connections = (await fetchConnections()).sort((a, b) => (b.id === featured) - (a.id === featured));
  const list = $("#connection-list");
  if (!connections.length) {
    list.replaceChildren(el("p", { text: "No connections yet: add one below." }));
    $("#add-connection").open = true;
    return;
  }
  list.replaceChildren(...connections.map((c) => {
    const id = `connection-${c.id}`;
    return el("div", { class: "choice" },
      el("input", { type: "radio", name: "connection", id, value: c.id, checked: c.id === selectId,
        onchange: () => { state.connection = c; state.table = null; $("#test-result").textContent = ""; } }),
      el("label", { for: id, text: connectionLabel(c) }));
  }));
  if (selectId) state.connection = connections.find((c) => c.id === selectId) || null;
}

$("#test-connection").addEventListener("click", async () => {
  clearErrors();
  if (!validators[1]()) return;
  $("#test-result").textContent = "Testing…";
  try {
    const result = await api(`/api/connections/${state.connection.id}/test/`, { method: "POST", body: {} });
    $("#test-result").textContent = `Connected: ${result.server_version}`;
  } catch (e) {
    showError($("#test-result"), e);
  }
});

$("#save-connection").addEventListener("click", async () => {
  clearErrors();
  try {
    const { connection } = await api("/api/connections/", { method: "POST", body: connectionPayload($("#new-connection")) });
    $("#conn-password").value = "";
    $("#add-connection").open = false;
    await loadConnections(connection.id);
    $("#test-result").textContent = `Saved ${connection.name}.`;
  } catch (e) {
    reportError(e, "error-connection", "error-conn-");
  }
});

// ---- step 2: table ----------------------------------------------------------------------------

async function loadTables() {
  const list = $("#table-list");
  list.replaceChildren(el("p", { text: "Loading tables…" }));
  try {
    state.tables = (await api(`/api/connections/${state.connection.id}/tables/`)).tables;
    renderTables();
  } catch (e) {
    list.replaceChildren();
    reportError(e, "error-table");
  }
}

function renderTables() {
  const filter = $("#table-filter").value.trim().toLowerCase();
  const shown = state.tables.filter((t) => `${t.schema_name}.${t.table_name}`.toLowerCase().includes(filter));
  $("#table-list").replaceChildren(...shown.map((t, i) => {
    const id = `table-${i}`;
    const key = `${t.schema_name}.${t.table_name}`;
    const checked = state.table && `${state.table.schema_name}.${state.table.table_name}` === key;
    return el("div", { class: "choice" },
      el("input", { type: "radio", name: "table", id, value: key, checked,
        onchange: () => { state.table = t; state.preview = null; } }),
      el("label", { for: id, text: key + (t.kind === "view" ? " (view)" : "") }));
  }), shown.length ? null : el("p", { text: "No table matches." }));
}
$("#table-filter").addEventListener("input", renderTables);

// ---- step 3: preview & columns ----------------------------------------------------------------

async function loadPreview() {
  const t = state.table;
  if (state.preview && state.preview.schema_name === t.schema_name && state.preview.table_name === t.table_name) return;
  $("#preview-summary").textContent = `Reading ${t.schema_name}.${t.table_name}…`;
  $("#columns-table tbody").replaceChildren();
  try {
    state.preview = await api(`/api/connections/${state.connection.id}/fetch-table-preview/`,
      { method: "POST", body: { schema_name: t.schema_name, table_name: t.table_name } });
  } catch (e) {
    $("#preview-summary").textContent = "";
    return reportError(e, "error-selected_columns");
  }
  const p = state.preview;
  const count = `${p.total_rows_exact ? "" : "about "}${p.total_rows.toLocaleString()} rows`;
  $("#preview-summary").textContent = `${p.schema_name}.${p.table_name}: ${p.columns.length} columns, ${count}.`
    + (p.warnings.length ? ` ${p.warnings.join(" ")}` : "");
  $("#columns-table tbody").replaceChildren(...p.columns.map((c, i) => {
    const id = `col-${i}`;
    const badges = [c.is_primary_key ? el("span", { class: "badge", text: "PK" }) : null,
      c.is_timestamp_candidate ? el("span", { class: "badge ts", text: "timestamp" }) : null,
      c.name === p.recommended_timestamp_column ? el("span", { class: "badge rec", text: "suggested cursor" }) : null];
    return el("tr", {},
      el("td", {}, el("input", { type: "checkbox", id, value: c.name, checked: true, "aria-label": `Load ${c.name}` })),
      el("td", {}, el("label", { for: id, text: c.name }), ...badges),
      el("td", { text: c.source_type }),
      el("td", { text: c.mode === "REPEATED" ? `ARRAY<${c.bigquery_type}>` : c.bigquery_type }),
      el("td", { text: c.nullable ? "yes" : "no" }));
  }));
  $("#sample-table thead").replaceChildren(el("tr", {}, ...p.columns.map((c) => el("th", { scope: "col", text: c.name }))));
  $("#sample-table tbody").replaceChildren(...p.sample_rows.map((r) =>
    el("tr", {}, ...p.columns.map((c) => el("td", { text: show(r[c.name]) })))));
  $("#destination_table").value = p.suggested_table;  // the server's rule, the one it applies when none is given
}

function selectedColumns() {
  return $$("#columns-table tbody input:checked").map((i) => i.value);
}
$("#select-all").addEventListener("click", () => $$("#columns-table tbody input").forEach((i) => { i.checked = true; }));
$("#select-none").addEventListener("click", () => $$("#columns-table tbody input").forEach((i) => { i.checked = false; }));

// ---- step 4: load type & destination ----------------------------------------------------------

const loadType = () => $("input[name=load_type]:checked").value;
const destinationMode = () => $("input[name=destination_mode]:checked").value;

function prepareDestination() {
  const p = state.preview;
  const candidates = p.columns.filter((c) => c.is_timestamp_candidate && selectedColumns().includes(c.name));
  const current = $("#timestamp_column").value;
  $("#timestamp_column").replaceChildren(...candidates.map((c) => el("option", { value: c.name, text: `${c.name} (${c.source_type})` })));
  const preferred = candidates.find((c) => c.name === current) || candidates.find((c) => c.name === p.recommended_timestamp_column);
  if (preferred) $("#timestamp_column").value = preferred.name;
  if (!candidates.length && loadType() === "transactional") {
    $("input[name=load_type][value=catalog]").checked = true;
    $("#error-timestamp_column").textContent = "No selected column is a timestamp or date: this table loads as a catalog.";
  }
  if (!$("#destination_dataset").value) $("#destination_dataset").value = form.dataset.defaultDataset;
  toggleLoadType();
  toggleDestination();
}

function toggleLoadType() {
  const transactional = loadType() === "transactional";
  $("#transactional-options").hidden = !transactional;
  $("#catalog-options").hidden = transactional;
  $$(".custom-date").forEach((e) => { e.hidden = $("#historical_backfill").value !== "custom"; });
  toggleChecks();
  if (destinationMode() === "existing") checkCompatibility();
}

// The job's primary key: the table's, where all of its columns are selected.
function primaryKey() {
  const chosen = selectedColumns();
  return state.preview ? state.preview.recommended_primary_key.filter((k) => chosen.includes(k)) : [];
}

// Rows deleted at the source: a choice for a transactional load with a primary key only. A catalog
// load drops them itself (hidden); without a key they cannot be found (the server's reason shown).
const deletedRowsChoice = () => $("input[name=deleted_rows]:checked").value;
function deletedRows() {
  return loadType() === "catalog" || !primaryKey().length ? "keep" : deletedRowsChoice();
}

function toggleChecks() {
  const keyless = primaryKey().length === 0;
  $("#deleted-rows-options").hidden = loadType() === "catalog";
  $$("input[name=deleted_rows]").forEach((r) => { r.disabled = keyless && r.value !== "keep"; });
  if (keyless) $("input[name=deleted_rows][value=keep]").checked = true;
  const why = form.dataset.noKey || "the table has no primary key";  // run/deletes.py's NO_KEY
  $("#deleted-rows-why").textContent = `${why[0].toUpperCase()}${why.slice(1)}.`;
  $("#deleted-rows-why").hidden = !keyless;
  $("#sweep-options").hidden = deletedRows() === "keep";
}
$$("input[name=deleted_rows]").forEach((r) => r.addEventListener("change", toggleChecks));

async function toggleDestination() {
  const existing = destinationMode() === "existing";
  $("#new-table").hidden = existing;
  $("#existing-table").hidden = !existing;
  if (existing) await loadExistingTables();
}

async function loadExistingTables() {
  const dataset = $("#destination_dataset").value.trim();
  const select = $("#existing_table");
  state.compat = null;
  $("#compatibility").replaceChildren();
  try {
    const { tables } = await api(`/api/etl/datasets/${encodeURIComponent(dataset)}/tables/`);
    select.replaceChildren(el("option", { value: "", text: "— choose a table —" }),
      ...tables.map((t) => el("option", { value: t.table_name, text: `${t.table_name} (${t.row_count.toLocaleString()} rows)` })));
    if (!tables.length) $("#compatibility").textContent = `Dataset ${dataset} has no tables yet.`;
  } catch (e) {
    select.replaceChildren();
    showError($("#compatibility"), e);
  }
}

async function checkCompatibility() {
  const table = $("#existing_table").value;
  state.compat = null;
  const report = $("#compatibility");
  if (!table) { report.replaceChildren(); return; }
  const p = state.preview;
  const chosen = selectedColumns();
  try {
    state.compat = await api("/api/etl/validate-schema-compatibility/", { method: "POST", body: {
      source_columns: p.columns.filter((c) => chosen.includes(c.name)),
      destination_table: `${$("#destination_dataset").value.trim()}.${table}`,
      primary_key: p.recommended_primary_key.filter((k) => chosen.includes(k)),
      timestamp_column: loadType() === "transactional" ? $("#timestamp_column").value : null,
    } });
  } catch (e) {
    const message = el("div", { class: "error" });
    showError(message, e);
    report.replaceChildren(message);
    return;
  }
  const c = state.compat;
  report.replaceChildren(
    el("p", { class: c.compatible ? "ok" : "error", text: c.compatible ? "Compatible: this table can take these columns." : "Not compatible:" }),
    c.errors.length ? el("ul", { class: "errors" }, ...c.errors.map((t) => el("li", { text: t }))) : null,
    c.warnings.length ? el("div", {}, el("p", { text: "Warnings:" }), el("ul", { class: "warnings" }, ...c.warnings.map((t) => el("li", { text: t })))) : null,
    c.can_alter.length ? el("div", {},
      el("input", { type: "checkbox", id: "add_missing_columns" }),
      el("label", { for: "add_missing_columns",
        text: ` Add the missing column(s) to the table: ${c.can_alter.map((a) => `${a.name} (${a.bigquery_type})`).join(", ")}` })) : null);
}

$$("input[name=load_type]").forEach((r) => r.addEventListener("change", toggleLoadType));
$$("input[name=destination_mode]").forEach((r) => r.addEventListener("change", toggleDestination));
$("#historical_backfill").addEventListener("change", toggleLoadType);
$("#timestamp_column").addEventListener("change", () => { if (destinationMode() === "existing") checkCompatibility(); });
$("#destination_dataset").addEventListener("change", () => { if (destinationMode() === "existing") loadExistingTables(); });
$("#existing_table").addEventListener("change", checkCompatibility);

// ---- step 5: schedule, review, create ---------------------------------------------------------

function toggleScheduleFields() {
  const type = $("#schedule_type").value;
  $$("#schedule-fields .when").forEach((e) => { e.hidden = !e.classList.contains(type); });
}

let previewTimer;
async function previewSchedule() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    $("#error-schedule").replaceChildren();
    try {
      const result = await api("/api/etl/schedules/preview/", { method: "POST", body: scheduleFrom($("#schedule-fields")) });
      $("#next-runs").replaceChildren(result.cron
        ? el("p", { text: `Cron ${result.cron} (${result.timezone}). Next runs: ${result.next_runs.map(when).join("; ")}` })
        : el("p", { text: "Runs only when you press Run now." }));
    } catch (e) {
      $("#next-runs").replaceChildren();
      showError($("#error-schedule"), e);
    }
  }, 250);
}

function jobPayload() {
  const p = state.preview;
  const chosen = selectedColumns();
  const body = {
    name: $("#job_name").value.trim(),
    connection_id: state.connection.id,
    schema_name: p.schema_name,
    table_name: p.table_name,
    selected_columns: chosen,
    primary_key: primaryKey(),
    load_type: loadType(),
    destination: { mode: destinationMode(), dataset: $("#destination_dataset").value.trim() },
    schedule: scheduleFrom($("#schedule-fields")),
    checks: {
      verify: $("#check_verify").checked,
      repair: $("#check_repair").checked,
      deleted_rows: deletedRows(),
      sweep_every_run: deletedRows() !== "keep" && $("#sweep_every_run").checked,
    },
  };
  const webhook = $("#alert_webhook_url").value.trim();
  const topic = $("#alert_topic").value.trim();
  if (webhook || topic) {
    body.alerts = {};
    if (webhook) body.alerts.webhook_url = webhook;
    if (topic) body.alerts.topic = topic;
  }
  if (body.load_type === "transactional") {
    body.timestamp_column = $("#timestamp_column").value;
    body.historical_backfill = $("#historical_backfill").value;
    if (body.historical_backfill === "custom") body.historical_start_date = $("#historical_start_date").value;
  }
  if (body.destination.mode === "new") body.destination.table = $("#destination_table").value.trim();
  else {
    body.destination.table = $("#existing_table").value;
    body.destination.add_missing_columns = Boolean($("#add_missing_columns") && $("#add_missing_columns").checked);
  }
  return body;
}

function prepareReview() {
  if (!$("#job_name").value) $("#job_name").value = `${state.preview.table_name} from ${state.connection.name}`;
  if (!$("#schedule_timezone").value) $("#schedule_timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  toggleScheduleFields();
  previewSchedule();
  const body = jobPayload();
  const rows = [
    ["Source", `${state.connection.name}: ${body.schema_name}.${body.table_name}`],
    ["Columns", `${body.selected_columns.length}: ${body.selected_columns.join(", ")}`],
    ["Load", body.load_type === "transactional"
      ? `transactional by ${body.timestamp_column}, backfill ${$("#historical_backfill").selectedOptions[0].text.toLowerCase()}${body.historical_start_date ? ` ${body.historical_start_date}` : ""}`
      : "catalog (full snapshot each run)"],
    ["Key", body.primary_key.join(", ") || "none"],
    ["Destination", `${body.destination.mode === "new" ? "new table" : "existing table"} ${body.destination.dataset}.${body.destination.table}`],
    ["Checks", describeChecks(body)],
    ["Alerts", describeAlerts(body.alerts)],
  ];
  $("#summary").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

function describeChecks(body) {
  const c = body.checks;
  const verify = c.verify ? `verify after each run${c.repair ? " and repair what differs" : ""}` : "no verification after runs";
  const deleted = { keep: "kept", mark: "marked (_etl_deleted_at)", remove: "removed" }[c.deleted_rows];
  const swept = c.deleted_rows === "keep" ? "" : c.sweep_every_run ? ", swept after every run" : ", swept daily";
  return body.load_type === "catalog" ? `${verify}; rows deleted at the source go with each snapshot`
    : `${verify}; rows deleted at the source ${deleted}${swept}`;
}

// Where alerts go: a webhook by its host only (its URL holds a token), as the job will show it.
function describeAlerts(alerts) {
  if (!alerts) return "the deployment's default channels";
  let host = "";
  try { host = alerts.webhook_url ? new URL(alerts.webhook_url).hostname : ""; } catch (e) { host = "(not a URL)"; }
  const to = [host && `webhook at ${host}`, alerts.topic && `Pub/Sub topic ${alerts.topic}`].filter(Boolean);
  return `${to.join(" and ")}, besides the deployment's defaults`;
}

$("#schedule_type").addEventListener("change", () => { toggleScheduleFields(); previewSchedule(); });
$$("#schedule-fields [data-schedule]").forEach((i) => i.addEventListener("input", previewSchedule));

$("#create-job").addEventListener("click", async () => {
  clearErrors();
  $("#created").replaceChildren();
  try {
    const { job } = await api("/api/etl/jobs/", { method: "POST", body: jobPayload() });
    $("#created").replaceChildren(el("p", { class: "ok" }, `Job “${job.name}” created. `,
      el("a", { href: `/jobs/${job.id}`, text: "Open the job's page" }), " to run it now, verify it or watch its runs."));
    $("#create-job").disabled = true;
  } catch (e) {
    reportError(e);
  }
});

// ---- start ------------------------------------------------------------------------------------

$("#zones").replaceChildren(...COMMON_ZONES.map((z) => el("option", { value: z })));
connectionForm($("#new-connection"));
showStep(1, false);
loadConnections().catch((e) => reportError(e, "error-connection"));

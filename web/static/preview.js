// A first look at a source: connection -> table -> columns and sample rows.
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const response = await fetch(path, {
    headers: { "Content-Type": "application/json" }, ...options,
  });
  const body = await response.json();
  if (body.status !== "success") throw new Error(body.message);
  return body;
}

function cell(tag, text) {
  const el = document.createElement(tag);
  el.textContent = text;
  return el;
}

async function loadConnections() {
  const { connections } = await api("/api/connections/");
  $("connection").replaceChildren(...connections.map((c) => {
    const option = cell("option", `${c.name} (${c.type})`);
    option.value = c.id;
    return option;
  }));
  if (connections.length) loadTables();
}

let tables = [];
async function loadTables() {
  $("tables").replaceChildren(cell("li", "Loading…"));
  try {
    tables = (await api(`/api/connections/${$("connection").value}/tables/`)).tables;
    showTables();
  } catch (e) {
    $("tables").replaceChildren(cell("li", e.message));
  }
}

function showTables() {
  const filter = $("table-filter").value.toLowerCase();
  $("tables").replaceChildren(...tables
    .filter((t) => `${t.schema_name}.${t.table_name}`.toLowerCase().includes(filter))
    .map((t) => {
      const button = cell("button", `${t.schema_name}.${t.table_name}`);
      button.type = "button";
      button.onclick = () => loadPreview(t);
      const item = document.createElement("li");
      item.append(button, t.kind === "view" ? cell("span", "view") : "");
      return item;
    }));
}

async function loadPreview(t) {
  $("preview-summary").textContent = `Loading ${t.schema_name}.${t.table_name}…`;
  try {
    const p = await api(`/api/connections/${$("connection").value}/fetch-table-preview/`, {
      method: "POST", body: JSON.stringify({ schema_name: t.schema_name, table_name: t.table_name }),
    });
    const count = `${p.total_rows_exact ? "" : "about "}${p.total_rows.toLocaleString()} rows`;
    $("preview-summary").textContent = `${p.schema_name}.${p.table_name}: ${p.columns.length} columns, ${count}; `
      + `cursor: ${p.recommended_timestamp_column || "none"}; key: ${p.recommended_primary_key.join(", ") || "none"}`;
    const columns = document.createElement("table");
    columns.append(rowOf("th", ["column", "source type", "BigQuery type", "mode"]));
    for (const c of p.columns) {
      const row = rowOf("td", [c.name, c.source_type, c.bigquery_type, c.mode]);
      if (c.is_primary_key) row.cells[0].append(cell("span", "PK")), row.cells[0].lastChild.className = "badge";
      if (c.is_timestamp_candidate) row.cells[0].append(cell("span", "timestamp")), row.cells[0].lastChild.className = "badge";
      columns.append(row);
    }
    const sample = document.createElement("table");
    sample.append(rowOf("th", p.columns.map((c) => c.name)));
    for (const r of p.sample_rows) {
      sample.append(rowOf("td", p.columns.map((c) => (r[c.name] === null ? "NULL" : typeof r[c.name] === "object" ? JSON.stringify(r[c.name]) : String(r[c.name])))));
    }
    $("preview").replaceChildren(columns, cell("h3", "Sample rows"), sample);
  } catch (e) {
    $("preview-summary").textContent = e.message;
    $("preview-summary").className = "error";
  }
}

function rowOf(tag, values) {
  const row = document.createElement("tr");
  row.append(...values.map((v) => cell(tag, v)));
  return row;
}

$("connection").onchange = loadTables;
$("table-filter").oninput = showTables;
$("test").onclick = async () => {
  $("test-result").textContent = "Testing…";
  try {
    const r = await api(`/api/connections/${$("connection").value}/test/`, { method: "POST", body: "{}" });
    $("test-result").textContent = `Connected: ${r.server_version}`;
  } catch (e) {
    $("test-result").textContent = e.message;
  }
};
loadConnections();

// The connections page: list, test, delete, add. The password field is write-only.
"use strict";

async function loadConnections() {
  const { connections } = await api("/api/connections/");
  $("#connections-table tbody").replaceChildren(...connections.map((c) => el("tr", { "data-connection": c.name },
    el("th", { scope: "row", text: c.name }),
    el("td", { text: c.type }),
    el("td", { text: c.type === "bigquery" ? c.project : `${c.user}@${c.host}:${c.port}/${c.database}` }),
    el("td", { class: "actions" },
      el("button", { type: "button", "aria-label": `Test ${c.name}`, text: "Test", onclick: () => test(c) }),
      el("button", { type: "button", class: "danger", "aria-label": `Delete ${c.name}`, text: "Delete", onclick: () => remove(c) })))));
}

async function test(c) {
  $("#connections-status").textContent = `Testing ${c.name}…`;
  try {
    const r = await api(`/api/connections/${c.id}/test/`, { method: "POST", body: {} });
    $("#connections-status").textContent = `${c.name}: connected (${r.server_version}).`;
  } catch (e) {
    $("#connections-status").textContent = e.message;
  }
}

async function remove(c) {
  if (!confirm(`Delete the connection “${c.name}” and its stored password? Jobs using it stop until reconnected.`)) return;
  try {
    await api(`/api/connections/${c.id}/`, { method: "DELETE" });
    $("#connections-status").textContent = `${c.name} deleted.`;
  } catch (e) {
    $("#connections-status").textContent = e.message;
  }
  await loadConnections();
}

$("#connection-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {};
  for (const input of $$("#connection-form [name]")) {
    if (input.value !== "") body[input.name] = input.name === "port" ? Number(input.value) : input.value;
  }
  try {
    const { connection } = await api("/api/connections/", { method: "POST", body });
    $("#connection-error").textContent = "";
    $("#connection-form").reset();
    $("#connections-status").textContent = `${connection.name} saved.`;
    await loadConnections();
  } catch (e) {
    $("#connection-error").textContent = e.message;
    const input = e.field && $(`#conn-${e.field}`);
    if (input) input.focus();
  }
});

loadConnections().catch((e) => { $("#connections-status").textContent = e.message; });

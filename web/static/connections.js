// The connections page: list, test, delete, add. The password field is write-only.
import { api } from "./api.js";
import { connectionPayload, connectionWhere, fetchConnections } from "./connection-list.js";
import { $, el } from "./dom.js";
import { showError } from "./errors.js";

const status = $("#connections-status");

async function loadConnections() {
  const connections = await fetchConnections();
  $("#connections-table tbody").replaceChildren(...connections.map((c) => el("tr", { "data-connection": c.name },
    el("th", { scope: "row", text: c.name }),
    el("td", { text: c.type }),
    el("td", { text: connectionWhere(c) }),
    el("td", { class: "actions" },
      el("button", { type: "button", "aria-label": `Test ${c.name}`, text: "Test", onclick: () => test(c) }),
      el("button", { type: "button", class: "danger", "aria-label": `Delete ${c.name}`, text: "Delete", onclick: () => remove(c) })))));
}

async function test(c) {
  status.textContent = `Testing ${c.name}…`;
  try {
    const r = await api(`/api/connections/${c.id}/test/`, { method: "POST", body: {} });
    status.textContent = `${c.name}: connected (${r.server_version}).`;
  } catch (e) {
    showError(status, e);
  }
}

async function remove(c) {
  if (!confirm(`Delete the connection “${c.name}” and its stored password? Jobs using it stop until reconnected.`)) return;
  try {
    await api(`/api/connections/${c.id}/`, { method: "DELETE" });
    status.textContent = `${c.name} deleted.`;
  } catch (e) {
    showError(status, e);
  }
  await loadConnections().catch((e) => showError(status, e));
}

$("#connection-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const { connection } = await api("/api/connections/", { method: "POST", body: connectionPayload($("#connection-form")) });
    $("#connection-error").replaceChildren();
    $("#connection-form").reset();
    status.textContent = `${connection.name} saved.`;
    await loadConnections();
  } catch (e) {
    showError($("#connection-error"), e);
    const input = e.field && $(`#conn-${e.field}`);
    if (input) input.focus();
  }
});

loadConnections().catch((e) => showError(status, e));

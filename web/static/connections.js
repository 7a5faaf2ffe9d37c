// The connections page: list, test (as a checklist of steps), delete, add. Secrets (the password,
// client certificate and key, SSH key and passphrase) are write-only: sent once, never shown.
import { api } from "./api.js";
import {
  TLS_MODES, TLS_PROTECTS, connectionRequest, connectionWhere, defaultTlsMode, fetchConnections, formFields,
  stepItems, testConnection, trustHostKey,
} from "./connection-list.js";
import { $, $$, el } from "./dom.js";
import { showError } from "./errors.js";

const status = $("#connections-status");
const form = $("#connection-form");

async function loadConnections() {
  const connections = await fetchConnections();
  $("#connections-table tbody").replaceChildren(...connections.map((c) => el("tr", { "data-connection": c.name },
    el("th", { scope: "row", text: c.name }),
    el("td", { text: c.type }),
    el("td", { text: connectionWhere(c) }),
    el("td", { class: "security", text: c.security || "—" }),
    el("td", { class: "actions" },
      el("button", { type: "button", "aria-label": `Test ${c.name}`, text: "Test", onclick: () => test(c) }),
      el("button", { type: "button", class: "danger", "aria-label": `Delete ${c.name}`, text: "Delete", onclick: () => remove(c) })))));
}

// ---- test: a checklist of the steps the server took -------------------------------------------

let latestTest = 0;  // an older test's answer is not shown over a newer one's

async function test(c, { focus = false } = {}) {
  const run = ++latestTest;
  status.textContent = `Testing ${c.name}…`;
  $("#connection-test").setAttribute("aria-busy", "true");
  let result;
  try {
    result = await testConnection(c.id);
  } catch (e) {  // not a test's answer (the connection is gone, the server failed): no steps to show
    if (run !== latestTest) return;
    $("#connection-test").hidden = true;
    showError(status, e);
    return;
  } finally {
    if (run === latestTest) $("#connection-test").removeAttribute("aria-busy");
  }
  if (run !== latestTest) return;
  const failure = result.message.includes(c.name) ? result.message : `${c.name}: ${result.message}`;
  status.textContent = result.ok ? `${c.name}: connected (${result.serverVersion}).` : failure;
  $("#connection-test-heading").textContent = `Test of ${c.name}`;
  $("#connection-test-steps").replaceChildren(...stepItems(result.steps, (fingerprint, button) => trust(c, fingerprint, button)));
  $("#connection-test").dataset.connection = c.id;
  $("#connection-test").hidden = result.steps.length === 0;
  if (focus && result.steps.length) $("#connection-test-heading").focus();
}

// Pins the bastion's host key the user compared, then tests again.
async function trust(c, fingerprint, button) {
  button.disabled = true;
  status.textContent = `Trusting the host key ${fingerprint} for ${c.name}…`;
  try {
    await trustHostKey(c.id, fingerprint);
  } catch (e) {
    button.disabled = false;
    showError(status, e);
    return;
  }
  await loadConnections().catch((e) => showError(status, e));
  await test(c, { focus: true });  // the button is gone with the old checklist: focus its heading
}

async function remove(c) {
  if (!confirm(`Delete the connection “${c.name}” and its stored password and keys? Jobs using it stop until reconnected.`)) return;
  try {
    await api(`/api/connections/${c.id}/`, { method: "DELETE" });
    status.textContent = `${c.name} deleted.`;
    if ($("#connection-test").dataset.connection === c.id) $("#connection-test").hidden = true;
  } catch (e) {
    showError(status, e);
  }
  await loadConnections().catch((e) => showError(status, e));
}

// ---- the form: sections by type and way in -----------------------------------------------------

const VIA_HELP = {
  direct: "Straight to Host and Port over the network.",
  ssh: "Through an SSH bastion: Host and Port are the database as the bastion sees it.",
  cloudsql: "Through Google's Cloud SQL connector, by the instance's connection name.",
};
const TLS_SHORT = [
  "no encryption", "encrypt if offered", "always encrypt, certificate not checked",
  "encrypt, certificate signed by the CA", "encrypt, CA and host name checked",
];

// The TLS modes of the chosen engine, keeping the chosen level when the type changes.
function tlsModeOptions(type) {
  const select = $("#conn-tls_mode");
  const modes = TLS_MODES[type];
  if (!modes || select.dataset.type === type) return;
  const level = select.selectedIndex - 1;  // -1: "(default)"
  select.replaceChildren(el("option", { value: "", text: "(default)" }),
    ...modes.map((mode, i) => el("option", { value: mode, text: `${mode}: ${TLS_SHORT[i]}` })));
  select.selectedIndex = level + 1;
  select.dataset.type = type;
}

function tlsHelp(type, via) {
  const modes = TLS_MODES[type];
  if (!modes) return;
  const chosen = $("#conn-tls_mode").value;
  let text = TLS_PROTECTS[modes.indexOf(chosen)];
  if (!chosen) {
    const { mode, why } = defaultTlsMode(type, $("#conn-host").value, $("#conn-tls_ca").files.length > 0, via);
    text = `The server chooses ${mode}, as ${why}. ${TLS_PROTECTS[modes.indexOf(mode)]}`;
  }
  $("#conn-tls_mode-help").textContent = text;
}

// Shows the inputs the type and way in use (connectionFields) and hides, and disables, the others;
// a fieldset none of whose inputs is used is hidden as a whole.
function syncForm() {
  const type = $("#conn-type").value;
  const via = $("#conn-via").value;
  const used = formFields(form);
  for (const input of $$("[name]", form)) {
    input.disabled = !used.has(input.name);
    const field = input.closest(".field");
    if (field) field.hidden = input.disabled;
  }
  for (const fieldset of $$("fieldset", form)) fieldset.hidden = !$$("[name]", fieldset).some((input) => !input.disabled);
  $("#conn-via-help").textContent = VIA_HELP[via] || "";
  tlsModeOptions(type);
  tlsHelp(type, via);
}

form.addEventListener("change", syncForm);
form.addEventListener("input", syncForm);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#connection-error").replaceChildren();
  for (const input of $$("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
  try {
    const { connection } = await api("/api/connections/", { method: "POST", body: await connectionRequest(form) });
    form.reset();  // the password, keys and files go with it
    syncForm();
    status.textContent = `${connection.name} saved.`;
    await loadConnections();
  } catch (e) {
    showError($("#connection-error"), e);
    const input = e.field && document.getElementById(`conn-${e.field}`);
    if (input && !input.disabled) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }
});

syncForm();
loadConnections().catch((e) => showError(status, e));

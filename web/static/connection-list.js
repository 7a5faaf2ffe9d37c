// Saved connections as every page lists them: one loader and one label, so a connection reads the
// same in the wizard, on the connections page and in the jobs page's Reconnect dialog. Also what a
// connection form sends (connectionFields, connectionPayload) and what a test answers (testConnection,
// shown by stepItems).
import { api, ApiError } from "./api.js";
import { $, $$, el } from "./dom.js";

export async function fetchConnections() {
  return (await api("/api/connections/")).connections;
}

// Where a connection points; never the password, which the API does not send anyway.
export function connectionWhere(c) {
  if (c.type === "bigquery") return c.project;
  if (c.via === "cloudsql" && c.cloudsql) return `${c.user}@${c.cloudsql.instance}/${c.database} (Cloud SQL)`;
  const where = `${c.user}@${c.host}:${c.port}/${c.database}`;
  return c.via === "ssh" && c.ssh ? `${where} via ${c.ssh.host}` : where;
}

export function connectionLabel(c) {
  return `${c.name} (${c.type}, ${connectionWhere(c)})`;
}

// ---- the connection form ----------------------------------------------------------------------

// TLS modes by engine, weakest first: the same level has the same index in both.
export const TLS_MODES = {
  postgresql: ["disable", "prefer", "require", "verify-ca", "verify-full"],
  mysql: ["disabled", "preferred", "required", "verify-ca", "verify-identity"],
};

// What each level protects against, by index into TLS_MODES.
export const TLS_PROTECTS = [
  "No encryption: anyone on the network path can read the traffic, password included.",
  "Encrypts when the server offers it, but an active attacker can turn that off or pose as the server.",
  "Always encrypted against eavesdropping, but the server's certificate is not checked: no protection against impersonation.",
  "Encrypted, and the server's certificate must be signed by the CA (the one uploaded below, or a public one).",
  "Encrypted, signed by the CA and issued for this host name: also protects against impersonation. Recommended.",
];

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

// The mode the server picks when none is chosen, and why (the server decides; this only says it).
export function defaultTlsMode(type, host, hasCa, via = "direct") {
  const modes = TLS_MODES[type];
  if (hasCa) return { mode: modes[4], why: "a CA certificate is given" };
  if (LOOPBACK.test(host.trim())) {
    const machine = via === "ssh" ? "the bastion" : "the machine ETL Wizard runs on";
    return { mode: modes[0], why: `the database is on ${machine} (a loopback address): the traffic never leaves that machine` };
  }
  return { mode: modes[2], why: "no CA certificate is given to verify the server with" };
}

// The request fields that a connection of this type, reached this way, uses: the form shows these
// and sends only these (the others would be refused or, worse, ignored silently).
export function connectionFields(type, via = "direct", iam = false) {
  if (type === "bigquery") return new Set(["name", "type", "project", "password"]);
  const fields = ["name", "type", "via", "database", "user"];
  if (via === "cloudsql") {
    fields.push("cloudsql_instance", "cloudsql_ip_type", "cloudsql_iam");
    if (!iam) fields.push("password");
  } else {
    fields.push("host", "port", "password", "tls_mode", "tls_ca", "tls_client_cert", "tls_client_key");
    if (via === "ssh") fields.push("ssh_host", "ssh_port", "ssh_user", "ssh_private_key", "ssh_passphrase", "ssh_host_key");
  }
  return new Set(fields);
}

// The fields the form under root uses as it is filled in now (a form without a "via" input, like
// the wizard's, connects directly).
export function formFields(root) {
  const input = (name) => $(`[name="${name}"]`, root);
  return connectionFields(input("type")?.value, input("via")?.value || "direct", Boolean(input("cloudsql_iam")?.checked));
}

const NUMBERS = new Set(["port", "ssh_port"]);
const MAX_FILE = 64 * 1024;  // the API's limit for PEM text

// The body of POST /api/connections/ from the named inputs under root: only the fields the type and
// way in use; empty fields are left out so the server's defaults (the port, the TLS mode) and its
// "is required" messages apply. A checkbox is a JSON boolean. Files are not read here (see
// connectionRequest).
export function connectionPayload(root) {
  const wanted = formFields(root);
  const body = {};
  for (const input of $$("[name]", root)) {
    if (!wanted.has(input.name) || input.type === "file") continue;
    if (input.type === "checkbox") body[input.name] = input.checked;
    else if (input.value !== "") body[input.name] = NUMBERS.has(input.name) ? Number(input.value) : input.value;
  }
  return body;
}

// connectionPayload with the chosen files (certificates, keys) read in as text. A file too large
// to be PEM is refused here, named like a 400's field, rather than sent.
export async function connectionRequest(root) {
  const wanted = formFields(root);
  const body = connectionPayload(root);
  for (const input of $$("input[type=file][name]", root)) {
    const file = input.files && input.files[0];
    if (!file || !wanted.has(input.name)) continue;
    if (file.size > MAX_FILE) {
      const problem = `${file.name} is larger than ${MAX_FILE / 1024} KiB: choose the PEM file`;
      throw new ApiError({ message: `${input.name}: ${problem}`, details: [{ field: input.name, problem }] }, 400);
    }
    body[input.name] = await file.text();
  }
  return body;
}

// ---- testing a connection ---------------------------------------------------------------------

const isStep = (detail) => Boolean(detail && typeof detail === "object" && "step" in detail && "status" in detail);

// Runs the connection test: {ok, message, steps, serverVersion}. steps are the API's step objects
// ({step, title, status, detail, fix, fingerprint?}): a success's "steps", or a failed test's error
// details (502 network, TLS or SSH; 401 login; 409 a bastion host key to confirm). An error that is
// not a test's (no steps: the connection is gone, the server failed) is thrown as it came.
export async function testConnection(id) {
  try {
    const answer = await api(`/api/connections/${id}/test/`, { method: "POST", body: {} });
    return { ok: true, message: "", steps: Array.isArray(answer.steps) ? answer.steps : [], serverVersion: answer.server_version };
  } catch (e) {
    const steps = (e.details || []).filter(isStep);
    if (!steps.length) throw e;
    return { ok: false, message: e.message, steps, serverVersion: null };
  }
}

// Pins an SSH bastion's host key the user has confirmed; returns the connection as saved.
export async function trustHostKey(id, fingerprint) {
  return (await api(`/api/connections/${id}/host-key/`, { method: "POST", body: { fingerprint } })).connection;
}

const STEP_TITLES = {
  resolve: "Name resolution", tcp: "TCP connection", ssh: "SSH bastion", connector: "Cloud SQL connector",
  tls: "TLS", auth: "Login", catalog: "Catalog permission",
};
// A step's status as an icon (decoration only) and in words (what is read out).
const STEP_STATUS = {
  ok: ["✓", "OK"], failed: ["✗", "Failed"], skipped: ["–", "Skipped"], confirm: ["?", "Needs your confirmation"],
  warning: ["!", "Warning"],
};

// A test's steps as the items of an <ol class="checklist">: status icon and words, the detail, what
// to fix; a bastion host key to confirm shows its fingerprint and a "Trust this host key" button
// that calls onTrust(fingerprint, button).
export function stepItems(steps, onTrust) {
  return steps.map((step) => {
    const [icon, words] = STEP_STATUS[step.status] || ["•", step.status];
    const confirm = step.status === "confirm" && step.fingerprint && onTrust;
    return el("li", { class: "check", "data-step": step.step, "data-status": step.status },
      el("span", { class: "check-icon", "aria-hidden": "true", text: icon }),
      el("span", { class: "check-title", text: step.title || STEP_TITLES[step.step] || step.step }),
      el("span", { class: "check-status", text: words }),
      step.detail ? el("p", { class: "check-detail", text: step.detail }) : null,
      confirm ? el("p", { class: "check-fingerprint" }, "Host key fingerprint: ", el("code", { text: step.fingerprint })) : null,
      step.fix ? el("p", { class: "check-fix" }, el("strong", { text: "To fix: " }), step.fix) : null,
      confirm ? el("button", {
        type: "button", class: "primary", text: "Trust this host key",
        onclick: (event) => onTrust(step.fingerprint, event.currentTarget),
      }) : null);
  });
}

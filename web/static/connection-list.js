// Saved connections as every page lists them: one loader and one label, so a connection reads the
// same in the wizard, on the connections page and in the jobs page's Reconnect dialog.
import { api } from "./api.js";
import { $$ } from "./dom.js";

export async function fetchConnections() {
  return (await api("/api/connections/")).connections;
}

// Where a connection points; never the password, which the API does not send anyway.
export function connectionWhere(c) {
  return c.type === "bigquery" ? c.project : `${c.user}@${c.host}:${c.port}/${c.database}`;
}

export function connectionLabel(c) {
  return `${c.name} (${c.type}, ${connectionWhere(c)})`;
}

// The body of POST /api/connections/ from the named inputs under root; empty fields are left out
// so the server's defaults (the port) and its "is required" messages apply.
export function connectionPayload(root) {
  const body = {};
  for (const input of $$("[name]", root)) {
    if (input.value !== "") body[input.name] = input.name === "port" ? Number(input.value) : input.value;
  }
  return body;
}

// The fetch wrapper every page uses: JSON in, JSON out, and an ApiError for any answer that is
// not {"status": "success", ...}. How an error is shown is errors.js's job.

export class ApiError extends Error {
  constructor(body, status) {
    super(body.message || `Request failed (${status})`);
    this.status = status;
    this.details = Array.isArray(body.details) ? body.details : [];
    // The field a 400 is about, so a form can show the error next to it.
    this.field = (this.details[0] && this.details[0].field) || null;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {  // no answer at all: the browser's own words ("Failed to fetch") would not say so
    throw new ApiError({ message: `The server could not be reached (${e.message}). Try again in a moment.` }, 0);
  }
  let payload;
  try {
    payload = await response.json();
  } catch (e) {
    payload = { status: "error", message: `The server answered ${response.status} without JSON.` };
  }
  if (payload.status !== "success") throw new ApiError(payload, response.status);
  return payload;
}

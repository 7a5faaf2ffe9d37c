// How every page shows an error. An API error is {"status": "error", "message": ..., "details": [...]}
// where a detail is either a sentence ("Column x is not in the table.") or, for a 400 about a
// request field, an object {field, problem}, or for a failed connection test, its steps.
import { el } from "./dom.js";

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (detail && typeof detail === "object" && "step" in detail) {
    // a Test connection step: the message already says what failed; its fix is what is new
    return detail.status === "failed" || detail.status === "confirm" ? `${detail.title}: ${detail.fix || detail.detail}` : "";
  }
  if (detail && typeof detail === "object" && "problem" in detail) {
    return detail.field ? `${detail.field}: ${detail.problem}` : String(detail.problem);
  }
  return JSON.stringify(detail);  // a shape we do not know: still readable, never "[object Object]"
}

// The details worth showing under the message: a 400's message already reads "field: problem",
// so repeating its detail would say the same thing twice.
function extraDetails(error) {
  const message = error.message || "";
  return (error.details || []).map(detailText).filter((text) => text && !message.includes(text));
}

// Replaces target's content with the error's message and, as a list, the details it does not
// already say. Works for an ApiError, a plain Error, or a {message, details} the page made up.
export function showError(target, error) {
  const extra = extraDetails(error);
  const list = extra.map((text) => el("li", { text }));
  target.replaceChildren(error.message || String(error), ...(list.length ? [el("ul", { class: "details" }, ...list)] : []));
}

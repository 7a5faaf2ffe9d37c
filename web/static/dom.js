// Small DOM and formatting helpers shared by the pages.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// el("button", { type: "button", text: "Go", onclick: go }, child, ...): attributes, text and
// listeners in one call; false/null/undefined attributes and children are left out.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// A sample value as text: NULL for SQL NULL, JSON for records and arrays.
export function show(value) {
  if (value === null || value === undefined) return "NULL";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function formatBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}

// An SVG element (charts): attributes and an optional text, as el() makes HTML ones.
export function svg(tag, attributes = {}, text = "") {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

// fn, called once `ms` after the last of a burst of calls (typing); .now() calls it at once.
export function debounce(fn, ms) {
  let timer = null;
  const later = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  later.now = (...args) => {
    clearTimeout(timer);
    fn(...args);
  };
  return later;
}

// A job's health as the API gives it ({status, since, reason}): a badge with its reason on hover,
// and for failing and stuck, since when.
export function healthBadge(health) {
  if (!health) return el("span", { class: "health", text: "—" });
  const since = health.since && (health.status === "failing" || health.status === "stuck");
  return el("span", { class: "health-of" },
    el("span", { class: `health ${health.status}`, title: health.reason || null, text: health.status }),
    since ? el("span", { class: "health-since", text: ` since ${when(health.since)}` }) : null);
}

// Shared by every page: JSON calls to the API and small DOM helpers.
"use strict";

class ApiError extends Error {
  constructor(body, status) {
    super(body.message || `Request failed (${status})`);
    this.status = status;
    this.details = body.details || [];
    this.field = (this.details[0] && this.details[0].field) || null;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let payload;
  try {
    payload = await response.json();
  } catch (e) {
    payload = { status: "error", message: `The server answered ${response.status} without JSON.` };
  }
  if (payload.status !== "success") throw new ApiError(payload, response.status);
  return payload;
}

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

function el(tag, attributes = {}, ...children) {
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

function show(value) {
  if (value === null || value === undefined) return "NULL";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function formatBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}

const COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
  "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Singapore",
  "Asia/Kolkata", "Australia/Sydney"];

// The schedule fields shared by the wizard and the jobs page's Edit dialog.
function scheduleFrom(root) {
  const type = $("[data-schedule=type]", root).value;
  const schedule = { type, timezone: $("[data-schedule=timezone]", root).value.trim() || "UTC" };
  if (type === "hourly") schedule.time = String($("[data-schedule=minute]", root).value);
  if (["daily", "weekly", "monthly"].includes(type)) schedule.time = $("[data-schedule=time]", root).value;
  if (type === "weekly") schedule.day_of_week = $("[data-schedule=day_of_week]", root).value;
  if (type === "monthly") schedule.day_of_month = Number($("[data-schedule=day_of_month]", root).value);
  if (type === "cron") schedule.cron = $("[data-schedule=cron]", root).value.trim();
  return schedule;
}

function describeSchedule(job) {
  const s = job.schedule;
  if (s.type === "manual") return "Manual";
  return `${s.type} · ${job.cron} (${s.timezone})`;
}

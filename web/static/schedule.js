// The schedule fields shared by the wizard's last step and the jobs page's Edit dialog.
import { $ } from "./dom.js";

export const COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
  "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Singapore",
  "Asia/Kolkata", "Australia/Sydney"];

// The API's schedule object from the [data-schedule=...] fields under root.
export function scheduleFrom(root) {
  const type = $("[data-schedule=type]", root).value;
  const schedule = { type, timezone: $("[data-schedule=timezone]", root).value.trim() || "UTC" };
  if (type === "hourly") schedule.time = String($("[data-schedule=minute]", root).value);
  if (["daily", "weekly", "monthly"].includes(type)) schedule.time = $("[data-schedule=time]", root).value;
  if (type === "weekly") schedule.day_of_week = $("[data-schedule=day_of_week]", root).value;
  if (type === "monthly") schedule.day_of_month = Number($("[data-schedule=day_of_month]", root).value);
  if (type === "cron") schedule.cron = $("[data-schedule=cron]", root).value.trim();
  return schedule;
}

export function describeSchedule(job) {
  const s = job.schedule;
  if (s.type === "manual") return "Manual";
  return `${s.type} · ${job.cron} (${s.timezone})`;
}

// The jobs page: a page of jobs at a time as GET /api/etl/jobs/ serves them (search, filters by state
// and health, sort), each with its health, last and next run and the actions; its name opens the
// job's own page (job.js) with the run history.
import { api } from "./api.js";
import { fetchConnections } from "./connection-list.js";
import { $, $$, debounce, el, healthBadge, when } from "./dom.js";
import { showError } from "./errors.js";
import { actionButtons, useJobActions } from "./job-actions.js";
import { describeSchedule } from "./schedule.js";

const PAGE_SIZE = 50;
const SORTS = { name: "name", health: "health", last_run: "last run" };

// What is asked: kept in the address (?q=&state=&health=&sort=), so a reload or a shared link shows
// the same list. Pages: the token of each page seen so far (the API's tokens only go forward).
const query = { q: "", state: "", health: "", sort: "name" };
let tokens = [null];
let pageIndex = 0;
let listing = { jobs: [], total: 0, next_page_token: null };
let connections = [];
let refreshTimer = null;
let watchUntil = 0;  // after Run now, refresh quickly until the run shows up
let asked = 0;  // answers to an older question than the last are dropped
const highlighted = location.hash.startsWith("#job-") ? location.hash.slice(5) : null;  // the wizard's link

function readAddress() {
  const params = new URLSearchParams(location.search);
  for (const name of Object.keys(query)) if (params.get(name)) query[name] = params.get(name);
  $("#job-search").value = query.q;
  $("#job-state").value = query.state;
  $("#job-health").value = query.health;
}

function writeAddress() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value && !(name === "sort" && value === "name")) params.set(name, value);
  const search = params.toString();
  history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}${location.hash}`);
}

async function loadJobs() {
  const mine = ++asked;
  const params = new URLSearchParams({ page_size: PAGE_SIZE, sort: query.sort });
  for (const name of ["q", "state", "health"]) if (query[name].trim()) params.set(name, query[name].trim());
  if (tokens[pageIndex]) params.set("page_token", tokens[pageIndex]);
  let answer;
  try {
    [answer, connections] = await Promise.all([api(`/api/etl/jobs/?${params}`), fetchConnections()]);
  } catch (e) {
    if (mine !== asked) return;
    if (e.field === "page_token") return firstPage();  // the list moved on: start it again
    showError($("#jobs-status"), e);
    scheduleRefresh();
    return;
  }
  if (mine !== asked) return;
  if (!answer.jobs.length && pageIndex > 0) return firstPage();  // its jobs went (deleted, or filtered out)
  listing = answer;
  tokens = tokens.slice(0, pageIndex + 1).concat(answer.next_page_token ? [answer.next_page_token] : []);
  renderJobs();
  scheduleRefresh();
}

function firstPage() {
  tokens = [null];
  pageIndex = 0;
  return loadJobs();
}

function connectionName(id) {
  const c = connections.find((x) => x.id === id);
  return c ? c.name : `(deleted connection ${id})`;
}

function lastRun(job) {
  const r = job.last_run;
  if (!r) return "never";
  const rows = `${r.rows.toLocaleString()} rows`;
  return r.status === "running" ? `running: ${rows} so far` : `${r.status}, ${rows}, ${when(r.started_at)}`;
}

function renderJobs() {
  const { jobs, total } = listing;
  const filtered = Boolean(query.q.trim() || query.state || query.health);
  $("#no-jobs").hidden = total > 0 || filtered;
  $("#jobs-table").hidden = jobs.length === 0;
  const first = pageIndex * PAGE_SIZE + 1;
  const plural = total === 1 ? "job" : "jobs";
  $("#jobs-count").textContent = total === 0 ? (filtered ? "No jobs match." : "")
    : total === jobs.length ? `${total} ${plural}${filtered ? (total === 1 ? " matches" : " match") : ""}.`
      : `Jobs ${first} to ${first + jobs.length - 1} of ${total}${filtered ? " matching" : ""}.`;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  $("#jobs-pages").hidden = pages === 1 && pageIndex === 0;
  $("#page-position").textContent = `Page ${pageIndex + 1} of ${pages}`;
  $("#page-previous").disabled = pageIndex === 0;
  $("#page-next").disabled = !listing.next_page_token;
  renderSortHeaders();
  $("#jobs-table tbody").replaceChildren(...jobs.map((job) => el("tr", {
    id: `job-${job.id}`, "data-job": job.name, class: job.id === highlighted ? "highlight" : null },
  el("th", { scope: "row" }, el("a", { href: `/jobs/${job.id}`, text: job.name })),
  el("td", { text: `${connectionName(job.connection_id)}: ${job.schema_name}.${job.table_name}` }),
  el("td", { text: `${job.destination.dataset}.${job.destination.table}` }),
  el("td", { text: job.load_type === "transactional" ? `transactional (${job.timestamp_column})` : "catalog" }),
  el("td", { text: describeSchedule(job) }),
  el("td", { class: `state ${job.state}`, text: job.state }),
  el("td", { class: "health-cell" }, healthBadge(job.health)),
  el("td", { class: "last-run", text: lastRun(job) }),
  el("td", { text: job.next_runs.length ? when(job.next_runs[0]) : "—" }),
  el("td", { class: "actions" }, ...actionButtons(job)))));
}

// Sortable columns: a button in the header, its state in aria-sort (ascending first, then descending).
function renderSortHeaders() {
  for (const th of $$("#jobs-table th[data-sort]")) {
    const field = th.dataset.sort;
    const current = query.sort.replace(/^-/, "") === field ? (query.sort.startsWith("-") ? "descending" : "ascending") : null;
    if (current) th.setAttribute("aria-sort", current); else th.removeAttribute("aria-sort");
    const label = th.dataset.label || (th.dataset.label = th.textContent);
    th.replaceChildren(el("button", { type: "button", class: "sort",
      "aria-label": `Sort by ${SORTS[field]}${current === "ascending" ? ", descending" : ""}`,
      onclick: () => sortBy(current === "ascending" ? `-${field}` : field) },
    label, el("span", { class: "sort-mark", "aria-hidden": "true", text: current === "ascending" ? " ▲" : current ? " ▼" : "" })));
  }
}

function sortBy(sort) {
  query.sort = sort;
  writeAddress();
  firstPage();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const running = listing.jobs.some((j) => j.last_run && j.last_run.status === "running");
  refreshTimer = setTimeout(loadJobs, running || Date.now() < watchUntil ? 1500 : 10000);
}

// ---- finding jobs ------------------------------------------------------------------------------

const search = debounce(() => {
  query.q = $("#job-search").value;
  writeAddress();
  firstPage();
}, 250);
$("#job-search").addEventListener("input", search);
$("#jobs-filter").addEventListener("submit", (event) => { event.preventDefault(); search.now(); });
for (const [id, name] of [["#job-state", "state"], ["#job-health", "health"]]) {
  $(id).addEventListener("change", () => {
    query[name] = $(id).value;
    writeAddress();
    firstPage();
  });
}
$("#page-previous").addEventListener("click", () => { pageIndex = Math.max(0, pageIndex - 1); loadJobs(); });
$("#page-next").addEventListener("click", () => {
  if (tokens[pageIndex + 1]) { pageIndex += 1; loadJobs(); }
});

useJobActions({
  status: $("#jobs-status"),
  reload: loadJobs,
  afterRun: () => { watchUntil = Date.now() + 30000; },
});

readAddress();
loadJobs();

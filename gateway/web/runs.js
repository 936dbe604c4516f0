// Runs as the job page and the runs page show them: filters (status, and on the runs page job
// and trigger), pages of 50 newest first ("before" cursors from the API: a page stays the same
// while new runs arrive), "51–100 of 500", a Retry button on a failed run, and the chart of
// duration and lateness per run.

import { api, el, local, msText, status, table, usd, withQuery, goQuery } from "./common.js";
import { chart } from "./charts.js";
import { queryEnum } from "./form.js";

export const PAGE_SIZE = 50;
const RETRYABLE = new Set(["failed", "timeout", "interrupted"]);
// the cursor of the page before each page seen (the "Newer" button), by cursor
const newer = new Map();

// how a run's result went out: nothing when delivered, else silent or the policy's reason
function deliveryNote(run) {
  if (!run.suppressed) return null;
  return el("div", { class: "muted quiet", title: run.suppressed_reason || "" },
    run.silent ? "silent" : `not delivered: ${run.suppressed_reason}`);
}

function retryButton(run) {
  if (!RETRYABLE.has(run.status)) return "";
  return el("button", { type: "button", class: "retry", "aria-label": `Retry the ${run.status} run of ${run.job_name} started ${local(run.started_at)}`,
    "data-action": `POST api/runs/${encodeURIComponent(run.id)}/retry`, "data-once": "yes" }, "Retry");
}

export function runsTable(runs, withJob) {
  const headers = [withJob ? "Job" : null, "Started", "Status", "Duration", "Late", "Attempt", "Trigger", "Model", "Cost", "Result", ""]
    .filter((h) => h !== null);
  return table("runs", headers, runs.map((run) => [String(run.id), [
    withJob ? el("a", { href: `#/job/${encodeURIComponent(run.job_id)}` }, run.job_name) : null,
    local(run.started_at),
    el("span", {}, status(run.status), deliveryNote(run)),
    msText(run.duration_ms),
    msText(run.late_ms),
    String(run.attempt),
    run.trigger,
    // which model ran it: each model asked that answered (a fallback, an escalation), in order
    (run.usages || []).map((u) => u.model).join(" → ") || run.model || "-",
    usd(run.cost_usd, run.status),
    el("details", {}, el("summary", {}, (run.result || run.error || "").slice(0, 60) || "-"),
      el("pre", { class: "result" }, run.result || run.error || "")),
    el("td", { "data-label": "Actions", class: "run-actions" }, retryButton(run)),
  ].filter((cell) => cell !== null), { "data-run": run.id }]), "Runs");
}

// A <select> of a filter: "" (any) and the API's own values.
function filterSelect(id, label, values, current) {
  return el("div", { class: "filter" }, el("label", { for: id }, label),
    el("select", { id, name: id.replace(/^filter-/, ""), "data-filter": "yes" },
      el("option", { value: "" }, "any"),
      values.map((v) => el("option", { value: v, selected: v === current }, v))));
}

// The filters of a list of runs: changing one goes to the first page of the new list.
async function runFilters(query, withJob) {
  const statuses = await queryEnum("/api/runs", "status");
  const triggers = withJob ? await queryEnum("/api/runs", "trigger") : [];
  const form = el("form", { class: "filters row", role: "search", "aria-label": "Filter runs" },
    filterSelect("filter-status", "Status", statuses, query.status || ""),
    triggers.length ? filterSelect("filter-trigger", "Trigger", triggers, query.trigger || "") : null,
    withJob ? el("div", { class: "filter" }, el("label", { for: "filter-job" }, "Job (name or id)"),
      el("input", { id: "filter-job", name: "job", value: query.job || "", "data-filter": "yes" })) : null);
  const apply = () => {
    const chosen = {};
    for (const field of form.querySelectorAll("[data-filter]")) chosen[field.name] = field.value.trim();
    goQuery(chosen);
  };
  form.addEventListener("change", apply);
  form.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  return form;
}

// "Runs 51–100 of 500" and the buttons to the pages around it.
function pager(answer, query, shown) {
  const offset = Number(query.offset || 0);
  const total = answer.total;
  const counted = total === undefined ? `${shown} runs`
    : shown ? `Runs ${(offset + 1).toLocaleString("en")}–${(offset + shown).toLocaleString("en")} of ${total.toLocaleString("en")}`
      : `0 of ${total.toLocaleString("en")} runs`;
  const rest = { ...query };
  delete rest.before; delete rest.offset;
  // where each button goes (read when pressed, so a button kept by an update goes where it
  // says now): older, the API's next cursor; newer, the page that led here
  if (answer.next) newer.set(answer.next, { before: query.before || "", offset: String(offset) });
  const back = newer.get(query.before);
  const go = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  return el("nav", { class: "pager", "aria-label": "Pages of runs", "data-key": "pager" },
    el("button", { type: "button", "data-go": go(back ? { ...rest, ...back } : rest), disabled: !query.before }, "Newer"),
    el("span", { class: "pager-count", role: "status" }, counted),
    el("button", { type: "button", "data-go": go({ ...rest, before: answer.next, offset: String(offset + shown) }),
      disabled: !answer.next }, "Older"));
}

// The runs section of a page: filters, the page of runs, the pager. path: the API's list
// (api/runs or api/jobs/{id}/runs); query: the page's address query.
export async function runsSection(path, query, withJob) {
  const params = { status: query.status, limit: PAGE_SIZE, before: query.before };
  if (withJob) Object.assign(params, { job: query.job, trigger: query.trigger });
  const [answer, filters] = await Promise.all([api("GET", withQuery(path, params)), runFilters(query, withJob)]);
  const runs = answer.runs;
  const filtered = query.status || query.job || query.trigger;
  return [filters, pager(answer, query, runs.length),
    runs.length ? runsTable(runs, withJob)
      : el("p", { class: "muted" }, filtered ? "No runs match these filters." : "No runs yet."),
    runs, answer];
}

// Duration and lateness of each run shown (oldest first), on two scales.
export function runsChart(key, runs) {
  const timed = runs.filter((r) => r.started_at).slice().reverse();
  return chart(key, {
    label: `Duration and lateness of the last ${timed.length} runs`,
    kind: "lines",
    x: timed.map((r) => new Date(r.started_at).getTime() / 1000),
    series: [
      { label: "Duration (ms)", values: timed.map((r) => r.duration_ms), color: "--accent" },
      { label: "Late (ms)", values: timed.map((r) => r.late_ms), color: "--warn", scale: "late" },
    ],
  });
}

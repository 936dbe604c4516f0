// The jobs page: every job the person may see, with a search and filters (state, owner,
// schedule kind) applied in the page: typing never redraws, and a live update keeps them
// (each draw hides the rows the address's filters leave out).

import { api, el, local, relative, status, table, show, address } from "./common.js";

export const pageState = { understood: null };  // the "understood as" card of the last add

const STATES = ["enabled", "paused", "failing", "running"];
const KINDS = { cron: "cron", interval: "every", once: "once" };

// every link and API call names a job by its id: a name may be anything a person typed, an id
// is 32 hex digits, which no URL can misread (buttons say what they do in data-action; one
// listener in app.js acts, so a button kept by an update acts on what it says now)
export function actions(job) {
  const id = encodeURIComponent(job.id);
  const act = (label, method, path, confirmText) => el("button", {
    type: "button", "aria-label": `${label} ${job.name}`,
    "data-action": `${method} ${path}`, "data-confirm": confirmText,
  }, label);
  return el("div", { class: "actions" },
    job.enabled ? act("Pause", "POST", `api/jobs/${id}/pause`) : act("Resume", "POST", `api/jobs/${id}/resume`),
    act("Run now", "POST", `api/jobs/${id}/run`),
    act("Remove", "DELETE", `api/jobs/${id}`, `Remove ${job.name} and its run history?`),
  );
}

// silent answers and runs its notify policy kept back, when there are any
function quietCounts(job) {
  const parts = [job.silent_runs ? `${job.silent_runs} silent` : null,
    job.suppressed_runs ? `${job.suppressed_runs} not delivered` : null].filter(Boolean);
  return parts.length ? el("div", { class: "muted quiet" }, parts.join(" · ")) : null;
}

function states(job) {
  return [job.enabled ? "enabled" : "paused",
    job.last_status === "failed" || job.last_status === "timeout" || job.consecutive_failures > 0 ? "failing" : null,
    job.running > 0 ? "running" : null].filter(Boolean);
}

// Does a row (its data-*) pass the filters of `query`?
function passes(row, query) {
  const text = (query.q || "").trim().toLowerCase();
  if (text && !row.dataset.text.includes(text)) return false;
  if (query.state && !row.dataset.states.split(" ").includes(query.state)) return false;
  if (query.owner && row.dataset.owner !== query.owner) return false;
  if (query.kind && row.dataset.kind !== query.kind) return false;
  return true;
}

function countText(shown, all) {
  return shown === all ? `Jobs (${all})` : `Jobs (${shown} of ${all})`;
}

// Hide the rows the filters leave out (drawn rows, or the rows on screen when one changes).
function applyFilters(root, query) {
  const rows = [...root.querySelectorAll("tr[data-job]")];
  let shown = 0;
  for (const row of rows) {
    const keep = passes(row, query);
    row.hidden = !keep;
    if (keep) shown += 1;
  }
  const heading = root.querySelector("h2");
  if (heading) heading.textContent = countText(shown, rows.length);
  const none = root.querySelector("#no-match");
  if (none) none.hidden = shown > 0 || rows.length === 0;
}

function filterBar(query, owners) {
  const select = (name, label, values) => el("div", { class: "filter" },
    el("label", { for: `jobs-${name}` }, label),
    el("select", { id: `jobs-${name}`, name },
      el("option", { value: "" }, "any"),
      values.map(([value, text]) => el("option", { value, selected: value === (query[name] || "") }, text))));
  const form = el("form", { class: "filters row", role: "search", "aria-label": "Search and filter jobs" },
    el("div", { class: "filter" }, el("label", { for: "jobs-q" }, "Search"),
      el("input", { id: "jobs-q", name: "q", type: "search", value: query.q || "", placeholder: "name, prompt, description" })),
    select("state", "State", STATES.map((s) => [s, s])),
    owners.length > 1 ? select("owner", "Owner", owners.map((o) => [o, o || "agent"])) : null,
    select("kind", "Schedule kind", Object.entries(KINDS)));
  const change = () => {
    const chosen = {};
    for (const field of form.elements) if (field.name && field.value.trim()) chosen[field.name] = field.value.trim();
    const text = new URLSearchParams(chosen).toString();
    history.replaceState(null, "", text ? `#/jobs?${text}` : "#/jobs");  // no redraw
    applyFilters(document.getElementById("page"), chosen);
  };
  form.addEventListener("input", change);
  form.addEventListener("submit", (event) => { event.preventDefault(); change(); });
  return form;
}

export async function jobsPage() {
  const { jobs } = await api("GET", "api/jobs");
  const [, , query] = address();
  const owners = [...new Set(jobs.map((j) => j.user_id || ""))].sort();
  const headers = ["Name", "Schedule", "Next run", "Last status", "Runs", "Tokens", ""];
  const rows = jobs.map((job) => [job.id, [
    [el("a", { href: `#/job/${encodeURIComponent(job.id)}` }, job.name),
      job.description ? el("div", { class: "muted" }, job.description) : null],
    [job.schedule.in_words, el("div", { class: "muted" }, `${job.schedule.text} · ${job.timezone}`)],
    el("td", { "data-label": "Next run", class: "next-run" },
      job.enabled ? `${local(job.next_run, job.timezone)} (${relative(job.next_run)})` : "paused"),
    status(job.last_status),
    el("td", { "data-label": "Runs" }, `${job.stats.runs}`,
      job.stats.errors ? el("span", { class: "status-failed" }, ` (${job.stats.errors} failed)`) : null,
      quietCounts(job)),
    job.stats.prompt_tokens + job.stats.completion_tokens
      ? `${job.stats.prompt_tokens.toLocaleString()} in / ${job.stats.completion_tokens.toLocaleString()} out` : "-",
    el("td", { "data-label": "Actions" }, actions(job)),
  ], {
    "data-job": job.name, "data-owner": job.user_id || "", "data-kind": job.schedule.kind,
    "data-states": states(job).join(" "),
    "data-text": [job.name, job.prompt, job.description || ""].join(" ").toLowerCase(),
  }]);
  const drawn = el("div", {},
    el("h2", {}, `Jobs (${jobs.length})`),
    jobs.length ? filterBar(query, owners) : null,
    jobs.length ? table("jobs", headers, rows, "Jobs")
      : el("p", {}, "No jobs yet. ", el("a", { href: "#/add" }, "Add one")),
    el("p", { id: "no-match", class: "muted", hidden: true }, "No job matches these filters."));
  applyFilters(drawn, query);
  return show(pageState.understood, ...drawn.childNodes);
}

export function interpretationCard(job, i) {
  return el("div", { class: "card", id: "understood", role: "status" },
    el("p", {}, `Added ${job.name}: “${i.phrase}” was understood as: ${i.in_words}`),
    el("p", { class: "muted" }, i.schedule + (i.delete_after_run ? " · deleted after it runs" : "")),
    el("ol", {}, i.next_runs.map((t) => el("li", {}, `${local(t, i.timezone)} (${relative(t)})`))));
}

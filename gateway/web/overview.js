// The overview at "/": counts, runs and failures per hour over the last 24 h (a chart, drawn
// as soon as api/overview answers), what is running now with its elapsed time (ticking in
// place, app.js), failing and paused jobs, dead deliveries.

import { api, el, local, show, table, status } from "./common.js";
import { chart } from "./charts.js";

const COUNTS = [
  ["jobs", "Jobs", "#/jobs"], ["enabled", "Enabled", "#/jobs?state=enabled"],
  ["paused", "Paused", "#/jobs?state=paused"], ["failing", "Failing", "#/jobs?state=failing"],
  ["running", "Running now", "#/runs?status=running"], ["dead_deliveries", "Dead deliveries", "#/deliveries"],
];

// "3m 05s" since `iso`
export function elapsed(iso) {
  const secs = Math.max(0, Math.floor((Date.now() - new Date(iso)) / 1000));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}h ${two(m)}m ${two(s)}s` : m ? `${m}m ${two(s)}s` : `${s}s`;
}

function jobList(kind, jobs, empty, note) {
  if (!jobs.length) return el("p", { class: "muted", "data-key": `${kind}-none` }, empty);
  return el("ul", { class: "card job-list", "data-key": `${kind}-list` }, jobs.map((job) =>
    el("li", { "data-key": `${kind}-${job.id}` },
      el("a", { href: `#/job/${encodeURIComponent(job.id)}` }, job.name), " ", note(job))));
}

export async function overviewPage() {
  const o = await api("GET", "api/overview");
  const runs = o.hours.reduce((n, h) => n + h.runs, 0);
  const failures = o.hours.reduce((n, h) => n + h.failures, 0);
  return show(
    el("h2", {}, "Overview"),
    el("ul", { class: "counts", "aria-label": "Counts" }, COUNTS.map(([key, label, href]) =>
      el("li", { "data-key": `count-${key}` }, el("a", { href, class: `count count-${key}` },
        el("strong", {}, String(o.counts[key] ?? 0)), el("span", {}, label))))),
    el("h3", {}, "Runs per hour, last 24 hours"),
    chart("overview-hours", {
      label: `Runs and failures per hour over the last 24 hours: ${runs} runs, ${failures} failed`,
      kind: "bars",
      x: o.hours.map((h) => new Date(h.start).getTime() / 1000),
      series: [
        { label: "Runs", values: o.hours.map((h) => h.runs), color: "--accent" },
        { label: "Failures", values: o.hours.map((h) => h.failures), color: "--bad" },
      ],
    }),
    el("p", { class: "muted", id: "hours-total" }, `${runs} runs, ${failures} failed in the last 24 hours`),
    el("h3", {}, "Running now"),
    o.running.length ? table("running", ["Job", "Started", "Elapsed", "Attempt", "Trigger"], o.running.map((r) => [String(r.id), [
      el("a", { href: `#/job/${encodeURIComponent(r.job_id)}` }, r.job_name),
      local(r.started_at),
      el("span", { class: "elapsed", "data-since": r.started_at }, elapsed(r.started_at)),
      String(r.attempt), r.trigger,
    ], { "data-run": r.id }]), "Running now") : el("p", { class: "muted" }, "Nothing is running."),
    el("h3", {}, "Failing"),
    jobList("failing", o.failing, "No job is failing.", (j) => el("span", {}, status(j.last_status),
      j.consecutive_failures ? el("span", { class: "muted" }, ` · ${j.consecutive_failures} in a row`) : null,
      j.last_error ? el("div", { class: "muted quiet" }, j.last_error.slice(0, 120)) : null)),
    el("h3", {}, "Paused"),
    jobList("paused", o.paused, "No job is paused.", (j) => el("span", { class: "muted" }, j.paused_reason ? `(${j.paused_reason})` : "")),
    el("h3", {}, "Dead deliveries"),
    el("p", {}, o.counts.dead_deliveries
      ? el("a", { href: "#/deliveries" }, `${o.counts.dead_deliveries} dead deliveries`)
      : el("span", { class: "muted" }, "None.")),
  );
}

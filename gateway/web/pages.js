// The runs page (every run the person may see, filtered and paged), usage and dead deliveries.

import { api, el, show, table, usd, address } from "./common.js";
import { runsSection } from "./runs.js";

export async function runsPage() {
  const [, , query] = address();
  const [filters, pager, list] = await runsSection("api/runs", query, true);
  return show(el("h2", {}, "Runs"), filters, pager, list);
}

function spentCells(spent) {
  return ["today", "month", "total"].map((p) => {
    const s = spent[p];
    return `${usd(s.cost_usd)} · ${s.tokens.toLocaleString("en")} tok · ${s.runs} runs`
      + (s.unpriced_runs ? ` (${s.unpriced_runs} unknown)` : "");
  });
}

// What runs cost and used: per job (today and this month in its zone, in total), per owner,
// in total (admins) and per model; from /api/usage, which shows each what they may see.
export async function usagePage() {
  const usage = await api("GET", "api/usage");
  const heads = ["Today", "This month", "In total"];
  const parts = [el("h2", {}, "Usage")];
  if (usage.total) {
    parts.push(table("usage", ["Everyone", ...heads], [["total", ["all jobs", ...spentCells(usage.total)]]]));
  }
  parts.push(el("h3", {}, "Per job"), usage.jobs.length
    ? table("usage", ["Job", ...heads], usage.jobs.map((j) => [j.job_id, [
      el("a", { href: `#/job/${encodeURIComponent(j.job_id)}` }, j.job_name), ...spentCells(j)]]))
    : el("p", { class: "muted" }, "No jobs."));
  if (usage.owners.length) {
    parts.push(el("h3", {}, "Per owner"), table("usage", ["Owner", ...heads],
      usage.owners.map((o) => [o.owner, [o.owner, ...spentCells(o)]])));
  }
  const models = Object.entries(usage.models);
  if (models.length) {
    parts.push(el("h3", {}, "Per model, in total"), table("usage", ["Model", "Cost", "Tokens", "Runs"],
      models.map(([m, s]) => [m, [m, usd(s.cost_usd), s.tokens.toLocaleString("en"), String(s.runs)]])));
  }
  return show(...parts);
}

export async function deliveriesPage() {
  const { deliveries, counts } = await api("GET", "api/deliveries?status=dead");
  return show(el("h2", {}, "Dead deliveries"),
    el("p", { class: "muted" }, Object.entries(counts).map(([s, n]) => `${s}: ${n}`).join(" · ")),
    deliveries.length ? table("deliveries", ["Job", "To", "Attempts", "Error", ""], deliveries.map((d) => [String(d.id), [
      d.job_name, d.destination, String(d.attempts), d.last_error || "",
      el("button", { type: "button", "aria-label": `Retry the delivery of ${d.job_name} to ${d.destination}`,
        "data-action": `POST api/deliveries/${d.id}/retry` }, "Retry"),
    ]]))
      : el("p", { class: "muted" }, "No dead deliveries."));
}

// What fires next: the next 24 hours or 7 days drawn as a timeline (one row per job, a point
// per fire), never silently cut: the API counts every fire in the window ("total") and the
// page says how many it shows.

import { api, el, local, relative, show, table, address } from "./common.js";
import { chart } from "./charts.js";

const SPANS = [["24", "Next 24 hours"], ["168", "Next 7 days"]];

export async function timelinePage() {
  const [, , query] = address();
  const hours = SPANS.some(([h]) => h === query.hours) ? query.hours : "24";
  const answer = await api("GET", `api/timeline?hours=${hours}`);
  const fires = answer.fires;
  const total = answer.total ?? fires.length;
  const names = [...new Set(fires.map((f) => f.job))];
  const index = new Map(names.map((n, i) => [n, i]));
  const shown = fires.length.toLocaleString("en");
  const all = `${answer.total_is_lower_bound ? "at least " : ""}${total.toLocaleString("en")}`;
  const last = fires.length ? fires[fires.length - 1].at : null;
  const words = !fires.length ? `Nothing fires in the ${hours === "24" ? "next 24 hours" : "next 7 days"}.`
    : answer.truncated || fires.length < total
      ? `Showing ${shown} of ${all} fires: the first ${shown}, until ${local(last)}.`
      : `Showing all ${shown} fires.`;
  const perJob = names.map((n) => {
    const mine = fires.filter((f) => f.job === n);
    return [mine[0].job_id, [el("a", { href: `#/job/${encodeURIComponent(mine[0].job_id)}` }, n),
      String(mine.length), `${local(mine[0].at)} (${relative(mine[0].at)})`]];
  });
  return show(
    el("h2", {}, SPANS.find(([h]) => h === hours)[1]),
    el("nav", { class: "actions", "aria-label": "Time span" }, SPANS.map(([h, label]) =>
      el("a", { href: `#/timeline?hours=${h}`, class: "button", "aria-current": h === hours ? "true" : undefined }, label))),
    el("p", { id: "timeline-count", role: "status" }, words),
    fires.length ? chart("timeline", {
      label: `${words} One row per job, a point per fire.`,
      kind: "points", height: Math.min(600, 60 + 28 * names.length),
      x: fires.map((f) => new Date(f.at).getTime() / 1000),
      yNames: names,
      series: [{ label: "Fires", values: fires.map((f) => index.get(f.job)), color: "--accent" }],
    }) : null,
    fires.length ? table("timeline", ["Job", "Fires shown", "First"], perJob, "Fires per job") : null,
  );
}

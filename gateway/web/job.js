// A job's page: its fields, its actions, an Edit form (the add form's fields and previews,
// prefilled; saved with PATCH, only what changed), the chart of its runs' duration and
// lateness, and its run history with a status filter, pages and Retry.

import { api, el, local, relative, show, durationText, address } from "./common.js";
import { fieldLabel } from "./form.js";
import { jobForm } from "./jobform.js";
import { actions } from "./jobs.js";
import { runsSection, runsChart } from "./runs.js";

// The edit form of the job shown, made once per visit: live updates keep it (and what is
// typed in it) as it is.
let editing = null;  // { id, form }

const SHOWN_ABOVE = new Set(["name", "prompt", "schedule", "timezone", "enabled", "next_run",
  "last_status", "last_error", "retry_count", "max_retries", "timeout_secs", "session_mode",
  "jitter_secs", "overlap", "max_instances", "running", "user_id", "id"]);

// [the fields shown first, every other field of the job]
function fieldsOf(job) {
  const fields = [
    ["Prompt", job.prompt], ["Schedule", `${job.schedule.in_words} (${job.schedule.text})`],
    ["Time zone", job.timezone],
    ["Enabled", job.enabled ? "yes" : "no (paused)"],
    ["Next run", `${local(job.next_run, job.timezone)} ${relative(job.next_run)}`],
    ["Last status", job.last_status || "-"], ["Last error", job.last_error || "-"],
    ["Retries", `${job.retry_count} of ${job.max_retries}`], ["Timeout", durationText(job.timeout_secs)],
    ["Session", job.session_mode],
    ["Jitter", job.jitter_secs ? `up to ${durationText(job.jitter_secs)} (next run includes it)` : "none"],
    ["Overlap", job.overlap + (job.max_instances > 1 ? `, up to ${job.max_instances} at once` : "")],
    ["Running now", String(job.running)],
    ...(job.max_runs === null ? [] : [["Runs left", String(Math.max(0, job.max_runs - job.finished_runs))]]),
    ["Owner", job.user_id || "agent"], ["Id", job.id],
  ];
  // every other field of the job's view as it is, so a new declared field shows here too
  const more = [];
  for (const [key, value] of Object.entries(job)) {
    if (SHOWN_ABOVE.has(key) || (value !== null && typeof value === "object" && !Array.isArray(value))) continue;
    const text = value === null ? "-" : value === true ? "yes" : value === false ? "no"
      : Array.isArray(value) ? value.join(", ") || "-"
        : key.endsWith("_secs") && typeof value === "number" ? durationText(value) : String(value);
    const time = typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:/.test(value);
    more.push([fieldLabel(key), time ? local(value, job.timezone) : text]);
  }
  return [fields, more];
}

function fieldList(fields, attrs) {
  return el("dl", attrs, fields.map(([k, v]) => [el("dt", { class: "muted", "data-key": `dt-${k}` }, k),
    el("dd", { "data-key": `dd-${k}` }, v)]));
}

export async function jobPage(id, update) {
  const [, , query] = address();
  const path = `api/jobs/${encodeURIComponent(id)}`;
  const [{ job }, [filters, pager, list, runs]] = await Promise.all([
    api("GET", path), runsSection(`${path}/runs`, query, false),
  ]);
  if (!update || !editing || editing.id !== job.id) {
    const form = await jobForm(job, async () => {
      editing = null;
      document.title = `starpod-cron · saved ${job.name}`;
      window.dispatchEvent(new HashChangeEvent("hashchange"));  // drawn anew, as saved
    });
    editing = { id: job.id, form: el("details", { class: "edit", "data-key": "edit" },
      el("summary", {}, "Edit"), form) };
  }
  const [fields, more] = fieldsOf(job);
  return show(
    el("h2", {}, job.name),
    actions(job),
    fieldList(fields, { class: "card" }),
    el("details", { class: "more", "data-key": "more" }, el("summary", {}, "All fields"),
      fieldList(more, { class: "fields", id: "all-fields" })),
    editing.form,
    el("h3", {}, "Runs"),
    runs.length ? runsChart("job-runs", runs) : null,
    filters, pager, list,
  );
}

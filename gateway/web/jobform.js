// The job form, the same for adding a job and editing one: the name, the prompt and the
// schedule by hand; every other field from the API's description of a job (form.js); a live
// preview of the next fires (api/preview) and of what its runs would do (api/jobs/preview:
// model, messages, tools, cost; for an edit, the change over the job's current fields).

import { api, el, local, relative, browserZone, session } from "./common.js";
import { jobFieldInputs } from "./form.js";

const PLACEHOLDERS = { cron: "0 9 * * 1-5", every: "30m", at: "tomorrow 9:00", in: "20m", when: "every weekday at 9:00" };

// A job's schedule as the form's kind and text: "every 2h" -> ["every", "2h"].
function scheduleOf(job) {
  const text = job.schedule.text;
  if (job.schedule.kind === "cron") return ["cron", text.replace(/^cron /, "")];
  if (job.schedule.kind === "interval") return ["every", text.replace(/^every /, "")];
  return ["at", text.replace(/^once at /, "")];
}

// The form's nodes and what it sends: job null -> the add form (POST api/jobs), else the edit
// form of that job (PATCH api/jobs/{id}, only what changed). onSaved(answer) after a save.
export async function jobForm(job, onSaved) {
  const edit = job !== null;
  const pre = edit ? "edit-" : "";  // ids unique on the page
  const [startKind, startWhen] = edit ? scheduleOf(job) : ["cron", ""];
  const preview = el("div", { id: `${pre}preview`, "aria-live": "polite", class: "muted" });
  const kind = el("select", { id: `${pre}kind`, name: "kind" },
    Object.keys(PLACEHOLDERS).map((k) => el("option", { value: k, selected: k === startKind }, k === "when" ? "when (in words)" : k)));
  const when = el("input", { id: `${pre}when`, name: "when", required: !edit, value: startWhen,
    placeholder: PLACEHOLDERS[startKind] });
  const [inputs, given] = await jobFieldInputs(session.me.admin, job);
  const name = el("input", { id: `${pre}name`, name: "name", value: edit ? job.name : undefined,
    placeholder: edit ? undefined : "standup (optional)" });
  const prompt = el("textarea", { id: `${pre}prompt`, name: "prompt", required: true, rows: 3 }, edit ? job.prompt : "");
  const form = el("form", { class: "card job-form", id: edit ? "edit-form" : "add-form", "aria-label": edit ? `Edit ${job.name}` : "Add a job" },
    el("label", { for: `${pre}name` }, "Name"), name,
    el("label", { for: `${pre}prompt` }, "Prompt"), prompt,
    el("div", { class: "row" },
      el("div", {}, el("label", { for: `${pre}kind` }, "Schedule kind"), kind),
      el("div", {}, el("label", { for: `${pre}when` }, "When"), when)),
    inputs,
    el("h3", {}, "Next fires"), preview,
    el("h3", {}, "What its runs would do"),
    el("pre", { id: `${pre}job-preview`, "aria-live": "polite", class: "muted" }, "…"),
    el("p", { id: `${pre}form-error`, class: "error", role: "alert" }),
    el("button", { type: "submit", class: "primary" }, edit ? "Save changes" : "Add job"),
  );
  const zone = form.elements.namedItem("timezone");  // the preview reads the job's zone
  if (zone && !zone.value) zone.value = browserZone;  // the browser's zone unless changed
  const schedule = () => {
    const data = { [kind.value]: when.value.trim() };
    if (zone && zone.value.trim()) data.timezone = zone.value.trim();
    return data;
  };
  const scheduleChanged = () => !edit || kind.value !== startKind || when.value.trim() !== startWhen;
  // what is sent: everything for an add; for an edit, only what differs from the job
  const body = () => {
    const data = given();
    if (!edit) {
      Object.assign(data, { prompt: prompt.value, ...schedule() });
      if (name.value.trim()) data.name = name.value.trim();
      return data;
    }
    if (prompt.value !== job.prompt) data.prompt = prompt.value;
    if (name.value.trim() && name.value.trim() !== job.name) data.rename = name.value.trim();
    if (scheduleChanged() && when.value.trim()) data[kind.value] = when.value.trim();
    return data;
  };
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!when.value.trim()) { preview.replaceChildren("…"); return; }
      try {
        const fires = await api("POST", "api/preview", schedule());
        preview.replaceChildren(el("p", {}, fires.in_words),
          fires.schedule ? el("p", { id: `${pre}preview-schedule`, class: "muted" }, fires.schedule) : null,
          el("ol", { id: `${pre}preview-list` },
            fires.next_runs.map((t) => el("li", {}, `${local(t, fires.timezone)} (${relative(t)})`))));
      } catch (error) { preview.replaceChildren(el("span", { class: "error" }, error.message)); }
      // the whole job as it would be saved: model, messages, tools, cost (cron_preview)
      const shown = form.querySelector(`#${pre}job-preview`);
      if (!prompt.value.trim()) { shown.textContent = "…"; return; }
      try {
        const changes = body();
        delete changes.rename;
        const asked = edit ? { job: job.id, ...changes } : changes;
        shown.textContent = (await api("POST", "api/jobs/preview", asked)).message;
      } catch (error) { shown.textContent = error.message; }
    }, 250);
  };
  form.addEventListener("input", refresh);  // every field changes the preview
  form.addEventListener("change", refresh);
  kind.addEventListener("change", () => { when.placeholder = PLACEHOLDERS[kind.value]; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(`#${pre}form-error`);
    try {
      const sent = body();
      const answer = edit ? await api("PATCH", `api/jobs/${encodeURIComponent(job.id)}`, sent)
        : await api("POST", "api/jobs", sent);
      error.textContent = "";
      onSaved(answer);
    } catch (failure) { error.textContent = failure.message; }
  });
  if (edit) refresh();
  return form;
}

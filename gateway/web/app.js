// The starpod-cron dashboard: plain JavaScript over the JSON API (api/...), live through the
// gateway's WebSocket events (/ws on this same port). No build step, no CDN. Every address is
// relative to the page, so the dashboard works under a path prefix behind a reverse proxy.
"use strict";

const page = document.getElementById("page");
let me = null;
// What the last job added in words was understood as (cron_add's interpretation), shown above
// the jobs until another page is opened.
let understood = null;
// The tab secret the log-in handed to this tab (handover.js): the login cookie alone is
// refused, since browsers send it to every port of this host.
const secret = sessionStorage.getItem("starpod-csrf") || "";

async function api(method, path, body) {
  const options = { method, headers: { "X-Starpod-CSRF": secret }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json();
  if (response.status === 401 || (data.error && data.error.code === "csrf")) {
    location.href = "login";  // logged out, or this tab never logged in
    throw new Error("logged out");
  }
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function relative(iso) {
  if (!iso) return "";
  const secs = Math.round((new Date(iso) - Date.now()) / 1000);
  const abs = Math.abs(secs);
  const [n, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "m"]
    : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  return secs >= 0 ? `in ${n}${unit}` : `${n}${unit} ago`;
}

// "2026-12-03 09:00:00 CET": to the second, with the zone (the job's, else the browser's)
function local(iso, zone) {
  if (!iso) return "-";
  try {
    return new Date(iso).toLocaleString("sv-SE", { timeZone: zone || undefined, timeZoneName: "short",
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23" });
  } catch (_) { return iso; }
}

// The browser's own zone: what the add form offers by default.
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function status(value) {
  return el("span", { class: `status-${value || "none"}` }, value || "-");
}

// A page function draws its page as fresh nodes (show() collects them); route() puts them on
// screen: a new page replaces what was shown, an update of the page shown turns the nodes on
// screen into the fresh ones in place (morph.js), so what the person opened, typed, focused or
// scrolled survives.
function show(...nodes) {
  const shown = nodes.filter((n) => n !== null && n !== undefined);
  // a page's title takes the focus when it opens (navigate), and keeps it through updates
  for (const n of shown) if (n.tagName === "H2") n.setAttribute("tabindex", "-1");
  return shown;
}

// Where the node the person looks at was meant to stay on screen: scrolling goes by whole
// pixels, so each update aims at that place, not at where the last one left it.
let held = null;

function paint(nodes, update) {
  if (!update) { page.replaceChildren(...nodes); held = null; return; }
  // what the person is looking at stays where it is on screen, whatever comes in above it
  const anchor = screenAnchor();
  let top = anchor && anchor.getBoundingClientRect().top;
  if (held && held.node === anchor && Math.abs(held.top - top) < 1) top = held.top;
  // a node kept across draws (the "understood" card) is copied, never moved off the screen
  morphChildren(page, el("main", {}, nodes.map((n) => (n.isConnected ? n.cloneNode(true) : n))));
  if (anchor && anchor.isConnected) {
    window.scrollBy(0, anchor.getBoundingClientRect().top - top);
    held = { node: anchor, top };
  }
}

// The focused node if it is on screen, else the first row or field on screen.
function screenAnchor() {
  const shown = (node) => {
    const box = node.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  };
  const focused = document.activeElement;
  if (focused && focused !== page && page.contains(focused) && shown(focused)) return focused;
  return [...page.querySelectorAll("[data-key]")].find(shown) || null;
}

// A table that folds into labelled cards on a phone (app.css): each cell says its column.
// rows: [key, [cell, ...]]; a header "" is a column without a title (actions).
function table(kind, headers, rows) {
  return el("table", { class: `cards ${kind}` },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map(([key, cells, attrs]) => el("tr", { "data-key": key, ...(attrs || {}) },
      cells.map((cell, i) => (cell instanceof Node && cell.tagName === "TD") ? cell
        : el("td", { "data-label": headers[i] || undefined }, cell))))));
}

function fail(error) {
  paint([el("p", { class: "error", role: "alert" }, String(error.message || error))], false);
}

// ------------------------------------------------------------------------------ pages
async function jobsPage() {
  const { jobs } = await api("GET", "api/jobs");
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
  ], { "data-job": job.name }]);
  return show(
    understood,
    el("h2", {}, `Jobs (${jobs.length})`),
    jobs.length ? table("jobs", headers, rows)
      : el("p", {}, "No jobs yet. ", el("a", { href: "#/add" }, "Add one")),
  );
}

// silent answers and runs its notify policy kept back, when there are any
function quietCounts(job) {
  const parts = [job.silent_runs ? `${job.silent_runs} silent` : null,
    job.suppressed_runs ? `${job.suppressed_runs} not delivered` : null].filter(Boolean);
  return parts.length ? el("div", { class: "muted quiet" }, parts.join(" · ")) : null;
}

// how a run's result went out: nothing when delivered, else silent or the policy's reason
function deliveryNote(run) {
  if (!run.suppressed) return null;
  return el("div", { class: "muted quiet", title: run.suppressed_reason || "" },
    run.silent ? "silent" : `not delivered: ${run.suppressed_reason}`);
}

// every link and API call names a job by its id: a name may be anything a person typed, an id
// is 32 hex digits, which no URL can misread
// (buttons say what they do in data-action; one listener below acts, so a button kept by an
// update acts on what it says now)
function actions(job) {
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

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const [method, path] = button.dataset.action.split(" ");
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  try {
    await api(method, path);
    if (method === "DELETE" && location.hash.startsWith("#/job/")) location.hash = "#/jobs";
    else await refresh();
  } catch (error) { fail(error); }
});

async function jobPage(id) {
  const [{ job }, { runs }] = await Promise.all([
    api("GET", `api/jobs/${encodeURIComponent(id)}`),
    api("GET", `api/jobs/${encodeURIComponent(id)}/runs?limit=50`),
  ]);
  const fields = [
    ["Prompt", job.prompt], ["Schedule", `${job.schedule.in_words} (${job.schedule.text})`],
    ["Time zone", job.timezone],
    ["Enabled", job.enabled ? "yes" : "no (paused)"],
    ["Next run", `${local(job.next_run, job.timezone)} ${relative(job.next_run)}`],
    ["Last status", job.last_status || "-"], ["Last error", job.last_error || "-"],
    ["Retries", `${job.retry_count} of ${job.max_retries}`], ["Timeout", `${job.timeout_secs} s`],
    ["Session", job.session_mode],
    ["Jitter", job.jitter_secs ? `up to ${job.jitter_secs} s (next run includes it)` : "none"],
    ["Overlap", job.overlap + (job.max_instances > 1 ? `, up to ${job.max_instances} at once` : "")],
    ["Running now", String(job.running)],
    ...(job.max_runs === null ? [] : [["Runs left", String(Math.max(0, job.max_runs - job.finished_runs))]]),
    ["Owner", job.user_id || "agent"], ["Id", job.id],
  ];
  // every other field of the job's view as it is, so a new declared field shows here too
  const shownAbove = new Set(["name", "prompt", "schedule", "timezone", "enabled", "next_run",
    "last_status", "last_error", "retry_count", "max_retries", "timeout_secs", "session_mode",
    "jitter_secs", "overlap", "max_instances", "running", "user_id", "id"]);
  for (const [key, value] of Object.entries(job)) {
    if (shownAbove.has(key) || (value !== null && typeof value === "object")) continue;
    const text = value === null ? "-" : value === true ? "yes" : value === false ? "no" : String(value);
    const time = typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:/.test(value);
    fields.push([fieldLabel(key, {}), time ? local(value, job.timezone) : text]);
  }
  return show(
    el("h2", {}, job.name),
    actions(job),
    el("dl", { class: "card" }, fields.map(([k, v]) => [el("dt", { class: "muted", "data-key": `dt-${k}` }, k),
      el("dd", { "data-key": `dd-${k}` }, v)])),
    el("h3", {}, "Runs"),
    runs.length ? runsTable(runs, false) : el("p", { class: "muted" }, "No runs yet."),
  );
}

function runsTable(runs, withJob) {
  const headers = [withJob ? "Job" : null, "Started", "Status", "Duration", "Late", "Attempt", "Trigger", "Model", "Cost", "Result"]
    .filter((h) => h !== null);
  return table("runs", headers, runs.map((run) => [String(run.id), [
    withJob ? el("a", { href: `#/job/${encodeURIComponent(run.job_id)}` }, run.job_name) : null,
    local(run.started_at),
    el("span", {}, status(run.status), deliveryNote(run)),
    run.duration_ms === null ? "-" : `${run.duration_ms} ms`,
    `${run.late_ms} ms`,
    String(run.attempt),
    run.trigger,
    // which model ran it: each model asked that answered (a fallback, an escalation), in order
    (run.usages || []).map((u) => u.model).join(" → ") || run.model || "-",
    usd(run.cost_usd, run.status),
    el("details", {}, el("summary", {}, (run.result || run.error || "").slice(0, 60) || "-"),
      el("pre", { class: "result" }, run.result || run.error || "")),
  ].filter((cell, i) => withJob || i > 0), { "data-run": run.id }]));
}

// The name, the prompt and the schedule by hand; every other field of a job from the API's
// description of a new job (form.js), so a field added to the declaration appears here too.
async function addPage() {
  const preview = el("div", { id: "preview", "aria-live": "polite", class: "muted" });
  const kind = el("select", { id: "kind", name: "kind" },
    ["cron", "every", "at", "in", "when"].map((k) => el("option", { value: k }, k === "when" ? "when (in words)" : k)));
  const when = el("input", { id: "when", name: "when", required: true, placeholder: "0 9 * * 1-5" });
  const [inputs, given] = await jobFieldInputs(me.admin);
  const form = el("form", { class: "card", id: "add-form" },
    el("label", { for: "name" }, "Name"), el("input", { id: "name", name: "name", placeholder: "standup (optional)" }),
    el("label", { for: "prompt" }, "Prompt"), el("textarea", { id: "prompt", name: "prompt", required: true, rows: 3 }),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "kind" }, "Schedule kind"), kind),
      el("div", {}, el("label", { for: "when" }, "When"), when)),
    inputs,
    el("h3", {}, "Next fires"), preview,
    el("h3", {}, "What its runs would do"),
    el("pre", { id: "job-preview", "aria-live": "polite", class: "muted" }, "…"),
    el("p", { id: "form-error", class: "error", role: "alert" }),
    el("button", { type: "submit", class: "primary" }, "Add job"),
  );
  const zone = form.elements.namedItem("timezone");  // the preview reads the job's zone
  if (zone && !zone.value) zone.value = browserZone;  // the browser's zone unless changed
  const schedule = () => {
    const data = { [kind.value]: when.value.trim() };
    if (zone && zone.value.trim()) data.timezone = zone.value.trim();
    return data;
  };
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!when.value.trim()) { preview.replaceChildren("…"); return; }
      try {
        const p = await api("POST", "api/preview", schedule());
        preview.replaceChildren(el("p", {}, p.in_words),
          p.schedule ? el("p", { id: "preview-schedule", class: "muted" }, p.schedule) : null,
          el("ol", { id: "preview-list" },
          p.next_runs.map((t) => el("li", {}, `${local(t, p.timezone)} (${relative(t)})`))));
      } catch (error) { preview.replaceChildren(el("span", { class: "error" }, error.message)); }
      // the whole job as POST /api/jobs would add it: model, messages, tools, cost (cron_preview)
      const shown = form.querySelector("#job-preview");
      if (!form.prompt.value.trim()) { shown.textContent = "…"; return; }
      try {
        const p = await api("POST", "api/jobs/preview", { ...given(), prompt: form.prompt.value, ...schedule() });
        shown.textContent = p.message;
      } catch (error) { shown.textContent = error.message; }
    }, 250);
  };
  when.addEventListener("input", refresh);
  form.addEventListener("input", refresh);  // every field changes the job's preview
  form.addEventListener("change", refresh);
  kind.addEventListener("change", () => {
    when.placeholder = { cron: "0 9 * * 1-5", every: "30m", at: "tomorrow 9:00", in: "20m", when: "every weekday at 9:00" }[kind.value];
    refresh();
  });
  if (zone) zone.addEventListener("input", refresh);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { ...given(), prompt: form.prompt.value, ...schedule() };
    if (form.elements.namedItem("name").value.trim()) body.name = form.elements.namedItem("name").value.trim();
    try {
      const { job, interpretation } = await api("POST", "api/jobs", body);
      understood = interpretation ? interpretationCard(job, interpretation) : null;
      location.hash = `#/jobs`;
      document.title = `starpod-cron · added ${job.name}`;
    } catch (error) { form.querySelector("#form-error").textContent = error.message; }
  });
  return show(el("h2", {}, "Add a job"), form);
}

function interpretationCard(job, i) {
  return el("div", { class: "card", id: "understood", role: "status" },
    el("p", {}, `Added ${job.name}: “${i.phrase}” was understood as: ${i.in_words}`),
    el("p", { class: "muted" }, i.schedule + (i.delete_after_run ? " · deleted after it runs" : "")),
    el("ol", {}, i.next_runs.map((t) => el("li", {}, `${local(t, i.timezone)} (${relative(t)})`))));
}

async function timelinePage() {
  const { fires } = await api("GET", "api/timeline?hours=24");
  return show(el("h2", {}, "Next 24 hours"),
    fires.length ? el("ol", { class: "card" }, fires.map((f) => el("li", { "data-key": `${f.job_id} ${f.at}` },
      `${local(f.at)} (${relative(f.at)}) `, el("a", { href: `#/job/${encodeURIComponent(f.job_id)}` }, f.job))))
      : el("p", { class: "muted" }, "Nothing fires in the next 24 hours."));
}

async function runsPage() {
  const { runs } = await api("GET", "api/runs?limit=100");
  return show(el("h2", {}, "Recent runs"), runs.length ? runsTable(runs, true) : el("p", { class: "muted" }, "No runs yet."));
}

// "$0.0020"; "unknown" for a run of an unpriced model; "-" while it runs, or for a run that
// called nothing (skipped, interrupted)
function usd(cost, status = "success") {
  if (cost !== null && cost !== undefined) return `$${cost.toFixed(4)}`;
  return ["success", "failed", "timeout"].includes(status) ? "unknown" : "-";
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
async function usagePage() {
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

async function deliveriesPage() {
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

// ----------------------------------------------------------------------------- router
// Draw the page the address names; update: bring the page shown up to date in place. A draw
// overtaken by a navigation is dropped.
let drawn = 0;
async function route(update = false) {
  const mine = update ? drawn : ++drawn;
  const [, name, arg] = (location.hash || "#/jobs").split("/");
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${name}`);
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  if (name && name !== "jobs" && !update) understood = null;
  if (name === "add" && update) return;  // the form is never redrawn under the pen
  try {
    const nodes = name === "job" ? await jobPage(decodeURIComponent(arg || ""))
      : name === "add" ? await addPage()
      : name === "timeline" ? await timelinePage()
      : name === "runs" ? await runsPage()
      : name === "deliveries" ? await deliveriesPage()
      : name === "usage" ? await usagePage()
      : await jobsPage();
    if (mine === drawn) paint(nodes, update);
  } catch (error) { if (mine === drawn) fail(error); }
}

// Updates asked for while one is drawn are folded into one more, so a burst of events costs
// two requests, not one per event.
let refreshing = null;
let again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      await route(true);
    } while (again);
  })();
  try { await refreshing; } finally { refreshing = null; }
}

async function navigate() {
  await route();
  const heading = page.querySelector("h2");  // for the keyboard: the new page's title
  if (heading) heading.focus({ preventScroll: true });
}

// --------------------------------------------------------------------------- live events
// One WebSocket, to /ws of this same address ("ws" relative to the page: under a proxy's
// path prefix too).
function connect() {
  const live = document.getElementById("live");
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  const protocols = secret ? ["starpod", `starpod.csrf.${secret}`] : [];
  const socket = new WebSocket(url.href, protocols);
  socket.onopen = () => {
    live.textContent = "live";
    // runs nobody is notified of (silent, kept back by notify) come as run.finished only
    socket.send(JSON.stringify({ id: "live", type: "subscribe", events: ["notification", "run.finished"] }));
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const quiet = event.type === "run.finished" && event.suppressed;
    if (event.type !== "notification" && !quiet) return;
    live.textContent = `${event.job_name}: ${event.status}${event.silent ? " (silent)" : ""}`;
    refresh();  // a new run or status: only what changed is touched
  };
  socket.onclose = (event) => {
    if (event.code === 1008) { location.href = "login"; return; }  // the session ended
    live.textContent = "reconnecting…";
    setTimeout(connect, 2000);
  };
}

window.addEventListener("hashchange", navigate);
const logout = document.getElementById("logout");
logout.addEventListener("submit", () => { sessionStorage.removeItem("starpod-csrf"); });
(async () => {
  try {
    me = await api("GET", "api/me");
    document.getElementById("nav-deliveries").hidden = false;  // users: their own jobs' deliveries
    // a log-in handed this tab its secret; without tokens nobody logs in (or out)
    logout.hidden = !secret;
    document.getElementById("who").textContent = secret ? me.user_id || "" : "";
    await route();
    connect();
  } catch (error) { fail(error); }
})();

// The starpod-cron dashboard: plain JavaScript modules over the JSON API (api/...), live
// through the gateway's WebSocket events (/ws on this same port). No build step, no CDN. Every
// address is relative to the page, so the dashboard works under a path prefix behind a
// reverse proxy. This module routes, acts on buttons and listens; each page is its own module.

import { api, el, page, paint, fail, show, secret, session, address } from "./common.js";
import { drawCharts } from "./charts.js";
import { jobForm } from "./jobform.js";
import { jobsPage, pageState, interpretationCard } from "./jobs.js";
import { jobPage } from "./job.js";
import { overviewPage, elapsed } from "./overview.js";
import { timelinePage } from "./timeline.js";
import { runsPage, usagePage, deliveriesPage } from "./pages.js";

async function addPage() {
  const form = await jobForm(null, ({ job, interpretation }) => {
    pageState.understood = interpretation ? interpretationCard(job, interpretation) : null;
    location.hash = "#/jobs";
    document.title = `starpod-cron · added ${job.name}`;
  });
  return show(el("h2", {}, "Add a job"), form);
}

const PAGES = {
  "": overviewPage, jobs: jobsPage, add: addPage, timeline: timelinePage, runs: runsPage,
  deliveries: deliveriesPage, usage: usagePage,
};

// A line under the header saying how an action went (a refused retry, a removed job).
function notice(text, bad) {
  const line = document.getElementById("notice");
  line.textContent = text;
  line.className = bad ? "error" : "muted";
}

// ----------------------------------------------------------------------------- router
// Draw the page the address names; update: bring the page shown up to date in place. A draw
// overtaken by a navigation is dropped (and says so: false).
let drawn = 0;
async function route(update = false) {
  const mine = update ? drawn : ++drawn;
  const [name, arg] = address();
  for (const link of document.querySelectorAll("nav.pages a")) {
    const [, linked] = link.getAttribute("href").slice(1).split("/");
    if (linked === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name !== "jobs" && !update) pageState.understood = null;
  if (name === "add" && update) return false;  // the form is never redrawn under the pen
  try {
    const nodes = name === "job" ? await jobPage(arg, update) : await (PAGES[name] || overviewPage)();
    if (mine !== drawn) return false;
    paint(nodes, update);
    drawCharts(page);
    return true;
  } catch (error) {
    if (mine === drawn) fail(error);
    return false;
  }
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
  notice("");  // what an action on the last page said
  if (!(await route())) return;  // overtaken: the page drawn last takes the focus, once
  const heading = page.querySelector("h2");  // for the keyboard: the new page's title
  if (heading) heading.focus({ preventScroll: true });
}

// Buttons say what they do (data-action "METHOD path"); a button pressed is disabled until its
// request is answered, so a double click sends one request (and the server judges any other).
document.addEventListener("click", async (event) => {
  const go = event.target.closest("button[data-go]");
  if (go) {
    const [path] = location.hash.split("?");
    location.hash = go.dataset.go ? `${path}?${go.dataset.go}` : path;
    return;
  }
  const button = event.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const [method, path] = button.dataset.action.split(" ");
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const answer = await api(method, path);
    if (answer.retry) notice(`Retrying ${answer.job ? answer.job.name : "the run"}: attempt ${answer.retry.attempt}`);
    if (method === "DELETE" && location.hash.startsWith("#/job/")) location.hash = "#/jobs";
    else await refresh();
  } catch (error) { notice(error.message, true); } finally { button.disabled = false; }
});

// Elapsed times of runs in flight tick in place, once a second.
setInterval(() => {
  for (const node of page.querySelectorAll(".elapsed[data-since]")) node.textContent = elapsed(node.dataset.since);
}, 1000);

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
    // runs nobody is notified of (silent, kept back by notify) come as run.finished only;
    // run.started: what is running now
    socket.send(JSON.stringify({ id: "live", type: "subscribe", events: ["notification", "run.started", "run.finished"] }));
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "run.started") { refresh(); return; }
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
    session.me = await api("GET", "api/me");
    document.getElementById("nav-deliveries").hidden = false;  // users: their own jobs' deliveries
    // a log-in handed this tab its secret; without tokens nobody logs in (or out)
    logout.hidden = !secret;
    document.getElementById("who").textContent = secret && session.me.user_id ? `Signed in as ${session.me.user_id}` : "";
    await route();
    connect();
  } catch (error) { fail(error); }
})();

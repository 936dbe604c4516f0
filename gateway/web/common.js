// What every page of the dashboard shares: the JSON API (api/... relative to the page, so it
// works under a path prefix), building nodes, times to the second with their zone, durations
// as the CLI writes them, tables that fold into cards on a phone, and painting a page in place
// (morph.js) so live updates keep what the person opened, typed, focused or scrolled.

import { morphChildren } from "./morph.js";

export const page = document.getElementById("page");
// The tab secret the log-in handed to this tab (handover.js): the login cookie alone is
// refused, since browsers send it to every port of this host.
export const secret = sessionStorage.getItem("starpod-csrf") || "";
// Who is signed in (GET api/me), set once at start-up by app.js.
export const session = { me: null };

export async function api(method, path, body) {
  const options = { method, headers: { "X-Starpod-CSRF": secret }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data;
  try {
    data = await response.json();
  } catch (_) {  // not JSON: a proxy's page, an endpoint this server does not have
    throw new Error(`${method} ${path}: ${response.status} ${response.statusText}`);
  }
  if (response.status === 401 || (data.error && data.error.code === "csrf")) {
    location.href = "login";  // logged out, or this tab never logged in
    throw new Error("logged out");
  }
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

// "api/runs" + {status: "failed", job: ""} -> "api/runs?status=failed" (empty values left out)
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export function el(tag, attrs = {}, ...children) {
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

export function relative(iso) {
  if (!iso) return "";
  const secs = Math.round((new Date(iso) - Date.now()) / 1000);
  const abs = Math.abs(secs);
  const [n, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "m"]
    : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  return secs >= 0 ? `in ${n}${unit}` : `${n}${unit} ago`;
}

// "2026-12-03 09:00:00 CET": to the second, with the zone (the job's, else the browser's)
export function local(iso, zone) {
  if (!iso) return "-";
  try {
    return new Date(iso).toLocaleString("sv-SE", { timeZone: zone || undefined, timeZoneName: "short",
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23" });
  } catch (_) { return iso; }
}

// The browser's own zone: what the add form offers by default.
export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

// Durations as the CLI writes them (schedules.format_duration_ms): 7200 s -> "2h",
// 90 s -> "1m30s", 0.25 s -> "250ms".
export function durationText(secs) {
  if (secs === null || secs === undefined) return "-";
  let rest = Math.round(secs * 1000);
  const parts = [];
  for (const [unit, size] of [["d", 86400000], ["h", 3600000], ["m", 60000], ["s", 1000]]) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count) parts.push(`${count}${unit}`);
  }
  if (rest || !parts.length) parts.push(`${rest}ms`);
  return parts.join("");
}

// What a person types for a duration, as the CLI reads it: "1h30m", "10m", "2d", "45s", or a
// number of seconds -> seconds; NaN if it is neither.
export function parseDuration(text) {
  const cleaned = String(text).trim().toLowerCase().replaceAll(" ", "");
  if (/^\d+(\.\d+)?$/.test(cleaned)) return Number(cleaned);
  const parts = [...cleaned.matchAll(/(\d+)(ms|s|m|h|d|w)/g)];
  if (!cleaned || parts.map((p) => p[0]).join("") !== cleaned) return NaN;
  const size = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  return parts.reduce((total, [, n, unit]) => total + Number(n) * size[unit], 0);
}

// a run's milliseconds: "850 ms", "1m30s"
export function msText(ms) {
  if (ms === null || ms === undefined) return "-";
  return ms < 1000 ? `${ms} ms` : durationText(ms / 1000);
}

export function status(value) {
  return el("span", { class: `status-${value || "none"}` }, value || "-");
}

// "$0.0020"; "unknown" for a run of an unpriced model; "-" while it runs, or for a run that
// called nothing (skipped, interrupted)
export function usd(cost, runStatus = "success") {
  if (cost !== null && cost !== undefined) return `$${cost.toFixed(4)}`;
  return ["success", "failed", "timeout"].includes(runStatus) ? "unknown" : "-";
}

// A page function draws its page as fresh nodes (show() collects them); the router puts them
// on screen: a new page replaces what was shown, an update of the page shown turns the nodes
// on screen into the fresh ones in place (morph.js).
export function show(...nodes) {
  const shown = nodes.flat().filter((n) => n !== null && n !== undefined);
  // a page's title takes the focus when it opens (navigate), and keeps it through updates
  for (const n of shown) if (n.tagName === "H2") n.setAttribute("tabindex", "-1");
  return shown;
}

// Where the node the person looks at was meant to stay on screen: scrolling goes by whole
// pixels, so each update aims at that place, not at where the last one left it.
let held = null;

export function paint(nodes, update) {
  if (!update) { page.replaceChildren(...nodes); held = null; return; }
  // what the person is looking at stays where it is on screen, whatever comes in above it
  const anchor = screenAnchor();
  let top = anchor && anchor.getBoundingClientRect().top;
  if (held && held.node === anchor && Math.abs(held.top - top) < 1) top = held.top;
  // a node kept across draws (the "understood" card, a form) is copied, never moved off screen
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
// rows: [key, [cell, ...], attrs]; a header "" is a column without a title (actions).
export function table(kind, headers, rows, caption) {
  return el("table", { class: `cards ${kind}` },
    caption ? el("caption", { class: "sr-only" }, caption) : null,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h || el("span", { class: "sr-only" }, "Actions"))))),
    el("tbody", {}, rows.map(([key, cells, attrs]) => el("tr", { "data-key": key, ...(attrs || {}) },
      cells.map((cell, i) => (cell instanceof Node && cell.tagName === "TD") ? cell
        : el("td", { "data-label": headers[i] || undefined }, cell))))));
}

export function fail(error) {
  paint([el("p", { class: "error", role: "alert" }, String(error.message || error))], false);
}

// The current address's page and its query: "#/runs?status=failed" -> ["runs", "", {status}]
export function address() {
  const [path, query] = (location.hash || "#/").slice(1).split("?");
  const [, name, arg] = path.split("/");
  return [name || "", decodeURIComponent(arg || ""), Object.fromEntries(new URLSearchParams(query || ""))];
}

// The same page with other query values (filters, a page of results): a new history entry.
export function goQuery(params) {
  const [path] = (location.hash || "#/").split("?");
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) query.set(key, value);
  const text = query.toString();
  location.hash = text ? `${path}?${text}` : path;
}

// A job's fields in the add and edit forms, made from the API's own description of a new job:
// the body of POST /api/jobs in /openapi.json, which the gateway builds from the agent tools'
// schemas, themselves made from the one declaration of a job's fields (starpod_cron/fields.py).
// A new field appears here as an input of its type (a choice, a yes/no, a bounded number, a
// duration, a list, text) without an edit; only the name, the prompt and the schedule are laid
// out by hand (jobform.js).

import { el, durationText, parseDuration } from "./common.js";

// By hand in jobform.js: the name, the prompt and the schedule (one of cron/every/at/in/when).
const BY_HAND = new Set(["name", "prompt", "cron", "every", "at", "in", "when"]);
// Offered to admins only (the API refuses it from anyone else).
const ADMIN_ONLY = new Set(["user_id"]);

let doc = null;
let newJobSchema = null;

// /openapi.json, read once
export async function apiDoc() {
  if (doc === null) {
    const response = await fetch("openapi.json", { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the API description is unavailable (${response.status})`);
    doc = await response.json();
  }
  return doc;
}

async function jobSchema() {
  if (newJobSchema === null) {
    const doc = await apiDoc();
    const body = resolveRef(doc, doc.paths["/api/jobs"].post.requestBody.content["application/json"].schema);
    const properties = Object.entries(body.properties || {}).map(([key, value]) => [key, resolveRef(doc, value)]);
    newJobSchema = { ...body, properties: Object.fromEntries(properties) };
  }
  return newJobSchema;
}

// The values a GET endpoint's query parameter takes ([] when it has none, or no such one).
export async function queryEnum(path, name) {
  const doc = await apiDoc();
  const operation = doc.paths[path] && doc.paths[path].get;
  const param = ((operation && operation.parameters) || []).find((p) => p.name === name);
  const schema = param ? resolveRef(doc, param.schema) : null;
  return (schema && schema.enum) || [];
}

function resolveRef(doc, schema) {
  if (!schema || !schema.$ref) return schema;
  return schema.$ref.replace(/^#\//, "").split("/").reduce((node, key) => node[key], doc);
}

// A number of seconds is typed and shown as a duration, as the CLI does (10m, 1h30m).
const isDuration = (key, schema) => key.endsWith("_secs") && (schema.type === "number" || schema.type === "integer");

// "max_instances" -> "Max instances", "stale_after_secs" -> "Stale after"; a schema's own
// title wins.
export function fieldLabel(key, schema = {}) {
  if (schema.title) return schema.title;
  const words = (key.endsWith("_secs") ? key.slice(0, -5) : key).replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// A job's current value as the input shows it (edit: the form starts from the job).
function shownValue(key, schema, value) {
  if (value === null || value === undefined) return "";
  if (isDuration(key, schema)) return value ? durationText(value) : "0";
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

// One input for one property: [its labelled block, read() -> the JSON value or undefined].
// read() throws an Error naming the field when what is typed cannot be its value.
function fieldInput(key, schema, value) {
  const id = `field-${key}`;
  const hint = schema.description ? el("div", { class: "muted hint", id: `${id}-hint` }, schema.description) : null;
  const common = { id, name: key, "aria-describedby": hint ? `${id}-hint` : undefined };
  const start = shownValue(key, schema, value);
  let input;
  let read;
  if (schema.enum || schema.type === "boolean") {
    const values = schema.enum ? schema.enum.map((v) => [String(v), v]) : [["yes", true], ["no", false]];
    input = el("select", common, el("option", { value: "" }, "(default)"),
      values.map(([text]) => el("option", { value: text, selected: text === start }, text)));
    read = () => {
      const found = values.find(([text]) => text === input.value);
      return found ? found[1] : undefined;
    };
  } else if (isDuration(key, schema)) {  // 10m, 1h30m, 2h (or seconds)
    input = el("input", { ...common, value: start, inputmode: "text", placeholder: "e.g. 30s, 10m, 1h30m" });
    read = () => {
      if (input.value.trim() === "") return undefined;
      const secs = parseDuration(input.value);
      if (Number.isNaN(secs)) throw new Error(`${fieldLabel(key, schema)}: use a duration such as 30s, 10m, 2h or 1h30m`);
      return secs;
    };
  } else if (schema.type === "integer" || schema.type === "number") {
    const low = schema.minimum ?? schema.exclusiveMinimum;
    input = el("input", { ...common, type: "number", value: start, min: low, max: schema.maximum,
      step: schema.type === "integer" ? "1" : "any" });
    read = () => (input.value.trim() === "" ? undefined : Number(input.value));
  } else if (schema.type === "array") {  // names separated by commas; "-" for none
    const known = schema.items && schema.items.enum ? ` (${schema.items.enum.join(", ")})` : "";
    input = el("input", { ...common, value: start, placeholder: `comma-separated${known}` });
    read = () => {
      const text = input.value.trim();
      if (text === "") return undefined;
      return text === "-" ? [] : text.split(",").map((item) => item.trim()).filter(Boolean);
    };
  } else {
    input = el("input", { ...common, value: start, maxlength: schema.maxLength });
    read = () => (input.value.trim() === "" ? undefined : input.value.trim());
  }
  return [el("div", { class: "field" }, el("label", { for: id }, fieldLabel(key, schema)), input, hint), read];
}

// Every declared field of a job that is not laid out by hand, in the schema's order, starting
// from `job`'s values when given (the edit form): [the block of inputs, body() -> the fields
// given as JSON (for an edit: only those changed)].
export async function jobFieldInputs(admin, job = null) {
  const schema = await jobSchema();
  const readers = {};
  const blocks = [];
  for (const [key, property] of Object.entries(schema.properties || {})) {
    if (BY_HAND.has(key) || (ADMIN_ONLY.has(key) && !admin)) continue;
    const [block, read] = fieldInput(key, property, job ? job[key] : undefined);
    blocks.push(block);
    readers[key] = read;
  }
  const before = {};
  if (job) for (const [key, read] of Object.entries(readers)) before[key] = JSON.stringify(read());
  const body = () => {
    const data = {};
    for (const [key, read] of Object.entries(readers)) {
      const value = read();
      if (value === undefined) continue;
      if (job && JSON.stringify(value) === before[key]) continue;  // unchanged: not sent
      data[key] = value;
    }
    return data;
  };
  return [el("div", { class: "row fields" }, blocks), body];
}

// The add form's job fields, made from the API's own description of a new job: the body of
// POST /api/jobs in /openapi.json, which the gateway builds from the agent tools' schemas,
// themselves made from the one declaration of a job's fields (starpod_cron/fields.py). A new
// field appears here as an input of its type (a choice, a yes/no, a bounded number, a list, text)
// without an edit; only the name, the prompt and the schedule are laid out by hand (app.js).
"use strict";

// By hand in app.js: the name, the prompt and the schedule (one of cron/every/at/in/when).
const BY_HAND = new Set(["name", "prompt", "cron", "every", "at", "in", "when"]);
// Offered to admins only (the API refuses it from anyone else).
const ADMIN_ONLY = new Set(["user_id"]);

let newJobSchema = null;

async function jobSchema() {
  if (newJobSchema === null) {
    const response = await fetch("openapi.json", { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the API description is unavailable (${response.status})`);
    const doc = await response.json();
    const body = resolveRef(doc, doc.paths["/api/jobs"].post.requestBody.content["application/json"].schema);
    const properties = Object.entries(body.properties || {}).map(([key, value]) => [key, resolveRef(doc, value)]);
    newJobSchema = { ...body, properties: Object.fromEntries(properties) };
  }
  return newJobSchema;
}

function resolveRef(doc, schema) {
  if (!schema || !schema.$ref) return schema;
  return schema.$ref.replace(/^#\//, "").split("/").reduce((node, key) => node[key], doc);
}

// "max_instances" -> "Max instances", "jitter_secs" -> "Jitter (seconds)"; a schema's own
// title wins.
function fieldLabel(key, schema) {
  if (schema.title) return schema.title;
  const secs = key.endsWith("_secs");
  const words = (secs ? key.slice(0, -5) : key).replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1) + (secs ? " (seconds)" : "");
}

// One input for one property: [its labelled block, read() -> the JSON value or undefined].
function fieldInput(key, schema) {
  const id = `field-${key}`;
  const hint = schema.description ? el("div", { class: "muted hint", id: `${id}-hint` }, schema.description) : null;
  const common = { id, name: key, "aria-describedby": hint ? `${id}-hint` : undefined };
  let input;
  let read;
  if (schema.enum || schema.type === "boolean") {
    const values = schema.enum ? schema.enum.map((v) => [String(v), v]) : [["yes", true], ["no", false]];
    input = el("select", common, el("option", { value: "" }, "(default)"),
      values.map(([text]) => el("option", { value: text }, text)));
    read = () => {
      const found = values.find(([text]) => text === input.value);
      return found ? found[1] : undefined;
    };
  } else if (schema.type === "integer" || schema.type === "number") {
    const low = schema.minimum ?? schema.exclusiveMinimum;
    input = el("input", { ...common, type: "number", min: low, max: schema.maximum,
      step: schema.type === "integer" ? "1" : "any" });
    read = () => (input.value.trim() === "" ? undefined : Number(input.value));
  } else if (schema.type === "array") {  // names separated by commas; "-" for none
    const known = schema.items && schema.items.enum ? ` (${schema.items.enum.join(", ")})` : "";
    input = el("input", { ...common, placeholder: `comma-separated${known}` });
    read = () => {
      const text = input.value.trim();
      if (text === "") return undefined;
      return text === "-" ? [] : text.split(",").map((item) => item.trim()).filter(Boolean);
    };
  } else {
    input = el("input", { ...common, maxlength: schema.maxLength });
    read = () => (input.value.trim() === "" ? undefined : input.value.trim());
  }
  return [el("div", { class: "field" }, el("label", { for: id }, fieldLabel(key, schema)), input, hint), read];
}

// Every declared field of a new job that is not laid out by hand, in the schema's order:
// [the block of inputs, body() -> the fields given, as JSON].
async function jobFieldInputs(admin) {
  const schema = await jobSchema();
  const readers = {};
  const blocks = [];
  for (const [key, property] of Object.entries(schema.properties || {})) {
    if (BY_HAND.has(key) || (ADMIN_ONLY.has(key) && !admin)) continue;
    const [block, read] = fieldInput(key, property);
    blocks.push(block);
    readers[key] = read;
  }
  const body = () => {
    const data = {};
    for (const [key, read] of Object.entries(readers)) {
      const value = read();
      if (value !== undefined) data[key] = value;
    }
    return data;
  };
  return [el("div", { class: "row fields" }, blocks), body];
}

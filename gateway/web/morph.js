// Live without redraws: a page is drawn as a fresh tree of nodes, and an update of the page
// shown (a run finished, a button pressed) turns the nodes on screen into the new tree in
// place, instead of replacing them. A node that is still wanted stays the same node, so an
// open <details>, what is typed in a field, the focus and the scroll position survive.
// Rows match by their data-key (a job or run id), other nodes by position and tag. A chart
// (data-chart) keeps its drawing: charts.js brings it up to date with the new data.
// Attributes the person changes, never taken from the fresh tree: an opened result.
const KEPT_ATTRIBUTES = new Set(["open"]);

function morphKey(node) {
  return node.nodeType === Node.ELEMENT_NODE ? node.getAttribute("data-key") : null;
}

function sameKind(a, b) {
  return a.nodeType === b.nodeType && (a.nodeType !== Node.ELEMENT_NODE || a.tagName === b.tagName);
}

// Make `old` look like `fresh` (same tag): attributes, then children.
function morphNode(old, fresh) {
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
    return;
  }
  for (const { name } of [...old.attributes]) {
    if (!fresh.hasAttribute(name) && !KEPT_ATTRIBUTES.has(name)) {
      old.removeAttribute(name);
    }
  }
  for (const { name, value } of [...fresh.attributes]) {
    if (old.getAttribute(name) !== value) old.setAttribute(name, value);
  }
  // a field's text is the person's: its children (a <textarea>'s) and value stay
  if (old.tagName === "TEXTAREA" || old.tagName === "INPUT" || old.tagName === "SELECT") return;
  if (old.hasAttribute("data-chart")) return;
  morphChildren(old, fresh);
}

// Make the children of `old` those of `fresh`, keeping every old node that matches.
export function morphChildren(old, fresh) {
  const keyed = new Map();
  for (const child of old.childNodes) {
    const key = morphKey(child);
    if (key !== null) keyed.set(key, child);
  }
  let cursor = old.firstChild;
  for (const wanted of [...fresh.childNodes]) {
    const key = morphKey(wanted);
    let match = null;
    if (key !== null) {
      match = keyed.get(key) || null;
      keyed.delete(key);
      if (match && !sameKind(match, wanted)) match = null;
    } else if (cursor && morphKey(cursor) === null && sameKind(cursor, wanted)) {
      match = cursor;
    }
    if (match === null) {
      old.insertBefore(wanted, cursor);
      continue;
    }
    if (match === cursor) cursor = cursor.nextSibling;
    else old.insertBefore(match, cursor);
    morphNode(match, wanted);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
}

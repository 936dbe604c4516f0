// Charts drawn with uPlot (vendor/uplot/, from the npm registry: no CDN, no build step), from
// the JSON API's data. A page draws a placeholder, chart(key, spec); after the page is on
// screen, drawCharts() makes each placeholder's chart, or gives an existing one its new data
// (morph.js leaves a chart's own nodes alone), so a live update never redraws the page.

import { el } from "./common.js";

const specs = new Map();  // key -> the spec of the page just drawn
const drawn = new Map();  // key -> { node, plot, kind }

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// spec: { label (what it shows, for screen readers), kind: "bars" | "lines" | "points",
//   x: [seconds since 1970], series: [{ label, values, color (a CSS variable), scale? }],
//   yNames? (points: a name per y value, shown on the axis), height? }
export function chart(key, spec) {
  specs.set(key, spec);
  return el("div", { class: "chart", "data-chart": key, "data-key": `chart-${key}`, role: "img",
    "aria-label": spec.label });
}

function options(spec, width) {
  const fg = color("--muted");
  const grid = { stroke: color("--line"), width: 1 };
  const axis = { stroke: fg, grid, ticks: grid };
  const bars = spec.kind === "bars" ? uPlot.paths.bars({ size: [0.8, 40], gap: 1 }) : undefined;
  // bars stand on their hour: half a step of room at each end, so none is cut off
  const step = spec.x.length > 1 ? spec.x[1] - spec.x[0] : 3600;
  const scales = { x: { time: true } };
  if (spec.kind === "bars") scales.x.range = (u, low, high) => [low - step / 2, high + step / 2];
  const axes = [axis, { ...axis, size: spec.yNames ? 110 : 50 }];
  if (spec.yNames) {
    scales.y = { range: [-0.5, spec.yNames.length - 0.5] };
    axes[1].values = (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (spec.yNames[t] || "").slice(0, 14) : ""));
    axes[1].splits = () => spec.yNames.map((_, i) => i);
  }
  if (spec.series.some((s) => s.scale === "late")) {
    scales.late = { auto: true };
    axes.push({ ...axis, scale: "late", side: 1, grid: { show: false } });
  }
  return {
    width, height: spec.height || 200, scales, axes,
    cursor: { y: false }, legend: { show: spec.series.length > 1 && !spec.yNames },
    series: [{}, ...spec.series.map((s) => ({
      label: s.label, scale: s.scale || "y", stroke: color(s.color), width: 2,
      fill: spec.kind === "bars" ? color(s.color) + "99" : undefined,
      paths: spec.kind === "points" ? () => null : bars,
      points: spec.kind === "points" ? { show: true, size: 6, fill: color(s.color), stroke: color(s.color) }
        : { show: spec.kind === "lines" },
    }))],
  };
}

// Draw or update every chart on screen; forget the charts of pages left.
export function drawCharts(root) {
  for (const [key, entry] of drawn) {
    if (!entry.node.isConnected) { entry.plot.destroy(); drawn.delete(key); }
  }
  for (const node of root.querySelectorAll("[data-chart]")) {
    const key = node.getAttribute("data-chart");
    const spec = specs.get(key);
    if (!spec) continue;
    const data = [spec.x, ...spec.series.map((s) => s.values)];
    const entry = drawn.get(key);
    const shape = JSON.stringify([spec.kind, spec.series.map((s) => s.label), spec.yNames || []]);
    if (entry && entry.node === node && entry.shape === shape) {
      entry.plot.setData(data);
    } else {
      if (entry) { entry.plot.destroy(); }
      node.replaceChildren();
      const plot = new uPlot(options(spec, Math.max(200, node.clientWidth)), data, node);
      drawn.set(key, { node, plot, shape });
    }
  }
  specs.clear();
}

// A chart fills its box's width, on a phone too.
new ResizeObserver(() => {
  for (const { node, plot } of drawn.values()) {
    const width = Math.max(200, node.clientWidth);
    if (node.isConnected && Math.abs(width - plot.width) > 1) plot.setSize({ width, height: plot.height });
  }
}).observe(document.getElementById("page"));

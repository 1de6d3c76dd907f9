// Bar charts drawn as SVG by hand (no chart library): vertical bars for a series over days,
// horizontal bars for a ranking (per key, per model). Each bar carries data-label and
// data-value, and a <title> for its tooltip.

const SVG = "http://www.w3.org/2000/svg";

function node(tag, attrs = {}, text) {
  const out = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) out.setAttribute(name, String(value));
  if (text !== undefined) out.textContent = text;
  return out;
}

function empty(message) {
  const svg = node("svg", { viewBox: "0 0 400 40", class: "chart-svg", role: "img" });
  svg.append(node("text", { x: 200, y: 24, "text-anchor": "middle", class: "muted" }, message));
  return svg;
}

function bar(attrs, item, format) {
  const rect = node("rect", { ...attrs, class: "bar", "data-label": item.label, "data-value": item.value });
  rect.append(node("title", {}, `${item.label}: ${format(item.value)}`));
  return rect;
}

// items: [{label, value}] in order (one per day); format: value → text.
export function columns(items, format) {
  if (!items.some((i) => i.value > 0)) return empty("No usage in this period.");
  const width = 720, height = 220, left = 64, bottom = 28, top = 12;
  const max = Math.max(...items.map((i) => i.value));
  const step = (width - left) / items.length;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img" });
  for (const fraction of [0, 0.5, 1]) {
    const y = top + (1 - fraction) * (height - top - bottom);
    svg.append(node("line", { x1: left, x2: width, y1: y, y2: y, class: "grid" }),
      node("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(max * fraction)));
  }
  items.forEach((item, i) => {
    const h = (item.value / max) * (height - top - bottom);
    const x = left + i * step + step * 0.15;
    svg.append(bar({ x, y: height - bottom - h, width: Math.max(1, step * 0.7), height: h }, item, format));
    const every = Math.ceil(items.length / 8);
    if (i % every === 0) {
      svg.append(node("text", { x: x + step * 0.35, y: height - 10, "text-anchor": "middle", class: "axis" },
        item.label.slice(5)));
    }
  });
  return svg;
}

// items: [{label, value}], drawn largest first.
export function ranking(items, format) {
  const shown = items.filter((i) => i.value > 0).sort((a, b) => b.value - a.value).slice(0, 12);
  if (!shown.length) return empty("No usage in this period.");
  const width = 400, row = 26, labelWidth = 130, valueWidth = 80;
  const max = shown[0].value;
  const svg = node("svg", { viewBox: `0 0 ${width} ${shown.length * row + 4}`, class: "chart-svg", role: "img" });
  shown.forEach((item, i) => {
    const y = i * row + 4;
    const w = (item.value / max) * (width - labelWidth - valueWidth);
    const name = item.label.length > 18 ? `${item.label.slice(0, 17)}…` : item.label;
    svg.append(node("text", { x: labelWidth - 6, y: y + 15, "text-anchor": "end", class: "axis" }, name),
      bar({ x: labelWidth, y, width: Math.max(1, w), height: row - 8 }, item, format),
      node("text", { x: labelWidth + w + 4, y: y + 15, class: "axis" }, format(item.value)));
  });
  return svg;
}

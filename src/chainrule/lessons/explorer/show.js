// chainrule's gate explorer, part 1: how numbers, arrays and heatmaps are written.
// page.py pastes this file and explorer.js into one function scope, this one first.
// --- numbers ---
function fmt(v) {
  if (typeof v === "string") return v; // nan, inf
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  return String(parseFloat(v.toPrecision(6)));
}
function shapeText(s) {
  return s.shape.length ? s.shape.join("×") : "scalar";
}
function brief(s) {
  if (!s) return "—";
  if ("scalar" in s) return fmt(s.scalar);
  return shapeText(s) + ", ‖·‖ = " + fmt(s.norm);
}
function longText(s) {
  if (!s) return "—";
  if ("scalar" in s) return fmt(s.scalar);
  let t = shapeText(s) + "  norm " + fmt(s.norm) + "  min " + fmt(s.min) + "  max " + fmt(s.max);
  if (s.values) t += "\n[" + s.values.map(fmt).join(", ") + "]";
  return t;
}
function exact(el, s) {
  // the engine's number itself, for a reader (or a test) who wants every digit
  if (!s) return el;
  if ("scalar" in s) el.dataset.value = String(s.scalar);
  else el.dataset.norm = String(s.norm);
  return el;
}

// --- DOM helpers ---
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function heat(s, label) {
  const box = el("figure", "heat");
  const h = s.heat;
  const cell = Math.max(4, Math.min(14, Math.floor(320 / h.cols)));
  const canvas = el("canvas");
  canvas.width = h.cols * cell;
  canvas.height = h.rows * cell;
  const ctx = canvas.getContext("2d");
  for (let i = 0; i < h.cells.length; i++) {
    const v = h.cells[i];
    const t = h.scale > 0 && typeof v === "number" ? Math.max(-1, Math.min(1, v / h.scale)) : 0;
    const w = Math.round(255 * (1 - Math.abs(t)));
    ctx.fillStyle = t >= 0 ? `rgb(255,${w},${w})` : `rgb(${w},${w},255)`;
    ctx.fillRect((i % h.cols) * cell, Math.floor(i / h.cols) * cell, cell, cell);
  }
  box.appendChild(canvas);
  let cap = label + ": " + shapeText(s) + ", norm " + fmt(s.norm);
  if (h.block[0] > 1 || h.block[1] > 1) cap += ` (means of ${h.block.join("×")} blocks)`;
  box.appendChild(el("figcaption", "", cap + "; blue < 0 < red"));
  return box;
}
function show(parent, label, s, heats) {
  // one row "label: value" and, for an array, its heatmap in the row of heatmaps
  const row = exact(el("div", "quantity"), s);
  row.appendChild(el("span", "what", label + ": "));
  row.appendChild(el("span", "number", brief(s)));
  parent.appendChild(row);
  if (s && s.heat) heats.appendChild(heat(s, label));
}

// chainrule's gate explorer, part 2: steps through one forward and one backward pass.
// Every number comes from the JSON data (the engine's); this script only chooses what to show.
// It runs inside the function page.py wraps around show.js and this file.
const data = JSON.parse(document.getElementById("chainrule-data").textContent);
const byId = new Map(data.nodes.map((n) => [n.id, n]));
const F = data.forward.length;
const B = data.backward.length;
const svg = document.querySelector("#drawing svg");
const panel = document.getElementById("panel");
const summaryBox = document.getElementById("summary");
const tooltip = document.getElementById("tooltip");
const SVG_NS = "http://www.w3.org/2000/svg";
const outName = byId.get(data.output).shown;
let pos = 0;
let timer = null;

// How many gradients each node receives (one per gate that sends it one), so that its total
// is shown once all of them have arrived: a value used twice collects two.
const expected = new Map();
for (const step of data.backward) {
  for (const inp of step.inputs) {
    if (inp.sent) expected.set(inp.id, (expected.get(inp.id) || 0) + 1);
  }
}
expected.set(data.output, 1);
const learners = data.nodes.filter((n) => n.kind !== "gate" && n.grad);

function nameOf(n) {
  return n.shown;
}

// --- the drawing: hide what is not computed yet; an overlay for highlights and hovering ---
// A small drawing stands beside the panel, and is drawn larger (up to 1.5 times, and no
// taller than 60% of the window, so that the panel stays in view); the SVG keeps its viewBox.
const main = document.querySelector("main");
const width = Number(svg.getAttribute("width"));
const height = Number(svg.getAttribute("height"));
const side = width < main.clientWidth * 0.5;
main.classList.toggle("side", side);
const room = main.clientWidth * (side ? 0.55 : 1) - 40;
const zoom = Math.min(1.5, room / width, (window.innerHeight * 0.6) / height);
if (zoom > 1) {
  svg.setAttribute("width", Math.floor(width * zoom));
  svg.setAttribute("height", Math.floor(height * zoom));
}
const overlay = document.createElementNS(SVG_NS, "g");
overlay.setAttribute("class", "overlay");
// under the drawing, so that a ring does not hide a name; it still gets the pointer (CSS)
svg.insertBefore(overlay, svg.querySelector("text"));
const marks = new Map();
for (const n of data.nodes) {
  if (!n.box) continue; // a member of a collapsed box: the box stands for it
  const [x, y, w, h, shape] = n.box;
  const m = document.createElementNS(SVG_NS, shape === "circle" ? "circle" : "rect");
  if (shape === "circle") {
    m.setAttribute("cx", x);
    m.setAttribute("cy", y);
    m.setAttribute("r", w / 2 + 4);
  } else {
    m.setAttribute("x", x - w / 2 - 4);
    m.setAttribute("y", y - h / 2 - 4);
    m.setAttribute("width", w + 8);
    m.setAttribute("height", h + 8);
    m.setAttribute("rx", 8);
  }
  m.setAttribute("class", "mark");
  m.dataset.node = n.id;
  m.addEventListener("mouseenter", (ev) => hover(n, ev));
  m.addEventListener("mousemove", (ev) => place(ev));
  m.addEventListener("mouseleave", () => (tooltip.hidden = true));
  overlay.appendChild(m);
  marks.set(n.id, m);
}
function mark(id, cls) {
  // the node's own mark, or that of the box it is collapsed into
  const m = marks.get(id) || marks.get(byId.get(id).in);
  if (m) m.setAttribute("class", "mark " + cls);
}
function texts(cls, id) {
  return svg.querySelectorAll(`text.${cls}[data-node="${CSS.escape(id)}"]`);
}

// --- what is known at position pos ---
function state() {
  const fwd = Math.min(pos, F);
  const bwd = Math.max(0, pos - F);
  const computed = new Set(data.forward.slice(0, fwd));
  const received = new Map();
  for (const step of data.backward.slice(0, bwd)) {
    if (step.seed) received.set(step.node, 1);
    for (const inp of step.inputs) {
      if (inp.sent) received.set(inp.id, (received.get(inp.id) || 0) + 1);
    }
  }
  const complete = (id) => expected.has(id) && received.get(id) === expected.get(id);
  return { fwd, bwd, computed, received, complete };
}

function hover(n, ev) {
  const st = state();
  const known = n.kind !== "gate" || st.computed.has(n.id);
  const members = data.nodes.filter((m) => m.in === n.id).length;
  if (members) {
    tooltip.textContent = `${n.label}: ${members} nodes drawn as one box; step through them to see each gate`;
    tooltip.hidden = false;
    return place(ev);
  }
  let t = nameOf(n) + (n.gate ? "  (gate " + n.gate + ")" : "  (" + n.kind + ")");
  t += "\nvalue: " + (known ? longText(n.value) : "not computed yet");
  if (n.grad) t += "\ngradient: " + (st.complete(n.id) ? longText(n.grad) : "not reached yet");
  tooltip.textContent = t;
  tooltip.hidden = false;
  place(ev);
}
function place(ev) {
  tooltip.style.left = ev.pageX + 14 + "px";
  tooltip.style.top = ev.pageY + 14 + "px";
}

// --- the panel: the current step in the cheatsheet's words ---
function intro() {
  panel.appendChild(el("h2", "", "Ready"));
  panel.appendChild(
    el(
      "p",
      "",
      "The inputs and weights are known. Step forward (→) to compute each gate's output from " +
        "left to right; step backward (←) to send the gradient of " +
        outName +
        " back from right to left, one gate at a time."
    )
  );
}
function inBox(n) {
  if (n.in) panel.appendChild(el("p", "note", `(drawn inside the collapsed box "${n.in}")`));
}
function forwardStep(n) {
  panel.appendChild(el("h2", "", `Forward ${pos} of ${F}: gate ${n.label} computes ${nameOf(n)}`));
  inBox(n);
  const heats = el("div", "heats");
  for (const id of n.inputs) show(panel, "input " + nameOf(byId.get(id)), byId.get(id).value, heats);
  show(panel, "output " + nameOf(n), n.value, heats);
  if (n.formula) panel.appendChild(el("p", "formula", "It remembers what its local gradient needs: " + n.formula));
  panel.appendChild(heats);
}
function seedStep(step) {
  panel.appendChild(el("h2", "", `Backward 1 of ${B}: start at the output`));
  panel.appendChild(el("p", "", `The gradient of ${outName} with respect to itself is 1.`));
  show(panel, `d${outName}/d${outName}`, step.upstream, panel);
}
function backwardStep(step, k) {
  const n = byId.get(step.node);
  panel.appendChild(el("h2", "", `Backward ${k} of ${B}: gate ${n.label}` + (n.name ? ` (${n.name})` : "")));
  inBox(n);
  panel.appendChild(
    el("p", "", "It receives the upstream gradient, multiplies it by its local gradient, and sends the product to each input.")
  );
  const heats = el("div", "heats");
  show(panel, `upstream gradient d${outName}/d${nameOf(n)}`, step.upstream, heats);
  if (n.formula) panel.appendChild(el("p", "formula", "local gradient: " + n.formula));
  const table = el("table", "sent");
  const head = el("tr");
  for (const h of ["input", "local gradient", "upstream × local = sent"]) head.appendChild(el("th", "", h));
  table.appendChild(head);
  for (const inp of step.inputs) {
    const row = el("tr");
    row.dataset.node = inp.id;
    row.appendChild(el("td", "", nameOf(byId.get(inp.id))));
    row.appendChild(exact(el("td", "local", inp.local ? brief(inp.local) : inp.sent ? "see formula" : "—"), inp.local));
    row.appendChild(exact(el("td", inp.sent ? "sent" : "none", inp.sent ? brief(inp.sent) : "nothing (needs no gradient)"), inp.sent));
    table.appendChild(row);
  }
  panel.appendChild(table);
  for (const inp of step.inputs) {
    if (inp.sent && inp.sent.heat) heats.appendChild(heat(inp.sent, "sent to " + nameOf(byId.get(inp.id))));
  }
  panel.appendChild(heats);
  const shared = step.inputs.filter((i) => i.sent && expected.get(i.id) > 1);
  for (const i of shared) {
    panel.appendChild(
      el("p", "note", `${nameOf(byId.get(i.id))} is used by ${expected.get(i.id)} gates: the gradients they send add up.`)
    );
  }
}

// --- the summary: every learnable leaf's gradient, filled in as it completes ---
function summary(st) {
  summaryBox.replaceChildren();
  summaryBox.appendChild(el("h2", "", "Gradients of the inputs and weights"));
  const table = el("table", "grads");
  const head = el("tr");
  for (const h of ["", "gradient of " + outName]) head.appendChild(el("th", "", h));
  table.appendChild(head);
  for (const n of learners) {
    const row = el("tr");
    row.dataset.node = n.id;
    row.appendChild(el("td", "", nameOf(n)));
    const done = st.complete(n.id);
    row.appendChild(done ? exact(el("td", "grad", brief(n.grad)), n.grad) : el("td", "pending", "…"));
    table.appendChild(row);
  }
  summaryBox.appendChild(table);
  if (pos === F + B) {
    summaryBox.appendChild(el("p", "done", "One forward + one backward pass gave the gradient of every weight."));
  }
}

function render() {
  const st = state();
  for (const n of data.nodes) {
    const shown = n.kind !== "gate" || st.computed.has(n.id);
    for (const t of texts("value", n.id)) t.classList.toggle("hidden", !shown);
    for (const t of texts("grad", n.id)) t.classList.toggle("hidden", !st.complete(n.id));
  }
  for (const m of marks.values()) m.setAttribute("class", "mark");
  panel.replaceChildren();
  let current = null;
  if (st.bwd > 0) {
    const step = data.backward[st.bwd - 1];
    current = step.node;
    for (const inp of step.inputs) if (inp.sent) mark(inp.id, "receiving");
    if (step.seed) seedStep(step);
    else backwardStep(step, st.bwd);
    mark(current, "backward");
  } else if (st.fwd > 0) {
    current = data.forward[st.fwd - 1];
    forwardStep(byId.get(current));
    mark(current, "forward");
  } else {
    intro();
  }
  summary(st);
  document.getElementById("position").textContent =
    pos <= F ? `forward ${st.fwd}/${F}` : `backward ${st.bwd}/${B}`;
  document.getElementById("forward").disabled = pos >= F;
  document.getElementById("backward").disabled = pos >= F + B;
  document.body.dataset.done = String(pos === F + B);
  const shown = current && (marks.get(current) || marks.get(byId.get(current).in));
  if (shown) shown.scrollIntoView({ block: "nearest", inline: "nearest" });
}

// --- controls ---
function stepForward() {
  if (pos < F) pos += 1;
  render();
}
function stepBackward() {
  // the backward pass needs every gate's forward value: finish the forward pass first
  if (pos < F) pos = F;
  if (pos < F + B) pos += 1;
  render();
}
function play() {
  if (timer) return pause();
  if (pos >= F + B) pos = 0;
  document.getElementById("play").textContent = "❚❚ pause";
  timer = setInterval(() => {
    if (pos >= F + B) return pause();
    if (pos < F) stepForward();
    else stepBackward();
  }, 900);
}
function pause() {
  clearInterval(timer);
  timer = null;
  document.getElementById("play").textContent = "▶▶ play";
}
function reset() {
  pause();
  pos = 0;
  render();
}
document.getElementById("forward").addEventListener("click", stepForward);
document.getElementById("backward").addEventListener("click", stepBackward);
document.getElementById("play").addEventListener("click", play);
document.getElementById("reset").addEventListener("click", reset);
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLButtonElement && ev.key === " ") return; // the button's own click
  const actions = { ArrowRight: stepForward, ArrowLeft: stepBackward, " ": play, r: reset, Home: reset };
  if (actions[ev.key]) {
    ev.preventDefault();
    actions[ev.key]();
  }
});
render();

// The report's behaviour: draw the Plotly figures (their JSON comes from Python), wire their clicks to
// the sample browser, and render the browser's filtered list of samples as conversations.
(function () {
  "use strict";
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const FIGURES = read("figures-data");
  const SAMPLES = read("samples-data");
  const COUNTS = read("counts-data");
  const PAGE = 50;
  const form = document.getElementById("filters");
  const list = document.getElementById("sample-list");
  const more = document.getElementById("more");
  let shown = PAGE;

  const field = (s, name) => name.startsWith("persona.") ? (s.persona[name.slice(8)] || "") : (s[name] || "");
  const SELECTS = Array.from(form.querySelectorAll("select")).map((el) => el.name);

  function fillSelects() {
    for (const name of SELECTS) {
      const el = form.elements[name];
      const values = Array.from(new Set(SAMPLES.map((s) => field(s, name)))).filter((v) => v !== "").sort();
      el.replaceChildren();
      el.add(new Option("any", ""));
      for (const v of values) el.add(new Option(v, v));
    }
  }

  function matches(s) {
    for (const name of SELECTS) {
      const want = form.elements[name].value;
      if (want !== "" && field(s, name) !== want) return false;
    }
    const q = form.elements.q.value.trim().toLowerCase();
    if (q && !s.messages.some((m) => (m.content + " " + (m.reasoning || "")).toLowerCase().includes(q))) return false;
    return true;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function card(s) {
    const box = el("article", "sample " + s.status);
    const drop = s.verdicts.length && !s.verdicts[s.verdicts.length - 1].keep ? s.verdicts[s.verdicts.length - 1] : null;
    box.dataset.id = s.id;
    const head = el("div", "sample-head");
    head.append(el("span", "badge " + s.status, s.status === "kept" ? "kept" : "dropped at " + s.step + ": " + (s.reason || "(no reason)")));
    head.append(el("span", "kind", s.kind + (s.case ? " · " + s.case : "")));
    head.append(el("span", "gen", s.generator || ""));
    head.append(el("code", "sid", s.id));
    box.append(head);
    if (s.persona_description) box.append(el("p", "persona", s.persona_description));
    if (s.tools.length) box.append(el("p", "tools", "tools offered: " + s.tools.join(", ")));
    for (const m of s.messages) {
      const turn = el("div", "msg " + m.role);
      turn.append(el("div", "role", m.role + (m.name ? " (" + m.name + ")" : "")));
      if (m.reasoning) turn.append(el("div", "reasoning", m.reasoning));
      if (m.content) turn.append(el("div", "content", m.content));
      for (const c of m.tool_calls || []) turn.append(el("div", "call", c.name + "(" + JSON.stringify(c.arguments) + ")"));
      box.append(turn);
    }
    if (!s.messages.length && drop) box.append(el("p", "note", "The step dropped its seed: what it tried is in the verdict's details below."));
    const verdicts = el("details", "verdicts");
    if (!s.messages.length) verdicts.open = true;
    verdicts.append(el("summary", null, "verdicts and provenance"));
    for (const v of s.verdicts) {
      const line = (v.keep ? "kept by " : "dropped by ") + v.filter + (v.reason ? ": " + v.reason : "") +
        (v.score !== null ? " (score " + v.score + ")" : "") + (v.duplicate_of ? " duplicate of " + v.duplicate_of : "");
      verdicts.append(el("div", v.keep ? "v-keep" : "v-drop", line));
      if (v.details) verdicts.append(el("pre", "v-details", v.details));
    }
    verdicts.append(el("pre", null, JSON.stringify(s.provenance, null, 1)));
    box.append(verdicts);
    return box;
  }

  function render() {
    const hits = SAMPLES.filter(matches);
    list.replaceChildren(...hits.slice(0, shown).map(card));
    let note = hits.length + " of " + SAMPLES.length + " samples in the browser match";
    const status = form.elements.status.value, step = form.elements.step.value, reason = form.elements.reason.value;
    const total = COUNTS[status + "|" + step + "|" + reason];
    if (status && step && total !== undefined && total > hits.length) note += " (the run has " + total + " of these)";
    document.getElementById("match-count").textContent = note;
    more.hidden = hits.length <= shown;
  }

  function applyFilter(values) {
    form.reset();
    for (const [name, value] of Object.entries(values)) {
      const select = form.elements[name];
      if (!Array.from(select.options).some((o) => o.value === value)) select.add(new Option(value, value));
      select.value = value;
    }
    shown = PAGE;
    render();
    document.getElementById("samples").scrollIntoView();
  }

  // Figure clicks: customdata says which samples a bar stands for.
  const CLICKS = {
    drops: (d) => ({status: "dropped", step: d[0], reason: d[1]}),
    yield_process: (d) => d[1] === "kept" ? {status: "kept", generator: d[0]} : {status: "dropped", step: d[1], generator: d[0]},
    yield_case: (d) => d[1] === "kept" ? {status: "kept", case: d[0]} : {status: "dropped", step: d[1], case: d[0]},
  };

  for (const div of document.querySelectorAll("[data-fig]")) {
    const name = div.dataset.fig;
    const fig = FIGURES[name];
    // responsive: Plotly resizes to its div on window resizes, so the div keeps the figure's own height.
    if (fig.layout.height) div.style.height = fig.layout.height + "px";
    Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
    if (CLICKS[name]) {
      div.on("plotly_click", (event) => {
        const d = event.points[0] && event.points[0].customdata;
        if (d) applyFilter(CLICKS[name](d));
      });
    }
  }

  for (const a of document.querySelectorAll("a.reason")) {
    a.addEventListener("click", (event) => {
      event.preventDefault();
      applyFilter({status: a.dataset.status, step: a.dataset.step, reason: a.dataset.reason});
    });
  }
  form.addEventListener("input", () => { shown = PAGE; render(); });
  document.getElementById("clear-filters").addEventListener("click", () => { form.reset(); shown = PAGE; render(); });
  more.addEventListener("click", () => { shown += PAGE; render(); });
  fillSelects();
  render();
})();

// The page of `mathcalc serve`: the form, the calls to /api/*, and the outputs.
// No framework and no build step. Everything the server sends back is put in
// the page as text (textContent) or typeset by KaTeX's DOM renderer, never
// as HTML; the Content-Security-Policy allows no inline script anyway.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("form");
  const fields = { expression: $("expression"), wrt: $("wrt"), shapes: $("shapes"), order: $("order") };
  const backend = $("backend");
  let info = null;         // GET /api/info
  let last = null;         // the last answer of /api/diff, for the copy buttons and the check
  let lastRequest = null;  // its request body
  let deriving = null;     // AbortController of the derivation in flight
  let shapesSeq = 0;       // only the newest /api/shapes answer is shown
  let shapesTimer = 0;

  // -- talking to the server ------------------------------------------------

  async function post(path, body, signal) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: signal,
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      return { status: 0, data: { error: { kind: "NetworkError",
        message: "the server did not answer (is `mathcalc serve` still running?)" } } };
    }
    let data;
    try {
      data = await response.json();
    } catch (err) {
      data = { error: { kind: "HTTP " + response.status, message: response.statusText || "no answer" } };
    }
    return { status: response.status, data: data };
  }

  function requestBody() {
    const body = {
      expression: fields.expression.value,
      wrt: fields.wrt.value.trim(),
      order: parseInt(fields.order.value, 10) || 1,
      shapes: fields.shapes.value,
      backend: backend.value || "numpy",
    };
    return body;
  }

  // -- the URL follows the form (links can be shared) -----------------------

  function syncURL() {
    const params = new URLSearchParams();
    if (fields.expression.value) params.set("expression", fields.expression.value);
    if (fields.wrt.value.trim()) params.set("wrt", fields.wrt.value.trim());
    if (fields.shapes.value.trim()) params.set("shapes", fields.shapes.value.trim());
    if (fields.order.value && fields.order.value !== "1") params.set("order", fields.order.value);
    if (backend.value && backend.value !== "numpy") params.set("backend", backend.value);
    const query = params.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  }

  function fillFromURL() {
    const params = new URLSearchParams(location.search);
    if (params.has("expression")) fields.expression.value = params.get("expression");
    if (params.has("wrt")) fields.wrt.value = params.get("wrt");
    if (params.has("shapes")) fields.shapes.value = params.get("shapes");
    if (params.has("order")) fields.order.value = params.get("order");
    if (params.has("backend")) {
      const wanted = params.get("backend");
      if (Array.from(backend.options).some((o) => o.value === wanted)) backend.value = wanted;
    }
    return params.has("expression") && fields.wrt.value.trim() !== "";
  }

  // -- showing things -------------------------------------------------------

  function typeset(el, tex) {
    el.textContent = "";
    if (!tex) return;
    if (window.katex) {
      try {
        window.katex.render(tex, el, { displayMode: true, throwOnError: true, strict: "ignore",
                                       output: "htmlAndMathml" });
        return;
      } catch (err) {
        const note = document.createElement("p");
        note.className = "note";
        note.textContent = "KaTeX could not typeset this (" + (err && err.message) + "); the LaTeX:";
        el.appendChild(note);
      }
    }
    const pre = document.createElement("pre");
    pre.className = "plain";
    pre.textContent = tex;
    el.appendChild(pre);
  }

  function showError(error) {
    const box = $("error");
    const kind = error && error.kind ? error.kind + ": " : "";
    box.textContent = kind + (error && error.message ? error.message : "something went wrong");
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function setStatus(text) { $("status").textContent = text; }

  // #where and #steps: the display, the text, or a note saying why there is none.
  function showOptional(name, tex, text, note) {
    typeset($(name + "-math"), tex);
    $(name + "-text").textContent = text || "";
    $(name + "-note").textContent = text ? "" : (note || "");
    const details = $(name + "-details");
    if (details) details.hidden = !text;
  }

  function formatShape(shape) {
    if (!shape || shape.length === 0) return "()";
    if (shape.length === 1) return "(" + shape[0] + ",)";
    return "(" + shape.join(", ") + ")";
  }

  function showResult(data) {
    last = data;
    const notes = data.notes || {};
    $("outputs").hidden = false;
    typeset($("result"), data.derivation_latex || data.latex);
    $("result-text").textContent = data.result;
    $("result-shape").textContent = "shape " + formatShape(data.shape);
    showOptional("where", data.where_latex, data.where, notes.where);
    showOptional("steps", data.steps_latex, data.steps, notes.steps);
    const code = $("code");
    code.classList.toggle("note", !data.code);
    code.textContent = data.code || notes.code || "";
    $("check").textContent = "";
    showInferred(data);
  }

  function showInferred(data) {
    const parts = [];
    const structure = data.structure || {};
    for (const [name, shape] of Object.entries(data.variables || {})) {
      parts.push(name + ": " + formatShape(shape) + (structure[name] ? " " + structure[name] : ""));
    }
    if (data.expression_shape || data.shape) {
      parts.push("expression: " + formatShape(data.expression_shape || data.shape));
    }
    $("inferred").textContent = parts.join(" · ");
  }

  // -- actions ----------------------------------------------------------------

  async function derive() {
    syncURL();
    clearError();
    const body = requestBody();
    if (!body.expression.trim()) { showError({ message: "type an expression first" }); return; }
    if (!body.wrt) { showError({ message: "name the variable to differentiate with respect to (the field \u201cWith respect to\u201d)" }); return; }
    if (deriving) deriving.abort();
    const controller = new AbortController();
    deriving = controller;
    setStatus("deriving\u2026");
    let answer;
    try {
      answer = await post("/api/diff", body, controller.signal);
    } catch (err) {
      return;  // aborted: a newer derivation is on its way
    } finally {
      if (deriving === controller) deriving = null;
    }
    setStatus("");
    if (answer.status === 200) {
      lastRequest = body;
      showResult(answer.data);
    } else {
      $("outputs").hidden = true;
      last = null;
      showError(answer.data.error);
    }
  }

  async function runCheck() {
    if (!lastRequest) return;
    const out = $("check");
    out.textContent = "checking\u2026";
    const body = Object.assign({}, lastRequest);
    delete body.backend;
    const answer = await post("/api/check", body);
    if (answer.status === 200) {
      out.textContent = (answer.data.ok ? "ok: " : "FAILED: ") + answer.data.text;
    } else {
      const e = answer.data.error || {};
      out.textContent = (e.kind ? e.kind + ": " : "") + (e.message || "no answer");
    }
  }

  async function inferShapes() {
    const expression = fields.expression.value;
    const seq = ++shapesSeq;
    if (!expression.trim()) { $("inferred").textContent = ""; return; }
    const answer = await post("/api/shapes", { expression: expression, shapes: fields.shapes.value });
    if (seq !== shapesSeq) return;
    if (answer.status === 200 && !answer.data.error) {
      showInferred(answer.data);
    } else {
      $("inferred").textContent = "\u2014 (" + ((answer.data.error || {}).kind || "error") + ")";
    }
  }

  function scheduleShapes() {
    clearTimeout(shapesTimer);
    shapesTimer = setTimeout(inferShapes, 300);
  }

  async function copy(button) {
    const key = button.dataset.copy;
    const text = last ? (last[key] || "") : "";
    if (!text) return;
    const label = button.textContent;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (err) {
      // No clipboard permission (or an old browser): select the text instead.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
    }
    button.textContent = ok ? "Copied" : "Select and press Ctrl+C";
    setTimeout(() => { button.textContent = label; }, 1500);
  }

  function useExample(button) {
    const d = button.dataset;
    fields.expression.value = d.expression;
    fields.wrt.value = d.wrt;
    const structure = info && info.features && info.features.structure;
    fields.shapes.value = (!structure && d.shapesPlain !== undefined) ? d.shapesPlain : d.shapes;
    fields.order.value = "1";
    derive();
  }

  // -- wiring -------------------------------------------------------------------

  form.addEventListener("submit", (event) => { event.preventDefault(); derive(); });
  fields.expression.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      derive();
    }
  });
  for (const el of Object.values(fields)) {
    el.addEventListener("input", () => { syncURL(); if (el !== fields.wrt && el !== fields.order) scheduleShapes(); });
  }
  backend.addEventListener("change", () => { syncURL(); if (last) derive(); });
  $("run-check").addEventListener("click", runCheck);
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copy(button));
  }
  for (const button of document.querySelectorAll("button.example")) {
    button.addEventListener("click", () => useExample(button));
  }

  async function start() {
    try {
      const response = await fetch("/api/info");
      info = await response.json();
    } catch (err) {
      info = null;
    }
    if (info) {
      $("version").textContent = info.version;
      const backends = (info.features && info.features.backends) || ["numpy"];
      backend.textContent = "";
      for (const name of backends) {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        backend.appendChild(option);
      }
    }
    if (fillFromURL()) {
      derive();
    } else if (fields.expression.value) {
      scheduleShapes();
    }
  }

  start();
})();

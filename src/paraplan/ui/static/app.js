// paraplan web page: form <-> URL query <-> JSON API; draws the returned view (summary, tables, Plotly charts).
// No numbers are computed here: everything shown comes from the API's response.
"use strict";

const PAGE = document.body.dataset.page;
const LIST_FIELDS = new Set(["rates", "tps", "accelerators", "allow"]);
const ENDPOINTS = {
  training: { estimate: "/api/train/estimate", plan: "/api/train/plan" },
  serving: { estimate: "/api/serve/estimate", simulate: "/api/serve/simulate", plan: "/api/serve/plan" },
};

const $ = (sel) => document.querySelector(sel);
const form = $("#query");

function b64encode(text) {
  return btoa(unescape(encodeURIComponent(text))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function b64decode(text) {
  const s = text.replace(/-/g, "+").replace(/_/g, "/");
  return decodeURIComponent(escape(atob(s + "===".slice((s.length + 3) % 4))));
}

function mode() {
  const m = $("#f-mode");
  return m ? m.value : "";
}

function showModes() {
  const m = mode();
  document.querySelectorAll("[data-modes]").forEach((el) => {
    el.hidden = m && !el.dataset.modes.split(" ").includes(m);
  });
}

// ---------------------------------------------------------------- form <-> URL query
function formParams() {
  const params = new URLSearchParams();
  form.querySelectorAll("[name]").forEach((el) => {
    const label = el.closest("[data-modes]");
    if (label && label.hidden) return;
    const v = el.value.trim();
    if (v === "") return;
    params.set(el.name, el.name === "hf_config" ? b64encode(v) : v);
  });
  return params;
}

function fillForm(params) {
  params.forEach((v, k) => {
    const el = form.querySelector(`[name="${k}"]`);
    if (!el) return;
    el.value = k === "hf_config" ? b64decode(v) : v;
  });
  if ($("#f-hf_config") && $("#f-hf_config").value) {
    $("#upload-status").textContent = `uploaded config: ${$("#f-hf_name").value || "config.json"}`;
  }
  showModes();
}

// ---------------------------------------------------------------- request bodies
function bodyFrom(params) {
  const body = {};
  params.forEach((v, k) => {
    if (k === "mode") return;
    if (k === "hf_config") body.hf_config = JSON.parse(b64decode(v));
    else if (LIST_FIELDS.has(k)) body[k] = v.split(",").map((x) => x.trim()).filter((x) => x);
    else if (k === "fix") body[k] = v.split(";").map((x) => x.trim()).filter((x) => x);
    else body[k] = v;
  });
  return body;
}

function comparePlans(text) {
  return text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map((line) => {
    const plan = {};
    line.split(/\s+/).forEach((pair) => {
      const i = pair.indexOf("=");
      if (i > 0) plan[pair.slice(0, i)] = pair.slice(i + 1);
    });
    return plan;
  });
}

function request(params) {
  if (PAGE === "training" || PAGE === "serving") {
    return { url: ENDPOINTS[PAGE][params.get("mode") || "estimate"], method: "POST", body: bodyFrom(params) };
  }
  if (PAGE === "compare") {
    return { url: "/api/train/compare", method: "POST", body: { plans: comparePlans(params.get("plans") || "") } };
  }
  if (PAGE === "claims") {
    const p = params.get("paper");
    return { url: "/api/claims" + (p ? `?paper=${encodeURIComponent(p)}` : ""), method: "GET" };
  }
  if (PAGE === "validation") {
    return { url: `/api/validation/${params.get("dataset") || "train"}?layer=${params.get("layer") || "curves"}`,
             method: "GET" };
  }
  throw new Error("unknown page");
}

// ---------------------------------------------------------------- drawing
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  });
  if (text !== undefined) e.textContent = text;
  return e;
}

function cellOf(c) {
  if (c !== null && typeof c === "object") return c;
  return { text: String(c), value: null };
}

function drawView(view) {
  const out = $("#result");
  out.replaceChildren();
  out.appendChild(el("h2", { id: "result-title" }, view.title));
  if (view.summary && view.summary.length) {
    const dl = el("dl", { class: "summary", id: "summary" });
    view.summary.forEach((s) => {
      dl.appendChild(el("dt", {}, s.label));
      const dd = el("dd", { "data-key": s.key, "data-value": s.value === null || s.value === undefined ? null
        : String(s.value) }, s.text);
      dl.appendChild(dd);
    });
    out.appendChild(dl);
  }
  const names = Object.keys(view.charts || {});
  if (names.length) {
    const grid = el("div", { class: "charts" });
    out.appendChild(grid);
    // lay out every chart's box first, then draw (Plotly sizes a chart from its box when drawn)
    const divs = names.map((name) => {
      const div = el("div", { class: "chart" + (name === "timeline" || name === "scatter" ? " full" : ""),
                              id: `chart-${name}`, "data-chart": name });
      grid.appendChild(div);
      return div;
    });
    names.forEach((name, i) => {
      const fig = view.charts[name];
      Plotly.newPlot(divs[i], fig.data, fig.layout, { responsive: true, displaylogo: false });
    });
  }
  (view.tables || []).forEach((t, ti) => {
    out.appendChild(el("h3", {}, t.title));
    const wrap = el("div", { class: "table-wrap" });
    const table = el("table", { "data-table": String(ti) });
    const head = el("tr");
    t.columns.forEach((c) => head.appendChild(el("th", {}, c)));
    table.appendChild(el("thead")).appendChild(head);
    const tb = el("tbody");
    t.rows.forEach((r) => {
      const tr = el("tr");
      r.forEach((c) => {
        const cell = cellOf(c);
        tr.appendChild(el("td", { class: cell.value !== null && cell.value !== undefined ? "num" : null,
          "data-value": cell.value === null || cell.value === undefined ? null : String(cell.value) }, cell.text));
      });
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    wrap.appendChild(table);
    out.appendChild(wrap);
    if (t.note) out.appendChild(el("p", { class: "note" }, t.note));
  });
}

function showError(msg) {
  const e = $("#error");
  e.textContent = msg;
  e.hidden = false;
}

async function run(params, push) {
  $("#error").hidden = true;
  $("#status").textContent = "working...";
  $("#run").disabled = true;
  const query = "?" + params.toString();
  if (push) history.pushState(null, "", query);
  try {
    const r = request(params);
    const opts = { method: r.method, headers: { "content-type": "application/json" } };
    if (r.body) opts.body = JSON.stringify(r.body);
    const resp = await fetch(r.url, opts);
    const data = await resp.json();
    if (!resp.ok) {
      showError(`error: ${typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)}`);
      $("#result").replaceChildren();
      $("#status").textContent = "";
      return;
    }
    window.lastResult = data;
    drawView(data.view);
    $("#status").textContent = "done";
    const share = $("#share");
    share.href = location.pathname + query;
    share.hidden = false;
    const tc = $("#to-compare");
    if (PAGE === "training" && (params.get("mode") || "estimate") === "estimate" && !params.get("hf_config")) {
      const line = [...params.entries()].filter(([k]) => k !== "mode").map(([k, v]) => `${k}=${v}`).join(" ");
      tc.href = "/compare?" + new URLSearchParams({ plans: line }).toString();
      tc.hidden = false;
    }
  } catch (err) {
    showError(`error: ${err}`);
    $("#status").textContent = "";
  } finally {
    $("#run").disabled = false;
  }
}

// ---------------------------------------------------------------- pickers and upload
async function loadCatalog() {
  if (!$("#f-model") && !$("#f-cluster")) return;
  const resp = await fetch("/api/catalog");
  const cat = await resp.json();
  const models = $("#dl-models");
  cat.models.forEach((m) => models.appendChild(el("option", { value: m.name }, `${m.params_b}B`)));
  const cl = $("#dl-clusters");
  cat.clusters.forEach((c) => cl.appendChild(el("option", { value: c.name }, `${c.n} x ${c.accelerator}`)));
  cat.accelerators.forEach((a) => cl.appendChild(el("option", { value: a.name }, `${a.memory_gb} GB`)));
}

function wireUpload() {
  const up = $("#f-upload");
  if (!up) return;
  up.addEventListener("change", async () => {
    const f = up.files[0];
    if (!f) return;
    const fd = new FormData();
    fd.append("file", f);
    const resp = await fetch("/api/upload/hf-config", { method: "POST", body: fd });
    const data = await resp.json();
    if (!resp.ok) {
      showError(`error: ${data.detail}`);
      return;
    }
    $("#f-hf_config").value = JSON.stringify(data.hf_config);
    $("#f-hf_name").value = data.name;
    $("#f-model").value = "";
    $("#upload-status").textContent = `uploaded config: ${data.name} (${(data.n_params / 1e9).toFixed(2)}B params)`;
  });
}

// ---------------------------------------------------------------- start
if (form) {
  if ($("#f-mode")) $("#f-mode").addEventListener("change", showModes);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(formParams(), true);
  });
  window.addEventListener("popstate", () => {
    const p = new URLSearchParams(location.search);
    fillForm(p);
    if ([...p.keys()].length) run(p, false);
  });
  wireUpload();
  loadCatalog();
  const initial = new URLSearchParams(location.search);
  fillForm(initial);
  showModes();
  if ([...initial.keys()].length) run(initial, false);
}

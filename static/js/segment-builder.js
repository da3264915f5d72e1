/* Rule segment builder: nested AND/OR/NOT groups of conditions, field-aware operators and values,
   a live member count (debounced POST to the count endpoint), problems shown on the condition they
   concern. No framework: the DOM is the state; `serialize` walks it and writes the JSON the server
   validates (personalization/rules/language.py). */
(function () {
  "use strict";

  const root = document.getElementById("builder");
  if (!root) return;
  const readJSON = (id) => JSON.parse(document.getElementById(id).textContent);
  const catalog = readJSON("rule-catalog");
  const fields = Object.fromEntries(catalog.fields.map((f) => [f.key, f]));
  const textarea = document.getElementById("id_definition");
  const countBox = document.getElementById("live-count");
  const countValue = document.getElementById("live-count-value");
  const countNote = document.getElementById("live-count-note");
  const generalErrors = document.getElementById("builder-errors");
  const form = root.closest("form");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const countUrl = root.dataset.countUrl;
  const segmentId = root.dataset.segment ? Number(root.dataset.segment) : null;
  const total = Number(root.dataset.total || 0);
  let uid = 0;

  /* ---------- small DOM helpers ---------- */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }
  function labelled(control, text) {
    control.id = control.id || "rb-" + ++uid;
    const wrap = el("span", { class: "rb-control" });
    wrap.append(el("label", { class: "visually-hidden", for: control.id, text: text }), control);
    return wrap;
  }
  function select(options, value, text, extraClass) {
    const s = el("select", { class: extraClass || "" });
    for (const [v, label, group] of options) {
      let parent = s;
      if (group) {
        parent = [...s.children].find((o) => o.tagName === "OPTGROUP" && o.label === group);
        if (!parent) { parent = el("optgroup", { label: group }); s.append(parent); }
      }
      parent.append(el("option", { value: String(v), text: label }));
    }
    if (value !== undefined && value !== null) s.value = String(value);
    return labelled(s, text);
  }
  function input(type, value, text, attrs) {
    const i = el("input", Object.assign({ type: type, class: "rb-input-" + type }, attrs || {}));
    if (value !== undefined && value !== null) i.value = String(value);
    return labelled(i, text);
  }
  const pick = (node, sel) => node.querySelector(":scope > " + sel);

  /* ---------- types and operators ---------- */
  function valueType(condEl) {
    const f = fields[condEl.dataset.field];
    if (f.key === "attribute") {
      const t = condEl.querySelector(".rb-attr-type select");
      return t ? t.value : "text";
    }
    return f.type;
  }
  function opsFor(condEl) {
    return catalog.type_ops[valueType(condEl)];
  }
  const opLabel = (op) => catalog.ops[op].label;

  /* ---------- conditions ---------- */
  function newCondition(data) {
    data = data || { field: "email", op: "contains" };
    if (!fields[data.field]) data = { field: "email", op: "contains" };
    const condEl = el("div", { class: "rb-cond", "data-kind": "cond", "data-field": data.field, role: "group" });
    const fieldOptions = catalog.fields.map((f) => [f.key, f.label, f.group]);
    const fieldSel = select(fieldOptions, data.field, "Field", "rb-field");
    const params = el("span", { class: "rb-params" });
    const opWrap = el("span", { class: "rb-op" });
    const valueWrap = el("span", { class: "rb-value" });
    const tail = el("span", { class: "rb-tail" });
    const remove = el("button", { type: "button", class: "btn small rb-remove", text: "×", title: "Remove this condition", "aria-label": "Remove condition" });
    remove.addEventListener("click", () => { condEl.remove(); changed(); });
    const err = el("p", { class: "rb-error", role: "alert", hidden: true });
    condEl.append(fieldSel, params, opWrap, valueWrap, tail, remove, err);
    fieldSel.querySelector("select").addEventListener("change", (e) => {
      condEl.dataset.field = e.target.value;
      buildParams(condEl, {});
      buildOp(condEl, null);
      buildValue(condEl, undefined);
      changed();
    });
    buildParams(condEl, data);
    buildOp(condEl, data.op);
    buildValue(condEl, data.value);
    return condEl;
  }

  function buildParams(condEl, data) {
    const f = fields[condEl.dataset.field];
    const params = pick(condEl, ".rb-params");
    const tail = pick(condEl, ".rb-tail");
    params.replaceChildren();
    tail.replaceChildren();
    if (f.key === "attribute") {
      params.append(input("text", data.path || "", "Attribute path", { placeholder: "plan.tier", class: "rb-path", size: 12 }));
      const types = catalog.attribute_types.map((t) => [t, "as " + t]);
      const typeSel = select(types, data.type || "text", "Attribute type");
      typeSel.classList.add("rb-attr-type");
      typeSel.querySelector("select").addEventListener("change", () => { buildOp(condEl, null); buildValue(condEl, undefined); changed(); });
      params.append(typeSel);
    }
    if (f.key === "event") {
      params.append(select(catalog.event_types, data.event_type || "product_view", "Event type", "rb-event-type"));
      params.append(input("text", data.event_name || "", "Event name (optional)", { placeholder: "any name", class: "rb-event-name", size: 10 }));
      const props = Object.entries(data.properties || {}).map(([k, v]) => k + "=" + v).join(", ");
      params.append(input("text", props, "Event properties (optional)", { placeholder: "sku=COF", class: "rb-props", size: 10 }));
    }
    if (f.key === "category_share") {
      const categories = catalog.categories.map((c) => [c, c]);
      params.append(select(categories, data.category || catalog.categories[0] || "", "Category", "rb-category"));
    }
    if (f.params.includes("days")) {
      const required = f.key === "orders_in_window";
      tail.append(el("span", { class: "muted", text: required ? "in the last" : "in the last (optional)" }));
      tail.append(input("number", data.days ?? (required ? 30 : ""), "Window in days", { min: 1, class: "rb-days", style: "width:5.5rem" }));
      tail.append(el("span", { class: "muted", text: "days" }));
    }
  }

  function buildOp(condEl, op) {
    const ops = opsFor(condEl);
    const wrap = pick(condEl, ".rb-op");
    const chosen = ops.includes(op) ? op : ops[0];
    const s = select(ops.map((o) => [o, opLabel(o)]), chosen, "Operator", "rb-op-select");
    s.querySelector("select").addEventListener("change", () => { buildValue(condEl, undefined); changed(); });
    wrap.replaceChildren(s);
  }

  function currentOp(condEl) {
    return condEl.querySelector(".rb-op select").value;
  }

  function buildValue(condEl, value) {
    const f = fields[condEl.dataset.field];
    const op = currentOp(condEl);
    const vtype = valueType(condEl);
    const kind = catalog.ops[op].value;
    const wrap = pick(condEl, ".rb-value");
    wrap.replaceChildren();
    wrap.dataset.kind = kind;
    const numeric = vtype === "number" || vtype === "integer";
    const step = vtype === "integer" ? "1" : "any";
    if (kind === "none") return;
    if (kind === "text" || (kind === "scalar" && !numeric)) {
      wrap.append(input("text", value ?? "", "Value", { class: "rb-v", size: 14 }));
    } else if (kind === "scalar" || kind === "number") {
      wrap.append(input("number", value ?? "", "Value", { class: "rb-v", step: step, style: "width:7rem" }));
    } else if (kind === "date") {
      wrap.append(input("date", value ? String(value).slice(0, 10) : "", "Date", { class: "rb-v" }));
    } else if (kind === "days" || kind === "count") {
      wrap.append(input("number", value ?? (kind === "count" ? 1 : 30), kind === "days" ? "Days" : "Times", { class: "rb-v", min: kind === "days" ? 1 : 0, step: 1, style: "width:5.5rem" }));
      wrap.append(el("span", { class: "muted", text: kind === "days" ? "days" : "times" }));
    } else if (kind === "pair") {
      const [a, b] = Array.isArray(value) ? value : ["", ""];
      const t = vtype === "date" ? "date" : "number";
      const fmt = (v) => (t === "date" && v ? String(v).slice(0, 10) : v);
      wrap.append(input(t, fmt(a), "From", { class: "rb-v rb-low", step: step, style: t === "number" ? "width:6rem" : null }));
      wrap.append(el("span", { class: "muted", text: "and" }));
      wrap.append(input(t, fmt(b), "To", { class: "rb-v rb-high", step: step, style: t === "number" ? "width:6rem" : null }));
    } else if (kind === "list" && f.type === "segment") {
      const options = (f.choices || []).filter(([id]) => id !== segmentId).map(([id, name]) => [id, name]);
      if (!options.length) wrap.append(el("span", { class: "muted", text: "no other segments yet" }));
      else wrap.append(select(options, value ?? options[0][0], "Segment", "rb-v"));
    } else if (kind === "list") {
      const options = f.key === "categories_bought" ? catalog.categories.map((c) => [c, c]) : (f.choices || []);
      const chosen = new Set((Array.isArray(value) ? value : []).map(String));
      const s = el("select", { multiple: true, class: "rb-v rb-multi", size: Math.min(4, Math.max(2, options.length)) });
      for (const [v, label] of options) s.append(el("option", { value: String(v), text: label, selected: chosen.has(String(v)) }));
      for (const v of chosen) if (!options.some(([o]) => String(o) === v)) s.append(el("option", { value: v, text: v, selected: true }));
      wrap.append(labelled(s, "Values"));
      if (!options.length) wrap.append(el("span", { class: "muted", text: "none yet" }));
    }
  }

  function parseScalar(text) {
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    if (text === "true" || text === "false") return text === "true";
    return text;
  }

  function readCondition(condEl) {
    const f = fields[condEl.dataset.field];
    const out = { field: f.key, op: currentOp(condEl) };
    if (f.key === "attribute") {
      out.path = condEl.querySelector(".rb-path").value.trim();
      out.type = condEl.querySelector(".rb-attr-type select").value;
    }
    if (f.key === "event") {
      out.event_type = condEl.querySelector(".rb-event-type").value;
      const name = condEl.querySelector(".rb-event-name").value.trim();
      if (name) out.event_name = name;
      const props = condEl.querySelector(".rb-props").value.trim();
      if (props) {
        out.properties = {};
        for (const pair of props.split(",")) {
          const [k, ...rest] = pair.split("=");
          if (k && k.trim()) out.properties[k.trim()] = parseScalar(rest.join("=").trim());
        }
      }
    }
    if (f.key === "category_share") out.category = condEl.querySelector(".rb-category").value;
    const days = condEl.querySelector(".rb-days");
    if (days && days.value !== "") out.days = Number(days.value);
    const kind = pick(condEl, ".rb-value").dataset.kind;
    const v = condEl.querySelectorAll(".rb-value .rb-v");
    const vtype = valueType(condEl);
    const asNumber = (x) => (x === "" ? null : Number(x));
    if (kind === "none") return out;
    if (kind === "pair") {
      const conv = vtype === "date" ? (x) => x || null : asNumber;
      out.value = [conv(v[0].value), conv(v[1].value)];
    } else if (kind === "list" && f.type === "segment") {
      out.value = v.length ? Number(v[0].value) : null;
    } else if (kind === "list") {
      const raw = [...v[0].selectedOptions].map((o) => o.value);
      out.value = f.key === "cluster" ? raw.map(Number) : raw;
    } else if (kind === "days" || kind === "count" || v[0].type === "number") {
      out.value = asNumber(v[0].value);
    } else {
      out.value = v[0].value;
    }
    return out;
  }

  /* ---------- groups ---------- */
  function newGroup(data, isRoot) {
    let negate = false;
    if (data && data.not) { negate = true; data = data.not; }
    if (data && data.field) data = { all: [data] };
    data = data || { all: [] };
    const mode = "any" in data ? "any" : "all";
    const groupEl = el("div", { class: "rb-group" + (isRoot ? " rb-root" : ""), "data-kind": "group", role: "group" });
    const head = el("div", { class: "rb-group-head" });
    const modeSel = select([["all", "all"], ["any", "any"]], mode, "Match all or any", "rb-mode");
    const notId = "rb-not-" + ++uid;
    const notBox = el("input", { type: "checkbox", id: notId, class: "rb-not", checked: negate });
    head.append(
      el("span", { text: isRoot ? "Customers who match" : "Match" }), modeSel,
      el("span", { text: "of these conditions" }),
      el("label", { class: "rb-not-label", for: notId }, [notBox, document.createTextNode(" exclude (NOT)")])
    );
    if (!isRoot) {
      const rm = el("button", { type: "button", class: "btn small rb-remove", text: "Remove group" });
      rm.addEventListener("click", () => { groupEl.remove(); changed(); });
      head.append(rm);
    }
    const kids = el("div", { class: "rb-children" });
    const err = el("p", { class: "rb-error", role: "alert", hidden: true });
    const addCond = el("button", { type: "button", class: "btn small rb-add-cond", text: "+ Condition" });
    const addGroup = el("button", { type: "button", class: "btn small rb-add-group", text: "+ Group" });
    addCond.addEventListener("click", () => {
      const c = newCondition(null);
      kids.append(c);
      c.querySelector("select").focus();
      changed();
    });
    addGroup.addEventListener("click", () => {
      const g = newGroup({ any: [{ field: "email", op: "contains" }] }, false);
      kids.append(g);
      changed();
    });
    groupEl.append(head, err, kids, el("div", { class: "rb-group-actions" }, [addCond, addGroup]));
    for (const child of data[mode]) kids.append(child.field ? newCondition(child) : newGroup(child, false));
    return groupEl;
  }

  /* ---------- serialize (with each node's path, as the server names it) ---------- */
  function serialize(groupEl, path) {
    const mode = groupEl.querySelector(".rb-group-head .rb-mode").value;
    const negate = groupEl.querySelector(".rb-group-head .rb-not").checked;
    const base = negate ? (path ? path + ".not" : "not") : path;
    groupEl.dataset.path = path;
    const children = [];
    [...pick(groupEl, ".rb-children").children].forEach((child, i) => {
      const childPath = (base ? base + "." : "") + mode + "[" + i + "]";
      if (child.dataset.kind === "group") children.push(serialize(child, childPath));
      else { child.dataset.path = childPath; children.push(readCondition(child)); }
    });
    const inner = { [mode]: children };
    return negate ? { not: inner } : inner;
  }

  /* ---------- problems, count ---------- */
  function showProblems(problems) {
    root.querySelectorAll(".rb-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    root.querySelectorAll(".rb-invalid").forEach((n) => n.classList.remove("rb-invalid"));
    generalErrors.replaceChildren();
    for (const problem of problems) {
      const target = [...root.querySelectorAll("[data-path]")].find((n) => n.dataset.path === problem.path);
      if (target && problem.path) {
        const box = pick(target, ".rb-error");
        box.hidden = false;
        box.textContent = (box.textContent ? box.textContent + " " : "") + problem.message;
        target.classList.add("rb-invalid");
      } else {
        generalErrors.append(el("p", { class: "error", text: problem.message }));
      }
    }
  }

  let timer = null;
  let inflight = null;
  function changed() {
    const definition = serialize(pick(root, ".rb-group"), "");
    textarea.value = JSON.stringify(definition);
    countBox.classList.add("rb-counting");
    countNote.textContent = "Counting…";
    clearTimeout(timer);
    timer = setTimeout(() => count(definition), 350);
  }

  async function count(definition) {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    try {
      const response = await fetch(countUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ definition: definition, segment: segmentId }),
        signal: inflight.signal,
        credentials: "same-origin",
      });
      const body = await response.json();
      countBox.classList.remove("rb-counting");
      if (response.ok) {
        showProblems([]);
        countValue.textContent = body.count.toLocaleString();
        const share = total ? Math.round((100 * body.count) / total) : 0;
        countNote.textContent = "of " + total.toLocaleString() + " customers (" + share + "%) match right now";
        countBox.classList.remove("rb-stale");
      } else {
        showProblems(body.problems || [{ path: "", message: body.error || "Could not count." }]);
        countNote.textContent = "Fix the marked conditions to see the count";
        countBox.classList.add("rb-stale");
      }
    } catch (error) {
      if (error.name !== "AbortError") {
        countBox.classList.remove("rb-counting");
        countNote.textContent = "Could not reach the server to count; your work is not lost.";
      }
    }
  }

  function load(definition) {
    root.replaceChildren(newGroup(definition, true));
  }

  root.addEventListener("input", (e) => { if (!e.target.closest(".rb-multi")) changed(); });
  root.addEventListener("change", changed);
  textarea.addEventListener("change", () => {
    try { load(JSON.parse(textarea.value)); changed(); }
    catch (error) { showProblems([{ path: "", message: "The JSON below is not valid: " + error.message }]); }
  });
  form.addEventListener("submit", () => { textarea.value = JSON.stringify(serialize(pick(root, ".rb-group"), "")); });
  document.querySelectorAll("[data-example]").forEach((button) => button.addEventListener("click", () => {
    load(JSON.parse(button.dataset.example));
    changed();
  }));

  load(readJSON("rule-initial"));
  const initialProblems = readJSON("rule-problems");
  serialize(pick(root, ".rb-group"), "");
  if (initialProblems.length) showProblems(initialProblems);
  changed();
})();

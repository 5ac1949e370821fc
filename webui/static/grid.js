// The data grid: every change of page, sort, filter or search is one datastore_search call (through
// window.mosuApi, as the signed-in user) and a redraw of the rows; the links and forms it takes over
// work without it too (the server renders the same view from the same address). Values are written
// with textContent only: a cell can never become markup.
(function () {
  "use strict";
  const grid = document.getElementById("grid");
  if (!grid) return;
  const PREFIX = "f.";
  const pageRows = Number(grid.dataset.pageRows) || 100;
  const base = grid.dataset.base;
  const exportForm = document.getElementById("grid-export");
  const lang = document.documentElement.lang || "en";
  const numbers = new Intl.NumberFormat(lang);
  const NUMERIC = ["int", "float", "numeric"];
  const form = document.getElementById("grid-view");
  const rowsBody = document.getElementById("grid-rows");
  const range = document.getElementById("grid-range");
  const errorBox = document.getElementById("grid-error");
  const heads = Array.from(grid.querySelectorAll("tr.heads th[data-field]"));
  const fields = heads.map((th) => ({ id: th.dataset.field, key: th.dataset.sortKey, numeric: th.classList.contains("num") }));
  let view = JSON.parse(grid.dataset.view);
  let total = grid.dataset.total === "" ? null : Number(grid.dataset.total);
  let ticket = 0;
  let shown = rowsBody.children.length;  // rows on the page now

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  }

  // The page's address of a view: the same query string the server reads (grid.py parse_view).
  function query(v) {
    const p = new URLSearchParams();
    if (v.q) p.set("q", v.q);
    if (v.sort) p.set("sort", v.sort);
    for (const [name, value] of Object.entries(v.filters)) p.set(PREFIX + name, value);
    if (v.offset) p.set("offset", String(v.offset));
    return p;
  }

  function href(v) {
    const q = query(v).toString();
    return q ? base + "?" + q : base;
  }

  function parse(search) {
    const p = new URLSearchParams(search);
    const v = { offset: 0, sort: (p.get("sort") || "").trim(), q: (p.get("q") || "").trim(), filters: {} };
    const offset = parseInt(p.get("offset") || "0", 10);
    const row = parseInt(p.get("row") || "0", 10);
    v.offset = row > 0 ? row - 1 : offset > 0 ? offset : 0;
    for (const [k, value] of p.entries()) {
      if (k.startsWith(PREFIX) && k.length > PREFIX.length && value.trim()) v.filters[k.slice(PREFIX.length)] = value.trim();
    }
    return v;
  }

  // The same rows (another page of them, or another order) have the same count.
  function sameRows(a, b) {
    return a.q === b.q && JSON.stringify(a.filters) === JSON.stringify(b.filters);
  }

  // The page's rows never wait for a count: on a filtered or searched view of a large table the
  // count is most of the work (it reads every row; the page stops at its first hundred matches).
  // A known total stays while the rows are the same; a new one is asked for after the rows are shown.
  function searchParams(v) {
    const params = { resource_id: grid.dataset.resourceId, limit: pageRows, offset: v.offset, include_total: false };
    if (v.q) params.q = v.q;
    if (Object.keys(v.filters).length) params.filters = v.filters;
    if (v.sort) params.sort = v.sort;
    return params;
  }

  function cell(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function setLink(a, v) {
    if (v === null) {
      a.removeAttribute("href");
      a.setAttribute("aria-disabled", "true");
    } else {
      a.setAttribute("href", href(v));
      a.removeAttribute("aria-disabled");
    }
  }

  function drawControls() {
    const last = total ? Math.floor((total - 1) / pageRows) * pageRows : 0;
    const at = (offset) => Object.assign({}, view, { offset });
    grid.querySelectorAll("a[data-nav]").forEach((a) => {
      const nav = a.dataset.nav;
      if (nav === "first" || nav === "prev") setLink(a, view.offset > 0 ? at(nav === "first" ? 0 : Math.max(0, view.offset - pageRows)) : null);
      const more = total !== null ? view.offset + pageRows < total : shown === pageRows;  // counting: a full page may have more
      if (nav === "next") setLink(a, more ? at(view.offset + pageRows) : null);
      if (nav === "last") setLink(a, total && view.offset !== last ? at(last) : null);
    });
    heads.forEach((th) => {
      const key = th.dataset.sortKey;
      const dir = view.sort === key || view.sort === key + " asc" ? "ascending" : view.sort === key + " desc" ? "descending" : null;
      if (dir) th.setAttribute("aria-sort", dir); else th.removeAttribute("aria-sort");
      const link = th.querySelector("a.sort");
      link.setAttribute("href", href(Object.assign({}, view, { offset: 0, sort: dir === "ascending" ? key + " desc" : key })));
      const arrow = link.querySelector(".arrow");
      if (arrow) arrow.textContent = dir === "ascending" ? "▲" : dir === "descending" ? "▼" : "";
    });
    const goto = document.getElementById("grid-row");
    if (total) goto.setAttribute("max", String(total)); else goto.removeAttribute("max");
    form.elements.q.value = view.q;
    form.elements.sort.value = view.sort;
    grid.querySelectorAll("input[form='grid-view'][name^='f.']").forEach((input) => {
      input.value = view.filters[input.name.slice(PREFIX.length)] || "";
    });
    // The export form posts exactly this view (its buttons add the format).
    if (exportForm) {
      exportForm.elements.q.value = view.q || "";
      exportForm.elements.filters.value = Object.keys(view.filters).length ? JSON.stringify(view.filters) : "";
      exportForm.elements.sort.value = view.sort || "";
    }
  }

  function drawRows(records) {
    const body = document.createDocumentFragment();
    for (const record of records) {
      const tr = document.createElement("tr");
      for (const f of fields) {
        const td = document.createElement("td");
        const value = record[f.id];
        if (f.numeric) td.classList.add("num");
        if (value === null || value === undefined) td.classList.add("null");
        td.textContent = cell(value);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    rowsBody.replaceChildren(body);
  }

  function drawRange() {
    if (shown && total === null) {
      range.textContent = fill(grid.dataset.textCounting, {
        first: numbers.format(view.offset + 1), last: numbers.format(view.offset + shown) });
    } else if (shown) {
      range.textContent = fill(grid.dataset.textRange, {
        first: numbers.format(view.offset + 1), last: numbers.format(view.offset + shown), total: numbers.format(total) });
    } else if (total) {
      range.textContent = fill(grid.dataset.textPast, { first: numbers.format(view.offset + 1), total: numbers.format(total) });
    } else {
      range.textContent = grid.dataset.textNone;
    }
  }

  async function load(next, push) {
    const mine = ++ticket;
    grid.setAttribute("aria-busy", "true");
    const params = searchParams(next);
    const counted = total !== null && sameRows(next, view);
    let answer;
    try {
      answer = await window.mosuApi("datastore_search", params);
    } catch (err) {
      answer = { ok: false, body: { error: { message: String(err) } } };
    }
    if (mine !== ticket) return;  // a later change is under way: its answer is the one to show
    grid.removeAttribute("aria-busy");
    view = next;
    if (push) history.pushState(view, "", href(view));
    if (!answer.ok) {
      const error = (answer.body && answer.body.error) || {};
      errorBox.textContent = error.message || Object.entries(error).filter(([k]) => !k.startsWith("_"))
        .map(([k, v]) => k + ": " + [].concat(v).join(" ")).join("; ");
      errorBox.hidden = false;
      rowsBody.replaceChildren();
      range.textContent = "";
      total = null;
      shown = 0;
      drawControls();
      return;
    }
    errorBox.hidden = true;
    errorBox.textContent = "";
    drawRows(answer.body.result.records);
    shown = answer.body.result.records.length;
    if (!counted) total = next.offset === 0 && shown < pageRows ? shown : null;  // a short first page is all
    drawRange();
    drawControls();
    if (total === null) await count(mine, params);
    grid.dataset.loaded = String(mine);
  }

  // The total of the rows on the page, asked for once they are shown (one more call, limit 0).
  async function count(mine, params) {
    const ask = Object.assign({}, params, { limit: 0, offset: 0, include_total: true });
    delete ask.sort;
    let answer;
    try {
      answer = await window.mosuApi("datastore_search", ask);
    } catch (err) {
      answer = { ok: false };
    }
    if (mine !== ticket) return;
    if (!answer.ok) {  // too long a count (the query time limit): the rows stay, said without a total
      range.textContent = fill(grid.dataset.textUncounted, {
        first: numbers.format(view.offset + 1), last: numbers.format(view.offset + shown) });
      return;
    }
    total = answer.body.result.total;
    drawRange();
    drawControls();
  }

  grid.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-view]");
    if (!a || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (!a.hasAttribute("href")) return;
    load(parse(new URL(a.href, location.href).search), true);
  });

  grid.addEventListener("submit", (event) => {
    const target = event.target;
    if (target.id !== "grid-view" && !target.classList.contains("goto")) return;
    event.preventDefault();
    if (target.id === "grid-view") {
      const data = new FormData(target);
      const next = { offset: 0, sort: view.sort, q: String(data.get("q") || "").trim(), filters: {} };
      for (const [k, value] of data.entries()) {
        if (k.startsWith(PREFIX) && String(value).trim()) next.filters[k.slice(PREFIX.length)] = String(value).trim();
      }
      load(next, true);
    } else {
      const row = parseInt(target.elements.row.value, 10);
      if (row > 0) load(Object.assign({}, view, { offset: row - 1 }), true);
    }
  });

  window.addEventListener("popstate", () => load(parse(location.search), false));
  history.replaceState(view, "", location.href);
  grid.dataset.ready = "true";
})();

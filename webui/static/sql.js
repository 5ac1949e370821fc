// The SQL console: a query runs through datastore_search_sql (window.mosuApi, as the signed-in user);
// the result is drawn with textContent only, a refusal shows the action's reason in the alert. The
// form works without this script too (the server runs the same action).
(function () {
  "use strict";
  const form = document.getElementById("sql-form");
  if (!form) return;
  const editor = document.getElementById("sql-text");
  const errorBox = document.getElementById("sql-error");
  const summary = document.getElementById("sql-summary");
  const wrap = document.getElementById("sql-wrap");
  const table = document.getElementById("sql-table");
  const exportsBox = document.getElementById("sql-exports");
  const NUMERIC = ["int", "float", "numeric"];
  const numbers = new Intl.NumberFormat(document.documentElement.lang || "en");
  let ticket = 0;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  }

  function cell(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function insert(text) {
    const start = editor.selectionStart, end = editor.selectionEnd;
    editor.setRangeText(text, start, end, "end");
    editor.focus();
  }

  function draw(result) {
    const head = document.createElement("tr");
    for (const f of result.fields) {
      const th = document.createElement("th");
      th.scope = "col";
      if (NUMERIC.includes(f.type)) th.classList.add("num");
      th.textContent = f.id + " ";
      const type = document.createElement("span");
      type.className = "col-type";
      type.textContent = f.type;
      th.appendChild(type);
      head.appendChild(th);
    }
    table.tHead.replaceChildren(head);
    const body = document.createDocumentFragment();
    for (const record of result.records) {
      const tr = document.createElement("tr");
      for (const f of result.fields) {
        const td = document.createElement("td");
        const value = record[f.id];
        if (NUMERIC.includes(f.type)) td.classList.add("num");
        if (value === null || value === undefined) td.classList.add("null");
        td.textContent = cell(value);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    table.tBodies[0].replaceChildren(body);
  }

  function setExports(sql) {  // the export form posts the query that ran (its buttons add the format)
    exportsBox.elements.sql.value = sql;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sql = editor.value;
    const mine = ++ticket;
    summary.textContent = summary.dataset.textRunning;
    form.setAttribute("aria-busy", "true");
    let answer;
    try {
      answer = await window.mosuApi("datastore_search_sql", { sql });
    } catch (err) {
      answer = { ok: false, body: { error: { message: String(err) } } };
    }
    if (mine !== ticket) return;
    form.removeAttribute("aria-busy");
    const url = new URL(location.href);
    url.searchParams.set("sql", sql);
    history.replaceState(null, "", url.pathname + url.search);
    if (!answer.ok) {
      const error = (answer.body && answer.body.error) || {};
      errorBox.textContent = error.message || Object.entries(error).filter(([k]) => !k.startsWith("_"))
        .map(([k, v]) => k + ": " + [].concat(v).join(" ")).join("; ");
      errorBox.hidden = false;
      summary.textContent = "";
      wrap.hidden = true;
      exportsBox.hidden = true;
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren();
      return;
    }
    const result = answer.body.result;
    errorBox.hidden = true;
    errorBox.textContent = "";
    draw(result);
    wrap.hidden = false;
    summary.textContent = fill(result.records_truncated ? summary.dataset.textTruncated : summary.dataset.textRows,
      { n: numbers.format(result.records.length) });
    setExports(sql);
    exportsBox.hidden = false;
    form.dataset.ran = String(mine);
  });

  document.querySelectorAll("button[data-insert]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => insert(button.dataset.insert));
  });
  document.querySelectorAll("a[data-example]").forEach((a) => {
    a.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      editor.value = a.dataset.example;
      editor.focus();
    });
  });
})();

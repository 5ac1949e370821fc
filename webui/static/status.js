// Live ingest status: poll the jobs of resources that are still queued or running, show their
// stage and progress (bytes read, rows converted), in the page's language, and reload the page once one is done or failed.
(function () {
  const pending = Array.from(document.querySelectorAll("[data-resource-id]"))
    .filter((el) => ["queued", "running"].includes(el.dataset.status));
  if (!pending.length) return;
  const lang = document.documentElement.lang || "en";
  const number = (n) => Number(n).toLocaleString(lang);
  function show(el, job) {
    const stage = el.querySelector(".stage"), bar = el.querySelector("progress"), detail = el.querySelector(".detail");
    const box = el.querySelector(".progress");
    // The stages and units in the page's language (the page puts them in data-labels).
    const labels = box && box.dataset.labels ? JSON.parse(box.dataset.labels) : { stages: {}, bytes: "%(n)s bytes", rows: "%(n)s rows" };
    const unit = (text, n) => text.replace("%(n)s", number(n));
    const p = job.progress || {};
    const name = job.stage || job.state;
    if (stage) stage.textContent = labels.stages[name] || name;
    if (bar && p.bytes_total) {
      if (job.stage === "downloading" || job.stage === "queued") bar.removeAttribute("value");
      else bar.value = Math.min(1, (p.bytes_read || 0) / p.bytes_total);
    }
    if (detail) {
      const parts = [];
      if (p.bytes_total) parts.push(unit(labels.bytes, p.bytes_total));
      if (p.format) parts.push(p.format + (p.encoding ? " (" + p.encoding + ")" : ""));
      if (p.rows) parts.push(unit(labels.rows, p.rows));
      detail.textContent = parts.join(" · ");
    }
  }
  async function poll() {
    for (const el of pending) {
      try {
        // As the signed-in user (mosuApi sends the CSRF header): a private dataset's job is theirs to see.
        const body = (await window.mosuApi("ingest_status_show", { id: el.dataset.resourceId })).body;
        if (!body.success) continue;
        const job = body.result;
        if (["done", "failed"].includes(job.state)) { window.location.reload(); return; }
        show(el, job);
      } catch (e) { /* keep polling: the server may be restarting */ }
    }
    setTimeout(poll, 1000);
  }
  poll();
})();

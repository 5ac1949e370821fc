// Live ingest status: poll resources that are still queued or running and
// reload the page once any of them reaches a final state.
(function () {
  const pending = Array.from(document.querySelectorAll("[data-resource-id]"))
    .filter((el) => ["queued", "running"].includes(el.dataset.status));
  if (!pending.length) return;
  async function poll() {
    for (const el of pending) {
      try {
        const resp = await fetch("/api/3/action/resource_show?id=" + encodeURIComponent(el.dataset.resourceId));
        const body = await resp.json();
        const status = body.success ? body.result.ingest_status : null;
        if (status && status !== el.dataset.status) { window.location.reload(); return; }
      } catch (e) { /* keep polling: the server may be restarting */ }
    }
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1500);
})();

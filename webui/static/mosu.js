// Shared by every page: the Action API called as the signed-in user (the session's CSRF token in
// X-CSRF-Token: without it the API treats a cookie-only request as anonymous), and copy buttons.
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  window.mosuApi = async function (action, params) {
    const resp = await fetch("/api/3/action/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": meta ? meta.content : "" },
      body: JSON.stringify(params || {}),
    });
    const body = await resp.json();
    return { status: resp.status, ok: resp.ok && body.success, body };
  };
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = button.dataset.copied || "Copied";
    } catch (err) {
      const range = document.createRange();  // no clipboard (http, old browser): select it for Ctrl+C
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
  });
})();

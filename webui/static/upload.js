// Upload a file from the browser straight to object storage, in parts (the upload page).
//
// The Action API opens a multipart upload (resource_upload_start), hands out a presigned PUT URL
// per part (resource_upload_part) and joins them (resource_upload_complete); each part goes from
// here to the object store, never through the web server. A part that fails (a dropped
// connection, a 5xx) is sent again a few times with a fresh URL. The open upload's id is kept in
// sessionStorage with the file's name, size and date, so after a reload choosing the same file
// again resumes it: resource_upload_show lists the parts already stored, and only the others go.
(function () {
  const form = document.getElementById("upload-form");
  if (!form || !window.mosuApi) return;
  const fileInput = document.getElementById("upload-file");
  const target = document.getElementById("upload-target");
  const nameInput = document.getElementById("upload-name");
  const button = document.getElementById("upload-button");
  const bar = document.getElementById("upload-progress");
  const message = document.getElementById("upload-message");
  const notice = document.getElementById("resume-notice");
  const STORE = "mosu-upload:" + form.dataset.packageId;
  const RETRY_DELAYS = [500, 2000, 5000];

  const text = (key, values) => (form.dataset["text" + key] || "").replace(/\{(\w+)\}/g,
    (whole, name) => (values && name in values ? String(values[name]) : whole));
  const number = (n) => Number(n).toLocaleString(document.documentElement.lang || "en");
  const say = (key, values, isError) => {
    message.textContent = text(key, values);
    message.classList.toggle("error", !!isError);
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function remembered() {
    try { return JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch (e) { return null; }
  }
  function remember(entry) {
    try { sessionStorage.setItem(STORE, JSON.stringify(entry)); } catch (e) { /* private mode: no resume */ }
  }
  function forget() {
    try { sessionStorage.removeItem(STORE); } catch (e) { /* nothing to forget */ }
  }
  const sameFile = (entry, file, targetId) => entry && entry.name === file.name && entry.size === file.size
    && entry.modified === file.lastModified && entry.target === targetId;

  const pending = remembered();
  if (pending && notice) {
    notice.textContent = text("Interrupted", { name: pending.name });
    notice.hidden = false;
    if (pending.target && target) target.value = pending.target;
  }

  async function api(action, params) {
    const answer = await window.mosuApi(action, params);
    if (!answer.ok) {
      const error = (answer.body && answer.body.error) || {};
      const fields = Object.keys(error).filter((k) => !k.startsWith("__") && k !== "message")
        .map((k) => [].concat(error[k]).join(" "));
      const problem = new Error(error.message || fields.join(" ") || ("HTTP " + answer.status));
      problem.status = answer.status;
      throw problem;
    }
    return answer.body.result;
  }

  // One PUT of a part, with upload progress events (XMLHttpRequest: fetch reports none for uploads).
  function put(url, blob, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve()
        : reject(Object.assign(new Error("HTTP " + xhr.status + " from object storage"), { status: xhr.status })));
      xhr.onerror = () => reject(new Error("connection failed"));
      xhr.ontimeout = () => reject(new Error("timed out"));
      xhr.send(blob);
    });
  }

  async function sendPart(uploadId, number, blob, onProgress, partCount) {
    for (let attempt = 1; ; attempt++) {
      try {
        const part = await api("resource_upload_part", { upload_id: uploadId, part_number: number });
        await put(part.url, blob, onProgress);
        return;
      } catch (err) {
        const retryable = !err.status || err.status >= 500;
        if (!retryable || attempt > RETRY_DELAYS.length) throw err;
        onProgress(0);
        say("Retry", { part: number + " / " + partCount, attempt: attempt + 1 });
        await sleep(RETRY_DELAYS[attempt - 1]);
      }
    }
  }

  async function start(file) {
    const targetId = target ? target.value : "";
    const where = targetId ? { id: targetId } : { package_id: form.dataset.packageId, name: nameInput.value.trim() || file.name };
    let info = null, stored = new Set();
    const entry = remembered();
    if (sameFile(entry, file, targetId)) {
      try {
        info = await api("resource_upload_show", { upload_id: entry.upload_id });
        if (info.size !== file.size) info = null;
      } catch (err) {
        info = null;  // completed, aborted or gone: start again
      }
      if (info) {
        for (const p of info.parts) {
          const expected = Math.min(info.part_size, file.size - (p.part_number - 1) * info.part_size);
          if (p.size === expected) stored.add(p.part_number);
        }
        if (notice) {  // kept in view while the rest goes (the message below shows the bytes)
          notice.textContent = text("Resuming", { done: stored.size, count: info.part_count });
          notice.hidden = false;
        }
      } else {
        forget();
      }
    }
    if (!info) {
      say("Starting");
      info = await api("resource_upload_start", { ...where, filename: file.name, size: file.size });
      remember({ upload_id: info.upload_id, name: file.name, size: file.size, modified: file.lastModified, target: targetId });
    }
    const partSize = info.part_size, count = info.part_count;
    const partBytes = (n) => Math.min(partSize, file.size - (n - 1) * partSize);
    let done = 0;
    stored.forEach((n) => { done += partBytes(n); });
    const show = (inFlight) => {
      const sent = Math.min(file.size, done + inFlight);
      bar.max = file.size || 1;
      bar.value = sent;
      say("Progress", { sent: number(sent), total: number(file.size) });
    };
    show(0);
    for (let n = 1; n <= count; n++) {
      if (stored.has(n)) continue;
      const blob = file.slice((n - 1) * partSize, (n - 1) * partSize + partBytes(n));
      await sendPart(info.upload_id, n, blob, show, count);
      done += partBytes(n);
      show(0);
    }
    say("Completing");
    const resource = await api("resource_upload_complete", { upload_id: info.upload_id });
    forget();
    bar.max = 1;
    bar.value = 1;
    say("Done");
    form.dataset.done = "true";
    window.location.assign(form.dataset.ingestUrl.replace("RESOURCE_ID", encodeURIComponent(resource.id)));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (!file) { say("NoFile", null, true); fileInput.focus(); return; }
    if (Number(form.dataset.maxBytes) && file.size > Number(form.dataset.maxBytes)) {
      say("TooLarge", { size: number(form.dataset.maxBytes) }, true);
      return;
    }
    button.disabled = true;
    try {
      await start(file);
    } catch (err) {
      say("Failed", { problem: err.message || String(err) }, true);
      button.disabled = false;
    }
  });
})();

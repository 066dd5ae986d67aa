// What every staff screen shares: the API call with the CSRF header, and the
// countdown text of SLA clocks.  Loaded before each screen's own script.
"use strict";
(() => {
  function csrfToken() {
    const found = document.cookie.match(/(?:^|;\s*)desk_csrf=([^;]*)/);
    return found ? decodeURIComponent(found[1]) : "";
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : response.statusText;
      throw new Error(message);
    }
    return data;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds || 0));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = s % 60;
    if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m ${String(rest).padStart(2, "0")}s`;
    if (m > 0) return `${m}m ${String(rest).padStart(2, "0")}s`;
    return `${rest}s`;
  }

  // Every [data-due] element counts down to its due time, or up once overdue.
  function tickCountdowns(words, now) {
    document.querySelectorAll("[data-due]").forEach((el) => {
      const left = (Date.parse(el.dataset.due) - now) / 1000;
      el.textContent =
        left >= 0 ? `${words.due_in} ${duration(left)}` : `${words.overdue} ${duration(-left)}`;
      el.closest("[data-sla]")?.classList.toggle("overdue", left < 0);
    });
  }

  window.calldesk = Object.freeze({ csrfToken, api, duration, tickCountdowns });
})();

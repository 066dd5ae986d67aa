// The customer page: click-to-call on every number, SLA countdowns that tick.
"use strict";
(() => {
  const t = JSON.parse(document.getElementById("customer-config").textContent).words;

  function csrfToken() {
    const found = document.cookie.match(/(?:^|;\s*)desk_csrf=([^;]*)/);
    return found ? decodeURIComponent(found[1]) : "";
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = s % 60;
    if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m ${String(rest).padStart(2, "0")}s`;
    if (m > 0) return `${m}m ${String(rest).padStart(2, "0")}s`;
    return `${rest}s`;
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-due]").forEach((el) => {
      const left = (Date.parse(el.dataset.due) - now) / 1000;
      el.textContent = left >= 0 ? `${t.due_in} ${duration(left)}` : `${t.overdue} ${duration(-left)}`;
      el.closest("[data-sla]")?.classList.toggle("overdue", left < 0);
    });
  }

  const result = document.getElementById("dial-result");
  document.querySelectorAll("button[data-number]").forEach((button) => {
    button.addEventListener("click", async () => {
      const number = button.dataset.number;
      const response = await fetch("/api/v1/calls", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ number }),
      });
      let data = null;
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
      result.classList.toggle("problem", !response.ok);
      result.textContent = response.ok
        ? `${t.calling} ${number}`
        : `${t.call_failed} ${data && data.error ? data.error.message : response.statusText}`;
    });
  });
  tick();
  setInterval(tick, 1000);
})();

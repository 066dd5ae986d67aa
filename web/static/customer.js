// The customer page: click-to-call on every number, SLA countdowns that tick.
"use strict";
(() => {
  const t = JSON.parse(document.getElementById("customer-config").textContent).words;
  const { csrfToken, tickCountdowns } = window.calldesk;

  function tick() {
    tickCountdowns(t, Date.now());
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

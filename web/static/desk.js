// The agent desk, live: screen pops, status, click-to-call, a ticket from the call.
// Everything a caller or customer typed goes into the page as text (textContent),
// never as HTML.  Strings come translated from the server (desk-config).
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("desk-config").textContent);
  const t = config.words;
  const template = document.getElementById("pop-template");
  const container = document.getElementById("pops");
  const noCalls = document.getElementById("no-calls");
  const pops = new Map(); // call_id -> {el, body, chosen}
  let lastSeq = 0;
  let audio = null;
  const { api, duration, tickCountdowns } = window.calldesk;

  // --- the API ---------------------------------------------------------------------
  // --- small DOM helpers --------------------------------------------------------------
  function field(root, name) {
    return root.querySelector(`[data-field="${name}"]`);
  }

  function parts(root, name) {
    return root.querySelectorAll(`[data-part="${name}"]`);
  }

  function show(root, name, visible) {
    parts(root, name).forEach((el) => {
      el.hidden = !visible;
    });
  }

  function item(text, className) {
    const li = document.createElement("li");
    if (className) li.className = className;
    if (text !== undefined) li.textContent = text;
    return li;
  }

  function when(iso) {
    const at = new Date(iso);
    return at.toLocaleString(document.documentElement.lang, {
      dateStyle: "short",
      timeStyle: "short",
    });
  }

  function dialButton(number, entry) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "dial";
    button.textContent = t.call;
    button.setAttribute("aria-label", `${t.call} ${number}`);
    button.addEventListener("click", () => dial(number, entry));
    return button;
  }

  // --- SLA countdowns and time in state tick every second ----------------------------
  function tick() {
    const now = Date.now();
    tickCountdowns(t, now);
    document.querySelectorAll("[data-since]").forEach((el) => {
      if (el.dataset.since) el.textContent = duration((now - Date.parse(el.dataset.since)) / 1000);
    });
  }

  function slaClock(clock) {
    const li = item(undefined, `sla ${clock.status}`);
    li.dataset.sla = clock.status;
    const name = document.createElement("span");
    name.textContent = `${t["clock_" + clock.clock] || clock.clock}: `;
    const badge = document.createElement("span");
    badge.className = `badge ${clock.status}`;
    badge.textContent = t["sla_" + clock.status] || clock.status;
    li.append(name, badge);
    const running = clock.status === "on_track" || clock.status === "at_risk" || clock.status === "breached";
    if (running && clock.due_at) {
      const left = document.createElement("span");
      left.className = "countdown";
      left.dataset.due = clock.due_at;
      li.append(" ", left);
    }
    return li;
  }

  // --- tickets: the pop's and the list's ------------------------------------------------
  function ticketItem(ticket) {
    const li = item(undefined, "ticket");
    li.dataset.ticket = String(ticket.id);
    const head = document.createElement("div");
    const link = document.createElement("a");
    link.href = `/desk/tickets/${ticket.id}`;
    link.textContent = `#${ticket.id} ${ticket.subject}`;
    head.append(
      link,
      ` · ${t["priority_" + ticket.priority] || ticket.priority} · ${t["status_" + ticket.status] || ticket.status}`,
    );
    const clocks = document.createElement("ul");
    clocks.className = "plain clocks";
    clocks.replaceChildren(...(ticket.sla || []).map(slaClock));
    li.append(head, clocks);
    return li;
  }

  let ticketsTimer = null;
  function reloadTicketsSoon() {
    clearTimeout(ticketsTimer);
    ticketsTimer = setTimeout(reloadTickets, 300);
  }

  async function reloadTickets() {
    const list = document.getElementById("tickets");
    try {
      const response = await fetch(`/desk/tickets.json?view=${encodeURIComponent(list.dataset.view)}`, {
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const data = await response.json();
      list.replaceChildren(...(data.tickets.length ? data.tickets.map(ticketItem) : [item(t.no_tickets, "muted")]));
      tick();
    } catch (_) {
      // The next event or the next minute tries again.
    }
  }

  // --- the pop -----------------------------------------------------------------------
  function renderCustomer(entry, customer) {
    const el = entry.el;
    field(el, "tier").textContent = customer.tier;
    field(el, "tags").textContent = customer.tags.length ? customer.tags.join(", ") : t.none;
    const numbers = field(el, "numbers");
    numbers.replaceChildren(
      ...customer.phones.map((number) => {
        const li = item(`${number} `);
        li.append(dialButton(number, entry));
        return li;
      }),
    );
    // desk/caller_card.py: {survey_id, score (CSAT 1-5 or null), nps, answered_at, ...}
    const last = customer.last_satisfaction;
    show(el, "satisfaction", Boolean(last));
    if (last) {
      field(el, "satisfaction").textContent = [
        last.score !== null && last.score !== undefined ? `CSAT ${last.score}/5` : "",
        last.nps !== null && last.nps !== undefined ? `NPS ${last.nps}` : "",
        last.answered_at ? when(last.answered_at) : "",
      ]
        .filter(Boolean)
        .join(" · ");
    }
    const open = customer.open_tickets || [];
    field(el, "tickets").replaceChildren(...(open.length ? open.map(ticketItem) : [item(t.none, "muted")]));
    const calls = field(el, "calls");
    const recent = customer.last_calls || [];
    calls.replaceChildren(
      ...(recent.length
        ? recent.map((call) =>
            item(
              [when(call.started_at), call.direction, call.outcome || "", call.queue || ""]
                .filter(Boolean)
                .join(" · "),
            ),
          )
        : [item(t.none, "muted")]),
    );
    const articles = customer.suggested_articles || [];
    show(el, "articles", articles.length > 0);
    field(el, "articles").replaceChildren(
      ...articles.map((article) => {
        const li = item();
        const safe = typeof article.url === "string" && article.url.startsWith("/") && !article.url.startsWith("//");
        const title = document.createElement(safe ? "a" : "strong");
        if (safe) title.href = article.url;
        title.textContent = article.title;
        li.append(title);
        if (article.summary) {
          const summary = document.createElement("div");
          summary.className = "muted small";
          summary.textContent = article.summary;
          li.append(summary);
        }
        return li;
      }),
    );
  }

  function renderCandidates(entry, candidates) {
    field(entry.el, "candidates").replaceChildren(
      ...candidates.map((candidate) => {
        const li = item(`${candidate.name} · ${candidate.tier} · ${candidate.phones.join(", ")} `);
        const choose = document.createElement("button");
        choose.type = "button";
        choose.className = "quiet";
        choose.textContent = entry.chosen === candidate.id ? t.chosen : t.choose;
        choose.setAttribute("aria-pressed", String(entry.chosen === candidate.id));
        choose.addEventListener("click", () => {
          entry.chosen = candidate.id;
          fill(entry);
        });
        li.append(choose);
        return li;
      }),
    );
  }

  function fill(entry) {
    const { el, body } = entry;
    const customer = body.customer;
    const caller = body.caller || {};
    el.dataset.phase = body.phase;
    const phase = field(el, "phase");
    phase.textContent = t["phase_" + body.phase] || body.phase;
    phase.className = `badge phase ${body.phase}`;
    field(el, "queue").textContent = body.queue ? `${t.queue} ${body.queue}` : "";
    const title = field(el, "title");
    if (customer) {
      const link = document.createElement("a");
      link.href = `/desk/customers/${customer.id}`;
      link.textContent = customer.name;
      title.replaceChildren(link);
    } else {
      title.textContent = caller.name || caller.number_e164 || t.withheld;
    }
    field(el, "number").textContent = caller.number_e164 || caller.number_raw || t.withheld;
    el.querySelector('[data-action="dial-caller"]').hidden = !caller.number_e164;
    el.querySelector('[data-action="dismiss"]').hidden = body.phase !== "ended";
    show(el, "customer", Boolean(customer));
    if (customer) renderCustomer(entry, customer);
    const candidates = body.candidates || [];
    show(el, "candidates", !customer && candidates.length > 0);
    if (!customer && candidates.length) renderCandidates(entry, candidates);
    const unknown = !customer && candidates.length === 0 && Boolean(caller.number_e164) && !entry.chosen;
    const form = el.querySelector('[data-part="new-customer"]');
    if (unknown && form.hidden) {
      form.elements.name.value = caller.name && !/^[+\d\s]*$/.test(caller.name) ? caller.name : "";
      form.elements.phone.value = caller.number_e164;
    }
    form.hidden = !unknown;
    el.querySelector('[data-action="ticket"]').disabled = !body.call_log_id || entry.ticketId !== undefined;
    tick();
  }

  function say(entry, text, problem) {
    const result = field(entry.el, "result");
    result.textContent = text;
    result.classList.toggle("problem", Boolean(problem));
  }

  async function createTicket(entry) {
    const button = entry.el.querySelector('[data-action="ticket"]');
    button.disabled = true;
    const chosen = entry.chosen;
    try {
      const ticket = await api(
        "POST",
        `/api/v1/calls/${entry.body.call_log_id}/ticket`,
        chosen ? { customer_id: chosen } : {},
      );
      entry.ticketId = ticket.id;
      const result = field(entry.el, "result");
      result.dataset.ticketId = String(ticket.id);
      say(entry, `${t.ticket_created}: #${ticket.id} ${ticket.subject}`);
    } catch (error) {
      button.disabled = false;
      say(entry, `${t.failed} ${error.message}`, true);
    }
  }

  async function saveCustomer(entry, form) {
    try {
      const customer = await api("POST", "/api/v1/customers", {
        name: form.elements.name.value.trim(),
        phones: [{ number: form.elements.phone.value.trim() }],
      });
      entry.chosen = customer.id;
      form.hidden = true;
      say(entry, `${t.customer_saved}: ${customer.name}`);
    } catch (error) {
      say(entry, `${t.failed} ${error.message}`, true);
    }
  }

  async function dial(number, entry) {
    try {
      await api("POST", "/api/v1/calls", { number });
      if (entry) say(entry, `${t.calling} ${number}`);
      else setProblem("");
    } catch (error) {
      const text = `${t.call_failed} ${error.message}`;
      if (entry) say(entry, text, true);
      else setProblem(text);
    }
  }

  function updateEmpty() {
    noCalls.hidden = pops.size > 0;
  }

  function remove(callId) {
    const entry = pops.get(callId);
    if (!entry) return;
    entry.el.remove();
    pops.delete(callId);
    updateEmpty();
  }

  function showPop(body) {
    let entry = pops.get(body.call_id);
    if (!entry) {
      const el = template.content.firstElementChild.cloneNode(true);
      el.dataset.callId = body.call_id;
      entry = { el, body, chosen: null };
      const current = entry;
      el.querySelector('[data-action="ticket"]').addEventListener("click", () => createTicket(current));
      el.querySelector('[data-action="dismiss"]').addEventListener("click", () => remove(body.call_id));
      el.querySelector('[data-action="dial-caller"]').addEventListener("click", () =>
        dial(current.body.caller.number_e164, current),
      );
      const form = el.querySelector('[data-part="new-customer"]');
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        saveCustomer(current, form);
      });
      pops.set(body.call_id, entry);
      container.prepend(el);
      // When the pop reached the screen, for the browser tests' latency figure.
      el.dataset.shownAt = String(performance.timeOrigin + performance.now());
      if (body.phase === "ringing") announce(body);
    }
    entry.body = body;
    fill(entry);
    updateEmpty();
  }

  function apply(body) {
    if (body.phase === "withdrawn") remove(body.call_id);
    else showPop(body);
  }

  // --- ringing: desktop notification and a short tone, once permitted ----------------
  function announce(body) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const who = body.customer ? body.customer.name : body.caller.number_e164 || t.withheld;
    new Notification(t.incoming_call, { body: who, tag: body.call_id });
    if (audio && audio.state === "running") {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      gain.gain.value = 0.1;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.3);
    }
  }

  function setUpNotifications() {
    if (!("Notification" in window)) return;
    const panel = document.getElementById("notify-panel");
    const button = document.getElementById("notify");
    panel.hidden = false;
    const granted = () => {
      button.textContent = t.notifications_on;
      button.disabled = true;
    };
    // Browsers let a page make sound only after the user touched it: the tone is
    // unlocked by the first click or key press of the shift (or by the button).
    const unlockAudio = () => {
      audio = audio || new AudioContext();
      if (audio.state === "suspended") audio.resume();
    };
    if (Notification.permission === "granted") {
      granted();
      document.addEventListener("pointerdown", unlockAudio, { once: true });
      document.addEventListener("keydown", unlockAudio, { once: true });
    }
    if (Notification.permission === "denied") button.disabled = true;
    button.addEventListener("click", async () => {
      unlockAudio();
      if ((await Notification.requestPermission()) === "granted") granted();
    });
  }

  // --- status --------------------------------------------------------------------------
  function setProblem(text) {
    const problem = document.getElementById("status-problem");
    if (!problem) return;
    problem.textContent = text;
    problem.hidden = !text;
  }

  function showState(state) {
    const box = document.getElementById("state");
    box.dataset.status = state.status;
    document.getElementById("state-name").textContent = t[state.status] || state.status;
    document.getElementById("state-reason").textContent = state.pause_reason || "";
    document.getElementById("state-for").dataset.since = state.since;
    tick();
  }

  function setUpStatusForm() {
    const form = document.getElementById("status-form");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.elements.status.value;
      const reason = status === "paused" ? config.reasons[form.elements.reason.value] || "" : "";
      try {
        await api("PUT", "/api/v1/agents/me/state", { status, reason });
        setProblem("");
      } catch (error) {
        setProblem(`${t.failed} ${error.message}`);
      }
    });
  }

  // --- socket.io -----------------------------------------------------------------------
  function connect() {
    const live = document.getElementById("live");
    if (typeof io !== "function") return;
    const socket = io({ transports: ["websocket"] });
    socket.on("connect", () => {
      live.textContent = live.dataset.live;
      live.dataset.state = "live";
    });
    socket.on("disconnect", () => {
      live.textContent = live.dataset.offline;
      live.dataset.state = "offline";
    });
    socket.on("screen_pop_snapshot", (snapshot) => {
      const showing = new Set(snapshot.pops.map((pop) => pop.call_id));
      for (const [callId, entry] of pops) {
        if (!showing.has(callId) && entry.body.phase !== "ended") remove(callId);
      }
      snapshot.pops.forEach(apply);
      lastSeq = Math.max(lastSeq, snapshot.seq || 0);
    });
    socket.on("screen_pop", (body) => {
      if (body.seq <= lastSeq) return;
      lastSeq = body.seq;
      apply(body);
    });
    socket.on("agent_state", showState);
    for (const name of ["ticket_opened", "ticket_changed", "ticket_assigned", "sla_warned", "sla_breached", "ticket_escalated"]) {
      socket.on(name, reloadTicketsSoon);
    }
    socket.on("originate_result", (result) => {
      if (!result.success) setProblem(`${t.call_failed} ${result.reason || ""}`);
    });
  }

  if (config.state) showState(config.state);
  setUpStatusForm();
  setUpNotifications();
  updateEmpty();
  connect();
  setInterval(tick, 1000);
  setInterval(reloadTickets, 60_000);
})();

// The wallboard, live over socket.io: `board` (queues and agents) and `sla_board`
// (tickets at risk, breached, escalations, backlog).  Caller, customer and ticket text
// goes into the page with textContent only.  ASA, the day's charts and CSAT today come
// from the call log and the survey answers: reloaded from /wallboard/day when the
// queues' counters move or an answer comes in.  Low scores are reloaded from the API
// when one is raised or acknowledged; they are acknowledged from here with a note.
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("wallboard-config").textContent);
  const t = config.words;
  const SVG = "http://www.w3.org/2000/svg";
  let day = config.day;
  let counted = null;
  const { duration } = window.calldesk;

  function cell(tag, text, className) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    if (tag === "th") el.scope = "row";
    return el;
  }

  function small(text) {
    const span = cell("span", text, "small muted");
    return span;
  }

  function pct(value) {
    return value === null || value === undefined ? "—" : `${value} %`;
  }

  function emptyRow(columns) {
    const tr = document.createElement("tr");
    const td = cell("td", t.none, "muted");
    td.colSpan = columns;
    tr.append(td);
    return tr;
  }

  // --- queues and agents ---------------------------------------------------------------
  function queueRow(q) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.queue;
    const sl = cell("td", undefined, "num sl");
    sl.dataset.field = "sl";
    sl.append(
      cell("span", pct(q.service_level_pct), "big"),
      " ",
      small(
        `${q.answered_within_sl} ${t.of} ${q.service_level_denominator}, ${t.within} ${Math.round(q.service_level_seconds)} ${t.seconds}`,
      ),
    );
    const waiting = cell("td", q.waiting, "num big");
    waiting.dataset.field = "waiting";
    const longest = cell("td", duration(q.longest_wait_seconds), "num");
    longest.dataset.field = "longest";
    const asa = cell("td", q.queue in day.asa ? duration(day.asa[q.queue]) : "—", "num");
    asa.dataset.field = "asa";
    const answered = cell("td", q.answered, "num");
    answered.dataset.field = "answered";
    const abandon = cell("td", pct(q.abandon_rate_pct), "num");
    abandon.dataset.field = "abandon";
    abandon.append(" ", small(`(${q.abandoned})`));
    tr.append(cell("th", q.queue), waiting, longest, sl, asa, answered, abandon);
    return tr;
  }

  function agentRow(a) {
    const tr = document.createElement("tr");
    tr.dataset.interface = a.interface;
    tr.dataset.status = a.status;
    const name = cell("th", a.name);
    if (a.extension) name.append(" ", small(a.extension));
    const status = cell("td", (t[a.status] || a.status) + (a.pause_reason ? ` · ${a.pause_reason}` : ""), "status-cell");
    status.dataset.field = "status";
    const since = cell("td", duration(a.seconds_in_state), "num");
    since.dataset.since = a.since;
    tr.append(name, status, since, cell("td", a.queues.join(", ")));
    return tr;
  }

  function applyBoard(board) {
    document.getElementById("queues").replaceChildren(...board.queues.map(queueRow));
    document.getElementById("agents").replaceChildren(...board.agents.map(agentRow));
    const total = board.queues.reduce((n, q) => n + q.answered + q.abandoned, 0);
    // The call log is written just after the PBX's event that moved the counters.
    if (counted !== null && total !== counted) setTimeout(reloadDay, 1000);
    counted = total;
  }

  // --- SLA -----------------------------------------------------------------------------
  function ticketCell(row) {
    return cell("th", `#${row.ticket_id} ${row.subject}`);
  }

  function applySla(sla) {
    const risk = sla.at_risk.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.ticket = r.ticket_id;
      tr.dataset.sla = "at_risk";
      const left = cell("td", duration(r.seconds_left), "num countdown");
      left.dataset.due = r.due_at;
      tr.append(ticketCell(r), cell("td", t["clock_" + r.clock] || r.clock), left);
      return tr;
    });
    document.getElementById("at-risk").replaceChildren(...(risk.length ? risk : [emptyRow(3)]));
    const breached = sla.breached.map((b) => {
      const tr = document.createElement("tr");
      tr.dataset.ticket = b.ticket_id;
      tr.dataset.sla = "breached";
      const over = cell("td", duration(b.seconds_overdue), "num");
      over.dataset.overdue = b.breached_at;
      tr.append(ticketCell(b), cell("td", t["clock_" + b.clock] || b.clock), over);
      return tr;
    });
    document.getElementById("breached").replaceChildren(...(breached.length ? breached : [emptyRow(3)]));
    const escalations = sla.escalations.map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.ticket = e.ticket_id;
      tr.append(ticketCell(e), cell("td", t["clock_" + e.clock] || e.clock), cell("td", e.level, "num"));
      return tr;
    });
    document.getElementById("escalations").replaceChildren(...(escalations.length ? escalations : [emptyRow(3)]));
    const most = Math.max(1, ...sla.teams.map((team) => team.total));
    const teams = sla.teams.map((team) => {
      const tr = document.createElement("tr");
      const bar = document.createElementNS(SVG, "svg");
      bar.setAttribute("class", "chart");
      bar.setAttribute("viewBox", "0 0 100 6");
      bar.setAttribute("aria-hidden", "true");
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("class", "answered");
      rect.setAttribute("height", "6");
      rect.setAttribute("width", String(Math.round((1000 * team.total) / most) / 10));
      bar.append(rect);
      const td = cell("td");
      td.style.width = "60%";
      td.append(bar);
      tr.append(cell("th", team.name), cell("td", team.total, "num"), td);
      return tr;
    });
    document.getElementById("backlog").replaceChildren(...(teams.length ? teams : [emptyRow(1)]));
    tick();
  }

  // --- the day's charts ------------------------------------------------------------------
  function drawBars(group, bars, className, known, label) {
    group.replaceChildren(
      ...bars
        .filter((_, i) => !known || known[i])
        .map((b) => {
          const rect = document.createElementNS(SVG, "rect");
          rect.setAttribute("class", className);
          for (const key of ["x", "y", "width", "height"]) rect.setAttribute(key, String(b[key]));
          const title = document.createElementNS(SVG, "title");
          title.textContent = label(b);
          rect.append(title);
          return rect;
        }),
    );
  }

  function drawDay() {
    const calls = document.getElementById("chart-calls");
    drawBars(calls.querySelector('[data-bars="total"]'), day.calls.total, "total", null, (b) => String(b.value));
    drawBars(calls.querySelector('[data-bars="answered"]'), day.calls.answered, "answered", null, (b) => `${t.answered} ${b.value}`);
    const level = document.getElementById("chart-sl");
    drawBars(level.querySelector('[data-bars="level"]'), day.service_level, "level", day.service_level_known, (b) => `${b.value} %`);
    document.querySelectorAll("#queues tr").forEach((tr) => {
      const asa = tr.querySelector('[data-field="asa"]');
      if (asa) asa.textContent = tr.dataset.queue in day.asa ? duration(day.asa[tr.dataset.queue]) : "—";
    });
  }

  async function reloadDay() {
    try {
      const response = await fetch("/wallboard/day", { credentials: "same-origin" });
      if (!response.ok) return;
      day = await response.json();
      drawDay();
      applyCsat(day.csat);
    } catch (_) {
      // The next change tries again.
    }
  }

  // --- surveys: CSAT today and the low scores waiting for someone ----------------------------
  function applyCsat(csat) {
    const out = document.querySelector("#csat-today .csat");
    out.dataset.answers = String(csat.answers);
    if (!csat.answers) {
      out.replaceChildren(cell("span", t.no_answers_today, "muted"));
      return;
    }
    const percent = cell("span", pct(csat.percent), "big");
    percent.dataset.field = "csat-percent";
    const of = small(`${csat.satisfied} ${t.csat_of} ${csat.answers} ${t.csat_answers}`);
    of.dataset.field = "csat-of";
    const average = cell("span", `${t.csat_average} ${csat.average}/5`, "small");
    average.dataset.field = "csat-average";
    const parts = [percent, " ", of, " ", average];
    if (csat.nps_answers) {
      const nps = cell("span", `${t.nps} ${csat.nps}`, "small");
      nps.dataset.field = "nps";
      parts.push(" ", nps);
    }
    out.replaceChildren(...parts);
  }

  function lowScoreItem(f) {
    const li = document.createElement("li");
    li.dataset.followUp = f.id;
    const head = document.createElement("p");
    const scores = [];
    if (f.csat !== null) scores.push(`CSAT ${f.csat}/5`);
    if (f.nps !== null) scores.push(`NPS ${f.nps}/10`);
    const score = cell("span", scores.join(" · "), "score");
    score.dataset.field = "score";
    head.append(cell("strong", f.customer), " ", score);
    if (f.ticket_id) {
      const link = cell("a", `#${f.ticket_id}${f.ticket_subject ? " " + f.ticket_subject : ""}`);
      link.href = `/desk/tickets/${f.ticket_id}`;
      head.append(" ", link);
    }
    if (f.reopened_ticket) head.append(" ", small(`(${t.reopened})`));
    li.append(head);
    if (f.comment) {
      const quote = cell("blockquote", f.comment);
      quote.dataset.field = "comment";
      li.append(quote);
    }
    const form = document.createElement("form");
    form.className = "ack";
    form.dataset.followUp = f.id;
    const label = cell("label", `${t.ack_note} `);
    const note = document.createElement("input");
    note.name = "note";
    note.required = true;
    note.maxLength = 2000;
    note.autocomplete = "off";
    label.append(note);
    const button = cell("button", t.acknowledge);
    button.type = "submit";
    const result = cell("span", "", "ack-result");
    result.setAttribute("role", "status");
    form.append(label, " ", button, " ", result);
    li.append(form);
    return li;
  }

  async function reloadLowScores() {
    try {
      const response = await fetch(`/api/v1/surveys/follow-ups?limit=${config.low_scores_shown}`, {
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const { items } = await response.json();
      const list = document.getElementById("low-scores");
      // A reload (another answer, another board's acknowledgement) must not wipe the
      // note a supervisor is typing: keep what each form held, and the focus.
      const typed = new Map();
      let focused = null;
      list.querySelectorAll("form.ack").forEach((form) => {
        const note = form.elements.note;
        if (note.value) typed.set(form.dataset.followUp, note.value);
        if (document.activeElement === note) {
          focused = { id: form.dataset.followUp, start: note.selectionStart, end: note.selectionEnd };
        }
      });
      list.replaceChildren(...(items.length ? items.map(lowScoreItem) : [cell("li", t.no_low_scores, "muted")]));
      list.querySelectorAll("form.ack").forEach((form) => {
        const note = form.elements.note;
        if (typed.has(form.dataset.followUp)) note.value = typed.get(form.dataset.followUp);
        if (focused && focused.id === form.dataset.followUp) {
          note.focus();
          note.setSelectionRange(focused.start, focused.end);
        }
      });
    } catch (_) {
      // The next event tries again.
    }
  }

  function setUpAcknowledgements() {
    document.getElementById("low-scores").addEventListener("submit", async (event) => {
      const form = event.target.closest("form.ack");
      if (!form) return;
      event.preventDefault();
      const result = form.querySelector(".ack-result");
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        await window.calldesk.api("POST", `/api/v1/surveys/follow-ups/${form.dataset.followUp}/acknowledge`, {
          note: form.elements.note.value,
        });
        // The acknowledged event reloads every wallboard's list, this one's too.
      } catch (error) {
        result.textContent = error.message;
        button.disabled = false;
      }
    });
  }

  // --- every second ------------------------------------------------------------------------
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = duration((now - Date.parse(el.dataset.since)) / 1000);
    });
    document.querySelectorAll("[data-due]").forEach((el) => {
      const left = (Date.parse(el.dataset.due) - now) / 1000;
      el.textContent = left >= 0 ? duration(left) : `${t.overdue} ${duration(-left)}`;
    });
    document.querySelectorAll("[data-overdue]").forEach((el) => {
      el.textContent = duration((now - Date.parse(el.dataset.overdue)) / 1000);
    });
  }

  // --- theme: remembered in this browser --------------------------------------------------
  function setUpTheme() {
    const link = document.getElementById("theme");
    const root = document.documentElement;
    const apply = (dark) => {
      if (dark) root.dataset.theme = "dark";
      else delete root.dataset.theme;
      link.textContent = dark ? link.dataset.light : link.dataset.dark;
      link.href = dark ? "?theme=light" : "?theme=dark";
    };
    const asked = new URLSearchParams(location.search).get("theme");
    if (asked) localStorage.setItem("desk-theme", asked);
    apply((asked || localStorage.getItem("desk-theme")) === "dark");
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const dark = root.dataset.theme !== "dark";
      localStorage.setItem("desk-theme", dark ? "dark" : "light");
      apply(dark);
    });
  }

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
    socket.on("board", applyBoard);
    socket.on("sla_board", applySla);
    // Answers arrive in bursts (one event per agent and transaction): one reload.  A
    // changed answer may add the customer's comment to a low score already listed.
    let answersSeen = null;
    socket.on("survey_answered", () => {
      clearTimeout(answersSeen);
      answersSeen = setTimeout(() => {
        reloadDay();
        reloadLowScores();
      }, 300);
    });
    socket.on("survey_low_score", reloadLowScores);
    socket.on("survey_low_score_acknowledged", reloadLowScores);
    // Missed while offline: fetched again on every (re)connection.
    socket.on("connect", () => {
      reloadLowScores();
      reloadDay();
    });
  }

  if (config.board) {
    counted = config.board.queues.reduce((n, q) => n + q.answered + q.abandoned, 0);
  }
  setUpTheme();
  setUpAcknowledgements();
  connect();
  tick();
  setInterval(tick, 1000);
  setInterval(reloadDay, 60_000);
})();

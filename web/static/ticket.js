// One ticket: replies and internal notes, its status, its SLA countdowns and who else
// has it open (ticket_open / ticket_close / ticket_presence).  Message text goes into
// the page with textContent only.
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("ticket-config").textContent);
  const t = config.words;
  let version = config.version;
  let socket = null;
  const { api, tickCountdowns } = window.calldesk;

  function tick() {
    tickCountdowns(t, Date.now());
  }

  function say(id, text, problem) {
    const el = document.getElementById(id);
    el.textContent = text;
    el.classList.toggle("problem", Boolean(problem));
  }

  function appendMessage(message) {
    document.getElementById("no-messages")?.remove();
    const li = document.createElement("li");
    li.dataset.kind = message.kind;
    const author = document.createElement("strong");
    author.textContent = config.userName;
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = new Date(message.created_at).toLocaleString(document.documentElement.lang);
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = message.body;
    li.append(author, ` · ${t[message.kind] || message.kind} · `, time, body);
    document.getElementById("messages").append(li);
  }

  function setUpReply() {
    const form = document.getElementById("reply-form");
    const text = form.elements.body;
    let composing = false;
    let idle = null;
    const tellComposing = (now) => {
      if (socket && now !== composing) socket.emit("ticket_open", { ticket_id: config.ticketId, composing: now });
      composing = now;
    };
    text.addEventListener("input", () => {
      tellComposing(true);
      clearTimeout(idle);
      idle = setTimeout(() => tellComposing(false), 3000);
    });
    const send = form.querySelector('button[type="submit"]');
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const sent = text.value;
      send.disabled = true;
      try {
        const message = await api("POST", `/api/v1/tickets/${config.ticketId}/messages`, {
          kind: form.elements.kind.value,
          body: sent,
        });
        appendMessage(message);
        // Whatever was typed while it was on its way stays.
        if (text.value === sent) text.value = "";
        tellComposing(false);
        say("reply-result", "");
      } catch (error) {
        say("reply-result", `${t.failed} ${error.message}`, true);
      } finally {
        send.disabled = false;
      }
    });
  }

  function setUpStatus() {
    const form = document.getElementById("status-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const ticket = await api("PATCH", `/api/v1/tickets/${config.ticketId}`, {
          version,
          status: form.elements.status.value,
        });
        version = ticket.version;
        say("status-result", t.saved);
      } catch (error) {
        say("status-result", `${t.failed} ${error.message}`, true);
      }
    });
  }

  // --- articles: search, then insert one into the reply ------------------------------
  function articleItem(article, id) {
    const li = document.createElement("li");
    li.className = "ticket";
    const title = document.createElement("strong");
    title.textContent = article.title;
    li.append(title);
    if (article.summary) {
      const summary = document.createElement("div");
      summary.className = "muted small";
      summary.textContent = article.summary;
      li.append(summary);
    }
    const insert = document.createElement("button");
    insert.type = "button";
    insert.className = "quiet";
    insert.textContent = t.insert;
    insert.setAttribute("aria-label", `${t.insert}: ${article.title}`);
    insert.addEventListener("click", async () => {
      try {
        const link = await api("POST", `/api/v1/kb/articles/${id}/links`, {
          ticket_id: config.ticketId,
          kind: "inserted",
        });
        const text = document.getElementById("reply-body");
        text.value = text.value ? `${text.value}\n\n${link.reply_text || ""}` : link.reply_text || "";
        text.focus();
      } catch (error) {
        say("reply-result", `${t.failed} ${error.message}`, true);
      }
    });
    li.append(insert);
    return li;
  }

  function showArticles(items) {
    const list = document.getElementById("articles");
    if (!items.length) {
      const none = document.createElement("li");
      none.className = "muted";
      none.textContent = t.no_articles;
      list.replaceChildren(none);
      return;
    }
    list.replaceChildren(...items.map(([article, id]) => articleItem(article, id)));
  }

  function setUpArticles() {
    const form = document.getElementById("article-search");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const q = form.elements.q.value.trim();
      if (!q) return;
      try {
        const response = await fetch(`/api/v1/kb/search?per_page=5&q=${encodeURIComponent(q)}`, {
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(response.statusText);
        const page = await response.json();
        showArticles(page.items.map((hit) => [hit, hit.id]));
      } catch (error) {
        say("reply-result", `${t.failed} ${error.message}`, true);
      }
    });
    // What the knowledge base suggests for this ticket, before any search.
    fetch(`/api/v1/kb/tickets/${config.ticketId}/suggestions`, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : { items: [] }))
      .then((data) => {
        if (data.items.length) showArticles(data.items.map((s) => [s, s.article_id]));
      })
      .catch(() => {});
  }

  function showPresence(presence) {
    if (presence.ticket_id !== config.ticketId) return;
    const others = presence.viewers.filter((viewer) => viewer.user_id !== config.userId);
    const line = document.getElementById("presence");
    line.textContent = others.length
      ? `${t.also_here} ${others.map((v) => (v.composing ? `${v.name} (${t.typing})` : v.name)).join(", ")}`
      : "";
  }

  function connect() {
    const live = document.getElementById("live");
    if (typeof io !== "function") return;
    socket = io({ transports: ["websocket"] });
    socket.on("connect", () => {
      live.textContent = live.dataset.live;
      live.dataset.state = "live";
      socket.emit("ticket_open", { ticket_id: config.ticketId });
    });
    socket.on("disconnect", () => {
      live.textContent = live.dataset.offline;
      live.dataset.state = "offline";
    });
    socket.on("ticket_presence", showPresence);
  }

  setUpReply();
  setUpStatus();
  setUpArticles();
  connect();
  tick();
  setInterval(tick, 1000);
})();

/*! CX Platform chat widget. Embed: <script src="https://HOST/static/widget/cx.js" data-key="PUBLIC_WIDGET_KEY" async></script>
 * No framework. Renders in a shadow root, so the host page's CSS cannot reach it and its CSS cannot leak out.
 * Every message is rendered as text (textContent), never as HTML.
 * API: CX.identify({id, email, name, hash}), CX.open(), CX.close(), CX.track(event, properties), CX.on(event, fn)
 * with events "ready", "message", "handoff" (also dispatched on window as "cx:ready", "cx:message", "cx:handoff").
 */
(function () {
  "use strict";
  if (window.CX && window.CX.__loaded) return;
  var script = document.currentScript || document.querySelector('script[src*="widget/cx.js"][data-key]');
  if (!script) return;
  var KEY = script.getAttribute("data-key") || "";
  var BASE = new URL(script.src, location.href).origin;
  var STORE = "cx_visitor_" + KEY;
  var RATED = "cx_rated_" + KEY;

  var state = { token: null, settings: null, conversation: null, convState: null, lastId: 0, seen: {}, unread: 0,
                open: false, ws: null, retry: 0, ready: false, queue: [], listeners: {}, lastTyping: 0, closedByUs: false,
                botTimer: null, lastReplyId: 0, awaitAfter: 0 };

  // ---- storage (private mode or blocked storage must not break the widget) --------------------------------
  function load(k) { try { return window.localStorage.getItem(k); } catch (e) { return null; } }
  function save(k, v) { try { window.localStorage.setItem(k, v); } catch (e) { /* session only */ } }
  function rated() { try { return JSON.parse(load(RATED) || "[]"); } catch (e) { return []; } }

  // ---- events -------------------------------------------------------------------------------------------------
  function emit(name, detail) {
    (state.listeners[name] || []).slice().forEach(function (fn) { try { fn(detail); } catch (e) { console.error(e); } });
    try { window.dispatchEvent(new CustomEvent("cx:" + name, { detail: detail })); } catch (e) { /* old browsers */ }
  }

  // ---- HTTP ---------------------------------------------------------------------------------------------------
  function post(path, body) {
    var headers = { "Content-Type": "application/json", "X-CX-Key": KEY };
    if (state.token) headers["X-CX-Visitor"] = state.token;
    return fetch(BASE + "/widget/v1/" + path, { method: "POST", mode: "cors", credentials: "omit", headers: headers,
      body: JSON.stringify(body || {}) }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { var err = new Error((data.error && data.error.message) || ("HTTP " + r.status)); err.status = r.status; throw err; }
        return data;
      });
    });
  }
  function withRetry(fn, tries) {
    return fn().catch(function (err) {
      if (tries <= 1 || (err.status && err.status < 500 && err.status !== 429)) throw err;
      return new Promise(function (res) { setTimeout(res, 800 * (4 - tries)); }).then(function () { return withRetry(fn, tries - 1); });
    });
  }

  // ---- DOM ------------------------------------------------------------------------------------------------------
  var host = document.createElement("cx-chat-widget");
  var hostStyle = { all: "initial", position: "fixed", right: "0", bottom: "0", "z-index": "2147483000", display: "block",
                    width: "0", height: "0", margin: "0", padding: "0", border: "0", transform: "none", opacity: "1",
                    visibility: "visible", overflow: "visible", filter: "none", "pointer-events": "auto" };
  Object.keys(hostStyle).forEach(function (p) { host.style.setProperty(p, hostStyle[p], "important"); });
  // Open (not closed) so accessibility and test tools can see in; page CSS is kept out either way.
  var shadow = host.attachShadow({ mode: "open" });
  var CSS = [
    ":host{all:initial}",
    ".cx,.cx *{box-sizing:border-box;margin:0;padding:0;border:0;font:inherit;color:inherit;background:none;text-transform:none;letter-spacing:normal;text-align:left;float:none;text-shadow:none;box-shadow:none;line-height:inherit;visibility:visible;opacity:1;transform:none;filter:none;max-width:none;min-width:0;}",
    ".cx{all:initial;font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.4;color:#1f2433;}",
    ".launcher{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;background:var(--cx);color:#fff;cursor:pointer;display:grid;place-items:center;box-shadow:0 6px 20px rgba(0,0,0,.25);}",
    ".launcher:focus-visible,.panel button:focus-visible,.panel textarea:focus-visible{outline:3px solid #ffbf47;outline-offset:2px;}",
    ".launcher svg{width:28px;height:28px;fill:#fff;display:block;}",
    ".badge{position:absolute;top:-3px;right:-3px;min-width:22px;height:22px;border-radius:11px;background:#d92d20;color:#fff;font-size:12px;font-weight:700;display:none;place-items:center;padding:0 6px;}",
    ".badge.on{display:grid;}",
    ".panel{position:fixed;right:20px;bottom:90px;width:370px;height:560px;max-height:calc(100vh - 110px);background:#fff;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.28);display:none;flex-direction:column;overflow:hidden;}",
    ".panel.open{display:flex;}",
    ".head{background:var(--cx);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:10px;}",
    ".head img{width:32px;height:32px;border-radius:50%;background:#fff;display:block;}",
    ".head .title{font-weight:700;flex:1;font-size:16px;} .head .sub{display:block;font-weight:400;font-size:12px;opacity:.9;}",
    ".close{cursor:pointer;color:#fff;font-size:22px;width:32px;height:32px;border-radius:8px;text-align:center;}",
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;background:#f7f8fb;list-style:none;}",
    ".msg{max-width:82%;padding:8px 11px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;display:block;}",
    ".msg.visitor{align-self:flex-end;background:var(--cx);color:#fff;border-bottom-right-radius:4px;}",
    ".msg.bot,.msg.agent{align-self:flex-start;background:#fff;border:1px solid #e3e6ee;border-bottom-left-radius:4px;}",
    ".msg.system{align-self:center;color:#5b6275;font-size:13px;text-align:center;max-width:92%;}",
    ".who{display:block;font-size:11px;color:#5b6275;margin-bottom:2px;}",
    ".choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px;}",
    ".choice{cursor:pointer;border:1px solid var(--cx);color:var(--cx);border-radius:99px;padding:4px 10px;font-size:13px;background:#fff;}",
    ".typing{min-height:18px;padding:0 14px;font-size:12px;color:#5b6275;background:#f7f8fb;}",
    ".csat{padding:10px 14px;border-top:1px solid #e3e6ee;display:none;background:#fff;}",
    ".csat.on{display:block;} .csat p{margin-bottom:6px;font-weight:600;}",
    ".stars{display:flex;gap:6px;margin-bottom:6px;} .star{cursor:pointer;border:1px solid #c9cedb;border-radius:8px;width:40px;height:34px;text-align:center;background:#fff;}",
    ".star[aria-pressed=true]{background:var(--cx);color:#fff;border-color:var(--cx);}",
    ".csat textarea{width:100%;border:1px solid #c9cedb;border-radius:8px;padding:6px;min-height:48px;display:block;margin-bottom:6px;background:#fff;}",
    ".form{display:flex;gap:8px;padding:10px;border-top:1px solid #e3e6ee;background:#fff;align-items:flex-end;}",
    ".form textarea{flex:1;resize:none;border:1px solid #c9cedb;border-radius:10px;padding:8px 10px;height:42px;max-height:120px;background:#fff;display:block;}",
    ".send,.primary{cursor:pointer;background:var(--cx);color:#fff;border-radius:10px;padding:0 14px;height:42px;font-weight:600;}",
    ".primary{height:34px;}",
    ".err{color:#b42318;font-size:12px;padding:0 14px;background:#fff;}",
    ".ask{display:none;padding:10px 14px;border-top:1px solid #e3e6ee;background:#fff;} .ask.on{display:block;}",
    ".ask label{display:block;font-weight:600;margin-bottom:6px;} .ask .row{display:flex;gap:8px;}",
    ".ask input{flex:1;border:1px solid #c9cedb;border-radius:8px;padding:6px 8px;height:34px;background:#fff;display:block;}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;}",
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100vh;height:100dvh;max-height:none;border-radius:0;}.launcher{right:14px;bottom:14px;}.panel.open~.launcher{display:none;}}"
  ].join("\n");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  var style = el("style"); style.textContent = CSS;
  var root = el("div", "cx");
  var launcher = el("button", "launcher"); launcher.type = "button";
  launcher.setAttribute("aria-label", "Open chat"); launcher.setAttribute("aria-expanded", "false");
  var svgNS = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(svgNS, "svg"); svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(svgNS, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
  svg.appendChild(path); launcher.appendChild(svg);
  var badge = el("span", "badge", "0"); badge.setAttribute("aria-hidden", "true"); launcher.appendChild(badge);

  var panel = el("div", "panel"); panel.setAttribute("role", "dialog"); panel.setAttribute("aria-modal", "false");
  var head = el("div", "head");
  var avatar = el("img"); avatar.alt = ""; avatar.style.display = "none";
  var title = el("div", "title", "Chat"); var sub = el("span", "sub", "Automated assistant · a person on request");
  var closeBtn = el("button", "close", "×"); closeBtn.type = "button"; closeBtn.setAttribute("aria-label", "Close chat");
  head.appendChild(avatar); head.appendChild(title); head.appendChild(closeBtn);
  var log = el("ol", "log"); log.setAttribute("role", "log"); log.setAttribute("aria-live", "polite"); log.setAttribute("aria-label", "Messages");
  var typing = el("div", "typing"); typing.setAttribute("aria-live", "polite");
  var err = el("div", "err"); err.setAttribute("role", "alert");
  var csat = el("div", "csat");
  // Outside business hours the handoff asks for an email, so the reply can follow by email.
  var ask = el("form", "ask");
  var askLabel = el("label", "", "Your email, for our reply"); askLabel.htmlFor = "cx-email";
  var askRow = el("div", "row");
  var askInput = el("input"); askInput.id = "cx-email"; askInput.type = "email"; askInput.autocomplete = "email";
  askInput.placeholder = "you@example.com"; askInput.required = true;
  var askSend = el("button", "primary", "Send email"); askSend.type = "submit";
  askRow.appendChild(askInput); askRow.appendChild(askSend); ask.appendChild(askLabel); ask.appendChild(askRow);
  var form = el("form", "form");
  var inputLabel = el("label", "sr", "Your message"); inputLabel.htmlFor = "cx-input";
  var input = el("textarea"); input.id = "cx-input"; input.rows = 1; input.placeholder = "Write a message…";
  var send = el("button", "send", "Send"); send.type = "submit";
  form.appendChild(inputLabel); form.appendChild(input); form.appendChild(send);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(typing); panel.appendChild(csat); panel.appendChild(ask); panel.appendChild(err); panel.appendChild(form);
  var live = el("div", "sr"); live.setAttribute("aria-live", "polite");
  root.appendChild(panel); root.appendChild(launcher); root.appendChild(live);
  shadow.appendChild(style); shadow.appendChild(root);

  // Shown only once the server accepted the key and this page's origin.
  // On <html>, not <body>: a body with transform, filter, perspective or contain would make position:fixed
  // relative to the body (the launcher would scroll away with a long page).
  function mount() {
    if (!host.isConnected) document.documentElement.appendChild(host);
  }

  // ---- rendering ----------------------------------------------------------------------------------------------
  var greetingEl = null;
  function applySettings(s) {
    var color = /^#[0-9a-fA-F]{6}$/.test(s.color || "") ? s.color : "#2f6fdf";
    root.style.setProperty("--cx", color);
    title.textContent = s.bot_name || "Chat";
    title.appendChild(sub);
    panel.setAttribute("aria-label", "Chat with " + (s.bot_name || "us"));
    if (s.avatar_url && /^https?:\/\//.test(s.avatar_url)) { avatar.src = s.avatar_url; avatar.style.display = "block"; }
  }
  function showGreeting() {
    if (greetingEl || state.lastId) return;
    greetingEl = el("li", "msg bot");
    greetingEl.appendChild(el("span", "who", state.settings.bot_name));
    greetingEl.appendChild(document.createTextNode((state.settings.greeting + " " + state.settings.notice).trim()));
    log.appendChild(greetingEl);
  }
  function who(m) {
    if (m.sender === "agent") return m.author || "Support";
    if (m.sender === "bot") return state.settings ? state.settings.bot_name : "Assistant";
    return "";
  }
  function render(m, fromServerReply) {
    if (!m || state.seen[m.id]) return false;
    state.seen[m.id] = true;
    if (m.id > state.lastId) state.lastId = m.id;
    if (m.conversation) state.conversation = m.conversation;
    if (greetingEl) { greetingEl.remove(); greetingEl = null; }
    var li = el("li", "msg " + m.sender);
    li.setAttribute("data-id", String(m.id));
    var name = who(m);
    if (name) li.appendChild(el("span", "who", name));
    li.appendChild(document.createTextNode(m.text));
    if (m.buttons && m.buttons.length) {
      var choices = el("div", "choices");
      m.buttons.forEach(function (b) {
        var c = el("button", "choice", b.label); c.type = "button";
        c.addEventListener("click", function () { sendText(b.label, b.entry_id); });
        choices.appendChild(c);
      });
      li.appendChild(choices);
    }
    var before = null;  // keep id order if two publishes cross
    Array.prototype.forEach.call(log.children, function (x) { var id = parseInt(x.getAttribute("data-id") || "0", 10); if (!before && id > m.id) before = x; });
    log.insertBefore(li, before);
    log.scrollTop = log.scrollHeight;
    if (m.sender !== "visitor") {
      // An older message caught up over the socket (the greeting of a new conversation) is not the awaited reply.
      if (m.id > state.awaitAfter) { typing.textContent = ""; clearTimeout(state.botTimer); }
      if (m.id > state.lastReplyId) state.lastReplyId = m.id;
      if (!state.open) { state.unread++; updateBadge(); }
      live.textContent = (name ? name + ": " : "") + m.text;
      emit("message", { id: m.id, sender: m.sender, text: m.text });
    }
    return true;
  }
  function updateBadge() {
    badge.textContent = String(state.unread);
    badge.className = "badge" + (state.unread ? " on" : "");
    launcher.setAttribute("aria-label", state.unread ? "Open chat, " + state.unread + " unread" : "Open chat");
  }
  function setConvState(conversation, s, askEmail) {
    var before = state.convState;
    if (conversation) state.conversation = conversation;
    state.convState = s;
    if (s === "waiting" && before !== "waiting") emit("handoff", { conversation: state.conversation });
    if (askEmail !== undefined) ask.className = "ask" + (askEmail ? " on" : "");
    renderCsat();
  }
  ask.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var email = askInput.value.trim();
    if (!email) return;
    askSend.disabled = true;
    post("email/", { email: email }).then(function (data) {
      askSend.disabled = false; err.textContent = "";
      (data.messages || []).forEach(function (m) { render(m); });
      setConvState(data.conversation.id, data.conversation.state, data.conversation.ask_email);
    }).catch(function (e) { askSend.disabled = false; err.textContent = e.message; });
  });
  function renderCsat() {
    // Once rated, the thank-you stays up for this conversation until it reopens.
    var thanked = state.thanked && state.thanked === state.conversation;
    var show = state.convState === "resolved" && state.conversation && (thanked || rated().indexOf(state.conversation) < 0);
    csat.className = "csat" + (show ? " on" : "");
    if (!show) { csat.textContent = ""; if (state.convState !== "resolved") state.thanked = null; return; }
    if (csat.childNodes.length) return;
    var score = 0;
    csat.appendChild(el("p", "", "How did we do?"));
    var stars = el("div", "stars"); stars.setAttribute("role", "group"); stars.setAttribute("aria-label", "Rate this conversation from 1 to 5");
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", "star", String(n)); b.type = "button"; b.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-label", n + " out of 5");
      b.addEventListener("click", function () {
        score = n;
        Array.prototype.forEach.call(stars.children, function (x, i) { x.setAttribute("aria-pressed", String(i + 1 === n)); });
      });
      stars.appendChild(b);
    });
    var comment = el("textarea"); comment.setAttribute("aria-label", "Comment (optional)"); comment.placeholder = "Anything to add? (optional)";
    var submit = el("button", "primary", "Send rating"); submit.type = "button";
    submit.addEventListener("click", function () {
      if (!score) { err.textContent = "Pick a score from 1 to 5."; return; }
      var conv = state.conversation;
      post("csat/", { conversation: conv, score: score, comment: comment.value }).then(function () {
        var r = rated(); r.push(conv); save(RATED, JSON.stringify(r));
        state.thanked = conv;
        csat.textContent = ""; csat.appendChild(el("p", "", "Thank you for your feedback!"));
        err.textContent = "";
      }).catch(function (e) { err.textContent = e.message; });
    });
    csat.appendChild(stars); csat.appendChild(comment); csat.appendChild(submit);
  }

  // ---- socket: live delivery, catch-up after every (re)connect ---------------------------------------------
  function connect() {
    var url = BASE.replace(/^http/, "ws") + "/ws/widget/?key=" + encodeURIComponent(KEY);
    var ws;
    try { ws = new WebSocket(url); } catch (e) { return schedule(); }
    state.ws = ws;
    ws.onopen = function () { state.retry = 0; ws.send(JSON.stringify({ type: "hello", visitor: state.token, after: state.lastId })); };
    // A channel layer under overload may drop an event silently: ask for anything missed every 20 s.
    clearInterval(state.resync);
    state.resync = setInterval(function () {
      if (state.ws === ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "hello", visitor: state.token, after: state.lastId }));
    }, 20000);
    ws.onmessage = function (ev) {
      var data; try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.kind === "messages") {
        (data.messages || []).forEach(function (m) { render(m); });
        if (data.conversation) setConvState(data.conversation, data.state, data.ask_email);
      } else if (data.kind === "message") {
        render(data.message);
      } else if (data.kind === "state") {
        setConvState(data.conversation, data.state, data.ask_email);
      } else if (data.kind === "typing" && data.who === "agent") {
        typing.textContent = (data.name || "Support") + " is typing…";
        clearTimeout(state.typingTimer);
        state.typingTimer = setTimeout(function () { typing.textContent = ""; }, 4000);
      }
    };
    ws.onclose = function () { if (state.ws === ws) { state.ws = null; schedule(); } };
  }
  function schedule() {
    var delay = Math.min(15000, 500 * Math.pow(2, state.retry++)) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  }

  // ---- the bot's reply comes over the socket: show it typing; if nothing came, ask for what we missed ------------
  function catchUp() {
    if (state.ws && state.ws.readyState === 1) {
      state.ws.send(JSON.stringify({ type: "hello", visitor: state.token, after: state.lastId }));
      return;
    }
    post("messages/after/", { after: state.lastId }).then(function (data) {
      (data.messages || []).forEach(function (m) { render(m); });
      if (data.conversation) setConvState(data.conversation.id, data.conversation.state, data.conversation.ask_email);
    }).catch(function () { /* the socket's reconnect catches up */ });
  }
  function awaitBot(after, tries) {
    clearTimeout(state.botTimer);
    state.awaitAfter = after;
    if (state.lastReplyId > after) return;
    typing.textContent = ((state.settings && state.settings.bot_name) || "Assistant") + " is typing…";
    state.botTimer = setTimeout(function () {
      if (state.lastReplyId > after) return;
      catchUp();
      if (tries < 3) awaitBot(after, tries + 1); else typing.textContent = "";
    }, 6000);
  }

  // ---- sending ----------------------------------------------------------------------------------------------
  function clientId() {
    var a = new Uint8Array(9); (window.crypto || window.msCrypto).getRandomValues(a);
    return "c" + Array.prototype.map.call(a, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  function sendText(text, entryId) {
    text = (text || "").trim();
    if (!text) return;
    var max = (state.settings && state.settings.max_chars) || 2000;
    if (text.length > max) { err.textContent = "Messages are limited to " + max + " characters."; return; }
    err.textContent = "";
    var body = { text: text, client_id: clientId(), page_url: location.href.slice(0, 2000) };
    if (entryId) body.entry_id = entryId;
    send.disabled = true;
    whenReady(function () {
      withRetry(function () { return post("messages/", body); }, 3).then(function (data) {
        send.disabled = false;
        data.messages.forEach(function (m) { render(m); });
        setConvState(data.conversation.id, data.conversation.state, data.conversation.ask_email);
        var mine = Math.max.apply(null, data.messages.map(function (m) { return m.sender === "visitor" ? m.id : 0; }));
        if (data.conversation.state === "bot") awaitBot(mine, 0);  // unless the reply is already here
      }).catch(function (e) { send.disabled = false; err.textContent = e.message || "Could not send; please retry."; input.value = input.value || text; });
    });
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); var t = input.value; input.value = ""; sendText(t); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (state.ws && state.ws.readyState === 1 && now - state.lastTyping > 2000) { state.lastTyping = now; state.ws.send(JSON.stringify({ type: "typing" })); }
  });

  // ---- open / close, keyboard ------------------------------------------------------------------------------
  function open() {
    state.open = true; panel.className = "panel open"; launcher.setAttribute("aria-expanded", "true");
    state.unread = 0; updateBadge();
    setTimeout(function () { input.focus(); log.scrollTop = log.scrollHeight; }, 0);
  }
  function close() {
    state.open = false; panel.className = "panel"; launcher.setAttribute("aria-expanded", "false"); launcher.focus();
  }
  launcher.addEventListener("click", function () { if (state.open) close(); else open(); });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { ev.stopPropagation(); close(); } });

  // ---- start ----------------------------------------------------------------------------------------------
  function whenReady(fn) { if (state.ready) fn(); else state.queue.push(fn); }
  function start(attempt) {
    state.token = load(STORE);
    post("session/", { page_url: location.href.slice(0, 2000) }).then(function (data) {
      state.token = data.visitor; save(STORE, data.visitor);
      state.settings = data.settings; applySettings(data.settings); mount();
      (data.messages || []).forEach(function (m) { render(m); });
      state.unread = 0; updateBadge();
      if (data.conversation) setConvState(data.conversation.id, data.conversation.state, data.conversation.ask_email);
      showGreeting();
      state.ready = true;
      connect();
      state.queue.splice(0).forEach(function (fn) { fn(); });
      emit("ready", { conversation: state.conversation });
    }).catch(function (e) {
      if (e.status === 401 || e.status === 403) { console.warn("CX widget:", e.message); return; }
      setTimeout(function () { start((attempt || 0) + 1); }, Math.min(15000, 1000 * Math.pow(2, attempt || 0)));
    });
  }

  window.CX = {
    __loaded: true,
    open: open,
    close: close,
    on: function (name, fn) { (state.listeners[name] = state.listeners[name] || []).push(fn); if (name === "ready" && state.ready) fn({ conversation: state.conversation }); },
    identify: function (who) {
      return new Promise(function (resolve, reject) {
        whenReady(function () {
          post("identify/", { id: String(who.id || ""), email: who.email || "", name: who.name || "", hash: who.hash || "" }).then(resolve, reject);
        });
      });
    },
    track: function (event, properties) {
      return new Promise(function (resolve, reject) {
        whenReady(function () { post("track/", { event: String(event), properties: properties || {}, url: location.href.slice(0, 2000) }).then(resolve, reject); });
      });
    }
  };
  start(0);
})();

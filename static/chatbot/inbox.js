// Agent inbox: live list and thread over /ws/inbox/, reconnect with backoff and catch-up by message id.
// Every message is rendered with textContent: never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("inbox");
  if (!root) return;
  var conversationId = parseInt(root.dataset.conversation || "0", 10);
  var lastId = parseInt(root.dataset.lastId || "0", 10);
  var seen = {};
  var transcript = document.getElementById("transcript");
  var status = document.getElementById("live-status");
  var typingEl = document.getElementById("typing");
  var ws = null, retry = 0, typingTimer = null, lastTypingSent = 0, listTimer = null;
  if (transcript) {
    transcript.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });
    transcript.scrollTop = transcript.scrollHeight;
  }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function setStatus(text, cls) { if (status) { status.textContent = text; status.className = "badge " + cls; } }
  function label(m) {
    if (m.sender === "agent") return m.author || "Agent";
    return { bot: "Bot", visitor: "Visitor", system: "System" }[m.sender] || m.sender;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Times as the page's own (server-rendered) ones show them: in the business's time zone, 24-hour.
  var clockFormat = null;
  try {
    clockFormat = new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZone: (transcript && transcript.dataset.timeZone) || undefined,
    });
  } catch (e) { clockFormat = null; }  // an unknown zone: the browser's own
  function clock(iso) {
    var d = new Date(iso);
    return clockFormat ? clockFormat.format(d) : d.toTimeString().slice(0, 5);
  }
  function addMessage(m) {
    if (!transcript || m.conversation !== conversationId || seen[m.id]) return;
    seen[m.id] = true;
    if (m.id > lastId) lastId = m.id;
    var li = el("li", "msg from-" + m.sender + (m.note ? " note" : ""));
    li.dataset.id = m.id;
    var meta = el("div", "msg-meta", (m.note ? "Private note · " : "") + label(m) + " · ");
    var time = el("time", null, clock(m.created));
    time.dateTime = m.created;
    meta.appendChild(time);
    li.appendChild(meta);
    li.appendChild(el("div", "msg-text", m.text));
    if (m.buttons && m.buttons.length) {
      var b = el("div", "msg-buttons");
      m.buttons.forEach(function (x) { b.appendChild(el("span", "badge", x.label)); b.appendChild(document.createTextNode(" ")); });
      li.appendChild(b);
    }
    var d = m.decision;
    if (d) {
      var dl = el("dl", "decision");
      var rows = [["action", d.action], ["entry", d.entry_title || d.entry_id], ["confidence", (d.confidence || 0).toFixed(2)],
                  ["sentiment", (d.sentiment || 0).toFixed(2)], ["intent", d.intent && d.intent !== "none" ? d.intent : null], ["why", d.reason]];
      rows.forEach(function (r) { if (r[1] === null || r[1] === undefined || r[1] === "") return; dl.appendChild(el("dt", "", r[0])); dl.appendChild(el("dd", "", String(r[1]))); });
      li.appendChild(dl);
    }
    // Keep id order even when two publishes arrive out of order.
    var after = null;
    transcript.querySelectorAll("li[data-id]").forEach(function (x) { if (!after && parseInt(x.dataset.id, 10) > m.id) after = x; });
    transcript.insertBefore(li, after);
    transcript.scrollTop = transcript.scrollHeight;
    if (m.sender === "visitor" && typingEl) typingEl.textContent = "";
  }
  function refreshList(freshId) {
    clearTimeout(listTimer);
    listTimer = setTimeout(function () {
      var params = new URLSearchParams({ view: root.dataset.view || "open", q: root.dataset.q || "", selected: String(conversationId || "") });
      fetch(root.dataset.listUrl + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          document.getElementById("list-holder").innerHTML = html; // server-rendered, escaped by Django
          // The tabs' counts come with the list, so they change when it does.
          var list = document.getElementById("conversation-list");
          ["waiting", "mine", "open"].forEach(function (name) {
            var count = document.getElementById("count-" + name), value = list && list.getAttribute("data-count-" + name);
            if (count && value !== null) count.textContent = value;
          });
          if (freshId) { var li = document.querySelector('.conv-item[data-id="' + freshId + '"]'); if (li) li.classList.add("fresh"); }
        });
    }, 150);
  }
  // A new waiting conversation: a short beep (WebAudio, no file) and, when the tab is hidden, a browser
  // notification; once per conversation. The mute toggle beside the live status is kept in localStorage.
  var MUTE_KEY = "cx_inbox_muted", alerted = {}, audio = null;
  function muted() { try { return localStorage.getItem(MUTE_KEY) === "1"; } catch (e) { return false; } }
  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      audio = audio || new Ctx();
      if (audio.state === "suspended") audio.resume();
      var osc = audio.createOscillator(), gain = audio.createGain(), t = audio.currentTime;
      osc.type = "sine"; osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t); gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      osc.connect(gain); gain.connect(audio.destination); osc.start(t); osc.stop(t + 0.26);
    } catch (e) { /* no audio device */ }
  }
  function notify(c) {
    if (c.state !== "waiting") { delete alerted[c.id]; return; }
    if (alerted[c.id]) return;
    alerted[c.id] = true;
    if (muted()) return;
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted" || document.visibilityState === "visible") return;
    try { new Notification("A visitor is waiting for a person", { body: c.customer || "Anonymous visitor", tag: "cx-" + c.id }); } catch (e) { /* ignore */ }
  }
  if (status) {
    var muteBtn = el("button", "btn small mute-toggle");
    muteBtn.type = "button";
    var showMute = function () {
      var m = muted();
      muteBtn.textContent = m ? "Sound off" : "Sound on";
      muteBtn.setAttribute("aria-pressed", String(m));
      muteBtn.setAttribute("aria-label", m ? "Alerts muted: unmute new-conversation alerts" : "Mute new-conversation alerts");
    };
    muteBtn.addEventListener("click", function () {
      try { localStorage.setItem(MUTE_KEY, muted() ? "0" : "1"); } catch (e) { /* private mode */ }
      showMute();
    });
    showMute();
    status.parentNode.insertBefore(muteBtn, status.nextSibling);
  }
  // Browsers only allow audio after a user gesture: create the audio context on the first click.
  document.addEventListener("click", function () {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    try { if (Ctx && !audio) audio = new Ctx(); } catch (e) { /* no audio */ }
  }, { once: true });
  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.dataset.socket;
    ws = new WebSocket(url);
    ws.onopen = function () {
      retry = 0;
      setStatus("live", "live");
      if (conversationId) ws.send(JSON.stringify({ type: "watch", conversation: conversationId, after: lastId }));
      refreshList();
    };
    // While the inbox is open the agent is online for auto-assignment: heartbeat every 30 s.
    clearInterval(window.cxHeartbeat);
    window.cxHeartbeat = setInterval(function () { if (ws.readyState === 1) ws.send(JSON.stringify({ type: "heartbeat" })); }, 30000);
    // A channel layer under overload may drop an event silently: ask for anything missed every 20 s.
    clearInterval(window.cxResync);
    window.cxResync = setInterval(function () {
      if (ws.readyState !== 1) return;
      if (conversationId) ws.send(JSON.stringify({ type: "watch", conversation: conversationId, after: lastId }));
      refreshList();
    }, 20000);
    ws.onmessage = function (ev) {
      var data = JSON.parse(ev.data);
      if (data.kind === "messages") data.messages.forEach(addMessage);
      else if (data.kind === "message") addMessage(data.message);
      else if (data.kind === "conversation") {
        refreshList(data.conversation.id);
        notify(data.conversation);
        if (data.conversation.id === conversationId) {
          var badge = document.getElementById("thread-state");
          if (badge) { badge.textContent = data.conversation.state; badge.className = "badge conv-state " + data.conversation.state; }
        }
      } else if (data.kind === "typing" && data.conversation === conversationId && data.who === "visitor" && typingEl) {
        typingEl.textContent = "The visitor is typing…";
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { typingEl.textContent = ""; }, 4000);
      }
    };
    ws.onclose = function () {
      setStatus("reconnecting…", "offline");
      var delay = Math.min(10000, 500 * Math.pow(2, retry++)) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  var form = document.getElementById("reply-form");
  var text = document.getElementById("reply-text");
  var noteBox = document.getElementById("reply-note");
  var sendBtn = document.getElementById("reply-send");
  var picker = document.getElementById("canned-picker");
  var hint = document.getElementById("canned-hint");
  var cannedEl = document.getElementById("canned-data");
  var canned = cannedEl ? JSON.parse(cannedEl.textContent) : [];

  // Canned responses: the picker inserts at the cursor; "/shortcut" then Enter or Tab expands in place.
  function insertAtCursor(value, from, to) {
    var start = from === undefined ? text.selectionStart : from, end = to === undefined ? text.selectionEnd : to;
    text.value = text.value.slice(0, start) + value + text.value.slice(end);
    text.selectionStart = text.selectionEnd = start + value.length;
    text.focus();
    showHint();
  }
  function slashToken() {
    var before = text.value.slice(0, text.selectionStart);
    var m = /(^|\s)\/([a-z0-9_-]*)$/.exec(before);
    return m ? { word: m[2], start: before.length - m[2].length - 1 } : null;
  }
  function matches(word) { return canned.filter(function (c) { return c.shortcut.indexOf(word) === 0; }); }
  function showHint() {
    if (!hint) return;
    var token = slashToken();
    var found = token ? matches(token.word) : [];
    hint.textContent = found.length ? found.slice(0, 5).map(function (c) { return "/" + c.shortcut; }).join("  ") + "  (Tab inserts)" : "";
  }
  function expand(exactOnly) {
    var token = slashToken();
    if (!token) return false;
    var found = matches(token.word);
    var exact = found.filter(function (c) { return c.shortcut === token.word; })[0];
    var pick = exact || (!exactOnly && found.length === 1 ? found[0] : null);
    if (!pick) return false;
    insertAtCursor(pick.text, token.start, text.selectionStart);
    return true;
  }
  if (picker && text) {
    picker.addEventListener("change", function () {
      var pick = canned.filter(function (c) { return c.shortcut === picker.value; })[0];
      picker.value = "";
      if (pick) insertAtCursor(pick.text);
    });
  }
  function noting() { return !!(noteBox && noteBox.checked); }
  if (noteBox && form) {
    noteBox.addEventListener("change", function () {
      form.classList.toggle("noting", noting());
      if (sendBtn) sendBtn.textContent = noting() ? "Add note" : "Send";
    });
  }

  if (form && text) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var value = text.value.trim();
      if (!value) return;
      var clientId = "a" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
      text.disabled = true;
      fetch(root.dataset.replyUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({ text: value, client_id: clientId, note: noting() })
      }).then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          text.disabled = false;
          if (res.ok) { text.value = ""; addMessage(res.body.message); }
          else alert(res.body.error ? res.body.error.message : "Could not send.");
          text.focus();
        }).catch(function () { text.disabled = false; alert("Could not send; check your connection and retry."); });
    });
    text.addEventListener("keydown", function (ev) {
      if (ev.key === "Tab" && !ev.shiftKey && expand(false)) { ev.preventDefault(); return; }
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        if (!expand(true)) form.requestSubmit();
      }
    });
    text.addEventListener("input", function () {
      showHint();
      var now = Date.now();
      if (ws && ws.readyState === 1 && now - lastTypingSent > 2000) {
        lastTypingSent = now;
        ws.send(JSON.stringify({ type: "typing", conversation: conversationId }));
      }
    });
  }
  if ("Notification" in window && Notification.permission === "default") {
    document.addEventListener("click", function ask() { Notification.requestPermission(); document.removeEventListener("click", ask); });
  }
  window.cxInbox = { lastId: function () { return lastId; } };
  connect();
})();

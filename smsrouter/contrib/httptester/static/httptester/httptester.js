/* The httptester page: pick a backend and a phone number, send SMS, watch the replies.
 *
 * The conversation arrives live over a WebSocket: one frame per new message or status
 * change, merged into what is shown. While the socket is down (or before it opens) the
 * page polls every POLL_MS while the tab is visible, and reconnects with a backoff.
 * Everything that draws messages goes through render(messages).
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var TYPING_DEBOUNCE_MS = 250;
  var STORAGE_IDENTITY = "smsrouter.httptester.identity";
  var STORAGE_BACKEND = "smsrouter.httptester.backend";

  var app = document.getElementById("httptester");
  var backendSelect = document.getElementById("backend");
  if (!app || !backendSelect) {
    return; // no httptester backend configured: the page only shows how to add one
  }
  var baseUrl = app.dataset.baseUrl;
  var wsBase = app.dataset.wsBase;
  var identityInput = document.getElementById("identity");
  var randomButton = document.getElementById("random-identity");
  var list = document.getElementById("messages");
  var stateLine = document.getElementById("conversation-state");
  var composer = document.getElementById("composer");
  var textBox = document.getElementById("text");
  var sendButton = document.getElementById("send");
  var counter = document.getElementById("counter");
  var errorLine = document.getElementById("error");

  // ---- storage (may be unavailable, e.g. with cookies blocked) ----

  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }

  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* not remembered */ }
  }

  // ---- the current conversation ----

  function backend() { return backendSelect.value; }
  function identity() { return identityInput.value.trim(); }
  function conversationKey() { return backend() + "\n" + identity(); }

  function messagesUrl() {
    return baseUrl + encodeURIComponent(backend()) + "/" + encodeURIComponent(identity()) + "/messages";
  }

  function inboundUrl() {
    var option = backendSelect.options[backendSelect.selectedIndex];
    return option.dataset.inboundUrl;
  }

  function randomIdentity() {
    var digits = new Uint32Array(1);
    window.crypto.getRandomValues(digits);
    return "+2557" + String(digits[0] % 100000000).padStart(8, "0");
  }

  // ---- rendering ----

  var rendered = null; // the conversation on screen (key + JSON), to redraw only on change

  function formatTime(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return iso; }
    var sameDay = date.toDateString() === new Date().toDateString();
    var time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return sameDay ? time : date.toLocaleDateString() + " " + time;
  }

  function bubble(message) {
    var item = document.createElement("li");
    var outgoing = message.direction === "out";
    item.className = "msg " + (outgoing ? "msg-out" : "msg-in");
    item.dataset.direction = message.direction;
    item.dataset.status = message.status;

    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = outgoing ? "Reply: " : "You sent: ";
    item.appendChild(who);

    var text = document.createElement("p");
    text.className = "msg-text";
    text.textContent = message.text;
    if (message.text === "") {
      text.classList.add("msg-empty");
      text.setAttribute("aria-label", "(empty message)");
    }
    item.appendChild(text);

    var meta = document.createElement("p");
    meta.className = "msg-meta";
    var time = document.createElement("time");
    time.dateTime = message.created_at;
    time.title = new Date(message.created_at).toLocaleString();
    time.textContent = formatTime(message.created_at);
    var status = document.createElement("span");
    status.className = "msg-status status-" + message.status;
    status.textContent = message.status;
    meta.append(time, " · ", status);
    item.appendChild(meta);
    return item;
  }

  /* Draw a conversation: an array of {direction, text, status, created_at}, oldest first,
   * or null while the selected conversation is loading. */
  function render(messages) {
    var json = conversationKey() + "\n" + JSON.stringify(messages);
    if (json === rendered) { return; }
    rendered = json;

    var nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren.apply(list, (messages || []).map(bubble));
    if (messages === null) {
      stateLine.textContent = identity() ? "Loading…" : "Enter a phone number to start.";
      stateLine.hidden = false;
    } else if (messages.length === 0) {
      stateLine.textContent = "No messages yet. Send “ECHO hello” to try.";
      stateLine.hidden = false;
    } else {
      stateLine.hidden = true;
    }
    if (nearBottom || messages === null) {
      list.scrollTop = list.scrollHeight;
    }
  }

  // ---- fetching ----

  var requested = 0; // sequence number of the last conversation request sent
  var applied = 0;   // ... and of the newest one drawn, so a slow answer never overwrites a newer one
  var pollTimer = null;

  function showError(message, source) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
    errorLine.dataset.source = source || "";
  }

  async function errorFrom(response) {
    try {
      var body = await response.json();
      if (body && body.error) { return body.error; }
    } catch (e) { /* not JSON */ }
    return "The server answered " + response.status + " " + response.statusText + ".";
  }

  async function refresh() {
    if (!identity()) { render(null); return; }
    var key = conversationKey();
    var sequence = ++requested;
    var since = frameCount;
    try {
      var response = await fetch(messagesUrl(), { headers: { Accept: "application/json" }, cache: "no-store" });
      if (key !== conversationKey() || sequence < applied) { return; }
      if (!response.ok) {
        showError(await errorFrom(response), "poll");
        return;
      }
      var body = await response.json();
      if (key !== conversationKey() || sequence < applied) { return; }
      applied = sequence;
      // Frames that came while the answer was on its way are newer than it: a reply sent
      // just after its webhook was answered must not go back to "queued" on screen.
      shown = recentFrames.filter(function (f) { return f.seq > since; })
        .reduce(function (list, f) { return withFrame(list, f.message); }, body.messages);
      render(shown);
      if (errorLine.dataset.source === "poll") { showError(""); }
    } catch (e) {
      if (key === conversationKey()) {
        showError("Cannot reach the server to read the conversation (" + e.message + ").", "poll");
      }
    }
  }

  function schedulePoll() {
    window.clearTimeout(pollTimer);
    if (!live && document.visibilityState === "visible") {
      pollTimer = window.setTimeout(async function () {
        await refresh();
        schedulePoll();
      }, POLL_MS);
    }
  }

  function refreshNow() {
    refresh().then(schedulePoll);
  }

  function conversationChanged() {
    shown = [];
    recentFrames = [];
    render(null);
    showError("");
    sendButton.disabled = !identity();
    connectLive();
  }

  // ---- live updates ----

  var shown = [];      // the conversation on screen, oldest first
  var socket = null;
  var live = false;    // true while the socket is open: no polling then
  var reconnectMs = 1000;
  var reconnectTimer = null;

  var frameCount = 0;
  var recentFrames = [];  // the last frames, numbered, for a refresh answered after them

  function frameKey(message) { return message.direction + " " + message.created_at; }

  /* A frame is one message, new or with a new status: replace it in place, or add it. */
  function withFrame(list, message) {
    var key = frameKey(message);
    var next = list.filter(function (m) { return frameKey(m) !== key; });
    next.push(message);
    next.sort(function (a, b) { return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0; });
    return next;
  }

  function merge(message) {
    recentFrames.push({ seq: ++frameCount, message: message });
    if (recentFrames.length > 100) { recentFrames.shift(); }
    shown = withFrame(shown, message);
    render(shown);
  }

  function setLive(isLive) {
    live = isLive;
    app.dataset.transport = isLive ? "websocket" : "polling";
  }

  function connectLive() {
    window.clearTimeout(reconnectTimer);
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    setLive(false);
    if (!identity() || !("WebSocket" in window)) { return; }
    var key = conversationKey();
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + wsBase + encodeURIComponent(backend()) + "/" +
      encodeURIComponent(identity()) + "/";
    var opened = new WebSocket(url);
    socket = opened;
    opened.onopen = function () {
      reconnectMs = 1000;
      setLive(true);
      window.clearTimeout(pollTimer);
      refresh();  // whatever arrived before the socket opened
    };
    opened.onmessage = function (event) {
      if (key === conversationKey()) { merge(JSON.parse(event.data)); }
    };
    opened.onclose = function () {
      if (socket !== opened) { return; }
      socket = null;
      setLive(false);
      schedulePoll();
      reconnectTimer = window.setTimeout(connectLive, reconnectMs);
      reconnectMs = Math.min(reconnectMs * 2, RECONNECT_MAX_MS);
    };
  }

  // ---- sending ----

  var sending = false;

  async function send() {
    if (sending) { return; }
    if (!identity()) {
      showError("Enter a phone number first.");
      identityInput.focus();
      return;
    }
    sending = true;
    sendButton.disabled = true;
    showError("");
    var body = new URLSearchParams({ identity: identity(), text: textBox.value });
    try {
      var response = await fetch(inboundUrl(), {
        method: "POST",
        // The view is csrf_exempt today; the token keeps the page working if it stops being.
        headers: {
          "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
          "X-CSRFToken": app.dataset.csrfToken || "",
        },
        body: body,
      });
      if (response.ok) {
        textBox.value = "";
        updateCounter();
      } else {
        showError(await errorFrom(response), "send");
      }
    } catch (e) {
      showError("Cannot reach the server, the message was not sent (" + e.message + ").", "send");
    } finally {
      sending = false;
      sendButton.disabled = !identity();
      textBox.focus();
    }
    refreshNow();
  }

  // ---- the character counter: GSM 7-bit fits 160 per SMS, anything else is UCS-2 (70) ----

  var GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM_EXTENDED = "^{}\\[~]|€\f";

  function smsLength(text) {
    var units = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (GSM_BASIC.indexOf(c) >= 0) { units += 1; }
      else if (GSM_EXTENDED.indexOf(c) >= 0) { units += 2; }
      else { return { units: text.length, single: 70, multi: 67, unicode: true }; }
    }
    return { units: units, single: 160, multi: 153, unicode: false };
  }

  function updateCounter() {
    var length = smsLength(textBox.value);
    var segments = length.units <= length.single ? 1 : Math.ceil(length.units / length.multi);
    var capacity = segments === 1 ? length.single : segments * length.multi;
    counter.textContent = length.units + " / " + capacity + " · " + segments + " SMS" +
      (length.unicode ? " (Unicode)" : "");
    counter.classList.toggle("counter-multi", segments > 1);
  }

  // ---- wiring ----

  var typingTimer = null;

  backendSelect.addEventListener("change", function () {
    save(STORAGE_BACKEND, backend());
    conversationChanged();
    refreshNow();
  });

  identityInput.addEventListener("input", function () {
    save(STORAGE_IDENTITY, identity());
    conversationChanged();
    window.clearTimeout(typingTimer);
    // Once the number settles, read its conversation, unless a socket for it has opened
    // meanwhile: that has read it already.
    typingTimer = window.setTimeout(function () {
      if (!live) { refreshNow(); }
    }, TYPING_DEBOUNCE_MS);
  });

  randomButton.addEventListener("click", function () {
    identityInput.value = randomIdentity();
    save(STORAGE_IDENTITY, identity());
    conversationChanged();
    refreshNow();
  });

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });

  textBox.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  textBox.addEventListener("input", updateCounter);

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      refreshNow();
    } else {
      window.clearTimeout(pollTimer);
    }
  });

  // ---- start ----

  var storedBackend = load(STORAGE_BACKEND);
  if (storedBackend && Array.prototype.some.call(backendSelect.options, function (o) { return o.value === storedBackend; })) {
    backendSelect.value = storedBackend;
  }
  identityInput.value = load(STORAGE_IDENTITY) || randomIdentity();
  save(STORAGE_IDENTITY, identity());
  updateCounter();
  conversationChanged();
  refreshNow();

  // For poking at the page from the console.
  window.httptester = { render: render, refresh: refreshNow, reconnect: connectLive };
})();

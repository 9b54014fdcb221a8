// The conversation page, live: every two seconds it asks for messages newer than the
// last one shown and for the state of those still on their way (received, queued,
// sending), and puts in the bubbles the server rendered. The server escapes every text.
"use strict";

(function () {
  const thread = document.getElementById("thread");
  if (!thread) {
    return;
  }
  const box = thread.closest(".thread");
  box.scrollTop = box.scrollHeight;
  if (thread.dataset.live !== "1") {
    return;
  }
  const EVERY_MS = 2000;
  const url = thread.dataset.pollUrl;
  let lastId = Number(thread.dataset.lastId) || 0;

  function pendingIds() {
    return Array.from(thread.querySelectorAll("[data-pending]"), (bubble) => bubble.dataset.id);
  }

  function place(item) {
    const template = document.createElement("template");
    template.innerHTML = item.html.trim();
    const bubble = template.content.firstElementChild;
    const shown = document.getElementById("message-" + item.id);
    if (shown) {
      shown.replaceWith(bubble);
    } else if (item.new) {
      thread.appendChild(bubble);
      lastId = Math.max(lastId, item.id);
      return true;
    }
    return false;
  }

  async function poll() {
    const query = new URLSearchParams({ after: String(lastId), pending: pendingIds().join(",") });
    try {
      const response = await fetch(url + "?" + query, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.ok) {
        const data = await response.json();
        const added = data.messages.map(place).some(Boolean);
        if (added) {
          document.getElementById("thread-empty").hidden = true;
          box.scrollTop = box.scrollHeight;
        }
      }
    } catch (error) {
      // The server is restarting or the network dropped: the next poll tries again.
    }
    window.setTimeout(poll, EVERY_MS);
  }

  poll();
})();

"use strict";
// Long polling: ask for the messages after the last one we have; the server
// answers when there are some (at once, or when someone posts), then ask again.
(function () {
  const form = document.getElementById("message-form");
  const inbox = document.getElementById("inbox");
  const status = document.getElementById("status");
  const xsrf = form.querySelector("input[name=_xsrf]").value;
  let cursor = window.chatCursor;
  let failures = 0;

  function show(message) {
    if (document.getElementById("m" + message.id)) return;  // already shown
    const item = document.createElement("li");
    item.id = "m" + message.id;
    const nick = document.createElement("span");
    nick.className = "nick";
    nick.textContent = message.nick;  // text, never HTML
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = message.body;
    item.append(nick, body);
    inbox.append(item);
  }

  async function poll() {
    const data = new FormData();
    data.append("_xsrf", xsrf);
    if (cursor) data.append("cursor", cursor);
    try {
      status.textContent = "waiting for messages";
      const response = await fetch("/a/message/updates", { method: "POST", body: data });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const answer = await response.json();
      for (const message of answer.messages) show(message);
      if (answer.messages.length) cursor = answer.messages[answer.messages.length - 1].id;
      failures = 0;
      poll();
    } catch (error) {
      failures += 1;
      status.textContent = "retrying: " + error.message;
      setTimeout(poll, Math.min(30000, 500 * 2 ** failures));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = document.getElementById("body");
    if (!body.value.trim()) return;
    const data = new FormData(form);
    body.value = "";
    const response = await fetch("/a/message/new", { method: "POST", body: data });
    if (response.ok) show(await response.json());
  });

  poll();
})();

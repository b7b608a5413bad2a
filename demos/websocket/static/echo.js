// Echo page: one WebSocket to /echo; what the form sends comes back and is
// listed under it. `window.echo` exposes the socket and the replies (for the
// tests, and for poking at it from the browser's console).
"use strict";

(function () {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(scheme + "//" + location.host + "/echo");
  const received = [];
  window.echo = { ws: ws, received: received };

  const status = document.getElementById("status");
  const text = document.getElementById("text");
  const send = document.getElementById("send");
  const log = document.getElementById("log");

  function show(what, message) {
    const item = document.createElement("li");
    item.className = what;
    item.textContent = message;  // text, never HTML
    log.prepend(item);
  }

  ws.onopen = function () {
    status.textContent = "open";
    document.getElementById("extensions").textContent = ws.extensions || "none";
    send.disabled = false;
  };
  ws.onmessage = function (event) {
    received.push(event.data);
    show("reply", event.data);
  };
  ws.onclose = function (event) {
    status.textContent = "closed (" + event.code + (event.reason ? ": " + event.reason : "") + ")";
    send.disabled = true;
  };

  document.getElementById("form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (ws.readyState !== WebSocket.OPEN || text.value === "") return;
    ws.send(text.value);
    text.value = "";
  });
})();

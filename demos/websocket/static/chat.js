// Chat page: pick a nickname, then one WebSocket to /chat?nick=... carries
// JSON events (welcome, message, join, leave) in and plain text out.
// Everything shown goes through textContent: a message is never HTML.
"use strict";

(function () {
  const status = document.getElementById("status");
  const joinForm = document.getElementById("join-form");
  const sayForm = document.getElementById("say-form");
  const nickInput = document.getElementById("nick");
  const text = document.getElementById("text");
  const log = document.getElementById("log");
  const membersView = document.getElementById("members");
  const members = new Set();
  let ws = null;

  function showMembers() {
    membersView.textContent = Array.from(members).sort().join(", ");
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function add(kind, nick, body, time) {
    const item = document.createElement("li");
    item.className = kind;
    if (time !== undefined) {
      const when = document.createElement("time");
      when.textContent = clock(time) + " ";
      item.append(when);
    }
    if (nick !== null) {
      const who = document.createElement("span");
      who.className = "nick";
      who.textContent = nick;
      item.append(who);
    }
    const what = document.createElement("span");
    what.className = "text";
    what.textContent = body;
    item.append(what);
    log.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  const handlers = {
    welcome: function (event) {
      status.textContent = "in the room as " + event.nick;
      members.clear();
      event.members.forEach(function (nick) { members.add(nick); });
      event.history.forEach(function (m) { add("message history", m.nick, m.text, m.time); });
    },
    message: function (event) { add("message", event.nick, event.text, event.time); },
    join: function (event) {
      members.add(event.nick);
      add("notice join", null, event.nick + " joined");
    },
    leave: function (event) {
      members.delete(event.nick);
      add("notice leave", null, event.nick + " left");
    },
  };

  joinForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const nick = nickInput.value.trim();
    if (nick === "" || ws !== null) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + location.host + "/chat?nick=" + encodeURIComponent(nick));
    status.textContent = "connecting";
    ws.onopen = function () {
      joinForm.hidden = true;
      sayForm.hidden = false;
      text.focus();
    };
    ws.onmessage = function (message) {
      const event = JSON.parse(message.data);
      const handle = handlers[event.type];
      if (handle) {
        handle(event);
        showMembers();
      }
    };
    ws.onclose = function (event) {
      status.textContent = "disconnected" + (event.reason ? ": " + event.reason : "");
      ws = null;
      members.clear();
      showMembers();
      sayForm.hidden = true;
      joinForm.hidden = false;
    };
  });

  sayForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (ws === null || ws.readyState !== WebSocket.OPEN || text.value.trim() === "") return;
    ws.send(text.value);
    text.value = "";
  });
})();

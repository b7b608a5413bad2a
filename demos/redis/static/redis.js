"use strict";
// The page of redis_demo.py: keys through fetch(), the feed through a WebSocket.

const $ = (id) => document.getElementById(id);

async function call(method, path, fields) {
  const options = { method };
  if (fields) options.body = new URLSearchParams(fields);
  const response = await fetch(path, options);
  return { status: response.status, body: await response.json() };
}

function show(answer) {
  $("result").textContent = `${answer.status} ${JSON.stringify(answer.body)}`;
}

$("set-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = encodeURIComponent($("set-key").value);
  show(await call("POST", `/key/${key}`, { value: $("set-value").value }));
});

$("get-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  show(await call("GET", `/key/${encodeURIComponent($("get-key").value)}`));
});

$("publish-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await call("POST", "/publish", { message: $("message").value });
  $("message").value = "";
});

const feed = new WebSocket(`ws://${location.host}/feed`);
feed.onopen = () => { $("status").textContent = "subscribing"; };
feed.onclose = () => { $("status").textContent = "closed"; };
feed.onmessage = (event) => {
  const data = JSON.parse(event.data);
  if (data.ready) { $("status").textContent = "live"; return; }
  const item = document.createElement("li");
  item.textContent = data.message;  // text, never HTML
  $("feed").prepend(item);
};

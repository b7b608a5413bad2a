// A small JSON-RPC 2.0 client over fetch(), and the page that uses it.
"use strict";

class RpcError extends Error {
  constructor(error) {
    super(`error ${error.code}: ${error.message}`);
    this.code = error.code;
    this.data = error.data;
  }
}

class JsonRpc {
  constructor(url) {
    this.url = url;
    this.nextId = 1;
  }

  // one call: its result, or an RpcError
  async call(method, params = []) {
    const answer = await this.post({ jsonrpc: "2.0", method, params, id: this.nextId++ });
    if (answer.error) throw new RpcError(answer.error);
    return answer.result;
  }

  // a notification: no answer comes back (HTTP 204)
  async notify(method, params = []) {
    await this.post({ jsonrpc: "2.0", method, params });
  }

  // several calls in one request: [[method, params], ...] -> results (or RpcErrors) in order
  async batch(calls) {
    const requests = calls.map(([method, params]) => ({ jsonrpc: "2.0", method, params, id: this.nextId++ }));
    const answers = await this.post(requests);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    return requests.map((request) => {
      const answer = byId.get(request.id);
      return answer.error ? new RpcError(answer.error) : answer.result;
    });
  }

  async post(payload) {
    const response = await fetch(this.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    if (response.status === 204) return null;
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }
}

const rpc = new JsonRpc("/jsonrpc");
window.rpc = rpc;  // for the console (and the tests)

const $ = (id) => document.getElementById(id);

function showError(error) {
  $("error").textContent = error ? error.message : "";
}

function render(items) {
  const list = $("todos");
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    li.dataset.id = item.id;
    li.className = item.done ? "done" : "open";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = item.text;  // text, never HTML
    li.append(text);
    if (!item.done) {
      const button = document.createElement("button");
      button.textContent = "done";
      button.addEventListener("click", () => markDone(item.id));
      li.append(button);
    }
    list.append(li);
  }
}

async function refresh() {
  render(await rpc.call("todo_list"));
}

async function markDone(id) {
  try {
    await rpc.call("todo_done", [id]);
    showError(null);
  } catch (error) {
    showError(error);
  }
  await refresh();
}

$("text").addEventListener("keydown", async (event) => {
  if (event.key !== "Enter") return;
  const input = $("text");
  try {
    await rpc.call("todo_add", { text: input.value });  // named params
    input.value = "";
    showError(null);
  } catch (error) {
    showError(error);
  }
  await refresh();
});

$("refresh").addEventListener("click", refresh);

$("add").addEventListener("click", async () => {
  const sum = await rpc.call("add", [Number($("a").value), Number($("b").value)]);
  $("sum").textContent = String(sum);
});

// the first load is one batch: the list, and an async method's answer
(async () => {
  const [items, ready] = await rpc.batch([["todo_list", []], ["slow_echo", ["ready"]]]);
  render(items);
  $("status").textContent = ready;
})();

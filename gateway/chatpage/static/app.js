// The wssgate chat page. It speaks the lines of gateway.Chat
// (GatewayWorker's demo chat) over a WebSocket to the same host:
//
//   Hello <id>              to a newcomer: its own client id
//   online <id> <id> ...    to a newcomer: who was there before it
//   <id> login | logout     to everyone
//   <id> said <text>        to everyone
//
// and answers the hub's heartbeat ping_data ({"type":"ping"}) with
// {"type":"pong"}, without showing it. Messages come from other people:
// they only ever reach the page as text (textContent), never as HTML.
"use strict";

(() => {
  const BACKOFF_MIN = 500; // ms before the first reconnect
  const BACKOFF_MAX = 15000; // ms, the longest wait between attempts
  const LOG_MAX = 500; // messages kept on the page
  const PONG = '{"type":"pong"}';

  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const online = $("online");
  const count = $("count");
  const me = $("me");
  const state = $("state");
  const form = $("form");
  const input = $("input");
  const send = $("send");

  let ws = null; // the current socket, null between attempts
  let myId = "";
  let attempt = 0; // failed attempts since the last good connection
  let timer = 0;
  const people = new Set();

  // wsURL is the socket's address: this host, wss: when the page came
  // over https:, at /wss or the path given as ?ws=/path.
  function wsURL() {
    let path = new URLSearchParams(location.search).get("ws") || "/wss";
    if (!path.startsWith("/")) path = "/wss";
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  // backoff is the wait before attempt n (from 0): doubling from
  // BACKOFF_MIN up to BACKOFF_MAX, each a random 50–100% of that, so that
  // clients dropped together do not all come back at once.
  function backoff(n) {
    const d = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** Math.min(n, 16));
    return d / 2 + Math.random() * (d / 2);
  }

  function setState(s, text) {
    state.dataset.state = s;
    state.textContent = text;
    send.disabled = s !== "open";
  }

  function connect() {
    clearTimeout(timer);
    setState("connecting", "Connecting…");
    const sock = new WebSocket(wsURL());
    sock.binaryType = "arraybuffer";
    ws = sock;
    sock.onopen = () => setState("open", "Connected");
    sock.onmessage = (e) => {
      attempt = 0; // the server talks: this connection is a good one
      const data = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
      receive(sock, data);
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      myId = "";
      me.textContent = "…";
      people.clear();
      renderOnline();
      const delay = backoff(attempt++);
      setState("closed", "Disconnected, retrying in " + (delay / 1000).toFixed(1) + " s");
      timer = setTimeout(connect, delay);
    };
  }

  function isPing(data) {
    if (data.charAt(0) !== "{") return false;
    try {
      const v = JSON.parse(data);
      return v !== null && v.type === "ping";
    } catch {
      return false;
    }
  }

  function receive(sock, data) {
    if (isPing(data)) {
      sock.send(PONG);
      return;
    }
    const sp = data.indexOf(" ");
    const head = sp < 0 ? data : data.slice(0, sp);
    const rest = sp < 0 ? "" : data.slice(sp + 1);
    if (head === "online") {
      for (const id of rest.split(" ")) if (id) people.add(id);
      renderOnline();
      return;
    }
    if (head === "Hello" && rest && !myId) {
      myId = rest;
      me.textContent = rest;
      people.add(rest);
      renderOnline();
    } else if (rest === "login") {
      people.add(head);
      renderOnline();
    } else if (rest === "logout") {
      people.delete(head);
      renderOnline();
    }
    show(data, head, rest);
  }

  // show appends one line to the log. Its text is the line as received;
  // who said what is marked up with spans, filled with textContent.
  function show(line, head, rest) {
    const li = document.createElement("li");
    if (rest.startsWith("said ")) {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = head;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = rest.slice(5);
      li.append(who, " said ", text);
      if (head === myId) li.classList.add("mine");
    } else {
      li.className = "event";
      li.textContent = line;
    }
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    while (log.children.length > LOG_MAX) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function renderOnline() {
    const items = [...people].sort().map((id) => {
      const li = document.createElement("li");
      li.dataset.id = id;
      li.textContent = id === myId ? id + " (you)" : id;
      if (id === myId) li.className = "me";
      return li;
    });
    online.replaceChildren(...items);
    count.textContent = people.size ? "(" + people.size + ")" : "";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    input.value = "";
    input.focus();
  });

  // Back online after a network loss: try at once, not at the next backoff.
  window.addEventListener("online", () => {
    if (!ws) {
      attempt = 0;
      connect();
    }
  });

  connect();
})();

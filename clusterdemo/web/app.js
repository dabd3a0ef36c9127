// The cluster demo page: a chat with rooms and the cluster panel, over the
// official Socket.IO browser client (socket.io.min.js, served by the node).
//
// Query parameters: node=NAME pins the page to that node (the load balancer
// honours it), transport=polling|websocket forces a transport, name= and
// room= preset the form.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  // The load balancer hashes "sticky" to pick a node (see deploy/nginx.conf):
  // one random value per tab, kept across reloads, so tabs spread over the
  // nodes and every request of a tab reaches the same one.
  let sticky = sessionStorage.getItem("ioswarm-sticky");
  if (!sticky) {
    sticky = Math.random().toString(36).slice(2, 12);
    sessionStorage.setItem("ioswarm-sticky", sticky);
  }
  const query = { sticky };
  if (params.get("node")) query.node = params.get("node");

  const state = {
    name: params.get("name") || localStorage.getItem("ioswarm-name") || "",
    room: params.get("room") || "lobby",
    node: "",
    id: "",
    session: "", // "recovered" or "new session", for the last connection
  };

  const options = {
    query,
    // A function: evaluated on every (re)connection, so a page that gets a
    // new session (its old one could not be recovered) keeps its name and
    // room. A recovered session keeps the node's state and ignores these.
    auth: (cb) => cb({ name: state.name, room: state.room }),
  };
  const transport = params.get("transport");
  if (transport === "polling" || transport === "websocket") options.transports = [transport];
  const socket = io(options);

  // ---------------------------------------------------------------- status

  function showStatus() {
    const engine = socket.io.engine;
    $("state").textContent = socket.connected ? "connected" : "disconnected, reconnecting";
    $("node").textContent = state.node || "?";
    $("session").textContent = socket.connected && state.session ? " (" + state.session + ")" : "";
    $("transport").textContent = socket.connected && engine && engine.transport ? engine.transport.name : "?";
    $("status").className = "status " + (socket.connected ? "up" : "down");
    document.body.dataset.node = socket.connected ? state.node : "";
    document.body.dataset.session = socket.connected ? state.session : "";
    document.body.dataset.sid = socket.connected ? socket.id : "";
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  function system(text) {
    const li = document.createElement("li");
    li.className = "system";
    li.textContent = text;
    append(li);
  }

  function append(li) {
    const list = $("messages");
    list.appendChild(li);
    while (list.children.length > 200) list.removeChild(list.firstChild);
    li.scrollIntoView({ block: "nearest" });
  }

  function welcome(w) {
    state.node = w.node;
    state.id = w.id;
    state.name = w.name;
    state.room = w.room;
    $("name").value = w.name;
    $("room").value = w.room;
    $("room-name").textContent = w.room;
    showStatus();
  }

  // socket.recovered: the node gave this page its socket back (connection
  // state recovery) — same id, room and name — and sent the chat messages it
  // missed before this event. Otherwise the page starts a new session, with
  // the name and room its auth sends.
  socket.on("connect", () => {
    if (socket.recovered) {
      state.session = "recovered";
      system("recovered: same id " + socket.id + ", missed messages delivered");
    } else {
      state.session = "new session";
      system("new session " + socket.id);
    }
    showStatus();
  });
  socket.on("disconnect", (reason) => {
    showStatus();
    system("disconnected (" + reason + ")");
  });
  socket.on("connect_error", (err) => {
    showStatus();
    showError("cannot connect: " + err.message);
  });
  socket.io.on("open", () => socket.io.engine.on("upgrade", showStatus));

  // Drops the connection as a network failure would (no goodbye to the node):
  // the client reconnects by itself, and the node recovers the session.
  $("drop").addEventListener("click", () => {
    if (socket.io.engine) socket.io.engine.close();
  });

  socket.on("welcome", (w) => {
    welcome(w);
    showError("");
    system((w.recovered ? "back on " : "connected to ") + w.node + " as " + w.name + ", room " + w.room);
  });

  // ---------------------------------------------------------------- chat

  socket.on("chat", (m) => {
    const li = document.createElement("li");
    li.className = "msg" + (m.sender === socket.id ? " mine" : "");
    li.dataset.from = m.node; // the node the sender is connected to
    li.dataset.via = state.node; // the node that delivered it: this page's
    li.dataset.text = m.text;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.name;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;
    const route = document.createElement("span");
    route.className = "route";
    route.textContent = m.node + " → " + state.node;
    route.title = "sent through " + m.node + ", delivered by " + state.node + " at " +
      new Date(m.at).toLocaleTimeString();
    li.append(who, text, route);
    append(li);
  });

  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    socket.timeout(5000).emit("chat", { text }, (err, res) => {
      if (err) return showError("not sent: no answer from the node");
      if (res && res.error) return showError(res.error);
      showError("");
      input.value = "";
    });
  });

  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("name").value.trim();
    localStorage.setItem("ioswarm-name", name);
    socket.timeout(5000).emit("join", { room: $("room").value, name }, (err, res) => {
      if (err) return showError("no answer from the node");
      if (res && res.error) return showError(res.error);
      showError("");
      if (res.room !== state.room) {
        $("messages").replaceChildren();
      }
      welcome(res);
      system("you are " + res.name + " in room " + res.room);
    });
  });

  // ---------------------------------------------------------------- cluster panel

  function age(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function showCluster(view) {
    const rows = view.nodes.map((n) => {
      const tr = document.createElement("tr");
      tr.className = n.up ? "up" : "down";
      tr.dataset.node = n.node;
      const cells = [
        n.node + (n.node === state.node ? " (this page)" : ""),
        n.up ? "up" : "down, last seen " + age(Date.now() - Date.parse(n.lastSeen)) + " ago",
        n.up ? String(n.clients) : "–",
        n.up ? age(Date.now() - Date.parse(n.started)) : "–",
      ];
      for (const c of cells) {
        const td = document.createElement("td");
        td.textContent = c;
        tr.appendChild(td);
      }
      return tr;
    });
    $("nodes").replaceChildren(...rows);
  }

  async function pollCluster() {
    if (socket.connected) {
      try {
        showCluster(await socket.timeout(5000).emitWithAck("cluster"));
      } catch (e) {
        // no answer in time: keep the last view
      }
    }
    showStatus();
    setTimeout(pollCluster, 2000);
  }

  $("name").value = state.name;
  $("room").value = state.room;
  showStatus();
  pollCluster();
})();

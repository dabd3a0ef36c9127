#!/usr/bin/env node
// client-driver.js drives the official socket.io-client for Go tests
// (internal/testkit.NodeClientDriver).
//
// Protocol: one JSON object per line in both directions.
//
// Commands (stdin), each with a numeric "id" echoed in its reply:
//   {"id":1,"cmd":"connect","handle":"c1","url":"http://127.0.0.1:3000","nsp":"/",
//    "manager":"m1"?,"opts":{...io() options...}}
//       Creates a socket. With "manager", sockets sharing that name share one Manager
//       (one Engine.IO connection; created with "opts" on first use, later "opts.auth"
//       is the only option used). Without it, io(url + nsp, opts) is called as is.
//   {"id":2,"cmd":"emit","handle":"c1","event":"echo","args":[...],"ack":true,"timeoutMs":1000?,
//    "volatile":false?}
//       Without ack the reply comes once the packet is handed to the client. With ack the
//       reply carries the ack arguments ("result"), or the error "operation has timed out"
//       when timeoutMs is set and the server did not answer in time.
//   {"id":3,"cmd":"ack","handle":"c1","ref":7,"args":[...]}    answers a server→client ack
//   {"id":4,"cmd":"onAck","handle":"c1","event":"ask-me","reply":[...]|"echo"|"silent"}
//       Automatic responder for server→client acks of that event ("*" matches every event).
//   {"id":5,"cmd":"offAck","handle":"c1","event":"ask-me"}
//   {"id":6,"cmd":"disconnect","handle":"c1"}   socket.disconnect()
//   {"id":7,"cmd":"open","handle":"c1"}         socket.connect() (manual reconnection)
//   {"id":8,"cmd":"close","handle":"c1"}        socket.disconnect() and close its Manager
//   {"id":9,"cmd":"closeManager","manager":"m1"}
//   {"id":10,"cmd":"closeEngine","handle":"c1"} closes the Engine.IO connection without a
//       DISCONNECT packet (the server sees "transport close")
//   {"id":11,"cmd":"transport","handle":"c1"}   result: socket.io.engine.transport.name or null
//   {"id":12,"cmd":"info","handle":"c1"}        result: {id, connected, active, transport,
//       recovered} (recovered: socket.recovered, connection state recovery)
//   {"id":13,"cmd":"exit"}
//
// Replies (stdout): {"type":"reply","id":1,"ok":true,"result":...} or
//                   {"type":"reply","id":1,"ok":false,"error":"message"}.
// Reports (stdout), in the order the client saw them:
//   {"type":"connect","handle":"c1","sid":"<socket id>","recovered":false}
//       "recovered" is socket.recovered: this connection restored the former session
//       (connection state recovery; the sid is then the former one).
//   {"type":"connect_error","handle":"c1","message":"...","data":...?,"errType":"..."?}
//   {"type":"disconnect","handle":"c1","reason":"...","description":"..."?}
//   {"type":"event","handle":"c1","event":"name","args":[...],"ack":7?,"auto":"echo"?}
//       "ack" is present when the server asked for an acknowledgement that no automatic
//       responder answered: answer it with the "ack" command.
//   {"type":"log","message":"..."}   driver problems (uncaught exceptions)
//
// Binary values (Buffer, ArrayBuffer, typed arrays) travel as {"$bin":"<base64>"} in both
// directions, at any depth. The driver exits when stdin closes.
"use strict";

const readline = require("readline");
const { io, Manager } = require("socket.io-client");

const sockets = new Map(); // handle -> state
const managers = new Map(); // name -> Manager
let nextAckRef = 1;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function enc(v) {
  if (v === undefined || typeof v === "function") return null;
  if (Buffer.isBuffer(v)) return { $bin: v.toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  }
  if (Array.isArray(v)) return v.map(enc);
  if (v !== null && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) {
      if (v[k] !== undefined && typeof v[k] !== "function") o[k] = enc(v[k]);
    }
    return o;
  }
  return v;
}

function dec(v) {
  if (Array.isArray(v)) return v.map(dec);
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
      return Buffer.from(v.$bin, "base64");
    }
    const o = {};
    for (const k of keys) o[k] = dec(v[k]);
    return o;
  }
  return v;
}

function state(handle) {
  const st = sockets.get(handle);
  if (!st) throw new Error(`unknown handle ${JSON.stringify(handle)}`);
  return st;
}

function transportName(socket) {
  const engine = socket.io && socket.io.engine;
  return engine && engine.transport ? engine.transport.name : null;
}

function attach(handle, socket) {
  const st = { socket, responders: new Map(), acks: new Map() };
  sockets.set(handle, st);

  socket.on("connect", () => out({ type: "connect", handle, sid: socket.id, recovered: !!socket.recovered }));
  socket.on("connect_error", (err) => {
    const line = { type: "connect_error", handle, message: err && err.message };
    if (err && err.data !== undefined) line.data = enc(err.data);
    if (err && err.type) line.errType = String(err.type);
    if (err && err.description !== undefined) line.description = String(err.description);
    out(line);
  });
  socket.on("disconnect", (reason, details) => {
    const line = { type: "disconnect", handle, reason };
    if (details && details.description !== undefined) {
      line.description = String(details.description && details.description.message || details.description);
    }
    out(line);
  });
  socket.onAny((event, ...args) => {
    let ackFn = null;
    if (args.length > 0 && typeof args[args.length - 1] === "function") ackFn = args.pop();
    const line = { type: "event", handle, event, args: enc(args) };
    if (ackFn) {
      const rule = st.responders.has(event) ? st.responders.get(event) : st.responders.get("*");
      if (rule === undefined) {
        const ref = nextAckRef++;
        st.acks.set(ref, ackFn);
        line.ack = ref;
      } else if (rule === "silent") {
        line.auto = "silent";
      } else if (rule === "echo") {
        line.auto = "echo";
        out(line);
        ackFn(...args);
        return;
      } else {
        line.auto = "reply";
        out(line);
        ackFn(...dec(rule));
        return;
      }
    }
    out(line);
  });
  return st;
}

const commands = {
  connect(c) {
    if (!c.handle) throw new Error("connect: handle is required");
    if (sockets.has(c.handle)) throw new Error(`connect: handle ${c.handle} already used`);
    const opts = dec(c.opts || {});
    const nsp = c.nsp || "/";
    let socket;
    if (c.manager) {
      let m = managers.get(c.manager);
      if (!m) {
        m = new Manager(c.url, opts);
        managers.set(c.manager, m);
      }
      socket = m.socket(nsp, { auth: opts.auth });
    } else {
      socket = io(c.url.replace(/\/$/, "") + nsp, opts);
    }
    attach(c.handle, socket);
    return null;
  },

  emit(c) {
    const st = state(c.handle);
    const args = dec(c.args || []);
    let s = st.socket;
    if (c.volatile) s = s.volatile;
    if (!c.ack) {
      s.emit(c.event, ...args);
      return null;
    }
    return new Promise((resolve, reject) => {
      if (c.timeoutMs !== undefined && c.timeoutMs !== null) {
        s.timeout(c.timeoutMs).emit(c.event, ...args, (err, ...res) => {
          if (err) reject(err);
          else resolve(enc(res));
        });
      } else {
        s.emit(c.event, ...args, (...res) => resolve(enc(res)));
      }
    });
  },

  ack(c) {
    const st = state(c.handle);
    const fn = st.acks.get(c.ref);
    if (!fn) throw new Error(`ack: no pending acknowledgement ${c.ref}`);
    st.acks.delete(c.ref);
    fn(...dec(c.args || []));
    return null;
  },

  onAck(c) {
    const st = state(c.handle);
    if (c.reply !== "echo" && c.reply !== "silent" && !Array.isArray(c.reply)) {
      throw new Error('onAck: reply must be an array, "echo" or "silent"');
    }
    st.responders.set(c.event, c.reply);
    return null;
  },

  offAck(c) {
    state(c.handle).responders.delete(c.event);
    return null;
  },

  disconnect(c) {
    state(c.handle).socket.disconnect();
    return null;
  },

  open(c) {
    state(c.handle).socket.connect();
    return null;
  },

  close(c) {
    const { socket } = state(c.handle);
    socket.disconnect();
    socket.io._close();
    return null;
  },

  closeManager(c) {
    const m = managers.get(c.manager);
    if (!m) throw new Error(`closeManager: unknown manager ${c.manager}`);
    m._close();
    return null;
  },

  closeEngine(c) {
    const { socket } = state(c.handle);
    if (!socket.io.engine) throw new Error("closeEngine: no engine");
    socket.io.engine.close();
    return null;
  },

  transport(c) {
    return transportName(state(c.handle).socket);
  },

  info(c) {
    const { socket } = state(c.handle);
    return {
      id: socket.id === undefined ? null : socket.id,
      connected: socket.connected,
      active: socket.active,
      transport: transportName(socket),
      recovered: !!socket.recovered,
    };
  },

  exit() {
    shutdown();
    return null;
  },
};

async function handle(line) {
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    out({ type: "log", message: `bad command line: ${e.message}` });
    return;
  }
  const fn = Object.prototype.hasOwnProperty.call(commands, c.cmd) ? commands[c.cmd] : null;
  try {
    if (!fn) throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
    const result = await fn(c);
    out({ type: "reply", id: c.id, ok: true, result: result === undefined ? null : result });
  } catch (e) {
    out({ type: "reply", id: c.id, ok: false, error: e && e.message ? e.message : String(e) });
  }
}

function shutdown() {
  for (const { socket } of sockets.values()) {
    try {
      socket.disconnect();
      socket.io._close();
    } catch (e) {
      // best effort
    }
  }
  for (const m of managers.values()) {
    try {
      m._close();
    } catch (e) {
      // best effort
    }
  }
  setImmediate(() => process.exit(0));
}

process.on("uncaughtException", (e) => out({ type: "log", message: `uncaught: ${e && e.stack || e}` }));
process.on("unhandledRejection", (e) => out({ type: "log", message: `unhandled rejection: ${e && e.stack || e}` }));

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (line.trim() !== "") handle(line);
});
rl.on("close", shutdown);

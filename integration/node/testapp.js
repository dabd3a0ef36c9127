#!/usr/bin/env node
// testapp.js implements the test application contract (docs/testapp-contract.md,
// mirrored by integration/testapp in Go) on the Node.js reference server: socket.io 4.8.4,
// with the classic @socket.io/redis-adapter 8.3.0 over node-redis 4 when -redis is given, or
// its sharded adapter (createShardedAdapter, Redis >= 7) with -adapter redis-sharded, or
// @socket.io/redis-streams-adapter 0.3.1 with -adapter redis-streams (stream and channel
// prefix: -key).
//
//   node integration/node/testapp.js -addr 127.0.0.1:PORT [-redis redis://HOST:PORT/0[,URL…]]
//        [-adapter redis|redis-sharded|redis-streams] [-subscription-mode static|dynamic|dynamic-private]
//        [-node NAME] [-key socket.io] [-requests-timeout 5000ms] [-recovery 2m]
//
// Prints "listening on ADDR" once it listens and, with -redis, once the adapters of "/" and
// "/custom" have subscribed. SIGTERM/SIGINT: io.close() (no DISCONNECT packet; clients see
// "transport close"), Redis clients closed, exit 0.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

// ---------------------------------------------------------------- command line

function usage(msg) {
  process.stderr.write(`testapp: ${msg}\nusage: testapp.js -addr HOST:PORT [-redis URL] [-adapter redis|redis-sharded|redis-streams] [-subscription-mode MODE] [-node NAME] [-key PREFIX] [-requests-timeout DURATION] [-recovery DURATION]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { addr: "127.0.0.1:3000", redis: "", adapter: "redis", subscriptionMode: "dynamic", node: "", key: "socket.io", requestsTimeout: 5000, recovery: 0 };
  const names = { addr: "addr", redis: "redis", adapter: "adapter", "subscription-mode": "subscriptionMode", node: "node", key: "key", "requests-timeout": "requestsTimeout", recovery: "recovery" };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (!a.startsWith("-")) usage(`unexpected argument ${a}`);
    a = a.replace(/^--?/, "");
    let value;
    const eq = a.indexOf("=");
    if (eq >= 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    } else {
      if (i + 1 >= argv.length) usage(`flag -${a} needs a value`);
      value = argv[++i];
    }
    const key = names[a];
    if (!key) usage(`unknown flag -${a}`);
    opts[key] = key === "requestsTimeout" || key === "recovery" ? parseDuration(value) : value;
  }
  return opts;
}

// parseDuration accepts Go durations ("5000ms", "5s", "1m30s", "1.5s"); a bare number is ms.
function parseDuration(s) {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const units = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m;
  let pos = 0;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * units[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== s.length || s.length === 0) usage(`invalid duration ${JSON.stringify(s)}`);
  return total;
}

const opts = parseArgs(process.argv.slice(2));
if (!["redis", "redis-sharded", "redis-streams"].includes(opts.adapter)) usage(`unknown -adapter ${opts.adapter}`);
const addrMatch = /^(.*):(\d+)$/.exec(opts.addr);
if (!addrMatch) usage(`invalid -addr ${opts.addr}`);
const host = addrMatch[1].replace(/^\[(.*)\]$/, "$1");
const port = Number(addrMatch[2]);

// ---------------------------------------------------------------- state

let NODE = opts.node;
let lastDisconnect = null; // per node, across namespaces
const recorded = new Map(); // namespace name -> array of argument arrays
let pubClient = null;
let subClient = null;
let syncCounter = 0;
let middlewareRuns = 0; // runs of the connection middleware, in every namespace (middleware-runs)
let io = null; // the Server, for the streams adapter's readiness

const RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

function sortedRooms(socket) {
  return [...socket.rooms].sort(byteOrder);
}

// byteOrder compares strings by UTF-8 byte order (code point order), as the Go server does.
function byteOrder(a, b) {
  const ba = Buffer.from(String(a));
  const bb = Buffer.from(String(b));
  return Buffer.compare(ba, bb);
}

function asArray(v) {
  if (v === undefined || v === null || v === "") return [];
  return Array.isArray(v) ? v : [v];
}

function errMessage(err) {
  return err ? (err.message || String(err)) : null;
}

// ---------------------------------------------------------------- redis readiness

// subscribed resolves once every (p)subscribe sent so far on the sub client has been
// acknowledged by Redis: Redis answers commands of one connection in order, so a fresh
// SUBSCRIBE that got its reply proves the adapter's earlier subscriptions are in place.
// The sharded adapter's SSUBSCRIBEs go to the same connection (on a single Redis).
// The streams adapter subscribes on a client of its own: its namespaces are ready once Redis
// counts a subscriber on their answers channels (one SUBSCRIBE made both channels), and, a
// moment later, once its stream reader, connected at the same time, is blocked in XREAD.
async function subscribed(nsps) {
  if (!subClient) return;
  if (opts.adapter === "redis-streams") {
    for (const nsp of nsps || [io.of("/"), io.of("/custom")]) {
      const channel = `${opts.key}#${nsp.name}#${nsp.adapter.uid}#`;
      for (let i = 0; i < 250; i++) {
        const reply = await pubClient.sendCommand(["PUBSUB", "NUMSUB", channel]);
        if (Number(reply[1]) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    return;
  }
  const channel = `${opts.key}-testapp-sync#${process.pid}#${++syncCounter}`;
  const listener = () => {};
  if (opts.adapter === "redis-sharded") {
    await subClient.sSubscribe(channel, listener);
    await subClient.sUnsubscribe(channel, listener);
    return;
  }
  await subClient.subscribe(channel, listener);
  await subClient.unsubscribe(channel, listener);
}

// ---------------------------------------------------------------- handlers

function setupNamespace(nsp) {
  if (!recorded.has(nsp.name)) recorded.set(nsp.name, []);

  nsp.use((socket, next) => {
    middlewareRuns++;
    const auth = socket.handshake.auth;
    if (auth && typeof auth === "object" && auth.token === "bad") {
      const err = new Error("unauthorized");
      err.data = { reason: "bad token" };
      next(err);
      return;
    }
    next();
  });

  // server-side events from other nodes
  nsp.on("ping", (...args) => {
    const cb = args.pop();
    if (typeof cb === "function") cb("pong");
  });
  nsp.on("whoami", (...args) => {
    const cb = args.pop();
    if (typeof cb === "function") cb(NODE);
  });
  nsp.on("slow", (...args) => {
    const cb = args.pop();
    if (typeof cb === "function") setTimeout(() => cb(NODE), 2000);
  });
  nsp.on("silent", () => {});
  nsp.on("record", (...args) => {
    if (args.length > 0 && typeof args[args.length - 1] === "function") args.pop();
    recorded.get(nsp.name).push(args);
  });

  nsp.on("connection", (socket) => onConnection(nsp, socket));
}

// on registers a client event handler: the last argument, when a function, is the ack.
// A handler that throws (or rejects) acks {"error": message}.
function on(socket, event, fn) {
  socket.on(event, async (...args) => {
    const ack = args.length > 0 && typeof args[args.length - 1] === "function" ? args.pop() : () => {};
    try {
      await fn(ack, ...args);
    } catch (err) {
      ack({ error: errMessage(err) });
    }
  });
}

function select(nsp, spec) {
  return nsp.in(asArray(spec && spec.in)).except(asArray(spec && spec.except));
}

function onConnection(nsp, socket) {
  socket.emit("welcome", { node: NODE, id: socket.id, nsp: nsp.name, auth: socket.handshake.auth });

  let disconnectingRooms = [];
  socket.on("disconnecting", () => {
    disconnectingRooms = sortedRooms(socket);
  });
  socket.on("disconnect", (reason) => {
    lastDisconnect = { id: socket.id, reason, rooms: disconnectingRooms };
  });

  on(socket, "echo", (ack, ...args) => ack(...args));

  on(socket, "echo-event", (ack, name, ...args) => {
    socket.emit(name, ...args);
    ack(true);
  });

  on(socket, "join", (ack, rooms) => {
    socket.join(rooms);
    ack(sortedRooms(socket));
  });

  on(socket, "leave", (ack, room) => {
    socket.leave(room);
    ack(sortedRooms(socket));
  });

  on(socket, "rooms", (ack) => ack(sortedRooms(socket)));

  on(socket, "recovered", (ack) => ack(socket.recovered));

  on(socket, "set-data", (ack, value) => {
    socket.data = value;
    ack(true);
  });

  on(socket, "broadcast", (ack, spec) => {
    spec = spec || {};
    let op = spec.broadcast ? socket.broadcast : nsp.to([]);
    const to = asArray(spec.to);
    if (to.length > 0) op = op.to(to);
    const except = asArray(spec.except);
    if (except.length > 0) op = op.except(except);
    if (spec.local) op = op.local;
    if (spec.volatile) op = op.volatile;
    const args = Array.isArray(spec.args) ? spec.args : [];
    if (spec.timeoutMs === undefined || spec.timeoutMs === null) {
      op.emit(spec.event, ...args);
      ack(true);
      return;
    }
    op.timeout(spec.timeoutMs).emit(spec.event, ...args, (err, responses) => {
      ack({ err: errMessage(err), responses: responses || [] });
    });
  });

  on(socket, "ask", (ack, spec) => {
    spec = spec || {};
    const args = Array.isArray(spec.args) ? spec.args : [];
    if (spec.timeoutMs === undefined || spec.timeoutMs === null) {
      socket.emit(spec.event, ...args, (...response) => ack({ err: null, response }));
      return;
    }
    socket.timeout(spec.timeoutMs).emit(spec.event, ...args, (err, ...response) => {
      ack({ err: errMessage(err), response: err ? [] : response });
    });
  });

  on(socket, "server-side-emit", (ack, spec) => {
    spec = spec || {};
    const args = Array.isArray(spec.args) ? spec.args : [];
    if (spec.timeoutMs === undefined || spec.timeoutMs === null) {
      nsp.serverSideEmit(spec.event, ...args);
      ack(true);
      return;
    }
    nsp.serverSideEmit(spec.event, ...args, (err, responses) => {
      ack({ err: errMessage(err), responses: responses || [] });
    });
  });

  on(socket, "fetch-sockets", async (ack, spec) => {
    const found = await select(nsp, spec).fetchSockets();
    const list = found.map((s) => ({
      id: s.id,
      rooms: [...s.rooms].sort(byteOrder),
      data: s.data,
      nsp: nsp.name,
    }));
    list.sort((a, b) => byteOrder(a.id, b.id));
    ack(list);
  });

  on(socket, "sockets-join", (ack, spec) => {
    select(nsp, spec).socketsJoin(asArray(spec && spec.rooms));
    ack(true);
  });

  on(socket, "sockets-leave", (ack, spec) => {
    select(nsp, spec).socketsLeave(asArray(spec && spec.rooms));
    ack(true);
  });

  on(socket, "disconnect-sockets", (ack, spec) => {
    ack(true);
    select(nsp, spec).disconnectSockets(!!(spec && spec.close));
  });

  on(socket, "all-rooms", async (ack) => {
    const rooms = typeof nsp.adapter.allRooms === "function"
      ? await nsp.adapter.allRooms()
      : new Set(nsp.adapter.rooms.keys());
    const ids = new Set((await nsp.fetchSockets()).map((s) => s.id));
    ack([...rooms].filter((r) => !ids.has(r)).sort(byteOrder));
  });

  on(socket, "count", async (ack, spec) => {
    const found = await nsp.in(asArray(spec && spec.in)).fetchSockets();
    ack(found.length);
  });

  on(socket, "emit-reserved", (ack, name) => {
    try {
      socket.emit(name);
    } catch (err) {
      ack(errMessage(err));
      return;
    }
    ack(null);
  });

  on(socket, "last-disconnect", (ack) => ack(lastDisconnect));

  on(socket, "node", (ack) => ack(NODE));

  on(socket, "recorded", (ack) => ack(recorded.get(nsp.name) || []));

  on(socket, "middleware-runs", (ack) => ack(middlewareRuns));

  // ---- load-test events: cheap, no logging

  socket.on("bcast", (room, payload, ack) => {
    (room ? nsp.to(room) : nsp).emit("msg", payload);
    if (typeof ack === "function") ack(true);
  });

  on(socket, "publish", async (ack, spec) => {
    spec = spec || {};
    const count = Math.max(0, Math.floor(Number(spec.count) || 0));
    const rate = Number(spec.rate) || 0;
    const pad = "x".repeat(Math.max(0, Math.floor(Number(spec.size) || 0)));
    const target = spec.room ? nsp.to(spec.room) : nsp;
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      if (rate > 0) {
        const due = start + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      } else if (i > 0 && i % 100 === 0) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      target.emit("msg", { t: nowMicros(), seq: i, src: "srv", pad });
    }
    ack({ sent: count, ms: performance.now() - start });
  });

  on(socket, "sse", (ack) => {
    const start = performance.now();
    nsp.serverSideEmit("ping", (err, responses) => {
      ack({ err: errMessage(err), responses: responses || [], ms: performance.now() - start, node: NODE });
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// nowMicros is the Unix time in integer microseconds.
function nowMicros() {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

// ---------------------------------------------------------------- startup

// AloneAdapter is the in-memory adapter of a node alone in its cluster. The stock one only
// warns on serverSideEmit and never calls the callback; the contract wants a lone node to
// answer serverSideEmit with ack by {"err": null, "responses": []} at once (as a cluster
// adapter does when no other node exists), and to drop it silently without ack.
// socket.io-adapter is socket.io's own dependency: resolve it from there.
const { Adapter: MemoryAdapter, SessionAwareAdapter } = require(require.resolve("socket.io-adapter", {
  paths: [require("path").dirname(require.resolve("socket.io"))],
}));

function aloneServerSideEmit(packet) {
  const cb = packet.length > 0 && typeof packet[packet.length - 1] === "function" ? packet.pop() : null;
  if (cb) process.nextTick(() => cb(null, []));
}

class AloneAdapter extends MemoryAdapter {
  serverSideEmit(packet) {
    aloneServerSideEmit(packet);
  }
}

// With -recovery, the session-aware in-memory adapter (what socket.io uses by default when
// connectionStateRecovery is set), alone in the same way.
class AloneSessionAdapter extends SessionAwareAdapter {
  serverSideEmit(packet) {
    aloneServerSideEmit(packet);
  }
}

async function main() {
  const httpServer = http.createServer();
  const ioOpts = { cors: { origin: "*" }, cleanupEmptyChildNamespaces: true };

  if (opts.redis) {
    const { createClient, createCluster } = require("redis");
    const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
    // Several comma-separated URLs: the nodes of a Redis Cluster.
    const urls = opts.redis.split(",");
    pubClient = urls.length > 1
      ? createCluster({ rootNodes: urls.map((url) => ({ url })) })
      : createClient({ url: opts.redis });
    subClient = pubClient.duplicate();
    pubClient.on("error", (err) => process.stderr.write(`testapp: redis pub: ${err.message}\n`));
    subClient.on("error", (err) => process.stderr.write(`testapp: redis sub: ${err.message}\n`));
    await Promise.all([pubClient.connect(), subClient.connect()]);
    // The sharded adapter has no requestsTimeout (fetchSockets takes the operation's
    // timeout, serverSideEmit a fixed 5 s).
    if (opts.adapter === "redis-streams") {
      // No requestsTimeout either: the ClusterAdapter's fixed 5 s.
      const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");
      ioOpts.adapter = createStreamsAdapter(pubClient, { streamName: opts.key, channelPrefix: opts.key });
    } else ioOpts.adapter = opts.adapter === "redis-sharded"
      ? createShardedAdapter(pubClient, subClient, {
        channelPrefix: opts.key,
        subscriptionMode: opts.subscriptionMode,
      })
      : createAdapter(pubClient, subClient, {
        key: opts.key,
        requestsTimeout: opts.requestsTimeout,
      });
  }

  if (opts.recovery > 0) {
    ioOpts.connectionStateRecovery = { maxDisconnectionDuration: opts.recovery, skipMiddlewares: true };
  }
  if (!opts.redis) ioOpts.adapter = opts.recovery > 0 ? AloneSessionAdapter : AloneAdapter;
  io = new Server(httpServer, ioOpts);

  // Dynamic children inherit the parent's middlewares and connection listeners but not the
  // server-side event listeners, so each child is set up in full when it is created (the
  // parent itself gets nothing). With Redis, the first connection waits until the child's
  // adapter has subscribed before its CONNECT reply.
  io.of(/^\/dyn-[a-z0-9]+$/);
  io.sockets.on("new_namespace", (nsp) => {
    if (!/^\/dyn-[a-z0-9]+$/.test(nsp.name)) return;
    const ready = subscribed([nsp]);
    nsp.use((socket, next) => ready.then(() => next(), (err) => next(err)));
    setupNamespace(nsp);
  });
  setupNamespace(io.of("/"));
  setupNamespace(io.of("/custom"));

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, host, resolve);
  });
  const a = httpServer.address();
  const bound = a.family === "IPv6" || a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  if (!NODE) NODE = bound;
  await subscribed();
  process.stdout.write(`listening on ${bound}\n`);

  let closing = false;
  const shutdown = (signal) => {
    if (closing) return;
    closing = true;
    const timer = setTimeout(() => {
      process.stderr.write(`testapp: forced exit after ${signal}\n`);
      process.exit(1);
    }, 4000);
    timer.unref();
    // io.close() ends every Engine.IO session, then waits for the HTTP server to close. Idle
    // keep-alive connections are closed by it, but some (seen after floods of polling
    // handshakes) can keep it waiting: drop what is left after a grace period.
    setTimeout(() => httpServer.closeAllConnections(), 1000).unref();
    io.close(async () => {
      try {
        if (pubClient) await pubClient.quit();
        if (subClient) await subClient.quit();
      } catch (err) {
        process.stderr.write(`testapp: closing redis: ${err.message}\n`);
      }
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`testapp: ${err && err.stack || err}\n`);
  process.exit(1);
});

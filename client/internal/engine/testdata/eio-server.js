// Node's engine.io server (from integration/node/node_modules, found through
// NODE_PATH) for the interop test: echoes every message, heartbeat 100/100 ms.
const http = require("http");
const { Server } = require("engine.io");

const httpServer = http.createServer();
const server = new Server({ pingInterval: 300, pingTimeout: 300 });
server.attach(httpServer);
server.on("connection", (socket) => {
  const q = socket.request._query || {};
  socket.send("hello " + (q.token || ""));
  socket.on("message", (data) => {
    if (data === "close me") {
      socket.close();
      return;
    }
    socket.send(data);
  });
});
httpServer.listen(0, "127.0.0.1", () => {
  console.log("listening on 127.0.0.1:" + httpServer.address().port);
});
process.on("SIGTERM", () => {
  server.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});

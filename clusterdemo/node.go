package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ioswarm/ioswarm/server"
)

// The events between the page and its node.
const (
	eventWelcome = "welcome" // node → page on connection: welcome
	eventChat    = "chat"    // page → node {text}, ack {id} or {error}; node → pages: chatMessage
	eventJoin    = "join"    // page → node {room, name}, ack welcome or {error}
	eventCluster = "cluster" // page → node, ack panelView
)

// Limits of what a page sends.
const (
	defaultRoom = "lobby"
	maxName     = 24
	maxText     = 500
)

// roomPattern is what a room name looks like.
var roomPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,23}$`)

//go:embed web
var webFiles embed.FS

// welcome tells a page who it is and which node it is connected to; it is
// sent on every connection (so a page that reconnected through the load
// balancer learns its new node) and answers a join. Recovered is the
// socket's: the node kept its id, room and name, and sent the messages it
// missed (the page also has socket.recovered).
type welcome struct {
	Node      string `json:"node"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Room      string `json:"room"`
	Recovered bool   `json:"recovered,omitempty"`
}

// chatMessage is a chat line as every page of the room receives it. Node is
// the node the sender is connected to; the node that delivers it to a page is
// the one that page is connected to (its welcome.Node).
type chatMessage struct {
	ID     string `json:"id"`
	Room   string `json:"room"`
	Name   string `json:"name"`
	Text   string `json:"text"`
	Node   string `json:"node"`
	Sender string `json:"sender"`
	At     int64  `json:"at"` // Unix milliseconds
}

// failure answers a request the node refused.
type failure struct {
	Error string `json:"error"`
}

// node is one clusterdemo node: the chat, the cluster panel and the HTTP
// handlers around a server.
type node struct {
	name     string
	started  time.Time
	srv      *server.Server
	log      *slog.Logger
	panel    *panel
	draining atomic.Bool // set at shutdown: /healthz answers 503
}

// newNode sets up the chat and the cluster panel on srv.
func newNode(srv *server.Server, name string, forget time.Duration, logger *slog.Logger) *node {
	n := &node{name: name, started: time.Now().UTC().Truncate(time.Millisecond), srv: srv, log: logger}
	n.panel = newPanel(name, n.status, func(ctx context.Context) (server.Args, error) {
		return srv.ServerSideEmitWithAck(ctx, eventStatus)
	}, forget, logger)
	srv.OnServerSideEmit(eventStatus, func(ev *server.Event) {
		if ev.HasAck() {
			_ = ev.Ack(n.status())
		}
	})
	srv.OnConnection(n.onConnection)
	return n
}

// status is this node's answer to the cluster panel.
func (n *node) status() nodeStatus {
	return nodeStatus{Node: n.name, Clients: len(n.srv.Sockets()), Started: n.started}
}

// onConnection runs the chat of one page. The handlers of one socket run one
// at a time, so name and room need no lock.
func (n *node) onConnection(s *server.Socket) {
	name, room, recovered := recoveredState(s)
	if !recovered {
		// A new session: the name and room the page asks for. The page
		// sends them on every connection, also when it is recovered: then
		// they are ignored, the session's are the truth (a join the page
		// made is in them even if its form changed since).
		var hello struct {
			Name string `json:"name"`
			Room string `json:"room"`
		}
		_ = json.Unmarshal(s.Handshake().Auth, &hello) // a page that sends no auth gets the defaults
		name = cleanName(hello.Name, s.ID())
		room = defaultRoom
		if r := strings.ToLower(strings.TrimSpace(hello.Room)); roomPattern.MatchString(r) {
			room = r
		}
		s.Join(room)
	}
	// Node changes when the page was recovered on another node.
	s.SetData(map[string]string{"name": name, "room": room, "node": n.name})
	greet := func() welcome {
		return welcome{Node: n.name, ID: s.ID(), Name: name, Room: room, Recovered: s.Recovered()}
	}
	_ = s.Emit(eventWelcome, greet())

	s.On(eventJoin, func(s *server.Socket, ev *server.Event) {
		var req struct {
			Room string  `json:"room"`
			Name *string `json:"name"`
		}
		if err := ev.Decode(0, &req); err != nil {
			_ = ev.Ack(failure{"join: want {room, name}"})
			return
		}
		r := strings.ToLower(strings.TrimSpace(req.Room))
		if !roomPattern.MatchString(r) {
			_ = ev.Ack(failure{"a room name is 1 to 24 of a-z, 0-9, - and _"})
			return
		}
		if req.Name != nil {
			name = cleanName(*req.Name, s.ID())
		}
		if r != room {
			s.Leave(room)
			s.Join(r)
			room = r
		}
		s.SetData(map[string]string{"name": name, "room": room, "node": n.name})
		_ = ev.Ack(greet())
	})

	s.On(eventChat, func(s *server.Socket, ev *server.Event) {
		var req struct {
			Text string `json:"text"`
		}
		if err := ev.Decode(0, &req); err != nil {
			_ = ev.Ack(failure{"chat: want {text}"})
			return
		}
		text := strings.TrimSpace(req.Text)
		switch {
		case text == "":
			_ = ev.Ack(failure{"empty message"})
			return
		case utf8.RuneCountInString(text) > maxText:
			_ = ev.Ack(failure{"message too long"})
			return
		}
		msg := chatMessage{ID: newID(), Room: room, Name: name, Text: text, Node: n.name, Sender: s.ID(), At: time.Now().UnixMilli()}
		// To the whole room, the sender included, on every node: the adapter
		// carries it to the other nodes.
		if err := n.srv.To(room).Emit(eventChat, msg); err != nil {
			n.log.Warn("clusterdemo: broadcast chat", "room", room, "err", err)
			_ = ev.Ack(failure{"not delivered to the other nodes: " + err.Error()})
			return
		}
		_ = ev.Ack(map[string]string{"id": msg.ID})
	})

	s.On(eventCluster, func(s *server.Socket, ev *server.Event) {
		_ = ev.Ack(n.panel.view(s.Context())) // blocks this socket's handlers only
	})
}

// recoveredState returns the name and room a recovered socket had, from its
// restored data; ok is false for a new socket, or when the data is not what
// onConnection stores (then the socket starts over as a new one would). The
// data goes through JSON: restored on this node it is the map stored, from
// another node's session it may come back decoded from JSON.
func recoveredState(s *server.Socket) (name, room string, ok bool) {
	if !s.Recovered() {
		return "", "", false
	}
	b, err := json.Marshal(s.Data())
	if err != nil {
		return "", "", false
	}
	var st struct {
		Name string `json:"name"`
		Room string `json:"room"`
	}
	if json.Unmarshal(b, &st) != nil || st.Name == "" || !roomPattern.MatchString(st.Room) {
		return "", "", false
	}
	return st.Name, st.Room, true
}

// cleanName keeps a display name printable and short; an empty one becomes
// "guest-" and the end of the socket id.
func cleanName(name, id string) string {
	name = strings.Join(strings.FieldsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if r := []rune(name); len(r) > maxName {
		name = string(r[:maxName])
	}
	if name == "" {
		name = "guest-" + strings.ToLower(id[max(0, len(id)-4):])
	}
	return name
}

// newID returns a random message id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handler serves the page, Socket.IO and /healthz.
func (n *node) handler() http.Handler {
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	files := http.FileServerFS(web)
	mux := http.NewServeMux()
	mux.Handle(n.srv.Path(), n.srv)
	mux.HandleFunc("/healthz", n.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:")
		files.ServeHTTP(w, r)
	})
	return mux
}

// healthz answers 200 with the node's status while it serves, 503 once it is
// shutting down.
func (n *node) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	st := struct {
		Status string `json:"status"`
		nodeStatus
	}{"ok", n.status()}
	if n.draining.Load() {
		st.Status = "draining"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(st)
}

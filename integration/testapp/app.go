package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/parser"
	"github.com/ioswarm/ioswarm/server"
)

// app holds the node-wide state of the contract.
type app struct {
	srv        *server.Server
	node       string
	reqTimeout time.Duration

	// middlewareRuns counts the runs of the connection middleware, in every
	// namespace (the middleware-runs event).
	middlewareRuns atomic.Int64

	mu             sync.Mutex
	lastDisconnect any                          // {"id","reason","rooms"} or nil
	recorded       map[string][]json.RawMessage // namespace → argument arrays
}

func newApp(srv *server.Server, node string, reqTimeout time.Duration) *app {
	return &app{srv: srv, node: node, reqTimeout: reqTimeout, recorded: make(map[string][]json.RawMessage)}
}

type connectionSetup interface {
	Use(server.Middleware)
	OnConnection(server.ConnectionHandler)
	On(string, server.EventHandler) server.ListenerID
}

func (a *app) setupParent(p *server.ParentNamespace) {
	a.setupConnections(p)
	a.srv.OnNewNamespace(func(ns *server.Namespace) {
		if strings.HasPrefix(ns.Name(), "/dyn-") {
			a.setupServerSide(ns)
		}
	})
}

func (a *app) setup(ns *server.Namespace) {
	a.setupConnections(ns)
	a.setupServerSide(ns)
}

func (a *app) setupConnections(ns connectionSetup) {
	ns.Use(func(s *server.Socket) error {
		a.middlewareRuns.Add(1)
		var auth struct {
			Token any `json:"token"`
		}
		_ = json.Unmarshal(s.Handshake().Auth, &auth)
		if auth.Token == "bad" {
			return &server.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "bad token"}}
		}
		return nil
	})
	ns.OnConnection(a.onConnection)
	a.registerEvents(ns)
}

// registerEvents registers the contract's event handlers once, on the
// namespace (or parent): they are shared by every socket.
func (a *app) registerEvents(ns connectionSetup) {
	handlers := map[string]handler{
		"join":             a.join,
		"leave":            a.leave,
		"rooms":            func(s *server.Socket, _ *server.Event) (any, error) { return s.Rooms(), nil },
		"recovered":        func(s *server.Socket, _ *server.Event) (any, error) { return s.Recovered(), nil },
		"set-data":         a.setData,
		"broadcast":        a.broadcast,
		"server-side-emit": a.serverSideEmit,
		"fetch-sockets":    a.fetchSockets,
		"sockets-join":     a.socketsJoin,
		"sockets-leave":    a.socketsLeave,
		"all-rooms":        a.allRooms,
		"count":            a.count,
		"emit-reserved":    a.emitReserved,
		"last-disconnect":  a.getLastDisconnect,
		"node":             func(*server.Socket, *server.Event) (any, error) { return a.node, nil },
		"recorded":         a.getRecorded,
		"middleware-runs":  func(*server.Socket, *server.Event) (any, error) { return a.middlewareRuns.Load(), nil },
		"sse":              a.sse,
		"bcast":            a.bcast,
		"publish":          a.publish,
	}
	for name, h := range handlers {
		ns.On(name, func(s *server.Socket, ev *server.Event) {
			res, err := h(s, ev)
			if !ev.HasAck() || res == noReply {
				return
			}
			if err != nil {
				_ = ev.Ack(map[string]string{"error": errText(err)})
				return
			}
			_ = ev.Ack(res)
		})
	}
	// Handlers that answer by themselves (the ack must follow other work).
	ns.On("echo", func(s *server.Socket, ev *server.Event) { _ = ev.Ack(ev.Args.Any()...) })
	ns.On("echo-event", a.echoEvent)
	ns.On("ask", a.ask)
	ns.On("disconnect-sockets", a.disconnectSockets)
}

func (a *app) setupServerSide(ns *server.Namespace) {
	ns.OnServerSideEmit("ping", func(ev *server.Event) { ev.Ack("pong") })
	ns.OnServerSideEmit("whoami", func(ev *server.Event) { ev.Ack(a.node) })
	ns.OnServerSideEmit("slow", func(ev *server.Event) {
		time.AfterFunc(2*time.Second, func() { ev.Ack(a.node) })
	})
	ns.OnServerSideEmit("silent", func(*server.Event) {})
	ns.OnServerSideEmit("record", func(ev *server.Event) {
		b, err := json.Marshal(ev.Args)
		if err != nil {
			return
		}
		a.mu.Lock()
		a.recorded[ns.Name()] = append(a.recorded[ns.Name()], b)
		a.mu.Unlock()
	})
}

// handler is a contract event handler: it returns the ack reply.
type handler func(s *server.Socket, ev *server.Event) (any, error)

func (a *app) onConnection(s *server.Socket) {
	_ = s.Emit("welcome", map[string]any{
		"node": a.node,
		"id":   s.ID(),
		"nsp":  s.Namespace().Name(),
		"auth": json.RawMessage(s.Handshake().Auth),
	})
	var rooms []string
	s.OnDisconnecting(func(s *server.Socket, _ string) { rooms = s.Rooms() })
	s.OnDisconnect(func(s *server.Socket, reason string) {
		if rooms == nil {
			rooms = []string{}
		}
		a.mu.Lock()
		a.lastDisconnect = map[string]any{"id": s.ID(), "reason": reason, "rooms": rooms}
		a.mu.Unlock()
	})
}

// noReply marks a handler that acknowledged by itself.
var noReply = new(struct{})

func ackErr(ev *server.Event, err error) {
	if ev.HasAck() {
		_ = ev.Ack(map[string]string{"error": errText(err)})
	}
}

func errOrNil(err error) any {
	if err == nil {
		return nil
	}
	return errText(err)
}

// errText is the text a Node.js server would give for err: a cluster
// request's timeout is the adapter's own message, without the Go wrapping.
func errText(err error) string {
	var te *adapter.TimeoutError
	if errors.As(err, &te) {
		return te.Message
	}
	return err.Error()
}

// stringList decodes a room or a list of rooms.
func stringList(r parser.Raw) ([]string, error) {
	var one string
	if err := r.Decode(&one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := r.Decode(&many); err != nil {
		return nil, errors.New("expected a room or an array of rooms")
	}
	return many, nil
}

// decodeSpec reads a spec object without resolving its binary
// placeholders, so that its "args" can be forwarded with the event's
// attachments (see subArgs).
func decodeSpec(ev *server.Event, v any) error {
	return json.Unmarshal(arg(ev, 0).JSON, v)
}

func arg(ev *server.Event, i int) parser.Raw {
	if i < len(ev.Args) {
		return ev.Args[i]
	}
	return parser.Raw{JSON: json.RawMessage("null")}
}

func (a *app) join(s *server.Socket, ev *server.Event) (any, error) {
	rooms, err := stringList(arg(ev, 0))
	if err != nil {
		return nil, err
	}
	s.Join(rooms...)
	return s.Rooms(), nil
}

func (a *app) leave(s *server.Socket, ev *server.Event) (any, error) {
	var room string
	if err := ev.Decode(0, &room); err != nil {
		return nil, err
	}
	s.Leave(room)
	return s.Rooms(), nil
}

func (a *app) setData(s *server.Socket, ev *server.Event) (any, error) {
	s.SetData(arg(ev, 0))
	return true, nil
}

func (a *app) echoEvent(s *server.Socket, ev *server.Event) {
	var name string
	if err := ev.Decode(0, &name); err != nil {
		ackErr(ev, err)
		return
	}
	if err := s.Emit(name, ev.Args[1:].Any()...); err != nil {
		ackErr(ev, err)
		return
	}
	_ = ev.Ack(true)
}

// subArgs turns the "args" array of a spec into raw values that keep the
// event's binary attachments.
func subArgs(list []json.RawMessage, from parser.Raw) []any {
	out := make([]any, len(list))
	for i, r := range list {
		out[i] = parser.Raw{JSON: r, Attachments: from.Attachments}
	}
	return out
}

type selection struct {
	In     []string `json:"in"`
	Except []string `json:"except"`
	Rooms  []string `json:"rooms"`
	Close  bool     `json:"close"`
}

func (a *app) operator(s *server.Socket, sel selection) *server.BroadcastOperator {
	return s.Namespace().In(sel.In...).Except(sel.Except...)
}

func (a *app) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.reqTimeout+2*time.Second)
}

func (a *app) broadcast(s *server.Socket, ev *server.Event) (any, error) {
	var spec struct {
		To        []string          `json:"to"`
		Except    []string          `json:"except"`
		Event     string            `json:"event"`
		Args      []json.RawMessage `json:"args"`
		Broadcast bool              `json:"broadcast"`
		Local     bool              `json:"local"`
		Volatile  bool              `json:"volatile"`
		TimeoutMs *float64          `json:"timeoutMs"`
	}
	if err := decodeSpec(ev, &spec); err != nil {
		return nil, err
	}
	op := s.Namespace().To()
	if spec.Broadcast {
		op = s.Broadcast()
	}
	op = op.To(spec.To...).Except(spec.Except...)
	if spec.Local {
		op = op.Local()
	}
	if spec.Volatile {
		op = op.Volatile()
	}
	args := subArgs(spec.Args, arg(ev, 0))
	if spec.TimeoutMs == nil {
		return true, op.Emit(spec.Event, args...)
	}
	op = op.Timeout(time.Duration(*spec.TimeoutMs * float64(time.Millisecond)))
	err := op.EmitWithAckFunc(spec.Event, func(res server.Args, err error) {
		_ = ev.Ack(map[string]any{"err": errOrNil(err), "responses": res})
	}, args...)
	if err != nil {
		return nil, err
	}
	return noReply, nil
}

func (a *app) ask(s *server.Socket, ev *server.Event) {
	var spec struct {
		Event     string            `json:"event"`
		Args      []json.RawMessage `json:"args"`
		TimeoutMs *float64          `json:"timeoutMs"`
	}
	if err := decodeSpec(ev, &spec); err != nil {
		ackErr(ev, err)
		return
	}
	args := subArgs(spec.Args, arg(ev, 0))
	answer := func(res server.Args, err error) {
		if res == nil {
			res = server.Args{}
		}
		_ = ev.Ack(map[string]any{"err": errOrNil(err), "response": res})
	}
	var err error
	if spec.TimeoutMs == nil {
		err = s.EmitWithAckFunc(spec.Event, answer, args...)
	} else {
		err = s.Timeout(time.Duration(*spec.TimeoutMs*float64(time.Millisecond))).EmitWithAckFunc(spec.Event, answer, args...)
	}
	if err != nil {
		ackErr(ev, err)
	}
}

func (a *app) serverSideEmit(s *server.Socket, ev *server.Event) (any, error) {
	var spec struct {
		Event     string            `json:"event"`
		Args      []json.RawMessage `json:"args"`
		TimeoutMs *float64          `json:"timeoutMs"`
	}
	if err := decodeSpec(ev, &spec); err != nil {
		return nil, err
	}
	args := subArgs(spec.Args, arg(ev, 0))
	ctx, cancel := a.ctx()
	defer cancel()
	if spec.TimeoutMs == nil {
		return true, s.Namespace().ServerSideEmit(ctx, spec.Event, args...)
	}
	res, err := s.Namespace().ServerSideEmitWithAck(ctx, spec.Event, args...)
	if res == nil {
		res = server.Args{}
	}
	return map[string]any{"err": errOrNil(err), "responses": res}, nil
}

func decodeSelection(ev *server.Event) (selection, error) {
	var sel selection
	if len(ev.Args) == 0 {
		return sel, nil
	}
	err := ev.Decode(0, &sel)
	return sel, err
}

func (a *app) fetchSockets(s *server.Socket, ev *server.Event) (any, error) {
	sel, err := decodeSelection(ev)
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	socks, err := a.operator(s, sel).FetchSockets(ctx)
	if err != nil {
		return nil, err
	}
	type info struct {
		ID    string   `json:"id"`
		Rooms []string `json:"rooms"`
		Data  any      `json:"data"`
		Nsp   string   `json:"nsp"`
	}
	out := make([]info, 0, len(socks))
	for _, rs := range socks {
		rooms := append([]string{}, rs.Rooms...)
		sort.Strings(rooms)
		var raw json.RawMessage // JSON from another node, as on Node
		_ = rs.DecodeData(&raw)
		var data any = raw
		if l := rs.Local(); l != nil {
			data = l.Data() // a local socket's own value: binary stays binary
		}
		out = append(out, info{rs.ID, rooms, data, s.Namespace().Name()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (a *app) socketsJoin(s *server.Socket, ev *server.Event) (any, error) {
	sel, err := decodeSelection(ev)
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return true, a.operator(s, sel).SocketsJoin(ctx, sel.Rooms...)
}

func (a *app) socketsLeave(s *server.Socket, ev *server.Event) (any, error) {
	sel, err := decodeSelection(ev)
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return true, a.operator(s, sel).SocketsLeave(ctx, sel.Rooms...)
}

func (a *app) disconnectSockets(s *server.Socket, ev *server.Event) {
	sel, err := decodeSelection(ev)
	if err != nil {
		ackErr(ev, err)
		return
	}
	_ = ev.Ack(true)
	ctx, cancel := a.ctx()
	defer cancel()
	_ = a.operator(s, sel).DisconnectSockets(ctx, sel.Close)
}

func (a *app) allRooms(s *server.Socket, _ *server.Event) (any, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	rooms, err := s.Namespace().Adapter().AllRooms(ctx)
	if err != nil {
		return nil, err
	}
	socks, err := s.Namespace().FetchSockets(ctx)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(socks))
	for _, rs := range socks {
		ids[rs.ID] = true
	}
	out := []string{}
	seen := map[string]bool{}
	for _, r := range rooms {
		if !ids[r] && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (a *app) count(s *server.Socket, ev *server.Event) (any, error) {
	sel, err := decodeSelection(ev)
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	socks, err := s.Namespace().In(sel.In...).FetchSockets(ctx)
	if err != nil {
		return nil, err
	}
	return len(socks), nil
}

func (a *app) emitReserved(s *server.Socket, ev *server.Event) (any, error) {
	var name string
	if err := ev.Decode(0, &name); err != nil {
		return nil, err
	}
	if err := s.Emit(name); err != nil {
		return err.Error(), nil
	}
	return nil, nil
}

func (a *app) getLastDisconnect(*server.Socket, *server.Event) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastDisconnect, nil
}

func (a *app) getRecorded(s *server.Socket, _ *server.Event) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.recorded[s.Namespace().Name()]
	if list == nil {
		return []json.RawMessage{}, nil
	}
	return append([]json.RawMessage(nil), list...), nil
}

func (a *app) sse(s *server.Socket, _ *server.Event) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res, err := s.Namespace().ServerSideEmitWithAck(ctx, "ping")
	ms := float64(time.Since(start).Microseconds()) / 1000
	if res == nil {
		res = server.Args{}
	}
	return map[string]any{"err": errOrNil(err), "responses": res, "ms": ms, "node": a.node}, nil
}

func (a *app) bcast(s *server.Socket, ev *server.Event) (any, error) {
	var room *string
	_ = ev.Decode(0, &room)
	op := s.Namespace().To()
	if room != nil && *room != "" {
		op = op.To(*room)
	}
	return true, op.Emit("msg", arg(ev, 1))
}

func (a *app) publish(s *server.Socket, ev *server.Event) (any, error) {
	var spec struct {
		Room  string  `json:"room"`
		Count int     `json:"count"`
		Rate  float64 `json:"rate"`
		Size  int     `json:"size"`
	}
	if err := ev.Decode(0, &spec); err != nil {
		return nil, err
	}
	// As the Node testapp: a negative count or size counts as zero.
	spec.Count, spec.Size = max(spec.Count, 0), max(spec.Size, 0)
	op := s.Namespace().To()
	if spec.Room != "" {
		op = op.To(spec.Room)
	}
	pad := strings.Repeat("x", spec.Size)
	start := time.Now()
	buf := make([]byte, 0, 64+spec.Size)
	for i := 0; i < spec.Count; i++ {
		if spec.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / spec.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		buf = fmt.Appendf(buf[:0], `{"t":%d,"seq":%d,"src":"srv","pad":%q}`, time.Now().UnixMicro(), i, pad)
		if err := op.Emit("msg", json.RawMessage(append([]byte(nil), buf...))); err != nil {
			return nil, err
		}
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	return map[string]any{"sent": spec.Count, "ms": ms}, nil
}

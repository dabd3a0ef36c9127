package redisstreams

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ioswarm/ioswarm/adapter"
	"github.com/ioswarm/ioswarm/adapter/internal/cluster"
)

// Connection state recovery, as Node's streams adapter does it: the
// offset of a logged broadcast is its stream entry id; the session of a
// socket that left for a reason that allows recovery is kept under
// <SessionKeyPrefix><pid>, base64 msgpack {sid, pid, rooms, data}, for
// the window (SET PX); any node restores it: GET and DEL in one MULTI, a
// check that the client's offset is still in the stream (XRANGE off off),
// then the entries after it (XRANGE, at most maxRestoreReads rounds), the
// broadcasts of the namespace that the session's rooms select.

// maxRestoreReads bounds the XRANGE rounds of a restore (Node's
// RESTORE_SESSION_MAX_XRANGE_CALLS), in case entries come faster than
// they are read; each reads restoreReadCount entries at most (Node reads
// to the end of the stream each time).
const (
	maxRestoreReads  = 100
	restoreReadCount = 1000
)

// errTooMuchMissed fails a restore whose missed packets exceed the
// server's MaxPackets or MaxPacketBytes: the client gets a new session.
var errTooMuchMissed = errors.New("redisstreams: the session missed more than the recovery bounds")

// recoverer is the adapter of a namespace whose server has connection
// state recovery on: a cluster.Adapter whose logged broadcasts wait for
// their stream entry id (the offset the clients get), and an
// adapter.Recoverer.
type recoverer struct {
	*cluster.Adapter
	t    *transport
	opts adapter.RecoveryOptions
}

var _ adapter.Recoverer = (*recoverer)(nil)

// Broadcast writes a logged broadcast (adapter.Loggable, not Local) to the
// stream and waits for its id, RequestsTimeout at most, which it appends
// to the packet before delivering it to the local sockets; other
// broadcasts go as without recovery. The entry goes through the publish
// queue, so that the stream keeps the order of the node's operations.
func (r *recoverer) Broadcast(p *adapter.Packet, opts adapter.BroadcastOptions) error {
	if opts.Flags.Local || !adapter.Loggable(p, opts) {
		return r.Adapter.Broadcast(p, opts)
	}
	id, err := r.log(p, opts)
	if err == nil {
		p.Data = adapter.AppendOffset(p.Data, id)
		p.Seq = cluster.OffsetSeq(id)
	}
	local := opts
	local.Flags.Local = true
	_ = r.Adapter.Broadcast(p, local)
	return err
}

// log adds the entry of a broadcast and returns its id.
func (r *recoverer) log(p *adapter.Packet, opts adapter.BroadcastOptions) (string, error) {
	out := cluster.BroadcastOut("", p, opts)
	out.UID, out.Nsp = r.UID(), r.t.name
	it, err := r.t.entry(out)
	if err != nil {
		return "", fmt.Errorf("redisstreams: broadcast: %w", err)
	}
	type reply struct {
		id  string
		err error
	}
	done := make(chan reply, 1)
	it.Done = func(id string, err error) { done <- reply{id, err} }
	if err := r.t.f.send(it); err != nil {
		return "", fmt.Errorf("redisstreams: broadcast: %w", err)
	}
	timer := time.NewTimer(r.t.f.opts.RequestsTimeout)
	defer timer.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return "", fmt.Errorf("redisstreams: broadcast: %w", res.err)
		}
		return res.id, nil
	case <-timer.C:
		return "", &adapter.TimeoutError{Message: "redisstreams: broadcast: the stream did not answer in time"}
	}
}

// PersistSession keeps s under <SessionKeyPrefix><pid> for the window. It
// does not wait for Redis.
func (r *recoverer) PersistSession(s *adapter.Session) {
	w := cluster.GetWriter(64 + int(s.Size()))
	w.MapLen(4)
	w.Str("sid")
	w.Str(s.SID)
	w.Str("pid")
	w.Str(s.PID)
	w.Str("rooms")
	w.Strs(s.Rooms)
	w.Str("data")
	data := s.DataJSON
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if err := w.JSON(data, nil); err != nil {
		w.Bytes()
		r.t.f.log.Warn("redisstreams: session not kept", "nsp", r.t.name, "err", err)
		return
	}
	err := r.t.f.send(cluster.QueueItem{
		Kind:    kindSet,
		Key:     r.t.f.opts.SessionKeyPrefix + s.PID,
		Payload: base64.StdEncoding.AppendEncode(nil, w.Bytes()),
		Fields:  []string{strconv.FormatInt(max(r.opts.MaxDisconnectionDuration.Milliseconds(), 1), 10)},
	})
	if err != nil {
		r.t.f.log.Warn("redisstreams: session not kept", "nsp", r.t.name, "err", err)
	}
}

var errNoSession = errors.New("redisstreams: session or offset not found")

// RestoreSession takes the session of pid and, when offset is still in
// the stream, makes the socket attach builds join its rooms and returns
// the broadcasts logged after offset that its rooms select.
func (r *recoverer) RestoreSession(ctx context.Context, pid, offset string, attach func(*adapter.Session) adapter.Socket) (adapter.Restored, bool) {
	if !cluster.ValidOffset(offset) {
		return adapter.Restored{}, false
	}
	ctx, cancel := r.t.f.ioContext(ctx)
	defer cancel()
	s, err := r.take(ctx, pid, offset)
	if err != nil {
		if !errors.Is(err, errNoSession) {
			r.t.f.log.Warn("redisstreams: session not restored", "nsp", r.t.name, "err", err)
		}
		return adapter.Restored{}, false
	}
	sock := attach(s)
	r.AddAll(sock, s.Rooms)
	res, err := r.missed(ctx, s, offset)
	if err != nil {
		r.DelAll(sock.ID())
		r.t.f.log.Warn("redisstreams: session not restored", "nsp", r.t.name, "err", err)
		return adapter.Restored{}, false
	}
	return res, true
}

// take reads and deletes the session of pid, and checks that offset is
// still in the stream.
func (r *recoverer) take(ctx context.Context, pid, offset string) (*adapter.Session, error) {
	c := r.t.f.client
	var get *goredis.StringCmd
	_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, r.t.f.opts.SessionKeyPrefix+pid)
		p.Del(ctx, r.t.f.opts.SessionKeyPrefix+pid)
		return nil
	})
	if errors.Is(err, goredis.Nil) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	at, err := c.XRange(ctx, r.t.stream, offset, offset).Result()
	if err != nil {
		return nil, err
	}
	if len(at) == 0 {
		return nil, errNoSession
	}
	return decodeSession(get.Val())
}

// decodeSession reads a kept session: base64 msgpack {sid, pid, rooms,
// data}.
func decodeSession(raw string) (*adapter.Session, error) {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("redisstreams: session: %w", err)
	}
	s := &adapter.Session{DataJSON: json.RawMessage("null")}
	rd := cluster.GetReader(b)
	defer cluster.PutReader(rd)
	_, err = rd.MapKeys(func(key []byte) error {
		var err error
		switch string(key) {
		case "sid":
			s.SID, _, err = rd.Str()
		case "pid":
			s.PID, _, err = rd.Str()
		case "rooms":
			s.Rooms, err = rd.StringList()
		case "data":
			s.DataJSON, _, err = rd.ToJSON(nil, nil, cluster.BinBufferJSON)
		default:
			err = rd.Skip(0)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redisstreams: session: %w", err)
	}
	if s.SID == "" {
		return nil, fmt.Errorf("redisstreams: session without sid")
	}
	s.DataBytes = int64(len(s.DataJSON))
	if err := json.Unmarshal(s.DataJSON, &s.Data); err != nil {
		return nil, fmt.Errorf("redisstreams: session data: %w", err)
	}
	return s, nil
}

// missed reads the stream after offset: the broadcasts of the namespace
// that the session's rooms select, with their offsets, and the newest
// entry read (Restored.Through); no more than MaxPackets of them and
// MaxPacketBytes.
func (r *recoverer) missed(ctx context.Context, s *adapter.Session, offset string) (adapter.Restored, error) {
	var res adapter.Restored
	var size int64
	from := offset
	for range maxRestoreReads {
		entries, err := r.t.f.client.XRangeN(ctx, r.t.stream, cluster.NextOffset(from), "+", restoreReadCount).Result()
		if err != nil {
			return adapter.Restored{}, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			from = e.ID
			res.Through = cluster.OffsetSeq(e.ID)
			if nsp, _ := e.Values["nsp"].(string); nsp != r.t.name {
				continue
			}
			if typ, _ := e.Values["type"].(string); typ != strconv.Itoa(cluster.MsgBroadcast) {
				continue
			}
			m, err := decodeEntry(e.Values)
			if err != nil {
				continue
			}
			data, atts, err := m.Event()
			if err != nil {
				continue
			}
			o := m.Data.Opts.Options()
			if !adapter.Selects(s.Rooms, o.Rooms, o.Except) {
				continue
			}
			p := adapter.NewPacket(r.t.name, adapter.AppendOffset(data, e.ID), atts)
			p.Seq = res.Through
			res.Missed = append(res.Missed, p)
			size += int64(len(p.Data) + cluster.AttachmentsLen(atts))
			if len(res.Missed) > r.opts.MaxPackets || size > r.opts.MaxPacketBytes {
				return adapter.Restored{}, errTooMuchMissed
			}
		}
	}
	return res, nil
}

package cluster

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

// notepackScript answers, one JSON line per request, what Node's
// redis-adapter does with a message: decode it with notepack.io and turn it
// into Socket.IO JSON + attachments (socket.io-parser's deconstructPacket),
// or rebuild a value from Socket.IO JSON and encode it with notepack.io.
const notepackScript = `
const path = require("path");
const dir = process.argv[2];
const encode = require(path.join(dir, "notepack.io/lib/encode.js"));
const decode = require(path.join(dir, "notepack.io/lib/decode.js"));
const { deconstructPacket, reconstructPacket } = require(path.join(dir, "socket.io-parser/build/cjs/binary.js"));
const rl = require("readline").createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const req = JSON.parse(line);
  let res;
  try {
    if (req.op === "decode") {
      const { packet, buffers } = deconstructPacket({ data: decode(Buffer.from(req.mp, "base64")) });
      res = { json: JSON.stringify(packet.data), atts: buffers.map((b) => Buffer.from(b).toString("base64")) };
    } else {
      const packet = reconstructPacket({ data: JSON.parse(req.json) }, req.atts.map((a) => Buffer.from(a, "base64")));
      res = { mp: encode(packet.data).toString("base64") };
    }
  } catch (err) {
    res = { error: String(err) };
  }
  process.stdout.write(JSON.stringify(res) + "\n");
});
`

type notepack struct {
	t   *testing.T
	in  *json.Encoder
	out *bufio.Scanner
}

func startNotepack(t *testing.T) *notepack {
	t.Helper()
	node := testkit.RequireNode(t)
	modules := filepath.Join(testkit.RepoRoot(t), "integration", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "notepack.io")); err != nil {
		t.Skipf("notepack.io is not installed in %s: %v", modules, err)
	}
	script := filepath.Join(t.TempDir(), "notepack.js")
	testkit.NoError(t, os.WriteFile(script, []byte(notepackScript), 0o600))
	cmd := exec.Command(node, script, modules)
	stdin, err := cmd.StdinPipe()
	testkit.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	testkit.NoError(t, err)
	cmd.Stderr = os.Stderr
	testkit.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return &notepack{t: t, in: json.NewEncoder(stdin), out: sc}
}

type notepackResult struct {
	JSON  *string  `json:"json"`
	Atts  []string `json:"atts"`
	MP    string   `json:"mp"`
	Error string   `json:"error"`
}

func (n *notepack) call(req map[string]any) notepackResult {
	n.t.Helper()
	testkit.NoError(n.t, n.in.Encode(req))
	if !n.out.Scan() {
		n.t.Fatalf("notepack helper exited: %v", n.out.Err())
	}
	var res notepackResult
	testkit.NoError(n.t, json.Unmarshal(n.out.Bytes(), &res))
	return res
}

func b64s(atts [][]byte) []string {
	out := make([]string, len(atts))
	for i, a := range atts {
		out[i] = base64.StdEncoding.EncodeToString(a)
	}
	return out
}

// TestNotepackDifferential compares the transcoder with notepack.io 3.0.1
// and socket.io-parser on random values: Socket.IO JSON → msgpack must give
// Node's bytes, and msgpack → Socket.IO JSON must give the JSON text and
// attachments Node would send to its clients.
func TestNotepackDifferential(t *testing.T) {
	np := startNotepack(t)
	rng := rand.New(rand.NewPCG(1, 2))
	n := 1500
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		// Socket.IO JSON → msgpack, compared with notepack.encode.
		g := &jsonGen{rng: rng}
		js := g.value(0)
		ours, err := toMsgpack(js, g.atts)
		testkit.NoError(t, err, "our encoding of %s", js)
		res := np.call(map[string]any{"op": "encode", "json": js, "atts": b64s(g.atts)})
		testkit.Equal(t, res.Error, "", "node encode of %s", js)
		theirs, _ := base64.StdEncoding.DecodeString(res.MP)
		if hex.EncodeToString(ours) != hex.EncodeToString(theirs) {
			t.Fatalf("encoding of %s\n ours:   %x\n theirs: %x", js, ours, theirs)
		}

		// msgpack → Socket.IO JSON, on the same message and on a message
		// using every encoding notepack.io reads.
		for _, msg := range [][]byte{theirs, (&mpGen{rng: rng}).message()} {
			got, atts, err := toJSON(t, msg, BinPlaceholder)
			res := np.call(map[string]any{"op": "decode", "mp": base64.StdEncoding.EncodeToString(msg)})
			if res.Error != "" || res.JSON == nil {
				testkit.True(t, err != nil, "node refused %x (%s) but we accepted it: %s", msg, res.Error, got)
				continue
			}
			testkit.NoError(t, err, "decoding %x", msg)
			if got != *res.JSON {
				t.Fatalf("decoding %x\n ours:   %s\n theirs: %s", msg, got, *res.JSON)
			}
			testkit.Equal(t, b64s(atts), res.Atts, "attachments of %x", msg)
		}
	}
}

// jsonGen builds random Socket.IO JSON values in JavaScript's form (what
// JSON.stringify writes), with binary placeholders. Object keys are never
// integer-like and never repeat (JavaScript objects would reorder or merge
// them).
type jsonGen struct {
	rng  *rand.Rand
	atts [][]byte
}

func (g *jsonGen) value(depth int) string {
	r := g.rng
	k := r.IntN(12)
	if depth > 3 && k >= 9 {
		k = r.IntN(9)
	}
	switch k {
	case 0:
		return "null"
	case 1:
		return strconv.FormatBool(r.IntN(2) == 0)
	case 2:
		return string(AppendJSNumber(nil, g.float()))
	case 3:
		return strconv.FormatInt(r.Int64N(1<<40)-1<<39, 10)
	case 4:
		return strconv.FormatInt(r.Int64N(300)-150, 10)
	case 5, 6:
		return string(AppendJSStringText(nil, g.str()))
	case 8:
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		g.atts = append(g.atts, b)
		return `{"_placeholder":true,"num":` + strconv.Itoa(len(g.atts)-1) + `}`
	case 9, 7:
		n := r.IntN(5)
		if r.IntN(10) == 0 {
			n = 16 + r.IntN(10)
		}
		parts := make([]string, n)
		for i := range parts {
			parts[i] = g.value(depth + 1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		n := r.IntN(5)
		if r.IntN(10) == 0 {
			n = 16 + r.IntN(10)
		}
		seen := map[string]bool{}
		var parts []string
		for i := 0; i < n; i++ {
			key := "k" + g.str()
			if seen[key] {
				continue
			}
			seen[key] = true
			parts = append(parts, string(AppendJSStringText(nil, key))+":"+g.value(depth+1))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

func (g *jsonGen) float() float64 {
	r := g.rng
	switch r.IntN(6) {
	case 0:
		return math.Float64frombits(r.Uint64())
	case 1:
		return r.NormFloat64() * 1e-7
	case 2:
		return r.NormFloat64() * 1e22
	case 3:
		return float64(r.Int64N(1<<62)) * float64(1-2*r.IntN(2)) * 7
	default:
		return r.NormFloat64() * 1000
	}
}

var strPieces = []string{"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "€", "\u2028", "\u2029", "😀", "中文", "<>&", "_placeholder"}

func (g *jsonGen) str() string {
	r := g.rng
	n := r.IntN(8)
	if r.IntN(8) == 0 {
		n = 20 + r.IntN(60) // long strings take notepack's other code path
	}
	var sb strings.Builder
	for i := 0; i < n; i++ {
		sb.WriteString(strPieces[r.IntN(len(strPieces))])
	}
	return sb.String()
}

// mpGen builds random msgpack messages with every encoding notepack.io
// decodes: non-minimal integers, float32, str and bin of every size class,
// extensions, timestamps and its 2.x forms.
type mpGen struct {
	rng *rand.Rand
	buf Buf
	enc *msgpack.Encoder
}

func (g *mpGen) message() []byte {
	g.enc = msgpack.NewEncoder(&g.buf)
	g.buf.B = nil
	g.enc.EncodeArrayLen(2)
	g.enc.EncodeString("ev")
	g.value(0)
	return g.buf.B
}

func (g *mpGen) raw(b ...byte) { g.buf.B = append(g.buf.B, b...) }

func (g *mpGen) value(depth int) {
	r, e := g.rng, g.enc
	k := r.IntN(20)
	if depth > 3 && k >= 17 {
		k = r.IntN(17)
	}
	switch k {
	case 0:
		e.EncodeNil()
	case 1:
		e.EncodeBool(r.IntN(2) == 0)
	case 2:
		e.EncodeUint8(uint8(r.Uint32()))
	case 3:
		e.EncodeInt16(int16(r.Uint32()))
	case 4:
		e.EncodeUint64(r.Uint64())
	case 5:
		e.EncodeInt64(int64(r.Uint64()))
	case 6:
		e.EncodeInt32(int32(r.Uint32()))
	case 7:
		e.EncodeFloat32(math.Float32frombits(r.Uint32()))
	case 8:
		e.EncodeFloat64(math.Float64frombits(r.Uint64()))
	case 9:
		s := (&jsonGen{rng: r}).str()
		switch r.IntN(3) { // non-minimal string headers are valid too
		case 0:
			g.raw(0xd9, byte(len(s)))
			g.raw([]byte(s)...)
		case 1:
			g.raw(0xda, byte(len(s)>>8), byte(len(s)))
			g.raw([]byte(s)...)
		default:
			e.EncodeString(s)
		}
	case 10:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		e.EncodeBytes(b)
	case 11: // timestamp 32, 64, 96
		switch r.IntN(3) {
		case 0:
			g.raw(0xd6, 0xff)
			g.raw(be(uint64(r.Uint32()), 4)...)
		case 1:
			g.raw(0xd7, 0xff)
			g.raw(be(r.Uint64(), 8)...)
		default:
			g.raw(0xc7, 12, 0xff)
			g.raw(be(uint64(r.Uint32N(1e9)), 4)...)
			sec := r.Int64N(1<<40) - 1<<39
			if r.IntN(4) == 0 {
				sec = int64(r.Uint64())
			}
			g.raw(be(uint64(sec), 8)...)
		}
	case 12: // notepack 2.x Date and undefined
		if r.IntN(2) == 0 {
			g.raw(0xd7, 0x00)
			g.raw(be(uint64(r.Int64N(1<<50)-1<<49), 8)...)
		} else {
			g.raw(0xd4, 0x00, 0x00)
		}
	case 13: // other extensions
		codes := []struct {
			code byte
			n    int
		}{{0xd4, 1}, {0xd5, 2}, {0xd6, 4}, {0xd7, 8}, {0xd8, 16}}
		c := codes[r.IntN(len(codes))]
		typ := byte(1 + r.IntN(120))
		g.raw(c.code, typ)
		for i := 0; i < c.n; i++ {
			g.raw(byte(r.IntN(256)))
		}
	case 14: // ext8 and the 2.x ArrayBuffer
		n := r.IntN(10)
		typ := byte(r.IntN(3)) // 0: ArrayBuffer
		g.raw(0xc7, byte(n), typ)
		for i := 0; i < n; i++ {
			g.raw(byte(r.IntN(256)))
		}
	case 15:
		e.EncodeInt(int64(r.IntN(1000)) - 500)
	case 16:
		e.EncodeUint(uint64(r.Uint32()))
	case 17, 18:
		n := r.IntN(5)
		e.EncodeArrayLen(n)
		for i := 0; i < n; i++ {
			g.value(depth + 1)
		}
	default:
		n := r.IntN(5)
		e.EncodeMapLen(n)
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			key := "k" + (&jsonGen{rng: r}).str()
			for seen[key] {
				key += "x"
			}
			seen[key] = true
			e.EncodeString(key)
			g.value(depth + 1)
		}
	}
}

func be(v uint64, n int) []byte {
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// FuzzTranscode: whatever arrives from Redis, msgpack → JSON either fails
// or gives valid JSON that transcodes back to msgpack and again to the
// same JSON; nothing panics.
func FuzzTranscode(f *testing.F) {
	for _, s := range []string{
		"93a6345472577452830a",
		"94a568656c6c6f01a374776f81a57468726565cb400c000000000000",
		"92c40301020381a164d6ff00000000",
		"81c0c3", "d400ff", "c70cff000000000000000000000001", "cf ffffffffffffffff", "dc0002c0c0",
		"82ac5f706c616365686f6c646572c3a36e756d00",
	} {
		b, _ := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		f.Add(b)
	}
	for _, msg := range testkit.DeepMsgpackSeeds(MaxDepth) {
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := GetReader(msg)
		j1, atts, err := r.ToJSON(nil, nil, BinPlaceholder)
		PutReader(r)
		if err != nil {
			return
		}
		if !json.Valid(j1) || !utf8.Valid(j1) {
			t.Fatalf("invalid JSON %q from %x", j1, msg)
		}
		m2, err := toMsgpack(string(j1), atts)
		if err != nil {
			if strings.Contains(string(j1), "_placeholder") {
				return // a literal placeholder-like object may name a missing attachment
			}
			t.Fatalf("JSON %s from %x does not transcode back: %v", j1, msg, err)
		}
		r = GetReader(m2)
		j2, atts2, err := r.ToJSON(nil, nil, BinPlaceholder)
		PutReader(r)
		if err != nil || !json.Valid(j2) {
			t.Fatalf("round trip of %s: %v / %q", j1, err, j2)
		}
		// Once in JavaScript form the value is stable (integers >= 2^64
		// wrap once, as notepack does).
		m3, err := toMsgpack(string(j2), atts2)
		if err != nil {
			t.Fatalf("JSON %s does not transcode back: %v", j2, err)
		}
		r = GetReader(m3)
		j3, _, err := r.ToJSON(nil, nil, BinPlaceholder)
		PutReader(r)
		if err != nil || (string(j3) != string(j2) && !strings.Contains(string(j2), "_placeholder")) {
			t.Fatalf("not stable: %s → %s (%v)", j2, j3, err)
		}
		// The cluster message decoder never panics either.
		if m, err := Decode(msg); err == nil {
			_, _, _ = m.Event()
			_, _ = m.AckValue()
		}
	})
}

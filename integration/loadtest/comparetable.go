package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Row is one line of the -compare table: a measure of both implementations
// and their ratio, oriented so that > 1 means ioswarm is better.
type Row struct {
	Name    string  `json:"row"`
	Phase   string  `json:"phase"`
	Unit    string  `json:"unit"`
	Better  string  `json:"better"` // "higher" or "lower"
	Ioswarm float64 `json:"ioswarm"`
	Node    float64 `json:"node"`
	// Ratio is ioswarm/Node when higher is better, Node/ioswarm when lower
	// is better; 0 when either value is missing.
	Ratio float64  `json:"ratio"`
	Notes []string `json:"notes,omitempty"`
}

// rowDef says how a row is taken from a phase's results.
type rowDef struct {
	name   string
	phase  string
	unit   string
	lower  bool                          // lower is better
	value  func(*Result) (float64, bool) // false: not measured
	format func(float64) string
}

func (d rowDef) better() string {
	if d.lower {
		return "lower"
	}
	return "higher"
}

// rowDefs are the rows of the table, in order.
func rowDefs(cfg *config) []rowDef {
	rate := func(r *Result) (float64, bool) { return r.PerServerCPU, r.PerServerCPU > 0 }
	perSec := func(r *Result) (float64, bool) { return r.PerSecond, r.PerSecond > 0 }
	p99 := func(q func(*Result) *Quantiles) func(*Result) (float64, bool) {
		return func(r *Result) (float64, bool) {
			if v := q(r); v != nil {
				return v.P99, true
			}
			return 0, false
		}
	}
	latency := func(r *Result) *Quantiles { return r.Latency }
	kB := func(v float64) string { return fmt.Sprintf("%.1f kB", v) }
	return []rowDef{
		{"connect: server CPU per 1,000 connections", "connect", "ms", true, func(r *Result) (float64, bool) {
			return r.ServerCPU / float64(max(r.Clients, 1)) * 1e6, r.Clients > 0 && r.ServerCPU > 0
		}, func(v float64) string { return fmt.Sprintf("%.0f ms", v) }},
		{"memory per idle connection", "idle", "kB", true, func(r *Result) (float64, bool) { return r.RSSPerConnKB, r.RSSPerConnKB != 0 }, kB},
		{"client broadcast, paced: deliveries per server CPU-s", "bcast", "1/s", false, rate, si},
		{"client broadcast, paced: latency p99", "bcast", "ms", true, p99(latency), ms},
		{"client broadcast, burst: deliveries per server CPU-s", "bcast-burst", "1/s", false, rate, si},
		{"client broadcast, burst: deliveries per second", "bcast-burst", "1/s", false, perSec, si},
		{"server-side publish, paced: deliveries per server CPU-s", "paced", "1/s", false, rate, si},
		{"server-side publish, paced: latency p99", "paced", "ms", true, p99(latency), ms},
		{"server-side publish, burst: deliveries per server CPU-s", "burst", "1/s", false, rate, si},
		{"server-side publish, burst: deliveries per second", "burst", "1/s", false, perSec, si},
		{"peak memory of the nodes, after the bursts", "burst", "MB", true, func(r *Result) (float64, bool) {
			return float64(r.PeakRSSKB) / 1024, r.PeakRSSKB > 0
		}, func(v float64) string { return fmt.Sprintf("%.0f MB", v) }},
		{fmt.Sprintf("echo, %d in flight: acks per server CPU-s", cfg.inflight), "echo-inflight", "1/s", false, rate, si},
		{fmt.Sprintf("echo, %d in flight: round trip p50", cfg.inflight), "echo-inflight", "ms", true, func(r *Result) (float64, bool) {
			if r.RTT != nil {
				return r.RTT.P50, true
			}
			return 0, false
		}, ms},
		{fmt.Sprintf("echo, %d in flight: round trip p99", cfg.inflight), "echo-inflight", "ms", true, p99(func(r *Result) *Quantiles { return r.RTT }), ms},
		{"serverSideEmit round trip p99 (measured by the server)", "sse", "ms", true, p99(func(r *Result) *Quantiles { return r.ServerMs }), ms},
	}
}

// median is the median of the values a row takes over a phase's repeats.
func median(d rowDef, results []*Result) (float64, bool) {
	var v []float64
	for _, r := range results {
		if x, ok := d.value(r); ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// problems lists what went wrong in a side's results of a phase: lost
// messages, disconnections, an overloaded schedule, errors.
func problems(impl string, results []*Result) []string {
	var out []string
	for _, r := range results {
		var p []string
		if r.Lost > 0 {
			p = append(p, fmt.Sprintf("lost %d of %d", r.Lost, r.Expected))
		}
		if r.Extra > 0 || r.Disorder > 0 {
			p = append(p, fmt.Sprintf("extra %d, out of order %d", r.Extra, r.Disorder))
		}
		if r.Disconnected > 0 {
			p = append(p, fmt.Sprintf("%d disconnected", r.Disconnected))
		}
		if r.Errors > 0 {
			p = append(p, fmt.Sprintf("%d errors", r.Errors))
		}
		for _, n := range r.Notes {
			if strings.HasPrefix(n, "OVERLOADED") || strings.Contains(n, "FAILED") || strings.HasPrefix(n, "cut short") ||
				strings.HasPrefix(n, "messages still arriving") || strings.Contains(n, "unanswered") {
				p = append(p, n)
			}
		}
		if len(p) > 0 {
			out = append(out, implName(impl)+": "+strings.Join(p, ", "))
		}
	}
	return out
}

func implName(impl string) string {
	if impl == implNode {
		return "Node"
	}
	return impl
}

// table is the comparison at one number of clients.
type table struct {
	clients int
	header  []string // what the phases did
	rows    []Row
	formats []func(float64) string
}

// compareTable builds the table of one round.
func compareTable(cfg *config, n int, sides []*side) *table {
	t := &table{clients: n}
	byImpl := map[string]*side{}
	for _, s := range sides {
		byImpl[s.impl] = s
	}
	io, node := byImpl[implGo], byImpl[implNode]
	if io == nil || node == nil {
		return t
	}
	for _, d := range rowDefs(cfg) {
		row := Row{Name: d.name, Phase: d.phase, Unit: d.unit, Better: d.better()}
		a, okA := median(d, io.results[d.phase])
		b, okB := median(d, node.results[d.phase])
		if !okA && !okB {
			continue
		}
		row.Ioswarm, row.Node = a, b
		switch {
		case !okA || !okB || a <= 0 || b <= 0:
		case d.lower:
			row.Ratio = b / a
		default:
			row.Ratio = a / b
		}
		if d.name == rowDefs(cfg)[0].name || strings.Contains(d.name, "deliveries per server CPU-s") ||
			strings.Contains(d.name, "acks") || strings.Contains(d.name, "serverSideEmit") {
			row.Notes = append(problems(implGo, io.results[d.phase]), problems(implNode, node.results[d.phase])...)
		}
		t.rows = append(t.rows, row)
		t.formats = append(t.formats, d.format)
	}
	// What the phases did, from ioswarm's results (Node's are the same but
	// for clients that failed to connect).
	first := func(phase string) *Result {
		if rs := io.results[phase]; len(rs) > 0 {
			return rs[0]
		}
		return nil
	}
	if r := first("bcast"); r != nil {
		t.header = append(t.header, fmt.Sprintf("client broadcast paced: %d sender(s), %s msg/s (%s deliveries/s), %d msgs", r.Senders, si(r.Rate), si(r.Rate*float64(r.Clients)), r.Count))
	}
	if r := first("bcast-burst"); r != nil {
		t.header = append(t.header, fmt.Sprintf("client broadcast burst: %d msgs (%s deliveries), uncapped", r.Count, si(float64(r.Expected))))
	}
	if r := first("paced"); r != nil {
		t.header = append(t.header, fmt.Sprintf("server-side publish paced: %s msg/s (%s deliveries/s), %d msgs", si(r.Rate), si(r.Rate*float64(r.Clients)), r.Count))
	}
	if r := first("burst"); r != nil {
		t.header = append(t.header, fmt.Sprintf("server-side publish burst: %d msgs (%s deliveries), uncapped", r.Count, si(float64(r.Expected))))
	}
	var redis []string
	for _, s := range sides {
		var cpu float64
		for _, rs := range s.results {
			for _, r := range rs {
				cpu += r.RedisCPU
			}
		}
		redis = append(redis, fmt.Sprintf("%s %.2f s", implName(s.impl), cpu))
	}
	t.header = append(t.header, "Redis CPU during each side's phases: "+strings.Join(redis, ", "))
	return t
}

func (t *table) print(w io.Writer) {
	fmt.Fprintf(w, "\n%d clients\n", t.clients)
	for _, h := range t.header {
		fmt.Fprintf(w, "  %s\n", h)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  \tioswarm\tNode.js\t×\tnotes\n")
	for i, r := range t.rows {
		f := t.formats[i]
		val := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return f(v)
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.Name, val(r.Ioswarm), val(r.Node), ratio, strings.Join(r.Notes, "; "))
	}
	_ = tw.Flush()
}

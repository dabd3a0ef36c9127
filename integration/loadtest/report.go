package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Result is one scenario's outcome; -json prints it as one JSON object.
type Result struct {
	Scenario     string  `json:"scenario"`
	Clients      int     `json:"clients"`      // connected when the scenario started
	Disconnected int64   `json:"disconnected"` // connections that ended during it
	Seconds      float64 `json:"seconds"`      // measurement window
	ServerCPU    float64 `json:"server_cpu_s"` // sum over -pids, over the window
	LoadCPU      float64 `json:"loadgen_cpu_s"`
	RedisCPU     float64 `json:"redis_cpu_s,omitempty"` // -compare: the shared Redis, apart

	// connect (-compare)
	Requested int `json:"requested,omitempty"`

	// paced, burst, bcast, bcast-burst
	Count      int        `json:"count,omitempty"` // messages published
	Rate       float64    `json:"rate,omitempty"`  // per second; 0 is a burst
	PublishMs  float64    `json:"publish_ms,omitempty"`
	Expected   int64      `json:"expected,omitempty"` // count × clients
	Deliveries int64      `json:"deliveries,omitempty"`
	Lost       int64      `json:"lost,omitempty"`
	Extra      int64      `json:"extra,omitempty"`      // deliveries beyond expected
	Disorder   int64      `json:"disorder,omitempty"`   // seq not increasing
	Stale      int64      `json:"stale,omitempty"`      // of an earlier publication, not counted
	BadFrames  int64      `json:"bad_frames,omitempty"` // without a "t" field
	Latency    *Quantiles `json:"latency_ms,omitempty"`
	Calibrate  int        `json:"calibration_count,omitempty"`
	Senders    int        `json:"senders,omitempty"` // bcast, bcast-burst: clients sending

	// echo, echo-inflight
	Inflight int        `json:"inflight,omitempty"` // requests outstanding at once
	Acks     int64      `json:"acks,omitempty"`
	RTT      *Quantiles `json:"rtt_ms,omitempty"`

	// paced, burst, echo: deliveries or acks
	PerSecond    float64 `json:"per_s,omitempty"`
	PerServerCPU float64 `json:"per_server_cpu_s,omitempty"`

	// sse
	Calls     int        `json:"calls,omitempty"`
	Errors    int        `json:"errors,omitempty"`
	Responses int        `json:"responses,omitempty"` // in the last reply: other nodes
	ServerMs  *Quantiles `json:"server_ms,omitempty"`

	// idle: (RSS now − RSS before clients) / clients, over all nodes
	RSSPerConnKB float64 `json:"rss_per_conn_kb,omitempty"`
	// burst: sum of the nodes' VmHWM
	PeakRSSKB int64 `json:"peak_rss_kb,omitempty"`

	Nodes []NodeStat `json:"nodes,omitempty"`
	Notes []string   `json:"notes,omitempty"`

	pending bool // something was still in flight when the scenario ended
}

// NodeStat is one measured process at the end of a scenario.
type NodeStat struct {
	Pid          int     `json:"pid"`
	Target       string  `json:"target,omitempty"` // empty for non-node processes
	Clients      int     `json:"clients,omitempty"`
	CPU          float64 `json:"cpu_s"`
	RSSKB        int64   `json:"rss_kb"`
	HWMKB        int64   `json:"hwm_kb"`
	RSSPerConnKB float64 `json:"rss_per_conn_kb,omitempty"` // idle only
}

// si formats n with a k/M suffix.
func si(n float64) string {
	switch {
	case n >= 10e6:
		return fmt.Sprintf("%.0fM", n/1e6)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 10e3:
		return fmt.Sprintf("%.0fk", n/1e3)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	default:
		return fmt.Sprintf("%.0f", n)
	}
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func quant(name string, q *Quantiles) string {
	if q == nil {
		return name + " -"
	}
	return fmt.Sprintf("%s p50 %s p99 %s max %s", name, ms(q.P50), ms(q.P99), ms(q.Max))
}

func perCPU(n, cpu float64) float64 {
	if cpu <= 0 {
		return 0
	}
	return n / cpu
}

// perCPUValue is v for the table, or "-" when no CPU was measured.
func perCPUValue(v float64) string {
	if v == 0 {
		return "-"
	}
	return si(v)
}

func perCPUText(v float64) string {
	if v == 0 {
		return "- /server-cpu-s (no CPU measured)"
	}
	return si(v) + "/server-cpu-s"
}

// line is the one-line human summary of a result.
func (r *Result) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-13s %d clients, %.1f s, server cpu %.2f s, loadgen cpu %.2f s: ", r.Scenario, r.Clients, r.Seconds, r.ServerCPU, r.LoadCPU)
	switch r.Scenario {
	case "connect":
		fmt.Fprintf(&b, "%d of %d connected", r.Clients, r.Requested)
	case "idle":
		fmt.Fprintf(&b, "rss/conn %.1f kB", r.RSSPerConnKB)
		for _, n := range r.Nodes {
			if n.Target != "" {
				fmt.Fprintf(&b, " [%s %.1f kB, rss %.0f MB]", n.Target, n.RSSPerConnKB, float64(n.RSSKB)/1024)
			}
		}
	case "paced", "burst", "bcast", "bcast-burst":
		rate := "as fast as possible"
		if r.Rate > 0 {
			rate = fmt.Sprintf("%g/s", r.Rate)
		}
		if r.Senders > 0 {
			fmt.Fprintf(&b, "%d senders, ", r.Senders)
		}
		fmt.Fprintf(&b, "%d msgs %s in %.0f ms, deliveries %d (%s/s, %s), lost %d, %s",
			r.Count, rate, r.PublishMs, r.Deliveries, si(r.PerSecond), perCPUText(r.PerServerCPU), r.Lost, quant("latency", r.Latency))
		if r.Extra > 0 || r.Disorder > 0 || r.BadFrames > 0 || r.Stale > 0 {
			fmt.Fprintf(&b, ", extra %d, out of order %d, bad frames %d, stale %d", r.Extra, r.Disorder, r.BadFrames, r.Stale)
		}
		if r.PeakRSSKB > 0 {
			fmt.Fprintf(&b, ", peak rss %.0f MB", float64(r.PeakRSSKB)/1024)
		}
	case "echo", "echo-inflight":
		fmt.Fprintf(&b, "%d in flight, acks %d (%s/s, %s), %s", r.Inflight, r.Acks, si(r.PerSecond), perCPUText(r.PerServerCPU), quant("rtt", r.RTT))
	case "sse":
		fmt.Fprintf(&b, "%d calls, %d errors, %d responses, %s, %s", r.Calls, r.Errors, r.Responses, quant("server", r.ServerMs), quant("rtt", r.RTT))
	}
	if r.RedisCPU > 0 {
		fmt.Fprintf(&b, ", redis cpu %.2f s", r.RedisCPU)
	}
	if r.Disconnected > 0 {
		fmt.Fprintf(&b, ", DISCONNECTED %d", r.Disconnected)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n       note: %s", n)
	}
	return b.String()
}

// printTable prints the summary in the rows of the project's comparison table.
func printTable(w io.Writer, cfg *config, conn connectResult, results []*Result) {
	by := map[string]*Result{}
	for _, r := range results {
		by[r.Scenario] = r
	}
	fmt.Fprintf(w, "\nsummary: %d/%d clients on %d node(s), %d-byte payloads, %v per scenario\n",
		conn.Connected, conn.Requested, len(cfg.targets), cfg.size, cfg.duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value, note string) { fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, value, note) }
	na := "-"
	if r := by["paced"]; r != nil {
		note := fmt.Sprintf("%g msg/s, lost %d of %d", r.Rate, r.Lost, r.Expected)
		if sched := float64(r.Count) / r.Rate * 1000; r.PublishMs == 0 || r.PublishMs > 1.2*sched+100 {
			note += ", OVERLOADED (publish behind schedule)"
		}
		row("deliveries per server CPU-s, paced broadcast", perCPUValue(r.PerServerCPU), note)
	} else {
		row("deliveries per server CPU-s, paced broadcast", na, "")
	}
	if r := by["burst"]; r != nil {
		row("the same, burst", perCPUValue(r.PerServerCPU), fmt.Sprintf("%s deliveries/s, lost %d of %d", si(r.PerSecond), r.Lost, r.Expected))
	} else {
		row("the same, burst", na, "")
	}
	for _, name := range []string{"bcast", "bcast-burst"} {
		r := by[name]
		if r == nil {
			continue
		}
		label := "deliveries per server CPU-s, paced client broadcast"
		note := fmt.Sprintf("%g msg/s from %d senders, lost %d of %d", r.Rate, r.Senders, r.Lost, r.Expected)
		if name == "bcast-burst" {
			label = "the same, client burst"
			note = fmt.Sprintf("%s deliveries/s, lost %d of %d", si(r.PerSecond), r.Lost, r.Expected)
		}
		row(label, perCPUValue(r.PerServerCPU), note)
	}
	if r := by["idle"]; r != nil {
		row("memory per idle connection", fmt.Sprintf("%.1f kB", r.RSSPerConnKB), "RSS growth / clients")
	} else {
		row("memory per idle connection", na, "")
	}
	if r := by["burst"]; r != nil {
		row("peak memory of all nodes, after bursts", fmt.Sprintf("%.2f GB", float64(r.PeakRSSKB)/(1<<20)), "sum of VmHWM")
	} else {
		row("peak memory of all nodes, after bursts", na, "")
	}
	if r := by["paced"]; r != nil && r.Latency != nil {
		row("paced broadcast latency p99", ms(r.Latency.P99), fmt.Sprintf("p50 %s, max %s", ms(r.Latency.P50), ms(r.Latency.Max)))
	} else {
		row("paced broadcast latency p99", na, "")
	}
	if r := by["echo"]; r != nil {
		row("echo acks per server CPU-s", perCPUValue(r.PerServerCPU), fmt.Sprintf("%s acks/s, %s", si(r.PerSecond), quant("rtt", r.RTT)))
	} else {
		row("echo acks per server CPU-s", na, "")
	}
	if r := by["echo-inflight"]; r != nil {
		row(fmt.Sprintf("echo acks per server CPU-s, %d in flight", r.Inflight), perCPUValue(r.PerServerCPU), fmt.Sprintf("%s acks/s, %s", si(r.PerSecond), quant("rtt", r.RTT)))
	}
	if r := by["sse"]; r != nil && r.ServerMs != nil {
		note := fmt.Sprintf("%d responses per call", r.Responses)
		if r.Responses == 0 {
			note += " (one node: not meaningful)"
		}
		row("serverSideEmit round trip p99", ms(r.ServerMs.P99), note)
	} else {
		row("serverSideEmit round trip p99", na, "")
	}
	_ = tw.Flush()
}

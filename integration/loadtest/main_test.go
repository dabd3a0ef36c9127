package main

import (
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, cfg *config)
	}{
		{name: "defaults", args: []string{"-targets", "http://127.0.0.1:3001"}, check: func(t *testing.T, cfg *config) {
			if cfg.clients != 100 || cfg.rateSet || cfg.deliveriesRate != 50000 || cfg.burstDeliveries != 0 || cfg.inflight != 64 {
				t.Errorf("clients %d, rateSet %v, deliveries rate %g, burst deliveries %d, inflight %d",
					cfg.clients, cfg.rateSet, cfg.deliveriesRate, cfg.burstDeliveries, cfg.inflight)
			}
			if strings.Join(cfg.scenarios, ",") != strings.Join(scenarioOrder, ",") {
				t.Errorf("scenarios %v", cfg.scenarios)
			}
		}},
		{name: "explicit rate", args: []string{"-targets", "http://127.0.0.1:3001", "-rate", "20"}, check: func(t *testing.T, cfg *config) {
			if !cfg.rateSet || cfg.rate != 20 {
				t.Errorf("rateSet %v, rate %g", cfg.rateSet, cfg.rate)
			}
		}},
		{name: "scenarios in order", args: []string{"-targets", "http://127.0.0.1:3001", "-scenario", "sse,bcast,idle"}, check: func(t *testing.T, cfg *config) {
			if got := strings.Join(cfg.scenarios, ","); got != "idle,bcast,sse" {
				t.Errorf("scenarios %s", got)
			}
		}},
		{name: "compare", args: []string{"-compare", "-clients", "1000, 10000"}, check: func(t *testing.T, cfg *config) {
			if len(cfg.clientsList) != 2 || cfg.clientsList[1] != 10000 || cfg.burstDeliveries != 2_000_000 {
				t.Errorf("clients %v, burst deliveries %d", cfg.clientsList, cfg.burstDeliveries)
			}
			if strings.Join(cfg.scenarios, ",") != strings.Join(comparePhases, ",") {
				t.Errorf("scenarios %v", cfg.scenarios)
			}
			if cfg.timeout <= 0 {
				t.Errorf("timeout %v", cfg.timeout)
			}
		}},
		{name: "compare burst size", args: []string{"-compare", "-burst-deliveries", "1000"}, check: func(t *testing.T, cfg *config) {
			if cfg.burstDeliveries != 1000 {
				t.Errorf("burst deliveries %d", cfg.burstDeliveries)
			}
		}},
		{name: "compare with targets", args: []string{"-compare", "-targets", "http://127.0.0.1:3001"}, wantErr: "no -targets"},
		{name: "list without compare", args: []string{"-targets", "http://127.0.0.1:3001", "-clients", "10,20"}, wantErr: "needs -compare"},
		{name: "testapp without compare", args: []string{"-targets", "http://127.0.0.1:3001", "-testapp", "/bin/x"}, wantErr: "need -compare"},
		{name: "no targets", args: nil, wantErr: "-targets is required"},
		{name: "bad clients", args: []string{"-compare", "-clients", "10,x"}, wantErr: "-clients"},
		{name: "unknown scenario", args: []string{"-compare", "-scenario", "nope"}, wantErr: "unknown"},
		{name: "bad inflight", args: []string{"-compare", "-inflight", "0"}, wantErr: "-inflight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

// TestCompareTable checks the orientation of the ratios: > 1 means ioswarm is better.
func TestCompareTable(t *testing.T) {
	cfg, err := parseFlags([]string{"-compare"})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(impl string, perCPU, p99, kB float64) *side {
		return &side{impl: impl, results: map[string][]*Result{
			"idle":  {{Scenario: "idle", RSSPerConnKB: kB}},
			"bcast": {{Scenario: "bcast", PerServerCPU: perCPU, Latency: &Quantiles{P50: 1, P99: p99, Max: p99}}},
		}}
	}
	tab := compareTable(cfg, 10, []*side{mk(implGo, 300, 10, 10), mk(implNode, 100, 40, 30)})
	want := map[string]float64{
		"memory per idle connection":                           3,
		"client broadcast, paced: deliveries per server CPU-s": 3,
		"client broadcast, paced: latency p99":                 4,
	}
	if len(tab.rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(tab.rows), len(want), tab.rows)
	}
	for _, r := range tab.rows {
		if r.Ratio != want[r.Name] {
			t.Errorf("%s: ratio %g, want %g", r.Name, r.Ratio, want[r.Name])
		}
	}
	var b strings.Builder
	tab.print(&b)
	if !strings.Contains(b.String(), "3.00") || !strings.Contains(b.String(), "4.00") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestMedian(t *testing.T) {
	d := rowDefs(&config{inflight: 64})[2] // client broadcast, paced: deliveries per server CPU-s
	rs := []*Result{{PerServerCPU: 3}, {PerServerCPU: 1}, {}, {PerServerCPU: 2}}
	if v, ok := median(d, rs); !ok || v != 2 {
		t.Errorf("median %g %v, want 2", v, ok)
	}
	if v, ok := median(d, rs[:2]); !ok || v != 2 {
		t.Errorf("median of two %g %v, want 2", v, ok)
	}
	if _, ok := median(d, []*Result{{}}); ok {
		t.Error("a row with no value has a median")
	}
}

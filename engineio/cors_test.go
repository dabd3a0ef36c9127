package engineio

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCORS(t *testing.T) {
	tests := []struct {
		name   string
		cors   *CORS
		method string
		hdr    http.Header
		status int
		want   map[string]string // header → value ("" = absent)
		vary   []string
	}{
		{
			name: "disabled", cors: nil, method: "GET",
			hdr:    http.Header{"Origin": {"https://a.example"}},
			status: 200,
			want:   map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": ""},
		},
		{
			name: "any origin", cors: &CORS{AllowedOrigins: []string{"*"}}, method: "GET",
			hdr:    http.Header{"Origin": {"https://a.example"}},
			status: 200,
			want:   map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": ""},
		},
		{
			name: "any origin preflight", cors: &CORS{AllowedOrigins: []string{"*"}}, method: "OPTIONS",
			hdr: http.Header{
				"Origin":                         {"https://a.example"},
				"Access-Control-Request-Method":  {"POST"},
				"Access-Control-Request-Headers": {"content-type,x-custom"},
			},
			status: 204,
			want: map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
				"Access-Control-Allow-Headers": "content-type,x-custom",
				"Access-Control-Max-Age":       "",
			},
			vary: []string{"Access-Control-Request-Headers"},
		},
		{
			name: "listed origin echoed", cors: &CORS{AllowedOrigins: []string{"https://a.example", "https://b.example"}},
			method: "GET", hdr: http.Header{"Origin": {"https://b.example"}}, status: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://b.example"},
			vary: []string{"Origin"},
		},
		{
			name: "unlisted origin", cors: &CORS{AllowedOrigins: []string{"https://a.example"}},
			method: "GET", hdr: http.Header{"Origin": {"https://evil.example"}}, status: 200,
			want: map[string]string{"Access-Control-Allow-Origin": ""},
			vary: []string{"Origin"},
		},
		{
			name: "credentials", cors: &CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true, ExposedHeaders: []string{"X-A", "X-B"}},
			method: "GET", hdr: http.Header{"Origin": {"https://a.example"}}, status: 200,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "https://a.example",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "X-A,X-B",
			},
			vary: []string{"Origin"},
		},
		{
			name:   "configured preflight",
			cors:   &CORS{AllowedOrigins: []string{"https://a.example"}, AllowedHeaders: []string{"X-Token", "Content-Type"}, MaxAge: 10 * time.Minute},
			method: "OPTIONS",
			hdr:    http.Header{"Origin": {"https://a.example"}, "Access-Control-Request-Headers": {"x-other"}},
			status: 204,
			want: map[string]string{
				"Access-Control-Allow-Origin":  "https://a.example",
				"Access-Control-Allow-Headers": "X-Token,Content-Type",
				"Access-Control-Max-Age":       "600",
			},
			vary: []string{"Origin"},
		},
		{
			name: "headers on errors too", cors: &CORS{AllowedOrigins: []string{"*"}}, method: "POST",
			hdr: http.Header{"Origin": {"https://a.example"}}, status: 400,
			want: map[string]string{"Access-Control-Allow-Origin": "*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.CORS = tt.cors
			e := newEnv(t, cfg, nil)
			r := e.do(t, tt.method, "EIO=4&transport=polling", "", tt.hdr)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%q)", r.status, tt.status, r.body)
			}
			for k, v := range tt.want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			vary := strings.Split(strings.Join(r.header.Values("Vary"), ","), ",")
			for _, v := range tt.vary {
				if !slices.Contains(vary, v) {
					t.Errorf("Vary = %q, want %q in it", vary, v)
				}
			}
			if tt.status == 204 && r.body != "" {
				t.Errorf("preflight body %q", r.body)
			}
		})
	}
}

func TestCORSPreflightWithSession(t *testing.T) {
	cfg := quietConfig()
	cfg.CORS = &CORS{AllowedOrigins: []string{"*"}}
	e := newEnv(t, cfg, nil)
	sid := e.handshake(t)
	r := e.do(t, "OPTIONS", "EIO=4&transport=polling&sid="+sid, "", http.Header{"Origin": {"https://a.example"}})
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	if r := e.post(t, sid, "4x"); r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("POST: %d %v", r.status, r.header)
	}
}

func TestWebSocketOrigin(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		origin string
		ok     bool
	}{
		{"no CORS, any origin", Config{}, "https://evil.example", true},
		{"CORS any", Config{CORS: &CORS{AllowedOrigins: []string{"*"}}}, "https://evil.example", true},
		{"CORS list, listed", Config{CORS: &CORS{AllowedOrigins: []string{"https://a.example"}}}, "https://a.example", true},
		{"CORS list, unlisted", Config{CORS: &CORS{AllowedOrigins: []string{"https://a.example"}}}, "https://evil.example", false},
		{"CORS list, no origin", Config{CORS: &CORS{AllowedOrigins: []string{"https://a.example"}}}, "", true},
		{"CheckOrigin", Config{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://ok" }}, "https://no", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg, nil)
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			d := *websocketDialer()
			ws, resp, err := d.Dial(e.wsURL("EIO=4&transport=websocket"), hdr)
			if ws != nil {
				defer ws.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("dial err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
}

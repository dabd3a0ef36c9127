package engineio

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// corsMethods is what the npm "cors" package allows by default.
const corsMethods = "GET,HEAD,PUT,PATCH,POST,DELETE"

// applyCORS adds the CORS headers to a polling response, following the npm
// "cors" package as configured by Node's engine.io. It answers an OPTIONS
// preflight itself (204) and then reports true.
func (s *Server) applyCORS(w http.ResponseWriter, r *http.Request) bool {
	cfg := s.cfg.CORS
	h := w.Header()
	origin := r.Header.Get("Origin")
	switch {
	case s.corsAny && !cfg.AllowCredentials:
		h.Set("Access-Control-Allow-Origin", "*")
	case s.corsAny:
		if origin != "" {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		h.Add("Vary", "Origin")
	default:
		if _, ok := s.corsOrigins[origin]; ok && origin != "" {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		h.Add("Vary", "Origin")
	}
	if cfg.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(cfg.ExposedHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(cfg.ExposedHeaders, ","))
	}
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsMethods)
	if len(cfg.AllowedHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(cfg.AllowedHeaders, ","))
	} else {
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if cfg.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.FormatInt(int64(cfg.MaxAge/time.Second), 10))
	}
	writeStatus(w, http.StatusNoContent)
	return true
}

package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// requestInfo is what the layers of a request learn about it for its log
// line and metrics: the route template and the user.
type requestInfo struct {
	route       string
	user        string
	adminAction string // what an admin request does (admin_action in the log)
}

// requestInfoKey is the context key of a request's *requestInfo.
type requestInfoKey struct{}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader implements http.ResponseWriter.
func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// validRequestID reports whether a client's X-Request-Id is safe to echo
// and log: short, printable ASCII.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// observeRequests gives every request an X-Request-Id (the client's, or a
// new one), echoes it, and writes one log line and the HTTP metrics when
// the request is done.
func (a *app) observeRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = randomToken(8, func(b []byte) string { return strconv.FormatUint(beUint64(b), 36) })
		}
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{route: "unmatched"}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
		d := time.Since(start)
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", float64(d.Microseconds()) / 1000, "user", info.user, "request_id", id, "remote", clientIP(r)}
		if info.adminAction != "" {
			attrs = append(attrs, "admin_action", info.adminAction)
		}
		a.log.Info("request", attrs...)
		if a.metrics != nil {
			a.metrics.httpRequests.WithLabelValues(info.route, methodLabel(r.Method), strconv.Itoa(rec.status)).Inc()
			a.metrics.httpDuration.WithLabelValues(info.route).Observe(d.Seconds())
			if info.adminAction != "" {
				a.metrics.adminRequests.WithLabelValues(info.adminAction, strconv.Itoa(rec.status)).Inc()
			}
		}
	})
}

// nameRoute records the matched route's template for observeRequests.
func (a *app) nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					info.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// nameMethodMismatch records, for a request that router answers 405, the
// template of the route whose path it matched: the 405 is counted under
// that route, not as unmatched. (The router runs no middleware for a 405.)
func (a *app) nameMethodMismatch(router *mux.Router, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
				var m mux.RouteMatch
				if route.Match(r, &m) || !errors.Is(m.MatchErr, mux.ErrMethodMismatch) {
					return nil
				}
				if tpl, err := route.GetPathTemplate(); err == nil {
					info.route = tpl
					return errFound
				}
				return nil
			})
		}
		next.ServeHTTP(w, r)
	})
}

// errFound stops a walk of the routes at the one sought.
var errFound = errors.New("found")

// methodLabel is the method as a metrics label: one of the methods the API
// knows, else "other", so that made-up methods cannot mint new series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// noteUser records the authenticated user for the request's log line.
func noteUser(r *http.Request, name string) {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		info.user = name
	}
}

// noteAdminAction records what an admin request does, for its log line and
// the admin metric.
func noteAdminAction(r *http.Request, action string) {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		info.adminAction = action
	}
}

// beUint64 reads 8 bytes as a big-endian integer.
func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// only serves the registry at /metrics and nothing else: the handler of
// the -metrics-addr listener.
func (m *metrics) only() http.Handler {
	h := m.handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/metrics":
			writeJSON(w, http.StatusNotFound, errorBody{Status: "error", Message: "no such endpoint: " + r.URL.Path + "; metrics are at /metrics"})
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Status: "error", Message: "method " + r.Method + " is not allowed on /metrics"})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOpenAPIDocumentsTheOutboundAnswers checks the answers this branch
// added against openapi.yaml: the single-number endpoint's mapped upstream
// failures, the body budget's 503, and the refusal of unknown JSON fields.
func TestOpenAPIDocumentsTheOutboundAnswers(t *testing.T) {
	c := loadOAPIContract(t)
	t.Run("an upstream 401 answered as 502 matches the document", func(t *testing.T) {
		f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 401}))
		s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-restore-max-attempts", "1")
		c.do(t, s.URL, oapiRequest{method: http.MethodGet, path: "/v3/restore/15551230111", user: "alice", key: key, want: 502})
	})
	t.Run("an exhausted upstream 429 answered as 503 with Retry-After matches the document", func(t *testing.T) {
		f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 429, header: map[string]string{"Retry-After": "3"}}))
		s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-restore-max-attempts", "1")
		out := c.do(t, s.URL, oapiRequest{method: http.MethodPost, path: "/v3/restore/15551230111", user: "alice", key: key, want: 503})
		if got := out.Header.Get("Retry-After"); got != "3" {
			t.Fatalf("Retry-After=%q, want 3", got)
		}
	})
	t.Run("an unknown JSON field is refused by the document as by the server", func(t *testing.T) {
		s := startServer(t, "-dev")
		c.do(t, s.URL, oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/json",
			body: []byte(`{"number":["15551230101"]}`), want: 400, invalid: true})
	})
	t.Run("the body budget's 503 matches the document", func(t *testing.T) {
		svc, srv := startServiceWith(t, nil, "-dev", "-max-body", "1MiB", "-max-body-memory", "1MiB", "-rate-limit", "0")
		addr := strings.TrimPrefix(srv.URL, "http://")
		held := startStalledPost(t, addr, 1<<20-1, numbersBody(1<<20))
		waitFor(t, 10*time.Second, "the stalled body to hold the budget", func() bool { return svc.app.bodies.inUse() > 0 })
		out := c.do(t, srv.URL, oapiRequest{method: http.MethodPost, path: "/v3/bulk_restore", contentType: "application/json",
			body: numbersBody(100 << 10), want: 503})
		if out.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After on the 503")
		}
		held.conn.Close()
	})
}

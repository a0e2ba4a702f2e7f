package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstreamHit is one request the fake upstream received.
type upstreamHit struct {
	at       time.Time
	method   string
	path     string
	rawQuery string
	user     string
	pass     string
	hasAuth  bool
	accept   string
}

// upstreamAnswer is what the fake upstream replies to one request.
type upstreamAnswer struct {
	status int
	body   string
	header map[string]string
	// block, when set, makes the handler wait for the client to give up
	// (or for the test to end) instead of answering.
	block bool
	// stallBody sends the status and headers, then waits like block.
	stallBody bool
}

// upstreamFake is a provider's single-number restore endpoint on loopback.
// It keys its hits by the last path segment (the number).
type upstreamFake struct {
	*httptest.Server
	mu      sync.Mutex
	hits    map[string][]upstreamHit
	all     []upstreamHit
	release chan struct{}
	answer  func(number string, n int) upstreamAnswer
}

// newUpstreamFake starts a fake upstream; answer gets the number and the
// 1-based count of requests for it so far. Blocked handlers are released
// before the server closes at cleanup.
func newUpstreamFake(t testing.TB, answer func(number string, n int) upstreamAnswer) *upstreamFake {
	t.Helper()
	f := &upstreamFake{hits: map[string][]upstreamHit{}, release: make(chan struct{}), answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.release)
		f.Server.Close()
	})
	return f
}

// serve answers one restore call as the test scripted it.
func (f *upstreamFake) serve(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	h := upstreamHit{at: time.Now(), method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery,
		user: user, pass: pass, hasAuth: ok, accept: r.Header.Get("Accept")}
	number := path.Base(r.URL.Path)
	f.mu.Lock()
	f.hits[number] = append(f.hits[number], h)
	f.all = append(f.all, h)
	n := len(f.hits[number])
	f.mu.Unlock()
	a := f.answer(number, n)
	if a.block {
		select {
		case <-f.release:
		case <-r.Context().Done():
		}
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	if a.stallBody {
		w.(http.Flusher).Flush()
		select {
		case <-f.release:
		case <-r.Context().Done():
		}
		return
	}
	io.WriteString(w, a.body)
}

// hitsFor returns a copy of the requests made for number.
func (f *upstreamFake) hitsFor(number string) []upstreamHit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upstreamHit(nil), f.hits[number]...)
}

// allHits returns a copy of every request received.
func (f *upstreamFake) allHits() []upstreamHit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upstreamHit(nil), f.all...)
}

// fixedAnswer answers every request the same way.
func fixedAnswer(a upstreamAnswer) func(string, int) upstreamAnswer {
	return func(string, int) upstreamAnswer { return a }
}

// testUpstreamBackend is a backend on the fake with user u, password p.
func testUpstreamBackend(f *upstreamFake, timeout time.Duration) *upstreamBackend {
	return newUpstreamBackend(f.URL+"/v3/restore/{number}", "u", "p", timeout, "bulkrestore-test")
}

// closedPortAddr returns a loopback address nothing listens on.
func closedPortAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUpstreamRestoreSubstitutesTheNumberIntoTheURLTemplate(t *testing.T) {
	cases := []struct {
		name, template, wantPath, wantQuery string
	}{
		{"the number replaces {number} in the path", "/v3/restore/{number}", "/v3/restore/15551230111", ""},
		{"every {number} is replaced, in path and query", "/a/{number}/b?n={number}&x=1", "/a/15551230111/b", "n=15551230111&x=1"},
		{"a template with {number} only in the query works", "/restore?number={number}", "/restore", "number=15551230111"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 200, body: `{}`}))
			b := newUpstreamBackend(f.URL+c.template, "u", "p", 2*time.Second, "bulkrestore-test")
			o := b.Restore(context.Background(), 1, "15551230111")
			if !o.Success {
				t.Fatalf("got=%+v, want success", o)
			}
			hits := f.allHits()
			if len(hits) != 1 {
				t.Fatalf("got=%d requests, want 1", len(hits))
			}
			if hits[0].path != c.wantPath || hits[0].rawQuery != c.wantQuery {
				t.Fatalf("got=%s?%s, want %s?%s", hits[0].path, hits[0].rawQuery, c.wantPath, c.wantQuery)
			}
		})
	}
}

func TestUpstreamRestoreSendsBasicAuthAndAcceptJSON(t *testing.T) {
	cases := []struct {
		name, user, pass string
	}{
		{"the configured user and password are sent as Basic auth", "u", "p"},
		{"a password with a colon and spaces arrives intact", "reseller-7", "s3cr:et pass"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 200, body: `{}`}))
			b := newUpstreamBackend(f.URL+"/v3/restore/{number}", c.user, c.pass, 2*time.Second, "bulkrestore-test")
			if o := b.Restore(context.Background(), 1, "15551230111"); !o.Success {
				t.Fatalf("got=%+v, want success", o)
			}
			h := f.hitsFor("15551230111")
			if len(h) != 1 {
				t.Fatalf("got=%d requests, want 1", len(h))
			}
			if !h[0].hasAuth || h[0].user != c.user || h[0].pass != c.pass {
				t.Fatalf("got=auth %v %q:%q, want %q:%q", h[0].hasAuth, h[0].user, h[0].pass, c.user, c.pass)
			}
			if h[0].accept != "application/json" {
				t.Fatalf("got=Accept %q, want application/json", h[0].accept)
			}
		})
	}
}

func TestUpstreamRestoreSuccessMessageAndFlags(t *testing.T) {
	cases := []struct {
		name         string
		status       int
		body         string
		wantMessage  string
		wantIdentity bool
		wantRegister bool
	}{
		{"an empty 200 is success with the default message", 200, ``, "Number restored", false, false},
		{"an empty JSON object is success with the default message", 200, `{}`, "Number restored", false, false},
		{"a 204 with no body is success", 204, ``, "Number restored", false, false},
		{"a 201 is success too", 201, `{"message":"Created"}`, "Created", false, false},
		{"the body's message is used when present", 200, `{"message":"Number already active"}`, "Number already active", false, false},
		{"an empty message falls back to the default", 200, `{"message":""}`, "Number restored", false, false},
		{"flags given as 1 are set", 200, `{"requires_identity_update":1,"needs_registration":1}`, "Number restored", true, true},
		{"flags given as 0 are clear", 200, `{"requires_identity_update":0,"needs_registration":0}`, "Number restored", false, false},
		{"flags given as true/false are read", 200, `{"requires_identity_update":true,"needs_registration":false}`, "Number restored", true, false},
		{"flags given as false/true are read", 200, `{"requires_identity_update":false,"needs_registration":true}`, "Number restored", false, true},
		{"flags given as \"1\" strings are set", 200, `{"requires_identity_update":"1","needs_registration":"1"}`, "Number restored", true, true},
		{"flags given as \"0\" strings are clear", 200, `{"requires_identity_update":"0","needs_registration":"0"}`, "Number restored", false, false},
		{"null flags are clear", 200, `{"requires_identity_update":null,"needs_registration":null}`, "Number restored", false, false},
		{"unknown fields are ignored", 200, `{"message":"ok","extra":{"a":[1,2]},"requires_identity_update":1}`, "ok", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: c.status, body: c.body,
				header: map[string]string{"Content-Type": "application/json"}}))
			o := testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
			if !o.Success || o.status() != "success" {
				t.Fatalf("got=%+v, want success", o)
			}
			if o.StatusCode < 200 || o.StatusCode > 299 {
				t.Fatalf("got=status_code %d, want a 2xx", o.StatusCode)
			}
			if o.Message != c.wantMessage {
				t.Fatalf("got=%q, want %q", o.Message, c.wantMessage)
			}
			if o.RequiresIdentityUpdate != c.wantIdentity || o.NeedsRegistration != c.wantRegister {
				t.Fatalf("got=identity %v registration %v, want %v %v", o.RequiresIdentityUpdate, o.NeedsRegistration, c.wantIdentity, c.wantRegister)
			}
			if o.Transient {
				t.Fatalf("got=transient success, want not transient")
			}
		})
	}
}

func TestUpstreamRestoreFailures(t *testing.T) {
	cases := []struct {
		name          string
		status        int
		body          string
		wantMessage   string
		wantTransient bool
	}{
		{"a 404 with a message fails with that message", 404, `{"message":"Number not found"}`, "Number not found", false},
		{"a 400 with an error fails with that error", 400, `{"error":"bad number"}`, "bad number", false},
		{"message wins over error", 409, `{"message":"taken","error":"conflict"}`, "taken", false},
		{"an empty message falls back to error", 409, `{"message":"","error":"conflict"}`, "conflict", false},
		{"a 410 with no body reads HTTP 410", 410, ``, "Error: 'HTTP 410'", false},
		{"a 500 with a non-JSON body reads HTTP 500", 500, `<html>oops</html>`, "Error: 'HTTP 500'", false},
		{"a 408 is transient", 408, ``, "Error: 'HTTP 408'", true},
		{"a 429 is transient and keeps its message", 429, `{"message":"slow down"}`, "slow down", true},
		{"a 502 is transient", 502, `{"error":"bad gateway"}`, "bad gateway", true},
		{"a 503 is transient", 503, ``, "Error: 'HTTP 503'", true},
		{"a 504 is transient", 504, `{}`, "Error: 'HTTP 504'", true},
		{"a 401 from the upstream is final", 401, `{"message":"bad credentials"}`, "bad credentials", false},
		{"a 403 is final", 403, ``, "Error: 'HTTP 403'", false},
		{"a 501 is final", 501, ``, "Error: 'HTTP 501'", false},
		{"a 422 is final", 422, `{"error":"unprocessable"}`, "unprocessable", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: c.status, body: c.body}))
			o := testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
			if o.Success || o.status() != "failed" {
				t.Fatalf("got=%+v, want failed", o)
			}
			if o.StatusCode != c.status {
				t.Fatalf("got=status_code %d, want %d", o.StatusCode, c.status)
			}
			if o.Message != c.wantMessage {
				t.Fatalf("got=%q, want %q", o.Message, c.wantMessage)
			}
			if o.Transient != c.wantTransient {
				t.Fatalf("got=transient %v, want %v", o.Transient, c.wantTransient)
			}
		})
	}
}

func TestUpstreamRestoreTimeoutIsTransient504(t *testing.T) {
	cases := []struct {
		name   string
		answer upstreamAnswer
	}{
		{"an upstream that never answers times out as a transient 504", upstreamAnswer{block: true}},
		{"an upstream that sends headers then stalls the body times out as a transient 504", upstreamAnswer{status: 200, stallBody: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(c.answer))
			timeout := 100 * time.Millisecond
			start := time.Now()
			o := testUpstreamBackend(f, timeout).Restore(context.Background(), 1, "15551230111")
			elapsed := time.Since(start)
			if o.Success || o.StatusCode != http.StatusGatewayTimeout || !o.Transient {
				t.Fatalf("got=%+v, want failed transient 504", o)
			}
			if o.Message == "" {
				t.Fatalf("got=empty message, want a reason")
			}
			if elapsed < timeout || elapsed > 5*time.Second {
				t.Fatalf("got=elapsed %s, want between %s and 5s", elapsed, timeout)
			}
		})
	}
}

func TestUpstreamRestoreNetworkErrorIsTransient502(t *testing.T) {
	t.Run("a closed port fails as a transient 502", func(t *testing.T) {
		addr := closedPortAddr(t)
		b := newUpstreamBackend("http://"+addr+"/v3/restore/{number}", "u", "p", 2*time.Second, "bulkrestore-test")
		start := time.Now()
		o := b.Restore(context.Background(), 1, "15551230111")
		if o.Success || o.StatusCode != http.StatusBadGateway || !o.Transient {
			t.Fatalf("got=%+v, want failed transient 502", o)
		}
		if o.Message == "" {
			t.Fatalf("got=empty message, want a reason")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("got=elapsed %s, want a prompt failure", d)
		}
	})
	t.Run("a connection closed without an answer fails as a transient 502", func(t *testing.T) {
		f := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		defer f.Close()
		b := newUpstreamBackend(f.URL+"/v3/restore/{number}", "u", "p", 2*time.Second, "bulkrestore-test")
		o := b.Restore(context.Background(), 1, "15551230111")
		if o.Success || o.StatusCode != http.StatusBadGateway || !o.Transient {
			t.Fatalf("got=%+v, want failed transient 502", o)
		}
	})
}

func TestUpstreamRestoreRetryAfterIsParsed(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		header   func() string
		min, max time.Duration
	}{
		{"Retry-After in seconds is read", 503, func() string { return "3" }, 3 * time.Second, 3 * time.Second},
		{"Retry-After zero means no wait", 429, func() string { return "0" }, 0, 0},
		{"Retry-After as an HTTP date is the time until then", 429,
			func() string { return time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat) }, 8 * time.Second, 10 * time.Second},
		{"Retry-After as a date in the past means no wait", 503,
			func() string { return time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat) }, 0, 0},
		{"a garbage Retry-After means no wait", 503, func() string { return "soon" }, 0, 0},
		{"no Retry-After means no wait", 503, func() string { return "" }, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			header := map[string]string{}
			if v := c.header(); v != "" {
				header["Retry-After"] = v
			}
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: c.status, header: header}))
			o := testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
			if o.StatusCode != c.status || !o.Transient {
				t.Fatalf("got=%+v, want transient %d", o, c.status)
			}
			if o.RetryAfter < c.min || o.RetryAfter > c.max {
				t.Fatalf("got=%s, want within [%s, %s]", o.RetryAfter, c.min, c.max)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 10, 28, 12, 31, 45, 0, time.UTC)
	cases := []struct {
		name, value string
		want        time.Duration
	}{
		{"an empty header is no wait", "", 0},
		{"seconds are read", "120", 2 * time.Minute},
		{"seconds with blanks around are read", " 7 ", 7 * time.Second},
		{"zero seconds is no wait", "0", 0},
		{"negative seconds are no wait", "-5", 0},
		{"an IMF-fixdate in the future is the time until then", "Tue, 28 Oct 2025 12:32:45 GMT", time.Minute},
		{"an RFC 850 date is read", "Tuesday, 28-Oct-25 12:31:55 GMT", 10 * time.Second},
		{"an ANSI C date is read", "Tue Oct 28 12:33:45 2025", 2 * time.Minute},
		{"a date equal to now is no wait", "Tue, 28 Oct 2025 12:31:45 GMT", 0},
		{"a date in the past is no wait", "Tue, 28 Oct 2025 11:31:45 GMT", 0},
		{"garbage is no wait", "in a while", 0},
		{"a fractional number is no wait", "1.5", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := parseRetryAfter(c.value, now); got != c.want {
				t.Fatalf("got=%v, want %v", got, c.want)
			}
		})
	}
}

func TestUpstreamRestoreUnreadableSuccessBodies(t *testing.T) {
	big := `{"message":"ok","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name string
		body string
	}{
		{"a 200 with HTML fails instead of succeeding", `<html><body>OK</body></html>`},
		{"a 200 with truncated JSON fails", `{"message":"Number rest`},
		{"a 200 with a JSON array fails", `[1,2,3]`},
		{"a 200 with a JSON string fails", `"restored"`},
		{"a 200 with a body over 64 KiB fails", big},
		{"a 200 with a small object padded past 64 KiB with blanks fails", `{"message":"ok"}` + strings.Repeat(" ", 70<<10)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 200, body: c.body}))
			var o Outcome
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("got=panic %v, want a failed outcome", p)
					}
				}()
				o = testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
			}()
			if o.Success {
				t.Fatalf("got=%+v, want failed", o)
			}
			if o.StatusCode < 400 || o.StatusCode > 599 {
				t.Fatalf("got=status_code %d, want an error code", o.StatusCode)
			}
			if o.Message == "" || o.Message == msgRestored || len(o.Message) > 500 {
				t.Fatalf("got=message %q, want a short reason", o.Message)
			}
			if !strings.Contains(strings.ToLower(o.Message), "upstream") {
				t.Fatalf("got=message %q, want it to say the upstream answer was the problem", o.Message)
			}
		})
	}
	t.Run("a failure with a body over 64 KiB keeps its status and a short message", func(t *testing.T) {
		f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 503, body: big}))
		o := testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
		if o.Success || o.StatusCode != 503 || !o.Transient {
			t.Fatalf("got=%+v, want failed transient 503", o)
		}
		if len(o.Message) > 500 {
			t.Fatalf("got=message of %d bytes, want a short one", len(o.Message))
		}
	})
	t.Run("a body of exactly 64 KiB is still read", func(t *testing.T) {
		prefix := `{"message":"fits","pad":"`
		body := prefix + strings.Repeat("y", maxResponseRead-len(prefix)-2) + `"}`
		if len(body) != 64<<10 {
			t.Fatalf("got=body of %d bytes, want %d", len(body), 64<<10)
		}
		f := newUpstreamFake(t, fixedAnswer(upstreamAnswer{status: 200, body: body}))
		o := testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
		if !o.Success || o.Message != "fits" {
			t.Fatalf("got=%v %q, want success \"fits\"", o.Success, o.Message)
		}
	})
}

func TestUpstreamRestoreDoesNotFollowRedirects(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run("a "+itoa(code)+" is a final failure and its target is never called", func(t *testing.T) {
			f := newUpstreamFake(t, func(number string, n int) upstreamAnswer {
				if number == "elsewhere" {
					return upstreamAnswer{status: 200, body: `{"message":"followed"}`}
				}
				return upstreamAnswer{status: code, header: map[string]string{"Location": "/elsewhere"}}
			})
			o := testUpstreamBackend(f, 2*time.Second).Restore(context.Background(), 1, "15551230111")
			if got := len(f.hitsFor("elsewhere")); got != 0 {
				t.Fatalf("got=%d requests to the redirect target, want 0", got)
			}
			if o.Success || o.StatusCode != code || o.Transient {
				t.Fatalf("got=%+v, want final failure with status_code %d", o, code)
			}
			if want := "Error: 'HTTP " + itoa(code) + "'"; o.Message != want {
				t.Fatalf("got=%q, want %q", o.Message, want)
			}
		})
	}
}

func TestUpstreamRestoreIsSafeConcurrently(t *testing.T) {
	f := newUpstreamFake(t, func(number string, n int) upstreamAnswer {
		return upstreamAnswer{status: 200, body: `{"message":"restored ` + number + `"}`}
	})
	b := testUpstreamBackend(f, 2*time.Second)
	numbers := seqNumbers(15551230100, 50)
	got := make([]Outcome, len(numbers))
	var wg sync.WaitGroup
	for i, n := range numbers {
		wg.Go(func() { got[i] = b.Restore(context.Background(), 1, n) })
	}
	wg.Wait()
	for i, o := range got {
		if !o.Success || o.Message != "restored "+numbers[i] {
			t.Fatalf("got=%+v, want success for %s", o, numbers[i])
		}
	}
}

func TestCheckUpstreamURL(t *testing.T) {
	cases := []struct {
		name, template string
		wantErr        bool
	}{
		{"an https URL with {number} in the path is accepted", "https://api.multitel.net/v3/restore/{number}", false},
		{"an http URL with a port is accepted", "http://127.0.0.1:8081/v3/restore/{number}", false},
		{"{number} in the query is accepted", "https://api.example.com/restore?number={number}", false},
		{"a URL without {number} is refused", "https://api.multitel.net/v3/restore/", true},
		{"an empty URL is refused", "", true},
		{"a relative URL is refused", "/v3/restore/{number}", true},
		{"a URL without a scheme is refused", "api.multitel.net/v3/restore/{number}", true},
		{"an ftp URL is refused", "ftp://api.multitel.net/{number}", true},
		{"a URL without a host is refused", "http:///v3/restore/{number}", true},
		{"a misspelled placeholder is refused", "https://api.multitel.net/v3/restore/{numbr}", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkUpstreamURL(c.template)
			if (err != nil) != c.wantErr {
				t.Fatalf("got=%v, want error %v", err, c.wantErr)
			}
		})
	}
}

func TestServeFlagsForTheUpstreamBackend(t *testing.T) {
	env := map[string]string{"BULKRESTORE_UPSTREAM_USER": "u", "BULKRESTORE_UPSTREAM_PASSWORD": "p"}
	t.Run("the upstream backend without -upstream-url is refused", func(t *testing.T) {
		if _, err := parseServeFlags([]string{"-backend", "upstream"}, mapEnv(env), io.Discard); err == nil {
			t.Fatalf("got=nil, want an error")
		}
	})
	t.Run("an -upstream-url without {number} is refused", func(t *testing.T) {
		_, err := parseServeFlags([]string{"-backend", "upstream", "-upstream-url", "http://127.0.0.1:1/restore"}, mapEnv(env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "{number}") {
			t.Fatalf("got=%v, want an error naming {number}", err)
		}
	})
	t.Run("credentials come from the environment", func(t *testing.T) {
		cfg, err := parseServeFlags([]string{"-backend", "upstream", "-upstream-url", "http://127.0.0.1:1/r/{number}"}, mapEnv(env), io.Discard)
		if err != nil {
			t.Fatalf("got=%v, want nil", err)
		}
		if cfg.upstreamUser != "u" || cfg.upstreamPassword != "p" {
			t.Fatalf("got=%q:%q, want u:p", cfg.upstreamUser, cfg.upstreamPassword)
		}
	})
	t.Run("retry settings are read from the flags", func(t *testing.T) {
		cfg, err := parseServeFlags([]string{"-backend", "upstream", "-upstream-url", "http://127.0.0.1:1/r/{number}",
			"-restore-timeout", "150ms", "-restore-max-attempts", "5", "-restore-retry-base", "10ms"}, mapEnv(env), io.Discard)
		if err != nil {
			t.Fatalf("got=%v, want nil", err)
		}
		if cfg.restoreTimeout != 150*time.Millisecond || cfg.restoreMaxAttempts != 5 || cfg.restoreRetryBase != 10*time.Millisecond {
			t.Fatalf("got=%s %d %s, want 150ms 5 10ms", cfg.restoreTimeout, cfg.restoreMaxAttempts, cfg.restoreRetryBase)
		}
	})
	t.Run("-restore-max-attempts 0 is refused", func(t *testing.T) {
		_, err := parseServeFlags([]string{"-backend", "upstream", "-upstream-url", "http://127.0.0.1:1/r/{number}",
			"-restore-max-attempts", "0"}, mapEnv(env), io.Discard)
		if err == nil {
			t.Fatalf("got=nil, want an error")
		}
	})
}

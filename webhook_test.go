package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// whRequest is one request a test receiver got.
type whRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// whReceiver is a webhook receiver on loopback that records every request
// and answers with a status the test can change at any time.
type whReceiver struct {
	srv    *httptest.Server
	URL    string // where to point webhook_url
	status atomic.Int32
	delay  atomic.Int64 // nanoseconds to wait before answering
	mu     sync.Mutex
	reqs   []whRequest
}

// newWHReceiver starts a receiver answering status, closed at cleanup.
func newWHReceiver(t testing.TB, status int) *whReceiver {
	t.Helper()
	h := &whReceiver{}
	h.status.Store(int32(status))
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if d := time.Duration(h.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, whRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		h.mu.Unlock()
		w.WriteHeader(int(h.status.Load()))
	}))
	h.URL = h.srv.URL + "/hook"
	t.Cleanup(h.srv.Close)
	return h
}

// setStatus changes what the receiver answers from now on.
func (h *whReceiver) setStatus(code int) { h.status.Store(int32(code)) }

// count is how many requests arrived so far.
func (h *whReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reqs)
}

// requests returns a copy of what arrived so far.
func (h *whReceiver) requests() []whRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]whRequest(nil), h.reqs...)
}

// whSecret returns a Standard Webhooks secret: whsec_ + base64 key.
func whSecret(t testing.TB) string {
	t.Helper()
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// whVerify checks a request's signature the way a receiver
// following the Standard Webhooks spec does: HMAC-SHA256 keyed with the
// base64-decoded part of the secret after "whsec_", over
// "<webhook-id>.<webhook-timestamp>.<body>", compared with each
// space-separated "v1,<base64>" entry of webhook-signature.
func whVerify(secret string, h http.Header, body []byte) error {
	enc, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return fmt.Errorf("secret %q does not start with whsec_", secret)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return fmt.Errorf("secret is not base64: %v", err)
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id=%q timestamp=%q signature=%q", id, ts, sigs)
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return fmt.Errorf("webhook-timestamp %q is not integer seconds", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			return fmt.Errorf("signature entry %q is not v1,<base64>", entry)
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return fmt.Errorf("signature entry %q is not base64: %v", entry, err)
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no entry of %q matches", sigs)
}

func TestAddressAllowed(t *testing.T) {
	cases := []struct {
		name    string
		ip      string
		allowed bool
	}{
		{"loopback 127.0.0.1 is refused", "127.0.0.1", false},
		{"loopback 127.9.9.9 is refused", "127.9.9.9", false},
		{"loopback ::1 is refused", "::1", false},
		{"RFC 1918 10.0.0.1 is refused", "10.0.0.1", false},
		{"RFC 1918 10.255.255.255 is refused", "10.255.255.255", false},
		{"RFC 1918 172.16.0.1 is refused", "172.16.0.1", false},
		{"RFC 1918 172.31.255.254 is refused", "172.31.255.254", false},
		{"RFC 1918 192.168.1.1 is refused", "192.168.1.1", false},
		{"CGNAT 100.64.0.1 is refused", "100.64.0.1", false},
		{"CGNAT 100.127.255.254 is refused", "100.127.255.254", false},
		{"link-local 169.254.1.1 is refused", "169.254.1.1", false},
		{"cloud metadata 169.254.169.254 is refused", "169.254.169.254", false},
		{"link-local fe80::1 is refused", "fe80::1", false},
		{"multicast 224.0.0.1 is refused", "224.0.0.1", false},
		{"multicast 239.255.255.250 is refused", "239.255.255.250", false},
		{"multicast ff02::1 is refused", "ff02::1", false},
		{"multicast ff0e::1 is refused", "ff0e::1", false},
		{"unspecified 0.0.0.0 is refused", "0.0.0.0", false},
		{"unspecified :: is refused", "::", false},
		{"ULA fc00::1 is refused", "fc00::1", false},
		{"ULA fd12:3456::1 is refused", "fd12:3456::1", false},
		{"IPv4-mapped loopback ::ffff:127.0.0.1 is refused", "::ffff:127.0.0.1", false},
		{"IPv4-mapped private ::ffff:10.0.0.1 is refused", "::ffff:10.0.0.1", false},
		{"IPv4-mapped metadata ::ffff:169.254.169.254 is refused", "::ffff:169.254.169.254", false},
		{"broadcast 255.255.255.255 is refused", "255.255.255.255", false},
		{"IPv4-mapped CGNAT ::ffff:100.64.0.1 is refused", "::ffff:100.64.0.1", false},
		{"public 8.8.8.8 is allowed", "8.8.8.8", true},
		{"public 1.1.1.1 is allowed", "1.1.1.1", true},
		{"public 2606:4700::1111 is allowed", "2606:4700::1111", true},
		{"IPv4-mapped public ::ffff:8.8.8.8 is allowed", "::ffff:8.8.8.8", true},
		{"172.15.255.255 just below 172.16/12 is allowed", "172.15.255.255", true},
		{"172.32.0.1 just above 172.16/12 is allowed", "172.32.0.1", true},
		{"100.63.255.255 just below CGNAT is allowed", "100.63.255.255", true},
		{"100.128.0.1 just above CGNAT is allowed", "100.128.0.1", true},
		{"192.169.0.1 next to 192.168/16 is allowed", "192.169.0.1", true},
		{"11.0.0.1 next to 10/8 is allowed", "11.0.0.1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ip := netip.MustParseAddr(c.ip)
			if got := addressAllowed(ip); got != c.allowed {
				t.Fatalf("addressAllowed(%s) = %v, want %v", c.ip, got, c.allowed)
			}
		})
	}
}

func TestCheckWebhookURL(t *testing.T) {
	cases := []struct {
		name         string
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"an https URL with a path is accepted", "https://client.example.com/restore-hook", false, true},
		{"an http URL with port and query is accepted", "http://client.example.com:8080/hook?x=1", false, true},
		{"a public literal IPv4 is accepted", "http://8.8.8.8/hook", false, true},
		{"a public literal IPv6 is accepted", "http://[2606:4700::1111]/hook", false, true},
		{"localhost is accepted at submit (it is checked when dialled)", "http://localhost:9/hook", false, true},
		{"a URL of exactly 2048 characters is accepted", "https://example.com/" + strings.Repeat("a", 2048-len("https://example.com/")), false, true},
		{"a URL of 2049 characters is rejected", "https://example.com/" + strings.Repeat("a", 2049-len("https://example.com/")), false, false},
		{"an ftp URL is rejected", "ftp://example.com/hook", false, false},
		{"a relative URL is rejected", "/hook", false, false},
		{"a URL without scheme is rejected", "example.com/hook", false, false},
		{"a URL without host is rejected", "http:///hook", false, false},
		{"a bare scheme is rejected", "https://", false, false},
		{"a URL with credentials is rejected", "https://user:pass@example.com/hook", false, false},
		{"an empty port-only host is rejected", "http://:8080/hook", false, false},
		{"a non-numeric port is rejected", "http://example.com:abc/hook", false, false},
		{"literal loopback 127.0.0.1 is rejected", "http://127.0.0.1:8080/hook", false, false},
		{"literal loopback [::1] is rejected", "http://[::1]:8080/hook", false, false},
		{"literal IPv4-mapped loopback is rejected", "http://[::ffff:127.0.0.1]/hook", false, false},
		{"literal RFC 1918 10.0.0.1 is rejected", "http://10.0.0.1/hook", false, false},
		{"literal 192.168.1.1 is rejected", "https://192.168.1.1/hook", false, false},
		{"literal CGNAT 100.64.0.1 is rejected", "http://100.64.0.1/hook", false, false},
		{"literal metadata address is rejected", "http://169.254.169.254/latest/meta-data", false, false},
		{"literal unspecified 0.0.0.0 is rejected", "http://0.0.0.0/hook", false, false},
		{"literal ULA is rejected", "http://[fd00::1]/hook", false, false},
		{"literal loopback is accepted when private webhooks are allowed", "http://127.0.0.1:8080/hook", true, true},
		{"literal 10.0.0.1 is accepted when private webhooks are allowed", "http://10.0.0.1/hook", true, true},
		{"a bad scheme is rejected even when private webhooks are allowed", "ftp://127.0.0.1/hook", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkWebhookURL(c.url, c.allowPrivate)
			if c.ok && err != nil {
				t.Fatalf("checkWebhookURL(%.80q, %v) = %v, want accepted", c.url, c.allowPrivate, err)
			}
			if !c.ok {
				if err == nil {
					t.Fatalf("checkWebhookURL(%.80q, %v) accepted it, want an error", c.url, c.allowPrivate)
				}
				if !strings.Contains(err.Error(), "webhook_url") {
					t.Fatalf("error %q does not name the field webhook_url", err)
				}
			}
		})
	}
}

// whClosedPort returns a loopback port nothing listens on.
func whClosedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// whStatusServer answers every request with code; a 3xx points at /elsewhere,
// and hits on /elsewhere are counted.
func whStatusServer(t testing.TB, code int, elsewhere *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/elsewhere" {
			elsewhere.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

func TestDelivererFailuresUseCurlWording(t *testing.T) {
	cases := []struct {
		name         string
		allowPrivate bool
		target       func(t *testing.T, hits *atomic.Int32) (url, wantErr string)
		wantStatus   int
		final        bool
	}{
		{name: "a closed port reads as connection refused", allowPrivate: true,
			target: func(t *testing.T, _ *atomic.Int32) (string, string) {
				p := whClosedPort(t)
				return fmt.Sprintf("http://127.0.0.1:%d/hook", p), fmt.Sprintf("Failed to connect to 127.0.0.1 port %d: Connection refused", p)
			}},
		{name: "an unknown host reads as could not resolve host", allowPrivate: true,
			target: func(t *testing.T, _ *atomic.Int32) (string, string) {
				return "http://nonexistent.invalid/hook", "Could not resolve host: nonexistent.invalid"
			}},
		{name: "an unknown host with a port names only the host", allowPrivate: true,
			target: func(t *testing.T, _ *atomic.Int32) (string, string) {
				return "https://nonexistent.invalid:8443/hook", "Could not resolve host: nonexistent.invalid"
			}},
		{name: "HTTP 500 is a failure", allowPrivate: true, wantStatus: 500,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 500, h), "HTTP 500 from webhook"
			}},
		{name: "HTTP 503 is a failure", allowPrivate: true, wantStatus: 503,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 503, h), "HTTP 503 from webhook"
			}},
		{name: "HTTP 404 is a failure", allowPrivate: true, wantStatus: 404,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 404, h), "HTTP 404 from webhook"
			}},
		{name: "a 302 redirect is not followed", allowPrivate: true, wantStatus: 302,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 302, h), "HTTP 302 from webhook"
			}},
		{name: "a 307 redirect is not followed", allowPrivate: true, wantStatus: 307,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 307, h), "HTTP 307 from webhook"
			}},
		{name: "a 301 redirect is not followed", allowPrivate: true, wantStatus: 301,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 301, h), "HTTP 301 from webhook"
			}},
		{name: "loopback is refused when private webhooks are not allowed", allowPrivate: false, final: true,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				return whStatusServer(t, 200, h), "Webhook address not allowed: 127.0.0.1"
			}},
		{name: "a closed IPv6 loopback port reads as connection refused to ::1", allowPrivate: true,
			target: func(t *testing.T, _ *atomic.Int32) (string, string) {
				ln, err := net.Listen("tcp", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				p := ln.Addr().(*net.TCPAddr).Port
				ln.Close()
				return fmt.Sprintf("http://[::1]:%d/hook", p), fmt.Sprintf("Failed to connect to ::1 port %d: Connection refused", p)
			}},
		{name: "IPv6 loopback is refused when private webhooks are not allowed", allowPrivate: false, final: true,
			target: func(t *testing.T, _ *atomic.Int32) (string, string) {
				return fmt.Sprintf("http://[::1]:%d/hook", whClosedPort(t)), "Webhook address not allowed: ::1"
			}},
		{name: "a host name resolving to loopback is refused at dial time", allowPrivate: false, final: true,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				u := strings.Replace(whStatusServer(t, 200, h), "127.0.0.1", "localhost", 1)
				return u, "Webhook address not allowed: 127.0.0.1"
			}},
		{name: "an IPv4-mapped loopback literal is refused as plain 127.0.0.1", allowPrivate: false, final: true,
			target: func(t *testing.T, h *atomic.Int32) (string, string) {
				u := strings.Replace(whStatusServer(t, 200, h), "127.0.0.1", "[::ffff:127.0.0.1]", 1)
				return u, "Webhook address not allowed: 127.0.0.1"
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int32
			target, wantErr := c.target(t, &hits)
			d := newDeliverer(5*time.Second, c.allowPrivate, "bulkrestore/test")
			res := d.deliver(context.Background(), target, "msg_test", []string{whSecret(t)}, []byte(`{"a":1}`))
			viaV6 := strings.Contains(target, "localhost") && res.Err == "Webhook address not allowed: ::1"
			if res.Err != wantErr && !viaV6 {
				t.Fatalf("Err = %q, want %q", res.Err, wantErr)
			}
			if res.ok() {
				t.Fatalf("ok() = true for a failure")
			}
			if res.HTTPStatus != c.wantStatus {
				t.Fatalf("HTTPStatus = %d, want %d", res.HTTPStatus, c.wantStatus)
			}
			if res.Final != c.final {
				t.Fatalf("Final = %v, want %v", res.Final, c.final)
			}
			if n := hits.Load(); n != 0 {
				t.Fatalf("the redirect target was called %d times; redirects must not be followed", n)
			}
		})
	}
}

func TestDelivererTimesOutASilentReceiver(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select { // accept and never answer, until the client gives up or the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close, which waits for handlers

	d := newDeliverer(200*time.Millisecond, true, "bulkrestore/test")
	start := time.Now()
	got := make(chan deliveryResult, 1)
	go func() { got <- d.deliver(context.Background(), srv.URL+"/hook", "msg_timeout", nil, []byte(`{}`)) }()
	var res deliveryResult
	select {
	case res = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("deliver did not return within 10s with a 200ms timeout")
	}
	elapsed := time.Since(start)
	m := regexp.MustCompile(`^Operation timed out after (\d+) milliseconds$`).FindStringSubmatch(res.Err)
	if m == nil {
		t.Fatalf("Err = %q, want Operation timed out after <n> milliseconds", res.Err)
	}
	n, _ := strconv.Atoi(m[1])
	if n < 200 || n > 5000 {
		t.Fatalf("reported %d ms for a 200ms timeout", n)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("deliver took %s with a 200ms timeout", elapsed)
	}
	if res.Final || res.HTTPStatus != 0 {
		t.Fatalf("Final=%v HTTPStatus=%d, want a retryable failure without status", res.Final, res.HTTPStatus)
	}
	if res.Duration < 200*time.Millisecond {
		t.Fatalf("Duration = %s, want at least the timeout", res.Duration)
	}
	if arrived.Load() != 1 {
		t.Fatalf("receiver saw %d requests, want 1", arrived.Load())
	}
}

func TestDelivererTreatsAHangUpAsARetryableFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept, read the request, hang up without a word
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 4096))
			c.Close()
		}
	}()
	d := newDeliverer(5*time.Second, true, "bulkrestore/test")
	res := d.deliver(context.Background(), "http://"+ln.Addr().String()+"/hook", "msg_hangup", nil, []byte(`{}`))
	if res.ok() || res.Err == "" {
		t.Fatalf("a hang-up counted as success")
	}
	if res.Final || res.HTTPStatus != 0 {
		t.Fatalf("Final=%v HTTPStatus=%d, want a retryable failure without status (Err %q)", res.Final, res.HTTPStatus, res.Err)
	}
	t.Logf("a hang-up reads %q", res.Err)
}

func TestDelivererTreatsEvery2xxAsSuccess(t *testing.T) {
	for _, code := range []int{200, 201, 202, 204, 299} {
		t.Run("HTTP "+strconv.Itoa(code)+" is success", func(t *testing.T) {
			h := newWHReceiver(t, code)
			d := newDeliverer(5*time.Second, true, "bulkrestore/test")
			res := d.deliver(context.Background(), h.URL, "msg_ok", nil, []byte(`{}`))
			if !res.ok() || res.Err != "" {
				t.Fatalf("Err = %q, want success", res.Err)
			}
			if res.HTTPStatus != code {
				t.Fatalf("HTTPStatus = %d, want %d", res.HTTPStatus, code)
			}
			if h.count() != 1 {
				t.Fatalf("receiver saw %d requests, want 1", h.count())
			}
		})
	}
}

func TestDelivererSendsASignedJSONPost(t *testing.T) {
	h := newWHReceiver(t, http.StatusOK)
	current, previous := whSecret(t), whSecret(t)
	body := []byte(`{"job_uuid":"8f6c1f0e-23d2-4717-8c8e-1a518e5738f0","status":"completed","results":[]}` + "\n")
	d := newDeliverer(5*time.Second, true, userAgent())
	before := time.Now()
	res := d.deliver(context.Background(), h.URL, "msg_8f6c1f0e", []string{current, previous}, body)
	if !res.ok() {
		t.Fatalf("delivery failed: %s", res.Err)
	}
	reqs := h.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver saw %d requests, want 1", len(reqs))
	}
	got := reqs[0]

	t.Run("it is a POST of the body unchanged", func(t *testing.T) {
		if got.Method != http.MethodPost || got.Path != "/hook" {
			t.Fatalf("%s %s, want POST /hook", got.Method, got.Path)
		}
		if string(got.Body) != string(body) {
			t.Fatalf("body %q, want %q", got.Body, body)
		}
	})
	t.Run("Content-Type is application/json", func(t *testing.T) {
		if ct := got.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
	})
	t.Run("User-Agent names bulkrestore and its version", func(t *testing.T) {
		ua := got.Header.Get("User-Agent")
		if !strings.Contains(ua, "bulkrestore") || !strings.Contains(ua, version) {
			t.Fatalf("User-Agent %q does not name bulkrestore and version %q", ua, version)
		}
	})
	t.Run("webhook-id is the message id", func(t *testing.T) {
		if id := got.Header.Get("webhook-id"); id != "msg_8f6c1f0e" {
			t.Fatalf("webhook-id %q", id)
		}
	})
	t.Run("webhook-timestamp is the current time in seconds", func(t *testing.T) {
		ts, err := strconv.ParseInt(got.Header.Get("webhook-timestamp"), 10, 64)
		if err != nil {
			t.Fatalf("webhook-timestamp %q: %v", got.Header.Get("webhook-timestamp"), err)
		}
		if ts < before.Unix()-1 || ts > time.Now().Unix()+1 {
			t.Fatalf("webhook-timestamp %d is not now (%d)", ts, before.Unix())
		}
	})
	t.Run("webhook-signature has one v1 entry per secret", func(t *testing.T) {
		entries := strings.Fields(got.Header.Get("webhook-signature"))
		if len(entries) != 2 {
			t.Fatalf("webhook-signature %q, want two entries", got.Header.Get("webhook-signature"))
		}
		for _, e := range entries {
			if !strings.HasPrefix(e, "v1,") {
				t.Fatalf("entry %q is not v1,<base64>", e)
			}
		}
	})
	t.Run("the signature verifies with the current secret", func(t *testing.T) {
		if err := whVerify(current, got.Header, got.Body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the signature verifies with the previous secret during a rotation", func(t *testing.T) {
		if err := whVerify(previous, got.Header, got.Body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the signature does not verify with another secret", func(t *testing.T) {
		if err := whVerify(whSecret(t), got.Header, got.Body); err == nil {
			t.Fatal("a foreign secret verified")
		}
	})
	t.Run("the signature does not verify a tampered body", func(t *testing.T) {
		tampered := []byte(strings.Replace(string(got.Body), "completed", "cancelled", 1))
		if err := whVerify(current, got.Header, tampered); err == nil {
			t.Fatal("a tampered body verified")
		}
	})
	t.Run("the signature does not verify a changed timestamp", func(t *testing.T) {
		h := got.Header.Clone()
		ts, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
		h.Set("webhook-timestamp", strconv.FormatInt(ts+1, 10))
		if err := whVerify(current, h, got.Body); err == nil {
			t.Fatal("a changed timestamp verified")
		}
	})
}

// TestWHVerifierAgreesWithTheSpecExample pins the test's own
// verifier to the example in the Standard Webhooks specification, so a
// verifier bug cannot hide a signing bug.
func TestWHVerifierAgreesWithTheSpecExample(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if err := whVerify(secret, h, body); err != nil {
		t.Fatalf("spec example does not verify: %v", err)
	}
	if err := whVerify(secret, h, []byte(`{"test": 2432232315}`)); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := whVerify("whsec_"+base64.StdEncoding.EncodeToString([]byte("other")), h, body); err == nil {
		t.Fatal("a different key verified")
	}
}

// whHolds polls cond for the whole of d and fails the test the first time
// it does not hold: the bounded way to check that nothing more happens.
func whHolds(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// whTopKeys lists the keys of a JSON object in the order they appear.
func whTopKeys(t testing.TB, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("read key: %v", err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("read value: %v", err)
		}
	}
	return keys
}

// whDecode decodes a webhook body into a map.
func whDecode(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("webhook body is not a JSON object: %v: %s", err, body)
	}
	return m
}

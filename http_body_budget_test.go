package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testBudget is a budget of limit bytes whose refusals come after wait.
func testBudget(limit int64, wait time.Duration) *bodyBudget {
	b := newBodyBudget(limit, bodyGrace)
	b.wait = wait
	return b
}

func TestBodyBudgetReservations(t *testing.T) {
	const limit = 1 << 20 // headroom 128 KiB: large bodies stop at 896 KiB
	tests := []struct {
		name     string
		held     []int64 // reservations made first, each granted
		n, total int64
		want     bool
	}{
		{"a reservation that fits is granted at once", []int64{100 << 10}, 200 << 10, 200 << 10, true},
		{"a large body may not pass the limit less the headroom", []int64{800 << 10}, 200 << 10, 200 << 10, false},
		{"a small body may use the headroom that large ones leave", []int64{896 << 10}, 64 << 10, 64 << 10, true},
		{"a small body may not pass the limit itself", []int64{896 << 10, 64 << 10, 64 << 10}, 1, 1, false},
		{"a growing body counts as large once its total passes the small size", []int64{896 << 10}, 64 << 10, 128 << 10, false},
		{"a body alone is granted however large", nil, 4 << 20, 4 << 20, true},
		{"a body larger than the budget waits for the others", []int64{1}, 4 << 20, 4 << 20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBudget(limit, 20*time.Millisecond)
			for _, h := range tc.held {
				if !b.reserve(context.Background(), h, h) {
					t.Fatalf("setup reservation of %d refused", h)
				}
			}
			if got := b.reserve(context.Background(), tc.n, tc.total); got != tc.want {
				t.Fatalf("reserve(%d, %d) = %v, want %v (in use %d)", tc.n, tc.total, got, tc.want, b.inUse())
			}
		})
	}
}

func TestBodyBudgetWaiting(t *testing.T) {
	t.Run("a waiting reservation is granted as soon as bytes are given back", func(t *testing.T) {
		b := testBudget(1<<20, 10*time.Second)
		b.reserve(context.Background(), 800<<10, 800<<10)
		got := make(chan bool, 1)
		go func() { got <- b.reserve(context.Background(), 500<<10, 500<<10) }()
		b.release(800 << 10)
		select {
		case ok := <-got:
			if !ok || b.inUse() != 500<<10 {
				t.Fatalf("reserve=%v in use %d, want granted with 500 KiB in use", ok, b.inUse())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiting reservation was not granted after the release")
		}
	})
	t.Run("a waiting reservation ends with its request's context", func(t *testing.T) {
		b := testBudget(1<<20, 10*time.Second)
		b.reserve(context.Background(), 800<<10, 800<<10)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan bool, 1)
		go func() { got <- b.reserve(ctx, 500<<10, 500<<10) }()
		cancel()
		select {
		case ok := <-got:
			if ok {
				t.Fatal("reserve=true after the context ended, want false")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the reservation did not end with its context")
		}
	})
	t.Run("a waiting reservation is refused after the wait", func(t *testing.T) {
		b := testBudget(1<<20, 30*time.Millisecond)
		b.reserve(context.Background(), 800<<10, 800<<10)
		start := time.Now()
		if b.reserve(context.Background(), 500<<10, 500<<10) {
			t.Fatal("reserve=true with the budget held, want false")
		}
		if waited := time.Since(start); waited < 30*time.Millisecond || waited > 5*time.Second {
			t.Fatalf("refused after %s, want after the 30ms wait", waited)
		}
	})
}

// countingReader is a body of n bytes that counts how much was read of it.
type countingReader struct {
	left, read int64
	closed     bool
}

// Read implements io.Reader.
func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), c.left)
	c.left -= n
	c.read += n
	return int(n), nil
}

// Close implements io.Closer.
func (c *countingReader) Close() error { c.closed = true; return nil }

func TestHeldBodyOfUnknownLength(t *testing.T) {
	t.Run("it reads no further than it holds and gives everything back on close", func(t *testing.T) {
		b := testBudget(1<<20, 20*time.Millisecond)
		src := &countingReader{left: 300 << 10}
		h, ok := b.hold(context.Background(), src, -1, nil)
		if !ok || b.inUse() != 0 {
			t.Fatalf("hold=%v in use %d, want held with nothing reserved yet", ok, b.inUse())
		}
		buf := make([]byte, 1<<20)
		for {
			n, err := h.Read(buf)
			if b.inUse() < src.read || n > bodyGrowStep {
				t.Fatalf("read %d bytes (%d in one call) holding %d", src.read, n, b.inUse())
			}
			if err == io.EOF {
				break
			}
		}
		if src.read != 300<<10 {
			t.Fatalf("read %d bytes, want the whole body", src.read)
		}
		h.Close()
		if b.inUse() != 0 || !src.closed {
			t.Fatalf("after close: in use %d, body closed %v; want 0 and true", b.inUse(), src.closed)
		}
	})
	t.Run("it fails with errBodyMemory when it cannot grow", func(t *testing.T) {
		b := testBudget(1<<20, 20*time.Millisecond)
		b.reserve(context.Background(), 896<<10, 896<<10)
		h, _ := b.hold(context.Background(), &countingReader{left: 1 << 20}, -1, nil)
		_, err := io.Copy(io.Discard, h)
		if !errors.Is(err, errBodyMemory) {
			t.Fatalf("err=%v, want errBodyMemory", err)
		}
		h.Close()
		if b.inUse() != 896<<10 {
			t.Fatalf("in use %d after close, want only the other body's 896 KiB", b.inUse())
		}
	})
}

// stalledPost is a POST /v3/bulk_restore on its own connection that
// declares length bytes and sends all but the last, then waits.
type stalledPost struct {
	conn     net.Conn
	wrote    chan error          // the result of writing the body
	response chan *http.Response // nil when the connection ended without one
}

// startStalledPost opens the connection and sends the request; the body is
// a JSON numbers array, cut short.
func startStalledPost(t *testing.T, addr string, length int, body []byte) *stalledPost {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	p := &stalledPost{conn: conn, wrote: make(chan error, 1), response: make(chan *http.Response, 1)}
	head := fmt.Sprintf("POST /v3/bulk_restore HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic ZGVtbzpkZW1v\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, length)
	go func() {
		_, err := conn.Write(append([]byte(head), body[:length-1]...))
		p.wrote <- err
	}()
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			resp = nil
		} else {
			io.Copy(io.Discard, resp.Body)
		}
		p.response <- resp
	}()
	return p
}

// numbersBody is a JSON numbers array of at least n bytes.
func numbersBody(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"numbers":["15551230100"`)
	for i := 1; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, `,"%d"`, 15551230100+i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func TestManyStalledLargeBodiesStayWithinTheBodyBudget(t *testing.T) {
	const (
		maxBody   = 1 << 20
		budget    = 8 << 20
		length    = maxBody - 1 // just under -max-body
		posts     = 64
		admitted  = 7 // large bodies stop at 7 MiB, an eighth short of 8 MiB
		maxGrowth = 32 << 20
	)
	svc, srv := startServiceWith(t, nil, "-dev", "-max-body", "1MiB", "-max-body-memory", "8MiB", "-rate-limit", "0")
	addr := strings.TrimPrefix(srv.URL, "http://")
	body := numbersBody(length)
	before := heapInUse()

	stalled := make([]*stalledPost, posts)
	for i := range stalled {
		stalled[i] = startStalledPost(t, addr, length, body)
	}
	// The posts that got their share wait for their last byte; the others
	// are refused once the wait for a share is over.
	var refused []*http.Response
	waitFor(t, 30*time.Second, fmt.Sprintf("%d posts to be refused", posts-admitted), func() bool {
		for _, p := range stalled {
			select {
			case resp := <-p.response:
				if resp == nil {
					t.Fatal("a connection ended without an answer")
				}
				refused = append(refused, resp)
			default:
			}
		}
		return len(refused) >= posts-admitted
	})
	for _, resp := range refused {
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("refused with %d Retry-After %q, want 503 with Retry-After 2", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if used := svc.app.bodies.inUse(); used != admitted*length || used > budget {
		t.Fatalf("budget in use %d, want the %d admitted bodies' %d (at most %d)", used, admitted, admitted*length, budget)
	}
	growth := heapInUse() - before
	t.Logf("heap grew %d KiB with %d large bodies stalled (%d admitted)", growth>>10, posts, admitted)
	if growth > maxGrowth {
		t.Fatalf("heap grew %d MiB, want under %d MiB", growth>>20, maxGrowth>>20)
	}

	t.Run("a small request still passes while large ones hold the budget", func(t *testing.T) {
		resp := callRaw(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "application/json",
			strings.NewReader(`{"numbers":["15551230101"]}`), "demo", "demo")
		if resp.Status != http.StatusOK {
			t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
		}
	})
	t.Run("a body declared over -max-body is still 413, at once", func(t *testing.T) {
		p := startStalledPost(t, addr, 2*maxBody, numbersBody(2*maxBody))
		select {
		case resp := <-p.response:
			if resp == nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("answer %v, want 413", resp)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer within 10s")
		}
	})
	t.Run("a body of unknown length is refused 503 when it outgrows what is left", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			defer pw.Close()
			pw.Write(body[:length-1])
		}()
		resp := callRaw(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "application/json", struct{ io.Reader }{pr}, "demo", "demo")
		if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("status=%d Retry-After %q, want 503 with Retry-After 2: %s", resp.Status, resp.Header.Get("Retry-After"), resp.Raw)
		}
	})
	t.Run("the budget is given back when the stalled bodies end", func(t *testing.T) {
		for _, p := range stalled {
			p.conn.Close()
		}
		waitFor(t, 10*time.Second, "the body budget to drain", func() bool { return svc.app.bodies.inUse() == 0 })
	})
}

func TestConcurrentBodiesShareTheBudgetAndAllFinish(t *testing.T) {
	svc, srv := startServiceWith(t, nil, "-dev", "-max-body", "256KiB", "-max-body-memory", "1MiB", "-rate-limit", "0")
	body := string(numbersBody(200 << 10))
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		wg.Go(func() {
			resp := callRaw(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "application/json", strings.NewReader(body), "demo", "demo")
			statuses[i] = resp.Status
		})
	}
	wg.Wait()
	for i, s := range statuses {
		// Each body is read in milliseconds: waiting for a share beats a 503.
		if s != http.StatusRequestEntityTooLarge {
			t.Fatalf("request %d: status=%d, want 413 (too many numbers), every one read", i, s)
		}
	}
	if used := svc.app.bodies.inUse(); used != 0 {
		t.Fatalf("budget in use %d after every request ended, want 0", used)
	}
}

func TestMaxBodyMemoryFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    int64
		wantErr bool
	}{
		{"the default is 64MiB", nil, nil, 64 << 20, false},
		{"the flag takes a size with a suffix", []string{"-max-body-memory", "16MiB"}, nil, 16 << 20, false},
		{"the environment sets it as BULKRESTORE_MAX_BODY_MEMORY", nil, map[string]string{"BULKRESTORE_MAX_BODY_MEMORY": "1GiB"}, 1 << 30, false},
		{"the flag wins over the environment", []string{"-max-body-memory", "8MiB"}, map[string]string{"BULKRESTORE_MAX_BODY_MEMORY": "1GiB"}, 8 << 20, false},
		{"zero is refused", []string{"-max-body-memory", "0"}, nil, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseServeFlags(tc.args, mapEnv(tc.env), io.Discard)
			if tc.wantErr {
				if err == nil {
					t.Fatal("err=nil, want the value refused")
				}
				return
			}
			if err != nil || cfg.maxBodyMemory != tc.want {
				t.Fatalf("maxBodyMemory=%d err=%v, want %d", cfg.maxBodyMemory, err, tc.want)
			}
		})
	}
}

// TestABodyThatTricklesIsCutOff: a client that sends a few bytes of a large
// declared body and then next to nothing held that body's share of the
// budget for the server's two-minute ReadTimeout (a dozen such clients
// held every large request's). Once the grace has passed, a body slower
// than bodyMinRate is answered 408 and its share given back; a body sent
// at once still passes.
func TestABodyThatTricklesIsCutOff(t *testing.T) {
	const grace = 300 * time.Millisecond
	svc, srv := startServiceConfigured(t, func(cfg *serveConfig) { cfg.bodyGrace = grace }, "-dev", "-rate-limit", "0")
	conn := dialRaw(t, srv.URL, 30*time.Second)
	start := time.Now()
	fmt.Fprintf(conn, "POST /v3/bulk_restore HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGVtbzpkZW1v\r\n"+
		"Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n"+`{"numbers":["1555`)
	waitFor(t, 5*time.Second, "the body's share to be held", func() bool { return svc.app.bodies.inUse() == 200000 })
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the trickling body: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if waited := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(raw), "arrived slower") || waited < grace {
		t.Fatalf("after %s: %d %s, want 408 (arrived slower) after the %s grace", waited, resp.StatusCode, raw, grace)
	}
	waitFor(t, 5*time.Second, "the body's share to be given back", func() bool { return svc.app.bodies.inUse() == 0 })
	numbers := seqNumbers(15551230200, 5)
	if got := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers}); got.Status != http.StatusOK {
		t.Fatalf("a body sent at once: %d %s, want 200", got.Status, got.Raw)
	}
}

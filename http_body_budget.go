package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// The body budget's settings that are not flags.
const (
	// bodyBudgetWait is how long a request waits for its share of the
	// budget before it is answered 503.
	bodyBudgetWait = time.Second
	// bodyBudgetRetry is the Retry-After of that 503.
	bodyBudgetRetry = 2 * time.Second
	// bodyGrowStep is how much more a body of unknown length reserves each
	// time what it has read reaches what it holds.
	bodyGrowStep = 64 << 10
	// smallBody is the largest reservation that counts as small: small
	// bodies may use the headroom that large ones must leave.
	smallBody = 64 << 10
	// bodyMinRate is the slowest a body may arrive, on average, once
	// bodyGrace has passed since it began: a slower one is cut off (408).
	// A client trickling a byte now and then would otherwise hold its share
	// of the budget (its declared length, up to -max-body) for the
	// server's two-minute ReadTimeout, and a dozen such clients every large
	// request's share. 16KiB a second is a slow mobile uplink; a
	// 10,000-number JSON body (about 160KB) takes 10 s at that rate.
	bodyMinRate = 16 << 10
	bodyGrace   = 10 * time.Second
)

// errBodyMemory is the read error of a body that could not get more of
// the budget.
var errBodyMemory = errors.New("request bodies are using all the memory set aside for them")

// errBodyTooSlow is the read error of a body that came slower than
// bodyMinRate.
var errBodyTooSlow = errors.New("the request body arrived too slowly")

// bodyBudget bounds the bytes that request bodies hold across all requests
// at once (-max-body-memory). A body reserves its declared length before
// it is read (else it grows its reservation as bytes arrive) and gives it
// back once parsed; a request that cannot get its share waits a moment,
// then is answered 503 with Retry-After. Large bodies stop an eighth short
// of the limit, so that small requests still pass while large ones hold
// the rest; a body alone always fits, however large.
type bodyBudget struct {
	limit    int64
	headroom int64 // what large bodies leave to small ones
	wait     time.Duration
	grace    time.Duration // bodyGrace, but in tests
	minRate  float64       // bodyMinRate, bytes a second

	mu       sync.Mutex
	used     int64
	released chan struct{} // closed, and replaced, whenever bytes are given back
}

// newBodyBudget is a budget of limit bytes, whose bodies must arrive at
// bodyMinRate once grace has passed.
func newBodyBudget(limit int64, grace time.Duration) *bodyBudget {
	return &bodyBudget{limit: limit, headroom: limit / 8, wait: bodyBudgetWait, grace: grace, minRate: bodyMinRate,
		released: make(chan struct{})}
}

// fits reports whether n more bytes fit now, for a body that would then
// hold total.
func (b *bodyBudget) fits(n, total int64) bool {
	if b.used == 0 {
		return true
	}
	ceiling := b.limit
	if total > smallBody {
		ceiling -= b.headroom
	}
	return b.used+n <= ceiling
}

// reserve takes n bytes for a body that will then hold total, waiting up
// to b.wait for other bodies to give some back; false if the wait or ctx
// ended first.
func (b *bodyBudget) reserve(ctx context.Context, n, total int64) bool {
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if b.fits(n, total) {
			b.used += n
			b.mu.Unlock()
			return true
		}
		released := b.released
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(b.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-released:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// release gives n bytes back and wakes the requests waiting for some.
func (b *bodyBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	close(b.released)
	b.released = make(chan struct{})
}

// inUse is how many bytes bodies hold now.
func (b *bodyBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// hold gives a request body its share of the budget: its declared length
// now, or nothing yet when the length is unknown (length < 0); false when
// the share could not be had. setDeadline sets the connection's read
// deadline (nil: none is kept), by which the body's next bytes must come
// (see bodyMinRate).
func (b *bodyBudget) hold(ctx context.Context, body io.ReadCloser, length int64, setDeadline func(time.Time) error) (*heldBody, bool) {
	h := &heldBody{body: body, ctx: ctx, budget: b, grow: length < 0, setDeadline: setDeadline, start: time.Now()}
	if length > 0 {
		if !b.reserve(ctx, length, length) {
			return nil, false
		}
		h.held = length
	}
	return h, true
}

// heldBody is a request body with its share of the budget, given back on
// Close. A body of unknown length reads no further than it holds, and
// reserves bodyGrowStep more each time it gets there.
type heldBody struct {
	body        io.ReadCloser
	ctx         context.Context
	budget      *bodyBudget
	grow        bool
	setDeadline func(time.Time) error
	start       time.Time

	mu     sync.Mutex
	held   int64
	read   int64
	done   bool // at the end of the body, or closed
	closed bool
}

// Read implements io.Reader.
func (h *heldBody) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if h.grow && !h.done {
		if h.read == h.held {
			if !h.budget.reserve(h.ctx, bodyGrowStep, h.held+bodyGrowStep) {
				return 0, errBodyMemory
			}
			h.held += bodyGrowStep
		}
		p = p[:min(int64(len(p)), h.held-h.read)]
	}
	if h.setDeadline != nil && !h.done {
		h.setDeadline(h.start.Add(h.budget.grace + time.Duration(float64(h.read)/h.budget.minRate*float64(time.Second))))
	}
	n, err := h.body.Read(p)
	h.read += int64(n)
	if err == io.EOF {
		h.done = true
		h.clearDeadline()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyTooSlow
	}
	return n, err
}

// clearDeadline lifts the read deadline once the body is read: the server
// reads on in the background while the handler works, and a deadline that
// passed then would cancel the request's context.
func (h *heldBody) clearDeadline() {
	if h.setDeadline != nil {
		h.setDeadline(time.Time{})
		h.setDeadline = nil
	}
}

// Close gives the body's share back (once) and closes the body. Closing a
// body not read to its end reads on (net/http drains it), still under the
// deadline, so that a trickling client cannot hold the handler; the
// deadline is lifted after.
func (h *heldBody) Close() error {
	h.mu.Lock()
	held := h.held
	h.held, h.closed = 0, true
	h.mu.Unlock()
	h.budget.release(held)
	err := h.body.Close()
	h.mu.Lock()
	h.clearDeadline()
	h.mu.Unlock()
	return err
}

// refuseBodyMemory is the 503 of a request whose body could not get its
// share of the budget; it sets Retry-After on w.
func refuseBodyMemory(w http.ResponseWriter) error {
	w.Header().Set("Retry-After", retryAfterSeconds(bodyBudgetRetry))
	return newAPIError(codeUnavailable, "the server is reading too many large request bodies at once; retry in a moment")
}

// budgeted gives the request body its share of the body memory budget
// before h reads it, and takes it back when h returns at the latest. A
// body declared over -max-body is left to h, which answers 413 unread.
func (a *app) budgeted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > a.cfg.maxBody {
			h(w, r)
			return
		}
		body, ok := a.bodies.hold(r.Context(), r.Body, r.ContentLength, http.NewResponseController(w).SetReadDeadline)
		if !ok {
			writeError(w, r, a.log, refuseBodyMemory(w))
			return
		}
		defer body.Close()
		r.Body = body
		h(w, r)
	}
}

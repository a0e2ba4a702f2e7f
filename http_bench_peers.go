package main

// The bench's HTTP peers: a fake upstream and a webhook receiver on loopback.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchUpstream is the fake provider: it answers every restore with
// success after its latency, except the numbers it holds, which it answers
// at once when released.
type benchUpstream struct {
	url      string // the -upstream-url template
	latency  time.Duration
	hold     func(number string) bool // nil: hold nothing
	release  chan struct{}            // closed to answer the held calls
	srv      *http.Server
	busy     atomic.Int64 // nanoseconds spent in calls, summed over calls
	held     atomic.Int64 // held calls waiting for release
	answered atomic.Int64 // calls answered after the latency
}

// startBenchUpstream serves a fake upstream on a loopback port.
func startBenchUpstream(latency time.Duration, hold func(number string) bool) (*benchUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &benchUpstream{url: "http://" + ln.Addr().String() + "/v3/restore/{number}", latency: latency,
		hold: hold, release: make(chan struct{})}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.restore), ReadHeaderTimeout: 10 * time.Second}
	go u.srv.Serve(ln)
	return u, nil
}

// restore answers one call after the latency, or when released.
func (u *benchUpstream) restore(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { u.busy.Add(int64(time.Since(start))) }()
	if u.hold != nil && u.hold(strings.TrimPrefix(r.URL.Path, "/v3/restore/")) {
		u.held.Add(1)
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
	} else {
		t := time.NewTimer(u.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		u.answered.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"message":"Number restored","requires_identity_update":0}`)
}

// close stops the fake upstream and cuts its connections.
func (u *benchUpstream) close() { u.srv.Close() }

// benchReceiver is a webhook receiver on loopback that notes when each
// job's first delivery arrived.
type benchReceiver struct {
	url         string
	srv         *http.Server
	want        int
	mu          sync.Mutex
	seen        map[string]bool
	first, last time.Time
	done        chan struct{} // closed when want jobs have been delivered
}

// startBenchReceiver serves a receiver that expects want jobs.
func startBenchReceiver(want int) (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String() + "/hook", want: want, seen: map[string]bool{}, done: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.receive), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// receive takes one delivery; repeats of a job are answered but not counted.
func (r *benchReceiver) receive(w http.ResponseWriter, req *http.Request) {
	var msg struct {
		JobUUID string `json:"job_uuid"`
	}
	if err := json.NewDecoder(req.Body).Decode(&msg); err != nil || msg.JobUUID == "" {
		http.Error(w, "not a job payload", http.StatusBadRequest)
		return
	}
	now := time.Now()
	r.mu.Lock()
	if !r.seen[msg.JobUUID] {
		r.seen[msg.JobUUID] = true
		if len(r.seen) == 1 {
			r.first = now
		}
		r.last = now
		if len(r.seen) == r.want {
			close(r.done)
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

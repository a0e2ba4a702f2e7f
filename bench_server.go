package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// benchServer is a bulkrestore server run in-process by serve() on a fresh
// database in a temp folder, and a client for it.
type benchServer struct {
	url    string
	dir    string // removed when the server stops; "" for a database it does not own
	drop   func() // drops the server's PostgreSQL database when it stops; nil for none
	dbURL  string // the server's database, for a second instance on it
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// startServer seeds a fresh database with the bench user and, as released
// numbers, inventory; then serves it on a loopback port with the bench's
// flags and extra. Stopping the server removes the database.
func (b *bench) startServer(ctx context.Context, inventory []string, extra ...string) (*benchServer, error) {
	if b.pg != nil {
		return b.startPGServer(ctx, inventory, extra...)
	}
	dir, err := os.MkdirTemp("", "bulkrestore-bench-*")
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "bench.db")
	if err := benchSeed(ctx, db, inventory); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s, err := b.serveDB(ctx, db, extra...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.dir = dir
	return s, nil
}

// serveDB serves a database that exists (a fresh one, or one the bench
// filled) with the bench's flags and extra; stopping the server leaves it.
func (b *bench) serveDB(ctx context.Context, db string, extra ...string) (*benchServer, error) {
	args := append([]string{"-addr", "127.0.0.1:0", "-db", db, "-rate-limit", "0", "-max-active-jobs", "0",
		"-max-numbers", strconv.Itoa(max(100000, b.count(100000, 1))), "-max-body", "64MiB",
		"-allow-private-webhooks", "-log-level", "warn", "-shutdown-timeout", "10s"}, extra...)
	// An empty environment: the user's BULKRESTORE_* settings are not the bench's.
	cfg, err := parseServeFlags(args, func(string) string { return "" }, b.log)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &benchServer{cancel: cancel, done: make(chan error, 1), client: newBenchClient(), dbURL: db}
	ready := make(chan string, 1)
	go func() { s.done <- serve(sctx, cfg, b.log, func(addr string) { ready <- addr }) }()
	select {
	case addr := <-ready:
		s.url = "http://" + addr
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("server did not start: %v", err)
	}
}

// stop shuts the server down, waits for it and removes its files, if it
// owns them.
func (s *benchServer) stop() {
	s.cancel()
	<-s.done
	s.client.CloseIdleConnections()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	if s.drop != nil {
		s.drop()
	}
}

// benchSeed creates the bench user and its released inventory.
func benchSeed(ctx context.Context, db string, inventory []string) error {
	store, err := openStore(db)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.createUser(ctx, benchUserName, benchAPIKey, newWebhookSecret()); err != nil {
		return err
	}
	u, err := store.userByName(ctx, benchUserName)
	if err != nil {
		return err
	}
	rows := make([]InventoryRow, len(inventory))
	now := time.Now()
	for i, n := range inventory {
		rows[i] = InventoryRow{Number: n, State: "released", ReleasedAt: now}
	}
	return store.importInventory(ctx, u.ID, rows, false)
}

// newBenchClient returns a client that keeps enough connections to the
// server open for the bench's concurrency.
func newBenchClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Minute,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// call makes a request as the bench user and returns the status and body.
func (s *benchServer) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return s.callAs(ctx, benchUserName, benchAPIKey, method, path, body)
}

// callAs makes a request as a user and returns the status and body.
func (s *benchServer) callAs(ctx context.Context, user, key, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	return s.send(ctx, user, key, method, path, rd)
}

// send is callAs with a JSON body read as it is sent (nil: none).
func (s *benchServer) send(ctx context.Context, user, key, method, path string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(user, key)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// submit posts a body that must be queued and returns the job's UUID.
func (s *benchServer) submit(ctx context.Context, body []byte) (string, error) {
	status, data, err := s.call(ctx, http.MethodPost, "/v3/bulk_restore", body)
	if err != nil {
		return "", fmt.Errorf("submit: %w", err)
	}
	if status != http.StatusAccepted {
		return "", fmt.Errorf("submit: HTTP %d, want 202: %.300s", status, data)
	}
	var queued struct {
		JobUUID string `json:"job_uuid"`
	}
	if err := json.Unmarshal(data, &queued); err != nil || queued.JobUUID == "" {
		return "", fmt.Errorf("submit: no job_uuid in %.300s", data)
	}
	return queued.JobUUID, nil
}

// status reads a job's summary (limit=0: no results, so it is cheap).
func (s *benchServer) status(ctx context.Context, id string) (jobSummaryJSON, error) {
	var j jobSummaryJSON
	status, data, err := s.call(ctx, http.MethodGet, "/v3/bulk_restore_status?limit=0&job_uuid="+id, nil)
	if err != nil {
		return j, fmt.Errorf("status: %w", err)
	}
	if status != http.StatusOK {
		return j, fmt.Errorf("status: HTTP %d: %.300s", status, data)
	}
	return j, json.Unmarshal(data, &j)
}

// waitJob polls a job's status every few milliseconds until cond holds,
// for at most timeout.
func (s *benchServer) waitJob(ctx context.Context, id string, timeout time.Duration, cond func(jobSummaryJSON) bool) (jobSummaryJSON, error) {
	deadline := time.Now().Add(timeout)
	for {
		j, err := s.status(ctx, id)
		if err != nil || cond(j) {
			return j, err
		}
		if time.Now().After(deadline) {
			return j, fmt.Errorf("job %s still %s (%d of %d done) after %s", id, j.Status, j.processed(), j.TotalNumbers, timeout)
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(benchPollEvery):
		}
	}
}

// waitCompleted waits for a job to finish and checks that every number was
// restored.
func (s *benchServer) waitCompleted(ctx context.Context, id string, timeout time.Duration) error {
	j, err := s.waitJob(ctx, id, timeout, jobSummaryJSON.settled)
	if err == nil && (j.Status != jobCompleted || j.SuccessCount != j.TotalNumbers) {
		err = fmt.Errorf("job %s ended %s with %d of %d restored", id, j.Status, j.SuccessCount, j.TotalNumbers)
	}
	return err
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The import scenario: PUT of an inventory CSV of 1,000,000 rows through
// the admin API, timed from the first byte sent to the answer, with the
// process's peak memory; then the deletion of that user, with the
// inventory and a job of 100,000 numbers. Meanwhile another user restores
// one number synchronously, again and again: how long it waits is how long
// the import's one write, and the deletion's longest step, hold the
// database writer.

// benchImportToken is the admin token of the import scenario's server.
const benchImportToken = "bench-admin-token-6f1d0c2b9e8a7d5c4b3a291807f6e5d4"

// benchImportProbeEvery is how often the probe restores its number.
const benchImportProbeEvery = 20 * time.Millisecond

// benchCSV generates an inventory CSV of n rows as it is read, so that the
// bench's client holds none of it: every column, the flags varying.
type benchCSV struct {
	n, next int // rows, and the next row to write (0: the header)
	buf     bytes.Buffer
}

// Read implements io.Reader.
func (c *benchCSV) Read(p []byte) (int, error) {
	for c.buf.Len() < len(p) && c.next <= c.n {
		if c.next == 0 {
			c.buf.WriteString("number,state,released_at,requires_identity_update,needs_registration\n")
		} else {
			i := c.next - 1
			c.buf.WriteString(strconv.FormatInt(benchFirstNumber+int64(i), 10))
			c.buf.WriteString(",released,2026-11-01T09:30:00Z,")
			c.buf.WriteString(strconv.Itoa(i % 2))
			c.buf.WriteString(",")
			c.buf.WriteString(strconv.Itoa(i / 2 % 2))
			c.buf.WriteString("\n")
		}
		c.next++
	}
	if c.buf.Len() == 0 {
		return 0, io.EOF
	}
	return c.buf.Read(p)
}

// runImport puts one big inventory through the admin API, then deletes
// its user, with a probe restoring a number of another user meanwhile.
func (b *bench) runImport(ctx context.Context) (benchFigures, error) {
	n, jobSize := b.count(1000000, 1000), b.count(100000, benchSmallJob)
	dir, err := os.MkdirTemp("", "bulkrestore-bench-token-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(benchImportToken), 0o600); err != nil {
		return nil, err
	}
	s, err := b.startServer(ctx, nil, "-admin-token-file", tokenFile, "-max-import-body", "1GiB")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	probeKey, probeBody, err := s.probeUser(ctx)
	if err != nil {
		return nil, err
	}

	startKB, err := benchResetPeakRSS()
	if err != nil {
		return nil, err
	}
	probe := s.startProbe(ctx, probeKey, probeBody)
	start := time.Now()
	var imported importedBody
	err = s.admin(ctx, http.MethodPut, "/admin/v1/users/"+benchUserName+"/inventory", "text/csv", &benchCSV{n: n}, http.StatusOK, &imported)
	elapsed := time.Since(start)
	importWaits, probeErr := probe.stop()
	if err = errors.Join(err, probeErr); err != nil {
		return nil, err
	}
	if imported.Imported != n {
		return nil, fmt.Errorf("import: %d rows imported, want %d", imported.Imported, n)
	}
	peakKB, err := benchProcStatusKB("VmHWM")
	if err != nil {
		return nil, err
	}

	// A job of the imported numbers, restored, then the user deleted.
	id, err := s.submit(ctx, benchBody(benchNumbers(benchFirstNumber, jobSize), ""))
	if err == nil {
		err = s.waitCompleted(ctx, id, b.deadline(jobSize))
	}
	if err != nil {
		return nil, err
	}
	probe = s.startProbe(ctx, probeKey, probeBody)
	start = time.Now()
	err = s.admin(ctx, http.MethodDelete, "/admin/v1/users/"+benchUserName, "", nil, http.StatusNoContent, nil)
	deleteTook := time.Since(start)
	deleteWaits, probeErr := probe.stop()
	if err = errors.Join(err, probeErr); err != nil {
		return nil, err
	}
	slices.Sort(importWaits)
	slices.Sort(deleteWaits)
	return benchFigures{"rows_per_s": float64(n) / elapsed.Seconds(), "rows": float64(n), "seconds": elapsed.Seconds(),
		"peak_mb": float64(peakKB) * 1024 / 1e6, "start_mb": float64(startKB) * 1024 / 1e6,
		"import_probe_max_ms": benchPercentile(importWaits, 100), "import_probe_p50_ms": benchPercentile(importWaits, 50),
		"job_numbers": float64(jobSize), "delete_seconds": deleteTook.Seconds(),
		"delete_probe_max_ms": benchPercentile(deleteWaits, 100), "delete_probe_p50_ms": benchPercentile(deleteWaits, 50)}, nil
}

// benchProbeUser is the user whose restores probe the writer.
const benchProbeUser = "probe"

// probeUser creates the probe's user with one released number, and returns
// its key and the body that restores that number.
func (s *benchServer) probeUser(ctx context.Context) (string, []byte, error) {
	var created createdUserJSON
	if err := s.admin(ctx, http.MethodPost, "/admin/v1/users", "application/json",
		strings.NewReader(`{"username":"`+benchProbeUser+`"}`), http.StatusCreated, &created); err != nil {
		return "", nil, err
	}
	number := strconv.FormatInt(benchFirstNumber-1, 10) // below the imported ones
	if err := s.admin(ctx, http.MethodPut, "/admin/v1/users/"+benchProbeUser+"/inventory", "text/csv",
		strings.NewReader("number,state\n"+number+",released\n"), http.StatusOK, nil); err != nil {
		return "", nil, err
	}
	return created.APIKey, benchBody([]string{number}, ""), nil
}

// admin makes an admin request and decodes its answer into out (when not
// nil); any status but want is an error.
func (s *benchServer) admin(ctx context.Context, method, path, contentType string, body io.Reader, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchImportToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("HTTP %d, want %d: %.300s", resp.StatusCode, want, data)
	}
	if err == nil && out != nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// benchProbe restores one number synchronously, again and again, and
// keeps how long each answer took: what other clients wait while a long
// write holds the writer.
type benchProbe struct {
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	latencies []time.Duration
	err       error
}

// startProbe starts a probe posting body as the probe user (whose key is
// given) every benchImportProbeEvery. A request under way when the probe
// is stopped is waited for and counted: it may be the one that waited for
// the long write.
func (s *benchServer) startProbe(ctx context.Context, key string, body []byte) *benchProbe {
	quit, cancel := context.WithCancel(ctx)
	p := &benchProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for quit.Err() == nil {
			t := time.Now()
			err := s.probeRestore(ctx, key, body)
			p.mu.Lock()
			p.latencies, p.err = append(p.latencies, time.Since(t)), err
			p.mu.Unlock()
			if err != nil {
				return
			}
			sleepUntil(quit, nil, t.Add(benchImportProbeEvery))
		}
	}()
	return p
}

// probeRestore posts one synchronous restore as the probe user.
func (s *benchServer) probeRestore(ctx context.Context, key string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v3/bulk_restore", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(benchProbeUser, key)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("probe: HTTP %d: %.300s", resp.StatusCode, data)
	}
	return err
}

// stop ends the probe and returns its latencies, and the error that
// stopped it early, if any.
func (p *benchProbe) stop() ([]time.Duration, error) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latencies, p.err
}

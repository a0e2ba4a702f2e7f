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
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The import scenario: PUT of an inventory CSV of 1,000,000 rows through
// the admin API, timed from the first byte sent to the answer, with the
// process's peak memory, and how long the import's one write holds the
// database writer, as a client making small synchronous restores meanwhile
// sees it.

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

// runImport puts one big inventory through the admin API, with a probe
// restoring one number every benchImportProbeEvery meanwhile.
func (b *bench) runImport(ctx context.Context) (benchFigures, error) {
	n := b.count(1000000, 1000)
	dir, err := os.MkdirTemp("", "bulkrestore-bench-token-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(benchImportToken), 0o600); err != nil {
		return nil, err
	}
	probeNumber := strconv.FormatInt(benchFirstNumber-1, 10) // below the imported ones
	s, err := b.startServer(ctx, []string{probeNumber}, "-admin-token-file", tokenFile, "-max-import-body", "1GiB")
	if err != nil {
		return nil, err
	}
	defer s.stop()
	probe := s.startProbe(ctx, benchBody([]string{probeNumber}, ""))

	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, fmt.Errorf("reset peak RSS: %w", err)
	}
	startKB, err := benchProcStatusKB("VmHWM")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	imported, err := s.putInventory(ctx, &benchCSV{n: n})
	elapsed := time.Since(start)
	latencies, probeErr := probe.stop()
	if err = errors.Join(err, probeErr); err != nil {
		return nil, err
	}
	if imported != n {
		return nil, fmt.Errorf("import: %d rows imported, want %d", imported, n)
	}
	peakKB, err := benchProcStatusKB("VmHWM")
	if err != nil {
		return nil, err
	}
	if len(latencies) == 0 {
		return nil, errors.New("import: the probe made no request")
	}
	slices.Sort(latencies)
	return benchFigures{"rows_per_s": float64(n) / elapsed.Seconds(), "rows": float64(n), "seconds": elapsed.Seconds(),
		"peak_mb": float64(peakKB) * 1024 / 1e6, "start_mb": float64(startKB) * 1024 / 1e6,
		"rss_delta_mb": float64(peakKB-startKB) * 1024 / 1e6,
		"probe_max_ms": benchPercentile(latencies, 100), "probe_p50_ms": benchPercentile(latencies, 50),
		"probes": float64(len(latencies))}, nil
}

// putInventory sends an inventory CSV to the bench user's inventory and
// returns how many rows the server imported.
func (s *benchServer) putInventory(ctx context.Context, csvBody io.Reader) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.url+"/admin/v1/users/"+benchUserName+"/inventory", csvBody)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+benchImportToken)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	var got importedBody
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &got) != nil {
		return 0, fmt.Errorf("import: HTTP %d: %.300s", resp.StatusCode, data)
	}
	return got.Imported, nil
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

// startProbe starts a probe posting body every benchImportProbeEvery. A
// request under way when the probe is stopped is waited for and counted:
// it is the one that waited for the long write.
func (s *benchServer) startProbe(ctx context.Context, body []byte) *benchProbe {
	quit, cancel := context.WithCancel(ctx)
	p := &benchProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for quit.Err() == nil {
			t := time.Now()
			status, data, err := s.call(ctx, http.MethodPost, "/v3/bulk_restore", body)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("probe: HTTP %d: %.300s", status, data)
			}
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

// stop ends the probe and returns its latencies, and the error that
// stopped it early, if any.
func (p *benchProbe) stop() ([]time.Duration, error) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latencies, p.err
}

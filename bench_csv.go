package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// benchCSVNumbers is the size of the CSV scenario's job, at scale 1.
const benchCSVNumbers = 1_000_000

// runCSV exports one finished job of benchCSVNumbers numbers as CSV and
// measures its rate and the memory the process needed for it (the server
// writing and the bench reading, in the same process).
func (b *bench) runCSV(ctx context.Context) (benchFigures, error) {
	n := b.count(benchCSVNumbers, 1000)
	f, s, err := b.serveFilled(ctx, benchFill{Users: 1, Jobs: 1, Numbers: n, Distinct: n})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	startKB, err := benchResetPeakRSS()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	lines, size, err := s.readCSV(ctx, benchFillUser(1), benchFillKey(1), f.lastJob)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	peakKB, err := benchProcStatusKB("VmHWM")
	if err != nil {
		return nil, err
	}
	if lines != n+1 {
		return nil, fmt.Errorf("csv: %d lines, want a header and %d rows", lines, n)
	}
	return benchFigures{"rows_per_s": float64(n) / elapsed.Seconds(), "rows": float64(n), "seconds": elapsed.Seconds(),
		"csv_mb": float64(size) / 1e6, "start_mb": float64(startKB) * 1024 / 1e6, "peak_mb": float64(peakKB) * 1024 / 1e6,
		"delta_mb": float64(peakKB-startKB) * 1024 / 1e6}, nil
}

// readCSV downloads a job's results as CSV, as a client saving them would,
// and returns how many lines and bytes came.
func (s *benchServer) readCSV(ctx context.Context, user, key, id string) (lines int, size int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v3/bulk_restore_status?format=csv&job_uuid="+id, nil)
	if err != nil {
		return 0, 0, err
	}
	req.SetBasicAuth(user, key)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		return 0, 0, fmt.Errorf("csv: HTTP %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		size += int64(len(line))
		switch {
		case err == io.EOF:
			return lines, size, nil
		case err != nil:
			return lines, size, fmt.Errorf("csv: %w", err)
		}
		lines++
	}
}

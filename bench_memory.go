package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// benchMillion is the size of the million scenario's job, at scale 1.
const benchMillion = 1_000_000

// runMillion sends one job of a million numbers, lets it drain and reads
// its results back as CSV, and returns the process's peak RSS through it
// all. The bench's own side holds no copy of the numbers: the request body
// is generated as it is sent, and the CSV is counted as it arrives, so the
// peak is the server's (with the small client around it).
func (b *bench) runMillion(ctx context.Context) (benchFigures, error) {
	n := b.count(benchMillion, benchSmallJob)
	s, err := b.startServer(ctx, benchNumbers(benchFirstNumber, n), "-max-numbers", strconv.Itoa(n))
	if err != nil {
		return nil, err
	}
	defer s.stop()
	startKB, err := benchResetPeakRSS()
	if err != nil {
		return nil, err
	}
	status, data, err := s.send(ctx, benchUserName, benchAPIKey, http.MethodPost, "/v3/bulk_restore", benchStreamedBody(benchFirstNumber, n))
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	var queued struct {
		JobUUID string `json:"job_uuid"`
	}
	if status != http.StatusAccepted || json.Unmarshal(data, &queued) != nil {
		return nil, fmt.Errorf("submit: HTTP %d: %.300s", status, data)
	}
	if err := s.waitCompleted(ctx, queued.JobUUID, b.deadline(n)); err != nil {
		return nil, err
	}
	lines, size, err := s.readCSV(ctx, benchUserName, benchAPIKey, queued.JobUUID)
	if err != nil {
		return nil, err
	}
	if lines != n+1 {
		return nil, fmt.Errorf("csv: %d lines, want a header and %d rows", lines, n)
	}
	peakKB, err := benchProcStatusKB("VmHWM")
	if err != nil {
		return nil, err
	}
	return benchFigures{"peak_mb": float64(peakKB) * 1024 / 1e6, "start_mb": float64(startKB) * 1024 / 1e6,
		"numbers": float64(n), "csv_mb": float64(size) / 1e6}, nil
}

// benchStreamedBody is a POST /v3/bulk_restore body of n numbers from first,
// written as it is read.
func benchStreamedBody(first int64, n int) io.Reader {
	r, w := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString(`{"numbers":[`)
		for i := range n {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteByte('"')
			bw.WriteString(strconv.FormatInt(first+int64(i), 10))
			bw.WriteByte('"')
		}
		bw.WriteString("]}")
		w.CloseWithError(bw.Flush())
	}()
	return r
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newFuzzService starts a -dev service (user demo/demo) on a fresh file,
// with small limits so that each input is cheap, and returns its handler.
func newFuzzService(t testing.TB) http.Handler {
	t.Helper()
	cfg, err := parseServeFlags([]string{"-dev", "-db", newTestDB(t), "-max-numbers", "50", "-max-body", "65536",
		"-rate-limit", "0", "-max-active-jobs", "0"}, mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := startService(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.stop)
	return svc.app.routes()
}

// checkAnswer fails unless the answer is 2xx or 4xx with a JSON object body.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	t.Helper()
	if rec.Code >= 500 || rec.Code < 200 || (rec.Code >= 300 && rec.Code < 400) {
		t.Fatalf("status=%d for input %q: %s", rec.Code, input, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type=%q for input %q", ct, input)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not a JSON object for input %q: %v: %s", input, err, rec.Body.String())
	}
}

// FuzzBulkRestoreRequest throws arbitrary bodies and content types at
// POST /v3/bulk_restore: every one must get a 2xx or 4xx with a JSON body.
func FuzzBulkRestoreRequest(f *testing.F) {
	f.Add("application/json", []byte(`{"numbers":["15551230111","15551230112"],"numbers_text":"15551230113\n15551230114"}`))
	f.Add("application/json", []byte(`{"numbers":[15551230111]}`))
	f.Add("application/json", []byte(`{"numbers":"15551230111","webhook_url":"ftp://x"}`))
	f.Add("application/json", []byte(`[1,2,3]`))
	f.Add("application/json", []byte(`{"numbers":["1555123011\u0661"]}`))
	f.Add("application/x-www-form-urlencoded", []byte("numbers=15551230111&numbers=15551230112&numbers_text=15551230113%0D%0A"))
	f.Add("application/x-www-form-urlencoded", []byte("numbers=%zz"))
	f.Add("text/plain", []byte("15551230111\r\n\r\n  15551230112  \n"))
	f.Add("", []byte(`{"numbers_text":"15551230111"}`))
	f.Add("multipart/form-data; boundary=x", []byte("--x--"))
	f.Add("application/json; charset=\"", []byte(`{}`))
	h := newFuzzService(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v3/bulk_restore", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.SetBasicAuth("demo", "demo")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, contentType+" | "+string(body))
	})
}

// FuzzStatusQuery throws arbitrary query strings at the status endpoint.
func FuzzStatusQuery(f *testing.F) {
	f.Add("job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0")
	f.Add("job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0&number=15551230113")
	f.Add("job_uuid=8f6c1f0e23d247178c8e1a518e5738f0")
	f.Add("job_uuid=%zz&number=1e5")
	f.Add("job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0&limit=-1&offset=99999999999999999999")
	f.Add("number=15551230113")
	h := newFuzzService(f)
	// One real job so that some queries find something.
	req := httptest.NewRequest(http.MethodPost, "/v3/bulk_restore", strings.NewReader("numbers=15551230111"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo", "demo")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var created struct {
		JobUUID string `json:"job_uuid"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.JobUUID == "" {
		f.Fatalf("seed job: %d %s", rec.Code, rec.Body.String())
	}
	f.Add("job_uuid=" + created.JobUUID + "&number=15551230111&limit=1&offset=0")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/v3/bulk_restore_status", nil)
		req.URL.RawQuery = query
		req.SetBasicAuth("demo", "demo")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, query)
	})
}

// FuzzInventoryCSV throws arbitrary files at the CSV import reader: it must
// never panic, every row it accepts must be valid, the rows of a file that
// passed the check must be what the check saw, and every error must name a
// line.
func FuzzInventoryCSV(f *testing.F) {
	f.Add("number,state,released_at,requires_identity_update,needs_registration\n15551230111,released,2026-01-01 00:00:00,1,0\n")
	f.Add("number,state\n15551230111,active\n15551230112,unavailable\n")
	f.Add("number,state\n\"1555\"1230111,active\n")
	f.Add("\ufeffnumber,state,released_at\n15551230111,released,2026-01-01T00:00:00Z\n")
	f.Add("state,number\nreleased,123\n")
	f.Add("")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data string) {
		seen, err := checkInventoryCSV(strings.NewReader(data), now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not name a line", err)
			}
			return
		}
		rows := 0
		for r, err := range inventoryCSVRows(strings.NewReader(data), now) {
			if err != nil {
				t.Fatalf("the rows of a file that passed its check: %v", err)
			}
			if rows++; !seen.has(r.Number) {
				t.Fatalf("row %q is not among the numbers the check saw", r.Number)
			}
			if !validNumber(r.Number) {
				t.Fatalf("accepted invalid number %q", r.Number)
			}
			if r.State != "active" && r.State != "released" && r.State != "unavailable" {
				t.Fatalf("accepted invalid state %q", r.State)
			}
		}
		if rows != len(seen) {
			t.Fatalf("%d rows, but the check saw %d numbers", rows, len(seen))
		}
	})
}

package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// csvHeader is the header row the contract fixes.
var csvHeader = []string{"number", "status", "status_code", "message", "attempts", "started_at", "completed_at",
	"requires_identity_update", "needs_registration"}

// getCSV asks for a job's results with a query and an Accept header and
// returns the answer and its body.
func getCSV(t *testing.T, base, query, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v3/bulk_restore_status?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("demo", "demo")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return doRequest(t, req)
}

// parseCSV reads a CSV body whole, checking its header.
func parseCSV(t *testing.T, body string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the body is not CSV: %v\n%s", err, body)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], csvHeader) {
		t.Fatalf("header %v, want %v", rows[0], csvHeader)
	}
	return rows[1:]
}

func TestCSVExportQuotesNullsAndFlags(t *testing.T) {
	numbers := seqNumbers(15550200000, 12)
	msgComma := `Error: 'bad, "quoted" value'`
	msgNewline := "Error: 'line one\nline two'"
	msgCRLF := "Error: 'a\r\nb'"
	b := newScriptedBackend(map[string]Outcome{
		numbers[1]: {StatusCode: 409, Message: msgComma},
		numbers[2]: {StatusCode: 500, Message: msgNewline},
		numbers[3]: {StatusCode: 502, Message: msgCRLF},
		numbers[4]: {Success: true, StatusCode: 200, Message: msgRestored, RequiresIdentityUpdate: true, NeedsRegistration: true},
	}, numbers[10]) // with one worker, numbers[11] waits behind it and is cancelled
	_, srv := startServiceWith(t, b, "-dev", "-workers", "1")
	t.Cleanup(b.open)
	resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
	id := resp.Body["job_uuid"].(string)
	waitFor(t, 10*time.Second, "the held number to start", func() bool { return b.started.Load() == 1 })
	if c := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore_cancel?job_uuid="+id, "demo", "demo", nil); c.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", c.Status, c.Raw)
	}
	waitFor(t, 10*time.Second, "the first numbers to be recorded", func() bool {
		return call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?limit=0&job_uuid="+id, "demo", "demo", nil).
			Body["failure_count"] == float64(3)
	})
	httpResp, body := getCSV(t, srv.URL, "format=csv&job_uuid="+id, "")
	rows := parseCSV(t, body)

	t.Run("the answer is a CSV attachment named after the job", func(t *testing.T) {
		if ct := httpResp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("Content-Type=%q", ct)
		}
		if cd := httpResp.Header.Get("Content-Disposition"); cd != `attachment; filename="bulk_restore_`+id+`.csv"` {
			t.Fatalf("Content-Disposition=%q", cd)
		}
	})
	t.Run("one row per number, in input order", func(t *testing.T) {
		var got []string
		for _, r := range rows {
			got = append(got, r[0])
		}
		if !slices.Equal(got, numbers) {
			t.Fatalf("numbers %v, want %v", got, numbers)
		}
	})
	t.Run("messages with a comma, quotes and line breaks come back whole", func(t *testing.T) {
		for i, want := range map[int]string{1: msgComma, 2: msgNewline, 3: msgCRLF} {
			if rows[i][3] != want && !(i == 3 && rows[i][3] == "Error: 'a\nb'") { // encoding/csv reads \r\n inside quotes as \n
				t.Fatalf("row %d message %q, want %q", i, rows[i][3], want)
			}
		}
		if !strings.Contains(body, `"Error: 'bad, ""quoted"" value'"`) {
			t.Fatalf("the comma and quotes are not quoted as RFC 4180 says:\n%s", body)
		}
	})
	t.Run("fields that need no quotes have none", func(t *testing.T) {
		want := numbers[0] + ",success,200,Number restored,1,"
		if !strings.Contains(body, "\n"+want) {
			t.Fatalf("no plain row %q in\n%s", want, body)
		}
	})
	t.Run("the flags are 0 or 1, always written", func(t *testing.T) {
		if rows[4][7] != "1" || rows[4][8] != "1" || rows[0][7] != "0" || rows[0][8] != "0" {
			t.Fatalf("flags %v and %v", rows[4][7:], rows[0][7:])
		}
	})
	t.Run("a number cancelled before it was tried has empty nulls", func(t *testing.T) {
		r := rows[11]
		if r[1] != "cancelled" || r[2] != "" || r[3] != msgCancelled || r[4] != "0" || r[5] != "" || r[6] == "" {
			t.Fatalf("cancelled row %q", r)
		}
	})
	t.Run("a number being restored has no outcome yet", func(t *testing.T) {
		r := rows[10]
		if r[1] != "processing" || r[2] != "" || r[3] != "" || r[6] != "" {
			t.Fatalf("processing row %q", r)
		}
	})
	t.Run("filters and the page apply", func(t *testing.T) {
		_, body := getCSV(t, srv.URL, "format=csv&result_status=failed&offset=1&limit=1&job_uuid="+id, "")
		rows := parseCSV(t, body)
		if len(rows) != 1 || rows[0][0] != numbers[2] {
			t.Fatalf("rows %q, want the second failure alone", rows)
		}
		_, body = getCSV(t, srv.URL, "format=csv&number="+numbers[4]+"&job_uuid="+id, "")
		if rows := parseCSV(t, body); len(rows) != 1 || rows[0][0] != numbers[4] {
			t.Fatalf("rows %q, want the number alone", rows)
		}
		_, body = getCSV(t, srv.URL, "format=csv&limit=0&job_uuid="+id, "")
		if rows := parseCSV(t, body); len(rows) != 0 {
			t.Fatalf("rows %q, want the header alone", rows)
		}
	})
}

func TestCSVIsChosenByFormatOrAccept(t *testing.T) {
	t.Parallel()
	forEachStore(t, testCSVIsChosenByFormatOrAccept)
}

// testCSVIsChosenByFormatOrAccept runs TestCSVIsChosenByFormatOrAccept on one database.
func testCSVIsChosenByFormatOrAccept(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	id := apiSyncJob(t, s, "15551230100", "15551230199")
	cases := []struct {
		name, query, accept string
		wantCSV             bool
	}{
		{"no Accept and no format is JSON", "", "", false},
		{"Accept: text/csv is CSV", "", "text/csv", true},
		{"Accept: application/json is JSON", "", "application/json", false},
		{"Accept: */* is JSON", "", "*/*", false},
		{"Accept: text/* is CSV", "", "text/*", true},
		{"Accept naming neither is JSON", "", "text/html", false},
		{"CSV ranked below JSON is JSON", "", "text/csv;q=0.5, application/json", false},
		{"JSON ranked below CSV is CSV", "", "application/json;q=0.5, text/csv", true},
		{"a tie goes to the first named", "", "text/csv, application/json", true},
		{"CSV at q=0 is JSON", "", "text/csv;q=0", false},
		{"format=csv wins over Accept: application/json", "&format=csv", "application/json", true},
		{"format=json wins over Accept: text/csv", "&format=json", "text/csv", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := getCSV(t, s.URL, "job_uuid="+id+c.query, c.accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status=%d: %s", resp.StatusCode, body)
			}
			if resp.Header.Get("Vary") != "Accept" {
				t.Fatalf("Vary=%q, want Accept: the format follows it", resp.Header.Get("Vary"))
			}
			isCSV := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv")
			if isCSV != c.wantCSV {
				t.Fatalf("Content-Type %q, want CSV=%v", resp.Header.Get("Content-Type"), c.wantCSV)
			}
			if isCSV && len(parseCSV(t, body)) != 2 {
				t.Fatalf("CSV rows: %s", body)
			}
			if !isCSV && (resp.Header.Get("Content-Disposition") != "" || !strings.HasPrefix(body, "{")) {
				t.Fatalf("a JSON answer with %q: %s", resp.Header.Get("Content-Disposition"), body)
			}
		})
	}
	t.Run("HEAD gives the CSV's headers and no body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodHead, s.URL+"/v3/bulk_restore_status?format=csv&job_uuid="+id, nil)
		req.SetBasicAuth("demo", "demo")
		resp, body := doRequest(t, req)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.Contains(resp.Header.Get("Content-Disposition"), id) || body != "" {
			t.Fatalf("HEAD: %d %v %q", resp.StatusCode, resp.Header, body)
		}
	})
}

// slowSource is a resultSource of n rows that stops after half of them
// until released, as a store read that has not reached the end yet.
func slowSource(n int, release <-chan struct{}) resultSource {
	return func(fn func(NumberResult) error) error {
		for i := range n {
			if i == n/2 {
				select {
				case <-release:
				case <-time.After(10 * time.Second):
					return errors.New("the client never read the first rows")
				}
			}
			r := NumberResult{Position: i, Number: fmt.Sprint(15550000000 + i), Status: numberPending}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// csvTestApp is an app that can write answers, for handler-level tests.
func csvTestApp(t *testing.T) *app {
	svc, _ := startServiceWith(t, nil, "-dev")
	return svc.app
}

func TestCSVStreamsBeforeTheLastRowIsRead(t *testing.T) {
	a := csvTestApp(t)
	const rows = 200000
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeResultsCSV(w, r, Job{UUID: "00000000-0000-4000-8000-000000000001"}, slowSource(rows, release))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 1000 { // the header and the first rows arrive while the source is held mid-way
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("line %d before the source went on: %v", i, err)
		}
	}
	close(release)
	n, err := countLines(br)
	if err != nil {
		t.Fatalf("the rest: %v", err)
	}
	if n+1000 != rows+1 {
		t.Fatalf("%d lines in all, want the header and %d rows", n+1000, rows)
	}
}

// countLines counts the lines left in br.
func countLines(br *bufio.Reader) (int, error) {
	n := 0
	for {
		_, err := br.ReadString('\n')
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestCSVCutShortWhenTheReadFailsMidway(t *testing.T) {
	a := csvTestApp(t)
	failing := func(fn func(NumberResult) error) error {
		for i := range 50000 {
			if err := fn(NumberResult{Number: fmt.Sprint(15550000000 + i), Status: numberPending}); err != nil {
				return err
			}
		}
		return errors.New("disk I/O error")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeResultsCSV(w, r, Job{UUID: "00000000-0000-4000-8000-000000000002"}, failing)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Fatal("the body ended cleanly after a failed read; want the transfer cut short")
	}
}

func TestAppendCSVField(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a plain field is as it is", "Number restored", "Number restored"},
		{"an empty field is empty", "", ""},
		{"a comma is quoted", "a,b", `"a,b"`},
		{"a quote is doubled inside quotes", `say "hi"`, `"say ""hi"""`},
		{"a line feed is quoted", "a\nb", "\"a\nb\""},
		{"a carriage return is quoted", "a\rb", "\"a\rb\""},
		{"a leading space needs no quotes", " a", " a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(appendCSVField(nil, c.in)); got != c.want {
				t.Fatalf("appendCSVField(%q)=%q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestPrefersCSV(t *testing.T) {
	cases := []struct {
		name   string
		accept []string
		want   bool
	}{
		{"no header", nil, false},
		{"text/csv", []string{"text/csv"}, true},
		{"text/csv with a charset", []string{"text/csv; charset=utf-8"}, true},
		{"two headers, CSV in the second", []string{"application/json;q=0.1", "text/csv"}, true},
		{"a range that does not parse is ignored", []string{"text/csv;;;=, application/json"}, false},
		{"a q that does not parse counts as 0", []string{"text/csv;q=high"}, false},
		{"application/* beats text/* on q", []string{"text/*;q=0.4, application/*;q=0.5"}, false},
		{"the most specific range decides", []string{"text/*;q=0.1, text/csv;q=0.9, application/json;q=0.5"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := prefersCSV(c.accept); got != c.want {
				t.Fatalf("prefersCSV(%q)=%v, want %v", c.accept, got, c.want)
			}
		})
	}
}

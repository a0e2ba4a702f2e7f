package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// apiTimePattern is the contract's timestamp format.
var apiTimePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

// apiBulk posts to /v3/bulk_restore as call does.
func apiBulk(t *testing.T, s *testServer, user, key string, body any) apiResponse {
	t.Helper()
	return call(t, http.MethodPost, s.URL+"/v3/bulk_restore", user, key, body)
}

// apiRaw sends a request with exactly the Content-Type given (none when
// empty) and decodes the JSON object it answers.
func apiRaw(t *testing.T, method, url, contentType, body, user, key string) apiResponse {
	t.Helper()
	return callRaw(t, method, url, contentType, strings.NewReader(body), user, key)
}

// apiKeys returns the sorted keys of an object.
func apiKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apiWantKeys fails unless m has exactly the given keys.
func apiWantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := apiKeys(m); !slices.Equal(got, want) {
		t.Fatalf("%s keys=%q, want %q", what, got, want)
	}
}

// apiWantTime fails unless v is a UTC timestamp in the contract's format,
// within a few minutes of now.
func apiWantTime(t *testing.T, what string, v any) string {
	t.Helper()
	s, ok := v.(string)
	if !ok || !apiTimePattern.MatchString(s) {
		t.Fatalf("%s=%v, want YYYY-MM-DD HH:MM:SS", what, v)
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.UTC)
	if err != nil {
		t.Fatalf("%s=%q: %v", what, s, err)
	}
	if d := time.Since(ts); d < -2*time.Second || d > 5*time.Minute {
		t.Fatalf("%s=%q is %v away from now (UTC %s), want a current UTC time", what, s, d, time.Now().UTC().Format(time.DateTime))
	}
	return s
}

// apiWantResult checks one per-number result of the contract's table.
func apiWantResult(t *testing.T, r map[string]any, number, status, message string, code, riu int, nr bool) {
	t.Helper()
	if r["number"] != number {
		t.Fatalf("number=%v, want %s", r["number"], number)
	}
	if r["status"] != status || r["message"] != message {
		t.Fatalf("%s: status=%v message=%v, want %s %q", number, r["status"], r["message"], status, message)
	}
	if r["status_code"] != float64(code) {
		t.Fatalf("%s: status_code=%v, want %d", number, r["status_code"], code)
	}
	if r["requires_identity_update"] != float64(riu) {
		t.Fatalf("%s: requires_identity_update=%v, want %d", number, r["requires_identity_update"], riu)
	}
	v, has := r["needs_registration"]
	if nr && v != float64(1) {
		t.Fatalf("%s: needs_registration=%v (present %v), want 1", number, v, has)
	}
	if !nr && has {
		t.Fatalf("%s: needs_registration=%v, want it absent", number, v)
	}
}

// apiHookReceiver is a webhook receiver on loopback answering a fixed status.
type apiHookReceiver struct {
	URL    string
	status int
	mu     sync.Mutex
	bodies [][]byte
	ctypes []string
}

// apiNewHookReceiver starts a receiver, closed at cleanup.
func apiNewHookReceiver(t *testing.T, status int) *apiHookReceiver {
	t.Helper()
	h := &apiHookReceiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.ctypes = append(h.ctypes, r.Header.Get("Content-Type"))
		h.mu.Unlock()
		w.WriteHeader(h.status)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/restore-hook"
	return h
}

// received returns the bodies received so far.
func (h *apiHookReceiver) received() ([][]byte, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies), slices.Clone(h.ctypes)
}

// apiClosedPort returns a loopback port nothing listens on.
func apiClosedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func TestBulkRestoreAppliesTheInventoryTableToDevNumbers(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreAppliesTheInventoryTableToDevNumbers)
}

// testBulkRestoreAppliesTheInventoryTableToDevNumbers runs TestBulkRestoreAppliesTheInventoryTableToDevNumbers on one database.
func testBulkRestoreAppliesTheInventoryTableToDevNumbers(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	type row struct {
		name, number, status, message string
		code, riu                     int
		nr                            bool
	}
	rows := []row{
		{"a number released an hour ago is restored", "15551230100", "success", "Number restored", 200, 0, false},
		{"a number needing both flags is restored with both", "15551230103", "success", "Number restored", 200, 1, true},
		{"a number needing identity update only has no needs_registration", "15551230105", "success", "Number restored", 200, 1, false},
		{"an unavailable number is a 409 failure", "15551230107", "failed", "Error: 'number is no longer available'", 409, 0, false},
		{"a number past the restore window is a 410 failure", "15551230109", "failed", "Error: 'restore window expired'", 410, 0, false},
		{"a number not in the inventory is a 404 failure", "15559999999", "failed", "Error: 'number not found'", 404, 0, false},
	}
	var numbers []string
	for _, r := range rows {
		numbers = append(numbers, r.number)
	}
	resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": numbers})
	if resp.Status != http.StatusOK {
		t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
	}
	if resp.Body["success_count"] != float64(3) || resp.Body["failure_count"] != float64(3) {
		t.Fatalf("success_count=%v failure_count=%v, want 3 and 3", resp.Body["success_count"], resp.Body["failure_count"])
	}
	rs := results(t, resp.Body)
	if len(rs) != len(rows) {
		t.Fatalf("results=%d, want %d", len(rs), len(rows))
	}
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			apiWantResult(t, rs[i], r.number, r.status, r.message, r.code, r.riu, r.nr)
		})
	}

	// A second restore finds the restored numbers active and the rest as before.
	again := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": numbers})
	if again.Status != http.StatusOK {
		t.Fatalf("status=%d, want 200: %s", again.Status, again.Raw)
	}
	rs2 := results(t, again.Body)
	for i, r := range rows {
		t.Run("a second restore of "+r.number+" is idempotent", func(t *testing.T) {
			want := r.message
			if r.status == "success" {
				want = "Number already active"
			}
			if rs2[i]["status"] != r.status || rs2[i]["message"] != want || rs2[i]["status_code"] != float64(r.code) {
				t.Fatalf("second restore: status=%v message=%v status_code=%v, want %s %q %d",
					rs2[i]["status"], rs2[i]["message"], rs2[i]["status_code"], r.status, want, r.code)
			}
		})
	}
}

func TestBulkRestoreAppliesTheInventoryTableToImportedNumbers(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreAppliesTheInventoryTableToImportedNumbers)
}

// testBulkRestoreAppliesTheInventoryTableToImportedNumbers runs TestBulkRestoreAppliesTheInventoryTableToImportedNumbers on one database.
func testBulkRestoreAppliesTheInventoryTableToImportedNumbers(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-db", db)
	key, _ := addUser(t, s.DB, "bob")
	now := time.Now().UTC()
	importCSV(t, s.DB, "bob", "number,state,released_at,requires_identity_update,needs_registration\n"+
		"15550000001,active,,0,0\n"+
		"15550000002,released,,1,1\n"+
		"15550000003,released,"+now.Add(-2*time.Hour).Format(time.RFC3339)+",0,1\n"+
		"15550000004,released,"+now.Add(-31*24*time.Hour).Format(time.DateTime)+",,\n"+
		"15550000005,unavailable,,,\n"+
		"15550000006,released,"+now.Add(-29*24*time.Hour).Format(time.DateTime)+",1,\n")
	rows := []struct {
		name, number, status, message string
		code, riu                     int
		nr                            bool
	}{
		{"an active number is already active", "15550000001", "success", "Number already active", 200, 0, false},
		{"a number released now with both flags is restored with both", "15550000002", "success", "Number restored", 200, 1, true},
		{"an RFC 3339 released_at within the window is restored", "15550000003", "success", "Number restored", 200, 0, true},
		{"a released_at 31 days ago is past the default 720h window", "15550000004", "failed", "Error: 'restore window expired'", 410, 0, false},
		{"an unavailable number is a 409", "15550000005", "failed", "Error: 'number is no longer available'", 409, 0, false},
		{"a released_at 29 days ago is within the default window", "15550000006", "success", "Number restored", 200, 1, false},
		{"a number of no inventory is not found", "15550000009", "failed", "Error: 'number not found'", 404, 0, false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			resp := apiBulk(t, s, "bob", key, map[string]any{"numbers": []string{r.number}})
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			apiWantResult(t, results(t, resp.Body)[0], r.number, r.status, r.message, r.code, r.riu, r.nr)
		})
	}
	t.Run("re-importing a number changes what a restore does", func(t *testing.T) {
		importCSV(t, s.DB, "bob", "number,state\n15550000005,released\n")
		resp := apiBulk(t, s, "bob", key, map[string]any{"numbers": []string{"15550000005"}})
		if resp.Status != http.StatusOK {
			t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
		}
		apiWantResult(t, results(t, resp.Body)[0], "15550000005", "success", "Number restored", 200, 0, false)
	})
}

func TestRestoreWindowFlagDecidesWhatIsExpired(t *testing.T) {
	t.Parallel()
	forEachStore(t, testRestoreWindowFlagDecidesWhatIsExpired)
}

// testRestoreWindowFlagDecidesWhatIsExpired runs TestRestoreWindowFlagDecidesWhatIsExpired on one database.
func testRestoreWindowFlagDecidesWhatIsExpired(t *testing.T, db string) {
	short := startServer(t, "-db", db, "-dev", "-restore-window", "30m")
	long := startServer(t, "-db", anotherDB(t, db), "-dev", "-restore-window", "2400h")
	bobKey, _ := addUser(t, short.DB, "bob")
	now := time.Now().UTC()
	importCSV(t, short.DB, "bob", "number,state,released_at\n"+
		"15550000010,released,"+now.Add(-10*time.Minute).Format(time.RFC3339)+"\n"+
		"15550000011,released,"+now.Add(-45*time.Minute).Format(time.RFC3339)+"\n")
	tests := []struct {
		name      string
		s         *testServer
		user, key string
		number    string
		wantCode  int
	}{
		{"with a 30m window a number released 10 minutes ago is restored", short, "bob", bobKey, "15550000010", 200},
		{"with a 30m window a number released 45 minutes ago is expired", short, "bob", bobKey, "15550000011", 410},
		{"with a 30m window a demo number released an hour ago is expired", short, "demo", "demo", "15551230100", 410},
		{"with a 2400h window a demo number released 90 days ago is restored", long, "demo", "demo", "15551230109", 200},
		{"with a 2400h window a demo number released an hour ago is restored", long, "demo", "demo", "15551230100", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiBulk(t, tc.s, tc.user, tc.key, map[string]any{"numbers": []string{tc.number}})
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			r := results(t, resp.Body)[0]
			if r["status_code"] != float64(tc.wantCode) {
				t.Fatalf("status_code=%v, want %d (%v)", r["status_code"], tc.wantCode, r["message"])
			}
		})
	}
}

func TestBulkRestoreSyncResponseHasTheContractShape(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreSyncResponseHasTheContractShape)
}

// testBulkRestoreSyncResponseHasTheContractShape runs TestBulkRestoreSyncResponseHasTheContractShape on one database.
func testBulkRestoreSyncResponseHasTheContractShape(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	in := []string{"15551230112", "15551230103", "15551230117", "15551230112", "15551230101"}
	want := []string{"15551230112", "15551230103", "15551230117", "15551230101"}
	resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": in})
	if resp.Status != http.StatusOK {
		t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
	}
	b := resp.Body
	t.Run("the body has exactly the contract's fields", func(t *testing.T) {
		apiWantKeys(t, "body", b, "job_uuid", "status", "total_numbers", "success_count", "failure_count",
			"webhook_url", "created_at", "started_at", "completed_at", "results")
	})
	t.Run("job_uuid is a UUID", func(t *testing.T) {
		id, _ := b["job_uuid"].(string)
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			t.Fatalf("job_uuid=%v, want a UUID", b["job_uuid"])
		}
	})
	t.Run("the job is completed with unique counts", func(t *testing.T) {
		if b["status"] != "completed" || b["total_numbers"] != float64(4) {
			t.Fatalf("status=%v total_numbers=%v, want completed and 4", b["status"], b["total_numbers"])
		}
		if b["success_count"] != float64(3) || b["failure_count"] != float64(1) {
			t.Fatalf("success_count=%v failure_count=%v, want 3 and 1", b["success_count"], b["failure_count"])
		}
	})
	t.Run("webhook_url is null when none was given", func(t *testing.T) {
		if v, has := b["webhook_url"]; !has || v != nil {
			t.Fatalf("webhook_url=%v (present %v), want null", v, has)
		}
	})
	t.Run("there is no webhook_error without a webhook", func(t *testing.T) {
		if v, has := b["webhook_error"]; has {
			t.Fatalf("webhook_error=%v, want it absent", v)
		}
	})
	t.Run("timestamps are UTC YYYY-MM-DD HH:MM:SS in order", func(t *testing.T) {
		c := apiWantTime(t, "created_at", b["created_at"])
		st := apiWantTime(t, "started_at", b["started_at"])
		done := apiWantTime(t, "completed_at", b["completed_at"])
		if c > st || st > done {
			t.Fatalf("created_at=%s started_at=%s completed_at=%s, want them in order", c, st, done)
		}
	})
	t.Run("results keep input order without duplicates", func(t *testing.T) {
		rs := results(t, b)
		var got []string
		for _, r := range rs {
			got = append(got, r["number"].(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("result numbers=%q, want %q", got, want)
		}
	})
	t.Run("each result has exactly the contract's fields", func(t *testing.T) {
		for _, r := range results(t, b) {
			fields := []string{"number", "status", "message", "status_code", "requires_identity_update"}
			if r["number"] == "15551230103" {
				fields = append(fields, "needs_registration")
			}
			apiWantKeys(t, "result "+r["number"].(string), r, fields...)
		}
	})
}

func TestBulkRestoreAcceptsEveryBodyEncodingOverHTTP(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreAcceptsEveryBodyEncodingOverHTTP)
}

// testBulkRestoreAcceptsEveryBodyEncodingOverHTTP runs TestBulkRestoreAcceptsEveryBodyEncodingOverHTTP on one database.
func testBulkRestoreAcceptsEveryBodyEncodingOverHTTP(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	tests := []struct {
		name, contentType, body string
		want                    []string
	}{
		{"a form with numbers_text like curl -d", "application/x-www-form-urlencoded",
			"numbers_text=15551230120%0D%0A15551230121", []string{"15551230120", "15551230121"}},
		{"a form repeating numbers", "application/x-www-form-urlencoded",
			"numbers=15551230122&numbers=15551230124&numbers_text=15551230126", []string{"15551230122", "15551230124", "15551230126"}},
		{"a text/plain body", "text/plain", "15551230128\n\n15551230130\n", []string{"15551230128", "15551230130"}},
		{"JSON without a Content-Type", "", `{"numbers":["15551230131"],"numbers_text":"15551230132"}`, []string{"15551230131", "15551230132"}},
		{"a form without a Content-Type", "", "numbers=15551230134", []string{"15551230134"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiRaw(t, http.MethodPost, s.URL+"/v3/bulk_restore", tc.contentType, tc.body, "demo", "demo")
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			var got []string
			for _, r := range results(t, resp.Body) {
				got = append(got, r["number"].(string))
				if r["status"] != "success" {
					t.Fatalf("%v: status=%v, want success", r["number"], r["status"])
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("result numbers=%q, want %q", got, tc.want)
			}
		})
	}
}

func TestBulkRestoreRejectsBadRequestsOverHTTP(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreRejectsBadRequestsOverHTTP)
}

// testBulkRestoreRejectsBadRequestsOverHTTP runs TestBulkRestoreRejectsBadRequestsOverHTTP on one database.
func testBulkRestoreRejectsBadRequestsOverHTTP(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev", "-max-numbers", "5", "-max-body", "1KiB")
	pad := strings.Repeat("x", 1100)
	tests := []struct {
		name, contentType, body string
		wantStatus              int
		wantInvalid             []any
		wantText                string
	}{
		{"more than -max-numbers unique numbers is a 413", "application/json",
			`{"numbers":["15551230150","15551230151","15551230152","15551230153","15551230154","15551230155"]}`, 413, nil, "5"},
		{"a body over -max-body is a 413", "application/json",
			`{"numbers":["15551230150"],"pad":"` + pad + `"}`, 413, nil, ""},
		{"one invalid number fails the request and is listed", "application/json",
			`{"numbers":["15551230150","12345"],"numbers_text":"1555123015x"}`, 400, []any{"12345", "1555123015x"}, ""},
		{"no numbers is a 400", "application/json", `{"numbers":[]}`, 400, nil, ""},
		{"malformed JSON is a 400 that says so", "application/json", `{"numbers":[`, 400, nil, "JSON"},
		{"numbers as a string is a 400 naming numbers", "application/json", `{"numbers":"15551230150"}`, 400, nil, "numbers"},
		{"a bad webhook_url is a 400 naming webhook_url", "application/json",
			`{"numbers":["15551230150"],"webhook_url":"ftp://client.example.com/"}`, 400, nil, "webhook_url"},
		{"an unsupported Content-Type is a 415", "application/xml", `<numbers/>`, 415, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiRaw(t, http.MethodPost, s.URL+"/v3/bulk_restore", tc.contentType, tc.body, "demo", "demo")
			if resp.Status != tc.wantStatus {
				t.Fatalf("status=%d, want %d: %s", resp.Status, tc.wantStatus, resp.Raw)
			}
			if resp.Body["status"] != "error" {
				t.Fatalf("body status=%v, want error", resp.Body["status"])
			}
			msg, _ := resp.Body["message"].(string)
			if msg == "" || !strings.Contains(msg, tc.wantText) {
				t.Fatalf("message=%q, want a message mentioning %q", msg, tc.wantText)
			}
			if tc.wantInvalid != nil {
				if got, _ := resp.Body["invalid_numbers"].([]any); !slices.Equal(got, tc.wantInvalid) {
					t.Fatalf("invalid_numbers=%v, want %v", resp.Body["invalid_numbers"], tc.wantInvalid)
				}
			}
		})
	}
	t.Run("a rejected request restores nothing", func(t *testing.T) {
		resp := call(t, http.MethodGet, s.URL+"/v3/restore/15551230150", "demo", "demo", nil)
		if resp.Status != http.StatusOK || resp.Body["message"] != "Number restored" {
			t.Fatalf("status=%d message=%v, want 200 and Number restored (the rejected requests must not have restored it)", resp.Status, resp.Body["message"])
		}
	})
}

func TestSyncLimitDecidesBetween200And202(t *testing.T) {
	t.Parallel()
	forEachStore(t, testSyncLimitDecidesBetween200And202)
}

// testSyncLimitDecidesBetween200And202 runs TestSyncLimitDecidesBetween200And202 on one database.
func testSyncLimitDecidesBetween200And202(t *testing.T, db string) {
	def := startServer(t, "-db", db, "-dev")
	three := startServer(t, "-db", anotherDB(t, db), "-dev", "-sync-limit", "3")
	zero := startServer(t, "-db", anotherDB(t, db), "-dev", "-sync-limit", "0")
	tests := []struct {
		name       string
		s          *testServer
		numbers    []string
		wantStatus int
		wantTotal  int
	}{
		{"10 numbers are answered synchronously", def, seqNumbers(15551230100, 10), 200, 10},
		{"11 numbers are queued", def, seqNumbers(15551230110, 11), 202, 11},
		{"11 entries with one duplicate are 10 numbers and synchronous", def,
			append(seqNumbers(15551230130, 10), "15551230130"), 200, 10},
		{"with -sync-limit 3, 3 numbers are synchronous", three, seqNumbers(15551230100, 3), 200, 3},
		{"with -sync-limit 3, 4 numbers are queued", three, seqNumbers(15551230110, 4), 202, 4},
		{"with -sync-limit 0, one number is queued", zero, seqNumbers(15551230100, 1), 202, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiBulk(t, tc.s, "demo", "demo", map[string]any{"numbers": tc.numbers})
			if resp.Status != tc.wantStatus {
				t.Fatalf("status=%d, want %d: %s", resp.Status, tc.wantStatus, resp.Raw)
			}
			if resp.Body["total_numbers"] != float64(tc.wantTotal) {
				t.Fatalf("total_numbers=%v, want %d", resp.Body["total_numbers"], tc.wantTotal)
			}
			id, _ := resp.Body["job_uuid"].(string)
			if tc.wantStatus == http.StatusOK {
				if resp.Body["status"] != "completed" || len(results(t, resp.Body)) != tc.wantTotal {
					t.Fatalf("status=%v results=%d, want completed and %d", resp.Body["status"], len(results(t, resp.Body)), tc.wantTotal)
				}
				return
			}
			apiWantKeys(t, "202 body", resp.Body, "job_uuid", "status", "total_numbers", "webhook_url", "message")
			statusPath := "/v3/bulk_restore_status?job_uuid=" + id
			if got := resp.Header.Get("Location"); got != statusPath {
				t.Fatalf("Location=%q, want %q", got, statusPath)
			}
			if resp.Body["status"] != "pending" {
				t.Fatalf("status=%v, want pending", resp.Body["status"])
			}
			if v, has := resp.Body["webhook_url"]; !has || v != nil {
				t.Fatalf("webhook_url=%v (present %v), want null", v, has)
			}
			if msg, _ := resp.Body["message"].(string); !strings.Contains(msg, statusPath) {
				t.Fatalf("message=%q, want it to say to poll %s", msg, statusPath)
			}
			done := waitJobDone(t, tc.s, "demo", "demo", id, 20*time.Second)
			if n := len(results(t, done.Body)); n != tc.wantTotal {
				t.Fatalf("results=%d, want %d", n, tc.wantTotal)
			}
		})
	}
}

func TestQueuedJobWithWebhookIsPostedTheFinalPayload(t *testing.T) {
	t.Parallel()
	forEachStore(t, testQueuedJobWithWebhookIsPostedTheFinalPayload)
}

// testQueuedJobWithWebhookIsPostedTheFinalPayload is
// TestQueuedJobWithWebhookIsPostedTheFinalPayload on one database.
func testQueuedJobWithWebhookIsPostedTheFinalPayload(t *testing.T, db string) {
	s := startServer(t, "-dev", "-db", db)
	hook := apiNewHookReceiver(t, http.StatusOK)
	numbers := seqNumbers(15551230160, 12)
	resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": numbers, "webhook_url": hook.URL})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	id, _ := resp.Body["job_uuid"].(string)
	t.Run("the 202 names the webhook", func(t *testing.T) {
		if want := "Restore job queued. Results will be POSTed to " + hook.URL; resp.Body["message"] != want {
			t.Fatalf("message=%v, want %q", resp.Body["message"], want)
		}
		if resp.Body["webhook_url"] != hook.URL {
			t.Fatalf("webhook_url=%v, want %s", resp.Body["webhook_url"], hook.URL)
		}
		if got := resp.Header.Get("Location"); got != "/v3/bulk_restore_status?job_uuid="+id {
			t.Fatalf("Location=%q, want the status path of %s", got, id)
		}
	})
	var bodies [][]byte
	var ctypes []string
	waitFor(t, 20*time.Second, "the webhook to be delivered", func() bool {
		bodies, ctypes = hook.received()
		return len(bodies) > 0
	})
	t.Run("the webhook body is the final payload", func(t *testing.T) {
		if ctypes[0] != "application/json" {
			t.Fatalf("webhook Content-Type=%q, want application/json", ctypes[0])
		}
		var p map[string]any
		if err := json.Unmarshal(bodies[0], &p); err != nil {
			t.Fatalf("webhook body is not JSON: %v: %s", err, bodies[0])
		}
		apiWantKeys(t, "webhook body", p, "job_uuid", "status", "total_numbers", "success_count", "failure_count",
			"webhook_url", "created_at", "started_at", "completed_at", "results")
		if p["job_uuid"] != id || p["status"] != "completed" || p["total_numbers"] != float64(12) {
			t.Fatalf("job_uuid=%v status=%v total_numbers=%v, want %s completed 12", p["job_uuid"], p["status"], p["total_numbers"], id)
		}
		rs := results(t, p)
		for i, r := range rs {
			if r["number"] != numbers[i] {
				t.Fatalf("results[%d].number=%v, want %s", i, r["number"], numbers[i])
			}
		}
		// 167 is unavailable, 169 expired.
		if p["success_count"] != float64(10) || p["failure_count"] != float64(2) {
			t.Fatalf("success_count=%v failure_count=%v, want 10 and 2", p["success_count"], p["failure_count"])
		}
	})
	t.Run("the status endpoint records the delivery", func(t *testing.T) {
		var st apiResponse
		waitFor(t, 10*time.Second, "webhook_delivered_at to be recorded", func() bool {
			st = call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil)
			return st.Body["webhook_delivered_at"] != nil
		})
		apiWantTime(t, "webhook_delivered_at", st.Body["webhook_delivered_at"])
		if st.Body["webhook_attempts"] != float64(1) {
			t.Fatalf("webhook_attempts=%v, want 1", st.Body["webhook_attempts"])
		}
		if v, has := st.Body["webhook_error"]; !has || v != nil {
			t.Fatalf("webhook_error=%v (present %v), want null", v, has)
		}
	})
}

package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// apiStatus gets /v3/bulk_restore_status with a raw query.
func apiStatus(t *testing.T, s *testServer, user, key, query string) apiResponse {
	t.Helper()
	return call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?"+query, user, key, nil)
}

// apiSyncJob restores numbers synchronously for demo and returns the job's UUID.
func apiSyncJob(t *testing.T, s *testServer, numbers ...string) string {
	t.Helper()
	resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": numbers})
	if resp.Status != http.StatusOK {
		t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
	}
	return resp.Body["job_uuid"].(string)
}

func TestBulkRestoreStatusValidatesItsQuery(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreStatusValidatesItsQuery)
}

// testBulkRestoreStatusValidatesItsQuery runs TestBulkRestoreStatusValidatesItsQuery on one database.
func testBulkRestoreStatusValidatesItsQuery(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	id := apiSyncJob(t, s, "15551230100", "15551230103", "15551230107")
	tests := []struct {
		name       string
		query      string
		wantStatus int
	}{
		{"a missing job_uuid is a 400", "", 400},
		{"an empty job_uuid is a 400", "job_uuid=", 400},
		{"a job_uuid that is not a UUID is a 400", "job_uuid=12345", 400},
		{"a job_uuid with a non-hex digit is a 400", "job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738fz", 400},
		{"an unknown job is a 404", "job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0", 404},
		{"a known job is a 200", "job_uuid=" + id, 200},
		{"an upper-case job_uuid finds the same job", "job_uuid=" + strings.ToUpper(id), 200},
		{"a number with letters is a 400", "job_uuid=" + id + "&number=1555123010a", 400},
		{"a number with a plus is a 400", "job_uuid=" + id + "&number=" + url.QueryEscape("+15551230100"), 400},
		{"a number with dashes is a 400", "job_uuid=" + id + "&number=1555-123-0100", 400},
		{"a number not in the job is a 404", "job_uuid=" + id + "&number=15551230199", 404},
		{"a number in the job is a 200", "job_uuid=" + id + "&number=15551230103", 200},
		{"a negative offset is a 400", "job_uuid=" + id + "&offset=-1", 400},
		{"a non-numeric limit is a 400", "job_uuid=" + id + "&limit=ten", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiStatus(t, s, "demo", "demo", tc.query)
			if resp.Status != tc.wantStatus {
				t.Fatalf("status=%d, want %d: %s", resp.Status, tc.wantStatus, resp.Raw)
			}
			if tc.wantStatus != 200 {
				if resp.Body["status"] != "error" || resp.Body["message"] == "" {
					t.Fatalf("body=%s, want {\"status\":\"error\",\"message\":...}", resp.Raw)
				}
				return
			}
			if resp.Body["job_uuid"] != id {
				t.Fatalf("job_uuid=%v, want %s", resp.Body["job_uuid"], id)
			}
		})
	}
}

func TestBulkRestoreStatusHidesOtherUsersJobs(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreStatusHidesOtherUsersJobs)
}

// testBulkRestoreStatusHidesOtherUsersJobs runs TestBulkRestoreStatusHidesOtherUsersJobs on one database.
func testBulkRestoreStatusHidesOtherUsersJobs(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	bobKey, _ := addUser(t, s.DB, "bob")
	id := apiSyncJob(t, s, "15551230100")
	unknown := apiStatus(t, s, "bob", bobKey, "job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0")
	tests := []struct {
		name  string
		query string
	}{
		{"another user's job is a 404", "job_uuid=" + id},
		{"another user's job with a number of it is a 404", "job_uuid=" + id + "&number=15551230100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiStatus(t, s, "bob", bobKey, tc.query)
			if resp.Status != http.StatusNotFound {
				t.Fatalf("status=%d, want 404: %s", resp.Status, resp.Raw)
			}
			if resp.Body["message"] != unknown.Body["message"] {
				t.Fatalf("message=%v, want the unknown job's %v (indistinguishable)", resp.Body["message"], unknown.Body["message"])
			}
		})
	}
	t.Run("the owner still sees the job", func(t *testing.T) {
		if resp := apiStatus(t, s, "demo", "demo", "job_uuid="+id); resp.Status != http.StatusOK {
			t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
		}
	})
}

func TestBulkRestoreStatusReportsEachNumber(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreStatusReportsEachNumber)
}

// testBulkRestoreStatusReportsEachNumber runs TestBulkRestoreStatusReportsEachNumber on one database.
func testBulkRestoreStatusReportsEachNumber(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	numbers := []string{"15551230101", "15551230103", "15551230107", "15551230109", "15559999999"}
	id := apiSyncJob(t, s, numbers...)
	resp := apiStatus(t, s, "demo", "demo", "job_uuid="+id)
	if resp.Status != http.StatusOK {
		t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
	}
	b := resp.Body
	t.Run("the summary has the job fields and the webhook fields", func(t *testing.T) {
		for _, k := range []string{"job_uuid", "status", "total_numbers", "success_count", "failure_count", "webhook_url",
			"created_at", "started_at", "completed_at", "results", "webhook_attempts", "webhook_delivered_at", "webhook_error"} {
			if _, has := b[k]; !has {
				t.Fatalf("status body lacks %q: %s", k, resp.Raw)
			}
		}
		if _, has := b["filtered_number"]; has {
			t.Fatalf("filtered_number=%v without a number filter, want it absent", b["filtered_number"])
		}
	})
	t.Run("the summary of a finished job without webhook", func(t *testing.T) {
		if b["status"] != "completed" || b["total_numbers"] != float64(5) || b["success_count"] != float64(2) || b["failure_count"] != float64(3) {
			t.Fatalf("status=%v total=%v success=%v failure=%v, want completed 5 2 3",
				b["status"], b["total_numbers"], b["success_count"], b["failure_count"])
		}
		if b["webhook_url"] != nil || b["webhook_attempts"] != float64(0) || b["webhook_delivered_at"] != nil || b["webhook_error"] != nil {
			t.Fatalf("webhook_url=%v webhook_attempts=%v webhook_delivered_at=%v webhook_error=%v, want null 0 null null",
				b["webhook_url"], b["webhook_attempts"], b["webhook_delivered_at"], b["webhook_error"])
		}
		apiWantTime(t, "created_at", b["created_at"])
		apiWantTime(t, "started_at", b["started_at"])
		apiWantTime(t, "completed_at", b["completed_at"])
	})
	rs := results(t, b)
	want := []struct{ status, message string }{
		{"success", "Number restored"},
		{"success", "Number restored"},
		{"failed", "Error: 'number is no longer available'"},
		{"failed", "Error: 'restore window expired'"},
		{"failed", "Error: 'number not found'"},
	}
	if len(rs) != len(numbers) {
		t.Fatalf("results=%d, want %d", len(rs), len(numbers))
	}
	for i, r := range rs {
		t.Run("number "+numbers[i]+" has its state, attempts and times", func(t *testing.T) {
			if r["number"] != numbers[i] {
				t.Fatalf("number=%v, want %s (input order)", r["number"], numbers[i])
			}
			if r["status"] != want[i].status || r["message"] != want[i].message {
				t.Fatalf("status=%v message=%v, want %s %q", r["status"], r["message"], want[i].status, want[i].message)
			}
			if r["attempts"] != float64(1) {
				t.Fatalf("attempts=%v, want 1", r["attempts"])
			}
			started := apiWantTime(t, "started_at", r["started_at"])
			completed := apiWantTime(t, "completed_at", r["completed_at"])
			if started > completed {
				t.Fatalf("started_at=%s after completed_at=%s", started, completed)
			}
		})
	}
}

func TestBulkRestoreStatusFiltersOneNumber(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreStatusFiltersOneNumber)
}

// testBulkRestoreStatusFiltersOneNumber runs TestBulkRestoreStatusFiltersOneNumber on one database.
func testBulkRestoreStatusFiltersOneNumber(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	id := apiSyncJob(t, s, "15551230100", "15551230103", "15551230107")
	tests := []struct {
		name, number, status string
		code                 int
		nr                   bool
	}{
		{"a filtered success with both flags", "15551230103", "success", 200, true},
		{"a filtered success without needs_registration", "15551230100", "success", 200, false},
		{"a filtered failure", "15551230107", "failed", 409, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiStatus(t, s, "demo", "demo", "job_uuid="+id+"&number="+tc.number)
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			if resp.Body["filtered_number"] != tc.number {
				t.Fatalf("filtered_number=%v, want %s", resp.Body["filtered_number"], tc.number)
			}
			if resp.Body["total_numbers"] != float64(3) {
				t.Fatalf("total_numbers=%v, want the job's 3", resp.Body["total_numbers"])
			}
			rs := results(t, resp.Body)
			if len(rs) != 1 {
				t.Fatalf("results=%d, want only the filtered number", len(rs))
			}
			r := rs[0]
			if r["number"] != tc.number || r["status"] != tc.status || r["status_code"] != float64(tc.code) {
				t.Fatalf("result=%v, want %s %s %d", r, tc.number, tc.status, tc.code)
			}
			if v, has := r["needs_registration"]; tc.nr != has || (has && v != float64(1)) {
				t.Fatalf("needs_registration=%v (present %v), want present=%v", v, has, tc.nr)
			}
		})
	}
}

func TestBulkRestoreStatusPagesWithLimitAndOffset(t *testing.T) {
	t.Parallel()
	forEachStore(t, testBulkRestoreStatusPagesWithLimitAndOffset)
}

// testBulkRestoreStatusPagesWithLimitAndOffset runs TestBulkRestoreStatusPagesWithLimitAndOffset on one database.
func testBulkRestoreStatusPagesWithLimitAndOffset(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	numbers := seqNumbers(15551230100, 25)
	resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	id := resp.Body["job_uuid"].(string)
	waitJobDone(t, s, "demo", "demo", id, 20*time.Second)
	tests := []struct {
		name string
		page string
		want []string
	}{
		{"no paging returns every number", "", numbers},
		{"limit alone returns the first numbers", "&limit=5", numbers[:5]},
		{"limit and offset return a middle page", "&limit=5&offset=10", numbers[10:15]},
		{"offset alone returns the rest", "&offset=20", numbers[20:]},
		{"a last page may be short", "&limit=10&offset=20", numbers[20:]},
		{"an offset past the end returns no results", "&offset=30", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := apiStatus(t, s, "demo", "demo", "job_uuid="+id+tc.page)
			if st.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", st.Status, st.Raw)
			}
			if st.Body["total_numbers"] != float64(25) {
				t.Fatalf("total_numbers=%v, want 25 whatever the page", st.Body["total_numbers"])
			}
			var got []string
			for _, r := range results(t, st.Body) {
				got = append(got, r["number"].(string))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("page numbers=%q, want %q", got, tc.want)
			}
		})
	}
}

func TestSingleRestoreEndpoint(t *testing.T) {
	t.Parallel()
	forEachStore(t, testSingleRestoreEndpoint)
}

// testSingleRestoreEndpoint runs TestSingleRestoreEndpoint on one database.
func testSingleRestoreEndpoint(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	tests := []struct {
		name, method, number string
		wantHTTP             int
		status, message      string
		riu                  int
		nr                   bool
	}{
		{"GET restores a released number", http.MethodGet, "15551230100", 200, "success", "Number restored", 0, false},
		{"POST restores a number with both flags", http.MethodPost, "15551230103", 200, "success", "Number restored", 1, true},
		{"GET of a restored number is already active", http.MethodGet, "15551230100", 200, "success", "Number already active", 0, false},
		{"an unavailable number answers 409", http.MethodGet, "15551230117", 409, "failed", "Error: 'number is no longer available'", 0, false},
		{"an expired number answers 410", http.MethodPost, "15551230119", 410, "failed", "Error: 'restore window expired'", 0, false},
		{"an unknown number answers 404", http.MethodGet, "15559999999", 404, "failed", "Error: 'number not found'", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := call(t, tc.method, s.URL+"/v3/restore/"+tc.number, "demo", "demo", nil)
			if resp.Status != tc.wantHTTP {
				t.Fatalf("status=%d, want %d: %s", resp.Status, tc.wantHTTP, resp.Raw)
			}
			b := resp.Body
			if b["status"] != tc.status || b["message"] != tc.message || b["status_code"] != float64(tc.wantHTTP) {
				t.Fatalf("body=%s, want status %s message %q status_code %d", resp.Raw, tc.status, tc.message, tc.wantHTTP)
			}
			if tc.status == "success" && tc.message == "Number restored" {
				apiWantResult(t, b, tc.number, tc.status, tc.message, tc.wantHTTP, tc.riu, tc.nr)
			}
			id, _ := b["job_uuid"].(string)
			if id == "" {
				t.Fatalf("job_uuid=%v, want the one-number job's UUID", b["job_uuid"])
			}
			st := apiStatus(t, s, "demo", "demo", "job_uuid="+id)
			if st.Status != http.StatusOK {
				t.Fatalf("status endpoint: status=%d, want 200: %s", st.Status, st.Raw)
			}
			rs := results(t, st.Body)
			if st.Body["total_numbers"] != float64(1) || len(rs) != 1 || rs[0]["number"] != tc.number || rs[0]["status"] != tc.status {
				t.Fatalf("status endpoint body=%s, want a one-number job of %s with status %s", st.Raw, tc.number, tc.status)
			}
		})
	}
	for _, bad := range []struct{ name, path string }{
		{"a number with letters is a 400", "1555123010a"},
		{"a 6-digit number is a 400", "123456"},
		{"a 16-digit number is a 400", "1234567890123456"},
		{"non-ASCII digits are a 400", url.PathEscape("١٢٣٤٥٦٧٨")},
	} {
		t.Run(bad.name, func(t *testing.T) {
			resp := call(t, http.MethodGet, s.URL+"/v3/restore/"+bad.path, "demo", "demo", nil)
			if resp.Status != http.StatusBadRequest || resp.Body["status"] != "error" {
				t.Fatalf("status=%d body=%s, want 400 with status error", resp.Status, resp.Raw)
			}
		})
	}
}

func TestAuthenticationFailuresAre401WithChallenge(t *testing.T) {
	t.Parallel()
	forEachStore(t, testAuthenticationFailuresAre401WithChallenge)
}

// testAuthenticationFailuresAre401WithChallenge runs TestAuthenticationFailuresAre401WithChallenge on one database.
func testAuthenticationFailuresAre401WithChallenge(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	bobKey, _ := addUser(t, s.DB, "bob")
	endpoints := []struct{ method, path string }{
		{http.MethodPost, "/v3/bulk_restore"},
		{http.MethodGet, "/v3/bulk_restore_status?job_uuid=8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"},
		{http.MethodGet, "/v3/restore/15551230100"},
		{http.MethodPost, "/v3/restore/15551230100"},
	}
	creds := []struct{ name, user, key string }{
		{"no credentials", "", ""},
		{"a wrong API key", "demo", "wrong"},
		{"an empty API key", "demo", ""},
		{"an unknown user", "mallory", "demo"},
		{"another user's key", "demo", bobKey},
	}
	for _, e := range endpoints {
		for _, c := range creds {
			t.Run(e.method+" "+e.path+" with "+c.name+" is a 401", func(t *testing.T) {
				resp := call(t, e.method, s.URL+e.path, c.user, c.key, map[string]any{"numbers": []string{"15551230100"}})
				if resp.Status != http.StatusUnauthorized {
					t.Fatalf("status=%d, want 401: %s", resp.Status, resp.Raw)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="bulkrestore"` {
					t.Fatalf("WWW-Authenticate=%q, want %q", got, `Basic realm="bulkrestore"`)
				}
				if resp.Body["status"] != "error" || resp.Body["message"] == "" {
					t.Fatalf("body=%s, want status error with a message", resp.Raw)
				}
			})
		}
	}
	t.Run("the demo number was not restored by any rejected request", func(t *testing.T) {
		resp := call(t, http.MethodGet, s.URL+"/v3/restore/15551230100", "demo", "demo", nil)
		if resp.Status != http.StatusOK || resp.Body["message"] != "Number restored" {
			t.Fatalf("status=%d message=%v, want 200 Number restored", resp.Status, resp.Body["message"])
		}
	})
}

func TestOperationalEndpointsNeedNoAuth(t *testing.T) {
	t.Parallel()
	forEachStore(t, testOperationalEndpointsNeedNoAuth)
}

// testOperationalEndpointsNeedNoAuth runs TestOperationalEndpointsNeedNoAuth on one database.
func testOperationalEndpointsNeedNoAuth(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-db", db)
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run("GET "+path+" answers 200 without credentials", func(t *testing.T) {
			resp := call(t, http.MethodGet, s.URL+path, "", "", nil)
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			if resp.Body["status"] != "ok" {
				t.Fatalf("body=%s, want status ok", resp.Raw)
			}
		})
	}
}

func TestUnknownPathsAre404AndWrongMethods405(t *testing.T) {
	t.Parallel()
	forEachStore(t, testUnknownPathsAre404AndWrongMethods405)
}

// testUnknownPathsAre404AndWrongMethods405 runs TestUnknownPathsAre404AndWrongMethods405 on one database.
func testUnknownPathsAre404AndWrongMethods405(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	tests := []struct {
		name, method, path string
		wantStatus         int
	}{
		{"an unknown top-level path is a 404", http.MethodGet, "/nope", 404},
		{"the root is a 404", http.MethodGet, "/", 404},
		{"an unknown v3 path is a 404", http.MethodGet, "/v3/nope", 404},
		{"v2 is a 404", http.MethodPost, "/v2/bulk_restore", 404},
		{"restore without a number is a 404", http.MethodGet, "/v3/restore/", 404},
		{"GET on bulk_restore is a 405", http.MethodGet, "/v3/bulk_restore", 405},
		{"PUT on bulk_restore is a 405", http.MethodPut, "/v3/bulk_restore", 405},
		{"POST on bulk_restore_status is a 405", http.MethodPost, "/v3/bulk_restore_status", 405},
		{"DELETE on restore is a 405", http.MethodDelete, "/v3/restore/15551230100", 405},
		{"POST on healthz is a 405", http.MethodPost, "/healthz", 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := call(t, tc.method, s.URL+tc.path, "demo", "demo", nil)
			if resp.Status != tc.wantStatus {
				t.Fatalf("status=%d, want %d: %s", resp.Status, tc.wantStatus, resp.Raw)
			}
			if resp.Body["status"] != "error" || resp.Body["message"] == "" {
				t.Fatalf("body=%s, want {\"status\":\"error\",\"message\":...}", resp.Raw)
			}
		})
	}
}

func TestUsersNeverSeeEachOthersInventory(t *testing.T) {
	t.Parallel()
	forEachStore(t, testUsersNeverSeeEachOthersInventory)
}

// testUsersNeverSeeEachOthersInventory runs TestUsersNeverSeeEachOthersInventory on one database.
func testUsersNeverSeeEachOthersInventory(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	bobKey, _ := addUser(t, s.DB, "bob")
	importCSV(t, s.DB, "bob", "number,state\n15550000001,released\n")
	tests := []struct {
		name, user, key, number string
		wantCode                int
		wantMessage             string
	}{
		{"bob restoring demo's number gets not found", "bob", bobKey, "15551230100", 404, "Error: 'number not found'"},
		{"bob restoring demo's unavailable number gets not found", "bob", bobKey, "15551230107", 404, "Error: 'number not found'"},
		{"demo restoring bob's number gets not found", "demo", "demo", "15550000001", 404, "Error: 'number not found'"},
		{"demo's number is untouched by bob's attempt", "demo", "demo", "15551230100", 200, "Number restored"},
		{"bob's number is untouched by demo's attempt", "bob", bobKey, "15550000001", 200, "Number restored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := apiBulk(t, s, tc.user, tc.key, map[string]any{"numbers": []string{tc.number}})
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			r := results(t, resp.Body)[0]
			if r["status_code"] != float64(tc.wantCode) || r["message"] != tc.wantMessage {
				t.Fatalf("status_code=%v message=%v, want %d %q", r["status_code"], r["message"], tc.wantCode, tc.wantMessage)
			}
		})
	}
}

func TestQueuedRestoresLeaveNumbersActive(t *testing.T) {
	t.Parallel()
	forEachStore(t, testQueuedRestoresLeaveNumbersActive)
}

// testQueuedRestoresLeaveNumbersActive runs TestQueuedRestoresLeaveNumbersActive on one database.
func testQueuedRestoresLeaveNumbersActive(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	numbers := seqNumbers(15551230140, 11)
	resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	done := waitJobDone(t, s, "demo", "demo", resp.Body["job_uuid"].(string), 20*time.Second)
	for i, r := range results(t, done.Body) {
		if r["status"] == "success" && r["message"] != "Number restored" {
			t.Fatalf("first restore of %s: message=%v, want Number restored", numbers[i], r["message"])
		}
	}
	for _, tc := range []struct{ number, message string }{
		{"15551230140", "Number already active"},
		{"15551230143", "Number already active"},
		{"15551230145", "Number already active"},
		{"15551230147", "Error: 'number is no longer available'"},
		{"15551230149", "Error: 'restore window expired'"},
	} {
		t.Run("after the job "+tc.number+" says "+tc.message, func(t *testing.T) {
			r := call(t, http.MethodGet, s.URL+"/v3/restore/"+tc.number, "demo", "demo", nil)
			if r.Body["message"] != tc.message {
				t.Fatalf("message=%v, want %q", r.Body["message"], tc.message)
			}
		})
	}
}

func TestWebhookAddressPolicyAtSubmit(t *testing.T) {
	t.Parallel()
	forEachStore(t, testWebhookAddressPolicyAtSubmit)
}

// testWebhookAddressPolicyAtSubmit runs TestWebhookAddressPolicyAtSubmit on one database.
func testWebhookAddressPolicyAtSubmit(t *testing.T, db string) {
	hook := "http://127.0.0.1:" + apiClosedPort(t) + "/hook"
	tests := []struct {
		name       string
		args       []string
		wantStatus int
	}{
		{"without -dev a loopback webhook is refused", nil, 400},
		{"with -allow-private-webhooks a loopback webhook is accepted", []string{"-allow-private-webhooks"}, 200},
		{"with -dev a loopback webhook is accepted", []string{"-dev"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, append([]string{"-db", anotherDB(t, db)}, append(tc.args, "-webhook-retry-base", "1h", "-webhook-retry-max", "2h")...)...)
			key, _ := addUser(t, s.DB, "bob")
			resp := apiBulk(t, s, "bob", key, map[string]any{"numbers": []string{"15551230100"}, "webhook_url": hook})
			if resp.Status != tc.wantStatus {
				t.Fatalf("status=%d, want %d: %s", resp.Status, tc.wantStatus, resp.Raw)
			}
			if tc.wantStatus == 200 {
				if got, _ := resp.Body["webhook_error"].(string); !strings.HasPrefix(got, "Failed to connect to 127.0.0.1 port") {
					t.Fatalf("webhook_error=%v, want a connection failure", resp.Body["webhook_error"])
				}
				if strings.Index(string(resp.Raw), `"webhook_error"`) < strings.Index(string(resp.Raw), `"results"`) {
					t.Fatalf("webhook_error comes before results: %s", resp.Raw)
				}
			}
		})
	}
}

func TestSyncWebhookAttemptIsReportedInline(t *testing.T) {
	t.Parallel()
	forEachStore(t, testSyncWebhookAttemptIsReportedInline)
}

// testSyncWebhookAttemptIsReportedInline runs TestSyncWebhookAttemptIsReportedInline on one database.
func testSyncWebhookAttemptIsReportedInline(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev", "-webhook-retry-base", "1h", "-webhook-retry-max", "2h")
	tests := []struct {
		name          string
		receiver      int
		wantError     any // nil: no webhook_error in the 200
		wantDelivered bool
	}{
		{"a 204 from the receiver is a delivery without webhook_error", http.StatusNoContent, nil, true},
		{"a 500 from the receiver is reported after results", http.StatusInternalServerError, "HTTP 500 from webhook", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hook := apiNewHookReceiver(t, tc.receiver)
			number := seqNumbers(15551230180+i, 1)
			resp := apiBulk(t, s, "demo", "demo", map[string]any{"numbers": number, "webhook_url": hook.URL})
			if resp.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", resp.Status, resp.Raw)
			}
			if resp.Body["webhook_url"] != hook.URL {
				t.Fatalf("webhook_url=%v, want %s", resp.Body["webhook_url"], hook.URL)
			}
			if got, has := resp.Body["webhook_error"]; got != tc.wantError || has != (tc.wantError != nil) {
				t.Fatalf("webhook_error=%v (present %v), want %v", got, has, tc.wantError)
			}
			if tc.wantError != nil && strings.Index(string(resp.Raw), `"webhook_error"`) < strings.Index(string(resp.Raw), `"results"`) {
				t.Fatalf("webhook_error comes before results: %s", resp.Raw)
			}
			if bodies, _ := hook.received(); len(bodies) != 1 {
				t.Fatalf("receiver got %d requests before the answer, want 1", len(bodies))
			}
			id, _ := resp.Body["job_uuid"].(string)
			st := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "demo", "demo", nil)
			if st.Status != http.StatusOK {
				t.Fatalf("status=%d, want 200: %s", st.Status, st.Raw)
			}
			if st.Body["webhook_attempts"] != float64(1) {
				t.Fatalf("webhook_attempts=%v, want 1", st.Body["webhook_attempts"])
			}
			if (st.Body["webhook_delivered_at"] != nil) != tc.wantDelivered {
				t.Fatalf("webhook_delivered_at=%v, want set=%v", st.Body["webhook_delivered_at"], tc.wantDelivered)
			}
			if st.Body["webhook_error"] != tc.wantError {
				t.Fatalf("status webhook_error=%v, want %v", st.Body["webhook_error"], tc.wantError)
			}
		})
	}
}

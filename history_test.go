package main

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// apiHistory gets a number's history with a raw query.
func apiHistory(t *testing.T, base, user, key, number, query string) apiResponse {
	t.Helper()
	return call(t, http.MethodGet, base+"/v3/numbers/"+number+"/history?"+query, user, key, nil)
}

// historyJobs returns the job_uuid of every entry of a history body.
func historyJobs(t *testing.T, body map[string]any) []string {
	t.Helper()
	entries, ok := body["history"].([]any)
	if !ok {
		t.Fatalf("no history array: %v", body)
	}
	out := []string{}
	for _, e := range entries {
		out = append(out, e.(map[string]any)["job_uuid"].(string))
	}
	return out
}

func TestNumberHistoryShowsOnlyTheCallersJobs(t *testing.T) {
	t.Parallel()
	forEachStore(t, testNumberHistoryShowsOnlyTheCallersJobs)
}

// testNumberHistoryShowsOnlyTheCallersJobs runs TestNumberHistoryShowsOnlyTheCallersJobs on one database.
func testNumberHistoryShowsOnlyTheCallersJobs(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	bobKey, _ := addUser(t, s.DB, "bob")
	const number = "15551230105"
	var demoJobs, bobJobs []string
	for range 2 {
		demoJobs = append(demoJobs, apiSyncJob(t, s, number, "15551230106"))
		resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "bob", bobKey, map[string]any{"numbers": []string{number}})
		bobJobs = append(bobJobs, resp.Body["job_uuid"].(string))
	}
	slices.Reverse(demoJobs)
	slices.Reverse(bobJobs)

	t.Run("each user sees its own jobs, newest first", func(t *testing.T) {
		for _, c := range []struct {
			user, key string
			want      []string
		}{{"demo", "demo", demoJobs}, {"bob", bobKey, bobJobs}} {
			resp := apiHistory(t, s.URL, c.user, c.key, number, "")
			if resp.Status != http.StatusOK {
				t.Fatalf("%s: status=%d: %s", c.user, resp.Status, resp.Raw)
			}
			if got := historyJobs(t, resp.Body); !slices.Equal(got, c.want) {
				t.Fatalf("%s sees %v, want %v", c.user, got, c.want)
			}
		}
	})
	t.Run("an entry is the number's state in that job, in the contract's fields", func(t *testing.T) {
		resp := apiHistory(t, s.URL, "demo", "demo", number, "")
		entries := resp.Body["history"].([]any)
		newest, oldest := entries[0].(map[string]any), entries[1].(map[string]any)
		var keys []string
		for k := range newest {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if want := []string{"attempts", "completed_at", "job_uuid", "message", "status", "status_code"}; !slices.Equal(keys, want) {
			t.Fatalf("entry fields %v, want %v", keys, want)
		}
		if oldest["message"] != msgRestored || newest["message"] != "Number already active" ||
			newest["status"] != "success" || newest["status_code"] != float64(200) || newest["attempts"] != float64(1) {
			t.Fatalf("entries %v, %v", newest, oldest)
		}
		bobs := apiHistory(t, s.URL, "bob", bobKey, number, "").Body["history"].([]any)[0].(map[string]any)
		if bobs["status"] != "failed" || bobs["status_code"] != float64(404) {
			t.Fatalf("bob's entry %v, want his own failure (he has no inventory)", bobs)
		}
	})
	t.Run("inventory is the caller's row, or null without one", func(t *testing.T) {
		inv, ok := apiHistory(t, s.URL, "demo", "demo", number, "").Body["inventory"].(map[string]any)
		if !ok || inv["state"] != "active" || inv["requires_identity_update"] == nil || inv["needs_registration"] == nil ||
			inv["released_at"] == nil {
			t.Fatalf("demo's inventory %v, want the active row", inv)
		}
		if resp := apiHistory(t, s.URL, "bob", bobKey, number, ""); resp.Body["inventory"] != nil {
			t.Fatalf("bob's inventory %v, want null (the row is demo's)", resp.Body["inventory"])
		}
	})
	t.Run("another user's job is no cursor", func(t *testing.T) {
		resp := apiHistory(t, s.URL, "bob", bobKey, number, "before="+demoJobs[0])
		if resp.Status != http.StatusNotFound {
			t.Fatalf("status=%d, want 404: %s", resp.Status, resp.Raw)
		}
	})
	t.Run("a number in no job of the caller has an empty history", func(t *testing.T) {
		resp := apiHistory(t, s.URL, "bob", bobKey, "15551230106", "")
		if resp.Status != http.StatusOK || len(historyJobs(t, resp.Body)) != 0 || resp.Body["next_before"] != nil ||
			!strings.Contains(string(resp.Raw), `"history":[]`) {
			t.Fatalf("status=%d: %s, want 200 with []", resp.Status, resp.Raw)
		}
	})
}

func TestNumberHistoryPagesWithBefore(t *testing.T) {
	t.Parallel()
	forEachStore(t, testNumberHistoryPagesWithBefore)
}

// testNumberHistoryPagesWithBefore runs TestNumberHistoryPagesWithBefore on one database.
func testNumberHistoryPagesWithBefore(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	const number = "15551230110"
	var jobs []string
	for range 5 {
		jobs = append(jobs, apiSyncJob(t, s, number))
		apiSyncJob(t, s, "15551230111") // a job without the number between them
	}
	slices.Reverse(jobs)
	var seen []string
	before := ""
	for page := 0; page < 5; page++ {
		query := "limit=2"
		if before != "" {
			query += "&before=" + before
		}
		resp := apiHistory(t, s.URL, "demo", "demo", number, query)
		if resp.Status != http.StatusOK {
			t.Fatalf("page %d: status=%d: %s", page, resp.Status, resp.Raw)
		}
		got := historyJobs(t, resp.Body)
		seen = append(seen, got...)
		next, _ := resp.Body["next_before"].(string)
		if next == "" {
			break
		}
		if next != got[len(got)-1] {
			t.Fatalf("next_before=%s, want the page's last job %s", next, got[len(got)-1])
		}
		before = next
	}
	if !slices.Equal(seen, jobs) {
		t.Fatalf("paged through %v, want %v", seen, jobs)
	}
	t.Run("the default page is 20 and a full last page says there is none after", func(t *testing.T) {
		resp := apiHistory(t, s.URL, "demo", "demo", number, "limit=5")
		if len(historyJobs(t, resp.Body)) != 5 || resp.Body["next_before"] != nil {
			t.Fatalf("limit=5 of 5: %s", resp.Raw)
		}
		if got := historyJobs(t, apiHistory(t, s.URL, "demo", "demo", number, "").Body); len(got) != 5 {
			t.Fatalf("default page: %d entries, want all 5", len(got))
		}
	})
	t.Run("before a job without the number starts below it", func(t *testing.T) {
		other := apiSyncJob(t, s, "15551230112")
		resp := apiHistory(t, s.URL, "demo", "demo", number, "before="+other)
		if got := historyJobs(t, resp.Body); !slices.Equal(got, jobs) {
			t.Fatalf("got %v, want every job", got)
		}
	})
}

func TestNumberHistoryRefusesBadInput(t *testing.T) {
	t.Parallel()
	forEachStore(t, testNumberHistoryRefusesBadInput)
}

// testNumberHistoryRefusesBadInput runs TestNumberHistoryRefusesBadInput on one database.
func testNumberHistoryRefusesBadInput(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	cases := []struct {
		name, number, query string
		want                int
	}{
		{"letters in the number", "1555abc0100", "", 400},
		{"a plus in the number", "%2B15551230100", "", 400},
		{"a space in the number", "1555%201230100", "", 400},
		{"limit 0", "15551230100", "limit=0", 400},
		{"limit 101", "15551230100", "limit=101", 400},
		{"a negative limit", "15551230100", "limit=-1", 400},
		{"a limit that is not a number", "15551230100", "limit=ten", 400},
		{"an empty limit", "15551230100", "limit=", 400},
		{"before that is not a UUID", "15551230100", "before=yesterday", 400},
		{"before naming no job", "15551230100", "before=00000000-0000-4000-8000-000000000000", 404},
		{"limit 100 is the most", "15551230100", "limit=100", 200},
		{"a short number has a history, empty", "12345", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := apiHistory(t, s.URL, "demo", "demo", c.number, c.query)
			if resp.Status != c.want {
				t.Fatalf("status=%d, want %d: %s", resp.Status, c.want, resp.Raw)
			}
			if c.want != 200 && (resp.Body["status"] != "error" || resp.Body["message"] == "") {
				t.Fatalf("body %s, want the error shape", resp.Raw)
			}
		})
	}
	t.Run("without credentials it is a 401", func(t *testing.T) {
		if resp := apiHistory(t, s.URL, "", "", "15551230100", ""); resp.Status != http.StatusUnauthorized {
			t.Fatalf("status=%d, want 401", resp.Status)
		}
	})
	t.Run("HEAD answers as GET without a body", func(t *testing.T) {
		resp := call(t, http.MethodHead, s.URL+"/v3/numbers/15551230100/history", "demo", "demo", nil)
		if resp.Status != http.StatusOK || len(resp.Raw) != 0 {
			t.Fatalf("HEAD: %d with %d bytes", resp.Status, len(resp.Raw))
		}
		if resp := call(t, http.MethodHead, s.URL+"/v3/numbers/x/history", "demo", "demo", nil); resp.Status != http.StatusBadRequest {
			t.Fatalf("HEAD of a bad number: %d, want 400", resp.Status)
		}
	})
}

func TestNumberHistoryShowsALiveJobAsTheStatusDoes(t *testing.T) {
	forEachStore(t, testNumberHistoryShowsALiveJobAsTheStatusDoes)
}

// testNumberHistoryShowsALiveJobAsTheStatusDoes runs TestNumberHistoryShowsALiveJobAsTheStatusDoes on one database.
func testNumberHistoryShowsALiveJobAsTheStatusDoes(t *testing.T, db string) {
	numbers := seqNumbers(15550400000, 12)
	b := newScriptedBackend(nil, numbers[0])
	_, srv := startServiceWith(t, b, "-dev", "-workers", "1", "-db", db)
	t.Cleanup(b.open)
	id := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers}).Body["job_uuid"].(string)
	waitFor(t, 10*time.Second, "the held number to start", func() bool { return b.started.Load() == 1 })
	entry := apiHistory(t, srv.URL, "demo", "demo", numbers[0], "").Body["history"].([]any)[0].(map[string]any)
	if entry["job_uuid"] != id || entry["status"] != "processing" || entry["message"] != nil || entry["status_code"] != nil ||
		entry["completed_at"] != nil {
		t.Fatalf("entry %v, want the job's number processing, without an outcome", entry)
	}
}

func TestNumberHistoryHasNoInventoryUnderTheUpstreamBackend(t *testing.T) {
	t.Parallel()
	forEachStore(t, testNumberHistoryHasNoInventoryUnderTheUpstreamBackend)
}

// testNumberHistoryHasNoInventoryUnderTheUpstreamBackend runs TestNumberHistoryHasNoInventoryUnderTheUpstreamBackend on one database.
func testNumberHistoryHasNoInventoryUnderTheUpstreamBackend(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-backend", "upstream", "-upstream-url", "http://127.0.0.1:9/{number}", "-restore-max-attempts", "1")
	key, _ := addUser(t, s.DB, "carol")
	importCSV(t, s.DB, "carol", "number,state\n15551230100,released\n")
	call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "carol", key, map[string]any{"numbers": []string{"15551230100"}})
	resp := apiHistory(t, s.URL, "carol", key, "15551230100", "")
	if resp.Status != http.StatusOK || resp.Body["inventory"] != nil || len(historyJobs(t, resp.Body)) != 1 {
		t.Fatalf("status=%d: %s, want one entry and a null inventory", resp.Status, resp.Raw)
	}
}

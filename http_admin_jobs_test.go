package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

// The admin job list, and a user deleted through the admin API while its
// work runs.

// adminJobList reads one page of GET /admin/v1/jobs.
func adminJobList(t *testing.T, s *testServer, query string) (adminJobListJSON, apiResponse) {
	t.Helper()
	got := adminCall(t, s, http.MethodGet, "/admin/v1/jobs"+query, nil)
	var list adminJobListJSON
	if got.Status == http.StatusOK {
		if err := json.Unmarshal(got.Raw, &list); err != nil {
			t.Fatal(err)
		}
	}
	return list, got
}

func TestAdminListsEveryUsersJobs(t *testing.T) {
	s := startAdminServer(t, "-dev")
	key := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"}).Body["api_key"].(string)
	// One synchronous job each, oldest first: demo, acme, demo, acme.
	var ids []string
	for i, who := range []string{"demo", "acme", "demo", "acme"} {
		userKey := map[string]string{"demo": "demo", "acme": key}[who]
		got := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", who, userKey, map[string]any{"numbers": seqNumbers(15551230100+i, 1)})
		wantStatus(t, got, http.StatusOK)
		ids = append(ids, got.Body["job_uuid"].(string))
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)
	cases := []struct {
		name, query string
		want        []string // job_uuids, newest first
		users       []string
	}{
		{"every user's jobs, newest first", "", newestFirst, []string{"acme", "demo", "acme", "demo"}},
		{"one user's", "?user=acme", []string{ids[3], ids[1]}, []string{"acme", "acme"}},
		{"of one status", "?status=completed&user=demo", []string{ids[2], ids[0]}, []string{"demo", "demo"}},
		{"none of a status", "?status=pending", nil, nil},
		{"a page", "?limit=2", newestFirst[:2], []string{"acme", "demo"}},
		{"the next page", "?limit=2&before=" + newestFirst[1], newestFirst[2:], []string{"acme", "demo"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, got := adminJobList(t, s, c.query)
			wantStatus(t, got, http.StatusOK)
			var uuids, users []string
			for _, j := range list.Jobs {
				uuids, users = append(uuids, j.JobUUID), append(users, j.Username)
				if j.Status != jobCompleted || j.TotalNumbers != 1 || j.CreatedAt == nil {
					t.Errorf("job %+v, want a completed one-number summary", j)
				}
			}
			if !slices.Equal(uuids, c.want) || !slices.Equal(users, c.users) {
				t.Fatalf("jobs %v of %v, want %v of %v", uuids, users, c.want, c.users)
			}
			morePages := c.query == "?limit=2"
			if (list.NextBefore != nil) != morePages || morePages && *list.NextBefore != newestFirst[1] {
				t.Fatalf("next_before %v", list.NextBefore)
			}
		})
	}
	for _, c := range []struct {
		name, query string
		want        int
	}{
		{"an unknown user is a 404", "?user=nobody", http.StatusNotFound},
		{"a before of no job is a 404", "?before=00000000-0000-4000-8000-000000000000", http.StatusNotFound},
		{"a bad status is a 400", "?status=done", http.StatusBadRequest},
		{"a limit of 0 is a 400", "?limit=0", http.StatusBadRequest},
		{"a limit of 501 is a 400", "?limit=501", http.StatusBadRequest},
		{"a before that is no UUID is a 400", "?before=nope", http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, got := adminJobList(t, s, c.query)
			wantStatus(t, got, c.want)
		})
	}
}

func TestAdminDeletionStopsTheUsersWorkAtOnce(t *testing.T) {
	// slack covers liveCheckAge and a loaded machine, as in the CLI's test.
	const slack = 500 * time.Millisecond
	f := newUpstreamFake(t, func(string, int) upstreamAnswer {
		time.Sleep(20 * time.Millisecond) // 2000 numbers: 10s on 4 workers
		return upstreamAnswer{body: `{"message":"Number restored"}`}
	})
	env := map[string]string{adminTokenEnv: testAdminToken}
	for k, v := range upstreamEnv {
		env[k] = v
	}
	s := startServerEnv(t, env, "-backend", "upstream", "-upstream-url", f.URL+"/v3/restore/{number}",
		"-workers", "4", "-allow-private-webhooks", "-webhook-retry-base", "50ms")
	aliceKey := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "alice"}).Body["api_key"].(string)
	bobKey := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "bob"}).Body["api_key"].(string)
	hooks := newHookReceiver(t)
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", aliceKey,
		map[string]any{"numbers": seqNumbers(aliceFirst, 2000), "webhook_url": hooks.URL})
	wantStatus(t, resp, http.StatusAccepted)
	aliceJob := jobRowID(t, s.DB, resp.Body["job_uuid"].(string))
	waitFor(t, 20*time.Second, "alice's job to be under way", func() bool { return hitsIn(f, aliceFirst, 2000) >= 20 })

	wantStatus(t, adminCall(t, s, http.MethodDelete, "/admin/v1/users/alice", nil), http.StatusNoContent)
	deleted := time.Now()
	id, done := submitAndFinishAs(t, s, "bob", bobKey, seqNumbers(bobFirst, 20))
	if done.Body["success_count"] != float64(20) {
		t.Fatalf("bob's job: %s, want 20 successes", done.Raw)
	}
	if bobJob := jobRowID(t, s.DB, id); bobJob <= aliceJob {
		t.Fatalf("bob's job got id %d, not above the deleted job's %d: ids are reused", bobJob, aliceJob)
	}
	if n := hitsAfter(f, aliceFirst, 2000, deleted.Add(slack)); n != 0 {
		t.Fatalf("upstream got %d calls for alice's numbers more than %s after she was deleted", n, slack)
	}
	// Once the deletion has answered, the job is gone: at most a call each
	// worker had begun to send reaches the upstream after it.
	if n := hitsAfter(f, aliceFirst, 2000, deleted); n > 4 {
		t.Fatalf("upstream got %d calls for alice's numbers after the deletion answered, want at most the 4 under way", n)
	}
	if n := hooks.count(); n != 0 {
		t.Fatalf("alice's webhook was called %d times after her deletion", n)
	}
	if list, _ := adminJobList(t, s, ""); len(list.Jobs) != 1 || list.Jobs[0].Username != "bob" {
		t.Fatalf("jobs after the deletion: %+v, want bob's alone", list.Jobs)
	}
	checkNoRetryLoop(t, s)
	stopWithin(t, s, 5*time.Second)
}

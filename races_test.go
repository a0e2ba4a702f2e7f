package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawReply is one answer read whole.
type rawReply struct {
	status int
	header http.Header
	body   string
}

// concurrently sends n copies of a request at once and returns the
// answers.
func concurrently(t *testing.T, n int, newReq func() *http.Request) []rawReply {
	t.Helper()
	replies := make([]rawReply, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 60 * time.Second}
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := client.Do(newReq())
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			replies[i] = rawReply{status: resp.StatusCode, header: resp.Header, body: string(b)}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return replies
}

func TestTwentyIdenticalSynchronousRequestsWithOneKeyRestoreEachNumberOnce(t *testing.T) {
	forEachStore(t, testTwentyIdenticalSynchronousRequestsWithOneKeyRestoreEachNumberOnce)
}

// testTwentyIdenticalSynchronousRequestsWithOneKeyRestoreEachNumberOnce runs TestTwentyIdenticalSynchronousRequestsWithOneKeyRestoreEachNumberOnce on one database.
func testTwentyIdenticalSynchronousRequestsWithOneKeyRestoreEachNumberOnce(t *testing.T, db string) {
	f := newUpstreamFake(t, func(string, int) upstreamAnswer {
		time.Sleep(300 * time.Millisecond) // long enough for every copy to arrive mid-restore
		return upstreamAnswer{body: `{"message":"Number restored"}`}
	})
	s, key := startUpstreamServer(t, f.URL+"/v3/restore/{number}", "-db", db)
	numbers := seqNumbers(15554000000, 5)
	body := `{"numbers":["` + strings.Join(numbers, `","`) + `"]}`
	replies := concurrently(t, 20, func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v3/bulk_restore", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "same-key")
		req.SetBasicAuth("alice", key)
		return req
	})
	var first string
	for i, r := range replies {
		switch r.status {
		case http.StatusOK:
			if first == "" {
				first = r.body
			} else if r.body != first {
				t.Fatalf("answer %d differs:\n%s\n%s", i, r.body, first)
			}
		case http.StatusConflict:
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("a 409 without Retry-After: %s", r.body)
			}
		default:
			t.Fatalf("answer %d: status=%d %s, want 200 (or 409 while the first runs)", i, r.status, r.body)
		}
	}
	if first == "" {
		t.Fatal("no request got the answer")
	}
	for _, n := range numbers {
		if hits := len(f.hitsFor(n)); hits != 1 {
			t.Fatalf("upstream got %d calls for %s, want exactly 1", hits, n)
		}
	}
	store, err := openStore(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n := countRows(t, store, "SELECT count(*) FROM jobs"); n != 1 {
		t.Fatalf("jobs=%d, want 1", n)
	}
}

func TestConcurrentCancelsOneWinsAndTheOthersSayWhy(t *testing.T) {
	forEachStore(t, testConcurrentCancelsOneWinsAndTheOthersSayWhy)
}

// testConcurrentCancelsOneWinsAndTheOthersSayWhy runs TestConcurrentCancelsOneWinsAndTheOthersSayWhy on one database.
func testConcurrentCancelsOneWinsAndTheOthersSayWhy(t *testing.T, db string) {
	up := newGatedUpstream(t)
	s := startServerEnv(t, upstreamEnv, append([]string{"-db", db}, append(up.upstreamArgs(), "-workers", "2")...)...)
	key, _ := addUser(t, s.DB, "alice")
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "alice", key, map[string]any{"numbers": seqNumbers(15554100000, 50)})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status=%d: %s", resp.Status, resp.Raw)
	}
	url := s.URL + "/v3/bulk_restore_cancel?job_uuid=" + resp.Body["job_uuid"].(string)
	replies := concurrently(t, 20, func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url, nil)
		req.SetBasicAuth("alice", key)
		return req
	})
	won := 0
	for _, r := range replies {
		switch r.status {
		case http.StatusOK:
			won++
		case http.StatusConflict:
			if !strings.Contains(r.body, "job is already cancelled") {
				t.Fatalf("a losing cancel says %s, want that the job is already cancelled", r.body)
			}
		default:
			t.Fatalf("status=%d %s", r.status, r.body)
		}
	}
	if won != 1 {
		t.Fatalf("%d cancels won, want exactly 1", won)
	}
}

package main

import (
	"net/http"
	"testing"
	"time"
)

// TestQueuedJobCompletesAgainstDevInventory drives one queued job through
// the whole pipeline: submit, claim, restore, record, complete.
func TestQueuedJobCompletesAgainstDevInventory(t *testing.T) {
	s := startServer(t, "-dev")
	numbers := seqNumbers(15551230100, 25)
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status=%d, want 202: %s", resp.Status, resp.Raw)
	}
	id := resp.Body["job_uuid"].(string)
	if got, want := resp.Header.Get("Location"), "/v3/bulk_restore_status?job_uuid="+id; got != want {
		t.Fatalf("Location=%q, want %q", got, want)
	}
	done := waitJobDone(t, s, "demo", "demo", id, 20*time.Second)
	rs := results(t, done.Body)
	if len(rs) != 25 {
		t.Fatalf("results=%d, want 25", len(rs))
	}
	for i, r := range rs {
		if r["number"] != numbers[i] {
			t.Fatalf("results[%d].number=%v, want %s (input order)", i, r["number"], numbers[i])
		}
		if r["attempts"] != float64(1) {
			t.Fatalf("results[%d].attempts=%v, want 1", i, r["attempts"])
		}
	}
	// 107, 117 are unavailable; 109, 119 are past the window: 4 failures.
	if done.Body["success_count"] != float64(21) || done.Body["failure_count"] != float64(4) {
		t.Fatalf("counts success=%v failure=%v, want 21 and 4", done.Body["success_count"], done.Body["failure_count"])
	}
}

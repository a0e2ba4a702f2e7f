package main

import (
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"
)

func TestSubmitWaitShowsTheServersEstimate(t *testing.T) {
	numbers := seqNumbers(15550500000, 12)
	b := newScriptedBackend(nil, numbers[1:]...) // one number done, then the workers wait
	_, srv := startServiceWith(t, b, "-dev", "-workers", "1")
	t.Cleanup(b.open)
	var polls atomic.Int32
	front := newRecordingFront(t, &testServer{URL: srv.URL}, func(w http.ResponseWriter, r *http.Request) bool {
		q := r.URL.Query()
		if r.URL.Path != "/v3/bulk_restore_status" || q.Get("limit") != "0" {
			return false
		}
		// Every poll sees the first number done, so the client's own
		// rate stays 0; after a few, the rest may go.
		waitFor(t, 10*time.Second, "the first number to be recorded", func() bool {
			return call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?limit=0&job_uuid="+q.Get("job_uuid"),
				"demo", "demo", nil).Body["processed_count"] != float64(0)
		})
		if polls.Add(1) == 4 {
			b.open()
		}
		return false
	})
	env := map[string]string{"BULKRESTORE_SERVER": front.URL, "BULKRESTORE_USER": "demo", "BULKRESTORE_API_KEY": "demo"}
	r := runClient(t, env, "", "submit", "-wait", "-poll", "20ms", "-progress", "plain", "-o", "-", writeLines(t, "n.txt", numbers))
	if r.code != 0 {
		t.Fatalf("exit %d: %v", r.code, r.err)
	}
	// With one number done and none since, the client's own rate is 0 and
	// gives no ETA; the server's estimate (from the average so far) does.
	if !regexp.MustCompile(`(?m)^1/12 done, 0 numbers/s, ETA [0-9]`).MatchString(r.stderr) {
		t.Fatalf("no line with the server's ETA while the rate was 0:\n%s", r.stderr)
	}
}

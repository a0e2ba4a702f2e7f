package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// The pair of instances the cross-instance scenarios run on
// (pg_instances_api_test.go), and what the scenarios share: the upstream
// they call, its holds and its calls, and a tenant per scenario.

// instancePair is two servers on one fresh PostgreSQL database, A and B,
// with the admin API on, restoring through one upstream that each calls
// under a path of its own (/a/ or /b/), and one webhook receiver.
type instancePair struct {
	a, b    *testServer
	up      *upstreamFake
	hooks   *apiHookReceiver
	mu      sync.Mutex
	held    map[string]chan struct{} // number, or prefix of numbers -> closed on release
	waiting map[string]int           // per hold, the calls waiting on it now
	users   int                      // tenants created so far
}

// startInstancePair starts A, then B, on the same database, with two
// workers each.
func startInstancePair(t *testing.T) *instancePair {
	db := newPGDatabase(t)
	p := &instancePair{hooks: apiNewHookReceiver(t, http.StatusOK), held: map[string]chan struct{}{}, waiting: map[string]int{}}
	p.up = newUpstreamFake(t, p.answer)
	flags := func(upstreamPath string) []string {
		return []string{"-db", db, "-dev", "-backend", "upstream", "-upstream-url", p.up.URL + upstreamPath + "{number}",
			"-workers", "2", "-rate-limit", "0"}
	}
	p.a = startAdminServer(t, flags("/a/")...)
	p.b = startAdminServer(t, flags("/b/")...)
	return p
}

// answer is the upstream's: a held number waits for its release, every
// call then takes 50 ms, and a number ending in 7 fails with 404.
func (p *instancePair) answer(number string, _ int) upstreamAnswer {
	p.mu.Lock()
	var gate chan struct{}
	var key string
	for held, g := range p.held {
		if strings.HasPrefix(number, held) {
			gate, key = g, held
		}
	}
	p.waiting[key]++
	p.mu.Unlock()
	if gate != nil {
		<-gate // released at the end of the subtest at the latest
	}
	p.mu.Lock()
	p.waiting[key]--
	p.mu.Unlock()
	time.Sleep(50 * time.Millisecond) // the upstream's latency
	if strings.HasSuffix(number, "7") {
		return upstreamAnswer{status: http.StatusNotFound, body: `{"message":"Error: 'number not found'"}`}
	}
	return upstreamAnswer{body: `{"message":"Number restored"}`}
}

// hold makes the upstream's answers for number, or for every number that
// starts with it, wait until release is called (at the end of the test at
// the latest).
func (p *instancePair) hold(t *testing.T, numberOrPrefix string) (release func()) {
	gate := make(chan struct{})
	p.mu.Lock()
	p.held[numberOrPrefix] = gate
	p.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// waitingOn is how many calls wait on the hold of numberOrPrefix now.
func (p *instancePair) waitingOn(numberOrPrefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting[numberOrPrefix]
}

// calls counts the upstream calls for numbers starting with prefix begun at
// or after since, per instance path ("/a/", "/b/"), and returns how many
// numbers were called and the most calls any one of them got.
func (p *instancePair) calls(prefix string, since time.Time) (byInstance map[string]int, numbers, most int) {
	byInstance, per := map[string]int{}, map[string]int{}
	for _, hit := range p.up.allHits() {
		instance, number := path.Split(hit.path)
		if strings.HasPrefix(number, prefix) && !hit.at.Before(since) {
			byInstance[instance]++
			per[number]++
			most = max(most, per[number])
		}
	}
	return byInstance, len(per), most
}

// crossInstanceStopWithin is how long after a job is stopped on one
// instance (cancelled, or its user deleted) a restore of it may still reach
// the upstream from the other: the other is told, and has confirmed, before
// the answer, so only a call begun just before it can arrive after; the
// bound is generous, for a loaded machine (the test sets the workers' own
// check of the job, liveCheckAge, to a minute).
const crossInstanceStopWithin = time.Second

// wantStoppedBy fails the test unless the upstream calls for numbers
// starting with prefix stop within 5 s (none begun in the last 300 ms, six
// times a call's length), none of them begun later than
// crossInstanceStopWithin after stopped (when what happened); it logs how
// many began after stopped, by instance.
func (p *instancePair) wantStoppedBy(t *testing.T, prefix, what string, stopped time.Time) {
	t.Helper()
	waitFor(t, 5*time.Second, "the upstream to stop being called for "+prefix+"…", func() bool {
		recent, _, _ := p.calls(prefix, time.Now().Add(-300*time.Millisecond))
		return len(recent) == 0
	})
	after, _, _ := p.calls(prefix, stopped)
	t.Logf("restores begun after %s, by instance: %v", what, after)
	if late, _, _ := p.calls(prefix, stopped.Add(crossInstanceStopWithin)); len(late) > 0 {
		t.Fatalf("restores begun more than %s after %s, by instance: %v", crossInstanceStopWithin, what, late)
	}
}

// waitBothRestoring waits until each instance has called the upstream for
// numbers starting with prefix: both hold claims of the job.
func (p *instancePair) waitBothRestoring(t *testing.T, prefix string) {
	t.Helper()
	waitFor(t, 20*time.Second, "both instances to restore numbers of "+prefix+"…", func() bool {
		byInstance, _, _ := p.calls(prefix, time.Time{})
		return byInstance["/a/"] > 0 && byInstance["/b/"] > 0
	})
}

// tenant is one scenario's user on the pair: its name and API key, and
// the 10,000 numbers from first, which no other tenant's share (their
// first 7 digits, prefix, tell the upstream's calls for them apart).
type tenant struct {
	p                 *instancePair
	user, key, prefix string
	first             int
}

// newTenant creates a user through A's admin API (the scenario then uses
// it on B at once) with the next range of numbers.
func (p *instancePair) newTenant(t *testing.T, name string) tenant {
	t.Helper()
	created := adminCall(t, p.a, http.MethodPost, "/admin/v1/users", map[string]any{"username": name})
	wantStatus(t, created, http.StatusCreated)
	p.users++
	range7 := 1555200 + p.users
	return tenant{p: p, user: name, key: created.Body["api_key"].(string), prefix: itoa(range7), first: range7 * 10000}
}

// numbers returns n numbers of the tenant's range from the offset-th on.
func (c tenant) numbers(offset, n int) []string { return seqNumbers(c.first+offset, n) }

// do sends a request to s with the tenant's credentials.
func (c tenant) do(t *testing.T, method string, s *testServer, target string, body any) apiResponse {
	t.Helper()
	return call(t, method, s.URL+target, c.user, c.key, body)
}

// submit posts a request of more numbers than the sync limit on s and
// returns the job_uuid of its 202.
func (c tenant) submit(t *testing.T, s *testServer, body map[string]any) string {
	t.Helper()
	resp := c.do(t, http.MethodPost, s, "/v3/bulk_restore", body)
	wantStatus(t, resp, http.StatusAccepted)
	return resp.Body["job_uuid"].(string)
}

// status reads a job's status on s (query appended), failing unless 200.
func (c tenant) status(t *testing.T, s *testServer, job, query string) map[string]any {
	t.Helper()
	resp := c.do(t, http.MethodGet, s, "/v3/bulk_restore_status?job_uuid="+job+query, nil)
	wantStatus(t, resp, http.StatusOK)
	return resp.Body
}

// wantCountsAddUp fails unless a status body's counts add up: its
// processed_count is success + failure + cancelled and at most
// total_numbers, all of them once completed, and once every number is
// final its results agree with the counts.
func wantCountsAddUp(t *testing.T, on string, body map[string]any) {
	t.Helper()
	total, processed := numField(t, body, "total_numbers"), numField(t, body, "processed_count")
	counts := map[any]float64{"success": numField(t, body, "success_count"), "failed": numField(t, body, "failure_count")}
	counts["cancelled"], _ = body["cancelled_count"].(float64) // absent when 0
	done := counts["success"] + counts["failed"] + counts["cancelled"]
	if processed != done || done > total || (body["status"] == "completed" && done != total) {
		t.Fatalf("on %s: status %v, total %v, processed %v, success+failure+cancelled %v", on, body["status"], total, processed, done)
	}
	tally := map[any]float64{"success": 0, "failed": 0, "cancelled": 0}
	for _, r := range results(t, body) {
		tally[r["status"]]++
	}
	if done == total && !reflect.DeepEqual(tally, counts) {
		t.Fatalf("on %s: results by status %v, counts %v", on, tally, counts)
	}
}

// waitFinal polls s until the job has the status and every number is
// final, checks its counts, and returns its status body.
func (c tenant) waitFinal(t *testing.T, s *testServer, job, status string) map[string]any {
	t.Helper()
	var body map[string]any
	waitFor(t, 30*time.Second, "job "+job+" to be "+status+" with every number final", func() bool {
		body = c.status(t, s, job, "")
		return body["status"] == status && numField(t, body, "processed_count") == numField(t, body, "total_numbers")
	})
	wantCountsAddUp(t, s.URL, body)
	return body
}

// sameOnBoth GETs target (a path and query) on A and on B and fails unless
// both answer 200 with the same body.
func (c tenant) sameOnBoth(t *testing.T, target string) map[string]any {
	t.Helper()
	onA, onB := c.do(t, http.MethodGet, c.p.a, target, nil), c.do(t, http.MethodGet, c.p.b, target, nil)
	wantStatus(t, onA, http.StatusOK)
	if onB.Status != onA.Status || !reflect.DeepEqual(onA.Body, onB.Body) {
		t.Fatalf("GET %s differs between instances:\nA: %d %s\nB: %d %s", target, onA.Status, onA.Raw, onB.Status, onB.Raw)
	}
	return onA.Body
}

// waitOneWebhook waits until A reports the job's webhook delivered, then
// fails unless the receiver got it exactly once, and returns it.
func (c tenant) waitOneWebhook(t *testing.T, job string) map[string]any {
	t.Helper()
	waitFor(t, 20*time.Second, "the webhook of "+job+" to be delivered", func() bool {
		return c.status(t, c.p.a, job, "&limit=0")["webhook_delivered_at"] != nil
	})
	bodies, _ := c.p.hooks.received()
	var sent []map[string]any
	for _, b := range bodies {
		var payload map[string]any
		if json.Unmarshal(b, &payload); payload["job_uuid"] == job {
			sent = append(sent, payload)
		}
	}
	if len(sent) != 1 {
		t.Fatalf("the webhook of %s was delivered %d times, want once", job, len(sent))
	}
	return sent[0]
}

// postKeyedAtOnce sends the same JSON POST with an Idempotency-Key n times
// at once, alternating A and B, and returns the answers.
func (c tenant) postKeyedAtOnce(t *testing.T, n int, target, idem string, body any) []apiResponse {
	t.Helper()
	answers, errs := make([]apiResponse, n), make([]error, n)
	client, start := &http.Client{Timeout: time.Minute}, make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		req, err := http.NewRequest(http.MethodPost, []string{c.p.a.URL, c.p.b.URL}[i%2]+target, bytes.NewReader(oapiJSON(t, body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", idem)
		req.SetBasicAuth(c.user, c.key)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Do(req)
			if err == nil {
				defer resp.Body.Close()
				answers[i] = apiResponse{Status: resp.StatusCode, Header: resp.Header}
				if answers[i].Raw, err = io.ReadAll(resp.Body); err == nil {
					err = json.Unmarshal(answers[i].Raw, &answers[i].Body)
				}
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%d copies: %v", n, err)
	}
	return answers
}

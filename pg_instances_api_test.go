package main

import (
	"bytes"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Two servers on one PostgreSQL database, driven as a black-box suite
// behind a round-robin balancer drives them: a request on A, its follow-up
// on B. Each answer must be the one a single instance would give.

// TestTwoPostgreSQLInstancesKeepTheContract runs each scenario on one pair
// of instances, one after the other (each has a number range and a user of
// its own).
func TestTwoPostgreSQLInstancesKeepTheContract(t *testing.T) {
	// The workers' own check of a job (liveCheckAge) would stop them
	// within a tenth of a second; a minute leaves the instances' signals
	// to each other as the only way a cancel or a deletion on B reaches A
	// within crossInstanceStopWithin.
	liveCheckAge = time.Minute
	t.Cleanup(func() { liveCheckAge = 100 * time.Millisecond })
	p := startInstancePair(t)
	t.Run("a queued job submitted on A reads the same on B", p.queuedJobReadsTheSame)
	t.Run("a cancel on B stops A's restores", p.cancelOnBStopsA)
	t.Run("a cancel's answer on B counts the numbers A has not started as cancelled", p.cancelAnswerCountsEveryNumber)
	t.Run("a retry on B of a job that failed on A reads the same on both", p.retryOnB)
	t.Run("one Idempotency-Key sent to both at once makes one job", p.idempotencyAcrossInstances)
	t.Run("deleting a user on B stops A restoring its job", p.deleteUserOnB)
	t.Run("a console session signed in on A works on B", p.consoleAcrossInstances)
	t.Run("a number restored by A shows in B's history", p.historyAcrossInstances)
}

// queuedJobReadsTheSame: a queued job submitted on A is found on B with the
// same identity and counts while it runs, the number the upstream holds
// reads processing on both, both answer the job identically once it is
// complete, and its webhook is sent once.
func (p *instancePair) queuedJobReadsTheSame(t *testing.T) {
	c := p.newTenant(t, "queued")
	numbers := c.numbers(0, 60)
	release := p.hold(t, numbers[5])
	job := c.submit(t, p.a, map[string]any{"numbers": numbers, "webhook_url": p.hooks.URL})
	waitFor(t, 20*time.Second, "the held number to be with the upstream", func() bool {
		_, called, _ := p.calls(numbers[5], time.Time{})
		return called > 0
	})
	running := c.status(t, p.b, job, "")
	if running["job_uuid"] != job || running["total_numbers"] != 60.0 {
		t.Fatalf("B answers job_uuid %v total %v, want %s and 60", running["job_uuid"], running["total_numbers"], job)
	}
	wantCountsAddUp(t, "B", running)
	for name, s := range map[string]*testServer{"A": p.a, "B": p.b} {
		if got := results(t, c.status(t, s, job, "&number="+numbers[5]))[0]["status"]; got != "processing" {
			t.Errorf("on %s, number %s, whose restore is under way, is %v, want processing", name, numbers[5], got)
		}
	}
	release()
	c.waitFinal(t, p.b, job, "completed")
	c.waitOneWebhook(t, job)
	final := c.sameOnBoth(t, "/v3/bulk_restore_status?job_uuid="+job)
	if final["success_count"] != 54.0 || final["failure_count"] != 6.0 {
		t.Fatalf("success %v failure %v, want 54 and 6 (each number counted once)", final["success_count"], final["failure_count"])
	}
}

// cancelOnBStopsA: a job both instances are restoring is cancelled on B;
// it ends cancelled on both with counts that add up, no number is restored
// twice, no restore starts once the cancellation has settled, and the
// webhook, sent once, carries the settled counts.
func (p *instancePair) cancelOnBStopsA(t *testing.T) {
	c := p.newTenant(t, "canceller")
	job := c.submit(t, p.a, map[string]any{"numbers": c.numbers(0, 2000), "webhook_url": p.hooks.URL})
	p.waitBothRestoring(t, c.prefix)
	wantStatus(t, c.do(t, http.MethodPost, p.b, "/v3/bulk_restore_cancel?job_uuid="+job, nil), http.StatusOK)
	cancelledAt := time.Now()
	c.waitFinal(t, p.b, job, "cancelled")
	settledAt := time.Now()
	p.wantStoppedBy(t, c.prefix, "the cancel was answered", cancelledAt)
	if late, _, _ := p.calls(c.prefix, settledAt); len(late) > 0 {
		t.Fatalf("restores begun after every number was final, by instance: %v", late)
	}
	if _, _, most := p.calls(c.prefix, time.Time{}); most > 1 {
		t.Fatalf("a number was restored %d times", most)
	}
	hook := c.waitOneWebhook(t, job)
	final := c.sameOnBoth(t, "/v3/bulk_restore_status?job_uuid="+job)
	for _, field := range []string{"status", "success_count", "failure_count", "cancelled_count"} {
		if hook[field] != final[field] {
			t.Fatalf("the webhook says %s %v, the status %v", field, hook[field], final[field])
		}
	}
	wantStatus(t, c.do(t, http.MethodPost, p.a, "/v3/bulk_restore_cancel?job_uuid="+job, nil), http.StatusConflict)
}

// cancelAnswerCountsEveryNumber: the answer to a cancel on B of a job both
// instances are restoring leaves out of its counts only the numbers being
// restored at that moment, at most one per worker (four), as one
// instance's answer does: the contract cancels at once every number no
// worker has started, whichever instance claimed it.
func (p *instancePair) cancelAnswerCountsEveryNumber(t *testing.T) {
	c := p.newTenant(t, "hasty")
	job := c.submit(t, p.a, map[string]any{"numbers": c.numbers(0, 2000)})
	p.waitBothRestoring(t, c.prefix)
	answer := c.do(t, http.MethodPost, p.b, "/v3/bulk_restore_cancel?job_uuid="+job, nil)
	wantStatus(t, answer, http.StatusOK)
	counted := numField(t, answer.Body, "success_count") + numField(t, answer.Body, "failure_count") +
		numField(t, answer.Body, "cancelled_count")
	if underWay := 2000 - counted; underWay > 4 {
		t.Errorf("the cancel on B answered %s: %.0f numbers neither cancelled nor done, where at most 4 can be under way", answer.Raw, underWay)
	}
	c.waitFinal(t, p.a, job, "cancelled")
}

// retryOnB: a retry on B of a job A is still restoring is a 409; once it
// finished, its failures are retried on B, the retry and the link both
// ways read the same on both, and a keyed retry repeated on A replays B's.
func (p *instancePair) retryOnB(t *testing.T) {
	c := p.newTenant(t, "retrier")
	numbers := c.numbers(0, 20)
	release := p.hold(t, numbers[0])
	failedJob := c.submit(t, p.a, map[string]any{"numbers": numbers})
	retryPath := "/v3/bulk_restore_retry?job_uuid=" + failedJob
	wantStatus(t, c.do(t, http.MethodPost, p.b, retryPath, nil), http.StatusConflict) // not finished
	release()
	c.waitFinal(t, p.a, failedJob, "completed")
	retry := c.do(t, http.MethodPost, p.b, retryPath, nil)
	wantStatus(t, retry, http.StatusOK)
	retryJob := retry.Body["job_uuid"].(string)
	if retry.Body["retry_of"] != failedJob || retry.Body["total_numbers"] != 2.0 {
		t.Fatalf("retry_of %v total %v, want %s and 2", retry.Body["retry_of"], retry.Body["total_numbers"], failedJob)
	}
	again := c.sameOnBoth(t, "/v3/bulk_restore_status?job_uuid="+retryJob)
	if again["retry_of"] != failedJob || again["failure_count"] != 2.0 {
		t.Fatalf("the retry reads retry_of %v failure_count %v", again["retry_of"], again["failure_count"])
	}
	keyedOnB := callKeyed(t, p.b.URL+retryPath, c.user, c.key, "retry-once", map[string]any{})
	keyedOnA := callKeyed(t, p.a.URL+retryPath, c.user, c.key, "retry-once", map[string]any{})
	wantStatus(t, keyedOnB, http.StatusOK)
	if keyedOnA.Body["job_uuid"] != keyedOnB.Body["job_uuid"] || keyedOnA.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the keyed retry on A answered %d %s, want B's job %v replayed", keyedOnA.Status, keyedOnA.Raw, keyedOnB.Body["job_uuid"])
	}
	original := c.sameOnBoth(t, "/v3/bulk_restore_status?job_uuid="+failedJob)
	if want := []any{retryJob, keyedOnB.Body["job_uuid"]}; !reflect.DeepEqual(original["retried_by"], want) {
		t.Fatalf("retried_by %v, want %v", original["retried_by"], want)
	}
}

// idempotencyAcrossInstances: twenty copies of a request under one key,
// half on A and half on B at once, make one job that every copy names (a
// queued request, then one answered synchronously), each number is
// restored once, and the key with another body is a 422 on B.
func (p *instancePair) idempotencyAcrossInstances(t *testing.T) {
	c := p.newTenant(t, "repeater")
	cases := []struct {
		idem    string
		numbers []string
		status  int
	}{
		{"queued-once", c.numbers(0, 15), http.StatusAccepted},
		{"sync-once", c.numbers(100, 3), http.StatusOK},
	}
	var jobs []any // newest first, as the jobs list
	for _, tc := range cases {
		answers := c.postKeyedAtOnce(t, 20, "/v3/bulk_restore", tc.idem, map[string]any{"numbers": tc.numbers})
		job, originals := answers[0].Body["job_uuid"], 0
		for i, a := range answers {
			if a.Status != tc.status || a.Body["job_uuid"] != job {
				t.Fatalf("%s: copy %d (on %s) answered %d %s, want %d for job %v", tc.idem, i, []string{"A", "B"}[i%2], a.Status, a.Raw, tc.status, job)
			}
			if a.Header.Get("Idempotent-Replayed") != "true" {
				originals++
			}
		}
		if originals != 1 {
			t.Fatalf("%s: %d answers are not replays, want 1", tc.idem, originals)
		}
		c.waitFinal(t, p.b, job.(string), "completed")
		jobs = append([]any{job}, jobs...)
	}
	if _, numbers, most := p.calls(c.prefix, time.Time{}); numbers != 18 || most != 1 {
		t.Fatalf("%d numbers restored, one of them %d times; want 18, each once", numbers, most)
	}
	var listed []any
	for _, j := range c.sameOnBoth(t, "/v3/bulk_restore_jobs")["jobs"].([]any) {
		listed = append(listed, j.(map[string]any)["job_uuid"])
	}
	if !reflect.DeepEqual(listed, jobs) {
		t.Fatalf("the jobs list holds %v, want exactly %v", listed, jobs)
	}
	other := callKeyed(t, p.b.URL+"/v3/bulk_restore", c.user, c.key, "queued-once", map[string]any{"numbers": cases[1].numbers})
	wantStatus(t, other, http.StatusUnprocessableEntity)
}

// deleteUserOnB: a user is deleted through B's admin API while both
// instances restore its job, every worker waiting in a call: no restore
// begins after the answer, A stays up and serves others, the job is gone
// on both, its key refused on both, and its webhook never sent.
func (p *instancePair) deleteUserOnB(t *testing.T) {
	c := p.newTenant(t, "leaver")
	job := c.submit(t, p.a, map[string]any{"numbers": c.numbers(0, 2000), "webhook_url": p.hooks.URL})
	p.waitBothRestoring(t, c.prefix)
	release := p.hold(t, c.prefix)
	waitFor(t, 10*time.Second, "the two workers of each instance to wait in held calls", func() bool {
		return p.waitingOn(c.prefix) == 4
	})
	wantStatus(t, adminCall(t, p.b, http.MethodDelete, "/admin/v1/users/leaver", nil), http.StatusNoContent)
	deletedAt := time.Now()
	release()
	p.wantStoppedBy(t, c.prefix, "the deletion was answered", deletedAt)
	if late, _, _ := p.calls(c.prefix, deletedAt); len(late) > 0 {
		// Every worker was in a held call when the deletion answered:
		// a call after it is a restore begun after it.
		t.Fatalf("restores begun after the deletion was answered, by instance: %v", late)
	}
	demo := c
	demo.user, demo.key = "demo", "demo"
	for name, s := range map[string]*testServer{"A": p.a, "B": p.b} {
		gone := c.do(t, http.MethodGet, s, "/v3/bulk_restore_status?job_uuid="+job, nil)
		if gone.Status != http.StatusUnauthorized || gone.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("on %s the deleted user's key: %d %s, want 401 with WWW-Authenticate", name, gone.Status, gone.Raw)
		}
		wantStatus(t, demo.do(t, http.MethodGet, s, "/v3/bulk_restore_status?job_uuid="+job, nil), http.StatusNotFound)
	}
	if bodies, _ := p.hooks.received(); bytes.Contains(bytes.Join(bodies, nil), []byte(job)) {
		t.Fatalf("the deleted user's job %s sent a webhook", job)
	}
	demo.waitFinal(t, p.b, demo.submit(t, p.a, map[string]any{"numbers": demo.numbers(5000, 30)}), "completed")
}

// consoleAcrossInstances: a console session opened on A shows the user's
// job on B, takes a cancel on B with the CSRF token A gave, and once
// signed out on B is refused on A.
func (p *instancePair) consoleAcrossInstances(t *testing.T) {
	c := p.newTenant(t, "browser")
	numbers := c.numbers(0, 11)
	release := p.hold(t, numbers[3])
	job := c.submit(t, p.a, map[string]any{"numbers": numbers})
	onA := newConsoleClient(t, p.a.URL)
	onA.signIn(c.user, c.key)
	token := onA.csrf()
	onB := &consoleClient{t: t, base: p.b.URL, c: onA.c} // the same browser: cookies are not per port
	if page := onB.get("/ui/jobs/" + job); page.Status != http.StatusOK || !strings.Contains(page.Body, job) {
		t.Fatalf("the job's page on B: %d, want 200 showing %s", page.Status, job)
	}
	if page := onB.post("/ui/jobs/"+job+"/cancel", url.Values{"csrf_token": {token}}, nil); page.Status != http.StatusSeeOther {
		t.Fatalf("a cancel on B with A's CSRF token: %d, want 303: %.300s", page.Status, page.Body)
	}
	if got := c.status(t, p.a, job, "")["status"]; got != "cancelled" {
		t.Fatalf("after the console's cancel on B, A reads the job %v, want cancelled", got)
	}
	release()
	c.waitFinal(t, p.a, job, "cancelled")
	if page := onB.post("/ui/sign-out", url.Values{"csrf_token": {token}}, nil); page.Status != http.StatusSeeOther {
		t.Fatalf("sign-out on B: %d", page.Status)
	}
	if page := onA.get("/ui/jobs"); page.Status != http.StatusSeeOther || !strings.HasPrefix(page.Header.Get("Location"), "/ui/sign-in") {
		t.Fatalf("after signing out on B, A answers %d (Location %q), want a redirect to sign in", page.Status, page.Header.Get("Location"))
	}
}

// historyAcrossInstances: numbers restored synchronously by A show in B's
// number history, the same as in A's.
func (p *instancePair) historyAcrossInstances(t *testing.T) {
	c := p.newTenant(t, "historian")
	numbers := c.numbers(0, 8) // the last ends in 7: it fails
	restored := c.do(t, http.MethodPost, p.a, "/v3/bulk_restore", map[string]any{"numbers": numbers})
	wantStatus(t, restored, http.StatusOK)
	for i, want := range map[int]string{0: "success", 7: "failed"} {
		history := c.sameOnBoth(t, "/v3/numbers/"+numbers[i]+"/history")["history"].([]any)
		if len(history) != 1 {
			t.Fatalf("number %s has %d history entries, want 1: %v", numbers[i], len(history), history)
		}
		if entry := history[0].(map[string]any); entry["job_uuid"] != restored.Body["job_uuid"] || entry["status"] != want {
			t.Fatalf("number %s: %v, want job %v %s", numbers[i], entry, restored.Body["job_uuid"], want)
		}
	}
}

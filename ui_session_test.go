package main

import (
	"bytes"
	"context"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestConsoleSessionsEnd(t *testing.T) {
	forEachStore(t, testConsoleSessionsEnd)
}

// testConsoleSessionsEnd runs TestConsoleSessionsEnd on one database.
func testConsoleSessionsEnd(t *testing.T, db string) {
	const idle, lifetime = time.Hour, 3 * time.Hour
	start := func(t *testing.T) (*service, *consoleClient, *testClock) {
		clock := &testClock{}
		svc, srv := startServiceWith(t, nil, "-db", anotherDB(t, db), "-dev", "-console-idle-timeout", idle.String(), "-console-session-lifetime", lifetime.String())
		svc.app.now = clock.now // before any request
		c := newConsoleClient(t, srv.URL)
		c.signIn("demo", "demo")
		return svc, c, clock
	}
	signedIn := func(c *consoleClient) bool { return c.get("/ui/jobs").Status == http.StatusOK }
	poll := func(c *consoleClient) page {
		return c.do(http.MethodGet, "/ui/jobs", nil, map[string]string{"HX-Request": "true", "HX-Target": "live-jobs"})
	}

	t.Run("a session in use lives on past the idle timeout", func(t *testing.T) {
		_, c, clock := start(t)
		for i := 0; i < 2; i++ {
			clock.advance(idle - time.Minute)
			if !signedIn(c) {
				t.Fatalf("signed out after %d uses within the idle timeout", i+1)
			}
		}
	})
	t.Run("a session left idle ends", func(t *testing.T) {
		_, c, clock := start(t)
		clock.advance(idle + time.Second)
		p := c.get("/ui/jobs")
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/ui/sign-in?next=") {
			t.Errorf("status=%d Location=%q, want a redirect to sign in", p.Status, p.Header.Get("Location"))
		}
	})
	t.Run("a page polling its live parts does not keep the session alive", func(t *testing.T) {
		_, c, clock := start(t)
		clock.advance(idle / 2)
		if p := poll(c); p.Status != http.StatusOK || !strings.HasPrefix(p.Body, `<div id="live-jobs"`) {
			t.Fatalf("the poll: status=%d, body %.60q, want the live part alone", p.Status, p.Body)
		}
		clock.advance(idle/2 + time.Second)
		p := poll(c)
		if p.Status != http.StatusUnauthorized || !strings.HasPrefix(p.Header.Get("HX-Redirect"), "/ui/sign-in") {
			t.Errorf("a poll after the idle timeout: status=%d HX-Redirect=%q, want 401 and a redirect for htmx", p.Status, p.Header.Get("HX-Redirect"))
		}
	})
	t.Run("a form refused for its CSRF token is no activity", func(t *testing.T) {
		_, c, clock := start(t)
		clock.advance(idle / 2)
		if p := c.post("/ui/sign-out", url.Values{"csrf_token": {"forged"}}, nil); p.Status != http.StatusForbidden {
			t.Fatalf("a forged sign-out: %d, want 403", p.Status)
		}
		clock.advance(idle/2 + time.Second)
		if signedIn(c) {
			t.Error("a refused form kept the session alive")
		}
	})
	t.Run("a session ends at its lifetime however much it is used", func(t *testing.T) {
		_, c, clock := start(t)
		for used := time.Duration(0); used+idle/2 < lifetime; used += idle / 2 {
			clock.advance(idle / 2)
			if !signedIn(c) {
				t.Fatalf("signed out after %s of use, before the lifetime", used+idle/2)
			}
		}
		clock.advance(idle / 2)
		if signedIn(c) {
			t.Error("still signed in past the session lifetime")
		}
	})
	t.Run("signing out deletes the session", func(t *testing.T) {
		svc, c, _ := start(t)
		if p := c.post("/ui/sign-out", url.Values{"csrf_token": {c.csrf()}}, nil); p.Status != http.StatusSeeOther {
			t.Fatalf("sign-out: %d", p.Status)
		}
		if n := countSessions(t, svc); n != 0 {
			t.Errorf("%d sessions stored after signing out, want 0", n)
		}
		if signedIn(c) {
			t.Error("still signed in after signing out")
		}
	})
	t.Run("deleting the user ends its sessions", func(t *testing.T) {
		svc, c, _ := start(t)
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"user", "del", "-db", svc.app.cfg.db, "demo"}, mapEnv(nil), nil, &out, &errOut); err != nil {
			t.Fatalf("user del: %v (%s)", err, errOut.String())
		}
		if signedIn(c) || countSessions(t, svc) != 0 {
			t.Error("the deleted user's session lives on")
		}
	})
	t.Run("the janitor deletes expired sessions", func(t *testing.T) {
		svc, _, clock := start(t)
		j := newJanitor(svc.store, svc.writer, 0, slog.New(slog.DiscardHandler))
		j.now = clock.now
		if err := j.sweep(context.Background()); err != nil || countSessions(t, svc) != 1 {
			t.Fatalf("a live session was swept (err %v)", err)
		}
		clock.advance(idle + time.Second)
		if err := j.sweep(context.Background()); err != nil || countSessions(t, svc) != 0 {
			t.Errorf("an expired session outlived the sweep (err %v)", err)
		}
	})
}

// countSessions counts the stored sessions.
func countSessions(t *testing.T, svc *service) int {
	t.Helper()
	var n int
	if err := svc.store.r.QueryRow("SELECT count(*) FROM sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConsoleStateChangesNeedTheSessionsCSRFToken(t *testing.T) {
	forEachStore(t, testConsoleStateChangesNeedTheSessionsCSRFToken)
}

// testConsoleStateChangesNeedTheSessionsCSRFToken runs TestConsoleStateChangesNeedTheSessionsCSRFToken on one database.
func testConsoleStateChangesNeedTheSessionsCSRFToken(t *testing.T, db string) {
	_, srv := startServiceWith(t, newGatedRestorer(t), "-dev", "-db", db)
	c := newConsoleClient(t, srv.URL)
	c.signIn("demo", "demo")
	token := c.csrf()
	other := newConsoleClient(t, srv.URL)
	other.signIn("demo", "demo")
	otherToken := other.csrf()
	queued := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": seqNumbers(15551230111, 12)})
	job := queued.Body["job_uuid"].(string)
	cancel := "/ui/jobs/" + job + "/cancel"
	cases := []struct {
		name   string
		path   string
		form   url.Values
		header map[string]string
	}{
		{"no token", cancel, url.Values{}, nil},
		{"a wrong token", cancel, url.Values{"csrf_token": {"x" + token}}, nil},
		{"the token of another session", cancel, url.Values{"csrf_token": {otherToken}}, nil},
		{"the token in the address only", cancel + "?csrf_token=" + url.QueryEscape(token), url.Values{}, nil},
		{"the right token from another site", cancel, url.Values{"csrf_token": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, tc := range cases {
		t.Run("a cancel with "+tc.name+" is refused and changes nothing", func(t *testing.T) {
			if p := c.post(tc.path, tc.form, tc.header); p.Status != http.StatusForbidden {
				t.Errorf("status=%d, want 403", p.Status)
			}
			st := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?job_uuid="+job, "demo", "demo", nil)
			if st.Body["status"] == "cancelled" {
				t.Fatal("the job was cancelled")
			}
		})
	}
	t.Run("the token in the X-CSRF-Token header, as htmx sends it, is accepted", func(t *testing.T) {
		p := c.post(cancel, url.Values{}, map[string]string{"X-CSRF-Token": token})
		if p.Status != http.StatusSeeOther {
			t.Fatalf("status=%d, want 303: %s", p.Status, p.Body)
		}
		st := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?job_uuid="+job, "demo", "demo", nil)
		if st.Body["status"] != "cancelled" {
			t.Errorf("the job is %v, want cancelled", st.Body["status"])
		}
		if again := c.post(cancel, url.Values{"csrf_token": {token}}, nil); again.Status != http.StatusConflict ||
			!strings.Contains(again.Body, "job is already cancelled") {
			t.Errorf("cancelling again: status=%d, want 409 with the API's reason", again.Status)
		}
	})
}

func TestConsoleNeverShowsAnotherUsersJob(t *testing.T) {
	forEachStore(t, testConsoleNeverShowsAnotherUsersJob)
}

// testConsoleNeverShowsAnotherUsersJob runs TestConsoleNeverShowsAnotherUsersJob on one database.
func testConsoleNeverShowsAnotherUsersJob(t *testing.T, db string) {
	svc, srv := startServiceWith(t, newGatedRestorer(t), "-dev", "-db", db)
	key, _ := addUser(t, svc.app.cfg.db, "acme")
	theirs := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "acme", key, map[string]any{"numbers": seqNumbers(15551230111, 12)})
	job := theirs.Body["job_uuid"].(string)
	c := newConsoleClient(t, srv.URL)
	c.signIn("demo", "demo")
	token := c.csrf()
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/ui/jobs/" + job},
		{http.MethodGet, "/ui/jobs/" + job + "/numbers/15551230111"},
		{http.MethodGet, "/ui/jobs/" + job + "/webhook-payload"},
		{http.MethodGet, "/ui/jobs?q=" + job},
		{http.MethodPost, "/ui/jobs/" + job + "/cancel"},
		{http.MethodPost, "/ui/jobs/" + job + "/redeliver"},
	} {
		t.Run(tc.method+" "+strings.Replace(tc.path, job, "THEIRS", 1), func(t *testing.T) {
			var p page
			if tc.method == http.MethodPost {
				p = c.post(tc.path, url.Values{"csrf_token": {token}}, nil)
			} else {
				p = c.get(tc.path)
			}
			if strings.Contains(p.Body, "15551230111") || (p.Status != http.StatusNotFound && !strings.HasPrefix(tc.path, "/ui/jobs?")) {
				t.Errorf("status=%d, want 404 and none of their data", p.Status)
			}
		})
	}
	if st := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?job_uuid="+job, "acme", key, nil); st.Body["status"] == "cancelled" {
		t.Error("their job was cancelled")
	}
}

func TestConsoleRestoreForm(t *testing.T) {
	_, srv := startServiceWith(t, nil, "-dev", "-max-numbers", "20", "-max-body", "64KiB")
	c := newConsoleClient(t, srv.URL)
	c.signIn("demo", "demo")
	token := c.csrf()
	send := func(path string, fields map[string]string, file string, header map[string]string) page {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf_token", token)
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		if file != "" {
			fw, _ := mw.CreateFormFile("numbers_file", "numbers.txt")
			fw.Write([]byte(file))
		}
		mw.Close()
		h := map[string]string{"Content-Type": mw.FormDataContentType()}
		for k, v := range header {
			h[k] = v
		}
		return c.do(http.MethodPost, path, &body, h)
	}
	refused := []struct {
		name   string
		fields map[string]string
		file   string
		status int
		says   string
	}{
		{"invalid lines are named by where they are", map[string]string{"numbers_text": "15551230111\n12ab\n"}, "15551230112\n\n99",
			http.StatusBadRequest, "Text line 2: <code>12ab</code>"},
		{"no numbers at all", map[string]string{"numbers_text": "\n \n"}, "", http.StatusBadRequest, "no numbers given"},
		{"more numbers than -max-numbers", map[string]string{"numbers_text": strings.Join(seqNumbers(15551230100, 21), "\n")}, "",
			http.StatusRequestEntityTooLarge, "too many numbers"},
		{"a webhook URL that is not one", map[string]string{"numbers_text": "15551230111", "webhook_url": "ftp://x"}, "",
			http.StatusBadRequest, "webhook_url must be an absolute http or https URL"},
		{"a body over -max-body", map[string]string{"numbers_text": strings.Repeat("15551230111\n", 12000)}, "",
			http.StatusRequestEntityTooLarge, "larger than this server takes"},
	}
	for _, tc := range refused {
		t.Run(tc.name+": nothing is sent", func(t *testing.T) {
			p := send("/ui/restore", tc.fields, tc.file, nil)
			if p.Status != tc.status || !strings.Contains(p.Body, tc.says) {
				t.Errorf("status=%d, want %d saying %q:\n%s", p.Status, tc.status, tc.says, p.Body)
			}
			if jobs := apiJobs(t, srv.URL, "demo", "demo"); len(jobs) != 0 {
				t.Fatalf("%d jobs after a refused form, want none", len(jobs))
			}
		})
	}
	t.Run("the file's line numbers count from its own first line", func(t *testing.T) {
		p := send("/ui/restore/check", map[string]string{"numbers_text": "15551230111"}, "15551230112\n\n99", nil)
		if !strings.Contains(p.Body, "File numbers.txt line 3: <code>99</code>") {
			t.Errorf("the check does not name the file's line 3:\n%s", p.Body)
		}
	})
	t.Run("htmx gets the preview alone, saying what would happen", func(t *testing.T) {
		p := send("/ui/restore/check", map[string]string{"numbers_text": strings.Join(seqNumbers(15551230111, 12), "\n") + "\n15551230111"}, "",
			map[string]string{"HX-Request": "true", "HX-Target": "preview"})
		if p.Status != http.StatusOK || !strings.HasPrefix(p.Body, `<div id="preview"`) ||
			!strings.Contains(p.Body, "Ready: 12 numbers (1 repeated line dropped), queued") {
			t.Errorf("status=%d:\n%s", p.Status, p.Body)
		}
	})
	t.Run("a valid form becomes a job with exactly its numbers, the file's after the text's", func(t *testing.T) {
		p := send("/ui/restore", map[string]string{"numbers_text": "15551230111\r\n 15551230112 "}, "15551230113\n15551230111\n", nil)
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/ui/jobs/") {
			t.Fatalf("status=%d Location=%q:\n%s", p.Status, p.Header.Get("Location"), p.Body)
		}
		job := strings.TrimSuffix(strings.TrimPrefix(p.Header.Get("Location"), "/ui/jobs/"), "?done=submitted")
		st := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?job_uuid="+job, "demo", "demo", nil)
		var got []string
		for _, r := range results(t, st.Body) {
			got = append(got, r["number"].(string))
		}
		if strings.Join(got, ",") != "15551230111,15551230112,15551230113" || st.Body["status"] != "completed" {
			t.Errorf("the job is %v with %v", st.Body["status"], got)
		}
	})
}

func TestConsoleRetryAndPreview(t *testing.T) {
	_, srv := startServiceWith(t, nil, "-dev")
	c := newConsoleClient(t, srv.URL)
	c.signIn("demo", "demo")
	token := c.csrf()
	submitJob := func(numbers ...string) string {
		resp := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": numbers})
		return resp.Body["job_uuid"].(string)
	}
	clean := submitJob("15551230111")
	mixed := submitJob("15551230112", "15551230117", "15551230119")
	for _, tc := range []struct {
		name, job, codes string
		status           int
		says             string
	}{
		{"a job without failures has nothing to retry", clean, "", http.StatusConflict, msgNothingToRetry},
		{"status codes that are not ones are refused", mixed, "5xx", http.StatusBadRequest, "status_code must be HTTP status codes"},
		{"codes no failure has leave nothing to retry", mixed, "500,503", http.StatusConflict, msgNothingToRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(apiJobs(t, srv.URL, "demo", "demo"))
			p := c.post("/ui/jobs/"+tc.job+"/retry", url.Values{"csrf_token": {token}, "status_code": {tc.codes}}, nil)
			if p.Status != tc.status || !strings.Contains(p.Body, tc.says) {
				t.Errorf("status=%d, want %d saying %q", p.Status, tc.status, tc.says)
			}
			if after := len(apiJobs(t, srv.URL, "demo", "demo")); after != before {
				t.Errorf("%d jobs after a refused retry, want %d", after, before)
			}
		})
	}
	t.Run("a retry narrowed by status code takes only those failures", func(t *testing.T) {
		p := c.post("/ui/jobs/"+mixed+"/retry", url.Values{"csrf_token": {token}, "status_code": {"410"}}, nil)
		if p.Status != http.StatusSeeOther {
			t.Fatalf("status=%d, want 303:\n%s", p.Status, p.Body)
		}
		retry := strings.TrimSuffix(strings.TrimPrefix(p.Header.Get("Location"), "/ui/jobs/"), "?done=retried")
		st := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_status?job_uuid="+retry, "demo", "demo", nil)
		if got := results(t, st.Body); len(got) != 1 || got[0]["number"] != "15551230119" || st.Body["retry_of"] != mixed {
			t.Errorf("the retry is %s", st.Raw)
		}
	})
	t.Run("without JavaScript the preview comes back as the whole page, and nothing is sent", func(t *testing.T) {
		before := len(apiJobs(t, srv.URL, "demo", "demo"))
		p := c.post("/ui/restore/check", url.Values{"csrf_token": {token}, "dry_run": {"1"},
			"numbers_text": {"15551230121\n15551230127"}}, nil)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "<html") || !strings.Contains(p.Body, "would succeed: 1") ||
			!strings.Contains(p.Body, "would fail: 1") || !strings.Contains(p.Body, "Error: &#39;number is no longer available&#39;") {
			t.Errorf("status=%d:\n%s", p.Status, p.Body)
		}
		if after := len(apiJobs(t, srv.URL, "demo", "demo")); after != before {
			t.Errorf("%d jobs after a preview, want %d", after, before)
		}
	})
}

package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The console over plain HTTP: the security it promises (headers, cookie,
// CSRF, sign-in, sessions, other users' data) and what bad input gets.
// What a person sees is tested in a real browser (ui_browser_*_test.go).

// consoleClient is one browser's worth of HTTP: a cookie jar, and redirects
// reported rather than followed.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

// newConsoleClient is a client with no session yet.
func newConsoleClient(t *testing.T, base string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer of the console.
type page struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request with the given headers and returns the answer.
func (c *consoleClient) do(method, path string, body io.Reader, header map[string]string) page {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// get fetches a page.
func (c *consoleClient) get(path string) page {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, nil)
}

// post sends a form.
func (c *consoleClient) post(path string, form url.Values, header map[string]string) page {
	c.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range header {
		h[k] = v
	}
	return c.do(http.MethodPost, path, strings.NewReader(form.Encode()), h)
}

// signIn signs in through the form and fails the test unless it worked.
func (c *consoleClient) signIn(user, key string) page {
	c.t.Helper()
	p := c.post("/ui/sign-in", url.Values{"username": {user}, "api_key": {key}}, nil)
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/jobs" {
		c.t.Fatalf("sign in as %s: %d to %q: %s", user, p.Status, p.Header.Get("Location"), p.Body)
	}
	return p
}

// csrfField finds the CSRF token in a page's forms.
var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf returns the session's CSRF token, read from the jobs page.
func (c *consoleClient) csrf() string {
	c.t.Helper()
	m := csrfField.FindStringSubmatch(c.get("/ui/jobs").Body)
	if m == nil {
		c.t.Fatal("no CSRF token on the jobs page")
	}
	return m[1]
}

// gatedRestorer restores every number once its gate opens (or fails it
// when the restore is cut short), so that tests can hold a job running.
type gatedRestorer struct{ gate chan struct{} }

// Restore implements Restorer.
func (g gatedRestorer) Restore(ctx context.Context, _ int64, _ string) Outcome {
	select {
	case <-g.gate:
		return Outcome{Success: true, StatusCode: 200, Message: msgRestored}
	case <-ctx.Done():
		return Outcome{StatusCode: 500, Message: "cut short"}
	}
}

// newGatedRestorer is a gatedRestorer whose gate opens at cleanup.
func newGatedRestorer(t *testing.T) gatedRestorer {
	g := gatedRestorer{gate: make(chan struct{})}
	t.Cleanup(func() { close(g.gate) })
	return g
}

// testClock is a clock that tests move forward; safe for concurrent use.
type testClock struct{ offset atomic.Int64 }

// now is the real time plus how far the test moved the clock.
func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the clock forward.
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestConsoleAnswersCarryTheSecurityHeaders(t *testing.T) {
	_, srv := startServiceWith(t, nil, "-dev")
	c := newConsoleClient(t, srv.URL)
	cases := []struct {
		name, method, path string
		want               int
	}{
		{"the sign-in page", http.MethodGet, "/ui/sign-in", http.StatusOK},
		{"the console's root, which redirects", http.MethodGet, "/ui/", http.StatusSeeOther},
		{"a page that needs a session", http.MethodGet, "/ui/jobs", http.StatusSeeOther},
		{"a static file", http.MethodGet, "/ui/static/console.css", http.StatusOK},
		{"a page that does not exist", http.MethodGet, "/ui/nothing-here", http.StatusNotFound},
		{"a method a page does not take", http.MethodDelete, "/ui/jobs", http.StatusMethodNotAllowed},
		{"a form sent without a session", http.MethodPost, "/ui/sign-out", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := c.do(tc.method, tc.path, nil, nil)
			if p.Status != tc.want {
				t.Fatalf("status=%d, want %d", p.Status, tc.want)
			}
			for k, v := range map[string]string{"Content-Security-Policy": uiCSP, "X-Frame-Options": "DENY",
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
				if got := p.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if ct := p.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") && p.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("a page has Cache-Control %q, want no-store", p.Header.Get("Cache-Control"))
			}
			if tc.want >= 400 && !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				t.Errorf("an error of the console is %q, want a page", p.Header.Get("Content-Type"))
			}
		})
	}
	if !strings.Contains(uiCSP, "default-src 'none'") || strings.Contains(uiCSP, "unsafe") {
		t.Errorf("the policy is not strict: %s", uiCSP)
	}
}

func TestConsoleStaticFilesAreEmbeddedAndRevalidated(t *testing.T) {
	_, srv := startServiceWith(t, nil, "-dev")
	c := newConsoleClient(t, srv.URL)
	for name, ctype := range map[string]string{"console.css": "text/css; charset=utf-8", "htmx-2.0.11.min.js": "text/javascript; charset=utf-8"} {
		p := c.get("/ui/static/" + name)
		if p.Status != http.StatusOK || p.Header.Get("Content-Type") != ctype || len(p.Body) == 0 {
			t.Fatalf("%s: %d %q, %d bytes", name, p.Status, p.Header.Get("Content-Type"), len(p.Body))
		}
		again := c.do(http.MethodGet, "/ui/static/"+name, nil, map[string]string{"If-None-Match": p.Header.Get("ETag")})
		if again.Status != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", name, again.Status)
		}
	}
	if p := c.get("/ui/static/../schema.sql"); p.Status != http.StatusNotFound || strings.Contains(p.Body, "CREATE TABLE") {
		t.Errorf("a path out of the static folder: %d", p.Status)
	}
}

func TestConsoleSessionCookie(t *testing.T) {
	svc, srv := startServiceWith(t, nil, "-dev")
	cases := []struct {
		name       string
		header     map[string]string
		wantSecure bool
	}{
		{"over plain HTTP it is HttpOnly, SameSite=Strict and for /ui only", nil, false},
		{"behind a proxy that says https it is Secure too", map[string]string{"X-Forwarded-Proto": "https"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsoleClient(t, srv.URL)
			p := c.post("/ui/sign-in", url.Values{"username": {"demo"}, "api_key": {"demo"}}, tc.header)
			cookies := (&http.Response{Header: p.Header}).Cookies()
			if len(cookies) != 1 || cookies[0].Name != sessionCookie {
				t.Fatalf("cookies %v, want one %s", cookies, sessionCookie)
			}
			ck := cookies[0]
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui" || ck.Secure != tc.wantSecure {
				t.Errorf("cookie %s: HttpOnly=%v SameSite=%v Path=%q Secure=%v", p.Header.Get("Set-Cookie"),
					ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
			}
			if len(ck.Value) != 43 {
				t.Errorf("the session id is %d characters, want 43 (256 bits)", len(ck.Value))
			}
			var stored int
			svc.store.r.QueryRow("SELECT count(*) FROM sessions WHERE id_hash = ?", hashKey(ck.Value)).Scan(&stored)
			var plain int
			svc.store.r.QueryRow("SELECT count(*) FROM sessions WHERE id_hash = ? OR csrf_token = ?", ck.Value, ck.Value).Scan(&plain)
			if stored != 1 || plain != 0 {
				t.Errorf("sessions stored by the id's hash: %d, by the id itself: %d; want 1 and 0", stored, plain)
			}
		})
	}
}

func TestConsoleSignIn(t *testing.T) {
	forEachStore(t, testConsoleSignIn)
}

// testConsoleSignIn runs TestConsoleSignIn on one database.
func testConsoleSignIn(t *testing.T, db string) {
	_, srv := startServiceWith(t, nil, "-dev", "-db", db)
	t.Run("credentials in the address are never read", func(t *testing.T) {
		c := newConsoleClient(t, srv.URL)
		for _, p := range []page{
			c.get("/ui/sign-in?username=demo&api_key=demo"),
			c.post("/ui/sign-in?username=demo&api_key=demo", url.Values{}, nil),
		} {
			if p.Header.Get("Set-Cookie") != "" {
				t.Errorf("a session was started from credentials in the address (status %d)", p.Status)
			}
		}
	})
	t.Run("a wrong key is refused with the form again", func(t *testing.T) {
		c := newConsoleClient(t, srv.URL)
		p := c.post("/ui/sign-in", url.Values{"username": {"demo"}, "api_key": {"nope"}}, nil)
		if p.Status != http.StatusUnauthorized || p.Header.Get("Set-Cookie") != "" || !strings.Contains(p.Body, "Invalid user name or API key") {
			t.Errorf("status=%d cookie=%q", p.Status, p.Header.Get("Set-Cookie"))
		}
	})
	t.Run("a form from another site is refused", func(t *testing.T) {
		c := newConsoleClient(t, srv.URL)
		p := c.post("/ui/sign-in", url.Values{"username": {"demo"}, "api_key": {"demo"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if p.Status != http.StatusForbidden || p.Header.Get("Set-Cookie") != "" {
			t.Errorf("status=%d cookie=%q, want 403 and no session", p.Status, p.Header.Get("Set-Cookie"))
		}
	})
	for _, tc := range []struct{ next, want string }{
		{"/ui/jobs/8f6c1f0e-23d2-4717-8c8e-1a518e5738f0", "/ui/jobs/8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"},
		{"https://evil.example/ui/", "/ui/jobs"},
		{"//evil.example/ui/", "/ui/jobs"},
		{"/ui/\\evil.example", "/ui/jobs"},
	} {
		t.Run("after sign-in, next="+tc.next+" leads to "+tc.want, func(t *testing.T) {
			c := newConsoleClient(t, srv.URL)
			p := c.post("/ui/sign-in", url.Values{"username": {"demo"}, "api_key": {"demo"}, "next": {tc.next}}, nil)
			if p.Header.Get("Location") != tc.want {
				t.Errorf("Location %q, want %q", p.Header.Get("Location"), tc.want)
			}
		})
	}
}

func TestConsoleFailedSignInsShareTheAPIsLimiter(t *testing.T) {
	_, srv := startServiceWith(t, nil, "-dev")
	c := newConsoleClient(t, srv.URL)
	for i := 0; i < authFailureBurst; i++ {
		if p := c.post("/ui/sign-in", url.Values{"username": {"demo"}, "api_key": {"wrong"}}, nil); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status=%d, want 401", i+1, p.Status)
		}
	}
	p := c.post("/ui/sign-in", url.Values{"username": {"demo"}, "api_key": {"demo"}}, nil)
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || p.Header.Get("Set-Cookie") != "" {
		t.Errorf("the right key after %d failures: status=%d Retry-After=%q, want 429 and no session", authFailureBurst, p.Status, p.Header.Get("Retry-After"))
	}
	if api := call(t, http.MethodGet, srv.URL+"/v3/bulk_restore_jobs", "demo", "demo", nil); api.Status != http.StatusTooManyRequests {
		t.Errorf("the API from the same address: %d, want 429 (one limiter)", api.Status)
	}
}

func TestConsoleJobPageParts(t *testing.T) {
	_, srv := startServiceWith(t, newGatedRestorer(t), "-dev")
	c := newConsoleClient(t, srv.URL)
	c.signIn("demo", "demo")
	queued := call(t, http.MethodPost, srv.URL+"/v3/bulk_restore", "demo", "demo",
		map[string]any{"numbers": seqNumbers(15551230111, 12), "webhook_url": "http://127.0.0.1:9/hook"})
	job := queued.Body["job_uuid"].(string)
	cases := []struct {
		name, path string
		status     int
		says       []string
	}{
		{"a running job's webhook waits for the job", "/ui/jobs/" + job, http.StatusOK,
			[]string{"the payload is sent when the job finishes", "Cancel job", `hx-trigger="every 2s"`}},
		{"a filter shows only numbers of that state", "/ui/jobs/" + job + "?result_status=failed", http.StatusOK,
			[]string{"No numbers failed here."}},
		{"a state that is none is said and ignored", "/ui/jobs/" + job + "?result_status=bogus", http.StatusOK,
			[]string{"There is no result status &#34;bogus&#34;", "15551230111"}},
		{"a number not in the job is not found", "/ui/jobs/" + job + "/numbers/15551239999", http.StatusNotFound, nil},
		{"a number lookup of something not a number is refused", "/ui/numbers?number=12ab", http.StatusBadRequest,
			[]string{"A number is digits only."}},
		{"a number lookup lists the jobs that hold it", "/ui/numbers?number=15551230111", http.StatusOK,
			[]string{job, "Inventory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := c.get(tc.path)
			if p.Status != tc.status {
				t.Fatalf("status=%d, want %d", p.Status, tc.status)
			}
			for _, s := range tc.says {
				if !strings.Contains(p.Body, s) {
					t.Errorf("the page does not say %q", s)
				}
			}
		})
	}
	t.Run("the CSV of a job's results is the status endpoint's", func(t *testing.T) {
		p := c.get("/ui/jobs/" + job + "/results.csv")
		api, err := http.NewRequest(http.MethodGet, srv.URL+"/v3/bulk_restore_status?format=csv&job_uuid="+job, nil)
		if err != nil {
			t.Fatal(err)
		}
		api.SetBasicAuth("demo", "demo")
		resp, err := http.DefaultClient.Do(api)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		want, _ := io.ReadAll(resp.Body)
		numbersOf := func(csv string) string {
			var out []string
			for _, line := range strings.Split(strings.TrimSpace(csv), "\n") {
				out = append(out, strings.SplitN(line, ",", 2)[0])
			}
			return strings.Join(out, ",")
		}
		if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.Contains(p.Header.Get("Content-Disposition"), "bulk_restore_"+job+".csv") ||
			numbersOf(p.Body) != numbersOf(string(want)) || strings.Count(p.Body, "\n") != 13 {
			t.Errorf("status=%d %q:\n%s\nwant the API's:\n%s", p.Status, p.Header.Get("Content-Type"), p.Body, want)
		}
	})
}

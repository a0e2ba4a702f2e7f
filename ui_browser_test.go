package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The console driven through Debian's headless Chromium, against the built
// binary: one browser for the whole file, one browser context (its own
// cookies) per person. Every step is bounded; a page that breaks the
// Content-Security-Policy, throws, or asks for anything outside the server
// fails the test.

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browserStepTimeout bounds one step of a browser test.
const browserStepTimeout = 30 * time.Second

// consoleBrowser is one headless Chromium and what its pages did wrong.
type consoleBrowser struct {
	root context.Context
	base string // the server every page must stay on

	mu       sync.Mutex
	problems []string
}

// startConsoleBrowser starts Chromium for base's pages.
func startConsoleBrowser(t *testing.T, base string) *consoleBrowser {
	t.Helper()
	requireChromium(t)
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	root, rcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { rcancel(); acancel() })
	watchdog := time.AfterFunc(time.Minute, rcancel) // the first call starts the browser and must not carry a timeout
	defer watchdog.Stop()
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &consoleBrowser{root: root, base: base}
}

// person opens a tab in a browser context of its own (its own cookies),
// watched for CSP violations, script errors and requests off the server.
func (b *consoleBrowser) person(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	watchdog := time.AfterFunc(time.Minute, cancel)
	defer watchdog.Stop()
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("watch the network: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdplog.EventEntryAdded:
			e := ev.Entry
			if e.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") {
				b.problem("security: " + e.Text)
			}
		case *runtime.EventExceptionThrown:
			b.problem("script error: " + ev.ExceptionDetails.Text + " " + describeException(ev.ExceptionDetails))
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !strings.HasPrefix(u, b.base+"/") && !strings.HasPrefix(u, "data:") {
				b.problem("request off the server: " + u)
			}
		}
	})
	if err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
	return ctx
}

// describeException is the message of a script's exception.
func describeException(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// problem records what a page did wrong.
func (b *consoleBrowser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// checkClean fails the test for every problem recorded so far.
func (b *consoleBrowser) checkClean(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("the browser saw: %s", p)
	}
	b.problems = nil
}

// browse runs steps in the tab, bounded; it fails the test on an error.
func browse(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// read runs one action that returns a value, bounded.
func read[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// open navigates and returns the HTTP status of the page.
func open(t *testing.T, ctx context.Context, url string) int64 {
	t.Helper()
	return read(t, ctx, chromedp.NavigateResponse(url)).Status
}

// submitAndWait clicks a form's button and waits for the page it leads to,
// returning its status.
func submitAndWait(t *testing.T, ctx context.Context, button string) int64 {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(tctx, chromedp.Click(chromedp.CSS(button)))
	if err != nil {
		t.Fatalf("browser: click %s: %v", button, err)
	}
	return resp.Status
}

// waitJS waits until a JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, page)
	}
}

// pageText is the text the page shows.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return read(t, ctx, chromedp.Evaluate[string](`document.body.innerText`))
}

// screenshot saves a PNG of the page as name when BULKRESTORE_SCREENSHOTS
// names a folder (see the README's Console section); tests never write
// into the repository on their own.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("BULKRESTORE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := read(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
}

// signInAs signs a person in through the form.
func signInAs(t *testing.T, ctx context.Context, base, user, key string) int64 {
	t.Helper()
	browse(t, ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("api_key"), key))
	return submitAndWait(t, ctx, `main form button[type="submit"]`)
}

// consoleUpstream is the single-number restore endpoint behind the browser
// tests' server. A number's last digit picks its answer (7: no longer
// available, 9: window expired, else restored); numbers of the job the tests
// watch wait at watchGate until it opens, those of the job they cancel at
// holdGate, which opens only at the end. One number answers with markup in
// its message.
type consoleUpstream struct {
	*httptest.Server
	watchGate, holdGate chan struct{}
	openWatch, openHold func()
}

// consoleUpstream's number ranges and the number whose message is markup.
const (
	watchPrefix = "1555777"
	holdPrefix  = "1555888"
	markupNum   = "15551230666"
	markupMsg   = `<script>document.title="pwned"</script><img src=x>`
)

// newConsoleUpstream starts the fake upstream.
func newConsoleUpstream(t *testing.T) *consoleUpstream {
	u := &consoleUpstream{watchGate: make(chan struct{}), holdGate: make(chan struct{})}
	var w, h sync.Once
	u.openWatch = func() { w.Do(func() { close(u.watchGate) }) }
	u.openHold = func() { h.Do(func() { close(u.holdGate) }) }
	u.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := strings.TrimPrefix(r.URL.Path, "/r/")
		var gate chan struct{}
		switch {
		case strings.HasPrefix(n, watchPrefix):
			gate = u.watchGate
		case strings.HasPrefix(n, holdPrefix):
			gate = u.holdGate
		}
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		rw.Header().Set("Content-Type", "application/json")
		switch {
		case n == markupNum:
			rw.WriteHeader(http.StatusNotFound)
			json.NewEncoder(rw).Encode(map[string]string{"message": markupMsg})
		case strings.HasSuffix(n, "7"):
			rw.WriteHeader(http.StatusConflict)
			io.WriteString(rw, `{"message":"Error: 'number is no longer available'"}`)
		case strings.HasSuffix(n, "9"):
			rw.WriteHeader(http.StatusGone)
			io.WriteString(rw, `{"message":"Error: 'restore window expired'"}`)
		case strings.HasSuffix(n, "3"):
			io.WriteString(rw, `{"message":"Number restored","requires_identity_update":1,"needs_registration":1}`)
		default:
			io.WriteString(rw, `{"message":"Number restored"}`)
		}
	}))
	t.Cleanup(u.Close)
	t.Cleanup(u.openHold) // runs first: nothing stays blocked at Close
	t.Cleanup(u.openWatch)
	return u
}

// apiJobs lists a user's jobs through the API.
func apiJobs(t *testing.T, base, user, key string) []map[string]any {
	t.Helper()
	resp := call(t, http.MethodGet, base+"/v3/bulk_restore_jobs?limit=500", user, key, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("job list: %d %s", resp.Status, resp.Raw)
	}
	var out []map[string]any
	for _, j := range resp.Body["jobs"].([]any) {
		out = append(out, j.(map[string]any))
	}
	return out
}

// jobUUIDFromURL is the job a /ui/jobs/{uuid} address names.
func jobUUIDFromURL(t *testing.T, u string) string {
	t.Helper()
	i := strings.Index(u, "/ui/jobs/")
	if i < 0 || len(u) < i+len("/ui/jobs/")+36 {
		t.Fatalf("not a job page: %s", u)
	}
	return u[i+len("/ui/jobs/") : i+len("/ui/jobs/")+36]
}

// numberLines joins numbers one a line.
func numberLines(numbers []string) string { return strings.Join(numbers, "\n") }

// prefixed returns n numbers that start with prefix.
func prefixed(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// markPage marks the page in the browser, so that a test can tell that it
// was updated in place and not loaded again (a new page has no mark).
var markPage chromedp.Action[chromedp.Void] = func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
	_, err := chromedp.Evaluate[bool](`window.stayedOnPage = true`)(ctx, t)
	return chromedp.Void{}, err
}

// downloadCSV clicks a download link and returns the file the browser
// saved, waiting for it with a bound.
func downloadCSV(t *testing.T, ctx context.Context, link string) string {
	t.Helper()
	dir := t.TempDir()
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
	if err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	browse(t, ctx, chromedp.Click(chromedp.CSS(link)))
	var got string
	waitFor(t, browserStepTimeout, "the download", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
		if len(files) != 1 {
			return false
		}
		b, err := os.ReadFile(files[0])
		got = string(b)
		return err == nil && strings.HasSuffix(got, "\n")
	})
	return got
}

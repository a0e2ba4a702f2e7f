package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestConsoleInBrowser is what a person does with the console, in headless
// Chromium against the built binary, in order: one server (upstream
// backend, a fake upstream on loopback) and one browser for all of it.
func TestConsoleInBrowser(t *testing.T) {
	requireChromium(t)
	bin := buildBinary(t)
	up := newConsoleUpstream(t)
	hooks := newHookReceiver(t)
	db := filepath.Join(t.TempDir(), "console.db")
	otherKey := binAddUser(t, bin, db, "other")
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	const adminToken = "console-test-admin-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startChild(t, bin, "-db", db, "-dev", "-admin-token-file", tokenFile,
		"-backend", "upstream", "-upstream-url", up.URL+"/r/{number}",
		"-upstream-preview-url", up.URL+"/r/{number}",
		"-restore-max-attempts", "1", "-restore-timeout", "5s", "-shutdown-timeout", "2s")
	base := srv.URL
	b := startConsoleBrowser(t, base)
	demo := b.person(t)
	defer b.checkClean(t)

	t.Run("a wrong API key shows an error and signs no one in", func(t *testing.T) {
		open(t, demo, base+"/ui/sign-in")
		screenshot(t, demo, "sign-in")
		if status := signInAs(t, demo, base, "demo", "wrong"); status != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", status)
		}
		if text := pageText(t, demo); !strings.Contains(text, "Invalid user name or API key") {
			t.Errorf("the page does not say why:\n%s", text)
		}
		if status := open(t, demo, base+"/ui/jobs"); !strings.Contains(read(t, demo, chromedp.Location()), "/ui/sign-in") {
			t.Errorf("the jobs list answered %d without a session", status)
		}
	})

	t.Run("signing in opens the jobs list", func(t *testing.T) {
		if status := signInAs(t, demo, base, "demo", "demo"); status != http.StatusOK {
			t.Fatalf("status %d, want 200", status)
		}
		if loc := read(t, demo, chromedp.Location()); !strings.HasSuffix(loc, "/ui/jobs") {
			t.Errorf("landed on %s, want the jobs list", loc)
		}
		if cookies := read(t, demo, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookies, sessionCookie) {
			t.Errorf("scripts can read the session cookie: %q", cookies)
		}
		checkPageHygiene(t, demo)
	})

	t.Run("invalid lines are shown as they are typed, and nothing is sent", func(t *testing.T) {
		open(t, demo, base+"/ui/restore")
		browse(t, demo, chromedp.SendKeys(chromedp.ID("numbers_text"), "15551230111\nnot-a-number\n15551230112"))
		waitJS(t, demo, "the preview to name line 2", `document.querySelector('#preview').innerText.includes('Text line 2')`)
		file := filepath.Join(t.TempDir(), "numbers.txt")
		if err := os.WriteFile(file, []byte("15551230114\n12345\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		browse(t, demo, chromedp.SetUploadFiles(chromedp.ID("numbers_file"), []string{file}))
		waitJS(t, demo, "the preview to name the file's line 2",
			`document.querySelector('#preview').innerText.includes('File numbers.txt line 2')`)
		screenshot(t, demo, "restore-invalid")
		if status := submitAndWait(t, demo, restoreButton); status != http.StatusBadRequest {
			t.Errorf("sending invalid lines answered %d, want 400", status)
		}
		if jobs := apiJobs(t, base, "demo", "demo"); len(jobs) != 0 {
			t.Errorf("%d jobs exist after invalid input, want none", len(jobs))
		}
		checkPageHygiene(t, demo)
	})

	var syncJob string
	t.Run("a restore is previewed, then sent, and shows its results at once", func(t *testing.T) {
		open(t, demo, base+"/ui/restore")
		browse(t, demo, chromedp.SetValue(chromedp.ID("numbers_text"), "15551230111\n15551230117\n15551230113\n15551230111"),
			markPage, chromedp.Click(chromedp.CSS(`button[name="dry_run"]`)))
		waitJS(t, demo, "the preview of what would happen", `window.stayedOnPage === true &&
			document.querySelector('#preview').innerText.includes('would succeed: 2') &&
			document.querySelector('#preview').innerText.includes('would fail: 1')`)
		if text := read(t, demo, chromedp.Evaluate[string](`document.querySelector('#preview').innerText`)); !strings.Contains(text, "Error: 'number is no longer available'") {
			t.Errorf("the preview does not say why a number would fail:\n%s", text)
		}
		screenshot(t, demo, "restore-preview")
		if jobs := apiJobs(t, base, "demo", "demo"); len(jobs) != 0 {
			t.Fatalf("%d jobs after a preview, want none", len(jobs))
		}
		if status := submitAndWait(t, demo, restoreButton); status != http.StatusOK {
			t.Fatalf("status %d, want 200", status)
		}
		syncJob = jobUUIDFromURL(t, read(t, demo, chromedp.Location()))
		text := pageText(t, demo)
		for _, want := range []string{"Restore submitted.", "completed", "15551230117", "Error: 'number is no longer available'", "409"} {
			if !strings.Contains(text, want) {
				t.Errorf("the job page does not show %q:\n%s", want, text)
			}
		}
		if rows := read(t, demo, chromedp.Evaluate[int](`document.querySelectorAll('#results-heading ~ .table-wrap tbody tr').length`)); rows != 3 {
			t.Errorf("%d result rows, want 3 (the repeat dropped)", rows)
		}
		browse(t, demo, chromedp.Click(chromedp.CSS(`a[aria-label="1 attempts of 15551230117"]`)), chromedp.WaitVisible(chromedp.CSS("h1")))
		if text := pageText(t, demo); !strings.Contains(text, "Number 15551230117") || !strings.Contains(text, "409") {
			t.Errorf("the number's page does not show its attempt:\n%s", text)
		}
		if rows := read(t, demo, chromedp.Evaluate[int](`document.querySelectorAll('table.list tbody tr').length`)); rows != 1 {
			t.Errorf("the number's page lists %d attempts, want its 1", rows)
		}
	})

	t.Run("a job's failures are retried from its page, and the two jobs link each other", func(t *testing.T) {
		open(t, demo, base+"/ui/jobs/"+syncJob)
		if status := submitAndWait(t, demo, `form[action$="/retry"] button`); status != http.StatusOK {
			t.Fatalf("retry answered %d", status)
		}
		retry := jobUUIDFromURL(t, read(t, demo, chromedp.Location()))
		text := pageText(t, demo)
		for _, want := range []string{"A new job retries the failures.", "Retries the failures of", syncJob, "15551230117"} {
			if !strings.Contains(text, want) {
				t.Errorf("the retry's page does not show %q:\n%s", want, text)
			}
		}
		if rows := read(t, demo, chromedp.Evaluate[int](`document.querySelectorAll('#results-heading ~ .table-wrap tbody tr').length`)); rows != 1 {
			t.Errorf("the retry has %d numbers, want the 1 failure", rows)
		}
		open(t, demo, base+"/ui/jobs/"+syncJob)
		if !strings.Contains(pageText(t, demo), retry) {
			t.Errorf("the original job does not link its retry %s", retry)
		}
	})

	t.Run("a job's results are filtered by status and downloaded as CSV", func(t *testing.T) {
		open(t, demo, base+"/ui/jobs/"+syncJob)
		browse(t, demo, chromedp.SetValue(chromedp.ID("result_status"), "failed"))
		if status := submitAndWait(t, demo, `form.results-filter button`); status != http.StatusOK {
			t.Fatalf("the filter answered %d", status)
		}
		numbers := read(t, demo, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#results-heading ~ .table-wrap tbody tr td:nth-child(2)')].map(td => td.textContent)`))
		if strings.Join(numbers, ",") != "15551230117" {
			t.Errorf("the failures shown are %v, want [15551230117]", numbers)
		}
		csv := downloadCSV(t, demo, `a[href*="/results.csv"]`)
		want := "number,status,status_code,message,attempts,started_at,completed_at,requires_identity_update,needs_registration\n" +
			"15551230117,failed,409,Error: 'number is no longer available',1,"
		if !strings.HasPrefix(csv, want) || strings.Count(csv, "\n") != 2 {
			t.Errorf("the CSV of the failures is:\n%s\nwant the header and one row starting %q", csv, want[strings.Index(want, "\n")+1:])
		}
	})

	t.Run("a number's lookup shows every job of the user that holds it", func(t *testing.T) {
		open(t, demo, base+"/ui/jobs")
		browse(t, demo, chromedp.SetValue(chromedp.ID("q"), "15551230117"))
		submitAndWait(t, demo, `form[role="search"] button`)
		if loc := read(t, demo, chromedp.Location()); !strings.Contains(loc, "/ui/numbers?number=15551230117") {
			t.Fatalf("searching a number led to %s", loc)
		}
		links := read(t, demo, chromedp.Evaluate[int](`document.querySelectorAll('#history-heading ~ .table-wrap tbody tr').length`))
		if links != 2 || !strings.Contains(pageText(t, demo), syncJob) {
			t.Errorf("%d jobs listed for the number, want 2 (the job and its retry):\n%s", links, pageText(t, demo))
		}
		screenshot(t, demo, "number-lookup")
	})

	t.Run("a queued job's page updates itself until the job finishes", func(t *testing.T) {
		open(t, demo, base+"/ui/restore")
		browse(t, demo, chromedp.SetValue(chromedp.ID("numbers_text"), numberLines(prefixed(watchPrefix, 12))))
		submitAndWait(t, demo, restoreButton)
		if text := pageText(t, demo); strings.Contains(text, "completed") {
			t.Fatalf("the job finished before its numbers were let through:\n%s", text)
		}
		screenshot(t, demo, "job-running")
		browse(t, demo, markPage)
		up.openWatch()
		waitJS(t, demo, "the page to show the job completed",
			`document.querySelector('#live-job .badge').textContent === 'completed' && window.stayedOnPage === true`)
		waitJS(t, demo, "the page to stop polling", `!document.querySelector('#live-job').hasAttribute('hx-trigger')`)
		if text := pageText(t, demo); !strings.Contains(text, "12 of 12 numbers done") {
			t.Errorf("the progress does not show the job done:\n%s", text)
		}
	})

	t.Run("a running job can be cancelled from its page", func(t *testing.T) {
		open(t, demo, base+"/ui/restore")
		browse(t, demo, chromedp.SetValue(chromedp.ID("numbers_text"), numberLines(prefixed(holdPrefix, 40))))
		submitAndWait(t, demo, restoreButton)
		job := jobUUIDFromURL(t, read(t, demo, chromedp.Location()))
		if status := submitAndWait(t, demo, `form[action$="/cancel"] button`); status != http.StatusOK {
			t.Fatalf("cancel answered %d", status)
		}
		if text := pageText(t, demo); !strings.Contains(text, "Job cancelled:") || !strings.Contains(text, "cancelled") {
			t.Errorf("the page does not show the cancellation:\n%s", text)
		}
		status := call(t, http.MethodGet, base+"/v3/bulk_restore_status?job_uuid="+job, "demo", "demo", nil)
		if status.Body["status"] != "cancelled" {
			t.Errorf("the API says the job is %v, want cancelled", status.Body["status"])
		}
	})

	t.Run("the jobs list updates its counts without a reload", func(t *testing.T) {
		queued := call(t, http.MethodPost, base+"/v3/bulk_restore", "demo", "demo", map[string]any{"numbers": prefixed(holdPrefix+"1", 20)})
		job, _ := queued.Body["job_uuid"].(string)
		open(t, demo, base+"/ui/jobs")
		waitJS(t, demo, "the list to show the queued job", `document.querySelector('a[href="/ui/jobs/`+job+`"]') !== null`)
		screenshot(t, demo, "jobs")
		browse(t, demo, markPage)
		call(t, http.MethodPost, base+"/v3/bulk_restore_cancel?job_uuid="+job, "demo", "demo", nil)
		waitJS(t, demo, "the list to show the job cancelled", `window.stayedOnPage === true &&
			document.querySelector('a[href="/ui/jobs/`+job+`"]').closest('tr').querySelector('.badge').textContent === 'cancelled'`)
	})

	t.Run("a webhook is delivered again from the page, which shows every attempt and the payload", func(t *testing.T) {
		open(t, demo, base+"/ui/restore")
		browse(t, demo, chromedp.SetValue(chromedp.ID("numbers_text"), "15551230121\n15551230127"),
			chromedp.SetValue(chromedp.ID("webhook_url"), hooks.URL+"/hook"))
		submitAndWait(t, demo, restoreButton)
		if hooks.count() != 1 {
			t.Fatalf("%d deliveries after the job, want 1", hooks.count())
		}
		screenshot(t, demo, "job")
		if status := submitAndWait(t, demo, `form[action$="/redeliver"] button`); status != http.StatusOK {
			t.Fatalf("redeliver answered %d", status)
		}
		if hooks.count() != 2 {
			t.Errorf("%d deliveries after redelivering, want 2", hooks.count())
		}
		if text := pageText(t, demo); !strings.Contains(text, "The webhook was delivered again.") {
			t.Errorf("the page does not say the webhook went again:\n%s", text)
		}
		rows := read(t, demo, chromedp.Evaluate[int](`document.querySelectorAll('#webhook-heading ~ .table-wrap tbody tr').length`))
		if rows != 2 {
			t.Errorf("%d delivery attempts shown, want 2", rows)
		}
		shown := read(t, demo, chromedp.Evaluate[string](`document.querySelector('pre.payload').textContent`))
		var got, sent any
		if err := json.Unmarshal([]byte(shown), &got); err != nil {
			t.Fatalf("the payload shown is not JSON: %v\n%s", err, shown)
		}
		json.Unmarshal(hooks.body(1), &sent)
		if a, b := mustJSON(got), mustJSON(sent); a != b {
			t.Errorf("the payload shown differs from the one delivered:\nshown %s\nsent  %s", a, b)
		}
	})

	t.Run("another user's job is not found, and never listed", func(t *testing.T) {
		theirs := call(t, http.MethodPost, base+"/v3/bulk_restore", "other", otherKey, map[string]any{"numbers": []string{"15551239991"}})
		job, _ := theirs.Body["job_uuid"].(string)
		for _, path := range []string{"/ui/jobs/" + job, "/ui/jobs/" + job + "/numbers/15551239991", "/ui/jobs/" + job + "/webhook-payload"} {
			if status := open(t, demo, base+path); status != http.StatusNotFound {
				t.Errorf("%s answered %d, want 404", path, status)
			}
			if text := pageText(t, demo); strings.Contains(text, "15551239991") {
				t.Errorf("%s shows the other user's number:\n%s", path, text)
			}
		}
		open(t, demo, base+"/ui/jobs")
		if text := pageText(t, demo); strings.Contains(text, job) {
			t.Errorf("the jobs list shows the other user's job %s", job)
		}
	})

	t.Run("markup in a message or a webhook URL is shown as text", func(t *testing.T) {
		hostile := "http://127.0.0.1:9/<script>document.title='pwned'</script>"
		resp := call(t, http.MethodPost, base+"/v3/bulk_restore", "demo", "demo",
			map[string]any{"numbers": []string{markupNum}, "webhook_url": hostile})
		job, _ := resp.Body["job_uuid"].(string)
		open(t, demo, base+"/ui/jobs/"+job)
		text := pageText(t, demo)
		if !strings.Contains(text, markupMsg) || !strings.Contains(text, hostile) {
			t.Errorf("the message and the URL are not shown as text:\n%s", text)
		}
		if title := read(t, demo, chromedp.Title()); strings.Contains(title, "pwned") {
			t.Errorf("a script from the data ran: title %q", title)
		}
		if n := read(t, demo, chromedp.Evaluate[int](`document.querySelectorAll('main script, main img').length`)); n != 0 {
			t.Errorf("%d elements from the data were made into markup", n)
		}
	})

	t.Run("the pages fit a phone", func(t *testing.T) {
		browse(t, demo, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		defer browse(t, demo, chromedp.EmulateReset())
		for _, path := range []string{"/ui/jobs", "/ui/jobs/" + syncJob, "/ui/restore"} {
			open(t, demo, base+path)
			if wide := read(t, demo, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); wide {
				t.Errorf("%s scrolls sideways on a phone", path)
			}
		}
		open(t, demo, base+"/ui/jobs/"+syncJob)
		if label := read(t, demo, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('table.list td'), '::before').content`)); label != `"#"` {
			t.Errorf("a result cell is labelled %s on a phone, want its column's name", label)
		}
		if height := read(t, demo, chromedp.Evaluate[float64](`document.querySelector('table.list thead').getBoundingClientRect().height`)); height > 1 {
			t.Errorf("the table's header row is %gpx high on a phone, want it hidden", height)
		}
		screenshot(t, demo, "job-phone")
	})

	t.Run("dark mode follows the system", func(t *testing.T) {
		dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
		if _, err := chromedp.Call(demo, emulation.SetEmulatedMedia, dark); err != nil {
			t.Fatal(err)
		}
		defer chromedp.Call(demo, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		browse(t, demo, chromedp.EmulateViewport(1280, 900))
		open(t, demo, base+"/ui/jobs")
		if bg := read(t, demo, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)); bg != "rgb(13, 17, 23)" {
			t.Errorf("background %s in dark mode, want rgb(13, 17, 23)", bg)
		}
		screenshot(t, demo, "jobs-dark")
	})

	t.Run("the keyboard reaches the skip link first and every control has a label", func(t *testing.T) {
		open(t, demo, base+"/ui/restore")
		browse(t, demo, chromedp.KeyEvent(kb.Tab))
		if cls := read(t, demo, chromedp.Evaluate[string](`document.activeElement.className`)); cls != "skip" {
			t.Fatalf("the first Tab focuses %q, want the skip link", cls)
		}
		if outline := read(t, demo, chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`)); outline == "none" {
			t.Error("the focused skip link shows no outline")
		}
		browse(t, demo, chromedp.KeyEvent(kb.Enter))
		waitJS(t, demo, "the skip link to move focus to the content", `document.activeElement.id === 'main'`)
		for _, path := range []string{"/ui/restore", "/ui/jobs", "/ui/sign-in"} {
			open(t, demo, base+path)
			unlabelled := read(t, demo, chromedp.Evaluate[[]string](`[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
				.filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name)`))
			if len(unlabelled) > 0 {
				t.Errorf("%s has controls without a label: %v", path, unlabelled)
			}
		}
	})

	t.Run("the admin creates a user, whose key is shown once and works, then deletes it after a confirmation", func(t *testing.T) {
		admin := b.person(t)
		open(t, admin, base+"/ui/sign-in")
		browse(t, admin, chromedp.SendKeys(chromedp.ID("admin_token"), adminToken))
		if status := submitAndWait(t, admin, `form:has(#admin_token) button`); status != http.StatusOK {
			t.Fatalf("admin sign-in answered %d", status)
		}
		browse(t, admin, chromedp.SendKeys(chromedp.ID("new-username"), "carol"))
		if status := submitAndWait(t, admin, `form:has(#new-username) button`); status != http.StatusCreated {
			t.Fatalf("creating a user answered %d", status)
		}
		key := read(t, admin, chromedp.Text(chromedp.ID("created-key")))
		if resp := call(t, http.MethodGet, base+"/v3/bulk_restore_jobs", "carol", key, nil); resp.Status != http.StatusOK {
			t.Fatalf("the key shown does not work: %d", resp.Status)
		}
		screenshot(t, admin, "admin-users")
		open(t, admin, base+"/ui/admin/users")
		if strings.Contains(pageText(t, admin), key) {
			t.Error("the key is shown again")
		}
		if status := submitAndWait(t, admin, `a[aria-label="Delete carol"]`); status != http.StatusOK ||
			!strings.Contains(pageText(t, admin), "cannot be undone") {
			t.Fatalf("the confirmation: %d", status)
		}
		if resp := call(t, http.MethodGet, base+"/v3/bulk_restore_jobs", "carol", key, nil); resp.Status != http.StatusOK {
			t.Fatal("asking for the confirmation deleted the user")
		}
		submitAndWait(t, admin, `form[action="/ui/admin/users/carol/delete"] button`)
		if text := pageText(t, admin); !strings.Contains(text, "User carol was deleted") {
			t.Errorf("the users page does not say carol was deleted:\n%s", text)
		}
		if resp := call(t, http.MethodGet, base+"/v3/bulk_restore_jobs", "carol", key, nil); resp.Status != http.StatusUnauthorized {
			t.Errorf("the deleted user's key answers %d, want 401", resp.Status)
		}
		open(t, admin, base+"/ui/admin/jobs")
		if !strings.Contains(pageText(t, admin), syncJob) {
			t.Error("every user's jobs do not include demo's")
		}
		open(t, admin, base+"/ui/admin/queue")
		waitJS(t, admin, "the queue view", `document.querySelector('#live-queue') !== null && document.querySelector('#queued') !== null`)
		screenshot(t, admin, "admin-queue")
		if status := open(t, demo, base+"/ui/admin/users"); status != http.StatusNotFound {
			t.Errorf("a user's session opens the admin pages: %d", status)
		}
	})

	t.Run("signing out ends the session", func(t *testing.T) {
		open(t, demo, base+"/ui/jobs")
		if status := submitAndWait(t, demo, `form[action="/ui/sign-out"] button`); status != http.StatusOK {
			t.Fatalf("sign-out answered %d", status)
		}
		open(t, demo, base+"/ui/jobs/"+syncJob)
		if loc := read(t, demo, chromedp.Location()); !strings.Contains(loc, "/ui/sign-in?next=") {
			t.Errorf("after signing out a job page is at %s, want the sign-in page", loc)
		}
	})
}

// requireChromium skips the test where Chromium is not installed, and
// fails it under CI=true, where .ci/run installs it.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is not installed at %s: .ci/run installs the chromium package", chromiumPath)
		}
		t.Skipf("Chromium is not installed at %s (apt-get install -y chromium): the browser tests are skipped", chromiumPath)
	}
}

// checkPageHygiene fails for inline scripts and style attributes, which
// the Content-Security-Policy would block.
func checkPageHygiene(t *testing.T, ctx context.Context) {
	t.Helper()
	n := read(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('script:not([src]), [style]').length`))
	if n != 0 {
		t.Errorf("the page has %d inline scripts or style attributes", n)
	}
}

// mustJSON renders a decoded JSON value canonically, for comparison.
func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// restoreButton is the button that sends the new-restore form.
const restoreButton = `form[action="/ui/restore"] button:not([formaction])`

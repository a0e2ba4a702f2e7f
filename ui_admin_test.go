package main

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// consoleAdminToken is the admin token of the console's admin tests.
const consoleAdminToken = "console-admin-token-0123456789abcdefgh"

// startAdminConsole starts a -dev service with the admin token set.
func startAdminConsole(t *testing.T) (*service, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(consoleAdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, srv := startServiceWith(t, nil, "-dev", "-admin-token-file", file)
	return svc, srv.URL
}

// signInAdmin signs c in with the admin token.
func (c *consoleClient) signInAdmin() {
	c.t.Helper()
	p := c.post("/ui/sign-in", url.Values{"admin_token": {consoleAdminToken}}, nil)
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/admin/users" {
		c.t.Fatalf("admin sign-in: %d to %q", p.Status, p.Header.Get("Location"))
	}
}

// adminCSRF returns the admin session's CSRF token.
func (c *consoleClient) adminCSRF() string {
	c.t.Helper()
	m := csrfField.FindStringSubmatch(c.get("/ui/admin/users").Body)
	if m == nil {
		c.t.Fatal("no CSRF token on the users page")
	}
	return m[1]
}

func TestConsoleAdminSignIn(t *testing.T) {
	t.Run("without an admin token there is no admin sign-in and no admin page", func(t *testing.T) {
		_, srv := startServiceWith(t, nil, "-dev")
		c := newConsoleClient(t, srv.URL)
		if p := c.get("/ui/sign-in"); strings.Contains(p.Body, "admin_token") {
			t.Error("the sign-in page offers an admin sign-in with the admin API off")
		}
		if p := c.post("/ui/sign-in", url.Values{"admin_token": {"anything-at-all-0123456789abcdefghij"}}, nil); p.Status != http.StatusUnauthorized {
			t.Errorf("an admin sign-in with the admin API off: %d, want 401", p.Status)
		}
		c.signIn("demo", "demo")
		if p := c.get("/ui/admin/users"); p.Status != http.StatusNotFound {
			t.Errorf("/ui/admin/users: %d, want 404", p.Status)
		}
	})
	_, base := startAdminConsole(t)
	t.Run("a wrong token is refused and counted with every failed authentication", func(t *testing.T) {
		c := newConsoleClient(t, base)
		for i := 0; i < authFailureBurst; i++ {
			if p := c.post("/ui/sign-in", url.Values{"admin_token": {"wrong"}}, nil); p.Status != http.StatusUnauthorized ||
				!strings.Contains(p.Body, "Invalid admin token") {
				t.Fatalf("failure %d: %d", i+1, p.Status)
			}
		}
		if p := c.post("/ui/sign-in", url.Values{"admin_token": {consoleAdminToken}}, nil); p.Status != http.StatusTooManyRequests {
			t.Errorf("the right token after %d failures: %d, want 429", authFailureBurst, p.Status)
		}
	})
}

func TestConsoleAdminPagesAndUsersPagesAreApart(t *testing.T) {
	_, base := startAdminConsole(t)
	admin := newConsoleClient(t, base)
	admin.signInAdmin()
	user := newConsoleClient(t, base)
	user.signIn("demo", "demo")
	userToken := user.csrf()
	adminToken := admin.adminCSRF()
	for _, tc := range []struct {
		name   string
		c      *consoleClient
		method string
		path   string
		form   url.Values
		status int
	}{
		{"a user finds no admin page", user, http.MethodGet, "/ui/admin/jobs", nil, http.StatusNotFound},
		{"a user cannot create users", user, http.MethodPost, "/ui/admin/users", url.Values{"csrf_token": {userToken}, "username": {"mallory"}}, http.StatusNotFound},
		{"the admin is sent from a user's page to the admin pages", admin, http.MethodGet, "/ui/jobs", nil, http.StatusSeeOther},
		{"the admin cannot submit as no one", admin, http.MethodPost, "/ui/restore", url.Values{"csrf_token": {adminToken}, "numbers_text": {"15551230111"}}, http.StatusNotFound},
		{"an admin action without the CSRF token is refused", admin, http.MethodPost, "/ui/admin/users", url.Values{"username": {"mallory"}}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p page
			if tc.method == http.MethodPost {
				p = tc.c.post(tc.path, tc.form, nil)
			} else {
				p = tc.c.get(tc.path)
			}
			if p.Status != tc.status {
				t.Errorf("status=%d, want %d", p.Status, tc.status)
			}
		})
	}
	if strings.Contains(admin.get("/ui/admin/users").Body, "mallory") {
		t.Error("a refused request created a user")
	}
}

func TestConsoleAdminManagesUsers(t *testing.T) {
	_, base := startAdminConsole(t)
	c := newConsoleClient(t, base)
	c.signInAdmin()
	token := c.adminCSRF()
	form := func(v url.Values) url.Values { v.Set("csrf_token", token); return v }
	create := c.post("/ui/admin/users", form(url.Values{"username": {"acme"}}), nil)
	key := regexpFind(t, `id="created-key">([0-9a-f]+)<`, create.Body)
	if create.Status != http.StatusCreated || !strings.Contains(create.Body, "whsec_") {
		t.Fatalf("create: %d", create.Status)
	}
	for _, tc := range []struct {
		name, username string
		status         int
		says           string
	}{
		{"a taken name is refused", "acme", http.StatusConflict, "already exists"},
		{"a bad name is refused", "a b", http.StatusBadRequest, badUserName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := c.post("/ui/admin/users", form(url.Values{"username": {tc.username}}), nil)
			if p.Status != tc.status || !strings.Contains(p.Body, tc.says) {
				t.Errorf("status=%d, want %d saying %q", p.Status, tc.status, tc.says)
			}
		})
	}
	t.Run("a rotated key works at once and the old one stops when the overlap is 0s", func(t *testing.T) {
		p := c.post("/ui/admin/users/acme/rotate-key", form(url.Values{"overlap": {"0s"}}), nil)
		newKey := regexpFind(t, `id="rotated-key">([0-9a-f]+)<`, p.Body)
		if call(t, http.MethodGet, base+"/v3/bulk_restore_jobs", "acme", newKey, nil).Status != http.StatusOK ||
			call(t, http.MethodGet, base+"/v3/bulk_restore_jobs", "acme", key, nil).Status != http.StatusUnauthorized {
			t.Error("the keys do not work as the rotation says")
		}
	})
	upload := func(csv string) page {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf_token", token)
		fw, _ := mw.CreateFormFile("inventory", "inventory.csv")
		fw.Write([]byte(csv))
		mw.Close()
		return c.do(http.MethodPost, "/ui/admin/users/acme/inventory", &body, map[string]string{"Content-Type": mw.FormDataContentType()})
	}
	header := "number,state,released_at,requires_identity_update,needs_registration\n"
	t.Run("an inventory with a bad line is refused, naming it, and nothing is written", func(t *testing.T) {
		p := upload(header + "15550000001,released,,0,0\n15550000002,lost,,0,0\n")
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "line 3:") {
			t.Errorf("status=%d, want 400 naming line 3", p.Status)
		}
		if csv := c.get("/ui/admin/users/acme/inventory.csv").Body; csv != header {
			t.Errorf("the inventory after a refused import:\n%s", csv)
		}
	})
	t.Run("an inventory imported comes back the same as a download", func(t *testing.T) {
		rows := header + "15550000001,released,2026-11-01T10:00:00Z,1,0\n15550000002,active,2026-11-02T10:00:00Z,0,1\n"
		if p := upload(rows); p.Status != http.StatusSeeOther || !strings.Contains(p.Header.Get("Location"), "done=imported") {
			t.Fatalf("import: %d %s", p.Status, p.Header.Get("Location"))
		}
		got := c.get("/ui/admin/users/acme/inventory.csv")
		if got.Body != rows || got.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Errorf("the download:\n%s\nwant:\n%s", got.Body, rows)
		}
	})
	t.Run("deleting asks first, and only the confirmation deletes", func(t *testing.T) {
		if p := c.get("/ui/admin/users/acme/delete"); p.Status != http.StatusOK || !strings.Contains(p.Body, "cannot be undone") {
			t.Fatalf("the confirmation: %d", p.Status)
		}
		if p := c.post("/ui/admin/users/acme/delete", form(url.Values{}), nil); p.Status != http.StatusSeeOther {
			t.Fatalf("delete: %d", p.Status)
		}
		if p := c.get("/ui/admin/users?done=deleted&user=acme"); !strings.Contains(p.Body, "User acme was deleted") ||
			strings.Contains(p.Body, "<strong>acme</strong>") {
			t.Error("the users page still lists acme, or does not say it went")
		}
		if p := c.post("/ui/admin/users/acme/delete", form(url.Values{}), nil); p.Status != http.StatusNotFound {
			t.Errorf("deleting again: %d, want 404", p.Status)
		}
	})
}

// regexpFind returns the first group of pattern in s, or fails the test.
func regexpFind(t *testing.T, pattern, s string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", pattern, s)
	}
	return m[1]
}

func TestConsoleAdminSessionsEndWithTheirToken(t *testing.T) {
	db := newTestDB(t)
	tokenFile := func(token string) string {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	first := startServer(t, "-dev", "-db", db, "-admin-token-file", tokenFile(consoleAdminToken))
	c := newConsoleClient(t, first.URL)
	c.signInAdmin()
	u, _ := url.Parse(first.URL)
	cookies := c.c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/ui/"})
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	first.stop()
	for _, tc := range []struct {
		name  string
		args  []string
		where string
	}{
		{"after a restart with the same token the session lives on", []string{"-admin-token-file", tokenFile(consoleAdminToken)}, "/ui/admin/users"},
		{"with another token it has ended", []string{"-admin-token-file", tokenFile(consoleAdminToken + "-rotated")}, "/ui/sign-in"},
		{"with the admin API off it has ended", nil, "/ui/sign-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, append([]string{"-dev", "-db", db}, tc.args...)...)
			defer s.stop()
			p := newConsoleClient(t, s.URL).do(http.MethodGet, "/ui/", nil, map[string]string{"Cookie": sessionCookie + "=" + cookies[0].Value})
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != tc.where {
				t.Errorf("status=%d Location=%q, want %s", p.Status, p.Header.Get("Location"), tc.where)
			}
		})
	}
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The admin API through a real server on loopback: who gets in, and the
// user endpoints. The inventory and job endpoints are in
// http_admin_inventory_test.go and http_admin_jobs_test.go.

// testAdminToken is the admin token of the test servers.
const testAdminToken = "test-admin-token-5d41402abc4b2a76b9719d911017c592"

// startAdminServer starts a server with the admin API on (the token from
// the environment).
func startAdminServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	return startServerEnv(t, map[string]string{adminTokenEnv: testAdminToken}, args...)
}

// adminRequest sends a request with the Authorization header given ("" for
// none) and returns the answer with its whole body.
func adminRequest(t *testing.T, method, url, auth, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp, raw
}

// adminCall makes an admin request with the right token (a JSON body when
// body is not nil) and decodes its JSON answer; a 204 has none.
func adminCall(t *testing.T, s *testServer, method, path string, body any) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(data))
	}
	resp, raw := adminRequest(t, method, s.URL+path, "Bearer "+testAdminToken, "application/json", rd)
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if resp.StatusCode == http.StatusNoContent {
		if len(raw) != 0 {
			t.Fatalf("%s %s: 204 with a body: %s", method, path, raw)
		}
		return out
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json: %s", method, path, ct, raw)
	}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		t.Fatalf("%s %s: not a JSON object: %s", method, path, raw)
	}
	return out
}

// wantStatus fails the test unless the answer has the status.
func wantStatus(t *testing.T, got apiResponse, want int) {
	t.Helper()
	if got.Status != want {
		t.Fatalf("status=%d, want %d: %s", got.Status, want, got.Raw)
	}
}

// adminPaths is one request to each admin endpoint.
var adminPaths = []struct{ method, path string }{
	{http.MethodPost, "/admin/v1/users"},
	{http.MethodGet, "/admin/v1/users"},
	{http.MethodDelete, "/admin/v1/users/demo"},
	{http.MethodPost, "/admin/v1/users/demo/rotate-key"},
	{http.MethodPost, "/admin/v1/users/demo/rotate-secret"},
	{http.MethodPut, "/admin/v1/users/demo/inventory"},
	{http.MethodGet, "/admin/v1/users/demo/inventory"},
	{http.MethodGet, "/admin/v1/jobs"},
}

func TestAdminAPIIsOffWithoutAToken(t *testing.T) {
	forEachStore(t, testAdminAPIIsOffWithoutAToken)
}

// testAdminAPIIsOffWithoutAToken runs TestAdminAPIIsOffWithoutAToken on one database.
func testAdminAPIIsOffWithoutAToken(t *testing.T, db string) {
	s := startServer(t, "-db", db, "-dev")
	for _, p := range append(adminPaths, struct{ method, path string }{http.MethodGet, "/admin/"}) {
		t.Run(p.method+" "+p.path+" is the usual 404, even with a token", func(t *testing.T) {
			resp, raw := adminRequest(t, p.method, s.URL+p.path, "Bearer "+testAdminToken, "", nil)
			var body errorBody
			if resp.StatusCode != http.StatusNotFound || json.Unmarshal(raw, &body) != nil || body.Status != "error" ||
				!strings.HasPrefix(body.Message, "no such endpoint") {
				t.Fatalf("status=%d body %s, want the JSON 404 of no endpoint", resp.StatusCode, raw)
			}
		})
	}
	if users := userNames(t, s.DB); len(users) != 1 {
		t.Fatalf("users %v, want demo alone", users)
	}
}

func TestAdminAPITakesOnlyTheBearerToken(t *testing.T) {
	forEachStore(t, testAdminAPITakesOnlyTheBearerToken)
}

// testAdminAPITakesOnlyTheBearerToken runs TestAdminAPITakesOnlyTheBearerToken on one database.
func testAdminAPITakesOnlyTheBearerToken(t *testing.T, db string) {
	cases := []struct {
		name, auth string
	}{
		{"no Authorization header", ""},
		{"a wrong token", "Bearer " + strings.Repeat("x", len(testAdminToken))},
		{"the token with a character changed", "Bearer " + testAdminToken[:len(testAdminToken)-1] + "0"},
		{"the token with more after it", "Bearer " + testAdminToken + "a"},
		{"a prefix of the token", "Bearer " + testAdminToken[:20]},
		{"an empty bearer token", "Bearer "},
		{"the token under another scheme", "Token " + testAdminToken},
		{"the token alone", testAdminToken},
		{"a user's Basic credentials", "Basic ZGVtbzpkZW1v"}, // demo:demo, a real user
	}
	for _, c := range cases {
		t.Run(c.name+" is a 401 with the Bearer challenge, and changes nothing", func(t *testing.T) {
			s := startAdminServer(t, "-db", anotherDB(t, db), "-dev") // a server each: the failures add up to the limiter's burst
			for _, p := range adminPaths {
				resp, raw := adminRequest(t, p.method, s.URL+p.path, c.auth, "application/json", strings.NewReader(`{"username":"mallory"}`))
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s %s: status=%d, want 401: %s", p.method, p.path, resp.StatusCode, raw)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="bulkrestore-admin"` {
					t.Fatalf("%s %s: WWW-Authenticate %q", p.method, p.path, got)
				}
				var body errorBody
				if json.Unmarshal(raw, &body) != nil || body.Status != "error" || body.Message == "" {
					t.Fatalf("%s %s: body %s, want the error shape", p.method, p.path, raw)
				}
			}
			if users := userNames(t, s.DB); strings.Join(users, ",") != "demo" {
				t.Fatalf("users %v, want demo alone", users)
			}
		})
	}
	s := startAdminServer(t, "-db", db, "-dev")
	t.Run("the scheme is case-insensitive", func(t *testing.T) {
		resp, raw := adminRequest(t, http.MethodGet, s.URL+"/admin/v1/users", "bearer "+testAdminToken, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status=%d: %s", resp.StatusCode, raw)
		}
	})
	t.Run("the admin token is no user's key", func(t *testing.T) {
		got := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs", "demo", testAdminToken, nil)
		wantStatus(t, got, http.StatusUnauthorized)
	})
}

func TestAdminAPIFailedTokensAreLimitedPerAddress(t *testing.T) {
	forEachStore(t, testAdminAPIFailedTokensAreLimitedPerAddress)
}

// testAdminAPIFailedTokensAreLimitedPerAddress runs TestAdminAPIFailedTokensAreLimitedPerAddress on one database.
func testAdminAPIFailedTokensAreLimitedPerAddress(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-dev")
	wrong := "Bearer wrong-token-" + strings.Repeat("z", 40)
	// The limit refills a token a second: the first 429 comes once the
	// burst is spent, and within a few tries after it however slow the
	// machine.
	first := 0
	var limitedAt time.Time
	for try := 1; try <= 10*authFailureBurst && first == 0; try++ {
		resp, raw := adminRequest(t, http.MethodGet, s.URL+"/admin/v1/users", wrong, "", nil)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %v", resp.Header)
			}
			first, limitedAt = try, time.Now()
		default:
			t.Fatalf("status=%d: %s", resp.StatusCode, raw)
		}
	}
	if first <= authFailureBurst {
		t.Fatalf("the first 429 came at try %d, want one after the burst of %d (0: none in %d tries)", first, authFailureBurst, 10*authFailureBurst)
	}
	// Past the limit even the right token waits, as a right Basic key does
	// (a guesser cannot tell a hit from the limit), and wrong user keys
	// share the address's budget. Both hold until a token comes back, a
	// second after the 429 at the earliest: checked when sent sooner.
	right, _ := adminRequest(t, http.MethodGet, s.URL+"/admin/v1/users", "Bearer "+testAdminToken, "", nil)
	basic := call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs", "demo", "wrong", nil)
	if time.Since(limitedAt) < 900*time.Millisecond {
		if right.StatusCode != http.StatusTooManyRequests || basic.Status != http.StatusTooManyRequests {
			t.Fatalf("past the limit: the right token got %d, a wrong Basic key %d; want 429 for both", right.StatusCode, basic.Status)
		}
	} else {
		t.Logf("the machine took %s after the 429: a token came back, the right token's answer is not judged", time.Since(limitedAt))
	}
}

func TestAdminCreateUser(t *testing.T) {
	forEachStore(t, testAdminCreateUser)
}

// testAdminCreateUser runs TestAdminCreateUser on one database.
func testAdminCreateUser(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-db", db)
	created := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	wantStatus(t, created, http.StatusCreated)
	key, _ := created.Body["api_key"].(string)
	secret, _ := created.Body["webhook_secret"].(string)
	if created.Body["username"] != "acme" || len(key) < 32 || !strings.HasPrefix(secret, "whsec_") || len(created.Body) != 3 {
		t.Fatalf("body %s, want username, api_key and webhook_secret", created.Raw)
	}
	t.Run("the new key works on the /v3 API at once", func(t *testing.T) {
		wantStatus(t, call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs", "acme", key, nil), http.StatusOK)
	})
	cases := []struct {
		name string
		body string
		want int
	}{
		{"a name taken is a 409", `{"username":"acme"}`, http.StatusConflict},
		{"a name with a space is a 400", `{"username":"a b"}`, http.StatusBadRequest},
		{"a name of 65 characters is a 400", `{"username":"` + strings.Repeat("a", 65) + `"}`, http.StatusBadRequest},
		{"an empty name is a 400", `{"username":""}`, http.StatusBadRequest},
		{"no username is a 400", `{}`, http.StatusBadRequest},
		{"a null username is a 400", `{"username":null}`, http.StatusBadRequest},
		{"a number for a name is a 400", `{"username":7}`, http.StatusBadRequest},
		{"an unknown field is a 400", `{"username":"x","admin":true}`, http.StatusBadRequest},
		{"malformed JSON is a 400", `{"username":`, http.StatusBadRequest},
		{"two objects are a 400", `{"username":"x"}{"username":"y"}`, http.StatusBadRequest},
		{"a username given twice is a 400", `{"username":"x","username":"y"}`, http.StatusBadRequest},
		{"a username given twice in two cases is a 400", `{"username":"x","USERNAME":"y"}`, http.StatusBadRequest},
		{"an array is a 400", `["x"]`, http.StatusBadRequest},
		{"an empty body is a 400", ``, http.StatusBadRequest},
		{"a huge body is a 400", `{"username":"` + strings.Repeat("a", adminBodyMax) + `"}`, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name+" and creates nobody", func(t *testing.T) {
			resp, raw := adminRequest(t, http.MethodPost, s.URL+"/admin/v1/users", "Bearer "+testAdminToken, "application/json", strings.NewReader(c.body))
			var body errorBody
			if resp.StatusCode != c.want || json.Unmarshal(raw, &body) != nil || body.Status != "error" || body.Message == "" {
				t.Fatalf("status=%d body %s, want %d with the error shape", resp.StatusCode, raw, c.want)
			}
			if users := userNames(t, s.DB); strings.Join(users, ",") != "acme" {
				t.Fatalf("users %v, want acme alone", users)
			}
		})
	}
}

func TestAdminListUsersCounts(t *testing.T) {
	forEachStore(t, testAdminListUsersCounts)
}

// testAdminListUsersCounts runs TestAdminListUsersCounts on one database.
func testAdminListUsersCounts(t *testing.T, db string) {
	up := newGatedUpstream(t)
	env := map[string]string{adminTokenEnv: testAdminToken}
	for k, v := range upstreamEnv {
		env[k] = v
	}
	s := startServerEnv(t, env, append([]string{"-db", db}, append(up.upstreamArgs(), "-dev", "-workers", "1")...)...)
	acmeKey := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"}).Body["api_key"].(string)
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "zed"})
	importCSV(t, s.DB, "acme", inventoryCSV(15557000000, 30))
	// acme: a job held at the upstream (active), and one cancelled (not).
	for i := range 2 {
		queued := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "acme", acmeKey,
			map[string]any{"numbers": seqNumbers(15557000000+100*i, 20)})
		wantStatus(t, queued, http.StatusAccepted)
		if i == 1 {
			wantStatus(t, call(t, http.MethodPost, s.URL+"/v3/bulk_restore_cancel?job_uuid="+queued.Body["job_uuid"].(string),
				"acme", acmeKey, nil), http.StatusOK)
		}
	}
	list := adminCall(t, s, http.MethodGet, "/admin/v1/users", nil)
	wantStatus(t, list, http.StatusOK)
	var got struct {
		Users []adminUserJSON `json:"users"`
	}
	if err := json.Unmarshal(list.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := []adminUserJSON{
		{Username: "acme", Jobs: 2, ActiveJobs: 1, InventoryNumbers: 30},
		{Username: "demo", Jobs: 0, ActiveJobs: 0, InventoryNumbers: 100},
		{Username: "zed", Jobs: 0, ActiveJobs: 0, InventoryNumbers: 0},
	}
	if len(got.Users) != len(want) {
		t.Fatalf("users %s, want %d", list.Raw, len(want))
	}
	for i, w := range want {
		g := got.Users[i]
		if g.CreatedAt == nil || !strings.HasPrefix(*g.CreatedAt, "20") {
			t.Errorf("%s: created_at %v", g.Username, g.CreatedAt)
		}
		g.CreatedAt = nil
		if g != w {
			t.Errorf("user %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestAdminDeleteUser(t *testing.T) {
	forEachStore(t, testAdminDeleteUser)
}

// testAdminDeleteUser runs TestAdminDeleteUser on one database.
func testAdminDeleteUser(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-dev")
	key := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"}).Body["api_key"].(string)
	importCSV(t, s.DB, "acme", inventoryCSV(15557000000, 20))
	id, _ := submitAndFinishAs(t, s, "acme", key, seqNumbers(15557000000, 12))
	demoJob, _ := submitAndFinishAs(t, s, "demo", "demo", seqNumbers(15551230100, 2))

	wantStatus(t, adminCall(t, s, http.MethodDelete, "/admin/v1/users/acme", nil), http.StatusNoContent)
	t.Run("the key stops working", func(t *testing.T) {
		wantStatus(t, call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "acme", key, nil), http.StatusUnauthorized)
	})
	t.Run("its jobs, results and inventory are gone, no one else's", func(t *testing.T) {
		store, err := openStore(s.DB)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		for _, q := range []string{"SELECT count(*) FROM jobs WHERE uuid = '" + id + "'",
			"SELECT count(*) FROM job_numbers WHERE job_id NOT IN (SELECT id FROM jobs)",
			"SELECT count(*) FROM attempts WHERE job_id NOT IN (SELECT id FROM jobs)",
			"SELECT count(*) FROM inventory WHERE user_id NOT IN (SELECT id FROM users)"} {
			if n := countRows(t, store, q); n != 0 {
				t.Errorf("%s: %d, want 0", q, n)
			}
		}
		if n := countRows(t, store, "SELECT count(*) FROM inventory"); n != 100 {
			t.Errorf("%d inventory rows left, want demo's 100", n)
		}
		wantStatus(t, call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+demoJob, "demo", "demo", nil), http.StatusOK)
	})
	t.Run("deleting it again is a 404", func(t *testing.T) {
		wantStatus(t, adminCall(t, s, http.MethodDelete, "/admin/v1/users/acme", nil), http.StatusNotFound)
	})
	t.Run("the name can be taken again, with a new key", func(t *testing.T) {
		again := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
		wantStatus(t, again, http.StatusCreated)
		wantStatus(t, call(t, http.MethodGet, s.URL+"/v3/bulk_restore_status?job_uuid="+id, "acme", again.Body["api_key"].(string), nil), http.StatusNotFound)
	})
	t.Run("an unknown user is a 404", func(t *testing.T) {
		wantStatus(t, adminCall(t, s, http.MethodDelete, "/admin/v1/users/nobody", nil), http.StatusNotFound)
	})
}

func TestAdminRotateKey(t *testing.T) {
	forEachStore(t, testAdminRotateKey)
}

// testAdminRotateKey runs TestAdminRotateKey on one database.
func testAdminRotateKey(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-db", db)
	works := func(key string) bool {
		return call(t, http.MethodGet, s.URL+"/v3/bulk_restore_jobs", "acme", key, nil).Status == http.StatusOK
	}
	rotate := func(query string) apiResponse {
		return adminCall(t, s, http.MethodPost, "/admin/v1/users/acme/rotate-key"+query, nil)
	}
	first := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"}).Body["api_key"].(string)

	var earlier string // the key rotated out before the current one's predecessor
	t.Run("with an overlap, the old key works on beside the new one", func(t *testing.T) {
		got := rotate("?overlap=24h")
		wantStatus(t, got, http.StatusOK)
		second, _ := got.Body["api_key"].(string)
		if len(got.Body) != 1 || len(second) < 32 || second == first {
			t.Fatalf("body %s, want a new api_key alone", got.Raw)
		}
		if !works(first) || !works(second) {
			t.Fatalf("old key works: %v, new key works: %v; want both", works(first), works(second))
		}
		earlier, first = first, second
	})
	t.Run("a key rotated out earlier stops at the next rotation", func(t *testing.T) {
		previous := first
		first = rotate("").Body["api_key"].(string) // the default overlap: 24h
		if works(earlier) || !works(previous) || !works(first) {
			t.Fatalf("works: the key before %v (want false), the previous key %v, the new key %v (want true)",
				works(earlier), works(previous), works(first))
		}
	})
	t.Run("without an overlap the old key stops at once", func(t *testing.T) {
		old := first
		first = rotate("?overlap=0").Body["api_key"].(string)
		if works(old) || !works(first) {
			t.Fatalf("old key works: %v, new key works: %v; want only the new one", works(old), works(first))
		}
	})
	t.Run("a short overlap runs out", func(t *testing.T) {
		old, rotated := first, time.Now()
		first = rotate("?overlap=2s").Body["api_key"].(string)
		if !works(old) && time.Since(rotated) < 2*time.Second {
			t.Fatal("the old key stopped before its overlap ran out")
		}
		waitFor(t, 10*time.Second, "the old key to stop working", func() bool { return !works(old) })
		if !works(first) {
			t.Fatal("the new key stopped working")
		}
	})
	for _, bad := range []string{"?overlap=1d", "?overlap=-1h", "?overlap=721h", "?overlap=abc"} {
		t.Run("overlap "+strings.TrimPrefix(bad, "?overlap=")+" is a 400 and the key stays", func(t *testing.T) {
			wantStatus(t, rotate(bad), http.StatusBadRequest)
			if !works(first) {
				t.Fatal("a refused rotation changed the key")
			}
		})
	}
	t.Run("an unknown user is a 404", func(t *testing.T) {
		wantStatus(t, adminCall(t, s, http.MethodPost, "/admin/v1/users/nobody/rotate-key", nil), http.StatusNotFound)
	})
}

func TestAdminRotateSecret(t *testing.T) {
	forEachStore(t, testAdminRotateSecret)
}

// testAdminRotateSecret runs TestAdminRotateSecret on one database.
func testAdminRotateSecret(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-db", db)
	old := adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"}).Body["webhook_secret"].(string)
	got := adminCall(t, s, http.MethodPost, "/admin/v1/users/acme/rotate-secret", nil)
	wantStatus(t, got, http.StatusOK)
	secret, _ := got.Body["webhook_secret"].(string)
	if len(got.Body) != 1 || !strings.HasPrefix(secret, "whsec_") || secret == old {
		t.Fatalf("body %s, want a new webhook_secret alone", got.Raw)
	}
	store, err := openStore(s.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, err := store.userByName(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		after time.Duration
		want  []string
	}{
		{"both secrets sign now", 0, []string{secret, old}},
		{"the new one alone after 24h", 24*time.Hour + time.Minute, []string{secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			secrets, err := store.webhookSecrets(t.Context(), u.ID, time.Now().Add(c.after))
			if err != nil || strings.Join(secrets, " ") != strings.Join(c.want, " ") {
				t.Fatalf("secrets %v (%v), want %v", secrets, err, c.want)
			}
		})
	}
	wantStatus(t, adminCall(t, s, http.MethodPost, "/admin/v1/users/nobody/rotate-secret", nil), http.StatusNotFound)
}

func TestAdminRequestsAreLoggedAndCountedWithoutTheToken(t *testing.T) {
	forEachStore(t, testAdminRequestsAreLoggedAndCountedWithoutTheToken)
}

// testAdminRequestsAreLoggedAndCountedWithoutTheToken runs TestAdminRequestsAreLoggedAndCountedWithoutTheToken on one database.
func testAdminRequestsAreLoggedAndCountedWithoutTheToken(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-db", db)
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	adminCall(t, s, http.MethodDelete, "/admin/v1/users/acme", nil)
	wrong := "Bearer " + strings.Repeat("w", 40) + "-wrong"
	adminRequest(t, http.MethodGet, s.URL+"/admin/v1/users", wrong, "", nil)
	adminRequest(t, http.MethodGet, s.URL+"/admin/v1/users?token="+"x", "Basic "+testAdminToken, "", nil)
	logs := s.Logs.String()
	for _, want := range []string{"admin_action=user.create", "admin_action=user.delete", "user=acme", "admin API on at /admin/v1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "path=/admin/v1/users/acme ") && !strings.Contains(line, "admin_action=user.delete") {
			t.Errorf("the delete's request line lacks its action: %s", line)
		}
	}
	for _, secret := range []string{testAdminToken, strings.Repeat("w", 40)} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a token reached the log:\n%s", logs)
		}
	}
	resp, raw := adminRequest(t, http.MethodGet, s.URL+"/metrics", "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, series := range []string{
		`bulkrestore_admin_requests_total{action="user.create",code="201"} 1`,
		`bulkrestore_admin_requests_total{action="user.delete",code="204"} 1`,
		`bulkrestore_admin_requests_total{action="user.list",code="401"} 2`,
	} {
		if !strings.Contains(string(raw), series) {
			t.Errorf("metrics lack %s", series)
		}
	}
}

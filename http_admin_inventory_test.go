package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The admin API's inventory endpoints: PUT (one transaction, the failing
// line named) and GET (streamed, round-tripping), and what they share with
// `numbers import`.

// putInventory sends a CSV body to PUT /admin/v1/users/{user}/inventory.
func putInventory(t *testing.T, s *testServer, user, query, contentType, body string) (int, map[string]any, string) {
	t.Helper()
	resp, raw := adminRequest(t, http.MethodPut, s.URL+"/admin/v1/users/"+user+"/inventory"+query,
		"Bearer "+testAdminToken, contentType, strings.NewReader(body))
	var decoded map[string]any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatalf("PUT inventory: status %d, not JSON: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, decoded, string(raw)
}

// getInventory reads GET /admin/v1/users/{user}/inventory and checks its
// headers when it is a 200.
func getInventory(t *testing.T, s *testServer, user string) (int, string) {
	t.Helper()
	resp, raw := adminRequest(t, http.MethodGet, s.URL+"/admin/v1/users/"+user+"/inventory", "Bearer "+testAdminToken, "", nil)
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("Content-Type %q, want text/csv; charset=utf-8", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="inventory_`+user+`.csv"` {
			t.Fatalf("Content-Disposition %q", cd)
		}
	}
	return resp.StatusCode, string(raw)
}

// inventorySnapshot is a user's inventory as stored, as one string.
func inventorySnapshot(t *testing.T, db, user string) string {
	t.Helper()
	b, err := json.Marshal(inventoryRows(t, db, user))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdminImportInventory(t *testing.T) {
	forEachStore(t, testAdminImportInventory)
}

// testAdminImportInventory runs TestAdminImportInventory on one database.
func testAdminImportInventory(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-dev", "-max-body", "1KiB", "-max-import-body", "64KiB")
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	const header = "number,state,released_at,requires_identity_update,needs_registration\n"
	status, _, raw := putInventory(t, s, "acme", "", "text/csv", header+
		"15557000001,released,2025-10-28T12:31:45.250+02:00,1,1\n15557000002,active,,,\n15557000003,unavailable,2024-01-02 03:04:05,0,1\n")
	if status != http.StatusOK || raw != `{"imported":3}`+"\n" {
		t.Fatalf("status=%d body %s, want 200 {\"imported\":3}", status, raw)
	}
	got := inventoryRows(t, s.DB, "acme")
	if r := got["15557000001"]; r != (invRow{"released", 1761647505250, 1, 1}) {
		t.Errorf("15557000001: %+v", r)
	}
	if r := got["15557000003"]; r.State != "unavailable" || r.NR != 1 || len(got) != 3 {
		t.Errorf("rows %+v", got)
	}
	demoBefore := inventorySnapshot(t, s.DB, "demo")

	t.Run("a body larger than -max-body is taken: the import has its own limit", func(t *testing.T) {
		status, body, raw := putInventory(t, s, "acme", "", "text/csv; charset=utf-8", inventoryCSV(15557100000, 500))
		if status != http.StatusOK || body["imported"] != float64(500) {
			t.Fatalf("status=%d body %s", status, raw)
		}
	})
	before := inventorySnapshot(t, s.DB, "acme")
	refusals := []struct {
		name, user, query, contentType, body string
		want                                 int
	}{
		{"no Content-Type is a 415", "acme", "", "", header, http.StatusUnsupportedMediaType},
		{"a JSON body is a 415", "acme", "", "application/json", `{"number":"15557000009"}`, http.StatusUnsupportedMediaType},
		{"a form is a 415", "acme", "", "application/x-www-form-urlencoded", header + "15557000009,active,,,\n", http.StatusUnsupportedMediaType},
		{"a malformed Content-Type is a 415", "acme", "", "text/csv; charset", header, http.StatusUnsupportedMediaType},
		{"replace=maybe is a 400", "acme", "?replace=maybe", "text/csv", header, http.StatusBadRequest},
		{"an unknown user is a 404", "nobody", "", "text/csv", header + "15557000009,active,,,\n", http.StatusNotFound},
		{"a body over -max-import-body is a 413", "acme", "", "text/csv", inventoryCSV(15557200000, 5000), http.StatusRequestEntityTooLarge},
	}
	for _, c := range refusals {
		t.Run(c.name+" and writes nothing", func(t *testing.T) {
			status, body, raw := putInventory(t, s, c.user, c.query, c.contentType, c.body)
			if status != c.want || body["status"] != "error" || body["message"] == "" {
				t.Fatalf("status=%d body %s, want %d with the error shape", status, raw, c.want)
			}
			if after := inventorySnapshot(t, s.DB, "acme"); after != before {
				t.Fatal("a refused import changed the inventory")
			}
		})
	}
	if after := inventorySnapshot(t, s.DB, "demo"); after != demoBefore {
		t.Fatal("imports for acme changed demo's inventory")
	}
}

func TestAdminImportNamesTheBadLineAsTheCLIDoes(t *testing.T) {
	forEachStore(t, testAdminImportNamesTheBadLineAsTheCLIDoes)
}

// testAdminImportNamesTheBadLineAsTheCLIDoes runs TestAdminImportNamesTheBadLineAsTheCLIDoes on one database.
func testAdminImportNamesTheBadLineAsTheCLIDoes(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-db", db)
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	importCSV(t, s.DB, "acme", "number,state\n15551230001,released\n")
	const header = "number,state,released_at,requires_identity_update,needs_registration\n"
	good := "15551230001,active,,1,1\n15551230002,released,,,\n"
	cases := []struct {
		name, csv string
		line      int
	}{
		{"a short number", header + good + "12345,released,,,\n", 4},
		{"a bad state", header + good + "15551230003,gone,,,\n", 4},
		{"a bad released_at", header + good + "15551230003,released,yesterday,,\n", 4},
		{"a bad flag", header + good + "15551230003,released,,2,\n", 4},
		{"too many fields", header + good + "15551230003,released,,0,0,extra\n", 4},
		{"a bare quote", header + good + "15551230003,rel\"eased,,,\n", 4},
		{"a number given twice", header + good + "15551230003,active,,,\n15551230002,active,,,\n", 5},
		{"an unknown column", "number,state,colour\n15551230003,active,red\n", 1},
		{"an empty file", "", 1},
	}
	before := inventorySnapshot(t, s.DB, "acme")
	for _, c := range cases {
		t.Run(c.name+" is a 400 naming line "+strconv.Itoa(c.line)+", with the CLI's words", func(t *testing.T) {
			status, body, raw := putInventory(t, s, "acme", "", "text/csv", c.csv)
			if status != http.StatusBadRequest || body["line"] != float64(c.line) || body["status"] != "error" || len(body) != 3 {
				t.Fatalf("status=%d body %s, want 400 with status, message and line %d", status, raw, c.line)
			}
			_, _, cliErr := runCLI(t, nil, c.csv, "numbers", "import", "-db", s.DB, "-user", "acme", "-")
			if cliErr == nil || body["message"] != cliErr.Error() {
				t.Fatalf("the API says %q, the CLI %v: want the same", body["message"], cliErr)
			}
			if after := inventorySnapshot(t, s.DB, "acme"); after != before {
				t.Fatal("a refused import changed the inventory")
			}
		})
	}
}

func TestAdminImportOfABigFileWithABadLineWritesNothing(t *testing.T) {
	forEachStore(t, testAdminImportOfABigFileWithABadLineWritesNothing)
}

// testAdminImportOfABigFileWithABadLineWritesNothing runs TestAdminImportOfABigFileWithABadLineWritesNothing on one database.
func testAdminImportOfABigFileWithABadLineWritesNothing(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-db", db)
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	var b strings.Builder
	b.WriteString("number,state\n")
	for i := range 1_000_000 {
		if line := i + 2; line == 500_001 {
			b.WriteString("15550000000x,released\n")
			continue
		}
		b.WriteString(strconv.Itoa(15550000000+i) + ",released\n")
	}
	status, body, raw := putInventory(t, s, "acme", "", "text/csv", b.String())
	if status != http.StatusBadRequest || body["line"] != float64(500_001) ||
		!strings.HasPrefix(body["message"].(string), "line 500001: number \"15550000000x\"") {
		t.Fatalf("status=%d body %s, want 400 naming line 500001", status, raw)
	}
	if rows := inventoryRows(t, s.DB, "acme"); len(rows) != 0 {
		t.Fatalf("%d rows written by a refused import", len(rows))
	}
}

func TestAdminImportReplaceIsAFullSync(t *testing.T) {
	forEachStore(t, testAdminImportReplaceIsAFullSync)
}

// testAdminImportReplaceIsAFullSync runs TestAdminImportReplaceIsAFullSync on one database.
func testAdminImportReplaceIsAFullSync(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-dev")
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	demoBefore := inventorySnapshot(t, s.DB, "demo")
	importCSV(t, s.DB, "acme", inventoryCSV(15557000000, 3000)) // more than a page of the deletion
	keep := "number,state\n15557000005,active\n15557002999,unavailable\n15557009999,released\n"
	cases := []struct {
		query string
		want  int
	}{
		{"?replace=0", 3001}, // adds the new number, keeps the others
		{"?replace=1", 3},
	}
	for _, c := range cases {
		t.Run(c.query+" leaves "+strconv.Itoa(c.want)+" numbers", func(t *testing.T) {
			status, body, raw := putInventory(t, s, "acme", c.query, "text/csv", keep)
			if status != http.StatusOK || body["imported"] != float64(3) {
				t.Fatalf("status=%d body %s", status, raw)
			}
			rows := inventoryRows(t, s.DB, "acme")
			if len(rows) != c.want || rows["15557000005"].State != "active" || rows["15557002999"].State != "unavailable" {
				t.Fatalf("%d rows, want %d with the file's states", len(rows), c.want)
			}
		})
	}
	if after := inventorySnapshot(t, s.DB, "demo"); after != demoBefore {
		t.Fatal("a replacing import for acme changed demo's inventory")
	}
}

func TestAdminExportInventoryRoundTrips(t *testing.T) {
	forEachStore(t, testAdminExportInventoryRoundTrips)
}

// testAdminExportInventoryRoundTrips runs TestAdminExportInventoryRoundTrips on one database.
func testAdminExportInventoryRoundTrips(t *testing.T, db string) {
	s := startAdminServer(t, "-db", db, "-dev")
	adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "acme"})
	// Out of order, with every state, both flags, times with milliseconds
	// and offsets, and an empty released_at (now).
	csvIn := "state,number,needs_registration,released_at,requires_identity_update\n" +
		"released,15557000009,1,2025-10-28T12:31:45.123+02:00,0\n" +
		"active,15557000001,,,1\n" +
		"unavailable,15557000005,0,2024-02-29 23:59:59,1\n" +
		"released,0015557000,0,2026-01-01T00:00:00Z,0\n"
	if status, _, raw := putInventory(t, s, "acme", "", "text/csv", csvIn); status != http.StatusOK {
		t.Fatalf("import: %d %s", status, raw)
	}
	status, exported := getInventory(t, s, "acme")
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, exported)
	}
	lines := strings.Split(strings.TrimSuffix(exported, "\n"), "\n")
	if len(lines) != 5 || lines[0] != strings.Join(inventoryColumns, ",") {
		t.Fatalf("export:\n%s\nwant the header and 4 rows", exported)
	}
	wantOrder := []string{"0015557000,released,2026-01-01T00:00:00Z,0,0", "15557000001,active,", "15557000005,unavailable,2024-02-29T23:59:59Z,1,0",
		"15557000009,released,2025-10-28T10:31:45.123Z,0,1"}
	for i, w := range wantOrder {
		if !strings.HasPrefix(lines[i+1], w) {
			t.Errorf("row %d: %q, want it to start %q", i+1, lines[i+1], w)
		}
	}
	stored := inventorySnapshot(t, s.DB, "acme")
	t.Run("putting the export back with replace=1 changes nothing", func(t *testing.T) {
		if status, _, raw := putInventory(t, s, "acme", "?replace=1", "text/csv", exported); status != http.StatusOK {
			t.Fatalf("re-import: %d %s", status, raw)
		}
		if after := inventorySnapshot(t, s.DB, "acme"); after != stored {
			t.Fatalf("the round trip changed the inventory:\nbefore %s\nafter  %s", stored, after)
		}
		if _, again := getInventory(t, s, "acme"); again != exported {
			t.Fatalf("the second export differs:\n%s\nvs\n%s", again, exported)
		}
	})
	t.Run("the CLI exports the same bytes", func(t *testing.T) {
		out, _, err := runCLI(t, nil, "", "numbers", "export", "-db", s.DB, "-user", "acme")
		if err != nil || out != exported {
			t.Fatalf("numbers export: %v\n%s\nwant\n%s", err, out, exported)
		}
	})
	t.Run("a user without inventory exports the header alone", func(t *testing.T) {
		adminCall(t, s, http.MethodPost, "/admin/v1/users", map[string]any{"username": "empty"})
		if status, got := getInventory(t, s, "empty"); status != http.StatusOK || got != lines[0]+"\n" {
			t.Fatalf("status=%d: %q", status, got)
		}
	})
	t.Run("an unknown user is a 404", func(t *testing.T) {
		status, raw := getInventory(t, s, "nobody")
		var body errorBody
		if status != http.StatusNotFound || json.Unmarshal([]byte(raw), &body) != nil || body.Message != fmt.Sprintf("no user %q", "nobody") {
			t.Fatalf("status=%d body %s", status, raw)
		}
	})
}

// TestAnImportRunAgainAfterADeadlockReadsItsCopyFromTheStart: PostgreSQL
// runs a write that lost a deadlock again (an import competes with the
// restores' activations for the rows), and the import's second try reads
// the whole file again, not on from where the first stopped. A trigger
// makes the first INSERT of the first try lose, as a deadlock would.
func TestAnImportRunAgainAfterADeadlockReadsItsCopyFromTheStart(t *testing.T) {
	db := newPGDatabase(t)
	openTestStore(t, db) // the schema, for the trigger
	addUser(t, db, "bob")
	raw := rawSQL(t, db)
	for _, stmt := range []string{
		`CREATE SEQUENCE import_tries`,
		`CREATE FUNCTION lose_first_try() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('import_tries') = 1 THEN
				RAISE EXCEPTION 'the first try loses' USING ERRCODE = '40P01';
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER lose_first_try AFTER INSERT ON inventory FOR EACH STATEMENT EXECUTE FUNCTION lose_first_try()`,
	} {
		if _, err := raw.DB.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	var csv strings.Builder
	csv.WriteString("number,state\n")
	const rows = 1000
	for _, n := range seqNumbers(15556660000, rows) {
		csv.WriteString(n + ",released\n")
	}
	importCSV(t, db, "bob", csv.String())
	var tries, stored int
	if err := raw.QueryRow("SELECT last_value FROM import_tries").Scan(&tries); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("SELECT count(*) FROM inventory").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if tries < 2 || stored != rows {
		t.Fatalf("%d rows stored after %d INSERT statements, want all %d after a second try", stored, tries, rows)
	}
}

// TestAnInventoryUploadCutShortIsTheClientsError: an upload that breaks off
// before its Content-Length is a 400 that says so, writes nothing, and is
// no store error (it was answered 503, "storage is unavailable").
func TestAnInventoryUploadCutShortIsTheClientsError(t *testing.T) {
	s := startAdminServer(t)
	addUser(t, s.DB, "acme")
	conn := dialRaw(t, s.URL, 10*time.Second)
	part := "number,state\n15559990001,released\n1555999"
	fmt.Fprintf(conn, "PUT /admin/v1/users/acme/inventory HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n%s", testAdminToken, len(part)+1000, part)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "could not read the inventory CSV") {
		t.Fatalf("a cut-short upload: %d %s, want 400 could not read the inventory CSV", resp.StatusCode, raw)
	}
	if n := countRows(t, openTestStore(t, s.DB), "SELECT count(*) FROM inventory"); n != 0 {
		t.Fatalf("%d inventory rows written, want none", n)
	}
	if strings.Contains(s.Logs.String(), "level=ERROR") {
		t.Fatalf("the cut-short upload was logged as an error:\n%s", s.Logs.String())
	}
}

// dialRaw opens a plain TCP connection to a test server's URL, for a test
// that writes its request by hand; every read and write on it must be done
// within limit, and it is closed at cleanup.
func dialRaw(t *testing.T, url string, limit time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(limit)); err != nil {
		t.Fatal(err)
	}
	return conn
}

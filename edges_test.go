package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scrape reads the metrics text at url.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status=%d err=%v", url, resp.StatusCode, err)
	}
	return string(b)
}

// seriesOf returns the lines of the metrics text that are samples of name.
func seriesOf(text, name string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+"{") {
			out = append(out, line)
		}
	}
	return out
}

func TestMetricsLabelsTakeNoValuesFromClients(t *testing.T) {
	s := startServer(t, "-dev")
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(method, path string) int {
		req, err := http.NewRequest(method, s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("2,000 made-up methods add no series beyond other", func(t *testing.T) {
		before := len(seriesOf(scrape(t, s.URL+"/metrics"), "bulkrestore_http_requests_total"))
		for i := range 2000 {
			path := "/v3/bulk_restore"
			if i%2 == 1 {
				path = "/no/such/path"
			}
			send("MADEUP"+itoa(i), path)
		}
		series := seriesOf(scrape(t, s.URL+"/metrics"), "bulkrestore_http_requests_total")
		method := regexp.MustCompile(`method="([^"]*)"`)
		for _, line := range series {
			m := method.FindStringSubmatch(line)
			if m == nil || methodLabel(m[1]) != m[1] {
				t.Fatalf("series with a method outside the fixed set: %s", line)
			}
		}
		// Two new series at most: a 405 on the route and a 404 unmatched,
		// both with method="other" (plus the scrape itself).
		if grown := len(series) - before; grown > 3 {
			t.Fatalf("%d new series after 2,000 made-up methods, want at most 3:\n%s", grown, strings.Join(series, "\n"))
		}
	})
	t.Run("a 405 is counted under its route", func(t *testing.T) {
		if code := send(http.MethodDelete, "/v3/bulk_restore"); code != http.StatusMethodNotAllowed {
			t.Fatalf("DELETE /v3/bulk_restore: status=%d, want 405", code)
		}
		want := `bulkrestore_http_requests_total{code="405",method="DELETE",route="/v3/bulk_restore"} 1`
		if text := scrape(t, s.URL+"/metrics"); !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q:\n%s", want, strings.Join(seriesOf(text, "bulkrestore_http_requests_total"), "\n"))
		}
	})
	t.Run("a 405 on a route with a path variable is counted under its template", func(t *testing.T) {
		send(http.MethodPut, "/v3/restore/15551230111")
		want := `bulkrestore_http_requests_total{code="405",method="PUT",route="/v3/restore/{number}"} 1`
		if text := scrape(t, s.URL+"/metrics"); !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q", want)
		}
	})
}

func TestMetricsShowKnownSeriesBeforeTheFirstEvent(t *testing.T) {
	s := startServer(t, "-dev")
	text := scrape(t, s.URL+"/metrics")
	for _, want := range []string{
		`bulkrestore_webhook_attempts_total{outcome="delivered"} 0`,
		`bulkrestore_webhook_attempts_total{outcome="failed"} 0`,
		`bulkrestore_webhook_attempts_total{outcome="refused"} 0`,
		`bulkrestore_jobs_finished_total{status="completed"} 0`,
		`bulkrestore_jobs_finished_total{status="cancelled"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("a fresh server's metrics lack %q", want)
		}
	}
}

func TestMetricsListenerServesMetricsOnly(t *testing.T) {
	addr := closedPortAddr(t)
	startServer(t, "-dev", "-metrics-addr", addr)
	cases := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodHead, "/metrics", http.StatusOK},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/healthz", http.StatusNotFound},
		{http.MethodGet, "/metrics/extra", http.StatusNotFound},
		{http.MethodPost, "/v3/bulk_restore", http.StatusNotFound},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" answers "+http.StatusText(c.want), func(t *testing.T) {
			req, _ := http.NewRequest(c.method, "http://"+addr+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status=%d, want %d", resp.StatusCode, c.want)
			}
		})
	}
}

// listenerTrap opens real loopback listeners for serve and keeps them, so
// a test can break one under a running server.
type listenerTrap struct{ opened chan net.Listener }

// listen implements serveConfig.listen.
func (l *listenerTrap) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err == nil {
		l.opened <- ln
	}
	return ln, err
}

func TestServeFailsWhenAListenerFails(t *testing.T) {
	t.Run("a metrics address in use stops serve before the database is opened", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		db := newTestDB(t)
		err = run(context.Background(), []string{"serve", "-db", db, "-addr", "127.0.0.1:0", "-metrics-addr", taken.Addr().String()},
			mapEnv(nil), nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "metrics") {
			t.Fatalf("err=%v, want a metrics listen error", err)
		}
		if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stat %s: %v; want no database: nothing should start before every listener is open", db, err)
		}
	})
	t.Run("an API listener that fails under a running server makes serve return an error", func(t *testing.T) {
		cfg, err := parseServeFlags([]string{"-db", newTestDB(t), "-addr", "127.0.0.1:0", "-dev", "-shutdown-timeout", "5s"}, mapEnv(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		trap := &listenerTrap{opened: make(chan net.Listener, 2)}
		cfg.listen = trap.listen
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- serve(context.Background(), cfg, &testLogWriter{t: t}, func(addr string) { ready <- addr })
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("server did not start: %v", err)
		case <-time.After(15 * time.Second):
			t.Fatal("server did not start within 15s")
		}
		(<-trap.opened).Close() // accept now fails
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("serve returned nil after its listener failed, want an error")
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve went on for 15s after its listener failed")
		}
	})
}

func TestServeFlagDefaultsThatDependOnOthers(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		env       map[string]string
		addr      string
		rateBurst int
	}{
		{name: "without -dev the server listens on every interface", addr: ":8080", rateBurst: 400},
		{name: "-dev listens on loopback only", args: []string{"-dev"}, addr: "127.0.0.1:8080", rateBurst: 400},
		{name: "-dev with -addr listens where -addr says", args: []string{"-dev", "-addr", ":9000"}, addr: ":9000", rateBurst: 400},
		{name: "-dev with BULKRESTORE_ADDR listens where it says", args: []string{"-dev"},
			env: map[string]string{"BULKRESTORE_ADDR": "0.0.0.0:9001"}, addr: "0.0.0.0:9001", rateBurst: 400},
		{name: "the burst is twice a low rate", args: []string{"-rate-limit", "5"}, addr: ":8080", rateBurst: 10},
		{name: "the burst is at least 1", args: []string{"-rate-limit", "0.2"}, addr: ":8080", rateBurst: 1},
		{name: "an explicit burst wins", args: []string{"-rate-limit", "5", "-rate-burst", "3"}, addr: ":8080", rateBurst: 3},
		{name: "a burst from the environment wins", args: []string{"-rate-limit", "5"},
			env: map[string]string{"BULKRESTORE_RATE_BURST": "7"}, addr: ":8080", rateBurst: 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseServeFlags(c.args, mapEnv(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.addr != c.addr || cfg.rateBurst != c.rateBurst {
				t.Fatalf("addr=%q rate-burst=%d, want %q and %d", cfg.addr, cfg.rateBurst, c.addr, c.rateBurst)
			}
		})
	}
}

func TestStartLogSaysWhatANewcomerNeeds(t *testing.T) {
	t.Run("-dev shows the demo user's webhook secret", func(t *testing.T) {
		s, logs := startLoggedServer(t)
		store, err := openStore(s.DB)
		if err != nil {
			t.Fatal(err)
		}
		demo, err := store.userByName(context.Background(), "demo")
		store.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), demo.WebhookSecret) {
			t.Fatalf("the start-up log does not show the demo webhook secret:\n%s", logs)
		}
		if strings.Contains(logs.String(), "no users yet") {
			t.Fatal("-dev warned of no users, but demo is there")
		}
	})
	t.Run("without -dev and no users a warning gives the user add command", func(t *testing.T) {
		s, logs := startLoggedServer(t, "-dev=false")
		want := "bulkrestore user add -db " + s.DB + " NAME"
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("the start-up log lacks %q:\n%s", want, logs)
		}
	})
	t.Run("a path with a space is quoted for the shell", func(t *testing.T) {
		if got, want := shellQuote("/srv/my data/it's.db"), `'/srv/my data/it'\''s.db'`; got != want {
			t.Fatalf("shellQuote=%s, want %s", got, want)
		}
		if got := shellQuote("/var/lib/bulkrestore/bulkrestore.db"); got != "/var/lib/bulkrestore/bulkrestore.db" {
			t.Fatalf("shellQuote=%s, want the path as it is", got)
		}
	})
}

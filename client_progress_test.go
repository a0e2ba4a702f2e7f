package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientSubmitShowsPlainProgressWhenNotATerminal checks the plain progress lines on a non-terminal stderr.
func TestClientSubmitShowsPlainProgressWhenNotATerminal(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	r := runClient(t, demoEnv(s), "", "submit", "-wait", "-poll", "20ms", "-o", filepath.Join(t.TempDir(), "r.csv"),
		writeLines(t, "n.txt", demoRange(150, 189, false)))
	if r.code != 1 {
		t.Fatalf("exit: got=%d, want 1", r.code)
	}
	line := regexp.MustCompile(`^(\d+)/40 done, [0-9.]+/s, ETA (\?|[0-9hms.]+)$`)
	var progress []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if line.MatchString(l) {
			progress = append(progress, l)
		}
	}
	if len(progress) == 0 || !strings.HasPrefix(progress[len(progress)-1], "40/40 done") {
		t.Fatalf("progress lines: got=%q, want lines ending with 40/40 done", progress)
	}
	if strings.Contains(r.stderr, "\r") {
		t.Fatalf("plain progress must not redraw with \\r:\n%q", r.stderr)
	}
}

// TestClientSubmitDrawsABarWhenAskedTo checks the progress bar path (-progress bar stands in for a terminal).
func TestClientSubmitDrawsABarWhenAskedTo(t *testing.T) {
	t.Parallel()
	s := startServer(t, "-dev")
	r := runClient(t, demoEnv(s), "", "submit", "-wait", "-poll", "20ms", "-progress", "bar", "-o", filepath.Join(t.TempDir(), "r.csv"),
		writeLines(t, "n.txt", demoRange(150, 189, true)))
	if r.code != 0 {
		t.Fatalf("exit: got=%d, want 0", r.code)
	}
	if !strings.Contains(r.stderr, "restoring") || !strings.Contains(r.stderr, "(32/32, ") || !strings.Contains(r.stderr, "numbers/") {
		t.Fatalf("stderr lacks the bar with count and rate:\n%q", r.stderr)
	}
}

// TestClientProgressLine checks the plain progress line: count, rate and ETA.
func TestClientProgressLine(t *testing.T) {
	cases := []struct {
		done, total int
		rate        float64
		want        string
	}{
		{1200, 20000, 600, "1200/20000 done, 600/s, ETA 32s"},
		{0, 40, 0, "0/40 done, 0/s, ETA ?"},
		{10, 40, 2.5, "10/40 done, 2.5/s, ETA 12s"},
		{40, 40, 800, "40/40 done, 800/s, ETA 0s"},
		{0, 100000, 10, "0/100000 done, 10/s, ETA 2h46m40s"},
	}
	for _, c := range cases {
		if got := progressLine(c.done, c.total, c.rate); got != c.want {
			t.Errorf("progressLine(%d, %d, %g): got=%q, want %q", c.done, c.total, c.rate, got, c.want)
		}
	}
	var buf bytes.Buffer
	p := &plainProgress{w: &buf}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.update(0, 1000, start)
	p.update(100, 1000, start.Add(time.Second))
	p.update(300, 1000, start.Add(2*time.Second))
	if want := "0/1000 done, 0/s, ETA ?\n100/1000 done, 100/s, ETA 9s\n300/1000 done, 150/s, ETA 5s\n"; buf.String() != want {
		t.Fatalf("plain progress: got=%q, want %q", buf.String(), want)
	}
}

// TestClientSubmitWaitEndsAtItsTimeout checks that -wait ends at -wait-timeout or when interrupted, and that the jobs go on.
func TestClientSubmitWaitEndsAtItsTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, `{"message":"Number restored"}`)
	}))
	t.Cleanup(upstream.Close)
	env := map[string]string{"BULKRESTORE_UPSTREAM_USER": "u", "BULKRESTORE_UPSTREAM_PASSWORD": "p"}
	s := startServerEnv(t, env, "-dev", "-backend", "upstream", "-upstream-url", upstream.URL+"/r/{number}", "-restore-timeout", "30s")
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before the server stops
	in := writeLines(t, "n.txt", demoRange(100, 119, false))
	r := runClient(t, demoEnv(s), "", "submit", "-wait", "-poll", "20ms", "-wait-timeout", "300ms", in)
	if r.code != 2 || !strings.Contains(r.err.Error(), "still unfinished") {
		t.Fatalf("got=exit %d, %v; want 2, still unfinished", r.code, r.err)
	}
	// Interrupt the way Ctrl-C does, once the job is queued and announced.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	errOut := &cancelOnWrite{cancel: cancel, when: "queued"}
	err := run(ctx, []string{"submit", "-wait", "-poll", "20ms", in}, mapEnv(demoEnv(s)), strings.NewReader(""), &out, errOut)
	r = clientRun{stdout: out.String(), stderr: errOut.String(), code: clientExitCode(err), err: err}
	if r.code != 2 || !strings.Contains(r.stderr, "queued") || !strings.Contains(r.err.Error(), "the jobs go on on the server") {
		t.Fatalf("interrupted: got=exit %d, %v\n%s; want 2 with the job named", r.code, r.err, r.stderr)
	}
	once.Do(func() { close(release) })
	jobID := regexp.MustCompile(`job ([0-9a-f-]{36})`).FindStringSubmatch(r.stderr)[1]
	waitJobDone(t, s, "demo", "demo", jobID, 30*time.Second)
	st := runClient(t, demoEnv(s), "", "status", jobID)
	if st.code != 0 || !strings.Contains(st.stdout, "20: 20 succeeded, 0 failed") {
		t.Fatalf("status after release: got=exit %d\n%s", st.code, st.stdout)
	}
}

// cancelOnWrite is a stderr that cancels a context once what was written
// holds a given text.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	when   string
	cancel context.CancelFunc
}

// Write implements io.Writer.
func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.when) {
		w.cancel()
	}
	return len(p), nil
}

// String returns everything written.
func (w *cancelOnWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

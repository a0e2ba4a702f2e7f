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
	line := regexp.MustCompile(`^(\d+)/40 done, (\?|[0-9.]+) numbers/s, ETA (\?|[0-9hms.]+)$`)
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
	if !strings.Contains(r.stderr, "restoring 100% [") || !strings.Contains(r.stderr, "32/32 done, ") ||
		!strings.Contains(r.stderr, " numbers/s, ETA ") {
		t.Fatalf("stderr lacks the bar with count, rate and ETA:\n%q", r.stderr)
	}
	if strings.Contains(r.stderr, "numbers/hr") || strings.Contains(r.stderr, "numbers/min") {
		t.Fatalf("the bar changes its unit; want numbers/s throughout:\n%q", r.stderr)
	}
}

// TestClientProgressLine checks the progress line: count, rate in numbers/s and ETA.
func TestClientProgressLine(t *testing.T) {
	cases := []struct {
		name        string
		done, total int
		rate        float64
		known       bool
		left        time.Duration
		want        string
	}{
		{"a steady rate gives an ETA", 1200, 20000, 600, true, -1, "1200/20000 done, 600 numbers/s, ETA 32s"},
		{"no rate yet gives no ETA", 0, 40, 0, false, -1, "0/40 done, ? numbers/s, ETA ?"},
		{"a rate of zero gives no ETA", 5, 40, 0, true, -1, "5/40 done, 0 numbers/s, ETA ?"},
		{"a slow rate shows a decimal", 10, 40, 2.5, true, -1, "10/40 done, 2.5 numbers/s, ETA 12s"},
		{"all done is ETA 0s", 40, 40, 800, true, -1, "40/40 done, 800 numbers/s, ETA 0s"},
		{"a long wait is in hours", 0, 100000, 10, true, -1, "0/100000 done, 10 numbers/s, ETA 2h46m40s"},
		{"the server's estimate wins over the rate", 1200, 20000, 600, true, 75 * time.Second, "1200/20000 done, 600 numbers/s, ETA 1m15s"},
		{"the server's estimate comes before the rate is known", 0, 40, 0, false, 3 * time.Second, "0/40 done, ? numbers/s, ETA 3s"},
		{"an estimate already past is 0s", 10, 40, 50, true, 0, "10/40 done, 50 numbers/s, ETA 0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := progressLine(c.done, c.total, c.rate, c.known, c.left); got != c.want {
				t.Fatalf("progressLine(%d, %d, %g, %v): got=%q, want %q", c.done, c.total, c.rate, c.known, got, c.want)
			}
		})
	}
	var buf bytes.Buffer
	p := &plainProgress{w: &buf}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.update(0, 1000, time.Time{}, start)
	p.update(100, 1000, time.Time{}, start.Add(time.Second))
	p.update(300, 1000, time.Time{}, start.Add(2*time.Second))
	want := "0/1000 done, ? numbers/s, ETA ?\n100/1000 done, 100 numbers/s, ETA 9s\n300/1000 done, 150 numbers/s, ETA 5s\n"
	if buf.String() != want {
		t.Fatalf("plain progress: got=%q, want %q", buf.String(), want)
	}
}

// drawBar draws a bar of 1000 numbers of a width, a frame a second with
// done numbers done, and returns what it wrote, finished when asked.
func drawBar(width int, done []int, finish bool) string {
	var buf bytes.Buffer
	b := &barProgress{w: &buf, width: width}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range done {
		b.update(d, 1000, time.Time{}, start.Add(time.Duration(i)*time.Second))
	}
	if finish {
		b.finish()
	}
	return buf.String()
}

// TestClientProgressBar checks the bar's frames: one unit, an ETA, drawn in place within the terminal's width.
func TestClientProgressBar(t *testing.T) {
	t.Run("the frames show numbers/s and an ETA from the first to the last", func(t *testing.T) {
		got := drawBar(100, []int{0, 100, 1000}, true)
		want := []string{
			"restoring   0% [>                             ] 0/1000 done, ? numbers/s, ETA ?",
			"restoring  10% [===>                          ] 100/1000 done, 100 numbers/s, ETA 9s",
			"restoring 100% [==============================] 1000/1000 done, 500 numbers/s, ETA 0s",
		}
		if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
			t.Fatalf("want one newline, at the end, after finish: %q", got)
		}
		frames := strings.Split(strings.TrimPrefix(strings.TrimSuffix(got, "\n"), "\r"), "\r")
		if len(frames) != len(want) {
			t.Fatalf("frames: got=%q, want %d drawn in place with \\r", frames, len(want))
		}
		for i := range want {
			if strings.TrimRight(frames[i], " ") != want[i] {
				t.Errorf("frame %d: got=%q, want %q", i, frames[i], want[i])
			}
		}
	})
	t.Run("a shorter frame blanks what the longer one before it drew", func(t *testing.T) {
		frames := strings.Split(strings.TrimPrefix(drawBar(100, []int{900, 950, 960}, false), "\r"), "\r")
		if len(frames) != 3 || len(frames[2]) < len(frames[1]) {
			t.Fatalf("frames: got=%q, want the last as long as the one before", frames)
		}
	})
	t.Run("the bar shrinks to fit a narrow terminal and goes when there is no room", func(t *testing.T) {
		for _, width := range []int{80, 70, 40} {
			line := barLine(123456, 1000000, 4321, true, -1, width)
			if len(line) >= width && strings.Contains(line, "[") {
				t.Errorf("width %d: got=%q (%d characters) with a bar", width, line, len(line))
			}
			if !strings.Contains(line, "123456/1000000 done, 4321 numbers/s, ETA 3m23s") {
				t.Errorf("width %d: got=%q, want the count, rate and ETA whole", width, line)
			}
		}
	})
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
	r = clientRun{stdout: out.String(), stderr: errOut.String(), code: exitCode(err, io.Discard), err: err}
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

func TestServerETAIsTheLatestOfTheOpenJobs(t *testing.T) {
	at := func(s string) *string { return &s }
	job := func(status jobStatus, total, done int, eta *string) *clientJob {
		return &clientJob{summary: jobReply{jobSummaryJSON: jobSummaryJSON{Status: status, TotalNumbers: total,
			SuccessCount: done, JobProgress: &JobProgress{ProcessedCount: done, EstimatedCompletionAt: eta}}}}
	}
	cases := []struct {
		name string
		jobs []*clientJob
		want string
	}{
		{"one job's estimate", []*clientJob{job(jobProcessing, 10, 5, at("2026-11-30 12:00:05"))}, "2026-11-30 12:00:05"},
		{"the latest of several", []*clientJob{job(jobProcessing, 10, 5, at("2026-11-30 12:00:05")),
			job(jobProcessing, 10, 1, at("2026-11-30 12:10:00"))}, "2026-11-30 12:10:00"},
		{"finished jobs do not count", []*clientJob{job(jobCompleted, 10, 10, nil),
			job(jobProcessing, 10, 5, at("2026-11-30 12:00:05"))}, "2026-11-30 12:00:05"},
		{"an open job without an estimate leaves none", []*clientJob{job(jobProcessing, 10, 5, at("2026-11-30 12:00:05")),
			job(jobPending, 10, 0, nil)}, ""},
		{"a server without progress fields gives none", []*clientJob{{summary: jobReply{jobSummaryJSON: jobSummaryJSON{
			Status: jobProcessing, TotalNumbers: 10}}}}, ""},
		{"an estimate that does not parse gives none", []*clientJob{job(jobProcessing, 10, 5, at("soon"))}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := serverETA(c.jobs)
			text := ""
			if !got.IsZero() {
				text = got.Format(timeLayout)
			}
			if text != c.want {
				t.Fatalf("serverETA=%q, want %q", text, c.want)
			}
		})
	}
}

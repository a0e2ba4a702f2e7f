package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress shows how far the numbers being waited for have come.
type progress interface {
	// update reports done of total numbers finished, at time now, and
	// when the server expects them all finished (the zero time when it
	// does not say).
	update(done, total int, eta, now time.Time)
	// finish ends the display.
	finish()
}

// defaultBarWidth is the line width of the bar when the terminal does not
// say its own.
const defaultBarWidth = 80

// newProgress picks the display for a -progress mode: "bar" (a live bar),
// "plain" (a line a poll), "none", or "auto": the bar when stderr is a
// terminal, else plain lines.
func newProgress(mode string, stderr io.Writer) progress {
	width, isTerminal := defaultBarWidth, false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		isTerminal = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			width = w
		}
	}
	if mode == "auto" {
		mode = "plain"
		if isTerminal {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return &barProgress{w: stderr, width: width}
	case "plain":
		return &plainProgress{w: stderr}
	default:
		return noProgress{}
	}
}

// progressModes are the values -progress accepts.
var progressModes = map[string]bool{"auto": true, "bar": true, "plain": true, "none": true}

// noProgress shows nothing.
type noProgress struct{}

// update implements progress.
func (noProgress) update(int, int, time.Time, time.Time) {}

// finish implements progress.
func (noProgress) finish() {}

// rateMeter measures how many numbers a second get done, over the last
// rateWindow.
type rateMeter struct {
	samples []progressSample
}

// progressSample is how many numbers were done at a time.
type progressSample struct {
	at   time.Time
	done int
}

// rateWindow is how far back the rate is measured.
const rateWindow = 30 * time.Second

// add records a sample and returns the rate in numbers a second; known is
// false until two samples at different times say something.
func (m *rateMeter) add(done int, now time.Time) (rate float64, known bool) {
	m.samples = append(m.samples, progressSample{at: now, done: done})
	// Keep the newest sample older than the window as the baseline.
	for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= rateWindow {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	secs := now.Sub(first.at).Seconds()
	if secs <= 0 {
		return 0, false
	}
	return float64(done-first.done) / secs, true
}

// progressLine says how far the numbers have come, in one unit
// (numbers/s) and with an ETA: "1200/20000 done, 600 numbers/s, ETA 28s".
// The ETA is the server's, left (time from now to its
// estimated_completion_at), when it gave one (left >= 0); else it is
// worked out from the rate. Before the rate is known, both are "?".
func progressLine(done, total int, rate float64, known bool, left time.Duration) string {
	rateText := "?"
	switch {
	case known && rate > 0 && rate < 10:
		rateText = fmt.Sprintf("%.1f", rate)
	case known:
		rateText = fmt.Sprintf("%.0f", rate)
	}
	eta := "?"
	switch {
	case done >= total:
		eta = "0s"
	case left >= 0:
		eta = left.Round(time.Second).String()
	case known && rate > 0:
		secs := math.Ceil(float64(total-done) / rate)
		eta = (time.Duration(min(secs, 1e6)) * time.Second).String()
	}
	return fmt.Sprintf("%d/%d done, %s numbers/s, ETA %s", done, total, rateText, eta)
}

// plainProgress writes one progressLine per update, for logs and pipes.
type plainProgress struct {
	w     io.Writer
	meter rateMeter
}

// update implements progress.
func (p *plainProgress) update(done, total int, eta, now time.Time) {
	rate, known := p.meter.add(done, now)
	fmt.Fprintln(p.w, progressLine(done, total, rate, known, timeLeft(eta, now)))
}

// timeLeft is how long from now until eta, or -1 when eta is the zero
// time (no estimate).
func timeLeft(eta, now time.Time) time.Duration {
	if eta.IsZero() {
		return -1
	}
	return max(0, eta.Sub(now))
}

// serverETA is when the server expects the unsettled jobs finished: the
// latest of their estimated_completion_at (the jobs run side by side), or
// the zero time when any of them has none (nothing processed yet, or a
// server that does not estimate).
func serverETA(jobs []*clientJob) time.Time {
	var latest time.Time
	for _, j := range jobs {
		s := j.summary
		if s.settled() {
			continue
		}
		if s.JobProgress == nil || s.EstimatedCompletionAt == nil {
			return time.Time{}
		}
		at, err := time.ParseInLocation(timeLayout, *s.EstimatedCompletionAt, time.UTC)
		if err != nil {
			return time.Time{}
		}
		latest = maxTime(latest, at)
	}
	return latest
}

// finish implements progress.
func (p *plainProgress) finish() {}

// barProgress is a live bar for a terminal, redrawn in place on one line
// of at most width characters: "restoring  30% [====>     ] " and the
// progressLine.
type barProgress struct {
	w       io.Writer
	width   int
	meter   rateMeter
	lastLen int // of the line drawn last, to blank what a shorter one leaves
}

// barLine is one frame of the bar; the bar itself shrinks, down to
// nothing, to keep the line within width.
func barLine(done, total int, rate float64, known bool, left time.Duration, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(1, max(0, float64(done)/float64(total)))
	}
	prefix := fmt.Sprintf("restoring %3d%% ", int(100*frac)) // 100% only when done
	text := progressLine(done, total, rate, known, left)
	inner := min(30, width-1-len(prefix)-len(text)-3)
	if inner < 5 {
		return prefix + text
	}
	filled := int(frac * float64(inner))
	bar := strings.Repeat("=", filled)
	if filled < inner {
		bar += ">" + strings.Repeat(" ", inner-filled-1)
	}
	return prefix + "[" + bar + "] " + text
}

// update implements progress.
func (b *barProgress) update(done, total int, eta, now time.Time) {
	rate, known := b.meter.add(done, now)
	line := barLine(done, total, rate, known, timeLeft(eta, now), b.width)
	fmt.Fprint(b.w, "\r"+line+strings.Repeat(" ", max(0, b.lastLen-len(line))))
	b.lastLen = len(line)
}

// finish implements progress: the cursor goes below the last frame.
func (b *barProgress) finish() {
	if b.lastLen > 0 {
		fmt.Fprintln(b.w)
	}
}

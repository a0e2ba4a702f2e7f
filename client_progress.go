package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far the numbers being waited for have come.
type progress interface {
	// update reports done of total numbers finished, at time now.
	update(done, total int, now time.Time)
	// finish ends the display.
	finish()
}

// newProgress picks the display for a -progress mode: "bar" (a live bar),
// "plain" (a line a poll), "none", or "auto": the bar when stderr is a
// terminal, else plain lines.
func newProgress(mode string, stderr io.Writer, total int) progress {
	if mode == "auto" {
		mode = "plain"
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return newBarProgress(stderr, total)
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
func (noProgress) update(int, int, time.Time) {}

// finish implements progress.
func (noProgress) finish() {}

// barProgress is a live progress bar with count, rate and ETA, for a
// terminal.
type barProgress struct {
	bar *progressbar.ProgressBar
}

// newBarProgress starts a bar of total numbers on w.
func newBarProgress(w io.Writer, total int) *barProgress {
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("restoring"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("numbers"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return &barProgress{bar: bar}
}

// update implements progress.
func (b *barProgress) update(done, total int, _ time.Time) {
	if b.bar.GetMax() != total {
		b.bar.ChangeMax(total)
	}
	b.bar.Set(done)
}

// finish implements progress.
func (b *barProgress) finish() {
	if !b.bar.IsFinished() {
		b.bar.Exit()
	}
}

// plainProgress writes one line per update, for logs and pipes:
// "1200/20000 done, 600/s, ETA 28s".
type plainProgress struct {
	w       io.Writer
	samples []progressSample
}

// progressSample is how many numbers were done at a time.
type progressSample struct {
	at   time.Time
	done int
}

// rateWindow is how far back the rate is measured.
const rateWindow = 30 * time.Second

// update implements progress.
func (p *plainProgress) update(done, total int, now time.Time) {
	p.samples = append(p.samples, progressSample{at: now, done: done})
	// Keep the newest sample older than the window as the baseline.
	for len(p.samples) > 2 && now.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	rate := 0.0
	if first := p.samples[0]; len(p.samples) > 1 {
		if secs := now.Sub(first.at).Seconds(); secs > 0 {
			rate = float64(done-first.done) / secs
		}
	}
	fmt.Fprintln(p.w, progressLine(done, total, rate))
}

// finish implements progress.
func (p *plainProgress) finish() {}

// progressLine formats one plain progress line; a rate of 0 has no ETA yet.
func progressLine(done, total int, rate float64) string {
	rateText := fmt.Sprintf("%.0f/s", rate)
	if rate > 0 && rate < 10 {
		rateText = fmt.Sprintf("%.1f/s", rate)
	}
	eta := "?"
	switch {
	case done >= total:
		eta = "0s"
	case rate > 0:
		secs := math.Ceil(float64(total-done) / rate)
		eta = (time.Duration(min(secs, 1e6)) * time.Second).String()
	}
	return fmt.Sprintf("%d/%d done, %s, ETA %s", done, total, rateText, eta)
}

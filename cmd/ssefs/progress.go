package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows how far a long operation (key rotation, fsck) has come: one line redrawn
// in place on a terminal, else a plain line every logEvery, since logs and journald would
// keep every redraw.
type progress[P any] struct {
	w        io.Writer
	tty      bool
	start    time.Time
	now      func() time.Time
	last     time.Time
	interval time.Duration
	drawn    bool
	p        P
	line     func(P, time.Duration) string
	// worthShowing, if set, makes finish draw the final state on a terminal even when
	// the operation ended before the first redraw.
	worthShowing func(P) bool
}

func newProgress[P any](w io.Writer, tty bool, start time.Time, logEvery, redrawEvery time.Duration,
	line func(P, time.Duration) string, worthShowing func(P) bool) *progress[P] {
	pr := &progress[P]{w: w, tty: tty, start: start, now: time.Now, last: start, interval: logEvery,
		line: line, worthShowing: worthShowing}
	if tty {
		pr.interval = redrawEvery
	}
	return pr
}

func (pr *progress[P]) update(p P) {
	pr.p = p
	now := pr.now()
	if now.Sub(pr.last) < pr.interval {
		return
	}
	pr.last = now
	pr.draw(now)
}

func (pr *progress[P]) draw(now time.Time) {
	line := pr.line(pr.p, now.Sub(pr.start))
	if pr.tty {
		fmt.Fprintf(pr.w, "\r%s\x1b[K", line)
		pr.drawn = true
	} else {
		fmt.Fprintf(pr.w, "ssefs: %s\n", line)
	}
}

// finish draws the final state and ends the redrawn line on a terminal; plain output
// needs no last word (a summary follows).
func (pr *progress[P]) finish() {
	if pr.tty && (pr.drawn || pr.worthShowing != nil && pr.worthShowing(pr.p)) {
		pr.draw(pr.now())
		fmt.Fprintln(pr.w)
	}
}

// progressBar renders the fraction done of an operation whose size is known, for the
// redrawn line on a terminal and the periodic lines elsewhere alike.
func progressBar(frac float64) string {
	const width = 30
	frac = max(0, min(frac, 1))
	filled := int(frac * width)
	return fmt.Sprintf("[%s] %3.0f%%", strings.Repeat("#", filled)+strings.Repeat("-", width-filled), frac*100)
}

// etaSuffix gives the time left at the rate so far, once there is a rate to go by (a
// second in) and while the operation is not done; otherwise nothing.
func etaSuffix(frac float64, elapsed time.Duration) string {
	if frac <= 0 || frac >= 1 || elapsed <= time.Second {
		return ""
	}
	eta := time.Duration(float64(elapsed) / frac * (1 - frac))
	return "  ETA " + eta.Round(time.Second).String()
}

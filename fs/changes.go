package fs

import (
	"context"
	"slices"
	"time"
)

// subscription is one receiver of changes. A watcher (Watch) reports back which changes
// it has acted on, so that Settle can wait for it; a plain subscriber (Subscribe) does not.
type subscription struct {
	ch      chan Change
	watcher bool
	// except: changes whose Origin is this are not sent (WatchExcept); "" = none.
	except string
	// missed gets a token when a watcher's channel was full and a change was dropped.
	missed chan struct{}
	// Guarded by Engine.subsMu:
	sent    uint64 // Seq of the last change put into ch, or dropped for a watcher
	done    uint64 // Seq of the last change the watcher acted on
	dropped uint64 // Seq of the last change a watcher missed
	closed  bool
}

// Subscribe returns a channel that receives changes made through any frontend, and a
// function that ends the subscription (and closes the channel). A slow subscriber misses
// changes rather than blocking the engine, so it must rely on timeouts as a fallback.
func (e *Engine) Subscribe() (<-chan Change, func()) {
	s := e.subscribe(false, "")
	return s.ch, func() { e.unsubscribe(s) }
}

// Watcher receives changes like a subscriber, and tells the engine when it has acted on
// each (Done), so that the frontend that made a change can wait, with Settle, until
// every cache that a watcher keeps reflects it.
type Watcher struct {
	C <-chan Change
	// Missed receives when changes were dropped because C was full: the watcher must then
	// act as if anything had changed, and mark that done (Dropped).
	Missed <-chan struct{}
	e      *Engine
	s      *subscription
}

// Watch returns a Watcher. Its changes must be marked Done in order (skipped ones too).
func (e *Engine) Watch() *Watcher { return e.WatchExcept("") }

// WatchExcept is Watch for a frontend that has no use for the changes it made itself
// (Change.Origin == origin): they are not sent to it at all, so Settle never waits for
// them. Handing each of them over woke the watcher's goroutine once per operation (a
// thread wakeup on the FUSE hot path: unlink, create, rename) only for it to skip it.
func (e *Engine) WatchExcept(origin string) *Watcher {
	s := e.subscribe(true, origin)
	return &Watcher{C: s.ch, Missed: s.missed, e: e, s: s}
}

// Dropped returns the Seq of the last change the watcher missed. Once it has acted as if
// anything had changed, it marks that done (Done(Change{Seq: seq})), and Settle, which
// waits for missed changes too, goes on.
func (w *Watcher) Dropped() uint64 {
	w.e.subsMu.Lock()
	defer w.e.subsMu.Unlock()
	return w.s.dropped
}

// Done marks c, and every change before it, as acted on.
func (w *Watcher) Done(c Change) {
	w.e.subsMu.Lock()
	defer w.e.subsMu.Unlock()
	if c.Seq > w.s.done {
		w.s.done = c.Seq
		w.e.progress.Broadcast()
	}
}

// Close ends the watch and closes C; Settle no longer waits for it.
func (w *Watcher) Close() { w.e.unsubscribe(w.s) }

func (e *Engine) subscribe(watcher bool, except string) *subscription {
	s := &subscription{ch: make(chan Change, e.watchBuffer), watcher: watcher, except: except}
	if watcher {
		s.missed = make(chan struct{}, 1)
	}
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	s.sent, s.done = e.seq, e.seq
	e.subs = append(e.subs, s)
	return s
}

func (e *Engine) unsubscribe(s *subscription) {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	e.subs = slices.DeleteFunc(e.subs, func(x *subscription) bool { return x == s })
	close(s.ch)
	e.progress.Broadcast()
}

// publish hands c to every subscriber without blocking: one whose channel is full
// misses it, and a watcher is told so (Watcher.Missed). Callers may hold engine locks,
// which is why it never waits.
func (e *Engine) publish(ctx context.Context, c Change) {
	c.Origin, _ = ctx.Value(originKey{}).(string)
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	e.seq++
	c.Seq = e.seq
	for _, s := range e.subs {
		if s.except != "" && c.Origin == s.except {
			continue
		}
		select {
		case s.ch <- c:
			s.sent = c.Seq
		default:
			if s.watcher {
				s.sent, s.dropped = c.Seq, c.Seq
				select {
				case s.missed <- struct{}{}:
				default: // told already, not yet acted on
				}
			}
		}
	}
}

// Settle waits until every watcher has acted on the changes published so far (a missed
// one by acting as if anything had changed), or until ctx ends or max has
// passed, and reports whether they all had. A frontend calls it after a change and
// before it answers its client, so that another frontend's caches show the change by
// the time the client can look (S3 PUT, then stat through the mount). It must not be
// called while holding engine locks, nor from the goroutine of a watcher's own
// requests (FUSE handlers: the kernel may be waiting for them).
func (e *Engine) Settle(ctx context.Context, max time.Duration) bool {
	type target struct {
		s   *subscription
		seq uint64
	}
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	var targets []target
	for _, s := range e.subs {
		if s.watcher && s.done < s.sent {
			targets = append(targets, target{s, s.sent})
		}
	}
	if len(targets) == 0 {
		return true
	}
	wake := func() {
		e.subsMu.Lock()
		e.progress.Broadcast()
		e.subsMu.Unlock()
	}
	deadline := time.Now().Add(max)
	timer := time.AfterFunc(max, wake)
	defer timer.Stop()
	defer context.AfterFunc(ctx, wake)()
	for {
		pending := false
		for _, t := range targets {
			if !t.s.closed && t.s.done < t.seq {
				pending = true
			}
		}
		if !pending {
			return true
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return false
		}
		e.progress.Wait()
	}
}

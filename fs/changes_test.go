package fs

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSettleWaitsForWatchers(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	if !e.Settle(ctx, time.Millisecond) {
		t.Fatal("Settle with no watcher did not return true at once")
	}
	plain, unsub := e.Subscribe() // never read: plain subscribers are not waited for
	defer unsub()
	w := e.Watch()
	if _, err := e.PutObject(ctx, "bucket", "a", strings.NewReader("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// Nobody acts on the change: Settle gives up after max.
	if e.Settle(ctx, 20*time.Millisecond) {
		t.Fatal("Settle returned true while the watcher had not acted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if e.Settle(cctx, time.Hour) {
		t.Fatal("Settle with a cancelled context returned true")
	}
	// The watcher acts in its own time: Settle returns once it has marked the last
	// change done, and not before.
	var seen []Change
	settled := make(chan bool)
	go func() { settled <- e.Settle(ctx, time.Minute) }()
	for len(seen) == 0 || seen[len(seen)-1].Name != "a" {
		c := <-w.C
		seen = append(seen, c)
		select {
		case <-settled:
			t.Fatalf("Settle returned before the watcher marked change %d done", c.Seq)
		default:
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Seq != seen[i-1].Seq+1 {
			t.Fatalf("changes out of order: %+v", seen)
		}
	}
	w.Done(seen[len(seen)-1])
	if !<-settled {
		t.Fatal("Settle returned false after the watcher acted")
	}
	if len(plain) != len(seen) {
		t.Fatalf("plain subscriber got %d changes, the watcher %d", len(plain), len(seen))
	}
	// A closed watcher is not waited for.
	if _, err := e.PutObject(ctx, "bucket", "b", strings.NewReader("y"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if !e.Settle(ctx, time.Minute) {
		t.Fatal("Settle waited for a closed watcher")
	}
	w.Close() // twice is harmless
}

// A watcher whose channel was full is told it missed changes, and Settle waits until it
// has acted on them as on any other change.
func TestSettleWaitsForMissedChanges(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	e.watchBuffer = 1
	w := e.Watch()
	for _, key := range []string{"a", "b", "c"} {
		if _, err := e.PutObject(ctx, "bucket", key, strings.NewReader("x"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.Missed:
	default:
		t.Fatal("the watcher was not told it missed changes")
	}
	if e.Settle(ctx, 20*time.Millisecond) {
		t.Fatal("Settle returned true while the watcher had not acted on what it missed")
	}
	w.Done(<-w.C) // the one change its channel held
	if e.Settle(ctx, 20*time.Millisecond) {
		t.Fatal("Settle returned true with missed changes not acted on")
	}
	w.Done(Change{Seq: w.Dropped()})
	if !e.Settle(ctx, time.Second) {
		t.Fatal("Settle returned false after the watcher acted on what it missed")
	}
}

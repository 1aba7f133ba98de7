package fuse

import (
	"log/slog"
	"syscall"
	"testing"
	"time"
)

type seenOp struct {
	op    Op
	errno syscall.Errno
	start time.Time
}

type recordingObserver struct{ ops []seenOp }

func (r *recordingObserver) Op(op Op, start time.Time, errno syscall.Errno) {
	r.ops = append(r.ops, seenOp{op, errno, start})
}

// TestObserverSeesEveryOutcome: the observer hears of a success, a failure with its
// errno, and a panic as the EIO the kernel got, each with the time the operation began.
func TestObserverSeesEveryOutcome(t *testing.T) {
	obs := &recordingObserver{}
	fsys := &filesystem{log: slog.New(slog.DiscardHandler), obs: obs}
	before := time.Now()
	run := func(op Op, body func() syscall.Errno) {
		func() (errno syscall.Errno) {
			defer fsys.rescue(op, fsys.start(), &errno)
			return body()
		}()
	}
	run(OpRead, func() syscall.Errno { return 0 })
	run(OpLookup, func() syscall.Errno { return syscall.ENOENT })
	run(OpWrite, func() syscall.Errno { panic("boom") })
	want := []seenOp{{op: OpRead}, {op: OpLookup, errno: syscall.ENOENT}, {op: OpWrite, errno: syscall.EIO}}
	if len(obs.ops) != len(want) {
		t.Fatalf("observer saw %d operations, want %d: %+v", len(obs.ops), len(want), obs.ops)
	}
	for i, w := range want {
		got := obs.ops[i]
		if got.op != w.op || got.errno != w.errno {
			t.Errorf("operation %d: observer saw %v/%v, want %v/%v", i, got.op, got.errno, w.op, w.errno)
		}
		if got.start.Before(before) || got.start.After(time.Now()) {
			t.Errorf("operation %d (%v): start %v is not when it ran", i, got.op, got.start)
		}
	}
}

// TestOpNames: every operation has its own name (metrics labels, log lines).
func TestOpNames(t *testing.T) {
	seen := map[string]Op{}
	for op := Op(0); op < NumOps; op++ {
		name := op.String()
		if name == "" || name == "unknown" {
			t.Errorf("op %d has no name", op)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("ops %d and %d are both %q", prev, op, name)
		}
		seen[name] = op
	}
	if NumOps.String() != "unknown" {
		t.Errorf("NumOps.String() = %q, want unknown", NumOps.String())
	}
}

// TestNoObserverReadsNoClock: without an observer, handlers do not pay for time.Now.
func TestNoObserverReadsNoClock(t *testing.T) {
	fsys := &filesystem{}
	if !fsys.start().IsZero() {
		t.Error("start() read the clock without an observer")
	}
}

package fuse

import (
	"runtime"
	"testing"
	"time"
)

// noMounts waits for the mounts of earlier tests to have given their Ps back (that
// happens once their server stopped, on a goroutine of its own) and returns GOMAXPROCS.
func noMounts(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		readerProcs.mu.Lock()
		n := readerProcs.mounts
		readerProcs.mu.Unlock()
		if n == 0 {
			return runtime.GOMAXPROCS(0)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mounts still hold reader Ps", n)
		}
	}
}

// Each mount adds a P for every go-fuse reader that can block in read(2), and gives
// them back when it stops; an explicit GOMAXPROCS is left alone.
func TestReaderProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	base := noMounts(t)
	defer runtime.GOMAXPROCS(base)
	per := readersOf(base)
	if per < 3 {
		t.Fatalf("readersOf(%d) = %d: go-fuse keeps at least 2+1 readers", base, per)
	}
	r1 := reserveReaderProcs()
	if got := runtime.GOMAXPROCS(0); got != base+per {
		t.Fatalf("one mount: GOMAXPROCS %d, want %d", got, base+per)
	}
	r2 := reserveReaderProcs()
	if got := runtime.GOMAXPROCS(0); got != base+2*per {
		t.Fatalf("two mounts: GOMAXPROCS %d, want %d", got, base+2*per)
	}
	r1()
	r1() // once only
	if got := runtime.GOMAXPROCS(0); got != base+per {
		t.Fatalf("one mount left: GOMAXPROCS %d, want %d", got, base+per)
	}
	r2()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("no mount left: GOMAXPROCS %d, want %d", got, base)
	}

	t.Setenv("GOMAXPROCS", "1")
	r := reserveReaderProcs()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Errorf("with GOMAXPROCS set in the environment: GOMAXPROCS %d, want %d as it was", got, base)
	}
	r()
}

// Mount reserves the Ps of its readers.
func TestMountReservesReaderProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	base := noMounts(t)
	mountEngine(t)
	if got, want := runtime.GOMAXPROCS(0), base+readersOf(base); got != want {
		t.Fatalf("GOMAXPROCS %d with a mount, want %d", got, want)
	}
}

package fuse

import (
	"bytes"
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	ssefs "github.com/ssefs/ssefs/fs"
)

// readCounter counts the READ requests the mount served.
type readCounter struct{ n atomic.Int64 }

func (c *readCounter) Op(op Op, _ time.Time, _ syscall.Errno) {
	if op == OpRead {
		c.n.Add(1)
	}
}

// openRandom opens path for reading with the kernel told the access is random (no
// readahead, as fio and databases ask) and none of its pages cached.
func openRandom(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	return fd
}

func preadAll(t *testing.T, fd int, p []byte, off int64) {
	t.Helper()
	n, err := unix.Pread(fd, p, off)
	if err != nil || n != len(p) {
		t.Fatalf("pread %d bytes at %d: %d, %v", len(p), off, n, err)
	}
}

// newFile writes size random bytes to bkt/f of the mount at mp and returns its path and
// content.
func newFile(t *testing.T, mp string, size int64) (string, []byte) {
	t.Helper()
	dir := filepath.Join(mp, "bkt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	rand.Read(want)
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// waitFill waits for the next fill reported on fills and checks the bytes it stored.
func waitFill(t *testing.T, fills <-chan int, stored int) {
	t.Helper()
	select {
	case got := <-fills:
		if got != stored {
			t.Fatalf("a fill stored %d bytes, want %d", got, stored)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no fill within 10s of a small read")
	}
}

// A 4 KiB read makes ssefs decrypt its whole package; the other 15 pages of it then reach
// the kernel's cache without a READ each, and no page outside the package does.
func TestSmallReadFillsItsPackage(t *testing.T) {
	reads := &readCounter{}
	fills := make(chan int, 64)
	_, mp := mountEngineWith(t, Options{Observer: reads, filled: func(_ uint64, stored int) { fills <- stored }})
	pkg := int64(ssefs.PackageSize)
	path, want := newFile(t, mp, 8*pkg)
	fd := openRandom(t, path)

	page := make([]byte, 4096)
	before := reads.n.Load()
	preadAll(t, fd, page, pkg+8192)
	if !bytes.Equal(page, want[pkg+8192:pkg+8192+4096]) {
		t.Fatal("the first read returned other bytes than were written")
	}
	waitFill(t, fills, int(pkg)-4096)
	for off := pkg; off < 2*pkg; off += 4096 {
		preadAll(t, fd, page, off)
		if !bytes.Equal(page, want[off:off+4096]) {
			t.Fatalf("page at %d of the filled package differs from what was written", off)
		}
	}
	if got := reads.n.Load() - before; got != 1 {
		t.Fatalf("reading the 16 pages of one package took %d READ requests, want 1", got)
	}
	// The package after it was not filled: its first read is a READ.
	preadAll(t, fd, page, 2*pkg)
	if got := reads.n.Load() - before; got != 2 {
		t.Fatalf("a page of the next package took %d READ requests in all, want 2", got)
	}
	if !bytes.Equal(page, want[2*pkg:2*pkg+4096]) {
		t.Fatal("the next package's page differs from what was written")
	}
	waitFill(t, fills, int(pkg)-4096)

	// While a handle is open for writing, nothing is stored.
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	preadAll(t, fd, page, 4*pkg)
	waitFill(t, fills, 0)
}

// Fills race with truncates by path and with writes and rewrites through the mount,
// with the fill goroutine perturbed between reading and storing: after each change has returned (and, for the engine's, settled), the file
// must read as it was written, at its size. A fill that stored content from before a
// change, or past a new end, shows here.
func TestFillsNeverShowStaleBytes(t *testing.T) {
	fillRead := func() {
		if mrand.IntN(2) == 0 {
			time.Sleep(time.Duration(mrand.IntN(300)) * time.Microsecond)
		}
	}
	var stored atomic.Int64
	e, mp := mountEngineWith(t, Options{fillRead: fillRead, filled: func(_ uint64, n int) { stored.Add(int64(n)) }})
	pkg := int64(ssefs.PackageSize)
	span := 3 * pkg
	path, want := newFile(t, mp, span)
	ctx := context.Background()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		fd := openRandom(t, path)
		readers.Add(1)
		go func() {
			defer readers.Done()
			page := make([]byte, 4096)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%16 == 0 {
					unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
				}
				unix.Pread(fd, page, mrand.Int64N(span/4096)*4096)
			}
		}()
	}
	defer func() { close(stop); readers.Wait() }()

	var sizes []int
	check := func(i int, what string) {
		t.Helper()
		defer func() { sizes = append(sizes, len(want)) }()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("step %d (%s): the file reads as %d bytes, want %d (sizes before: %v)", i, what, len(got), len(want), sizes)
		}
		if !bytes.Equal(got, want) {
			at := 0
			for at < len(got) && got[at] == want[at] {
				at++
			}
			t.Fatalf("step %d (%s): bytes differ from offset %d of %d", i, what, at, len(want))
		}
	}
	resize := func(size int64) {
		if size <= int64(len(want)) {
			want = want[:size]
		} else {
			want = append(want, make([]byte, size-int64(len(want)))...)
		}
	}
	randomWrite := func() (int64, []byte) {
		off := mrand.Int64N(span)
		p := make([]byte, 1+mrand.IntN(int(pkg)))
		rand.Read(p)
		if end := off + int64(len(p)); end > int64(len(want)) {
			resize(end)
		}
		copy(want[off:], p)
		return off, p
	}
	for i := range 300 {
		switch i % 4 {
		case 0:
			size := mrand.Int64N(span + 1)
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			resize(size)
			check(i, "truncate by path")
		case 1:
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			off, p := randomWrite()
			if _, err := f.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			check(i, "write through the mount")
		case 2:
			// A rewrite: the kernel truncates (SETATTR) before it opens.
			p := make([]byte, mrand.Int64N(span+1))
			rand.Read(p)
			if err := os.WriteFile(path, p, 0o644); err != nil {
				t.Fatal(err)
			}
			want = p
			check(i, "rewrite through the mount")
		case 3:
			var st syscall.Stat_t
			if err := syscall.Stat(path, &st); err != nil {
				t.Fatal(err)
			}
			size := uint64(mrand.Int64N(span + 1))
			if _, err := e.SetAttr(ctx, st.Ino, ssefs.SetAttrIn{Size: &size}); err != nil {
				t.Fatal(err)
			}
			if !e.Settle(ctx, 10*time.Second) {
				t.Fatal("the engine's truncate did not settle within 10s")
			}
			resize(int64(size))
			check(i, "truncate through the engine")
		}
	}
	if stored.Load() == 0 {
		t.Fatal("no fill stored anything: the race was not exercised")
	}
}

// A file truncated through another frontend while the mount has it open and filled:
// the mount shows the change once it settled (the engine published nothing for an open
// file before), and later fills store the new content.
func TestChangeFromOutsideReachesFilledFile(t *testing.T) {
	fills := make(chan int, 64)
	e, mp := mountEngineWith(t, Options{filled: func(_ uint64, stored int) { fills <- stored }})
	pkg := int64(ssefs.PackageSize)
	path, want := newFile(t, mp, 4*pkg)
	fd := openRandom(t, path)
	page := make([]byte, 4096)
	preadAll(t, fd, page, 3*pkg+4096)
	waitFill(t, fills, int(pkg)-4096)

	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	size := uint64(3*pkg + 100)
	if _, err := e.SetAttr(context.Background(), st.Ino, ssefs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "truncate from outside", func() bool {
		got, err := os.ReadFile(path)
		return err == nil && bytes.Equal(got, want[:size])
	})
	unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	if k, err := unix.Pread(fd, page, 3*pkg); err != nil || k != 100 || !bytes.Equal(page[:k], want[3*pkg:3*pkg+100]) {
		t.Fatalf("the last 100 bytes after the truncate: read %d, %v; or other bytes than were written", k, err)
	}
	// The READ got the 100 bytes left (one short page); nothing else is left to fill.
	waitFill(t, fills, 0)
	preadAll(t, fd, page, pkg+4096)
	waitFill(t, fills, int(pkg)-4096)
}

// A truncate by path waits for a fill that read the content before it: stored after the
// kernel has cut its cache at the new end, that content would reappear past it.
func TestTruncateWaitsForTheFillInProgress(t *testing.T) {
	var gated atomic.Bool
	gated.Store(true)
	read, release := make(chan struct{}), make(chan struct{})
	fillRead := func() {
		if gated.Load() {
			read <- struct{}{}
			<-release
		}
	}
	fills := make(chan int, 8)
	_, mp := mountEngineWith(t, Options{fillRead: fillRead, filled: func(_ uint64, n int) { fills <- n }})
	path, want := newFile(t, mp, 4*ssefs.PackageSize)
	fd := openRandom(t, path)
	openGate := sync.OnceFunc(func() { gated.Store(false); close(release) })
	defer openGate() // also when failing: the unmount waits for the fill
	preadAll(t, fd, make([]byte, 4096), 8192)
	<-read // the fill holds the package as it was, not stored yet

	truncated := make(chan error, 1)
	go func() { truncated <- os.Truncate(path, 1000) }()
	// Nothing marks "still waiting"; a truncate that does not wait is done well within this.
	select {
	case err := <-truncated:
		t.Fatalf("the truncate (%v) finished while a fill held content from before it", err)
	case <-time.After(200 * time.Millisecond):
	}
	openGate()
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	<-fills
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want[:1000]) {
		t.Fatalf("after the truncate the file reads as %d bytes (%v), want the first 1000 written", len(got), err)
	}
}

package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func newTestLocal(t *testing.T) *Local {
	t.Helper()
	l, err := NewLocal(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestMissing(t *testing.T) {
	ctx := context.Background()
	l := newTestLocal(t)
	if _, err := l.ReadAt(ctx, NewID(), make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt missing: %v, want ErrNotExist", err)
	}
	present := NewID()
	if err := l.Put(ctx, present, []byte("x")); err != nil {
		t.Fatal(err)
	}
	missing := present
	missing[15] ^= 1 // same fan-out dir, so the dir exists and only the file is missing
	if err := l.Sync(ctx, []ID{present, missing}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Sync with missing: %v, want ErrNotExist", err)
	}
	if err := l.Sync(ctx, []ID{NewID()}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Sync missing (no fan-out dir): %v, want ErrNotExist", err)
	}
	if err := l.Sync(ctx, []ID{present}); err != nil {
		t.Fatalf("Sync present: %v", err)
	}
	if err := l.Sync(ctx, nil); err != nil {
		t.Fatalf("Sync nothing: %v", err)
	}
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	l := newTestLocal(t)
	want := map[ID]int64{}
	for i := 0; i < 300; i++ {
		id := NewID()
		data := bytes.Repeat([]byte{byte(i)}, i)
		if err := l.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		want[id] = int64(i)
	}
	// Debris that must not be reported: a temp file, an ID in the wrong fan-out dir,
	// an upper-case name, a stray file at the top and a non-hex directory.
	some := NewID()
	fan := filepath.Join(l.Dir(), some.String()[:2])
	os.MkdirAll(fan, 0o700)
	mustWrite(t, filepath.Join(fan, tmpPrefix+"123456"), "tmp")
	wrongFan := NewID()
	wrongFan[0] = some[0] + 1
	mustWrite(t, filepath.Join(fan, wrongFan.String()), "misplaced")
	upper := some
	upper[1] = 0xab
	mustWrite(t, filepath.Join(fan, fmt.Sprintf("%X", upper[:])), "upper")
	mustWrite(t, filepath.Join(l.Dir(), "README"), "stray")
	os.MkdirAll(filepath.Join(l.Dir(), "zz"), 0o700)
	mustWrite(t, filepath.Join(l.Dir(), "zz", some.String()), "nonhex dir")

	got := map[ID]int64{}
	err := l.Walk(ctx, func(id ID, size int64) error {
		if _, dup := got[id]; dup {
			t.Errorf("Walk reported %s twice", id)
		}
		got[id] = size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Walk found %d objects, want %d", len(got), len(want))
	}
	for id, size := range want {
		if got[id] != size {
			t.Errorf("Walk %s size %d, want %d", id, got[id], size)
		}
	}

	// An error from fn stops the walk and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	err = l.Walk(ctx, func(ID, int64) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Walk with failing fn: err=%v calls=%d", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = l.Walk(cctx, func(ID, int64) error {
		calls++
		if calls == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 5 {
		t.Fatalf("Walk after cancel: err=%v calls=%d", err, calls)
	}
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestModesAndLayout(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "b")
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	id := NewID()
	if err := l.Put(ctx, id, []byte("data")); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, fs.ModeDir|0o700)
	checkMode(t, filepath.Join(dir, id.String()[:2]), fs.ModeDir|0o700)
	checkMode(t, filepath.Join(dir, id.String()[:2], id.String()), 0o600)

	ents, err := os.ReadDir(filepath.Join(dir, id.String()[:2]))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != id.String() {
		t.Fatalf("fan-out dir holds %v, want only the object (no temp left behind)", ents)
	}
	if err := l.Sync(ctx, []ID{id}); err != nil {
		t.Fatal(err)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
	}
}

func TestPutFailureRemovesTemp(t *testing.T) {
	ctx := context.Background()
	l := newTestLocal(t)
	id := NewID()
	// A directory where the object should be makes the rename fail after the temp file
	// has been written.
	if err := os.MkdirAll(filepath.Join(l.path(id), "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := l.Put(ctx, id, []byte("data"))
	if err == nil {
		t.Fatal("Put over a non-empty directory succeeded")
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		t.Errorf("Put error %v does not wrap the errno", err)
	}
	ents, _ := os.ReadDir(l.fanDir(id))
	for _, e := range ents {
		if e.Name() != id.String() {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestUsageAndClose(t *testing.T) {
	l := newTestLocal(t)
	u, err := l.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.TotalBytes == 0 || u.FreeBytes > u.TotalBytes || u.AvailBytes > u.FreeBytes {
		t.Fatalf("implausible usage %+v", u)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(context.Background(), NewID(), nil); err == nil {
		t.Fatal("Put after Close succeeded")
	}
}

func TestNewLocalOnFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	mustWrite(t, f, "x")
	if _, err := NewLocal(f); err == nil {
		t.Fatal("NewLocal on a regular file succeeded")
	}
}

// KeepFree makes a Put that would eat into the kept space fail with ENOSPC, and stores
// nothing for it; smaller objects that fit still go in. The free space is the test's own
// figure (the real filesystem's moves with every other test); integration/diskfull_test.go
// runs the real thing on a full tmpfs.
func TestKeepFree(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	avail := uint64(10 << 20)
	l.statfs = func() (Usage, error) { return Usage{TotalBytes: 100 << 20, AvailBytes: avail}, nil }
	ctx := context.Background()
	l.KeepFree(8 << 20)
	big := NewID()
	if err := l.Put(ctx, big, make([]byte, 3<<20)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put into the kept space: %v, want ENOSPC", err)
	}
	if _, err := l.ReadAt(ctx, big, make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("the refused object exists: %v", err)
	}
	small := NewID()
	if err := l.Put(ctx, small, make([]byte, 1<<20)); err != nil {
		t.Fatalf("a Put that fits: %v", err)
	}
	l.KeepFree(0)
	if err := l.Put(ctx, big, make([]byte, 3<<20)); err != nil {
		t.Fatalf("Put with nothing kept free: %v", err)
	}
}

// TestSyncManyObjects: a Sync of many objects (one syncfs) still syncs a fan-out
// directory created since the last one, and leaves no flag behind.
func TestSyncManyObjects(t *testing.T) {
	ctx := context.Background()
	l := newTestLocal(t)
	ids := make([]ID, syncfsBatch+1)
	for i := range ids {
		ids[i] = NewID()
		if err := l.Put(ctx, ids[i], []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(ctx, ids); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	dirty := l.topDirty
	l.mu.Unlock()
	if dirty {
		t.Error("the top directory is still marked unsynced after a syncfs")
	}
	for i, id := range ids {
		p := make([]byte, 1)
		if _, err := l.ReadAt(ctx, id, p, 0); err != nil || p[0] != byte(i) {
			t.Fatalf("object %d after Sync: %v %v", i, p, err)
		}
	}
}

// TestCheckFreeReadingStandsIn: a statfs reading well above the kept room covers the
// writes after it up to half its margin; near the room every check asks again, so a
// filling disk is still seen at once.
func TestCheckFreeReadingStandsIn(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	avail, calls := uint64(108<<20), 0
	l.statfs = func() (Usage, error) { calls++; return Usage{TotalBytes: 1 << 30, AvailBytes: avail}, nil }
	l.KeepFree(8 << 20)
	for i := 0; i < 50; i++ { // 50 MiB of the 100 MiB margin: one reading covers them
		if err := l.CheckFree(1 << 20); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("%d statfs calls for writes within half the margin, want 1", calls)
	}
	avail = 9 << 20 // the disk filled up under us
	if err := l.CheckFree(1 << 20); err != nil {
		t.Fatalf("the write past half the margin: %v (it must ask, and 1 MiB still fits)", err)
	}
	if calls != 2 {
		t.Errorf("%d statfs calls, want a new reading past half the margin", calls)
	}
	avail = 8<<20 + 512<<10 // that write landed, and the next does not fit
	if err := l.CheckFree(1 << 20); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("near the kept room: %v, want ENOSPC from a fresh reading", err)
	}
	if calls != 3 {
		t.Errorf("%d statfs calls, want one per check near the kept room", calls)
	}
}

// TestBigObjectsSkipThePageCache: a whole chunk's object goes to the disk with O_DIRECT
// where the filesystem supports it (the unaligned tail of its size through the page
// cache), on both the create and the replace path; a buffer that does not meet the
// memory alignment, or a filesystem without direct I/O, falls back to the page cache with
// its writeback started; a small object takes neither. Every object reads back whole.
func TestBigObjectsSkipThePageCache(t *testing.T) {
	ctx := context.Background()
	l := newTestLocal(t)
	l.WriteDirect(true)
	dio := dioSupported(t, l.Dir())
	t.Logf("direct I/O on %s: %v", l.Dir(), dio)
	var started []int64
	old := startWriteback
	startWriteback = func(fd int) {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			t.Errorf("fstat: %v", err)
		}
		started = append(started, st.Size) // after the write: the whole object is there
		old(fd)
	}
	t.Cleanup(func() { startWriteback = old })

	// Large allocations are page-aligned in Go; one byte in, the buffer fits no DIO
	// alignment (512 or more).
	misaligned := func(n int) []byte { return make([]byte, n+1)[1:] }
	aligned := func(n int) []byte { return make([]byte, n) }
	big := NewID()
	for _, put := range []struct {
		name   string
		id     ID
		data   []byte
		direct bool // written with O_DIRECT (where supported), else writeback started
	}{
		{"small", NewID(), aligned(1 << 10), false},
		{"just below", NewID(), aligned(writebackFrom - 1), false},
		{"threshold", NewID(), aligned(writebackFrom), true},
		{"chunk", big, aligned(1 << 20), true},
		{"replacing, unaligned tail", big, aligned(1<<20 + 7), true},
		{"misaligned buffer", NewID(), misaligned(1 << 20), false},
	} {
		started = nil
		data := put.data
		for i := range data {
			data[i] = byte(i*7 + len(data))
		}
		before := directWrites.Load()
		if err := l.Put(ctx, put.id, data); err != nil {
			t.Fatal(err)
		}
		wentDirect := directWrites.Load() != before
		big := len(data) >= writebackFrom
		switch {
		case wentDirect != (put.direct && dio):
			t.Errorf("%s (%d bytes): written directly %v, want %v", put.name, len(data), wentDirect, put.direct && dio)
		case big && !wentDirect && fmt.Sprint(started) != fmt.Sprint([]int64{int64(len(data))}):
			t.Errorf("%s (%d bytes): writeback started at sizes %v, want once at the whole object", put.name, len(data), started)
		case (!big || wentDirect) && len(started) != 0:
			t.Errorf("%s (%d bytes): writeback started (%v) for an object %s", put.name, len(data), started, map[bool]string{true: "written directly", false: "this small"}[wentDirect])
		}
		got := make([]byte, len(data))
		if n, err := l.ReadAt(ctx, put.id, got, 0); n != len(data) || err != nil && !errors.Is(err, io.EOF) || !bytes.Equal(got, data) {
			t.Fatalf("%s (%d bytes) read back: %d, %v, equal %v", put.name, len(data), n, err, bytes.Equal(got, data))
		}
		if fi, err := os.Stat(l.path(put.id)); err != nil || fi.Size() != int64(len(data)) {
			t.Fatalf("%s: object file %v, %v; want %d bytes", put.name, fi, err, len(data))
		}
	}
}

// dioSupported tells whether the filesystem of dir offers direct I/O (statx STATX_DIOALIGN).
func dioSupported(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.CreateTemp(dir, "dio-probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var stx unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err != nil {
		return false
	}
	return stx.Mask&unix.STATX_DIOALIGN != 0 && stx.Dio_offset_align != 0
}

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// twin applies the same operations to a file in the mount and to a file in a plain
// directory (ext4/tmpfs), so the expected result is whatever Linux does.
type twin struct {
	t              testing.TB
	fuse, ref      *os.File
	fpath, refPath string
}

func openTwin(t testing.TB, m *Mount, name string, flag int) *twin {
	t.Helper()
	refPath := filepath.Join(t.TempDir(), name)
	fp := m.P(name)
	f, err := os.OpenFile(fp, flag, 0o644)
	must(t, err, "open "+fp)
	r, err := os.OpenFile(refPath, flag, 0o644)
	must(t, err, "open "+refPath)
	tw := &twin{t: t, fuse: f, ref: r, fpath: fp, refPath: refPath}
	t.Cleanup(func() { tw.close() })
	return tw
}

func (w *twin) close() {
	if w.fuse != nil {
		w.fuse.Close()
		w.fuse = nil
	}
	if w.ref != nil {
		w.ref.Close()
		w.ref = nil
	}
}

func (w *twin) pwrite(b []byte, off int64) {
	w.t.Helper()
	n, err := w.fuse.WriteAt(b, off)
	if err != nil || n != len(b) {
		w.t.Fatalf("pwrite %d bytes at %d on the mount: n=%d err=%v", len(b), off, n, err)
	}
	if _, err := w.ref.WriteAt(b, off); err != nil {
		w.t.Fatal(err)
	}
}

func (w *twin) ftruncate(size int64) {
	w.t.Helper()
	if err := w.fuse.Truncate(size); err != nil {
		w.t.Fatalf("ftruncate(%d) on the mount: %v", size, err)
	}
	must(w.t, w.ref.Truncate(size), "ftruncate ref")
}

func (w *twin) truncate(size int64) {
	w.t.Helper()
	if err := os.Truncate(w.fpath, size); err != nil {
		w.t.Fatalf("truncate(%s, %d): %v", w.fpath, size, err)
	}
	must(w.t, os.Truncate(w.refPath, size), "truncate ref")
}

// verify compares size (fstat and stat), the whole content through the fd, the whole content
// through a fresh open, and some random ranges.
func (w *twin) verify(r *mrand.Rand, what string) {
	w.t.Helper()
	want, err := os.ReadFile(w.refPath)
	must(w.t, err, "read ref")
	fi, err := w.fuse.Stat()
	must(w.t, err, "fstat")
	if fi.Size() != int64(len(want)) {
		w.t.Errorf("%s: fstat size %d, want %d", what, fi.Size(), len(want))
	}
	if st, err := os.Stat(w.fpath); err != nil || st.Size() != int64(len(want)) {
		w.t.Errorf("%s: stat size %v (err %v), want %d", what, sizeOf(st), err, len(want))
	}
	got := make([]byte, len(want)+100)
	n, err := w.fuse.ReadAt(got, 0)
	if err != nil && err != io.EOF {
		w.t.Errorf("%s: pread whole file: %v", what, err)
	}
	assertBytes(w.t, what+" (pread through the open fd)", got[:n], want)
	assertContent(w.t, w.fpath, want)
	for i := 0; i < 20 && len(want) > 0; i++ {
		off := r.IntN(len(want))
		l := 1 + r.IntN(min(len(want)-off, 3*ChunkSize))
		buf := make([]byte, l)
		n, err := w.fuse.ReadAt(buf, int64(off))
		if err != nil && !(err == io.EOF && n == l) {
			w.t.Errorf("%s: pread %d at %d: n=%d err=%v", what, l, off, n, err)
			continue
		}
		assertBytes(w.t, fmt.Sprintf("%s (pread %d at %d)", what, l, off), buf[:n], want[off:off+l])
	}
}

func sizeOf(fi os.FileInfo) any {
	if fi == nil {
		return "?"
	}
	return fi.Size()
}

// TestCreateAndOpenFlags: O_CREAT, O_EXCL, O_TRUNC, O_APPEND, read, and the errors of open.
func TestCreateAndOpenFlags(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	p := m.P("created")

	// O_CREAT|O_EXCL on a new name creates an empty file.
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	must(t, err, "O_CREAT|O_EXCL new file")
	if fi, _ := f.Stat(); fi == nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
		t.Errorf("new file: stat %v, want an empty regular file", fi)
	}
	data := randBytes(r, 3*ChunkSize+123)
	if n, err := f.Write(data); err != nil || n != len(data) {
		t.Fatalf("write: n=%d err=%v", n, err)
	}
	// read back through the same fd after a seek
	_, err = f.Seek(0, io.SeekStart)
	must(t, err, "seek")
	got, err := io.ReadAll(f)
	must(t, err, "read back")
	assertBytes(t, "read back through the writing fd", got, data)
	must(t, f.Close(), "close")
	assertContent(t, p, data)

	// O_EXCL on an existing name: EEXIST, content untouched.
	_, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	wantErrno(t, err, "O_CREAT|O_EXCL on an existing file", syscall.EEXIST)
	// O_CREAT without O_EXCL on an existing name opens it, does not truncate.
	f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err, "O_CREAT on an existing file")
	f.Close()
	assertContent(t, p, data)

	// O_APPEND: every write goes to the end, whatever the offset.
	f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err, "O_APPEND")
	_, err = f.Seek(10, io.SeekStart)
	must(t, err, "seek")
	tail1 := []byte("appended-one|")
	tail2 := randBytes(r, ChunkSize+7)
	_, err = f.Write(tail1)
	must(t, err, "append 1")
	_, err = f.Write(tail2)
	must(t, err, "append 2")
	must(t, f.Close(), "close")
	want := append(append(append([]byte{}, data...), tail1...), tail2...)
	assertContent(t, p, want)
	dropPageCache(t, p)
	assertContent(t, p, want)

	// O_TRUNC: empties it.
	f, err = os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
	must(t, err, "O_TRUNC")
	if fi, _ := f.Stat(); fi == nil || fi.Size() != 0 {
		t.Errorf("after O_TRUNC: size %v, want 0", sizeOf(fi))
	}
	_, err = f.Write([]byte("short"))
	must(t, err, "write after O_TRUNC")
	must(t, f.Close(), "close")
	assertContent(t, p, []byte("short"))
	dropPageCache(t, p)
	assertContent(t, p, []byte("short"))

	// O_CREAT|O_TRUNC on an existing file with content.
	writeFile(t, p, []byte("replaced"), 0o644)
	assertContent(t, p, []byte("replaced"))

	// Errors of open.
	_, err = os.Open(m.P("missing"))
	wantErrno(t, err, "open a missing file without O_CREAT", syscall.ENOENT)
	_, err = os.OpenFile(m.P("nodir", "x"), os.O_RDWR|os.O_CREATE, 0o644)
	wantErrno(t, err, "O_CREAT in a missing directory", syscall.ENOENT)
	_, err = os.OpenFile(m.P("created", "x"), os.O_RDWR|os.O_CREATE, 0o644)
	wantErrno(t, err, "O_CREAT below a regular file", syscall.ENOTDIR)
	ro, err := os.Open(p)
	must(t, err, "open O_RDONLY")
	_, err = ro.Write([]byte("x"))
	wantErrno(t, err, "write to an O_RDONLY fd", syscall.EBADF)
	ro.Close()
	wo, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, err, "open O_WRONLY")
	_, err = wo.Read(make([]byte, 4))
	wantErrno(t, err, "read from an O_WRONLY fd", syscall.EBADF)
	wo.Close()
	_, err = os.OpenFile(m.P(strings.Repeat("n", 256)), os.O_RDWR|os.O_CREATE, 0o644)
	wantErrno(t, err, "create a 256-byte name", syscall.ENAMETOOLONG)
	long := strings.Repeat("L", 255)
	writeFile(t, m.P(long), []byte("255"), 0o644)
	assertContent(t, m.P(long), []byte("255"))

	// Reads at and past EOF.
	rf, err := os.Open(p)
	must(t, err, "open")
	defer rf.Close()
	buf := make([]byte, 10)
	n, err := rf.ReadAt(buf, int64(len("replaced")))
	if n != 0 || err != io.EOF {
		t.Errorf("pread at EOF: n=%d err=%v, want 0, EOF", n, err)
	}
	n, err = rf.ReadAt(buf, 4)
	if n != 4 || err != io.EOF || string(buf[:n]) != "aced" {
		t.Errorf("pread across EOF: n=%d err=%v data %q, want 4 bytes \"aced\" then EOF", n, err, buf[:n])
	}
}

// TestRandomWrites: pwrite at random offsets and lengths across chunk boundaries, compared
// with the same writes on a plain file.
func TestRandomWrites(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	w := openTwin(t, m, "random", os.O_RDWR|os.O_CREATE|os.O_TRUNC)

	const span = 6*ChunkSize + 4321
	// First the boundary cases, then random ones.
	edges := []struct{ off, n int }{
		{ChunkSize - 1, 1}, {ChunkSize, 1}, {ChunkSize - 5, 10}, {2*ChunkSize - 1, ChunkSize + 2},
		{0, 1}, {3 * ChunkSize, ChunkSize}, {4*ChunkSize + 17, 2 * ChunkSize}, {span - 1, 1},
	}
	for _, e := range edges {
		w.pwrite(randBytes(r, e.n), int64(e.off))
	}
	w.verify(r, "after boundary writes")
	for i := 0; i < 300; i++ {
		var n int
		switch r.IntN(4) {
		case 0:
			n = 1 + r.IntN(16)
		case 1:
			n = 1 + r.IntN(4096)
		case 2:
			n = 1 + r.IntN(256<<10)
		default:
			n = 1 + r.IntN(2*ChunkSize)
		}
		off := r.IntN(span)
		w.pwrite(randBytes(r, n), int64(off))
		if i%50 == 49 {
			if i%100 == 99 {
				must(t, w.fuse.Sync(), "fsync")
			}
			w.verify(r, fmt.Sprintf("after %d random writes", i+1))
		}
	}
	w.close()
	dropPageCache(t, w.fpath)
	assertContent(t, w.fpath, readFile(t, w.refPath))
	if fileSHA(t, w.fpath) != fileSHA(t, w.refPath) {
		t.Errorf("sha256 of the mount file differs from the plain file's")
	}
}

// TestSparseAndPastEOF: writing past EOF leaves a hole of zeros; the size is right.
func TestSparseAndPastEOF(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)

	// A write at 5 MiB into an empty file.
	p := m.P("sparse")
	f, err := os.Create(p)
	must(t, err, "create")
	tailData := []byte("after-the-hole")
	_, err = f.WriteAt(tailData, 5*ChunkSize)
	must(t, err, "pwrite at 5 MiB")
	must(t, f.Close(), "close")
	want := append(make([]byte, 5*ChunkSize), tailData...)
	if st := lstat(t, p); st.Size != int64(len(want)) {
		t.Errorf("sparse file size %d, want %d", st.Size, len(want))
	}
	assertContent(t, p, want)
	dropPageCache(t, p)
	assertContent(t, p, want)

	// Writes past EOF of files that have content, inside and across chunks.
	w := openTwin(t, m, "pasteof", os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	w.pwrite(randBytes(r, 1000), 0)
	w.pwrite(randBytes(r, 10), 5000)                 // hole inside chunk 0
	w.pwrite(randBytes(r, 100), 3*ChunkSize+7)       // hole across chunks 1-2
	w.pwrite(randBytes(r, 2*ChunkSize), 7*ChunkSize) // exactly chunk-aligned, after a hole
	w.verify(r, "writes past EOF")
	// Seek past EOF and write(2).
	_, err = w.fuse.Seek(10*ChunkSize-3, io.SeekStart)
	must(t, err, "seek")
	_, err = w.ref.Seek(10*ChunkSize-3, io.SeekStart)
	must(t, err, "seek ref")
	b := randBytes(r, 9)
	_, err = w.fuse.Write(b)
	must(t, err, "write after seek past EOF")
	_, err = w.ref.Write(b)
	must(t, err, "write ref")
	w.verify(r, "write(2) after lseek past EOF")
	// Fill part of a hole afterwards.
	w.pwrite(randBytes(r, 3), 6*ChunkSize-1)
	w.verify(r, "write into a hole")
	w.close()
	dropPageCache(t, w.fpath)
	assertContent(t, w.fpath, readFile(t, w.refPath))
}

// TestTruncate: truncate and ftruncate, shrinking and growing, inside a chunk and across chunks.
// Growing after a shrink must show zeros where the old bytes were.
func TestTruncate(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	w := openTwin(t, m, "trunc", os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	w.pwrite(randBytes(r, 3*ChunkSize+ChunkSize/2), 0)
	w.verify(r, "initial 3.5 MiB")

	steps := []struct {
		name string
		size int64
		path bool // truncate(2) by path instead of ftruncate(2)
	}{
		{"shrink across chunks (3.5 MiB -> 2.5 MiB)", 2*ChunkSize + ChunkSize/2, false},
		{"shrink inside a chunk (-100)", 2*ChunkSize + ChunkSize/2 - 100, true},
		{"grow inside the chunk (+50): zeros past the cut", 2*ChunkSize + ChunkSize/2 - 50, false},
		{"grow across chunks (to 4 MiB + 3)", 4*ChunkSize + 3, true},
		{"shrink to exactly 1 chunk", ChunkSize, false},
		{"grow by one byte past the chunk", ChunkSize + 1, false},
		{"shrink to 1 chunk - 1", ChunkSize - 1, true},
		{"shrink to 0", 0, false},
		{"grow from 0 to 2 MiB + 1", 2*ChunkSize + 1, true},
	}
	for i, s := range steps {
		if s.path {
			w.truncate(s.size)
		} else {
			w.ftruncate(s.size)
		}
		w.verify(r, fmt.Sprintf("step %d: %s", i, s.name))
		// Rewrite a little near the cut so the next shrink cuts written data, not zeros.
		if s.size > 10 {
			w.pwrite(randBytes(r, 7), s.size-10)
		}
	}

	// Truncate a file with unflushed writes in its buffer: shrink, then grow.
	w.pwrite(randBytes(r, ChunkSize+500), ChunkSize/2)
	w.ftruncate(ChunkSize)
	w.ftruncate(2 * ChunkSize)
	w.verify(r, "shrink+grow right after unflushed writes")

	w.close()
	dropPageCache(t, w.fpath)
	assertContent(t, w.fpath, readFile(t, w.refPath))

	// Truncate errors.
	wantErrno(t, os.Truncate(m.P("missing"), 0), "truncate a missing file", syscall.ENOENT)
	must(t, os.Mkdir(m.P("d"), 0o755), "mkdir")
	wantErrno(t, os.Truncate(m.P("d"), 0), "truncate a directory", syscall.EISDIR)
	wantErrno(t, unix.Truncate(m.P("trunc"), -1), "truncate to -1", syscall.EINVAL)

	// O_TRUNC persisted across a remount too.
	m = m.Restart(t)
	assertContent(t, m.P("trunc"), readFile(t, w.refPath))
}

// TestUnlinkOpenFile: an unlinked file stays readable and writable through open fds until
// the last close; then it is gone.
func TestUnlinkOpenFile(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	p := m.P("doomed")
	data := randBytes(r, 2*ChunkSize+99)
	writeFile(t, p, data, 0o644)

	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err, "open")
	defer f.Close()
	g, err := os.Open(p)
	must(t, err, "open second fd")
	defer g.Close()
	must(t, os.Remove(p), "unlink while open")

	_, err = os.Stat(p)
	wantErrno(t, err, "stat after unlink", syscall.ENOENT)
	ents, err := os.ReadDir(m.Dir)
	must(t, err, "readdir")
	for _, e := range ents {
		if e.Name() == "doomed" {
			t.Errorf("readdir still lists the unlinked file")
		}
	}
	var st unix.Stat_t
	must(t, unix.Fstat(int(f.Fd()), &st), "fstat")
	if st.Nlink != 0 {
		t.Errorf("fstat of an unlinked open file: nlink %d, want 0", st.Nlink)
	}
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 0)
	check(t, err, "read through the fd after unlink")
	assertBytes(t, "content through the fd after unlink", got, data)

	// Write more through the fd (across a chunk boundary and past EOF), read it back.
	extra := randBytes(r, ChunkSize+5)
	_, err = f.WriteAt(extra, ChunkSize+ChunkSize/2)
	must(t, err, "write through the fd after unlink")
	want := append(append([]byte{}, data[:ChunkSize+ChunkSize/2]...), extra...)
	must(t, f.Sync(), "fsync an unlinked file")
	got = make([]byte, len(want))
	n, err := g.ReadAt(got, 0)
	if err != nil && err != io.EOF {
		t.Errorf("read through the second fd: %v", err)
	}
	assertBytes(t, "content through the second fd after unlink+write", got[:n], want)

	// A new file of the same name is a different, empty file.
	writeFile(t, p, []byte("new"), 0o644)
	assertContent(t, p, []byte("new"))
	got = make([]byte, len(want))
	n, _ = f.ReadAt(got, 0)
	assertBytes(t, "old fd still reads the unlinked file after the name was reused", got[:n], want)

	must(t, f.Close(), "close fd 1")
	must(t, g.Close(), "close fd 2")
	assertContent(t, p, []byte("new"))
	must(t, os.Remove(p), "unlink the new file")
	_, err = os.Stat(p)
	wantErrno(t, err, "stat after the last unlink", syscall.ENOENT)
	wantErrno(t, os.Remove(p), "unlink a missing name", syscall.ENOENT)

	// After a remount nothing of either file remains.
	m = m.Restart(t)
	ents, err = os.ReadDir(m.Dir)
	must(t, err, "readdir after remount")
	if len(ents) != 0 {
		t.Errorf("after remount the root lists %v, want nothing", names(ents))
	}
}

func names(ents []os.DirEntry) []string {
	var s []string
	for _, e := range ents {
		s = append(s, e.Name())
	}
	return s
}

// TestDirectories: mkdir/rmdir and the errors Linux gives.
func TestDirectories(t *testing.T) {
	m := StartMount(t, newConfig(t))
	must(t, os.Mkdir(m.P("a"), 0o755), "mkdir a")
	must(t, os.MkdirAll(m.P("a", "b", "c"), 0o755), "mkdir -p a/b/c")
	writeFile(t, m.P("a", "b", "file"), []byte("x"), 0o644)
	writeFile(t, m.P("plain"), []byte("y"), 0o644)

	if st := lstat(t, m.P("a", "b")); st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != 0o755 {
		t.Errorf("a/b: mode %o, want dir 0755", st.Mode)
	}
	wantErrno(t, os.Mkdir(m.P("a"), 0o755), "mkdir an existing dir", syscall.EEXIST)
	wantErrno(t, os.Mkdir(m.P("plain"), 0o755), "mkdir over an existing file", syscall.EEXIST)
	wantErrno(t, os.Mkdir(m.P("plain", "sub"), 0o755), "mkdir below a file", syscall.ENOTDIR)
	wantErrno(t, os.Mkdir(m.P("nope", "sub"), 0o755), "mkdir below a missing dir", syscall.ENOENT)
	wantErrno(t, unix.Rmdir(m.P("a", "b")), "rmdir a non-empty dir", syscall.ENOTEMPTY)
	wantErrno(t, unix.Rmdir(m.P("plain")), "rmdir a file", syscall.ENOTDIR)
	wantErrno(t, unix.Rmdir(m.P("missing")), "rmdir a missing dir", syscall.ENOENT)
	wantErrno(t, unix.Unlink(m.P("a")), "unlink a directory", syscall.EISDIR)
	_, err := os.OpenFile(m.P("a"), os.O_WRONLY, 0)
	wantErrno(t, err, "open a directory for writing", syscall.EISDIR)
	_, err = os.ReadDir(m.P("plain"))
	wantErrno(t, err, "readdir a file", syscall.ENOTDIR)
	_, err = os.Stat(m.P("plain", "x"))
	wantErrno(t, err, "stat below a file", syscall.ENOTDIR)
	wantErrno(t, os.Mkdir(m.P(strings.Repeat("d", 256)), 0o755), "mkdir with a 256-byte name", syscall.ENAMETOOLONG)

	must(t, unix.Rmdir(m.P("a", "b", "c")), "rmdir an empty dir")
	must(t, os.Remove(m.P("a", "b", "file")), "unlink")
	must(t, unix.Rmdir(m.P("a", "b")), "rmdir the now-empty dir")
	_, err = os.Stat(m.P("a", "b"))
	wantErrno(t, err, "stat a removed dir", syscall.ENOENT)
	ents, err := os.ReadDir(m.P("a"))
	must(t, err, "readdir a")
	if len(ents) != 0 {
		t.Errorf("a lists %v, want nothing", names(ents))
	}
	// A removed directory that is still the cwd-like open fd: readdir of it is empty,
	// creating in it fails with ENOENT.
	must(t, os.Mkdir(m.P("gone"), 0o755), "mkdir gone")
	d, err := os.Open(m.P("gone"))
	must(t, err, "open dir")
	defer d.Close()
	must(t, unix.Rmdir(m.P("gone")), "rmdir gone")
	_, err = unix.Openat(int(d.Fd()), "child", unix.O_CREAT|unix.O_RDWR, 0o644)
	wantErrno(t, err, "create in a removed directory", syscall.ENOENT)
}

// TestRename covers rename(2) and renameat2(2) semantics.
func TestRename(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	a := randBytes(r, ChunkSize+11)
	b := randBytes(r, 3000)

	// Simple rename: content follows, the old name is gone.
	writeFile(t, m.P("a"), a, 0o644)
	must(t, os.Rename(m.P("a"), m.P("a2")), "rename a a2")
	assertContent(t, m.P("a2"), a)
	_, err := os.Stat(m.P("a"))
	wantErrno(t, err, "stat the old name", syscall.ENOENT)

	// Over an existing file: replaced.
	writeFile(t, m.P("b"), b, 0o644)
	ino := lstat(t, m.P("a2")).Ino
	must(t, os.Rename(m.P("a2"), m.P("b")), "rename a2 over b")
	assertContent(t, m.P("b"), a)
	if got := lstat(t, m.P("b")).Ino; got != ino {
		t.Errorf("rename over an existing file: inode %d, want the moved file's %d", got, ino)
	}
	_, err = os.Stat(m.P("a2"))
	wantErrno(t, err, "stat the renamed-away name", syscall.ENOENT)

	// Across directories, with a tree below.
	must(t, os.MkdirAll(m.P("d1", "sub"), 0o755), "mkdir")
	must(t, os.Mkdir(m.P("d2"), 0o755), "mkdir")
	writeFile(t, m.P("d1", "sub", "f"), b, 0o600)
	must(t, os.Rename(m.P("b"), m.P("d2", "b")), "rename file across dirs")
	assertContent(t, m.P("d2", "b"), a)
	must(t, os.Rename(m.P("d1", "sub"), m.P("d2", "sub")), "rename dir across dirs")
	assertContent(t, m.P("d2", "sub", "f"), b)
	if _, err := os.Stat(m.P("d1", "sub")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("old dir still there: %v", err)
	}

	// Error cases. (unix.Rename, not os.Rename: os.Rename refuses a directory target itself.)
	wantErrno(t, unix.Rename(m.P("d2"), m.P("d2", "sub", "inside")), "rename a dir into its own subdir", syscall.EINVAL)
	wantErrno(t, unix.Rename(m.P("d2"), m.P("d2", "self")), "rename a dir into itself", syscall.EINVAL)
	wantErrno(t, unix.Rename(m.P("missing"), m.P("x")), "rename a missing name", syscall.ENOENT)
	must(t, os.Mkdir(m.P("empty"), 0o755), "mkdir")
	wantErrno(t, unix.Rename(m.P("d2", "b"), m.P("empty")), "rename a file over a dir", syscall.EISDIR)
	wantErrno(t, unix.Rename(m.P("empty"), m.P("d2", "b")), "rename a dir over a file", syscall.ENOTDIR)
	wantErrno(t, unix.Rename(m.P("empty"), m.P("d2")), "rename a dir over a non-empty dir", syscall.ENOTEMPTY, syscall.EEXIST)
	must(t, os.Mkdir(m.P("empty2"), 0o755), "mkdir")
	must(t, unix.Rename(m.P("empty"), m.P("empty2")), "rename a dir over an empty dir")
	if _, err := os.Stat(m.P("empty")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("rename dir over empty dir: source still there (%v)", err)
	}

	// renameat2 RENAME_NOREPLACE.
	writeFile(t, m.P("n1"), []byte("one"), 0o644)
	writeFile(t, m.P("n2"), []byte("two"), 0o644)
	err = unix.Renameat2(unix.AT_FDCWD, m.P("n1"), unix.AT_FDCWD, m.P("n2"), unix.RENAME_NOREPLACE)
	wantErrno(t, err, "RENAME_NOREPLACE onto an existing name", syscall.EEXIST)
	assertContent(t, m.P("n1"), []byte("one"))
	assertContent(t, m.P("n2"), []byte("two"))
	must(t, unix.Renameat2(unix.AT_FDCWD, m.P("n1"), unix.AT_FDCWD, m.P("n3"), unix.RENAME_NOREPLACE), "RENAME_NOREPLACE onto a free name")
	assertContent(t, m.P("n3"), []byte("one"))

	// renameat2 RENAME_EXCHANGE: files, and a file with a directory.
	big := randBytes(r, 2*ChunkSize+1)
	writeFile(t, m.P("x1"), big, 0o600)
	writeFile(t, m.P("x2"), []byte("small"), 0o644)
	must(t, unix.Renameat2(unix.AT_FDCWD, m.P("x1"), unix.AT_FDCWD, m.P("x2"), unix.RENAME_EXCHANGE), "RENAME_EXCHANGE two files")
	assertContent(t, m.P("x1"), []byte("small"))
	assertContent(t, m.P("x2"), big)
	if st := lstat(t, m.P("x2")); st.Mode&0o777 != 0o600 {
		t.Errorf("after exchange x2 has mode %o, want 0600 (x1's)", st.Mode&0o777)
	}
	must(t, unix.Renameat2(unix.AT_FDCWD, m.P("x1"), unix.AT_FDCWD, m.P("d2"), unix.RENAME_EXCHANGE), "RENAME_EXCHANGE a file and a dir")
	assertContent(t, m.P("d2"), []byte("small"))
	assertContent(t, m.P("x1", "sub", "f"), b)
	err = unix.Renameat2(unix.AT_FDCWD, m.P("x1"), unix.AT_FDCWD, m.P("nothere"), unix.RENAME_EXCHANGE)
	wantErrno(t, err, "RENAME_EXCHANGE with a missing target", syscall.ENOENT)

	// Atomicity: while a writer renames complete files over "target" again and again, a reader
	// always finds a complete version, never ENOENT or a mix.
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('A' + i)}, 64<<10+i)
	}
	writeFile(t, m.P("target"), versions[0], 0o644)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var readerErr atomic.Value
	var reads atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := os.ReadFile(m.P("target"))
			if err != nil {
				readerErr.Store(fmt.Sprintf("read during renames: %v", err))
				return
			}
			ok := false
			for _, v := range versions {
				if bytes.Equal(got, v) {
					ok = true
					break
				}
			}
			if !ok {
				readerErr.Store(fmt.Sprintf("read during renames: %d bytes that are no complete version (first byte %q)", len(got), got[:min(1, len(got))]))
				return
			}
			reads.Add(1)
		}
	}()
	for i := 0; i < 200; i++ {
		tmp := m.P(fmt.Sprintf(".tmp%d", i))
		if err := os.WriteFile(tmp, versions[i%len(versions)], 0o644); err != nil {
			t.Errorf("write tmp: %v", err)
			break
		}
		if err := os.Rename(tmp, m.P("target")); err != nil {
			t.Errorf("rename tmp over target: %v", err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if v := readerErr.Load(); v != nil {
		t.Error(v)
	}
	t.Logf("reader completed %d reads during 200 renames", reads.Load())
	assertContent(t, m.P("target"), versions[199%len(versions)])
	ents, err := os.ReadDir(m.Dir)
	must(t, err, "readdir")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temporary %s still listed after it was renamed away", e.Name())
		}
	}
}

// dirent is one raw getdents64 record.
type dirent struct {
	ino  uint64
	typ  uint8
	name string
}

// readDirRaw lists dir with getdents64 and returns the records, so d_type can be checked
// (os.ReadDir would silently fall back to lstat for DT_UNKNOWN).
func readDirRaw(t testing.TB, dir string) []dirent {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err, "open "+dir)
	defer unix.Close(fd)
	var out []dirent
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		must(t, err, "getdents64")
		if n == 0 {
			return out
		}
		for off := 0; off < n; {
			rec := buf[off:]
			ino := le64(rec[0:8])
			reclen := int(rec[16]) | int(rec[17])<<8
			typ := rec[18]
			nameb := rec[19:reclen]
			if i := bytes.IndexByte(nameb, 0); i >= 0 {
				nameb = nameb[:i]
			}
			out = append(out, dirent{ino: ino, typ: typ, name: string(nameb)})
			if reclen == 0 {
				t.Fatal("getdents64: zero-length record")
			}
			off += reclen
		}
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestReaddirLarge: 5,000 entries of mixed types; exact name set, d_type, inode numbers.
func TestReaddirLarge(t *testing.T) {
	m := StartMount(t, newConfig(t))
	dir := m.P("big")
	must(t, os.Mkdir(dir, 0o755), "mkdir")
	want := map[string]uint8{}
	for i := 0; i < 5000; i++ {
		var name string
		switch {
		case i%500 == 7:
			name = fmt.Sprintf("dir-%04d", i)
			must(t, os.Mkdir(filepath.Join(dir, name), 0o755), "mkdir")
			want[name] = unix.DT_DIR
		case i%500 == 9:
			name = fmt.Sprintf("link-%04d", i)
			must(t, os.Symlink("target-"+name, filepath.Join(dir, name)), "symlink")
			want[name] = unix.DT_LNK
		default:
			// Names of varied lengths and characters (spaces, UTF-8, dots).
			name = fmt.Sprintf("f-%04d-%s", i, strings.Repeat("x", i%97))
			switch i % 5 {
			case 1:
				name += " with space"
			case 2:
				name = "é-ü-" + name
			case 3:
				name = "." + name
			}
			f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			must(t, err, "create "+name)
			if i%10 == 0 {
				_, err = f.Write([]byte(name))
				must(t, err, "write")
			}
			must(t, f.Close(), "close")
			want[name] = unix.DT_REG
		}
	}

	verify := func(what string) {
		t.Helper()
		ents := readDirRaw(t, dir)
		got := map[string]dirent{}
		dots := 0
		for _, e := range ents {
			if e.name == "." || e.name == ".." {
				dots++
				continue
			}
			if _, dup := got[e.name]; dup {
				t.Errorf("%s: readdir lists %q twice", what, e.name)
			}
			got[e.name] = e
		}
		if len(got) != len(want) {
			t.Errorf("%s: readdir lists %d entries, want %d", what, len(got), len(want))
		}
		var missing, extra, badType []string
		for n, typ := range want {
			e, ok := got[n]
			if !ok {
				missing = append(missing, n)
				continue
			}
			if e.typ != typ {
				badType = append(badType, fmt.Sprintf("%s: d_type %d want %d", n, e.typ, typ))
			}
		}
		for n := range got {
			if _, ok := want[n]; !ok {
				extra = append(extra, n)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing) > 0 {
			t.Errorf("%s: %d names missing, e.g. %q", what, len(missing), missing[:min(5, len(missing))])
		}
		if len(extra) > 0 {
			t.Errorf("%s: %d unexpected names, e.g. %q", what, len(extra), extra[:min(5, len(extra))])
		}
		if len(badType) > 0 {
			t.Errorf("%s: %d wrong d_type values, e.g. %q", what, len(badType), badType[:min(5, len(badType))])
		}
		// d_ino agrees with stat for a sample.
		i := 0
		for n, e := range got {
			if i++; i > 50 {
				break
			}
			if st := lstat(t, filepath.Join(dir, n)); st.Ino != e.ino {
				t.Errorf("%s: %q d_ino %d, stat ino %d", what, n, e.ino, st.Ino)
			}
		}
	}
	verify("after creating 5000 entries")

	// Remove every third regular file; the listing follows.
	removed := 0
	for n, typ := range want {
		if typ == unix.DT_REG && removed < 1700 && len(n)%3 == 0 {
			must(t, os.Remove(filepath.Join(dir, n)), "remove")
			delete(want, n)
			removed++
		}
	}
	verify(fmt.Sprintf("after removing %d files", removed))
	m = m.Restart(t)
	dir = m.P("big")
	verify("after a remount")
}

// TestSymlinks: symlink, readlink, lstat, following, errors.
func TestSymlinks(t *testing.T) {
	m := StartMount(t, newConfig(t))
	writeFile(t, m.P("real"), []byte("real content"), 0o644)
	targets := map[string]string{
		"rel":      "real",
		"abs":      m.P("real"),
		"dangling": "no/such/file",
		"dots":     "../" + filepath.Base(m.Dir) + "/./real",
		"long":     strings.Repeat("segment/", 500) + "end", // 4003 bytes
		"utf8":     "Ünïcödé target ✓",
	}
	for name, target := range targets {
		must(t, os.Symlink(target, m.P(name)), "symlink "+name)
	}
	for name, target := range targets {
		got, err := os.Readlink(m.P(name))
		if err != nil || got != target {
			t.Errorf("readlink %s: %q, %v; want %q", name, got, err, target)
		}
		st := lstat(t, m.P(name))
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Errorf("lstat %s: mode %o, want a symlink", name, st.Mode)
		}
		if st.Size != int64(len(target)) {
			t.Errorf("lstat %s: size %d, want %d (the target's length)", name, st.Size, len(target))
		}
	}
	assertContent(t, m.P("rel"), []byte("real content"))
	assertContent(t, m.P("abs"), []byte("real content"))
	assertContent(t, m.P("dots"), []byte("real content"))
	_, err := os.ReadFile(m.P("dangling"))
	wantErrno(t, err, "open a dangling symlink", syscall.ENOENT)
	// Writing through a symlink writes the target.
	writeFile(t, m.P("rel"), []byte("via link"), 0o644)
	assertContent(t, m.P("real"), []byte("via link"))

	wantErrno(t, os.Symlink("x", m.P("rel")), "symlink over an existing name", syscall.EEXIST)
	_, err = os.Readlink(m.P("real"))
	wantErrno(t, err, "readlink a regular file", syscall.EINVAL)
	// A symlink in a path that loops.
	must(t, os.Symlink("loop2", m.P("loop1")), "symlink")
	must(t, os.Symlink("loop1", m.P("loop2")), "symlink")
	_, err = os.Stat(m.P("loop1"))
	wantErrno(t, err, "stat a symlink loop", syscall.ELOOP)
	// Removing a symlink leaves the target.
	must(t, os.Remove(m.P("rel")), "unlink symlink")
	assertContent(t, m.P("real"), []byte("via link"))

	m = m.Restart(t)
	for name, target := range targets {
		if name == "rel" {
			continue
		}
		if got, err := os.Readlink(m.P(name)); err != nil || got != target {
			t.Errorf("after remount: readlink %s: %q, %v; want %q", name, got, err, target)
		}
	}
}

// TestHardLinks: link(2) shares content and counts links.
func TestHardLinks(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	data := randBytes(r, ChunkSize+3)
	writeFile(t, m.P("a"), data, 0o640)
	must(t, os.Mkdir(m.P("sub"), 0o755), "mkdir")
	must(t, os.Link(m.P("a"), m.P("b")), "link a b")
	must(t, os.Link(m.P("a"), m.P("sub", "c")), "link a sub/c")

	sa, sb, sc := lstat(t, m.P("a")), lstat(t, m.P("b")), lstat(t, m.P("sub", "c"))
	for _, s := range []struct {
		n  string
		st *unix.Stat_t
	}{{"a", sa}, {"b", sb}, {"sub/c", sc}} {
		if s.st.Nlink != 3 {
			t.Errorf("%s: nlink %d, want 3", s.n, s.st.Nlink)
		}
		if s.st.Ino != sa.Ino {
			t.Errorf("%s: ino %d, want %d (the same inode)", s.n, s.st.Ino, sa.Ino)
		}
		if s.st.Size != int64(len(data)) || s.st.Mode&0o777 != 0o640 {
			t.Errorf("%s: size %d mode %o, want %d 0640", s.n, s.st.Size, s.st.Mode&0o777, len(data))
		}
	}
	// A write through one name shows through the others.
	f, err := os.OpenFile(m.P("b"), os.O_WRONLY, 0)
	must(t, err, "open b")
	_, err = f.WriteAt([]byte("THROUGH-B"), ChunkSize-4) // crosses the chunk border and extends the file by 2
	must(t, err, "write b")
	must(t, f.Close(), "close b")
	data = append(data[:ChunkSize-4], "THROUGH-B"...)
	assertContent(t, m.P("a"), data)
	assertContent(t, m.P("sub", "c"), data)
	// chmod through one name shows through the others.
	must(t, os.Chmod(m.P("sub", "c"), 0o600), "chmod")
	if st := lstat(t, m.P("a")); st.Mode&0o777 != 0o600 {
		t.Errorf("chmod through a link: a has mode %o, want 0600", st.Mode&0o777)
	}

	// Unlink one: the others keep the content, the count drops.
	must(t, os.Remove(m.P("a")), "unlink a")
	if st := lstat(t, m.P("b")); st.Nlink != 2 {
		t.Errorf("after unlinking a: b nlink %d, want 2", st.Nlink)
	}
	assertContent(t, m.P("b"), data)
	must(t, os.Remove(m.P("sub", "c")), "unlink sub/c")
	if st := lstat(t, m.P("b")); st.Nlink != 1 {
		t.Errorf("after unlinking a and c: b nlink %d, want 1", st.Nlink)
	}
	assertContent(t, m.P("b"), data)

	// Errors.
	wantErrno(t, os.Link(m.P("sub"), m.P("dirlink")), "link a directory", syscall.EPERM)
	writeFile(t, m.P("other"), nil, 0o644)
	wantErrno(t, os.Link(m.P("b"), m.P("other")), "link onto an existing name", syscall.EEXIST)
	wantErrno(t, os.Link(m.P("missing"), m.P("new")), "link a missing file", syscall.ENOENT)

	// Rename onto another link of the same inode is a no-op (POSIX).
	must(t, os.Link(m.P("b"), m.P("b2")), "link b b2")
	must(t, os.Rename(m.P("b"), m.P("b2")), "rename b onto its own hard link")
	if _, err := os.Stat(m.P("b")); err != nil {
		t.Errorf("rename onto a hard link of the same inode must leave both names: b: %v", err)
	}
	m = m.Restart(t)
	if st := lstat(t, m.P("b")); st.Nlink != 2 {
		t.Errorf("after remount: b nlink %d, want 2", st.Nlink)
	}
	if lstat(t, m.P("b")).Ino != lstat(t, m.P("b2")).Ino {
		t.Errorf("after remount: b and b2 are different inodes")
	}
	assertContent(t, m.P("b2"), data)
}

// TestAttributes: chmod, chown, utimens with nanoseconds, and what writes do to times.
func TestAttributes(t *testing.T) {
	m := StartMount(t, newConfig(t))
	p := m.P("f")
	writeFile(t, p, []byte("attrs"), 0o644)
	must(t, os.Mkdir(m.P("d"), 0o755), "mkdir")
	must(t, os.Symlink("f", m.P("l")), "symlink")

	for _, mode := range []uint32{0o600, 0o755, 0o4755, 0o2711, 0o1777, 0o000, 0o644} {
		must(t, unix.Chmod(p, mode), fmt.Sprintf("chmod %o", mode))
		if st := lstat(t, p); st.Mode&0o7777 != mode || st.Mode&unix.S_IFMT != unix.S_IFREG {
			t.Errorf("chmod %o: stat mode %o", mode, st.Mode)
		}
	}
	must(t, unix.Chmod(m.P("d"), 0o1750), "chmod dir")
	if st := lstat(t, m.P("d")); st.Mode&0o7777 != 0o1750 {
		t.Errorf("chmod dir 1750: mode %o", st.Mode&0o7777)
	}

	must(t, os.Chown(p, 1234, 5678), "chown")
	if st := lstat(t, p); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("chown 1234:5678: stat %d:%d", st.Uid, st.Gid)
	}
	must(t, os.Chown(p, -1, 42), "chgrp")
	if st := lstat(t, p); st.Uid != 1234 || st.Gid != 42 {
		t.Errorf("chown -1:42: stat %d:%d, want 1234:42", st.Uid, st.Gid)
	}
	must(t, os.Lchown(m.P("l"), 777, 888), "lchown symlink")
	if st := lstat(t, m.P("l")); st.Uid != 777 || st.Gid != 888 {
		t.Errorf("lchown symlink: %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, p); st.Uid != 1234 {
		t.Errorf("lchown of the symlink changed its target's owner to %d", st.Uid)
	}

	// utimens with nanoseconds, on a file, a dir and (lutimes) a symlink.
	at := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	mt := time.Date(2019, 12, 31, 23, 59, 58, 987654321, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	for _, name := range []string{"f", "d"} {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.P(name), ts, 0), "utimensat "+name)
		st := lstat(t, m.P(name))
		if st.Atim.Nano() != at.UnixNano() || st.Mtim.Nano() != mt.UnixNano() {
			t.Errorf("utimensat %s: atime %v mtime %v, want %v %v", name,
				time.Unix(0, st.Atim.Nano()).UTC(), time.Unix(0, st.Mtim.Nano()).UTC(), at, mt)
		}
	}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.P("l"), ts, unix.AT_SYMLINK_NOFOLLOW), "lutimes")
	if st := lstat(t, m.P("l")); st.Mtim.Nano() != mt.UnixNano() {
		t.Errorf("lutimes: symlink mtime %v, want %v", time.Unix(0, st.Mtim.Nano()).UTC(), mt)
	}
	// UTIME_OMIT leaves one time alone.
	mt2 := time.Date(2020, 1, 1, 0, 0, 0, 1, time.UTC)
	ts2 := []unix.Timespec{{Sec: 0, Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mt2.UnixNano())}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts2, 0), "utimensat UTIME_OMIT")
	if st := lstat(t, p); st.Atim.Nano() != at.UnixNano() || st.Mtim.Nano() != mt2.UnixNano() {
		t.Errorf("UTIME_OMIT atime: atime %v mtime %v, want %v %v", time.Unix(0, st.Atim.Nano()).UTC(), time.Unix(0, st.Mtim.Nano()).UTC(), at, mt2)
	}

	// chmod changes ctime; a write changes mtime and ctime.
	before := lstat(t, p)
	must(t, unix.Chmod(p, 0o644), "chmod")
	afterChmod := lstat(t, p)
	if afterChmod.Ctim.Nano() < before.Ctim.Nano() || afterChmod.Ctim.Nano() <= mt2.UnixNano() {
		t.Errorf("chmod did not advance ctime: %d -> %d", before.Ctim.Nano(), afterChmod.Ctim.Nano())
	}
	if afterChmod.Mtim.Nano() != mt2.UnixNano() {
		t.Errorf("chmod changed mtime: %v", time.Unix(0, afterChmod.Mtim.Nano()).UTC())
	}
	start := time.Now().Add(-2 * time.Second)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err, "open")
	_, err = f.Write([]byte(" more"))
	must(t, err, "write")
	must(t, f.Close(), "close")
	st := lstat(t, p)
	if time.Unix(0, st.Mtim.Nano()).Before(start) {
		t.Errorf("after a write, mtime is %v, want about now", time.Unix(0, st.Mtim.Nano()).UTC())
	}
	// Creating in a directory changes its mtime.
	dBefore := lstat(t, m.P("d")).Mtim.Nano()
	writeFile(t, m.P("d", "child"), nil, 0o644)
	if lstat(t, m.P("d")).Mtim.Nano() == dBefore {
		t.Errorf("creating d/child left d's mtime unchanged at %v", time.Unix(0, dBefore).UTC())
	}

	// Persisted.
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0), "utimensat")
	m = m.Restart(t)
	st = lstat(t, m.P("f"))
	if st.Mode&0o7777 != 0o644 || st.Uid != 1234 || st.Gid != 42 || st.Mtim.Nano() != mt.UnixNano() || st.Atim.Nano() != at.UnixNano() {
		t.Errorf("after remount: mode %o uid %d gid %d atime %d mtime %d; want 644 1234 42 %d %d",
			st.Mode&0o7777, st.Uid, st.Gid, st.Atim.Nano(), st.Mtim.Nano(), at.UnixNano(), mt.UnixNano())
	}
	if st := lstat(t, m.P("d")); st.Mode&0o7777 != 0o1750 {
		t.Errorf("after remount: dir mode %o, want 1750", st.Mode&0o7777)
	}
}

// TestUserXattrs: user.* extended attributes behave as on ext4.
func TestUserXattrs(t *testing.T) {
	m := StartMount(t, newConfig(t))
	p := m.P("f")
	writeFile(t, p, []byte("x"), 0o644)
	must(t, os.Mkdir(m.P("d"), 0o755), "mkdir")

	for _, target := range []string{p, m.P("d")} {
		values := map[string][]byte{
			"user.plain":  []byte("value"),
			"user.binary": {0, 1, 2, 0, 255, 0},
			"user.empty":  {},
			"user.big":    bytes.Repeat([]byte("0123456789abcdef"), 4000), // 64000 bytes
		}
		for k, v := range values {
			must(t, unix.Setxattr(target, k, v, 0), "setxattr "+k)
		}
		for k, v := range values {
			sz, err := unix.Getxattr(target, k, nil)
			if err != nil || sz != len(v) {
				t.Errorf("getxattr %s size query: %d, %v; want %d", k, sz, err, len(v))
			}
			buf := make([]byte, len(v)+10)
			n, err := unix.Getxattr(target, k, buf)
			if err != nil || !bytes.Equal(buf[:n], v) {
				t.Errorf("getxattr %s on %s: %d bytes, %v; want %d bytes", k, target, n, err, len(v))
			}
		}
		_, err := unix.Getxattr(target, "user.plain", make([]byte, 2))
		wantErrno(t, err, "getxattr into a too small buffer", syscall.ERANGE)
		_, err = unix.Getxattr(target, "user.missing", make([]byte, 64))
		wantErrno(t, err, "getxattr of a missing attribute", syscall.ENODATA)
		wantErrno(t, unix.Removexattr(target, "user.missing"), "removexattr of a missing attribute", syscall.ENODATA)
		wantErrno(t, unix.Setxattr(target, "user.plain", []byte("new"), unix.XATTR_CREATE), "XATTR_CREATE on an existing attribute", syscall.EEXIST)
		wantErrno(t, unix.Setxattr(target, "user.missing", []byte("new"), unix.XATTR_REPLACE), "XATTR_REPLACE on a missing attribute", syscall.ENODATA)
		must(t, unix.Setxattr(target, "user.plain", []byte("replaced"), unix.XATTR_REPLACE), "XATTR_REPLACE existing")
		must(t, unix.Setxattr(target, "user.created", []byte("c"), unix.XATTR_CREATE), "XATTR_CREATE new")
		values["user.plain"] = []byte("replaced")
		values["user.created"] = []byte("c")
		buf := make([]byte, 100)
		n, _ := unix.Getxattr(target, "user.plain", buf)
		if string(buf[:n]) != "replaced" {
			t.Errorf("after XATTR_REPLACE: %q", buf[:n])
		}

		assertXattrList(t, target, values)
		sz, err := unix.Listxattr(target, nil)
		if err != nil || sz <= 0 {
			t.Errorf("listxattr size query: %d, %v", sz, err)
		}
		if sz > 1 {
			_, err = unix.Listxattr(target, make([]byte, 1))
			wantErrno(t, err, "listxattr into a too small buffer", syscall.ERANGE)
		}
		must(t, unix.Removexattr(target, "user.binary"), "removexattr")
		delete(values, "user.binary")
		_, err = unix.Getxattr(target, "user.binary", buf)
		wantErrno(t, err, "getxattr after removexattr", syscall.ENODATA)
		assertXattrList(t, target, values)
	}
	// Name too long (XATTR_NAME_MAX 255) and value too large (XATTR_SIZE_MAX 64 KiB) are refused
	// by the kernel before ssefs sees them; the file is unaffected.
	wantErrno(t, unix.Setxattr(p, "user."+strings.Repeat("n", 256), []byte("v"), 0), "setxattr with a 261-byte name", syscall.ERANGE)

	m = m.Restart(t)
	buf := make([]byte, 100)
	n, err := unix.Getxattr(m.P("f"), "user.plain", buf)
	if err != nil || string(buf[:n]) != "replaced" {
		t.Errorf("after remount: user.plain = %q, %v", buf[:n], err)
	}
	n, err = unix.Getxattr(m.P("d"), "user.created", buf)
	if err != nil || string(buf[:n]) != "c" {
		t.Errorf("after remount: dir user.created = %q, %v", buf[:n], err)
	}
	big := make([]byte, 70000)
	n, err = unix.Getxattr(m.P("f"), "user.big", big)
	if err != nil || !bytes.Equal(big[:n], bytes.Repeat([]byte("0123456789abcdef"), 4000)) {
		t.Errorf("after remount: user.big is %d bytes, %v", n, err)
	}
}

// listXattrs returns the attribute names of path.
func listXattrs(t testing.TB, path string) []string {
	t.Helper()
	sz, err := unix.Listxattr(path, nil)
	must(t, err, "listxattr "+path)
	buf := make([]byte, sz+64)
	n, err := unix.Listxattr(path, buf)
	must(t, err, "listxattr "+path)
	var out []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func assertXattrList(t testing.TB, path string, want map[string][]byte) {
	t.Helper()
	var user []string
	for _, n := range listXattrs(t, path) {
		if strings.HasPrefix(n, "user.") {
			user = append(user, n)
		}
	}
	var w []string
	for k := range want {
		w = append(w, k)
	}
	sort.Strings(w)
	if strings.Join(user, ",") != strings.Join(w, ",") {
		t.Errorf("listxattr %s: user.* names %q, want %q", path, user, w)
	}
}

// TestStatfsAndSync: statfs figures, fsync and fdatasync of files and dirs, syncfs.
func TestStatfsAndSync(t *testing.T) {
	m := StartMount(t, newConfig(t))
	var sf unix.Statfs_t
	must(t, unix.Statfs(m.Dir, &sf), "statfs")
	if sf.Blocks == 0 || sf.Bsize <= 0 || sf.Namelen <= 0 {
		t.Errorf("statfs: blocks %d bsize %d namelen %d; want all > 0", sf.Blocks, sf.Bsize, sf.Namelen)
	}
	if sf.Bfree > sf.Blocks || sf.Bavail > sf.Blocks {
		t.Errorf("statfs: bfree %d bavail %d exceed blocks %d", sf.Bfree, sf.Bavail, sf.Blocks)
	}

	r := rng(t)
	data := randBytes(r, 2*ChunkSize+5)
	f, err := os.Create(m.P("synced"))
	must(t, err, "create")
	_, err = f.Write(data[:ChunkSize])
	must(t, err, "write")
	must(t, f.Sync(), "fsync")
	_, err = f.Write(data[ChunkSize:])
	must(t, err, "write")
	must(t, unix.Fdatasync(int(f.Fd())), "fdatasync")
	var st unix.Stat_t
	must(t, unix.Fstat(int(f.Fd()), &st), "fstat")
	if st.Size != int64(len(data)) {
		t.Errorf("size after fdatasync: %d, want %d", st.Size, len(data))
	}
	must(t, f.Close(), "close")
	d, err := os.Open(m.Dir)
	must(t, err, "open root dir")
	check(t, d.Sync(), "fsync a directory")
	check(t, unix.Syncfs(int(d.Fd())), "syncfs")
	d.Close()
	dropPageCache(t, m.P("synced"))
	assertContent(t, m.P("synced"), data)
	m = m.Restart(t)
	assertContent(t, m.P("synced"), data)
}

// TestMmap: shared mappings agree with read/write; msync reaches ssefs.
func TestMmap(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	p := m.P("mapped")
	size := 3*ChunkSize + 4096
	data := randBytes(r, size)
	writeFile(t, p, data, 0o644)

	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err, "open")
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	must(t, err, "mmap MAP_SHARED")
	unmapped := false
	defer func() {
		if !unmapped {
			syscall.Munmap(mem)
		}
	}()
	assertBytes(t, "mapping vs written content", mem, data)

	// Writes through the mapping, across chunk boundaries, show in read(2).
	for _, off := range []int{0, ChunkSize - 3, 2*ChunkSize - 1, size - 10} {
		patch := randBytes(r, 10)
		copy(mem[off:], patch)
		copy(data[off:], patch)
	}
	got := make([]byte, size)
	_, err = f.ReadAt(got, 0)
	check(t, err, "pread")
	assertBytes(t, "pread after writes through the mapping", got, data)

	// pwrite shows in the mapping.
	patch := []byte("WRITTEN-BY-PWRITE")
	_, err = f.WriteAt(patch, ChunkSize+100)
	must(t, err, "pwrite")
	copy(data[ChunkSize+100:], patch)
	assertBytes(t, "mapping after pwrite", mem, data)

	must(t, unix.Msync(mem, unix.MS_SYNC), "msync")
	// Another fd, after the cache is dropped: what ssefs stored.
	dropPageCache(t, p)
	g, err := os.Open(p)
	must(t, err, "open another fd")
	got, err = io.ReadAll(g)
	g.Close()
	check(t, err, "read another fd")
	assertBytes(t, "read via another fd after msync", got, data)

	must(t, syscall.Munmap(mem), "munmap")
	unmapped = true
	must(t, f.Close(), "close")
	m = m.Restart(t)
	assertContent(t, m.P("mapped"), data)
}

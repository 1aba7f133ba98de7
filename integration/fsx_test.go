package integration

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFSX is an fsx-style test: thousands of random operations on one file through the
// mount — pwrite and pread on two descriptors, truncate grow and shrink, shared mmap
// reads and writes, fsync, close and reopen, and a drop of the page cache — each
// checked against a model in memory. It is where the kernel's page cache and ssefs'
// write-back buffers and chunk maps have to agree.
func TestFSX(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	path := m.P("fsx")
	const maxSize = 3*ChunkSize + 12345
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		must(t, err, "open")
		return f
	}
	a, b := open(), open()
	defer func() { a.Close(); b.Close() }()
	var model []byte
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log
		if len(tail) > 12 {
			tail = tail[len(tail)-12:]
		}
		t.Fatalf("%s\nlast operations:\n  %s", fmt.Sprintf(format, args...), bytes.Join(toBytes(tail), []byte("\n  ")))
	}
	verifyAll := func(f *os.File, what string) {
		t.Helper()
		st, err := f.Stat()
		must(t, err, "fstat")
		if st.Size() != int64(len(model)) {
			fail("%s: size %d, model %d", what, st.Size(), len(model))
		}
		got := make([]byte, len(model))
		n, err := f.ReadAt(got, 0)
		if n != len(model) {
			fail("%s: read %d of %d bytes: %v", what, n, len(model), err)
		}
		if i := firstDiff(got, model); i >= 0 {
			fail("%s: byte %d (chunk %d) is %#x, model %#x", what, i, i/ChunkSize, got[i], model[i])
		}
	}
	for step := 0; step < 1500; step++ {
		f := a
		if r.IntN(2) == 0 {
			f = b
		}
		switch op := r.IntN(100); {
		case op < 35: // pwrite, sometimes past the end
			off := r.IntN(maxSize)
			n := 1 + r.IntN(min(maxSize-off, 300_000))
			data := randBytes(r, n)
			log = append(log, fmt.Sprintf("pwrite %d+%d", off, n))
			if _, err := f.WriteAt(data, int64(off)); err != nil {
				fail("pwrite: %v", err)
			}
			if off+n > len(model) {
				model = append(model, make([]byte, off+n-len(model))...)
			}
			copy(model[off:], data)
		case op < 60: // pread
			off := r.IntN(len(model) + 1)
			n := r.IntN(200_000) + 1
			log = append(log, fmt.Sprintf("pread %d+%d", off, n))
			got := make([]byte, n)
			k, _ := f.ReadAt(got, int64(off))
			want := model[off:min(len(model), off+n)]
			if k != len(want) {
				fail("pread %d+%d: got %d bytes, model has %d", off, n, k, len(want))
			}
			if i := firstDiff(got[:k], want); i >= 0 {
				fail("pread %d+%d: byte %d differs: %#x, model %#x", off, n, off+i, got[i], want[i])
			}
		case op < 72: // truncate
			size := r.IntN(maxSize)
			log = append(log, fmt.Sprintf("truncate %d", size))
			must(t, f.Truncate(int64(size)), "ftruncate")
			if size < len(model) {
				model = model[:size]
			} else {
				model = append(model, make([]byte, size-len(model))...)
			}
		case op < 84: // shared mmap: read a range and write another
			if len(model) == 0 {
				continue
			}
			log = append(log, fmt.Sprintf("mmap %d", len(model)))
			mem, err := unix.Mmap(int(f.Fd()), 0, len(model), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				fail("mmap: %v", err)
			}
			if i := firstDiff(mem, model); i >= 0 {
				got := mem[i]
				unix.Munmap(mem)
				fail("mmap read: byte %d differs: %#x, model %#x", i, got, model[i])
			}
			off := r.IntN(len(model))
			n := 1 + r.IntN(min(len(model)-off, 50_000))
			data := randBytes(r, n)
			copy(mem[off:], data)
			copy(model[off:], data)
			log = append(log, fmt.Sprintf("mmap write %d+%d", off, n))
			if r.IntN(2) == 0 {
				must(t, unix.Msync(mem, unix.MS_SYNC), "msync")
			}
			must(t, unix.Munmap(mem), "munmap")
		case op < 90:
			log = append(log, "fsync")
			must(t, f.Sync(), "fsync")
		case op < 95: // close and reopen one descriptor: the release path
			log = append(log, "reopen")
			must(t, f.Close(), "close")
			if f == a {
				a = open()
			} else {
				b = open()
			}
		default: // make the next reads come from ssefs, not the page cache
			log = append(log, "drop page cache")
			must(t, f.Sync(), "fsync")
			must(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED), "fadvise")
		}
		if step%100 == 99 {
			verifyAll(a, fmt.Sprintf("step %d", step))
		}
	}
	verifyAll(b, "end")
	must(t, a.Close(), "close")
	must(t, b.Close(), "close")
	m2 := m.Restart(t)
	f, err := os.Open(m2.P("fsx"))
	must(t, err, "open after restart")
	defer f.Close()
	verifyAll(f, "after remount")
}

func firstDiff(a, b []byte) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

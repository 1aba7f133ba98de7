package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
)

// A read the kernel sized before it heard of a truncate (it asks past the page that holds
// the new end) gets the content from before the truncate, until the content next changes;
// every other read, and every read after that change, sees the file as it is. Issue #6: a
// short answer to such a read makes FUSE show zeros nobody wrote.
func TestReadAtKernelAfterShrink(t *testing.T) {
	const (
		cs   = 16 << 10
		page = 4096
		old  = 3*cs + 5000
	)
	modes := []string{"stored", "buffered", "mixed"}
	sizes := []uint64{0, 100, cs + 100, 2 * cs, 3*cs + 1, 3*cs + page + 1}
	for _, mode := range modes {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%d", mode, size), func(t *testing.T) {
				env := newTestEnv(t, cs, 0)
				ctx := context.Background()
				data := make([]byte, old)
				rand.Read(data)
				_, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
				if err != nil {
					t.Fatal(err)
				}
				write := func(p []byte, off int64) {
					t.Helper()
					if n, err := h.WriteAt(ctx, p, off); err != nil || n != len(p) {
						t.Fatalf("write of %d bytes at %d: %d, %v", len(p), off, n, err)
					}
				}
				flush := func() {
					t.Helper()
					if err := h.Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
				switch mode {
				case "stored":
					write(data, 0)
					flush()
				case "buffered":
					write(data, 0)
				case "mixed": // chunks 0-1 stored, 2-3 buffered, chunk 1 also rewritten in part
					write(data[:2*cs], 0)
					flush()
					write(data[2*cs:], 2*cs)
					write(data[cs+10:cs+20], cs+10)
				}
				if err := h.Truncate(ctx, size); err != nil {
					t.Fatal(err)
				}

				read := func(kernel bool, off int64, n int) ([]byte, error) {
					t.Helper()
					buf := make([]byte, n)
					var k int
					var err error
					if kernel {
						k, err = h.ReadAtKernel(ctx, buf, off, page)
					} else {
						k, err = h.ReadAt(ctx, buf, off)
					}
					if err != nil && !errors.Is(err, io.EOF) {
						t.Fatalf("read of %d at %d: %v", n, off, err)
					}
					if (err == nil) != (k == n) {
						t.Fatalf("read of %d at %d: %d bytes with %v", n, off, k, err)
					}
					return buf[:k], err
				}
				// Every other reader sees the truncated file.
				if got, _ := read(false, 0, old); !bytes.Equal(got, data[:size]) {
					t.Fatalf("ReadAt after the truncate: %d bytes, want the first %d", len(got), size)
				}
				// The kernel's read sized by the old size gets the old content whole, also
				// one starting below the cut; unless the old end is in the page of the new
				// one, where the read cannot be told apart from one sized by the new end.
				if roundUp(old, page) > roundUp(int(size), page) {
					if got, _ := read(true, 0, roundUp(old, page)); !bytes.Equal(got, data) {
						t.Fatalf("kernel read sized before the truncate: %d bytes, want the %d from before it", len(got), old)
					}
					if got, _ := read(true, int64(size), cs); !bytes.Equal(got, data[size:min(size+cs, old)]) {
						t.Fatalf("kernel read at the cut: %d bytes differ from the old content there", len(got))
					}
				} else if got, _ := read(true, 0, roundUp(old, page)); !bytes.Equal(got, data[:size]) {
					t.Fatalf("kernel read ending in the page of the new end: %d bytes, want the %d the file has", len(got), size)
				}
				// One within the page of the new end can be sized by either: the file as it is.
				if lo := int64(size) / page * page; int64(size) > lo {
					hi := lo + page
					if got, _ := read(true, lo, int(hi-lo)); !bytes.Equal(got, data[lo:size]) {
						t.Fatalf("kernel read of the last page [%d,%d): %d bytes, want %d", lo, hi, len(got), int64(size)-lo)
					}
				}

				// Once the content changes, the old content is gone for every reader.
				patch := []byte("new content")
				write(patch, 0)
				want := bytes.Clone(data[:size])
				if len(want) < len(patch) {
					want = append(want, make([]byte, len(patch)-len(want))...)
				}
				copy(want, patch)
				if got, _ := read(true, 0, roundUp(old, page)); !bytes.Equal(got, want) {
					t.Fatalf("kernel read after a write: %d bytes, want the %d the file now has", len(got), len(want))
				}
				if err := h.Release(ctx); err != nil {
					t.Fatal(err)
				}
				if err := env.e.SyncAll(ctx); err != nil {
					t.Fatal(err)
				}
				rep, err := env.e.Fsck(ctx, FsckOptions{VerifyChunks: true})
				if err != nil || rep.Inconsistencies() != 0 || rep.Count(FsckOrphanObject) != 0 {
					t.Fatalf("fsck: %v %v", err, rep.Findings)
				}
			})
		}
	}
}

// What a truncate cut off is kept only while it may be asked for: the last release and a
// sync drop it, and its objects are deleted then, not left behind.
func TestTruncateGhostDroppedAtReleaseAndSync(t *testing.T) {
	const cs = 16 << 10
	for _, end := range []string{"release", "sync"} {
		t.Run(end, func(t *testing.T) {
			env := newTestEnv(t, cs, 0)
			ctx := context.Background()
			data := make([]byte, 4*cs)
			rand.Read(data)
			a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.WriteAt(ctx, data, 0); err != nil {
				t.Fatal(err)
			}
			if err := h.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := h.Truncate(ctx, cs/2); err != nil {
				t.Fatal(err)
			}
			switch end {
			case "release":
				if err := h.Release(ctx); err != nil {
					t.Fatal(err)
				}
				if h, err = env.e.Open(ctx, a.Ino); err != nil {
					t.Fatal(err)
				}
			case "sync":
			}
			if err := env.e.SyncAll(ctx); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(data))
			if n, err := h.ReadAtKernel(ctx, buf, 0, 4096); n != cs/2 || !errors.Is(err, io.EOF) || !bytes.Equal(buf[:n], data[:cs/2]) {
				t.Fatalf("kernel read after the %s: %d bytes, %v; want the %d the file has", end, n, err, cs/2)
			}
			if err := h.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := env.e.SyncAll(ctx); err != nil {
				t.Fatal(err)
			}
			if n := storeObjects(t, env.store); n != 1 {
				t.Fatalf("%d objects in the store, want the 1 of the chunk left", n)
			}
		})
	}
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

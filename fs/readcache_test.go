package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// TestStoredReadsAnyRange reads stored chunks at every kind of offset and length (on
// and off package boundaries, across packages and chunks, the short last package), with
// the package cache and without, and compares with what was written.
func TestStoredReadsAnyRange(t *testing.T) {
	for _, cache := range []int64{-1, 0, darePayload * 3} {
		env := newTestEnv(t, 4*darePayload, 0)
		env.cfg.ReadCache = cache
		env.close()
		env.open()
		ctx := context.Background()
		a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 3*4*darePayload+darePayload+777)
		rand.New(rand.NewSource(1)).Read(want)
		if _, err := h.WriteAt(ctx, want, 0); err != nil {
			t.Fatal(err)
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		h, err = env.e.Open(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewSource(2))
		edges := []int64{0, 1, darePayload - 1, darePayload, darePayload + 1, 4*darePayload - 1, 4 * darePayload, int64(len(want)) - 1}
		for i := 0; i < 3000; i++ {
			var off int64
			if i%2 == 0 {
				off = edges[r.Intn(len(edges))]
			} else {
				off = r.Int63n(int64(len(want)))
			}
			n := []int{1, 4096, darePayload, darePayload + 1, 128 << 10, 5 * darePayload}[r.Intn(6)]
			got := make([]byte, n)
			k, err := h.ReadAt(ctx, got, off)
			wantN := min(int64(n), int64(len(want))-off)
			if int64(k) != wantN || (err != nil && !(errors.Is(err, io.EOF) && int64(k) < int64(n))) {
				t.Fatalf("cache %d: read %d at %d: %d bytes, %v; want %d", cache, n, off, k, err, wantN)
			}
			if !bytes.Equal(got[:k], want[off:off+int64(k)]) {
				t.Fatalf("cache %d: read %d at %d: wrong bytes", cache, n, off)
			}
		}
		h.Release(ctx)
	}
}

// TestStoredReadTamperedPackage: a flipped byte in one package fails exactly the reads
// that touch it, cached neighbours or not, and never returns wrong bytes.
func TestStoredReadTamperedPackage(t *testing.T) {
	env := newTestEnv(t, 4*darePayload, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 4*darePayload)
	rand.New(rand.NewSource(3)).Read(want)
	h.WriteAt(ctx, want, 0)
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var c meta.Chunk
	env.db.View(func(tx *meta.Tx) (err error) { c, err = tx.Chunk(meta.Ino(a.Ino), 0); return err })
	id := objstore.ID(c.Object).String()
	path := filepath.Join(env.dir, "objects", id[:2], id)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[2*darePackage+100] ^= 1 // inside package 2
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err = env.e.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	for _, tc := range []struct {
		off, n int64
		bad    bool
	}{
		{0, 4096, false}, {darePayload + 10, 4096, false}, {2*darePayload + 5, 10, true},
		{0, 4 * darePayload, true}, {3 * darePayload, darePayload, false}, {2*darePayload - 1, 2, true},
	} {
		got := make([]byte, tc.n)
		_, err := h.ReadAt(ctx, got, tc.off)
		if tc.bad {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("read %d at %d: %v, want ErrCorrupt", tc.n, tc.off, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, want[tc.off:tc.off+tc.n]) {
			t.Errorf("read %d at %d: %v or wrong bytes", tc.n, tc.off, err)
		}
	}
}

// The cache reports its growth in steps, so a memory limit can follow it, and once full
// it hands out the evicted entry's buffer: a miss then allocates nothing.
func TestPkgCacheReserveReusesAndReportsGrowth(t *testing.T) {
	var grew []int64
	const packages = 2*growStep + 10
	c := newPkgCache(packages*darePayload, func(b int64) { grew = append(grew, b) })
	bufs := map[*byte]bool{}
	for i := range packages {
		b := c.reserve()
		if len(b) != darePayload {
			t.Fatalf("reserve gave %d bytes", len(b))
		}
		b[0] = byte(i)
		bufs[&b[0]] = true
		c.add(pkgKey{pkg: uint32(i)}, b)
	}
	if want := []int64{growStep * darePayload, 2 * growStep * darePayload}; !slices.Equal(grew, want) {
		t.Fatalf("grew reported %v, want %v", grew, want)
	}
	// Full: the next reserve evicts the least recently used package (0) and reuses it.
	b := c.reserve()
	if !bufs[&b[0]] {
		t.Fatal("a full cache allocated a new buffer")
	}
	if c.copyOut(pkgKey{pkg: 0}, make([]byte, 1), 0) {
		t.Fatal("package 0 is still cached after its buffer was handed out")
	}
	if !c.copyOut(pkgKey{pkg: 1}, make([]byte, 1), 0) {
		t.Fatal("package 1 was evicted instead of package 0")
	}
	if len(grew) != 2 {
		t.Fatalf("a reused buffer was reported as growth: %v", grew)
	}
	if allocs := testing.AllocsPerRun(50, func() { c.add(pkgKey{pkg: 99999}, c.reserve()) }); allocs > 2 {
		t.Fatalf("reserve and add of a full cache: %.0f allocations", allocs)
	}
}

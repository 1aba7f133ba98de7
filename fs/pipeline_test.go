package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/objstore"
)

// flakyStore fails Put with ENOSPC while failing is set. A fake: a real disk cannot be
// made to fail one write and then take the next on cue (integration/diskfull_test.go
// fills a real one).
type flakyStore struct {
	*objstore.Local
	failing atomic.Bool
	puts    atomic.Int64
	// slowSync makes Sync take a while, as fsync on a busy disk does (the tests' tmpfs
	// syncs instantly, which hides races around it); putDelay does the same for Put.
	slowSync bool
	putDelay time.Duration
	// deleting, when set, receives each Delete, which then waits for deleteGate.
	deleting   chan objstore.ID
	deleteGate chan struct{}
	// putting, when set, receives each Put, which then waits for putGate.
	putting chan struct{}
	putGate chan struct{}
}

func (s *flakyStore) Delete(ctx context.Context, id objstore.ID) error {
	if s.deleting != nil {
		s.deleting <- id
		<-s.deleteGate
	}
	return s.Local.Delete(ctx, id)
}

func (s *flakyStore) Sync(ctx context.Context, ids []objstore.ID) error {
	if !s.slowSync {
		return s.Local.Sync(ctx, ids)
	}
	for _, id := range ids {
		time.Sleep(500 * time.Microsecond)
		if err := s.Local.Sync(ctx, []objstore.ID{id}); err != nil {
			return err
		}
	}
	return nil
}

func (s *flakyStore) Put(ctx context.Context, id objstore.ID, data []byte) error {
	s.puts.Add(1)
	if s.putting != nil {
		s.putting <- struct{}{}
		<-s.putGate
	}
	time.Sleep(s.putDelay)
	if s.failing.Load() {
		return syscall.ENOSPC
	}
	return s.Local.Put(ctx, id, data)
}

func withFlakyStore(t *testing.T, env *testEnv) *flakyStore {
	t.Helper()
	if err := env.e.Close(); err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Local: env.store}
	cfg := env.cfg
	cfg.Meta, cfg.Store, cfg.Sealer = env.db, fs, keys.NewSealer(env.master, env.master.Name(), 0)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env.e = e
	return fs
}

// TestSealingFailureKeepsData: a chunk whose store write fails in the background is not
// lost: the error reaches the writer at its next call (as the kernel reports a failed
// writeback), the plaintext stays buffered and readable, and the next flush, once the
// store takes writes again, stores it.
func TestSealingFailureKeepsData(t *testing.T) {
	const cs = 4 * darePayload
	env := newTestEnv(t, cs, 0)
	store := withFlakyStore(t, env)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3*cs)
	rand.New(rand.NewSource(4)).Read(want)
	store.failing.Store(true)
	// Whole chunks go to sealers at once. Their failure fails a later write before it
	// changes anything (the writer retries it here), and every flush while the store
	// fails.
	for off := 0; off < len(want); off += cs {
		if _, err := h.WriteAt(ctx, want[off:off+cs], int64(off)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write at %d: %v, want ENOSPC or success", off, err)
			}
			if _, err := h.WriteAt(ctx, want[off:off+cs], int64(off)); err != nil {
				t.Fatalf("write at %d again, after its error was reported: %v", off, err)
			}
		}
	}
	if err := h.Flush(ctx); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush to a failing store: %v, want ENOSPC", err)
	}
	got := make([]byte, len(want))
	if _, err := h.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("buffered content after a failed store: %v or wrong bytes", err)
	}
	store.failing.Store(false)
	if err := h.Flush(ctx); err != nil {
		t.Fatalf("flush once the store works: %v", err)
	}
	releaseRestartAndCompare(t, env, h, a.Ino, want)
}

// TestRewriteWhileSealing: a chunk written again while its earlier version is being
// sealed ends up with the later content, stored once committed (the older record must
// not be committed over the newer one).
func TestRewriteWhileSealing(t *testing.T) {
	const cs = 4 * darePayload
	env := newTestEnv(t, cs, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(5))
	want := make([]byte, 2*cs)
	if _, err := h.WriteAt(ctx, want, 0); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 50; round++ {
		full := make([]byte, cs)
		r.Read(full)
		idx := r.Intn(2)
		if _, err := h.WriteAt(ctx, full, int64(idx*cs)); err != nil { // whole chunk: sealed at once
			t.Fatal(err)
		}
		copy(want[idx*cs:], full)
		patch := make([]byte, 100)
		r.Read(patch)
		at := idx*cs + r.Intn(cs-100)
		if _, err := h.WriteAt(ctx, patch, int64(at)); err != nil { // partial: on the sealing buffer
			t.Fatal(err)
		}
		copy(want[at:], patch)
		got := make([]byte, len(want))
		if _, err := h.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: read while sealing: %v or wrong bytes", round, err)
		}
	}
	releaseRestartAndCompare(t, env, h, a.Ino, want)
}

// TestConcurrentFsyncsWithReplacedChunks: fsyncs of files whose chunks are being
// replaced must not trip over each other: one sync's garbage must never be deleted while
// another is still syncing it (they used to run at once and fail with "object does not
// exist", and from then on every sync failed).
func TestConcurrentFsyncsWithReplacedChunks(t *testing.T) {
	const cs = 2 * darePayload
	env := newTestEnv(t, cs, 0)
	withFlakyStore(t, env).slowSync = true
	ctx := context.Background()
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func() {
			_, h, err := env.e.Create(ctx, env.bucket, "f"+string(rune('a'+w)), Owner{Mode: 0o644}, true)
			if err != nil {
				errs <- err
				return
			}
			defer h.Release(ctx)
			buf := make([]byte, cs)
			for i := 0; i < 100; i++ {
				buf[0] = byte(i)
				if _, err := h.WriteAt(ctx, buf, int64(i%2)*cs); err != nil {
					errs <- err
					return
				}
				if err := h.Fsync(ctx); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < 8; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestGrowAfterCrashReadsZeros: chunk data a crash left past a file's committed size
// must not come back when the file grows again (by truncate or by a write past its end):
// that range reads as zeros.
func TestGrowAfterCrashReadsZeros(t *testing.T) {
	const cs = 2 * darePayload
	for _, grow := range []string{"truncate", "write"} {
		env := newTestEnv(t, cs, 0)
		ctx := context.Background()
		a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		head := bytes.Repeat([]byte{1}, 4096)
		if _, err := h.WriteAt(ctx, head, 0); err != nil {
			t.Fatal(err)
		}
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, head, 4096); err != nil { // chunk 0 dirty again
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, bytes.Repeat([]byte{3}, cs), 3*cs); err != nil { // whole chunk 3: sealed
			t.Fatal(err)
		}
		h.of.mu.Lock()
		err = h.of.settle(ctx)
		h.of.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		env.crash()
		env.open()
		h, err = env.e.Open(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Attr().Size; got != 4096 {
			t.Fatalf("size after the crash: %d, want the committed 4096", got)
		}
		switch grow {
		case "truncate":
			err = h.Truncate(ctx, 4*cs)
		case "write":
			_, err = h.WriteAt(ctx, []byte{9}, 4*cs-1)
		}
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 4*cs)
		copy(want, head)
		if grow == "write" {
			want[4*cs-1] = 9
		}
		got := make([]byte, 4*cs)
		if _, err := h.ReadAt(ctx, got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && got[i] == want[i] {
				i++
			}
			t.Fatalf("%s: after growing, byte %d is %d, want %d (stale data from before the crash)", grow, i, got[i], want[i])
		}
		h.Release(ctx)
	}
}

// TestRewriteWhileSealingKeepsOthersBuffered: a file that fits the write-back buffer
// keeps its chunks buffered when one of them is rewritten while being sealed (which
// counts its memory twice for a moment): the engine used to flush, and so reload and
// decrypt, every chunk of the file each time, which made 4 KiB random writes 2x slower.
func TestRewriteWhileSealingKeepsOthersBuffered(t *testing.T) {
	const cs, chunks = 2 * darePayload, 8
	env := newTestEnv(t, cs, cs*chunks)
	store := withFlakyStore(t, env)
	store.putDelay = 20 * time.Millisecond // the rewrite comes while the chunk is sealing
	ctx := context.Background()
	_, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	// Every chunk written but for its last byte: all buffered at full size (the buffer
	// is exactly full), none sealed yet.
	for i := 0; i < chunks; i++ {
		if _, err := h.WriteAt(ctx, bytes.Repeat([]byte{1}, cs-1), int64(i*cs)); err != nil {
			t.Fatal(err)
		}
	}
	before := store.puts.Load()
	for round := 0; round < 20; round++ {
		// Writing the end of chunk 0 in a sequential stream completes it (sealed at once);
		// writing it again at once copies it while it is being sealed.
		end := bytes.Repeat([]byte{byte(round)}, 100)
		if _, err := h.WriteAt(ctx, end, cs-200); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, end, cs-100); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, end, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, end, int64(3*cs+5)); err != nil {
			t.Fatal(err)
		}
	}
	// One chunk object per rewrite of chunk 0, and nothing else stored.
	if n := store.puts.Load() - before; n > 20 {
		t.Fatalf("%d chunk objects stored for 20 rewrites of one chunk: the other chunks were flushed", n)
	} else if n == 0 {
		t.Fatal("chunk 0 was never sealed: the test tests nothing")
	} else {
		t.Logf("%d chunk objects stored for 20 rewrites", n)
	}
}

// TestReadsGoOnWhileObjectsAreDeleted: deleting the objects a truncate freed (at the next
// durable sync) must not hold up reads of other files. The deletion used to run under
// the readers lock, and a 100 GiB truncate stalled every read for 33 s.
func TestReadsGoOnWhileObjectsAreDeleted(t *testing.T) {
	const cs = 2 * darePayload
	env := newTestEnv(t, cs, 0)
	store := withFlakyStore(t, env)
	ctx := context.Background()
	_, big, err := env.e.Create(ctx, env.bucket, "big", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.WriteAt(ctx, make([]byte, 4*cs), 0); err != nil {
		t.Fatal(err)
	}
	other, h, err := env.e.Create(ctx, env.bucket, "other", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{7}, cs)
	h.WriteAt(ctx, want, 0)
	if err := h.Fsync(ctx); err != nil {
		t.Fatal(err)
	}
	h.Release(ctx)
	if err := big.Truncate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	store.deleting, store.deleteGate = make(chan objstore.ID), make(chan struct{})
	synced := make(chan error, 1)
	go func() { synced <- big.Fsync(ctx) }()
	<-store.deleting // the sync is deleting the truncated chunks now
	read := make(chan []byte, 1)
	go func() { read <- readAll(t, env.e, other.Ino) }()
	select {
	case got := <-read:
		if !bytes.Equal(got, want) {
			t.Error("wrong bytes")
		}
	case <-time.After(10 * time.Second): // a deadlock detector, not a speed limit
		t.Error("a read of another file waited for the deletion of a truncated file's objects")
	}
	close(store.deleteGate)
	go func() {
		for range store.deleting {
		}
	}()
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	big.Release(ctx)
	store.deleting = nil
}

// releaseRestartAndCompare closes h, restarts the engine and checks that ino holds want.
func releaseRestartAndCompare(t *testing.T, env *testEnv, h *Handle, ino Ino, want []byte) {
	t.Helper()
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	env.reopen()
	if !bytes.Equal(readAll(t, env.e, ino), want) {
		t.Fatal("content after restart: wrong bytes")
	}
}

// TestSlowStoreDoesNotHoldSealers: a chunk waits for the store in a bound of its own, not
// in its sealer's slot, so a slow store (S3) gets more writes at once than there are
// sealers, and the sealers' cores go on encrypting meanwhile.
func TestSlowStoreDoesNotHoldSealers(t *testing.T) {
	const cs = 2 * darePayload
	env := newTestEnv(t, cs, 64<<20)
	st := withFlakyStore(t, env)
	st.putting, st.putGate = make(chan struct{}, 64), make(chan struct{})
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	sealers := cap(env.e.sealers)
	data := randBytes((sealers + 4) * cs)
	if _, err := h.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- h.Release(ctx) }()
	for i := 0; i < sealers+1; i++ {
		select {
		case <-st.putting:
		case <-time.After(20 * time.Second):
			close(st.putGate)
			t.Fatalf("%d chunk writes at once, with %d sealers: the store holds them", i, sealers)
		}
	}
	close(st.putGate)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, env.e, a.Ino); !bytes.Equal(got, data) {
		t.Fatal("read back other bytes")
	}
}

// A chunk that a sequential stream writes to its end is stored at once, to bound memory;
// one whose last bytes a random writer happens to write stays buffered, as that writer
// is likely to come back to it (storing it would cost a seal and a store now, and a load
// and an open at its next write).
func TestOnlyStreamsStoreFullChunksAtOnce(t *testing.T) {
	const cs = 2 * darePayload
	env := newTestEnv(t, cs, 64*cs)
	ctx := context.Background()
	_, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	want := make([]byte, 9*cs)
	write := func(off, n int) {
		t.Helper()
		p := make([]byte, n)
		rand.Read(p)
		if _, err := h.WriteAt(ctx, p, int64(off)); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], p)
	}
	state := func(idx uint64) string {
		of := h.of
		of.mu.Lock()
		defer of.mu.Unlock()
		_, buffered := of.dirty[idx]
		switch {
		case buffered && of.inflight[idx] == nil:
			return "buffered"
		case !buffered && of.inflight[idx] != nil:
			return "sealing"
		}
		return fmt.Sprintf("buffered %v, sealing %v", buffered, of.inflight[idx] != nil)
	}
	write(cs, cs-100)    // chunk 1 but for its last 100 bytes
	write(3*cs+7, 10)    // elsewhere
	write(2*cs-100, 100) // chunk 1's end, not where the last write ended
	if got := state(1); got != "buffered" {
		t.Errorf("chunk 1, its end written by a random writer: %s, want buffered", got)
	}
	write(5*cs, cs-100)  // chunk 5 in two writes,
	write(6*cs-100, 100) // the second continuing the first
	if got := state(5); got != "sealing" {
		t.Errorf("chunk 5, written to its end by a stream: %s, want sealing", got)
	}
	write(8*cs, cs) // one write of a whole chunk
	if got := state(8); got != "sealing" {
		t.Errorf("chunk 8, written whole: %s, want sealing", got)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, env.e, Ino(h.of.inode.Ino)); !bytes.Equal(got, want) {
		t.Error("content differs from what was written")
	}
}

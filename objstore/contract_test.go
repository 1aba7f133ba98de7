package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

// testContract runs what every Store must do, as fs relies on it, against the stores
// that newStore makes (a fresh, empty one per call). local_test.go tests Local's own
// details (fan-out, temp files, fsync, ENOSPC); this is the part an S3 store shares.
func testContract(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("PutReadOverwriteDelete", func(t *testing.T) { contractPutReadOverwriteDelete(t, newStore(t)) })
	t.Run("EmptyObject", func(t *testing.T) { contractEmptyObject(t, newStore(t)) })
	t.Run("ReadAtOffsets", func(t *testing.T) { contractReadAtOffsets(t, newStore(t)) })
	t.Run("Missing", func(t *testing.T) { contractMissing(t, newStore(t)) })
	t.Run("Walk", func(t *testing.T) { contractWalk(t, newStore(t)) })
	t.Run("ConcurrentPuts", func(t *testing.T) { contractConcurrentPuts(t, newStore(t)) })
	t.Run("ConcurrentOverwriteSameID", func(t *testing.T) { contractConcurrentOverwrite(t, newStore(t)) })
	t.Run("CanceledContext", func(t *testing.T) { contractCanceled(t, newStore(t)) })
	t.Run("Close", func(t *testing.T) { contractClose(t, newStore(t)) })
}

func TestContractLocal(t *testing.T) {
	testContract(t, func(t *testing.T) Store { return newTestLocal(t) })
}

func readWhole(t *testing.T, s Store, id ID, size int) []byte {
	t.Helper()
	p := make([]byte, size+10)
	n, err := s.ReadAt(context.Background(), id, p, 0)
	if err != io.EOF {
		t.Fatalf("ReadAt past end: n=%d err=%v, want io.EOF", n, err)
	}
	return p[:n]
}

func contractPutReadOverwriteDelete(t *testing.T, s Store) {
	ctx := context.Background()
	id := NewID()
	data := []byte("hello, object store")
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx, []ID{id}); err != nil {
		t.Fatal(err)
	}
	if got := readWhole(t, s, id, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("read %q, want %q", got, data)
	}
	data2 := bytes.Repeat([]byte("x"), 5000)
	if err := s.Put(ctx, id, data2); err != nil {
		t.Fatal(err)
	}
	if got := readWhole(t, s, id, len(data2)); !bytes.Equal(got, data2) {
		t.Fatalf("after overwrite read %d bytes, want %d", len(got), len(data2))
	}
	if err := s.Put(ctx, id, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	if got := readWhole(t, s, id, 2); string(got) != "ab" {
		t.Fatalf("after short overwrite read %q", got)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAt(ctx, id, make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("read after delete: %v, want ErrNotExist", err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("delete of missing object: %v", err)
	}
	if err := s.Delete(ctx, NewID()); err != nil {
		t.Fatalf("delete of never-written object: %v", err)
	}
}

func contractEmptyObject(t *testing.T, s Store) {
	ctx := context.Background()
	id := NewID()
	if err := s.Put(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	n, err := s.ReadAt(ctx, id, make([]byte, 4), 0)
	if n != 0 || err != io.EOF {
		t.Fatalf("ReadAt on empty object: %d, %v", n, err)
	}
	n, err = s.ReadAt(ctx, id, nil, 0)
	if n != 0 || err != nil {
		t.Fatalf("zero-length ReadAt: %d, %v", n, err)
	}
}

func contractReadAtOffsets(t *testing.T, s Store) {
	ctx := context.Background()
	id := NewID()
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		off     int64
		n       int
		wantN   int
		wantEOF bool
	}{
		{0, 10, 10, false},
		{500, 100, 100, false},
		{990, 10, 10, false}, // ends exactly at EOF: io.ReaderAt may return nil
		{995, 10, 5, true},
		{999, 1, 1, false},
		{1000, 10, 0, true},
		{5000, 10, 0, true},
		{0, 1000, 1000, false},
		{0, 1001, 1000, true},
	}
	for _, c := range cases {
		p := make([]byte, c.n)
		n, err := s.ReadAt(ctx, id, p, c.off)
		if n != c.wantN {
			t.Errorf("ReadAt(off=%d, len=%d) n=%d, want %d", c.off, c.n, n, c.wantN)
		}
		if c.wantEOF && err != io.EOF {
			t.Errorf("ReadAt(off=%d, len=%d) err=%v, want io.EOF", c.off, c.n, err)
		}
		if !c.wantEOF && err != nil {
			t.Errorf("ReadAt(off=%d, len=%d) err=%v, want nil", c.off, c.n, err)
		}
		if c.off < int64(len(data)) && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
			t.Errorf("ReadAt(off=%d, len=%d) wrong bytes", c.off, c.n)
		}
	}
	if _, err := s.ReadAt(ctx, id, make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
}

func contractMissing(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.ReadAt(ctx, NewID(), make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt missing: %v, want ErrNotExist", err)
	}
	if _, err := s.ReadAt(ctx, NewID(), make([]byte, 1), 1<<20); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt missing, far offset: %v, want ErrNotExist", err)
	}
	if _, err := s.ReadAt(ctx, NewID(), nil, 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("zero-length ReadAt missing: %v, want ErrNotExist", err)
	}
}

func contractWalk(t *testing.T, s Store) {
	ctx := context.Background()
	want := map[ID]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < 300; i += 8 {
				id := NewID()
				if err := s.Put(ctx, id, bytes.Repeat([]byte{byte(i)}, i)); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[id] = int64(i)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := map[ID]int64{}
	err := s.Walk(ctx, func(id ID, size int64) error {
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
		if gs, ok := got[id]; !ok || gs != size {
			t.Errorf("Walk %s: size %d (reported %v), want %d", id, gs, ok, size)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = s.Walk(ctx, func(ID, int64) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Walk with failing fn: err=%v calls=%d", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = s.Walk(cctx, func(ID, int64) error {
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

func contractConcurrentPuts(t *testing.T, s Store) {
	ctx := context.Background()
	const workers, per = 8, 25
	ids := make([][]ID, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := 0; w < workers; w++ {
		ids[w] = make([]ID, per)
		for i := range ids[w] {
			ids[w][i] = NewID()
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i, id := range ids[w] {
				if err := s.Put(ctx, id, []byte(fmt.Sprintf("%d/%d", w, i))); err != nil {
					errs <- err
				}
			}
			if err := s.Sync(ctx, ids[w]); err != nil {
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	if err := s.Walk(ctx, func(ID, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != workers*per {
		t.Fatalf("Walk found %d, want %d", n, workers*per)
	}
	for w := range ids {
		for i, id := range ids[w] {
			want := fmt.Sprintf("%d/%d", w, i)
			p := make([]byte, len(want))
			if _, err := s.ReadAt(ctx, id, p, 0); err != nil || string(p) != want {
				t.Errorf("%s: %q, %v; want %q", id, p, err, want)
			}
		}
	}
}

func contractConcurrentOverwrite(t *testing.T, s Store) {
	ctx := context.Background()
	id := NewID()
	a, b := bytes.Repeat([]byte("a"), 64<<10), bytes.Repeat([]byte("b"), 64<<10)
	// A new object may be read only once its Put returned (see Store.Put): replacing it
	// is what must be atomic.
	if err := s.Put(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // no writer may outlive the test, even when it fails
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(data []byte) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := s.Put(ctx, id, data); err != nil {
					t.Error(err)
				}
			}
		}([][]byte{a, b}[w%2])
	}
	// Readers see one whole version or the other, never a mix.
	reads := 0
	for i := 0; i < 30; i++ {
		p := make([]byte, len(a))
		n, err := s.ReadAt(ctx, id, p, 0)
		if errors.Is(err, ErrNotExist) {
			continue
		}
		if err != nil || n != len(a) {
			t.Fatalf("read: n=%d err=%v", n, err)
		}
		if !bytes.Equal(p, a) && !bytes.Equal(p, b) {
			t.Fatal("torn read during overwrite")
		}
		reads++
	}
	wg.Wait()
	p := make([]byte, len(a))
	if _, err := s.ReadAt(ctx, id, p, 0); err != nil || !bytes.Equal(p, a) && !bytes.Equal(p, b) {
		t.Fatalf("final read: %v", err)
	}
}

func contractCanceled(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := NewID()
	if err := s.Put(ctx, id, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with canceled ctx: %v", err)
	}
	if _, err := s.ReadAt(ctx, id, make([]byte, 1), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAt with canceled ctx: %v", err)
	}
	if _, err := s.ReadAt(context.Background(), id, make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("the Put with a canceled ctx stored something: %v", err)
	}
}

func contractClose(t *testing.T, s Store) {
	ctx := context.Background()
	id := NewID()
	if err := s.Put(ctx, id, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, NewID(), nil); err == nil {
		t.Fatal("Put after Close succeeded")
	}
	if _, err := s.ReadAt(ctx, id, make([]byte, 1), 0); err == nil {
		t.Fatal("ReadAt after Close succeeded")
	}
}

package objstore

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"syscall"
	"testing"
	"time"
)

type countingObserver struct {
	mu   sync.Mutex
	seen map[Op][]error
}

func (c *countingObserver) Request(op Op, start time.Time, err error) {
	if start.IsZero() || start.After(time.Now()) {
		panic("observer given a start time that is not when the call began")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[Op][]error{}
	}
	c.seen[op] = append(c.seen[op], err)
}

// TestContractObserved: an observed store is still a Store in every respect fs relies on.
func TestContractObserved(t *testing.T) {
	testContract(t, func(t *testing.T) Store { return Observe(newTestLocal(t), &countingObserver{}) })
}

// TestObserveReports: each call is reported once, under its operation, with its error;
// the end of an object is no error, a missing object is ErrNotExist.
func TestObserveReports(t *testing.T) {
	ctx := context.Background()
	obs := &countingObserver{}
	s := Observe(newTestLocal(t), obs)
	id := NewID()
	if err := s.Put(ctx, id, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	if n, err := s.ReadAt(ctx, id, p, 0); n != 5 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d, %v; want 5, io.EOF (unchanged by the wrapper)", n, err)
	}
	if _, err := s.ReadAt(ctx, NewID(), p, 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt of a missing object: %v, want ErrNotExist", err)
	}
	if err := s.Sync(ctx, []ID{id}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Walk(ctx, func(ID, int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[Op]int{OpPut: 1, OpRead: 2, OpSync: 1, OpDelete: 1, OpWalk: 1}
	for op, n := range want {
		if got := len(obs.seen[op]); got != n {
			t.Errorf("%v reported %d times, want %d", op, got, n)
		}
	}
	reads := obs.seen[OpRead]
	if len(reads) == 2 && (reads[0] != nil || !errors.Is(reads[1], ErrNotExist)) {
		t.Errorf("reads reported as %v, want [nil, ErrNotExist]", reads)
	}
}

// TestObserveKeepsUsage: the engine's statfs asks the store for its capacity; wrapping
// must not hide it.
func TestObserveKeepsUsage(t *testing.T) {
	l := newTestLocal(t)
	s := Observe(l, &countingObserver{})
	u, ok := s.(interface{ Usage() (Usage, error) })
	if !ok {
		t.Fatal("the observed Local store lost its Usage method")
	}
	got, err := u.Usage()
	want, werr := l.Usage()
	if err != nil || werr != nil || got.TotalBytes != want.TotalBytes {
		t.Errorf("Usage through the wrapper = %+v, %v; want %+v, %v", got, err, want, werr)
	}
	if _, ok := Observe(noUsage{}, &countingObserver{}).(interface{ Usage() (Usage, error) }); ok {
		t.Error("a store without Usage gained one by being observed")
	}
	// The room the local store keeps for the metadata is still asked for through it.
	c, ok := s.(interface{ CheckFree(uint64) error })
	if !ok {
		t.Fatal("the observed Local store lost its CheckFree method")
	}
	l.KeepFree(math.MaxUint64 / 2)
	if err := c.CheckFree(1); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("CheckFree through the wrapper with all the space kept free: %v, want ENOSPC", err)
	}
}

type noUsage struct{ Store }

func TestOpNames(t *testing.T) {
	seen := map[string]bool{}
	for op := Op(0); op < NumOps; op++ {
		if n := op.String(); n == "unknown" || seen[n] {
			t.Errorf("op %d: name %q missing or repeated", op, n)
		}
		seen[op.String()] = true
	}
}

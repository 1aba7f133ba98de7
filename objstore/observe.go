package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Op is a Store operation, as an Observer sees it: a small integer, so that an observer
// can keep its per-operation state in an array.
type Op uint8

// The Store operations an Observer hears of.
const (
	OpPut Op = iota
	OpRead
	OpDelete
	OpSync
	OpWalk
	// NumOps is the number of operations: Op values are 0 to NumOps-1.
	NumOps
)

var opNames = [NumOps]string{OpPut: "put", OpRead: "read", OpDelete: "delete", OpSync: "sync", OpWalk: "walk"}

func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "unknown"
}

// Observer is told of every Store call when it returns, with its error (nil, or one
// wrapping ErrNotExist for a missing object; io.EOF from a read past the end is a
// success and comes as nil). It runs on the caller's goroutine, on the hot path of every
// read and write, so it must be cheap and safe for concurrent use.
type Observer interface {
	Request(op Op, start time.Time, err error)
}

// Observe returns s with every call reported to o. What s can say about its capacity
// (Usage, for statfs) it still says.
func Observe(s Store, o Observer) Store {
	obs := observed{s: s, o: o}
	if l, ok := s.(*Local); ok {
		// The engine asks the local store for room before it keeps content inline.
		return observedLocal{observedUsage{observed: obs, usage: l.Usage}, l}
	}
	if u, ok := s.(interface{ Usage() (Usage, error) }); ok {
		return observedUsage{observed: obs, usage: u.Usage}
	}
	return obs
}

type observedLocal struct {
	observedUsage
	l *Local
}

func (w observedLocal) CheckFree(n uint64) error { return w.l.CheckFree(n) }

type observed struct {
	s Store
	o Observer
}

type observedUsage struct {
	observed
	usage func() (Usage, error)
}

func (u observedUsage) Usage() (Usage, error) { return u.usage() }

func (w observed) Put(ctx context.Context, id ID, data []byte) error {
	start := time.Now()
	err := w.s.Put(ctx, id, data)
	w.o.Request(OpPut, start, err)
	return err
}

func (w observed) ReadAt(ctx context.Context, id ID, p []byte, off int64) (int, error) {
	start := time.Now()
	n, err := w.s.ReadAt(ctx, id, p, off)
	reported := err
	if errors.Is(err, io.EOF) {
		reported = nil // the end of the object: what a ReaderAt says there
	}
	w.o.Request(OpRead, start, reported)
	return n, err
}

func (w observed) Delete(ctx context.Context, id ID) error {
	start := time.Now()
	err := w.s.Delete(ctx, id)
	w.o.Request(OpDelete, start, err)
	return err
}

func (w observed) Sync(ctx context.Context, ids []ID) error {
	start := time.Now()
	err := w.s.Sync(ctx, ids)
	w.o.Request(OpSync, start, err)
	return err
}

func (w observed) Walk(ctx context.Context, fn func(id ID, size int64) error) error {
	start := time.Now()
	err := w.s.Walk(ctx, fn)
	w.o.Request(OpWalk, start, err)
	return err
}

func (w observed) Close() error { return w.s.Close() }

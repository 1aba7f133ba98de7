package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The cache holds both kinds of entry in one map: a DEK to seal new files with (per
// key and bucket) and DEKs already unsealed (per key, bucket, user context and sealed
// DEK). Data keys bound to a user context are per object and never seal entries.
type cacheKey struct {
	unseal bool
	name   string
	bucket string
	sum    [32]byte // sha256 of the sealed DEK; zero for seal entries
	ctxSum [32]byte // sha256 of the canonical user context; zero for none
}

type cacheEntry struct {
	dek  [32]byte
	ct   []byte // the sealed DEK; seal entries only
	born time.Time
}

// flight is one KMS call that concurrent misses for the same key share.
type flight struct {
	done chan struct{}
	refs int // guarded by Sealer.mu; the last to leave zeroes dek
	dek  [32]byte
	ct   []byte
	err  error
}

// maxCacheEntries bounds memory when many distinct sealed DEKs are read within one TTL.
const maxCacheEntries = 1 << 14

// fetchFunc asks the KMS. gen is the cache generation the call started in, for any
// extra entries it caches with putLocked.
type fetchFunc func(ctx context.Context, gen uint64) ([32]byte, []byte, error)

// cached returns the entry for ck, calling fetch on a miss. Concurrent misses for the
// same ck share one fetch. The DEK is returned by value: callers zero their copy, and
// eviction can zero the cached one without racing them.
func (s *Sealer) cached(ctx context.Context, ck cacheKey,
	fetch fetchFunc) ([32]byte, []byte, error) {
	if s.ttl <= 0 {
		s.observeCache(false)
		return fetch(ctx, 0)
	}
	for {
		s.mu.Lock()
		now := s.now()
		s.sweepLocked(now)
		if e, ok := s.entries[ck]; ok {
			if s.freshLocked(e, now) {
				dek, ct := e.dek, e.ct
				s.mu.Unlock()
				s.observeCache(true)
				return dek, ct, nil
			}
			clear(e.dek[:])
			delete(s.entries, ck)
		}
		// A miss, whether this call asks the KMS or waits for another that does.
		if f, ok := s.flights[ck]; ok {
			f.refs++
			s.mu.Unlock()
			s.observeCache(false)
			select {
			case <-f.done:
			case <-ctx.Done():
				s.mu.Lock()
				s.leaveLocked(f)
				s.mu.Unlock()
				return [32]byte{}, nil, fmt.Errorf("keys: waiting for the KMS: %w", ctx.Err())
			}
			s.mu.Lock()
			dek, ct, err := f.dek, f.ct, f.err
			s.leaveLocked(f)
			s.mu.Unlock()
			// The fetch ran under another caller's context; if only that one gave up,
			// try again under ours.
			if err != nil && ctx.Err() == nil &&
				(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				clear(dek[:])
				continue
			}
			return dek, ct, err
		}
		f := &flight{done: make(chan struct{}), refs: 1}
		s.flights[ck] = f
		gen := s.gen
		s.mu.Unlock()
		s.observeCache(false)
		return s.lead(ctx, ck, f, gen, fetch)
	}
}

func (s *Sealer) lead(ctx context.Context, ck cacheKey, f *flight, gen uint64,
	fetch fetchFunc) (dek [32]byte, ct []byte, err error) {
	returned := false
	// Deferred so that a panicking KMS client cannot leave the waiters blocked for ever.
	defer func() {
		if !returned {
			err = errors.New("keys: KMS client panicked")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.flights, ck)
		f.dek, f.ct, f.err = dek, ct, err
		if err == nil {
			s.putLocked(gen, ck, dek, ct)
		}
		close(f.done)
		s.leaveLocked(f)
	}()
	dek, ct, err = fetch(ctx, gen)
	returned = true
	return dek, ct, err
}

func (s *Sealer) leaveLocked(f *flight) {
	f.refs--
	if f.refs == 0 {
		clear(f.dek[:])
	}
}

func (s *Sealer) freshLocked(e *cacheEntry, now time.Time) bool {
	age := now.Sub(e.born)
	return age >= 0 && age < s.ttl
}

// putLocked caches dek unless Forget ran since gen was read: a DEK fetched across a
// Forget must not outlive it.
func (s *Sealer) putLocked(gen uint64, ck cacheKey, dek [32]byte, ct []byte) {
	if gen != s.gen {
		return
	}
	if old, ok := s.entries[ck]; ok {
		clear(old.dek[:])
	} else if len(s.entries) >= maxCacheEntries {
		// Only reached when that many distinct DEKs are in use within one TTL; starting
		// over costs KMS calls, never correctness.
		s.dropAllLocked()
	}
	s.entries[ck] = &cacheEntry{dek: dek, ct: ct, born: s.now()}
}

func (s *Sealer) dropAllLocked() {
	for k, e := range s.entries {
		clear(e.dek[:])
		delete(s.entries, k)
	}
}

// sweepLocked zeroes and drops expired entries. It runs at most once per half TTL so
// that lookups stay O(1) on average; an idle Sealer keeps expired DEKs until the next
// call or Forget.
func (s *Sealer) sweepLocked(now time.Time) {
	if d := now.Sub(s.swept); d >= 0 && d < s.ttl/2 {
		return
	}
	s.swept = now
	for k, e := range s.entries {
		if !s.freshLocked(e, now) {
			clear(e.dek[:])
			delete(s.entries, k)
		}
	}
}

package keys

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type kmsCall struct {
	op  KMSOp
	err error
}

type recordingObserver struct {
	mu           sync.Mutex
	calls        []kmsCall
	hits, misses int
}

func (r *recordingObserver) KMSCall(op KMSOp, start time.Time, err error) {
	if start.IsZero() || start.After(time.Now()) {
		panic("KMSCall given a start time that is not when the call began")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, kmsCall{op, err})
}

func (r *recordingObserver) KeyCache(hit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if hit {
		r.hits++
	} else {
		r.misses++
	}
}

func (r *recordingObserver) count(op KMSOp, failed bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.op == op && (c.err != nil) == failed {
			n++
		}
	}
	return n
}

// TestObserveCountsKMSCallsAndCache: every KMS call the Sealer makes is reported once
// with its outcome, and every cache lookup as a hit or a miss, in step with what the
// KMS really saw.
func TestObserveCountsKMSCallsAndCache(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	s, clock := newTestSealer(kms, time.Minute)
	obs := &recordingObserver{}
	s.Observe(obs)

	fileID, oek := NewFileID(), NewOEK()
	var k SealedKey
	for i := range 5 {
		var err error
		if k, err = s.Seal(ctx, SSES3, "", "a", fileID, oek); err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
	}
	// The DEK generated for sealing is cached for unsealing too: no Decrypt yet.
	if _, err := s.Unseal(ctx, k, fileID); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Minute) // everything expires: the next unseal asks the KMS
	if _, err := s.Unseal(ctx, k, fileID); err != nil {
		t.Fatal(err)
	}
	if g, d := obs.count(KMSGenerateKey, false), obs.count(KMSDecrypt, false); g != 1 || d != 1 ||
		int64(g) != kms.generates.Load() || int64(d) != kms.decrypts.Load() {
		t.Errorf("observer saw %d GenerateKey and %d Decrypt calls; the KMS saw %d and %d; want 1 and 1",
			g, d, kms.generates.Load(), kms.decrypts.Load())
	}
	if obs.hits != 5 || obs.misses != 2 {
		t.Errorf("cache: %d hits and %d misses, want 5 (4 seals, 1 unseal) and 2", obs.hits, obs.misses)
	}

	kms.disabled.Store(true)
	s.Forget()
	if _, err := s.Unseal(ctx, k, fileID); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("unseal with the key disabled: %v", err)
	}
	if n := obs.count(KMSDecrypt, true); n != 1 {
		t.Errorf("observer saw %d failed Decrypt calls, want 1", n)
	}
	obs.mu.Lock()
	last := obs.calls[len(obs.calls)-1]
	obs.mu.Unlock()
	if !errors.Is(last.err, ErrKeyDisabled) {
		t.Errorf("the failed call was reported with %v, want ErrKeyDisabled", last.err)
	}

	// A fork (key rotation) reports to the same observer.
	kms.disabled.Store(false)
	if _, err := s.Fork().Seal(ctx, SSES3, "", "a", fileID, oek); err != nil {
		t.Fatal(err)
	}
	if g := obs.count(KMSGenerateKey, false); g != 2 {
		t.Errorf("after a seal by a fork: %d GenerateKey calls observed, want 2", g)
	}
}

// TestObserveCacheDisabled: with no cache every lookup is a miss and goes to the KMS.
func TestObserveCacheDisabled(t *testing.T) {
	s, _ := newTestSealer(testKMS(t), 0)
	obs := &recordingObserver{}
	s.Observe(obs)
	for range 3 {
		if _, err := s.Seal(context.Background(), SSES3, "", "a", NewFileID(), NewOEK()); err != nil {
			t.Fatal(err)
		}
	}
	if obs.hits != 0 || obs.misses != 3 || obs.count(KMSGenerateKey, false) != 3 {
		t.Errorf("ttl 0: %d hits, %d misses, %d GenerateKey calls; want 0, 3, 3", obs.hits, obs.misses, obs.count(KMSGenerateKey, false))
	}
}

package keys

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// multiKMS serves several static keys by name, to test caching across key names.
type multiKMS map[string]*Static

func (m multiKMS) get(name string) (*Static, error) {
	if s, ok := m[name]; ok {
		return s, nil
	}
	return nil, ErrKeyNotFound
}

func (m multiKMS) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	s, err := m.get(name)
	if err != nil {
		return DEK{}, err
	}
	return s.GenerateKey(ctx, name, kctx)
}

func (m multiKMS) Decrypt(ctx context.Context, name string, ct []byte, kctx Context) ([]byte, error) {
	s, err := m.get(name)
	if err != nil {
		return nil, err
	}
	return s.Decrypt(ctx, name, ct, kctx)
}

// countingKMS counts calls and can be switched to report the key disabled.
type countingKMS struct {
	KMS
	generates, decrypts atomic.Int64
	disabled            atomic.Bool
}

func (c *countingKMS) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	c.generates.Add(1)
	if c.disabled.Load() {
		return DEK{}, ErrKeyDisabled
	}
	return c.KMS.GenerateKey(ctx, name, kctx)
}

func (c *countingKMS) Decrypt(ctx context.Context, name string, ct []byte, kctx Context) ([]byte, error) {
	c.decrypts.Add(1)
	if c.disabled.Load() {
		return nil, ErrKeyDisabled
	}
	return c.KMS.Decrypt(ctx, name, ct, kctx)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestSealer(kms KMS, ttl time.Duration) (*Sealer, *testClock) {
	clock := &testClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := NewSealer(kms, "default-key", ttl)
	s.now = clock.now
	return s, clock
}

func testKMS(t testing.TB) multiKMS {
	return multiKMS{"default-key": mustStatic(t, "default-key"), "other-key": mustStatic(t, "other-key")}
}

func TestSealRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, time.Minute} {
		s, _ := newTestSealer(testKMS(t), ttl)
		for _, tc := range []struct{ typ, name, want string }{
			{SSES3, "", "default-key"},
			{SSEKMS, "other-key", "other-key"},
			{SSEKMS, "default-key", "default-key"},
		} {
			fileID, oek := NewFileID(), NewOEK()
			k, err := s.Seal(ctx, tc.typ, tc.name, "bucket", fileID, oek)
			if err != nil {
				t.Fatal(err)
			}
			if k.SSEType != tc.typ || k.KeyName != tc.want || k.Algorithm != AlgorithmDARE || k.Bucket != "bucket" ||
				len(k.SealedDEK) == 0 || len(k.SealedOEK) != oekSealedSize || k.IV == [32]byte{} || k.ClientKeyMD5 != [16]byte{} {
				t.Fatalf("sealed key %+v", k)
			}
			if bytes.Contains(k.SealedOEK, oek[:]) {
				t.Fatal("sealed OEK contains the OEK")
			}
			// Through the stored form, with a Sealer that has nothing cached.
			b, err := k.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back SealedKey
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			fresh, _ := newTestSealer(s.kms, ttl)
			for _, u := range []*Sealer{s, fresh} {
				got, err := u.Unseal(ctx, back, fileID)
				if err != nil {
					t.Fatalf("ttl %v, %s/%s: %v", ttl, tc.typ, tc.name, err)
				}
				if got != oek {
					t.Fatal("Unseal returned another OEK")
				}
			}
		}
	}
}

func TestSealFreshIV(t *testing.T) {
	s, _ := newTestSealer(testKMS(t), time.Minute)
	fileID, oek := NewFileID(), NewOEK()
	a, err := s.Seal(context.Background(), SSES3, "", "b", fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal(context.Background(), SSES3, "", "b", fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	if a.IV == b.IV || bytes.Equal(a.SealedOEK, b.SealedOEK) {
		t.Fatal("two seals of the same OEK share an IV or a sealed OEK")
	}
	if !bytes.Equal(a.SealedDEK, b.SealedDEK) {
		t.Fatal("two seals within the TTL did not share the cached DEK")
	}
	// The SealedDEK must not alias the cache.
	want := bytes.Clone(a.SealedDEK)
	a.SealedDEK[0] ^= 0xff
	c, err := s.Seal(context.Background(), SSES3, "", "b", fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, c.SealedDEK) {
		t.Fatal("changing a returned SealedDEK changed the cache")
	}
}

func TestSealRejects(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestSealer(testKMS(t), time.Minute)
	if _, err := s.Seal(ctx, SSEC, "", "b", NewFileID(), NewOEK()); err == nil {
		t.Error("Seal as SSE-C succeeded")
	}
	if _, err := s.Seal(ctx, "AES256", "", "b", NewFileID(), NewOEK()); err == nil {
		t.Error("Seal with an unknown SSE type succeeded")
	}
	if _, err := s.Seal(ctx, SSEKMS, "no-such-key", "b", NewFileID(), NewOEK()); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Seal with an unknown key: %v, want ErrKeyNotFound", err)
	}
	noDefault := NewSealer(s.kms, "", time.Minute)
	if _, err := noDefault.Seal(ctx, SSES3, "", "b", NewFileID(), NewOEK()); err == nil {
		t.Error("Seal with no key name and no default succeeded")
	}
	if s.DefaultKey() != "default-key" {
		t.Errorf("DefaultKey() = %q", s.DefaultKey())
	}
}

func TestUnsealRefuses(t *testing.T) {
	ctx := context.Background()
	kms := testKMS(t)
	fileID, oek := NewFileID(), NewOEK()
	sealer, _ := newTestSealer(kms, time.Minute)
	k, err := sealer.Seal(ctx, SSEKMS, "", "bucket", fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Unseal(ctx, k, fileID); err != nil {
		t.Fatal(err)
	}

	clone := func(f func(*SealedKey)) SealedKey {
		c := k
		c.SealedDEK = bytes.Clone(k.SealedDEK)
		c.SealedOEK = bytes.Clone(k.SealedOEK)
		f(&c)
		return c
	}
	otherID := fileID
	otherID[15] ^= 1
	cases := []struct {
		desc   string
		k      SealedKey
		fileID [16]byte
		want   error
	}{
		{"copied to another file", k, otherID, ErrDecrypt},
		{"another bucket", clone(func(c *SealedKey) { c.Bucket = "other" }), fileID, ErrDecrypt},
		{"bit flipped in SealedOEK", clone(func(c *SealedKey) { c.SealedOEK[40] ^= 1 }), fileID, ErrDecrypt},
		{"bit flipped in SealedOEK header", clone(func(c *SealedKey) { c.SealedOEK[0] ^= 1 }), fileID, ErrDecrypt},
		{"bit flipped in IV", clone(func(c *SealedKey) { c.IV[7] ^= 0x80 }), fileID, ErrDecrypt},
		{"bit flipped in SealedDEK", clone(func(c *SealedKey) { c.SealedDEK[len(c.SealedDEK)-1] ^= 1 }), fileID, ErrDecrypt},
		{"SealedOEK truncated", clone(func(c *SealedKey) { c.SealedOEK = c.SealedOEK[:63] }), fileID, ErrDecrypt},
		{"SSE type changed", clone(func(c *SealedKey) { c.SSEType = SSES3 }), fileID, ErrDecrypt},
		{"unknown SSE type", clone(func(c *SealedKey) { c.SSEType = "AES256" }), fileID, ErrDecrypt},
		{"algorithm changed", clone(func(c *SealedKey) { c.Algorithm = "DAREv1-HMAC-SHA256" }), fileID, ErrDecrypt},
		{"no sealed DEK", clone(func(c *SealedKey) { c.SealedDEK = nil }), fileID, ErrDecrypt},
		{"another key name", clone(func(c *SealedKey) { c.KeyName = "other-key" }), fileID, ErrDecrypt},
		{"unknown key name", clone(func(c *SealedKey) { c.KeyName = "gone" }), fileID, ErrKeyNotFound},
		{"marked SSE-C", clone(func(c *SealedKey) { c.SSEType = SSEC }), fileID, ErrClientKeyRequired},
	}
	// With the Sealer whose cache holds the DEK (binding must not rest on the KMS call),
	// and with one that must ask the KMS.
	for _, ttl := range []time.Duration{time.Minute, 0} {
		u := sealer
		if ttl == 0 {
			u, _ = newTestSealer(kms, 0)
		}
		for _, tc := range cases {
			got, err := u.Unseal(ctx, tc.k, tc.fileID)
			if !errors.Is(err, tc.want) {
				t.Errorf("ttl %v, %s: %v, want %v", ttl, tc.desc, err, tc.want)
			}
			if got != ([32]byte{}) {
				t.Errorf("ttl %v, %s: returned a non-zero key with the error", ttl, tc.desc)
			}
		}
	}

	// A master key with the same name and other bytes.
	imposter, _ := newTestSealer(multiKMS{"default-key": mustStatic(t, "default-key")}, time.Minute)
	if _, err := imposter.Unseal(ctx, k, fileID); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another master key: %v, want ErrDecrypt", err)
	}
}

// KEK inputs are length-prefixed: moving a byte from one field to the next must change it.
func TestKEKFieldsDoNotCollide(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	var id [16]byte
	a := SealedKey{SSEType: "SSE-S3", Algorithm: "x", Bucket: "yz"}
	b := SealedKey{SSEType: "SSE-S3", Algorithm: "xy", Bucket: "z"}
	c := SealedKey{SSEType: "SSE-S3x", Algorithm: "", Bucket: "yz"}
	ka, kb, kc := kek(secret, &a, id), kek(secret, &b, id), kek(secret, &c, id)
	if ka == kb || ka == kc || kb == kc {
		t.Fatal("distinct KEK inputs give the same KEK")
	}
	if ka != kek(secret, &a, id) {
		t.Fatal("kek is not deterministic")
	}
}

func TestSealCache(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	s, clock := newTestSealer(kms, time.Minute)
	seal := func(key, bucket string) SealedKey {
		t.Helper()
		k, err := s.Seal(ctx, SSEKMS, key, bucket, NewFileID(), NewOEK())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	want := func(n int64) {
		t.Helper()
		if got := kms.generates.Load(); got != n {
			t.Fatalf("%d GenerateKey calls, want %d", got, n)
		}
	}
	first := seal("", "a")
	for range 20 {
		seal("", "a")
		seal("default-key", "a")
	}
	want(1)
	seal("", "b")
	seal("other-key", "a")
	seal("other-key", "b")
	want(4)
	clock.advance(59 * time.Second)
	seal("", "a")
	want(4)
	clock.advance(2 * time.Second)
	again := seal("", "a")
	want(5)
	if bytes.Equal(first.SealedDEK, again.SealedDEK) {
		t.Fatal("an expired DEK was reused")
	}
	// The fresh DEK's entry is new: it lives a full TTL from now.
	clock.advance(59 * time.Second)
	seal("", "a")
	want(5)

	s.Forget()
	seal("", "a")
	want(6)
	if n := kms.decrypts.Load(); n != 0 {
		t.Fatalf("Seal made %d Decrypt calls", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	s, _ := newTestSealer(kms, 0)
	fileID, oek := NewFileID(), NewOEK()
	var k SealedKey
	for range 5 {
		var err error
		if k, err = s.Seal(ctx, SSES3, "", "a", fileID, oek); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := s.Unseal(ctx, k, fileID); err != nil {
			t.Fatal(err)
		}
	}
	if g, d := kms.generates.Load(), kms.decrypts.Load(); g != 5 || d != 5 {
		t.Fatalf("ttl 0: %d GenerateKey and %d Decrypt calls, want 5 and 5", g, d)
	}
	if len(s.entries) != 0 {
		t.Fatalf("ttl 0 cached %d entries", len(s.entries))
	}
}

func TestUnsealCache(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	writer, _ := newTestSealer(kms, time.Hour)
	type file struct {
		id  [16]byte
		oek [32]byte
		k   SealedKey
	}
	var files []file
	for _, bucket := range []string{"a", "a", "a", "b", "b"} {
		f := file{id: NewFileID(), oek: NewOEK()}
		var err error
		if f.k, err = writer.Seal(ctx, SSES3, "", bucket, f.id, f.oek); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// The writer seeded its own unseal cache: reading back costs no KMS call.
	for _, f := range files {
		if got, err := writer.Unseal(ctx, f.k, f.id); err != nil || got != f.oek {
			t.Fatalf("writer Unseal: %v", err)
		}
	}
	if n := kms.decrypts.Load(); n != 0 {
		t.Fatalf("reading back own files made %d Decrypt calls", n)
	}

	reader, clock := newTestSealer(kms, time.Minute)
	readAll := func() {
		t.Helper()
		for _, f := range files {
			if got, err := reader.Unseal(ctx, f.k, f.id); err != nil || got != f.oek {
				t.Fatalf("Unseal: %v", err)
			}
		}
	}
	wantDecrypts := func(n int64) {
		t.Helper()
		if got := kms.decrypts.Load(); got != n {
			t.Fatalf("%d Decrypt calls, want %d", got, n)
		}
	}
	readAll()
	readAll()
	wantDecrypts(2) // one DEK per bucket
	clock.advance(59 * time.Second)
	readAll()
	wantDecrypts(2)
	clock.advance(time.Second)
	readAll()
	wantDecrypts(4)
	reader.Forget()
	readAll()
	wantDecrypts(6)

	// Secure erasure: a disabled key keeps working only until the TTL runs out.
	kms.disabled.Store(true)
	readAll()
	clock.advance(time.Minute)
	if _, err := reader.Unseal(ctx, files[0].k, files[0].id); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("Unseal after the TTL with the key disabled: %v, want ErrKeyDisabled", err)
	}
	kms.disabled.Store(false)
	readAll()
}

func TestSweepZeroesExpired(t *testing.T) {
	s, clock := newTestSealer(testKMS(t), time.Minute)
	if _, err := s.Seal(context.Background(), SSES3, "", "a", NewFileID(), NewOEK()); err != nil {
		t.Fatal(err)
	}
	var held []*cacheEntry
	for _, e := range s.entries {
		held = append(held, e)
	}
	if len(held) != 2 { // the seal entry and the seeded unseal entry
		t.Fatalf("%d cache entries, want 2", len(held))
	}
	clock.advance(2 * time.Minute)
	if _, err := s.Seal(context.Background(), SSES3, "", "other-bucket", NewFileID(), NewOEK()); err != nil {
		t.Fatal(err)
	}
	for _, e := range held {
		if e.dek != ([32]byte{}) {
			t.Fatal("an expired DEK was not zeroed")
		}
	}
	if len(s.entries) != 2 {
		t.Fatalf("%d cache entries after the sweep, want 2", len(s.entries))
	}
	s.Forget()
	if len(s.entries) != 0 {
		t.Fatal("Forget left entries")
	}
}

// gatedKMS blocks GenerateKey until released (or the caller's context ends).
type gatedKMS struct {
	KMS
	calls   atomic.Int64
	release chan struct{}
}

func (g *gatedKMS) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	g.calls.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return DEK{}, ctx.Err()
	}
	return g.KMS.GenerateKey(ctx, name, kctx)
}

// waitForWaiters blocks until n callers share the flight for the seal cache key.
func waitForWaiters(t *testing.T, s *Sealer, ck cacheKey, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		f := s.flights[ck]
		refs := 0
		if f != nil {
			refs = f.refs
		}
		s.mu.Unlock()
		if refs == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers on the flight, want %d", refs, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSealSingleFlight(t *testing.T) {
	kms := &gatedKMS{KMS: testKMS(t), release: make(chan struct{})}
	s, _ := newTestSealer(kms, time.Minute)
	const n = 32
	results := make([]SealedKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.Seal(context.Background(), SSES3, "", "a", NewFileID(), NewOEK())
		})
	}
	waitForWaiters(t, s, cacheKey{name: "default-key", bucket: "a"}, n)
	close(kms.release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(results[i].SealedDEK, results[0].SealedDEK) {
			t.Fatal("concurrent seals got different DEKs")
		}
	}
	if c := kms.calls.Load(); c != 1 {
		t.Fatalf("%d concurrent misses made %d GenerateKey calls, want 1", n, c)
	}
}

// A caller that gives up must not fail the others sharing its KMS call.
func TestSingleFlightCancel(t *testing.T) {
	kms := &gatedKMS{KMS: testKMS(t), release: make(chan struct{})}
	s, _ := newTestSealer(kms, time.Minute)
	ck := cacheKey{name: "default-key", bucket: "a"}

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := s.Seal(leaderCtx, SSES3, "", "a", NewFileID(), NewOEK())
		leaderErr <- err
	}()
	waitForWaiters(t, s, ck, 1)

	waiterCtx, cancelWaiter := context.WithCancel(context.Background())
	waiterErr := make(chan error, 1)
	go func() {
		_, err := s.Seal(waiterCtx, SSES3, "", "a", NewFileID(), NewOEK())
		waiterErr <- err
	}()
	patientErr := make(chan error, 1)
	go func() {
		_, err := s.Seal(context.Background(), SSES3, "", "a", NewFileID(), NewOEK())
		patientErr <- err
	}()
	waitForWaiters(t, s, ck, 3)

	cancelWaiter()
	if err := <-waiterErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled leader: %v", err)
	}
	// The patient caller retries under its own context and leads the next call.
	waitForWaiters(t, s, ck, 1)
	close(kms.release)
	if err := <-patientErr; err != nil {
		t.Fatalf("patient caller: %v", err)
	}
	if c := kms.calls.Load(); c != 2 {
		t.Fatalf("%d GenerateKey calls, want 2", c)
	}
}

// A DEK fetched while Forget runs must not be cached: Forget means "ask the KMS again".
func TestForgetDuringFetch(t *testing.T) {
	kms := &gatedKMS{KMS: testKMS(t), release: make(chan struct{})}
	s, _ := newTestSealer(kms, time.Minute)
	done := make(chan error, 1)
	go func() {
		_, err := s.Seal(context.Background(), SSES3, "", "a", NewFileID(), NewOEK())
		done <- err
	}()
	waitForWaiters(t, s, cacheKey{name: "default-key", bucket: "a"}, 1)
	s.Forget()
	close(kms.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(s.entries); n != 0 {
		t.Fatalf("%d entries cached across Forget", n)
	}
	if _, err := s.Seal(context.Background(), SSES3, "", "a", NewFileID(), NewOEK()); err != nil {
		t.Fatal(err)
	}
	if c := kms.calls.Load(); c != 2 {
		t.Fatalf("%d GenerateKey calls, want 2", c)
	}
}

func TestSealerConcurrent(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	s, clock := newTestSealer(kms, time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				bucket := []string{"a", "b", "c"}[(g+i)%3]
				id, oek := NewFileID(), NewOEK()
				k, err := s.Seal(ctx, SSES3, "", bucket, id, oek)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Unseal(ctx, k, id)
				if err != nil || got != oek {
					t.Errorf("Unseal: %v", err)
					return
				}
				switch {
				case i%50 == 0 && g == 0:
					s.Forget()
				case i%10 == 0:
					clock.advance(7 * time.Second)
				}
			}
		})
	}
	wg.Wait()
}

func TestSSEC(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	s, _ := newTestSealer(kms, time.Minute)
	fileID, oek, clientKey := NewFileID(), NewOEK(), NewOEK()
	k, err := s.SealWithClientKey("bucket", fileID, clientKey, oek)
	if err != nil {
		t.Fatal(err)
	}
	if k.SSEType != SSEC || k.KeyName != "" || len(k.SealedDEK) != 0 || k.ClientKeyMD5 != md5.Sum(clientKey[:]) {
		t.Fatalf("sealed key %+v", k)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, clientKey[:]) || bytes.Contains(b, oek[:]) {
		t.Fatal("stored record contains the client key or the OEK")
	}
	var back SealedKey
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	got, err := s.UnsealWithClientKey(back, fileID, clientKey)
	if err != nil || got != oek {
		t.Fatalf("UnsealWithClientKey: %v", err)
	}
	if g, d := kms.generates.Load(), kms.decrypts.Load(); g+d != 0 {
		t.Fatalf("SSE-C used the KMS (%d, %d calls)", g, d)
	}

	wrongKey := clientKey
	wrongKey[0] ^= 1
	if _, err := s.UnsealWithClientKey(k, fileID, wrongKey); !errors.Is(err, ErrClientKeyMismatch) {
		t.Errorf("wrong client key: %v, want ErrClientKeyMismatch", err)
	}
	otherID := fileID
	otherID[0] ^= 1
	if _, err := s.UnsealWithClientKey(k, otherID, clientKey); !errors.Is(err, ErrDecrypt) {
		t.Errorf("moved to another file: %v, want ErrDecrypt", err)
	}
	moved := k
	moved.Bucket = "other"
	if _, err := s.UnsealWithClientKey(moved, fileID, clientKey); !errors.Is(err, ErrDecrypt) {
		t.Errorf("moved to another bucket: %v, want ErrDecrypt", err)
	}
	flipped := k
	flipped.SealedOEK = bytes.Clone(k.SealedOEK)
	flipped.SealedOEK[50] ^= 1
	if _, err := s.UnsealWithClientKey(flipped, fileID, clientKey); !errors.Is(err, ErrDecrypt) {
		t.Errorf("bit flipped in SealedOEK: %v, want ErrDecrypt", err)
	}
	if _, err := s.Unseal(ctx, k, fileID); !errors.Is(err, ErrClientKeyRequired) {
		t.Errorf("Unseal of an SSE-C key without the client key: %v, want ErrClientKeyRequired", err)
	}
	// A client key must not open a KMS-sealed record, whatever it is.
	kmsSealed, err := s.Seal(ctx, SSES3, "", "bucket", fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnsealWithClientKey(kmsSealed, fileID, clientKey); err == nil {
		t.Error("UnsealWithClientKey opened an SSE-S3 record")
	}
	// Nor may a KMS-sealed record relabelled SSE-C be opened with the client key.
	relabelled := kmsSealed
	relabelled.SSEType, relabelled.ClientKeyMD5 = SSEC, md5.Sum(clientKey[:])
	if _, err := s.UnsealWithClientKey(relabelled, fileID, clientKey); !errors.Is(err, ErrDecrypt) {
		t.Errorf("relabelled record: %v, want ErrDecrypt", err)
	}
}

func TestNewOEKAndFileID(t *testing.T) {
	if NewOEK() == NewOEK() || NewFileID() == NewFileID() {
		t.Fatal("random helpers repeat")
	}
}

func sampleSealedKeys(t testing.TB) []SealedKey {
	s, _ := newTestSealer(testKMS(t), time.Minute)
	a, err := s.Seal(context.Background(), SSEKMS, "other-key", "my-bucket", NewFileID(), NewOEK())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.SealWithClientKey("b", NewFileID(), NewOEK(), NewOEK())
	if err != nil {
		t.Fatal(err)
	}
	x, err := s.SealWithContext(context.Background(), SSEKMS, "other-key", "my-bucket",
		Context{"purpose": "test", "": "empty key", "z": "", "ünï": "cödé"}, NewFileID(), NewOEK())
	if err != nil {
		t.Fatal(err)
	}
	return []SealedKey{a, c, x, {}, {SSEType: "x", Bucket: string(make([]byte, 300))},
		{Context: Context{"k": string(make([]byte, 200))}}}
}

func TestSealedKeyMarshal(t *testing.T) {
	for _, k := range sampleSealedKeys(t) {
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back SealedKey
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		// Unmarshal gives nil for empty byte fields; Marshal does not distinguish.
		norm := func(k SealedKey) SealedKey {
			if len(k.SealedDEK) == 0 {
				k.SealedDEK = nil
			}
			if len(k.SealedOEK) == 0 {
				k.SealedOEK = nil
			}
			return k
		}
		if !reflect.DeepEqual(norm(back), norm(k)) {
			t.Fatalf("round trip: got %+v, want %+v", back, k)
		}
		// Every truncation, and any trailing byte, is refused without touching k.
		for i := range len(b) {
			sentinel := SealedKey{Bucket: "untouched"}
			if err := sentinel.UnmarshalBinary(b[:i]); err == nil {
				t.Fatalf("%d of %d bytes decoded", i, len(b))
			}
			if sentinel.Bucket != "untouched" {
				t.Fatal("a failed UnmarshalBinary modified its receiver")
			}
		}
		if err := back.UnmarshalBinary(append(bytes.Clone(b), 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
		// Unknown versions are refused, and so is a version that claims a context the
		// bytes do not hold (or denies one they do).
		for _, v := range []byte{0, 4, 0xff} {
			bad := bytes.Clone(b)
			bad[0] = v
			if err := back.UnmarshalBinary(bad); err == nil {
				t.Fatalf("version %d accepted", v)
			}
		}
		relabelled := bytes.Clone(b)
		relabelled[0] ^= sealedKeyVersion2 ^ sealedKeyVersion3
		if err := back.UnmarshalBinary(relabelled); err == nil {
			t.Fatalf("version %d record relabelled %d accepted", b[0], relabelled[0])
		}
		if len(k.Context) > 0 {
			if b[0] != sealedKeyVersion3 {
				t.Fatalf("record with a context written as version %d", b[0])
			}
			continue // version 1 had no context
		}
		if b[0] != sealedKeyVersion2 {
			t.Fatalf("record without a context written as version %d", b[0])
		}
		// A version-1 record is the same without SealedAt, and still reads.
		v1 := append([]byte{sealedKeyVersion1}, b[1:len(b)-8]...)
		var old SealedKey
		if err := old.UnmarshalBinary(v1); err != nil {
			t.Fatalf("version 1 record: %v", err)
		}
		want := norm(k)
		want.SealedAt = 0
		if !reflect.DeepEqual(norm(old), want) {
			t.Fatalf("version 1 record: got %+v, want %+v", old, want)
		}
	}
	// The decoded record must not alias the input buffer.
	k := sampleSealedKeys(t)[0]
	b, _ := k.MarshalBinary()
	var back SealedKey
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if !bytes.Equal(back.SealedOEK, k.SealedOEK) || !bytes.Equal(back.SealedDEK, k.SealedDEK) {
		t.Fatal("UnmarshalBinary aliases its input")
	}
	// A padded (non-minimal) length is the same record spelt differently: refused.
	empty, err := (&SealedKey{}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := back.UnmarshalBinary(empty); err != nil {
		t.Fatal(err)
	}
	padded := append([]byte{sealedKeyVersion2, 0x80, 0x00}, empty[2:]...)
	if err := back.UnmarshalBinary(padded); err == nil {
		t.Fatal("non-minimal varint accepted")
	}
	huge := SealedKey{SealedOEK: make([]byte, maxSealedKeyField+1)}
	if _, err := huge.MarshalBinary(); err == nil {
		t.Fatal("oversized field marshalled")
	}
}

func FuzzUnmarshalSealedKey(f *testing.F) {
	for _, k := range sampleSealedKeys(f) {
		b, err := k.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{sealedKeyVersion1})
	f.Add([]byte{sealedKeyVersion1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	// A version-1 record (what earlier releases wrote) and a version-3 one whose context
	// field is cut, empty, or claims more pairs than it holds.
	if b, err := (&SealedKey{SSEType: SSES3}).MarshalBinary(); err == nil {
		f.Add(append([]byte{sealedKeyVersion1}, b[1:len(b)-8]...))
		v3 := append([]byte{sealedKeyVersion3}, b[1:]...)
		f.Add(append(bytes.Clone(v3), 1, 0))
		f.Add(append(bytes.Clone(v3), 3, 5, 1, 'a'))
		f.Add(append(bytes.Clone(v3), 5, 1, 1, 'a', 1, 'b'))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var k SealedKey
		if err := k.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := k.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded record does not marshal: %v", err)
		}
		want := b
		if b[0] == sealedKeyVersion1 {
			// Version 1 is read, never written: it comes back as version 2 with a zero
			// SealedAt.
			want = append(append([]byte{sealedKeyVersion2}, b[1:]...), make([]byte, 8)...)
		}
		if !bytes.Equal(again, want) {
			t.Fatalf("re-marshal differs:\n in  %x\n out %x", b, again)
		}
	})
}

// recordingKMS remembers the context of every call, to check what the Sealer asks for.
type recordingKMS struct {
	KMS
	mu                   sync.Mutex
	generated, decrypted []Context
}

func (r *recordingKMS) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	r.mu.Lock()
	r.generated = append(r.generated, kctx)
	r.mu.Unlock()
	return r.KMS.GenerateKey(ctx, name, kctx)
}

func (r *recordingKMS) Decrypt(ctx context.Context, name string, ct []byte, kctx Context) ([]byte, error) {
	r.mu.Lock()
	r.decrypted = append(r.decrypted, kctx)
	r.mu.Unlock()
	return r.KMS.Decrypt(ctx, name, ct, kctx)
}

// contextBlindKMS ignores the context, as a Vault transit key created without
// derived=true does: the record's own binding must still catch an altered context.
type contextBlindKMS struct{ KMS }

func (c contextBlindKMS) GenerateKey(ctx context.Context, name string, _ Context) (DEK, error) {
	return c.KMS.GenerateKey(ctx, name, nil)
}

func (c contextBlindKMS) Decrypt(ctx context.Context, name string, ct []byte, _ Context) ([]byte, error) {
	return c.KMS.Decrypt(ctx, name, ct, nil)
}

func TestSealWithContext(t *testing.T) {
	ctx := context.Background()
	rec := &recordingKMS{KMS: testKMS(t)}
	kms := &countingKMS{KMS: rec}
	s, _ := newTestSealer(kms, time.Minute)
	user := Context{"purpose": "invoices", "tenant": "42"}
	fileID, oek := NewFileID(), NewOEK()
	k, err := s.SealWithContext(ctx, SSEKMS, "other-key", "bucket", user, fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k.Context, user) || k.KeyName != "other-key" || k.Bucket != "bucket" {
		t.Fatalf("sealed key %+v", k)
	}
	user["tenant"] = "changed after the seal"
	if k.Context["tenant"] != "42" {
		t.Fatal("the record aliases the caller's context map")
	}
	want := Context{"bucket": "bucket", "purpose": "invoices", "tenant": "42"}
	if len(rec.generated) != 1 || !reflect.DeepEqual(rec.generated[0], want) {
		t.Fatalf("GenerateKey contexts %v, want [%v]", rec.generated, want)
	}

	// A context-bound DEK is the object's own: every seal asks the KMS, none fills or
	// takes the shared sealing cache, and a plain seal afterwards still asks for its own.
	k2, err := s.SealWithContext(ctx, SSEKMS, "other-key", "bucket", Context{"purpose": "invoices", "tenant": "42"}, NewFileID(), NewOEK())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k.SealedDEK, k2.SealedDEK) || kms.generates.Load() != 2 {
		t.Fatalf("two context seals shared a DEK (%d GenerateKey calls)", kms.generates.Load())
	}
	if len(s.entries) != 0 {
		t.Fatalf("context seals cached %d entries", len(s.entries))
	}
	plain, err := s.Seal(ctx, SSEKMS, "other-key", "bucket", NewFileID(), NewOEK())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(plain.SealedDEK, k.SealedDEK) || kms.generates.Load() != 3 {
		t.Fatal("a plain seal used a context-bound DEK")
	}
	if got := rec.generated[2]; !reflect.DeepEqual(got, Context{"bucket": "bucket"}) {
		t.Fatalf("plain seal context %v", got)
	}

	// Through the stored form; the KMS gets the same merged context back, and a second
	// read is served from the unseal cache.
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back SealedKey
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Context, k.Context) {
		t.Fatalf("stored context %v, want %v", back.Context, k.Context)
	}
	for range 2 {
		if got, err := s.Unseal(ctx, back, fileID); err != nil || got != oek {
			t.Fatalf("Unseal: %v", err)
		}
	}
	if len(rec.decrypted) != 1 || !reflect.DeepEqual(rec.decrypted[0], want) {
		t.Fatalf("Decrypt contexts %v, want [%v]", rec.decrypted, want)
	}
	// The cached DEK is filed under its context: only the same context finds it.
	ck := cacheKey{unseal: true, name: "other-key", bucket: "bucket", sum: sha256.Sum256(k.SealedDEK)}
	if _, ok := s.entries[ck]; ok {
		t.Fatal("context-bound DEK cached without its context")
	}
	if ck.ctxSum = contextSum(k.Context); ck.ctxSum == ([32]byte{}) {
		t.Fatal("contextSum of a context is zero")
	}
	if _, ok := s.entries[ck]; !ok {
		t.Fatal("context-bound DEK not cached under its context")
	}
}

func TestContextTampered(t *testing.T) {
	ctx := context.Background()
	base := testKMS(t)
	fileID, oek := NewFileID(), NewOEK()
	for _, kms := range []KMS{base, contextBlindKMS{base}} {
		sealer, _ := newTestSealer(kms, time.Minute)
		k, err := sealer.SealWithContext(ctx, SSEKMS, "", "bucket", Context{"a": "1", "b": "2"}, fileID, oek)
		if err != nil {
			t.Fatal(err)
		}
		// Warm the unseal cache: a hit must not stand in for the context check.
		if got, err := sealer.Unseal(ctx, k, fileID); err != nil || got != oek {
			t.Fatalf("%T: Unseal: %v", kms, err)
		}
		with := func(c Context) SealedKey { r := k; r.Context = c; return r }
		cases := []struct {
			desc string
			k    SealedKey
		}{
			{"value changed", with(Context{"a": "1", "b": "3"})},
			{"key renamed", with(Context{"a": "1", "c": "2"})},
			{"pair added", with(Context{"a": "1", "b": "2", "c": "3"})},
			{"pair removed", with(Context{"a": "1"})},
			{"context removed", with(nil)},
			{"bucket pair added", with(Context{"a": "1", "b": "2", "bucket": "bucket"})},
		}
		// A context added to a record sealed without one fails too.
		plain, err := sealer.Seal(ctx, SSEKMS, "", "bucket", fileID, oek)
		if err != nil {
			t.Fatal(err)
		}
		plain.Context = Context{"a": "1"}
		cases = append(cases, struct {
			desc string
			k    SealedKey
		}{"context added", plain})
		fresh, _ := newTestSealer(kms, 0)
		for _, u := range []*Sealer{sealer, fresh} {
			for _, tc := range cases {
				// Through the stored form, as Badger would hand it back.
				b, err := tc.k.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var stored SealedKey
				if err := stored.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				got, err := u.Unseal(ctx, stored, fileID)
				if !errors.Is(err, ErrDecrypt) || got != ([32]byte{}) {
					t.Errorf("%T, %s: %v, want ErrDecrypt", kms, tc.desc, err)
				}
			}
		}
	}
}

// The context bytes in a stored record, altered in place, must not unseal.
func TestContextTamperedBytes(t *testing.T) {
	ctx := context.Background()
	kms := testKMS(t)
	s, _ := newTestSealer(kms, time.Minute)
	fileID, oek := NewFileID(), NewOEK()
	k, err := s.SealWithContext(ctx, SSEKMS, "", "bucket", Context{"purpose": "pay"}, fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(b, []byte("pay"))
	if i < 0 {
		t.Fatal("context value not in the record")
	}
	b[i] = 'd' // "day": same length, still canonical
	var stored SealedKey
	if err := stored.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if stored.Context["purpose"] != "day" {
		t.Fatalf("context %v", stored.Context)
	}
	for _, u := range []*Sealer{s, NewSealer(kms, "default-key", 0)} {
		if _, err := u.Unseal(ctx, stored, fileID); !errors.Is(err, ErrDecrypt) {
			t.Errorf("altered context bytes: %v, want ErrDecrypt", err)
		}
	}
}

func TestSealWithContextRejects(t *testing.T) {
	ctx := context.Background()
	kms := &countingKMS{KMS: testKMS(t)}
	s, _ := newTestSealer(kms, time.Minute)
	for _, tc := range []struct {
		desc string
		typ  string
		c    Context
	}{
		{"SSE-S3 with a context", SSES3, Context{"a": "b"}},
		{"SSE-C with a context", SSEC, Context{"a": "b"}},
		{"reserved key", SSEKMS, Context{"bucket": "other", "a": "b"}},
		{"invalid UTF-8 key", SSEKMS, Context{"\xff": "b"}},
		{"invalid UTF-8 value", SSEKMS, Context{"a": "\xc3"}},
		{"too large", SSEKMS, Context{"a": string(make([]byte, maxSealedKeyField))}},
	} {
		_, err := s.SealWithContext(ctx, tc.typ, "", "b", tc.c, NewFileID(), NewOEK())
		if err == nil {
			t.Errorf("%s: sealed", tc.desc)
		} else if tc.typ != SSEC && !errors.Is(err, ErrInvalidContext) {
			t.Errorf("%s: %v, want ErrInvalidContext", tc.desc, err)
		}
	}
	if n := kms.generates.Load(); n != 0 {
		t.Fatalf("refused seals made %d GenerateKey calls", n)
	}
	if err := ValidateContext(Context{"bucket": "x"}); !errors.Is(err, ErrInvalidContext) || !strings.Contains(err.Error(), `"bucket" is reserved`) {
		t.Fatalf("reserved key: %v", err)
	}
	// An empty context is no context: a version-2 record, the shared cache.
	k, err := s.SealWithContext(ctx, SSEKMS, "", "b", Context{}, NewFileID(), NewOEK())
	if err != nil || k.Context != nil {
		t.Fatalf("empty context: %+v, %v", k.Context, err)
	}
	if b, _ := k.MarshalBinary(); b[0] != sealedKeyVersion2 {
		t.Fatalf("empty context written as version %d", b[0])
	}

	// Records that claim a context on a type that cannot have one.
	fileID, oek, clientKey := NewFileID(), NewOEK(), NewOEK()
	s3, err := s.Seal(ctx, SSES3, "", "b", fileID, oek)
	if err != nil {
		t.Fatal(err)
	}
	s3.Context = Context{"a": "b"}
	if _, err := s.Unseal(ctx, s3, fileID); !errors.Is(err, ErrDecrypt) {
		t.Errorf("SSE-S3 record with a context: %v, want ErrDecrypt", err)
	}
	c, err := s.SealWithClientKey("b", fileID, clientKey, oek)
	if err != nil {
		t.Fatal(err)
	}
	c.Context = Context{"a": "b"}
	if _, err := s.UnsealWithClientKey(c, fileID, clientKey); !errors.Is(err, ErrDecrypt) {
		t.Errorf("SSE-C record with a context: %v, want ErrDecrypt", err)
	}
}

// Version 3's context field must be canonical: the one encoding Marshal writes.
func TestSealedKeyContextCanonical(t *testing.T) {
	prefix, err := (&SealedKey{SSEType: SSEKMS}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	prefix[0] = sealedKeyVersion3
	field := func(body ...byte) []byte {
		return append(append(bytes.Clone(prefix), byte(len(body))), body...)
	}
	good := field(2, 1, 'a', 1, '1', 1, 'b', 0)
	var k SealedKey
	if err := k.UnmarshalBinary(good); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k.Context, Context{"a": "1", "b": ""}) {
		t.Fatalf("context %v", k.Context)
	}
	if again, _ := k.MarshalBinary(); !bytes.Equal(again, good) {
		t.Fatalf("re-marshal differs:\n in  %x\n out %x", good, again)
	}
	for desc, b := range map[string][]byte{
		"no pairs":              field(0),
		"empty field":           field(),
		"keys out of order":     field(2, 1, 'b', 0, 1, 'a', 0),
		"key repeated":          field(2, 1, 'a', 0, 1, 'a', 1, '1'),
		"non-minimal count":     field(0x81, 0x00, 1, 'a', 0),
		"non-minimal length":    field(1, 0x81, 0x00, 'a', 0),
		"count beyond the data": field(3, 1, 'a', 0),
		"pair cut":              field(1, 1, 'a'),
		"trailing in field":     field(1, 1, 'a', 0, 0),
	} {
		if err := k.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: accepted", desc)
		}
	}
}

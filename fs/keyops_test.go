package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ssefs/ssefs/keys"
)

// keyRing is several real static master keys behind one KMS, routed by name, so the
// engine can be tested with more than one external key. Removing a key answers as KES
// does for a deleted key (ErrKeyNotFound); the integration tests do the same against a
// real KES server.
type keyRing struct {
	mu   sync.Mutex
	keys map[string]*keys.Static
	gone map[string]*keys.Static
}

func newKeyRing(t testing.TB, names ...string) *keyRing {
	r := &keyRing{keys: map[string]*keys.Static{}, gone: map[string]*keys.Static{}}
	for _, n := range names {
		k, err := keys.GenerateMasterKey(n)
		if err != nil {
			t.Fatal(err)
		}
		r.keys[n] = k
	}
	return r
}

func (r *keyRing) key(name string) (*keys.Static, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.keys[name]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("key ring: %w: %q", keys.ErrKeyNotFound, name)
}

func (r *keyRing) remove(name string) {
	r.mu.Lock()
	r.gone[name] = r.keys[name]
	delete(r.keys, name)
	r.mu.Unlock()
}
func (r *keyRing) restore(name string) { r.mu.Lock(); r.keys[name] = r.gone[name]; r.mu.Unlock() }

func (r *keyRing) GenerateKey(ctx context.Context, name string, kctx keys.Context) (keys.DEK, error) {
	k, err := r.key(name)
	if err != nil {
		return keys.DEK{}, err
	}
	return k.GenerateKey(ctx, name, kctx)
}

func (r *keyRing) Decrypt(ctx context.Context, name string, ct []byte, kctx keys.Context) ([]byte, error) {
	k, err := r.key(name)
	if err != nil {
		return nil, err
	}
	return k.Decrypt(ctx, name, ct, kctx)
}

// newRingEnv is a testEnv whose KMS is a key ring with "default", "k1" and "k2", and a
// second bucket "other".
func newRingEnv(t *testing.T) (*testEnv, *keyRing, Ino) {
	ring := newKeyRing(t, "default", "k1", "k2")
	env := newTestEnv(t, 4096, 0)
	env.close()
	env.kms = ring
	env.defaultKey = "default"
	env.open()
	a, err := env.e.Mkdir(context.Background(), RootIno, "other", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	return env, ring, a.Ino
}

func writeFile(t testing.TB, e *Engine, dir Ino, name string, data []byte) Ino {
	t.Helper()
	ctx := context.Background()
	a, h, err := e.Create(ctx, dir, name, Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	return a.Ino
}

func keyOf(t *testing.T, e *Engine, ino Ino) EncryptionInfo {
	t.Helper()
	info, err := e.Encryption(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestBucketEncryption(t *testing.T) {
	env, _, _ := newRingEnv(t)
	ctx := context.Background()
	if k, err := env.e.BucketEncryption(ctx, "bucket"); err != nil || k != "" {
		t.Fatalf("new bucket: key %q, %v; want none", k, err)
	}
	if err := env.e.SetBucketEncryption(ctx, "bucket", "no-such-key"); !errors.Is(err, ErrAccess) || !errors.Is(err, keys.ErrKeyNotFound) {
		t.Fatalf("unknown key: got %v, want ErrAccess wrapping ErrKeyNotFound", err)
	}
	if err := env.e.SetBucketEncryption(ctx, "missing", "k1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing bucket: got %v, want ErrNotExist", err)
	}
	before := writeFile(t, env.e, env.bucket, "before", []byte("x"))
	if err := env.e.SetBucketEncryption(ctx, "bucket", "k1"); err != nil {
		t.Fatal(err)
	}
	if k, err := env.e.BucketEncryption(ctx, "bucket"); err != nil || k != "k1" {
		t.Fatalf("after set: key %q, %v; want k1", k, err)
	}
	after := writeFile(t, env.e, env.bucket, "after", []byte("y"))
	if info := keyOf(t, env.e, before); info.KeyName != "default" || info.SSEType != keys.SSES3 {
		t.Fatalf("file from before the setting: %+v", info)
	}
	if info := keyOf(t, env.e, after); info.KeyName != "k1" || info.SSEType != keys.SSEKMS || info.SealedAt.IsZero() {
		t.Fatalf("file from after the setting: %+v", info)
	}
	env.reopen() // the setting is durable
	if k, err := env.e.BucketEncryption(ctx, "bucket"); err != nil || k != "k1" {
		t.Fatalf("after reopen: key %q, %v; want k1", k, err)
	}
	if err := env.e.SetBucketEncryption(ctx, "bucket", ""); err != nil {
		t.Fatal(err)
	}
	cleared := writeFile(t, env.e, env.bucket, "cleared", []byte("z"))
	if info := keyOf(t, env.e, cleared); info.KeyName != "default" {
		t.Fatalf("after clear: %+v", info)
	}
}

func TestRotateKeys(t *testing.T) {
	env, _, other := newRingEnv(t)
	ctx := context.Background()
	if err := env.e.SetBucketEncryption(ctx, "bucket", "k1"); err != nil {
		t.Fatal(err)
	}
	content := map[Ino][]byte{}
	var inK1, inOther []Ino
	for i := range 7 {
		data := bytes.Repeat([]byte{byte(i)}, 5000+i)
		ino := writeFile(t, env.e, env.bucket, fmt.Sprintf("f%d", i), data)
		content[ino], inK1 = data, append(inK1, ino)
		data2 := []byte(fmt.Sprintf("other %d", i))
		ino2 := writeFile(t, env.e, other, fmt.Sprintf("g%d", i), data2)
		content[ino2], inOther = data2, append(inOther, ino2)
	}
	sealedBefore := keyOf(t, env.e, inOther[0]).SealedAt

	var calls []RotateProgress
	p, err := env.e.RotateKeys(ctx, RotateOptions{FromKey: "k1", ToKey: "k2", Progress: func(p RotateProgress) { calls = append(calls, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 7 || p.Done != 7 || p.Failed != 0 || p.Skipped != 0 || len(calls) == 0 || calls[len(calls)-1] != p {
		t.Fatalf("progress %+v (calls %v)", p, calls)
	}
	env.reopen()
	for _, ino := range inK1 {
		if info := keyOf(t, env.e, ino); info.KeyName != "k2" || info.SSEType != keys.SSEKMS {
			t.Fatalf("inode %d after rotation: %+v", ino, info)
		}
	}
	for _, ino := range inOther {
		if info := keyOf(t, env.e, ino); info.KeyName != "default" || !info.SealedAt.Equal(sealedBefore) && ino == inOther[0] {
			t.Fatalf("unselected inode %d was touched: %+v", ino, info)
		}
	}
	for ino, want := range content {
		if got := readAll(t, env.e, ino); !bytes.Equal(got, want) {
			t.Fatalf("inode %d reads differently after rotation", ino)
		}
	}

	// A rotation to new data keys within one bucket leaves the key names alone.
	old := keyOf(t, env.e, inOther[1])
	if p, err := env.e.RotateKeys(ctx, RotateOptions{Bucket: "other"}); err != nil || p.Done != 7 {
		t.Fatalf("bucket rotation: %+v, %v", p, err)
	}
	if now := keyOf(t, env.e, inOther[1]); now.KeyName != "default" || !now.SealedAt.After(old.SealedAt) {
		t.Fatalf("after new-DEK rotation: %+v (before %+v)", now, old)
	}
	for ino, want := range content {
		if got := readAll(t, env.e, ino); !bytes.Equal(got, want) {
			t.Fatalf("inode %d reads differently after the second rotation", ino)
		}
	}
	if _, err := env.e.RotateKeys(ctx, RotateOptions{ToKey: "no-such-key"}); !errors.Is(err, ErrAccess) {
		t.Fatalf("rotation to a missing key: got %v, want ErrAccess", err)
	}
}

func TestRotateKeysResumes(t *testing.T) {
	defer func(n int) { rotateBatch = n }(rotateBatch)
	rotateBatch = 2
	env, _, _ := newRingEnv(t)
	content := map[Ino][]byte{}
	for i := range 9 {
		data := []byte(fmt.Sprintf("file %d", i))
		content[writeFile(t, env.e, env.bucket, fmt.Sprintf("f%d", i), data)] = data
	}
	ctx, cancel := context.WithCancel(context.Background())
	opt := RotateOptions{ToKey: "k2", Progress: func(p RotateProgress) {
		if p.Done >= 4 {
			cancel() // interrupt after the second batch
		}
	}}
	p, err := env.e.RotateKeys(ctx, opt)
	if !errors.Is(err, context.Canceled) || p.Done != 4 {
		t.Fatalf("interrupted run: %+v, %v", p, err)
	}
	env.crash() // the job record must survive a crash, not only a clean close
	env.reopen()
	if _, err := env.e.RotateKeys(context.Background(), RotateOptions{ToKey: "k1"}); !errors.Is(err, ErrRotationPending) {
		t.Fatalf("other options while one is pending: got %v, want ErrRotationPending", err)
	}
	p, err = env.e.RotateKeys(context.Background(), RotateOptions{ToKey: "k2"})
	if err != nil || !p.Resumed || p.Done != 9 || p.Total != 9 {
		t.Fatalf("resumed run: %+v, %v", p, err)
	}
	for ino, want := range content {
		if info := keyOf(t, env.e, ino); info.KeyName != "k2" {
			t.Fatalf("inode %d: %+v", ino, info)
		}
		if got := readAll(t, env.e, ino); !bytes.Equal(got, want) {
			t.Fatalf("inode %d reads differently", ino)
		}
	}
	// Abandoning when nothing is pending is a no-op; a new run starts from scratch.
	if p, err := env.e.RotateKeys(context.Background(), RotateOptions{Abandon: true}); err != nil || p != (RotateProgress{}) {
		t.Fatalf("abandon with nothing pending: %+v, %v", p, err)
	}
}

func TestRotateKeysReportsUnsealableFiles(t *testing.T) {
	env, ring, _ := newRingEnv(t)
	ctx := context.Background()
	good := writeFile(t, env.e, env.bucket, "good", []byte("good"))
	if err := env.e.SetBucketEncryption(ctx, "bucket", "k1"); err != nil {
		t.Fatal(err)
	}
	lost := writeFile(t, env.e, env.bucket, "lost", []byte("lost"))
	ring.remove("k1")
	p, err := env.e.RotateKeys(ctx, RotateOptions{ToKey: "k2"})
	if err == nil || !errors.Is(err, keys.ErrKeyNotFound) || p.Failed != 1 || p.Done != 1 {
		t.Fatalf("got %+v, %v; want one done, one failed with ErrKeyNotFound", p, err)
	}
	if keyOf(t, env.e, good).KeyName != "k2" || keyOf(t, env.e, lost).KeyName != "k1" {
		t.Fatal("the rotatable file was not rotated, or the other one was altered")
	}
	ring.restore("k1")
	if got := readAll(t, env.e, lost); string(got) != "lost" {
		t.Fatalf("after restoring the key: %q", got)
	}
}

// An open file keeps its OEK in memory; deleting its key in the KMS must still stop
// reads and writes (secure erasure), and restoring the key must bring them back.
func TestOpenFileLosesDeletedKey(t *testing.T) {
	defer func(d time.Duration) { keyCheckInterval = d }(keyCheckInterval)
	keyCheckInterval = 0
	env, ring, _ := newRingEnv(t)
	ctx := context.Background()
	if err := env.e.SetBucketEncryption(ctx, "bucket", "k1"); err != nil {
		t.Fatal(err)
	}
	ino := writeFile(t, env.e, env.bucket, "f", []byte("secret"))
	h, err := env.e.Open(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	buf := make([]byte, 6)
	if _, err := h.ReadAt(ctx, buf, 0); err != nil || string(buf) != "secret" {
		t.Fatalf("before: %q, %v", buf, err)
	}
	ring.remove("k1")
	if _, err := h.ReadAt(ctx, buf, 0); !errors.Is(err, ErrAccess) {
		t.Fatalf("read after the key was deleted: got %v, want ErrAccess", err)
	}
	if _, err := h.WriteAt(ctx, []byte("x"), 0); !errors.Is(err, ErrAccess) {
		t.Fatalf("write after the key was deleted: got %v, want ErrAccess", err)
	}
	if _, err := env.e.Open(ctx, ino); !errors.Is(err, ErrAccess) {
		t.Fatalf("second open after the key was deleted: got %v, want ErrAccess", err)
	}
	ring.restore("k1")
	clear(buf)
	if _, err := h.ReadAt(ctx, buf, 0); err != nil || string(buf) != "secret" {
		t.Fatalf("after restoring the key: %q, %v", buf, err)
	}
}

// Rotation re-seals under a new data key or a new external key, and the file's
// encryption context goes with it.
func TestRotateKeysKeepsContext(t *testing.T) {
	env, _, _ := newRingEnv(t)
	ctx := context.Background()
	want := map[string]string{"purpose": "ledger"}
	data := randBytes(10000)
	info := put(t, env.e, "bucket", "ctx", data, PutOptions{SSE: SSE{Type: keys.SSEKMS, KeyName: "k1", Context: maps.Clone(want)}})
	plain := put(t, env.e, "bucket", "plain", data, PutOptions{SSE: SSE{Type: keys.SSEKMS, KeyName: "k1"}})
	before := sealedKeyOf(t, env, info.Ino)

	check := func(stage, key string) {
		t.Helper()
		sk := sealedKeyOf(t, env, info.Ino)
		if sk.KeyName != key || !maps.Equal(sk.Context, want) || sk.SSEType != keys.SSEKMS {
			t.Fatalf("%s: record %s %q context %v", stage, sk.SSEType, sk.KeyName, sk.Context)
		}
		if ei := keyOf(t, env.e, info.Ino); !maps.Equal(ei.KMSContext, want) {
			t.Fatalf("%s: Encryption context %v", stage, ei.KMSContext)
		}
		got, st := get(t, env.e, "bucket", "ctx", GetOptions{})
		if !bytes.Equal(got, data) || !maps.Equal(st.KMSContext, want) {
			t.Fatalf("%s: context %v, content equal %v", stage, st.KMSContext, bytes.Equal(got, data))
		}
		if sk := sealedKeyOf(t, env, plain.Ino); sk.Context != nil || sk.KeyName != key {
			t.Fatalf("%s: plain file now %q with context %v", stage, sk.KeyName, sk.Context)
		}
	}
	// New data keys, same external key.
	if p, err := env.e.RotateKeys(ctx, RotateOptions{Bucket: "bucket"}); err != nil || p.Done != 2 {
		t.Fatalf("rotation: %+v, %v", p, err)
	}
	env.reopen()
	check("new data key", "k1")
	if now := sealedKeyOf(t, env, info.Ino); bytes.Equal(now.SealedDEK, before.SealedDEK) {
		t.Fatal("rotation kept the data key")
	}
	// Another external key.
	if p, err := env.e.RotateKeys(ctx, RotateOptions{FromKey: "k1", ToKey: "k2"}); err != nil || p.Done != 2 {
		t.Fatalf("rotation to k2: %+v, %v", p, err)
	}
	env.reopen()
	check("new key", "k2")
}

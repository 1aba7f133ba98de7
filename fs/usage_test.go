package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/objstore"
)

func TestUsage(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	env.close()
	// Stored bytes are checked against what the object store holds: no inline chunks.
	env.cfg.InlineMax = -1
	other, err := keys.GenerateMasterKey("other-key")
	if err != nil {
		t.Fatal(err)
	}
	env.kms, env.defaultKey = twoKeys{env.master, other}, env.master.Name()
	// Files up to 2000 bytes keep their content in their chunk record.
	env.cfg.InlineMax = 2000
	env.open()
	e, ctx := env.e, context.Background()

	if err := e.CreateBucket(ctx, "second", Owner{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	a := put(t, e, "bucket", "a", randBytes(2*testChunk+50_000), PutOptions{})
	empty := put(t, e, "bucket", "empty", nil, PutOptions{})
	b := put(t, e, "bucket", "dir/b", randBytes(10), PutOptions{SSE: SSE{Type: keys.SSEKMS, KeyName: "other-key"}})
	var clientKey [32]byte
	rand.Read(clientKey[:])
	c := put(t, e, "bucket", "c", randBytes(1000), PutOptions{SSE: SSE{Type: keys.SSEC, ClientKey: &clientKey}})
	// A hard link is the same file; a symlink is no file.
	if _, err := e.Link(ctx, a.Ino, env.bucket, "a-link"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Symlink(ctx, env.bucket, "sym", "a", Owner{Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	// Unlinked inodes: a part of an upload in progress, and a file deleted while open.
	id, err := e.CreateUpload(ctx, "bucket", "big", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.UploadPart(ctx, id, 1, bytes.NewReader(randBytes(5000)), PartOptions{}); err != nil {
		t.Fatal(err)
	}
	open, h, err := e.Create(ctx, env.bucket, "open", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	if _, err := h.WriteAt(ctx, []byte("deleted while open"), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Unlink(ctx, env.bucket, "open"); err != nil {
		t.Fatal(err)
	}
	s := put(t, e, "second", "s", randBytes(5000), PutOptions{})
	// Set after the files are written, so it seals none of them.
	if err := e.SetBucketEncryption(ctx, "bucket", "other-key"); err != nil {
		t.Fatal(err)
	}

	// What each file stores, per its own chunk map (Encryption), and what the object
	// store holds in all: every object belongs to some inode of the two buckets. a, the
	// part and s are in objects; b, c and open inline.
	stored := func(ino Ino) uint64 {
		enc, err := e.Encryption(ctx, ino)
		if err != nil {
			t.Fatal(err)
		}
		return enc.StoredBytes
	}
	var inStore, objects uint64
	if err := env.store.Walk(ctx, func(_ objstore.ID, size int64) error {
		inStore += uint64(size)
		objects++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	secondStored := stored(s.Ino)
	inline := stored(b.Ino) + stored(c.Ino) + stored(open.Ino)
	if stored(empty.Ino) != 0 || inline == 0 {
		t.Fatalf("empty file: %d stored bytes; inline: %d", stored(empty.Ino), inline)
	}

	u, err := e.Usage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Buckets) != 2 || u.Buckets[0].Name != "bucket" || u.Buckets[1].Name != "second" {
		t.Fatalf("buckets %+v", u.Buckets)
	}
	got := u.Buckets[0]
	want := BucketUsage{
		Name: "bucket", DefaultKey: "other-key",
		Files: 4, Dirs: 1, Others: 1,
		LogicalBytes: uint64(a.Size + empty.Size + b.Size + c.Size),
		Chunks:       3 + 0 + 1 + 1 + 1 + 1,
		StoredBytes:  inStore - secondStored, InlineBytes: inline,
		Unlinked: 2, UnlinkedBytes: inStore - secondStored - stored(a.Ino),
		Keys: []KeyUsage{{"other-key", 1}, {"test-key", 4}},
		SSEC: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bucket:\n got %+v\nwant %+v", got, want)
	}
	if got.UnlinkedBytes == 0 || got.StoredBytes+got.InlineBytes <= got.LogicalBytes {
		t.Errorf("implausible: %d+%d stored bytes for %d logical bytes, %d of them unlinked", got.StoredBytes, got.InlineBytes, got.LogicalBytes, got.UnlinkedBytes)
	}
	wantSecond := BucketUsage{Name: "second", Files: 1, LogicalBytes: 5000, Chunks: 1, StoredBytes: secondStored,
		Keys: []KeyUsage{{"test-key", 1}}}
	if !reflect.DeepEqual(u.Buckets[1], wantSecond) {
		t.Errorf("second:\n got %+v\nwant %+v", u.Buckets[1], wantSecond)
	}
	wantTotal := BucketUsage{Files: 5, Dirs: 1, Others: 1, LogicalBytes: want.LogicalBytes + 5000,
		Chunks: objects + 3, StoredBytes: inStore, InlineBytes: inline, Unlinked: 2, UnlinkedBytes: want.UnlinkedBytes,
		Keys: []KeyUsage{{"other-key", 1}, {"test-key", 5}}, SSEC: 1}
	if !reflect.DeepEqual(u.Total, wantTotal) {
		t.Errorf("total:\n got %+v\nwant %+v", u.Total, wantTotal)
	}
	if u.StoreTotal == 0 || u.StoreAvail == 0 || u.StoreAvail > u.StoreTotal {
		t.Errorf("store: %d of %d bytes available", u.StoreAvail, u.StoreTotal)
	}

	one, err := e.Usage(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Buckets) != 1 || !reflect.DeepEqual(one.Buckets[0], wantSecond) || !reflect.DeepEqual(one.Total.Keys, wantSecond.Keys) {
		t.Errorf("only second: %+v", one)
	}
	if _, err := e.Usage(ctx, "nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("usage of a missing bucket: %v, want ErrNotExist", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Usage(cctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("usage with a cancelled context: %v", err)
	}
}

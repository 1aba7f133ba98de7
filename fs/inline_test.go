package fs

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ssefs/ssefs/meta"
)

func chunkRecord(t *testing.T, env *testEnv, ino Ino, idx uint64) meta.Chunk {
	t.Helper()
	var c meta.Chunk
	err := env.db.View(func(tx *meta.Tx) (err error) {
		c, err = tx.Chunk(meta.Ino(ino), idx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A tiny file keeps its sealed content in its chunk record: no object is created, it
// reads back (also after a restart), and once it grows past the limit its content
// moves to an object like any other.
func TestTinyFileIsInline(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	before := countObjects(t, env)
	tiny := randBytes(DefaultInlineMax)
	ino := writeFile(t, env.e, env.bucket, "tiny", tiny)
	if n := countObjects(t, env) - before; n != 0 {
		t.Fatalf("a %d-byte file made %d objects", len(tiny), n)
	}
	c := chunkRecord(t, env, ino, 0)
	if len(c.Inline) != DefaultInlineMax+32 || int(c.StoredLen) != len(c.Inline) || bytes.Contains(c.Inline, tiny[:64]) {
		t.Fatalf("chunk record: %d inline bytes, stored length %d (plaintext in it: %v)", len(c.Inline), c.StoredLen, bytes.Contains(c.Inline, tiny[:64]))
	}
	if got := readAll(t, env.e, ino); !bytes.Equal(got, tiny) {
		t.Fatal("tiny file read back other bytes")
	}
	env.reopen()
	if got := readAll(t, env.e, ino); !bytes.Equal(got, tiny) {
		t.Fatal("tiny file read back other bytes after a restart")
	}

	one := writeFile(t, env.e, env.bucket, "just-over", randBytes(DefaultInlineMax+1))
	if n := countObjects(t, env) - before; n != 1 || chunkRecord(t, env, one, 0).Inline != nil {
		t.Fatalf("a file one byte over the limit: %d objects, inline %v", n, chunkRecord(t, env, one, 0).Inline != nil)
	}

	// Grow the tiny file: its chunk becomes an object; the inline record is replaced.
	h, err := env.e.Open(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	more := randBytes(3000)
	if _, err := h.WriteAt(ctx, more, int64(len(tiny))); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countObjects(t, env) - before; n != 2 || chunkRecord(t, env, ino, 0).Inline != nil {
		t.Fatalf("after growing: %d objects, still inline %v", n, chunkRecord(t, env, ino, 0).Inline != nil)
	}
	if got := readAll(t, env.e, ino); !bytes.Equal(got, append(tiny, more...)) {
		t.Fatal("grown file read back other bytes")
	}
	// Deleting files reclaims their objects and leaves no orphan.
	for _, name := range []string{"tiny", "just-over"} {
		if err := env.e.Unlink(ctx, env.bucket, name); err != nil {
			t.Fatal(err)
		}
	}
	if n := countObjects(t, env) - before; n != 0 {
		t.Fatalf("%d objects left after deleting both files", n)
	}
}

// Inline ciphertext is authenticated as an object's is: a changed byte in the record is
// EIO (ErrCorrupt) for the file and a finding of fsck, never other bytes; fsck finds a
// store of inline files clean.
func TestInlineChunkTamperIsCorrupt(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	data := randBytes(1000)
	ino := writeFile(t, env.e, env.bucket, "tiny", data)
	other := randBytes(2000)
	otherIno := writeFile(t, env.e, env.bucket, "other", other)
	if err := env.e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := env.e.Fsck(ctx, FsckOptions{VerifyChunks: true})
	if err != nil || len(rep.Findings) != 0 || rep.Verified != 2 {
		t.Fatalf("fsck of inline files: verified %d, findings %v, %v", rep.Verified, rep.Findings, err)
	}
	env.reopen()
	err = env.db.Update(func(tx *meta.Tx) error {
		c, err := tx.Chunk(meta.Ino(ino), 0)
		if err != nil {
			return err
		}
		c.Inline = bytes.Clone(c.Inline)
		c.Inline[len(c.Inline)/2] ^= 1
		return tx.PutChunk(meta.Ino(ino), c)
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := env.e.Open(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.ReadAt(ctx, make([]byte, len(data)), 0)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a tampered inline chunk: %v, want ErrCorrupt", err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, env.e, otherIno); !bytes.Equal(got, other) {
		t.Fatal("the other file is no longer readable")
	}
	rep, err = env.e.Fsck(ctx, FsckOptions{VerifyChunks: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != FsckChunkCorrupt || rep.Findings[0].Ino != uint64(ino) || rep.Findings[0].Object != "" {
		t.Fatalf("fsck after tampering: %v", rep.Findings)
	}
}

// Inline content lands in the metadata, on the store's disk: it asks for room as an
// object would, so a full disk is ENOSPC for the tiny file too, never a metadata disk
// filled to the last byte.
func TestInlineChunkRespectsKeptRoom(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "tiny", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, randBytes(100), 0); err != nil {
		t.Fatal(err)
	}
	env.store.KeepFree(math.MaxUint64 / 2)
	if err := h.Flush(ctx); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("flush of a tiny file with no room left: %v, want ErrNoSpace", err)
	}
	env.store.KeepFree(0)
	if err := h.Release(ctx); err != nil {
		t.Fatalf("release once there is room again: %v", err)
	}
	if got := readAll(t, env.e, a.Ino); len(got) != 100 {
		t.Fatalf("read back %d bytes", len(got))
	}
}

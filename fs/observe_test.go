package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
)

// TestCryptoBytesAndWriteBuffer: the counters the metrics read move by exactly what was
// encrypted and decrypted, and the write-buffer figure follows what is buffered. (No
// test in this package runs in parallel, so the process-wide counters are this test's.)
func TestCryptoBytesAndWriteBuffer(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv(t, 0, 0)
	env.cfg.ReadCache = -1 // reads decrypt only what they need: exact counts
	env.reopen()

	_, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*DefaultChunkSize+100)
	rand.Read(data)
	enc0, dec0 := CryptoBytes()
	if _, err := h.WriteAt(ctx, data[:100], 0); err != nil {
		t.Fatal(err)
	}
	if got := env.e.WriteBufferBytes(); got < 100 {
		t.Errorf("with 100 bytes buffered, WriteBufferBytes() = %d", got)
	}
	if _, err := h.WriteAt(ctx, data[100:], 100); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := env.e.WriteBufferBytes(); got != 0 {
		t.Errorf("after the only open file was closed, WriteBufferBytes() = %d, want 0", got)
	}
	enc1, dec1 := CryptoBytes()
	if enc1-enc0 != uint64(len(data)) || dec1 != dec0 {
		t.Errorf("writing %d bytes: encrypted +%d, decrypted +%d; want +%d and +0", len(data), enc1-enc0, dec1-dec0, len(data))
	}

	h, err = env.e.Open(ctx, func() Ino {
		a, err := env.e.Lookup(ctx, env.bucket, "f")
		if err != nil {
			t.Fatal(err)
		}
		return a.Ino
	}())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	// 4 KiB from inside the second DARE package of chunk 1: the whole package is
	// decrypted (its tag covers all of it).
	const off = DefaultChunkSize + darePayload + 1000
	p := make([]byte, 4096)
	if _, err := h.ReadAt(ctx, p, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, data[off:off+len(p)]) {
		t.Fatal("read back other bytes than written")
	}
	enc2, dec2 := CryptoBytes()
	if want := uint64(darePayload); dec2-dec1 != want || enc2 != enc1 {
		t.Errorf("a 4 KiB read 1000 bytes into a package: decrypted +%d, encrypted +%d; want +%d and +0", dec2-dec1, enc2-enc1, want)
	}
}

package fs

import (
	"context"
	"testing"
)

// BenchmarkSequentialWrite measures the engine alone (no FUSE): chunking, encryption,
// object writes and metadata commits for 1 MiB writes.
func BenchmarkSequentialWrite(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	_, h, err := env.e.Create(ctx, env.bucket, "bench", Owner{Mode: 0o644}, true)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.WriteAt(ctx, buf, int64(i)*int64(len(buf))); err != nil {
			b.Fatal(err)
		}
	}
	if err := h.Release(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSequentialRead reads back 128 KiB at a time, as the kernel's readahead does.
func BenchmarkSequentialRead(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	_, h, err := env.e.Create(ctx, env.bucket, "bench", Owner{Mode: 0o644}, true)
	if err != nil {
		b.Fatal(err)
	}
	const size = 64 << 20
	chunk := make([]byte, 1<<20)
	for off := 0; off < size; off += len(chunk) {
		h.WriteAt(ctx, chunk, int64(off))
	}
	h.Flush(ctx)
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.ReadAt(ctx, buf, int64(i*len(buf))%size); err != nil {
			b.Fatal(err)
		}
	}
	h.Release(ctx)
}

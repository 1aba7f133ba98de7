package fs

import (
	"crypto/rand"
	"testing"
)

// Benchmarks of the chunk crypto alone (no store, no metadata): what every flush and
// every read pays per chunk. Run with -benchmem.

// benchChunk returns a key, a random plaintext chunk of n bytes and its ciphertext.
func benchChunk(b *testing.B, n int) (key [32]byte, plain, sealed []byte) {
	b.Helper()
	var oek [32]byte
	rand.Read(oek[:])
	key = chunkKey(&oek, [16]byte{1, 2, 3}, 7, 9)
	plain = make([]byte, n)
	rand.Read(plain)
	sealed, err := sealChunk(&key, plain)
	if err != nil {
		b.Fatal(err)
	}
	return key, plain, sealed
}

// BenchmarkChunkSeal encrypts one whole chunk (the default 1 MiB, and a 4 KiB chunk as a
// small file has), as flushChunks does.
func BenchmarkChunkSeal(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1MiB-default-chunk", DefaultChunkSize}, {"4KiB-small-file", 4 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			key, plain, _ := benchChunk(b, bc.size)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sealChunk(&key, plain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChunkOpenWhole decrypts one whole chunk from its full ciphertext, as a
// read-modify-write of a partly written chunk (openFile.buffer) does.
func BenchmarkChunkOpenWhole(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1MiB-default-chunk", DefaultChunkSize}, {"4KiB-small-file", 4 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			key, plain, sealed := benchChunk(b, bc.size)
			out := make([]byte, len(plain))
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if err := openChunkRange(&key, sealed, 0, out, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChunkOpenRange4KiB decrypts a 4 KiB read in the middle of a 1 MiB chunk from
// only the ciphertext span it needs, as readStored does for a page read.
func BenchmarkChunkOpenRange4KiB(b *testing.B) {
	for _, bc := range []struct {
		name string
		off  int64
	}{
		// Inside package 8: one 64 KiB DARE package is decrypted.
		{"mid-package-1-pkg", 8*darePayload + 8<<10},
		// At a package boundary sio starts one package early: two are decrypted.
		{"at-package-boundary-2-pkgs", 8 * darePayload},
	} {
		b.Run(bc.name, func(b *testing.B) {
			key, _, sealed := benchChunk(b, DefaultChunkSize)
			p := make([]byte, 4<<10)
			start, end := encryptedSpan(bc.off, int64(len(p)))
			end = min(end, int64(len(sealed)))
			window := sealed[start:end]
			b.ReportMetric(float64(len(window)), "cipher-bytes/op")
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if err := openChunkRange(&key, window, start, p, bc.off); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChunkKey derives one chunk key (HMAC-SHA256), done per chunk on every read
// and every flush.
func BenchmarkChunkKey(b *testing.B) {
	var oek [32]byte
	rand.Read(oek[:])
	fileID := [16]byte{1, 2, 3}
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		_ = chunkKey(&oek, fileID, i, i)
	}
}

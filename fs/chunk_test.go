package fs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func sealedTestChunk(t *testing.T, oek *[32]byte, fileID [16]byte, idx, version uint64, plain []byte) []byte {
	t.Helper()
	key := chunkKey(oek, fileID, idx, version)
	ct, err := sealChunk(&key, plain)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func openWhole(oek *[32]byte, fileID [16]byte, idx, version uint64, ct []byte, n int) ([]byte, error) {
	key := chunkKey(oek, fileID, idx, version)
	out := make([]byte, n)
	err := openChunkRange(&key, ct, 0, out, 0)
	return out, err
}

func TestChunkRoundTripAndRanges(t *testing.T) {
	var oek [32]byte
	rand.Read(oek[:])
	fileID := [16]byte{1, 2, 3}
	for _, size := range []int{1, 100, darePayload - 1, darePayload, darePayload + 1, 3*darePayload + 17, 1 << 20} {
		plain := make([]byte, size)
		rand.Read(plain)
		ct := sealedTestChunk(t, &oek, fileID, 7, 9, plain)
		got, err := openWhole(&oek, fileID, 7, 9, ct, size)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: round trip failed: %v", size, err)
		}
		// Every range, decrypted from only the ciphertext span it needs.
		for _, r := range [][2]int{{0, 1}, {size - 1, 1}, {size / 2, size / 3}, {darePayload, 10}, {darePayload - 5, 10}} {
			off, n := r[0], r[1]
			if off < 0 || n <= 0 || off+n > size {
				continue
			}
			start, end := encryptedSpan(int64(off), int64(n))
			end = min(end, int64(len(ct)))
			key := chunkKey(&oek, fileID, 7, 9)
			out := make([]byte, n)
			if err := openChunkRange(&key, ct[start:end], start, out, int64(off)); err != nil {
				t.Fatalf("size %d range %d+%d: %v", size, off, n, err)
			}
			if !bytes.Equal(out, plain[off:off+n]) {
				t.Fatalf("size %d range %d+%d: wrong bytes", size, off, n)
			}
		}
	}
}

func TestChunkRefusesMovedRolledBackAndFlipped(t *testing.T) {
	var oek [32]byte
	rand.Read(oek[:])
	fileID := [16]byte{9}
	plain := bytes.Repeat([]byte("secret chunk "), 10000)
	ct := sealedTestChunk(t, &oek, fileID, 3, 100, plain)

	cases := map[string]func() ([]byte, error){
		"other position": func() ([]byte, error) { return openWhole(&oek, fileID, 4, 100, ct, len(plain)) },
		"older version":  func() ([]byte, error) { return openWhole(&oek, fileID, 3, 99, ct, len(plain)) },
		"other file":     func() ([]byte, error) { return openWhole(&oek, [16]byte{8}, 3, 100, ct, len(plain)) },
		"other key": func() ([]byte, error) {
			var other [32]byte
			rand.Read(other[:])
			return openWhole(&other, fileID, 3, 100, ct, len(plain))
		},
		"flipped bit": func() ([]byte, error) {
			bad := bytes.Clone(ct)
			bad[len(bad)/2] ^= 0x10
			return openWhole(&oek, fileID, 3, 100, bad, len(plain))
		},
		"truncated": func() ([]byte, error) {
			return openWhole(&oek, fileID, 3, 100, ct[:len(ct)-darePackage], len(plain))
		},
	}
	for name, open := range cases {
		got, err := open()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: want ErrCorrupt, got %v", name, err)
		}
		if err == nil && bytes.Equal(got, plain) {
			t.Errorf("%s: returned the plaintext", name)
		}
	}
	// A rollback of a whole chunk: the old version of the same position, read under the
	// current version's key.
	older := sealedTestChunk(t, &oek, fileID, 3, 99, plain)
	if _, err := openWhole(&oek, fileID, 3, 100, older, len(plain)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("rolled-back object: want ErrCorrupt, got %v", err)
	}
}

func TestChunkKeysDiffer(t *testing.T) {
	var oek [32]byte
	seen := map[[32]byte]string{}
	for _, k := range []struct {
		id       [16]byte
		idx, ver uint64
		name     string
	}{{[16]byte{1}, 0, 1, "a"}, {[16]byte{1}, 1, 1, "b"}, {[16]byte{1}, 0, 2, "c"}, {[16]byte{2}, 0, 1, "d"}} {
		key := chunkKey(&oek, k.id, k.idx, k.ver)
		if prev, ok := seen[key]; ok {
			t.Fatalf("chunk keys %s and %s collide", prev, k.name)
		}
		seen[key] = k.name
	}
}

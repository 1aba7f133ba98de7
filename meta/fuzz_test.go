package meta

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Every decoder must reject bad input with an error wrapping ErrCorrupt and never panic,
// and anything it accepts must re-encode to exactly the input (one encoding per value).

func seedValues(f *testing.F) {
	for _, e := range encodings() {
		f.Add(e.enc)
		f.Add(e.enc[:len(e.enc)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{codecV1})
	f.Add([]byte{codecV1, 0x80, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff})
}

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
	}
}

func FuzzDecodeInode(f *testing.F) {
	seedValues(f)
	for _, in := range sampleInodes() {
		f.Add(encodeInode(&in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeInode(99, b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if in.Ino != 99 {
			t.Fatalf("ino %d, want the key's 99", in.Ino)
		}
		if re := encodeInode(&in); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}

func FuzzDecodeChunk(f *testing.F) {
	seedValues(f)
	for _, c := range sampleChunks() {
		f.Add(encodeChunk(&c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeChunk(7, b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if c.Index != 7 {
			t.Fatalf("index %d, want the key's 7", c.Index)
		}
		if re := encodeChunk(&c); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	seedValues(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry("name", b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if re := encodeEntry(&e); !bytes.Equal(re, b) || e.Name != "name" {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}

func FuzzDecodeSmallValues(f *testing.F) {
	seedValues(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeBucketConfig(b); err == nil {
			if re := encodeBucketConfig(&c); !bytes.Equal(re, b) {
				t.Fatalf("bucket config re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if v, err := decodeSuperblock(b); err == nil {
			if re := encodeSuperblock(v); !bytes.Equal(re, b) {
				t.Fatalf("superblock re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if v, err := decodeSequence(b); err == nil {
			if re := encodeSequence(v); !bytes.Equal(re, b) {
				t.Fatalf("sequence re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if p, err := decodeBlob("blob", b); err == nil {
			if re := encodeBlob(p); !bytes.Equal(re, b) {
				t.Fatalf("blob re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if err := decodeOrphan(b); err == nil {
			if !bytes.Equal(b, encodeOrphan()) {
				t.Fatalf("orphan value %x accepted", b)
			}
		} else {
			checkDecodeErr(t, err)
		}
	})
}

func FuzzEntryKey(f *testing.F) {
	f.Add(uint64(1), "a", "b", []byte{pfxEntry, 0, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Add(uint64(256), "aa", "a", []byte{})
	f.Add(uint64(0xffffffffffffffff), "\xff", "", []byte{pfxEntry})
	f.Add(uint64(0x0100), "a\x00", "a", []byte{pfxXattr, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, parent uint64, a, b string, raw []byte) {
		ka, kb := entryKey(Ino(parent), a), entryKey(Ino(parent), b)
		if got, want := bytes.Compare(ka, kb), strings.Compare(a, b); got != want {
			t.Fatalf("order of %q vs %q: %d, want %d", a, b, got, want)
		}
		if !bytes.HasPrefix(ka, entryPrefix(Ino(parent))) {
			t.Fatal("key lacks its directory prefix")
		}
		if a != "" {
			p, n, err := decodeEntryKey(ka)
			if err != nil || p != Ino(parent) || n != a {
				t.Fatalf("round trip (%d, %q): (%d, %q, %v)", parent, a, p, n, err)
			}
		}
		p, n, err := decodeEntryKey(raw)
		checkDecodeErr(t, err)
		if err == nil && !bytes.Equal(entryKey(p, n), raw) {
			t.Fatalf("raw key %x re-encodes to %x", raw, entryKey(p, n))
		}
		// Xattr keys share the layout; check them the same way.
		p, n, err = decodeXattrKey(raw)
		checkDecodeErr(t, err)
		if err == nil && !bytes.Equal(xattrKey(p, n), raw) {
			t.Fatalf("raw xattr key %x re-encodes to %x", raw, xattrKey(p, n))
		}
	})
}

func FuzzChunkKey(f *testing.F) {
	f.Add(uint64(1), uint64(255), uint64(256), []byte{})
	f.Add(uint64(2), uint64(65535), uint64(65536), chunkKey(3, 4))
	f.Add(uint64(0), uint64(1<<63), uint64(1), inodeKey(3))
	f.Fuzz(func(t *testing.T, ino, a, b uint64, raw []byte) {
		if got, want := bytes.Compare(chunkKey(Ino(ino), a), chunkKey(Ino(ino), b)), cmpU64(a, b); got != want {
			t.Fatalf("order of %d vs %d: %d, want %d", a, b, got, want)
		}
		gi, gx, err := decodeChunkKey(chunkKey(Ino(ino), a))
		if err != nil || gi != Ino(ino) || gx != a {
			t.Fatalf("round trip (%d, %d): (%d, %d, %v)", ino, a, gi, gx, err)
		}
		gi, gx, err = decodeChunkKey(raw)
		checkDecodeErr(t, err)
		if err == nil && !bytes.Equal(chunkKey(gi, gx), raw) {
			t.Fatalf("raw key %x re-encodes to %x", raw, chunkKey(gi, gx))
		}
		for _, pfx := range []byte{pfxInode, pfxSealedKey, pfxSymlink, pfxBucket, pfxOrphan} {
			i, err := decodeInoKey(pfx, raw)
			checkDecodeErr(t, err)
			if err == nil && !bytes.Equal(inoKey(pfx, i), raw) {
				t.Fatalf("raw key %x re-encodes to %x", raw, inoKey(pfx, i))
			}
		}
	})
}

func FuzzDecodeUpload(f *testing.F) {
	seedValues(f)
	for _, u := range sampleUploads() {
		b := encodeUpload(&u)
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUpload(UploadID{7}, b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if u.ID != (UploadID{7}) {
			t.Fatalf("ID %x, want the key's", u.ID)
		}
		if re := encodeUpload(&u); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}

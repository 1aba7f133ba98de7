package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"sort"
	"testing"
	"testing/quick"
)

var quickCfg = &quick.Config{MaxCount: 2000}

func sampleInodes() []Inode {
	return []Inode{
		{},
		{Ino: RootIno, Mode: 0o40755, Nlink: 2, Gen: 1, Parent: RootIno},
		{
			Ino: 42, Mode: 0o100644, Uid: 1000, Gid: 1000, Nlink: 1, Rdev: 0, Size: 1 << 40,
			Atime: 1700000000123456789, Mtime: -1, Ctime: math.MinInt64, Gen: 7,
			Parent: 17, Bucket: 17, FileID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			ChunkSize: 1 << 20,
		},
		{
			Ino: math.MaxUint64, Mode: math.MaxUint32, Uid: math.MaxUint32, Gid: math.MaxUint32,
			Nlink: math.MaxUint32, Rdev: math.MaxUint32, Size: math.MaxUint64, Atime: math.MaxInt64,
			Mtime: math.MinInt64, Ctime: 0, Gen: math.MaxUint64, Parent: math.MaxUint64,
			Bucket: math.MaxUint64, ChunkSize: math.MaxUint32,
			FileID: [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		},
	}
}

func sampleChunks() []Chunk {
	return []Chunk{
		{},
		{Index: 3, Object: [16]byte{9: 9}, Version: 1, PlainLen: 1 << 20, StoredLen: 1<<20 + 32},
		{Index: math.MaxUint64, Object: [16]byte{0xff, 15: 0xff}, Version: math.MaxUint64, PlainLen: math.MaxUint32, StoredLen: math.MaxUint32},
		{Index: 5, Object: [16]byte{1: 1}, Version: 7, PlainLen: 5, StoredLen: 37, Inline: bytes.Repeat([]byte{0xa5}, 37)},
	}
}

func TestInodeRoundTrip(t *testing.T) {
	for _, in := range sampleInodes() {
		b := encodeInode(&in)
		got, err := decodeInode(in.Ino, b)
		if err != nil {
			t.Fatalf("decode %+v: %v", in, err)
		}
		if got != in {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
		}
	}
	f := func(in Inode) bool {
		got, err := decodeInode(in.Ino, encodeInode(&in))
		return err == nil && got == in
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
}

func TestInodeFieldsAreIndependent(t *testing.T) {
	// Each field must land in its own place: setting one must change only that one.
	base := sampleInodes()[2]
	v := reflect.ValueOf(&base).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Name == "Ino" {
			continue
		}
		mod := base
		fv := reflect.ValueOf(&mod).Elem().Field(i)
		switch fv.Kind() {
		case reflect.Uint32, reflect.Uint64:
			fv.SetUint(fv.Uint() ^ 0x5a)
		case reflect.Int64:
			fv.SetInt(fv.Int() ^ 0x5a)
		case reflect.Array:
			fv.Index(3).SetUint(fv.Index(3).Uint() ^ 0x5a)
		default:
			t.Fatalf("field %s: kind %v not covered by this test", v.Type().Field(i).Name, fv.Kind())
		}
		got, err := decodeInode(mod.Ino, encodeInode(&mod))
		if err != nil || got != mod {
			t.Errorf("field %s does not round-trip: %+v, %v", v.Type().Field(i).Name, got, err)
		}
	}
}

func TestChunkRoundTrip(t *testing.T) {
	for _, c := range sampleChunks() {
		got, err := decodeChunk(c.Index, encodeChunk(&c))
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip %+v: %+v, %v", c, got, err)
		}
	}
	f := func(c Chunk) bool {
		if len(c.Inline) == 0 {
			c.Inline = nil // no inline bytes and none recorded read back alike
		} else {
			c.StoredLen = uint32(len(c.Inline))
		}
		got, err := decodeChunk(c.Index, encodeChunk(&c))
		return err == nil && reflect.DeepEqual(got, c)
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
}

// Inline bytes that do not match the recorded stored length are a corrupt record.
func TestChunkInlineLengthChecked(t *testing.T) {
	c := Chunk{Object: [16]byte{1}, Version: 1, PlainLen: 1, StoredLen: 33, Inline: make([]byte, 33)}
	b := encodeChunk(&c)
	if _, err := decodeChunk(0, b[:len(b)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("one inline byte short: %v", err)
	}
	if _, err := decodeChunk(0, append(b, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("one inline byte too many: %v", err)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	f := func(e Entry) bool {
		got, err := decodeEntry(e.Name, encodeEntry(&e))
		return err == nil && got == e
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
	e := Entry{Name: "x", Ino: math.MaxUint64, Mode: math.MaxUint32}
	if got, err := decodeEntry("x", encodeEntry(&e)); err != nil || got != e {
		t.Fatalf("round trip %+v: %+v, %v", e, got, err)
	}
}

func TestSmallValuesRoundTrip(t *testing.T) {
	f := func(c BucketConfig, blob []byte, n uint64) bool {
		gc, err := decodeBucketConfig(encodeBucketConfig(&c))
		if err != nil || gc != c {
			return false
		}
		gb, err := decodeBlob("blob", encodeBlob(blob))
		if err != nil || !bytes.Equal(gb, blob) || gb == nil {
			return false
		}
		if v, err := decodeSuperblock(encodeSuperblock(n)); err != nil || v != n {
			return false
		}
		if v, err := decodeSequence(encodeSequence(n)); err != nil || v != n {
			return false
		}
		return true
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
	if err := decodeOrphan(encodeOrphan()); err != nil {
		t.Fatal(err)
	}
}

// encodings returns one valid encoding of every value kind, with a decoder for it.
func encodings() map[string]struct {
	enc []byte
	dec func([]byte) error
} {
	type ed = struct {
		enc []byte
		dec func([]byte) error
	}
	in := sampleInodes()[2]
	c := sampleChunks()[1]
	e := Entry{Name: "n", Ino: 300, Mode: 0o100000}
	bc := BucketConfig{DefaultKey: "my-minio-key"}
	return map[string]ed{
		"inode":      {encodeInode(&in), func(b []byte) error { _, err := decodeInode(1, b); return err }},
		"chunk":      {encodeChunk(&c), func(b []byte) error { _, err := decodeChunk(1, b); return err }},
		"entry":      {encodeEntry(&e), func(b []byte) error { _, err := decodeEntry("n", b); return err }},
		"bucket":     {encodeBucketConfig(&bc), func(b []byte) error { _, err := decodeBucketConfig(b); return err }},
		"superblock": {encodeSuperblock(FormatVersion), func(b []byte) error { _, err := decodeSuperblock(b); return err }},
		"sequence":   {encodeSequence(123456), func(b []byte) error { _, err := decodeSequence(b); return err }},
		"orphan":     {encodeOrphan(), decodeOrphan},
		"blob":       {encodeBlob([]byte("sealed")), func(b []byte) error { _, err := decodeBlob("blob", b); return err }},
	}
}

func TestDecodeRejectsTruncated(t *testing.T) {
	for kind, e := range encodings() {
		if err := e.dec(e.enc); err != nil {
			t.Fatalf("%s: valid encoding rejected: %v", kind, err)
		}
		// Blobs are version byte + anything, so only the empty input is truncated.
		cut := len(e.enc)
		if kind == "blob" {
			cut = 1
		}
		for n := 0; n < cut; n++ {
			err := e.dec(e.enc[:n])
			if err == nil {
				t.Errorf("%s: truncated to %d of %d bytes: accepted", kind, n, len(e.enc))
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: error %v does not wrap ErrCorrupt", kind, err)
			}
		}
		if kind != "blob" {
			if err := e.dec(append(append([]byte{}, e.enc...), 0)); err == nil {
				t.Errorf("%s: trailing byte accepted", kind)
			}
		}
		bad := append([]byte{}, e.enc...)
		bad[0] = 2
		if err := e.dec(bad); err == nil {
			t.Errorf("%s: unknown codec version accepted", kind)
		}
	}
}

func TestDecodeRejectsBadVarints(t *testing.T) {
	// Non-minimal zero, an overflowing varint, and a 32-bit field that is too large.
	cases := map[string][]byte{
		"non-minimal": {codecV1, 0x80, 0x00},
		"overflow":    append([]byte{codecV1}, bytes.Repeat([]byte{0xff}, 11)...),
		"too big u32": binary.AppendUvarint([]byte{codecV1}, math.MaxUint32+1),
	}
	for name, b := range cases {
		if _, err := decodeInode(1, b); err == nil {
			t.Errorf("inode with %s mode accepted", name)
		}
		if _, err := decodeSuperblock(b); name != "too big u32" && err == nil {
			t.Errorf("superblock %s accepted", name)
		}
	}
	// Entry mode is a u32: a value just past it must fail, the maximum must pass.
	ok := binary.AppendUvarint(binary.AppendUvarint([]byte{codecV1}, 5), math.MaxUint32)
	if _, err := decodeEntry("x", ok); err != nil {
		t.Errorf("max u32 rejected: %v", err)
	}
	bad := binary.AppendUvarint(binary.AppendUvarint([]byte{codecV1}, 5), math.MaxUint32+1)
	if _, err := decodeEntry("x", bad); err == nil {
		t.Error("u32 overflow accepted")
	}
	// A bucket config whose length runs past the end.
	if _, err := decodeBucketConfig([]byte{codecV1, 10, 'a'}); err == nil {
		t.Error("bucket config with overlong length accepted")
	}
}

func TestDecodeGarbageNeverPanics(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	encs := encodings()
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.Intn(80))
		rng.Read(b)
		if len(b) > 0 && rng.Intn(2) == 0 {
			b[0] = codecV1
		}
		for _, e := range encs {
			_ = e.dec(b)
		}
		decodeEntryKey(b)
		decodeChunkKey(b)
		decodeXattrKey(b)
		decodeInoKey(pfxInode, b)
	}
}

func TestKeysRoundTrip(t *testing.T) {
	f := func(ino, idx uint64, name string) bool {
		if name == "" {
			name = "x"
		}
		if got, err := decodeInoKey(pfxInode, inodeKey(Ino(ino))); err != nil || got != Ino(ino) {
			return false
		}
		p, n, err := decodeEntryKey(entryKey(Ino(ino), name))
		if err != nil || p != Ino(ino) || n != name {
			return false
		}
		p, n, err = decodeXattrKey(xattrKey(Ino(ino), name))
		if err != nil || p != Ino(ino) || n != name {
			return false
		}
		gi, gx, err := decodeChunkKey(chunkKey(Ino(ino), idx))
		if err != nil || gi != Ino(ino) || gx != idx {
			return false
		}
		for _, pfx := range []byte{pfxSealedKey, pfxSymlink, pfxBucket, pfxOrphan} {
			if got, err := decodeInoKey(pfx, inoKey(pfx, Ino(ino))); err != nil || got != Ino(ino) {
				return false
			}
		}
		return true
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
}

func TestKeysRejectWrongKind(t *testing.T) {
	if _, _, err := decodeEntryKey(xattrKey(1, "a")); err == nil {
		t.Error("xattr key decoded as entry key")
	}
	if _, _, err := decodeEntryKey(entryPrefix(1)); err == nil {
		t.Error("entry key with empty name accepted")
	}
	if _, _, err := decodeChunkKey(inodeKey(1)); err == nil {
		t.Error("inode key decoded as chunk key")
	}
	if _, err := decodeInoKey(pfxInode, orphanKey(1)); err == nil {
		t.Error("orphan key decoded as inode key")
	}
	if _, err := decodeInoKey(pfxInode, append(inodeKey(1), 0)); err == nil {
		t.Error("long inode key accepted")
	}
}

func TestKeyKindsAreDisjoint(t *testing.T) {
	// No key of one kind may start with another kind's prefix range, or a prefix scan of
	// one kind would return the other.
	keys := map[string][]byte{
		"superblock": superblockKey(),
		"sequence":   sequenceKey("ino"),
		"inode":      inodeKey(5),
		"entry":      entryKey(5, "a"),
		"chunk":      chunkKey(5, 0),
		"xattr":      xattrKey(5, "user.a"),
		"sealed":     sealedKeyKey(5),
		"symlink":    symlinkKey(5),
		"bucket":     bucketKey(5),
		"orphan":     orphanKey(5),
	}
	seen := map[byte]string{}
	for kind, k := range keys {
		if other, dup := seen[k[0]]; dup {
			t.Errorf("%s and %s share prefix byte %#x", kind, other, k[0])
		}
		seen[k[0]] = kind
		if k[0] >= '!' {
			t.Errorf("%s prefix %#x could collide with badger's internal keys", kind, k[0])
		}
	}
}

func TestChunkKeyOrderIsNumeric(t *testing.T) {
	idx := []uint64{0, 1, 2, 255, 256, 257, 65535, 65536, 1 << 24, 1<<32 - 1, 1 << 32, 1 << 56, math.MaxUint64}
	for i := range idx {
		for j := range idx {
			got := bytes.Compare(chunkKey(7, idx[i]), chunkKey(7, idx[j]))
			want := cmpU64(idx[i], idx[j])
			if got != want {
				t.Errorf("chunk key order %d vs %d: %d, want %d", idx[i], idx[j], got, want)
			}
		}
	}
	// Inode numbers order numerically too, and one inode's chunks all sort before the
	// next inode's.
	if bytes.Compare(chunkKey(255, math.MaxUint64), chunkKey(256, 0)) >= 0 {
		t.Error("chunks of inode 255 do not sort before inode 256")
	}
	f := func(a, b uint64) bool {
		return bytes.Compare(inodeKey(Ino(a)), inodeKey(Ino(b))) == cmpU64(a, b) &&
			bytes.Compare(chunkKey(1, a), chunkKey(1, b)) == cmpU64(a, b)
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
}

func TestEntryKeyOrderIsBytewise(t *testing.T) {
	names := []string{"b", "a", "aa", "A", "a b", "\xff", "é", "a\x01", "z", "0", "~"}
	sorted := append([]string{}, names...)
	sort.Strings(sorted)
	keys := make([][]byte, len(names))
	for i, n := range names {
		keys[i] = entryKey(300, n)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	for i, k := range keys {
		_, n, _ := decodeEntryKey(k)
		if n != sorted[i] {
			t.Fatalf("position %d: %q, want %q", i, n, sorted[i])
		}
	}
	// A long name under one parent must not sort into the next parent's range.
	if bytes.Compare(entryKey(1, "\xff\xff\xff\xff\xff\xff\xff\xff\xff"), entryPrefix(2)) >= 0 {
		t.Error("entries of parent 1 run into parent 2")
	}
	if !bytes.HasPrefix(entryKey(1, "a"), entryPrefix(1)) || bytes.HasPrefix(entryKey(256, "a"), entryPrefix(1)) {
		t.Error("entry prefix wrong")
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

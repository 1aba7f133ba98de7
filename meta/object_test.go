package meta

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
)

func sampleObjects() []Object {
	return []Object{
		{},
		{ETag: "d41d8cd98f00b204e9800998ecf8427e", Size: 0},
		{ETag: "0123456789abcdef0123456789abcdef-3", Size: 10<<20 + 1, Flags: ObjectImplicitDir,
			System: SystemMeta{ContentType: "text/plain", ContentEncoding: "gzip", ContentDisposition: "attachment",
				ContentLanguage: "de", CacheControl: "no-cache", Expires: "Thu, 01 Dec 1994 16:00:00 GMT"}},
		{Size: math.MaxUint64, Flags: math.MaxUint32},
	}
}

func sampleUploads() []Upload {
	return []Upload{
		{},
		{ID: UploadID{1, 2, 3}, Bucket: 7, Key: "a/b/c.txt", Initiated: 1700000000123456789, SSEType: "SSE-KMS",
			KeyName: "my-key", Mode: 0o100644, Uid: 1000, Gid: 1000, System: SystemMeta{ContentType: "x/y"},
			UserMeta:   map[string]string{"b": "2", "a": "1", "": "empty name", "zz": ""},
			KMSContext: map[string]string{"purpose": "test", "": "", "ünï": "cödé"}},
		{ID: UploadID{0xff}, Bucket: math.MaxUint64, Key: strings.Repeat("k", 1024), Initiated: math.MinInt64,
			SSEType: "SSE-C", ClientKeyMD5: [16]byte{9, 15: 9}, Mode: math.MaxUint32, Uid: math.MaxUint32, Gid: math.MaxUint32},
	}
}

func samplePartsList() []Part {
	return []Part{
		{},
		{Number: 1, Ino: 42, Size: 5 << 20, MD5: [16]byte{1, 15: 2}, Uploaded: 1700000000123456789},
		{Number: 10000, Ino: math.MaxUint64, Size: math.MaxUint64, MD5: [16]byte{0xff, 15: 0xff}, Uploaded: math.MinInt64},
	}
}

func TestObjectRoundTrip(t *testing.T) {
	for _, o := range sampleObjects() {
		got, err := decodeObject(encodeObject(&o))
		if err != nil || got != o {
			t.Fatalf("round trip %+v: %+v, %v", o, got, err)
		}
	}
	f := func(o Object) bool {
		got, err := decodeObject(encodeObject(&o))
		return err == nil && got == o
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
}

func TestUploadRoundTrip(t *testing.T) {
	check := func(u Upload) bool {
		got, err := decodeUpload(u.ID, encodeUpload(&u))
		if len(u.UserMeta) == 0 {
			u.UserMeta = nil // the empty map and nil encode alike
		}
		if len(u.KMSContext) == 0 {
			u.KMSContext = nil
		}
		return err == nil && reflect.DeepEqual(got, u)
	}
	for _, u := range sampleUploads() {
		if !check(u) {
			t.Fatalf("round trip of %+v failed", u)
		}
	}
	if err := quick.Check(check, quickCfg); err != nil {
		t.Fatal(err)
	}
}

func TestPartRoundTrip(t *testing.T) {
	check := func(p Part) bool {
		got, err := decodePart(p.Number, encodePart(&p))
		return err == nil && got == p
	}
	for _, p := range samplePartsList() {
		if !check(p) {
			t.Fatalf("round trip of %+v failed", p)
		}
	}
	if err := quick.Check(check, quickCfg); err != nil {
		t.Fatal(err)
	}
}

func TestUploadUserMetaMustBeSorted(t *testing.T) {
	u := Upload{UserMeta: map[string]string{"a": "1", "b": "2"}}
	enc := encodeUpload(&u)
	// Swap the two pairs: "a" "1" "b" "2" -> "b" "2" "a" "1".
	i := bytes.Index(enc, []byte{1, 'a', 1, '1', 1, 'b', 1, '2'})
	if i < 0 {
		t.Fatalf("pairs not found in %x", enc)
	}
	copy(enc[i:], []byte{1, 'b', 1, '2', 1, 'a', 1, '1'})
	if _, err := decodeUpload(UploadID{}, enc); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unsorted user metadata accepted: %v", err)
	}
}

// An upload record as the codec before KMS contexts wrote it (version 1) must still
// decode, and an upload without a context must still be written exactly so.
func TestUploadCodecVersion1(t *testing.T) {
	u := Upload{ID: UploadID{1}, Bucket: 7, Key: "a/b", Initiated: 5, SSEType: "SSE-KMS", KeyName: "k",
		Mode: 0o644, Uid: 1, Gid: 2, System: SystemMeta{ContentType: "x/y"}, UserMeta: map[string]string{"m": "v"}}
	golden := []byte{1, 7, 3, 'a', '/', 'b', 10, 7, 'S', 'S', 'E', '-', 'K', 'M', 'S', 1, 'k',
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ClientKeyMD5
		0xa4, 0x03, 1, 2, 3, 'x', '/', 'y', 0, 0, 0, 0, 0, 1, 1, 'm', 1, 'v'}
	if enc := encodeUpload(&u); !bytes.Equal(enc, golden) {
		t.Fatalf("upload without a context:\n got  %x\n want %x", enc, golden)
	}
	got, err := decodeUpload(u.ID, golden)
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("version 1 record: %+v, %v", got, err)
	}

	u.KMSContext = map[string]string{"b": "2", "a": "1"}
	enc := encodeUpload(&u)
	want := append(append([]byte{uploadCodecV2}, golden[1:]...), 2, 1, 'a', 1, '1', 1, 'b', 1, '2')
	if !bytes.Equal(enc, want) {
		t.Fatalf("upload with a context:\n got  %x\n want %x", enc, want)
	}
	if got, err := decodeUpload(u.ID, enc); err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("version 2 record: %+v, %v", got, err)
	}
	for desc, b := range map[string][]byte{
		"version 2 without a context":     append([]byte{uploadCodecV2}, golden[1:]...),
		"version 2 with an empty context": append(append([]byte{uploadCodecV2}, golden[1:]...), 0),
		"version 1 with a context":        append([]byte{codecV1}, enc[1:]...),
		"context keys out of order":       append(append([]byte{uploadCodecV2}, golden[1:]...), 2, 1, 'b', 0, 1, 'a', 0),
		"unknown version 3":               append([]byte{3}, enc[1:]...),
	} {
		if _, err := decodeUpload(u.ID, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", desc, err)
		}
	}
}

func TestObjectValuesRejectTruncationAndTrailing(t *testing.T) {
	o := sampleObjects()[2]
	u := sampleUploads()[1]
	p := samplePartsList()[1]
	decs := map[string]struct {
		enc []byte
		dec func([]byte) error
	}{
		"object": {encodeObject(&o), func(b []byte) error { _, err := decodeObject(b); return err }},
		"upload": {encodeUpload(&u), func(b []byte) error { _, err := decodeUpload(UploadID{}, b); return err }},
		"part":   {encodePart(&p), func(b []byte) error { _, err := decodePart(1, b); return err }},
		"index":  {encodeUploadIndex(), decodeUploadIndex},
	}
	for kind, d := range decs {
		if err := d.dec(d.enc); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for n := 0; n < len(d.enc); n++ {
			if err := d.dec(d.enc[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s truncated to %d bytes: %v", kind, n, err)
			}
		}
		if err := d.dec(append(bytes.Clone(d.enc), 0)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s with a trailing byte: %v", kind, err)
		}
	}
}

func TestObjectKeysRoundTripAndOrder(t *testing.T) {
	f := func(bucket uint64, key string, id UploadID, n uint32) bool {
		key = strings.ReplaceAll(key, "\x00", "")
		b, k, gid, err := decodeUploadIndexKey(uploadIndexKey(Ino(bucket), key, id))
		if err != nil || b != Ino(bucket) || k != key || gid != id {
			return false
		}
		gid, gn, err := decodePartKey(partKey(id, n))
		if err != nil || gid != id || gn != n {
			return false
		}
		gid, err = decodeUploadKey(uploadKey(id))
		return err == nil && gid == id
	}
	if err := quick.Check(f, quickCfg); err != nil {
		t.Fatal(err)
	}
	// The index sorts by key (bytewise), then ID.
	keys := []string{"a", "a-c", "a/b", "a0", "b"}
	var prev []byte
	for _, k := range keys {
		for _, id := range []UploadID{{0}, {1}, {0xff}} {
			cur := uploadIndexKey(3, k, id)
			if prev != nil && bytes.Compare(prev, cur) >= 0 {
				t.Fatalf("index key of %q/%x does not sort after the previous one", k, id[:1])
			}
			prev = cur
		}
	}
	if bytes.Compare(partKey(UploadID{}, 255), partKey(UploadID{}, 256)) >= 0 {
		t.Fatal("part keys not in numeric order")
	}
}

func TestObjectKeyKindsAreDisjoint(t *testing.T) {
	old := []byte{pfxSuperblock, pfxSequence, pfxInode, pfxEntry, pfxChunk, pfxXattr, pfxSealedKey, pfxSymlink, pfxBucket, pfxOrphan}
	seen := map[byte]bool{}
	for _, p := range old {
		seen[p] = true
	}
	for _, k := range [][]byte{objectKey(5), uploadKey(UploadID{}), uploadIndexKey(5, "a", UploadID{}), partKey(UploadID{}, 1)} {
		if seen[k[0]] {
			t.Errorf("prefix %#x is used twice", k[0])
		}
		seen[k[0]] = true
		if k[0] >= '!' {
			t.Errorf("prefix %#x could collide with badger's internal keys", k[0])
		}
	}
}

func TestObjectRecordsInDB(t *testing.T) {
	db, _ := newDB(t)
	o := sampleObjects()[2]
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: 10, Mode: 0o100644, Nlink: 1}); err != nil {
			return err
		}
		return tx.PutObject(10, &o)
	})
	view(t, db, func(tx *Tx) error {
		got, err := tx.Object(10)
		if err != nil || got != o {
			t.Fatalf("object: %+v, %v", got, err)
		}
		if _, err := tx.Object(11); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing object record: %v", err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error { return tx.DropETag(10) })
	view(t, db, func(tx *Tx) error {
		got, err := tx.Object(10)
		want := o
		want.ETag, want.Size = "", 0
		if err != nil || got != want {
			t.Fatalf("after DropETag: %+v, %v", got, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error { return tx.DropETag(11) }) // no record: no-op
	update(t, db, func(tx *Tx) error { _, err := tx.DeleteInode(10); return err })
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Object(10); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteInode left the object record: %v", err)
		}
		return nil
	})
}

func TestUploadsInDB(t *testing.T) {
	db, _ := newDB(t)
	var ids []UploadID
	keys := []string{"b", "a/b", "a0", "a-c", "a"}
	update(t, db, func(tx *Tx) error {
		for i, k := range keys {
			u := Upload{ID: UploadID{byte(10 - i)}, Bucket: 5, Key: k, Initiated: int64(i)}
			ids = append(ids, u.ID)
			if err := tx.PutUpload(&u); err != nil {
				return err
			}
		}
		other := Upload{ID: UploadID{99}, Bucket: 6, Key: "a"}
		if err := tx.PutUpload(&other); err != nil {
			return err
		}
		for n := uint32(3); n >= 1; n-- {
			if err := tx.PutPart(ids[0], &Part{Number: n, Ino: Ino(100 + n), Size: uint64(n)}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		var got []string
		if err := tx.Uploads(5, "", func(k string, id UploadID) bool { got = append(got, k); return true }); err != nil {
			t.Fatal(err)
		}
		if want := []string{"a", "a-c", "a/b", "a0", "b"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("uploads %q, want %q", got, want)
		}
		got = nil
		if err := tx.Uploads(5, "a/b", func(k string, id UploadID) bool { got = append(got, k); return true }); err != nil {
			t.Fatal(err)
		}
		if want := []string{"a/b", "a0", "b"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("uploads from a/b: %q, want %q", got, want)
		}
		var nums []uint32
		if err := tx.Parts(ids[0], 1, func(p Part) bool { nums = append(nums, p.Number); return true }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(nums, []uint32{2, 3}) {
			t.Fatalf("parts after 1: %v", nums)
		}
		if has, err := tx.HasUploads(5); err != nil || !has {
			t.Fatalf("HasUploads(5) = %v, %v", has, err)
		}
		if has, err := tx.HasUploads(7); err != nil || has {
			t.Fatalf("HasUploads(7) = %v, %v", has, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		parts, err := tx.DeleteUpload(ids[0])
		if err != nil || len(parts) != 3 || parts[0].Ino != 101 {
			t.Fatalf("DeleteUpload: %+v, %v", parts, err)
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Upload(ids[0]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("upload still there: %v", err)
		}
		if _, err := tx.Part(ids[0], 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("part still there: %v", err)
		}
		n := 0
		if err := tx.AllUploads(func(Upload) bool { n++; return true }); err != nil || n != 5 {
			t.Fatalf("AllUploads: %d, %v", n, err)
		}
		return nil
	})
}

func FuzzDecodeObjectValues(f *testing.F) {
	seedValues(f)
	for _, o := range sampleObjects() {
		f.Add(encodeObject(&o))
	}
	for _, u := range sampleUploads() {
		f.Add(encodeUpload(&u))
	}
	for _, p := range samplePartsList() {
		f.Add(encodePart(&p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := decodeObject(b); err == nil {
			if re := encodeObject(&o); !bytes.Equal(re, b) {
				t.Fatalf("object re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if u, err := decodeUpload(UploadID{1}, b); err == nil {
			if re := encodeUpload(&u); !bytes.Equal(re, b) || u.ID != (UploadID{1}) {
				t.Fatalf("upload re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if p, err := decodePart(7, b); err == nil {
			if re := encodePart(&p); !bytes.Equal(re, b) || p.Number != 7 {
				t.Fatalf("part re-encoding differs: %x vs %x", b, re)
			}
		} else {
			checkDecodeErr(t, err)
		}
	})
}

func FuzzObjectKeys(f *testing.F) {
	f.Add([]byte{pfxUploadKey, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(partKey(UploadID{1}, 2))
	f.Add(uploadKey(UploadID{3}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if b, k, id, err := decodeUploadIndexKey(raw); err == nil {
			if !bytes.Equal(uploadIndexKey(b, k, id), raw) {
				t.Fatalf("index key %x re-encodes differently", raw)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if id, n, err := decodePartKey(raw); err == nil {
			if !bytes.Equal(partKey(id, n), raw) {
				t.Fatalf("part key %x re-encodes differently", raw)
			}
		} else {
			checkDecodeErr(t, err)
		}
		if id, err := decodeUploadKey(raw); err == nil {
			if !bytes.Equal(uploadKey(id), raw) {
				t.Fatalf("upload key %x re-encodes differently", raw)
			}
		} else {
			checkDecodeErr(t, err)
		}
	})
}

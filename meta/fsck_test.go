package meta

import (
	"errors"
	"reflect"
	"testing"
)

// RecordOwners finds records whether or not their inode exists, kind by kind in inode
// order, one visit per owner however many records it has; DeleteInodeRecords removes all
// of an inode's records but its chunk records.
func TestRecordOwnersAndDeleteInodeRecords(t *testing.T) {
	db, _ := newDB(t)
	update(t, db, func(tx *Tx) error {
		for _, ino := range []Ino{50, 7} { // 50 has no inode record
			for i := uint64(0); i < 3; i++ {
				if err := tx.PutChunk(ino, Chunk{Index: i, Version: i + 1}); err != nil {
					return err
				}
			}
			for _, err := range []error{tx.SetXattr(ino, "user.a", nil), tx.SetXattr(ino, "user.b", []byte("v")),
				tx.PutSealedKey(ino, []byte("sk")), tx.PutSymlink(ino, "t"), tx.PutBucketConfig(ino, BucketConfig{}),
				tx.AddOrphan(ino), tx.PutObject(ino, &Object{ETag: "e"})} {
				if err != nil {
					return err
				}
			}
		}
		return tx.PutInode(&Inode{Ino: 7, Mode: 0o100644, Nlink: 1})
	})
	type visit struct {
		kind RecordKind
		ino  Ino
	}
	var got []visit
	view(t, db, func(tx *Tx) error {
		return tx.RecordOwners(func(k RecordKind, ino Ino) bool { got = append(got, visit{k, ino}); return true })
	})
	var want []visit
	for _, k := range []RecordKind{RecordChunks, RecordXattrs, RecordSealedKey, RecordSymlink, RecordBucketConfig, RecordOrphan, RecordObject} {
		want = append(want, visit{k, 7}, visit{k, 50})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("owners: %v\nwant    %v", got, want)
	}
	// Stopping early stops.
	n := 0
	view(t, db, func(tx *Tx) error { return tx.RecordOwners(func(RecordKind, Ino) bool { n++; return n < 3 }) })
	if n != 3 {
		t.Errorf("visits after stopping: %d", n)
	}

	update(t, db, func(tx *Tx) error { return tx.DeleteInodeRecords(50) })
	got = nil
	view(t, db, func(tx *Tx) error {
		return tx.RecordOwners(func(k RecordKind, ino Ino) bool {
			if ino == 50 {
				got = append(got, visit{k, ino})
			}
			return true
		})
	})
	if !reflect.DeepEqual(got, []visit{{RecordChunks, 50}}) {
		t.Errorf("records of 50 left: %v, want only its chunk records", got)
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Inode(7); err != nil {
			t.Errorf("inode 7: %v", err)
		}
		return nil
	})
}

func TestAllEntriesAndParts(t *testing.T) {
	db, _ := newDB(t)
	var gone UploadID
	gone[0] = 9
	u := Upload{ID: UploadID{1}, Bucket: 5, Key: "k"}
	update(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutEntry(3, Entry{Name: "b", Ino: 4, Mode: 0o40000}), tx.PutEntry(3, Entry{Name: "a", Ino: 5}),
			tx.PutEntry(900, Entry{Name: "x", Ino: 6}), tx.PutUpload(&u),
			tx.PutPart(u.ID, &Part{Number: 2, Ino: 20, Size: 7}), tx.PutPart(gone, &Part{Number: 1, Ino: 21}))
	})
	type ent struct {
		parent Ino
		name   string
		ino    Ino
	}
	var ents []ent
	view(t, db, func(tx *Tx) error {
		return tx.AllEntries(func(p Ino, e Entry) bool { ents = append(ents, ent{p, e.Name, e.Ino}); return true })
	})
	if want := []ent{{3, "a", 5}, {3, "b", 4}, {900, "x", 6}}; !reflect.DeepEqual(ents, want) {
		t.Errorf("entries %v, want %v", ents, want)
	}
	type part struct {
		id  UploadID
		n   uint32
		ino Ino
	}
	var parts []part
	list := func() {
		parts = nil
		view(t, db, func(tx *Tx) error {
			return tx.AllParts(func(id UploadID, p Part) bool { parts = append(parts, part{id, p.Number, p.Ino}); return true })
		})
	}
	list()
	if want := []part{{u.ID, 2, 20}, {gone, 1, 21}}; !reflect.DeepEqual(parts, want) {
		t.Errorf("parts %v, want %v", parts, want)
	}
	update(t, db, func(tx *Tx) error { return tx.DeletePart(gone, 1) })
	list()
	if want := []part{{u.ID, 2, 20}}; !reflect.DeepEqual(parts, want) {
		t.Errorf("parts after DeletePart %v, want %v", parts, want)
	}
}

// The upload index can be read, pruned and restored apart from the upload records, as fsck
// needs when the two disagree.
func TestUploadIndexAccessors(t *testing.T) {
	db, _ := newDB(t)
	a := Upload{ID: UploadID{0xa}, Bucket: 5, Key: "x/y"}
	b := Upload{ID: UploadID{0xb}, Bucket: 4, Key: "z"}
	update(t, db, func(tx *Tx) error { return errors.Join(tx.PutUpload(&a), tx.PutUpload(&b)) })
	index := func() []UploadIndexEntry {
		var out []UploadIndexEntry
		view(t, db, func(tx *Tx) error {
			return tx.AllUploadIndex(func(e UploadIndexEntry) bool { out = append(out, e); return true })
		})
		return out
	}
	ea, eb := UploadIndexEntry{5, "x/y", a.ID}, UploadIndexEntry{4, "z", b.ID}
	if got := index(); !reflect.DeepEqual(got, []UploadIndexEntry{eb, ea}) {
		t.Fatalf("index %v", got)
	}
	update(t, db, func(tx *Tx) error { return tx.DeleteUploadIndex(ea) })
	if got := index(); !reflect.DeepEqual(got, []UploadIndexEntry{eb}) {
		t.Errorf("index after delete %v", got)
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Upload(a.ID); err != nil {
			t.Errorf("the upload record went with its index entry: %v", err)
		}
		n := 0
		if err := tx.Uploads(5, "", func(string, UploadID) bool { n++; return true }); err != nil || n != 0 {
			t.Errorf("bucket 5 lists %d uploads (%v)", n, err)
		}
		return nil
	})
	// A stray entry for a key the record does not have, then the right one back.
	stray := UploadIndexEntry{5, "other", a.ID}
	update(t, db, func(tx *Tx) error { return errors.Join(tx.PutUploadIndex(stray), tx.PutUploadIndex(ea)) })
	if got := index(); !reflect.DeepEqual(got, []UploadIndexEntry{eb, stray, ea}) {
		t.Errorf("index after put %v", got)
	}
	view(t, db, func(tx *Tx) error {
		var keys []string
		if err := tx.Uploads(5, "", func(k string, _ UploadID) bool { keys = append(keys, k); return true }); err != nil {
			return err
		}
		if !reflect.DeepEqual(keys, []string{"other", "x/y"}) {
			t.Errorf("bucket 5 lists %v", keys)
		}
		return nil
	})
	err := db.Update(func(tx *Tx) error { return tx.PutUploadIndex(UploadIndexEntry{5, "a\x00b", a.ID}) })
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("an index entry with NUL in its key: %v", err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutUploadIndex(UploadIndexEntry{0, "k", a.ID}) }); err == nil {
		t.Error("an index entry of bucket 0 was written")
	}
}

func TestAllObjects(t *testing.T) {
	db, _ := newDB(t)
	recs := map[Ino]Object{9: {ETag: "nine", Size: 9}, 3: {Flags: ObjectImplicitDir}, 300: {ETag: "x-2", System: SystemMeta{ContentType: "t"}}}
	update(t, db, func(tx *Tx) error {
		for ino, o := range recs {
			if err := tx.PutObject(ino, &o); err != nil {
				return err
			}
		}
		return nil
	})
	var order []Ino
	got := map[Ino]Object{}
	view(t, db, func(tx *Tx) error {
		return tx.AllObjects(func(ino Ino, o Object) bool { order = append(order, ino); got[ino] = o; return true })
	})
	if !reflect.DeepEqual(order, []Ino{3, 9, 300}) || !reflect.DeepEqual(got, recs) {
		t.Errorf("objects %v %v", order, got)
	}
}

package meta

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func sampleRotationJobs() []RotationJob {
	return []RotationJob{
		{},
		{Started: -1, Next: 1},
		{Started: 1764108000123456789, Bucket: "photos", FromKey: "old-key", ToKey: "new-key",
			Next: 1 << 40, Total: 1e6, Done: 999_999, Skipped: 3},
	}
}

func TestRotationJobRecord(t *testing.T) {
	db, _ := newDB(t)
	view(t, db, func(tx *Tx) error {
		if _, err := tx.RotationJob(); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no job yet: got %v, want ErrNotFound", err)
		}
		return nil
	})
	for _, j := range sampleRotationJobs() {
		update(t, db, func(tx *Tx) error { return tx.PutRotationJob(j) })
		view(t, db, func(tx *Tx) error {
			got, err := tx.RotationJob()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, j) {
				t.Fatalf("got %+v, want %+v", got, j)
			}
			return nil
		})
	}
	update(t, db, func(tx *Tx) error { return tx.DeleteRotationJob() })
	view(t, db, func(tx *Tx) error {
		if _, err := tx.RotationJob(); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: got %v, want ErrNotFound", err)
		}
		return nil
	})
}

func TestSealedKeysFrom(t *testing.T) {
	db, _ := newDB(t)
	update(t, db, func(tx *Tx) error {
		for _, ino := range []Ino{5, 9, 300, 1 << 33} {
			if err := tx.PutSealedKey(ino, []byte{byte(ino), 0xaa}); err != nil {
				return err
			}
		}
		// A neighbouring kind must not leak into the scan.
		return tx.PutSymlink(7, "target")
	})
	for _, tc := range []struct {
		from Ino
		want []Ino
	}{{0, []Ino{5, 9, 300, 1 << 33}}, {9, []Ino{9, 300, 1 << 33}}, {10, []Ino{300, 1 << 33}}, {1<<33 + 1, nil}} {
		var got []Ino
		view(t, db, func(tx *Tx) error {
			return tx.SealedKeys(tc.from, func(ino Ino, b []byte) bool {
				if !bytes.Equal(b, []byte{byte(ino), 0xaa}) {
					t.Fatalf("inode %d: sealed key %x", ino, b)
				}
				got = append(got, ino)
				return true
			})
		})
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("from %d: got %v, want %v", tc.from, got, tc.want)
		}
	}
}

func FuzzDecodeRotation(f *testing.F) {
	seedValues(f)
	for _, j := range sampleRotationJobs() {
		f.Add(encodeRotation(&j))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := decodeRotation(b)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if re := encodeRotation(&j); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}

package meta

import (
	"reflect"
	"testing"
)

func TestAllChunks(t *testing.T) {
	db, _ := newDB(t)
	type rec struct {
		ino Ino
		c   Chunk
	}
	// More records than one scan batch, over inodes written out of order, with a gap.
	var want []rec
	update(t, db, func(tx *Tx) error {
		for _, ino := range []Ino{9, 3, 700} {
			for i := range uint64(scanBatch/2 + 7) {
				c := Chunk{Index: i * 3, Version: uint64(ino)*1000 + i, PlainLen: uint32(i), StoredLen: uint32(i + 32)}
				c.Object[0], c.Object[1] = byte(ino), byte(i)
				if err := tx.PutChunk(ino, c); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, ino := range []Ino{3, 9, 700} {
		for i := range uint64(scanBatch/2 + 7) {
			c := Chunk{Index: i * 3, Version: uint64(ino)*1000 + i, PlainLen: uint32(i), StoredLen: uint32(i + 32)}
			c.Object[0], c.Object[1] = byte(ino), byte(i)
			want = append(want, rec{ino, c})
		}
	}
	var got []rec
	view(t, db, func(tx *Tx) error {
		return tx.AllChunks(func(ino Ino, c Chunk) bool {
			got = append(got, rec{ino, c})
			return true
		})
	})
	if len(got) != len(want) {
		t.Fatalf("visited %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	// Stopping early stops.
	n := 0
	view(t, db, func(tx *Tx) error {
		return tx.AllChunks(func(Ino, Chunk) bool { n++; return n < 5 })
	})
	if n != 5 {
		t.Fatalf("visited %d records after asking to stop at 5", n)
	}
}

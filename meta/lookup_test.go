package meta

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"syscall"
	"testing"
)

// LookupMany and InodesMany answer as Lookup and Inode do, name by name: for names in
// order and out of order, present, missing, deleted (a tombstone in the memtable or in
// the tables), far apart and repeated, and for what the same transaction wrote.
func TestLookupManyAndInodesManyAgreeWithPointReads(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	const parent = Ino(300)
	name := func(i int) string { return fmt.Sprintf("f%05d", i) }
	// Files 0..599 in one directory, inodes in creation order; every third one deleted
	// again; a neighbour directory's entries too, before and after it in key order.
	update(t, db, func(tx *Tx) error {
		for i := range 600 {
			ino := Ino(1000 + i)
			if err := tx.PutInode(&Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: uint64(i)}); err != nil {
				return err
			}
			if err := tx.PutEntry(parent, Entry{Name: name(i), Ino: ino, Mode: syscall.S_IFREG}); err != nil {
				return err
			}
			for _, p := range []Ino{parent - 1, parent + 1} {
				if err := tx.PutEntry(p, Entry{Name: name(i), Ino: ino + 5000, Mode: syscall.S_IFREG}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	drop := func(from int) {
		update(t, db, func(tx *Tx) error {
			for i := from; i < 600; i += 6 {
				if err := tx.DeleteEntry(parent, name(i)); err != nil {
					return err
				}
				if _, err := tx.DeleteInode(Ino(1000 + i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	drop(0) // these tombstones go to the tables at the reopen
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	drop(3) // these stay in the memtable

	check := func(tx *Tx, names []string, inos []Ino) {
		t.Helper()
		ents, errs, err := tx.LookupMany(parent, names)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			want, werr := tx.Lookup(parent, n)
			if (werr == nil) != (errs[i] == nil) || isNotFound(werr) != isNotFound(errs[i]) || werr == nil && !reflect.DeepEqual(ents[i], want) {
				t.Fatalf("LookupMany %q: %+v, %v; Lookup: %+v, %v", n, ents[i], errs[i], want, werr)
			}
		}
		ins, ierrs, err := tx.InodesMany(inos)
		if err != nil {
			t.Fatal(err)
		}
		for i, ino := range inos {
			want, werr := tx.Inode(ino)
			if (werr == nil) != (ierrs[i] == nil) || isNotFound(werr) != isNotFound(ierrs[i]) || werr == nil && !reflect.DeepEqual(ins[i], want) {
				t.Fatalf("InodesMany %d: %+v, %v; Inode: %+v, %v", ino, ins[i], ierrs[i], want, werr)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cases [][]string
	for _, step := range []int{1, 2, 7, 40} { // neighbours, small gaps, gaps past seekAfter
		var names []string
		for i := 0; i < 600; i += step {
			names = append(names, name(i))
		}
		cases = append(cases, names)
	}
	shuffled := slices.Clone(cases[0][:100])
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	cases = append(cases, shuffled,
		[]string{"a", name(5), name(5), name(6), "g", "zzz"}, // before, repeated, missing, after
		[]string{""}, nil)
	for _, names := range cases {
		var inos []Ino
		for _, n := range names {
			var i int
			fmt.Sscanf(n, "f%05d", &i)
			inos = append(inos, Ino(1000+i), Ino(900+rng.IntN(800)))
		}
		view(t, db, func(tx *Tx) error { check(tx, names, inos); return nil })
	}
	// What a transaction wrote itself counts.
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: 1003, Mode: syscall.S_IFREG | 0o600, Nlink: 1}); err != nil {
			return err
		}
		if err := tx.PutEntry(parent, Entry{Name: name(3), Ino: 1003, Mode: syscall.S_IFREG}); err != nil {
			return err
		}
		if err := tx.DeleteEntry(parent, name(4)); err != nil {
			return err
		}
		check(tx, []string{name(2), name(3), name(4), name(5)}, []Ino{1002, 1003, 1004})
		return nil
	})
}

package meta

import (
	"bytes"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// seekAfter bounds how many records getSorted steps over to reach the next key before it
// seeks to it instead: a listing's names follow one another, with few records between
// them (names created since), but a caller may give keys far apart.
const seekAfter = 8

// getSorted reads the values of keys, all under prefix and in ascending order, with one
// iterator: a seek, then mostly steps from one record to the next. A point read
// (Txn.Get) searches every level's tables for each key on its own, and a directory
// listing asks for dozens of neighbouring keys at a time. vals[i] is nil when keys[i]
// has no record.
func (tx *Tx) getSorted(prefix []byte, keys [][]byte) (vals [][]byte, err error) {
	vals = make([][]byte, len(keys))
	if len(keys) == 0 {
		return vals, nil
	}
	it := tx.prefixIterator(prefix)
	defer it.Close()
	it.Seek(keys[0])
	for i, k := range keys {
		for steps := 0; it.Valid() && bytes.Compare(it.Item().Key(), k) < 0; steps++ {
			if steps == seekAfter {
				it.Seek(k)
				break
			}
			it.Next()
		}
		if !it.Valid() {
			break
		}
		if item := it.Item(); bytes.Equal(item.Key(), k) {
			if vals[i], err = item.ValueCopy(nil); err != nil {
				return nil, err
			}
		}
	}
	return vals, nil
}

// ascending tells whether keys are in ascending order (equal neighbours allowed).
func ascending(keys [][]byte) bool {
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) > 0 {
			return false
		}
	}
	return true
}

// LookupMany looks names of parent up as Lookup would, each one's outcome in errs[i]
// (wrapping ErrNotFound for a name that is not there). Names in ascending order, as a
// directory listing gives them, are read in one pass; others one by one. err is set,
// and the results are void, when reading fails or a record does not decode.
func (tx *Tx) LookupMany(parent Ino, names []string) (ents []Entry, errs []error, err error) {
	ents, errs = make([]Entry, len(names)), make([]error, len(names))
	keys := make([][]byte, len(names))
	for i, name := range names {
		keys[i] = entryKey(parent, name)
	}
	if !ascending(keys) {
		for i, name := range names {
			ents[i], errs[i] = tx.Lookup(parent, name)
			if errs[i] != nil && !isNotFound(errs[i]) {
				return nil, nil, errs[i]
			}
		}
		return ents, errs, nil
	}
	vals, err := tx.getSorted(entryPrefix(parent), keys)
	if err != nil {
		return nil, nil, wrap(err, "entries of %d", parent)
	}
	for i, name := range names {
		if vals[i] == nil || name == "" {
			errs[i] = notFound(badger.ErrKeyNotFound, "lookup %d/%q", parent, name)
			continue
		}
		if ents[i], err = decodeEntry(name, vals[i]); err != nil {
			return nil, nil, wrap(err, "lookup %d/%q", parent, name)
		}
	}
	return ents, errs, nil
}

// InodesMany reads inodes as Inode would, each one's outcome in errs[i] (wrapping
// ErrNotFound for an inode that is not there), in one pass in inode order. err is set,
// and the results are void, when reading fails or a record does not decode.
func (tx *Tx) InodesMany(inos []Ino) (ins []Inode, errs []error, err error) {
	ins, errs = make([]Inode, len(inos)), make([]error, len(inos))
	order := make([]int, len(inos))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case inos[a] < inos[b]:
			return -1
		case inos[a] > inos[b]:
			return 1
		}
		return 0
	})
	keys := make([][]byte, len(inos))
	for k, i := range order {
		keys[k] = inodeKey(inos[i])
	}
	vals, err := tx.getSorted([]byte{pfxInode}, keys)
	if err != nil {
		return nil, nil, wrap(err, "inodes")
	}
	for k, i := range order {
		if vals[k] == nil {
			errs[i] = notFound(badger.ErrKeyNotFound, "inode %d", inos[i])
			continue
		}
		if ins[i], err = decodeInode(inos[i], vals[k]); err != nil {
			return nil, nil, wrap(err, "inode %d", inos[i])
		}
	}
	return ins, errs, nil
}

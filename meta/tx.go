package meta

import (
	"errors"
	"fmt"
	"sort"
	"syscall"

	"github.com/dgraph-io/badger/v4"
)

// Tx is one transaction, valid only inside the Update or View callback that received it.
// Everything it returns is a copy and outlives the transaction.
//
// Iterating methods read a batch, close Badger's iterator, then call fn, so fn may use
// the same Tx freely (look up, write, even iterate). Writes fn makes to keys later in the
// range being iterated are seen by the iteration.
type Tx struct {
	txn *badger.Txn
	// What the space guard (space.go) weighs before the commit: about how many bytes the
	// commit adds to Badger's log, and whether it deletes something. A Tx that deletes is
	// let through on a nearly full disk (deletions are how space comes back); one that
	// only adds or changes records is refused first. The engine needs no say in this: the
	// methods that delete mark the Tx themselves.
	logBytes uint64
	frees    bool
}

// logEntryOverhead is what Badger's log adds to a record's key and value: the entry
// header, the version appended to the key and the checksum, rounded up.
const logEntryOverhead = 32

// set and del are the only ways a Tx writes, so that it knows what its commit costs.
func (tx *Tx) set(key, val []byte) error {
	tx.logBytes += uint64(len(key)+len(val)) + logEntryOverhead
	return tx.txn.Set(key, val)
}

func (tx *Tx) del(key []byte) error {
	tx.logBytes += uint64(len(key)) + logEntryOverhead
	return tx.txn.Delete(key)
}

// freeing marks the Tx as one that deletes records, which passes the space guard's floor.
func (tx *Tx) freeing() { tx.frees = true }

// scanBatch bounds how many records an iteration holds in memory at once.
const scanBatch = 256

func (tx *Tx) get(key []byte) ([]byte, error) {
	item, err := tx.txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// notFound maps Badger's miss to ErrNotFound and wraps everything with what was asked for.
// A miss is formatted only if printed: it is the usual answer of a create's lookups, and
// formatting it cost more than the read.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, badger.ErrKeyNotFound) {
		return &missing{format: format, args: args}
	}
	return fmt.Errorf("meta: %s: %w", fmt.Sprintf(format, args...), err)
}

// missing is ErrNotFound with what was looked for.
type missing struct {
	format string
	args   []any
}

func (m *missing) Error() string {
	return "meta: " + fmt.Sprintf(m.format, m.args...) + ": " + ErrNotFound.Error()
}

func (m *missing) Unwrap() error { return ErrNotFound }

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("meta: %s: %w", fmt.Sprintf(format, args...), err)
}

// prefixIterator iterates over the keys with prefix. Values are read one at a time, only
// where wanted: prefetching would start a goroutine per item, and metadata values are
// small and inline in the LSM tree anyway. A read-write transaction allows one open
// iterator at a time.
func (tx *Tx) prefixIterator(prefix []byte) *badger.Iterator {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	return tx.txn.NewIterator(opts)
}

// scan visits the keys under prefix, starting at start (nil = the first), in key order.
// visit returning false stops the scan.
func (tx *Tx) scan(prefix, start []byte, keysOnly bool, visit func(key, val []byte) (bool, error)) error {
	seek := prefix
	if start != nil {
		seek = start
	}
	type kv struct{ key, val []byte }
	batch := make([]kv, 0, 16)
	for {
		it := tx.prefixIterator(prefix)
		batch = batch[:0]
		var err error
		for it.Seek(seek); it.Valid() && len(batch) < scanBatch; it.Next() {
			item := it.Item()
			e := kv{key: item.KeyCopy(nil)}
			if !keysOnly {
				if e.val, err = item.ValueCopy(nil); err != nil {
					break
				}
			}
			batch = append(batch, e)
		}
		more := err == nil && it.Valid()
		it.Close()
		if err != nil {
			return err
		}
		for _, e := range batch {
			cont, err := visit(e.key, e.val)
			if err != nil || !cont {
				return err
			}
		}
		if !more {
			return nil
		}
		// The smallest key strictly after the last one seen.
		last := batch[len(batch)-1].key
		seek = append(last[:len(last):len(last)], 0)
	}
}

// ---- inodes ----

func (tx *Tx) Inode(ino Ino) (Inode, error) {
	v, err := tx.get(inodeKey(ino))
	if err != nil {
		return Inode{}, notFound(err, "inode %d", ino)
	}
	in, err := decodeInode(ino, v)
	return in, wrap(err, "inode %d", ino)
}

func (tx *Tx) PutInode(in *Inode) error {
	if in.Ino == 0 {
		return errors.New("meta: put inode: inode number 0")
	}
	return wrap(tx.set(inodeKey(in.Ino), encodeInode(in)), "put inode %d", in.Ino)
}

// DeleteInode removes the inode and everything keyed by it, and returns the removed
// chunks that live in objects, so the caller can delete those objects once this commit is
// durable. Inline chunks are not returned: their ciphertext goes with their record.
//
// It writes a deletion only for records that may exist: each one it writes is an
// (encrypted) entry in Badger's log and memtable, and a tombstone in its tables until a
// compaction drops it. A symlink target belongs only to a symlink and a bucket config only
// to a directory; the orphan and S3 object records are looked up (a cheap miss, found
// in the memtable or ruled out by the tables' bloom filters); xattrs are scanned for only
// when the store may hold any (xattrsKey).
func (tx *Tx) DeleteInode(ino Ino) ([]Chunk, error) {
	tx.freeing()
	v, err := tx.get(inodeKey(ino))
	if err != nil {
		return nil, notFound(err, "delete inode %d", ino)
	}
	typ := uint32(0) // file type; 0 = unknown: every kind of record may exist
	if in, err := decodeInode(ino, v); err == nil {
		typ = in.Mode & syscall.S_IFMT
	}
	chunks, keys, err := tx.chunksToDelete(ino)
	if err != nil {
		return nil, wrap(err, "delete inode %d: chunks", ino)
	}
	xattrs, err := tx.mayHoldXattrs()
	if err != nil {
		return nil, wrap(err, "delete inode %d: xattrs", ino)
	}
	if xattrs {
		err = tx.scan(xattrPrefix(ino), nil, true, func(k, _ []byte) (bool, error) {
			keys = append(keys, k)
			return true, nil
		})
		if err != nil {
			return nil, wrap(err, "delete inode %d: xattrs", ino)
		}
	}
	keys = append(keys, sealedKeyKey(ino), inodeKey(ino))
	if typ == 0 || typ == syscall.S_IFLNK {
		keys = append(keys, symlinkKey(ino))
	}
	if typ == 0 || typ == syscall.S_IFDIR {
		keys = append(keys, bucketKey(ino))
	}
	for _, k := range [][]byte{orphanKey(ino), objectKey(ino)} {
		if _, err := tx.txn.Get(k); errors.Is(err, badger.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return nil, wrap(err, "delete inode %d", ino)
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := tx.del(k); err != nil {
			return nil, wrap(err, "delete inode %d", ino)
		}
	}
	return chunks, nil
}

// chunksToDelete returns the keys of all of ino's chunk records and the records of those
// held in objects. Unlike scan it decodes each value where Badger keeps it: an inline
// chunk's ciphertext (4 KiB for a small file) is never copied out, which was a tenth of
// an unlink's CPU. It opens no other iterator while its own is open, as Badger requires
// of a read-write transaction, so it needs none of scan's batching.
func (tx *Tx) chunksToDelete(ino Ino) (chunks []Chunk, keys [][]byte, err error) {
	prefix := chunkPrefix(ino)
	it := tx.prefixIterator(prefix)
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		item := it.Item()
		k := item.KeyCopy(nil)
		_, idx, err := decodeChunkKey(k)
		if err != nil {
			return nil, nil, err
		}
		err = item.Value(func(v []byte) error {
			c, err := decodeChunk(idx, v)
			if err == nil && c.Inline == nil {
				chunks = append(chunks, c)
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
	}
	return chunks, keys, nil
}

func (tx *Tx) Inodes(fn func(Inode) bool) error {
	err := tx.scan([]byte{pfxInode}, nil, false, func(k, v []byte) (bool, error) {
		ino, err := decodeInoKey(pfxInode, k)
		if err != nil {
			return false, err
		}
		in, err := decodeInode(ino, v)
		if err != nil {
			return false, fmt.Errorf("inode %d: %w", ino, err)
		}
		return fn(in), nil
	})
	return wrap(err, "inodes")
}

// ---- directory entries ----

func (tx *Tx) Lookup(parent Ino, name string) (Entry, error) {
	if name == "" {
		return Entry{}, fmt.Errorf("meta: lookup %d/%q: %w", parent, name, ErrNotFound)
	}
	v, err := tx.get(entryKey(parent, name))
	if err != nil {
		return Entry{}, notFound(err, "lookup %d/%q", parent, name)
	}
	e, err := decodeEntry(name, v)
	return e, wrap(err, "lookup %d/%q", parent, name)
}

func (tx *Tx) PutEntry(parent Ino, e Entry) error {
	if e.Name == "" {
		return fmt.Errorf("meta: put entry in %d: empty name", parent)
	}
	return wrap(tx.set(entryKey(parent, e.Name), encodeEntry(&e)), "put entry %d/%q", parent, e.Name)
}

func (tx *Tx) DeleteEntry(parent Ino, name string) error {
	tx.freeing()
	if name == "" {
		return fmt.Errorf("meta: delete entry %d/%q: %w", parent, name, ErrNotFound)
	}
	k := entryKey(parent, name)
	if _, err := tx.txn.Get(k); err != nil {
		return notFound(err, "delete entry %d/%q", parent, name)
	}
	return wrap(tx.del(k), "delete entry %d/%q", parent, name)
}

// Entries lists a directory in bytewise name order, starting strictly after `after`, so
// a readdir can resume from the last name it returned.
func (tx *Tx) Entries(parent Ino, after string, fn func(Entry) bool) error {
	if after == "" {
		return tx.EntriesFrom(parent, "", fn)
	}
	// Names hold no NUL, so after‖0 is the first key past after.
	return tx.EntriesFrom(parent, after+"\x00", fn)
}

func (tx *Tx) HasEntries(parent Ino) (bool, error) {
	found := false
	err := tx.scan(entryPrefix(parent), nil, true, func([]byte, []byte) (bool, error) {
		found = true
		return false, nil
	})
	return found, wrap(err, "entries of %d", parent)
}

// ---- chunk maps ----

func (tx *Tx) Chunk(ino Ino, index uint64) (Chunk, error) {
	v, err := tx.get(chunkKey(ino, index))
	if err != nil {
		return Chunk{}, notFound(err, "inode %d chunk %d", ino, index)
	}
	c, err := decodeChunk(index, v)
	return c, wrap(err, "inode %d chunk %d", ino, index)
}

func (tx *Tx) Chunks(ino Ino, from uint64, fn func(Chunk) bool) error {
	err := tx.scan(chunkPrefix(ino), chunkKey(ino, from), false, func(k, v []byte) (bool, error) {
		_, idx, err := decodeChunkKey(k)
		if err != nil {
			return false, err
		}
		c, err := decodeChunk(idx, v)
		if err != nil {
			return false, fmt.Errorf("chunk %d: %w", idx, err)
		}
		return fn(c), nil
	})
	return wrap(err, "chunks of inode %d", ino)
}

func (tx *Tx) PutChunk(ino Ino, c Chunk) error {
	return wrap(tx.set(chunkKey(ino, c.Index), encodeChunk(&c)), "put inode %d chunk %d", ino, c.Index)
}

func (tx *Tx) DeleteChunk(ino Ino, index uint64) error {
	tx.freeing()
	return wrap(tx.del(chunkKey(ino, index)), "delete inode %d chunk %d", ino, index)
}

// ---- xattrs ----

func (tx *Tx) Xattr(ino Ino, name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("meta: inode %d xattr %q: %w", ino, name, ErrNotFound)
	}
	v, err := tx.get(xattrKey(ino, name))
	if err != nil {
		return nil, notFound(err, "inode %d xattr %q", ino, name)
	}
	b, err := decodeBlob("xattr", v)
	return b, wrap(err, "inode %d xattr %q", ino, name)
}

func (tx *Tx) SetXattr(ino Ino, name string, value []byte) error {
	if name == "" {
		return fmt.Errorf("meta: set xattr on inode %d: empty name", ino)
	}
	if err := tx.noteXattr(); err != nil {
		return wrap(err, "set inode %d xattr %q", ino, name)
	}
	return wrap(tx.set(xattrKey(ino, name), encodeBlob(value)), "set inode %d xattr %q", ino, name)
}

func (tx *Tx) RemoveXattr(ino Ino, name string) error {
	tx.freeing()
	if name == "" {
		return fmt.Errorf("meta: remove inode %d xattr %q: %w", ino, name, ErrNotFound)
	}
	k := xattrKey(ino, name)
	if _, err := tx.txn.Get(k); err != nil {
		return notFound(err, "remove inode %d xattr %q", ino, name)
	}
	return wrap(tx.del(k), "remove inode %d xattr %q", ino, name)
}

func (tx *Tx) Xattrs(ino Ino) ([]string, error) {
	names := []string{}
	err := tx.scan(xattrPrefix(ino), nil, true, func(k, _ []byte) (bool, error) {
		_, name, err := decodeXattrKey(k)
		if err != nil {
			return false, err
		}
		names = append(names, name)
		return true, nil
	})
	if err != nil {
		return nil, wrap(err, "xattrs of inode %d", ino)
	}
	// Key order is already bytewise name order; sorting guards that promise cheaply.
	if !sort.StringsAreSorted(names) {
		sort.Strings(names)
	}
	return names, nil
}

// ---- sealed keys, symlinks, bucket configs ----

func (tx *Tx) SealedKey(ino Ino) ([]byte, error) {
	v, err := tx.get(sealedKeyKey(ino))
	if err != nil {
		return nil, notFound(err, "inode %d sealed key", ino)
	}
	b, err := decodeBlob("sealed key", v)
	return b, wrap(err, "inode %d sealed key", ino)
}

func (tx *Tx) PutSealedKey(ino Ino, sealed []byte) error {
	return wrap(tx.set(sealedKeyKey(ino), encodeBlob(sealed)), "put inode %d sealed key", ino)
}

// SealedKeys visits every sealed-key record of inodes from ino `from` on, in inode order.
// The bytes are only valid during the call.
func (tx *Tx) SealedKeys(from Ino, fn func(Ino, []byte) bool) error {
	err := tx.scan([]byte{pfxSealedKey}, sealedKeyKey(from), false, func(k, v []byte) (bool, error) {
		ino, err := decodeInoKey(pfxSealedKey, k)
		if err != nil {
			return false, err
		}
		b, err := decodeBlob("sealed key", v)
		if err != nil {
			return false, fmt.Errorf("inode %d: %w", ino, err)
		}
		return fn(ino, b), nil
	})
	return wrap(err, "sealed keys")
}

func (tx *Tx) Symlink(ino Ino) (string, error) {
	v, err := tx.get(symlinkKey(ino))
	if err != nil {
		return "", notFound(err, "inode %d symlink", ino)
	}
	b, err := decodeBlob("symlink", v)
	return string(b), wrap(err, "inode %d symlink", ino)
}

func (tx *Tx) PutSymlink(ino Ino, target string) error {
	return wrap(tx.set(symlinkKey(ino), encodeBlob([]byte(target))), "put inode %d symlink", ino)
}

func (tx *Tx) BucketConfig(bucket Ino) (BucketConfig, error) {
	v, err := tx.get(bucketKey(bucket))
	if err != nil {
		return BucketConfig{}, notFound(err, "bucket %d config", bucket)
	}
	c, err := decodeBucketConfig(v)
	return c, wrap(err, "bucket %d config", bucket)
}

func (tx *Tx) PutBucketConfig(bucket Ino, c BucketConfig) error {
	return wrap(tx.set(bucketKey(bucket), encodeBucketConfig(&c)), "put bucket %d config", bucket)
}

// RotationJob returns the key rotation in progress (ErrNotFound if none).
func (tx *Tx) RotationJob() (RotationJob, error) {
	v, err := tx.get(rotationKey())
	if err != nil {
		return RotationJob{}, notFound(err, "rotation job")
	}
	j, err := decodeRotation(v)
	return j, wrap(err, "rotation job")
}

func (tx *Tx) PutRotationJob(j RotationJob) error {
	return wrap(tx.set(rotationKey(), encodeRotation(&j)), "put rotation job")
}

func (tx *Tx) DeleteRotationJob() error {
	tx.freeing()
	return wrap(tx.del(rotationKey()), "delete rotation job")
}

// ---- orphans ----

// AddOrphan and RemoveOrphan do not mark the Tx as freeing: an S3 PUT stages its new
// inode as an orphan and publishes it by taking it off the list, and those commits grow
// the store. Unlinking an open file adds an orphan too, but DeleteEntry marks that one.
func (tx *Tx) AddOrphan(ino Ino) error {
	return wrap(tx.set(orphanKey(ino), encodeOrphan()), "add orphan %d", ino)
}

func (tx *Tx) RemoveOrphan(ino Ino) error {
	return wrap(tx.del(orphanKey(ino)), "remove orphan %d", ino)
}

func (tx *Tx) Orphans(fn func(Ino) bool) error {
	err := tx.scan([]byte{pfxOrphan}, nil, false, func(k, v []byte) (bool, error) {
		ino, err := decodeInoKey(pfxOrphan, k)
		if err != nil {
			return false, err
		}
		if err := decodeOrphan(v); err != nil {
			return false, fmt.Errorf("orphan %d: %w", ino, err)
		}
		return fn(ino), nil
	})
	return wrap(err, "orphans")
}

package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// Snapshots of the metadata for `ssefs backup`, and what makes them safe to restore: the
// deferred deletion of chunk objects they may still reference.
//
// A snapshot is the whole store as one read transaction sees it, written in Badger's own
// backup format (what badger.DB.Backup writes and badger.DB.Load reads: a little-endian
// uint64 length, then a protobuf pb.KVList, repeated). It is not made with DB.Backup:
// that streams with several goroutines, each in a read transaction of its own, so on a
// live store a rename could appear in one range and not the other. One transaction at
// one read timestamp is what makes the snapshot consistent; that timestamp (ReadTs) is
// also what the deferred deletions are compared with.
//
// Keys (after the upload records of codec.go, never renumbered; kept here with the code
// that alone uses them, and checked against codec.go's prefixes by a test):
//
//	pfxBackupState                   -> BackupState (its presence turns deferral on)
//	pfxDeferred | objectID(16)       -> codecV1: an object freed while snapshots exist
//
// A deferred record's Badger version is the commit timestamp of the transaction that
// wrote it, which came after the commit that dropped the object's last chunk record. A
// snapshot at read timestamp T >= that version was taken after the drop, so it does not
// reference the object; one below it may.
const (
	pfxBackupState byte = 0x1d
	pfxDeferred    byte = 0x1e
)

func backupStateKey() []byte { return []byte{pfxBackupState} }

func deferredKey(id [16]byte) []byte { return append([]byte{pfxDeferred}, id[:]...) }

// BackupState is what the store knows of its snapshots.
type BackupState struct {
	// Lineage identifies the snapshots of this store, so that a directory shared by
	// several stores' snapshots is pruned only of this store's. A restored store keeps it.
	Lineage [16]byte
	// Horizon is the read timestamp of the oldest snapshot that must stay restorable:
	// objects deferred at or below it are referenced by none of them and may go.
	Horizon uint64
	// Last is when the last snapshot completed (unix seconds; 0: none yet).
	Last int64
}

func encodeBackupState(s BackupState) []byte {
	b := append([]byte{codecV1}, s.Lineage[:]...)
	b = binary.AppendUvarint(b, s.Horizon)
	return appendVarint(b, s.Last)
}

func decodeBackupState(b []byte) (BackupState, error) {
	var s BackupState
	r := newReader("backup state", b)
	r.fixed(s.Lineage[:])
	s.Horizon = r.uvarint()
	s.Last = r.varint()
	return s, r.done()
}

// BackupState returns the store's backup state; ok is false when no snapshot was ever
// taken (or deferral was turned off), and chunk objects are deleted as soon as they are
// free.
func (tx *Tx) BackupState() (s BackupState, ok bool, err error) {
	v, err := tx.get(backupStateKey())
	if errors.Is(err, badger.ErrKeyNotFound) {
		return s, false, nil
	}
	if err != nil {
		return s, false, wrap(err, "backup state")
	}
	s, err = decodeBackupState(v)
	return s, err == nil, wrap(err, "backup state")
}

// PutBackupState records the backup state (and so turns deferral on).
func (tx *Tx) PutBackupState(s BackupState) error {
	return wrap(tx.set(backupStateKey(), encodeBackupState(s)), "backup state")
}

// DeleteBackupState turns deferral off.
func (tx *Tx) DeleteBackupState() error {
	tx.freeing()
	return wrap(tx.del(backupStateKey()), "backup state")
}

// Defer records objects whose deletion waits for the snapshots (see above).
func (tx *Tx) Defer(ids [][16]byte) error {
	// It adds records, but it finishes a deletion that already committed: refused on a
	// full disk, the objects would only wait in memory for the next sync.
	tx.freeing()
	for _, id := range ids {
		if err := tx.set(deferredKey(id), []byte{codecV1}); err != nil {
			return wrap(err, "deferring object %x", id)
		}
	}
	return nil
}

// Undefer drops the records of objects that are deleted now.
func (tx *Tx) Undefer(ids [][16]byte) error {
	tx.freeing()
	for _, id := range ids {
		if err := tx.del(deferredKey(id)); err != nil {
			return wrap(err, "undeferring object %x", id)
		}
	}
	return nil
}

// Deferred visits the deferred objects whose record's version is at most upTo
// (math.MaxUint64: all), in ID order. fn returning false stops the scan.
func (tx *Tx) Deferred(upTo uint64, fn func(id [16]byte, version uint64) bool) error {
	type rec struct {
		id [16]byte
		v  uint64
	}
	seek := []byte{pfxDeferred}
	batch := make([]rec, 0, scanBatch)
	for {
		it := tx.prefixIterator([]byte{pfxDeferred})
		batch = batch[:0]
		var bad []byte
		for it.Seek(seek); it.Valid() && len(batch) < scanBatch; it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) != 17 {
				bad = item.KeyCopy(nil)
				break
			}
			var r rec
			copy(r.id[:], k[1:])
			r.v = item.Version()
			batch = append(batch, r)
		}
		more := it.Valid()
		it.Close()
		if bad != nil {
			return fmt.Errorf("meta: deferred objects: %w: bad key %x", ErrCorrupt, bad)
		}
		for _, r := range batch {
			if r.v <= upTo && !fn(r.id, r.v) {
				return nil
			}
		}
		if !more || len(batch) == 0 {
			return nil
		}
		last := deferredKey(batch[len(batch)-1].id)
		seek = append(last, 0)
	}
}

// Snapshot is one consistent view of the whole store, to be written out as a backup.
type Snapshot struct {
	db      *DB
	txn     *badger.Txn
	discard sync.Once
}

// Snapshot opens a read transaction over the whole store. Discard it when done: it holds
// Badger's garbage collection of older versions back while it is open.
func (db *DB) Snapshot() (*Snapshot, error) {
	if db.closed.Load() {
		return nil, errClosed
	}
	return &Snapshot{db: db, txn: db.clock.begin(false)}, nil
}

// ReadTs is the snapshot's read timestamp: it holds every commit at or below it.
func (s *Snapshot) ReadTs() uint64 { return s.txn.ReadTs() }

// Discard releases the snapshot. Calling it again does nothing.
func (s *Snapshot) Discard() { s.discard.Do(func() { s.db.clock.end(s.txn) }) }

// snapshotBatch is the bound on one pb.KVList of a snapshot (Badger's own Stream sends
// lists of a few MiB too).
const snapshotBatch = 4 << 20

// WriteTo writes every live key and value in Badger's backup format. Badger's internal
// keys (its "!badger!" range) are left out: a store restored from the stream makes its own.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchSize = 256
	it := s.txn.NewIterator(opts)
	defer it.Close()
	var written int64
	list := &pb.KVList{}
	size := 0
	flush := func() error {
		if len(list.Kv) == 0 {
			return nil
		}
		buf, err := proto.Marshal(list)
		if err != nil {
			return err
		}
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(buf)))
		for _, b := range [][]byte{n[:], buf} {
			m, err := w.Write(b)
			written += int64(m)
			if err != nil {
				return err
			}
		}
		list.Kv, size = list.Kv[:0], 0
		return nil
	}
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) > 0 && k[0] >= '!' {
			continue // Badger's own keys, and nothing of ours lives at or above 0x21
		}
		if item.IsDeletedOrExpired() {
			continue
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return written, fmt.Errorf("meta: snapshot: reading %x: %w", k, err)
		}
		list.Kv = append(list.Kv, &pb.KV{
			Key: item.KeyCopy(nil), Value: v, UserMeta: []byte{item.UserMeta()},
			Version: item.Version(), ExpiresAt: item.ExpiresAt(),
		})
		size += len(k) + len(v)
		if size >= snapshotBatch {
			if err := flush(); err != nil {
				return written, fmt.Errorf("meta: snapshot: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return written, fmt.Errorf("meta: snapshot: %w", err)
	}
	return written, nil
}

// restoreVersionSkip is how far Restore moves the chunk version sequence on. The store a
// snapshot came from may have handed out versions after the snapshot (chunks written to
// objects that the restored metadata never names); a restored store must not hand them
// out again, since a chunk's key derives from its file, index and version.
const restoreVersionSkip = 1 << 40

// Restore fills the empty directory dir with the store that a snapshot stream (from
// Snapshot.WriteTo, or badger.DB.Backup) holds, encrypted with the 32-byte key, and makes
// it durable. It does not check the stream's origin: the caller authenticates it. Open it
// afterwards with Open, which checks its superblock.
func Restore(dir string, encryptionKey []byte, r io.Reader, opts Options) error {
	if len(encryptionKey) != 32 {
		return fmt.Errorf("meta: encryption key must be 32 bytes (AES-256), got %d", len(encryptionKey))
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("meta: restore into %s: the directory is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("meta: restore into %s: %w", dir, err)
	}
	// The options Open uses: the restored store is the same store.
	bopts := badger.DefaultOptions(dir).
		WithEncryptionKey(encryptionKey).
		WithIndexCacheSize(64 << 20).
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithBlockCacheSize(64 << 20).
		WithMemTableSize(MemTableSize).
		WithLogger(logAdapter{opts.Logger})
	bdb, err := badger.Open(bopts)
	if err != nil {
		return fmt.Errorf("meta: restore into %s: %w", dir, err)
	}
	fail := func(err error) error {
		bdb.Close()
		return fmt.Errorf("meta: restore into %s: %w", dir, err)
	}
	if err := bdb.Load(&frameGuard{r: r}, 16); err != nil {
		return fail(fmt.Errorf("loading the snapshot: %w", err))
	}
	err = bdb.Update(func(txn *badger.Txn) error {
		key := sequenceKey("version")
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errors.New("the snapshot holds no version sequence: not an ssefs store")
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		next, err := decodeSequence(v)
		if err != nil {
			return err
		}
		if next > math.MaxUint64-restoreVersionSkip {
			return errors.New("the version sequence is exhausted")
		}
		return txn.Set(key, encodeSequence(next+restoreVersionSkip))
	})
	if err != nil {
		return fail(err)
	}
	if err := bdb.Sync(); err != nil {
		return fail(err)
	}
	if err := bdb.Close(); err != nil {
		return fmt.Errorf("meta: restore into %s: %w", dir, err)
	}
	return nil
}

// maxSnapshotFrame bounds one pb.KVList of a snapshot stream. Badger's Load allocates
// whatever length a frame claims, and panics on an absurd one: frameGuard fails the
// stream first.
const maxSnapshotFrame = 256 << 20

// frameGuard passes a snapshot stream through, checking each frame's length prefix.
type frameGuard struct {
	r    io.Reader
	hdr  [8]byte
	nhdr int    // bytes of the current length prefix seen
	left uint64 // bytes of the current frame still to pass
}

func (g *frameGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for i := 0; i < n; {
		if g.left > 0 {
			k := min(uint64(n-i), g.left)
			g.left -= k
			i += int(k)
			continue
		}
		g.hdr[g.nhdr] = p[i]
		g.nhdr++
		i++
		if g.nhdr == len(g.hdr) {
			g.nhdr = 0
			g.left = binary.LittleEndian.Uint64(g.hdr[:])
			if g.left > maxSnapshotFrame {
				return 0, fmt.Errorf("%w: a snapshot frame of %d bytes: not a snapshot stream", ErrCorrupt, g.left)
			}
		}
	}
	return n, err
}

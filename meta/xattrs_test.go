package meta

import (
	"errors"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// xattrsRecord reads the store's xattrs record: -1 when it has none.
func xattrsRecord(t *testing.T, db *DB) int {
	t.Helper()
	rec := -1
	view(t, db, func(tx *Tx) error {
		v, err := tx.get(xattrsKey())
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(v) != 1 {
			t.Fatalf("xattrs record %x", v)
		}
		rec = int(v[0])
		return nil
	})
	return rec
}

// A regular file's deletion writes deletions for its own records only: its inode, its
// sealed key and its chunk records. Each needless one is an encrypted log entry, and a
// tombstone in the tables until a compaction.
func TestDeleteInodeWritesOnlyWhatExists(t *testing.T) {
	db, _ := newDB(t)
	if got := xattrsRecord(t, db); got != 0 {
		t.Fatalf("new store: xattrs record %d, want 0", got)
	}
	const ino = 77
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: 10}); err != nil {
			return err
		}
		if err := tx.PutSealedKey(ino, []byte("sealed")); err != nil {
			return err
		}
		return tx.PutChunk(ino, Chunk{Index: 0, Version: 1, PlainLen: 10, StoredLen: 42, Inline: make([]byte, 42)})
	})
	var logBytes uint64
	update(t, db, func(tx *Tx) error {
		if _, err := tx.DeleteInode(ino); err != nil {
			return err
		}
		logBytes = tx.logBytes
		return nil
	})
	want := uint64(len(inodeKey(ino))+len(sealedKeyKey(ino))+len(chunkKey(ino, 0))) + 3*logEntryOverhead
	if logBytes != want {
		t.Errorf("deleting a regular file writes %d bytes of log, want %d (its three records)", logBytes, want)
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Inode(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("inode: %v", err)
		}
		if _, err := tx.SealedKey(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("sealed key: %v", err)
		}
		if _, err := tx.Chunk(ino, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("chunk: %v", err)
		}
		return nil
	})
}

// Records of every kind go with their inode when it has a real type too: the symlink
// target with a symlink, the bucket config with a directory, the orphan and S3 object
// records and the xattrs with anything.
func TestDeleteInodeTypedRecords(t *testing.T) {
	db, _ := newDB(t)
	const link, dir = 80, 81
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: link, Mode: syscall.S_IFLNK | 0o777, Size: 1}); err != nil {
			return err
		}
		if err := tx.PutSymlink(link, "t"); err != nil {
			return err
		}
		if err := tx.AddOrphan(link); err != nil {
			return err
		}
		if err := tx.SetXattr(link, "user.a", []byte("v")); err != nil {
			return err
		}
		if err := tx.PutInode(&Inode{Ino: dir, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}); err != nil {
			return err
		}
		if err := tx.PutBucketConfig(dir, BucketConfig{DefaultKey: "k"}); err != nil {
			return err
		}
		return tx.PutObject(dir, &Object{ETag: "e"})
	})
	if got := xattrsRecord(t, db); got != 1 {
		t.Fatalf("after a setxattr: xattrs record %d, want 1", got)
	}
	update(t, db, func(tx *Tx) error {
		for _, ino := range []Ino{link, dir} {
			if _, err := tx.DeleteInode(ino); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Symlink(link); !errors.Is(err, ErrNotFound) {
			t.Errorf("symlink: %v", err)
		}
		var orphans []Ino
		tx.Orphans(func(i Ino) bool { orphans = append(orphans, i); return true })
		if len(orphans) != 0 {
			t.Errorf("orphans left: %v", orphans)
		}
		if names, _ := tx.Xattrs(link); len(names) != 0 {
			t.Errorf("xattrs left: %v", names)
		}
		if _, err := tx.BucketConfig(dir); !errors.Is(err, ErrNotFound) {
			t.Errorf("bucket config: %v", err)
		}
		if _, err := tx.Object(dir); !errors.Is(err, ErrNotFound) {
			t.Errorf("object record: %v", err)
		}
		return nil
	})
}

// A store written before the xattrs record existed may hold xattrs: until Open has looked,
// deletions scan for them, and Open records what it found.
func TestXattrsRecordOfAnOlderStore(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	const ino = 90
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1}); err != nil {
			return err
		}
		if err := tx.PutInode(&Inode{Ino: ino + 1, Mode: syscall.S_IFREG | 0o644, Nlink: 1}); err != nil {
			return err
		}
		if err := tx.SetXattr(ino, "user.a", []byte("v")); err != nil {
			return err
		}
		if err := tx.SetXattr(ino+1, "user.b", []byte("v")); err != nil {
			return err
		}
		return tx.txn.Delete(xattrsKey()) // as an older ssefs left it
	})
	if got := xattrsRecord(t, db); got != -1 {
		t.Fatalf("xattrs record %d, want none", got)
	}
	update(t, db, func(tx *Tx) error { _, err := tx.DeleteInode(ino); return err })
	view(t, db, func(tx *Tx) error {
		if names, _ := tx.Xattrs(ino); len(names) != 0 {
			t.Errorf("without the record, the xattrs of a deleted inode stay: %v", names)
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	if got := xattrsRecord(t, db); got != 1 {
		t.Fatalf("reopened store with xattrs: record %d, want 1", got)
	}
	update(t, db, func(tx *Tx) error { _, err := tx.DeleteInode(ino + 1); return err })
	view(t, db, func(tx *Tx) error {
		if names, _ := tx.Xattrs(ino + 1); len(names) != 0 {
			t.Errorf("xattrs of a deleted inode stay: %v", names)
		}
		return nil
	})
}

// A deletion that ruled out xattrs (the store had none) conflicts with the first setxattr
// committed meanwhile, and its retry finds and deletes the new record.
func TestDeleteInodeRacesFirstSetxattr(t *testing.T) {
	db, _ := newDB(t)
	const ino = 95
	update(t, db, func(tx *Tx) error {
		return tx.PutInode(&Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1})
	})
	attempts := 0
	update(t, db, func(tx *Tx) error {
		attempts++
		if _, err := tx.DeleteInode(ino); err != nil {
			return err
		}
		if attempts == 1 {
			// Committed between this transaction's reads and its commit. (A caller that
			// looks at the inode first would conflict on it as well; this one does not.)
			if err := db.Update(func(tx *Tx) error { return tx.SetXattr(ino, "user.late", []byte("v")) }); err != nil {
				return err
			}
		}
		return nil
	})
	if attempts < 2 {
		t.Errorf("the deletion was not retried after the concurrent setxattr")
	}
	view(t, db, func(tx *Tx) error {
		if names, _ := tx.Xattrs(ino); len(names) != 0 {
			t.Errorf("xattr set during the deletion left behind: %v", names)
		}
		return nil
	})
}

package meta

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// xattrsKey holds one byte: 1 once an inode of this store got an xattr of any name (for
// good: it is never cleared), 0 while none ever did. A store without the record (written
// before it existed, or restored from such a backup) may hold xattrs: Open looks and
// records the answer. It lives beside the superblock, in the superblock's prefix.
//
// DeleteInode reads it to skip its scan for xattrs of the inode: most stores never hold
// one, and that scan (a Badger iterator and a seek through every table) was a large part
// of what an unlink cost. It is read in the deleting transaction and written in every one
// that sets an xattr, so a deletion racing with the first SetXattr of the store conflicts
// with it and is retried, rather than missing the new record.
func xattrsKey() []byte { return append([]byte{pfxSuperblock}, "xattrs"...) }

// noteXattr records, in the transaction that sets an xattr, that the store holds one.
// Once it is recorded, it is only read: a write each time would make every deletion
// running beside any setxattr conflict and retry.
func (tx *Tx) noteXattr() error {
	if v, err := tx.get(xattrsKey()); err == nil && len(v) == 1 && v[0] == 1 {
		return nil
	} else if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	return tx.set(xattrsKey(), []byte{1})
}

// mayHoldXattrs tells whether any inode of the store may hold an xattr.
func (tx *Tx) mayHoldXattrs() (bool, error) {
	v, err := tx.get(xattrsKey())
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return true, nil // not known: see xattrsKey
	case err != nil:
		return true, err
	}
	return !(len(v) == 1 && v[0] == 0), nil
}

// initXattrsRecord makes sure the store has the xattrs record, looking for an xattr when
// it has none. Only a shortcut: when it cannot be read or recorded (a full disk, a
// read-only store), deletions keep scanning, and the next start tries again.
func (db *DB) initXattrsRecord() {
	if db.readOnly {
		return
	}
	_ = db.Update(func(tx *Tx) error {
		if _, err := tx.get(xattrsKey()); !errors.Is(err, badger.ErrKeyNotFound) {
			return err // known already, or unreadable
		}
		used := false
		err := tx.scan([]byte{pfxXattr}, nil, true, func(_, _ []byte) (bool, error) {
			used = true
			return false, nil
		})
		if err != nil {
			return err
		}
		v := byte(0)
		if used {
			v = 1
		}
		return tx.set(xattrsKey(), []byte{v})
	})
}

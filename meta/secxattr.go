package meta

import (
	"errors"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// SecurityXattrPrefix is the xattr namespace ls -l asks about for every file it lists
// (security.selinux). Few stores ever hold a name in it, so the store records whether
// one does, and the engine can answer those questions without a lookup per file.
const SecurityXattrPrefix = "security."

// securityXattrsKey holds one byte: 1 once an inode of this store got a security.*
// xattr (for good: it is never cleared), 0 while none ever did. It lives beside the
// superblock, in the superblock's prefix.
func securityXattrsKey() []byte { return append([]byte{pfxSuperblock}, "security-xattrs"...) }

// NoteSecurityXattr records that a security.* xattr is being set, in the transaction
// that sets it.
func (tx *Tx) NoteSecurityXattr() error {
	return wrap(tx.set(securityXattrsKey(), []byte{1}), "note a security xattr")
}

// SecurityXattrsUsed tells whether any inode may hold a security.* xattr. A store
// written before the record existed is scanned once, and the answer recorded.
func (db *DB) SecurityXattrsUsed() (bool, error) {
	var used, known bool
	err := db.View(func(tx *Tx) error {
		v, err := tx.get(securityXattrsKey())
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return nil
		case err != nil:
			return wrap(err, "security xattrs record")
		}
		known, used = true, len(v) == 1 && v[0] == 1
		return nil
	})
	if err != nil || known || db.readOnly {
		return used || err != nil || !known, err
	}
	err = db.View(func(tx *Tx) error {
		return tx.scan([]byte{pfxXattr}, nil, true, func(k, _ []byte) (bool, error) {
			_, name, err := decodeXattrKey(k)
			if err != nil {
				return false, err
			}
			used = strings.HasPrefix(name, SecurityXattrPrefix)
			return !used, nil
		})
	})
	if err != nil {
		return true, wrap(err, "looking for security xattrs")
	}
	// Only a shortcut for the next start: a failure to record it (a full disk) costs
	// that start the scan again, nothing more.
	_ = db.Update(func(tx *Tx) error {
		v := byte(0)
		if used {
			v = 1
		}
		return tx.set(securityXattrsKey(), []byte{v})
	})
	return used, nil
}

package meta

import "testing"

// TestSecurityXattrsUsed: a store without the record (one written before it existed) is
// scanned once and the answer kept; NoteSecurityXattr turns it on for good.
func TestSecurityXattrsUsed(t *testing.T) {
	used := func(db *DB) bool {
		t.Helper()
		u, err := db.SecurityXattrsUsed()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	record := func(db *DB) []byte {
		t.Helper()
		var v []byte
		view(t, db, func(tx *Tx) (err error) { v, err = tx.get(securityXattrsKey()); return err })
		return v
	}

	db, _ := newDB(t)
	update(t, db, func(tx *Tx) error { return tx.SetXattr(RootIno, "user.a", []byte("1")) })
	if used(db) {
		t.Error("a store with only user. xattrs reports security xattrs")
	}
	if v := record(db); len(v) != 1 || v[0] != 0 {
		t.Errorf("record after the scan: %v, want [0]", v)
	}
	update(t, db, func(tx *Tx) error { return tx.NoteSecurityXattr() })
	if !used(db) {
		t.Error("NoteSecurityXattr did not stick")
	}

	// An older store: a security. xattr, and no record (SetXattr alone writes none).
	old, dir := newDB(t)
	update(t, old, func(tx *Tx) error { return tx.SetXattr(RootIno, "security.selinux", []byte("ctx")) })
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	old = openDB(t, dir)
	defer old.Close()
	if !used(old) {
		t.Error("the scan missed a security. xattr of an older store")
	}
	if v := record(old); len(v) != 1 || v[0] != 1 {
		t.Errorf("record after the scan: %v, want [1]", v)
	}
}

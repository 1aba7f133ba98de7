package meta

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// dump returns every live key of ours with its value and version.
func dump(t *testing.T, db *DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if item.Key()[0] >= '!' {
				continue
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(item.KeyCopy(nil))] = fmt.Sprintf("%x@%d", v, item.Version())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func putFile(t *testing.T, db *DB, ino Ino, name string) {
	t.Helper()
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Parent: RootIno, Size: 5}); err != nil {
			return err
		}
		if err := tx.PutEntry(RootIno, Entry{Name: name, Ino: ino, Mode: syscall.S_IFREG}); err != nil {
			return err
		}
		return tx.PutChunk(ino, Chunk{Index: 0, Object: [16]byte{byte(ino)}, Version: uint64(ino), PlainLen: 5, StoredLen: 37})
	})
}

// A snapshot restores to the same keys, values and versions it saw, and nothing written
// after it was taken; the restored store opens, and its chunk versions move on.
func TestSnapshotRestore(t *testing.T) {
	db, _ := newDB(t)
	for i := Ino(2); i < 300; i++ {
		putFile(t, db, i, fmt.Sprintf("file-%d", i))
	}
	v, err := db.NextVersion()
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, db)
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	putFile(t, db, 1000, "after-the-snapshot") // must not be in it
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	readTs := snap.ReadTs()
	snap.Discard()
	for k, val := range want {
		var ver uint64
		fmt.Sscanf(val[bytes.IndexByte([]byte(val), '@')+1:], "%d", &ver)
		if ver > readTs {
			t.Fatalf("key %x has version %d above the snapshot's read timestamp %d", k, ver, readTs)
		}
	}

	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(dir, testKey(7), &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Restore(dir, testKey(7), bytes.NewReader(nil), Options{}); err == nil {
		t.Fatal("Restore into a non-empty directory succeeded")
	}
	got := openDB(t, dir)
	defer got.Close()
	gotDump := dump(t, got)
	for k, val := range want {
		if k == string(sequenceKey("version")) {
			continue
		}
		if gotDump[k] != val {
			t.Errorf("key %x: restored %q, want %q", k, gotDump[k], val)
		}
	}
	for k := range gotDump {
		if _, ok := want[k]; !ok {
			t.Errorf("restored key %x was not in the snapshot", k)
		}
	}
	view(t, got, func(tx *Tx) error {
		if _, err := tx.Lookup(RootIno, "after-the-snapshot"); err == nil {
			t.Error("a file created after the snapshot was restored")
		}
		if e, err := tx.Lookup(RootIno, "file-42"); err != nil || e.Ino != 42 {
			t.Errorf("file-42: %+v, %v", e, err)
		}
		return nil
	})
	nv, err := got.NextVersion()
	if err != nil {
		t.Fatal(err)
	}
	if nv < v+restoreVersionSkip {
		t.Errorf("restored store hands out version %d; the original had reached %d", nv, v)
	}
	// Not a snapshot at all, or one cut short: refused.
	if err := Restore(filepath.Join(t.TempDir(), "x"), testKey(7), bytes.NewReader([]byte("garbage!garbage!")), Options{}); err == nil {
		t.Error("Restore of garbage succeeded")
	}
}

// Deferred records carry the version of their commit: a snapshot taken after a record
// sees it at or below its read timestamp, one taken before does not.
func TestDeferredVersions(t *testing.T) {
	db, _ := newDB(t)
	a, b := [16]byte{1}, [16]byte{2}
	update(t, db, func(tx *Tx) error { return tx.Defer([][16]byte{a}) })
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	t1 := snap.ReadTs()
	snap.Discard()
	update(t, db, func(tx *Tx) error { return tx.Defer([][16]byte{b}) })
	var upToT1, all [][16]byte
	view(t, db, func(tx *Tx) error {
		if err := tx.Deferred(t1, func(id [16]byte, _ uint64) bool { upToT1 = append(upToT1, id); return true }); err != nil {
			return err
		}
		return tx.Deferred(math.MaxUint64, func(id [16]byte, _ uint64) bool { all = append(all, id); return true })
	})
	if len(upToT1) != 1 || upToT1[0] != a {
		t.Errorf("deferred up to the snapshot: %x, want only %x", upToT1, a)
	}
	if len(all) != 2 {
		t.Errorf("all deferred: %x", all)
	}
	update(t, db, func(tx *Tx) error { return tx.Undefer([][16]byte{a}) })
	all = nil
	view(t, db, func(tx *Tx) error {
		return tx.Deferred(math.MaxUint64, func(id [16]byte, _ uint64) bool { all = append(all, id); return true })
	})
	if len(all) != 1 || all[0] != b {
		t.Errorf("after Undefer: %x", all)
	}

	view(t, db, func(tx *Tx) error {
		if _, ok, err := tx.BackupState(); ok || err != nil {
			t.Errorf("a fresh store has backup state: %v %v", ok, err)
		}
		return nil
	})
	st := BackupState{Lineage: [16]byte{9, 9}, Horizon: 77, Last: 1234}
	update(t, db, func(tx *Tx) error { return tx.PutBackupState(st) })
	view(t, db, func(tx *Tx) error {
		got, ok, err := tx.BackupState()
		if !ok || err != nil || got != st {
			t.Errorf("backup state: %+v %v %v, want %+v", got, ok, err, st)
		}
		return nil
	})
}

// The backup prefixes live in this file, not codec.go: they must not collide with any
// there.
func TestBackupPrefixesUnique(t *testing.T) {
	seen := map[byte]string{}
	for name, p := range map[string]byte{
		"superblock": pfxSuperblock, "sequence": pfxSequence, "inode": pfxInode, "entry": pfxEntry,
		"chunk": pfxChunk, "xattr": pfxXattr, "sealed key": pfxSealedKey, "symlink": pfxSymlink,
		"bucket": pfxBucket, "orphan": pfxOrphan, "rotation": pfxRotation, "object": pfxObject,
		"upload": pfxUpload, "upload key": pfxUploadKey, "part": pfxPart,
		"backup state": pfxBackupState, "deferred": pfxDeferred,
	} {
		if other, ok := seen[p]; ok {
			t.Errorf("prefix %#x is both %s and %s", p, name, other)
		}
		seen[p] = name
		if p >= '!' {
			t.Errorf("prefix %#x (%s) is in Badger's own key range", p, name)
		}
	}
}

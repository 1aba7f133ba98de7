package meta

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func openDB(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, testKey(7), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newDB(t *testing.T) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	db := openDB(t, dir)
	t.Cleanup(func() { db.Close() })
	return db, dir
}

func update(t *testing.T, db *DB, fn func(tx *Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, db *DB, fn func(tx *Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

func TestRootCreated(t *testing.T) {
	db, _ := newDB(t)
	view(t, db, func(tx *Tx) error {
		root, err := tx.Inode(RootIno)
		if err != nil {
			return err
		}
		if root.Mode != syscall.S_IFDIR|0o755 || root.Nlink != 2 || root.Gen != 1 || root.Uid != 0 || root.Gid != 0 {
			t.Errorf("root inode %+v", root)
		}
		if root.Mtime == 0 || root.Ctime == 0 || root.Atime == 0 {
			t.Errorf("root times not set: %+v", root)
		}
		return nil
	})
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	in := sampleInodes()[2]
	in.Ino = 42
	chunks := sampleChunks()
	var rootMtime int64
	update(t, db, func(tx *Tx) error {
		root, _ := tx.Inode(RootIno)
		rootMtime = root.Mtime
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		if err := tx.PutEntry(RootIno, Entry{Name: "bucket", Ino: 42, Mode: syscall.S_IFDIR}); err != nil {
			return err
		}
		for _, c := range chunks {
			if err := tx.PutChunk(42, c); err != nil {
				return err
			}
		}
		if err := tx.SetXattr(42, "user.a", []byte("va")); err != nil {
			return err
		}
		if err := tx.SetXattr(42, "user.empty", nil); err != nil {
			return err
		}
		if err := tx.PutSealedKey(42, []byte("sealed")); err != nil {
			return err
		}
		if err := tx.PutSymlink(42, "../target"); err != nil {
			return err
		}
		return tx.PutBucketConfig(42, BucketConfig{DefaultKey: "my-minio-key"})
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := db.View(func(*Tx) error { return nil }); err == nil {
		t.Fatal("View after Close succeeded")
	}

	db = openDB(t, dir)
	defer db.Close()
	view(t, db, func(tx *Tx) error {
		root, err := tx.Inode(RootIno)
		if err != nil || root.Mtime != rootMtime {
			t.Errorf("root recreated on reopen: %+v, %v", root, err)
		}
		got, err := tx.Inode(42)
		if err != nil || got != in {
			t.Errorf("inode: %+v, %v", got, err)
		}
		e, err := tx.Lookup(RootIno, "bucket")
		if err != nil || e != (Entry{Name: "bucket", Ino: 42, Mode: syscall.S_IFDIR}) {
			t.Errorf("entry: %+v, %v", e, err)
		}
		for _, c := range chunks {
			got, err := tx.Chunk(42, c.Index)
			if err != nil || !reflect.DeepEqual(got, c) {
				t.Errorf("chunk %d: %+v, %v", c.Index, got, err)
			}
		}
		if v, err := tx.Xattr(42, "user.a"); err != nil || string(v) != "va" {
			t.Errorf("xattr: %q, %v", v, err)
		}
		if v, err := tx.Xattr(42, "user.empty"); err != nil || v == nil || len(v) != 0 {
			t.Errorf("empty xattr: %q, %v", v, err)
		}
		if v, err := tx.SealedKey(42); err != nil || string(v) != "sealed" {
			t.Errorf("sealed key: %q, %v", v, err)
		}
		if v, err := tx.Symlink(42); err != nil || v != "../target" {
			t.Errorf("symlink: %q, %v", v, err)
		}
		if v, err := tx.BucketConfig(42); err != nil || v.DefaultKey != "my-minio-key" {
			t.Errorf("bucket config: %+v, %v", v, err)
		}
		return nil
	})
}

func TestNotFound(t *testing.T) {
	db, _ := newDB(t)
	view(t, db, func(tx *Tx) error {
		checks := map[string]error{}
		_, checks["inode"] = tx.Inode(1000)
		_, checks["lookup"] = tx.Lookup(RootIno, "nope")
		_, checks["lookup empty"] = tx.Lookup(RootIno, "")
		_, checks["chunk"] = tx.Chunk(1000, 0)
		_, checks["xattr"] = tx.Xattr(1000, "user.x")
		_, checks["sealed"] = tx.SealedKey(1000)
		_, checks["symlink"] = tx.Symlink(1000)
		_, checks["bucket"] = tx.BucketConfig(1000)
		for what, err := range checks {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", what, err)
			}
		}
		return nil
	})
	err := db.Update(func(tx *Tx) error { return tx.DeleteEntry(RootIno, "nope") })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteEntry missing: %v", err)
	}
	err = db.Update(func(tx *Tx) error { return tx.RemoveXattr(RootIno, "user.nope") })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveXattr missing: %v", err)
	}
	_, err = deleteInode(db, 1000)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteInode missing: %v", err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutEntry(RootIno, Entry{Ino: 5}) }); err == nil {
		t.Error("PutEntry with empty name accepted")
	}
}

func deleteInode(db *DB, ino Ino) (chunks []Chunk, err error) {
	err = db.Update(func(tx *Tx) error {
		chunks, err = tx.DeleteInode(ino)
		return err
	})
	return chunks, err
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	update(t, db, func(tx *Tx) error { return tx.PutSymlink(5, "secret") })
	db.Close()

	_, err := Open(dir, testKey(8), Options{})
	if err == nil {
		t.Fatal("open with the wrong key succeeded")
	}
	if !strings.Contains(err.Error(), "wrong metadata encryption key") {
		t.Fatalf("unclear error for wrong key: %v", err)
	}
	if !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		t.Fatalf("error %v does not wrap badger's", err)
	}
	// The right key still works after the failed attempt.
	db = openDB(t, dir)
	db.Close()
}

func TestBadKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := Open(t.TempDir(), make([]byte, n), Options{}); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Errorf("key of %d bytes: %v", n, err)
		}
	}
}

func TestFormatVersionMismatch(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	if err := db.rawUpdate(func(txn *badger.Txn) error {
		return txn.Set(superblockKey(), encodeSuperblock(FormatVersion+98))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(dir, testKey(7), Options{})
	want := fmt.Sprintf("metadata format version %d, this ssefs reads %d", FormatVersion+98, FormatVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("open: %v, want an error containing %q", err, want)
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	update(t, db, func(tx *Tx) error { return tx.PutSymlink(5, "t") })
	db.Close()

	ro, err := Open(dir, testKey(7), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	view(t, ro, func(tx *Tx) error {
		if s, err := tx.Symlink(5); err != nil || s != "t" {
			t.Errorf("symlink in read-only: %q, %v", s, err)
		}
		return nil
	})
	if err := ro.Update(func(tx *Tx) error { return tx.PutSymlink(6, "x") }); err == nil {
		t.Error("write to read-only store succeeded")
	}
	if _, err := ro.NextIno(); err == nil {
		t.Error("NextIno on read-only store succeeded")
	}
}

func TestUpdateConflictRetry(t *testing.T) {
	db, _ := newDB(t)
	const ino = 77
	update(t, db, func(tx *Tx) error { return tx.PutInode(&Inode{Ino: ino}) })

	inc := func(tx *Tx) error {
		in, err := tx.Inode(ino)
		if err != nil {
			return err
		}
		in.Size++
		return tx.PutInode(&in)
	}
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if err := db.Update(inc); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	view(t, db, func(tx *Tx) error {
		in, err := tx.Inode(ino)
		if err != nil {
			return err
		}
		if in.Size != 200 {
			t.Errorf("size %d after 200 increments: lost updates", in.Size)
		}
		return nil
	})
}

func TestUpdateConflictRetryDeterministic(t *testing.T) {
	db, _ := newDB(t)
	const ino = 78
	update(t, db, func(tx *Tx) error { return tx.PutInode(&Inode{Ino: ino}) })
	calls := 0
	update(t, db, func(tx *Tx) error {
		calls++
		in, err := tx.Inode(ino)
		if err != nil {
			return err
		}
		if calls == 1 {
			// Another transaction changes what we read before we commit.
			update(t, db, func(tx2 *Tx) error {
				in2, _ := tx2.Inode(ino)
				in2.Size += 10
				return tx2.PutInode(&in2)
			})
		}
		in.Size++
		return tx.PutInode(&in)
	})
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2 (one conflict, one retry)", calls)
	}
	view(t, db, func(tx *Tx) error {
		in, _ := tx.Inode(ino)
		if in.Size != 11 {
			t.Errorf("size %d, want 11", in.Size)
		}
		return nil
	})
}

func TestUpdateErrorAborts(t *testing.T) {
	db, _ := newDB(t)
	boom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutSymlink(9, "x"); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update returned %v, want fn's error unchanged", err)
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Symlink(9); !errors.Is(err, ErrNotFound) {
			t.Errorf("aborted write visible: %v", err)
		}
		return nil
	})
}

func TestDeleteInode(t *testing.T) {
	db, _ := newDB(t)
	const ino = 500
	var want []Chunk
	update(t, db, func(tx *Tx) error {
		for _, i := range []Ino{ino - 1, ino, ino + 1} {
			if err := tx.PutInode(&Inode{Ino: i, Size: uint64(i)}); err != nil {
				return err
			}
			// Neighbours get one of everything, so we can see they survive.
			if err := tx.PutChunk(i, Chunk{Index: 0, Version: uint64(i)}); err != nil {
				return err
			}
			if err := tx.SetXattr(i, "user.n", []byte("v")); err != nil {
				return err
			}
			if err := tx.PutSealedKey(i, []byte("k")); err != nil {
				return err
			}
			if err := tx.PutSymlink(i, "s"); err != nil {
				return err
			}
			if err := tx.PutBucketConfig(i, BucketConfig{DefaultKey: "k"}); err != nil {
				return err
			}
			if err := tx.AddOrphan(i); err != nil {
				return err
			}
		}
		// An inline chunk: its record goes, and it is not returned, as there is no
		// object to delete.
		inline := Chunk{Index: 3*scanBatch*300 + 1, Object: [16]byte{0xee}, Version: 9, PlainLen: 5, StoredLen: 3, Inline: []byte("abc")}
		if err := tx.PutChunk(ino, inline); err != nil {
			return err
		}
		// More chunks than one iteration batch holds.
		for i := uint64(0); i < 3*scanBatch+7; i++ {
			c := Chunk{Index: i * 300, Object: [16]byte{byte(i), byte(i >> 8)}, Version: i + 1, PlainLen: uint32(i), StoredLen: uint32(i) + 32}
			if err := tx.PutChunk(ino, c); err != nil {
				return err
			}
			want = append(want, c)
		}
		for i := 0; i < 20; i++ {
			if err := tx.SetXattr(ino, fmt.Sprintf("user.x%02d", i), []byte("v")); err != nil {
				return err
			}
		}
		return tx.PutEntry(RootIno, Entry{Name: "f", Ino: ino})
	})
	got, err := deleteInode(db, ino)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("DeleteInode returned %d chunks, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("chunk %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Inode(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("inode: %v", err)
		}
		n := 0
		tx.Chunks(ino, 0, func(Chunk) bool { n++; return true })
		if n != 0 {
			t.Errorf("%d chunks left", n)
		}
		if names, _ := tx.Xattrs(ino); len(names) != 0 {
			t.Errorf("xattrs left: %v", names)
		}
		if _, err := tx.SealedKey(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("sealed key: %v", err)
		}
		if _, err := tx.Symlink(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("symlink: %v", err)
		}
		if _, err := tx.BucketConfig(ino); !errors.Is(err, ErrNotFound) {
			t.Errorf("bucket config: %v", err)
		}
		var orphans []Ino
		tx.Orphans(func(i Ino) bool { orphans = append(orphans, i); return true })
		if !slices.Equal(orphans, []Ino{ino - 1, ino + 1}) {
			t.Errorf("orphans %v", orphans)
		}
		// The caller removes the entry; DeleteInode must not.
		if _, err := tx.Lookup(RootIno, "f"); err != nil {
			t.Errorf("entry naming the inode removed: %v", err)
		}
		for _, i := range []Ino{ino - 1, ino + 1} {
			if _, err := tx.Inode(i); err != nil {
				t.Errorf("neighbour %d: %v", i, err)
			}
			if c, err := tx.Chunk(i, 0); err != nil || c.Version != uint64(i) {
				t.Errorf("neighbour %d chunk: %+v %v", i, c, err)
			}
			if _, err := tx.Xattr(i, "user.n"); err != nil {
				t.Errorf("neighbour %d xattr: %v", i, err)
			}
			if _, err := tx.SealedKey(i); err != nil {
				t.Errorf("neighbour %d sealed key: %v", i, err)
			}
			if _, err := tx.Symlink(i); err != nil {
				t.Errorf("neighbour %d symlink: %v", i, err)
			}
			if _, err := tx.BucketConfig(i); err != nil {
				t.Errorf("neighbour %d bucket: %v", i, err)
			}
		}
		return nil
	})
}

func TestEntries(t *testing.T) {
	db, _ := newDB(t)
	const dir = 300 // 0x12c: a little-endian encoding would sort it among others
	names := []string{"b", "a", "aa", "A", "a b", "\xff", "é", "a\x01", "z", "0", "~", "ab"}
	for i := 0; i < 2*scanBatch; i++ {
		names = append(names, fmt.Sprintf("file-%04d", rand.Intn(100000)))
	}
	sorted := dedupSorted(names)
	update(t, db, func(tx *Tx) error {
		for i, n := range names {
			if err := tx.PutEntry(dir, Entry{Name: n, Ino: Ino(1000 + i), Mode: syscall.S_IFREG}); err != nil {
				return err
			}
		}
		// Entries of neighbouring directories must not leak in.
		for _, p := range []Ino{dir - 1, dir + 1, dir + 256, dir << 8} {
			if err := tx.PutEntry(p, Entry{Name: "neighbour", Ino: 5}); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(after string, limit int) []string {
		var out []string
		view(t, db, func(tx *Tx) error {
			return tx.Entries(dir, after, func(e Entry) bool {
				out = append(out, e.Name)
				return len(out) < limit
			})
		})
		return out
	}
	if got := list("", math.MaxInt); !slices.Equal(got, sorted) {
		t.Fatalf("Entries order:\n got %q\nwant %q", got[:min(20, len(got))], sorted[:min(20, len(sorted))])
	}
	if got := list("a", math.MaxInt); !slices.Equal(got, sorted[sort.SearchStrings(sorted, "a")+1:]) {
		t.Errorf("after existing name: %q", got[:min(5, len(got))])
	}
	if got := list("a\x00", math.MaxInt); len(got) == 0 || got[0] != "a\x01" {
		t.Errorf("after absent name: %q", got[:min(5, len(got))])
	}
	if got := list("\xff", math.MaxInt); len(got) != 0 {
		t.Errorf("after the last name: %q", got)
	}
	if got := list("", 3); !slices.Equal(got, sorted[:3]) {
		t.Errorf("stop after 3: %q", got)
	}
	// Resuming page by page, as readdir does, sees every name once.
	var paged []string
	after := ""
	for pages := 0; ; pages++ {
		page := list(after, 7)
		if len(page) == 0 {
			break
		}
		if pages > len(sorted) {
			t.Fatal("paged listing does not advance")
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(paged, sorted) {
		t.Errorf("paged listing has %d names, want %d", len(paged), len(sorted))
	}

	// fn may use the transaction, including nested iteration and writes.
	update(t, db, func(tx *Tx) error {
		return tx.Entries(dir, "", func(e Entry) bool {
			if _, err := tx.Lookup(dir, e.Name); err != nil {
				t.Errorf("lookup inside Entries: %v", err)
			}
			if _, err := tx.HasEntries(dir + 1); err != nil {
				t.Errorf("nested iteration: %v", err)
			}
			if err := tx.DeleteEntry(dir, e.Name); err != nil {
				t.Errorf("delete inside Entries: %v", err)
			}
			return true
		})
	})
	view(t, db, func(tx *Tx) error {
		if has, err := tx.HasEntries(dir); err != nil || has {
			t.Errorf("HasEntries after deleting all: %v, %v", has, err)
		}
		if has, err := tx.HasEntries(dir + 1); err != nil || !has {
			t.Errorf("HasEntries of neighbour: %v, %v", has, err)
		}
		return nil
	})
}

func dedupSorted(s []string) []string {
	m := map[string]bool{}
	var out []string
	for _, x := range s {
		if !m[x] {
			m[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

func TestHasEntries(t *testing.T) {
	db, _ := newDB(t)
	view(t, db, func(tx *Tx) error {
		if has, err := tx.HasEntries(RootIno); err != nil || has {
			t.Errorf("fresh root has entries: %v %v", has, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error { return tx.PutEntry(2, Entry{Name: "x", Ino: 3}) })
	view(t, db, func(tx *Tx) error {
		if has, _ := tx.HasEntries(RootIno); has {
			t.Error("entry of inode 2 counted for inode 1")
		}
		if has, _ := tx.HasEntries(2); !has {
			t.Error("HasEntries(2) false")
		}
		if has, _ := tx.HasEntries(3); has {
			t.Error("entry of inode 2 counted for inode 3")
		}
		return nil
	})
	// Pending writes count inside the same transaction.
	update(t, db, func(tx *Tx) error {
		if err := tx.DeleteEntry(2, "x"); err != nil {
			return err
		}
		if has, _ := tx.HasEntries(2); has {
			t.Error("deleted entry still counted in its transaction")
		}
		return nil
	})
}

func TestChunksOrder(t *testing.T) {
	db, _ := newDB(t)
	idx := []uint64{65536, 0, 255, 1, 256, 65535, 1 << 32, 257, 1<<40 + 3, math.MaxUint64, 70000}
	sortedIdx := append([]uint64{}, idx...)
	sort.Slice(sortedIdx, func(i, j int) bool { return sortedIdx[i] < sortedIdx[j] })
	const ino = 256
	update(t, db, func(tx *Tx) error {
		for _, i := range idx {
			if err := tx.PutChunk(ino, Chunk{Index: i, Version: i ^ 1}); err != nil {
				return err
			}
		}
		// Chunks of inodes whose numbers share bytes with ours.
		for _, other := range []Ino{1, 255, 257, 65536} {
			if err := tx.PutChunk(other, Chunk{Index: 5}); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(from uint64) []uint64 {
		var out []uint64
		view(t, db, func(tx *Tx) error {
			return tx.Chunks(ino, from, func(c Chunk) bool {
				if c.Version != c.Index^1 {
					t.Errorf("chunk %d has version %d", c.Index, c.Version)
				}
				out = append(out, c.Index)
				return true
			})
		})
		return out
	}
	if got := list(0); fmt.Sprint(got) != fmt.Sprint(sortedIdx) {
		t.Fatalf("Chunks order %v, want %v", got, sortedIdx)
	}
	if got := list(256); fmt.Sprint(got) != fmt.Sprint(sortedIdx[3:]) {
		t.Errorf("Chunks from 256: %v", got)
	}
	if got := list(65537); fmt.Sprint(got) != fmt.Sprint([]uint64{70000, 1 << 32, 1<<40 + 3, math.MaxUint64}) {
		t.Errorf("Chunks from 65537: %v", got)
	}
	if got := list(math.MaxUint64); fmt.Sprint(got) != fmt.Sprint([]uint64{math.MaxUint64}) {
		t.Errorf("Chunks from max: %v", got)
	}
	update(t, db, func(tx *Tx) error { return tx.DeleteChunk(ino, 256) })
	if got := list(256); len(got) == 0 || got[0] != 257 {
		t.Errorf("after DeleteChunk(256): %v", got)
	}
}

func TestXattrs(t *testing.T) {
	db, _ := newDB(t)
	update(t, db, func(tx *Tx) error {
		for _, n := range []string{"user.b", "user.a", "security.x", "user.aa"} {
			if err := tx.SetXattr(10, n, []byte(n)); err != nil {
				return err
			}
		}
		return tx.SetXattr(11, "user.other", nil)
	})
	view(t, db, func(tx *Tx) error {
		names, err := tx.Xattrs(10)
		if err != nil || fmt.Sprint(names) != "[security.x user.a user.aa user.b]" {
			t.Errorf("Xattrs: %v %v", names, err)
		}
		if names, err := tx.Xattrs(12); err != nil || names == nil || len(names) != 0 {
			t.Errorf("Xattrs of inode without: %#v %v", names, err)
		}
		return nil
	})
	update(t, db, func(tx *Tx) error { return tx.RemoveXattr(10, "user.a") })
	update(t, db, func(tx *Tx) error { return tx.SetXattr(10, "user.b", []byte("new")) })
	view(t, db, func(tx *Tx) error {
		names, _ := tx.Xattrs(10)
		if fmt.Sprint(names) != "[security.x user.aa user.b]" {
			t.Errorf("after remove: %v", names)
		}
		if v, _ := tx.Xattr(10, "user.b"); string(v) != "new" {
			t.Errorf("overwrite: %q", v)
		}
		return nil
	})
}

func TestOrphans(t *testing.T) {
	db, _ := newDB(t)
	list := func() []Ino {
		var out []Ino
		view(t, db, func(tx *Tx) error {
			return tx.Orphans(func(i Ino) bool { out = append(out, i); return true })
		})
		return out
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("fresh store has orphans %v", got)
	}
	update(t, db, func(tx *Tx) error {
		for _, i := range []Ino{70000, 5, 256, 5} {
			if err := tx.AddOrphan(i); err != nil {
				return err
			}
		}
		return nil
	})
	if got := list(); !slices.Equal(got, []Ino{5, 256, 70000}) {
		t.Fatalf("orphans %v", got)
	}
	update(t, db, func(tx *Tx) error { return tx.RemoveOrphan(256) })
	if got := list(); !slices.Equal(got, []Ino{5, 70000}) {
		t.Fatalf("after remove: %v", got)
	}
	var first []Ino
	view(t, db, func(tx *Tx) error {
		return tx.Orphans(func(i Ino) bool { first = append(first, i); return false })
	})
	if !slices.Equal(first, []Ino{5}) {
		t.Fatalf("stop after first: %v", first)
	}
}

func TestInodesIteration(t *testing.T) {
	db, _ := newDB(t)
	want := []Ino{RootIno}
	update(t, db, func(tx *Tx) error {
		for _, i := range []Ino{65536, 2, 256, 1 << 40, 3} {
			if err := tx.PutInode(&Inode{Ino: i, Size: uint64(i) * 2}); err != nil {
				return err
			}
			want = append(want, i)
		}
		return nil
	})
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	var got []Ino
	view(t, db, func(tx *Tx) error {
		return tx.Inodes(func(in Inode) bool {
			if in.Ino != RootIno && in.Size != uint64(in.Ino)*2 {
				t.Errorf("inode %d size %d", in.Ino, in.Size)
			}
			got = append(got, in.Ino)
			return true
		})
	})
	if !slices.Equal(got, want) {
		t.Fatalf("Inodes %v, want %v", got, want)
	}
}

func TestCorruptValueIsAnError(t *testing.T) {
	db, _ := newDB(t)
	if err := db.rawUpdate(func(txn *badger.Txn) error {
		return txn.Set(inodeKey(9), []byte{codecV1, 1, 2})
	}); err != nil {
		t.Fatal(err)
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Inode(9); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Inode of corrupt value: %v", err)
		}
		if err := tx.Inodes(func(Inode) bool { return true }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Inodes over corrupt value: %v", err)
		}
		return nil
	})
}

func TestSequencesUniqueAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	seenIno := map[Ino]bool{}
	seenVer := map[uint64]bool{}
	var lastIno Ino
	for round := 0; round < 3; round++ {
		db := openDB(t, dir)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 700; i++ { // crosses a lease boundary
					ino, err := db.NextIno()
					if err != nil {
						t.Error(err)
						return
					}
					v, err := db.NextVersion()
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if ino <= RootIno || seenIno[ino] {
						t.Errorf("bad or repeated ino %d", ino)
					}
					if v == 0 || seenVer[v] {
						t.Errorf("bad or repeated version %d", v)
					}
					seenIno[ino], seenVer[v] = true, true
					lastIno = max(lastIno, ino)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A clean close hands the unused lease back, so numbers stay dense.
	db := openDB(t, dir)
	defer db.Close()
	ino, err := db.NextIno()
	if err != nil {
		t.Fatal(err)
	}
	if ino != lastIno+1 {
		t.Errorf("after clean reopen NextIno = %d, want %d", ino, lastIno+1)
	}
}

func TestFirstSequenceValues(t *testing.T) {
	db, _ := newDB(t)
	ino, err := db.NextIno()
	if err != nil || ino != RootIno+1 {
		t.Errorf("first ino %d, %v", ino, err)
	}
	v, err := db.NextVersion()
	if err != nil || v != 1 {
		t.Errorf("first version %d, %v", v, err)
	}
}

// crashEnv names the directory in which the re-executed test binary takes numbers and
// then exits without closing the store, as a kill -9 would.
const crashEnv = "SSEFS_META_CRASH_DIR"

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper for TestSequencesUniqueAfterCrash")
	}
	db, err := Open(dir, testKey(7), Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := 0; i < 1500; i++ {
		ino, err1 := db.NextIno()
		v, err2 := db.NextVersion()
		if err1 != nil || err2 != nil {
			fmt.Println("error", err1, err2)
			os.Exit(2)
		}
		fmt.Println(ino, v)
	}
	os.Stdout.Sync()
	os.Exit(0) // no Close: no lease release, no flush
}

func TestSequencesUniqueAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	seenIno := map[uint64]bool{}
	seenVer := map[uint64]bool{}
	for round := 0; round < 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			ino, err1 := strconv.ParseUint(f[0], 10, 64)
			v, err2 := strconv.ParseUint(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if seenIno[ino] || seenVer[v] {
				t.Fatalf("round %d: number repeated after crash: ino %d version %d", round, ino, v)
			}
			seenIno[ino], seenVer[v] = true, true
			n++
		}
		if n != 1500 {
			t.Fatalf("child printed %d pairs, want 1500:\n%s", n, out)
		}
	}
	db := openDB(t, dir)
	defer db.Close()
	for i := 0; i < 1500; i++ {
		ino, _ := db.NextIno()
		v, _ := db.NextVersion()
		if seenIno[uint64(ino)] || seenVer[v] {
			t.Fatalf("number repeated after crash: ino %d version %d", ino, v)
		}
	}
}

func TestLoggerReceivesOnlyWarnings(t *testing.T) {
	// Badger logs at Info on every open; none of that may reach the logger.
	var buf bytes.Buffer
	h := &captureHandler{buf: &buf}
	db, err := Open(t.TempDir(), testKey(7), Options{Logger: newSlog(h)})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if h.belowWarn {
		t.Errorf("badger chatter below Warn reached the logger: %s", buf.String())
	}
}

func TestSizeAndSync(t *testing.T) {
	db, _ := newDB(t)
	update(t, db, func(tx *Tx) error { return tx.PutSymlink(5, "x") })
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	lsm, vlog := db.Size()
	if lsm < 0 || vlog < 0 {
		t.Fatalf("Size %d %d", lsm, vlog)
	}
}

type captureHandler struct {
	mu        sync.Mutex
	buf       *bytes.Buffer
	belowWarn bool
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level < slog.LevelWarn {
		h.belowWarn = true
	}
	fmt.Fprintln(h.buf, r.Level, r.Message)
	return nil
}

func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func newSlog(h slog.Handler) *slog.Logger { return slog.New(h) }

// A miss is ErrNotFound and says what was looked for, though it is formatted only when
// printed.
func TestMissNamesWhatWasLookedFor(t *testing.T) {
	db, _ := newDB(t)
	err := db.View(func(tx *Tx) error {
		_, err := tx.Lookup(RootIno, "nowhere")
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup of a missing name: %v, want ErrNotFound", err)
	}
	if want := `meta: lookup 1/"nowhere": meta: not found`; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
}

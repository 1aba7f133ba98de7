package meta

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeSpace is a filesystem whose free space the test sets: base is what is available
// while the spare file exists; once it is removed, its size comes back on top.
type fakeSpace struct {
	mu    sync.Mutex
	base  uint64
	spare string
	size  uint64
	calls int
	err   error
}

func (f *fakeSpace) statfs() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return 0, f.err
	}
	if _, err := os.Stat(f.spare); errors.Is(err, os.ErrNotExist) {
		return f.base + f.size, nil
	}
	return f.base, nil
}

func (f *fakeSpace) set(base uint64) {
	f.mu.Lock()
	f.base = base
	f.mu.Unlock()
}

// logBuf collects a DB's log lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

const (
	testFloor = 1 << 20
	testSpare = 256 << 10
	plenty    = 1 << 30
)

// guardedDB opens a store with the space guard on, over a fake filesystem with plenty of
// room, and its spare file in a directory of its own.
func guardedDB(t *testing.T) (*DB, *fakeSpace, *logBuf, Options) {
	t.Helper()
	dir := t.TempDir()
	fs := &fakeSpace{base: plenty, spare: filepath.Join(t.TempDir(), "meta.spare"), size: testSpare}
	logs := &logBuf{}
	opts := Options{
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		MinFree: testFloor, SpareFile: fs.spare, SpareSize: testSpare, statfs: fs.statfs,
	}
	db, err := Open(dir, testKey(7), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, fs, logs, opts
}

func wantNoSpace(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s: %v, want an error wrapping ENOSPC", what, err)
	}
}

// assertSpare checks the spare file: present (0600, its full size allocated, zeros) or
// absent.
func assertSpare(t *testing.T, path string, present bool) {
	t.Helper()
	st, err := os.Stat(path)
	if !present {
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("spare file %s: %v, want it removed", path, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("spare file: %v", err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != testSpare {
		t.Fatalf("spare file: mode %v, size %d; want 0600, %d", st.Mode(), st.Size(), testSpare)
	}
	if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; blocks < testSpare {
		t.Fatalf("spare file: %d bytes allocated, want %d (it must not be sparse)", blocks, testSpare)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, make([]byte, testSpare)) {
		t.Fatal("spare file holds something other than zeros")
	}
}

func putGuardedFile(tx *Tx, ino Ino, name string) error {
	in := Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Parent: RootIno}
	if err := tx.PutInode(&in); err != nil {
		return err
	}
	if err := tx.PutSealedKey(ino, []byte("sealed")); err != nil {
		return err
	}
	return tx.PutEntry(RootIno, Entry{Name: name, Ino: ino, Mode: syscall.S_IFREG})
}

func TestSpaceGuardOffByDefault(t *testing.T) {
	fs := &fakeSpace{base: 0, spare: filepath.Join(t.TempDir(), "spare"), size: testSpare}
	db, err := Open(t.TempDir(), testKey(7), Options{SpareFile: fs.spare, SpareSize: testSpare, statfs: fs.statfs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 10, "f") })
	if fs.calls != 0 {
		t.Errorf("statfs called %d times without MinFree", fs.calls)
	}
	assertSpare(t, fs.spare, false)
}

func TestSpaceGuardRefusesGrowingCommits(t *testing.T) {
	db, fs, _, _ := guardedDB(t)
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 10, "before") })

	// Just above the floor with the commit's room: passes. Just below: refused.
	fs.set(testFloor + commitSlack + 4096)
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 11, "at-floor") })
	fs.set(testFloor + commitSlack - 1)
	wantNoSpace(t, "create below the floor", db.Update(func(tx *Tx) error { return putGuardedFile(tx, 12, "refused") }))
	wantNoSpace(t, "setattr below the floor", db.Update(func(tx *Tx) error {
		in, err := tx.Inode(10)
		if err != nil {
			return err
		}
		in.Mode = syscall.S_IFREG | 0o600
		return tx.PutInode(&in)
	}))
	// AddOrphan alone is no deletion: an S3 PUT stages its new inode with it.
	wantNoSpace(t, "staging an orphan", db.Update(func(tx *Tx) error { return tx.AddOrphan(13) }))
	// A commit that writes nothing is no business of the guard.
	if err := db.Update(func(tx *Tx) error { _, err := tx.Inode(10); return err }); err != nil {
		t.Errorf("read-only Update below the floor: %v", err)
	}
	// The sequences lease numbers with a commit: refused too, so a create fails cleanly.
	var err error
	for i := 0; i <= seqBandwidth && err == nil; i++ {
		_, err = db.NextIno()
	}
	wantNoSpace(t, "NextIno past the lease below the floor", err)

	view(t, db, func(tx *Tx) error {
		if _, err := tx.Lookup(RootIno, "refused"); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused create: lookup %v, want ErrNotFound: nothing may be written", err)
		}
		if _, err := tx.Inode(12); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused create: inode %v, want ErrNotFound", err)
		}
		if in, _ := tx.Inode(10); in.Mode != syscall.S_IFREG|0o644 {
			t.Errorf("refused setattr changed the mode to %o", in.Mode)
		}
		if _, err := tx.Lookup(RootIno, "at-floor"); err != nil {
			t.Errorf("create above the floor: %v", err)
		}
		return nil
	})
	assertSpare(t, fs.spare, true) // still above the hard floor: the spare stays

	fs.set(plenty)
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 12, "after") })
}

// TestSpaceGuardFreeingMethods: every Tx method that deletes lets its commit pass the
// floor; those that only add do not.
func TestSpaceGuardFreeingMethods(t *testing.T) {
	db, fs, _, _ := guardedDB(t)
	up := Upload{ID: UploadID{1}, Bucket: 5, Key: "k"}
	update(t, db, func(tx *Tx) error {
		if err := putGuardedFile(tx, 10, "f"); err != nil {
			return err
		}
		if err := putGuardedFile(tx, 11, "g"); err != nil {
			return err
		}
		if err := tx.SetXattr(10, "user.a", []byte("v")); err != nil {
			return err
		}
		if err := tx.PutUpload(&up); err != nil {
			return err
		}
		return tx.PutPart(up.ID, &Part{Number: 1, Ino: 20})
	})
	fs.set(testFloor / 2) // below the floor, well above what a deletion needs
	for _, c := range []struct {
		name  string
		frees bool
		fn    func(tx *Tx) error
	}{
		{"PutInode", false, func(tx *Tx) error { return tx.PutInode(&Inode{Ino: 30, Mode: syscall.S_IFREG}) }},
		{"PutEntry", false, func(tx *Tx) error { return tx.PutEntry(RootIno, Entry{Name: "x", Ino: 30}) }},
		{"PutChunk", false, func(tx *Tx) error { return tx.PutChunk(10, sampleChunks()[0]) }},
		{"SetXattr", false, func(tx *Tx) error { return tx.SetXattr(10, "user.b", nil) }},
		{"AddOrphan", false, func(tx *Tx) error { return tx.AddOrphan(30) }},
		{"RemoveOrphan", false, func(tx *Tx) error { return tx.RemoveOrphan(30) }},
		{"PutBackupState", false, func(tx *Tx) error { return tx.PutBackupState(BackupState{}) }},
		{"RemoveXattr", true, func(tx *Tx) error { return tx.RemoveXattr(10, "user.a") }},
		{"DeleteChunk", true, func(tx *Tx) error { return tx.DeleteChunk(10, 0) }},
		{"DeleteObject", true, func(tx *Tx) error { return tx.DeleteObject(10) }},
		{"DeletePart", true, func(tx *Tx) error { return tx.DeletePart(up.ID, 7) }},
		{"DeleteUploadIndex", true, func(tx *Tx) error { return tx.DeleteUploadIndex(UploadIndexEntry{5, "z", up.ID}) }},
		{"DeleteUpload", true, func(tx *Tx) error { _, err := tx.DeleteUpload(up.ID); return err }},
		{"DeleteRotationJob", true, func(tx *Tx) error { return tx.DeleteRotationJob() }},
		{"DeleteBackupState", true, func(tx *Tx) error { return tx.DeleteBackupState() }},
		{"Defer", true, func(tx *Tx) error { return tx.Defer([][16]byte{{9}}) }},
		{"Undefer", true, func(tx *Tx) error { return tx.Undefer([][16]byte{{9}}) }},
		{"DeleteInodeRecords", true, func(tx *Tx) error { return tx.DeleteInodeRecords(99) }},
		// Unlink: the entry, the parent's mtime, the inode.
		{"DeleteEntry+DeleteInode", true, func(tx *Tx) error {
			if err := tx.DeleteEntry(RootIno, "f"); err != nil {
				return err
			}
			root, err := tx.Inode(RootIno)
			if err != nil {
				return err
			}
			root.Mtime++
			if err := tx.PutInode(&root); err != nil {
				return err
			}
			_, err = tx.DeleteInode(10)
			return err
		}},
		// Unlink of an open file: it becomes an orphan.
		{"DeleteEntry+AddOrphan", true, func(tx *Tx) error {
			if err := tx.DeleteEntry(RootIno, "g"); err != nil {
				return err
			}
			return tx.AddOrphan(11)
		}},
	} {
		err := db.Update(c.fn)
		switch {
		case c.frees && err != nil:
			t.Errorf("%s below the floor: %v, want it to pass (it deletes)", c.name, err)
		case !c.frees && !errors.Is(err, syscall.ENOSPC):
			t.Errorf("%s below the floor: %v, want ENOSPC", c.name, err)
		}
	}
	view(t, db, func(tx *Tx) error {
		if _, err := tx.Lookup(RootIno, "f"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unlinked f: %v", err)
		}
		if _, err := tx.Upload(up.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted upload: %v", err)
		}
		return nil
	})
	assertSpare(t, fs.spare, true)
}

func TestSpaceGuardSpare(t *testing.T) {
	db, fs, logs, _ := guardedDB(t)
	assertSpare(t, fs.spare, true)
	for i := range 20 {
		update(t, db, func(tx *Tx) error { return putGuardedFile(tx, Ino(100+i), fmt.Sprintf("f%02d", i)) })
	}

	// Something outside takes the last byte: creates fail, deletions take the spare.
	fs.set(0)
	wantNoSpace(t, "create on a full filesystem", db.Update(func(tx *Tx) error { return putGuardedFile(tx, 200, "full") }))
	assertSpare(t, fs.spare, true)
	deleteFile := func(i int) error {
		return db.Update(func(tx *Tx) error {
			if err := tx.DeleteEntry(RootIno, fmt.Sprintf("f%02d", i)); err != nil {
				return err
			}
			_, err := tx.DeleteInode(Ino(100 + i))
			return err
		})
	}
	for i := range 10 {
		if err := deleteFile(i); err != nil {
			t.Fatalf("delete %d on a full filesystem: %v, want it to pass with the spare's room", i, err)
		}
	}
	assertSpare(t, fs.spare, false)
	if n := logs.count("released the spare file"); n != 1 {
		t.Errorf("%d log lines on releasing the spare, want 1:\n%s", n, logs.buf.String())
	}
	// Creates stay refused with the spare's room.
	wantNoSpace(t, "create after the spare went", db.Update(func(tx *Tx) error { return putGuardedFile(tx, 200, "full") }))

	// The spare's room used up too: deletions are refused, cleanly.
	fs.set(0)
	fs.mu.Lock()
	fs.size = commitSlack / 2
	fs.mu.Unlock()
	wantNoSpace(t, "delete with the spare spent", deleteFile(10))
	wantNoSpace(t, "delete with the spare spent", deleteFile(11))
	if n := logs.count("deletions are refused too"); n != 1 {
		t.Errorf("%d log lines on refusing deletions, want 1", n)
	}

	// Room again: the first commit that has it above the floor brings the spare back.
	fs.mu.Lock()
	fs.size = testSpare
	fs.mu.Unlock()
	fs.set(testFloor + testSpare + 2*commitSlack)
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 200, "after") })
	assertSpare(t, fs.spare, true)
	if err := deleteFile(10); err != nil {
		t.Errorf("delete after space came back: %v", err)
	}
	view(t, db, func(tx *Tx) error {
		var names []string
		err := tx.Entries(RootIno, "", func(e Entry) bool { names = append(names, e.Name); return true })
		want := "after f11 f12 f13 f14 f15 f16 f17 f18 f19"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("entries after the full period: %s, want %s", got, want)
		}
		return err
	})
}

func TestSpaceGuardLogsChangesOnce(t *testing.T) {
	db, fs, logs, _ := guardedDB(t)
	fs.set(testFloor / 2)
	for i := range 50 {
		wantNoSpace(t, "create", db.Update(func(tx *Tx) error { return putGuardedFile(tx, Ino(100+i), "x") }))
	}
	if n := logs.count("new metadata (creates, writes, renames) is refused"); n != 1 {
		t.Errorf("%d log lines for 50 refused commits, want 1:\n%s", n, logs.buf.String())
	}
	if !strings.Contains(logs.buf.String(), fmt.Sprintf("avail_bytes=%d floor_bytes=%d", testFloor/2, testFloor)) {
		t.Errorf("the refusal's log line does not give the figures:\n%s", logs.buf.String())
	}
	fs.set(plenty)
	for i := range 5 {
		update(t, db, func(tx *Tx) error { return putGuardedFile(tx, Ino(100+i), fmt.Sprint(i)) })
	}
	if n := logs.count("space is back"); n != 1 {
		t.Errorf("%d log lines on recovery, want 1:\n%s", n, logs.buf.String())
	}
	fs.set(testFloor / 2)
	wantNoSpace(t, "create", db.Update(func(tx *Tx) error { return putGuardedFile(tx, 300, "y") }))
	if n := logs.count("is refused until space is freed"); n != 2 {
		t.Errorf("%d refusal log lines after refusing, recovering and refusing again, want 2", n)
	}
}

func TestSpaceGuardStatfsFails(t *testing.T) {
	db, fs, logs, _ := guardedDB(t)
	fs.mu.Lock()
	fs.err = errors.New("statfs broke")
	fs.mu.Unlock()
	for i := range 3 {
		update(t, db, func(tx *Tx) error { return putGuardedFile(tx, Ino(100+i), fmt.Sprint(i)) })
	}
	if n := logs.count("cannot check the free space"); n != 1 {
		t.Errorf("%d log lines for a failing statfs, want 1", n)
	}
}

// TestSpaceGuardCloseAndReopen: Close below the floor gives the spare to Badger's last
// flush (and does not fail for the sequence lease it cannot give back); a reopen with
// room makes it again, and one with the wrong size replaces it.
func TestSpaceGuardCloseAndReopen(t *testing.T) {
	db, fs, _, opts := guardedDB(t)
	if _, err := db.NextIno(); err != nil { // a lease Close gives back
		t.Fatal(err)
	}
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 10, "kept") })
	fs.set(0)
	fs.mu.Lock()
	fs.size = 0 // not even the spare's room: the lease cannot be given back
	fs.mu.Unlock()
	if err := db.Close(); err != nil {
		t.Fatalf("Close on a full filesystem: %v", err)
	}
	assertSpare(t, fs.spare, false)

	fs.mu.Lock()
	fs.size = testSpare
	fs.mu.Unlock()
	fs.set(plenty)
	dir := t.TempDir()
	db, err := Open(dir, testKey(7), opts)
	if err != nil {
		t.Fatal(err)
	}
	assertSpare(t, fs.spare, true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	assertSpare(t, fs.spare, true) // room enough: it stays for the next start

	// A spare of another size (the filesystem was resized) is replaced.
	if err := os.Truncate(fs.spare, 4096); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, testKey(7), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	assertSpare(t, fs.spare, true)

	// Opening below the floor releases it before Badger opens.
	db.Close()
	fs.set(testFloor / 2)
	db, err = Open(dir, testKey(7), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	assertSpare(t, fs.spare, false)
}

// TestSpaceGuardConcurrent runs creates and deletions from many goroutines while the
// free space moves under them (for -race), and checks each outcome against the rules.
func TestSpaceGuardConcurrent(t *testing.T) {
	db, fs, _, _ := guardedDB(t)
	const workers, per = 8, 40
	update(t, db, func(tx *Tx) error {
		for w := range workers {
			for i := range per {
				if err := putGuardedFile(tx, Ino(1000+w*per+i), fmt.Sprintf("old-%d-%d", w, i)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, workers*per*2)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				if i%10 == 0 && w == 0 {
					fs.set([]uint64{plenty, 0, testFloor / 2, testFloor + testSpare + 2*commitSlack}[i/10%4])
				}
				err := db.Update(func(tx *Tx) error { return putGuardedFile(tx, Ino(5000+w*per+i), fmt.Sprintf("new-%d-%d", w, i)) })
				if err != nil && !errors.Is(err, syscall.ENOSPC) {
					errs <- fmt.Errorf("create: %w", err)
				}
				err = db.Update(func(tx *Tx) error {
					if err := tx.DeleteEntry(RootIno, fmt.Sprintf("old-%d-%d", w, i)); err != nil {
						return err
					}
					_, err := tx.DeleteInode(Ino(1000 + w*per + i))
					return err
				})
				if err != nil && !errors.Is(err, syscall.ENOSPC) {
					errs <- fmt.Errorf("delete: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSpaceGuardRealFilesystem uses the real statfs: a floor the filesystem clears lets
// commits through; one no filesystem clears refuses even a new store's first commit.
func TestSpaceGuardRealFilesystem(t *testing.T) {
	db, err := Open(t.TempDir(), testKey(7), Options{MinFree: 1})
	if err != nil {
		t.Fatal(err)
	}
	update(t, db, func(tx *Tx) error { return putGuardedFile(tx, 10, "f") })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.TempDir(), testKey(7), Options{MinFree: 1 << 62})
	wantNoSpace(t, "creating a store with a floor above the filesystem's size", err)
}

// TestSpaceGuardSpareCannotBeMade: a spare the directory refuses is tried once, logged
// once, and costs the commits after it nothing.
func TestSpaceGuardSpareCannotBeMade(t *testing.T) {
	fs := &fakeSpace{base: plenty, spare: filepath.Join(t.TempDir(), "missing", "meta.spare"), size: testSpare}
	logs := &logBuf{}
	db, err := Open(t.TempDir(), testKey(7), Options{
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		MinFree: testFloor, SpareFile: fs.spare, SpareSize: testSpare, statfs: fs.statfs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 5 {
		update(t, db, func(tx *Tx) error { return putGuardedFile(tx, Ino(10+i), fmt.Sprint(i)) })
	}
	if n := logs.count("cannot make the spare file"); n != 1 {
		t.Errorf("%d log lines for a spare that cannot be made, want 1:\n%s", n, logs.buf.String())
	}
}

// RoomFor answers ahead of a commit as the commit would be answered: work acknowledged
// before it is committed (a deferred create) is refused where its commit would be.
func TestRoomForAnswersAsACommitWould(t *testing.T) {
	db, fs, _, _ := guardedDB(t)
	const need = 2048
	fs.set(testFloor + commitSlack + need + 4096)
	if err := db.RoomFor(need); err != nil {
		t.Fatalf("room above the floor: %v", err)
	}
	fs.set(testFloor + commitSlack + need - 1)
	wantNoSpace(t, "room just below the floor", db.RoomFor(need))
	fs.set(plenty)
	if err := db.RoomFor(need); err != nil {
		t.Fatalf("room again: %v", err)
	}
}

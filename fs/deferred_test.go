package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

func writeWhole(t *testing.T, e *Engine, parent Ino, name string, data []byte) Ino {
	t.Helper()
	ctx := context.Background()
	a, h, err := e.Create(ctx, parent, name, Owner{Mode: 0o644}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Truncate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	return a.Ino
}

func storeObjects(t *testing.T, s objstore.Store) int {
	t.Helper()
	n := 0
	if err := s.Walk(context.Background(), func(objstore.ID, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshotOf writes a snapshot of env's metadata and returns it with its read timestamp.
func snapshotOf(t *testing.T, e *Engine) ([]byte, uint64) {
	t.Helper()
	snap, _, err := e.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Discard()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), snap.ReadTs()
}

// restoredEngine opens the snapshot's metadata, restored into a new directory, over the
// same object store: what `ssefs restore` does on a new host.
func restoredEngine(t *testing.T, env *testEnv, snapshot []byte) *Engine {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "meta")
	if err := meta.Restore(dir, env.key, bytes.NewReader(snapshot), meta.Options{}); err != nil {
		t.Fatal(err)
	}
	db, err := meta.Open(dir, env.key, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Meta: db, Store: env.store, Sealer: keys.NewSealer(env.master, env.master.Name(), 0),
		ChunkSize: env.cfg.ChunkSize, KeepOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); db.Close() })
	return e
}

// The point of deferred deletion: files overwritten, truncated and deleted after a
// snapshot, with the frees made durable (which deletes freed objects without backups),
// still read back whole from the restored snapshot. Releasing at the snapshot's own
// horizon keeps them; a newer snapshot's horizon lets them go.
func TestDeferredDeletionKeepsSnapshotRestorable(t *testing.T) {
	env := newTestEnv(t, 4096, 0)
	ctx := context.Background()
	want := map[string][]byte{}
	for i := range 6 {
		data := make([]byte, 3*4096+i*100)
		rand.Read(data)
		name := fmt.Sprintf("f%d", i)
		want[name] = data
		writeWhole(t, env.e, env.bucket, name, data)
	}
	if err := env.e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	snap, t1 := snapshotOf(t, env.e)
	before := storeObjects(t, env.store)

	// Change everything the snapshot names: overwrite, truncate, delete.
	writeWhole(t, env.e, env.bucket, "f0", []byte("new content"))
	a, err := env.e.Lookup(ctx, env.bucket, "f1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := env.e.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Truncate(ctx, 10); err != nil {
		t.Fatal(err)
	}
	h.Release(ctx)
	for _, name := range []string{"f2", "f3"} {
		if err := env.e.Unlink(ctx, env.bucket, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := env.e.BackupStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.On || st.Deferred < 1+3+2*3 {
		t.Errorf("backup status %+v: want deferral on and the freed objects deferred", st)
	}
	if n := storeObjects(t, env.store); n < before {
		t.Errorf("%d objects after the changes, %d before: freed objects were deleted", n, before)
	}
	// Deferred objects are neither orphans nor damage.
	rep, err := env.e.Fsck(ctx, FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(FsckOrphanObject); n != 0 || rep.Inconsistencies() != 0 {
		t.Errorf("fsck: %d orphans, %d inconsistencies: %v", n, rep.Inconsistencies(), rep.Findings)
	}

	// At the snapshot's own horizon nothing goes.
	if n, err := env.e.ReleaseDeferred(ctx, t1); err != nil || n != 0 {
		t.Errorf("ReleaseDeferred(t1) deleted %d, %v", n, err)
	}
	check := func(e *Engine) {
		t.Helper()
		bucket, err := e.Lookup(ctx, RootIno, "bucket")
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range want {
			a, err := e.Lookup(ctx, bucket.Ino, name)
			if err != nil {
				t.Fatalf("restored %s: %v", name, err)
			}
			if got := readAll(t, e, a.Ino); !bytes.Equal(got, data) {
				t.Fatalf("restored %s: %d bytes differ from the %d at the snapshot", name, len(got), len(data))
			}
		}
	}
	check(restoredEngine(t, env, snap))

	// A newer snapshot no longer needs them.
	_, t2 := snapshotOf(t, env.e)
	n, err := env.e.ReleaseDeferred(ctx, t2)
	if err != nil || n < 1+3+2*3 {
		t.Fatalf("ReleaseDeferred(t2) deleted %d, %v", n, err)
	}
	if st, _ := env.e.BackupStatus(ctx); st.Deferred != 0 || st.State.Horizon != t2 {
		t.Fatalf("after the release: %+v", st)
	}
	rep, err = env.e.Fsck(ctx, FsckOptions{})
	if err != nil || rep.Inconsistencies() != 0 || rep.Count(FsckOrphanObject) != 0 {
		t.Fatalf("fsck after the release: %v %v", err, rep.Findings)
	}
}

// Without any snapshot, freed objects go at the sync, as always.
func TestNoSnapshotNoDeferral(t *testing.T) {
	env := newTestEnv(t, 4096, 0)
	ctx := context.Background()
	writeWhole(t, env.e, env.bucket, "f", make([]byte, 3*4096))
	if err := env.e.Unlink(ctx, env.bucket, "f"); err != nil {
		t.Fatal(err)
	}
	if err := env.e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := storeObjects(t, env.store); n != 0 {
		t.Fatalf("%d objects left", n)
	}
	if st, err := env.e.BackupStatus(ctx); err != nil || st.On || st.Deferred != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
}

// fsck --repair defers orphans while snapshots exist (a crash can leave an object freed
// but not yet recorded, which a snapshot may name); DisableDeferral deletes them all.
func TestFsckRepairDefersOrphans(t *testing.T) {
	env := newTestEnv(t, 4096, 0)
	ctx := context.Background()
	writeWhole(t, env.e, env.bucket, "f", make([]byte, 4096))
	snapshotOf(t, env.e)
	orphan := objstore.NewID()
	if err := env.store.Put(ctx, orphan, []byte("left by a crash")); err != nil {
		t.Fatal(err)
	}
	env.close()
	env.cfg.KeepOrphans = true
	env.open()
	rep, err := env.e.Fsck(ctx, FsckOptions{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(FsckOrphanObject) != 1 {
		t.Fatalf("findings: %v", rep.Findings)
	}
	if n := storeObjects(t, env.store); n != 2 {
		t.Fatalf("%d objects after the repair: the orphan was deleted at once", n)
	}
	rep, err = env.e.Fsck(ctx, FsckOptions{})
	if err != nil || rep.Count(FsckOrphanObject) != 0 {
		t.Fatalf("second fsck: %v %v", err, rep.Findings)
	}
	n, err := env.e.DisableDeferral(ctx)
	if err != nil || n != 1 {
		t.Fatalf("DisableDeferral deleted %d, %v", n, err)
	}
	if n := storeObjects(t, env.store); n != 1 {
		t.Fatalf("%d objects after DisableDeferral", n)
	}
}

package fs

import (
	"context"
	"testing"
	"time"

	"github.com/ssefs/ssefs/meta"
)

// Create remembers the bucket of the directory it last created in, to seal the next new
// key without reading the directory first. When the directory's bucket changed meanwhile
// (fsck --repair rewrites Inode.Bucket), the key must still be sealed for the bucket the
// directory has now.
func TestCreateSealsForTheDirectorysCurrentBucket(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	other, err := e.Mkdir(ctx, RootIno, "other", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := e.Mkdir(ctx, env.bucket, "dir", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	sealedFor := func(name string) string {
		t.Helper()
		a, h, err := e.Create(ctx, dir.Ino, name, Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		info, err := e.Encryption(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		return info.Bucket
	}
	if b := sealedFor("a"); b != "bucket" {
		t.Fatalf("first file sealed for bucket %q, want %q", b, "bucket")
	}
	err = env.db.Update(func(tx *meta.Tx) error {
		in, err := tx.Inode(meta.Ino(dir.Ino))
		if err != nil {
			return err
		}
		in.Bucket = meta.Ino(other.Ino)
		return tx.PutInode(&in)
	})
	if err != nil {
		t.Fatal(err)
	}
	if b := sealedFor("b"); b != "other" {
		t.Fatalf("file created after the directory moved to bucket %q sealed for %q", "other", b)
	}
	// Creating in the root is still refused, remembered directory or not.
	if _, _, err := e.Create(ctx, RootIno, "f", Owner{Mode: 0o644}, true); err == nil {
		t.Fatal("created a file in the root")
	}
}

// A watcher made with WatchExcept is not sent the changes of its own origin, and Settle
// does not wait for it to act on them; changes of other origins reach it as before.
func TestWatchExceptSkipsItsOwnChanges(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e := env.e
	w := e.WatchExcept("fuse")
	defer w.Close()
	own := WithOrigin(context.Background(), "fuse")
	if _, err := e.Mkdir(own, env.bucket, "mine", Owner{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if !e.Settle(context.Background(), 10*time.Millisecond) {
		t.Fatal("Settle waited for a watcher to act on its own change")
	}
	select {
	case c := <-w.C:
		t.Fatalf("watcher got its own change %+v", c)
	default:
	}
	if _, err := e.Mkdir(context.Background(), env.bucket, "theirs", Owner{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-w.C:
		if c.Name != "theirs" {
			t.Fatalf("watcher got %+v, want the change to %q", c, "theirs")
		}
		w.Done(c)
	case <-time.After(5 * time.Second):
		t.Fatal("watcher did not get another origin's change")
	}
}

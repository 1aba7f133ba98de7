package fuse

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	ssefs "github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// mountEngine mounts a fresh engine with attribute and entry caches that outlive any
// test, so only invalidation can make another frontend's changes visible.
func mountEngine(t *testing.T) (*ssefs.Engine, string) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no FUSE here (%v): the mount tests need /dev/fuse", err)
	}
	dir := t.TempDir()
	master, err := keys.GenerateMasterKey("test-key")
	if err != nil {
		t.Fatal(err)
	}
	metaKey := make([]byte, 32)
	rand.Read(metaKey)
	db, err := meta.Open(filepath.Join(dir, "meta"), metaKey, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := objstore.NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ssefs.New(ssefs.Config{Meta: db, Store: store, Sealer: keys.NewSealer(master, master.Name(), time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	server, err := Mount(mp, e, Options{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		e.Close()
		db.Close()
		store.Close()
	})
	return e, mp
}

// eventually waits for the kernel to have dropped its cache: the invalidation is sent
// asynchronously, so the test waits for its effect, with a deadline far beyond what it
// takes and far below the hour-long cache timeout that would otherwise hide the change.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the mount still shows the cached state", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChangesFromAnotherFrontendReachTheKernel(t *testing.T) {
	e, mp := mountEngine(t)
	ctx := context.Background()
	bucket, err := e.Mkdir(ctx, ssefs.RootIno, "bkt", ssefs.Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	a, h, err := e.Create(ctx, bucket.Ino, "f", ssefs.Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, []byte("hello world"), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(mp, "bkt", "f")
	if got, err := os.ReadFile(f); err != nil || string(got) != "hello world" {
		t.Fatalf("first read: %q, %v", got, err)
	}

	// Attributes and pages: a truncate made outside FUSE.
	size := uint64(5)
	if _, err := e.SetAttr(ctx, a.Ino, ssefs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "truncate", func() bool {
		got, err := os.ReadFile(f)
		return err == nil && string(got) == "hello"
	})

	// Entries: a rename made outside FUSE.
	if err := e.Rename(ctx, bucket.Ino, "f", bucket.Ino, "g", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rename", func() bool {
		_, err := os.Stat(f)
		return errors.Is(err, fs.ErrNotExist)
	})
	if got, err := os.ReadFile(filepath.Join(mp, "bkt", "g")); err != nil || string(got) != "hello" {
		t.Fatalf("renamed file: %q, %v", got, err)
	}

	// A delete made outside FUSE.
	if err := e.Unlink(ctx, bucket.Ino, "g"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unlink", func() bool {
		_, err := os.Stat(filepath.Join(mp, "bkt", "g"))
		return errors.Is(err, fs.ErrNotExist)
	})
}

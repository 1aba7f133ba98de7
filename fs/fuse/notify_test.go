package fuse

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	ssefs "github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// mountEngine mounts a fresh engine with attribute and entry caches that outlive any
// test, so only invalidation can make another frontend's changes visible.
func mountEngine(t *testing.T) (*ssefs.Engine, string) {
	t.Helper()
	return mountEngineWith(t, Options{})
}

// mountEngineWith is mountEngine with opts (Timeout is set here) and the engine's config
// adjusted by each of cfgs.
func mountEngineWith(t *testing.T, opts Options, cfgs ...func(*ssefs.Config)) (*ssefs.Engine, string) {
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
	cfg := ssefs.Config{Meta: db, Store: store, Sealer: keys.NewSealer(master, master.Name(), time.Minute)}
	for _, adjust := range cfgs {
		adjust(&cfg)
	}
	e, err := ssefs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	opts.Timeout = time.Hour
	server, err := Mount(mp, e, opts)
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

// eventually waits for the kernel to have dropped its cache: the engine's Settle must
// have waited for exactly that, so the state must show at once after it.
func eventually(t *testing.T, e *ssefs.Engine, what string, ok func() bool) {
	t.Helper()
	if !e.Settle(context.Background(), 10*time.Second) {
		t.Fatalf("%s: the mount did not act on the change within 10s", what)
	}
	if !ok() {
		t.Fatalf("%s: the mount still shows the cached state after the invalidation", what)
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
	eventually(t, e, "truncate", func() bool {
		got, err := os.ReadFile(f)
		return err == nil && string(got) == "hello"
	})

	// Entries: a rename made outside FUSE.
	if err := e.Rename(ctx, bucket.Ino, "f", bucket.Ino, "g", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "rename", func() bool {
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
	eventually(t, e, "unlink", func() bool {
		_, err := os.Stat(filepath.Join(mp, "bkt", "g"))
		return errors.Is(err, fs.ErrNotExist)
	})
}

// The kernel learns of a bucket's node through a directory listing (READDIRPLUS) and
// lookups that go-fuse answers with the node it already has: the invalidation must go
// to that node, not to one that go-fuse created and dropped.
func TestInvalidationReachesNodesKnownThroughListings(t *testing.T) {
	e, mp := mountEngine(t)
	ctx := ssefs.WithOrigin(context.Background(), "s3")
	if err := os.Mkdir(filepath.Join(mp, "bkt1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 3 { // each listing and stat offers go-fuse a node for bkt1 again
		if _, err := os.ReadDir(mp); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(mp, "bkt1")); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(mp, "bkt1", "f")
	if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat before the put: %v", err)
	}
	if _, err := e.PutObject(ctx, "bkt1", "f", strings.NewReader("one"), ssefs.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "put", func() bool {
		got, err := os.ReadFile(f)
		return err == nil && string(got) == "one"
	})
	if _, err := e.PutObject(ctx, "bkt1", "f", strings.NewReader("second"), ssefs.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "overwrite", func() bool {
		got, err := os.ReadFile(f)
		return err == nil && string(got) == "second"
	})
	if err := e.DeleteObject(ctx, "bkt1", "f"); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, "delete", func() bool {
		_, err := os.Stat(f)
		return errors.Is(err, fs.ErrNotExist)
	})
}

// The encryption attribute shows an SSE-KMS context an S3 client gave, encoded so the
// attribute stays space-separated NAME=VALUE fields.
func TestEncryptionXattrShowsContext(t *testing.T) {
	e, mp := mountEngine(t)
	ctx := ssefs.WithOrigin(context.Background(), "s3")
	if err := e.CreateBucket(ctx, "ctxb", ssefs.Owner{}); err != nil {
		t.Fatal(err)
	}
	kctx := map[string]string{"dept": "r&d", "note": "a b=c"}
	if _, err := e.PutObject(ctx, "ctxb", "o", strings.NewReader("x"), ssefs.PutOptions{
		SSE: ssefs.SSE{Type: ssefs.SSEKMS, Context: kctx}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(filepath.Join(mp, "ctxb", "o"), "ssefs.encryption", buf)
	if err != nil {
		t.Fatal(err)
	}
	v := string(buf[:n])
	_, enc, ok := strings.Cut(v, " context=")
	if !ok {
		t.Fatalf("no context in %q", v)
	}
	js, err := base64.RawURLEncoding.DecodeString(strings.Fields(enc)[0])
	if err != nil {
		t.Fatalf("context in %q: %v", v, err)
	}
	var got map[string]string
	if err := json.Unmarshal(js, &got); err != nil || !maps.Equal(got, kctx) {
		t.Fatalf("context %s (%v), want %v", js, err, kctx)
	}
}

// When a burst of changes from another frontend overflows the watcher's channel, the
// mount drops everything the kernel caches, and Settle waits for that: with an hour's
// entry timeout, nothing else would make the deletions show.
func TestMissedChangesDropEverythingCached(t *testing.T) {
	e, mp := mountEngineWith(t, Options{}, func(c *ssefs.Config) { c.WatchBuffer = 1 })
	ctx := context.Background()
	bucket, err := e.Mkdir(ctx, ssefs.RootIno, "bkt", ssefs.Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		_, h, err := e.Create(ctx, bucket.Ino, fmt.Sprintf("f%d", i), ssefs.Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !e.Settle(ctx, 10*time.Second) {
		t.Fatal("the creates did not settle")
	}
	for i := range n {
		if _, err := os.Stat(filepath.Join(mp, "bkt", fmt.Sprintf("f%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := e.Unlink(ctx, bucket.Ino, fmt.Sprintf("f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if !e.Settle(ctx, 10*time.Second) {
		t.Fatal("the unlinks did not settle within 10s")
	}
	for i := range n {
		if _, err := os.Stat(filepath.Join(mp, "bkt", fmt.Sprintf("f%d", i))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("f%d still shows after it was unlinked and that settled: %v", i, err)
		}
	}
}

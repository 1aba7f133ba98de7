package fs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ssefs/ssefs/meta"
)

// A small file written and closed costs one commit: its create rides on the commit of
// its content (pending.go).
func TestSmallFileIsOneCommit(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	// The first file also takes leases of inode numbers and chunk versions: a commit
	// each, once per many files.
	for _, name := range []string{"first", "second"} {
		before := env.db.Commits()
		_, h, err := env.e.Create(ctx, env.bucket, name, Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, []byte("four kib or less"), 0); err != nil {
			t.Fatal(err)
		}
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if n := env.db.Commits() - before; name == "second" && n != 1 {
			t.Errorf("create, write, close made %d commits, want 1", n)
		}
	}
}

// What Create acknowledged is there for every reader before it is committed, and what
// was closed survives a kill; only a file still open when the process dies may go.
func TestPendingCreateIsVisibleAndClosedFileSurvivesKill(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	a, closed, err := env.e.Create(ctx, env.bucket, "closed", Owner{Mode: 0o600}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := env.e.Lookup(ctx, env.bucket, "closed"); err != nil || got.Ino != a.Ino {
		t.Fatalf("lookup of a file just created: %+v, %v", got, err)
	}
	if _, _, err := env.e.Create(ctx, env.bucket, "closed", Owner{Mode: 0o600}, true); !errors.Is(err, ErrExist) {
		t.Fatalf("exclusive create of a pending name: %v, want ErrExist", err)
	}
	if _, err := closed.WriteAt(ctx, []byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	empty, emptyH, err := env.e.Create(ctx, env.bucket, "empty", Owner{Mode: 0o600}, true)
	if err != nil {
		t.Fatal(err)
	}
	names := listNames(t, env.e, env.bucket)
	if !slices.Equal(names, []string{"closed", "empty"}) {
		t.Fatalf("readdir while creates are pending: %q", names)
	}
	if err := env.e.Rmdir(ctx, RootIno, "bucket"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("rmdir of a directory holding only pending files: %v, want ErrNotEmpty", err)
	}
	for _, h := range []*Handle{closed, emptyH} {
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, open, err := env.e.Create(ctx, env.bucket, "open", Owner{Mode: 0o600}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.WriteAt(ctx, []byte("never closed"), 0); err != nil {
		t.Fatal(err)
	}
	env.crash()
	env.open()
	if got := readAll(t, env.e, a.Ino); string(got) != "kept" {
		t.Errorf("closed file after a kill: %q", got)
	}
	if got, err := env.e.Lookup(ctx, env.bucket, "empty"); err != nil || got.Ino != empty.Ino || got.Size != 0 {
		t.Errorf("closed empty file after a kill: %+v, %v", got, err)
	}
	if _, err := env.e.Lookup(ctx, env.bucket, "open"); !errors.Is(err, ErrNotExist) {
		t.Errorf("file open at the kill, never committed: lookup gives %v, want ErrNotExist", err)
	}
	report, err := env.e.Fsck(ctx, FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if report.Inconsistencies() != 0 {
		t.Errorf("fsck after a kill with a pending create: %+v", report)
	}
}

// Namespace changes that come before a pending create's commit see the file and keep
// their meaning: a rename moves it, an unlink of it leaves the open handle working.
func TestPendingCreateRenameAndUnlink(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "a", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.e.Rename(ctx, env.bucket, "a", env.bucket, "b", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, []byte("renamed"), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := env.e.Lookup(ctx, env.bucket, "b"); err != nil || got.Ino != a.Ino || got.Size != 7 {
		t.Fatalf("renamed pending file: %+v, %v", got, err)
	}
	if _, err := env.e.Lookup(ctx, env.bucket, "a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("old name after rename: %v", err)
	}

	c, h, err := env.e.Create(ctx, env.bucket, "c", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.e.Unlink(ctx, env.bucket, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, []byte("unlinked"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := h.ReadAt(ctx, buf, 0); err != nil || string(buf[:n]) != "unlinked" {
		t.Fatalf("read through the handle of an unlinked pending file: %q, %v", buf[:n], err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	err = env.db.View(func(tx *meta.Tx) error {
		_, err := tx.Inode(meta.Ino(c.Ino))
		return err
	})
	if !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("inode of an unlinked file after its last close: %v", err)
	}
}

// The space guard refuses a create when its commit would be refused, before anything is
// acknowledged.
func TestPendingCreateRefusedWhenFull(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	env.metaOpts.MinFree = 1 << 62 // more than any filesystem has: every growing commit is refused
	env.reopen()
	if _, _, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("create on a full disk: %v, want ErrNoSpace", err)
	}
	if _, err := env.e.Lookup(ctx, env.bucket, "f"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("lookup of a refused create: %v", err)
	}
	if n := env.e.pending.n.Load(); n != 0 {
		t.Fatalf("%d creates pending after a refused one", n)
	}
}

// Creates racing with readers: each file is found by every lookup that starts after its
// Create returned, and all end up stored once.
func TestPendingCreatesUnderConcurrency(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	const writers, files = 4, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range files {
				name := fmt.Sprintf("w%d-%d", w, i)
				a, h, err := env.e.Create(ctx, env.bucket, name, Owner{Mode: 0o644}, true)
				if err != nil {
					fail(err)
					return
				}
				// Another writer's lookup of this name may be what commits it.
				if got, err := env.e.Lookup(ctx, env.bucket, name); err != nil || got.Ino != a.Ino {
					fail(fmt.Errorf("lookup of %s right after its create: %+v, %v", name, got, err))
				}
				if i%2 == 0 {
					if _, err := h.WriteAt(ctx, []byte(name), 0); err != nil {
						fail(err)
					}
				}
				if err := h.Release(ctx); err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if n := len(listNames(t, env.e, env.bucket)); n != writers*files {
		t.Errorf("listed %d files, want %d", n, writers*files)
	}
	env.reopen()
	for w := range writers {
		name := fmt.Sprintf("w%d-%d", w, 0)
		a, err := env.e.Lookup(ctx, env.bucket, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, env.e, a.Ino); string(got) != name {
			t.Errorf("%s after reopen: %q", name, got)
		}
	}
}

func listNames(t *testing.T, e *Engine, dir Ino) []string {
	t.Helper()
	ents, err := e.ReadDir(context.Background(), dir, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ent := range ents {
		names = append(names, ent.Name)
	}
	return names
}

// A create through the mount and an S3 PUT of the same name at once: whichever comes
// second sees the first. The PUT's first attempt adds its name without nsMu; were it to
// commit between a create's check and the commit of the staged file, the file would find
// its name taken and be lost after its create succeeded.
func TestPendingCreateRacingS3Put(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	const rounds = 300
	for i := range rounds {
		name := fmt.Sprintf("k%d", i)
		var wg sync.WaitGroup
		var createErr, putErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, h, err := env.e.Create(ctx, env.bucket, name, Owner{Mode: 0o644}, true)
			if errors.Is(err, ErrExist) {
				return // the PUT came first
			}
			if err != nil {
				createErr = err
				return
			}
			if _, err := h.WriteAt(ctx, []byte("from the mount"), 0); err != nil {
				createErr = err
			}
			createErr = errors.Join(createErr, h.Release(ctx))
		}()
		go func() {
			defer wg.Done()
			_, putErr = env.e.PutObject(ctx, "bucket", name, strings.NewReader("from S3"), PutOptions{})
		}()
		wg.Wait()
		if createErr != nil || putErr != nil {
			t.Fatalf("round %d: create: %v; put: %v", i, createErr, putErr)
		}
		a, err := env.e.Lookup(ctx, env.bucket, name)
		if err != nil {
			t.Fatalf("round %d: lookup: %v", i, err)
		}
		if got := string(readAll(t, env.e, a.Ino)); got != "from S3" && got != "from the mount" {
			t.Fatalf("round %d: %q", i, got)
		}
	}
}

package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// testEnv is an engine on real stores in a temporary directory, reopenable to check
// what survives.
type testEnv struct {
	t      testing.TB
	dir    string
	key    []byte
	master *keys.Static
	// kms and defaultKey replace the master key when set.
	kms        keys.KMS
	defaultKey string
	cfg        Config
	metaOpts   meta.Options
	db         *meta.DB
	store      *objstore.Local
	e          *Engine
	bucket     Ino
}

func newTestEnv(t testing.TB, chunkSize uint32, writeBuffer int64) *testEnv {
	t.Helper()
	master, err := keys.GenerateMasterKey("test-key")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	env := &testEnv{t: t, dir: t.TempDir(), key: key, master: master,
		cfg: Config{ChunkSize: chunkSize, WriteBuffer: writeBuffer}}
	env.open()
	a, err := env.e.Mkdir(context.Background(), RootIno, "bucket", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	env.bucket = a.Ino
	t.Cleanup(func() { env.close() })
	return env
}

func (env *testEnv) open() {
	t := env.t
	var err error
	if env.db, err = meta.Open(filepath.Join(env.dir, "meta"), env.key, env.metaOpts); err != nil {
		t.Fatal(err)
	}
	if env.store, err = objstore.NewLocal(filepath.Join(env.dir, "objects")); err != nil {
		t.Fatal(err)
	}
	cfg := env.cfg
	var kms keys.KMS = env.master
	defaultKey := env.master.Name()
	if env.kms != nil {
		kms, defaultKey = env.kms, env.defaultKey
	}
	cfg.Meta, cfg.Store, cfg.Sealer = env.db, env.store, keys.NewSealer(kms, defaultKey, 0)
	if env.e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
}

func (env *testEnv) close() {
	if env.e == nil {
		return
	}
	if err := env.e.Close(); err != nil {
		env.t.Errorf("engine close: %v", err)
	}
	env.db.Close()
	env.store.Close()
	env.e = nil
}

// crash drops the engine without flushing or closing it, as kill -9 would, keeping
// only what was committed.
func (env *testEnv) crash() {
	close(env.e.stop)
	<-env.e.done
	env.db.Close()
	env.store.Close()
	env.e = nil
}

func (env *testEnv) reopen() {
	env.close()
	env.open()
}

func readAll(t *testing.T, e *Engine, ino Ino) []byte {
	t.Helper()
	h, err := e.Open(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())
	a := h.Attr()
	buf := make([]byte, a.Size)
	n, err := h.ReadAt(context.Background(), buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	return buf[:n]
}

// TestRandomIOMatchesModel drives random writes, truncates, flushes and reopens against
// a plain byte slice, with a chunk size that is not a multiple of DARE's packages and a
// write buffer small enough to force flushes under pressure.
func TestRandomIOMatchesModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		env := newTestEnv(t, 100_000, 300_000)
		ctx := context.Background()
		r := mrand.New(mrand.NewPCG(seed, seed))
		a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		ino := a.Ino
		var model []byte
		for step := 0; step < 300; step++ {
			switch op := r.IntN(10); {
			case op < 5:
				off := r.IntN(700_000)
				n := r.IntN(150_000) + 1
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(r.IntN(256))
				}
				if _, err := h.WriteAt(ctx, data, int64(off)); err != nil {
					t.Fatalf("seed %d step %d write: %v", seed, step, err)
				}
				if off+n > len(model) {
					model = append(model, make([]byte, off+n-len(model))...)
				}
				copy(model[off:], data)
			case op < 7:
				size := r.IntN(800_000)
				if err := h.Truncate(ctx, uint64(size)); err != nil {
					t.Fatalf("seed %d step %d truncate: %v", seed, step, err)
				}
				if size < len(model) {
					model = model[:size]
				} else {
					model = append(model, make([]byte, size-len(model))...)
				}
			case op < 8:
				if err := h.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			case op < 9:
				if err := h.Release(ctx); err != nil {
					t.Fatal(err)
				}
				if r.IntN(3) == 0 {
					env.reopen()
				}
				if h, err = env.e.Open(ctx, ino); err != nil {
					t.Fatal(err)
				}
			default:
				off := r.IntN(len(model) + 1)
				n := r.IntN(200_000)
				buf := make([]byte, n)
				k, err := h.ReadAt(ctx, buf, int64(off))
				want := model[off:min(len(model), off+n)]
				if k != len(want) || !bytes.Equal(buf[:k], want) {
					t.Fatalf("seed %d step %d: read %d+%d gave %d bytes (want %d), equal=%v",
						seed, step, off, n, k, len(want), bytes.Equal(buf[:k], want))
				}
				if k < n && !errors.Is(err, io.EOF) {
					t.Fatalf("short read without io.EOF: %v", err)
				}
			}
			if got := h.Attr().Size; got != uint64(len(model)) {
				t.Fatalf("seed %d step %d: size %d, want %d", seed, step, got, len(model))
			}
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		env.reopen()
		if got := readAll(t, env.e, ino); !bytes.Equal(got, model) {
			t.Fatalf("seed %d: content after reopen differs (len %d vs %d)", seed, len(got), len(model))
		}
	}
}

func TestTamperedChunkIsCorruptNotWrongBytes(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // about 3 chunks
	if _, err := h.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var victim objstore.ID
	if err := env.db.View(func(tx *meta.Tx) error {
		c, err := tx.Chunk(meta.Ino(a.Ino), 1)
		victim = c.Object
		return err
	}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(env.dir, "objects", victim.String()[:2], victim.String())
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[1000] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	env.reopen()
	h, err = env.e.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	buf := make([]byte, 4096)
	if _, err := h.ReadAt(ctx, buf, 1<<20+10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of tampered chunk: want ErrCorrupt, got %v", err)
	}
	// Chunks 0 and 2 are untouched and still read.
	if _, err := h.ReadAt(ctx, buf, 10); err != nil || !bytes.Equal(buf, data[10:10+4096]) {
		t.Fatalf("untouched chunk: %v", err)
	}
	if _, err := h.ReadAt(ctx, buf, 2<<20); err != nil || !bytes.Equal(buf, data[2<<20:2<<20+4096]) {
		t.Fatalf("untouched chunk 2: %v", err)
	}
}

func TestUnlinkedWhileOpenIsReclaimed(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, []byte("still here"), 0); err != nil {
		t.Fatal(err)
	}
	if err := env.e.Unlink(ctx, env.bucket, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Lookup(ctx, env.bucket, "f"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("lookup after unlink: %v", err)
	}
	buf := make([]byte, 10)
	if _, err := h.ReadAt(ctx, buf, 0); err != nil || string(buf) != "still here" {
		t.Fatalf("read through open handle after unlink: %q %v", buf, err)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The process dies with the file open: the next start must reclaim it.
	env.crash()
	env.open()
	err = env.db.View(func(tx *meta.Tx) error {
		_, err := tx.Inode(meta.Ino(a.Ino))
		return err
	})
	if !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("orphan inode after restart: %v", err)
	}
	objects := 0
	env.store.Walk(ctx, func(objstore.ID, int64) error { objects++; return nil })
	if err := env.e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	objects = 0
	env.store.Walk(ctx, func(objstore.ID, int64) error { objects++; return nil })
	if objects != 0 {
		t.Fatalf("%d chunk objects of the reclaimed orphan remain", objects)
	}
}

func TestRenameSemantics(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	e, b := env.e, env.bucket
	mk := func(parent Ino, name string) Ino {
		a, err := e.Mkdir(ctx, parent, name, Owner{Mode: 0o755})
		if err != nil {
			t.Fatal(err)
		}
		return a.Ino
	}
	file := func(parent Ino, name, content string) Ino {
		a, h, err := e.Create(ctx, parent, name, Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		h.WriteAt(ctx, []byte(content), 0)
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		return a.Ino
	}
	d1, d2 := mk(b, "d1"), mk(b, "d2")
	sub := mk(d1, "sub")
	file(d1, "a", "AAA")
	file(d2, "b", "BBB")

	if err := e.Rename(ctx, b, "d1", sub, "x", 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dir into its own subdir: %v", err)
	}
	if err := e.Rename(ctx, d1, "a", d2, "b", RenameNoReplace); !errors.Is(err, ErrExist) {
		t.Fatalf("noreplace over existing: %v", err)
	}
	if err := e.Rename(ctx, d1, "a", d2, "b", RenameExchange); err != nil {
		t.Fatal(err)
	}
	ab, _ := e.Lookup(ctx, d2, "b")
	if got := readAll(t, e, ab.Ino); string(got) != "AAA" {
		t.Fatalf("after exchange d2/b = %q", got)
	}
	if err := e.Rename(ctx, d1, "a", d2, "b", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Lookup(ctx, d1, "a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("source still there: %v", err)
	}
	ab, _ = e.Lookup(ctx, d2, "b")
	if got := readAll(t, e, ab.Ino); string(got) != "BBB" {
		t.Fatalf("after replace d2/b = %q", got)
	}
	// Moving a directory updates both parents' link counts.
	if err := e.Rename(ctx, d1, "sub", d2, "sub", 0); err != nil {
		t.Fatal(err)
	}
	a1, _ := e.GetAttr(ctx, d1)
	a2, _ := e.GetAttr(ctx, d2)
	if a1.Nlink != 2 || a2.Nlink != 3 {
		t.Fatalf("nlink after moving a dir: d1 %d (want 2), d2 %d (want 3)", a1.Nlink, a2.Nlink)
	}
	if err := e.Rmdir(ctx, b, "d2"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("rmdir non-empty: %v", err)
	}
	other, err := e.Mkdir(ctx, RootIno, "other", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Rename(ctx, d2, "b", other.Ino, "b", 0); !errors.Is(err, ErrCrossBucket) {
		t.Fatalf("cross-bucket rename: %v", err)
	}
	if _, err := e.Mkdir(ctx, RootIno, "Bad_Name", Owner{Mode: 0o755}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid bucket name: %v", err)
	}
	if _, _, err := e.Create(ctx, RootIno, "file", Owner{Mode: 0o644}, true); !errors.Is(err, ErrPermission) {
		t.Fatalf("file at the root: %v", err)
	}
	if err := e.SetXattr(ctx, ab.Ino, "ssefs.encryption", []byte("x"), 0); !errors.Is(err, ErrPermission) {
		t.Fatalf("setting the read-only xattr: %v", err)
	}
}

// TestLargeTruncateAndDeleteInBatches lowers the batch size so that a truncate and an
// unlink each need several transactions, and checks content and leftovers.
func TestLargeTruncateAndDeleteInBatches(t *testing.T) {
	defer func(old int) { chunkBatch = old }(chunkBatch)
	chunkBatch = 7
	env := newTestEnv(t, 4096, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "big", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 100*4096+10)
	rand.Read(data)
	if _, err := h.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	const size = 5*4096 + 100
	if err := h.Truncate(ctx, size); err != nil {
		t.Fatal(err)
	}
	if err := h.Truncate(ctx, 9*4096); err != nil { // grow again: the cut bytes must be zeros
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Clone(data[:size]), make([]byte, 9*4096-size)...)
	if got := readAll(t, env.e, a.Ino); !bytes.Equal(got, want) {
		t.Fatal("content after a batched truncate differs")
	}
	records := 0
	env.db.View(func(tx *meta.Tx) error {
		return tx.Chunks(meta.Ino(a.Ino), 0, func(meta.Chunk) bool { records++; return true })
	})
	if records != 6 {
		t.Fatalf("%d chunk records after truncating to 6 chunks", records)
	}
	if err := env.e.Unlink(ctx, env.bucket, "big"); err != nil {
		t.Fatal(err)
	}
	if err := env.e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	objects := 0
	env.store.Walk(ctx, func(objstore.ID, int64) error { objects++; return nil })
	if objects != 0 {
		t.Fatalf("%d objects left after unlinking", objects)
	}
	if err := env.db.View(func(tx *meta.Tx) error {
		_, err := tx.Inode(meta.Ino(a.Ino))
		return err
	}); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("inode after unlink: %v", err)
	}
}

// A commit of some of a file's dirty chunks (here: the first, written to its end, stored
// at once) must not record a size that covers the others: after a crash they would read
// back as zeros, bytes nobody wrote. The size grows with the chunks that hold the data.
func TestPartialFlushDoesNotCommitUnwrittenSize(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	ctx := context.Background()
	old := randBytes(testChunk / 3)
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Append a chunk and a half: chunk 0 is completed (and stored), chunk 1 stays dirty.
	add := randBytes(testChunk + testChunk/2)
	h, err = env.e.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, add, int64(len(old))); err != nil {
		t.Fatal(err)
	}
	// chmod while chunk 1 is dirty commits the inode too.
	mode := uint32(0o600)
	if _, err := env.e.SetAttr(ctx, a.Ino, SetAttrIn{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	env.crash()
	env.open()
	got := readAll(t, env.e, a.Ino)
	full := append(bytes.Clone(old), add...)
	if len(got) < len(old) || !bytes.Equal(got, full[:len(got)]) {
		i := 0
		for i < len(got) && i < len(full) && got[i] == full[i] {
			i++
		}
		t.Fatalf("after the crash: %d bytes, differing from what was written at %d (chunk %d); want a prefix of the %d bytes written, at least the %d acknowledged",
			len(got), i, i/testChunk, len(full), len(old))
	}
	t.Logf("after the crash: %d of %d bytes", len(got), len(full))
}

// TestInodesHeldFollowsKernelReferences: the memory limit hears how many inodes the
// kernel holds, at each step either way, counting inodes rather than references, from
// lookups as from Reference.
func TestInodesHeldFollowsKernelReferences(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	var told []int
	env.close()
	env.cfg.InodesHeld = func(n int) { told = append(told, n) }
	env.open()
	ctx := context.Background()
	if _, err := env.e.Mkdir(ctx, env.bucket, "dir", Owner{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	looked, err := env.e.LookupRef(ctx, env.bucket, "dir")
	if err != nil {
		t.Fatal(err)
	}
	env.e.Reference(looked.Ino) // a second reference to the same inode is not another inode
	// Inode numbers no lookup handed out: Reference only counts, as FUSE's lookups do.
	const first = 1 << 40
	for ino := Ino(first); ino < first+2*HeldStep; ino++ {
		env.e.Reference(ino)
	}
	if want := []int{HeldStep, 2 * HeldStep}; !slices.Equal(told, want) {
		t.Fatalf("after %d inodes: told %v, want %v", 2*HeldStep+1, told, want)
	}
	for ino := Ino(first); ino < first+HeldStep+2; ino++ {
		env.e.Forget(ino)
	}
	if want := []int{HeldStep, 2 * HeldStep, 2*HeldStep - 1, HeldStep - 1}; !slices.Equal(told, want) {
		t.Fatalf("after forgetting: told %v, want %v", told, want)
	}
}

// TestKernelReferenceKeepsOnlyReplacedInodes: the kernel's lookup reference keeps an
// unlinked inode readable only where its name was replaced (a rename or an S3 PUT over
// it), since an open that resolved the name just before must still find an inode; an
// unlinked name takes its inode and chunk records in the same transaction, and the
// late open gets ENOENT, as it would a moment later. A directory stays while referenced.
func TestKernelReferenceKeepsOnlyReplacedInodes(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	e, b := env.e, env.bucket
	write := func(name, content string) Ino {
		a, h, err := e.Create(ctx, b, name, Owner{Mode: 0o644}, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.WriteAt(ctx, []byte(content), 0); err != nil {
			t.Fatal(err)
		}
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		e.Reference(a.Ino) // as a FUSE lookup does
		return a.Ino
	}
	inodeExists := func(ino Ino) bool {
		err := env.db.View(func(tx *meta.Tx) error { _, err := tx.Inode(meta.Ino(ino)); return err })
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	gone := write("gone", "unlinked")
	if err := e.Unlink(ctx, b, "gone"); err != nil {
		t.Fatal(err)
	}
	if inodeExists(gone) {
		t.Error("an unlinked, referenced but unopened inode survived its unlink")
	}
	if _, err := e.Open(ctx, gone); !errors.Is(err, ErrNotExist) {
		t.Errorf("open of the unlinked inode: %v, want ErrNotExist", err)
	}
	e.Forget(gone) // the kernel's FORGET of an inode already gone is harmless

	old := write("name", "old content")
	write("new", "new content")
	if err := e.Rename(ctx, b, "new", b, "name", 0); err != nil {
		t.Fatal(err)
	}
	h, err := e.Open(ctx, old)
	if err != nil {
		t.Fatalf("open of the inode a rename replaced, still referenced: %v", err)
	}
	buf := make([]byte, 11)
	if n, err := h.ReadAt(ctx, buf, 0); err != nil && err != io.EOF || string(buf[:n]) != "old content" {
		t.Errorf("read of the replaced inode: %q, %v", buf[:n], err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if !inodeExists(old) {
		t.Error("the replaced inode went while the kernel still referenced it")
	}
	e.Forget(old)
	if inodeExists(old) {
		t.Error("the replaced inode outlived the kernel's last reference")
	}

	d, err := e.Mkdir(ctx, b, "dir", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	e.Reference(d.Ino)
	if err := e.Rmdir(ctx, b, "dir"); err != nil {
		t.Fatal(err)
	}
	if !inodeExists(d.Ino) {
		t.Error("a removed directory went while the kernel referenced it (a process may be in it)")
	}
	e.Forget(d.Ino)
	if inodeExists(d.Ino) {
		t.Error("the removed directory outlived the kernel's last reference")
	}
}

// TestLookupMany: a batch reads as Lookup would; Take takes the kernel reference that
// keeps a replaced inode; once any inode lost a link after the batch was read, Take
// refuses, since the batch may name an inode that is gone.
func TestLookupMany(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	e, b := env.e, env.bucket
	a := writeFile(t, e, b, "a", []byte("aaa"))
	writeFile(t, e, b, "b", []byte("bbbbb"))
	l := e.LookupMany(ctx, b, []string{"a", "missing", "b"})
	for i, name := range []string{"a", "missing", "b"} {
		want, wantErr := e.Lookup(ctx, b, name)
		got, err, ok := l.Take(i)
		if !ok {
			t.Fatalf("Take(%d) refused with nothing dropped", i)
		}
		if !errors.Is(err, ErrNotExist) != (wantErr == nil) || got != want {
			t.Errorf("%s: batch %+v, %v; Lookup %+v, %v", name, got, err, want, wantErr)
		}
	}
	// Take referenced "a": a rename over it keeps it for the kernel.
	writeFile(t, e, b, "new", []byte("new"))
	if err := e.Rename(ctx, b, "new", b, "a", 0); err != nil {
		t.Fatal(err)
	}
	if h, err := e.Open(ctx, a); err != nil {
		t.Errorf("the inode Take handed out went at a rename over its name: %v", err)
	} else if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// That rename dropped a link: an older batch is refused now.
	if _, _, ok := l.Take(2); ok {
		t.Error("Take served a batch read before an inode lost a link")
	}
	l = e.LookupMany(ctx, b, []string{"b"})
	if err := e.Unlink(ctx, b, "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := l.Take(0); ok {
		t.Error("Take served an inode that an unlink deleted after the batch was read")
	}
}

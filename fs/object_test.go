package fs

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

const testChunk = 100_000

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func countObjects(t *testing.T, env *testEnv) int {
	t.Helper()
	if err := env.e.SyncAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := env.store.Walk(context.Background(), func(objstore.ID, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func countOrphans(t *testing.T, env *testEnv) int {
	t.Helper()
	n := 0
	err := env.db.View(func(tx *meta.Tx) error {
		return tx.Orphans(func(meta.Ino) bool { n++; return true })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func put(t *testing.T, e *Engine, bucket, key string, data []byte, opt PutOptions) ObjectInfo {
	t.Helper()
	info, err := e.PutObject(context.Background(), bucket, key, bytes.NewReader(data), opt)
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return info
}

func get(t *testing.T, e *Engine, bucket, key string, opt GetOptions) ([]byte, ObjectInfo) {
	t.Helper()
	r, info, err := e.OpenObject(context.Background(), bucket, key, opt)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, info
}

func TestObjectRoundTrip(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	for _, size := range []int{0, 1, testChunk - 1, testChunk, testChunk + 1, 3*testChunk + 7} {
		key := fmt.Sprintf("dir/sub/obj-%d", size)
		data := randBytes(size)
		opt := PutOptions{
			UserMeta: map[string]string{"color": "blue", "n": fmt.Sprint(size)},
			System:   SystemMeta{ContentType: "application/x-test", CacheControl: "no-cache"},
			Owner:    Owner{Mode: 0o600, Uid: 1000, Gid: 1001},
		}
		info := put(t, e, "bucket", key, data, opt)
		if info.ETag != md5hex(data) || !info.ETagIsMD5 || info.Size != int64(size) {
			t.Fatalf("size %d: put info %+v", size, info)
		}
		got, ginfo := get(t, e, "bucket", key, GetOptions{})
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: content differs", size)
		}
		st, err := e.StatObject(ctx, "bucket", key, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []ObjectInfo{ginfo, st} {
			if i.ETag != md5hex(data) || i.Size != int64(size) || i.System != opt.System ||
				i.UserMeta["color"] != "blue" || i.SSEType != keys.SSES3 || i.KeyName != "test-key" ||
				i.Uid != 1000 || i.Gid != 1001 || i.Mode&0o777 != 0o600 || i.IsDir {
				t.Fatalf("size %d: info %+v", size, i)
			}
		}
		// Ranges.
		r, _, err := e.OpenObject(ctx, "bucket", key, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, rg := range [][2]int{{0, 1}, {size / 2, size / 3}, {size - 1, 1}, {testChunk - 3, 10}} {
			off, n := rg[0], rg[1]
			if off < 0 || off+n > size || n == 0 {
				continue
			}
			buf := make([]byte, n)
			if m, err := r.ReadAt(buf, int64(off)); err != nil || m != n || !bytes.Equal(buf, data[off:off+n]) {
				t.Fatalf("size %d: range %d+%d: %d, %v", size, off, n, m, err)
			}
		}
		if _, err := r.ReadAt(make([]byte, 1), int64(size)); err != io.EOF {
			t.Fatalf("read at the end: %v", err)
		}
		r.Close()
		// The mount sees the user metadata as xattrs.
		if v, err := e.GetXattr(ctx, uint64(info.Ino), "user.color"); err != nil || string(v) != "blue" {
			t.Fatalf("xattr: %q, %v", v, err)
		}
	}
	// Everything survives a restart.
	env.reopen()
	data, info := get(t, env.e, "bucket", "dir/sub/obj-300007", GetOptions{})
	if info.ETag != md5hex(data) || len(data) != 300007 {
		t.Fatalf("after reopen: %+v", info)
	}
	if n := countOrphans(t, env); n != 0 {
		t.Fatalf("%d orphans left", n)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestPutFailingBodyLeavesNothing(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	old := randBytes(testChunk + 5)
	put(t, e, "bucket", "x/keep", old, PutOptions{})
	before := countObjects(t, env)
	// io.ErrUnexpectedEOF is what net/http's body returns when the client hangs up
	// before Content-Length: it must not pass for the end of the object.
	for _, boom := range []error{errors.New("client went away"), io.ErrUnexpectedEOF} {
		for _, key := range []string{"x/keep", "y/new/obj"} {
			_, err := e.PutObject(ctx, "bucket", key, &failingReader{data: randBytes(testChunk*5/2 + 1), err: boom}, PutOptions{})
			if !errors.Is(err, boom) {
				t.Fatalf("put %q failing with %v: %v, want the body's error", key, boom, err)
			}
		}
	}
	if got := countObjects(t, env); got != before {
		t.Fatalf("%d objects in the store, %d before", got, before)
	}
	if n := countOrphans(t, env); n != 0 {
		t.Fatalf("%d orphans left", n)
	}
	if got, _ := get(t, e, "bucket", "x/keep", GetOptions{}); !bytes.Equal(got, old) {
		t.Fatal("the old object changed")
	}
	if _, err := e.StatObject(ctx, "bucket", "y/new/obj", GetOptions{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("stat of the failed key: %v", err)
	}
	res, err := e.ListObjects(ctx, "bucket", ListOptions{})
	if err != nil || len(res.Objects) != 1 || res.Objects[0].Key != "x/keep" {
		t.Fatalf("list: %+v, %v", res, err)
	}
	if _, err := e.Lookup(ctx, env.bucket, "y"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a failed put created its parent: %v", err)
	}
	// A cancelled context is a failure too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.PutObject(cctx, "bucket", "z", bytes.NewReader(randBytes(10)), PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled put: %v", err)
	}
	if got := countObjects(t, env); got != before {
		t.Fatalf("%d objects in the store, %d before", got, before)
	}
}

func TestPutOverwriteWhileOpen(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	v1, v2 := randBytes(2*testChunk+3), randBytes(testChunk/2)
	info1 := put(t, e, "bucket", "f", v1, PutOptions{})
	// One handle through the mount's path, one reader through S3.
	h, err := e.Open(ctx, info1.Ino)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := e.OpenObject(ctx, "bucket", "f", GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changes, unsub := e.Subscribe()
	defer unsub()
	info2 := put(t, e, "bucket", "f", v2, PutOptions{})
	if info2.Ino == info1.Ino {
		t.Fatal("overwrite reused the inode")
	}
	var sawOld, sawNew bool
	for len(changes) > 0 {
		c := <-changes
		if c.Name == "f" && c.Parent == env.bucket {
			sawOld = sawOld || c.Ino == info1.Ino && c.Removed
			sawNew = sawNew || c.Ino == info2.Ino && !c.Removed
		}
	}
	if !sawOld || !sawNew {
		t.Fatalf("changes: old removed %v, new linked %v", sawOld, sawNew)
	}
	buf := make([]byte, len(v1))
	if n, err := h.ReadAt(ctx, buf, 0); n != len(v1) || (err != nil && err != io.EOF) || !bytes.Equal(buf, v1) {
		t.Fatalf("old handle: %d, %v", n, err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("old reader: %v", err)
	}
	if got, _ := get(t, e, "bucket", "f", GetOptions{}); !bytes.Equal(got, v2) {
		t.Fatal("new content differs")
	}
	r.Close()
	h.Release(ctx)
	// The old inode is gone with its chunks: v2 is one chunk.
	if n := countObjects(t, env); n != 1 {
		t.Fatalf("%d objects after the old inode was released, want 1", n)
	}
	if _, err := e.GetAttr(ctx, info1.Ino); !errors.Is(err, ErrNotExist) {
		t.Fatalf("old inode: %v", err)
	}
}

func TestInvalidKeysStoreNothing(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	put(t, e, "bucket", "file", []byte("f"), PutOptions{})
	put(t, e, "bucket", "dir/x", []byte("x"), PutOptions{})
	before := countObjects(t, env)
	cases := map[string]error{
		"":                               ErrInvalid,
		"/lead":                          ErrInvalid,
		"a//b":                           ErrInvalid,
		"a/./b":                          ErrInvalid,
		"a/../b":                         ErrInvalid,
		"..":                             ErrInvalid,
		"a/.":                            ErrInvalid,
		"nul\x00":                        ErrInvalid,
		strings.Repeat("s", 256):         ErrNameTooLong,
		strings.Repeat("a/", 600) + "x":  ErrNameTooLong,
		"file/sub":                       ErrNotDir,
		"file/":                          ErrNotDir,
		"dir":                            ErrIsDir,
		"file/deeper/still":              ErrNotDir,
		"new/../x":                       ErrInvalid,
		strings.Repeat("x", 255) + "/ok": nil,
	}
	for key, want := range cases {
		_, err := e.PutObject(ctx, "bucket", key, bytes.NewReader(randBytes(testChunk+1)), PutOptions{})
		if want == nil {
			if err != nil {
				t.Errorf("key %q: %v", key, err)
			}
			continue
		}
		if !errors.Is(err, want) {
			t.Errorf("key %q: %v, want %v", key, err, want)
		}
		if want == ErrInvalid || want == ErrNameTooLong {
			if verr := ValidObjectKey(key); !errors.Is(verr, want) {
				t.Errorf("ValidObjectKey(%q) = %v", key, verr)
			}
		}
	}
	if err := e.DeleteObject(ctx, "bucket", strings.Repeat("x", 255)+"/ok"); err != nil {
		t.Fatal(err)
	}
	if got := countObjects(t, env); got != before {
		t.Fatalf("%d objects, %d before", got, before)
	}
	ents, err := e.ReadDir(ctx, env.bucket, "", 0)
	if err != nil || len(ents) != 2 {
		t.Fatalf("bucket holds %+v, %v", ents, err)
	}
	// A dir key needs an empty body.
	if _, err := e.PutObject(ctx, "bucket", "d/", strings.NewReader("x"), PutOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dir key with a body: %v", err)
	}
	if _, err := e.PutObject(ctx, "nobucket", "k", strings.NewReader("x"), PutOptions{}); !errors.Is(err, ErrNoSuchBucket) || !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing bucket: %v", err)
	}
}

func listAll(t *testing.T, e *Engine, opt ListOptions) (keys []string) {
	t.Helper()
	for {
		res, err := e.ListObjects(context.Background(), "bucket", opt)
		if err != nil {
			t.Fatal(err)
		}
		// Merge objects and prefixes back into one ordered stream.
		var page []string
		for _, o := range res.Objects {
			page = append(page, o.Key)
		}
		page = append(page, res.CommonPrefixes...)
		sort.Strings(page)
		keys = append(keys, page...)
		if !res.Truncated {
			return keys
		}
		if res.Next != page[len(page)-1] {
			t.Fatalf("Next %q, last item %q", res.Next, page[len(page)-1])
		}
		opt.After = res.Next
	}
}

func TestListOrderTrickyNames(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	for _, k := range []string{"a-c", "a/b", "a0", "a.txt", "b/", "c/d/e", "a/", "a!", "ab/c"} {
		put(t, e, "bucket", k, nil, PutOptions{})
	}
	// Not objects: a symlink and a FIFO made through the mount, an empty implicit dir.
	if _, err := e.Symlink(ctx, env.bucket, "a1", "a0", Owner{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Mknod(ctx, env.bucket, "a2", Owner{Mode: 0o10644}); err != nil {
		t.Fatal(err)
	}
	put(t, e, "bucket", "e/f/g", nil, PutOptions{})
	h, err := e.Lookup(ctx, env.bucket, "e")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := e.Lookup(ctx, h.Ino, "f")
	if err := e.Unlink(ctx, f.Ino, "g"); err != nil { // through the mount: e/f stays, empty and implicit
		t.Fatal(err)
	}
	for _, c := range []struct {
		opt  ListOptions
		want []string
	}{
		{ListOptions{}, []string{"a!", "a-c", "a.txt", "a/", "a/b", "a0", "ab/c", "b/", "c/d/e"}},
		{ListOptions{Delimiter: "/"}, []string{"a!", "a-c", "a.txt", "a/", "a0", "ab/", "b/", "c/"}},
		{ListOptions{Prefix: "a", Delimiter: "/"}, []string{"a!", "a-c", "a.txt", "a/", "a0", "ab/"}},
		{ListOptions{Prefix: "a/", Delimiter: "/"}, []string{"a/", "a/b"}},
		{ListOptions{Prefix: "c/d/"}, []string{"c/d/e"}},
		{ListOptions{Prefix: "c/d"}, []string{"c/d/e"}},
		{ListOptions{Prefix: "c/d", Delimiter: "/"}, []string{"c/d/"}},
		{ListOptions{After: "a-c"}, []string{"a.txt", "a/", "a/b", "a0", "ab/c", "b/", "c/d/e"}},
		{ListOptions{After: "a/", Delimiter: "/"}, []string{"a0", "ab/", "b/", "c/"}},
		{ListOptions{After: "a/a"}, []string{"a/b", "a0", "ab/c", "b/", "c/d/e"}},
		{ListOptions{Prefix: "zz"}, nil},
	} {
		res, err := e.ListObjects(ctx, "bucket", c.opt)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range res.Objects {
			got = append(got, o.Key)
		}
		got = append(got, res.CommonPrefixes...)
		sort.Strings(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.opt, got, c.want)
		}
		// Objects come in order.
		for i := 1; i < len(res.Objects); i++ {
			if res.Objects[i-1].Key >= res.Objects[i].Key {
				t.Errorf("%+v: objects out of order: %q, %q", c.opt, res.Objects[i-1].Key, res.Objects[i].Key)
			}
		}
	}
	// An explicit empty directory is a "dir/" object.
	st, err := e.StatObject(ctx, "bucket", "b/", GetOptions{})
	if err != nil || !st.IsDir || st.ETag != emptyMD5 {
		t.Fatalf("stat b/: %+v, %v", st, err)
	}
	if _, err := e.StatObject(ctx, "bucket", "c/", GetOptions{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("stat of an implicit dir: %v", err)
	}
	if _, err := e.ListObjects(ctx, "nobucket", ListOptions{}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("list of a missing bucket: %v", err)
	}
}

// modelList is what S3 lists from a sorted key set.
func modelList(keys []string, opt ListOptions) []string {
	var out []string
	last := ""
	for _, k := range keys {
		if k <= opt.After || !strings.HasPrefix(k, opt.Prefix) {
			continue
		}
		if opt.Delimiter != "" {
			rest := k[len(opt.Prefix):]
			if i := strings.Index(rest, opt.Delimiter); i >= 0 {
				cp := opt.Prefix + rest[:i+len(opt.Delimiter)]
				if cp != last && cp > opt.After {
					out = append(out, cp)
					last = cp
				}
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

func TestListPaginationMatchesModel(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e := env.e
	r := mrand.New(mrand.NewPCG(7, 7))
	names := []string{"a", "a-c", "a.b", "a0", "b", "b!", "c", "x", "x-", "x0", "z"}
	set := map[string]bool{}
	for len(set) < 1400 {
		depth := 1 + r.IntN(3)
		var segs []string
		for i := 0; i < depth; i++ {
			segs = append(segs, names[r.IntN(len(names))]+fmt.Sprint(r.IntN(4)))
		}
		set[strings.Join(segs, "/")] = true
	}
	// Drop keys that would collide with a directory of the same name.
	var all []string
	for k := range set {
		all = append(all, k)
	}
	sort.Strings(all)
	var keys []string
	for _, k := range all {
		collides := false
		for o := range set {
			if strings.HasPrefix(o, k+"/") {
				collides = true
				break
			}
		}
		if !collides {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		put(t, e, "bucket", k, nil, PutOptions{})
	}
	if len(keys) <= 1000 {
		t.Fatalf("only %d keys", len(keys))
	}
	for _, opt := range []ListOptions{
		{},
		{MaxKeys: 1},
		{MaxKeys: 7},
		{MaxKeys: 333, Delimiter: "/"},
		{MaxKeys: 5, Delimiter: "/"},
		{Prefix: "a", MaxKeys: 13},
		{Prefix: "a0/", MaxKeys: 9, Delimiter: "/"},
		{Prefix: "x-1/b", MaxKeys: 4},
		{After: "b2/x", MaxKeys: 50},
		{After: "a-", Delimiter: "/", MaxKeys: 3},
	} {
		want := modelList(keys, opt)
		got := listAll(t, e, opt)
		if !slices.Equal(got, want) {
			t.Fatalf("%+v: %d items, want %d\n got %q\nwant %q", opt, len(got), len(want), head(got), head(want))
		}
	}
	// A full page of the default size.
	res, err := e.ListObjects(context.Background(), "bucket", ListOptions{})
	if err != nil || len(res.Objects) != 1000 || !res.Truncated || res.Next != keys[999] {
		t.Fatalf("default page: %d objects, truncated %v, next %q, %v", len(res.Objects), res.Truncated, res.Next, err)
	}
}

func head(s []string) []string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

func TestSSECObjects(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	var key, wrong [32]byte
	rand.Read(key[:])
	rand.Read(wrong[:])
	data := randBytes(testChunk + 10)
	info := put(t, e, "bucket", "secret", data, PutOptions{SSE: SSE{Type: keys.SSEC, ClientKey: &key}})
	if info.SSEType != keys.SSEC || info.ClientKeyMD5 != md5.Sum(key[:]) || info.KeyName != "" {
		t.Fatalf("put info %+v", info)
	}
	checkErr := func(what string, err, kind, cause error) {
		t.Helper()
		if !errors.Is(err, kind) || cause != nil && !errors.Is(err, cause) {
			t.Fatalf("%s: %v, want %v / %v", what, err, kind, cause)
		}
	}
	_, err := e.StatObject(ctx, "bucket", "secret", GetOptions{})
	checkErr("stat without key", err, ErrAccess, keys.ErrClientKeyRequired)
	_, err = e.StatObject(ctx, "bucket", "secret", GetOptions{ClientKey: &wrong})
	checkErr("stat with wrong key", err, ErrAccess, keys.ErrClientKeyMismatch)
	_, _, err = e.OpenObject(ctx, "bucket", "secret", GetOptions{})
	checkErr("get without key", err, ErrAccess, keys.ErrClientKeyRequired)
	_, _, err = e.OpenObject(ctx, "bucket", "secret", GetOptions{ClientKey: &wrong})
	checkErr("get with wrong key", err, ErrAccess, keys.ErrClientKeyMismatch)
	_, err = e.Open(ctx, info.Ino)
	checkErr("open through the mount", err, ErrAccess, keys.ErrClientKeyRequired)
	// While an S3 reader has it open, the mount still cannot, nor a wrong key.
	r, _, err := e.OpenObject(ctx, "bucket", "secret", GetOptions{ClientKey: &key})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Open(ctx, info.Ino)
	checkErr("open through the mount while open", err, ErrAccess, nil)
	_, _, err = e.OpenObject(ctx, "bucket", "secret", GetOptions{ClientKey: &wrong})
	checkErr("get with wrong key while open", err, ErrAccess, keys.ErrClientKeyMismatch)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	r.Close()
	env.reopen()
	got, ginfo := get(t, env.e, "bucket", "secret", GetOptions{ClientKey: &key})
	if !bytes.Equal(got, data) || ginfo.ETag != md5hex(data) {
		t.Fatal("after reopen: content or ETag differs")
	}
	// A key for an object that is not SSE-C is refused.
	put(t, env.e, "bucket", "plain", []byte("p"), PutOptions{})
	_, _, err = env.e.OpenObject(ctx, "bucket", "plain", GetOptions{ClientKey: &key})
	checkErr("key for a plain object", err, ErrInvalid, ErrNotSSEC)
	// SSE-C without a key, or a key without SSE-C, is refused.
	_, err = env.e.PutObject(ctx, "bucket", "k", strings.NewReader("x"), PutOptions{SSE: SSE{Type: keys.SSEC}})
	checkErr("SSE-C without a key", err, ErrInvalid, nil)
	_, err = env.e.PutObject(ctx, "bucket", "k", strings.NewReader("x"), PutOptions{SSE: SSE{ClientKey: &key}})
	checkErr("a key without SSE-C", err, ErrInvalid, nil)
}

// twoKeys is a KMS with two external keys.
type twoKeys struct{ a, b *keys.Static }

func (k twoKeys) pick(name string) *keys.Static {
	if name == k.b.Name() {
		return k.b
	}
	return k.a
}

func (k twoKeys) GenerateKey(ctx context.Context, name string, kctx keys.Context) (keys.DEK, error) {
	return k.pick(name).GenerateKey(ctx, name, kctx)
}

func (k twoKeys) Decrypt(ctx context.Context, name string, ct []byte, kctx keys.Context) ([]byte, error) {
	return k.pick(name).Decrypt(ctx, name, ct, kctx)
}

func TestSSEKMSNamedKey(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	env.close()
	other, err := keys.GenerateMasterKey("other-key")
	if err != nil {
		t.Fatal(err)
	}
	if env.db, err = meta.Open(filepath.Join(env.dir, "meta"), env.key, meta.Options{}); err != nil {
		t.Fatal(err)
	}
	if env.store, err = objstore.NewLocal(filepath.Join(env.dir, "objects")); err != nil {
		t.Fatal(err)
	}
	cfg := env.cfg
	cfg.Meta, cfg.Store = env.db, env.store
	cfg.Sealer = keys.NewSealer(twoKeys{env.master, other}, env.master.Name(), 0)
	if env.e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e, ctx := env.e, context.Background()
	data := randBytes(1000)
	info := put(t, e, "bucket", "named", data, PutOptions{SSE: SSE{Type: keys.SSEKMS, KeyName: "other-key"}})
	st, err := e.StatObject(ctx, "bucket", "named", GetOptions{})
	if err != nil || st.SSEType != keys.SSEKMS || st.KeyName != "other-key" || info.KeyName != "other-key" {
		t.Fatalf("stat %+v / put %+v, %v", st, info, err)
	}
	if got, _ := get(t, e, "bucket", "named", GetOptions{}); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// SSE-KMS without a name: the bucket's default, then the process default.
	put(t, e, "bucket", "dflt", data, PutOptions{SSE: SSE{Type: keys.SSEKMS}})
	if st, _ := e.StatObject(ctx, "bucket", "dflt", GetOptions{}); st.SSEType != keys.SSEKMS || st.KeyName != "test-key" {
		t.Fatalf("process default: %+v", st)
	}
	if err := e.SetBucketEncryption(ctx, "bucket", "other-key"); err != nil {
		t.Fatal(err)
	}
	put(t, e, "bucket", "bdflt", data, PutOptions{SSE: SSE{Type: keys.SSEKMS}})
	put(t, e, "bucket", "none", data, PutOptions{})
	put(t, e, "bucket", "s3", data, PutOptions{SSE: SSE{Type: keys.SSES3}})
	for k, want := range map[string][2]string{"bdflt": {keys.SSEKMS, "other-key"}, "none": {keys.SSEKMS, "other-key"}, "s3": {keys.SSES3, "test-key"}} {
		st, err := e.StatObject(ctx, "bucket", k, GetOptions{})
		if err != nil || st.SSEType != want[0] || st.KeyName != want[1] {
			t.Fatalf("%s: %+v, %v", k, st, err)
		}
	}
	// A key the KMS does not know: nothing stored.
	before := countObjects(t, env)
	_, err = e.PutObject(ctx, "bucket", "bad", bytes.NewReader(data), PutOptions{SSE: SSE{Type: keys.SSEKMS, KeyName: "nope"}})
	if !errors.Is(err, ErrAccess) {
		t.Fatalf("unknown key: %v", err)
	}
	if countObjects(t, env) != before {
		t.Fatal("a refused put stored objects")
	}
}

func TestCopyObject(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	var ck [32]byte
	rand.Read(ck[:])
	data := randBytes(2*testChunk + 1)
	src := put(t, e, "bucket", "src", data, PutOptions{
		SSE:      SSE{Type: keys.SSEC, ClientKey: &ck},
		UserMeta: map[string]string{"a": "1"},
		System:   SystemMeta{ContentType: "text/x-src"},
		Owner:    Owner{Mode: 0o640, Uid: 7, Gid: 8},
	})
	if _, err := e.CopyObject(ctx, "bucket", "src", "bucket", "dst", CopyOptions{}); !errors.Is(err, ErrAccess) {
		t.Fatalf("copy without the source key: %v", err)
	}
	cp, err := e.CopyObject(ctx, "bucket", "src", "bucket", "d/copy", CopyOptions{Source: GetOptions{ClientKey: &ck}})
	if err != nil {
		t.Fatal(err)
	}
	got, info := get(t, e, "bucket", "d/copy", GetOptions{})
	if !bytes.Equal(got, data) || info.ETag != md5hex(data) || info.UserMeta["a"] != "1" ||
		info.System.ContentType != "text/x-src" || info.SSEType != keys.SSES3 || info.Uid != 7 || cp.Ino == src.Ino {
		t.Fatalf("COPY: %+v", info)
	}
	_, err = e.CopyObject(ctx, "bucket", "d/copy", "bucket", "d/copy", CopyOptions{
		ReplaceMetadata: true,
		Dest:            PutOptions{UserMeta: map[string]string{"b": "2"}, System: SystemMeta{ContentType: "text/new"}, SSE: SSE{Type: keys.SSEC, ClientKey: &ck}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, info = get(t, e, "bucket", "d/copy", GetOptions{ClientKey: &ck})
	if !bytes.Equal(got, data) || info.UserMeta["a"] != "" || info.UserMeta["b"] != "2" || info.System.ContentType != "text/new" || info.SSEType != keys.SSEC {
		t.Fatalf("REPLACE onto itself: %+v", info)
	}
	// Old inodes are gone: src (3 chunks) + copy (3 chunks).
	if n := countObjects(t, env); n != 6 {
		t.Fatalf("%d objects, want 6", n)
	}
}

func TestDeleteObjectAndImplicitDirs(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	put(t, e, "bucket", "a/b/c/one", []byte("1"), PutOptions{})
	put(t, e, "bucket", "a/b/c/two", []byte("2"), PutOptions{})
	// An explicit directory made through the mount, in the middle of the chain.
	a, _ := e.Lookup(ctx, env.bucket, "a")
	if _, err := e.Mkdir(ctx, a.Ino, "m", Owner{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	put(t, e, "bucket", "a/m/n/x", []byte("x"), PutOptions{})
	changes, unsub := e.Subscribe()
	defer unsub()
	for _, k := range []string{"a/b/c/one", "nothing", "a/b/c", "a/b/c/", "a/zz/q", "a/b/c/one/x"} {
		if err := e.DeleteObject(ctx, "bucket", k); err != nil {
			t.Fatalf("delete %q: %v", k, err)
		}
	}
	if got := listAll(t, e, ListOptions{}); !slices.Equal(got, []string{"a/b/c/two", "a/m/n/x"}) {
		t.Fatalf("after deleting one: %q", got)
	}
	if err := e.DeleteObject(ctx, "bucket", "a/b/c/two"); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteObject(ctx, "bucket", "a/m/n/x"); err != nil {
		t.Fatal(err)
	}
	// a/b/c and a/b went; a/m (explicit) stays and holds a so a stays too.
	if _, err := e.Lookup(ctx, a.Ino, "b"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("implicit a/b: %v", err)
	}
	m, err := e.Lookup(ctx, a.Ino, "m")
	if err != nil {
		t.Fatalf("explicit a/m: %v", err)
	}
	if _, err := e.Lookup(ctx, m.Ino, "n"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("implicit a/m/n: %v", err)
	}
	if got := listAll(t, e, ListOptions{}); !slices.Equal(got, []string{"a/m/"}) {
		t.Fatalf("after deleting all: %q", got)
	}
	removed := map[string]bool{}
	for len(changes) > 0 {
		if c := <-changes; c.Removed {
			removed[c.Name] = true
		}
	}
	for _, n := range []string{"one", "two", "c", "b", "x", "n"} {
		if !removed[n] {
			t.Errorf("no removal published for %q", n)
		}
	}
	// A dir key on a directory that still holds keys only drops the marker.
	put(t, e, "bucket", "p/", nil, PutOptions{})
	put(t, e, "bucket", "p/q", []byte("q"), PutOptions{})
	if _, err := e.StatObject(ctx, "bucket", "p/", GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteObject(ctx, "bucket", "p/"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.StatObject(ctx, "bucket", "p/", GetOptions{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("marker still there: %v", err)
	}
	if err := e.DeleteObject(ctx, "bucket", "p/q"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Lookup(ctx, env.bucket, "p"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("p should have gone with its last key: %v", err)
	}
	// An empty explicit dir goes with its dir key; an explicit "a/" stays explicit on a put below it.
	if err := e.DeleteObject(ctx, "bucket", "a/m/"); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, e, ListOptions{}); len(got) != 0 {
		t.Fatalf("bucket not empty: %q", got)
	}
	if n := countObjects(t, env); n != 0 {
		t.Fatalf("%d chunk objects left", n)
	}
}

func TestETagDroppedByMountWrite(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	data := randBytes(testChunk + 3)
	info := put(t, e, "bucket", "f", data, PutOptions{System: SystemMeta{ContentType: "a/b"}})
	h, err := e.Open(ctx, info.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e.StatObject(ctx, "bucket", "f", GetOptions{}); st.ETag != md5hex(data) {
		t.Fatalf("open alone changed the ETag: %q", st.ETag)
	}
	if _, err := h.WriteAt(ctx, []byte("XY"), 5); err != nil {
		t.Fatal(err)
	}
	// Not yet flushed: already not the MD5.
	st, err := e.StatObject(ctx, "bucket", "f", GetOptions{})
	if err != nil || st.ETag == md5hex(data) || st.ETagIsMD5 || !strings.HasSuffix(st.ETag, "-1") {
		t.Fatalf("ETag with unflushed write: %+v, %v", st, err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	st2, _ := e.StatObject(ctx, "bucket", "f", GetOptions{})
	if st2.ETag == md5hex(data) || st2.ETagIsMD5 || st2.System.ContentType != "a/b" {
		t.Fatalf("after flush: %+v", st2)
	}
	if err := e.db.View(func(tx *meta.Tx) error {
		rec, err := tx.Object(meta.Ino(info.Ino))
		if err != nil || rec.ETag != "" {
			t.Fatalf("stored record %+v, %v", rec, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Stable while nothing changes; changes with a truncate.
	st3, _ := e.StatObject(ctx, "bucket", "f", GetOptions{})
	if st3.ETag != st2.ETag {
		t.Fatal("synthetic ETag not stable")
	}
	size := uint64(10)
	if _, err := e.SetAttr(ctx, info.Ino, SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	st4, _ := e.StatObject(ctx, "bucket", "f", GetOptions{})
	if st4.ETag == st3.ETag || st4.Size != 10 {
		t.Fatalf("after truncate: %+v", st4)
	}
	want := append(append(bytes.Clone(data[:5]), "XY"...), data[7:10]...)
	if got, _ := get(t, e, "bucket", "f", GetOptions{}); !bytes.Equal(got, want) {
		t.Fatal("content after the mount's changes differs")
	}
	// A truncate alone (through a handle) drops a fresh ETag too.
	info = put(t, e, "bucket", "g", data, PutOptions{})
	h, _ = e.Open(ctx, info.Ino)
	if err := h.Truncate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.Release(ctx)
	if st, _ := e.StatObject(ctx, "bucket", "g", GetOptions{}); st.ETagIsMD5 {
		t.Fatalf("after truncate: %+v", st)
	}
}

func TestBuckets(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	if err := e.CreateBucket(ctx, "second", Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateBucket(ctx, "second", Owner{}); !errors.Is(err, ErrExist) {
		t.Fatalf("again: %v", err)
	}
	if err := e.CreateBucket(ctx, "Bad_Name", Owner{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	bs, err := e.ListBuckets(ctx)
	if err != nil || len(bs) != 2 || bs[0].Name != "bucket" || bs[1].Name != "second" {
		t.Fatalf("buckets %+v, %v", bs, err)
	}
	if ok, err := e.BucketExists(ctx, "second"); !ok || err != nil {
		t.Fatalf("exists: %v, %v", ok, err)
	}
	if ok, err := e.BucketExists(ctx, "third"); ok || err != nil {
		t.Fatalf("exists third: %v, %v", ok, err)
	}
	put(t, e, "second", "k", []byte("v"), PutOptions{})
	if err := e.DeleteBucket(ctx, "second"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("delete non-empty: %v", err)
	}
	if err := e.DeleteObject(ctx, "second", "k"); err != nil {
		t.Fatal(err)
	}
	id, err := e.CreateUpload(ctx, "second", "up", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteBucket(ctx, "second"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("delete with an upload in progress: %v", err)
	}
	if err := e.AbortUpload(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteBucket(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteBucket(ctx, "second"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("delete again: %v", err)
	}
	if ok, _ := e.BucketExists(ctx, "second"); ok {
		t.Fatal("still exists")
	}
}

// TestRandomPutDeleteListMatchesModel interleaves puts, deletes and listings against a
// map of keys.
func TestRandomPutDeleteListMatchesModel(t *testing.T) {
	env := newTestEnv(t, 1000, 0)
	e, ctx := env.e, context.Background()
	r := mrand.New(mrand.NewPCG(11, 12))
	model := map[string][]byte{}
	segs := []string{"a", "a-", "a0", "b", "b.c"}
	randKey := func() string {
		n := 1 + r.IntN(3)
		var s []string
		for i := 0; i < n; i++ {
			s = append(s, segs[r.IntN(len(segs))])
		}
		return strings.Join(s, "/")
	}
	conflicts := func(k string) bool {
		for o := range model {
			if strings.HasPrefix(o, k+"/") || strings.HasPrefix(k, o+"/") {
				return true
			}
		}
		return false
	}
	for step := 0; step < 400; step++ {
		switch op := r.IntN(10); {
		case op < 5:
			k := randKey()
			data := randBytes(r.IntN(2500))
			_, err := e.PutObject(ctx, "bucket", k, bytes.NewReader(data), PutOptions{})
			if conflicts(k) {
				if !errors.Is(err, ErrNotDir) && !errors.Is(err, ErrIsDir) {
					t.Fatalf("step %d: put %q over a conflict: %v", step, k, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: put %q: %v", step, k, err)
			}
			model[k] = data
		case op < 8:
			k := randKey()
			if r.IntN(3) == 0 && len(model) > 0 {
				ks := slices.Sorted(func(yield func(string) bool) {
					for k := range model {
						if !yield(k) {
							return
						}
					}
				})
				k = ks[r.IntN(len(ks))]
			}
			if err := e.DeleteObject(ctx, "bucket", k); err != nil {
				t.Fatalf("step %d: delete %q: %v", step, k, err)
			}
			delete(model, k)
		default:
			var keys []string
			for k := range model {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			opt := ListOptions{MaxKeys: 1 + r.IntN(5)}
			if r.IntN(2) == 0 {
				opt.Delimiter = "/"
			}
			if r.IntN(2) == 0 {
				opt.Prefix = segs[r.IntN(len(segs))][:1]
			}
			if got, want := listAll(t, e, opt), modelList(keys, opt); !slices.Equal(got, want) {
				t.Fatalf("step %d: list %+v: %q, want %q", step, opt, got, want)
			}
			for _, k := range keys {
				got, info := get(t, e, "bucket", k, GetOptions{})
				if !bytes.Equal(got, model[k]) || info.ETag != md5hex(model[k]) {
					t.Fatalf("step %d: %q differs", step, k)
				}
			}
		}
	}
	// Deleting everything leaves an empty bucket: every parent was implicit.
	for k := range model {
		if err := e.DeleteObject(ctx, "bucket", k); err != nil {
			t.Fatal(err)
		}
	}
	if ents, err := e.ReadDir(ctx, env.bucket, "", 0); err != nil || len(ents) != 0 {
		t.Fatalf("bucket holds %+v, %v", ents, err)
	}
	if n := countObjects(t, env); n != 0 {
		t.Fatalf("%d chunk objects left", n)
	}
}

// sealedKeyOf reads an inode's sealed-key record straight from the metadata store.
func sealedKeyOf(t *testing.T, env *testEnv, ino Ino) keys.SealedKey {
	t.Helper()
	var sk keys.SealedKey
	err := env.db.View(func(tx *meta.Tx) error {
		b, err := tx.SealedKey(meta.Ino(ino))
		if err != nil {
			return err
		}
		return sk.UnmarshalBinary(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func TestSSEKMSContext(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	data := randBytes(2*testChunk + 7)
	userCtx := map[string]string{"purpose": "invoices", "tenant": "42"}
	want := maps.Clone(userCtx)
	info := put(t, e, "bucket", "a/ctx", data, PutOptions{SSE: SSE{Type: keys.SSEKMS, Context: userCtx}})
	userCtx["tenant"] = "changed by the caller afterwards"
	if info.SSEType != keys.SSEKMS || !maps.Equal(info.KMSContext, want) {
		t.Fatalf("put: %s %v", info.SSEType, info.KMSContext)
	}
	st, err := e.StatObject(ctx, "bucket", "a/ctx", GetOptions{})
	if err != nil || !maps.Equal(st.KMSContext, want) || st.KeyName != "test-key" {
		t.Fatalf("stat: %+v, %v", st, err)
	}
	got, gi := get(t, e, "bucket", "a/ctx", GetOptions{})
	if !bytes.Equal(got, data) || !maps.Equal(gi.KMSContext, want) {
		t.Fatalf("get: context %v, content equal %v", gi.KMSContext, bytes.Equal(got, data))
	}
	if ei, err := e.Encryption(ctx, info.Ino); err != nil || !maps.Equal(ei.KMSContext, want) {
		t.Fatalf("Encryption: %+v, %v", ei, err)
	}
	// The stored record carries the context itself (not the bucket pair).
	if sk := sealedKeyOf(t, env, info.Ino); !maps.Equal(sk.Context, want) || sk.Bucket != "bucket" {
		t.Fatalf("stored record: context %v bucket %q", sk.Context, sk.Bucket)
	}
	// Objects without a context show none.
	plain := put(t, e, "bucket", "plain", data, PutOptions{SSE: SSE{Type: keys.SSEKMS}})
	if st, _ := e.StatObject(ctx, "bucket", "plain", GetOptions{}); plain.KMSContext != nil || st.KMSContext != nil {
		t.Fatalf("plain object has context %v / %v", plain.KMSContext, st.KMSContext)
	}

	// Copy: the destination is sealed with the context the request gives, none if none.
	cp, err := e.CopyObject(ctx, "bucket", "a/ctx", "bucket", "copy", CopyOptions{
		Dest: PutOptions{SSE: SSE{Type: keys.SSEKMS, Context: map[string]string{"copy": "yes"}}}})
	if err != nil || !maps.Equal(cp.KMSContext, map[string]string{"copy": "yes"}) {
		t.Fatalf("copy: %v, %v", cp.KMSContext, err)
	}
	if got, gi := get(t, e, "bucket", "copy", GetOptions{}); !bytes.Equal(got, data) || gi.KMSContext["copy"] != "yes" {
		t.Fatalf("copy reads back with context %v", gi.KMSContext)
	}
	if cp, err := e.CopyObject(ctx, "bucket", "a/ctx", "bucket", "copy2", CopyOptions{}); err != nil || cp.KMSContext != nil {
		t.Fatalf("copy without a context: %v, %v", cp.KMSContext, err)
	}

	// Refused, storing nothing: a context on anything but SSE-KMS, or naming the
	// engine's own key.
	before := countObjects(t, env)
	var ck [32]byte
	for desc, sse := range map[string]SSE{
		"SSE-S3":          {Type: keys.SSES3, Context: map[string]string{"a": "b"}},
		"bucket default":  {Context: map[string]string{"a": "b"}},
		"SSE-C":           {Type: keys.SSEC, ClientKey: &ck, Context: map[string]string{"a": "b"}},
		"reserved key":    {Type: keys.SSEKMS, Context: map[string]string{ReservedContextKey: "other-bucket"}},
		"not UTF-8":       {Type: keys.SSEKMS, Context: map[string]string{"a": "\xff"}},
		"multipart S3":    {Type: keys.SSES3, Context: map[string]string{"a": "b"}},
		"multipart bkt":   {Type: keys.SSEKMS, Context: map[string]string{"bucket": "x"}},
		"copy dest S3":    {Type: keys.SSES3, Context: map[string]string{"a": "b"}},
		"copy dest bkt":   {Type: keys.SSEKMS, Context: map[string]string{"bucket": "x"}},
		"empty is no ctx": {Type: keys.SSES3, Context: map[string]string{}},
	} {
		var err error
		switch {
		case strings.HasPrefix(desc, "multipart"):
			_, err = e.CreateUpload(ctx, "bucket", "refused", PutOptions{SSE: sse})
		case strings.HasPrefix(desc, "copy"):
			_, err = e.CopyObject(ctx, "bucket", "plain", "bucket", "refused", CopyOptions{Dest: PutOptions{SSE: sse}})
		default:
			_, err = e.PutObject(ctx, "bucket", "refused", bytes.NewReader(data), PutOptions{SSE: sse})
		}
		if desc == "empty is no ctx" {
			if err != nil {
				t.Errorf("%s: %v", desc, err)
			}
			if err := e.DeleteObject(ctx, "bucket", "refused"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", desc, err)
		}
		if desc == "reserved key" && (err == nil || !strings.Contains(err.Error(), `"bucket" is reserved`)) {
			t.Errorf("reserved key: the error does not say why: %v", err)
		}
	}
	if _, err := e.StatObject(ctx, "bucket", "refused", GetOptions{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a refused put left an object: %v", err)
	}
	if n := countObjects(t, env); n != before {
		t.Fatalf("refused puts stored %d objects", n-before)
	}
}

// A record whose stored context was altered must not unseal, even on a fresh engine
// that has nothing cached.
func TestSSEKMSContextTamperedInStore(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	ctx := context.Background()
	data := randBytes(1000)
	info := put(t, env.e, "bucket", "k", data, PutOptions{SSE: SSE{Type: keys.SSEKMS, Context: map[string]string{"purpose": "pay"}}})
	env.reopen()
	for _, tamper := range []keys.Context{{"purpose": "day"}, {"purpose": "pay", "x": "y"}, nil} {
		sk := sealedKeyOf(t, env, info.Ino)
		orig, err := sk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		sk.Context = tamper
		b, err := sk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		store := func(b []byte) {
			t.Helper()
			if err := env.db.Update(func(tx *meta.Tx) error { return tx.PutSealedKey(meta.Ino(info.Ino), b) }); err != nil {
				t.Fatal(err)
			}
		}
		store(b)
		if _, _, err := env.e.OpenObject(ctx, "bucket", "k", GetOptions{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("context %v: open: %v, want ErrCorrupt", tamper, err)
		}
		store(orig)
		if got, _ := get(t, env.e, "bucket", "k", GetOptions{}); !bytes.Equal(got, data) {
			t.Fatal("content differs after restoring the record")
		}
		env.reopen() // nothing cached for the next round
	}
}

// GetOptions.Check sees the version OpenObject opened, and its refusal stops the read
// and a copy before anything is stored.
func TestOpenObjectCheck(t *testing.T) {
	env := newTestEnv(t, testChunk, 0)
	e, ctx := env.e, context.Background()
	put(t, e, "bucket", "src", []byte("first"), PutOptions{})
	put(t, e, "bucket", "src", []byte("second"), PutOptions{}) // the version a check must see
	refused := errors.New("precondition failed")
	var seen []string
	check := func(info ObjectInfo) error {
		seen = append(seen, info.ETag)
		if info.ETag != md5hex([]byte("first")) {
			return refused
		}
		return nil
	}
	if r, _, err := e.OpenObject(ctx, "bucket", "src", GetOptions{Check: check}); !errors.Is(err, refused) || r != nil {
		t.Fatalf("OpenObject with a failing check: %v, %v", r, err)
	}
	_, err := e.CopyObject(ctx, "bucket", "src", "bucket", "dst", CopyOptions{Source: GetOptions{Check: check}})
	if !errors.Is(err, refused) {
		t.Fatalf("CopyObject with a failing check: %v", err)
	}
	if want := md5hex([]byte("second")); len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Fatalf("the check saw ETags %q, want the current %s twice", seen, want)
	}
	if _, err := e.StatObject(ctx, "bucket", "dst", GetOptions{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a refused copy stored its destination: %v", err)
	}
	ok := func(ObjectInfo) error { return nil }
	if _, err := e.CopyObject(ctx, "bucket", "src", "bucket", "dst", CopyOptions{Source: GetOptions{Check: ok}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, e, "bucket", "dst", GetOptions{}); string(got) != "second" {
		t.Fatalf("copy: %q", got)
	}
}

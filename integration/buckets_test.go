package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func listNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err, "readdir "+dir)
	n := names(ents)
	sort.Strings(n)
	return n
}

// TestBuckets: without --bucket the root lists buckets; mkdir makes one (S3 naming rules);
// regular files in the root are refused; renames and links between buckets are EXDEV, and
// mv falls back to a copy.
func TestBuckets(t *testing.T) {
	cfg := newConfig(t)
	cfg.Bucket = ""
	m := StartMount(t, cfg)
	if got := listNames(t, m.Dir); len(got) != 0 {
		t.Errorf("a new store lists buckets %q, want none", got)
	}

	valid := []string{"abc", "my-bucket.1", "a1b", "123", strings.Repeat("a", 63)}
	for _, b := range valid {
		check(t, os.Mkdir(m.P(b), 0o755), "mkdir valid bucket "+b)
	}
	invalid := []string{"Ab", "a_b", "x", "ab", strings.Repeat("a", 64), "-abc", "abc-", "a..b", "192.168.5.4", "UPPER", "has space"}
	for _, b := range invalid {
		wantErrno(t, os.Mkdir(m.P(b), 0o755), "mkdir invalid bucket name "+b, syscall.EINVAL)
	}
	wantErrno(t, os.Mkdir(m.P("abc"), 0o755), "mkdir an existing bucket", syscall.EEXIST)
	want := append([]string{}, valid...)
	sort.Strings(want)
	if got := listNames(t, m.Dir); strings.Join(got, "/") != strings.Join(want, "/") {
		t.Errorf("root lists %q, want exactly the valid buckets %q", got, want)
	}
	for _, b := range valid {
		if fi, err := os.Stat(m.P(b)); err != nil || !fi.IsDir() {
			t.Errorf("bucket %s: stat %v, %v; want a directory", b, fi, err)
		}
	}

	// No regular files directly in the root.
	_, err := os.Create(m.P("file-in-root"))
	wantErrno(t, err, "create a regular file in the bucket root", syscall.EPERM)
	_, err = os.Stat(m.P("file-in-root"))
	wantErrno(t, err, "stat the refused file", syscall.ENOENT)

	// Cross-bucket renames and links: EXDEV.
	r := rng(t)
	data := randBytes(r, 2*ChunkSize+9)
	writeFile(t, m.P("abc", "f"), data, 0o640)
	must(t, os.MkdirAll(m.P("abc", "dir", "sub"), 0o755), "mkdir")
	writeFile(t, m.P("abc", "dir", "sub", "g"), []byte("in a dir"), 0o644)
	wantErrno(t, os.Rename(m.P("abc", "f"), m.P("a1b", "f")), "rename a file to another bucket", syscall.EXDEV)
	wantErrno(t, os.Link(m.P("abc", "f"), m.P("a1b", "f")), "link a file into another bucket", syscall.EXDEV)
	wantErrno(t, os.Rename(m.P("abc", "dir"), m.P("a1b", "dir")), "rename a dir to another bucket", syscall.EXDEV)
	assertContent(t, m.P("abc", "f"), data)
	// Within a bucket it works.
	must(t, os.Rename(m.P("abc", "f"), m.P("abc", "dir", "f")), "rename within a bucket")
	must(t, os.Rename(m.P("abc", "dir", "f"), m.P("abc", "f")), "rename back")

	// mv copies across buckets.
	runTool(t, "/", "mv", m.P("abc", "f"), m.P("a1b", "f"))
	assertContent(t, m.P("a1b", "f"), data)
	if fi, err := os.Stat(m.P("a1b", "f")); err == nil && fi.Mode().Perm() != 0o640 {
		t.Errorf("mv across buckets: mode %v, want 0640", fi.Mode().Perm())
	}
	_, err = os.Stat(m.P("abc", "f"))
	wantErrno(t, err, "the source after mv across buckets", syscall.ENOENT)
	runTool(t, "/", "mv", m.P("abc", "dir"), m.P("a1b", "dir"))
	assertContent(t, m.P("a1b", "dir", "sub", "g"), []byte("in a dir"))
	_, err = os.Stat(m.P("abc", "dir"))
	wantErrno(t, err, "the source dir after mv across buckets", syscall.ENOENT)

	// Removing buckets.
	wantErrno(t, syscall.Rmdir(m.P("a1b")), "rmdir a non-empty bucket", syscall.ENOTEMPTY)
	must(t, syscall.Rmdir(m.P("123")), "rmdir an empty bucket")
	if _, err := os.Stat(m.P("123")); !os.IsNotExist(err) {
		t.Errorf("removed bucket still there: %v", err)
	}

	// --bucket serves one bucket as the root, and creates it if missing.
	m.Stop(t)
	c := cfg
	c.Bucket = "a1b"
	m = StartMount(t, c)
	assertContent(t, m.P("f"), data)
	assertContent(t, m.P("dir", "sub", "g"), []byte("in a dir"))
	writeFile(t, m.P("direct"), []byte("a regular file at the root of --bucket"), 0o644)
	m.Stop(t)
	c.Bucket = "created-by-flag"
	m = StartMount(t, c)
	if got := listNames(t, m.Dir); len(got) != 0 {
		t.Errorf("new bucket from --bucket lists %q, want nothing", got)
	}
	writeFile(t, m.P("x"), []byte("x"), 0o644)
	m.Stop(t)
	m = StartMount(t, cfg)
	want = []string{"a1b", "abc", "created-by-flag", "my-bucket.1", strings.Repeat("a", 63)}
	sort.Strings(want)
	if got := listNames(t, m.Dir); strings.Join(got, "/") != strings.Join(want, "/") {
		t.Errorf("root lists %q, want %q", got, want)
	}
	assertContent(t, m.P("created-by-flag", "x"), []byte("x"))
	assertContent(t, filepath.Join(m.Dir, "a1b", "direct"), []byte("a regular file at the root of --bucket"))
}

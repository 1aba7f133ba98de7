package integration

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// persistCmp compares everything that must survive an unmount: content, modes, owners,
// mtimes (ns), user xattrs, symlink targets, nlink and hard-link grouping.
var persistCmp = cmpOpts{mtime: true, dirMtime: true, owner: true, xattrs: true, hardlinks: true}

// buildPersistTree writes a varied tree through the mount and returns the content each
// regular file must have (independently of what the mount reads back).
func buildPersistTree(t *testing.T, m *Mount) map[string][]byte {
	r := rng(t)
	want := map[string][]byte{}
	put := func(name string, data []byte, fsync bool) {
		t.Helper()
		f, err := os.Create(m.P(name))
		must(t, err, "create "+name)
		_, err = f.Write(data)
		must(t, err, "write "+name)
		if fsync {
			must(t, f.Sync(), "fsync "+name)
		}
		must(t, f.Close(), "close "+name)
		want[name] = data
	}
	must(t, os.MkdirAll(m.P("d", "e", "f"), 0o755), "mkdir")
	put("fsynced", randBytes(r, 3*ChunkSize+17), true)
	put("closed", randBytes(r, 2*ChunkSize+1), false)
	put("empty", nil, false)
	put("tiny", []byte("x"), false)
	put("d/e/f/deep", randBytes(r, 4096), true)
	for i, n := range treeSizes {
		put("sizes-"+string(rune('a'+i)), randBytes(r, n), i%2 == 0)
	}

	// Overwritten three times, in place.
	put("overwritten", randBytes(r, 2*ChunkSize), false)
	for i := 0; i < 3; i++ {
		f, err := os.OpenFile(m.P("overwritten"), os.O_WRONLY, 0)
		must(t, err, "open")
		patch := randBytes(r, ChunkSize/3)
		off := i * (ChunkSize / 2)
		_, err = f.WriteAt(patch, int64(off))
		must(t, err, "pwrite")
		if i == 1 {
			must(t, f.Sync(), "fsync")
		}
		must(t, f.Close(), "close")
		copy(want["overwritten"][off:], patch)
	}
	// Many small appends.
	f, err := os.OpenFile(m.P("appended"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err, "create appended")
	var app []byte
	for i := 0; i < 800; i++ {
		b := randBytes(r, 1+r.IntN(5000))
		_, err := f.Write(b)
		must(t, err, "append")
		app = append(app, b...)
	}
	must(t, f.Close(), "close")
	want["appended"] = app
	// Sparse, and truncated.
	f, err = os.Create(m.P("sparse"))
	must(t, err, "create sparse")
	_, err = f.WriteAt([]byte("end"), 4*ChunkSize+5)
	must(t, err, "pwrite")
	must(t, f.Close(), "close")
	want["sparse"] = append(make([]byte, 4*ChunkSize+5), "end"...)
	put("truncated", randBytes(r, 3*ChunkSize), false)
	must(t, os.Truncate(m.P("truncated"), ChunkSize+ChunkSize/2), "truncate")
	want["truncated"] = want["truncated"][:ChunkSize+ChunkSize/2]

	// Renamed and deleted.
	put("renamed-from", []byte("moved content"), false)
	must(t, os.Rename(m.P("renamed-from"), m.P("d", "renamed-to")), "rename")
	want["d/renamed-to"] = want["renamed-from"]
	delete(want, "renamed-from")
	put("deleted", []byte("gone"), true)
	must(t, os.Remove(m.P("deleted")), "remove")
	delete(want, "deleted")

	// Links, modes, owners, xattrs, times.
	must(t, os.Link(m.P("closed"), m.P("d", "h2")), "link")
	must(t, os.Link(m.P("closed"), m.P("d", "e", "h3")), "link")
	want["d/h2"], want["d/e/h3"] = want["closed"], want["closed"]
	must(t, os.Symlink("d/e/f/deep", m.P("sl")), "symlink")
	must(t, os.Symlink("x/y/dangling", m.P("d", "dangling")), "symlink")
	must(t, os.Chmod(m.P("d", "e"), 0o700), "chmod")
	must(t, os.Chmod(m.P("fsynced"), 0o600), "chmod")
	must(t, os.Chmod(m.P("tiny"), 0o4751), "chmod")
	must(t, os.Chown(m.P("d", "e", "f", "deep"), 1000, 2000), "chown")
	must(t, os.Lchown(m.P("sl"), 3000, 3001), "lchown")
	must(t, unix.Setxattr(m.P("closed"), "user.note", []byte("on a hard-linked file"), 0), "setxattr")
	must(t, unix.Setxattr(m.P("d"), "user.dir", []byte{0, 1, 2, 3}, 0), "setxattr")
	must(t, unix.Setxattr(m.P("empty"), "user.empty", nil, 0), "setxattr")
	ns := time.Date(2011, 11, 11, 11, 11, 11, 111111111, time.UTC).UnixNano()
	ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns + 1)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.P("fsynced"), ts, 0), "utimensat")
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, m.P("d", "e", "f"), ts, 0), "utimensat")
	return want
}

func assertWant(t *testing.T, m *Mount, want map[string][]byte, what string) {
	t.Helper()
	for name, data := range want {
		got, err := os.ReadFile(m.P(name))
		if err != nil {
			t.Errorf("%s: read %s: %v", what, name, err)
			continue
		}
		assertBytes(t, what+": "+name, got, data)
	}
}

// TestPersistence: what was written (fsynced or just closed) is identical after SIGTERM and
// a remount of the same data dir with the same key, twice.
func TestPersistence(t *testing.T) {
	m := StartMount(t, newConfig(t))
	want := buildPersistTree(t, m)
	assertWant(t, m, want, "before unmount")
	before := snapshot(t, m.Dir)

	m = m.Restart(t)
	assertWant(t, m, want, "after remount")
	compareTrees(t, "tree after remount", snapshot(t, m.Dir), before, persistCmp)
	for _, gone := range []string{"renamed-from", "deleted"} {
		if _, err := os.Lstat(m.P(gone)); err == nil || !os.IsNotExist(err) {
			t.Errorf("after remount: %s should not exist (lstat: %v)", gone, err)
		}
	}
	var st unix.Stat_t
	must(t, unix.Stat(m.P("closed"), &st), "stat")
	if st.Nlink != 3 {
		t.Errorf("after remount: closed has nlink %d, want 3", st.Nlink)
	}

	// Change things after the remount, then remount again.
	f, err := os.OpenFile(m.P("closed"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err, "open")
	_, err = f.Write([]byte("tail after remount"))
	must(t, err, "append")
	must(t, f.Close(), "close")
	for _, n := range []string{"closed", "d/h2", "d/e/h3"} {
		want[n] = append(append([]byte{}, want[n]...), "tail after remount"...)
	}
	must(t, os.Remove(m.P("fsynced")), "remove")
	delete(want, "fsynced")
	must(t, unix.Removexattr(m.P("d"), "user.dir"), "removexattr")
	before = snapshot(t, m.Dir)
	m = m.Restart(t)
	assertWant(t, m, want, "after the second remount")
	compareTrees(t, "tree after the second remount", snapshot(t, m.Dir), before, persistCmp)
	if _, err := os.Lstat(m.P("fsynced")); !os.IsNotExist(err) {
		t.Errorf("after the second remount: fsynced was removed but lstat says %v", err)
	}
}

// TestCrashAfterClose: DESIGN.md promises that a closed file (no fsync) survives a crash of
// the ssefs process (SIGKILL), as on ext4; an fsynced one survives anything.
func TestCrashAfterClose(t *testing.T) {
	cfg := newConfig(t)
	m := StartMount(t, cfg)
	r := rng(t)
	want := map[string][]byte{
		"fsynced":      randBytes(r, 2*ChunkSize+3),
		"closed-big":   randBytes(r, 3*ChunkSize+5),
		"closed-small": []byte("small and closed"),
	}
	for name, data := range want {
		f, err := os.Create(m.P(name))
		must(t, err, "create")
		_, err = f.Write(data)
		must(t, err, "write")
		if name == "fsynced" {
			must(t, f.Sync(), "fsync")
		}
		must(t, f.Close(), "close")
	}
	must(t, os.Mkdir(m.P("dir"), 0o755), "mkdir")
	must(t, os.Rename(m.P("closed-small"), m.P("dir", "moved")), "rename")
	want["dir/moved"] = want["closed-small"]
	delete(want, "closed-small")

	m.Kill(t)
	// The mount is gone with the process; the data dir must be reusable at once.
	m = StartMount(t, cfg)
	assertWant(t, m, want, "after SIGKILL and remount")
	if _, err := os.Lstat(m.P("closed-small")); !os.IsNotExist(err) {
		t.Errorf("after SIGKILL: the renamed-away name still exists (%v)", err)
	}
	// Still writable, and a clean stop works.
	writeFile(t, m.P("after-crash"), []byte("ok"), 0o644)
	m = m.Restart(t)
	assertContent(t, m.P("after-crash"), []byte("ok"))
}

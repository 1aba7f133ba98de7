package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// node is what a tree snapshot records for one path.
type node struct {
	Type   uint32 // S_IFMT bits
	Perm   uint32 // 07777 bits
	Uid    uint32
	Gid    uint32
	Size   int64
	Nlink  uint64
	Ino    uint64
	Mtime  int64 // ns
	SHA    string
	Link   string
	Xattrs map[string]string // user.* only
}

// snapshot walks root (not following symlinks) and records every path below it ("." is root).
func snapshot(t testing.TB, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", path, err)
		}
		n := node{
			Type: st.Mode & unix.S_IFMT, Perm: st.Mode & 0o7777, Uid: st.Uid, Gid: st.Gid,
			Size: st.Size, Nlink: uint64(st.Nlink), Ino: st.Ino, Mtime: st.Mtim.Nano(),
		}
		switch n.Type {
		case unix.S_IFREG:
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			n.SHA = hex.EncodeToString(h.Sum(nil))
		case unix.S_IFLNK:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			n.Link = l
		}
		if n.Type != unix.S_IFLNK {
			n.Xattrs = userXattrs(t, path)
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func userXattrs(t testing.TB, path string) map[string]string {
	t.Helper()
	sz, err := unix.Listxattr(path, nil)
	if err != nil {
		t.Errorf("listxattr %s: %v", path, err)
		return nil
	}
	if sz == 0 {
		return nil
	}
	buf := make([]byte, sz+64)
	n, err := unix.Listxattr(path, buf)
	if err != nil {
		t.Errorf("listxattr %s: %v", path, err)
		return nil
	}
	var m map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		vsz, err := unix.Getxattr(path, name, nil)
		if err != nil {
			t.Errorf("getxattr %s %s: %v", path, name, err)
			continue
		}
		v := make([]byte, vsz+16)
		vn, err := unix.Getxattr(path, name, v)
		if err != nil {
			t.Errorf("getxattr %s %s: %v", path, name, err)
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[name] = string(v[:vn])
	}
	return m
}

// cmpOpts says which attributes a comparison covers.
type cmpOpts struct {
	mtime     bool // exact ns mtime of regular files
	dirMtime  bool // exact ns mtime of directories
	owner     bool
	xattrs    bool
	hardlinks bool // nlink of regular files, and the same grouping of paths into inodes
	skipRoot  bool
}

// compareTrees reports every difference between got and want.
func compareTrees(t testing.TB, what string, got, want map[string]node, o cmpOpts) {
	t.Helper()
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	for _, p := range sortedKeys(want) {
		if o.skipRoot && p == "." {
			continue
		}
		w := want[p]
		g, ok := got[p]
		if !ok {
			add("%s: missing", p)
			continue
		}
		if g.Type != w.Type {
			add("%s: type %o, want %o", p, g.Type, w.Type)
			continue
		}
		if g.Type != unix.S_IFLNK && g.Perm != w.Perm {
			add("%s: mode %o, want %o", p, g.Perm, w.Perm)
		}
		if o.owner && (g.Uid != w.Uid || g.Gid != w.Gid) {
			add("%s: owner %d:%d, want %d:%d", p, g.Uid, g.Gid, w.Uid, w.Gid)
		}
		switch w.Type {
		case unix.S_IFREG:
			if g.Size != w.Size || g.SHA != w.SHA {
				add("%s: size %d sha256 %.16s, want size %d sha256 %.16s", p, g.Size, g.SHA, w.Size, w.SHA)
			}
			if o.hardlinks && g.Nlink != w.Nlink {
				add("%s: nlink %d, want %d", p, g.Nlink, w.Nlink)
			}
		case unix.S_IFLNK:
			if g.Link != w.Link {
				add("%s: symlink target %q, want %q", p, g.Link, w.Link)
			}
		}
		if ((o.mtime && w.Type == unix.S_IFREG) || (o.dirMtime && w.Type == unix.S_IFDIR)) && g.Mtime != w.Mtime {
			add("%s: mtime %s, want %s", p, time.Unix(0, g.Mtime).UTC().Format(time.RFC3339Nano), time.Unix(0, w.Mtime).UTC().Format(time.RFC3339Nano))
		}
		if o.xattrs && fmt.Sprint(g.Xattrs) != fmt.Sprint(w.Xattrs) {
			add("%s: user xattrs %v, want %v", p, g.Xattrs, w.Xattrs)
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok && !(o.skipRoot && p == ".") {
			add("%s: unexpected", p)
		}
	}
	if o.hardlinks {
		if a, b := linkGroups(got), linkGroups(want); a != b {
			add("hard-link groups differ:\n got  %s\n want %s", a, b)
		}
	}
	if len(errs) > 0 {
		if len(errs) > 40 {
			errs = append(errs[:40], fmt.Sprintf("... and %d more", len(errs)-40))
		}
		t.Errorf("%s: %d differences:\n  %s", what, len(errs), strings.Join(errs, "\n  "))
	}
}

// linkGroups renders the sets of regular-file paths that share an inode (only sets of 2+).
func linkGroups(tree map[string]node) string {
	byIno := map[uint64][]string{}
	for p, n := range tree {
		if n.Type == unix.S_IFREG {
			byIno[n.Ino] = append(byIno[n.Ino], p)
		}
	}
	var groups []string
	for _, ps := range byIno {
		if len(ps) > 1 {
			sort.Strings(ps)
			groups = append(groups, strings.Join(ps, "="))
		}
	}
	sort.Strings(groups)
	return strings.Join(groups, " ")
}

func sortedKeys(m map[string]node) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// treeSizes are the file sizes every tree test covers: empty, one byte, around one chunk,
// and several chunks.
var treeSizes = []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 5*ChunkSize + 12345}

// makeTree builds a tree in dir with mixed sizes, modes, owners, nanosecond mtimes, symlinks,
// a hard-link pair, an empty dir, user xattrs, and names with spaces and UTF-8.
func makeTree(t testing.TB, r *mrand.Rand, dir string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, "sub", "deeper", "deepest"), 0o755), "mkdir")
	must(t, os.MkdirAll(filepath.Join(dir, "empty dir"), 0o755), "mkdir")
	must(t, os.MkdirAll(filepath.Join(dir, "ünïcödé"), 0o755), "mkdir")
	var files []string
	for _, n := range treeSizes {
		p := filepath.Join(dir, fmt.Sprintf("size-%d", n))
		writeFile(t, p, randBytes(r, n), 0o644)
		files = append(files, p)
	}
	for i := 0; i < 30; i++ {
		sub := []string{"sub", "sub/deeper", "sub/deeper/deepest", "ünïcödé", "."}[i%5]
		n := r.IntN(200 << 10)
		if i%7 == 0 {
			n = ChunkSize + ChunkSize/2 + r.IntN(ChunkSize)
		}
		p := filepath.Join(dir, sub, fmt.Sprintf("file %02d.bin", i))
		writeFile(t, p, randBytes(r, n), 0o644)
		files = append(files, p)
	}
	modes := []os.FileMode{0o600, 0o755, 0o444, 0o640, 0o700}
	for i, p := range files {
		must(t, os.Chmod(p, modes[i%len(modes)]), "chmod")
		if i%4 == 1 {
			must(t, os.Chown(p, 1000, 1000), "chown")
		}
		if i%6 == 2 {
			must(t, unix.Setxattr(p, "user.tree", []byte(fmt.Sprintf("value-%d", i)), 0), "setxattr")
		}
	}
	must(t, os.Chmod(filepath.Join(dir, "sub", "deeper"), 0o700), "chmod dir")
	must(t, os.Chown(filepath.Join(dir, "ünïcödé"), 1000, 1000), "chown dir")
	must(t, os.Symlink("../size-1", filepath.Join(dir, "sub", "link to one")), "symlink")
	must(t, os.Symlink("no/such/target", filepath.Join(dir, "dangling")), "symlink")
	must(t, os.Symlink("sub/deeper", filepath.Join(dir, "dirlink")), "symlink")
	must(t, os.Link(filepath.Join(dir, "size-1048577"), filepath.Join(dir, "sub", "hardlink-1048577")), "link")
	// Nanosecond mtimes, deepest first so that setting a child's time does not move its dir's.
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		ns := time.Date(2015+r.IntN(10), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 1+r.IntN(999999999), time.UTC).UnixNano()
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW), "utimensat")
	}
}

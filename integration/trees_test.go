package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var fullCmp = cmpOpts{mtime: true, dirMtime: true, owner: true, xattrs: true, hardlinks: true, skipRoot: true}

// incrementalCmp: an incremental rsync with --delete leaves directory mtimes at the time of
// its own changes even on ext4 (checked by hand with rsync 3.2/3.5), so directory mtimes are
// compared only after full copies.
var incrementalCmp = cmpOpts{mtime: true, owner: true, xattrs: true, hardlinks: true, skipRoot: true}

// TestTreeCopyCpA: cp -a into the mount and back out; every file's sha256, mode, owner,
// mtime, xattrs, symlinks and hard links survive both ways.
func TestTreeCopyCpA(t *testing.T) {
	m := StartMount(t, newConfig(t))
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, rng(t), src)
	want := snapshot(t, src)

	runTool(t, "/", "cp", "-a", src, m.P("cp"))
	compareTrees(t, "cp -a into the mount", snapshot(t, m.P("cp")), want, fullCmp)

	out := filepath.Join(t.TempDir(), "out")
	runTool(t, "/", "cp", "-a", m.P("cp"), out)
	compareTrees(t, "cp -a out of the mount", snapshot(t, out), want, fullCmp)

	// cp -a within the mount, then the copy survives a remount.
	runTool(t, "/", "cp", "-a", m.P("cp"), m.P("cp2"))
	compareTrees(t, "cp -a inside the mount", snapshot(t, m.P("cp2")), want, fullCmp)
	m = m.Restart(t)
	compareTrees(t, "cp -a copy after a remount", snapshot(t, m.P("cp")), want, fullCmp)
	compareTrees(t, "second copy after a remount", snapshot(t, m.P("cp2")), want, fullCmp)
}

// TestTreeTar: tar archives created into the mount and extracted out of it, and archives
// extracted into the mount and created out of it. Every result is also produced on a plain
// directory first, so tar's own behaviour is the reference.
func TestTreeTar(t *testing.T) {
	m := StartMount(t, newConfig(t))
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, rng(t), src)
	want := snapshot(t, src)
	plain := t.TempDir()
	tarOpts := cmpOpts{mtime: true, dirMtime: true, owner: true, hardlinks: true, skipRoot: true}

	// Reference: the same round trip entirely on plain directories.
	runTool(t, "/", "tar", "--format=posix", "-C", src, "-cf", filepath.Join(plain, "ref.tar"), ".")
	refX := filepath.Join(plain, "refx")
	must(t, os.Mkdir(refX, 0o755), "mkdir")
	runTool(t, "/", "tar", "-C", refX, "-xpf", filepath.Join(plain, "ref.tar"))
	compareTrees(t, "reference: tar round trip on plain directories", snapshot(t, refX), want, tarOpts)
	if t.Failed() {
		t.Fatal("the plain-directory reference already differs: the comparison is too strict for this tar")
	}

	// Create an archive into the mount, extract it out of the mount.
	runTool(t, "/", "tar", "--format=posix", "-C", src, "-cf", m.P("in.tar"), ".")
	x1 := filepath.Join(plain, "x1")
	must(t, os.Mkdir(x1, 0o755), "mkdir")
	runTool(t, "/", "tar", "-C", x1, "-xpf", m.P("in.tar"))
	compareTrees(t, "archive written into the mount, extracted to a plain dir", snapshot(t, x1), want, tarOpts)

	// Extract an archive into the mount.
	must(t, os.Mkdir(m.P("x2"), 0o755), "mkdir")
	runTool(t, "/", "tar", "-C", m.P("x2"), "-xpf", filepath.Join(plain, "ref.tar"))
	compareTrees(t, "archive extracted into the mount", snapshot(t, m.P("x2")), want, tarOpts)

	// Create an archive out of the mount, extract it on a plain dir.
	runTool(t, "/", "tar", "--format=posix", "-C", m.P("x2"), "-cf", filepath.Join(plain, "out.tar"), ".")
	x3 := filepath.Join(plain, "x3")
	must(t, os.Mkdir(x3, 0o755), "mkdir")
	runTool(t, "/", "tar", "-C", x3, "-xpf", filepath.Join(plain, "out.tar"))
	compareTrees(t, "archive of the mount, extracted to a plain dir", snapshot(t, x3), want, tarOpts)

	// tar's own verification against the file system (reads every file in the mount).
	runTool(t, "/", "tar", "-C", m.P("x2"), "--compare", "-f", filepath.Join(plain, "ref.tar"))
}

// TestTreeRsync: rsync -aHX into the mount and out of it, then incremental updates (with
// rsync's default temp-file-and-rename, and with --inplace delta writes) and --delete.
func TestTreeRsync(t *testing.T) {
	m := StartMount(t, newConfig(t))
	r := rng(t)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, r, src)
	want := snapshot(t, src)
	dst := m.P("rs")

	runTool(t, "/", "rsync", "-aHX", src+"/", dst+"/")
	compareTrees(t, "rsync -aHX into the mount", snapshot(t, dst), want, fullCmp)
	out := filepath.Join(t.TempDir(), "out")
	runTool(t, "/", "rsync", "-aHX", dst+"/", out+"/")
	compareTrees(t, "rsync -aHX out of the mount", snapshot(t, out), want, fullCmp)

	// Round 2: change content (same size and different size), delete, add; rsync's default
	// writes a temporary file and renames it over the old one.
	modify := func(round int) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(src, fmt.Sprintf("size-%d", treeSizes[5])), os.O_WRONLY, 0)
		must(t, err, "open")
		_, err = f.WriteAt(randBytes(r, 3000), ChunkSize-1000)
		must(t, err, "write")
		_, err = f.WriteAt(randBytes(r, 10), int64(4*ChunkSize+round))
		must(t, err, "write")
		must(t, f.Close(), "close")
		f, err = os.OpenFile(filepath.Join(src, "size-1048575"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err, "open")
		_, err = f.Write(randBytes(r, 5+round))
		must(t, err, "append")
		must(t, f.Close(), "close")
		must(t, os.Truncate(filepath.Join(src, "size-1048576"), ChunkSize/2+int64(round)), "truncate")
		writeFile(t, filepath.Join(src, "sub", "new-"+string(rune('a'+round))), randBytes(r, 10000*round), 0o644)
		if round == 1 {
			must(t, os.Remove(filepath.Join(src, "sub", "deeper", "file 01.bin")), "remove")
		} else {
			must(t, os.RemoveAll(filepath.Join(src, "empty dir")), "remove")
		}
		// Same size, new content: give it an mtime whose whole seconds differ from every earlier
		// one, since rsync's quick check compares mtimes in whole seconds.
		ns := time.Date(2021, 3, 4, 5, 6, 10*round, 123456789, time.UTC).UnixNano()
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, fmt.Sprintf("size-%d", treeSizes[5])), ts, 0), "utimensat")
	}
	modify(1)
	want = snapshot(t, src)
	runTool(t, "/", "rsync", "-aHX", "--delete", src+"/", dst+"/")
	compareTrees(t, "incremental rsync (temp file + rename) into the mount", snapshot(t, dst), want, incrementalCmp)

	modify(2)
	want = snapshot(t, src)
	runTool(t, "/", "rsync", "-aHX", "--delete", "--inplace", "--no-whole-file", src+"/", dst+"/")
	compareTrees(t, "incremental rsync --inplace --no-whole-file into the mount", snapshot(t, dst), want, incrementalCmp)

	// Out again, after a remount, with checksums compared by rsync itself: nothing to transfer.
	before := snapshot(t, dst)
	m = m.Restart(t)
	compareTrees(t, "rsync copy after a remount", snapshot(t, dst), want, incrementalCmp)
	compareTrees(t, "rsync copy after a remount, against itself before", snapshot(t, dst), before, fullCmp)
	itemized := runTool(t, "/", "rsync", "-aHX", "--omit-dir-times", "--checksum", "--dry-run", "--itemize-changes", "--delete", src+"/", dst+"/")
	if itemized != "" {
		t.Errorf("rsync --checksum --dry-run finds differences after a remount:\n%s", itemized)
	}
}

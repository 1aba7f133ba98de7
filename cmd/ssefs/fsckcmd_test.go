package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/objstore"
)

func TestFsckCommand(t *testing.T) {
	dir := newStaticDataDir(t)
	// Root, two buckets, eight files; the two empty ones have no chunks.
	const clean = "fsck: 11 inodes, 6 chunks (6 verified), 0 inconsistencies\n"
	r := runCmd("fsck", "--data-dir", dir)
	r.wantOK(t)
	if r.stdout != clean {
		t.Errorf("clean store: stdout %q, want %q", r.stdout, clean)
	}
	r = runCmd("fsck", "--quick", "--data-dir", dir)
	r.wantOK(t)
	if r.stdout != "fsck: 11 inodes, 6 chunks (not verified: --quick), 0 inconsistencies\n" {
		t.Errorf("--quick: stdout %q", r.stdout)
	}

	// An object nobody references: found, then removed by --repair.
	junk := objstore.NewID()
	path := filepath.Join(dir, objectsDir, junk.String()[:2], junk.String())
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCmd("fsck", "--data-dir", dir)
	// Garbage of that kind is what a crash leaves: reported, but no inconsistency.
	if r.code != 0 || !strings.Contains(r.stdout, "orphaned chunk object: object "+junk.String()) ||
		!strings.HasSuffix(r.stdout, "fsck: 11 inodes, 6 chunks (6 verified), 0 inconsistencies, 1 unreferenced objects\n") {
		t.Errorf("junk object: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a check without --repair removed the object: %v", err)
	}
	r = runCmd("fsck", "--repair", "--data-dir", dir)
	r.wantOK(t)
	if !strings.Contains(r.stdout, junk.String()+": 4 bytes, named by no chunk record [repaired: deleted]") ||
		!strings.HasSuffix(r.stdout, "0 inconsistencies, 1 repaired, 1 unreferenced objects\n") {
		t.Errorf("--repair: stdout:\n%s", r.stdout)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the junk object is still there: %v", err)
	}
	if r = runCmd("fsck", "--data-dir", dir); r.stdout != clean {
		t.Errorf("after repair: %q", r.stdout)
	}
}

func TestFsckRefusesWhileServed(t *testing.T) {
	dir := newStaticDataDir(t)
	d := serveDataDir(t, dir)
	r := runCmd("fsck", "--repair", "--data-dir", dir)
	r.wantRefusal(t, 1, filepath.Join(d.dir, adminSocketFile), "pid "+strconv.Itoa(os.Getpid()), "offline")
	if r.stdout != "" {
		t.Errorf("stdout: %q", r.stdout)
	}
	// The served store is untouched and still answers.
	if _, err := d.engine.BucketEncryption(context.Background(), "photos"); err != nil {
		t.Error(err)
	}

	// A holder that does not answer on the socket is named by its pid.
	dir2 := newStaticDataDir(t)
	lock, err := lockDataDir(dir2)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	runCmd("fsck", "--data-dir", dir2).wantRefusal(t, 1, "in use", "does not answer", "offline")
}

func TestFsckUsage(t *testing.T) {
	clearKMSEnv(t)
	runCmd("fsck", "extra").wantRefusal(t, 2, "no arguments")
	runCmd("fsck", "--frob").wantRefusal(t, 2, "frob")
	r := runCmd("help", "fsck")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: ssefs fsck") || !strings.Contains(r.stdout, "Examples:") ||
		!strings.Contains(r.stdout, "--repair") || !strings.Contains(r.stdout, "--data-dir") {
		t.Errorf("help fsck: exit %d:\n%s", r.code, r.stdout)
	}
	if !strings.Contains(topUsage, "ssefs fsck") {
		t.Error("the top usage does not list fsck")
	}
	// A directory that holds no store is an error, not a usage error.
	runCmd("fsck", "--data-dir", t.TempDir()).wantRefusal(t, 1, "no ssefs store")
}

func TestFsckProgress(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	var buf bytes.Buffer
	fp := newFsckProgress(&buf, false, now)
	fp.now = func() time.Time { return clock }
	fp.update(fs.FsckProgress{Inodes: 1, TotalInodes: 10})
	if buf.Len() != 0 {
		t.Errorf("a line before the interval: %q", buf.String())
	}
	clock = clock.Add(2 * time.Second)
	fp.update(fs.FsckProgress{Inodes: 4, TotalInodes: 10, Chunks: 7, Verified: 6, VerifiedBytes: 4 << 20})
	fp.finish()
	want := "ssefs: fsck: 4/10 inodes checked, 7 chunks, 6 verified (2 inodes/s, 2.0 MiB/s)\n"
	if got := buf.String(); got != want {
		t.Errorf("plain progress: %q, want %q", got, want)
	}
}

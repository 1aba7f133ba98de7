package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/meta"
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
	// 40% in 2 s: 3 s to go at that rate.
	want := "ssefs: fsck: [############------------------]  40%  4/10 inodes checked, 7 chunks, 6 verified (2 inodes/s, 2.0 MiB/s)  ETA 3s\n"
	if got := buf.String(); got != want {
		t.Errorf("plain progress: %q, want %q", got, want)
	}
}

// An inode no entry reaches is linked into its bucket's lost+found by --repair, content
// and all; an interrupted key rotation is reported on every run but is no inconsistency.
func TestFsckCommandLostFoundAndRotation(t *testing.T) {
	dir := newStaticDataDir(t)
	ctx := context.Background()
	d := mustOpenStore(t, dir, false)
	var lost meta.Ino
	err := d.db.Update(func(tx *meta.Tx) error {
		b, err := tx.Lookup(meta.RootIno, "photos")
		if err != nil {
			return err
		}
		ent, err := tx.Lookup(b.Ino, "f3")
		if err != nil {
			return err
		}
		lost = ent.Ino
		if err := tx.DeleteEntry(b.Ino, "f3"); err != nil {
			return err
		}
		return tx.PutRotationJob(meta.RotationJob{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(), Total: 8, Done: 3})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	rotation := "interrupted key rotation: rotation of all files to new data keys, started 2026-01-02T03:04:05Z, 3 of 8 files done, 0 skipped; run it again with the same options to finish it, or abandon it\n"
	lostLine := fmt.Sprintf("unreachable inode: inode %d: nlink 1, but no entry names it; it was created in /photos; its content is kept (--repair links it into /photos/lost+found)", lost)
	pending := ", an interrupted key rotation ('ssefs key rotate --abandon' drops it)\n"

	r := runCmd("fsck", "--data-dir", dir)
	if want := lostLine + "\n" + rotation + "fsck: 11 inodes, 6 chunks (6 verified), 1 inconsistencies" + pending; r.code != 1 || r.stdout != want {
		t.Errorf("check: exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
	r = runCmd("fsck", "--repair", "--data-dir", dir)
	want := fmt.Sprintf("%s [repaired: linked as /photos/lost+found/#%d]\n", lostLine, lost) + rotation +
		"fsck: 11 inodes, 6 chunks (6 verified), 1 inconsistencies, 1 repaired" + pending
	if r.code != 0 || r.stdout != want {
		t.Errorf("--repair: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	// lost+found is one more inode; the rotation stays for its owner to finish or drop.
	r = runCmd("fsck", "--data-dir", dir)
	if want := rotation + "fsck: 12 inodes, 6 chunks (6 verified), 0 inconsistencies" + pending; r.code != 0 || r.stdout != want {
		t.Errorf("after --repair: exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
	d = mustOpenStore(t, dir, false)
	rd, _, err := d.engine.OpenObject(ctx, "photos", fmt.Sprintf("lost+found/#%d", lost), fs.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || string(got) != strings.Repeat("x", 300) {
		t.Errorf("the relinked file: %q, %v", got, err)
	}
}

// A byte count with a known total (restore) gets the bar and the time left; without one
// (backup: the snapshot's size is known only at its end) just the count and the rate.
func TestBytesProgressLine(t *testing.T) {
	line := bytesProgressLine("restore", 100<<20)
	if got, want := line(25<<20, 5*time.Second), "restore: [#######-----------------------]  25%  25.0 MiB of 100.0 MiB (5.0 MiB/s)  ETA 15s"; got != want {
		t.Errorf("restore line %q, want %q", got, want)
	}
	if got := line(100<<20, 20*time.Second); strings.Contains(got, "ETA") || !strings.Contains(got, "100%") {
		t.Errorf("finished restore line %q: want 100%% and no ETA", got)
	}
	if got := bytesProgressLine("backup", 0)(3<<20, time.Second); strings.Contains(got, "[") || strings.Contains(got, "ETA") {
		t.Errorf("backup line without a total %q: want no bar and no ETA", got)
	}
}

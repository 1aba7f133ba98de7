package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/sio"

	"github.com/ssefs/ssefs/fs"
)

func sealedBackup(t *testing.T, metaKey, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	hdr := backupHeader{Created: time.Unix(1700000000, 0).UTC(), ReadTs: 42, Lineage: "00", MetaKeyFile: []byte(`{"x":1}`)}
	key, err := writeBackupHeader(&buf, &hdr, metaKey)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := sio.EncryptWriter(&buf, backupSioConfig(key))
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(body)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openSealed(b, metaKey []byte) ([]byte, error) {
	r := bytes.NewReader(b)
	_, raw, err := readBackupHeader(r)
	if err != nil {
		return nil, err
	}
	body, err := openBackupBody(r, raw, metaKey)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(body)
}

// The backup file reads back only whole and unchanged, and only with its metadata key:
// a changed byte anywhere (magic, header, body), a cut or an addition fails.
func TestBackupFileTamper(t *testing.T) {
	metaKey := make([]byte, 32)
	rand.Read(metaKey)
	body := make([]byte, 300_000) // several 64 KiB DARE packages
	rand.Read(body)
	good := sealedBackup(t, metaKey, body)
	got, err := openSealed(good, metaKey)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("round trip: %v (%d bytes)", err, len(got))
	}
	other := bytes.Clone(metaKey)
	other[0] ^= 1
	if _, err := openSealed(good, other); err == nil {
		t.Error("another metadata key opens the backup")
	}
	hdrEnd := bytes.Index(good, []byte(`"nonce"`)) + 20
	for _, off := range []int{0, len(backupMagic) + 2, len(backupMagic) + 10, hdrEnd, hdrEnd + 100, len(good) / 2, len(good) - 1} {
		b := bytes.Clone(good)
		b[off] ^= 0x20
		if got, err := openSealed(b, metaKey); err == nil {
			t.Errorf("a flipped byte at %d of %d: read back %d bytes without error", off, len(good), len(got))
		}
	}
	for _, n := range []int{len(good) - 1, len(good) - 70_000, len(backupMagic) + 3} {
		if _, err := openSealed(good[:n], metaKey); err == nil {
			t.Errorf("cut to %d of %d bytes: no error", n, len(good))
		}
	}
	if _, err := openSealed(append(bytes.Clone(good), 0), metaKey); err == nil {
		t.Error("a byte appended: no error")
	}
	if _, _, err := readBackupHeader(strings.NewReader("hello, this is not a backup")); !errors.Is(err, errNotBackup) {
		t.Errorf("not a backup: %v", err)
	}
}

func TestBackupNames(t *testing.T) {
	lineage := [16]byte{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	name := backupName(created, 4711, lineage)
	p, ok := parseBackupName(name)
	if !ok || p.readTs != 4711 || !p.created.Equal(created) || p.lineage != "abcd010203040506" {
		t.Fatalf("%s parses as %+v, %v", name, p, ok)
	}
	later, _ := parseBackupName(backupName(created.Add(-time.Hour), 4712, lineage))
	if !newer(later, p) || newer(p, later) {
		t.Error("a higher read timestamp is not newer")
	}
	for _, bad := range []string{"", "x.ssefs-backup", name + ".tmp", "20260102T030405Z-4711-abcd010203040506.ssefs-backup",
		strings.Replace(name, "T", "X", 1)} {
		if _, ok := parseBackupName(bad); ok {
			t.Errorf("%q parses", bad)
		}
	}
}

func readObject(t *testing.T, e *fs.Engine, bucket, key string) []byte {
	t.Helper()
	r, _, err := e.OpenObject(context.Background(), bucket, key, fs.GetOptions{})
	if err != nil {
		t.Fatalf("%s/%s: %v", bucket, key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backup and restore on a store in DATA/objects: refused without --to; into a directory
// (offline and through a serving process's admin socket) with --keep; into a file; the
// restore wants the objects beside it and rebuilds every file; --list and --disable.
func TestBackupRestoreCommandsLocalStore(t *testing.T) {
	dir := newStaticDataDir(t)
	runCmd("backup", "--data-dir", dir).wantRefusal(t, 1, "--to", filepath.Join(dir, objectsDir))
	runCmd("backup", "--keep", "0", "--data-dir", dir).wantRefusal(t, 2, "--keep")
	runCmd("backup", "--list", "--disable", "--data-dir", dir).wantRefusal(t, 2, "--list", "--disable")
	runCmd("backup", "--to", filepath.Join(dir, "inside"), "--data-dir", dir).wantRefusal(t, 1, "inside the data directory")

	bdir := t.TempDir()
	r := runCmd("backup", "--to", bdir, "--data-dir", dir)
	r.wantOK(t)
	if !strings.Contains(r.stdout, bdir) || !strings.Contains(r.stdout, "1 kept") {
		t.Errorf("backup said: %q", r.stdout)
	}
	func() { // through the admin socket of a serving process
		d := serveDataDir(t, dir)
		if _, err := d.engine.PutObject(context.Background(), "photos", "late", strings.NewReader("late"), fs.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		r := runCmd("backup", "--to", bdir, "--keep", "1", "--data-dir", dir)
		r.wantOK(t)
		if !strings.Contains(r.stdout, "1 pruned") {
			t.Errorf("backup --keep 1 said: %q", r.stdout)
		}
		r = runCmd("backup", "--list", "--to", bdir, "--data-dir", dir)
		r.wantOK(t)
		if strings.Count(r.stdout, backupExt) != 1 || !strings.Contains(r.stdout, "deferred deletion: on") {
			t.Errorf("backup --list said: %q", r.stdout)
		}
		d.close()
	}()
	ents, _ := os.ReadDir(bdir)
	if len(ents) != 1 {
		t.Fatalf("backup directory holds %d entries, want 1", len(ents))
	}
	snap := filepath.Join(bdir, ents[0].Name())
	file := filepath.Join(t.TempDir(), "one.backup")
	runCmd("backup", "--to", file, "--data-dir", dir).wantOK(t)
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", st, err)
	}

	newDir := filepath.Join(t.TempDir(), "restored")
	runCmd("restore", "--data-dir", newDir).wantRefusal(t, 2, "--store", "--from")
	runCmd("restore", "--from", snap, "--data-dir", newDir).wantRefusal(t, 1, "copy that objects/")
	if _, err := os.Stat(newDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore made %s: %v", newDir, err)
	}
	if err := os.MkdirAll(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(dir, objectsDir), filepath.Join(newDir, objectsDir)).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	r = runCmd("restore", "--from", snap, "--data-dir", newDir)
	r.wantOK(t)
	if !strings.Contains(r.stdout, "restore: "+newDir) || !strings.Contains(r.stdout, ", 0 inconsistencies") {
		t.Errorf("restore said: %q", r.stdout)
	}
	runCmd("restore", "--from", snap, "--data-dir", newDir).wantRefusal(t, 1, "not empty")
	d := mustOpenStore(t, newDir, false)
	defer d.close()
	for i := range 5 {
		if got := readObject(t, d.engine, "photos", fmt.Sprintf("f%d", i)); string(got) != strings.Repeat("x", 100*i) {
			t.Errorf("photos/f%d: %q", i, got)
		}
	}
	if got := readObject(t, d.engine, "photos", "late"); string(got) != "late" {
		t.Errorf("photos/late: %q", got)
	}
	d.close()

	r = runCmd("backup", "--disable", "--data-dir", dir)
	r.wantOK(t)
	r = runCmd("backup", "--list", "--data-dir", dir)
	r.wantOK(t)
	if !strings.Contains(r.stdout, "deferred deletion: off") {
		t.Errorf("after --disable: %q", r.stdout)
	}
}

func TestBackupFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--backup-interval", "500ms"}, "at least 1s"},
		{[]string{"--backup-interval", "-1s"}, "negative"},
		{[]string{"--backup-keep", "0"}, "--backup-keep"},
		{[]string{"--backup-to", "/nonexistent/dir"}, "existing directory"},
	} {
		var c mountConfig
		f, _ := c.flagSet()
		if err := f.Parse(append(tc.args, "/mnt")); err != nil {
			t.Fatal(err)
		}
		err := c.backup.check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

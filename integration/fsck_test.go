package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// objectFiles lists the chunk object files of a data directory (DATA/objects/xx/<32 hex>).
func objectFiles(t *testing.T, dataDir string) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dataDir, "objects", "??", strings.Repeat("?", 32)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range paths {
		out[p] = true
	}
	return out
}

// newObjectFiles returns the object files in now that were not in before.
func newObjectFiles(before, now map[string]bool) []string {
	var out []string
	for p := range now {
		if !before[p] {
			out = append(out, p)
		}
	}
	return out
}

var fsckSummaryRE = regexp.MustCompile(`(?m)^fsck: \d+ inodes, (\d+) chunks \((\d+) verified\), (\d+) inconsistencies`)

func TestFsckThroughTheBinary(t *testing.T) {
	cfg := newConfig(t)
	r := rng(t)
	m := StartMount(t, cfg)
	writeFile(t, m.P("a"), randBytes(r, 2*ChunkSize+10), 0o644)
	m.Stop(t)
	objsA := objectFiles(t, cfg.DataDir)
	if len(objsA) != 3 {
		t.Fatalf("file a: %d objects, want 3", len(objsA))
	}

	m = StartMount(t, cfg)
	must(t, os.Mkdir(m.P("sub"), 0o755), "mkdir")
	writeFile(t, m.P("sub", "b"), randBytes(r, ChunkSize+1), 0o644)
	// While the mount holds the data directory, fsck refuses, naming it.
	res := runExpectExit(t, cfg, "fsck", "--repair", "--data-dir", cfg.DataDir)
	stderr := strings.TrimRight(res.Stderr, "\n")
	if res.Code != 1 || strings.Contains(stderr, "\n") || !strings.Contains(stderr, filepath.Join(cfg.DataDir, "admin.sock")) ||
		!strings.Contains(stderr, "pid ") || res.Stdout != "" {
		t.Errorf("fsck while mounted: exit %d, stdout %q, stderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	t.Logf("fsck while mounted: %s", stderr)
	m.Stop(t)
	objsB := newObjectFiles(objsA, objectFiles(t, cfg.DataDir))
	if len(objsB) != 2 {
		t.Fatalf("file b: %d new objects, want 2", len(objsB))
	}

	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	sm := fsckSummaryRE.FindStringSubmatch(res.Stdout)
	if res.Code != 0 || sm == nil || sm[1] != "5" || sm[2] != "5" || sm[3] != "0" {
		t.Fatalf("fsck of a clean store: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}

	// Damage: one of a's objects gone, a byte of one of b's flipped, and a junk object.
	var gone string
	for p := range objsA {
		gone = p
		break
	}
	must(t, os.Remove(gone), "remove an object of a")
	flipped := objsB[0]
	raw, err := os.ReadFile(flipped)
	must(t, err, "read an object of b")
	raw[len(raw)/2] ^= 0x01
	must(t, os.WriteFile(flipped, raw, 0o600), "flip a byte")
	junkID := "00" + strings.Repeat("5a", 15)
	junk := filepath.Join(cfg.DataDir, "objects", junkID[:2], junkID)
	must(t, os.MkdirAll(filepath.Dir(junk), 0o700), "mkdir fan-out")
	must(t, os.WriteFile(junk, []byte("not a chunk"), 0o600), "plant junk")

	idOf := func(p string) string { return filepath.Base(p) }
	wantLines := func(out string, repair bool) {
		t.Helper()
		for _, want := range []string{
			"missing chunk object: /test-bucket/a (inode ",
			"object " + idOf(gone) + ": chunk ",
			"chunk failed authentication: /test-bucket/sub/b (inode ",
			"object " + idOf(flipped) + ": chunk ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("fsck output lacks %q:\n%s", want, out)
			}
		}
		if repair && strings.Count(out, "[not repairable]") != 2 {
			t.Errorf("--repair should say the two damaged chunks are not repairable:\n%s", out)
		}
	}
	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if sm := fsckSummaryRE.FindStringSubmatch(res.Stdout); res.Code != 1 || sm == nil || sm[3] != "2" {
		t.Errorf("fsck of the damaged store: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	wantLines(res.Stdout, false)
	if !strings.Contains(res.Stdout, "orphaned chunk object: object "+junkID) {
		t.Errorf("the junk object is not reported:\n%s", res.Stdout)
	}

	res = runExpectExit(t, cfg, "fsck", "--repair", "--data-dir", cfg.DataDir)
	if res.Code != 1 {
		t.Errorf("fsck --repair with unrepairable damage: exit %d, want 1; stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	wantLines(res.Stdout, true)
	t.Logf("fsck --repair:\n%s", res.Stdout)
	if !strings.Contains(res.Stdout, "orphaned chunk object: object "+junkID+": 11 bytes, named by no chunk record [repaired: deleted]") {
		t.Errorf("--repair did not report deleting the junk object:\n%s", res.Stdout)
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Errorf("the junk object is still there: %v", err)
	}
	if after, err := os.ReadFile(flipped); err != nil || !bytes.Equal(after, raw) {
		t.Errorf("--repair touched the flipped chunk object: %v", err)
	}

	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	wantLines(res.Stdout, false)
	if res.Code != 1 || strings.Contains(res.Stdout, junkID) || strings.Count(res.Stdout, "\n") != 3 {
		t.Errorf("after --repair: exit %d, stdout:\n%s", res.Code, res.Stdout)
	}

	// The damage reads as EIO through the mount, never as other bytes.
	m = StartMount(t, cfg)
	_, err = os.ReadFile(m.P("sub", "b"))
	wantErrno(t, err, "read of the flipped chunk", syscall.EIO)
	m.Stop(t)
}

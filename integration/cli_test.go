package integration

// End-to-end tests of the CLI manners: 'ssefs df' and 'ssefs stat --json' against a real
// mount (through its admin socket) and offline, 'ssefs config check' beside and after a
// mount, and the completion script and man page of the built binary.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// dfJSON is what the test reads of 'ssefs df --json'.
type dfJSON struct {
	DataDir     string `json:"data_dir"`
	ServedByPID int    `json:"served_by_pid"`
	Buckets     []struct {
		Name          string `json:"name"`
		Files         uint64 `json:"files"`
		Dirs          uint64 `json:"dirs"`
		Others        uint64 `json:"others"`
		LogicalBytes  uint64 `json:"logical_bytes"`
		StoredBytes   uint64 `json:"stored_bytes"`
		InlineBytes   uint64 `json:"inline_bytes"`
		Chunks        uint64 `json:"chunks"`
		UnlinkedFiles uint64 `json:"unlinked_files"`
		Keys          []struct {
			Name  string `json:"name"`
			Files uint64 `json:"files"`
		} `json:"keys"`
	} `json:"buckets"`
	Total struct {
		Files       uint64 `json:"files"`
		StoredBytes uint64 `json:"stored_bytes"`
	} `json:"total"`
	MetadataBytes uint64 `json:"metadata_bytes"`
}

type statJSON struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	Bucket      string `json:"bucket"`
	SSE         string `json:"sse"`
	Key         string `json:"key"`
	Chunks      *int64 `json:"chunks"`
	StoredBytes *int64 `json:"stored_bytes"`
}

func TestCLIDfStatAndConfigCheck(t *testing.T) {
	cfg := newConfig(t)
	cfg.Bucket = "" // both buckets below the root
	m := StartMount(t, cfg)
	r := rng(t)
	for _, d := range []string{"photos", "docs", "docs/sub"} {
		must(t, os.Mkdir(m.P(d), 0o755), "mkdir "+d)
	}
	big := randBytes(r, 3*ChunkSize+17)
	writeFile(t, m.P("photos", "a.jpg"), big, 0o644)
	writeFile(t, m.P("photos", "b.txt"), []byte("ten bytes!"), 0o644)
	writeFile(t, m.P("docs", "c.txt"), randBytes(r, 5000), 0o644)
	must(t, os.Link(m.P("photos", "a.jpg"), m.P("photos", "a-link.jpg")), "link")
	must(t, os.Symlink("c.txt", m.P("docs", "l")), "symlink")

	// stat --json: one object per file, as its ssefs.encryption attribute says.
	files := []string{m.P("photos", "a.jpg"), m.P("photos", "b.txt"), m.P("docs", "c.txt")}
	res := cliOK(t, cfg, append([]string{"stat", "--json"}, files...)...)
	var stats []statJSON
	if err := json.Unmarshal([]byte(res.Stdout), &stats); err != nil || len(stats) != 3 {
		t.Fatalf("stat --json: %v\n%s", err, res.Stdout)
	}
	storedPerBucket := map[string]uint64{}
	for i, s := range stats {
		if s.Name != files[i] || s.SSE != "SSE-S3" || s.Key != "it-key" || s.StoredBytes == nil || s.Chunks == nil || s.Bucket != filepath.Base(filepath.Dir(files[i])) {
			t.Errorf("stat --json %s: %+v", files[i], s)
			continue
		}
		storedPerBucket[s.Bucket] += uint64(*s.StoredBytes)
	}
	if stats[0].Size != int64(len(big)) || *stats[0].Chunks != 4 || *stats[0].StoredBytes <= int64(len(big)) {
		t.Errorf("a.jpg: %+v", stats[0])
	}

	df := func(live bool) dfJSON {
		t.Helper()
		res := cliOK(t, cfg, "df", "--json", "--data-dir", cfg.DataDir)
		var u dfJSON
		if err := json.Unmarshal([]byte(res.Stdout), &u); err != nil {
			t.Fatalf("df --json: %v\n%s", err, res.Stdout)
		}
		if live != (u.ServedByPID == m.cmd.Process.Pid) || u.DataDir != cfg.DataDir || u.MetadataBytes == 0 {
			t.Errorf("live %v: served by %d (mount pid %d), data dir %q, metadata %d bytes", live, u.ServedByPID, m.cmd.Process.Pid, u.DataDir, u.MetadataBytes)
		}
		if len(u.Buckets) != 2 {
			t.Fatalf("df --json buckets: %+v", u.Buckets)
		}
		docs, photos := u.Buckets[0], u.Buckets[1]
		if docs.Name != "docs" || docs.Files != 1 || docs.Dirs != 1 || docs.Others != 1 || docs.LogicalBytes != 5000 {
			t.Errorf("docs: %+v", docs)
		}
		// The hard link is the same file: counted once, stored once.
		if photos.Name != "photos" || photos.Files != 2 || photos.Dirs != 0 || photos.LogicalBytes != uint64(len(big))+10 || photos.Chunks != 5 {
			t.Errorf("photos: %+v", photos)
		}
		for _, b := range u.Buckets {
			if b.StoredBytes+b.InlineBytes != storedPerBucket[b.Name] || b.UnlinkedFiles != 0 {
				t.Errorf("%s: %d + %d inline stored bytes, stat says %d", b.Name, b.StoredBytes, b.InlineBytes, storedPerBucket[b.Name])
			}
			if len(b.Keys) != 1 || b.Keys[0].Name != "it-key" || b.Keys[0].Files != b.Files {
				t.Errorf("%s keys: %+v", b.Name, b.Keys)
			}
		}
		return u
	}
	live := df(true)

	// Beside the running mount: the data directory is in use, the mountpoint busy.
	res = cli(t, cfg, "config", "check", "--data-dir", cfg.DataDir, cfg.Mountpoint)
	if res.Code != 1 || !strings.Contains(res.Stdout, "warn  data directory: "+cfg.DataDir+" holds a store and is served by ssefs pid") ||
		!strings.Contains(res.Stdout, "FAIL  mountpoint "+cfg.Mountpoint+": is busy") {
		t.Errorf("config check beside the mount: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	m.Stop(t)
	offline := df(false)
	if !reflect.DeepEqual(live.Buckets, offline.Buckets) {
		t.Errorf("df through the mount and offline differ:\n%+v\n%+v", live.Buckets, offline.Buckets)
	}
	res = cliOK(t, cfg, "config", "check", "--data-dir", cfg.DataDir, cfg.Mountpoint)
	// (The test's data directory is 0755, which is worth a warning.)
	for _, want := range []string{"ok    flags: ", " data directory: " + cfg.DataDir + " holds a store", "ok    kms: ",
		"ok    meta.key: ", "ok    store: ", "ok    mountpoint " + cfg.Mountpoint + ": empty directory, /dev/fuse present"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("config check after the mount lacks %q:\n%s", want, res.Stdout)
		}
	}
}

// The built binary's completion script completes in bash, and its man page renders.
func TestCLICompletionAndManPage(t *testing.T) {
	requireMount(t)
	out, err := exec.Command("bash", "-c", `source <("$1" completion bash) || exit 9
COMP_WORDS=(ssefs mo); COMP_CWORD=1; _ssefs; echo "${COMPREPLY[*]}"
COMP_WORDS=(ssefs mount --kms-kes-end); COMP_CWORD=2; _ssefs; echo "${COMPREPLY[*]}"`, "bash", ssefsBin).CombinedOutput()
	if err != nil || string(out) != "mount\n--kms-kes-endpoint\n" {
		t.Errorf("bash completion with the binary: %v\n%q", err, out)
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed (scripts/test.sh installs groff-base)")
	}
	out, err = exec.Command("bash", "-c", `set -o pipefail; "$1" man | "$2" -ww -z -man -Tutf8`, "bash", ssefsBin, groff).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("ssefs man | groff -ww -z: %v\n%s", err, out)
	}
}

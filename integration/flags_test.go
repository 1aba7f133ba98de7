package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// catAs runs cat(1) on path as uid/gid 65534 (nobody) and returns stdout, stderr and the error.
func catAs(t *testing.T, path string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("cat", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestAllowOther: without --allow-other only the mounting user (root) gets in; with it,
// another user reads a 0644 file (permissions are checked as usual).
func TestAllowOther(t *testing.T) {
	cfg := newConfig(t)
	// Let uid 65534 reach the mountpoint through the test's temp dirs.
	for _, d := range []string{filepath.Dir(cfg.Mountpoint), cfg.Mountpoint} {
		must(t, os.Chmod(d, 0o755), "chmod "+d)
	}
	m := StartMount(t, cfg)
	writeFile(t, m.P("public"), []byte("readable by all"), 0o644)
	must(t, os.Chmod(m.P("public"), 0o644), "chmod")
	writeFile(t, m.P("private"), []byte("root only"), 0o600)
	must(t, os.Chmod(m.P("private"), 0o600), "chmod")
	if out, errOut, err := catAs(t, m.P("public")); err == nil {
		t.Errorf("without --allow-other, uid 65534 read the mount: %q", out)
	} else if !strings.Contains(errOut, "Permission denied") {
		t.Errorf("without --allow-other, uid 65534: %v %s; want Permission denied", err, errOut)
	}
	m.Stop(t)

	cfg.Args = []string{"--allow-other"}
	m = StartMount(t, cfg)
	if opts := mountOptions(cfg.Mountpoint); !strings.Contains(opts, "allow_other") {
		t.Errorf("--allow-other: the mount's options are %q, without allow_other", opts)
	}
	if out, errOut, err := catAs(t, m.P("public")); err != nil || out != "readable by all" {
		t.Errorf("with --allow-other, uid 65534 reading a 0644 file: %q, %v %s", out, err, errOut)
	}
	if out, _, err := catAs(t, m.P("private")); err == nil {
		t.Errorf("with --allow-other, uid 65534 read a 0600 root file: %q", out)
	}
}

// mountOptions returns the per-mount and super options of the mount at dir.
func mountOptions(dir string) string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && unescapeMountinfo(f[4]) == dir {
			return f[5] + " " + f[len(f)-1]
		}
	}
	return ""
}

// TestDebugAndKeyCacheFlags: --debug logs FUSE requests; --key-cache-ttl takes durations
// (0 included) and refuses nonsense as a usage error.
func TestDebugAndKeyCacheFlags(t *testing.T) {
	cfg := newConfig(t)
	cfg.Args = []string{"--debug", "--key-cache-ttl", "0"}
	m := StartMount(t, cfg)
	r := rng(t)
	data := randBytes(r, ChunkSize+17)
	writeFile(t, m.P("f"), data, 0o644)
	dropPageCache(t, m.P("f"))
	assertContent(t, m.P("f"), data)
	lines := strings.Count(m.Stderr(), "\n")
	if lines < 10 {
		t.Errorf("--debug: only %d stderr lines after a write and a read:\n%s", lines, m.Stderr())
	}
	m.Stop(t)

	cfg.Args = []string{"--key-cache-ttl", "1s"}
	m = StartMount(t, cfg)
	assertContent(t, m.P("f"), data)
	if n := strings.Count(m.Stderr(), "\n"); n > 5 && os.Getenv("SSEFS_IT_DEBUG") == "" {
		t.Errorf("without --debug ssefs wrote %d stderr lines for a mount and a read:\n%s", n, m.Stderr())
	}
	m.Stop(t)

	for _, bad := range []string{"abc", "-1s"} {
		c := cfg
		c.Args = []string{"--key-cache-ttl", bad}
		res := runExpectExit(t, c, c.mountArgs()...)
		if res.Code != 2 {
			t.Errorf("--key-cache-ttl %s: exit code %d, want 2 (usage error); stderr:\n%s", bad, res.Code, res.Stderr)
		}
	}
}

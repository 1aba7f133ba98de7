package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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

// TestRootMountPermissions: a root mount without --allow-other leaves default_permissions
// off (only root gets in, and root passes the kernel's checks; they cost a GETATTR per
// create and unlink), yet root still sees exec bits: access(X_OK) and exec of a file
// without one fail, as on a local disk. With --allow-other the kernel checks as usual.
func TestRootMountPermissions(t *testing.T) {
	requireMount(t)
	cfg := newConfig(t)
	m := StartMount(t, cfg)
	if opts := mountOptions(cfg.Mountpoint); strings.Contains(opts, "default_permissions") {
		t.Errorf("a root mount without --allow-other has default_permissions: %q", opts)
	}
	script := []byte("#!/bin/sh\necho ran\n")
	writeFile(t, m.P("plain"), script, 0o644)
	must(t, os.Chmod(m.P("plain"), 0o644), "chmod plain")
	writeFile(t, m.P("tool"), script, 0o755)
	must(t, os.Chmod(m.P("tool"), 0o755), "chmod tool")
	writeFile(t, m.P("locked"), []byte("x"), 0o000)
	must(t, os.Chmod(m.P("locked"), 0o000), "chmod locked")
	must(t, os.Mkdir(m.P("closed"), 0o000), "mkdir closed")
	must(t, os.Chmod(m.P("closed"), 0o000), "chmod closed")
	for _, c := range []struct {
		path string
		mode uint32
		want error
	}{
		{"plain", unix.X_OK, syscall.EACCES},
		{"tool", unix.X_OK, nil},
		{"locked", unix.R_OK | unix.W_OK, nil}, // root
		{"closed", unix.R_OK | unix.W_OK | unix.X_OK, nil},
	} {
		if err := unix.Access(m.P(c.path), c.mode); err != c.want && !errors.Is(err, c.want) {
			t.Errorf("access(%s, %#o) as root: %v, want %v", c.path, c.mode, err, c.want)
		}
	}
	if out, err := exec.Command(m.P("plain")).CombinedOutput(); err == nil || !errors.Is(err, syscall.EACCES) && !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("exec of a 0644 file as root: %v %q, want permission denied", err, out)
	}
	if out, err := exec.Command(m.P("tool")).Output(); err != nil || string(out) != "ran\n" {
		t.Errorf("exec of a 0755 file as root: %q, %v", out, err)
	}
	if got, err := os.ReadFile(m.P("locked")); err != nil || string(got) != "x" {
		t.Errorf("root reading a 0000 file: %q, %v", got, err)
	}
	m.Stop(t)

	cfg.Args = []string{"--allow-other"}
	StartMount(t, cfg)
	if opts := mountOptions(cfg.Mountpoint); !strings.Contains(opts, "default_permissions") {
		t.Errorf("--allow-other without default_permissions: %q", opts)
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

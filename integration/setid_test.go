package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// runAs runs a shell command as uid/gid 65534 (nobody) and fails the test if it fails.
func runAs(t *testing.T, script string, args ...string) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("as nobody: %s: %v: %s", script, err, errb.String())
	}
}

// TestSetIDDroppedOnWrite: a write or truncate by an unprivileged user drops the
// set-user-ID bit, and the set-group-ID bit where group execute is set, as on a local
// disk; root's writes keep them. ssefs takes this job from the kernel
// (FUSE_HANDLE_KILLPRIV_V2) so that the kernel stops asking for security.capability
// before every write; the modes are checked as stat sees them and after a remount.
func TestSetIDDroppedOnWrite(t *testing.T) {
	cfg := newConfig(t)
	for _, d := range []string{filepath.Dir(cfg.Mountpoint), cfg.Mountpoint} {
		must(t, os.Chmod(d, 0o755), "chmod "+d)
	}
	cfg.Args = []string{"--allow-other"}
	m := StartMount(t, cfg)
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		must(t, err, "stat "+p)
		return fi.Mode() & (os.ModeSetuid | os.ModeSetgid | os.ModePerm)
	}
	setid := func(name string, perm os.FileMode) string {
		t.Helper()
		p := m.P(name)
		writeFile(t, p, []byte("#!/bin/sh\n"), 0o644)
		must(t, os.Chown(p, 65534, 65534), "chown "+name)
		must(t, os.Chmod(p, perm), "chmod "+name)
		if got := mode(p); got != perm&(os.ModeSetuid|os.ModeSetgid|os.ModePerm) {
			t.Fatalf("%s: mode %v after chmod %v", name, got, perm)
		}
		return p
	}
	const suidgid = os.ModeSetuid | os.ModeSetgid
	written := setid("written", suidgid|0o775)
	lockable := setid("lockable", os.ModeSetgid|0o765) // set-group-ID without group execute
	truncated := setid("truncated", os.ModeSetuid|0o755)
	rootWrites := setid("root-writes", suidgid|0o775)

	runAs(t, `printf more >> "$1"; printf more >> "$2"`, written, lockable)
	runAs(t, `: > "$1"`, truncated)
	f, err := os.OpenFile(rootWrites, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err, "open as root")
	_, err = f.Write([]byte("root"))
	must(t, err, "write as root")
	must(t, f.Close(), "close")

	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			path string
			want os.FileMode
		}{
			{written, 0o775},
			{lockable, os.ModeSetgid | 0o765},
			{truncated, 0o755},
			{rootWrites, suidgid | 0o775},
		} {
			if got := mode(c.path); got != c.want {
				t.Errorf("%s: %s: mode %v, want %v", when, filepath.Base(c.path), got, c.want)
			}
		}
		assertContent(t, written, []byte("#!/bin/sh\nmore"))
		assertContent(t, truncated, nil)
	}
	check("mounted")
	m = m.Restart(t)
	check("after a remount")
}

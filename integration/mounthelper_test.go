package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Mounting like any other filesystem: mount(8) and fstab through the mount helper, and
// 'ssefs mount --daemon' and 'ssefs umount' themselves.
//
// A background ssefs is not a child of the test: it is the child of the process that
// started it, which exits once it has mounted. The test process makes itself a child
// subreaper, so the kernel hands such orphans to it, and it waits for them (wait4) like
// for any child: that is how it sees a background ssefs exit, and with which status.

const mountHelperLink = "/sbin/mount.fuse.ssefs" // where util-linux's mount(8) looks for it

var subreaperOnce sync.Once

func becomeSubreaper(t *testing.T) {
	t.Helper()
	var err error
	subreaperOnce.Do(func() { err = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
	if err != nil {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
}

// installMountHelper links /sbin/mount.fuse.ssefs to the race-built ssefs for the test.
func installMountHelper(t *testing.T) {
	t.Helper()
	if target, err := os.Readlink(mountHelperLink); err == nil {
		if _, serr := os.Stat(target); serr == nil && target != ssefsBin {
			t.Fatalf("%s links to %s: not replacing a mount helper this test did not install", mountHelperLink, target)
		}
		os.Remove(mountHelperLink) // dangling: left by a run that died
	} else if _, serr := os.Lstat(mountHelperLink); serr == nil {
		t.Fatalf("%s exists and is not a symlink: not replacing an installed mount helper", mountHelperLink)
	}
	if err := os.Symlink(ssefsBin, mountHelperLink); err != nil {
		t.Fatalf("install the mount helper: %v", err)
	}
	t.Cleanup(func() { os.Remove(mountHelperLink) })
}

// helperConfig is newConfig with the master key in a file (mode 0600), as fstab names it
// (key_file=), instead of SSEFS_KMS_MASTER_KEY.
func helperConfig(t *testing.T) (cfg Config, keyFile string) {
	t.Helper()
	cfg = newConfig(t)
	keyFile = filepath.Join(t.TempDir(), "master.key")
	env := cfg.Env[:0:0]
	for _, kv := range cfg.Env {
		if k, v, _ := strings.Cut(kv, "="); k == "SSEFS_KMS_MASTER_KEY" {
			writeFile(t, keyFile, []byte(v+"\n"), 0o600)
			continue
		}
		env = append(env, kv)
	}
	cfg.Env = env
	return cfg, keyFile
}

type cmdResult struct {
	code   int
	stderr string
}

// runCmd runs a command with cfg's environment and returns its exit code and stderr;
// stdout is appended to stderr, neither is expected to be large.
func runCmd(t *testing.T, cfg Config, name string, args ...string) cmdResult {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = cfg.environ()
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(readyTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not finish within %s; output:\n%s", name, args, readyTimeout, out.String())
	}
	return cmdResult{code: cmd.ProcessState.ExitCode(), stderr: out.String()}
}

// background is a background ssefs serving dataDir, found by the pid in DATA/lock.
type background struct {
	pid     int
	logFile string
	exited  chan int // its exit status, once; -1: killed by a signal
	t       *testing.T
}

// findBackground returns the ssefs that holds dataDir's lock and starts waiting for its
// exit. Cleanup makes sure it is gone.
func findBackground(t *testing.T, dataDir, logFile string) *background {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "lock"))
	if err != nil {
		t.Fatalf("reading the lock of %s: %v", dataDir, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("the lock of %s holds %q, not a pid", dataDir, b)
	}
	bg := &background{pid: pid, logFile: logFile, exited: make(chan int, 1), t: t}
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				t.Errorf("wait4(%d) (the background ssefs should be this subreaper's child): %v", pid, err)
				bg.exited <- -2
				return
			}
			break
		}
		if ws.Signaled() {
			bg.exited <- -1
		} else {
			bg.exited <- ws.ExitStatus()
		}
	}()
	t.Cleanup(func() {
		select {
		case code := <-bg.exited:
			bg.exited <- code
			return
		default:
		}
		_ = unix.Kill(pid, unix.SIGKILL)
		<-bg.exited
		t.Errorf("the background ssefs (pid %d) was still running at the end of the test; killed it", pid)
	})
	return bg
}

// waitExit asserts that the background ssefs exits, with status 0, and reported no race.
func (b *background) waitExit() {
	b.t.Helper()
	select {
	case code := <-b.exited:
		b.exited <- code
		if code != 0 {
			b.t.Errorf("the background ssefs (pid %d) exited with %d, want 0; log:\n%s", b.pid, code, b.log())
		}
	case <-time.After(stopTimeout):
		b.t.Fatalf("the background ssefs (pid %d) did not exit within %s; log:\n%s", b.pid, stopTimeout, b.log())
	}
	if log := b.log(); strings.Contains(log, "DATA RACE") {
		b.t.Errorf("the background ssefs reported a DATA RACE:\n%s", log)
	}
}

// assertDataDirFree checks that no process holds dataDir's lock any more: what 'ssefs
// umount' promises when it returns.
func assertDataDirFree(t *testing.T, dataDir string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("the data directory %s is still locked after ssefs umount returned: %v", dataDir, err)
	}
}

func (b *background) log() string {
	if b.logFile == "" {
		return "(no log file)"
	}
	data, _ := os.ReadFile(b.logFile)
	return string(data)
}

// assertNothingLeft fails t if mountpoint is mounted or a process still names dataDir: a
// refused or interrupted mount must leave neither behind.
func assertNothingLeft(t *testing.T, after, mountpoint, dataDir string) {
	t.Helper()
	if isMounted(mountpoint) {
		t.Errorf("%s is mounted after %s", mountpoint, after)
	}
	if procs := processesWith(dataDir); len(procs) != 0 {
		t.Errorf("processes left after %s:\n%s", after, strings.Join(procs, "\n"))
	}
}

// processesWith lists the processes whose command line contains s (a test's unique
// data directory).
func processesWith(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// assertSsefsMount checks that dir is an ssefs mount of dataDir.
func assertSsefsMount(t *testing.T, dir, dataDir string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 10 || unescapeMountinfo(fields[4]) != dir {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+2 < len(fields) {
				if fields[i+1] != "fuse.ssefs" || unescapeMountinfo(fields[i+2]) != dataDir {
					t.Fatalf("%s is mounted as %s from %s, want fuse.ssefs from %s", dir, fields[i+1], fields[i+2], dataDir)
				}
				return
			}
		}
	}
	t.Fatalf("%s is not mounted", dir)
}

// A real fstab line (in a file of the test's own, through mount -T) with the options the
// issue names: mount(8) runs the helper, which returns once the mount is ready.
func TestMountHelperFstab(t *testing.T) {
	requireMount(t)
	becomeSubreaper(t)
	installMountHelper(t)
	cfg, keyFile := helperConfig(t)
	logFile := filepath.Join(t.TempDir(), "ssefs.log")
	fstab := filepath.Join(t.TempDir(), "fstab")
	writeFile(t, fstab, []byte(fmt.Sprintf(
		"# the line README shows\n%s  %s  fuse.ssefs  _netdev,nofail,x-systemd.automount,key_file=%s,bucket=%s,log_file=%s  0  0\n",
		cfg.DataDir, cfg.Mountpoint, keyFile, cfg.Bucket, logFile)), 0o644)

	res := runCmd(t, cfg, "mount", "-T", fstab, cfg.Mountpoint)
	if res.code != 0 {
		t.Fatalf("mount -T fstab %s: exit %d:\n%s", cfg.Mountpoint, res.code, res.stderr)
	}
	bg := findBackground(t, cfg.DataDir, logFile)
	// mount(8) has returned: the mount must be there now, not "soon".
	assertSsefsMount(t, cfg.Mountpoint, cfg.DataDir)
	data := randBytes(rng(t), 3*ChunkSize+17)
	writeFile(t, filepath.Join(cfg.Mountpoint, "a.bin"), data, 0o644)
	assertContent(t, filepath.Join(cfg.Mountpoint, "a.bin"), data)

	// 'mount -a' knows the line is mounted already (the mount's source is the data
	// directory, as in fstab) and starts no second ssefs.
	res = runCmd(t, cfg, "mount", "-a", "-v", "-T", fstab)
	if res.code != 0 || !strings.Contains(res.stderr, "already mounted") {
		t.Errorf("mount -a -T fstab again: exit %d, want 0 and 'already mounted':\n%s", res.code, res.stderr)
	}
	if procs := processesWith(cfg.DataDir); len(procs) != 1 {
		t.Errorf("want exactly one ssefs serving %s, found:\n%s", cfg.DataDir, strings.Join(procs, "\n"))
	}

	// ssefs umount flushes and unmounts: when it returns, the background ssefs has
	// exited cleanly.
	res = runCmd(t, cfg, ssefsBin, "umount", cfg.Mountpoint)
	if res.code != 0 || !strings.Contains(res.stderr, "flushed") {
		t.Fatalf("ssefs umount: exit %d:\n%s", res.code, res.stderr)
	}
	assertDataDirFree(t, cfg.DataDir)
	bg.waitExit()
	if isMounted(cfg.Mountpoint) {
		t.Fatalf("%s is still mounted after ssefs umount", cfg.Mountpoint)
	}
	if !strings.Contains(bg.log(), "was unmounted") {
		t.Errorf("log file lacks the shutdown; it holds:\n%s", bg.log())
	}

	// The form, on the command line, with the S3 API beside the mount: ready means
	// both are up. umount(8) then stops it like any filesystem.
	cfg.Env = append(cfg.Env, "SSEFS_ROOT_USER=helper-user", "SSEFS_ROOT_PASSWORD=helper-password-123")
	logFile2 := filepath.Join(t.TempDir(), "ssefs.log")
	res = runCmd(t, cfg, "mount", "-t", "fuse.ssefs", cfg.DataDir, cfg.Mountpoint,
		"-o", fmt.Sprintf("key_file=%s,s3_address=127.0.0.1:0,bucket=%s,log-file=%s", keyFile, cfg.Bucket, logFile2))
	if res.code != 0 {
		t.Fatalf("mount -t fuse.ssefs: exit %d:\n%s", res.code, res.stderr)
	}
	bg = findBackground(t, cfg.DataDir, logFile2)
	assertSsefsMount(t, cfg.Mountpoint, cfg.DataDir)
	assertContent(t, filepath.Join(cfg.Mountpoint, "a.bin"), data) // flushed by the umount above
	_, addr, ok := strings.Cut(res.stderr, "S3 API listening on http://")
	if !ok {
		t.Fatalf("no S3 listener announced:\n%s", res.stderr)
	}
	addr, _, _ = strings.Cut(addr, "\n")
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Errorf("the S3 API at %s is not up once mount(8) returned: %v", addr, err)
	} else {
		conn.Close()
	}
	res = runCmd(t, cfg, "umount", cfg.Mountpoint)
	if res.code != 0 {
		t.Fatalf("umount(8): exit %d:\n%s", res.code, res.stderr)
	}
	bg.waitExit()

	// A bad option is refused by name, and nothing is left running or mounted.
	res = runCmd(t, cfg, "mount", "-t", "fuse.ssefs", cfg.DataDir, cfg.Mountpoint, "-o", "key_file="+keyFile+",ro")
	if res.code == 0 || !strings.Contains(res.stderr, "-o ro: ssefs has no read-only mode") {
		t.Errorf("mount -o ro: exit %d, want a failure naming the option:\n%s", res.code, res.stderr)
	}
	res = runCmd(t, cfg, "mount", "-t", "fuse.ssefs", cfg.DataDir, cfg.Mountpoint, "-o", "key_file="+keyFile+",cache_size=3")
	if res.code == 0 || !strings.Contains(res.stderr, "-o cache_size: unknown option") {
		t.Errorf("mount -o cache_size=3: exit %d, want a failure naming the option:\n%s", res.code, res.stderr)
	}
	assertNothingLeft(t, "the refused mounts", cfg.Mountpoint, cfg.DataDir)
}

// 'ssefs mount --daemon': exit 0 once mounted, 1 with the reason when not, and nothing
// left behind either way.
func TestDaemonExitCodes(t *testing.T) {
	requireMount(t)
	becomeSubreaper(t)
	cfg, keyFile := helperConfig(t)
	logFile := filepath.Join(t.TempDir(), "ssefs.log")
	daemonArgs := func(mountpoint, key string, extra ...string) []string {
		args := []string{"mount", "--daemon", "--data-dir", cfg.DataDir, "--bucket", cfg.Bucket, "--master-key-file", key}
		return append(append(args, extra...), mountpoint)
	}
	freshDataDir := t.TempDir()

	res := runCmd(t, cfg, ssefsBin, daemonArgs(cfg.Mountpoint, keyFile, "--log-file", logFile)...)
	if res.code != 0 {
		t.Fatalf("ssefs mount --daemon: exit %d:\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, readyPrefix+cfg.Mountpoint) {
		t.Errorf("the ready line did not reach the caller:\n%s", res.stderr)
	}
	bg := findBackground(t, cfg.DataDir, logFile)
	assertSsefsMount(t, cfg.Mountpoint, cfg.DataDir)
	data := randBytes(rng(t), ChunkSize+5)
	writeFile(t, filepath.Join(cfg.Mountpoint, "d.bin"), data, 0o644)
	assertContent(t, filepath.Join(cfg.Mountpoint, "d.bin"), data)
	if !strings.Contains(bg.log(), fmt.Sprintf("serving %s in the background (pid %d)", cfg.Mountpoint, bg.pid)) {
		t.Errorf("log file %s does not say it went to the background:\n%s", logFile, bg.log())
	}
	if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log file: %v %v, want mode 0600", st, err)
	}

	// Refusals: each exits 1 with one line saying why, mounts nothing, leaves nothing.
	nonEmpty := t.TempDir()
	writeFile(t, filepath.Join(nonEmpty, "keep"), []byte("x"), 0o644)
	otherKey := filepath.Join(t.TempDir(), "other.key")
	writeFile(t, otherKey, []byte(NewKey("other-key")+"\n"), 0o600)
	for _, c := range []struct {
		name, mountpoint, key, want string
		extra                       []string
	}{
		{"mountpoint missing", filepath.Join(t.TempDir(), "nope"), keyFile, "does not exist", nil},
		{"mountpoint not empty", nonEmpty, keyFile, "is not empty", nil},
		// The background process reads the key file, once it holds the data directory.
		{"key file missing", t.TempDir(), filepath.Join(t.TempDir(), "no.key"), "no.key: no such file or directory", []string{"--data-dir=" + freshDataDir}},
		// Found only in the background process: the data dir is in use by the mount above.
		{"data dir in use", t.TempDir(), keyFile, "is in use by another ssefs (pid " + strconv.Itoa(bg.pid) + ")", nil},
	} {
		res := runCmd(t, cfg, ssefsBin, daemonArgs(c.mountpoint, c.key, c.extra...)...)
		lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
		if res.code != 1 || !strings.Contains(res.stderr, c.want) || !strings.HasPrefix(lines[len(lines)-1], "ssefs: ") {
			t.Errorf("%s: exit %d, want 1 and a line saying %q:\n%s", c.name, res.code, c.want, res.stderr)
		}
		if isMounted(c.mountpoint) {
			t.Errorf("%s: %s got mounted", c.name, c.mountpoint)
			_ = unix.Unmount(c.mountpoint, unix.MNT_DETACH)
		}
	}
	if procs := processesWith(cfg.DataDir); len(procs) != 1 {
		t.Errorf("want only the first background ssefs left, found:\n%s", strings.Join(procs, "\n"))
	}
	if procs := processesWith(freshDataDir); len(procs) != 0 {
		t.Errorf("processes left after a refused mount:\n%s", strings.Join(procs, "\n"))
	}

	// ssefs umount waits for the flush: with the background ssefs stopped (SIGSTOP), the
	// unmount happens (the kernel needs no answer for it) but the wait runs out.
	if err := unix.Kill(bg.pid, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	res = runCmd(t, cfg, ssefsBin, "umount", "--timeout", "1s", cfg.Mountpoint)
	unix.Kill(bg.pid, unix.SIGCONT)
	want := fmt.Sprintf("unmounted %s, but ssefs (pid %d) is still flushing to %s after 1s", cfg.Mountpoint, bg.pid, cfg.DataDir)
	if res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("ssefs umount --timeout 1s of a stopped ssefs: exit %d, want 1 and %q:\n%s", res.code, want, res.stderr)
	}
	if isMounted(cfg.Mountpoint) {
		t.Errorf("%s is still mounted", cfg.Mountpoint)
	}
	bg.waitExit() // once continued, it flushes and exits by itself
	assertDataDirFree(t, cfg.DataDir)

	// A failure that only the background process meets, after the data directory is
	// open: a key that cannot unseal it.
	res = runCmd(t, cfg, ssefsBin, daemonArgs(cfg.Mountpoint, otherKey)...)
	if res.code != 1 || !strings.Contains(res.stderr, "cannot unseal") {
		t.Errorf("wrong master key: exit %d, want 1 and 'cannot unseal':\n%s", res.code, res.stderr)
	}
	assertNothingLeft(t, "the mount with the wrong key", cfg.Mountpoint, cfg.DataDir)
}

// Ctrl-C while the background ssefs starts stops it too, and the exit code says no mount.
func TestDaemonInterrupted(t *testing.T) {
	requireMount(t)
	cfg, keyFile := helperConfig(t)
	// An object store that accepts connections and never answers: the background ssefs
	// hangs opening the store, and its connecting is the moment to interrupt.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()
	var env []string
	for _, kv := range cfg.Env {
		if !strings.HasPrefix(kv, "SSEFS_STORE") {
			env = append(env, kv)
		}
	}
	cfg.Env = append(env, "SSEFS_STORE_ACCESS_KEY=ak", "SSEFS_STORE_SECRET_KEY=secret-key")
	cmd := exec.Command(ssefsBin, "mount", "--daemon", "--data-dir", cfg.DataDir, "--master-key-file", keyFile,
		"--store", "s3://silent-bucket", "--store-endpoint", ln.Addr().String(), "--store-insecure", cfg.Mountpoint)
	cmd.Env = cfg.environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-accepted:
	case err := <-exited:
		t.Fatalf("ssefs mount --daemon exited (%v) before the background ssefs reached the store:\n%s", err, out.String())
	case <-time.After(readyTimeout):
		_ = cmd.Process.Kill()
		t.Fatalf("the background ssefs never connected to the store:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		t.Fatalf("ssefs mount --daemon did not exit after SIGINT:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), "interrupt before the mount was ready; the background ssefs has stopped") {
		t.Errorf("exit %d, want 1 and the interruption named:\n%s", code, out.String())
	}
	assertNothingLeft(t, "the interruption", cfg.Mountpoint, cfg.DataDir)
}

// 'ssefs umount' on a mount in use, on what is not an ssefs mount, and --lazy.
func TestUmountCommand(t *testing.T) {
	requireMount(t)
	cfg := newConfig(t)
	m := StartMount(t, cfg)
	data := []byte("still readable after a lazy unmount\n")
	writeFile(t, m.P("f.txt"), data, 0o644)

	f, err := os.Open(m.P("f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := runCmd(t, cfg, ssefsBin, "umount", cfg.Mountpoint)
	if res.code != 1 || !strings.Contains(res.stderr, "is busy") {
		t.Errorf("ssefs umount of a busy mount: exit %d, want 1 and 'is busy':\n%s", res.code, res.stderr)
	}
	if !isMounted(cfg.Mountpoint) || m.Exited() {
		t.Fatalf("a refused umount must leave the mount and ssefs as they were")
	}

	// --lazy: detached at once; the open file still reads; ssefs exits when it is closed.
	res = runCmd(t, cfg, ssefsBin, "umount", "--lazy", cfg.Mountpoint)
	if res.code != 0 || !strings.Contains(res.stderr, "detached") {
		t.Fatalf("ssefs umount --lazy: exit %d:\n%s", res.code, res.stderr)
	}
	if isMounted(cfg.Mountpoint) {
		t.Errorf("%s is still in the mount table after umount --lazy", cfg.Mountpoint)
	}
	got := make([]byte, len(data)+10)
	n, err := f.ReadAt(got, 0)
	if n != len(data) || !bytes.Equal(got[:n], data) {
		t.Errorf("read of the file held open across umount --lazy: %q, %v", got[:n], err)
	}
	if m.Exited() {
		t.Errorf("ssefs exited while a file of its lazily detached mount was open")
	}
	f.Close()
	if !m.waitExit(stopTimeout) {
		t.Fatalf("ssefs did not exit after the last file of its detached mount was closed")
	}
	m.Stop(t) // asserts exit code 0 and no race
	if !strings.Contains(m.Stderr(), "was unmounted") {
		t.Errorf("ssefs did not see the unmount:\n%s", m.Stderr())
	}

	// Not an ssefs mount, and not mounted at all.
	tmp := t.TempDir()
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(tmp, unix.MNT_DETACH)
	res = runCmd(t, cfg, ssefsBin, "umount", tmp)
	if res.code != 1 || !strings.Contains(res.stderr, "is not an ssefs mount (it is tmpfs") {
		t.Errorf("ssefs umount of a tmpfs: exit %d:\n%s", res.code, res.stderr)
	}
	if !isMounted(tmp) {
		t.Errorf("ssefs umount unmounted a tmpfs")
	}
	res = runCmd(t, cfg, ssefsBin, "umount", cfg.Mountpoint)
	if res.code != 1 || !strings.Contains(res.stderr, cfg.Mountpoint+" is not mounted") {
		t.Errorf("ssefs umount of nothing: exit %d:\n%s", res.code, res.stderr)
	}
}

// Under systemd (Type=notify) ssefs says READY=1 once mounted and STOPPING=1 when the
// unmount starts its shutdown, on the socket $NOTIFY_SOCKET names.
func TestSystemdNotify(t *testing.T) {
	requireMount(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	recv := func(what string) string {
		t.Helper()
		if err := conn.SetReadDeadline(time.Now().Add(stopTimeout)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no %s notification: %v", what, err)
		}
		return string(buf[:n])
	}
	cfg := newConfig(t)
	cfg.Env = append(cfg.Env, "NOTIFY_SOCKET="+sock)
	m := StartMount(t, cfg)
	if got, want := recv("ready"), "READY=1\nSTATUS=Serving "+cfg.Mountpoint; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	res := runCmd(t, cfg, ssefsBin, "umount", cfg.Mountpoint)
	if res.code != 0 {
		t.Fatalf("ssefs umount: exit %d:\n%s", res.code, res.stderr)
	}
	if got := recv("stopping"); got != "STOPPING=1" {
		t.Errorf("got %q, want STOPPING=1", got)
	}
	m.Stop(t) // it has exited by itself: asserts status 0
}

// Package integration holds ssefs' end-to-end tests: a real FUSE mount made by the real
// ssefs binary (built with -race by TestMain), driven through ordinary system calls and
// ordinary tools (cp, tar, rsync, mv).
//
// Every test that mounts gets its own data dir and mountpoint (t.TempDir), stops ssefs with
// SIGTERM and asserts exit code 0 and no "DATA RACE" on its stderr. The tests skip only
// when /dev/fuse is missing or the tests do not run as root.
package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ChunkSize is ssefs' plaintext chunk size (the contract says 1 MiB).
const ChunkSize = 1 << 20

const (
	readyPrefix  = "ssefs: mounted "
	readyTimeout = 3 * time.Minute  // race-built binary on a 2-core machine; a bound, not a sleep
	stopTimeout  = 60 * time.Second // explicit Stop in a test
	cleanTimeout = 20 * time.Second // Cleanup: SIGTERM, then SIGKILL + umount -l
)

var (
	ssefsBin   string // path of the race-built binary
	buildErr   error  // why it could not be built
	skipReason string // why mount tests skip ("" = they run)
	moduleRoot string
)

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h, os.Args[1:]))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: cannot find the module root: %v\n", err)
		return 1
	}
	moduleRoot = root

	if _, err := os.Stat("/dev/fuse"); err != nil {
		skipReason = fmt.Sprintf("/dev/fuse is not available (%v): FUSE mount tests need it", err)
	} else if os.Geteuid() != 0 {
		skipReason = fmt.Sprintf("not running as root (euid %d): the FUSE mount tests mount, chown and mount tmpfs", os.Geteuid())
	}
	var tmp string
	if skipReason == "" {
		tmp, err = os.MkdirTemp("", "ssefs-it-bin-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: %v\n", err)
			return 1
		}
		ssefsBin = filepath.Join(tmp, "ssefs")
		start := time.Now()
		cmd := exec.Command(goTool(), "build", "-race", "-o", ssefsBin, "./cmd/ssefs")
		cmd.Dir = moduleRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -race -o %s ./cmd/ssefs: %v\n%s", ssefsBin, err, out)
			fmt.Fprintf(os.Stderr, "integration: building ssefs failed; every mount test will fail:\n%v\n", buildErr)
		} else {
			fmt.Fprintf(os.Stderr, "integration: built %s with -race in %s\n", ssefsBin, time.Since(start).Round(time.Second))
		}
	} else {
		fmt.Fprintf(os.Stderr, "integration: mount tests will SKIP: %s\n", skipReason)
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	return code
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// requireMount skips (with the reason) when mounts are impossible here, and fails when the
// binary could not be built.
func requireMount(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if buildErr != nil {
		t.Fatalf("ssefs binary unavailable: %v", buildErr)
	}
}

// ---------------------------------------------------------------------------------------
// Configuration and process control

// Config is how one ssefs process is started.
type Config struct {
	DataDir    string   // --data-dir ("" = flag not given)
	Mountpoint string   // MOUNTPOINT argument
	Bucket     string   // --bucket ("" = flag not given: the root lists buckets)
	Env        []string // extra environment (KEY=VALUE); SSEFS_*/MINIO_* of the test process are never inherited
	Args       []string // extra flags, put before MOUNTPOINT
	Home       string   // HOME for the process (a temp dir, so nothing lands in the real home)
}

// NewKey returns a fresh master key string NAME:64-hex.
func NewKey(name string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return name + ":" + hex.EncodeToString(b[:])
}

// newConfig gives a config with a fresh data dir, a fresh mountpoint, bucket "test-bucket"
// and a fresh master key in SSEFS_KMS_MASTER_KEY.
func newConfig(t testing.TB) Config {
	t.Helper()
	return withITStore(t, Config{
		DataDir:    t.TempDir(),
		Mountpoint: t.TempDir(),
		Bucket:     "test-bucket",
		Env:        []string{"SSEFS_KMS_MASTER_KEY=" + NewKey("it-key")},
		Home:       t.TempDir(),
	})
}

func (c Config) mountArgs() []string {
	args := []string{"mount"}
	if c.DataDir != "" {
		args = append(args, "--data-dir", c.DataDir)
	}
	if c.Bucket != "" {
		args = append(args, "--bucket", c.Bucket)
	}
	args = append(args, c.Args...)
	if os.Getenv("SSEFS_IT_DEBUG") != "" {
		args = append(args, "--debug") // every FUSE request in the stderr a failing test prints
	}
	if c.Mountpoint != "" {
		args = append(args, c.Mountpoint)
	}
	return args
}

func (c Config) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SSEFS_") || strings.HasPrefix(k, "MINIO_") ||
			k == "HOME" || k == "XDG_DATA_HOME" || k == "GORACE" {
			continue
		}
		env = append(env, kv)
	}
	if c.Home != "" {
		env = append(env, "HOME="+c.Home)
	}
	// Report races but keep running, so that the exit code and the full report show.
	env = append(env, "GORACE=halt_on_error=0")
	return append(env, c.Env...)
}

// Proc is one running (or finished) ssefs process.
type Proc struct {
	Cfg  Config
	cmd  *exec.Cmd
	args []string

	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	ready  chan string   // receives the ready line once
	done   chan struct{} // closed when the process has exited and its output is read
	state  *os.ProcessState
	werr   error
	reaped bool // Stop or cleanup already asserted on the exit
}

// Stderr returns everything the process wrote to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Stdout returns everything the process wrote to stdout so far.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// startProc starts ssefs with args and cfg's environment. It does not wait for anything.
func startProc(t testing.TB, cfg Config, args ...string) *Proc {
	t.Helper()
	requireMount(t)
	cmd := exec.Command(ssefsBin, args...)
	cmd.Env = cfg.environ()
	cmd.Dir = "/"
	cmd.Stdin = nil
	// Its own process group, so that a signal to the test does not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cfg: cfg, cmd: cmd, args: args, ready: make(chan string, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %q: %v", ssefsBin, args, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r := bufio.NewReader(errPipe)
		sent := false
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				p.mu.Lock()
				p.stderr.WriteString(line)
				p.mu.Unlock()
				if !sent && strings.HasPrefix(line, readyPrefix) {
					p.ready <- strings.TrimRight(line, "\n")
					sent = true
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := outPipe.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.stdout.Write(buf[:n])
				p.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		wg.Wait() // pipes drained: the process closed them (normally by exiting)
		err := cmd.Wait()
		p.mu.Lock()
		p.state, p.werr = cmd.ProcessState, err
		p.mu.Unlock()
		close(p.done)
	}()
	return p
}

// ExitCode is the exit code once the process has exited (-1 if killed by a signal).
func (p *Proc) ExitCode() int {
	<-p.done
	if p.state == nil {
		return -1
	}
	return p.state.ExitCode()
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits for exit up to d; reports whether it exited.
func (p *Proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Mount is a running, mounted ssefs.
type Mount struct {
	*Proc
	Dir string // the mountpoint (the bucket with --bucket, else the bucket list)
	t   testing.TB
}

// StartMount runs `ssefs mount` for cfg, waits for the ready line and checks that the
// mountpoint is now a FUSE mount. Cleanup stops it (and asserts the exit) if the test did not.
func StartMount(t testing.TB, cfg Config) *Mount {
	t.Helper()
	p := startProc(t, cfg, cfg.mountArgs()...)
	m := &Mount{Proc: p, Dir: cfg.Mountpoint, t: t}
	t.Cleanup(func() { m.cleanup() })
	select {
	case line := <-p.ready:
		if !strings.Contains(line, cfg.Mountpoint) {
			t.Errorf("ready line %q does not name the mountpoint %s", line, cfg.Mountpoint)
		}
	case <-p.done:
		t.Fatalf("ssefs %q exited with code %d before it was ready; stderr:\n%s", p.args, p.ExitCode(), p.Stderr())
	case <-time.After(readyTimeout):
		t.Fatalf("ssefs %q printed no %q line within %s; stderr so far:\n%s", p.args, readyPrefix, readyTimeout, p.Stderr())
	}
	fstype, ok := mountFSType(cfg.Mountpoint)
	if !ok {
		t.Fatalf("ssefs said it mounted %s, but /proc/self/mountinfo has no mount there; stderr:\n%s", cfg.Mountpoint, p.Stderr())
	}
	if !strings.HasPrefix(fstype, "fuse") {
		t.Fatalf("mount at %s has fstype %q, want fuse*", cfg.Mountpoint, fstype)
	}
	return m
}

// Stop sends SIGTERM, waits for the exit and asserts: exit code 0, no DATA RACE, the
// mountpoint is no longer mounted.
func (m *Mount) Stop(t testing.TB) {
	t.Helper()
	m.stop(t, stopTimeout)
}

func (m *Mount) stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if m.reaped {
		return
	}
	if !m.terminate(t, timeout) {
		_ = unix.Unmount(m.Dir, unix.MNT_DETACH)
		return
	}
	// ssefs unmounts before it exits; allow the kernel a bounded moment to drop the entry.
	if !waitCond(10*time.Second, func() bool { return !isMounted(m.Dir) }) {
		t.Errorf("ssefs exited but %s is still mounted; detaching it", m.Dir)
		_ = unix.Unmount(m.Dir, unix.MNT_DETACH)
	}
}

// terminate sends SIGTERM and waits up to timeout for the exit, which it asserts clean;
// past the timeout it fails the test, kills the process and reports false.
func (p *Proc) terminate(t testing.TB, timeout time.Duration) bool {
	t.Helper()
	p.reaped = true
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	if !p.waitExit(timeout) {
		t.Errorf("ssefs %q did not exit within %s of SIGTERM; killing it. stderr:\n%s", p.args, timeout, p.Stderr())
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
	p.assertCleanExit(t)
	return true
}

func (p *Proc) assertCleanExit(t testing.TB) {
	t.Helper()
	stderr := p.Stderr()
	if strings.Contains(stderr, "DATA RACE") {
		t.Errorf("ssefs (race build) reported a DATA RACE; stderr:\n%s", stderr)
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("ssefs %q exited with code %d after SIGTERM, want 0; stderr:\n%s", p.args, code, tail(stderr, 8000))
	}
	assertNoSecrets(t, p.Cfg, p.args, stderr+p.Stdout())
}

// Kill sends SIGKILL (a crash of the ssefs process), waits for it and detaches the dead
// mount. Only the absence of DATA RACE is asserted.
//
// A killed FUSE server can stay a zombie for good: a thread that was sending the kernel
// an invalidation waits, unkillably, for a directory lock that a request to the dead
// server holds, so /dev/fuse is never closed and the request never fails. Then, as an
// operator would, Kill aborts the connection through fusectl.
func (m *Mount) Kill(t testing.TB) {
	t.Helper()
	m.reaped = true
	conn, haveConn := fuseConnection(m.Dir)
	_ = m.cmd.Process.Kill()
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		if !haveConn {
			t.Fatalf("ssefs did not exit after SIGKILL and its FUSE connection is unknown")
		}
		if err := abortFuseConnection(conn); err != nil {
			t.Fatalf("ssefs did not exit after SIGKILL, and aborting its FUSE connection failed: %v", err)
		}
		t.Logf("ssefs hung after SIGKILL (a thread blocked in a kernel invalidation); aborted FUSE connection %s", conn)
		<-m.done
	}
	if strings.Contains(m.Stderr(), "DATA RACE") {
		t.Errorf("ssefs (race build) reported a DATA RACE before SIGKILL; stderr:\n%s", m.Stderr())
	}
	if isMounted(m.Dir) {
		if err := unix.Unmount(m.Dir, unix.MNT_DETACH); err != nil {
			t.Errorf("umount -l %s after SIGKILL: %v", m.Dir, err)
		}
	}
}

func (m *Mount) cleanup() {
	t := m.t
	if !m.reaped {
		m.stop(t, cleanTimeout)
	}
	if isMounted(m.Dir) {
		_ = unix.Unmount(m.Dir, unix.MNT_DETACH)
	}
	if t.Failed() {
		t.Logf("ssefs %q stderr (tail):\n%s", m.args, tail(m.Stderr(), 4000))
	}
}

// Restart stops m (asserting a clean exit) and mounts the same config again.
func (m *Mount) Restart(t testing.TB) *Mount {
	t.Helper()
	m.Stop(t)
	return StartMount(t, m.Cfg)
}

// P joins path elements below the mountpoint.
func (m *Mount) P(elem ...string) string {
	return filepath.Join(append([]string{m.Dir}, elem...)...)
}

// RunResult is a finished ssefs run that was expected to exit by itself.
type RunResult struct {
	Code   int
	Stdout string
	Stderr string
}

// runExpectExit runs ssefs with args and waits for it to exit. If instead it prints the ready
// line, the test fails and the mount is stopped.
func runExpectExit(t testing.TB, cfg Config, args ...string) RunResult {
	t.Helper()
	p := startProc(t, cfg, args...)
	select {
	case <-p.done:
	case line := <-p.ready:
		t.Errorf("ssefs %q mounted (%q) where it should have refused", args, line)
		mnt := &Mount{Proc: p, Dir: cfg.Mountpoint, t: t}
		mnt.stop(t, cleanTimeout)
		return RunResult{Code: p.ExitCode(), Stdout: p.Stdout(), Stderr: p.Stderr()}
	case <-time.After(readyTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("ssefs %q neither exited nor mounted within %s; stderr:\n%s", args, readyTimeout, p.Stderr())
	}
	if strings.Contains(p.Stderr(), "DATA RACE") {
		t.Errorf("ssefs %q reported a DATA RACE; stderr:\n%s", args, p.Stderr())
	}
	assertNoSecrets(t, cfg, args, p.Stderr()+p.Stdout())
	return RunResult{Code: p.ExitCode(), Stdout: p.Stdout(), Stderr: p.Stderr()}
}

// ---------------------------------------------------------------------------------------
// Mount table

// mountFSType returns the fstype of the mount whose mountpoint is exactly dir.
func mountFSType(dir string) (string, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	want := filepath.Clean(dir)
	fstype, found := "", false
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 10 {
			continue
		}
		if unescapeMountinfo(fields[4]) != want {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				fstype, found = fields[i+1], true // the last (topmost) mount wins
				break
			}
		}
	}
	return fstype, found
}

// fuseConnection is the fusectl name of the FUSE connection mounted at dir: the minor
// device number in /proc/self/mountinfo (the major is 0 for FUSE).
func fuseConnection(dir string) (string, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	want, conn := filepath.Clean(dir), ""
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && unescapeMountinfo(fields[4]) == want {
			if _, minor, ok := strings.Cut(fields[2], ":"); ok {
				conn = minor // the last (topmost) mount wins
			}
		}
	}
	return conn, conn != ""
}

// abortFuseConnection aborts a FUSE connection as `echo 1 > .../abort` does, mounting
// fusectl first if it is not.
func abortFuseConnection(conn string) error {
	const ctl = "/sys/fs/fuse/connections"
	abort := filepath.Join(ctl, conn, "abort")
	if _, err := os.Stat(abort); err != nil {
		if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount fusectl on %s: %w", ctl, err)
		}
	}
	return os.WriteFile(abort, []byte("1"), 0o200)
}

func isMounted(dir string) bool {
	_, ok := mountFSType(dir)
	return ok
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// waitCond polls cond until it holds or the deadline passes (for conditions that have no event).
func waitCond(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------------------
// Data helpers

// rng returns a deterministic generator seeded from the test name (printed, so a failure can
// be replayed) unless SSEFS_IT_SEED is set.
func rng(t testing.TB) *mrand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SSEFS_IT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err == nil {
			seed = v
		}
	}
	t.Logf("random seed %d (set SSEFS_IT_SEED to replay)", seed)
	return mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func randBytes(r *mrand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// assertContent fails unless path holds exactly want (reporting the first differing offset).
func assertContent(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
		return
	}
	assertBytes(t, path, got, want)
}

func assertBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	n := min(len(got), len(want))
	off := n
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			off = i
			break
		}
	}
	t.Errorf("%s: content differs: got %d bytes (sha256 %.16s), want %d bytes (sha256 %.16s); first difference at offset %d (chunk %d): got %s want %s",
		what, len(got), sha(got), len(want), sha(want), off, off/ChunkSize, around(got, off), around(want, off))
}

func around(b []byte, off int) string {
	if off >= len(b) {
		return "<EOF>"
	}
	end := min(len(b), off+16)
	return hex.EncodeToString(b[off:end])
}

// wantErrno fails unless err is one of the errnos (errors.Is).
func wantErrno(t testing.TB, err error, what string, want ...syscall.Errno) {
	t.Helper()
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = unix.ErrnoName(w)
	}
	t.Errorf("%s: got error %v, want %s", what, err, strings.Join(names, " or "))
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func check(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func lstat(t testing.TB, path string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return &st
}

// dropPageCache asks the kernel to drop path's clean cached pages, so the next read goes to
// ssefs rather than the page cache.
func dropPageCache(t testing.TB, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Errorf("fsync %s: %v", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Errorf("fadvise DONTNEED %s: %v", path, err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// runTool runs an external tool and fails the test with its output if it fails.
func runTool(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/test.sh installs it): %v", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ---------------------------------------------------------------------------------------
// Helper subprocess: the test binary re-executed with helperEnv set. Used where a second
// process is needed (POSIX record locks are per process).

const helperEnv = "SSEFS_IT_HELPER"

func runHelper(kind string, args []string) int {
	switch kind {
	case "locks":
		return helperLocks(args)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", kind)
		return 2
	}
}

// runHelperProc runs the helper kind with args and returns its stdout lines.
func runHelperProc(t testing.TB, kind string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+kind)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s %q: %v; stderr:\n%s", kind, args, err, stderr.String())
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

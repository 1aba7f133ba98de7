package proctest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// newSupervisor returns a supervisor with short timeouts and a log in a temporary directory,
// and stops whatever it runs when the test ends.
func newSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	s := &Supervisor{
		Name: "Toy", Tag: "proctest", LogFile: filepath.Join(t.TempDir(), "toy.log"),
		ReadyTimeout: 30 * time.Second, PollMin: time.Millisecond, PollMax: 20 * time.Millisecond,
		StopTimeout: 30 * time.Second,
	}
	t.Cleanup(func() { s.Stop(syscall.SIGKILL) })
	return s
}

// sh makes a prepare function that runs script with /bin/sh.
func sh(script string) func() (*exec.Cmd, error) {
	return func() (*exec.Cmd, error) { return exec.Command("/bin/sh", "-c", script), nil }
}

// fileReady is a probe that succeeds once the child has created file.
func fileReady(file string) func(context.Context) error {
	return func(context.Context) error {
		_, err := os.Stat(file)
		return err
	}
}

func never(context.Context) error { return errors.New("not yet") }

// A child that exits before it is ready ends the wait at once (not after ReadyTimeout),
// with its exit status in the error and its output in the log.
func TestExitBeforeReady(t *testing.T) {
	s := newSupervisor(t)
	s.ReadyTimeout = time.Hour // a wait for the timeout would hang the test
	err := s.Start(sh("echo cannot open the keystore >&2; exit 3"), never, func() { t.Error("newPort called without an address in use") })
	if err == nil {
		t.Fatal("Start succeeded")
	}
	if !strings.Contains(err.Error(), "Toy exited before it was ready: exit status 3") {
		t.Errorf("error %q", err)
	}
	if errors.Is(err, ErrAddrInUse) {
		t.Errorf("error %q is ErrAddrInUse", err)
	}
	tail := s.LogTail(10)
	if !strings.Contains(tail, "cannot open the keystore") || !strings.Contains(tail, "--- proctest: /bin/sh -c echo cannot open") {
		t.Errorf("log tail:\n%s", tail)
	}
	if s.Running() {
		t.Error("Running after the child exited")
	}
	if _, ok := s.Pid(); ok {
		t.Error("a Pid after the child exited")
	}
}

// "address already in use" in the log of a run that exits makes Start pick another port
// and try again, until a run starts; up to 5 times; and never once a run has started,
// since a restart must keep its address.
func TestAddressInUse(t *testing.T) {
	dir := t.TempDir()
	readyFile := filepath.Join(dir, "ready")
	const inUse = "echo 'listen tcp 127.0.0.1:9: bind: address already in use' >&2; exit 1"

	s := newSupervisor(t)
	port, runs := 0, 0
	prepare := func() (*exec.Cmd, error) {
		runs++
		if port < 2 { // the first two ports are taken
			return sh(inUse)()
		}
		return sh(fmt.Sprintf("touch %s; exec sleep 600", readyFile))()
	}
	if err := s.Start(prepare, fileReady(readyFile), func() { port++ }); err != nil {
		t.Fatalf("Start: %v\n%s", err, s.LogTail(20))
	}
	if port != 2 || runs != 3 {
		t.Errorf("started on port %d after %d runs, want port 2 after 3", port, runs)
	}
	if !s.Running() {
		t.Error("not Running after Start")
	}

	// A restart whose address is taken fails: its clients know that address.
	s.Stop(syscall.SIGTERM)
	err := s.Start(sh(inUse), never, func() { t.Error("newPort called on a restart") })
	if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), "Toy exited (exit status 1)") {
		t.Errorf("restart on a taken address: %v", err)
	}

	// Only the log of this run counts: the log file now says "address already in use"
	// twice from earlier runs, and this run says something else.
	err = s.Start(sh("echo bad config; exit 2"), never, nil)
	if err == nil || errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), "exit status 2") {
		t.Errorf("a run that failed otherwise: %v", err)
	}
}

// On a first start, a port that stays taken is given up after 5 new ports.
func TestAddressInUseGivesUp(t *testing.T) {
	s := newSupervisor(t)
	newPorts := 0
	err := s.Start(sh("echo 'bind: address already in use'; exit 1"), never, func() { newPorts++ })
	if !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("error %v, want ErrAddrInUse", err)
	}
	if newPorts != 5 {
		t.Errorf("%d new ports, want 5", newPorts)
	}
}

// A child that ignores SIGTERM is killed StopTimeout after it; one that honours it is not
// waited for.
func TestStop(t *testing.T) {
	dir := t.TempDir()

	s := newSupervisor(t)
	ready := filepath.Join(dir, "ready1")
	// The ignored disposition survives exec: sleep ignores SIGTERM too.
	if err := s.Start(sh(fmt.Sprintf("trap '' TERM; touch %s; exec sleep 600", ready)), fileReady(ready), nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	s.StopTimeout = 200 * time.Millisecond
	start := time.Now()
	err := s.Stop(syscall.SIGTERM)
	if took := time.Since(start); took < s.StopTimeout {
		t.Errorf("Stop returned after %v, before its timeout %v", took, s.StopTimeout)
	}
	if err == nil || err.Error() != "signal: killed" {
		t.Errorf("a child that ignores SIGTERM ended with %v, want signal: killed", err)
	}
	if s.Running() {
		t.Error("Running after Stop")
	}
	if err := s.Stop(syscall.SIGTERM); err != nil {
		t.Errorf("Stop of a stopped server: %v", err)
	}

	s2 := newSupervisor(t) // StopTimeout 30s: the test would take that long if Stop waited
	ready = filepath.Join(dir, "ready2")
	if err := s2.Start(sh(fmt.Sprintf("touch %s; exec sleep 600", ready)), fileReady(ready), nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := s2.Stop(syscall.SIGTERM); err == nil || err.Error() != "signal: terminated" {
		t.Errorf("a child that honours SIGTERM ended with %v, want signal: terminated", err)
	}
}

// A server that never gets ready is stopped after ReadyTimeout, and the error says what the
// probe said last. While it runs, a second Start is refused.
func TestNotReady(t *testing.T) {
	s := newSupervisor(t)
	s.ReadyTimeout = 300 * time.Millisecond
	probes := 0
	probe := func(ctx context.Context) error {
		probes++
		if probes == 3 {
			// Start holds no lock while it probes: a concurrent Start must see the
			// running server and refuse.
			if err := s.Start(sh("exit 0"), never, nil); err == nil || err.Error() != "already running" {
				t.Errorf("a second Start while running: %v", err)
			}
		}
		return fmt.Errorf("probe %d: connection refused", probes)
	}
	err := s.Start(sh("exec sleep 600"), probe, nil)
	if err == nil || !strings.Contains(err.Error(), "Toy was not ready within 0.3s: probe ") ||
		!strings.HasSuffix(err.Error(), fmt.Sprintf("probe %d: connection refused", probes)) {
		t.Errorf("error %v after %d probes", err, probes)
	}
	if probes < 3 {
		t.Errorf("%d probes in %v", probes, s.ReadyTimeout)
	}
	if s.Running() {
		t.Error("still Running after the ready timeout")
	}
}

// A server with its own words for a taken port (MinIO: "Specified port is already in use")
// is retried on them; the default phrase then no longer counts.
func TestAddrInUsePhrases(t *testing.T) {
	s := newSupervisor(t)
	s.AddrInUse = []string{"port is already in use"}
	newPorts := 0
	err := s.Start(sh("echo 'FATAL Unable to start the server: Specified port is already in use'; exit 1"), never, func() { newPorts++ })
	if !errors.Is(err, ErrAddrInUse) || newPorts != 5 {
		t.Errorf("own phrase: %v after %d new ports", err, newPorts)
	}
	err = s.Start(sh("echo 'bind: address already in use'; exit 1"), never, func() { t.Error("newPort called on a phrase not configured") })
	if err == nil || errors.Is(err, ErrAddrInUse) {
		t.Errorf("default phrase with AddrInUse set: %v", err)
	}
}

// HTTPReady succeeds on 200 only, and says what the server answered otherwise.
func TestHTTPReady(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := HTTPReady(ctx, srv.Client(), srv.URL+"/health"); err == nil || err.Error() != "/health answered 503 Service Unavailable" {
		t.Errorf("503: %v", err)
	}
	status.Store(http.StatusOK)
	if err := HTTPReady(ctx, srv.Client(), srv.URL+"/health"); err != nil {
		t.Errorf("200: %v", err)
	}
	if err := HTTPReady(ctx, srv.Client(), srv.URL+"/other"); err == nil {
		t.Error("404 counted as ready")
	}
	srv.Close()
	if err := HTTPReady(ctx, srv.Client(), srv.URL+"/health"); err == nil {
		t.Error("a closed server counted as ready")
	}
}

func TestFreeAddr(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Errorf("FreeAddr %q", addr)
	}
}

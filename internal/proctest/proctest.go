// Package proctest supervises an external server process that a test helper starts
// (internal/miniotest runs MinIO, internal/kestest runs KES). It is a test helper: only
// test code and other internal/ test helpers may import it, never cmd/ssefs
// (integration/imports_test.go checks).
//
// A Supervisor runs one server at a time: it starts the command with its output appended
// to a log file, polls the caller's readiness probe until it succeeds, stops waiting as soon
// as the process exits, picks another port when the server could not bind its own (on the
// first start only: a restart must keep the address clients know), and stops it (a signal,
// SIGKILL after a timeout). What the server is, how it is configured and how to tell that
// it is ready stays with the caller.
package proctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrAddrInUse is in the error of a start whose server exited saying that its address is
// in use (see Supervisor.AddrInUse): another process took the port between FreeAddr and the
// server's bind.
var ErrAddrInUse = errors.New("address already in use")

// addrInUse is what Go's net package says (syscall.EADDRINUSE), which most servers pass on.
var addrInUse = []string{"address already in use"}

// startRetries is how many times Start picks another port after ErrAddrInUse.
const startRetries = 5

// Supervisor starts and stops one server process, again and again. Set the fields before
// the first Start and do not change them after.
type Supervisor struct {
	// Name names the server in errors ("MinIO exited before it was ready").
	Name string
	// Tag starts the line written to LogFile before each run ("--- miniotest: ...").
	Tag string
	// LogFile collects the server's stdout and stderr, every run appended.
	LogFile string
	// ReadyTimeout bounds the wait for the readiness probe; the server is stopped after it.
	ReadyTimeout time.Duration
	// PollMin and PollMax bound the delay between probes, which doubles from PollMin.
	PollMin, PollMax time.Duration
	// StopTimeout is how long Stop waits after its signal before it sends SIGKILL.
	StopTimeout time.Duration
	// AddrInUse are the phrases with which the server's log says it could not bind its
	// address; nil means "address already in use".
	AddrInUse []string

	mu       sync.Mutex
	proc     *process // nil when not running
	portUsed bool     // a start has succeeded: the address must stay
}

// process is one run of the server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	err    error         // cmd's exit status, valid once exited is closed
}

// Start starts the server and waits until ready returns nil. prepare makes the command for
// this run (and may write the server's configuration first); it runs with the supervisor's
// lock held, so a concurrent Start cannot start a second server. Start sets the command's
// output and makes the server die with the test binary; the caller sets Dir and Env.
//
// When the server exits before it is ready and its log (of this run) says the address is
// in use, and no start has succeeded before, Start calls newPort (which must give prepare a
// new address) and tries again, up to 5 times. A nil newPort means no retry. The error
// does not include the log: see LogTail.
func (s *Supervisor) Start(prepare func() (*exec.Cmd, error), ready func(context.Context) error, newPort func()) error {
	for attempt := 0; ; attempt++ {
		err := s.start(prepare, ready)
		if err == nil {
			s.mu.Lock()
			s.portUsed = true
			s.mu.Unlock()
			return nil
		}
		s.mu.Lock()
		retry := newPort != nil && !s.portUsed && attempt < startRetries && errors.Is(err, ErrAddrInUse)
		s.mu.Unlock()
		if !retry {
			return err
		}
		newPort()
	}
}

func (s *Supervisor) start(prepare func() (*exec.Cmd, error), ready func(context.Context) error) error {
	s.mu.Lock()
	if s.proc != nil {
		s.mu.Unlock()
		return errors.New("already running")
	}
	cmd, err := prepare()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.mu.Unlock()
		return err // *PathError: names the file
	}
	fmt.Fprintf(logf, "\n--- %s: %s (%s)\n", s.Tag, strings.Join(cmd.Args, " "), time.Now().Format(time.RFC3339Nano))
	// Only this run's lines may say "address already in use": an earlier run's must not
	// turn this run's failure into a retry.
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, so does the server (Linux).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	logf.Close() // the child has its own descriptor
	if err != nil {
		s.mu.Unlock()
		return err // names the binary
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc = p
	s.mu.Unlock()

	// Poll the probe, and stop waiting at once when the process exits.
	ctx, cancel := context.WithTimeout(context.Background(), s.ReadyTimeout)
	defer cancel()
	var last error
	for delay := s.PollMin; ; delay = min(2*delay, s.PollMax) {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-p.exited:
			s.mu.Lock()
			if s.proc == p {
				s.proc = nil
			}
			s.mu.Unlock()
			if log, _ := readFrom(s.LogFile, logStart); s.saysAddrInUse(log) {
				return fmt.Errorf("%s exited (%v): %w", s.Name, p.err, ErrAddrInUse)
			}
			return fmt.Errorf("%s exited before it was ready: %v", s.Name, p.err)
		case <-ctx.Done():
			s.Stop(syscall.SIGTERM)
			return fmt.Errorf("%s was not ready within %gs: %v", s.Name, s.ReadyTimeout.Seconds(), last)
		case <-time.After(delay):
		}
	}
}

func (s *Supervisor) saysAddrInUse(log string) bool {
	phrases := s.AddrInUse
	if phrases == nil {
		phrases = addrInUse
	}
	for _, ph := range phrases {
		if strings.Contains(log, ph) {
			return true
		}
	}
	return false
}

// Stop sends sig to the server, SIGKILL if it has not exited StopTimeout later, and waits
// for it to exit. It returns how the process ended (nil if it was not running).
func (s *Supervisor) Stop(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(s.StopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
	return p.err
}

// Running reports whether the server process is running.
func (s *Supervisor) Running() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid returns the process ID of the server, if one was started and not stopped.
func (s *Supervisor) Pid() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0, false
	}
	return s.proc.cmd.Process.Pid, true
}

// LogTail returns the last n lines of the log.
func (s *Supervisor) LogTail(n int) string { return LogTail(s.LogFile, n) }

// LogTail returns the last n lines of file, or why there are none.
func LogTail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readFrom(file string, off int64) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	if off < 0 || off > int64(len(b)) {
		off = 0
	}
	return string(b[off:]), nil
}

// HTTPReady is the body of an HTTP readiness probe for Start: nil if GET url with client
// answers 200 OK.
func HTTPReady(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body) // so that the connection is reused
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", req.URL.Path, resp.Status)
	}
	return nil
}

// FreeAddr returns 127.0.0.1:PORT with a port that was free a moment ago. Someone else may
// take it before the server binds it: Start's newPort is for that.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

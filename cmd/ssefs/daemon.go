package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// `ssefs mount --daemon` starts ssefs again, in the background, and waits for it on a
// pipe: the background process writes daemonReadyLine on it once the mount is ready,
// after it has let go of this process's stdout and stderr. Any other end (an error, which
// it prints on the shared stderr first, or a crash) closes the pipe without that line.
// So the exit code says whether the mount is there, as mount(8) expects of a helper, and
// nothing polls.
//
// The background process learns the pipe's descriptor, and that of the --log-file opened
// here (so a bad path fails before anything starts), from these variables.
const (
	daemonReadyEnv  = "SSEFS_DAEMON_READY_FD"
	daemonLogEnv    = "SSEFS_DAEMON_LOG_FD"
	daemonReadyLine = "ready\n"
)

// daemonFlags are --daemon and --log-file of 'ssefs mount', and, in the background
// process, what it reports on.
type daemonFlags struct {
	enabled bool
	logFile string

	ready *os.File // the pipe to the waiting parent; nil once reported, or in the foreground
	log   *os.File // the --log-file the parent opened
}

func (d *daemonFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&d.enabled, "daemon", false, "go to the background once the mount is ready; exit 0 when it is mounted, 1 (with the reason) when not")
	f.StringVar(&d.logFile, "log-file", "", "with --daemon: append the log to this file (mode 0600) once in the background (default: the journal when systemd started ssefs, else nowhere)")
}

func (d *daemonFlags) check() error {
	if d.logFile != "" && !d.enabled {
		return usageError{"--log-file needs --daemon: in the foreground ssefs logs to stderr"}
	}
	return nil
}

// background does --daemon's part before the mount. In the process the user started, it
// starts ssefs again in the background, waits until that one has mounted or failed, and
// returns done with the outcome. In the background process it takes the pipe to report
// on, and the mount goes ahead (done is false).
func (d *daemonFlags) background(args []string, stdout, stderr io.Writer) (done bool, err error) {
	if !d.enabled {
		return false, nil
	}
	if os.Getenv(daemonReadyEnv) == "" {
		return true, d.runParent(args, stdout, stderr)
	}
	if err := d.takeOver(); err != nil {
		return true, err
	}
	return false, nil
}

// daemonCommand is the background process: this binary's 'ssefs mount' with the same
// arguments (the tests put a stand-in here).
var daemonCommand = func(args []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--daemon: cannot find the ssefs executable to start: %w", err)
	}
	return exec.Command(exe, append([]string{"mount"}, args...)...), nil
}

func (d *daemonFlags) runParent(args []string, stdout, stderr io.Writer) error {
	cmd, err := daemonCommand(args)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("--daemon: %w", err)
	}
	defer r.Close()
	// ExtraFiles[i] is descriptor 3+i in the child.
	files := []*os.File{w}
	env := append(cmd.Environ(), daemonReadyEnv+"=3")
	if d.logFile != "" {
		lf, err := os.OpenFile(d.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			w.Close()
			return fmt.Errorf("--log-file: %w", err)
		}
		defer lf.Close()
		files = append(files, lf)
		env = append(env, daemonLogEnv+"=4")
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = files
	// Its own session: no controlling terminal, so closing the terminal or Ctrl-C there
	// does not reach it once it is in the background.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	// A signal while it starts stops it too: the user gave up on this mount.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	err = cmd.Start()
	w.Close() // the child's copy is the only writer left: its exit ends the read below
	if err != nil {
		return fmt.Errorf("--daemon: starting %s: %w", cmd.Path, err)
	}
	reported := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		reported <- line == daemonReadyLine
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var interrupted os.Signal
	for {
		select {
		case ready := <-reported:
			if ready && interrupted == nil {
				return nil // it runs on; nothing here waits for it
			}
			reported = nil // the exit tells the rest
		case sig := <-signals:
			if interrupted == nil {
				interrupted = sig
				fmt.Fprintf(stderr, "ssefs: %v: stopping the background ssefs (pid %d)\n", sig, cmd.Process.Pid)
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case err := <-exited:
			if interrupted != nil {
				return fmt.Errorf("%v before the mount was ready; the background ssefs has stopped", interrupted)
			}
			// It may have reported just before exiting (someone unmounted at once).
			if reported != nil && <-reported {
				return nil
			}
			return backgroundFailure(err)
		}
	}
}

// backgroundFailure is the error of a background ssefs that ended without mounting.
func backgroundFailure(err error) error {
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("the background ssefs died of signal %d (%v) before the mount was ready", int(ws.Signal()), ws.Signal())
		}
		// It printed why on the stderr it shares with this process.
		return reportedError{fmt.Sprintf("the background ssefs exited with status %d", ee.ExitCode())}
	case err != nil:
		return fmt.Errorf("the background ssefs: %w", err)
	default:
		return errors.New("the background ssefs exited without mounting")
	}
}

// takeOver, in the background process, takes the descriptors the parent passed.
func (d *daemonFlags) takeOver() error {
	readyFD, logFD := os.Getenv(daemonReadyEnv), os.Getenv(daemonLogEnv)
	// Nothing this process starts may mistake itself for the background process.
	os.Unsetenv(daemonReadyEnv)
	os.Unsetenv(daemonLogEnv)
	var err error
	if d.ready, err = inheritedFile(daemonReadyEnv, readyFD); err != nil {
		return err
	}
	if logFD != "" {
		if d.log, err = inheritedFile(daemonLogEnv, logFD); err != nil {
			return err
		}
	}
	return nil
}

func inheritedFile(env, val string) (*os.File, error) {
	fd, err := strconv.Atoi(val)
	if err == nil && fd > 2 {
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
	} else if err == nil {
		err = errors.New("not a descriptor ssefs passes")
	}
	if err != nil {
		return nil, fmt.Errorf("%s=%q (set by 'ssefs mount --daemon' for its background process): %w", env, val, err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), env), nil
}

// announceReady is called once the mount, and the S3 API if any, are up. It tells
// systemd; in the background process it lets go of the parent's terminal and tells the
// waiting parent.
func (d *daemonFlags) announceReady(mountpoint string, log *slog.Logger) {
	notifyReady(mountpoint, log)
	if d.ready == nil {
		return
	}
	if err := d.detach(); err != nil {
		// The mount works; only the parent's terminal (or pipe) stays held.
		log.Warn("--daemon: cannot let go of stdout and stderr", "err", err)
	}
	fmt.Fprintf(os.Stderr, "ssefs: serving %s in the background (pid %d)\n", mountpoint, os.Getpid())
	if _, err := d.ready.WriteString(daemonReadyLine); err != nil {
		log.Warn("--daemon: cannot report the mount to the waiting ssefs", "err", err)
	}
	d.ready.Close()
	d.ready = nil
	if d.log != nil {
		d.log.Close() // now on descriptors 1 and 2
		d.log = nil
	}
}

// detach points stdout and stderr, which were the parent's, at the log: the --log-file,
// else the journal when systemd connected them to it (as for the mount(8) that a .mount
// unit runs), else /dev/null. The descriptors themselves are replaced, so everything
// that writes to them (slog, a panic, the race detector) follows.
func (d *daemonFlags) detach() error {
	target := d.log
	if target == nil {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer null.Close()
		target = null
	}
	for _, fd := range []int{1, 2} {
		if d.log == nil && isJournal(fd) {
			continue
		}
		if err := unix.Dup3(int(target.Fd()), fd, 0); err != nil {
			return fmt.Errorf("descriptor %d: %w", fd, err)
		}
	}
	return nil
}

// isJournal reports whether fd is the journal stream systemd gave this process: it
// names it in $JOURNAL_STREAM as DEVICE:INODE (systemd.exec(5)).
func isJournal(fd int) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	return strconv.FormatUint(st.Dev, 10) == dev && strconv.FormatUint(st.Ino, 10) == ino
}

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The background process of these tests is this test binary running TestDaemonStandIn,
// which plays the part of 'ssefs mount' in the mode SSEFS_TEST_DAEMON_MODE names.
const (
	standInModeEnv = "SSEFS_TEST_DAEMON_MODE"
	standInFIFOEnv = "SSEFS_TEST_DAEMON_FIFO" // opened for writing once it is done
)

func TestDaemonStandIn(t *testing.T) {
	mode := os.Getenv(standInModeEnv)
	if mode == "" {
		t.Skip("the background process of the TestDaemon* tests, run by them")
	}
	fmt.Fprintln(os.Stderr, "before-ready")
	switch mode {
	case "ready":
		d := daemonFlags{enabled: true}
		if done, err := d.background(nil, os.Stdout, os.Stderr); done || err != nil {
			fmt.Fprintf(os.Stderr, "stand-in: background: done %v, %v\n", done, err)
			os.Exit(3)
		}
		d.announceReady("/mnt/standin", slog.New(slog.NewTextHandler(os.Stderr, nil)))
		fmt.Fprintln(os.Stderr, "after-ready")
		fmt.Fprintln(os.Stdout, "stdout-after-ready")
		if fifo := os.Getenv(standInFIFOEnv); fifo != "" {
			if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
		}
		os.Exit(0)
	case "fail":
		fmt.Fprintln(os.Stderr, "ssefs: mountpoint /mnt/standin is busy: something is already mounted there")
		os.Exit(1)
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "exit0":
		os.Exit(0)
	}
	os.Exit(4)
}

// standIn makes --daemon start TestDaemonStandIn in mode, and returns the FIFO it opens
// once it has finished after reporting ready.
func standIn(t *testing.T, mode string, env ...string) (fifo string) {
	t.Helper()
	fifo = filepath.Join(t.TempDir(), "done")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	old := daemonCommand
	t.Cleanup(func() {
		daemonCommand = old
		// A stand-in that a failed test never waited for is not left blocked on the FIFO.
		if f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	daemonCommand = func(args []string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDaemonStandIn$", "-test.count=1")
		cmd.Env = append(os.Environ(), standInModeEnv+"="+mode, standInFIFOEnv+"="+fifo)
		cmd.Env = append(cmd.Env, env...)
		return cmd, nil
	}
	return fifo
}

// waitStandIn waits until the stand-in has written everything after its report.
func waitStandIn(t *testing.T, fifo string) {
	t.Helper()
	f, err := os.Open(fifo) // returns once the stand-in opens it for writing
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, f) // EOF: it closed it
	f.Close()
}

func tempOutput(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDaemonReadyDetachesIntoTheLogFile(t *testing.T) {
	fifo := standIn(t, "ready", "JOURNAL_STREAM=")
	stdout, stderr := tempOutput(t, "stdout"), tempOutput(t, "stderr")
	logFile := filepath.Join(t.TempDir(), "ssefs.log")
	d := daemonFlags{enabled: true, logFile: logFile}
	done, err := d.background([]string{"/mnt/standin"}, stdout, stderr)
	if !done || err != nil {
		t.Fatalf("background: done %v, err %v; want done, nil (it reported ready)", done, err)
	}
	waitStandIn(t, fifo)

	parentErr := readAll(t, stderr.Name())
	if !strings.Contains(parentErr, "before-ready") {
		t.Errorf("what it printed before the mount was ready must reach the caller's stderr; got %q", parentErr)
	}
	if strings.Contains(parentErr, "after-ready") || strings.Contains(readAll(t, stdout.Name()), "after-ready") {
		t.Errorf("it kept writing to the caller's stdout/stderr after it detached")
	}
	log := readAll(t, logFile)
	for _, want := range []string{"serving /mnt/standin in the background (pid ", "after-ready\n", "stdout-after-ready\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log file lacks %q; it holds %q", want, log)
		}
	}
	if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode: %v, %v; want 0600", st.Mode(), err)
	}
}

func TestDaemonWithoutLogFileDetachesToNowhere(t *testing.T) {
	fifo := standIn(t, "ready", "JOURNAL_STREAM=")
	stderr := tempOutput(t, "stderr")
	d := daemonFlags{enabled: true}
	if done, err := d.background(nil, stderr, stderr); !done || err != nil {
		t.Fatalf("background: done %v, err %v", done, err)
	}
	waitStandIn(t, fifo)
	if got := readAll(t, stderr.Name()); !strings.Contains(got, "before-ready") || strings.Contains(got, "after-ready") {
		t.Errorf("caller's stderr: %q; want before-ready only", got)
	}
}

// Started by systemd (a .mount unit runs mount(8), which runs the helper), stderr is the
// journal: it stays the log.
func TestDaemonKeepsTheJournal(t *testing.T) {
	stderr := tempOutput(t, "journal")
	var st unix.Stat_t
	if err := unix.Fstat(int(stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	fifo := standIn(t, "ready", fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	d := daemonFlags{enabled: true}
	if done, err := d.background(nil, stderr, stderr); !done || err != nil {
		t.Fatalf("background: done %v, err %v", done, err)
	}
	waitStandIn(t, fifo)
	got := readAll(t, stderr.Name())
	for _, want := range []string{"before-ready", "serving /mnt/standin in the background", "after-ready", "stdout-after-ready"} {
		if !strings.Contains(got, want) {
			t.Errorf("journal stand-in lacks %q: %q", want, got)
		}
	}
}

func TestDaemonFailures(t *testing.T) {
	for _, c := range []struct {
		mode, want string
		reported   bool // the stand-in printed the reason itself
	}{
		{"fail", "the background ssefs exited with status 1", true},
		{"kill", "the background ssefs died of signal 9 (killed) before the mount was ready", false},
		{"exit0", "the background ssefs exited without mounting", false},
	} {
		t.Run(c.mode, func(t *testing.T) {
			standIn(t, c.mode)
			stderr := tempOutput(t, "stderr")
			d := daemonFlags{enabled: true}
			done, err := d.background(nil, stderr, stderr)
			if !done || err == nil || err.Error() != c.want {
				t.Fatalf("background: done %v, err %v; want done, %q", done, err, c.want)
			}
			var reported reportedError
			if errors.As(err, &reported) != c.reported {
				t.Errorf("reportedError: %v, want %v", !c.reported, c.reported)
			}
			if code := exitCode(err, io.Discard); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if c.mode == "fail" && !strings.Contains(readAll(t, stderr.Name()), "ssefs: mountpoint /mnt/standin is busy") {
				t.Errorf("the background process's reason did not reach stderr")
			}
		})
	}
}

func TestDaemonBadLogFile(t *testing.T) {
	standIn(t, "exit0")
	d := daemonFlags{enabled: true, logFile: filepath.Join(t.TempDir(), "no", "such", "dir", "log")}
	done, err := d.background(nil, io.Discard, io.Discard)
	if !done || err == nil || !strings.Contains(err.Error(), "--log-file") {
		t.Fatalf("done %v, err %v; want an error naming --log-file", done, err)
	}
}

func TestDaemonTakeOverRefusesStrayDescriptors(t *testing.T) {
	for _, v := range []string{"1", "abc", "987"} {
		t.Setenv(daemonReadyEnv, v)
		d := daemonFlags{enabled: true}
		done, err := d.background(nil, io.Discard, io.Discard)
		if !done || err == nil || !strings.Contains(err.Error(), daemonReadyEnv) {
			t.Errorf("%s=%s: done %v, err %v; want an error naming the variable", daemonReadyEnv, v, done, err)
		}
		if os.Getenv(daemonReadyEnv) != "" {
			t.Errorf("%s stays set", daemonReadyEnv)
		}
	}
}

func TestLogFileNeedsDaemon(t *testing.T) {
	_, _, err := parseMountFlags([]string{"--log-file", "/tmp/x.log", "/mnt"}, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--log-file needs --daemon") {
		t.Errorf("got %v", err)
	}
	if _, _, err := parseMountFlags([]string{"--daemon", "--log-file", "/tmp/x.log", "/mnt"}, io.Discard); err != nil {
		t.Errorf("--daemon --log-file: %v", err)
	}
}

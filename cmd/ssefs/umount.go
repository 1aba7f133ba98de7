package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

const umountUsage = `Usage: ssefs umount [--lazy] [--timeout D] MOUNTPOINT

Unmounts an ssefs mount, then waits until the ssefs that served it has flushed everything
to the store and exited, so that when it returns the data is on disk and the data
directory is free (for 'ssefs fsck', or a mount elsewhere).

A mount still in use (an open file, a process whose working directory is inside) stays
mounted, and the command says so and fails. --lazy detaches it at once instead: the path
shows the directory underneath again, the processes inside keep their files, and ssefs
flushes and exits when the last of them is closed; then the command does not wait.

Exit status: 0 unmounted and flushed; 1 not unmounted (not mounted, not an ssefs mount,
busy, not permitted), or ssefs still flushing after --timeout; 2 usage.

Examples:
  ssefs umount /mnt/ssefs
  ssefs umount --lazy /mnt/ssefs

Flags:
`

func runUmount(args []string, stdout, stderr io.Writer) error {
	f := pflag.NewFlagSet("umount", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	lazy := f.BoolP("lazy", "l", false, "detach the mount now, even while in use; ssefs finishes when the last user has left")
	timeout := f.Duration("timeout", 5*time.Minute, "how long to wait for ssefs to flush and exit after the unmount (0: no limit)")
	help := f.BoolP("help", "h", false, "show this help")
	if err := f.Parse(args); err != nil {
		return usageError{fmt.Sprintf("umount: %v", err)}
	}
	if *help {
		showHelp(stdout, umountUsage, f)
		return errHelp
	}
	if f.NArg() != 1 {
		return usageError{fmt.Sprintf("umount needs exactly one MOUNTPOINT, got %d arguments (see 'ssefs umount --help')", f.NArg())}
	}
	if *timeout < 0 {
		return usageError{"--timeout must not be negative"}
	}
	mp, err := canonicalMountpoint(f.Arg(0))
	if err != nil {
		return err
	}
	m, found, err := findMount(mp)
	if err == nil && !found {
		// A symlink to a mountpoint is followed, as umount(8) does. Only now: a mountpoint
		// itself is never looked at, as a hung server would hang that.
		if target, lerr := filepath.EvalSymlinks(mp); lerr == nil && target != mp {
			mp = target
			m, found, err = findMount(mp)
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	case !found:
		return fmt.Errorf("%s is not mounted", mp)
	case m.fstype != ssefsFSType:
		return fmt.Errorf("%s is not an ssefs mount (it is %s from %s): use umount(8)", mp, m.fstype, m.source)
	}
	// The mount's source is its data directory; the ssefs serving it holds DATA/lock until
	// it has flushed and closed the store. It is opened before the unmount, so that an
	// exit in between cannot be missed.
	server := openServerLock(m.source)
	defer server.close()

	if err := unmountFUSE(mp, *lazy); err != nil {
		return err
	}
	switch {
	case *lazy:
		fmt.Fprintf(stderr, "ssefs: detached %s; %s flushes and exits once the last file open there is closed\n", mp, server)
		return nil
	case server.file == nil:
		fmt.Fprintf(stderr, "ssefs: unmounted %s\n", mp)
		return nil
	}
	if err := server.wait(*timeout); err != nil {
		return fmt.Errorf("unmounted %s, but %s %w", mp, server, err)
	}
	fmt.Fprintf(stderr, "ssefs: unmounted %s; data directory %s flushed and free\n", mp, server.dir)
	return nil
}

// mountSource is the data directory as the mount table shows it: symlinks resolved, as
// libmount resolves fstab's source before it compares the two.
func mountSource(dir string) string {
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		return p
	}
	return dir
}

// ssefsFSType is the type an ssefs mount has in the mount table (FUSE subtype "ssefs").
const ssefsFSType = "fuse.ssefs"

// canonicalMountpoint is the path as the mount table spells it. Only the parent is
// resolved: the mountpoint itself may be a FUSE mount whose server is gone (every stat
// fails) or hangs (every stat hangs).
func canonicalMountpoint(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", p, err)
	}
	if abs == "/" {
		return abs, nil
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", abs, err)
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}

type mountEntry struct{ source, fstype string }

// findMount returns the topmost mount at mp: the one umount(2) removes.
func findMount(mp string) (mountEntry, bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mountEntry{}, false, err
	}
	defer f.Close()
	return parseMountinfo(f, mp)
}

func parseMountinfo(r io.Reader, mp string) (mountEntry, bool, error) {
	var m mountEntry
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != mp {
			continue
		}
		for i := 5; i+2 < len(fields); i++ {
			if fields[i] == "-" {
				m, found = mountEntry{fstype: fields[i+1], source: unescapeMountinfo(fields[i+2])}, true
				break
			}
		}
	}
	return m, found, sc.Err()
}

// unmountFUSE unmounts mp: umount(2) as root, else through fusermount, which lets a user
// unmount what they mounted.
func unmountFUSE(mp string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	err := unix.Unmount(mp, flags)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%s is busy: a file is open there or a process works inside it (see 'fuser -vm %s'); it stays mounted ('ssefs umount --lazy' detaches it anyway)", mp, mp)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%s is not mounted", mp)
	case errors.Is(err, unix.EPERM) && os.Geteuid() != 0:
		return fusermountUnmount(mp, lazy)
	default:
		return fmt.Errorf("unmounting %s: %w", mp, err)
	}
}

func fusermountUnmount(mp string, lazy bool) error {
	var bin string
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return fmt.Errorf("unmounting %s needs root, or fusermount (Debian package fuse3) for the user who mounted it", mp)
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, append(args, "--", mp)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if strings.Contains(msg, "busy") {
			return fmt.Errorf("%s is busy: a file is open there or a process works inside it (see 'fuser -vm %s'); it stays mounted ('ssefs umount --lazy' detaches it anyway)", mp, mp)
		}
		return fmt.Errorf("unmounting %s: %s: %v: %s", mp, filepath.Base(bin), err, msg)
	}
	return nil
}

// serverLock is DATA/lock of the data directory a mount serves, opened to wait for the
// ssefs holding it.
type serverLock struct {
	dir  string
	pid  string
	file *os.File // nil: not a data directory this process can open
}

func openServerLock(source string) *serverLock {
	s := &serverLock{dir: source}
	if !filepath.IsAbs(source) {
		return s // a mount made before ssefs named its data directory in the mount table
	}
	f, err := os.Open(filepath.Join(source, lockFile))
	if err != nil {
		return s
	}
	if b, err := io.ReadAll(io.LimitReader(f, 32)); err == nil {
		s.pid = strings.TrimSpace(string(b))
	}
	// The holder of the lock must be a FUSE server. When the ssefs of this mount is gone
	// (killed), another process may have taken the directory since, and it is not the one
	// to wait for. Nothing here touches the mount itself: a hung server would hang that.
	if s.pid != "" && !lockHolderServesFUSE(s.pid) {
		f.Close()
		return s
	}
	s.file = f
	return s
}

var lockHolderServesFUSE = hasDevFuse // the unit tests hold locks without serving FUSE

// hasDevFuse reports whether process pid has /dev/fuse open (as the server of a FUSE
// mount has), or whether that cannot be told.
func hasDevFuse(pid string) bool {
	fds, err := os.ReadDir(filepath.Join("/proc", pid, "fd"))
	if errors.Is(err, os.ErrNotExist) {
		return false // no such process: the lock is free, or about to be
	}
	if err != nil {
		return true // not ours to look at: assume the best, the wait is bounded
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc", pid, "fd", fd.Name())); err == nil && target == "/dev/fuse" {
			return true
		}
	}
	return false
}

func (s *serverLock) String() string {
	if s.pid == "" {
		return "the ssefs serving it"
	}
	return "ssefs (pid " + s.pid + ")"
}

// wait returns once the lock is free: the ssefs has closed the store, or exited.
func (s *serverLock) wait(timeout time.Duration) error {
	locked := make(chan error, 1)
	f := s.file
	go func() { locked <- unix.Flock(int(f.Fd()), unix.LOCK_SH) }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-locked:
		if err != nil {
			return fmt.Errorf("could not be waited for: locking %s: %w", filepath.Join(s.dir, lockFile), err)
		}
		return nil
	case <-expired:
		// The flock goes on, on a descriptor that must stay open under it (the goroutine
		// keeps it), until this process exits.
		s.file = nil
		return fmt.Errorf("is still flushing to %s after %s (--timeout); it goes on in the background", s.dir, timeout)
	}
}

func (s *serverLock) close() {
	if s.file != nil {
		s.file.Close() // drops the shared lock too, so the next mount can take the directory
		s.file = nil
	}
}

package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseMountinfoTakesTheTopmostMount(t *testing.T) {
	const mountinfo = `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
100 30 0:50 / /mnt/with\040space rw,nosuid,nodev,relatime shared:60 - fuse.ssefs /srv/data\040dir rw,user_id=0,group_id=0
101 30 0:51 / /mnt/x rw,relatime - tmpfs tmpfs rw
102 101 0:52 / /mnt/x rw,nosuid,nodev,relatime - fuse.ssefs /srv/x rw,user_id=0,group_id=0,default_permissions
`
	for _, c := range []struct {
		mp, source, fstype string
		found              bool
	}{
		{"/mnt/x", "/srv/x", "fuse.ssefs", true},
		{"/mnt/with space", "/srv/data dir", "fuse.ssefs", true},
		{"/proc", "proc", "proc", true},
		{"/mnt", "", "", false},
	} {
		m, found, err := parseMountinfo(strings.NewReader(mountinfo), c.mp)
		if err != nil {
			t.Fatal(err)
		}
		if found != c.found || m.source != c.source || m.fstype != c.fstype {
			t.Errorf("%s: got %+v found=%v, want source %q type %q found=%v", c.mp, m, found, c.source, c.fstype, c.found)
		}
	}
}

func TestUmountRefusesWhatIsNotAnSsefsMount(t *testing.T) {
	dir := t.TempDir()
	procLink := filepath.Join(dir, "proc-link")
	if err := os.Symlink("/proc", procLink); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, dir + " is not mounted"},
		{[]string{"/proc"}, "/proc is not an ssefs mount (it is proc"},
		// A symlink naming a mountpoint is followed, as umount(8) does.
		{[]string{procLink}, "/proc is not an ssefs mount (it is proc"},
	} {
		err := runUmount(c.args, io.Discard, io.Discard)
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			t.Errorf("%q: got %v, want a (non-usage) error", c.args, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q does not say %q", c.args, err, c.want)
		}
	}
	for _, args := range [][]string{{}, {"/a", "/b"}, {"--timeout", "-1s", "/a"}, {"--frob", "/a"}} {
		var ue usageError
		if err := runUmount(args, io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

func TestCanonicalMountpointResolvesTheParent(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(real, "mnt")
	for _, p := range []string{filepath.Join(link, "mnt"), filepath.Join(link, "mnt") + "/", filepath.Join(real, "x", "..", "mnt")} {
		got, err := canonicalMountpoint(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if got != want {
			t.Errorf("%s: got %s, want %s", p, got, want)
		}
	}
}

// The wait for the serving ssefs is the wait for its data directory lock.
func TestServerLockWaitsForTheLock(t *testing.T) {
	old := lockHolderServesFUSE
	t.Cleanup(func() { lockHolderServesFUSE = old })
	lockHolderServesFUSE = func(string) bool { return true }
	dir := t.TempDir()
	held, err := lockDataDir(dir) // as the serving ssefs holds it
	if err != nil {
		t.Fatal(err)
	}
	s := openServerLock(dir)
	if s.file == nil || s.pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock of %s: file %v, pid %q; want it open with pid %d", dir, s.file, s.pid, os.Getpid())
	}
	if got := s.String(); got != "ssefs (pid "+s.pid+")" {
		t.Errorf("String() = %q", got)
	}
	// Held: the wait must not return before its timeout.
	start := time.Now()
	err = s.wait(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still flushing") {
		t.Fatalf("wait on a held lock: %v, want a timeout", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("wait returned after %s, before its timeout", el)
	}
	s.close()

	// Released (the ssefs exits): the wait returns.
	s = openServerLock(dir)
	defer s.close()
	done := make(chan error, 1)
	go func() { done <- s.wait(0) }()
	held.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("wait after the release: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return after the lock was released")
	}
}

func TestServerLockOfAnUnknownSource(t *testing.T) {
	for _, source := range []string{"ssefs", filepath.Join(t.TempDir(), "no-data-dir")} {
		s := openServerLock(source)
		if s.file != nil {
			t.Errorf("%s: opened a lock", source)
		}
		if got := s.String(); got != "the ssefs serving it" {
			t.Errorf("%s: String() = %q", source, got)
		}
		s.close()
	}
}

// A lock held by a process that serves no FUSE mount (the mount's ssefs died and another
// took the directory) is not waited for.
func TestServerLockOfAProcessServingNoMount(t *testing.T) {
	dir := t.TempDir()
	held, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s := openServerLock(dir)
	defer s.close()
	if s.file != nil {
		t.Errorf("the lock of a process without /dev/fuse open is to be waited for")
	}
	if s.pid != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid %q, want %d (for the messages)", s.pid, os.Getpid())
	}
}

func TestHasDevFuse(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	if hasDevFuse(self) {
		t.Errorf("this process has no /dev/fuse open")
	}
	if hasDevFuse("999999999") {
		t.Errorf("a process that does not exist has /dev/fuse open")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Logf("cannot open /dev/fuse (%v): the positive case is covered by the integration tests", err)
		return
	}
	defer f.Close()
	if !hasDevFuse(self) {
		t.Errorf("this process has /dev/fuse open, hasDevFuse says no")
	}
}

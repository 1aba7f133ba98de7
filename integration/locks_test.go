package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// helperLocks is the second process of the lock tests. args: PATH OP... where OP is
//
//	setlk:r|w|u:START:LEN   F_SETLK, prints "ok" or "errno:NAME"
//	getlk:r|w:START:LEN     F_GETLK, prints "unlck" or "lock:r|w:START:LEN:PID"
//	flock:sh|ex             flock(LOCK_NB), prints "ok" or "errno:NAME"
func helperLocks(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: PATH OP...")
		return 2
	}
	f, err := os.OpenFile(args[0], os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	fd := int(f.Fd())
	res := func(err error) string {
		if err == nil {
			return "ok"
		}
		if e, ok := err.(syscall.Errno); ok {
			return "errno:" + unix.ErrnoName(e)
		}
		return "error:" + err.Error()
	}
	for _, op := range args[1:] {
		parts := strings.Split(op, ":")
		switch parts[0] {
		case "setlk", "getlk":
			if len(parts) != 4 {
				fmt.Fprintf(os.Stderr, "bad op %q\n", op)
				return 2
			}
			start, _ := strconv.ParseInt(parts[2], 10, 64)
			length, _ := strconv.ParseInt(parts[3], 10, 64)
			lk := unix.Flock_t{Type: lockType(parts[1]), Whence: 0, Start: start, Len: length}
			if parts[0] == "setlk" {
				fmt.Println(res(unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)))
				continue
			}
			if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk); err != nil {
				fmt.Println(res(err))
				continue
			}
			switch lk.Type {
			case unix.F_UNLCK:
				fmt.Println("unlck")
			case unix.F_RDLCK:
				fmt.Printf("lock:r:%d:%d:%d\n", lk.Start, lk.Len, lk.Pid)
			case unix.F_WRLCK:
				fmt.Printf("lock:w:%d:%d:%d\n", lk.Start, lk.Len, lk.Pid)
			default:
				fmt.Printf("lock:?%d\n", lk.Type)
			}
		case "flock":
			how := unix.LOCK_SH
			if len(parts) > 1 && parts[1] == "ex" {
				how = unix.LOCK_EX
			}
			fmt.Println(res(unix.Flock(fd, how|unix.LOCK_NB)))
		default:
			fmt.Fprintf(os.Stderr, "bad op %q\n", op)
			return 2
		}
	}
	return 0
}

func lockType(s string) int16 {
	switch s {
	case "r":
		return unix.F_RDLCK
	case "w":
		return unix.F_WRLCK
	default:
		return unix.F_UNLCK
	}
}

func setlk(t *testing.T, f *os.File, typ int16, start, length int64) {
	t.Helper()
	lk := unix.Flock_t{Type: typ, Start: start, Len: length}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		t.Fatalf("F_SETLK type %d [%d,+%d): %v", typ, start, length, err)
	}
}

func wantConflict(t *testing.T, what, got string) {
	t.Helper()
	if got != "errno:EAGAIN" && got != "errno:EACCES" {
		t.Errorf("%s from a second process: got %q, want errno:EAGAIN or errno:EACCES (the lock is held by the test process)", what, got)
	}
}

func wantOK(t *testing.T, what, got string) {
	t.Helper()
	if got != "ok" {
		t.Errorf("%s from a second process: got %q, want ok", what, got)
	}
}

// TestFlock: flock(2) between two open file descriptions and two processes.
func TestFlock(t *testing.T) {
	m := StartMount(t, newConfig(t))
	path := m.P("flocked")
	writeFile(t, path, []byte("lock me"), 0o644)

	f1, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err, "open fd1")
	defer f1.Close()
	f2, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err, "open fd2")
	defer f2.Close()

	must(t, unix.Flock(int(f1.Fd()), unix.LOCK_EX|unix.LOCK_NB), "flock(fd1, LOCK_EX|LOCK_NB)")
	wantErrno(t, unix.Flock(int(f2.Fd()), unix.LOCK_EX|unix.LOCK_NB), "flock(fd2, LOCK_EX|LOCK_NB) while fd1 holds LOCK_EX", unix.EWOULDBLOCK)
	wantErrno(t, unix.Flock(int(f2.Fd()), unix.LOCK_SH|unix.LOCK_NB), "flock(fd2, LOCK_SH|LOCK_NB) while fd1 holds LOCK_EX", unix.EWOULDBLOCK)
	out := runHelperProc(t, "locks", path, "flock:ex", "flock:sh")
	if len(out) != 2 {
		t.Fatalf("helper printed %q", out)
	}
	if out[0] != "errno:EAGAIN" { // EWOULDBLOCK == EAGAIN on Linux
		t.Errorf("flock LOCK_EX|LOCK_NB from a second process while the test holds LOCK_EX: got %q, want errno:EAGAIN (EWOULDBLOCK)", out[0])
	}
	if out[1] != "errno:EAGAIN" {
		t.Errorf("flock LOCK_SH|LOCK_NB from a second process while the test holds LOCK_EX: got %q, want errno:EAGAIN (EWOULDBLOCK)", out[1])
	}

	must(t, unix.Flock(int(f1.Fd()), unix.LOCK_UN), "flock(fd1, LOCK_UN)")
	check(t, unix.Flock(int(f2.Fd()), unix.LOCK_SH|unix.LOCK_NB), "flock(fd2, LOCK_SH|LOCK_NB) after fd1 unlocked")
	check(t, unix.Flock(int(f1.Fd()), unix.LOCK_SH|unix.LOCK_NB), "flock(fd1, LOCK_SH|LOCK_NB) beside a shared lock")
	wantErrno(t, unix.Flock(int(f1.Fd()), unix.LOCK_EX|unix.LOCK_NB), "flock(fd1, LOCK_EX|LOCK_NB) while fd2 holds LOCK_SH", unix.EWOULDBLOCK)
	check(t, unix.Flock(int(f2.Fd()), unix.LOCK_UN), "flock(fd2, LOCK_UN)")
	check(t, unix.Flock(int(f1.Fd()), unix.LOCK_UN), "flock(fd1, LOCK_UN)")
	out = runHelperProc(t, "locks", path, "flock:ex")
	wantOK(t, "flock LOCK_EX|LOCK_NB once all locks are released", out[0])
}

// TestPosixLocks: fcntl record locks seen from a second process.
func TestPosixLocks(t *testing.T) {
	m := StartMount(t, newConfig(t))
	path := m.P("records")
	writeFile(t, path, make([]byte, 4096), 0o644)

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err, "open")
	defer f.Close()
	pid := os.Getpid()

	// A write lock on [0,100) held by this process.
	setlk(t, f, unix.F_WRLCK, 0, 100)
	out := runHelperProc(t, "locks", path, "setlk:w:50:10", "getlk:w:50:10", "setlk:w:200:10", "setlk:r:0:1", "setlk:u:200:10")
	if len(out) != 5 {
		t.Fatalf("helper printed %q", out)
	}
	wantConflict(t, "F_SETLK F_WRLCK [50,60) over our F_WRLCK [0,100)", out[0])
	if want := fmt.Sprintf("lock:w:0:100:%d", pid); out[1] != want {
		t.Errorf("F_GETLK [50,60) from a second process: got %q, want %q (our write lock, our pid)", out[1], want)
	}
	wantOK(t, "F_SETLK F_WRLCK [200,210) beside our lock", out[2])
	wantConflict(t, "F_SETLK F_RDLCK [0,1) over our F_WRLCK", out[3])
	wantOK(t, "F_SETLK F_UNLCK", out[4])

	// Downgrade to a read lock: readers may share it, writers may not.
	setlk(t, f, unix.F_RDLCK, 0, 100)
	out = runHelperProc(t, "locks", path, "setlk:r:10:10", "setlk:w:10:10", "getlk:w:10:10")
	if len(out) != 3 {
		t.Fatalf("helper printed %q", out)
	}
	wantOK(t, "F_SETLK F_RDLCK [10,20) beside our F_RDLCK", out[0])
	wantConflict(t, "F_SETLK F_WRLCK [10,20) over our F_RDLCK", out[1])
	if want := fmt.Sprintf("lock:r:0:100:%d", pid); out[2] != want {
		t.Errorf("F_GETLK for a write lock [10,20): got %q, want %q", out[2], want)
	}

	// Released: the second process gets everything.
	setlk(t, f, unix.F_UNLCK, 0, 0)
	out = runHelperProc(t, "locks", path, "getlk:w:0:0", "setlk:w:0:0")
	if len(out) != 2 {
		t.Fatalf("helper printed %q", out)
	}
	if out[0] != "unlck" {
		t.Errorf("F_GETLK after we unlocked everything: got %q, want unlck", out[0])
	}
	wantOK(t, "F_SETLK F_WRLCK whole file after we unlocked", out[1])

	// Closing any fd of a file drops the process's POSIX locks on it (POSIX semantics).
	setlk(t, f, unix.F_WRLCK, 0, 0)
	g, err := os.Open(path)
	must(t, err, "open second fd")
	g.Close()
	out = runHelperProc(t, "locks", path, "setlk:w:0:10")
	wantOK(t, "F_SETLK after the lock holder closed another fd of the same file (POSIX drops its locks)", out[0])

	// The content is untouched by all this.
	assertContent(t, path, make([]byte, 4096))
}

package fuse

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"

	"github.com/ssefs/ssefs/fs"
)

// TestErrnoMapping checks every engine error maps to the errno a local filesystem gives,
// also when wrapped several times over, and that the unknown becomes EIO.
func TestErrnoMapping(t *testing.T) {
	fsys := &filesystem{log: slog.New(slog.DiscardHandler)}
	cases := []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{fs.ErrNotExist, syscall.ENOENT},
		{fs.ErrExist, syscall.EEXIST},
		{fs.ErrNotDir, syscall.ENOTDIR},
		{fs.ErrIsDir, syscall.EISDIR},
		{fs.ErrNotEmpty, syscall.ENOTEMPTY},
		{fs.ErrInvalid, syscall.EINVAL},
		{fs.ErrNameTooLong, syscall.ENAMETOOLONG},
		{fs.ErrAccess, syscall.EACCES},
		{fs.ErrCorrupt, syscall.EIO},
		{fs.ErrUnavailable, syscall.EIO},
		{fs.ErrNotSupported, syscall.EOPNOTSUPP},
		{fs.ErrPermission, syscall.EPERM},
		{fs.ErrCrossBucket, syscall.EXDEV},
		{fs.ErrNoSpace, syscall.ENOSPC},
		{fs.ErrRange, syscall.ERANGE},
		{fs.ErrTooBig, syscall.E2BIG},
		{errors.New("something unexpected"), syscall.EIO},
	}
	for _, c := range cases {
		err := c.err
		if err != nil {
			err = fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err))
		}
		if got := fsys.errno("test", err); got != c.want {
			t.Errorf("%v: errno %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRescueTurnsPanicIntoEIO checks a panicking handler answers EIO instead of
// taking the mount down.
func TestRescueTurnsPanicIntoEIO(t *testing.T) {
	fsys := &filesystem{log: slog.New(slog.DiscardHandler)}
	handler := func() (errno syscall.Errno) {
		defer fsys.rescue(OpGetattr, fsys.start(), &errno)
		var m map[string]int
		m["boom"]++ // a nil-map write panics
		return 0
	}
	if got := handler(); got != syscall.EIO {
		t.Fatalf("errno %v after a panic, want EIO", got)
	}
}

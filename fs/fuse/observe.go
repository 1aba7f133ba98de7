package fuse

import (
	"syscall"
	"time"
)

// Op is a FUSE operation this frontend serves, as an Observer sees it. It is a small
// integer rather than a name so that an observer can keep what it needs per operation in
// an array, and recording an operation costs no map lookup and no allocation.
type Op uint8

// The operations, named as the kernel's FUSE requests are (lower case).
const (
	OpLookup Op = iota
	OpGetattr
	OpSetattr
	OpOpen
	OpCreate
	OpRead
	OpWrite
	OpFlush
	OpFsync
	OpRelease
	OpFallocate
	OpReaddir
	OpMkdir
	OpMknod
	OpSymlink
	OpReadlink
	OpLink
	OpUnlink
	OpRmdir
	OpRename
	OpGetxattr
	OpSetxattr
	OpRemovexattr
	OpListxattr
	OpStatfs
	OpAccess
	// NumOps is the number of operations: Op values are 0 to NumOps-1.
	NumOps
)

var opNames = [NumOps]string{
	OpLookup: "lookup", OpGetattr: "getattr", OpSetattr: "setattr", OpOpen: "open",
	OpCreate: "create", OpRead: "read", OpWrite: "write", OpFlush: "flush", OpFsync: "fsync",
	OpRelease: "release", OpFallocate: "fallocate", OpReaddir: "readdir", OpMkdir: "mkdir",
	OpMknod: "mknod", OpSymlink: "symlink", OpReadlink: "readlink", OpLink: "link",
	OpUnlink: "unlink", OpRmdir: "rmdir", OpRename: "rename", OpGetxattr: "getxattr",
	OpSetxattr: "setxattr", OpRemovexattr: "removexattr", OpListxattr: "listxattr",
	OpStatfs: "statfs", OpAccess: "access",
}

func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "unknown"
}

// Observer is told of every operation the mount served, when it ends, with the errno the
// kernel got (0 for success): metrics hook in here without this package knowing them.
// It is called on the request's goroutine for every request (tens of thousands a second
// for 4 KiB reads), so it must be cheap, must not block, and must be safe for concurrent
// use.
type Observer interface {
	Op(op Op, start time.Time, errno syscall.Errno)
}

// start is when an operation began, for the observer; without one, time is not read.
func (fsys *filesystem) start() time.Time {
	if fsys.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

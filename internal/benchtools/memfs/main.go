// Command memfs mounts an empty go-fuse v2 file system that keeps everything in memory:
// every FUSE request is answered from go-fuse's own inode tree and byte slices,
// with no disk, no crypto and no metadata store behind it.
//
// scripts/bench.sh uses it as the floor of the small-file phases: what one create, stat or
// unlink costs in FUSE round trips alone with the same go-fuse version and the same
// kernel-facing mount options as ssefs and loopbackfs. A file system that does real work in
// its handlers cannot create or delete faster than this on the same machine.
//
// Usage: memfs [-debug] MOUNTPOINT
//
// It prints "memfs: mounted MOUNTPOINT" on stderr once the kernel has the mount, serves in
// the foreground, and unmounts and exits 0 on SIGINT or SIGTERM (or after umount).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssefs/ssefs/internal/benchtools/benchmount"
)

// dir is a directory whose entries are go-fuse's own child list: Lookup, Readdir, Unlink
// and Rmdir need no code here beyond saying yes.
type dir struct {
	fs.Inode
	mu    sync.Mutex
	mtime time.Time
}

var (
	_ fs.NodeCreater   = (*dir)(nil)
	_ fs.NodeMkdirer   = (*dir)(nil)
	_ fs.NodeUnlinker  = (*dir)(nil)
	_ fs.NodeRmdirer   = (*dir)(nil)
	_ fs.NodeGetattrer = (*dir)(nil)
)

func (d *dir) touch() {
	d.mu.Lock()
	d.mtime = time.Now()
	d.mu.Unlock()
}

func (d *dir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2
	out.SetTimes(nil, &d.mtime, &d.mtime)
	return 0
}

// file keeps its content in memory. go-fuse's MemRegularFile would do but for two things
// that make it no floor: each write past the end copies the whole file (1 GiB written in
// 1 MiB writes ran at 40 MB/s), and fsync (fio's end_fsync) gets ENOTSUP.
type file struct {
	fs.Inode
	mu   sync.Mutex
	data []byte
	attr fuse.Attr
}

var (
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
	_ fs.NodeWriter    = (*file)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeSetattrer = (*file)(nil)
	_ fs.NodeFlusher   = (*file)(nil)
	_ fs.NodeFsyncer   = (*file)(nil)
)

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

// resize sets the size, growing the buffer geometrically; what it uncovers reads as zeros.
// Called with f.mu held.
func (f *file) resize(size int) {
	if size <= len(f.data) {
		f.data = f.data[:size]
		return
	}
	if size > cap(f.data) {
		grown := make([]byte, len(f.data), max(size, 2*cap(f.data)))
		copy(grown, f.data)
		f.data = grown
	}
	old := len(f.data)
	f.data = f.data[:size]
	clear(f.data[old:])
}

func (f *file) Write(ctx context.Context, fh fs.FileHandle, p []byte, off int64) (uint32, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := int(off) + len(p); end > len(f.data) {
		f.resize(end)
	}
	copy(f.data[off:], p)
	return uint32(len(p)), 0
}

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	if off < int64(len(f.data)) {
		n = copy(dest, f.data[off:])
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	out.Attr = f.attr
	out.Attr.Size = uint64(len(f.data))
	return 0
}

func (f *file) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size, ok := in.GetSize(); ok {
		f.resize(int(size))
	}
	out.Attr = f.attr
	out.Attr.Size = uint64(len(f.data))
	return 0
}

func (f *file) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

// Fsync has nothing to make durable.
func (f *file) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno { return 0 }

func (d *dir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, nil, 0, syscall.EEXIST
	}
	now := time.Now()
	f := &file{attr: fuse.Attr{Mode: mode &^ syscall.S_IFMT}}
	f.attr.SetTimes(&now, &now, &now)
	child := d.NewPersistentInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG})
	d.AddChild(name, child, false)
	d.touch()
	out.Attr = f.attr
	out.Attr.Mode |= syscall.S_IFREG
	out.Attr.Nlink = 1
	return child, nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (d *dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	sub := &dir{mtime: time.Now()}
	child := d.NewPersistentInode(ctx, sub, fs.StableAttr{Mode: syscall.S_IFDIR})
	d.AddChild(name, child, false)
	d.touch()
	out.Attr.Mode = syscall.S_IFDIR | 0o755
	out.Attr.Nlink = 2
	out.Attr.SetTimes(nil, &sub.mtime, &sub.mtime)
	return child, 0
}

func (d *dir) Unlink(ctx context.Context, name string) syscall.Errno {
	d.touch()
	return 0
}

func (d *dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	child := d.GetChild(name)
	if child != nil && len(child.Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	d.touch()
	return 0
}

func main() {
	debug := flag.Bool("debug", false, "log every FUSE request")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: memfs [-debug] MOUNTPOINT\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	mnt := flag.Arg(0)
	server, err := fs.Mount(mnt, &dir{mtime: time.Now()}, benchmount.Options("memfs", "memfs", *debug))
	if err != nil {
		fmt.Fprintf(os.Stderr, "memfs: mounting at %s: %v\n", mnt, err)
		os.Exit(1)
	}
	benchmount.Serve(server, "memfs", mnt)
}

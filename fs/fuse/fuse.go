// Package fuse is the FUSE frontend: it shows the engine's namespace as a mount. Every
// node calls the engine; errors are mapped to errno here, once.
package fuse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/fs"
)

// Options configure a mount.
type Options struct {
	AllowOther bool
	Debug      bool
	Logger     *slog.Logger
	// RootIno is the engine inode shown as the mount root: fs.RootIno for all buckets,
	// or one bucket's directory.
	RootIno uint64
	// Timeout is how long the kernel may cache entries and attributes. Changes made
	// through this mount are exact, and those made through another frontend of the engine
	// are invalidated (see invalidate); the timeout bounds what nothing invalidates.
	Timeout time.Duration
	// WritebackCache lets the kernel buffer writes in its page cache and send them in
	// large batches, many at once, instead of one request per write(2): small writes
	// then cost a memory copy. Data reaches the engine, and so the S3 view, at close,
	// fsync or the kernel's writeback, as on NFS (close-to-open).
	WritebackCache bool
	// ReadAheadKB, if positive, is set as the mount's kernel readahead: the kernel starts
	// every FUSE mount at 128 KiB, whatever the daemon allows, and then sequential reads
	// come as 128-256 KiB requests, two at a time. Only root may change it; others keep
	// the kernel's.
	ReadAheadKB int
	// Observer, if set, is told of every operation served (metrics).
	Observer Observer
	// Source is the mount's source in /proc/self/mountinfo (what findmnt and df show):
	// the data directory, so that 'mount -a' finds an fstab entry already mounted and
	// 'ssefs umount' finds the process serving it. Empty: "ssefs".
	Source string

	// Hooks for tests of page fills (fill.go): filled is told what each fill stored,
	// fillRead is called between reading a fill's content and storing it.
	filled   func(ino uint64, stored int)
	fillRead func()
}

// Mount mounts the engine at mountpoint and serves it until Unmount. It returns once
// the kernel has the mount.
func Mount(mountpoint string, engine *fs.Engine, opts Options) (*gofuse.Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RootIno == 0 {
		opts.RootIno = fs.RootIno
	}
	timeout := opts.Timeout
	// Names found missing are cached as long as found ones: a create through this mount
	// replaces the kernel's negative entry itself, and one through S3 drops it
	// (invalidate). Without it, every create costs one more LOOKUP round trip.
	negative := timeout
	fsys := &filesystem{engine: engine, log: opts.Logger, nodes: make(map[uint64]*node), obs: opts.Observer, writeback: opts.WritebackCache}
	if !opts.WritebackCache {
		fsys.filler = &filler{jobs: make(chan fillJob, fillQueue), buf: make([]byte, fillSpan), done: opts.filled, read: opts.fillRead}
	}
	root := &node{fsys: fsys}
	source := opts.Source
	if source == "" {
		source = "ssefs"
	}
	mo := gofuse.MountOptions{
		FsName:     source,
		Name:       "ssefs",
		AllowOther: opts.AllowOther,
		Debug:      opts.Debug,
		// As root, mount(2) directly: no fusermount needed. Other users go through
		// fusermount, which holds the privilege to mount.
		DirectMount:       true,
		DirectMountStrict: os.Geteuid() == 0,
		MaxWrite:          1 << 20,
		MaxReadAhead:      1 << 20,
		// Replies are built in memory: splicing them through a pipe costs two more
		// syscalls than one writev, about 3 µs of a 4 KiB read's 15.
		DisableSplice: true,
	}
	if opts.AllowOther || os.Geteuid() != 0 {
		// The kernel checks permissions from mode, uid and gid, as for a local disk.
		// Without allow_other only processes of the mounting user (uid and gid, real,
		// effective and saved) get in at all. That is why a root mount without it goes
		// without: root passes these checks anyway (exec still needs an x bit, which the
		// kernel checks either way), and each check costs a GETATTR of the directory
		// after every create and unlink in it, which invalidate its attributes: a
		// second round trip per unlink. gocryptfs does the same.
		mo.Options = append(mo.Options, "default_permissions")
	}
	// The kernel would ask for security.capability before every write(2) (a round trip
	// of its own, as long as the write) to drop set-ID bits and capabilities itself;
	// with this it asks once per inode and leaves dropping the set-ID bits to us (Write,
	// Setattr), clearing capabilities itself at that first check.
	mo.ExtraCapabilities |= gofuse.CAP_HANDLE_KILLPRIV_V2
	if opts.WritebackCache {
		mo.ExtraCapabilities |= gofuse.CAP_WRITEBACK_CACHE
	}
	server, err := gofs.Mount(mountpoint, root, &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &negative,
		RootStableAttr:  &gofs.StableAttr{Ino: opts.RootIno, Gen: 1},
		// Mode 000 is a real mode here (chmod 000), not "unset".
		NullPermissions: true,
	})
	if err != nil {
		return nil, fmt.Errorf("mounting at %s: %w", mountpoint, err)
	}
	releaseProcs := reserveReaderProcs() // now that go-fuse sized its readers: procs.go
	fsys.register(root)
	watch := engine.WatchExcept(origin) // its own changes: the kernel made them and knows
	go fsys.invalidate(watch)
	stopFills := make(chan struct{})
	if fsys.filler != nil {
		go fsys.filler.run(stopFills)
	}
	go func() { server.Wait(); watch.Close(); close(stopFills); releaseProcs() }()
	if opts.ReadAheadKB > 0 {
		if err := setReadAhead(mountpoint, opts.ReadAheadKB); err != nil {
			opts.Logger.Info("kernel readahead left as it is", "err", err)
		}
	}
	return server, nil
}

// setReadAhead sets the readahead of the mount at dir, in its backing device info.
func setReadAhead(dir string, kb int) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("readahead: %w", err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("readahead: %w", err)
	}
	return nil
}

// origin tags the engine calls this frontend makes, so it can skip its own changes: the
// kernel made them and already knows.
const origin = "fuse"

// invalidate drops the kernel's cached entries, attributes and pages for what changed
// through another frontend (S3), so the mount shows it at once rather than after the
// entry/attr timeouts. It runs on its own goroutine: a notify sent from inside a FUSE
// handler can deadlock with the kernel.
// Each change is marked done once the kernel has dropped what it cached, so that the
// frontend that made it can wait for that (fs.Engine.Settle) before it answers. When
// changes were missed (a burst filled the watcher's channel), everything the kernel may
// cache is dropped: only so can the timeouts be longer than a user would wait.
func (fsys *filesystem) invalidate(w *fs.Watcher) {
	for {
		select {
		case c, ok := <-w.C:
			if !ok {
				return
			}
			if c.Name != "" {
				if parent := fsys.node(c.Parent); parent != nil {
					parent.NotifyEntry(c.Name)
				}
			}
			if n := fsys.node(c.Ino); n != nil {
				n.changedElsewhere()
			}
			w.Done(c)
		case <-w.Missed:
			seq := w.Dropped()
			fsys.invalidateAll()
			w.Done(fs.Change{Seq: seq})
		}
	}
}

// invalidateAll drops every entry, attribute and page the kernel may cache of the nodes
// it references.
func (fsys *filesystem) invalidateAll() {
	fsys.nodesMu.Lock()
	nodes := make([]*node, 0, len(fsys.nodes))
	for _, n := range fsys.nodes {
		nodes = append(nodes, n)
	}
	fsys.nodesMu.Unlock()
	for _, n := range nodes {
		for name := range n.Children() {
			n.NotifyEntry(name)
		}
		n.changedElsewhere()
	}
}

func (fsys *filesystem) node(ino uint64) *node {
	fsys.nodesMu.Lock()
	defer fsys.nodesMu.Unlock()
	return fsys.nodes[ino]
}

// filesystem is what all nodes of one mount share.
type filesystem struct {
	engine *fs.Engine
	log    *slog.Logger
	obs    Observer // nil: none
	// writeback: the kernel caches writes (Options.WritebackCache), so it knows of sizes
	// ssefs has not heard of yet, and reads past ssefs' end of a file are its own.
	writeback bool
	filler    *filler // nil: no page fills (see fill.go)

	// nodes are the inodes the kernel references now: the ones whose caches may need
	// dropping when another frontend changes them.
	nodesMu sync.Mutex
	nodes   map[uint64]*node
}

// node is one inode of the mount; the engine inode number is its StableAttr().Ino.
type node struct {
	gofs.Inode
	fsys      *filesystem
	forgotten atomic.Bool
	fillState
}

// register records n as the node the kernel knows for its inode. It also tells the
// engine the kernel references the inode: an inode unlinked while the kernel still
// holds it (an open racing with a rename over it) must stay readable. Must hold
// nodesMu, except for the root, before the mount serves.
func (fsys *filesystem) register(n *node) {
	fsys.nodes[n.ino()] = n
	fsys.engine.Reference(n.ino())
}

// OnForget releases that reference, once per node. go-fuse calls it after it dropped
// the node from its tables, outside its locks: a lookup racing with it may have handed
// the node to the kernel again (child reuses registered nodes), and go-fuse also calls
// it spuriously when children move. Either way the node is in use, so only a node that
// go-fuse still counts as forgotten is released.
func (n *node) OnForget() {
	fsys := n.fsys
	fsys.nodesMu.Lock()
	if n.forgotten.Load() || !n.Forgotten() { // Forgotten is go-fuse's own view, under its lock
		fsys.nodesMu.Unlock()
		return
	}
	n.forgotten.Store(true)
	if fsys.nodes[n.ino()] == n {
		delete(fsys.nodes, n.ino())
	}
	fsys.nodesMu.Unlock()
	// Outside nodesMu: forgetting the last reference of an unlinked file deletes it, which
	// must not hold up lookups.
	fsys.engine.Forget(n.ino())
}

// detach keeps a request's work from being cancelled when the kernel interrupts it: the
// caller merely got a signal (Go programs get SIGURG all the time), and a local
// filesystem neither fails nor half-does a write or a close for that.
// It also tags the call as this frontend's (see invalidate).
func detach(ctx context.Context) context.Context {
	return fs.WithOrigin(context.WithoutCancel(ctx), origin)
}

var (
	_ gofs.NodeOnForgetter   = (*node)(nil)
	_ gofs.NodeLookuper      = (*node)(nil)
	_ gofs.NodeGetattrer     = (*node)(nil)
	_ gofs.NodeSetattrer     = (*node)(nil)
	_ gofs.NodeOpener        = (*node)(nil)
	_ gofs.NodeCreater       = (*node)(nil)
	_ gofs.NodeReader        = (*node)(nil)
	_ gofs.NodeWriter        = (*node)(nil)
	_ gofs.NodeFlusher       = (*node)(nil)
	_ gofs.NodeFsyncer       = (*node)(nil)
	_ gofs.NodeReleaser      = (*node)(nil)
	_ gofs.NodeAllocater     = (*node)(nil)
	_ gofs.NodeMkdirer       = (*node)(nil)
	_ gofs.NodeMknoder       = (*node)(nil)
	_ gofs.NodeSymlinker     = (*node)(nil)
	_ gofs.NodeReadlinker    = (*node)(nil)
	_ gofs.NodeLinker        = (*node)(nil)
	_ gofs.NodeUnlinker      = (*node)(nil)
	_ gofs.NodeRmdirer       = (*node)(nil)
	_ gofs.NodeRenamer       = (*node)(nil)
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
	_ gofs.NodeStatfser      = (*node)(nil)
	_ gofs.NodeAccesser      = (*node)(nil)
)

func (n *node) ino() uint64 { return n.StableAttr().Ino }

// errno maps an engine error to the errno a local filesystem would give. What the
// engine does not classify is an I/O error, and is logged since the caller sees only EIO.
func (fsys *filesystem) errno(op string, err error) syscall.Errno {
	return fsys.errnoAt(op, nil, err)
}

// errno is fsys.errno for an operation on n: a logged failure also names n's inode and
// path, since the engine's errors know only inode numbers and an operator looking at a
// corrupt file (EIO) needs its name.
func (n *node) errno(op string, err error) syscall.Errno {
	return n.fsys.errnoAt(op, n, err)
}

func (fsys *filesystem) errnoAt(op string, n *node, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, m := range errnoMap {
		if errors.Is(err, m.err) {
			if m.errno == syscall.EIO || m.errno == syscall.EACCES && errors.Is(err, fs.ErrAccess) {
				fsys.logFailure(op, n, err)
			}
			return m.errno
		}
	}
	fsys.logFailure(op, n, err)
	return syscall.EIO
}

// logFailure logs a failed operation, with the node it was on when there is one. The path
// is computed only here, on the (rare) logged failures, not for every ENOENT.
func (fsys *filesystem) logFailure(op string, n *node, err error) {
	if n == nil {
		fsys.log.Error("fuse "+op+" failed", "err", err)
		return
	}
	fsys.log.Error("fuse "+op+" failed", "ino", n.ino(), "path", "/"+n.Path(nil), "err", err)
}

var errnoMap = []struct {
	err   error
	errno syscall.Errno
}{
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
}

// rescue turns a panic in a handler into EIO and a log line, so one bad request does
// not take the whole mount down. Every handler defers it, so it is also where the
// observer hears of each operation and the errno it ended with.
func (fsys *filesystem) rescue(op Op, start time.Time, errno *syscall.Errno) {
	if r := recover(); r != nil {
		fsys.log.Error("panic in fuse handler", "op", op.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*errno = syscall.EIO
	}
	if fsys.obs != nil {
		fsys.obs.Op(op, start, *errno)
	}
}

func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := gofuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

func fillAttr(a fs.Attr, out *gofuse.Attr) {
	out.Ino = a.Ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.Uid, a.Gid
	out.Rdev = a.Rdev
	out.Size = a.Size
	out.Blocks = a.Blocks()
	out.Blksize = 1 << 16
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

// child finds (or makes) the kernel-facing node for an engine inode. It hands go-fuse
// the node it already has for the inode rather than a new one: go-fuse would keep its
// known node and drop the new one without telling it, so a new one would be registered
// (and referenced) while the kernel uses another. Invalidations would then go to a
// node the kernel never heard of, and the reference would never be released.
func (n *node) child(ctx context.Context, a fs.Attr, out *gofuse.EntryOut) *gofs.Inode {
	return n.childRef(ctx, a, out, false)
}

// childRef is child for an inode the engine already took a kernel reference on
// (LookupRef) when referenced is set: a new node keeps it, a known node (which holds its
// own) gives it back.
func (n *node) childRef(ctx context.Context, a fs.Attr, out *gofuse.EntryOut, referenced bool) *gofs.Inode {
	fillAttr(a, &out.Attr)
	out.Generation = a.Gen
	id := gofs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: a.Ino, Gen: a.Gen}
	fsys := n.fsys
	fsys.nodesMu.Lock()
	defer fsys.nodesMu.Unlock()
	if known := fsys.nodes[a.Ino]; known != nil && known.StableAttr() == id && !known.forgotten.Load() {
		if referenced {
			fsys.engine.Forget(a.Ino) // never the last reference: known holds one
		}
		return n.NewInode(ctx, known, id)
	}
	fresh := &node{fsys: fsys}
	inode := n.NewInode(ctx, fresh, id)
	fsys.nodes[a.Ino] = fresh
	if !referenced {
		fsys.engine.Reference(a.Ino)
	}
	return inode
}

func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer n.fsys.rescue(OpLookup, n.fsys.start(), &errno)
	return n.lookup(ctx, name, out)
}

func (n *node) lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = detach(ctx)
	a, err := n.fsys.engine.LookupRef(ctx, n.ino(), name)
	if err != nil {
		return nil, lookupErrno(n, err)
	}
	return n.childRef(ctx, a, out, true), 0
}

// lookupErrno is a failed lookup's errno: a missing name is common, and not logged.
func lookupErrno(n *node, err error) syscall.Errno {
	if errors.Is(err, fs.ErrNotExist) {
		return syscall.ENOENT
	}
	return n.errno("lookup", err)
}

// Access answers access(2) where the kernel leaves it to us: a root mount without
// default_permissions, where only root gets in (see Mount). Root may read and write
// anything and enter any directory, but execute only a file with an x bit, as the
// kernel's own check for root has it; without this, test -x would say yes to any file.
func (n *node) Access(ctx context.Context, mask uint32) (errno syscall.Errno) {
	defer n.fsys.rescue(OpAccess, n.fsys.start(), &errno)
	if mask&unix.X_OK == 0 {
		return 0
	}
	a, err := n.fsys.engine.GetAttr(detach(ctx), n.ino())
	if err != nil {
		return n.errno("access", err)
	}
	if !a.IsDir() && a.Mode&0o111 == 0 {
		return syscall.EACCES
	}
	return 0
}

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *gofuse.AttrOut) (errno syscall.Errno) {
	defer n.fsys.rescue(OpGetattr, n.fsys.start(), &errno)
	ctx = detach(ctx)
	var a fs.Attr
	if h, ok := f.(*handle); ok {
		a = h.h.Attr()
	} else {
		var err error
		if a, err = n.fsys.engine.GetAttr(ctx, n.ino()); err != nil {
			return n.errno("getattr", err)
		}
	}
	fillAttr(a, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) (errno syscall.Errno) {
	defer n.fsys.rescue(OpSetattr, n.fsys.start(), &errno)
	ctx = detach(ctx)
	set := fs.SetAttrIn{KillSetID: in.Valid&gofuse.FATTR_KILL_SUIDGID != 0}
	if m, ok := in.GetMode(); ok {
		set.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		set.Uid = &u
	}
	if g, ok := in.GetGID(); ok {
		set.Gid = &g
	}
	if t, ok := in.GetATime(); ok {
		ns := t.UnixNano()
		set.Atime = &ns
	}
	if t, ok := in.GetMTime(); ok {
		ns := t.UnixNano()
		set.Mtime = &ns
	}
	if sz, ok := in.GetSize(); ok {
		if h, ok := f.(*handle); ok {
			if err := h.h.Truncate(ctx, sz); err != nil {
				return n.errno("truncate", err)
			}
		} else {
			set.Size = &sz
		}
	}
	var a fs.Attr
	setAttr := func() (err error) {
		a, err = n.fsys.engine.SetAttr(ctx, n.ino(), set)
		return err
	}
	var err error
	if set.Size != nil {
		err = n.changingContent(setAttr) // a truncate by path: see fill.go
	} else {
		err = setAttr()
	}
	if err != nil {
		return n.errno("setattr", err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

// handle is an open regular file.
type handle struct {
	h *fs.Handle
	// direct: opened with O_DIRECT, whose reads bypass the page cache and may ask past
	// the end of the file (see Read).
	direct bool
	// writable: opened for writing, so counted in its node's writers (fill.go).
	writable bool
	// fills counts the page fills queued with this handle, which Release waits for.
	fills sync.WaitGroup
}

// newHandle wraps an engine handle opened with flags, counting it as a writer on n if it
// is one.
func (n *node) newHandle(h *fs.Handle, flags uint32) *handle {
	fh := &handle{h: h, direct: flags&syscall.O_DIRECT != 0, writable: flags&syscall.O_ACCMODE != syscall.O_RDONLY}
	if fh.writable {
		n.openedWriter()
	}
	return fh
}

func (n *node) Open(ctx context.Context, flags uint32) (_ gofs.FileHandle, _ uint32, errno syscall.Errno) {
	defer n.fsys.rescue(OpOpen, n.fsys.start(), &errno)
	ctx = detach(ctx)
	h, err := n.fsys.engine.Open(ctx, n.ino())
	if err != nil {
		return nil, 0, n.errno("open", err)
	}
	fh := n.newHandle(h, flags)
	if flags&syscall.O_TRUNC != 0 && fh.writable {
		if err := h.Truncate(ctx, 0); err != nil {
			n.releaseHandle(ctx, fh)
			return nil, 0, n.errno("open", err)
		}
	}
	return fh, keepCache, 0
}

// pageSize is the kernel's page size: its page cache never asks past the page that holds
// the end of the file as it knows it.
var pageSize = int64(os.Getpagesize())

// keepCache keeps the kernel's cached pages of a file across opens. They stay right:
// changes made through this mount went through them, and a change made through S3
// drops them (invalidate), as does the kernel when it sees the size or mtime move.
const keepCache = gofuse.FOPEN_KEEP_CACHE

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *gofuse.EntryOut) (_ *gofs.Inode, _ gofs.FileHandle, _ uint32, errno syscall.Errno) {
	defer n.fsys.rescue(OpCreate, n.fsys.start(), &errno)
	ctx = detach(ctx)
	uid, gid := caller(ctx)
	a, h, err := n.fsys.engine.Create(ctx, n.ino(), name, fs.Owner{Mode: mode, Uid: uid, Gid: gid}, flags&syscall.O_EXCL != 0)
	if err != nil {
		return nil, nil, 0, n.errno("create", err)
	}
	if flags&syscall.O_TRUNC != 0 && a.Size > 0 {
		truncate := func() error { return h.Truncate(ctx, 0) }
		if known := n.fsys.node(a.Ino); known != nil {
			err = known.changingContent(truncate)
		} else {
			err = truncate()
		}
		if err != nil {
			h.Release(ctx)
			return nil, nil, 0, n.errno("create", err)
		}
		a = h.Attr()
	}
	child := n.child(ctx, a, out)
	return child, child.Operations().(*node).newHandle(h, flags), keepCache, 0
}

func (n *node) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (_ gofuse.ReadResult, errno syscall.Errno) {
	defer n.fsys.rescue(OpRead, n.fsys.start(), &errno)
	ctx = detach(ctx)
	h, ok := f.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	// The kernel takes a short answer for the end of the file, and while a truncate is
	// in flight it zero-fills the rest of the pages it asked for and keeps them, at its
	// old size: a read it sized before the truncate must get the content from before it.
	// A direct read is no page cache's: its length is the caller's. Nor does a read past
	// ssefs' end tell a truncate from a write the kernel still caches (writeback).
	var k int
	var err error
	if h.direct || n.fsys.writeback {
		k, err = h.h.ReadAt(ctx, dest, off)
	} else {
		k, err = h.h.ReadAtKernel(ctx, dest, off, pageSize)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.errno("read", err)
	}
	if k > 0 && n.fsys.filler.wants(h, len(dest)) {
		n.fsys.filler.queue(fillJob{n: n, h: h, off: off, len: int64(k)})
	}
	return gofuse.ReadResultData(dest[:k]), 0
}

func (n *node) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (_ uint32, errno syscall.Errno) {
	defer n.fsys.rescue(OpWrite, n.fsys.start(), &errno)
	ctx = detach(ctx)
	h, ok := f.(*handle)
	if !ok {
		return 0, syscall.EBADF
	}
	if c, ok := gofuse.FromContext(ctx); ok && c.Uid != 0 {
		// An unprivileged write drops set-ID bits (CAP_HANDLE_KILLPRIV_V2 hands it to
		// us; the kernel's WRITE_KILL_SUIDGID flag does not reach a node's Write, and
		// its rule is this one). Root keeps them, as with CAP_FSETID.
		if h.h.ClearSetID(ctx) {
			// The kernel still caches the old mode: an exec before it expired would
			// run what was just written set-ID. Offset -1 drops only the attributes,
			// which takes no lock the writer holds, so it is safe from this handler.
			n.NotifyContent(-1, 0)
		}
	}
	k, err := h.h.WriteAt(ctx, data, off)
	if err != nil {
		return uint32(k), n.errno("write", err)
	}
	return uint32(k), 0
}

func (n *node) Flush(ctx context.Context, f gofs.FileHandle) (errno syscall.Errno) {
	defer n.fsys.rescue(OpFlush, n.fsys.start(), &errno)
	ctx = detach(ctx)
	if h, ok := f.(*handle); ok {
		return n.errno("flush", h.h.Flush(ctx))
	}
	return 0
}

func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) (errno syscall.Errno) {
	defer n.fsys.rescue(OpFsync, n.fsys.start(), &errno)
	ctx = detach(ctx)
	if h, ok := f.(*handle); ok {
		return n.errno("fsync", h.h.Fsync(ctx))
	}
	// fsync of a directory, or without an open handle: make the namespace durable.
	return n.errno("fsync", n.fsys.engine.SyncAll(ctx))
}

func (n *node) Release(ctx context.Context, f gofs.FileHandle) (errno syscall.Errno) {
	defer n.fsys.rescue(OpRelease, n.fsys.start(), &errno)
	ctx = detach(ctx)
	if h, ok := f.(*handle); ok {
		if err := n.releaseHandle(ctx, h); err != nil {
			// close(2) has already returned; the error can only be logged.
			n.fsys.log.Error("release failed", "ino", n.ino(), "err", err)
		}
	}
	return 0
}

// releaseHandle closes h once the fills using it are done.
func (n *node) releaseHandle(ctx context.Context, h *handle) error {
	h.fills.Wait()
	err := h.h.Release(ctx)
	if h.writable {
		n.closedWriter()
	}
	return err
}

// Allocate supports posix_fallocate's plain reservation by extending the size; holes
// read as zeros and are stored only when written. Other modes are not supported.
func (n *node) Allocate(ctx context.Context, f gofs.FileHandle, off uint64, size uint64, mode uint32) (errno syscall.Errno) {
	defer n.fsys.rescue(OpFallocate, n.fsys.start(), &errno)
	ctx = detach(ctx)
	const keepSize = 0x01
	h, ok := f.(*handle)
	if !ok {
		return syscall.EBADF
	}
	if mode&^keepSize != 0 {
		return syscall.EOPNOTSUPP
	}
	if end := off + size; mode&keepSize == 0 && end > h.h.Attr().Size {
		return n.errno("fallocate", h.h.Truncate(ctx, end))
	}
	return 0
}

// readdirEntries lists the directory, "." and ".." first, for an open directory
// (dirHandle: go-fuse asks OpendirHandle, never a NodeReaddirer, when a node has it).
func (n *node) readdirEntries(ctx context.Context) (_ []gofuse.DirEntry, errno syscall.Errno) {
	defer n.fsys.rescue(OpReaddir, n.fsys.start(), &errno)
	ctx = detach(ctx)
	ents, err := n.fsys.engine.ReadDir(ctx, n.ino(), "", 0)
	if err != nil {
		return nil, n.errno("readdir", err)
	}
	list := make([]gofuse.DirEntry, 0, len(ents)+2)
	list = append(list, gofuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: n.ino()})
	list = append(list, gofuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR})
	for _, e := range ents {
		list = append(list, gofuse.DirEntry{Name: e.Name, Mode: e.Mode, Ino: e.Ino})
	}
	return list, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer n.fsys.rescue(OpMkdir, n.fsys.start(), &errno)
	ctx = detach(ctx)
	uid, gid := caller(ctx)
	a, err := n.fsys.engine.Mkdir(ctx, n.ino(), name, fs.Owner{Mode: mode, Uid: uid, Gid: gid})
	if err != nil {
		return nil, n.errno("mkdir", err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *gofuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer n.fsys.rescue(OpMknod, n.fsys.start(), &errno)
	ctx = detach(ctx)
	uid, gid := caller(ctx)
	a, err := n.fsys.engine.Mknod(ctx, n.ino(), name, fs.Owner{Mode: mode, Uid: uid, Gid: gid, Rdev: dev})
	if err != nil {
		return nil, n.errno("mknod", err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer n.fsys.rescue(OpSymlink, n.fsys.start(), &errno)
	ctx = detach(ctx)
	uid, gid := caller(ctx)
	a, err := n.fsys.engine.Symlink(ctx, n.ino(), name, target, fs.Owner{Uid: uid, Gid: gid})
	if err != nil {
		return nil, n.errno("symlink", err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Readlink(ctx context.Context) (_ []byte, errno syscall.Errno) {
	defer n.fsys.rescue(OpReadlink, n.fsys.start(), &errno)
	ctx = detach(ctx)
	target, err := n.fsys.engine.Readlink(ctx, n.ino())
	if err != nil {
		return nil, n.errno("readlink", err)
	}
	return []byte(target), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *gofuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer n.fsys.rescue(OpLink, n.fsys.start(), &errno)
	ctx = detach(ctx)
	a, err := n.fsys.engine.Link(ctx, target.EmbeddedInode().StableAttr().Ino, n.ino(), name)
	if err != nil {
		return nil, n.errno("link", err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) (errno syscall.Errno) {
	defer n.fsys.rescue(OpUnlink, n.fsys.start(), &errno)
	ctx = detach(ctx)
	return n.errno("unlink", n.fsys.engine.Unlink(ctx, n.ino(), name))
}

func (n *node) Rmdir(ctx context.Context, name string) (errno syscall.Errno) {
	defer n.fsys.rescue(OpRmdir, n.fsys.start(), &errno)
	ctx = detach(ctx)
	return n.errno("rmdir", n.fsys.engine.Rmdir(ctx, n.ino(), name))
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) (errno syscall.Errno) {
	defer n.fsys.rescue(OpRename, n.fsys.start(), &errno)
	ctx = detach(ctx)
	np := newParent.EmbeddedInode().StableAttr().Ino
	return n.errno("rename", n.fsys.engine.Rename(ctx, n.ino(), name, np, newName, flags))
}

// encryptionXattr is the read-only attribute that shows how a file is encrypted.
const encryptionXattr = fs.XattrPrefix + "encryption"

func (n *node) xattrValue(ctx context.Context, name string) ([]byte, error) {
	if name == encryptionXattr {
		info, err := n.fsys.engine.Encryption(ctx, n.ino())
		if err != nil {
			return nil, err
		}
		sealedAt := "unknown"
		if !info.SealedAt.IsZero() {
			sealedAt = info.SealedAt.UTC().Format(time.RFC3339)
		}
		v := fmt.Sprintf("type=%s key=%s algorithm=%s cipher=%s bucket=%s chunk-size=%d sealed-at=%s chunks=%d stored-bytes=%d",
			info.SSEType, info.KeyName, info.Algorithm, info.Cipher, info.Bucket, info.ChunkSize,
			sealedAt, info.Chunks, info.StoredBytes)
		if len(info.KMSContext) > 0 {
			// Context values may hold spaces and '=': the JSON (keys sorted) goes base64url
			// encoded, so the value stays space-separated NAME=VALUE fields.
			js, err := json.Marshal(info.KMSContext)
			if err != nil {
				return nil, fmt.Errorf("encoding the encryption context: %w", err)
			}
			v += " context=" + base64.RawURLEncoding.EncodeToString(js)
		}
		return []byte(v), nil
	}
	return n.fsys.engine.GetXattr(ctx, n.ino(), name)
}

// xattrErrno gives ENODATA for an attribute that is not there, as getxattr(2) wants.
func (n *node) xattrErrno(op string, err error) syscall.Errno {
	if errors.Is(err, fs.ErrNotExist) {
		return syscall.ENODATA
	}
	return n.errno(op, err)
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (_ uint32, errno syscall.Errno) {
	defer n.fsys.rescue(OpGetxattr, n.fsys.start(), &errno)
	ctx = detach(ctx)
	v, err := n.xattrValue(ctx, attr)
	if err != nil {
		return 0, n.xattrErrno("getxattr", err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (errno syscall.Errno) {
	defer n.fsys.rescue(OpSetxattr, n.fsys.start(), &errno)
	ctx = detach(ctx)
	return n.xattrErrno("setxattr", n.fsys.engine.SetXattr(ctx, n.ino(), attr, data, flags))
}

func (n *node) Removexattr(ctx context.Context, attr string) (errno syscall.Errno) {
	defer n.fsys.rescue(OpRemovexattr, n.fsys.start(), &errno)
	ctx = detach(ctx)
	return n.xattrErrno("removexattr", n.fsys.engine.RemoveXattr(ctx, n.ino(), attr))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (_ uint32, errno syscall.Errno) {
	defer n.fsys.rescue(OpListxattr, n.fsys.start(), &errno)
	ctx = detach(ctx)
	names, err := n.fsys.engine.ListXattr(ctx, n.ino())
	if err != nil {
		return 0, n.errno("listxattr", err)
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(0)
	}
	if len(dest) < b.Len() {
		return uint32(b.Len()), syscall.ERANGE
	}
	return uint32(copy(dest, b.String())), 0
}

func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) (errno syscall.Errno) {
	defer n.fsys.rescue(OpStatfs, n.fsys.start(), &errno)
	ctx = detach(ctx)
	st, err := n.fsys.engine.StatFS(ctx)
	if err != nil {
		return n.errno("statfs", err)
	}
	out.Bsize, out.Frsize = st.BlockSize, st.BlockSize
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.BlocksFree, st.BlocksAvail
	out.Files, out.Ffree = st.Files, st.FilesFree
	out.NameLen = 255
	return 0
}

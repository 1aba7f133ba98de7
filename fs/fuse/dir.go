package fuse

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssefs/ssefs/fs"
)

// lookupBatch is how many entries of a READDIRPLUS reply dirHandle looks up at once:
// about what one reply buffer holds.
const lookupBatch = 32

// dirHandle is an open directory. It lists the entries at the first read, as a
// DirStream would, and answers READDIRPLUS's per-entry lookups from one engine call
// for the next lookupBatch entries (fs.Engine.LookupMany) instead of one each.
type dirHandle struct {
	n *node

	mu     sync.Mutex
	listed bool
	ents   []gofuse.DirEntry
	next   int // index into ents of the entry Readdirent returns next

	// The current batch of lookups: ents[batchAt:batchAt+len(batchNames)], read for
	// the request batchReq. A batch serves only the request that read it, so what the
	// kernel gets is never older than its request (it discards attributes older than
	// its last change to an inode by comparing against the request's start).
	batch      *fs.Lookups
	batchReq   context.Context
	batchAt    int
	batchNames []string
}

var (
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.FileReaddirenter   = (*dirHandle)(nil)
	_ gofs.FileLookuper       = (*dirHandle)(nil)
	_ gofs.FileSeekdirer      = (*dirHandle)(nil)
)

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, 0, 0
}

// list reads the directory on first use (readdirEntries). Entry offsets are
// their positions plus one, so that Seekdir can find them again.
func (d *dirHandle) list(ctx context.Context) syscall.Errno {
	if d.listed {
		return 0
	}
	ents, errno := d.n.readdirEntries(ctx)
	if errno != 0 {
		return errno
	}
	for i := range ents {
		ents[i].Off = uint64(i + 1)
	}
	d.ents, d.listed = ents, true
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if errno := d.list(ctx); errno != 0 {
		return nil, errno
	}
	if d.next >= len(d.ents) {
		return nil, 0
	}
	de := d.ents[d.next]
	d.next++
	return &de, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if errno := d.list(ctx); errno != 0 {
		return errno
	}
	d.next = int(min(off, uint64(len(d.ents))))
	return 0
}

// Lookup is READDIRPLUS's lookup of the entry Readdirent returned last.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	n := d.n
	defer n.fsys.rescue(OpLookup, n.fsys.start(), &errno)
	d.mu.Lock()
	at := d.next - 1
	if at < 0 || at >= len(d.ents) || d.ents[at].Name != name {
		d.mu.Unlock()
		return n.lookup(ctx, name, out)
	}
	if d.batch == nil || d.batchReq != ctx || at < d.batchAt || at >= d.batchAt+len(d.batchNames) {
		d.batchNames = d.batchNames[:0]
		for _, de := range d.ents[at:min(at+lookupBatch, len(d.ents))] {
			d.batchNames = append(d.batchNames, de.Name)
		}
		d.batch = n.fsys.engine.LookupMany(detach(ctx), n.ino(), d.batchNames)
		d.batchReq, d.batchAt = ctx, at
	}
	batch, i := d.batch, at-d.batchAt
	d.mu.Unlock()
	a, err, ok := batch.Take(i)
	if !ok {
		return n.lookup(ctx, name, out) // an inode lost a link since: look again
	}
	if err != nil {
		return nil, lookupErrno(n, err)
	}
	return n.childRef(detach(ctx), a, out, true), 0
}

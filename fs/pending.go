package fs

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ssefs/ssefs/meta"
)

// Deferred creates: a new file's records (inode, sealed key, directory entry) are not
// committed by Create but by the next transaction any operation makes, which for a file
// that is written and closed is the one that commits its content at close. That is one
// Badger transaction per small file instead of two: each costs a hand-off to Badger's
// writer goroutine and its watermark goroutines, an encrypted log entry per record and a
// statfs for the space guard, and on two cores these were a third of a create's CPU.
//
// Nothing can tell the difference, because nothing reads the store without the pending
// creates in it first:
//   - update applies every pending create inside the caller's transaction, before the
//     caller's own function runs, so the caller sees the files and the commit stores them
//     with its own changes (atomic together: a create is still one commit, as DESIGN.md
//     asks; it may share it with the file's first content);
//   - view, and every path that reads the store directly (fsck, usage, snapshots,
//     syncDurable), first commits what is pending (settlePending);
//   - Create checks the name in a view, under nsMu, like every operation that adds a name,
//     so no other name can come between the check and the record that stages the file.
//
// Two transactions may apply the same pending create at once: both read the directory
// entry, so Badger's conflict detection makes the second commit fail, and its retry finds
// the entry stored (applyCreate skips it). A pending create leaves the list only once a
// commit that holds it returned, and a transaction takes the list before it begins
// (update), so every create is either in its list or visible to it.
//
// Durability: a created file is committed at the latest when it is closed, fsynced or
// synced (syncfs, the periodic sync, unmount), so "a closed file survives a kill of the
// process" holds. A file still open when the process dies loses its name with its
// content, which only ever lived in the write-back buffer: as a local filesystem without
// a journal commit yet, and within what POSIX promises without fsync.
type pendingCreates struct {
	n     atomic.Int32 // len(files): the fast check on every transaction
	mu    sync.Mutex
	files []*pendingCreate
}

// pendingCreate is a file Create staged: the records its commit writes.
type pendingCreate struct {
	dir    meta.Ino
	name   string
	inode  meta.Inode
	sealed []byte
}

func (p *pendingCreates) add(c *pendingCreate) {
	p.mu.Lock()
	p.files = append(p.files, c)
	p.n.Store(int32(len(p.files)))
	p.mu.Unlock()
}

func (p *pendingCreates) snapshot() []*pendingCreate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pendingCreate(nil), p.files...)
}

// committed removes what a successful commit stored.
func (p *pendingCreates) committed(done []*pendingCreate) {
	if len(done) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files = slices.DeleteFunc(p.files, func(c *pendingCreate) bool { return slices.Contains(done, c) })
	p.n.Store(int32(len(p.files)))
}

// applyPending writes the records of the pending creates cs into tx, skipping those
// another commit stored already.
func (e *Engine) applyPending(tx *meta.Tx, cs []*pendingCreate) error {
	for _, c := range cs {
		if err := e.applyCreate(tx, c); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) applyCreate(tx *meta.Tx, c *pendingCreate) error {
	dir, err := dirInode(tx, Ino(c.dir))
	if err != nil {
		// Every removal of the directory applies the pending creates first, and then
		// finds it not empty: this is a broken invariant, not a user error.
		e.log.Error("a created file's directory is gone before its commit; the file is dropped", "ino", uint64(c.inode.Ino), "dir", uint64(c.dir), "err", err)
		return nil
	}
	if ent, err := tx.Lookup(dir.Ino, c.name); err == nil {
		if ent.Ino != c.inode.Ino {
			e.log.Error("a created file's name was taken before its commit; the file is dropped", "ino", uint64(c.inode.Ino), "dir", uint64(c.dir), "other", uint64(ent.Ino))
		}
		return nil // stored by a commit that raced this one, or dropped
	} else if !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	in := c.inode
	if err := tx.PutInode(&in); err != nil {
		return err
	}
	if err := tx.PutSealedKey(in.Ino, c.sealed); err != nil {
		return err
	}
	return addEntry(tx, &dir, c.name, &in)
}

// settlePending commits the pending creates, for readers of the store: after it returns,
// every file created before it was called is in the store.
func (e *Engine) settlePending() error {
	if e.pending.n.Load() == 0 {
		return nil
	}
	return e.update(func(*meta.Tx) error { return nil })
}

// pendingCreateBytes bounds the log a pending create's commit writes: the new inode, its
// sealed key, the directory entry and the directory's inode, each with its key and
// Badger's per-entry overhead (the space guard adds its own slack).
func pendingCreateBytes(name string, sealed []byte) uint64 {
	const recordBound = 256 // an encoded inode with its key and entry header, rounded up
	return uint64(4*recordBound + 2*len(name) + len(sealed))
}

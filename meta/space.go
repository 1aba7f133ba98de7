package meta

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The space guard keeps Badger from running its filesystem out of space.
//
// Badger writes its memtable log (a sparse file of twice MemTableSize) and the tables a
// memtable flush makes through mmap. A store into a page the filesystem cannot back
// raises SIGBUS in one of Badger's goroutines, and the Go runtime kills the process: no
// error comes back to refuse the operation with. So the room is checked before each
// commit instead (statfs of the metadata directory):
//
//   - a commit that only adds or changes records ("growing") is refused with ENOSPC
//     when it would leave less than Options.MinFree available. The data directory sets
//     MinFree below the room the object store keeps free, so that file content runs out
//     first, then metadata creates, and deletions last;
//   - a commit that deletes records (the Tx methods that delete mark it) passes that
//     floor: deleting is how space comes back. It still needs a few pages of log, so
//     when even those are missing (something outside ssefs filled the disk), the guard
//     removes the spare file, a preallocated file of zeros kept for this, and its blocks
//     become Badger's room. Only when the spare is spent too are deletions refused;
//   - the spare comes back once the filesystem has room for it above the floor again.
//
// It cannot cover what Badger writes on its own: a memtable flush (when the memtable
// fills, or at Close) writes a table of up to the memtable's size, and compactions
// rewrite tables. MinFree and the spare, released before Close when space is low, are
// the room for those.

// commitSlack is the room a commit needs beyond its own records: Badger's log is backed
// page by page, a commit's entries may start one page and end in another, Badger adds a
// commit marker, and commits checked against the same statfs figure share what it showed.
const commitSlack = 64 << 10

// Guard states, for logging each change once rather than every refused commit.
const (
	spaceOK       int32 = iota // every commit passes
	spaceRefusing              // growing commits are refused
	spaceStarved               // deleting commits are refused too: the spare is spent
)

type spaceGuard struct {
	dir       string // the metadata directory: what statfs looks at and log lines name
	floor     uint64 // Options.MinFree
	spare     string // Options.SpareFile; "" = none
	spareSize uint64
	avail     func() (uint64, error)
	log       *slog.Logger
	// dirFD is the metadata directory, open once Badger made it: fstatfs on it costs a
	// fraction of a statfs by path, which resolves and copies the path each time. Set
	// in afterOpen, before any commit; -1 = none. Atomic: Close lets go of it while a
	// straggling commit may still look.
	dirFD atomic.Int32

	state      atomic.Int32
	statfsErr  atomic.Bool // a failing statfs was logged
	spareMu    sync.Mutex  // creating or removing the spare
	spareReady atomic.Bool // the spare exists at its full size
	// spareRetry: after a failure to make the spare, not again before this (unix
	// nanoseconds), so that a directory that refuses it costs no commit an attempt.
	spareRetry atomic.Int64
}

// spareRetryAfter is how long the guard waits to try again to make a spare it could not.
const spareRetryAfter = time.Minute

// newSpaceGuard returns nil (no guard) when opts ask for none.
func newSpaceGuard(dir string, opts Options) *spaceGuard {
	if opts.MinFree == 0 || opts.ReadOnly {
		return nil
	}
	g := &spaceGuard{dir: dir, floor: opts.MinFree, avail: opts.statfs, log: opts.Logger}
	g.dirFD.Store(-1)
	if opts.SpareFile != "" && opts.SpareSize > 0 {
		g.spare, g.spareSize = opts.SpareFile, opts.SpareSize
	}
	if g.avail == nil {
		g.avail = g.statDir
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g
}

// statDir is what an unprivileged writer may still allocate on the metadata's filesystem.
func (g *spaceGuard) statDir() (uint64, error) {
	var st unix.Statfs_t
	var err error
	if fd := g.dirFD.Load(); fd >= 0 {
		err = unix.Fstatfs(int(fd), &st)
	} else {
		err = unix.Statfs(g.dir, &st)
	}
	if err != nil {
		return 0, fmt.Errorf("statfs %s: %w", g.dir, err)
	}
	// Block counts are in fragment-size units on Linux; Bsize is only the preferred I/O size.
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return st.Bavail * bs, nil
}

// statfs returns the available bytes, or ok=false when they cannot be known. Then the
// commit goes ahead: refusing every commit because statfs fails would turn a monitoring
// problem into an outage, and the commit is what would have happened without a guard.
func (g *spaceGuard) statfs() (avail uint64, ok bool) {
	avail, err := g.avail()
	if err != nil {
		if g.statfsErr.CompareAndSwap(false, true) {
			g.log.Warn("metadata: cannot check the free space; commits go ahead unchecked", "dir", g.dir, "err", err)
		}
		return 0, false
	}
	return avail, true
}

// admit decides, just before tx commits, whether the commit may go to Badger. A refusal
// wraps syscall.ENOSPC; nothing of tx has been written then.
func (g *spaceGuard) admit(tx *Tx) error {
	if g == nil || tx.logBytes == 0 {
		return nil // no guard, or nothing to write
	}
	avail, ok := g.statfs()
	if !ok {
		return nil
	}
	need := tx.logBytes + commitSlack
	if !tx.frees {
		if avail < g.floor+need {
			if g.state.CompareAndSwap(spaceOK, spaceRefusing) {
				g.log.Warn("metadata: the filesystem is nearly full: new metadata (creates, writes, renames) is refused until space is freed; deletions still work",
					"dir", g.dir, "avail_bytes", avail, "floor_bytes", g.floor)
			}
			return fmt.Errorf("meta: commit refused: %s has %d bytes available, %d are kept for deletions: %w",
				g.dir, avail, g.floor, syscall.ENOSPC)
		}
		g.recovered(avail)
		g.restoreSpare(avail - need)
		return nil
	}
	if avail < need {
		if g.releaseSpare("no room left for the log of a commit that frees space", avail) {
			if avail, ok = g.statfs(); !ok {
				return nil
			}
		}
		if avail < need {
			if g.state.Swap(spaceStarved) != spaceStarved {
				g.log.Error("metadata: the filesystem is full and the spare file is spent: deletions are refused too until space is freed outside ssefs",
					"dir", g.dir, "avail_bytes", avail, "need_bytes", need)
			}
			return fmt.Errorf("meta: commit refused: %s has %d bytes available, a deletion needs %d: %w",
				g.dir, avail, need, syscall.ENOSPC)
		}
	}
	if g.state.CompareAndSwap(spaceStarved, spaceRefusing) {
		g.log.Info("metadata: deletions work again; new metadata is still refused", "dir", g.dir, "avail_bytes", avail)
	}
	g.recovered(avail)
	g.restoreSpare(avail - need)
	return nil
}

// recovered notes that growing commits pass again. The state flips back only well above
// the floor, so that commits of different sizes near it do not log every other commit.
func (g *spaceGuard) recovered(avail uint64) {
	if avail < g.floor+g.floor/4+commitSlack || g.state.Load() == spaceOK {
		return
	}
	if g.state.Swap(spaceOK) != spaceOK {
		g.log.Info("metadata: space is back: new metadata is accepted again", "dir", g.dir, "avail_bytes", avail, "floor_bytes", g.floor)
	}
}

// restoreSpare makes the spare again when it is missing and avail (what is left after
// the commit) has room for it above the floor. It runs on the commit's path: a
// fallocate of a few MiB is quick, and it happens once after each release. A commit
// that finds another one at it goes on without waiting.
func (g *spaceGuard) restoreSpare(avail uint64) {
	if g.spare == "" || g.spareReady.Load() || avail < g.floor+g.spareSize || time.Now().UnixNano() < g.spareRetry.Load() {
		return
	}
	if !g.spareMu.TryLock() {
		return
	}
	defer g.spareMu.Unlock()
	if g.spareReady.Load() {
		return
	}
	if err := g.makeSpare(); err != nil {
		g.spareRetry.Store(time.Now().Add(spareRetryAfter).UnixNano())
		g.log.Warn("metadata: cannot make the spare file; trying again later", "path", g.spare, "err", err, "retry_in", spareRetryAfter)
		return
	}
	g.log.Info("metadata: spare file made", "path", g.spare, "bytes", g.spareSize, "avail_bytes", avail-g.spareSize)
}

// releaseSpare removes the spare, so its blocks become Badger's room; it says whether
// there was one.
func (g *spaceGuard) releaseSpare(why string, avail uint64) bool {
	if g.spare == "" {
		return false
	}
	g.spareMu.Lock()
	defer g.spareMu.Unlock()
	if !g.removeSpare() {
		return false
	}
	g.log.Warn("metadata: released the spare file: "+why, "path", g.spare, "bytes", g.spareSize, "dir", g.dir, "avail_bytes", avail)
	return true
}

// removeSpare removes the spare file, whatever state it is in, and says whether there was
// one. With spareMu held.
func (g *spaceGuard) removeSpare() bool {
	g.spareReady.Store(false)
	err := os.Remove(g.spare)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		g.log.Error("metadata: cannot remove the spare file", "path", g.spare, "err", err)
	}
	return err == nil
}

// makeSpare (re)creates the spare at its size: zeros, allocated now, so that removing it
// really frees blocks. With spareMu held.
func (g *spaceGuard) makeSpare() (err error) {
	f, err := os.OpenFile(g.spare, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// A spare only partly allocated would promise room it does not hold.
			os.Remove(g.spare)
		}
	}()
	if err := f.Truncate(0); err != nil {
		return err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, int64(g.spareSize))
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = writeZeros(f, g.spareSize)
	}
	if err != nil {
		return fmt.Errorf("allocating %d bytes for %s: %w", g.spareSize, g.spare, err)
	}
	g.spareReady.Store(true)
	return nil
}

func writeZeros(w io.Writer, n uint64) error {
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, uint64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// spareComplete tells whether the spare exists with all its blocks allocated.
func (g *spaceGuard) spareComplete() bool {
	st, err := os.Stat(g.spare)
	if err != nil || !st.Mode().IsRegular() || uint64(st.Size()) != g.spareSize {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && uint64(sys.Blocks)*512 >= g.spareSize
}

// beforeOpen runs before Badger opens: Badger may have to flush what a crash left in its
// log, so on a filesystem already below the floor the spare goes first.
func (g *spaceGuard) beforeOpen() {
	if g == nil || g.spare == "" {
		return
	}
	if _, err := os.Stat(g.dir); err != nil {
		return // a new store: nothing to flush, and nothing to statfs yet
	}
	if avail, ok := g.statfs(); ok && avail < g.floor {
		g.releaseSpare("opening the metadata on a nearly full filesystem", avail)
	}
}

// afterOpen, once Badger made the directory, keeps the spare there is, or makes it if
// there is room.
func (g *spaceGuard) afterOpen() {
	if g == nil {
		return
	}
	if fd, err := unix.Open(g.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		g.dirFD.Store(int32(fd))
	}
	if g.spare == "" {
		return
	}
	if g.spareComplete() {
		g.spareReady.Store(true)
		return
	}
	avail, ok := g.statfs()
	if !ok {
		return
	}
	if _, err := os.Stat(g.spare); err == nil {
		// Left incomplete (a crash while making it) or of another size (the filesystem
		// was resized): its blocks count as available once it is gone.
		g.spareMu.Lock()
		g.removeSpare()
		g.spareMu.Unlock()
		if avail, ok = g.statfs(); !ok {
			return
		}
	}
	g.restoreSpare(avail)
}

// beforeClose runs before Badger's Close, which flushes the memtable into a table
// written through mmap: below the floor, the spare's blocks are better used there.
func (g *spaceGuard) beforeClose() {
	if g == nil || g.spare == "" {
		return
	}
	if avail, ok := g.statfs(); ok && avail < g.floor {
		g.releaseSpare("closing the metadata on a nearly full filesystem", avail)
	}
}

// close lets go of the directory, after the last commit.
func (g *spaceGuard) close() {
	if g == nil {
		return
	}
	if fd := g.dirFD.Swap(-1); fd >= 0 {
		unix.Close(int(fd))
	}
}

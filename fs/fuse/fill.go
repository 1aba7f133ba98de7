package fuse

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/ssefs/ssefs/fs"
)

// Page fills: a READ smaller than a DARE package has made ssefs authenticate and decrypt
// the whole package (64 KiB) to answer a few pages of it; the kernel asks for only what
// a random reader wants (fio and databases advise POSIX_FADV_RANDOM, which turns its
// readahead off), so each of the package's other pages would later cost a round trip
// and a copy of its own. After answering, the frontend hands the rest of the package to
// the kernel's page cache (FUSE_NOTIFY_STORE), from the engine's read cache, where the
// READ left it. The page cache is memory, like the read cache, and the kernel drops it
// under memory pressure.
//
// A stored page must never be older than the file: the kernel takes what it is given
// as current. So a fill reads the content when it runs, not when its READ was answered,
// under its node's fillMu, and every change of the file's bytes is ordered after it:
//   - while a handle of this mount is open for writing, nothing is stored. Writes reach
//     the file only through such handles (write, ftruncate, fallocate, mmap), and
//     opening one waits for a fill in progress;
//   - a truncate by path holds fillMu while the engine applies it: a fill that read
//     before it must not store what was past the new end once the kernel has cut its
//     cache there, which it does when the truncate is answered;
//   - a change made through another frontend (only a truncate changes a file in
//     place; S3 replaces objects by new inodes) waits for the fill in progress before
//     its invalidation reaches the kernel, which then drops what that fill stored.
//
// With --writeback-cache the kernel holds written pages ssefs has not seen, which a fill
// would overwrite, so there are none there; nor for O_DIRECT handles, which bypass the
// page cache.
//
// A fill runs on its own goroutine, never in a request's: storing waits for the lock of
// every page it writes, and a page is locked while a READ of it is in flight.

// fillQueue bounds the fills waiting: when small reads come faster than fills run,
// the surplus is dropped (those pages then cost a READ, as they would without fills).
const fillQueue = 64

type fillJob struct {
	n *node
	h *handle
	// off, len: what the READ answered, which the kernel fills itself.
	off, len int64
}

// fillState is a node's part: see the comment at the top of this file.
type fillState struct {
	fillMu  sync.Mutex
	writers int // handles of this mount open for writing; under fillMu
}

// changedElsewhere drops the attributes and every page the kernel caches of the file,
// which another frontend changed. It first waits for the fill in progress: what the
// kernel drops must include what that fill stored.
func (n *node) changedElsewhere() {
	n.fillMu.Lock()
	n.fillMu.Unlock()
	n.NotifyContent(0, 0) // offset 0, length 0: attributes and all pages
}

// changingContent runs change, which alters the file's bytes without a writable handle
// of this mount (a truncate by path), while no fill runs.
func (n *node) changingContent(change func() error) error {
	n.fillMu.Lock()
	defer n.fillMu.Unlock()
	return change()
}

// openedWriter and closedWriter count the handles open for writing.
func (n *node) openedWriter() {
	n.fillMu.Lock()
	n.writers++
	n.fillMu.Unlock()
}

func (n *node) closedWriter() {
	n.fillMu.Lock()
	n.writers--
	n.fillMu.Unlock()
}

// filler runs the fills of one mount.
type filler struct {
	jobs chan fillJob
	buf  []byte // one package: fills run one at a time
	// Test hooks (Options.filled, Options.fillRead); nil outside tests.
	done func(ino uint64, stored int)
	read func()
}

// fillSpan is the stretch one small read decrypts.
const fillSpan = fs.PackageSize

// wants reports whether a READ of length bytes through h is worth a fill.
func (f *filler) wants(h *handle, length int) bool {
	return f != nil && !h.direct && length < fillSpan
}

// queue hands the job to the fill goroutine, or drops it when the queue is full.
func (f *filler) queue(j fillJob) {
	j.h.fills.Add(1)
	select {
	case f.jobs <- j:
	default:
		j.h.fills.Done()
	}
}

// run serves fills until stop is closed; the jobs still queued are dropped.
func (f *filler) run(stop <-chan struct{}) {
	for {
		select {
		case j := <-f.jobs:
			stored := f.fill(j)
			j.h.fills.Done()
			if f.done != nil {
				f.done(j.n.ino(), stored)
			}
		case <-stop:
			for {
				select {
				case j := <-f.jobs:
					j.h.fills.Done()
				default:
					return
				}
			}
		}
	}
}

// fill stores the rest of the package around the job's READ and returns the bytes stored.
func (f *filler) fill(j fillJob) int {
	n := j.n
	n.fillMu.Lock()
	defer n.fillMu.Unlock()
	if n.writers > 0 {
		return 0
	}
	lo, hi := j.h.h.PackageSpan(j.off)
	if hi-lo > int64(len(f.buf)) || j.off < lo || j.off+j.len > hi {
		// The file changed shape since the READ (another chunk size); leave it.
		return 0
	}
	buf := f.buf[:hi-lo]
	k, err := j.h.h.ReadAt(context.Background(), buf, lo)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0 // the READs of those pages will report it
	}
	buf = buf[:k]
	if f.read != nil {
		f.read()
	}
	stored := 0
	before := min(int64(k), j.off-lo)
	if before > 0 && n.WriteCache(lo, buf[:before]) == 0 {
		stored += int(before)
	}
	if after := j.off + j.len - lo; after < int64(k) && n.WriteCache(j.off+j.len, buf[after:]) == 0 {
		stored += k - int(after)
	}
	return stored
}

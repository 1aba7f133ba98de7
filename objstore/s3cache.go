package objstore

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// diskCache keeps recently used objects of a remote store in a local directory, as the
// store holds them: ciphertext, which the engine authenticates on every read like what
// comes from the network. It is bounded in bytes (least recently used go first) and
// optional: a put that fails, or a file that has gone, is only a miss.
//
// The cache lives for one process: it empties its directory when it opens. Files written
// just before a power cut may be torn, and an object rewritten by a later process under
// the same ID would be stale; starting empty rules out both without a checksum per file.
// So the directory must belong to one store (one mount) only.
type diskCache struct {
	dir string
	max int64

	mu      sync.Mutex
	size    int64
	lru     *list.List // of *cacheEntry, most recently used first
	entries map[ID]*list.Element
	closed  bool
}

type cacheEntry struct {
	id   ID
	size int64
}

// cacheTmp starts temporary file names; like the objects' hex names, nothing else is
// ever created in the directory.
const cacheTmp = ".tmp-"

func newDiskCache(dir string, max int64) (*diskCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("objstore: cache directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: cache directory: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		// Only what a cache wrote: a directory given by mistake keeps everything else.
		if _, perr := ParseID(name); perr == nil || strings.HasPrefix(name, cacheTmp) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("objstore: emptying the cache directory: %w", err)
			}
		}
	}
	return &diskCache{dir: dir, max: max, lru: list.New(), entries: make(map[ID]*list.Element)}, nil
}

func (c *diskCache) path(id ID) string { return filepath.Join(c.dir, id.String()) }

// readAt serves a read from the cache; ok is false on a miss.
func (c *diskCache) readAt(id ID, p []byte, off int64) (n int, ok bool, err error) {
	c.mu.Lock()
	el, hit := c.entries[id]
	if hit {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !hit {
		return 0, false, nil
	}
	// An eviction may remove the file between the lookup and the open: then it is a
	// miss. Once open, the file stays readable even if it is removed meanwhile.
	f, err := os.Open(c.path(id))
	if err != nil {
		return 0, false, nil
	}
	defer f.Close()
	n, err = f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return 0, false, nil
	}
	return n, true, err
}

// put stores a copy of an object, evicting others to stay within the bound. Objects larger
// than an eighth of the cache are not kept: one would push out many.
func (c *diskCache) put(id ID, data []byte) {
	size := int64(len(data))
	if size > c.max/8 || !c.roomOnDisk(size) {
		c.remove(id) // an older copy must not outlive the new content
		return
	}
	f, err := os.CreateTemp(c.dir, cacheTmp+"*")
	if err != nil {
		c.remove(id)
		return
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if werr == nil && !c.closed {
		werr = os.Rename(f.Name(), c.path(id))
	} else if werr == nil {
		werr = errClosed
	}
	if werr != nil {
		os.Remove(f.Name())
		c.dropLocked(id)
		return
	}
	if el, ok := c.entries[id]; ok {
		e := el.Value.(*cacheEntry)
		c.size += size - e.size
		e.size = size
		c.lru.MoveToFront(el)
	} else {
		c.entries[id] = c.lru.PushFront(&cacheEntry{id, size})
		c.size += size
	}
	for c.size > c.max {
		last := c.lru.Back()
		if last == nil {
			break
		}
		c.dropLocked(last.Value.(*cacheEntry).id)
	}
}

// roomOnDisk: the cache gives way to everything else on its filesystem (the metadata may
// live there too): it writes nothing that would leave less than a sixteenth of the
// filesystem, or 256 MiB, free.
func (c *diskCache) roomOnDisk(size int64) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(c.dir, &st); err != nil {
		return false
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	total, avail := st.Blocks*bs, st.Bavail*bs
	keep := max(total/16, 256<<20)
	return avail > keep+uint64(size)
}

func (c *diskCache) remove(id ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(id)
}

func (c *diskCache) dropLocked(id ID) {
	el, ok := c.entries[id]
	if !ok {
		return
	}
	c.lru.Remove(el)
	delete(c.entries, id)
	c.size -= el.Value.(*cacheEntry).size
	os.Remove(c.path(id))
}

// bytes is the cache's current size.
func (c *diskCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

func (c *diskCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}

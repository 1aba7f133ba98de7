package fs

import (
	"container/list"
	"sync"

	"github.com/ssefs/ssefs/objstore"
)

// pkgCache keeps decrypted DARE packages of stored chunks in memory, least recently
// used out first, so small random reads that land in a package already read cost a copy
// instead of a read from the store and the authentication of 64 KiB. Keys are object
// IDs, and an object is never rewritten (a new chunk version is a new object), so an
// entry never goes stale. It lives in memory only: plaintext never touches a disk. Reads
// reach it only after their file's key was authorised (Handle.ReadAt), so a revoked key
// stops cached content as it stops stored content.
type pkgCache struct {
	mu      sync.Mutex
	max     int // entries
	entries map[pkgKey]*list.Element
	lru     list.List // of *pkgEntry, most recent first
	// grew, if set, is told the bytes the cache holds each time that grows by another
	// growStep, so a memory limit can follow what the cache really uses.
	grew      func(bytes int64)
	allocated int // package buffers made so far; reused once the cache is full
}

const growStep = 128 // packages: 8 MiB

type pkgKey struct {
	obj objstore.ID
	pkg uint32
}

type pkgEntry struct {
	key  pkgKey
	data []byte
}

// newPkgCache returns a cache of up to bytes of plaintext, or nil (no cache) for less
// than one package.
func newPkgCache(bytes int64, grew func(bytes int64)) *pkgCache {
	n := int(bytes / darePayload)
	if n < 1 {
		return nil
	}
	return &pkgCache{max: n, entries: make(map[pkgKey]*list.Element), grew: grew}
}

// reserve returns a buffer for a package about to be added: the least recently used
// entry's once the cache is full, so a miss neither allocates nor clears 64 KiB.
func (c *pkgCache) reserve() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() >= c.max {
		el := c.lru.Back()
		ent := el.Value.(*pkgEntry)
		delete(c.entries, ent.key)
		c.lru.Remove(el)
		return ent.data[:cap(ent.data)]
	}
	c.allocated++
	if c.grew != nil && c.allocated%growStep == 0 {
		c.grew(int64(c.allocated) * darePayload)
	}
	return make([]byte, darePayload)
}

// copyOut copies the cached package's bytes from off into p and reports whether the
// package was cached and long enough.
func (c *pkgCache) copyOut(k pkgKey, p []byte, off int) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.entries[k]
	if el == nil {
		return false
	}
	data := el.Value.(*pkgEntry).data
	if off+len(p) > len(data) {
		return false
	}
	copy(p, data[off:])
	c.lru.MoveToFront(el)
	return true
}

// add caches a decrypted package; the cache owns data from now on.
func (c *pkgCache) add(k pkgKey, data []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.entries[k]; el != nil {
		c.lru.MoveToFront(el)
		return
	}
	var ent *pkgEntry
	if c.lru.Len() >= c.max {
		// Reuse the evicted entry: no garbage per insert.
		el := c.lru.Back()
		ent = el.Value.(*pkgEntry)
		delete(c.entries, ent.key)
		c.lru.Remove(el)
		clear(ent.data)
	}
	if ent == nil {
		ent = &pkgEntry{}
	}
	ent.key, ent.data = k, data
	c.entries[k] = c.lru.PushFront(ent)
}

// cipherPool holds read buffers for the ciphertext of one chunk of the default size,
// so a read does not allocate a megabyte for every request.
var cipherPool = sync.Pool{New: func() any {
	b := make([]byte, (DefaultChunkSize/darePayload)*darePackage)
	return &b
}}

func getCipherBuf(n int64) (buf []byte, put func()) {
	bp := cipherPool.Get().(*[]byte)
	if int64(cap(*bp)) < n {
		cipherPool.Put(bp)
		return make([]byte, n), func() {}
	}
	return (*bp)[:n], func() { cipherPool.Put(bp) }
}

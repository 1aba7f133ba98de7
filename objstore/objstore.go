// Package objstore keeps ciphertext chunk objects. It knows nothing of files, keys or
// metadata: an object is a random 16-byte ID and opaque bytes.
package objstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID names one object. IDs are random so the store learns neither names nor structure.
type ID [16]byte

// NewID returns a fresh random ID.
func NewID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("objstore: crypto/rand failed: %v", err))
	}
	return id
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses the hex form that String returns.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("objstore: bad object id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("objstore: bad object id %q: %w", s, err)
	}
	return id, nil
}

// ErrNotExist is returned (wrapped) for an object the store does not hold.
var ErrNotExist = errors.New("object does not exist")

// Store is where chunk objects live. Implementations must be safe for concurrent use.
type Store interface {
	// Put creates or atomically replaces an object. It does not make it durable: see Sync.
	// Replacing is atomic: readers see the old content or the new, never a mix. A new
	// object must not be read before its Put returns (IDs are fresh and random, so nothing
	// refers to one yet); a crash in the middle of creating one may leave it torn, as
	// unreferenced garbage.
	Put(ctx context.Context, id ID, data []byte) error
	// ReadAt reads from an object with io.ReaderAt semantics (io.EOF past the end),
	// so a reader can fetch only the DARE packages a range needs.
	ReadAt(ctx context.Context, id ID, p []byte, off int64) (int, error)
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, id ID) error
	// Sync makes the named objects (their content and their names) durable.
	Sync(ctx context.Context, ids []ID) error
	// Walk calls fn for every object, for fsck and garbage collection.
	Walk(ctx context.Context, fn func(id ID, size int64) error) error
	Close() error
}

// Usage is what a store can say about its capacity, for statfs.
type Usage struct {
	TotalBytes, FreeBytes, AvailBytes uint64
}

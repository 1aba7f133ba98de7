// Package fs is the filesystem engine: the namespace and file I/O on inodes, and the one
// place where content is chunked, encrypted and decrypted. Both frontends (FUSE, S3) call
// only this package; it alone talks to the metadata store, the KMS and the object store.
package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// Ino is an inode number as the frontends see it.
type Ino = uint64

// RootIno is the root of the store: its children are the buckets.
const RootIno Ino = uint64(meta.RootIno)

// DefaultChunkSize is the plaintext size of a chunk for new files.
const DefaultChunkSize = 1 << 20

const (
	maxNameLen       = 255
	maxXattrNameLen  = 255
	maxXattrValueLen = 64 << 10
	// gcInterval bounds how long replaced chunk objects wait for the metadata sync that
	// makes their deletion safe.
	gcInterval = 30 * time.Second
)

// Config wires the engine to its stores.
type Config struct {
	Meta   *meta.DB
	Store  objstore.Store
	Sealer *keys.Sealer
	Logger *slog.Logger
	// ChunkSize is the plaintext chunk size for new files (DefaultChunkSize if 0).
	ChunkSize uint32
	// WriteBuffer bounds the plaintext held in write-back buffers across all files;
	// beyond it, writers flush their own dirty chunks first.
	WriteBuffer int64
}

// Engine is the filesystem. It is safe for concurrent use.
type Engine struct {
	db        *meta.DB
	store     objstore.Store
	sealer    *keys.Sealer
	log       *slog.Logger
	chunkSize uint32
	bufLimit  int64

	// nsMu serialises namespace changes with opening and releasing files, so an unlink
	// sees whether the inode is open and an open never resurrects a deleted inode.
	nsMu  sync.Mutex
	files map[Ino]*openFile // guarded by nsMu

	bucketMu    sync.Mutex
	bucketNames map[Ino]string

	dirty dirtyAccounting

	gcMu     sync.Mutex
	garbage  []objstore.ID        // replaced objects, deletable once the metadata is synced
	unsynced map[objstore.ID]bool // objects written but not yet made durable

	subsMu sync.Mutex
	subs   []chan<- Change

	stop chan struct{}
	done chan struct{}
}

// New opens the engine over its stores and reclaims what a crash left behind.
func New(cfg Config) (*Engine, error) {
	if cfg.Meta == nil || cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("fs: Meta, Store and Sealer are required")
	}
	e := &Engine{
		db:          cfg.Meta,
		store:       cfg.Store,
		sealer:      cfg.Sealer,
		log:         cfg.Logger,
		chunkSize:   cfg.ChunkSize,
		bufLimit:    cfg.WriteBuffer,
		files:       make(map[Ino]*openFile),
		bucketNames: make(map[Ino]string),
		unsynced:    make(map[objstore.ID]bool),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.chunkSize == 0 {
		e.chunkSize = DefaultChunkSize
	}
	if e.bufLimit <= 0 {
		e.bufLimit = 256 << 20
	}
	if err := e.reclaimOrphans(); err != nil {
		return nil, err
	}
	go e.gcLoop()
	return e, nil
}

// Close flushes every open file, makes everything durable and stops background work.
// The stores themselves are closed by their owner.
func (e *Engine) Close() error {
	err := e.SyncAll(context.Background())
	close(e.stop)
	<-e.done
	return err
}

// reclaimOrphans deletes inodes that were unlinked while open when the process died.
func (e *Engine) reclaimOrphans() error {
	var orphans []meta.Ino
	if err := e.db.View(func(tx *meta.Tx) error {
		return tx.Orphans(func(ino meta.Ino) bool { orphans = append(orphans, ino); return true })
	}); err != nil {
		return fmt.Errorf("fs: listing orphans: %w", err)
	}
	for _, ino := range orphans {
		if err := e.db.Update(func(tx *meta.Tx) error {
			chunks, err := tx.DeleteInode(ino)
			if err != nil && !errors.Is(err, meta.ErrNotFound) {
				return err
			}
			e.discardChunks(chunks)
			return nil
		}); err != nil {
			return fmt.Errorf("fs: reclaiming orphan %d: %w", ino, err)
		}
	}
	return nil
}

// Attr is what stat shows of an inode.
type Attr struct {
	Ino                 Ino
	Mode                uint32 // S_IFMT | permissions
	Nlink               uint32
	Uid, Gid            uint32
	Rdev                uint32
	Size                uint64
	Atime, Mtime, Ctime time.Time
	Gen                 uint64
}

// Blocks returns the 512-byte blocks the file occupies, as du expects (its logical
// size rounded up; sparse holes are not tracked yet).
func (a Attr) Blocks() uint64 { return (a.Size + 511) / 512 }

// IsDir tells whether the inode is a directory.
func (a Attr) IsDir() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }

func attrOf(in *meta.Inode) Attr {
	return Attr{
		Ino: uint64(in.Ino), Mode: in.Mode, Nlink: in.Nlink, Uid: in.Uid, Gid: in.Gid,
		Rdev: in.Rdev, Size: in.Size, Gen: in.Gen,
		Atime: time.Unix(0, in.Atime), Mtime: time.Unix(0, in.Mtime), Ctime: time.Unix(0, in.Ctime),
	}
}

// Change describes a namespace or content change, for frontends that cache (the kernel's
// caches behind FUSE). Name is set for entry changes in Parent.
type Change struct {
	Ino    Ino
	Parent Ino
	Name   string
}

// Subscribe returns a channel that receives changes made through any frontend. A slow
// subscriber misses changes rather than blocking the engine, so it must rely on
// timeouts as a fallback.
func (e *Engine) Subscribe() <-chan Change {
	ch := make(chan Change, 1024)
	e.subsMu.Lock()
	e.subs = append(e.subs, ch)
	e.subsMu.Unlock()
	return ch
}

func (e *Engine) publish(c Change) {
	e.subsMu.Lock()
	defer e.subsMu.Unlock()
	for _, s := range e.subs {
		select {
		case s <- c:
		default:
		}
	}
}

func validName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("name %q: %w", name, ErrInvalid)
	case len(name) > maxNameLen:
		return fmt.Errorf("name of %d bytes: %w", len(name), ErrNameTooLong)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q: %w", name, ErrInvalid)
	}
	return nil
}

// ValidBucketName applies S3's bucket naming rules, since every bucket is also an S3 bucket.
func ValidBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters: %w", name, ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q may hold only a-z, 0-9, '.' and '-': %w", name, ErrInvalid)
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit: %w", name, ErrInvalid)
	}
	if strings.Contains(name, "..") {
		return fmt.Errorf("bucket name %q has two adjacent dots: %w", name, ErrInvalid)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func now() int64 { return time.Now().UnixNano() }

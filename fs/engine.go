// Package fs is the filesystem engine: the namespace and file I/O on inodes, and the one
// place where content is chunked, encrypted and decrypted. Both frontends (FUSE, S3) call
// only this package; it alone talks to the metadata store, the KMS and the object store.
package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

// DefaultReadCache is how much decrypted content the engine keeps for small reads. A
// miss costs the decryption of a whole 64 KiB package (the unit DARE authenticates), 16
// times what a 4 KiB read returns, so the cache is what makes random reads of a working
// set cheap; the kernel's page cache does not keep them (fio's random reads on a FUSE
// mount all reach the daemon, for every peer). It fills only as reads need it, and the
// process's soft memory limit grows with it (see cmd/ssefs limitMemory).
const DefaultReadCache = 256 << 20

const (
	maxNameLen       = 255
	maxXattrNameLen  = 255
	maxXattrValueLen = 64 << 10
	// syncInterval is the background commit, as a journaling filesystem has one: it
	// bounds what a power cut can take from files nobody fsynced, how long replaced
	// chunk objects wait for the metadata sync that makes deleting them safe, and how
	// much a later fsync has to sync.
	syncInterval = 30 * time.Second
)

// Config wires the engine to its stores.
type Config struct {
	Meta   *meta.DB
	Store  objstore.Store
	Sealer *keys.Sealer
	Logger *slog.Logger
	// ChunkSize is the plaintext chunk size for new files (DefaultChunkSize if 0).
	ChunkSize uint32
	// InlineMax is the largest chunk kept in its record instead of an object
	// (DefaultInlineMax if 0; none if negative).
	InlineMax int
	// WriteBuffer bounds the plaintext held in write-back buffers across all files;
	// beyond it, writers flush their own dirty chunks first.
	WriteBuffer int64
	// ReadCache bounds the decrypted packages kept in memory for small reads
	// (DefaultReadCache if 0; none if negative).
	ReadCache int64
	// ReadCacheGrew, if set, is told how many bytes the read cache holds as it fills
	// (in steps of 8 MiB), for a memory limit that follows it.
	ReadCacheGrew func(bytes int64)
	// InodesHeld, if set, is told how many inodes the frontends hold each time that number
	// crosses another multiple of HeldStep, either way: every inode the kernel keeps costs
	// memory in the frontend, for a memory limit that follows it.
	InodesHeld func(inodes int)
	// KeepOrphans leaves unlinked inodes on the orphan list at New and Close instead of
	// deleting them, so that fsck can report them and only its --repair deletes them.
	KeepOrphans bool
	// WatchBuffer is how many changes a subscriber's channel holds before it misses some
	// (DefaultWatchBuffer if 0); small in tests that make watchers miss changes.
	WatchBuffer int
}

// DefaultWatchBuffer is Config.WatchBuffer's default.
const DefaultWatchBuffer = 1024

// Engine is the filesystem. It is safe for concurrent use.
type Engine struct {
	db        *meta.DB
	store     objstore.Store
	sealer    *keys.Sealer
	log       *slog.Logger
	chunkSize uint32
	inlineMax int // chunks up to this size are kept in their record (Config.InlineMax)
	bufLimit  int64
	// keepOrphans: see Config.KeepOrphans.
	keepOrphans bool
	watchBuffer int // Config.WatchBuffer

	// nsMu serialises namespace changes with opening and releasing files, so an unlink
	// sees whether the inode is open and an open never resurrects a deleted inode.
	nsMu  sync.Mutex
	files map[Ino]*openFile // guarded by nsMu
	// kernelRefs counts the frontends' references to inodes (the kernel's lookups);
	// orphans are unlinked inodes kept until no handle and no reference is left, so an
	// open racing with a rename over its target still finds the inode it looked up.
	kernelRefs map[Ino]int  // guarded by nsMu
	orphans    map[Ino]bool // guarded by nsMu
	inodesHeld func(inodes int)
	heldSteps  int // len(kernelRefs)/HeldStep when inodesHeld was last told; guarded by nsMu

	// securityXattrs is false while no inode ever got a security.* xattr: getxattr of
	// such a name (ls -l asks security.selinux of every file) needs no lookup then.
	securityXattrs atomic.Bool

	// drops counts the committed transactions that took a link from an inode, so
	// that Lookups can tell whether what it read may name an inode gone since.
	drops atomic.Uint64

	bucketMu    sync.Mutex
	bucketNames map[Ino]string
	// bucketKeys caches each bucket's default key name ("" for none) for sealNewKey,
	// which every create asks; SetBucketEncryption updates it after its commit.
	bucketKeys map[Ino]string
	// lastCreateDir remembers the bucket of the directory the last file was created in
	// (dirBucket), so that a run of creates in one directory seals each new key without
	// first reading the directory in a transaction of its own: a directory never moves to
	// another bucket, and Create checks the guess in its own transaction anyway.
	lastCreateDir atomic.Pointer[dirBucket]
	// pending holds the files created but not yet committed (pending.go). stageMu keeps
	// the name-adding transactions that run without nsMu (S3 PUT's first attempt, shared)
	// apart from a create's check and staging of its name (exclusive): otherwise such a
	// transaction could read the name free before the staging and commit it after the
	// check, and the staged file would find its name taken at its commit.
	pending pendingCreates
	stageMu sync.RWMutex

	// dirtyBytes sums the capacity of all write-back buffers, for the global bound.
	dirtyBytes atomic.Int64
	// sealers bounds the chunks being encrypted at once (pipeline.go): enough to keep
	// every core busy. storers bounds the sealed chunks being stored, apart: a slow
	// store (S3) must not hold the cores, and a sealer hands its core on only once it
	// has a storer slot, so at most sealers+storers sealed buffers exist.
	sealers chan struct{}
	storers chan struct{}
	cache   *pkgCache // nil: no cache
	// readers is held (shared) by reads of stored chunks done without their file's lock,
	// and exclusively to delete replaced objects (syncDurable).
	readers sync.RWMutex

	syncMu   sync.Mutex // one syncDurable at a time
	gcMu     sync.Mutex
	garbage  []objstore.ID        // replaced objects, deletable once the metadata is synced
	unsynced map[objstore.ID]bool // objects written but not yet made durable

	subsMu   sync.Mutex
	subs     []*subscription
	seq      uint64     // of the last published change; guarded by subsMu
	progress *sync.Cond // on subsMu: a watcher marked changes done, or left

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
		inlineMax:   cfg.InlineMax,
		bufLimit:    cfg.WriteBuffer,
		keepOrphans: cfg.KeepOrphans,
		watchBuffer: cfg.WatchBuffer,
		files:       make(map[Ino]*openFile),
		kernelRefs:  make(map[Ino]int),
		inodesHeld:  cfg.InodesHeld,
		orphans:     make(map[Ino]bool),
		bucketNames: make(map[Ino]string),
		bucketKeys:  make(map[Ino]string),
		unsynced:    make(map[objstore.ID]bool),
		sealers:     make(chan struct{}, max(4, 2*runtime.GOMAXPROCS(0))),
		storers:     make(chan struct{}, storeParallel),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	e.progress = sync.NewCond(&e.subsMu)
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.chunkSize == 0 {
		e.chunkSize = DefaultChunkSize
	}
	if e.watchBuffer <= 0 {
		e.watchBuffer = DefaultWatchBuffer
	}
	if e.inlineMax == 0 {
		e.inlineMax = DefaultInlineMax
	}
	if e.bufLimit <= 0 {
		e.bufLimit = 256 << 20
	}
	switch {
	case cfg.ReadCache == 0:
		e.cache = newPkgCache(DefaultReadCache, cfg.ReadCacheGrew)
	case cfg.ReadCache > 0:
		e.cache = newPkgCache(cfg.ReadCache, cfg.ReadCacheGrew)
	}
	used, err := e.db.SecurityXattrsUsed()
	if err != nil {
		return nil, fmt.Errorf("fs: %w", err)
	}
	e.securityXattrs.Store(used)
	if !e.keepOrphans {
		if err := e.reclaimOrphans(); err != nil {
			return nil, err
		}
	}
	go e.syncLoop()
	return e, nil
}

// Close flushes every open file, makes everything durable and stops background work.
// No frontend holds anything any more, so unlinked inodes go too. The stores themselves
// are closed by their owner.
func (e *Engine) Close() error {
	err := e.SyncAll(context.Background())
	if !e.keepOrphans {
		if rerr := e.reclaimOrphans(); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			err = errors.Join(err, e.syncDurable(context.Background()))
		}
	}
	close(e.stop)
	<-e.done
	return err
}

// Reference records that a frontend (the kernel, through FUSE) holds ino, so it outlives
// its last link until Forget.
func (e *Engine) Reference(ino Ino) {
	e.nsMu.Lock()
	e.referenceLocked(ino)
	e.nsMu.Unlock()
}

// HeldStep is how far the number of held inodes moves before Config.InodesHeld hears of
// it: often enough to follow a tree being created, rarely enough to cost nothing per lookup.
const HeldStep = 4096

// referenceLocked takes a frontend's reference on ino. Must hold nsMu.
func (e *Engine) referenceLocked(ino Ino) {
	e.kernelRefs[ino]++
	e.heldChanged()
}

// heldChanged tells InodesHeld when the number of held inodes crossed a step. Must hold
// nsMu, which keeps the reports in order.
func (e *Engine) heldChanged() {
	if e.inodesHeld == nil {
		return
	}
	if steps := len(e.kernelRefs) / HeldStep; steps != e.heldSteps {
		e.heldSteps = steps
		e.inodesHeld(len(e.kernelRefs))
	}
}

// Forget drops a reference taken with Reference; an unlinked inode that nobody holds or
// has open any more is deleted.
func (e *Engine) Forget(ino Ino) {
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	if e.kernelRefs[ino]--; e.kernelRefs[ino] > 0 {
		return
	}
	delete(e.kernelRefs, ino)
	e.heldChanged()
	if err := e.deleteOrphanLocked(ino); err != nil {
		e.log.Error("deleting an unlinked inode failed; it is reclaimed at the next start", "ino", ino, "err", err)
	}
}

// held tells whether an inode is still open or referenced. Must hold nsMu.
func (e *Engine) held(ino Ino) bool { return e.files[ino] != nil || e.kernelRefs[ino] > 0 }

// deleteOrphanLocked deletes ino if it is an orphan nobody holds. Must hold nsMu.
func (e *Engine) deleteOrphanLocked(ino Ino) error {
	if !e.orphans[ino] || e.held(ino) {
		return nil
	}
	if err := e.deleteInode(meta.Ino(ino)); err != nil {
		return err
	}
	delete(e.orphans, ino)
	return nil
}

// chunkBatch bounds the chunk records one transaction deletes, well below Badger's
// per-transaction limit, so that files of any size can be truncated and deleted.
var chunkBatch = 10_000

// fitsOneTransaction tells whether all of in's chunk records can go in one transaction:
// records exist only below the file's size.
func fitsOneTransaction(in *meta.Inode) bool {
	return in.ChunkSize == 0 || in.Size/uint64(in.ChunkSize) < uint64(chunkBatch)
}

// deleteInode removes an orphan: in one transaction when its chunk records fit, else its
// chunk records in batches first, then the rest. A crash midway leaves it on the orphan
// list, and the next start finishes the job.
func (e *Engine) deleteInode(ino meta.Ino) error {
	for batched := false; ; batched = true {
		var rest []meta.Chunk
		tooBig := false
		err := e.update(func(tx *meta.Tx) error {
			in, err := tx.Inode(ino)
			if err == nil && !batched && !fitsOneTransaction(&in) {
				tooBig = true
				return nil
			}
			rest, err = tx.DeleteInode(ino)
			if errors.Is(err, meta.ErrNotFound) {
				err = nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("deleting inode %d: %w", ino, err)
		}
		if !tooBig {
			e.discardChunks(rest)
			return nil
		}
		if err := e.dropAllChunks(ino, e.discardChunks); err != nil {
			return err
		}
	}
}

// dropAllChunks deletes an inode's chunk records, a transaction per batch, handing each
// committed batch to free (its objects may go once the deletion is durable).
func (e *Engine) dropAllChunks(ino meta.Ino, free func([]meta.Chunk)) error {
	for {
		var batch []meta.Chunk
		err := e.update(func(tx *meta.Tx) error {
			batch = batch[:0]
			err := tx.Chunks(ino, 0, func(c meta.Chunk) bool {
				batch = append(batch, c)
				return len(batch) < chunkBatch
			})
			if err != nil {
				return err
			}
			for _, c := range batch {
				if err := tx.DeleteChunk(ino, c.Index); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("deleting the chunks of inode %d: %w", ino, err)
		}
		free(batch)
		if len(batch) < chunkBatch {
			return nil
		}
	}
}

// reclaimOrphans deletes unlinked inodes nobody holds: at start, those a crash left.
func (e *Engine) reclaimOrphans() error {
	var orphans []meta.Ino
	if err := e.db.View(func(tx *meta.Tx) error {
		return tx.Orphans(func(ino meta.Ino) bool { orphans = append(orphans, ino); return true })
	}); err != nil {
		return fmt.Errorf("fs: listing orphans: %w", err)
	}
	for _, ino := range orphans {
		if err := e.deleteInode(ino); err != nil {
			return fmt.Errorf("fs: reclaiming orphan: %w", err)
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
	// Origin is the frontend whose call made the change (see WithOrigin): a frontend
	// skips its own, since its clients already know what they did.
	Origin string
	// Removed: the entry Parent/Name no longer refers to Ino (deleted, or replaced by
	// another inode, which comes as its own Change), so a cache may drop it
	// (go-fuse NotifyDelete); otherwise Parent/Name refers to Ino now.
	Removed bool
	// Content: Ino's content, size or times changed in place, so cached pages and
	// attributes are stale. (S3 writes never do this: they link new inodes.)
	Content bool
	// Seq orders changes: it grows by one with each change published.
	Seq uint64
}

type originKey struct{}

// WithOrigin marks the calls made with ctx as coming from the named frontend, so that
// the changes they publish carry it as Change.Origin.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
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
	if ip := net.ParseIP(name); ip != nil {
		return fmt.Errorf("bucket name %q is formatted as an IP address: %w", name, ErrInvalid)
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("bucket name %q starts with the reserved %q: %w", name, p, ErrInvalid)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return fmt.Errorf("bucket name %q ends with the reserved %q: %w", name, s, ErrInvalid)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func now() int64 { return time.Now().UnixNano() }

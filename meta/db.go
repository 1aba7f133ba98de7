package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
)

var errClosed = errors.New("meta: database is closed")

// Options tune Open.
type Options struct {
	Logger   *slog.Logger // badger's own log lines go here at Warn/Error only; nil = discard
	ReadOnly bool

	// MinFree turns the space guard on (space.go): a commit that only adds or changes
	// records is refused with ENOSPC when it would leave less than this many bytes
	// available on the metadata's filesystem; commits that delete pass. 0 = no guard.
	MinFree uint64
	// SpareFile, SpareSize: a file of zeros the guard keeps allocated outside the
	// metadata directory, and removes when a deletion finds no room left for Badger's
	// log, or before Close below MinFree. "" or 0 = none. Only with MinFree.
	SpareFile string
	SpareSize uint64

	// statfs replaces the guard's look at the available bytes, for tests.
	statfs func() (uint64, error)
}

const (
	gcInterval     = 5 * time.Minute
	gcDiscardRatio = 0.5

	seqBandwidth = 1000
	// maxConflictRetries bounds Update's retries so a pathological livelock surfaces as
	// an error instead of a hang.
	maxConflictRetries = 1000
)

// DB is the metadata store. It is safe for concurrent use.
type DB struct {
	bdb      *badger.DB
	clock    *clock
	readOnly bool
	space    *spaceGuard // nil: no guard
	commits  atomic.Uint64

	ino     *sequence
	version *sequence

	stopGC    chan struct{}
	gcDone    chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// MemTableSize is Badger's memtable size here. Its log is a file of twice that, written
// through mmap: the filesystem must keep room for it (objstore.Local.KeepFree and the
// space guard, Options.MinFree), or a write into a page it cannot back kills the process
// with SIGBUS.
const MemTableSize = 32 << 20

// Open opens (creating if needed) the metadata store in dir, encrypted with a 32-byte
// key.
func Open(dir string, encryptionKey []byte, opts Options) (*DB, error) {
	if len(encryptionKey) != 32 {
		return nil, fmt.Errorf("meta: encryption key must be 32 bytes (AES-256), got %d", len(encryptionKey))
	}
	bopts := badger.DefaultOptions(dir).
		WithEncryptionKey(encryptionKey).
		WithIndexCacheSize(64 << 20).
		WithSyncWrites(false).
		WithNumVersionsToKeep(1).
		WithBlockCacheSize(64 << 20).
		WithMemTableSize(MemTableSize).
		WithLogger(logAdapter{opts.Logger}).
		WithReadOnly(opts.ReadOnly)
	space := newSpaceGuard(dir, opts)
	space.beforeOpen()
	bdb, err := badger.OpenManaged(bopts)
	if err != nil {
		if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
			return nil, fmt.Errorf("meta: open %s: wrong metadata encryption key: %w", dir, err)
		}
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	space.afterOpen()
	db := &DB{
		bdb:      bdb,
		clock:    newClock(bdb),
		readOnly: opts.ReadOnly,
		space:    space,
		ino:      &sequence{key: sequenceKey("ino"), min: uint64(RootIno) + 1},
		version:  &sequence{key: sequenceKey("version"), min: 1},
		stopGC:   make(chan struct{}),
		gcDone:   make(chan struct{}),
	}
	db.ino.db, db.version.db = db, db
	if err := db.init(); err != nil {
		bdb.Close()
		space.close()
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	db.initXattrsRecord()
	if opts.ReadOnly {
		close(db.gcDone)
	} else {
		go db.gcLoop()
	}
	return db, nil
}

// init checks the superblock and creates the superblock and root on first use.
func (db *DB) init() error {
	var (
		format  uint64
		found   bool
		hasRoot bool
	)
	err := db.view(func(txn *badger.Txn) error {
		item, err := txn.Get(superblockKey())
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if err := item.Value(func(v []byte) error {
			format, err = decodeSuperblock(v)
			return err
		}); err != nil {
			return err
		}
		_, err = txn.Get(inodeKey(RootIno))
		if err == nil {
			hasRoot = true
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if found && format != FormatVersion {
		return fmt.Errorf("metadata format version %d, this ssefs reads %d", format, FormatVersion)
	}
	if found && hasRoot {
		return nil
	}
	if db.readOnly {
		return errors.New("not initialised (no superblock or root inode) and opened read-only")
	}
	err = db.Update(func(tx *Tx) error {
		if !found {
			if err := tx.set(superblockKey(), encodeSuperblock(FormatVersion)); err != nil {
				return err
			}
		}
		if _, err := tx.Inode(RootIno); err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		now := time.Now().UnixNano()
		return tx.PutInode(&Inode{
			Ino:    RootIno,
			Mode:   syscall.S_IFDIR | 0o755,
			Nlink:  2,
			Atime:  now,
			Mtime:  now,
			Ctime:  now,
			Gen:    1,
			Parent: RootIno,
		})
	})
	if err != nil {
		return err
	}
	// A fresh store must not come back half-initialised after a power cut.
	return db.bdb.Sync()
}

func (db *DB) gcLoop() {
	defer close(db.gcDone)
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stopGC:
			return
		case <-t.C:
		}
		// Badger rewrites one value log file per successful call; keep going while it
		// finds work, but give way promptly to Close.
		for db.bdb.RunValueLogGC(gcDiscardRatio) == nil {
			select {
			case <-db.stopGC:
				return
			default:
			}
		}
	}
}

// Close stops background work, hands back unused sequence leases and closes Badger
// (which flushes and syncs). Calling it again returns the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		if !db.readOnly {
			close(db.stopGC)
		}
		<-db.gcDone
		var errs []error
		if !db.readOnly {
			errs = append(errs, db.ino.release(), db.version.release())
		}
		db.space.beforeClose()
		if err := db.bdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("meta: close: %w", err))
		}
		db.space.close()
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// Sync makes every committed transaction durable.
func (db *DB) Sync() error {
	if db.closed.Load() {
		return errClosed
	}
	if err := db.bdb.Sync(); err != nil {
		return fmt.Errorf("meta: sync: %w", err)
	}
	return nil
}

// Update runs fn in one read-write transaction and commits it. On a write conflict fn
// runs again in a fresh transaction, so fn must be idempotent and must not keep results
// from an attempt that failed. An error returned by fn aborts the transaction and is
// returned unchanged. With the space guard on (Options.MinFree), a commit it refuses
// fails with an error wrapping syscall.ENOSPC, and nothing of it is written.
func (db *DB) Update(fn func(tx *Tx) error) error {
	if db.closed.Load() {
		return errClosed
	}
	return db.update(fn)
}

// UpdateEach is Update for a caller that must prepare each attempt before its
// transaction begins: attempt runs first, then the function it returns in a fresh
// transaction.
func (db *DB) UpdateEach(attempt func() func(tx *Tx) error) error {
	if db.closed.Load() {
		return errClosed
	}
	return db.updateEach(attempt)
}

// update is Update without the closed check, for Close's own last writes.
func (db *DB) update(fn func(tx *Tx) error) error {
	return db.updateEach(func() func(tx *Tx) error { return fn })
}

func (db *DB) updateEach(attempt func() func(tx *Tx) error) error {
	for try := 0; ; try++ {
		err := db.tryUpdate(attempt())
		if errors.Is(err, badger.ErrConflict) && try < maxConflictRetries {
			if try >= 10 {
				time.Sleep(time.Duration(try) * 10 * time.Microsecond)
			}
			continue
		}
		return err
	}
}

func (db *DB) tryUpdate(fn func(tx *Tx) error) error {
	err := db.rawUpdate(func(txn *badger.Txn) error {
		tx := &Tx{txn: txn}
		if err := fn(tx); err != nil {
			return err
		}
		return db.space.admit(tx)
	})
	if err == nil {
		db.commits.Add(1)
	}
	return err
}

// Commits counts the transactions committed since Open: each is a hand-off to Badger's
// writer and a log write, the unit the engine's batching saves.
func (db *DB) Commits() uint64 { return db.commits.Load() }

// RoomFor returns the space guard's answer for a commit that adds about logBytes of
// records, asked ahead of it: for work acknowledged before it is committed (a deferred
// create), which must be refused when its commit would be.
func (db *DB) RoomFor(logBytes uint64) error {
	if db.closed.Load() {
		return errClosed
	}
	return db.space.admit(&Tx{logBytes: logBytes})
}

// View runs fn in one read-only transaction (a consistent snapshot).
func (db *DB) View(fn func(tx *Tx) error) error {
	if db.closed.Load() {
		return errClosed
	}
	return db.view(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
}

// view runs fn in one read-only Badger transaction.
func (db *DB) view(fn func(txn *badger.Txn) error) error {
	txn := db.clock.begin(false)
	defer db.clock.end(txn)
	return fn(txn)
}

// Mark commits key = value outside the store's own key space (its first byte must be
// 0xf0 or above: meta never uses those), in a transaction of its own through the same
// commit path as every other. A measurement watching Badger's commit stream (which
// delivers commits in the order they were written) knows, once the mark comes through,
// that everything committed before it has passed: fs/scalesim_test.go.
func (db *DB) Mark(key, value []byte) error {
	if len(key) == 0 || key[0] < 0xf0 {
		return fmt.Errorf("meta: mark %x: not outside the store's key space", key)
	}
	return db.rawUpdate(func(txn *badger.Txn) error { return txn.Set(key, value) })
}

// rawUpdate runs fn in one read-write Badger transaction and commits it: the one commit
// path, under Update's Tx and space guard, and bare for marks and for tests that plant
// records Tx cannot write. An error from fn aborts and is returned unchanged.
func (db *DB) rawUpdate(fn func(txn *badger.Txn) error) error {
	txn := db.clock.begin(true)
	defer db.clock.end(txn)
	if err := fn(txn); err != nil {
		return err
	}
	if err := db.clock.commit(txn); err != nil {
		return fmt.Errorf("meta: commit: %w", err)
	}
	return nil
}

// NextIno returns a fresh inode number, never 0 or RootIno, never one handed out before.
func (db *DB) NextIno() (Ino, error) {
	v, err := db.ino.next()
	if err != nil {
		return 0, fmt.Errorf("meta: next inode number: %w", err)
	}
	return Ino(v), nil
}

// NextVersion returns a fresh chunk version, >= 1, never one handed out before: it feeds
// the chunk key derivation, so a repeat would reuse a key/nonce pair.
func (db *DB) NextVersion() (uint64, error) {
	v, err := db.version.next()
	if err != nil {
		return 0, fmt.Errorf("meta: next version: %w", err)
	}
	return v, nil
}

// Size returns the on-disk size of Badger's LSM tree and value log, as Badger last
// measured them.
func (db *DB) Size() (lsm, vlog int64) { return db.bdb.Size() }

// sequence hands out numbers from a leased range, like badger.Sequence, but syncs the
// lease to disk before using it. badger.Sequence only commits the lease, and with
// SyncWrites off a power cut could roll it back and hand the same numbers out again.
type sequence struct {
	db  *DB
	key []byte
	min uint64

	mu           sync.Mutex
	nextV, lease uint64 // numbers in [nextV, lease) are ours to hand out
}

func (s *sequence) next() (uint64, error) {
	if s.db.readOnly {
		return 0, errors.New("store is read-only")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextV >= s.lease {
		if err := s.extend(); err != nil {
			return 0, err
		}
	}
	v := s.nextV
	s.nextV++
	return v, nil
}

func (s *sequence) extend() error {
	var start, end uint64
	err := s.db.Update(func(tx *Tx) error {
		start = s.min
		stored, err := s.stored(tx)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			start = max(start, stored)
		}
		if start > math.MaxUint64-seqBandwidth {
			return errors.New("sequence exhausted")
		}
		end = start + seqBandwidth
		return tx.set(s.key, encodeSequence(end))
	})
	if err != nil {
		return err
	}
	if err := s.db.bdb.Sync(); err != nil {
		return err
	}
	s.nextV, s.lease = start, end
	return nil
}

// stored reads the end of the last lease.
func (s *sequence) stored(tx *Tx) (uint64, error) {
	item, err := tx.txn.Get(s.key)
	if err != nil {
		return 0, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return 0, err
	}
	return decodeSequence(v)
}

// release gives back the unused rest of the lease, so a clean restart does not skip a
// thousand numbers. Only numbers never handed out are returned.
func (s *sequence) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextV >= s.lease {
		return nil
	}
	err := s.db.update(func(tx *Tx) error {
		stored, err := s.stored(tx)
		if err != nil {
			return err
		}
		if stored != s.lease {
			return nil // someone else owns the range now; leave it
		}
		// One small record, written at Close: on a full disk it may use the room kept
		// for deletions.
		tx.freeing()
		return tx.set(s.key, encodeSequence(s.nextV))
	})
	if errors.Is(err, syscall.ENOSPC) {
		// Not giving the numbers back only skips them; failing Close for it would report
		// a clean unmount as failed.
		return nil
	}
	if err != nil {
		return fmt.Errorf("meta: release sequence: %w", err)
	}
	s.lease = s.nextV
	return nil
}

// logAdapter sends Badger's warnings and errors to slog and drops its chatter.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Errorf(format string, args ...any) {
	if a.l != nil {
		a.l.Log(context.Background(), slog.LevelError, "badger: "+trimNL(fmt.Sprintf(format, args...)))
	}
}

func (a logAdapter) Warningf(format string, args ...any) {
	if a.l != nil {
		a.l.Log(context.Background(), slog.LevelWarn, "badger: "+trimNL(fmt.Sprintf(format, args...)))
	}
}

func (logAdapter) Infof(string, ...any)  {}
func (logAdapter) Debugf(string, ...any) {}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

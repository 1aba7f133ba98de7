package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/cmd/ssefs/internal/metrics"
	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// The data directory's layout.
const (
	lockFile      = "lock"
	masterKeyFile = "master.key" // only when ssefs generated the key itself
	metaKeyFile   = "meta.key"   // the Badger key, sealed by the KMS; doubles as key check
	metaDir       = "meta"
	metaSpareFile = "meta.spare" // zeros the metadata falls back on when the disk is full
	objectsDir    = "objects"

	generatedKeyName = "ssefs-default-key"
)

// checkMountpoint refuses a mountpoint the kernel would refuse or that would hide data.
func checkMountpoint(mp string) (string, error) {
	abs, err := filepath.Abs(mp)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", mp, err)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("mountpoint %s does not exist", abs)
	case errors.Is(err, syscall.ENOTCONN):
		return "", fmt.Errorf("mountpoint %s is a stale FUSE mount whose server is gone; run: umount %s", abs, abs)
	case err != nil:
		return "", fmt.Errorf("mountpoint %s: %w", abs, err)
	case !st.IsDir():
		return "", fmt.Errorf("mountpoint %s is not a directory", abs)
	}
	if mounted, err := isMountpoint(abs); err != nil {
		return "", fmt.Errorf("mountpoint %s: reading /proc/self/mountinfo: %w", abs, err)
	} else if mounted {
		return "", fmt.Errorf("mountpoint %s is busy: something is already mounted there", abs)
	}
	d, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", abs, err)
	}
	names, _ := d.Readdirnames(1)
	d.Close()
	if len(names) > 0 {
		return "", fmt.Errorf("mountpoint %s is not empty: mounting would hide its files", abs)
	}
	return abs, nil
}

func isMountpoint(abs string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// Field 5 is the mount point, with spaces and such octal-escaped.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == abs {
			return true, nil
		}
	}
	return false, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// storeConfig is what opening a data directory takes, whichever command opens it.
type storeConfig struct {
	dataDir       string
	kms           *kmsConfig
	keyCacheTTL   time.Duration
	writeBufferMB int
	readCacheMB   int
	// create makes a new data directory if there is none (mount does); the other commands
	// work only on an existing one.
	create bool
	// keepOrphans: fsck's engine leaves unlinked inodes for fsck to report (fs.Config).
	keepOrphans bool
	objStore    *objStoreFlags // --store*; nil: SSEFS_STORE_* and what the data directory records
	metrics     *metrics.Set   // nil: none; else the KMS, key cache and object store report to it
}

// dataStore is an open data directory with everything built on it.
type dataStore struct {
	dir     string
	lock    *os.File
	kms     *openedKMS
	metaKey []byte // the Badger key, kept to re-seal it (key rotate --metadata)
	db      *meta.DB
	store   objstore.Store
	engine  *fs.Engine
	closed  bool

	metaMu sync.Mutex // one meta.key rotation at a time
}

func (d *dataStore) close() error {
	if d == nil || d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.engine != nil {
		errs = append(errs, d.engine.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.kms != nil {
		errs = append(errs, d.kms.Close())
	}
	clear(d.metaKey)
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}

// openDataDir locks the data directory, unseals its metadata key with the configured KMS
// and opens the metadata, the object store and the engine.
func openDataDir(ctx context.Context, cfg storeConfig, stderr io.Writer, log *slog.Logger) (_ *dataStore, err error) {
	memLimit := limitMemory(cfg)
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", cfg.dataDir, err)
	}
	if cfg.create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("--data-dir %s: %w", dir, err)
		}
	} else if _, err := os.Stat(filepath.Join(dir, metaKeyFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("data directory %s holds no ssefs store (no %s): give its --data-dir", dir, metaKeyFile)
		}
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	d := &dataStore{dir: dir}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.lock, err = lockDataDir(dir); err != nil {
		return nil, err
	}
	if d.kms, err = cfg.kms.open(ctx, dir, stderr, log); err != nil {
		return nil, err
	}
	metaKey, err := loadMetaKey(ctx, d.kms, dir, cfg.create)
	if err != nil {
		return nil, err
	}
	d.metaKey = metaKey
	// Badger may keep the slice it is given; ours stays ours.
	if d.db, err = meta.Open(filepath.Join(dir, metaDir), bytes.Clone(metaKey), metaOptions(dir, log)); err != nil {
		return nil, fmt.Errorf("metadata in %s: %w", filepath.Join(dir, metaDir), err)
	}
	if d.store, err = openObjStore(ctx, cfg.objStore, dir, cfg.create, log); err != nil {
		return nil, err
	}
	if k, ok := d.store.(spaceKeeper); ok {
		if u, err := k.Usage(); err == nil {
			k.KeepFree(metadataReserve(u.TotalBytes))
		}
	}
	sealer := keys.NewSealer(d.kms.kms, d.kms.defaultKey, cfg.keyCacheTTL)
	engineStore := d.store // d.store stays unwrapped: the commands look at what it is
	if cfg.metrics != nil {
		sealer.Observe(cfg.metrics.Keys())
		engineStore = objstore.Observe(d.store, cfg.metrics.Store())
	}
	engineCfg := fs.Config{
		Meta: d.db, Store: engineStore, Sealer: sealer, Logger: log,
		WriteBuffer: int64(cfg.writeBufferMB) << 20, ReadCache: readCache(cfg.readCacheMB),
		KeepOrphans: cfg.keepOrphans,
	}
	memLimit.engineHooks(&engineCfg)
	d.engine, err = fs.New(engineCfg)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return d, nil
}

// dataDirInUseError: another process holds the data directory's lock.
type dataDirInUseError struct{ dir, pid string }

func (e *dataDirInUseError) Error() string {
	return fmt.Sprintf("data directory %s is in use by another ssefs (pid %s)", e.dir, e.pid)
}

// lockDataDir holds an exclusive lock on the data directory for the life of the process,
// so two ssefs never write one store.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &dataDirInUseError{dir, strings.TrimSpace(string(pid))}
		}
		return nil, fmt.Errorf("locking data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

// loadMetaKey unseals the metadata key, or makes one for a new data directory, sealed
// under the KMS's default key. Failing to unseal it is how a wrong KMS or key is caught
// before any read.
func loadMetaKey(ctx context.Context, k *openedKMS, dir string, create bool) ([]byte, error) {
	path := filepath.Join(dir, metaKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		if entries, _ := os.ReadDir(filepath.Join(dir, metaDir)); len(entries) > 0 {
			return nil, fmt.Errorf("data directory %s has metadata but no %s: it cannot be unsealed", dir, metaKeyFile)
		}
		key, file, err := keys.NewMetaKeyFile(ctx, k.kms, k.defaultKey)
		if err != nil {
			return nil, withMessage(fmt.Sprintf("creating %s with key %q of %s: %s", path, k.defaultKey, k.describe, k.cause(err)), err)
		}
		if err := writeFileAtomic(path, file, nil); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	key, name, err := keys.OpenMetaKeyFile(ctx, k.kms, b)
	if err != nil {
		if name == "" { // a malformed file: no KMS was asked
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, metaKeyError(dir, name, k, err)
	}
	return key, nil
}

// rotateMetaKey re-seals the metadata key under toKey ("" = the KMS's default key) and
// replaces meta.key only after the new file, read back from disk, opens to the same key.
func (d *dataStore) rotateMetaKey(ctx context.Context, toKey string) (string, error) {
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	if toKey == "" {
		toKey = d.kms.defaultKey
	}
	path := filepath.Join(d.dir, metaKeyFile)
	fail := func(err error) (string, error) {
		return "", withMessage(fmt.Sprintf("re-sealing %s under key %q of %s (it is left unchanged): %s",
			path, toKey, d.kms.describe, d.kms.cause(err)), err)
	}
	file, err := keys.SealMetaKey(ctx, d.kms.kms, toKey, d.metaKey)
	if err != nil {
		return fail(err)
	}
	err = writeFileAtomic(path, file, func(tmp string) error {
		b, err := os.ReadFile(tmp)
		if err != nil {
			return err
		}
		key, name, err := keys.OpenMetaKeyFile(ctx, d.kms.kms, b)
		defer clear(key)
		switch {
		case err != nil:
			return fmt.Errorf("the new file does not open: %w", err)
		case name != toKey || !bytes.Equal(key, d.metaKey):
			return errors.New("the new file does not hold the metadata key")
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return toKey, nil
}

// writeFileAtomic writes a secret file with mode 0600, durably, never half-written. verify,
// if set, is given the written temporary file and must accept it before it replaces path.
func writeFileAtomic(path string, data []byte, verify func(tmp string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if verify != nil {
		if err := verify(tmp.Name()); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// spaceKeeper is a store on the metadata's filesystem, which can leave room for it.
type spaceKeeper interface {
	Usage() (objstore.Usage, error)
	KeepFree(n uint64)
}

// metadataReserve is the free space chunk objects leave to the metadata store beside them:
// room for Badger's mmapped memtable log (twice the memtable) on any real disk, a
// sixteenth of a small filesystem, and at least 4 MiB to record the deletions that free
// space again.
func metadataReserve(total uint64) uint64 {
	return min(max(total/16, 4<<20), 2*meta.MemTableSize)
}

// metaOptions turns the metadata's space guard on, sized from its filesystem: commits
// that only add metadata stop at half the room chunk objects leave (metadataReserve), so
// file content runs out of space first, then metadata creates, and deletions last; and
// DATA/meta.spare, a quarter of it, is the room deletions fall back on when something
// outside ssefs takes the rest.
func metaOptions(dir string, log *slog.Logger) meta.Options {
	opts := meta.Options{Logger: log}
	at := filepath.Join(dir, metaDir)
	var st unix.Statfs_t
	err := unix.Statfs(at, &st)
	if errors.Is(err, unix.ENOENT) {
		at = dir // a new data directory: Badger makes meta/ on the same filesystem
		err = unix.Statfs(at, &st)
	}
	if err != nil {
		return opts // no guard; Badger's open reports a directory it cannot use
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	reserve := metadataReserve(st.Blocks * bs)
	opts.MinFree = reserve / 2
	// The spare helps only on the metadata's own filesystem: not when meta/ is a mount
	// of its own.
	if sameFilesystem(dir, at) {
		opts.SpareFile, opts.SpareSize = filepath.Join(dir, metaSpareFile), reserve/4
	}
	return opts
}

func sameFilesystem(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}

// readCache turns --read-cache-mb into the engine's setting, where 0 means its default
// and a negative value none.
func readCache(mb int) int64 {
	if mb == 0 {
		return -1
	}
	return int64(mb) << 20
}

// limitMemory sets the Go runtime's soft memory limit from what ssefs is told it may
// hold: the write-back buffers, what the read cache holds so far, room for every inode
// the kernel keeps, and room for Badger's memtables and caches and the rest. Without it
// the garbage collector lets the heap grow to twice what is live: 64 files written at
// once with the default 256 MiB of write-back buffers peaked at 550-630 MiB resident. The
// read cache counts as it fills (the engine calls back), not at its bound: a limit raised
// by an empty cache would let writers' garbage pile up in its room. The inodes count for
// the same reason: a limit below what they keep alive made the collector run back to
// back once a tree of some 500,000 files was cached. GOMEMLIMIT, when set, wins; it
// returns nil then.
func limitMemory(cfg storeConfig) *memoryLimit {
	if os.Getenv("GOMEMLIMIT") != "" || cfg.writeBufferMB == 0 {
		return nil // GOMEMLIMIT is the operator's; commands without buffers are not bounded
	}
	m := &memoryLimit{base: int64(cfg.writeBufferMB)<<20 + memoryRest}
	m.apply()
	return m
}

// memoryRest is the room for Badger (two memtables, block and index caches), stacks and
// code.
const memoryRest = 160 << 20

// heldInodeBytes is the room for one inode the kernel keeps: go-fuse's node and tables,
// the frontend's node and the engine's reference. A heap profile of 100,000 held inodes
// showed ~550 bytes live each; the collector needs as much again to not run back to back.
const heldInodeBytes = 1 << 10

// memoryLimit follows what the engine reports it holds.
type memoryLimit struct {
	base int64

	mu        sync.Mutex
	readCache int64
	inodes    int64
}

func (m *memoryLimit) readCacheGrew(bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readCache = bytes
	m.apply()
}

func (m *memoryLimit) inodesHeld(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inodes = int64(n)
	m.apply()
}

// apply sets the limit. Called with m.mu held (or before m is shared).
func (m *memoryLimit) apply() {
	debug.SetMemoryLimit(m.base + m.readCache + m.inodes*heldInodeBytes)
}

// engineHooks fills in the engine's callbacks; m may be nil (no limit to follow).
func (m *memoryLimit) engineHooks(cfg *fs.Config) {
	if m != nil {
		cfg.ReadCacheGrew = m.readCacheGrew
		cfg.InodesHeld = m.inodesHeld
	}
}

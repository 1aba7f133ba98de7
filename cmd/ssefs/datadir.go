package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

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

// dataStore is an open data directory with everything built on it.
type dataStore struct {
	lock   *os.File
	db     *meta.DB
	store  objstore.Store
	engine *fs.Engine
	closed bool
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
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}

// openDataDir locks the data directory, unseals its metadata key with the master key
// and opens the metadata, the object store and the engine.
func openDataDir(ctx context.Context, cfg mountConfig, stderr io.Writer, log *slog.Logger) (_ *dataStore, err error) {
	dir, err := filepath.Abs(cfg.dataDir)
	if err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", cfg.dataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", dir, err)
	}
	d := &dataStore{}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.lock, err = lockDataDir(dir); err != nil {
		return nil, err
	}
	master, err := loadMasterKey(cfg, dir, stderr)
	if err != nil {
		return nil, err
	}
	metaKey, err := loadMetaKey(ctx, master, dir)
	if err != nil {
		return nil, err
	}
	if d.db, err = meta.Open(filepath.Join(dir, metaDir), metaKey, meta.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("metadata in %s: %w", filepath.Join(dir, metaDir), err)
	}
	if d.store, err = objstore.NewLocal(filepath.Join(dir, objectsDir)); err != nil {
		return nil, fmt.Errorf("object store in %s: %w", filepath.Join(dir, objectsDir), err)
	}
	sealer := keys.NewSealer(master, master.Name(), cfg.keyCacheTTL)
	d.engine, err = fs.New(fs.Config{
		Meta: d.db, Store: d.store, Sealer: sealer, Logger: log,
		WriteBuffer: int64(cfg.writeBufferMB) << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return d, nil
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
			return nil, fmt.Errorf("data directory %s is in use by another ssefs (pid %s)", dir, strings.TrimSpace(string(pid)))
		}
		return nil, fmt.Errorf("locking data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return f, nil
}

// loadMasterKey finds the static master key: a flag, then MinIO-style environment
// variables, then the key ssefs generated into the data directory, else a new one.
func loadMasterKey(cfg mountConfig, dir string, stderr io.Writer) (*keys.Static, error) {
	if cfg.masterKeyFile != "" {
		return readKeyFile(cfg.masterKeyFile, "--master-key-file")
	}
	if v, name := firstEnv("SSEFS_KMS_MASTER_KEY", "MINIO_KMS_MASTER_KEY"); name != "" {
		k, err := keys.ParseMasterKey(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return k, nil
	}
	if path, name := firstEnv("SSEFS_KMS_MASTER_KEY_FILE", "MINIO_KMS_MASTER_KEY_FILE"); name != "" {
		return readKeyFile(path, name)
	}
	generated := filepath.Join(dir, masterKeyFile)
	if _, err := os.Stat(generated); err == nil {
		return readKeyFile(generated, "generated key file")
	}
	if _, err := os.Stat(filepath.Join(dir, metaKeyFile)); err == nil {
		return nil, fmt.Errorf("data directory %s was created with a master key that is not given here: set SSEFS_KMS_MASTER_KEY or SSEFS_KMS_MASTER_KEY_FILE", dir)
	}
	k, err := keys.GenerateMasterKey(generatedKeyName)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(generated, []byte(k.String()+"\n")); err != nil {
		return nil, fmt.Errorf("writing generated master key %s: %w", generated, err)
	}
	fmt.Fprintf(stderr, "ssefs: WARNING: generated a master key into %s; it is for trying ssefs out, not for production: use a KMS, and keep this key safe, or the data is lost\n", generated)
	return k, nil
}

func readKeyFile(path, what string) (*keys.Static, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	k, err := keys.ParseMasterKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		slog.Warn("master key file is readable by others; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	return k, nil
}

// loadMetaKey unseals the metadata key, or makes one for a new data directory. Failing
// to unseal it is how a wrong master key is caught before any read.
func loadMetaKey(ctx context.Context, master *keys.Static, dir string) ([]byte, error) {
	path := filepath.Join(dir, metaKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if entries, _ := os.ReadDir(filepath.Join(dir, metaDir)); len(entries) > 0 {
			return nil, fmt.Errorf("data directory %s has metadata but no %s: it cannot be unsealed", dir, metaKeyFile)
		}
		key, file, err := keys.NewMetaKeyFile(ctx, master, master.Name())
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", path, err)
		}
		if err := writeFileAtomic(path, file); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	key, name, err := keys.OpenMetaKeyFile(ctx, master, b)
	switch {
	case errors.Is(err, keys.ErrKeyNotFound):
		return nil, fmt.Errorf("data directory %s is sealed with master key %q, but the given master key is %q", dir, name, master.Name())
	case errors.Is(err, keys.ErrDecrypt):
		return nil, fmt.Errorf("the given master key %q does not match data directory %s (%s cannot be unsealed with it)", master.Name(), dir, metaKeyFile)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// writeFileAtomic writes a secret file with mode 0600, durably, never half-written.
func writeFileAtomic(path string, data []byte) error {
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

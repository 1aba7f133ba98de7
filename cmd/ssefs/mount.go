package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/fuse"
)

type mountConfig struct {
	dataDir        string
	bucket         string
	allowOther     bool
	debug          bool
	keyCacheTTL    time.Duration
	kms            *kmsConfig
	writeBufferMB  int
	readCacheMB    int
	attrTimeout    time.Duration
	writebackCache bool
	readAheadKB    int
	s3             *s3Flags
	objStore       *objStoreFlags
	backup         *backupFlags // --backup-*: backupcmd.go
	daemon         daemonFlags
	obs            *observeFlags
}

func (c mountConfig) store() storeConfig {
	return storeConfig{dataDir: c.dataDir, kms: c.kms, keyCacheTTL: c.keyCacheTTL, writeBufferMB: c.writeBufferMB, readCacheMB: c.readCacheMB, create: true, objStore: c.objStore, metrics: c.obs.set()}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "ssefs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "ssefs")
	}
	return "ssefs-data"
}

const mountUsage = `Usage: ssefs mount [flags] MOUNTPOINT

Mounts the store at MOUNTPOINT and serves it in the foreground until SIGINT or SIGTERM
(or umount), then flushes everything and unmounts. With --daemon it goes to the
background once the mount is ready. Without --bucket every bucket is a top-level
directory and mkdir there creates a bucket.

Files are sealed under the KMS's default key, or a bucket's own key ('ssefs bucket
encryption set'). With no KMS configured, a master key is generated into the data
directory on first start: that is for trying ssefs out, not for production.

While it runs, 'ssefs key rotate' and 'ssefs bucket encryption' work on the data directory
through its admin socket, DATA/admin.sock (root and the mounting user only).

Examples:
  ssefs mount /mnt/ssefs
  ssefs mount --bucket photos --data-dir /srv/ssefs /mnt/photos
  SSEFS_KMS_MASTER_KEY_FILE=/etc/ssefs/master.key ssefs mount /mnt/ssefs
  ssefs mount --kms-kes-endpoint https://kes.example.net:7373 \
      --kms-kes-cert-file /etc/ssefs/kes-client.crt --kms-kes-key-file /etc/ssefs/kes-client.key \
      --kms-kes-key-name ssefs-key /mnt/ssefs
  SSEFS_KMS_VAULT_APPROLE_ID_FILE=/etc/ssefs/role-id SSEFS_KMS_VAULT_APPROLE_SECRET_FILE=/etc/ssefs/secret-id \
      ssefs mount --kms-vault-endpoint https://vault.example.net:8200 --kms-vault-key-name ssefs-key /mnt/ssefs

` + kmsUsage + `
Flags (each also read from SSEFS_<FLAG>, e.g. SSEFS_DATA_DIR):
`

func parseMountFlags(args []string, stdout io.Writer) (mountConfig, string, error) {
	var c mountConfig
	f, help := c.flagSet()
	if err := f.Parse(args); err != nil {
		return c, "", usageError{fmt.Sprintf("mount: %v", err)}
	}
	if *help {
		showHelp(stdout, mountUsage, f)
		return c, "", errHelp
	}
	if err := flagsFromEnv(f); err != nil {
		return c, "", err
	}
	if f.NArg() != 1 {
		return c, "", usageError{fmt.Sprintf("mount needs exactly one MOUNTPOINT, got %d arguments (see 'ssefs mount --help')", f.NArg())}
	}
	if err := c.check(f); err != nil {
		return c, "", err
	}
	return c, f.Arg(0), nil
}

// flagSet registers mount's flags, bound to c. 'ssefs config check' parses the same set,
// so that it takes a mount's command line as it is.
func (c *mountConfig) flagSet() (f *pflag.FlagSet, help *bool) {
	f = pflag.NewFlagSet("mount", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	c.addStoreFlags(f)
	f.StringVar(&c.bucket, "bucket", "", "serve only this bucket as the mount root (created if missing)")
	f.BoolVar(&c.allowOther, "allow-other", false, "let users other than the mounting one access the mount")
	f.BoolVar(&c.debug, "debug", false, "log every FUSE request, with file names and the first bytes of data: for debugging only, never in production")
	f.DurationVar(&c.attrTimeout, "attr-timeout", 10*time.Second, "how long the kernel caches names and attributes (changes made through S3 drop them at once)")
	f.BoolVar(&c.writebackCache, "writeback-cache", false, "let the kernel buffer writes in its page cache (S3 sees them at close or fsync)")
	f.IntVar(&c.readAheadKB, "read-ahead-kb", 1024, "the mount's kernel readahead in KiB, set when mounting as root (0: the kernel's 128)")
	c.s3 = addS3Flags(f)
	c.daemon.add(f)
	help = f.BoolP("help", "h", false, "show this help")
	return f, help
}

// check validates parsed mount flags (after flagsFromEnv) and resolves the S3 and KMS
// settings: everything about a mount's configuration that needs no I/O beyond reading
// the files it names.
func (c *mountConfig) check(f *pflag.FlagSet) error {
	if err := c.checkStoreFlags(); err != nil {
		return err
	}
	if c.bucket != "" {
		if err := fs.ValidBucketName(c.bucket); err != nil {
			return usageError{fmt.Sprintf("--bucket: %v", err)}
		}
	}
	if c.readAheadKB < 0 {
		return usageError{"--read-ahead-kb must not be negative"}
	}
	if c.attrTimeout < 0 {
		return usageError{"--attr-timeout must not be negative"}
	}
	if err := c.daemon.check(); err != nil {
		return err
	}
	if err := c.s3.resolve(f, false); err != nil {
		return err
	}
	return c.kms.resolve()
}

// addStoreFlags registers the flags of everything under the frontends (data directory,
// KMS, caches), which mount and serve share.
func (c *mountConfig) addStoreFlags(f *pflag.FlagSet) {
	f.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "data directory: metadata, chunk objects and (generated) keys")
	f.DurationVar(&c.keyCacheTTL, "key-cache-ttl", 5*time.Minute, "how long unsealed data keys stay cached in memory (0 disables the cache)")
	c.kms = addKMSFlags(f)
	f.IntVar(&c.writeBufferMB, "write-buffer-mb", 256, "bound on plaintext held in write-back buffers, in MiB")
	f.IntVar(&c.readCacheMB, "read-cache-mb", fs.DefaultReadCache>>20, "decrypted content kept in memory for small reads, in MiB (0: none)")
	c.objStore = addObjStoreFlags(f)
	c.backup = addBackupFlags(f)
	c.obs = addObserveFlags(f)
}

func (c *mountConfig) checkStoreFlags() error {
	if c.keyCacheTTL < 0 {
		return usageError{"--key-cache-ttl must not be negative"}
	}
	if c.readCacheMB < 0 {
		return usageError{"--read-cache-mb must not be negative"}
	}
	if c.writeBufferMB < 1 {
		return usageError{"--write-buffer-mb must be at least 1"}
	}
	if err := c.obs.resolve(); err != nil {
		return err
	}
	if err := c.backup.check(); err != nil {
		return err
	}
	return c.objStore.check()
}

func runMount(args []string, stdout, stderr io.Writer) error {
	cfg, mountpoint, err := parseMountFlags(args, stdout)
	if err != nil {
		return err
	}
	if mountpoint, err = checkMountpoint(mountpoint); err != nil {
		return err
	}
	if done, err := cfg.daemon.background(args, stdout, stderr); done {
		return err
	}
	log := cfg.obs.logger(stderr, cfg.debug)

	store, err := openDataDir(context.Background(), cfg.store(), stderr, log)
	if err != nil {
		return err
	}
	defer store.close()
	web, err := startObserve(cfg.obs, store, cfg.writeBufferMB, log, stderr)
	if err != nil {
		return err
	}
	defer web.stop(log)

	root := fs.RootIno
	if cfg.bucket != "" {
		if root, err = ensureBucket(store.engine, cfg.bucket); err != nil {
			return err
		}
	}
	// The admin socket is stopped before the store is closed, so that a rotation it runs is
	// cancelled (and recorded for resuming) while the engine can still record it.
	// Without its socket the mount still works; only the admin commands cannot reach it.
	admin, err := startAdminServer(store.dir, store, log)
	if err != nil {
		log.Warn("no admin socket: 'ssefs key rotate' and 'ssefs bucket encryption' cannot reach this mount", "err", err)
	}
	defer admin.stop()
	backups, err := startBackups(store, cfg.backup, log)
	if err != nil {
		return err
	}
	defer backups.stop()
	// S3 listens before the mount is announced, so a client that waits for the mount can
	// use both.
	api, err := startS3(cfg.s3, store.engine, web, log, stderr)
	if err != nil {
		return err
	}
	defer api.stop(log)
	// Signals are caught from before the mount exists: a SIGTERM between the "mounted"
	// line and signal.Notify would kill the process and leave the mount behind. They stay
	// caught until the process exits (no signal.Stop): 'ssefs umount' returns once the
	// store is closed, and a SIGTERM from whoever waited for that (systemd, a script)
	// while the rest shuts down must not turn a clean exit into death by a signal.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	server, err := fuse.Mount(mountpoint, store.engine, fuse.Options{
		AllowOther: cfg.allowOther, Debug: cfg.debug, Logger: log, RootIno: root, Timeout: cfg.attrTimeout,
		WritebackCache: cfg.writebackCache, ReadAheadKB: cfg.readAheadKB, Source: mountSource(store.dir),
		Observer: web.fuse(),
	})
	if err != nil {
		return fmt.Errorf("cannot mount at %s: %w", mountpoint, err)
	}
	fmt.Fprintf(stderr, "ssefs: mounted %s (data directory %s)\n", mountpoint, cfg.dataDir)
	cfg.daemon.announceReady(mountpoint, log)
	web.serving()

	served := make(chan struct{})
	go func() { server.Wait(); close(served) }()
	select {
	case sig := <-signals:
		notifyStopping(log)
		web.stopping()
		fmt.Fprintf(stderr, "ssefs: %v: flushing and unmounting %s\n", sig, mountpoint)
		api.stop(log) // no S3 request may start after the flush
		// Flush before unmounting, so nothing is lost even if the unmount has to be lazy.
		if err := store.engine.SyncAll(context.Background()); err != nil {
			log.Error("flush before unmount failed", "err", err)
		}
		unmount(server, mountpoint, log)
		<-served
	case <-served:
		notifyStopping(log)
		web.stopping()
		fmt.Fprintf(stderr, "ssefs: %s was unmounted\n", mountpoint)
		api.stop(log) // the store closes next; 'ssefs umount' waits for that
	}
	backups.stop() // a backup in progress ends before the store closes
	if err := admin.stop(); err != nil {
		log.Warn("stopping the admin socket", "err", err)
	}
	return store.close()
}

type unmounter interface{ Unmount() error }

// unmount retries while the mount is busy, then detaches it lazily: the data is already
// flushed, and the processes still inside keep working until they leave.
func unmount(server unmounter, mountpoint string, log *slog.Logger) {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = server.Unmount(); err == nil {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	log.Warn("mount is busy; detaching it lazily", "mountpoint", mountpoint, "err", err)
	if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
		log.Error("lazy unmount failed", "mountpoint", mountpoint, "err", err)
	}
}

// ensureBucket returns the bucket's directory inode, creating the bucket if needed.
func ensureBucket(engine *fs.Engine, name string) (uint64, error) {
	ctx := context.Background()
	a, err := engine.Lookup(ctx, fs.RootIno, name)
	if errors.Is(err, fs.ErrNotExist) {
		a, err = engine.Mkdir(ctx, fs.RootIno, name, fs.Owner{Mode: 0o755, Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	}
	if err != nil {
		return 0, fmt.Errorf("--bucket %q: %w", name, err)
	}
	if !a.IsDir() {
		return 0, fmt.Errorf("--bucket %q is not a bucket", name)
	}
	return a.Ino, nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/objstore"
)

const configUsage = `Usage: ssefs config check [flags] [MOUNTPOINT]

Commands:
  check    check a mount's configuration without mounting (see 'ssefs help config check')

Examples:
  ssefs config check /mnt/ssefs
`

const configCheckUsage = `Usage: ssefs config check [flags] [MOUNTPOINT]

Checks a configuration as 'ssefs mount' would use it, without mounting and without
changing anything: no data directory, key or store is created. It takes mount's flags and
its SSEFS_* and MinIO variables, so putting 'config check' in place of 'mount' in a
command line or unit file checks that mount. One line per check, starting with ok, warn
or FAIL:

  flags           the flags and variables parse and fit together (as mount checks them)
  data directory  exists and is writable (or the first mount will create it), and no
                  other ssefs serves it
  kms             the KMS answers, and its default key seals a data key and unseals it
                  again (a generate and decrypt round trip; no key is printed)
  meta.key        the data directory's metadata key opens with that KMS
  key file FILE   each secret file (master key, KES client key, Vault AppRole files, S3
                  secret key files, the S3 API's TLS key) is readable by its owner only
  store           the object store: room in the local directory, or the S3 bucket is
                  reachable and is this data directory's store (or free to become it)
  mountpoint      MOUNTPOINT, if given, is an empty directory, not a mount, and FUSE is
                  usable (/dev/fuse, and fusermount when not root)
  s3 api, metrics --s3-address and --metrics-address, if given, can be listened on

Exit status: 0 when no check failed (warnings are fine), 1 when one did, 2 for a usage
error. A KMS or S3 store that does not answer takes --kms-timeout or --store-timeout.

Examples:
  ssefs config check /mnt/ssefs
  SSEFS_KMS_MASTER_KEY_FILE=/etc/ssefs/master.key ssefs config check --data-dir /srv/ssefs
  ssefs config check --kms-kes-endpoint https://kes.example.net:7373 \
      --kms-kes-cert-file /etc/ssefs/kes-client.crt --kms-kes-key-file /etc/ssefs/kes-client.key \
      --kms-kes-key-name ssefs-key --store s3://ssefs-chunks/host1 --s3-address 127.0.0.1:9000 /mnt/ssefs

` + kmsUsage + `
Flags (mount's; each also read from SSEFS_<FLAG>):
`

func runConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"config needs a command: check (see 'ssefs help config')"}
	}
	switch args[0] {
	case "-h", "--help", "help":
		showHelp(stdout, configUsage, nil)
		return errHelp
	case "check":
		return runConfigCheck(args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown config command %q: want check (see 'ssefs help config')", args[0])}
}

// checker prints one line per check and counts the failures.
type checker struct {
	w      io.Writer
	failed int
}

func (c *checker) line(status, what, format string, args ...any) {
	fmt.Fprintf(c.w, "%-5s %s: %s\n", status, what, strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "))
}

func (c *checker) ok(what, format string, args ...any)   { c.line("ok", what, format, args...) }
func (c *checker) warn(what, format string, args ...any) { c.line("warn", what, format, args...) }
func (c *checker) fail(what, format string, args ...any) {
	c.failed++
	c.line("FAIL", what, format, args...)
}

func runConfigCheck(args []string, stdout, stderr io.Writer) error {
	var c mountConfig
	f, help := c.flagSet()
	if err := f.Parse(args); err != nil {
		return usageError{fmt.Sprintf("config check: %v", err)}
	}
	if *help {
		showHelp(stdout, configCheckUsage, f)
		return errHelp
	}
	if f.NArg() > 1 {
		return usageError{fmt.Sprintf("config check takes at most one MOUNTPOINT, got %d arguments (see 'ssefs help config check')", f.NArg())}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ck := &checker{w: stdout}
	err := flagsFromEnv(f)
	if err == nil {
		err = c.check(f)
	}
	if err != nil {
		// Without a configuration that parses there is nothing to check it against.
		ck.fail("flags", "%v", err)
		return ck.result()
	}
	// Only a mount may generate a master key: a check must not.
	c.kms.noGenerate = true
	ck.ok("flags", "they parse and fit together; KMS: %s", kmsChoice(c.kms.res))

	dir, err := filepath.Abs(c.dataDir)
	if err != nil {
		ck.fail("data directory", "%s: %v", c.dataDir, err)
		return ck.result()
	}
	exists := checkDataDirectory(ctx, ck, dir)
	k := checkKMS(ctx, ck, c.kms, dir, stderr)
	if k != nil {
		defer k.Close()
		if exists {
			checkMetaKeyFile(ctx, ck, k, dir)
		}
	}
	checkKeyFiles(ck, &c, dir)
	checkSecretFlags(ck, f)
	checkStore(ctx, ck, c.objStore, dir)
	if f.NArg() == 1 {
		checkMountpointFor(ck, f.Arg(0), c.allowOther)
	}
	if c.s3.address != "" {
		scheme := "http"
		if c.s3.certFile != "" {
			scheme = "https"
		}
		checkListen(ck, "s3 api "+c.s3.address, c.s3.address, scheme+", credentials set")
	}
	if c.obs.metricsAddress != "" {
		checkListen(ck, "metrics "+c.obs.metricsAddress, c.obs.metricsAddress, "http")
	}
	return ck.result()
}

func (c *checker) result() error {
	if c.failed > 0 {
		return reportedError{fmt.Sprintf("%d checks failed", c.failed)}
	}
	return nil
}

// kmsChoice names the KMS the settings chose, and where from.
func kmsChoice(s *kmsSettings) string {
	switch s.kind {
	case kindKES:
		return fmt.Sprintf("KES at %s (%s), default key %q", strings.Join(s.kesEndpoints, ", "), s.kesEndpoint.source, s.kesKeyName.value)
	case kindVault:
		return fmt.Sprintf("Vault at %s (%s), default key %q", s.vaultEndpoint.value, s.vaultEndpoint.source, s.vaultKeyName.value)
	case kindStatic:
		return fmt.Sprintf("a static master key (%s)", s.master.source)
	}
	return "none configured (the master key generated into the data directory)"
}

// checkDataDirectory reports on the data directory and whether another ssefs serves it;
// it tells whether the directory exists.
func checkDataDirectory(ctx context.Context, ck *checker, dir string) bool {
	const what = "data directory"
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := existingAncestor(dir)
		if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
			ck.fail(what, "%s does not exist, and the first mount cannot create it: %s is not writable (%v)", dir, parent, err)
		} else {
			ck.ok(what, "%s does not exist yet: the first mount creates it (mode 0700)", dir)
		}
		return false
	case err != nil:
		ck.fail(what, "%s: %v", dir, unwrapPath(err))
		return false
	case !st.IsDir():
		ck.fail(what, "%s is not a directory", dir)
		return false
	}
	if err := unix.Access(dir, unix.R_OK|unix.W_OK|unix.X_OK); err != nil {
		ck.fail(what, "%s is not writable for this user: %v", dir, err)
		return true
	}
	state := "holds a store"
	if _, err := os.Stat(filepath.Join(dir, metaKeyFile)); errors.Is(err, os.ErrNotExist) {
		state = "holds no store yet: the first mount creates one"
	}
	if c, err := dialAdmin(ctx, dir); err == nil {
		pid := "?"
		if info, err := c.Info(ctx); err == nil {
			pid = fmt.Sprint(info.PID)
		}
		c.close()
		ck.warn(what, "%s %s and is served by ssefs pid %s: a second mount of it is refused while that runs", dir, state, pid)
		return true
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		ck.warn(what, "%s %s; its mode %04o lets other users list it (file contents and names are encrypted, but mount creates it 0700)", dir, state, perm)
		return true
	}
	ck.ok(what, "%s %s", dir, state)
	return true
}

// existingAncestor is the nearest directory above dir that exists: where MkdirAll starts.
func existingAncestor(dir string) string {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			return p
		}
	}
}

// configCheckContext binds the test data key of the round trip to this check.
var configCheckContext = keys.Context{"ssefs": "config check"}

// checkKMS opens the configured KMS as mount would and has its default key seal a data
// key and unseal it again. It returns the opened KMS, or nil.
func checkKMS(ctx context.Context, ck *checker, kc *kmsConfig, dir string, stderr io.Writer) *openedKMS {
	const what = "kms"
	if kc.res.kind == kindGenerated {
		if _, err := os.Stat(filepath.Join(dir, masterKeyFile)); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Join(dir, metaKeyFile)); errors.Is(err, os.ErrNotExist) {
				ck.warn(what, "none configured: the first mount generates a master key into %s; that is for trying ssefs out, not for production (use KES or Vault)",
					filepath.Join(dir, masterKeyFile))
				return nil
			}
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	k, err := kc.open(ctx, dir, io.Discard, log)
	if err != nil {
		ck.fail(what, "%v", err)
		return nil
	}
	dek, err := k.kms.GenerateKey(ctx, k.defaultKey, configCheckContext)
	defer clear(dek.Plaintext)
	if err != nil {
		ck.fail(what, "%s: key %q cannot seal a data key: %s", k.describe, k.defaultKey, k.cause(err))
		return k
	}
	pt, err := k.kms.Decrypt(ctx, k.defaultKey, dek.Ciphertext, configCheckContext)
	defer clear(pt)
	switch {
	case err != nil:
		ck.fail(what, "%s: key %q sealed a data key but cannot unseal it: %s", k.describe, k.defaultKey, k.cause(err))
	case !bytes.Equal(pt, dek.Plaintext):
		ck.fail(what, "%s: key %q unsealed a different data key than it sealed", k.describe, k.defaultKey)
	default:
		usable := "usable"
		if k.kind == kindKES || k.kind == kindVault {
			// A static key's description names it already.
			usable = fmt.Sprintf("reachable, key %q usable", k.defaultKey)
		}
		id := ""
		if k.identity != "" {
			id = fmt.Sprintf(", as identity %s", k.identity)
		}
		ck.ok(what, "%s %s (generate+decrypt round trip%s)", k.describe, usable, id)
	}
	return k
}

// checkMetaKeyFile opens DATA/meta.key with the KMS, as mount does first: it is how a
// data directory sealed under another KMS or key is caught.
func checkMetaKeyFile(ctx context.Context, ck *checker, k *openedKMS, dir string) {
	path := filepath.Join(dir, metaKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		ck.fail(metaKeyFile, "%s: %v", path, unwrapPath(err))
		return
	}
	key, name, err := keys.OpenMetaKeyFile(ctx, k.kms, b)
	clear(key)
	switch {
	case err != nil && name == "":
		ck.fail(metaKeyFile, "%s: %v", path, err)
	case err != nil:
		ck.fail(metaKeyFile, "%v", metaKeyError(dir, name, k, err))
	default:
		ck.ok(metaKeyFile, "%s is sealed with key %q, which %s unseals", path, name, k.describe)
	}
}

// secretFile is a file whose content unlocks something: it must be readable by its owner
// only.
type secretFile struct{ path, what string }

func checkKeyFiles(ck *checker, c *mountConfig, dir string) {
	s := c.kms.res
	var files []secretFile
	add := func(path, what string) {
		if path != "" {
			files = append(files, secretFile{path, what})
		}
	}
	switch s.kind {
	case kindStatic:
		if s.masterIsFile {
			add(s.master.value, "the master key")
		}
	case kindGenerated:
		if _, err := os.Stat(filepath.Join(dir, masterKeyFile)); err == nil {
			add(filepath.Join(dir, masterKeyFile), "the generated master key")
		}
	case kindKES:
		add(s.kesKeyFile.value, "the private key of ssefs' KES client certificate")
	case kindVault:
		add(c.kms.vaultRoleIDFile, "the Vault AppRole role ID")
		add(c.kms.vaultSecretFile, "the Vault AppRole secret ID")
	}
	if c.s3.address != "" {
		add(c.s3.passwordFile, "the S3 API's secret key")
		add(c.s3.keyFile, "the S3 API's TLS private key")
	}
	add(c.objStore.secretFile, "the object store's S3 secret key")
	for _, f := range files {
		what := "key file " + f.path
		st, err := os.Stat(f.path)
		if err != nil {
			ck.fail(what, "%v (%s)", unwrapPath(err), f.what)
			continue
		}
		perm := st.Mode().Perm()
		owner := "uid ?"
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			owner = fmt.Sprintf("uid %d", sys.Uid)
		}
		if perm&0o077 != 0 {
			ck.fail(what, "mode %04o, must be 0600 or stricter: other users can read %s (chmod 600 %s)", perm, f.what, f.path)
			continue
		}
		ck.ok(what, "mode %04o, owner %s (%s)", perm, owner, f.what)
	}
}

// secretFlags take a secret as their value; each has a file form (or a variable).
var secretFlags = map[string]string{
	flagVaultSecret:    "--" + flagVaultSecretFile + " or SSEFS_KMS_VAULT_APPROLE_SECRET",
	"root-password":    "--root-password-file or SSEFS_ROOT_PASSWORD",
	"store-secret-key": "--store-secret-key-file or SSEFS_STORE_SECRET_KEY",
}

// checkSecretFlags warns of secrets given on the command line, where every user of the
// machine sees them (ps, /proc/PID/cmdline).
func checkSecretFlags(ck *checker, f *pflag.FlagSet) {
	for _, name := range slices.Sorted(maps.Keys(secretFlags)) {
		if src := flagSource(f, name); fromCommandLine(src) {
			ck.warn("--"+name, "a secret on the command line is visible to every user (ps): use %s", secretFlags[name])
		}
	}
}

// checkStore reaches the object store as mount would, read-only: the local directory's
// room, or the S3 bucket and its store marker.
func checkStore(ctx context.Context, ck *checker, flags *objStoreFlags, dir string) {
	const what = "store"
	p, err := planObjStore(flags, dir, true)
	if err != nil {
		ck.fail(what, "%v", err)
		return
	}
	if p.local != "" {
		state := "exists"
		at := p.local
		if _, err := os.Stat(p.local); errors.Is(err, os.ErrNotExist) {
			state, at = "is created by the first mount", existingAncestor(p.local)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(at, &st); err != nil {
			ck.fail(what, "local directory %s %s, but its filesystem cannot be measured: %v", p.local, state, err)
			return
		}
		bs := uint64(st.Frsize)
		avail, total := st.Bavail*bs, st.Blocks*bs
		if avail < metadataReserve(total) {
			ck.fail(what, "local directory %s %s; only %s available of %s, too little for the metadata and new chunks", p.local, state,
				humanBytes(int64(avail)), humanBytes(int64(total)))
			return
		}
		ck.ok(what, "local directory %s %s; %s available of %s", p.local, state, humanBytes(int64(avail)), humanBytes(int64(total)))
		return
	}
	// The cache is mount's business: checking must not create its directory.
	cfg := p.cfg
	cfg.CacheDir, cfg.CacheBytes = "", 0
	s3, err := objstore.NewS3(cfg)
	if err != nil {
		ck.fail(what, "%s: %v", p.upd.URL, err)
		return
	}
	defer s3.Close()
	if p.upd.Ready {
		if err := checkMarker(ctx, s3, p.upd, dir); err != nil {
			ck.fail(what, "%v", err)
			return
		}
		ck.ok(what, "%s reachable; it is this data directory's store (%s)", s3, p.upd.ID)
		return
	}
	b, err := s3.ReadMarker(ctx)
	switch {
	case err == nil:
		var m storeMarker
		if json.Unmarshal(b, &m) != nil || m.Store != p.upd.ID {
			ck.fail(what, "%s belongs to another ssefs data directory (its %s names store %q): give another bucket or prefix", s3, objstore.MarkerName, m.Store)
			return
		}
		ck.ok(what, "%s reachable; the next mount finishes making it this data directory's store", s3)
		return
	case !errors.Is(err, objstore.ErrNotExist):
		ck.fail(what, "%s: %v", s3, err)
		return
	}
	errFound := errors.New("found")
	err = s3.Walk(ctx, func(objstore.ID, int64) error { return errFound })
	switch {
	case err == errFound:
		ck.fail(what, "%s already holds ssefs chunk objects without a %s: another data directory's store? give another bucket or prefix", s3, objstore.MarkerName)
	case err != nil:
		ck.fail(what, "%s: %v", s3, err)
	default:
		ck.ok(what, "%s reachable and unclaimed: the first mount makes it this data directory's store", s3)
	}
}

// checkMountpointFor checks what mount checks of its mountpoint, and that FUSE is usable.
func checkMountpointFor(ck *checker, mp string, allowOther bool) {
	what := "mountpoint " + mp
	abs, err := checkMountpoint(mp)
	if err != nil {
		if a, aerr := filepath.Abs(mp); aerr == nil {
			what = "mountpoint " + a
		}
		ck.fail(what, "%s", strings.TrimLeft(strings.TrimPrefix(err.Error(), what), " :"))
		return
	}
	what = "mountpoint " + abs
	if _, err := os.Stat("/dev/fuse"); err != nil {
		ck.fail(what, "empty directory, but there is no /dev/fuse (%v): load the fuse module (modprobe fuse), or give the container the device", unwrapPath(err))
		return
	}
	if os.Geteuid() == 0 {
		ck.ok(what, "empty directory, /dev/fuse present")
		return
	}
	// Other users mount through fusermount, which holds the privilege (go-fuse's fallback).
	helper := ""
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			helper = p
			break
		}
	}
	if helper == "" {
		ck.fail(what, "empty directory, but mounting as a user other than root needs fusermount3 (or fusermount): install the fuse3 package")
		return
	}
	if allowOther {
		conf, _ := os.ReadFile("/etc/fuse.conf")
		if !fuseConfAllowsOther(conf) {
			ck.fail(what, "--allow-other as a user other than root needs user_allow_other in /etc/fuse.conf")
			return
		}
	}
	ck.ok(what, "empty directory, /dev/fuse present, mounted through %s", helper)
}

func fuseConfAllowsOther(conf []byte) bool {
	for _, l := range strings.Split(string(conf), "\n") {
		if strings.TrimSpace(l) == "user_allow_other" {
			return true
		}
	}
	return false
}

// checkListen checks that an address mount serves on can be listened on (the S3 API's
// credentials and TLS pair were checked with the flags).
func checkListen(ck *checker, what, addr, detail string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ck.fail(what, "%v", err)
		return
	}
	ln.Close()
	ck.ok(what, "free to listen on (%s)", detail)
}

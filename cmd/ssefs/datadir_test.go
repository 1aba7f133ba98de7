package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
)

var quietLog = slog.New(slog.DiscardHandler)

// openStore opens (creating) dir with the KMS that the test's environment configures.
func openStore(t *testing.T, dir string, create bool) (*dataStore, error) {
	t.Helper()
	kc, err := parseKMS(t)
	if err != nil {
		t.Fatal(err)
	}
	kc.noGenerate = !create
	return openDataDir(context.Background(), storeConfig{dataDir: dir, kms: kc, keyCacheTTL: 0, writeBufferMB: 8, create: create}, io.Discard, quietLog)
}

func mustOpenStore(t *testing.T, dir string, create bool) *dataStore {
	t.Helper()
	d, err := openStore(t, dir, create)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	return d
}

func metaKeyName(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, metaKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return sealedKeyName(context.Background(), b)
}

func TestDataDirSealedByTheConfiguredKMS(t *testing.T) {
	clearKMSEnv(t)
	kms := newFakeKMS("k1", "k2")
	useFakeKES(t, kms)
	kesEnv(t, "k1")
	dir := t.TempDir()
	d := mustOpenStore(t, dir, true)
	if d.kms.kind != kindKES || d.kms.defaultKey != "k1" {
		t.Fatalf("KMS %q default key %q", d.kms.kind, d.kms.defaultKey)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	if got := metaKeyName(t, dir); got != "k1" {
		t.Fatalf("meta.key sealed under %q, want the KMS's default key k1", got)
	}
	// Another default key later does not matter: meta.key names its own.
	t.Setenv("SSEFS_KMS_KES_KEY_NAME", "k2")
	d = mustOpenStore(t, dir, false)
	d.close()
}

// failingKES configures a KES whose every call fails with err.
func failingKES(err error) func(t *testing.T) {
	return func(t *testing.T) {
		k := newFakeKMS("k1")
		k.setFail(err)
		useFakeKES(t, k)
		kesEnv(t, "k1")
	}
}

// TestDataDirWrongKMS: a meta.key the configured KMS cannot unseal is refused with one
// line naming the key that sealed it, the KMS asked, and why; meta.key is left alone.
func TestDataDirWrongKMS(t *testing.T) {
	clearKMSEnv(t)
	good := newFakeKMS("k1")
	useFakeKES(t, good)
	kesEnv(t, "k1")
	dir := t.TempDir()
	mustOpenStore(t, dir, true).close()
	before, _ := os.ReadFile(filepath.Join(dir, metaKeyFile))
	staticHex := strings.Repeat("5a", 32)

	cases := []struct {
		name  string
		setup func(t *testing.T)
		is    error
		want  []string
	}{
		{"key missing", func(t *testing.T) { useFakeKES(t, newFakeKMS("other")); kesEnv(t, "other") },
			keys.ErrKeyNotFound, []string{`sealed with KMS key "k1"`, "KES at https://127.0.0.1:7373", "does not exist"}},
		{"KES unreachable", failingKES(keys.ErrUnavailable), keys.ErrUnavailable, []string{`"k1"`, "KES at", "unreachable"}},
		{"forbidden", failingKES(keys.ErrForbidden), keys.ErrForbidden, []string{`"k1"`, "KES at", "refused access"}},
		{"identity rejected", failingKES(keys.ErrIdentityRejected), keys.ErrIdentityRejected, []string{`"k1"`, "KES at", "identity"}},
		{"wrong key material", func(t *testing.T) { useFakeKES(t, newFakeKMS("k1")); kesEnv(t, "k1") },
			keys.ErrDecrypt, []string{`"k1"`, "KES at", "does not match"}},
		{"static master key", func(t *testing.T) { t.Setenv(ssefsMasterKey, "mk:"+staticHex) },
			keys.ErrKeyNotFound, []string{`"k1"`, `the static master key "mk" (SSEFS_KMS_MASTER_KEY)`, "master key"}},
		{"static master key of the same name", func(t *testing.T) { t.Setenv(ssefsMasterKey, "k1:"+staticHex) },
			keys.ErrDecrypt, []string{`"k1"`, "wrong master key"}},
		{"no KMS", func(t *testing.T) {}, nil, []string{`sealed with KMS key "k1"`, "no KMS", "master key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearKMSEnv(t)
			c.setup(t)
			_, err := openStore(t, dir, true)
			if err == nil {
				t.Fatal("opened")
			}
			t.Log(err)
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), staticHex[:16]) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%q quotes the key or is more than one line", err)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, metaKeyFile)); !bytes.Equal(after, before) {
				t.Errorf("meta.key changed")
			}
			if _, err := os.Stat(filepath.Join(dir, masterKeyFile)); err == nil {
				t.Errorf("a master key was generated into a data directory sealed by KES")
			}
		})
	}
}

func TestRotateMetaKey(t *testing.T) {
	clearKMSEnv(t)
	kms := newFakeKMS("k1", "k2")
	useFakeKES(t, kms)
	kesEnv(t, "k1")
	dir := t.TempDir()
	d := mustOpenStore(t, dir, true)
	ctx := context.Background()

	if key, err := d.rotateMetaKey(ctx, "k2"); err != nil || key != "k2" {
		t.Fatalf("rotate to k2: %q, %v", key, err)
	}
	if got := metaKeyName(t, dir); got != "k2" {
		t.Fatalf("meta.key sealed under %q after rotating to k2", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, metaKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("meta.key mode %v, %v; want 0600", fi.Mode(), err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, metaKeyFile))
	if _, err := d.rotateMetaKey(ctx, "k3"); !errors.Is(err, keys.ErrKeyNotFound) || !strings.Contains(err.Error(), "unchanged") {
		t.Errorf("rotate to a missing key: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, metaKeyFile)); !bytes.Equal(after, before) {
		t.Errorf("a failed rotation changed meta.key")
	}
	if key, err := d.rotateMetaKey(ctx, ""); err != nil || key != "k1" {
		t.Errorf("rotate to the default key: %q, %v", key, err)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left a temporary file behind: %s", e.Name())
		}
	}
	// The re-sealed key opens the same store.
	mustOpenStore(t, dir, false).close()
}

func TestAdminCommandsNeedAnExistingDataDir(t *testing.T) {
	clearKMSEnv(t)
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		_, err := openStore(t, dir, false)
		if err == nil || !strings.Contains(err.Error(), "no ssefs store") || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v", dir, err)
		}
		if _, err := os.Stat(filepath.Join(dir, masterKeyFile)); err == nil {
			t.Errorf("%s: a master key was generated", dir)
		}
	}
}

// TestMetaSpaceGuard: opening a data directory turns the metadata's space guard on, sized
// from its filesystem below the room chunk objects leave, and makes DATA/meta.spare.
func TestMetaSpaceGuard(t *testing.T) {
	clearKMSEnv(t)
	kms := newFakeKMS("k1")
	useFakeKES(t, kms)
	kesEnv(t, "k1")
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	reserve := metadataReserve(st.Blocks * uint64(st.Frsize))
	opts := metaOptions(dir, quietLog)
	if opts.MinFree != reserve/2 || opts.SpareSize != reserve/4 || opts.SpareFile != filepath.Join(dir, metaSpareFile) {
		t.Fatalf("meta options for a new data directory: MinFree %d, spare %s of %d; want %d, %s of %d",
			opts.MinFree, opts.SpareFile, opts.SpareSize, reserve/2, filepath.Join(dir, metaSpareFile), reserve/4)
	}
	mustOpenStore(t, dir, true)
	fi, err := os.Stat(filepath.Join(dir, metaSpareFile))
	if err != nil || fi.Mode().Perm() != 0o600 || uint64(fi.Size()) != reserve/4 {
		t.Fatalf("spare file after opening: %v, %v; want mode 0600, %d bytes", fi, err, reserve/4)
	}
	// Once meta/ exists, it is what is measured; the same filesystem here.
	if again := metaOptions(dir, quietLog); again.MinFree != opts.MinFree || again.SpareFile != opts.SpareFile || again.SpareSize != opts.SpareSize {
		t.Errorf("meta options once meta/ exists: MinFree %d, spare %s of %d; want %d, %s of %d",
			again.MinFree, again.SpareFile, again.SpareSize, opts.MinFree, opts.SpareFile, opts.SpareSize)
	}
}

// TestMemoryLimitFollowsHeldInodes: the soft memory limit makes room for the inodes the
// kernel holds, through the engine the data directory opens, and gives it back.
func TestMemoryLimitFollowsHeldInodes(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	d, err := openStore(t, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	base := int64(8<<20) + memoryRest // openStore's --write-buffer-mb 8, nothing cached yet
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("limit at start %d, want %d", got, base)
	}
	const first, n = 1 << 40, 3 * fs.HeldStep
	for ino := fs.Ino(first); ino < first+n; ino++ {
		d.engine.Reference(ino)
	}
	if got, want := debug.SetMemoryLimit(-1), base+n*heldInodeBytes; got != want {
		t.Errorf("limit with %d inodes held %d, want %d", n, got, want)
	}
	for ino := fs.Ino(first); ino < first+n; ino++ {
		d.engine.Forget(ino)
	}
	// The engine reports in steps: the last it told is below one step.
	if got := debug.SetMemoryLimit(-1); got < base || got >= base+fs.HeldStep*heldInodeBytes {
		t.Errorf("limit once the kernel forgot them %d, want %d plus less than a step", got, base)
	}
}

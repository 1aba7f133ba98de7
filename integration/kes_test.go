package integration

// End-to-end tests of ssefs with a real MinIO KES server (internal/kestest starts KES
// v0.24.0 as a child process, one per test) and a real FUSE mount of the race-built ssefs:
// key commands, KES configuration by flags and by SSEFS_*/MINIO_* variables, bucket keys,
// KES policies, key rotation, secure erasure (a deleted key makes its files unreadable within
// the key-cache TTL, and restoring it brings them back), a KES outage, and configuration
// mistakes.
//
// KES caches keys too: kestest sets its cache expiry to 1s unless told otherwise, and keys
// deleted through its API (DeleteKey) are forgotten at once.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/internal/kestest"
)

// kesAllowAll is the policy of an ssefs that may do everything it ever asks KES for.
var kesAllowAll = []string{
	"/v1/key/create/*", "/v1/key/generate/*", "/v1/key/decrypt/*", "/v1/key/list/*", "/v1/status",
}

// kesSetup is one KES server and the client identity ssefs uses with it.
type kesSetup struct {
	srv *kestest.Server
	id  kestest.Identity // ssefs' identity, in policy "ssefs"
}

// startKES starts a KES server whose policy "ssefs" allows ssefs' identity the API paths
// in allow. It skips (like every mount test) where mounts are impossible, before KES starts.
func startKES(t *testing.T, allow []string, opts ...kestest.Option) kesSetup {
	t.Helper()
	requireMount(t)
	ca := kestest.NewCA(t)
	id := ca.NewIdentity(t)
	opts = append([]kestest.Option{kestest.WithCA(ca), kestest.WithPolicy("ssefs", allow, nil, id)}, opts...)
	s := kestest.Start(t, opts...)
	t.Logf("%s", s)
	return kesSetup{srv: s, id: id}
}

// flags are the KES flags of ssefs with keyName as the default key.
func (k kesSetup) flags(keyName string) []string {
	return []string{
		"--kms-kes-endpoint", k.srv.Endpoint,
		"--kms-kes-cert-file", k.id.CertFile,
		"--kms-kes-key-file", k.id.KeyFile,
		"--kms-kes-ca-path", k.srv.CAFile,
		"--kms-kes-key-name", keyName,
	}
}

// env gives the same settings as environment variables: ssefs' own (SSEFS_KMS_KES_*), or
// MinIO's (MINIO_KMS_KES_*) with the CA variable spelt caVar (MinIO's MINIO_KMS_KES_CAPATH,
// or MINIO_KMS_KES_CA_PATH as DESIGN.md spells it).
func (k kesSetup) env(prefix, caVar, keyName string) []string {
	return []string{
		prefix + "ENDPOINT=" + k.srv.Endpoint,
		prefix + "CERT_FILE=" + k.id.CertFile,
		prefix + "KEY_FILE=" + k.id.KeyFile,
		caVar + "=" + k.srv.CAFile,
		prefix + "KEY_NAME=" + keyName,
	}
}

// kesConfig is a mount of all buckets (no --bucket) with KES by flags.
func kesConfig(t *testing.T, k kesSetup, keyName string) Config {
	t.Helper()
	return Config{
		DataDir:    t.TempDir(),
		Mountpoint: t.TempDir(),
		Args:       k.flags(keyName),
		Home:       t.TempDir(),
	}
}

// cmdline builds "ssefs CMD FLAGS... REST...": cmd is space-separated ("key create").
func cmdline(cmd string, flags []string, rest ...string) []string {
	args := strings.Fields(cmd)
	args = append(args, flags...)
	return append(args, rest...)
}

// cli runs an ssefs command other than mount with cfg's environment (cfg.Args are not used)
// and waits for it to exit.
func cli(t *testing.T, cfg Config, args ...string) RunResult {
	t.Helper()
	return runExpectExit(t, cfg, args...)
}

// cliOK is cli that fails the test unless the command exits 0.
func cliOK(t *testing.T, cfg Config, args ...string) RunResult {
	t.Helper()
	r := cli(t, cfg, args...)
	if r.Code != 0 {
		t.Fatalf("ssefs %s: exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// wantCLIError fails unless the result is exit code `code` with the message on stderr
// naming every one of mustName.
func wantCLIError(t *testing.T, r RunResult, what string, code int, mustName ...string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("%s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.Code, code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "ssefs: ") {
		t.Errorf("%s: no \"ssefs: \" error line on stderr:\n%s", what, r.Stderr)
	}
	for _, n := range mustName {
		if !strings.Contains(r.Stderr, n) {
			t.Errorf("%s: the message does not name %q:\n%s", what, n, r.Stderr)
		}
	}
}

// xattrFields parses the ssefs.encryption attribute ("type=SSE-S3 key=K ...").
func xattrFields(t testing.TB, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range strings.Fields(encryptionXattr(t, path)) {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return out
}

// assertSealed fails unless path's ssefs.encryption names sseType and key.
func assertSealed(t testing.TB, path, sseType, key string) {
	t.Helper()
	f := xattrFields(t, path)
	if f["type"] != sseType || f["key"] != key {
		t.Errorf("%s: ssefs.encryption says type=%q key=%q, want type=%q key=%q (%v)", path, f["type"], f["key"], sseType, key, f)
	}
	if f["algorithm"] == "" {
		t.Errorf("%s: ssefs.encryption names no algorithm (%v)", path, f)
	}
}

// readUncached reads a whole file through a new open, after dropping its cached pages, so
// that ssefs (and its KMS) is asked.
func readUncached(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return nil, fmt.Errorf("fadvise: %w", err)
	}
	return io.ReadAll(f)
}

// preadUncached reads n bytes at offset 0 of an open file after dropping its cached pages.
func preadUncached(f *os.File, n int) ([]byte, error) {
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return nil, fmt.Errorf("fadvise: %w", err)
	}
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, 0)
	if errors.Is(err, io.EOF) && got == n {
		err = nil
	}
	return buf[:got], err
}

func errnoName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		return unix.ErrnoName(en)
	}
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// statRows parses `ssefs stat` output ("Label       : value" lines) of one file.
func statRows(out string) map[string]string {
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			rows[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return rows
}

// writeFiles writes every file of files below root, making directories as needed.
func writeFiles(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for _, name := range sortedNames(files) {
		p := filepath.Join(root, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755), "mkdir -p "+filepath.Dir(p))
		writeFile(t, p, files[name], 0o644)
	}
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// assertFiles reads every file back (page cache dropped first) and compares.
func assertFiles(t *testing.T, root string, files map[string][]byte, what string) {
	t.Helper()
	for _, name := range sortedNames(files) {
		got, err := readUncached(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%s: read %s: %v", what, name, err)
			continue
		}
		assertBytes(t, what+": "+name, got, files[name])
	}
}

// ---------------------------------------------------------------------------------------

// TestKESCreateKeyMountAndStat: `ssefs key create|list|status` against KES with the flags;
// a mount with KES writes files that read back, also after a remount; `ssefs stat` shows
// SSE-S3, the key, the algorithm and when the key was sealed.
func TestKESCreateKeyMountAndStat(t *testing.T) {
	k := startKES(t, kesAllowAll)
	cfg := kesConfig(t, k, "ssefs-key")
	cfg.Bucket = "photos"
	kf := k.flags("ssefs-key")

	r := cliOK(t, cfg, cmdline("key create", kf, "ssefs-key")...)
	if !strings.Contains(r.Stdout, "ssefs-key") {
		t.Errorf("key create: stdout does not name the key:\n%s", r.Stdout)
	}
	// The key exists in KES itself: its admin can use it.
	if code, body := k.srv.Request(t, k.srv.Admin, http.MethodPut, "/v1/key/generate/ssefs-key",
		map[string][]byte{"context": []byte("check")}); code != http.StatusOK {
		t.Fatalf("after `ssefs key create ssefs-key`, KES answers generate with %d %s", code, body)
	}
	cliOK(t, cfg, cmdline("key create", kf, "other-key")...)
	wantCLIError(t, cli(t, cfg, cmdline("key create", kf, "ssefs-key")...), "key create of an existing key", 1, "ssefs-key", "already exists")

	if r := cliOK(t, cfg, cmdline("key list", kf)...); r.Stdout != "other-key\nssefs-key\n" {
		t.Errorf("key list: stdout %q, want %q", r.Stdout, "other-key\nssefs-key\n")
	}
	if r := cliOK(t, cfg, cmdline("key list", kf, "ssefs-*")...); r.Stdout != "ssefs-key\n" {
		t.Errorf("key list 'ssefs-*': stdout %q, want %q", r.Stdout, "ssefs-key\n")
	}
	r = cliOK(t, cfg, cmdline("key status", kf, "ssefs-key")...)
	for _, want := range []string{"ssefs-key", "Encryption: OK", "Decryption: OK"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("key status ssefs-key: stdout does not say %q:\n%s", want, r.Stdout)
		}
	}
	r = cli(t, cfg, cmdline("key status", kf, "no-such-key")...)
	if r.Code != 1 || strings.Contains(r.Stdout, "Encryption: OK") {
		t.Errorf("key status of a missing key: exit %d, want 1 and no \"Encryption: OK\"\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}

	start := time.Now().Add(-time.Second).Truncate(time.Second)
	m := StartMount(t, cfg)
	if hasWarningLine(m.Stderr()) {
		t.Errorf("a WARNING was printed with KES configured:\n%s", m.Stderr())
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); err == nil {
		t.Errorf("a master.key was generated although KES is configured")
	}
	rnd := rng(t)
	files := map[string][]byte{
		"empty":           nil,
		"small.txt":       []byte("hello through KES\n"),
		"one-chunk-plus":  randBytes(rnd, ChunkSize+1),
		"dir/three-and-a": randBytes(rnd, 3*ChunkSize+12345),
	}
	writeFiles(t, m.Dir, files)
	assertFiles(t, m.Dir, files, "first mount")
	for name := range files {
		assertSealed(t, m.P(name), "SSE-S3", "ssefs-key")
	}

	m = m.Restart(t)
	assertFiles(t, m.Dir, files, "after a remount")

	r = cliOK(t, cfg, "stat", m.P("dir/three-and-a"))
	rows := statRows(r.Stdout)
	for label, want := range map[string]string{"Encrypted": "SSE-S3", "Key": "ssefs-key", "Bucket": "photos"} {
		if rows[label] != want {
			t.Errorf("ssefs stat: %q is %q, want %q\n%s", label, rows[label], want, r.Stdout)
		}
	}
	if a := rows["Algorithm"]; a == "" || a == "unknown" {
		t.Errorf("ssefs stat: Algorithm %q\n%s", a, r.Stdout)
	}
	if a := xattrFields(t, m.P("dir/three-and-a"))["algorithm"]; rows["Algorithm"] != a {
		t.Errorf("ssefs stat: Algorithm %q, but the attribute says %q", rows["Algorithm"], a)
	}
	if !strings.Contains(rows["Size"], strconv.Itoa(3*ChunkSize+12345)) {
		t.Errorf("ssefs stat: Size %q does not give %d bytes", rows["Size"], 3*ChunkSize+12345)
	}
	sealed := rows["Key sealed"]
	ts, _, _ := strings.Cut(sealed, " (")
	at, err := time.Parse("2006-01-02 15:04:05 MST", ts)
	if err != nil {
		t.Errorf("ssefs stat: Key sealed %q: %v\n%s", sealed, err, r.Stdout)
	} else if at.Before(start) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("ssefs stat: Key sealed %s, want between %s and now", at, start)
	}
	if x := xattrFields(t, m.P("dir/three-and-a"))["sealed-at"]; x == "" || x == "unknown" {
		t.Errorf("ssefs.encryption has sealed-at=%q", x)
	} else if xt, err := time.Parse(time.RFC3339, x); err != nil || (err == nil && !xt.Equal(at)) {
		t.Errorf("ssefs.encryption sealed-at=%q (%v), ssefs stat says %s", x, err, at)
	}

	// Several files at once; a file that is not on ssefs is refused with its own line.
	outside := filepath.Join(t.TempDir(), "plain")
	writeFile(t, outside, []byte("x"), 0o644)
	r = cli(t, cfg, "stat", m.P("small.txt"), outside, m.P("empty"))
	if r.Code != 1 || strings.Count(r.Stdout, "Encrypted") != 2 || !strings.Contains(r.Stderr, outside) {
		t.Errorf("ssefs stat ssefs-file other-file ssefs-file: exit %d (want 1), want 2 files shown and %s named on stderr\nstdout:\n%s\nstderr:\n%s",
			r.Code, outside, r.Stdout, r.Stderr)
	}
}

// TestKESFromEnvironment: the KES settings through SSEFS_KMS_KES_* and MinIO's
// MINIO_KMS_KES_* variables (both spellings of the CA variable) reach the same store.
func TestKESFromEnvironment(t *testing.T) {
	k := startKES(t, kesAllowAll)
	base := Config{DataDir: t.TempDir(), Mountpoint: t.TempDir(), Home: t.TempDir()}
	ssefsEnv := k.env("SSEFS_KMS_KES_", "SSEFS_KMS_KES_CA_PATH", "env-key")

	c := base
	c.Env = ssefsEnv
	cliOK(t, c, "key", "create", "env-key")
	if r := cliOK(t, c, "key", "list"); r.Stdout != "env-key\n" {
		t.Errorf("key list with SSEFS_KMS_KES_*: %q", r.Stdout)
	}

	rnd := rng(t)
	files := map[string][]byte{}
	for i, caVar := range []string{"MINIO_KMS_KES_CAPATH", "MINIO_KMS_KES_CA_PATH", "SSEFS_KMS_KES_CA_PATH"} {
		c := base
		prefix := "MINIO_KMS_KES_"
		if strings.HasPrefix(caVar, "SSEFS_") {
			prefix = "SSEFS_KMS_KES_"
		}
		c.Env = k.env(prefix, caVar, "env-key")
		if i == 0 {
			if r := cliOK(t, c, "key", "status", "env-key"); !strings.Contains(r.Stdout, "Decryption: OK") {
				t.Errorf("key status with MINIO_KMS_KES_*:\n%s", r.Stdout)
			}
		}
		m := StartMount(t, c)
		assertFiles(t, m.Dir, files, "mount with "+caVar)
		name := fmt.Sprintf("bucket-%d/via-%s", i, caVar)
		files[name] = randBytes(rnd, ChunkSize/2+rnd.IntN(2*ChunkSize))
		must(t, os.Mkdir(m.P(filepath.Dir(name)), 0o755), "mkdir bucket")
		writeFile(t, m.P(name), files[name], 0o644)
		assertSealed(t, m.P(name), "SSE-S3", "env-key")
		m.Stop(t)
	}
	if _, err := os.Stat(filepath.Join(base.DataDir, "master.key")); err == nil {
		t.Errorf("a master.key was generated although KES is configured")
	}
	c.Env = ssefsEnv
	m := StartMount(t, c)
	assertFiles(t, m.Dir, files, "final mount")
}

// TestKESBucketKeys: without --bucket the root lists buckets; `ssefs bucket encryption set`
// on the running mount (admin socket) makes new files in that bucket SSE-KMS under its
// key, while other buckets keep the default key; it persists, clears, and works offline.
func TestKESBucketKeys(t *testing.T) {
	k := startKES(t, kesAllowAll)
	for _, n := range []string{"ssefs-default", "bucket-a-key"} {
		k.srv.CreateKey(t, n)
	}
	cfg := kesConfig(t, k, "ssefs-default")
	admin := func(args ...string) []string {
		return append(args[:3:3], append([]string{"--data-dir", cfg.DataDir}, args[3:]...)...)
	}

	m := StartMount(t, cfg)
	if names := listNames(t, m.Dir); len(names) != 0 {
		t.Fatalf("a new store's root lists %v, want no buckets", names)
	}
	must(t, os.Mkdir(m.P("bucket-a"), 0o755), "mkdir bucket-a")
	must(t, os.Mkdir(m.P("bucket-b"), 0o755), "mkdir bucket-b")
	if names := listNames(t, m.Dir); !slices.Equal(names, []string{"bucket-a", "bucket-b"}) {
		t.Errorf("root lists %v, want [bucket-a bucket-b]", names)
	}
	rnd := rng(t)
	files := map[string][]byte{"bucket-a/before": randBytes(rnd, 5000)}
	writeFiles(t, m.Dir, files)

	r := cliOK(t, cfg, admin("bucket", "encryption", "set", "--key", "bucket-a-key", "bucket-a")...)
	if !strings.Contains(r.Stdout, "bucket-a-key") {
		t.Errorf("bucket encryption set: stdout does not name the key:\n%s", r.Stdout)
	}
	if r := cliOK(t, cfg, admin("bucket", "encryption", "get", "bucket-a")...); strings.TrimSpace(r.Stdout) != "bucket-a-key" {
		t.Errorf("bucket encryption get bucket-a: %q, want bucket-a-key", r.Stdout)
	}
	if r := cliOK(t, cfg, admin("bucket", "encryption", "get", "bucket-b")...); !strings.Contains(r.Stdout, "none") || !strings.Contains(r.Stdout, "ssefs-default") {
		t.Errorf("bucket encryption get bucket-b: %q, want none (process default ssefs-default)", r.Stdout)
	}

	newFiles := map[string][]byte{
		"bucket-a/new":         randBytes(rnd, 300),
		"bucket-a/sub/big":     randBytes(rnd, 2*ChunkSize+77),
		"bucket-a/sub/empty":   nil,
		"bucket-b/other":       randBytes(rnd, 4096),
		"bucket-b/sub/big-one": randBytes(rnd, ChunkSize+3),
	}
	writeFiles(t, m.Dir, newFiles)
	for n, d := range newFiles {
		files[n] = d
	}
	checkKeys := func(what string) {
		t.Helper()
		assertSealed(t, m.P("bucket-a/before"), "SSE-S3", "ssefs-default")
		for _, n := range []string{"bucket-a/new", "bucket-a/sub/big", "bucket-a/sub/empty"} {
			assertSealed(t, m.P(n), "SSE-KMS", "bucket-a-key")
			if b := xattrFields(t, m.P(n))["bucket"]; b != "bucket-a" {
				t.Errorf("%s: %s: ssefs.encryption bucket=%q", what, n, b)
			}
		}
		for _, n := range []string{"bucket-b/other", "bucket-b/sub/big-one"} {
			assertSealed(t, m.P(n), "SSE-S3", "ssefs-default")
		}
		assertFiles(t, m.Dir, files, what)
	}
	checkKeys("after bucket encryption set")
	if rows := statRows(cliOK(t, cfg, "stat", m.P("bucket-a/sub/big")).Stdout); rows["Encrypted"] != "SSE-KMS" || rows["Key"] != "bucket-a-key" {
		t.Errorf("ssefs stat bucket-a/sub/big: Encrypted %q Key %q, want SSE-KMS bucket-a-key", rows["Encrypted"], rows["Key"])
	}

	wantCLIError(t, cli(t, cfg, admin("bucket", "encryption", "set", "--key", "no-such-key", "bucket-b")...),
		"bucket encryption set with a key KES does not have", 1, "no-such-key")
	wantCLIError(t, cli(t, cfg, admin("bucket", "encryption", "set", "--key", "bucket-a-key", "no-bucket")...),
		"bucket encryption set on a missing bucket", 1, "no-bucket", "does not exist")
	if r := cliOK(t, cfg, admin("bucket", "encryption", "get", "bucket-b")...); !strings.Contains(r.Stdout, "none") {
		t.Errorf("bucket-b's key changed after a refused set: %q", r.Stdout)
	}

	m = m.Restart(t)
	checkKeys("after a remount")
	if r := cliOK(t, cfg, admin("bucket", "encryption", "get", "bucket-a")...); strings.TrimSpace(r.Stdout) != "bucket-a-key" {
		t.Errorf("after a remount, bucket encryption get bucket-a: %q", r.Stdout)
	}

	cliOK(t, cfg, admin("bucket", "encryption", "clear", "bucket-a")...)
	files["bucket-a/after-clear"] = []byte("default key again")
	writeFile(t, m.P("bucket-a/after-clear"), files["bucket-a/after-clear"], 0o644)
	assertSealed(t, m.P("bucket-a/after-clear"), "SSE-S3", "ssefs-default")
	assertSealed(t, m.P("bucket-a/new"), "SSE-KMS", "bucket-a-key")
	m.Stop(t)

	// Offline (no mount holds the data dir): the command opens it with the KMS flags.
	cliOK(t, cfg, cmdline("bucket encryption set", append(k.flags("ssefs-default"), "--data-dir", cfg.DataDir), "--key", "bucket-a-key", "bucket-b")...)
	if r := cliOK(t, cfg, cmdline("bucket encryption get", append(k.flags("ssefs-default"), "--data-dir", cfg.DataDir), "bucket-b")...); strings.TrimSpace(r.Stdout) != "bucket-a-key" {
		t.Errorf("offline bucket encryption get bucket-b: %q, want bucket-a-key", r.Stdout)
	}
	m = StartMount(t, cfg)
	writeFile(t, m.P("bucket-b/after-offline-set"), []byte("x"), 0o644)
	assertSealed(t, m.P("bucket-b/after-offline-set"), "SSE-KMS", "bucket-a-key")
	assertFiles(t, m.Dir, files, "final mount")
}

// TestKESPolicyForbidsKey: ssefs' KES identity may use only some keys. A bucket whose
// default key the policy (now) forbids refuses new files with EACCES and loses nothing;
// `ssefs bucket encryption set` and `ssefs key create` with a forbidden key fail naming
// the policy.
func TestKESPolicyForbidsKey(t *testing.T) {
	allowed := []string{
		"/v1/key/create/ssefs-*", "/v1/key/generate/ssefs-*", "/v1/key/decrypt/ssefs-*",
		"/v1/key/list/*", "/v1/status",
	}
	withHR := append(slices.Clone(allowed), "/v1/key/generate/hr-*", "/v1/key/decrypt/hr-*")
	k := startKES(t, withHR)
	for _, n := range []string{"ssefs-default", "ssefs-team", "hr-payroll"} {
		k.srv.CreateKey(t, n)
	}
	cfg := kesConfig(t, k, "ssefs-default")
	admin := func(args ...string) []string {
		return append(args[:3:3], append([]string{"--data-dir", cfg.DataDir}, args[3:]...)...)
	}

	// While the policy still allows hr-*, bucket hr-dept gets hr-payroll as its key.
	m := StartMount(t, cfg)
	must(t, os.Mkdir(m.P("hr-dept"), 0o755), "mkdir hr-dept")
	must(t, os.Mkdir(m.P("open"), 0o755), "mkdir open")
	cliOK(t, cfg, admin("bucket", "encryption", "set", "--key", "hr-payroll", "hr-dept")...)
	rnd := rng(t)
	salaries := randBytes(rnd, ChunkSize+100)
	writeFile(t, m.P("hr-dept", "salaries"), salaries, 0o644)
	assertSealed(t, m.P("hr-dept", "salaries"), "SSE-KMS", "hr-payroll")
	m.Stop(t)

	// The KES admin takes hr-* away from ssefs' identity.
	k.srv.SetPolicy("ssefs", allowed, nil, k.id)
	k.srv.Restart(t)
	m = StartMount(t, cfg)

	err := os.WriteFile(m.P("hr-dept", "new-file"), []byte("must not be written"), 0o644)
	wantErrno(t, err, "create a file in a bucket whose key the policy forbids", syscall.EACCES)
	if _, err := os.Lstat(m.P("hr-dept", "new-file")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the refused create, hr-dept/new-file: %v, want ENOENT", err)
	}
	_, err = readUncached(m.P("hr-dept", "salaries"))
	wantErrno(t, err, "read a file sealed under a key the policy forbids", syscall.EACCES)
	// Its metadata is all there.
	assertSealed(t, m.P("hr-dept", "salaries"), "SSE-KMS", "hr-payroll")
	if st := lstat(t, m.P("hr-dept", "salaries")); st.Size != int64(len(salaries)) {
		t.Errorf("hr-dept/salaries has size %d, want %d", st.Size, len(salaries))
	}

	// The other bucket works, with an allowed key too.
	writeFile(t, m.P("open", "default"), []byte("default key"), 0o644)
	assertSealed(t, m.P("open", "default"), "SSE-S3", "ssefs-default")
	cliOK(t, cfg, admin("bucket", "encryption", "set", "--key", "ssefs-team", "open")...)
	writeFile(t, m.P("open", "team"), []byte("team key"), 0o644)
	assertSealed(t, m.P("open", "team"), "SSE-KMS", "ssefs-team")

	r := cli(t, cfg, admin("bucket", "encryption", "set", "--key", "hr-payroll", "open")...)
	t.Logf("bucket encryption set with a forbidden key: exit %d: %s", r.Code, strings.TrimSpace(r.Stderr))
	wantCLIError(t, r, "bucket encryption set with a key the policy forbids", 1, "hr-payroll", "policy")
	if r := cliOK(t, cfg, admin("bucket", "encryption", "get", "open")...); strings.TrimSpace(r.Stdout) != "ssefs-team" {
		t.Errorf("bucket open's key after a refused set: %q, want ssefs-team", r.Stdout)
	}
	writeFile(t, m.P("open", "team-2"), []byte("still the team key"), 0o644)
	assertSealed(t, m.P("open", "team-2"), "SSE-KMS", "ssefs-team")

	kf := k.flags("ssefs-default")
	r = cli(t, cfg, cmdline("key create", kf, "hr-bonus")...)
	wantCLIError(t, r, "key create of a key the policy forbids", 1, "hr-bonus", "policy", k.id.ID)
	cliOK(t, cfg, cmdline("key create", kf, "ssefs-new")...)
	r = cli(t, cfg, cmdline("key status", kf, "hr-payroll")...)
	if r.Code != 1 || !strings.Contains(r.Stdout, "policy") || strings.Contains(r.Stdout, "Encryption: OK") {
		t.Errorf("key status of a forbidden key: exit %d (want 1), want the Encryption line to name the policy\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}

	// The mount is healthy, and nothing was lost: with hr-* allowed again, all reads back.
	assertContent(t, m.P("open", "team"), []byte("team key"))
	m.Stop(t)
	k.srv.SetPolicy("ssefs", withHR, nil, k.id)
	k.srv.Restart(t)
	m = StartMount(t, cfg)
	assertContent(t, m.P("hr-dept", "salaries"), salaries)
	writeFile(t, m.P("hr-dept", "new-file"), []byte("now allowed"), 0o644)
	assertSealed(t, m.P("hr-dept", "new-file"), "SSE-KMS", "hr-payroll")
}

// TestKESKeyRotation: ~50 files in two buckets (some > 1 MiB); `ssefs key rotate` on the
// running mount re-seals them (--from-key/--to-key, then --bucket) and every file reads back
// identical with the new key in its attribute; `--metadata` re-seals meta.key, after which
// the old key can be deleted from KES and a restarted mount still reads everything.
func TestKESKeyRotation(t *testing.T) {
	k := startKES(t, kesAllowAll)
	for _, n := range []string{"rot-k1", "rot-k2", "rot-k3"} {
		k.srv.CreateKey(t, n)
	}
	cfg := kesConfig(t, k, "rot-k1")
	admin := func(args ...string) []string {
		return append(args[:2:2], append([]string{"--data-dir", cfg.DataDir}, args[2:]...)...)
	}
	m := StartMount(t, cfg)
	must(t, os.Mkdir(m.P("bucket-a"), 0o755), "mkdir bucket-a")
	must(t, os.Mkdir(m.P("bucket-b"), 0o755), "mkdir bucket-b")

	rnd := rng(t)
	files := map[string][]byte{}
	var inA, inB []string
	for i := range 50 {
		bucket := "bucket-a"
		if i%2 == 1 {
			bucket = "bucket-b"
		}
		var size int
		switch i % 10 {
		case 3, 4:
			size = ChunkSize + rnd.IntN(ChunkSize+1) // > 1 MiB
		case 7:
			size = 0
		default:
			size = 1 + rnd.IntN(64<<10)
		}
		name := fmt.Sprintf("%s/d%d/file-%02d", bucket, i%3, i)
		files[name] = randBytes(rnd, size)
		if bucket == "bucket-a" {
			inA = append(inA, name)
		} else {
			inB = append(inB, name)
		}
	}
	writeFiles(t, m.Dir, files)
	sums := map[string]string{}
	for n, d := range files {
		sums[n] = sha(d)
	}
	checkAll := func(what string, keyOf func(name string) (string, string)) {
		t.Helper()
		for _, n := range sortedNames(files) {
			p := m.P(n)
			dropPageCache(t, p)
			if got := fileSHA(t, p); got != sums[n] {
				t.Errorf("%s: %s reads back with sha256 %.16s, want %.16s", what, n, got, sums[n])
			}
			typ, key := keyOf(n)
			assertSealed(t, p, typ, key)
		}
	}
	checkAll("before rotation", func(string) (string, string) { return "SSE-S3", "rot-k1" })

	// A file held open across the rotation keeps working.
	var held string
	for _, n := range inA {
		if len(files[n]) > ChunkSize {
			held = n
			break
		}
	}
	hf, err := os.Open(m.P(held))
	must(t, err, "open "+held)
	defer hf.Close()

	doneRE := regexp.MustCompile(`(\d+) of (\d+) files re-sealed`)
	rotate := func(want int, args ...string) {
		t.Helper()
		r := cliOK(t, cfg, admin(append([]string{"key", "rotate"}, args...)...)...)
		mm := doneRE.FindStringSubmatch(r.Stdout)
		if mm == nil || mm[1] != strconv.Itoa(want) || mm[2] != strconv.Itoa(want) {
			t.Errorf("key rotate %s: stdout %q, want \"%d of %d files re-sealed\"\nstderr:\n%s", strings.Join(args, " "), r.Stdout, want, want, r.Stderr)
		}
	}
	rotate(len(files), "--from-key", "rot-k1", "--to-key", "rot-k2")
	checkAll("after rotate --from-key rot-k1 --to-key rot-k2", func(string) (string, string) { return "SSE-KMS", "rot-k2" })
	got, err := preadUncached(hf, len(files[held]))
	if err != nil {
		t.Errorf("read through the fd held open across the rotation: %v", err)
	} else {
		assertBytes(t, "held-open "+held, got, files[held])
	}
	rotate(0, "--from-key", "rot-k1", "--to-key", "rot-k2") // nothing is left under rot-k1

	rotate(len(inA), "--bucket", "bucket-a", "--to-key", "rot-k3")
	keyAfterBucket := func(n string) (string, string) {
		if strings.HasPrefix(n, "bucket-a/") {
			return "SSE-KMS", "rot-k3"
		}
		return "SSE-KMS", "rot-k2"
	}
	checkAll("after rotate --bucket bucket-a --to-key rot-k3", keyAfterBucket)
	if len(inB) != len(files)-len(inA) {
		t.Fatalf("test bug: %d + %d files", len(inA), len(inB))
	}
	hf.Close()

	metaKey := filepath.Join(cfg.DataDir, "meta.key")
	before := readFile(t, metaKey)
	r := cliOK(t, cfg, admin("key", "rotate", "--metadata", "--to-key", "rot-k3")...)
	if !strings.Contains(r.Stdout, "rot-k3") {
		t.Errorf("key rotate --metadata: stdout does not name the key:\n%s", r.Stdout)
	}
	if bytes.Equal(readFile(t, metaKey), before) {
		t.Errorf("key rotate --metadata --to-key rot-k3 left %s unchanged", metaKey)
	}
	m.Stop(t)

	// No file and not meta.key is sealed under rot-k1 any more: it can go. (If --metadata had
	// not re-sealed meta.key, the next start could not open the store.)
	k.srv.DeleteKey(t, "rot-k1")
	cfg.Args = k.flags("rot-k2")
	m = StartMount(t, cfg)
	checkAll("after --metadata, rot-k1 deleted, remount", keyAfterBucket)
	writeFile(t, m.P("bucket-b", "after"), []byte("new default key"), 0o644)
	assertSealed(t, m.P("bucket-b", "after"), "SSE-S3", "rot-k2")
}

// TestKESSecureErasure: deleting bucket-a's key in KES makes bucket-a's files unreadable
// (EACCES) within the key-cache TTL, also through a descriptor held open all along, while
// bucket-b (another key) reads throughout; restoring the key makes the same files read
// back identical, without a remount.
func TestKESSecureErasure(t *testing.T) {
	const ttl = 2 * time.Second
	k := startKES(t, kesAllowAll, kestest.WithCacheExpiry(time.Second, time.Second))
	for _, n := range []string{"ssefs-default", "erase-a", "erase-b"} {
		k.srv.CreateKey(t, n)
	}
	cfg := kesConfig(t, k, "ssefs-default")
	cfg.Args = append(cfg.Args, "--key-cache-ttl", ttl.String())
	admin := func(args ...string) []string {
		return append(args[:3:3], append([]string{"--data-dir", cfg.DataDir}, args[3:]...)...)
	}

	// The S3 view of the same store must lock and unlock with the mount (403, not data).
	creds := newS3Creds()
	cfg.Args = append(cfg.Args, "--s3-address", "127.0.0.1:0")
	cfg.Env = append(cfg.Env, "SSEFS_ROOT_USER="+creds.User, "SSEFS_ROOT_PASSWORD="+creds.Password)
	m, ep := startS3Mount(t, cfg, creds)
	s3c := ep.minio(t)
	must(t, os.Mkdir(m.P("bucket-a"), 0o755), "mkdir bucket-a")
	must(t, os.Mkdir(m.P("bucket-b"), 0o755), "mkdir bucket-b")
	cliOK(t, cfg, admin("bucket", "encryption", "set", "--key", "erase-a", "bucket-a")...)
	cliOK(t, cfg, admin("bucket", "encryption", "set", "--key", "erase-b", "bucket-b")...)
	rnd := rng(t)
	filesA := map[string][]byte{
		"bucket-a/held":      randBytes(rnd, 2*ChunkSize+5),
		"bucket-a/small":     []byte("erase me"),
		"bucket-a/sub/other": randBytes(rnd, 70000),
	}
	filesB := map[string][]byte{
		"bucket-b/keep":     randBytes(rnd, ChunkSize+9),
		"bucket-b/sub/keep": []byte("keep me"),
	}
	writeFiles(t, m.Dir, filesA)
	writeFiles(t, m.Dir, filesB)
	for n := range filesA {
		assertSealed(t, m.P(n), "SSE-KMS", "erase-a")
	}
	for n := range filesB {
		assertSealed(t, m.P(n), "SSE-KMS", "erase-b")
	}

	held, err := os.Open(m.P("bucket-a/held"))
	must(t, err, "open bucket-a/held")
	defer held.Close()
	heldWant := filesA["bucket-a/held"]
	got, err := preadUncached(held, len(heldWant))
	must(t, err, "read the held file before the erasure")
	assertBytes(t, "held file before the erasure", got, heldWant)

	backup := k.srv.BackupKey(t, "erase-a")
	k.srv.DeleteKey(t, "erase-a")
	deleted := time.Now()

	// bucketB reads every bucket-b file; a failure stops the wait and the test.
	var bErr error
	bucketB := func() bool {
		for _, n := range sortedNames(filesB) {
			got, err := readUncached(m.P(n))
			if err != nil {
				bErr = fmt.Errorf("%s unreadable after erase-a was deleted (%s in): %w", n, time.Since(deleted).Round(time.Millisecond), err)
				return false
			}
			if !bytes.Equal(got, filesB[n]) {
				bErr = fmt.Errorf("%s reads different bytes after erase-a was deleted", n)
				return false
			}
		}
		return true
	}
	last := map[string]error{}
	allDenied := waitCond(5*ttl, func() bool {
		if !bucketB() {
			return true
		}
		denied := true
		for _, n := range sortedNames(filesA) {
			_, err := readUncached(m.P(n))
			last[n] = err
			denied = denied && errors.Is(err, syscall.EACCES)
		}
		_, err := preadUncached(held, len(heldWant))
		last["held fd"] = err
		denied = denied && errors.Is(err, syscall.EACCES)
		_, err = s3Get(t, s3c, "bucket-a", "small")
		if err == nil {
			err = errors.New("S3 GET returned the content")
		}
		last["S3 GET bucket-a/small"] = err
		return denied && minio.ToErrorResponse(err).StatusCode == 403
	})
	if bErr != nil {
		t.Fatal(bErr)
	}
	if !allDenied {
		for n, err := range last {
			if strings.HasPrefix(n, "S3 ") {
				if minio.ToErrorResponse(err).StatusCode != 403 {
					t.Errorf("%s after erase-a was deleted from KES: %v, want 403 AccessDenied", n, err)
				}
			} else if !errors.Is(err, syscall.EACCES) {
				t.Errorf("%s after erase-a was deleted from KES %s ago (key-cache TTL %s): got %s, want EACCES", n, time.Since(deleted).Round(time.Millisecond), ttl, errnoName(err))
			}
		}
		t.FailNow()
	}
	t.Logf("bucket-a unreadable %s after erase-a was deleted (TTL %s)", time.Since(deleted).Round(time.Millisecond), ttl)

	_, err = s3Get(t, s3c, "bucket-a", "sub/other")
	wantS3Error(t, err, "S3 GET bucket-a/sub/other while erase-a is deleted", 403, "AccessDenied")
	assertS3Content(t, s3c, "bucket-b", "sub/keep", filesB["bucket-b/sub/keep"])

	// Still denied a while later (no path around it), bucket-b still fine; a new file in
	// bucket-a is refused, one in bucket-b is not; the metadata is all there.
	_, err = preadUncached(held, len(heldWant))
	wantErrno(t, err, "held fd, read again", syscall.EACCES)
	err = os.WriteFile(m.P("bucket-a/new"), []byte("x"), 0o644)
	wantErrno(t, err, "create in bucket-a while erase-a is deleted", syscall.EACCES)
	if _, err := os.Lstat(m.P("bucket-a/new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bucket-a/new after the refused create: %v, want ENOENT", err)
	}
	filesB["bucket-b/new"] = []byte("written while erase-a is gone")
	writeFile(t, m.P("bucket-b/new"), filesB["bucket-b/new"], 0o644)
	if !bucketB() {
		t.Fatal(bErr)
	}
	for n, d := range filesA {
		assertSealed(t, m.P(n), "SSE-KMS", "erase-a")
		if st := lstat(t, m.P(n)); st.Size != int64(len(d)) {
			t.Errorf("%s: size %d while its key is deleted, want %d", n, st.Size, len(d))
		}
	}
	if names := listNames(t, m.P("bucket-a")); !slices.Equal(names, []string{"held", "small", "sub"}) {
		t.Errorf("bucket-a lists %v while its key is deleted", names)
	}

	// Restore the key: the same files come back, without a remount.
	k.srv.RestoreKey(t, "erase-a", backup)
	restored := time.Now()
	allBack := waitCond(5*ttl, func() bool {
		for _, n := range sortedNames(filesA) {
			if _, err := readUncached(m.P(n)); err != nil {
				last[n] = err
				return false
			}
		}
		_, err := preadUncached(held, len(heldWant))
		last["held fd"] = err
		return err == nil
	})
	if !allBack {
		t.Fatalf("%s after erase-a was restored, bucket-a is still unreadable: %v", time.Since(restored).Round(time.Millisecond), last)
	}
	assertFiles(t, m.Dir, filesA, "after erase-a was restored")
	assertS3Content(t, s3c, "bucket-a", "small", filesA["bucket-a/small"])
	assertFiles(t, m.Dir, filesB, "after erase-a was restored")
	got, err = preadUncached(held, len(heldWant))
	if err != nil {
		t.Errorf("held fd after erase-a was restored: %v", err)
	} else {
		assertBytes(t, "held fd after erase-a was restored", got, heldWant)
	}
	filesA["bucket-a/new"] = []byte("after the restore")
	writeFile(t, m.P("bucket-a/new"), filesA["bucket-a/new"], 0o644)
	assertSealed(t, m.P("bucket-a/new"), "SSE-KMS", "erase-a")
	held.Close()
}

// TestKESDown: with KES stopped, files whose data keys are cached (long TTL) still read
// and a bucket whose sealing key is cached still takes new files; creating a file in a
// bucket whose data key was never fetched fails with EIO and leaves nothing behind, and the
// mount stays healthy; once KES is back (same port), the same create succeeds without a
// remount, and everything written reads back, also after a remount.
func TestKESDown(t *testing.T) {
	k := startKES(t, kesAllowAll)
	k.srv.CreateKey(t, "ssefs-default")
	cfg := kesConfig(t, k, "ssefs-default")
	cfg.Args = append(cfg.Args, "--key-cache-ttl", "10m", "--kms-timeout", "5s")

	m := StartMount(t, cfg)
	for _, b := range []string{"warm", "cold"} {
		must(t, os.Mkdir(m.P(b), 0o755), "mkdir "+b)
	}
	rnd := rng(t)
	files := map[string][]byte{
		"warm/a":      randBytes(rnd, 3*ChunkSize+1),
		"warm/b":      []byte("small"),
		"warm/dir/c":  randBytes(rnd, 100000),
		"warm/dir/d0": nil,
	}
	writeFiles(t, m.Dir, files)
	// A fresh process: its cache fills from KES decrypting (reads) and generating (a create).
	m = m.Restart(t)
	assertFiles(t, m.Dir, files, "after a remount, KES up")
	files["warm/e"] = randBytes(rnd, 5000)
	writeFile(t, m.P("warm/e"), files["warm/e"], 0o644)

	k.srv.Stop()
	if k.srv.Running() {
		t.Fatal("KES still running after Stop")
	}
	assertFiles(t, m.Dir, files, "KES down, keys cached")
	files["warm/while-down"] = randBytes(rnd, ChunkSize+17)
	if err := os.WriteFile(m.P("warm/while-down"), files["warm/while-down"], 0o644); err != nil {
		t.Errorf("create in a bucket whose sealing key is cached, KES down: %v", err)
		delete(files, "warm/while-down")
	}

	err := os.WriteFile(m.P("cold/first"), []byte("needs KES"), 0o644)
	wantErrno(t, err, "create in a bucket whose data key was never fetched, KES down", syscall.EIO)
	if _, err := os.Lstat(m.P("cold/first")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cold/first after the failed create: %v, want ENOENT", err)
	}
	if m.Exited() {
		t.Fatalf("ssefs exited while KES was down:\n%s", m.Stderr())
	}
	// Healthy: listing, metadata, directories and cached reads all work.
	if names := listNames(t, m.Dir); !slices.Equal(names, []string{"cold", "warm"}) {
		t.Errorf("root lists %v with KES down", names)
	}
	must(t, os.Mkdir(m.P("cold/subdir"), 0o755), "mkdir with KES down")
	assertFiles(t, m.Dir, files, "KES down, after the failed create")

	k.srv.Restart(t)
	files["cold/first"] = []byte("needs KES")
	if err := os.WriteFile(m.P("cold/first"), files["cold/first"], 0o644); err != nil {
		t.Fatalf("the same create after KES came back (no remount): %v", err)
	}
	assertSealed(t, m.P("cold/first"), "SSE-S3", "ssefs-default")
	assertFiles(t, m.Dir, files, "KES back")
	m = m.Restart(t)
	assertFiles(t, m.Dir, files, "KES back, after a remount")
}

// TestKESConfigErrors: the real binary refuses a KES configuration that cannot work, at
// start and clearly: an endpoint without a client certificate (exit 2, naming the setting),
// a CA that does not verify the server, a client certificate of another CA, and an identity
// KES knows in no policy; none of them mounts or creates meta.key, and the good
// configuration still works afterwards.
func TestKESConfigErrors(t *testing.T) {
	k := startKES(t, kesAllowAll)
	k.srv.CreateKey(t, "cfg-key")
	good := kesConfig(t, k, "cfg-key")
	metaKey := filepath.Join(good.DataDir, "meta.key")

	usage := func(what string, args, env []string, mustName ...string) {
		t.Helper()
		c := good
		c.Args, c.Env = args, env
		r := runExpectExit(t, c, c.mountArgs()...)
		t.Logf("%s: exit %d: %s", what, r.Code, strings.TrimSpace(r.Stderr))
		wantCLIError(t, r, what, 2, mustName...)
		if lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n"); len(lines) != 1 {
			t.Errorf("%s: want one stderr line, got %d:\n%s", what, len(lines), r.Stderr)
		}
	}
	usage("endpoint without certificate (flags)",
		[]string{"--kms-kes-endpoint", k.srv.Endpoint, "--kms-kes-key-name", "cfg-key"}, nil,
		"--kms-kes-cert-file")
	usage("endpoint without certificate (MINIO_KMS_KES_*)", nil,
		[]string{"MINIO_KMS_KES_ENDPOINT=" + k.srv.Endpoint, "MINIO_KMS_KES_KEY_NAME=cfg-key"},
		"MINIO_KMS_KES_CERT_FILE")
	usage("certificate without its key",
		[]string{"--kms-kes-endpoint", k.srv.Endpoint, "--kms-kes-cert-file", k.id.CertFile, "--kms-kes-key-name", "cfg-key"}, nil,
		"--kms-kes-key-file")
	if _, err := os.Stat(metaKey); err == nil {
		t.Errorf("a refused start created %s", metaKey)
	}

	otherCA := kestest.NewCA(t)
	refused := func(what string, args []string, mustName ...string) {
		t.Helper()
		c := good
		c.Args = args
		r := runExpectExit(t, c, c.mountArgs()...)
		t.Logf("%s: exit %d: %s", what, r.Code, strings.TrimSpace(r.Stderr))
		assertRefusal(t, r, what, mustName...)
		if isMounted(c.Mountpoint) {
			t.Errorf("%s: %s is mounted", what, c.Mountpoint)
		}
	}
	withFlag := func(name, value string) []string {
		args := slices.Clone(good.Args)
		i := slices.Index(args, name)
		args[i+1] = value
		return args
	}
	wrongCA := withFlag("--kms-kes-ca-path", otherCA.CertFile)
	refused("new data dir, wrong CA", wrongCA, k.srv.Endpoint, "not signed by a CA", "--kms-kes-ca-path")
	if _, err := os.Stat(metaKey); err == nil {
		t.Errorf("a start with the wrong CA created %s", metaKey)
	}

	// The good configuration makes the data directory.
	m := StartMount(t, good)
	must(t, os.Mkdir(m.P("cfg-bucket"), 0o755), "mkdir")
	writeFile(t, m.P("cfg-bucket", "f"), []byte("still here"), 0o644)
	m.Stop(t)

	refused("existing data dir, wrong CA", wrongCA, k.srv.Endpoint, "not signed by a CA", "--kms-kes-ca-path")

	stranger := otherCA.NewIdentity(t) // a certificate the server's CA did not sign
	args := withFlag("--kms-kes-cert-file", stranger.CertFile)
	args[slices.Index(args, "--kms-kes-key-file")+1] = stranger.KeyFile
	refused("client certificate of another CA", args, "rejected", "identity")

	unknown := k.srv.NewIdentity(t) // signed by the right CA, but in no policy
	args = withFlag("--kms-kes-cert-file", unknown.CertFile)
	args[slices.Index(args, "--kms-kes-key-file")+1] = unknown.KeyFile
	refused("identity in no policy", args, "cfg-key", "policy", unknown.ID)

	m = StartMount(t, good)
	assertContent(t, m.P("cfg-bucket", "f"), []byte("still here"))
}

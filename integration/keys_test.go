package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

var keyFileRE = regexp.MustCompile(`^([^:\s]+):([0-9a-fA-F]{64})$`)

func hasWarningLine(stderr string) bool {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "WARNING") {
			return true
		}
	}
	return false
}

// encryptionXattr returns the ssefs.encryption value of path.
func encryptionXattr(t testing.TB, path string) string {
	t.Helper()
	sz, err := unix.Getxattr(path, "ssefs.encryption", nil)
	if err != nil {
		t.Errorf("getxattr %s ssefs.encryption (size query): %v", path, err)
		return ""
	}
	buf := make([]byte, sz+64)
	n, err := unix.Getxattr(path, "ssefs.encryption", buf)
	if err != nil {
		t.Errorf("getxattr %s ssefs.encryption: %v", path, err)
		return ""
	}
	if n != sz {
		t.Errorf("getxattr %s ssefs.encryption: size query said %d, value has %d bytes", path, sz, n)
	}
	return string(buf[:n])
}

var algorithmRE = regexp.MustCompile(`algorithm=\S+`)

func assertEncryptionXattr(t testing.TB, path, keyName string) {
	t.Helper()
	v := encryptionXattr(t, path)
	for _, want := range []string{"type=SSE-S3", "key=" + keyName} {
		if !strings.Contains(v, want) {
			t.Errorf("%s: ssefs.encryption = %q, want it to contain %q", path, v, want)
		}
	}
	if !algorithmRE.MatchString(v) {
		t.Errorf("%s: ssefs.encryption = %q, want it to contain algorithm=<name>", path, v)
	}
}

// TestGeneratedMasterKey: with no key given, the first start generates DATA/master.key (0600)
// and warns; later starts reuse it; the file works as SSEFS_KMS_MASTER_KEY_FILE; another key
// is refused.
func TestGeneratedMasterKey(t *testing.T) {
	cfg := newConfig(t)
	cfg.Env = nil
	m := StartMount(t, cfg)
	if !hasWarningLine(m.Stderr()) {
		t.Errorf("first start with a generated master key printed no WARNING line; stderr:\n%s", m.Stderr())
	}
	keyPath := filepath.Join(cfg.DataDir, "master.key")
	fi, err := os.Stat(keyPath)
	must(t, err, "stat master.key")
	if fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
		t.Errorf("master.key has mode %v, want -rw------- (0600)", fi.Mode())
	}
	keyBytes := readFile(t, keyPath)
	match := keyFileRE.FindStringSubmatch(strings.TrimSpace(string(keyBytes)))
	if match == nil {
		t.Fatalf("master.key does not hold NAME:64-hex-digits (%d bytes)", len(keyBytes))
	}
	keyName := match[1]
	if strings.Contains(m.Stderr(), match[2]) {
		t.Errorf("the generated key's hex is printed on stderr")
	}
	data := randBytes(rng(t), ChunkSize+1)
	writeFile(t, m.P("f"), data, 0o644)
	assertEncryptionXattr(t, m.P("f"), keyName)

	// Later starts reuse it.
	m = m.Restart(t)
	assertContent(t, m.P("f"), data)
	if b := readFile(t, keyPath); string(b) != string(keyBytes) {
		t.Errorf("master.key changed on the second start")
	}
	m.Stop(t)

	// The same key given explicitly through the *_FILE variable works.
	c := cfg
	c.Env = []string{"SSEFS_KMS_MASTER_KEY_FILE=" + keyPath}
	m = StartMount(t, c)
	assertContent(t, m.P("f"), data)
	if hasWarningLine(m.Stderr()) {
		t.Logf("note: a WARNING is printed even with SSEFS_KMS_MASTER_KEY_FILE set:\n%s", m.Stderr())
	}
	m.Stop(t)

	// Another key for this data dir is refused.
	c.Env = []string{"SSEFS_KMS_MASTER_KEY=" + NewKey(keyName)}
	res := runExpectExit(t, c, c.mountArgs()...)
	assertRefusal(t, res, "generated-key data dir started with another key", "master key")
	if b := readFile(t, keyPath); string(b) != string(keyBytes) {
		t.Errorf("master.key changed after a refused start with another key")
	}
	m = StartMount(t, cfg)
	assertContent(t, m.P("f"), data)
}

// TestDefaultDataDir: without --data-dir, $XDG_DATA_HOME/ssefs, else ~/.local/share/ssefs.
func TestDefaultDataDir(t *testing.T) {
	xdg := t.TempDir()
	cfg := newConfig(t)
	cfg.DataDir = ""
	cfg.Env = []string{"XDG_DATA_HOME=" + xdg}
	m := StartMount(t, cfg)
	writeFile(t, m.P("in-xdg"), []byte("xdg"), 0o644)
	m.Stop(t)
	if _, err := os.Stat(filepath.Join(xdg, "ssefs", "master.key")); err != nil {
		t.Errorf("with XDG_DATA_HOME=%s the data dir is not $XDG_DATA_HOME/ssefs: %v", xdg, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, ".local", "share", "ssefs")); err == nil {
		t.Errorf("with XDG_DATA_HOME set, ssefs still created ~/.local/share/ssefs")
	}

	cfg.Env = nil
	m = StartMount(t, cfg)
	if _, err := os.Stat(m.P("in-xdg")); !os.IsNotExist(err) {
		t.Errorf("without XDG_DATA_HOME the mount still shows the XDG data dir's file (%v)", err)
	}
	writeFile(t, m.P("in-home"), []byte("home"), 0o644)
	m.Stop(t)
	if _, err := os.Stat(filepath.Join(cfg.Home, ".local", "share", "ssefs", "master.key")); err != nil {
		t.Errorf("without XDG_DATA_HOME the data dir is not ~/.local/share/ssefs: %v", err)
	}
	// --data-dir pointing at the XDG one shows its file.
	cfg.DataDir = filepath.Join(xdg, "ssefs")
	m = StartMount(t, cfg)
	assertContent(t, m.P("in-xdg"), []byte("xdg"))
}

// TestMasterKeyFromEnvAndFiles: the key through each of its four variables and the flag.
func TestMasterKeyFromEnvAndFiles(t *testing.T) {
	key := NewKey("my-ssefs-key")
	cfg := newConfig(t)
	cfg.Env = []string{"SSEFS_KMS_MASTER_KEY=" + key}
	m := StartMount(t, cfg)
	if hasWarningLine(m.Stderr()) {
		t.Errorf("a WARNING was printed although SSEFS_KMS_MASTER_KEY was given:\n%s", m.Stderr())
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); err == nil {
		t.Errorf("master.key was generated although SSEFS_KMS_MASTER_KEY was given")
	}
	r := rng(t)
	files := map[string][]byte{"via-SSEFS_KMS_MASTER_KEY": randBytes(r, 3000)}
	writeFile(t, m.P("via-SSEFS_KMS_MASTER_KEY"), files["via-SSEFS_KMS_MASTER_KEY"], 0o644)
	assertEncryptionXattr(t, m.P("via-SSEFS_KMS_MASTER_KEY"), "my-ssefs-key")
	m.Stop(t)

	keyFile := filepath.Join(t.TempDir(), "master.key")
	writeFile(t, keyFile, []byte(key+"\n"), 0o600)
	variants := []struct {
		name string
		env  []string
		args []string
	}{
		{"MINIO_KMS_MASTER_KEY", []string{"MINIO_KMS_MASTER_KEY=" + key}, nil},
		{"SSEFS_KMS_MASTER_KEY_FILE", []string{"SSEFS_KMS_MASTER_KEY_FILE=" + keyFile}, nil},
		{"MINIO_KMS_MASTER_KEY_FILE", []string{"MINIO_KMS_MASTER_KEY_FILE=" + keyFile}, nil},
		{"--master-key-file", nil, []string{"--master-key-file", keyFile}},
	}
	for _, v := range variants {
		c := cfg
		c.Env, c.Args = v.env, v.args
		m := StartMount(t, c)
		for name, data := range files {
			assertContent(t, m.P(name), data)
		}
		name := "via-" + strings.TrimLeft(v.name, "-")
		files[name] = randBytes(r, ChunkSize+int(r.IntN(1000)))
		writeFile(t, m.P(name), files[name], 0o644)
		assertEncryptionXattr(t, m.P(name), "my-ssefs-key")
		m.Stop(t)
	}
	c := cfg
	c.Env = []string{"SSEFS_KMS_MASTER_KEY=" + NewKey("my-ssefs-key")}
	assertRefusal(t, runExpectExit(t, c, c.mountArgs()...), "same name, other key material", "master key")
	m = StartMount(t, cfg)
	for name, data := range files {
		assertContent(t, m.P(name), data)
	}
}

// TestEncryptionXattr: every regular file, however it was made, carries a read-only
// ssefs.encryption attribute naming SSE-S3, the key and the algorithm.
func TestEncryptionXattr(t *testing.T) {
	cfg := newConfig(t)
	cfg.Env = []string{"SSEFS_KMS_MASTER_KEY=" + NewKey("xattr-key")}
	m := StartMount(t, cfg)
	r := rng(t)
	must(t, os.Mkdir(m.P("sub"), 0o755), "mkdir")
	writeFile(t, m.P("written"), randBytes(r, 2*ChunkSize), 0o644)
	writeFile(t, m.P("empty"), nil, 0o644)
	f, err := os.OpenFile(m.P("created-open"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	must(t, err, "create")
	assertEncryptionXattr(t, m.P("created-open"), "xattr-key") // while still open, before any write
	f.Close()
	must(t, os.Link(m.P("written"), m.P("sub", "hardlink")), "link")
	writeFile(t, m.P("to-rename"), []byte("r"), 0o644)
	must(t, os.Rename(m.P("to-rename"), m.P("sub", "renamed")), "rename")
	writeFile(t, m.P("truncated"), randBytes(r, ChunkSize+5), 0o644)
	must(t, os.Truncate(m.P("truncated"), 10), "truncate")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, src, randBytes(r, 5000), 0o644)
	if out, err := exec.Command("cp", src, m.P("sub", "copied")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	files := []string{"written", "empty", "created-open", "sub/hardlink", "sub/renamed", "truncated", "sub/copied"}
	if err := unix.Mknod(m.P("mknod"), unix.S_IFREG|0o644, 0); err != nil {
		t.Errorf("mknod S_IFREG (a regular file made by mknod(2), as ext4 allows): %v", err)
	} else {
		files = append(files, "mknod")
	}

	for _, name := range files {
		p := m.P(name)
		assertEncryptionXattr(t, p, "xattr-key")
		before := encryptionXattr(t, p)
		wantErrno(t, unix.Setxattr(p, "ssefs.encryption", []byte("type=none"), 0), name+": setxattr ssefs.encryption", syscall.EPERM)
		wantErrno(t, unix.Setxattr(p, "ssefs.encryption", []byte("type=none"), unix.XATTR_REPLACE), name+": setxattr ssefs.encryption XATTR_REPLACE", syscall.EPERM)
		wantErrno(t, unix.Removexattr(p, "ssefs.encryption"), name+": removexattr ssefs.encryption", syscall.EPERM)
		if after := encryptionXattr(t, p); after != before {
			t.Errorf("%s: ssefs.encryption changed from %q to %q after refused writes", name, before, after)
		}
		_, err := unix.Getxattr(p, "ssefs.encryption", make([]byte, 1))
		wantErrno(t, err, name+": getxattr ssefs.encryption into a 1-byte buffer", syscall.ERANGE)
	}
	// Through a symlink (getxattr follows it).
	must(t, os.Symlink("written", m.P("link")), "symlink")
	assertEncryptionXattr(t, m.P("link"), "xattr-key")

	m = m.Restart(t)
	for _, name := range files {
		assertEncryptionXattr(t, m.P(name), "xattr-key")
	}
}

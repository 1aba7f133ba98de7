package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// assertRefusal checks a refusal: exit code 1 and exactly one stderr line, starting
// "ssefs: ", that contains every one of mustName.
func assertRefusal(t *testing.T, res RunResult, what string, mustName ...string) {
	t.Helper()
	if res.Code != 1 {
		t.Errorf("%s: exit code %d, want 1; stderr:\n%s", what, res.Code, res.Stderr)
	}
	lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ssefs: ") {
		t.Errorf("%s: want exactly one stderr line starting \"ssefs: \", got %d lines:\n%s", what, len(lines), res.Stderr)
	}
	for _, n := range mustName {
		if !strings.Contains(res.Stderr, n) {
			t.Errorf("%s: the message does not name %q:\n%s", what, n, res.Stderr)
		}
	}
}

// assertRefusalAny is assertRefusal where naming any one of names is enough.
func assertRefusalAny(t *testing.T, res RunResult, what string, names ...string) {
	t.Helper()
	assertRefusal(t, res, what)
	for _, n := range names {
		if strings.Contains(res.Stderr, n) {
			return
		}
	}
	t.Errorf("%s: the message names none of %q:\n%s", what, names, res.Stderr)
}

// keepFiles are written before the refusals and must read back afterwards.
type keepFiles map[string][]byte

func writeKeep(t *testing.T, m *Mount) keepFiles {
	r := rng(t)
	k := keepFiles{"keep/a": randBytes(r, 2*ChunkSize+7), "keep/b": []byte("small file"), "top": randBytes(r, 100)}
	must(t, os.Mkdir(m.P("keep"), 0o755), "mkdir")
	for name, data := range k {
		writeFile(t, m.P(name), data, 0o644)
	}
	return k
}

func (k keepFiles) assert(t *testing.T, m *Mount, what string) {
	t.Helper()
	for name, data := range k {
		got, err := os.ReadFile(m.P(name))
		if err != nil {
			t.Errorf("%s: %s: %v", what, name, err)
			continue
		}
		assertBytes(t, what+": "+name, got, data)
	}
}

// keyFiles returns the bytes of DATA/master.key and DATA/meta.key (nil if absent).
func keyFiles(dir string) map[string][]byte {
	out := map[string][]byte{}
	for _, n := range []string{"master.key", "meta.key"} {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		out[n] = b
	}
	return out
}

// TestRefusals: every refusal of the CLI contract, then the data dir is intact.
func TestRefusals(t *testing.T) {
	cfg := newConfig(t)
	m := StartMount(t, cfg)
	keep := writeKeep(t, m)
	m.Stop(t)
	keysBefore := keyFiles(cfg.DataDir)
	key := strings.TrimPrefix(cfg.Env[0], "SSEFS_KMS_MASTER_KEY=")
	keyHex := key[strings.Index(key, ":")+1:]

	run := func(c Config) RunResult { return runExpectExit(t, c, c.mountArgs()...) }

	t.Run("missing mountpoint", func(t *testing.T) {
		c := cfg
		c.Mountpoint = filepath.Join(t.TempDir(), "no-such-dir")
		assertRefusal(t, run(c), "missing mountpoint", c.Mountpoint)
	})
	t.Run("mountpoint is a file", func(t *testing.T) {
		c := cfg
		c.Mountpoint = filepath.Join(t.TempDir(), "a-file")
		writeFile(t, c.Mountpoint, []byte("x"), 0o644)
		assertRefusal(t, run(c), "mountpoint is a regular file", c.Mountpoint)
	})
	t.Run("mountpoint not empty", func(t *testing.T) {
		c := cfg
		c.Mountpoint = t.TempDir()
		writeFile(t, filepath.Join(c.Mountpoint, "occupant"), []byte("still here"), 0o644)
		assertRefusal(t, run(c), "non-empty mountpoint", c.Mountpoint)
		assertContent(t, filepath.Join(c.Mountpoint, "occupant"), []byte("still here"))
	})
	t.Run("mountpoint is a tmpfs mount", func(t *testing.T) {
		c := cfg
		c.Mountpoint = t.TempDir()
		must(t, unix.Mount("tmpfs", c.Mountpoint, "tmpfs", 0, "size=1m"), "mount tmpfs")
		t.Cleanup(func() { unix.Unmount(c.Mountpoint, unix.MNT_DETACH) })
		assertRefusal(t, run(c), "mountpoint already a (tmpfs) mount", c.Mountpoint)
		if fst, _ := mountFSType(c.Mountpoint); fst != "tmpfs" {
			t.Errorf("after the refusal the topmost mount at %s is %q, want the tmpfs", c.Mountpoint, fst)
		}
	})
	t.Run("mountpoint is another ssefs", func(t *testing.T) {
		other := newConfig(t)
		om := StartMount(t, other)
		writeFile(t, om.P("other-file"), []byte("other"), 0o644)
		c := cfg
		c.Mountpoint = other.Mountpoint
		assertRefusal(t, run(c), "mountpoint already an ssefs mount", c.Mountpoint)
		assertContent(t, om.P("other-file"), []byte("other")) // the first mount still serves
		om.Stop(t)
	})
	t.Run("data dir in use", func(t *testing.T) {
		first := StartMount(t, cfg)
		c := cfg
		c.Mountpoint = t.TempDir()
		res := run(c)
		assertRefusal(t, res, "data dir locked by a running ssefs", cfg.DataDir, "in use")
		keep.assert(t, first, "the running ssefs after a second one was refused")
		first.Stop(t)
	})
	t.Run("malformed master key", func(t *testing.T) {
		bad := []struct{ name, value string }{
			{"no name, no colon", keyHex},
			{"not hex", "it-key:" + strings.Repeat("zz", 32)},
			{"short hex", "it-key:" + keyHex[:62]},
			{"long hex", "it-key:" + keyHex + "00"},
			{"garbage", "garbage"},
		}
		for _, b := range bad {
			for _, env := range []string{"SSEFS_KMS_MASTER_KEY", "MINIO_KMS_MASTER_KEY"} {
				c := cfg
				c.Env = []string{env + "=" + b.value}
				res := run(c)
				assertRefusal(t, res, env+" "+b.name, env)
				assertNoSecret(t, res.Stderr, keyHex, env+" "+b.name)
			}
		}
		// Key files with malformed content, via both env vars and the flag, and a missing file.
		dir := t.TempDir()
		badFile := filepath.Join(dir, "bad.key")
		writeFile(t, badFile, []byte("it-key:"+keyHex[:40]+"\n"), 0o600)
		for _, env := range []string{"SSEFS_KMS_MASTER_KEY_FILE", "MINIO_KMS_MASTER_KEY_FILE"} {
			c := cfg
			c.Env = []string{env + "=" + badFile}
			res := run(c)
			assertRefusalAny(t, res, env+" with malformed content", badFile, env)
			assertNoSecret(t, res.Stderr, keyHex, env+" with malformed content")
		}
		c := cfg
		c.Env = nil
		c.Args = []string{"--master-key-file", badFile}
		res := run(c)
		assertRefusalAny(t, res, "--master-key-file with malformed content", badFile, "master-key-file")
		assertNoSecret(t, res.Stderr, keyHex, "--master-key-file with malformed content")
		c.Args = []string{"--master-key-file", filepath.Join(dir, "missing.key")}
		assertRefusalAny(t, run(c), "--master-key-file naming a missing file", filepath.Join(dir, "missing.key"))
		c.Args = nil
		c.Env = []string{"SSEFS_KMS_MASTER_KEY_FILE=" + filepath.Join(dir, "missing.key")}
		assertRefusalAny(t, run(c), "SSEFS_KMS_MASTER_KEY_FILE naming a missing file", filepath.Join(dir, "missing.key"), "SSEFS_KMS_MASTER_KEY_FILE")
	})
	t.Run("different master key", func(t *testing.T) {
		for _, k := range []string{NewKey("it-key"), NewKey("another-key")} {
			c := cfg
			c.Env = []string{"SSEFS_KMS_MASTER_KEY=" + k}
			res := run(c)
			assertRefusal(t, res, "existing data dir, different master key "+k[:strings.Index(k, ":")], "master key")
			assertNoSecret(t, res.Stderr, k[strings.Index(k, ":")+1:], "different master key")
			assertNoSecret(t, res.Stderr, keyHex, "different master key")
		}
	})
	t.Run("no master key for a data dir made with one", func(t *testing.T) {
		// The data dir was made with SSEFS_KMS_MASTER_KEY: starting it with no key must not
		// generate a new master.key (that would orphan everything), but refuse.
		c := cfg
		c.Env = nil
		assertRefusal(t, run(c), "existing data dir started with no master key", "master key")
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); err == nil {
			t.Errorf("a master.key was generated into a data dir that was made with another key")
		}
	})
	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"mount", "--data-dir", cfg.DataDir, "--no-such-flag", t.TempDir()},
			{"mount", "--data-dir", cfg.DataDir},
			{"mount", "--data-dir", cfg.DataDir, t.TempDir(), t.TempDir()},
		} {
			res := runExpectExit(t, cfg, args...)
			if res.Code != 2 {
				t.Errorf("ssefs %q: exit code %d, want 2 (usage error); stderr:\n%s", args, res.Code, res.Stderr)
			}
			if strings.TrimSpace(res.Stderr) == "" {
				t.Errorf("ssefs %q: a usage error with nothing on stderr", args)
			}
		}
	})

	// Nothing above touched the keys, and a correct mount reads everything.
	for name, b := range keyFiles(cfg.DataDir) {
		if !bytes.Equal(b, keysBefore[name]) {
			t.Errorf("%s changed during the refusals (%d bytes before, %d after)", name, len(keysBefore[name]), len(b))
		}
	}
	m = StartMount(t, cfg)
	keep.assert(t, m, "after all refusals")
}

// assertNoSecret fails if any 8-character piece of secretHex appears in s.
func assertNoSecret(t *testing.T, s, secretHex, what string) {
	t.Helper()
	for i := 0; i+8 <= len(secretHex); i++ {
		if strings.Contains(s, secretHex[i:i+8]) {
			t.Errorf("%s: the message echoes part of the key (%q):\n%s", what, secretHex[i:i+8], s)
			return
		}
	}
}

// TestVersion: `ssefs version` prints a version line and exits 0.
func TestVersion(t *testing.T) {
	requireMount(t)
	res := runExpectExit(t, newConfig(t), "version")
	if res.Code != 0 {
		t.Errorf("ssefs version: exit code %d; stderr:\n%s", res.Code, res.Stderr)
	}
	out := strings.TrimSpace(res.Stdout + res.Stderr)
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "ssefs") || len(strings.Fields(first)) < 2 {
		t.Errorf("ssefs version: first line %q, want a version line \"ssefs VERSION...\"; output:\n%s", first, out)
	}
}

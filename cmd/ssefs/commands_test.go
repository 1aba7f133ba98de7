package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs"
)

const testMasterKey = "mk:6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b"

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(args ...string) result {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// wantRefusal checks exit code and exactly one "ssefs: " line on stderr naming every want.
func (r result) wantRefusal(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ssefs: ") {
		t.Errorf("want one stderr line starting \"ssefs: \", got:\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not name %q:\n%s", w, r.stderr)
		}
	}
}

func (r result) wantOK(t *testing.T) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit code %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// newStaticDataDir makes a data directory sealed by testMasterKey (also put into the
// environment) with buckets photos (5 files) and docs (3 files), and closes it.
func newStaticDataDir(t *testing.T) string {
	t.Helper()
	clearKMSEnv(t)
	t.Setenv(ssefsMasterKey, testMasterKey)
	dir := t.TempDir()
	d := mustOpenStore(t, dir, true)
	ctx := context.Background()
	for bucket, n := range map[string]int{"photos": 5, "docs": 3} {
		if err := d.engine.CreateBucket(ctx, bucket, fs.Owner{Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := d.engine.PutObject(ctx, bucket, fmt.Sprintf("f%d", i), strings.NewReader(strings.Repeat("x", 100*i)), fs.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveDataDir opens dir as a mount would (holding its lock) and serves its admin socket.
func serveDataDir(t *testing.T, dir string) *dataStore {
	t.Helper()
	d := mustOpenStore(t, dir, false)
	srv, err := startAdminServer(d.dir, d, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop(); d.close() })
	return d
}

func TestBucketEncryptionCommands(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "offline", true: "through a mount's admin socket"}[live], func(t *testing.T) {
			dir := newStaticDataDir(t)
			if live {
				serveDataDir(t, dir)
			}
			be := func(args ...string) result {
				return runCmd(append([]string{"bucket", "encryption", args[0], "--data-dir", dir}, args[1:]...)...)
			}
			r := be("get", "photos")
			r.wantOK(t)
			if r.stdout != "none (process default mk)\n" {
				t.Errorf("get before set: %q", r.stdout)
			}
			r = be("set", "--key", "mk", "photos")
			r.wantOK(t)
			if !strings.Contains(r.stdout, "photos") || !strings.Contains(r.stdout, "mk") {
				t.Errorf("set says %q", r.stdout)
			}
			if r = be("get", "photos"); r.stdout != "mk\n" {
				t.Errorf("get after set: %q (code %d, %s)", r.stdout, r.code, r.stderr)
			}
			if r = be("get", "docs"); !strings.HasPrefix(r.stdout, "none") {
				t.Errorf("another bucket: %q", r.stdout)
			}
			r = be("set", "--key", "no-such-key", "photos")
			r.wantRefusal(t, 1, "no-such-key", "photos")
			t.Logf("refused set: %s", r.stderr)
			if strings.Count(r.stderr, "photos") != 1 || strings.Count(r.stderr, "no-such-key") != 1 {
				t.Errorf("the refusal should name the bucket and the key once each: %q", r.stderr)
			}
			if r = be("get", "photos"); r.stdout != "mk\n" {
				t.Errorf("a refused set changed the key: %q", r.stdout)
			}
			be("get", "nosuchbucket").wantRefusal(t, 1, "nosuchbucket", "does not exist")
			be("set", "--key", "mk", "nosuchbucket").wantRefusal(t, 1, "nosuchbucket")
			r = be("clear", "photos")
			r.wantOK(t)
			if !strings.Contains(r.stdout, "process default key mk") {
				t.Errorf("clear says %q", r.stdout)
			}
			if r = be("get", "photos"); !strings.HasPrefix(r.stdout, "none") {
				t.Errorf("get after clear: %q", r.stdout)
			}
			be("get", "Bad_Name").wantRefusal(t, 2, "BUCKET")
			be("set", "photos").wantRefusal(t, 2, "--key")
			be("get").wantRefusal(t, 2, "BUCKET")
		})
	}
}

func TestKeyRotateCommands(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "offline", true: "through a mount's admin socket"}[live], func(t *testing.T) {
			dir := newStaticDataDir(t)
			var d *dataStore
			if live {
				d = serveDataDir(t, dir)
			}
			rot := func(args ...string) result {
				return runCmd(append([]string{"key", "rotate", "--data-dir", dir}, args...)...)
			}
			r := rot()
			r.wantOK(t)
			if !strings.Contains(r.stdout, "8 of 8 files re-sealed") {
				t.Errorf("rotate all: %q", r.stdout)
			}
			r = rot("--bucket", "photos", "--from-key", "mk", "--to-key", "mk")
			r.wantOK(t)
			if !strings.Contains(r.stdout, "5 of 5 files re-sealed") {
				t.Errorf("rotate one bucket: %q", r.stdout)
			}
			rot("--to-key", "no-such-key").wantRefusal(t, 1, "no-such-key")
			rot("--bucket", "nosuchbucket").wantRefusal(t, 1, "nosuchbucket")
			r = rot("--abandon")
			r.wantOK(t)
			if !strings.Contains(r.stdout, "No interrupted key rotation") {
				t.Errorf("abandon with nothing pending: %q", r.stdout)
			}

			before, _ := os.ReadFile(filepath.Join(dir, metaKeyFile))
			r = rot("--metadata")
			r.wantOK(t)
			if !strings.Contains(r.stdout, "under key mk") {
				t.Errorf("rotate --metadata: %q", r.stdout)
			}
			after, _ := os.ReadFile(filepath.Join(dir, metaKeyFile))
			if bytes.Equal(before, after) {
				t.Errorf("meta.key is unchanged after key rotate --metadata")
			}
			rot("--metadata", "--to-key", "no-such-key").wantRefusal(t, 1, "no-such-key", "unchanged")
			if now, _ := os.ReadFile(filepath.Join(dir, metaKeyFile)); !bytes.Equal(now, after) {
				t.Errorf("a refused metadata rotation changed meta.key")
			}
			rot("--metadata", "--bucket", "photos").wantRefusal(t, 2, "--bucket")
			rot("extra").wantRefusal(t, 2, "no arguments")
			rot("--bucket", "Bad_Name").wantRefusal(t, 2, "--bucket")

			if live {
				// The serving process still reads everything: nothing was pulled from under it.
				if _, err := d.engine.StatObject(context.Background(), "photos", "f4", fs.GetOptions{}); err != nil {
					t.Errorf("after the rotations the mount cannot stat a file: %v", err)
				}
			}
		})
	}
	t.Run("the data directory opens with the re-sealed meta.key", func(t *testing.T) {
		dir := newStaticDataDir(t)
		runCmd("key", "rotate", "--metadata", "--data-dir", dir).wantOK(t)
		mustOpenStore(t, dir, false).close()
	})
}

func TestAdminCommandsWhenTheMountDoesNotAnswer(t *testing.T) {
	dir := newStaticDataDir(t)
	// Hold the lock the way a mount does, without serving the socket.
	lock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	runCmd("bucket", "encryption", "get", "--data-dir", dir, "photos").wantRefusal(t, 1, "in use", "admin socket")
}

func TestRotateKeysMessages(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := rotateKeys(ctx, &errBackend{fmt.Errorf("rotation interrupted: %w", context.Canceled)}, fs.RotateOptions{}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "interrupted after 5 of 100 files") || !strings.Contains(err.Error(), "run the same command again") {
		t.Errorf("Ctrl-C: %v", err)
	}
	pending := fmt.Errorf("%w: rotation of all files to key \"b\"; run it again with the same options, or abandon it", fs.ErrRotationPending)
	err = rotateKeys(context.Background(), &errBackend{pending}, fs.RotateOptions{}, &out, &errOut)
	if !errors.Is(err, fs.ErrRotationPending) || !strings.Contains(err.Error(), "--abandon") {
		t.Errorf("pending: %v", err)
	}
	failed := &failedBackend{}
	out.Reset()
	err = rotateKeys(context.Background(), failed, fs.RotateOptions{}, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "2 failed") {
		t.Errorf("failed files: %v, summary %q", err, out.String())
	}
}

// failedBackend's rotation finishes with two files it could not re-seal.
type failedBackend struct{ errBackend }

func (f *failedBackend) RotateKeys(context.Context, fs.RotateOptions) (fs.RotateProgress, error) {
	return fs.RotateProgress{Total: 10, Done: 8, Failed: 2}, errors.New("rotation finished, but 2 files could not be re-sealed")
}

func TestKeyCommandsStaticKey(t *testing.T) {
	clearKMSEnv(t)
	t.Setenv(ssefsMasterKey, testMasterKey)
	r := runCmd("key", "status", "mk")
	r.wantOK(t)
	if r.stdout != "Key: mk\n  Encryption: OK\n  Decryption: OK\n" {
		t.Errorf("status:\n%s", r.stdout)
	}
	r = runCmd("key", "status", "other")
	r.wantRefusal(t, 1, "other")
	if !strings.Contains(r.stdout, "Key: other\n  Encryption: ") || !strings.Contains(r.stdout, "Decryption: not tried") || strings.Contains(r.stdout, "Encryption: OK") {
		t.Errorf("status of a missing key:\n%s", r.stdout)
	}
	runCmd("key", "create", "new-key").wantRefusal(t, 1, "not supported by the static master key")
	runCmd("key", "list").wantRefusal(t, 1, "not supported by the static master key")
	runCmd("key", "status").wantRefusal(t, 2, "NAME")
	runCmd("key", "status", "a b").wantRefusal(t, 2)
	runCmd("key", "list", "a", "b").wantRefusal(t, 2, "PATTERN")
	runCmd("key", "frob").wantRefusal(t, 2, "frob")
	runCmd("key").wantRefusal(t, 2)
}

func TestKeyCommandsKES(t *testing.T) {
	clearKMSEnv(t)
	kms := newFakeKMS("k1")
	useFakeKES(t, kms)
	kesEnv(t, "k1")
	r := runCmd("key", "create", "k2")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "Created key k2 in KES at https://127.0.0.1:7373") {
		t.Errorf("create: %q", r.stdout)
	}
	runCmd("key", "create", "k2").wantRefusal(t, 1, `"k2"`, "already exists")
	runCmd("key", "create", "zz").wantOK(t)
	if r = runCmd("key", "list"); r.stdout != "k1\nk2\nzz\n" {
		t.Errorf("list: %q", r.stdout)
	}
	if r = runCmd("key", "list", "k*"); r.stdout != "k1\nk2\n" {
		t.Errorf("list k*: %q", r.stdout)
	}
	if r = runCmd("key", "status", "k2"); r.code != 0 || !strings.Contains(r.stdout, "Decryption: OK") {
		t.Errorf("status: %d %q %q", r.code, r.stdout, r.stderr)
	}
	kms.setFail(fmt.Errorf("KES down: %w", errors.New("connection refused")))
	r = runCmd("key", "status", "k2")
	r.wantRefusal(t, 1, "k2")
	if !strings.Contains(r.stdout, "Encryption: fake KMS: KES down") {
		t.Errorf("status with the KMS down:\n%s", r.stdout)
	}
}

func TestKeyStatusGeneratedKey(t *testing.T) {
	clearKMSEnv(t)
	dir := t.TempDir()
	mustOpenStore(t, dir, true).close() // as the first mount does: generates master.key
	r := runCmd("key", "status", "--data-dir", dir, generatedKeyName)
	r.wantOK(t)
	// Without a data directory there is no key, and none is generated.
	empty := t.TempDir()
	runCmd("key", "status", "--data-dir", empty, generatedKeyName).wantRefusal(t, 1, "no KMS is configured", empty)
	if _, err := os.Stat(filepath.Join(empty, masterKeyFile)); err == nil {
		t.Errorf("key status generated a master key")
	}
}

func TestHelp(t *testing.T) {
	clearKMSEnv(t)
	for _, args := range [][]string{
		{"help"}, {"--help"}, {"help", "mount"}, {"mount", "--help"}, {"help", "key"}, {"key", "--help"},
		{"help", "key", "create"}, {"help", "key", "list"}, {"help", "key", "status"}, {"help", "key", "rotate"},
		{"key", "rotate", "-h"}, {"help", "bucket"}, {"help", "bucket", "encryption", "set"}, {"bucket", "encryption", "get", "--help"},
		{"help", "stat"}, {"stat", "--help"},
	} {
		r := runCmd(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:") || r.stderr != "" {
			t.Errorf("ssefs %q: exit %d, stdout %d bytes, stderr %q", args, r.code, len(r.stdout), r.stderr)
		}
	}
	for _, cmd := range []string{"mount", "key", "bucket", "stat"} {
		if !strings.Contains(topUsage, "ssefs "+cmd) {
			t.Errorf("the top usage does not list %s", cmd)
		}
	}
	if r := runCmd("help", "key", "rotate"); !strings.Contains(r.stdout, "--metadata") || !strings.Contains(r.stdout, "--kms-kes-endpoint") {
		t.Errorf("help key rotate lacks its flags:\n%s", r.stdout)
	}
	runCmd("help", "frob").wantRefusal(t, 2, "frob")
	runCmd("bucket", "frob").wantRefusal(t, 2, "frob")
	runCmd("bucket", "encryption", "frob").wantRefusal(t, 2, "frob")
}

func TestProgressPrinter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	var buf bytes.Buffer
	pp := newProgressPrinter(&buf, false, now)
	pp.now = func() time.Time { return clock }
	pp.update(fs.RotateProgress{Total: 100, Done: 10})
	if buf.Len() != 0 {
		t.Errorf("a plain line before the interval: %q", buf.String())
	}
	clock = clock.Add(11 * time.Second)
	pp.update(fs.RotateProgress{Total: 100, Done: 50, Skipped: 2})
	pp.finish()
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "ssefs: rotating keys [") ||
		!strings.Contains(got, "52/100 files") || !strings.Contains(got, "2 skipped") || strings.Contains(got, "\r") {
		t.Errorf("plain progress: %q", got)
	}

	buf.Reset()
	clock = now
	pp = newProgressPrinter(&buf, true, now)
	pp.now = func() time.Time { return clock }
	for i := uint64(1); i <= 4; i++ {
		clock = clock.Add(time.Second)
		pp.update(fs.RotateProgress{Total: 4, Done: i})
	}
	pp.finish()
	got := buf.String()
	if strings.Count(got, "\r") != 5 || !strings.HasSuffix(got, "\x1b[K\n") || !strings.Contains(got, "100%") {
		t.Errorf("terminal progress: %q", got)
	}
}

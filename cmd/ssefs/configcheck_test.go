package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/internal/kestest"
	"github.com/ssefs/ssefs/internal/miniotest"
	"github.com/ssefs/ssefs/objstore"
)

// checkLines parses config check's output into what -> "status detail", failing on any
// line not in the "status what: detail" form.
func checkLines(t *testing.T, r result) map[string]string {
	t.Helper()
	lineRE := regexp.MustCompile(`^(ok   |warn |FAIL ) (.+?): (.+)$`)
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a check line: %q", l)
			continue
		}
		out[m[2]] = strings.TrimSpace(m[1]) + " " + m[3]
	}
	return out
}

// wantCheck fails unless the check named what has status and its line names every want.
func wantCheck(t *testing.T, lines map[string]string, what, status string, want ...string) {
	t.Helper()
	got, ok := lines[what]
	if !ok {
		t.Errorf("no %q check in %q", what, lines)
		return
	}
	if !strings.HasPrefix(got, status+" ") {
		t.Errorf("%s: %q, want %s", what, got, status)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q does not say %q", what, got, w)
		}
	}
}

// snapshot lists everything under dir with its size, mode and modification time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %v %d\n", p, info.Size(), info.Mode(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// mountpointStatus is what the mountpoint check of an empty directory says here.
func mountpointStatus() string {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "FAIL"
	}
	return "ok"
}

func TestConfigCheckStaticKey(t *testing.T) {
	clearKMSEnv(t)
	clearStoreEnv(t)
	keyFile := tempFile(t, "master.key", testMasterKey+"\n")
	data := filepath.Join(t.TempDir(), "data")
	mp := t.TempDir()
	run := func(args ...string) (result, map[string]string) {
		t.Helper()
		r := runCmd(append([]string{"config", "check", "--master-key-file", keyFile, "--data-dir", data}, args...)...)
		return r, checkLines(t, r)
	}

	// A new setup: nothing exists yet, and nothing is created.
	r, lines := run(mp)
	if want := map[string]int{"ok": 0, "FAIL": 1}[mountpointStatus()]; r.code != want {
		t.Errorf("exit %d, want %d:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
	wantCheck(t, lines, "flags", "ok", "a static master key (--master-key-file)")
	wantCheck(t, lines, "data directory", "ok", data, "does not exist yet", "the first mount creates it")
	wantCheck(t, lines, "kms", "ok", `the static master key "mk"`, "round trip")
	wantCheck(t, lines, "key file "+keyFile, "ok", "mode 0600")
	wantCheck(t, lines, "store", "ok", filepath.Join(data, objectsDir), "is created by the first mount", "available of")
	wantCheck(t, lines, "mountpoint "+mp, mountpointStatus())
	if _, ok := lines[metaKeyFile]; ok || len(lines) != 6 {
		t.Errorf("checks: %q", lines)
	}
	if _, err := os.Stat(data); err == nil {
		t.Fatalf("config check created the data directory")
	}

	// Broken: the key file readable by others, a missing and a non-empty mountpoint.
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, lines = run(filepath.Join(mp, "missing"))
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	wantCheck(t, lines, "key file "+keyFile, "FAIL", "mode 0644, must be 0600 or stricter", "chmod 600 "+keyFile)
	wantCheck(t, lines, "mountpoint "+filepath.Join(mp, "missing"), "FAIL", "does not exist")
	wantCheck(t, lines, "kms", "ok")
	_, lines = run(full)
	wantCheck(t, lines, "mountpoint "+full, "FAIL", "is not empty")
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}

	// An existing data directory: its meta.key must open with the KMS, and the check
	// changes nothing in it.
	t.Setenv(ssefsMasterKey, testMasterKey)
	mustOpenStore(t, data, true).close()
	t.Setenv(ssefsMasterKey, "")
	before := snapshot(t, data)
	r, lines = run()
	r.wantOK(t)
	wantCheck(t, lines, "data directory", "ok", data, "holds a store")
	wantCheck(t, lines, metaKeyFile, "ok", `sealed with key "mk"`)
	wantCheck(t, lines, "store", "ok", filepath.Join(data, objectsDir), "exists")
	other := tempFile(t, "other.key", "other:"+strings.Repeat("ab", 32))
	r = runCmd("config", "check", "--master-key-file", other, "--data-dir", data)
	lines = checkLines(t, r)
	if r.code != 1 {
		t.Errorf("another master key: exit %d", r.code)
	}
	wantCheck(t, lines, "kms", "ok")
	wantCheck(t, lines, metaKeyFile, "FAIL", `sealed with KMS key "mk"`, "cannot unseal")
	if after := snapshot(t, data); after != before {
		t.Errorf("config check changed the data directory:\n%s\nbefore:\n%s", after, before)
	}

	// While a mount serves it: a warning, not a failure.
	t.Setenv(ssefsMasterKey, testMasterKey)
	serveDataDir(t, data)
	t.Setenv(ssefsMasterKey, "")
	r, lines = run()
	r.wantOK(t)
	wantCheck(t, lines, "data directory", "warn", fmt.Sprintf("served by ssefs pid %d", os.Getpid()))

	// The S3 API's address: taken, then free.
	t.Setenv("SSEFS_ROOT_USER", "admin")
	t.Setenv("SSEFS_ROOT_PASSWORD", "secret-password")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := ln.Addr().String()
	_, lines = run("--s3-address", taken)
	wantCheck(t, lines, "s3 api "+taken, "FAIL", "address already in use")
	_, lines = run("--s3-address", "127.0.0.1:0", "--metrics-address", taken)
	wantCheck(t, lines, "metrics "+taken, "FAIL", "address already in use")
	// A secret on the command line is worth a warning; from the environment it is not.
	r, lines = run("--s3-address", "127.0.0.1:0", "--root-password", "secret-password")
	wantCheck(t, lines, "--root-password", "warn", "visible to every user", "--root-password-file")
	if strings.Contains(r.stdout, "secret-password") {
		t.Errorf("config check prints a secret:\n%s", r.stdout)
	}
	if _, lines = run("--s3-address", "127.0.0.1:0"); lines["--root-password"] != "" {
		t.Errorf("SSEFS_ROOT_PASSWORD: %q", lines["--root-password"])
	}
	ln.Close()
	_, lines = run("--s3-address", taken)
	wantCheck(t, lines, "s3 api "+taken, "ok", "free to listen on (http, credentials set)")
}

func TestConfigCheckConfigurationErrors(t *testing.T) {
	clearKMSEnv(t)
	clearStoreEnv(t)
	data := filepath.Join(t.TempDir(), "data")
	// No KMS: a warning; no master key is generated.
	r := runCmd("config", "check", "--data-dir", data)
	r.wantOK(t)
	lines := checkLines(t, r)
	wantCheck(t, lines, "kms", "warn", "none configured", filepath.Join(data, masterKeyFile), "not for production")
	if _, err := os.Stat(data); err == nil {
		t.Fatal("config check created the data directory")
	}
	// A configuration that does not parse is one failed check, naming the culprit.
	t.Setenv("SSEFS_KEY_CACHE_TTL", "soon")
	r = runCmd("config", "check", "--data-dir", data)
	if r.code != 1 || !strings.HasPrefix(r.stdout, "FAIL  flags: ") || !strings.Contains(r.stdout, "SSEFS_KEY_CACHE_TTL") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("bad variable: exit %d\n%s", r.code, r.stdout)
	}
	t.Setenv("SSEFS_KEY_CACHE_TTL", "")
	r = runCmd("config", "check", "--kms-kes-key-name", "k", "--data-dir", data)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  flags: --kms-kes-key-name is set, but no KES endpoint is") {
		t.Errorf("KES key without KES: exit %d\n%s", r.code, r.stdout)
	}
	runCmd("config", "check", "--frob").wantRefusal(t, 2, "frob")
	runCmd("config", "check", "a", "b").wantRefusal(t, 2, "MOUNTPOINT")
	runCmd("config").wantRefusal(t, 2, "check")
	runCmd("config", "frob").wantRefusal(t, 2, "frob")
}

// config check against a real KES: the good case (the key round trip, the client key
// file), a key KES does not have, and KES down.
func TestConfigCheckKES(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KES server")
	}
	clearKMSEnv(t)
	clearStoreEnv(t)
	srv := kestest.New(t)
	id := srv.NewIdentity(t)
	srv.SetPolicy("ssefs", []string{"/v1/key/generate/*", "/v1/key/decrypt/*"}, nil, id)
	srv.Start(t)
	srv.CreateKey(t, "ssefs-key")
	data := t.TempDir()
	if err := os.Chmod(data, 0o700); err != nil {
		t.Fatal(err)
	}
	check := func(key string) (result, map[string]string) {
		t.Helper()
		r := runCmd("config", "check", "--data-dir", data, "--kms-kes-endpoint", srv.Endpoint,
			"--kms-kes-cert-file", id.CertFile, "--kms-kes-key-file", id.KeyFile, "--kms-kes-ca-path", srv.CAFile,
			"--kms-kes-key-name", key, t.TempDir())
		return r, checkLines(t, r)
	}

	r, lines := check("ssefs-key")
	if want := map[string]int{"ok": 0, "FAIL": 1}[mountpointStatus()]; r.code != want {
		t.Errorf("exit %d, want %d:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
	wantCheck(t, lines, "flags", "ok", "KES at "+srv.Endpoint+" (--kms-kes-endpoint)", `default key "ssefs-key"`)
	wantCheck(t, lines, "kms", "ok", "KES at "+srv.Endpoint+` reachable, key "ssefs-key" usable (generate+decrypt round trip, as identity `+id.ID+")")
	wantCheck(t, lines, "key file "+id.KeyFile, "ok", "mode 0600", "KES client certificate")
	wantCheck(t, lines, "data directory", "ok", "holds no store yet")

	r, lines = check("no-such-key")
	if r.code != 1 {
		t.Errorf("unknown key: exit %d", r.code)
	}
	wantCheck(t, lines, "kms", "FAIL", `key "no-such-key" cannot seal a data key`, "does not exist")

	srv.Stop()
	t.Setenv("SSEFS_KMS_TIMEOUT", "2s")
	start := time.Now()
	r, lines = check("ssefs-key")
	if r.code != 1 || time.Since(start) > time.Minute {
		t.Errorf("KES down: exit %d after %s", r.code, time.Since(start))
	}
	wantCheck(t, lines, "kms", "FAIL", "KES at "+srv.Endpoint, "unreachable")
	wantCheck(t, lines, "store", "ok")
}

// config check of an S3 store: unclaimed (and left so), this data directory's, and one
// that does not answer.
func TestConfigCheckS3Store(t *testing.T) {
	clearStoreEnv(t)
	m := miniotest.Start(t)
	m.MakeBucket(t, "chunks")
	clearKMSEnv(t)
	t.Setenv(ssefsMasterKey, testMasterKey)
	minioEnv(t, m, "chunks", "host1")
	data := t.TempDir()

	r := runCmd("config", "check", "--data-dir", data)
	r.wantOK(t)
	lines := checkLines(t, r)
	wantCheck(t, lines, "store", "ok", "s3://chunks/host1", "reachable and unclaimed")
	if objs := m.Objects(t, "chunks", ""); len(objs) != 0 {
		t.Fatalf("config check wrote into the bucket: %d objects", len(objs))
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Fatalf("config check wrote into the data directory: %v", entries)
	}

	mustOpenStore(t, data, true).close()
	r = runCmd("config", "check", "--data-dir", data)
	r.wantOK(t)
	wantCheck(t, checkLines(t, r), "store", "ok", "s3://chunks/host1", "this data directory's store")
	// Another prefix's marker is not this data directory's.
	r = runCmd("config", "check", "--data-dir", t.TempDir(), "--store", "s3://chunks/host1")
	wantCheck(t, checkLines(t, r), "store", "FAIL", "belongs to another ssefs data directory")

	// Nothing listens on the endpoint.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	t.Setenv("SSEFS_STORE_ENDPOINT", "http://"+dead)
	t.Setenv("SSEFS_STORE_TIMEOUT", "2s")
	r = runCmd("config", "check", "--data-dir", t.TempDir())
	if r.code != 1 {
		t.Errorf("unreachable store: exit %d", r.code)
	}
	wantCheck(t, checkLines(t, r), "store", "FAIL", "s3://chunks/host1", dead, "connection refused")

	// The marker is still not there after all this: only mounting claims a store.
	s3, err := objstore.NewS3(objstore.S3Config{Endpoint: m.Endpoint, Bucket: "chunks", Prefix: "elsewhere",
		AccessKey: m.AccessKey, SecretKey: m.SecretKey, PathStyle: objstore.PathStyleOn})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, err := s3.ReadMarker(context.Background()); err == nil {
		t.Errorf("a marker under an unused prefix")
	}
}

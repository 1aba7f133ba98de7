package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/internal/miniotest"
	"github.com/ssefs/ssefs/objstore"
)

// clearStoreEnv keeps a developer's SSEFS_STORE_* and AWS_* out of a test.
func clearStoreEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SSEFS_STORE") || strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
		}
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

func TestStoreFlagErrorsNameTheCulprit(t *testing.T) {
	clearStoreEnv(t)
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		env, val string
		args     []string
		want     string
	}{
		{"", "", []string{"--store", "/some/dir"}, "--store"},
		{"", "", []string{"--store", "s3://B"}, "--store"},
		{"SSEFS_STORE", "s3://x", nil, "SSEFS_STORE"},
		{"", "", []string{"--store-path-style", "maybe"}, "--store-path-style"},
		{"", "", []string{"--store-sse", "aes"}, "--store-sse"},
		{"SSEFS_STORE_SSE", "kms:", nil, "SSEFS_STORE_SSE"},
		{"", "", []string{"--store-max-requests", "0"}, "--store-max-requests"},
		{"", "", []string{"--store-timeout", "10ms"}, "--store-timeout"},
		{"", "", []string{"--store-endpoint", "http://host/path"}, "--store-endpoint"},
		{"", "", []string{"--store-ca-file", missing}, "--store-ca-file"},
		{"", "", []string{"--store-access-key", "AK"}, "--store-access-key"},
		{"", "", []string{"--store-secret-key", "SUPERSECRET"}, "--store-secret-key"},
		{"", "", []string{"--store-secret-key-file", missing}, "--store-secret-key-file"},
		{"", "", []string{"--store-access-key", "AK", "--store-secret-key", "SUPERSECRET", "--store-secret-key-file", missing}, "once"},
		{"", "", []string{"--store-cache-dir", "/tmp/c"}, "--store-cache-mb"},
		{"", "", []string{"--store-cache-mb", "-1"}, "--store-cache-mb"},
	}
	for _, c := range cases {
		if c.env != "" {
			t.Setenv(c.env, c.val)
		}
		_, _, err := parseMountFlags(append(c.args, "/mnt"), io.Discard)
		var ue usageError
		switch {
		case !errors.As(err, &ue):
			t.Errorf("%v %s: want a usage error, got %v", c.args, c.env, err)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%v %s: error %q does not name %q", c.args, c.env, err, c.want)
		case strings.Contains(err.Error(), "SUPERSECRET"), strings.Contains(err.Error(), "\n"):
			t.Errorf("%v: error %q shows the secret or is not one line", c.args, err)
		}
		if c.env != "" {
			t.Setenv(c.env, "")
		}
	}
}

func TestStoreFlagsFromEnvironment(t *testing.T) {
	clearStoreEnv(t)
	secretFile := tempFile(t, "secret", "s3cr3t\n")
	t.Setenv("SSEFS_STORE", "s3://my-bucket/some/prefix/")
	t.Setenv("SSEFS_STORE_ACCESS_KEY", "AK")
	t.Setenv("SSEFS_STORE_SECRET_KEY_FILE", secretFile)
	t.Setenv("SSEFS_STORE_SSE", "kms:backend-key")
	t.Setenv("SSEFS_STORE_TIMEOUT", "5s")
	cfg, _, err := parseMountFlags([]string{"--store-max-requests", "4", "/mnt"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.objStore
	if s.bucket != "my-bucket" || s.prefix != "some/prefix" || s.accessKey != "AK" || s.secret != "s3cr3t" ||
		s.sse != "kms:backend-key" || s.timeout != 5*time.Second || s.maxRequests != 4 {
		t.Fatalf("parsed %+v", s)
	}
	// The offline commands read the same variables.
	e, err := objStoreFlagsFromEnv()
	if err != nil || e.bucket != "my-bucket" || e.secret != "s3cr3t" {
		t.Fatalf("from the environment: %+v, %v", e, err)
	}
}

// A local data directory refuses flags that only an S3 store uses, naming them.
func TestLocalStoreRefusesS3Flags(t *testing.T) {
	clearStoreEnv(t)
	dir := newStaticDataDir(t)
	t.Setenv("SSEFS_STORE_SSE", "s3")
	_, err := openStore(t, dir, false)
	if err == nil || !strings.Contains(err.Error(), "SSEFS_STORE_SSE") || !strings.Contains(err.Error(), objectsDir) {
		t.Fatalf("SSE for a local store: %v", err)
	}
}

// minioEnv points SSEFS_STORE_* at a fresh MinIO bucket.
func minioEnv(t *testing.T, m *miniotest.Server, bucket, prefix string) {
	t.Helper()
	t.Setenv("SSEFS_STORE", "s3://"+bucket+"/"+prefix)
	t.Setenv("SSEFS_STORE_ENDPOINT", m.Endpoint)
	t.Setenv("SSEFS_STORE_ACCESS_KEY", m.AccessKey)
	t.Setenv("SSEFS_STORE_SECRET_KEY", m.SecretKey)
	t.Setenv("SSEFS_STORE_TIMEOUT", "20s")
}

// fillDataDir makes the data directory of newStaticDataDir with the environment as it is
// (newStaticDataDir clears every SSEFS_* variable, SSEFS_STORE* included).
func fillDataDir(t *testing.T, dir string) {
	t.Helper()
	d := mustOpenStore(t, dir, true)
	ctx := context.Background()
	for bucket, n := range map[string]int{"photos": 5, "docs": 3} {
		if err := d.engine.CreateBucket(ctx, bucket, fs.Owner{Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			size := 0 // f0 is empty: no chunk; the others are over the inline limit: one object each
			if i > 0 {
				size = fs.DefaultInlineMax + 100*i
			}
			if _, err := d.engine.PutObject(ctx, bucket, fmt.Sprintf("f%d", i), strings.NewReader(strings.Repeat("x", size)), fs.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
}

// A data directory on S3: created with --store, it records the store (no secret) and
// marks the prefix; it opens again without --store; it refuses another prefix, a prefix
// of another data directory, a bucket without its marker; fsck works on it.
func TestS3DataDir(t *testing.T) {
	clearStoreEnv(t)
	m := miniotest.Start(t)
	m.MakeBucket(t, "ssefs-data")
	clearKMSEnv(t)
	t.Setenv(ssefsMasterKey, testMasterKey)
	minioEnv(t, m, "ssefs-data", "one")
	dir := t.TempDir()
	fillDataDir(t, dir) // the engine writes its objects to MinIO

	b, err := os.ReadFile(filepath.Join(dir, storeRecordFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec storeRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.URL != "s3://ssefs-data/one" || !rec.Ready || rec.Endpoint != m.Endpoint || len(rec.ID) != 32 {
		t.Fatalf("store record %s", b)
	}
	if strings.Contains(string(b), m.SecretKey) || strings.Contains(string(b), m.AccessKey) {
		t.Fatalf("the store record holds credentials: %s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, objectsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an S3 data directory has a local objects directory: %v", err)
	}
	objs := m.Objects(t, "ssefs-data", "one/")
	var marker []byte
	chunks := 0
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, "one/")
		if name == objstore.MarkerName {
			marker = o.Data
		} else if _, err := objstore.ParseID(name); err == nil {
			chunks++
		} else {
			t.Errorf("unexpected object %s", o.Key)
		}
	}
	if !strings.Contains(string(marker), rec.ID) {
		t.Fatalf("marker %q does not hold the store ID %s", marker, rec.ID)
	}
	if chunks != 6 {
		t.Errorf("%d chunk objects in MinIO, want 6", chunks)
	}

	// Direct I/O is a local store's: asked of this one, the open fails, naming it.
	t.Setenv("SSEFS_STORE_DIRECT_IO", "true")
	if _, err := openStore(t, dir, false); err == nil || !strings.Contains(err.Error(), "SSEFS_STORE_DIRECT_IO") || strings.Contains(err.Error(), "\n") {
		t.Errorf("direct I/O for an S3 store: %v", err)
	}
	t.Setenv("SSEFS_STORE_DIRECT_IO", "")

	// Without --store (fsck, key and bucket commands; a mount without the flag): the
	// recorded store, with credentials from the environment.
	t.Setenv("SSEFS_STORE", "")
	t.Setenv("SSEFS_STORE_ENDPOINT", "")
	const clean = "fsck: 11 inodes, 6 chunks (6 verified), 0 inconsistencies\n"
	r := runCmd("fsck", "--data-dir", dir)
	r.wantOK(t)
	if r.stdout != clean {
		t.Fatalf("fsck: %q", r.stdout)
	}
	// An orphan object in the bucket is found and removed; foreign keys are left alone.
	ctx := context.Background()
	c := m.Client(t)
	junk := objstore.NewID()
	for _, k := range []string{"one/" + junk.String(), "one/README"} {
		if _, err := c.PutObject(ctx, "ssefs-data", k, strings.NewReader("junk"), 4, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r = runCmd("fsck", "--repair", "--data-dir", dir)
	r.wantOK(t)
	if !strings.Contains(r.stdout, junk.String()+": 4 bytes, named by no chunk record [repaired: deleted]") {
		t.Errorf("fsck --repair: %s", r.stdout)
	}
	if _, err := c.StatObject(ctx, "ssefs-data", "one/"+junk.String(), minio.StatObjectOptions{}); err == nil {
		t.Error("the orphan is still there")
	}
	if _, err := c.StatObject(ctx, "ssefs-data", "one/README", minio.StatObjectOptions{}); err != nil {
		t.Errorf("fsck removed a key that is no object of the store: %v", err)
	}
	// Credentials from AWS_* work as well, and the content reads back.
	t.Setenv("SSEFS_STORE_ACCESS_KEY", "")
	t.Setenv("SSEFS_STORE_SECRET_KEY", "")
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	d := mustOpenStore(t, dir, false)
	or, _, err := d.engine.OpenObject(ctx, "photos", "f4", fs.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(or)
	or.Close()
	if err != nil || string(got) != strings.Repeat("x", fs.DefaultInlineMax+400) {
		t.Fatalf("read back %d bytes: %v", len(got), err)
	}
	d.close()

	// Another prefix for this data directory: refused, naming both.
	t.Setenv("SSEFS_STORE", "s3://ssefs-data/two")
	if _, err := openStore(t, dir, false); err == nil || !strings.Contains(err.Error(), "s3://ssefs-data/one") ||
		!strings.Contains(err.Error(), "s3://ssefs-data/two") {
		t.Fatalf("another prefix: %v", err)
	}
	// Another data directory on this prefix: refused.
	t.Setenv("SSEFS_STORE", "s3://ssefs-data/one")
	t.Setenv("SSEFS_STORE_ENDPOINT", m.Endpoint)
	other := t.TempDir()
	if _, err := openStore(t, other, true); err == nil || !strings.Contains(err.Error(), "belongs to another ssefs data directory") {
		t.Fatalf("a second data directory on the same prefix: %v", err)
	}
	// A local data directory cannot move to S3.
	t.Setenv("SSEFS_STORE", "")
	t.Setenv("SSEFS_STORE_ENDPOINT", "")
	t.Setenv("SSEFS_STORE_TIMEOUT", "")
	local := t.TempDir()
	fillDataDir(t, local)
	t.Setenv("SSEFS_STORE", "s3://ssefs-data/three")
	t.Setenv("SSEFS_STORE_ENDPOINT", m.Endpoint)
	if _, err := openStore(t, local, false); err == nil || !strings.Contains(err.Error(), "cannot move") {
		t.Fatalf("a local data directory on S3: %v", err)
	}
	// The bucket without the marker (another endpoint, or emptied): refused.
	t.Setenv("SSEFS_STORE", "")
	if err := c.RemoveObject(ctx, "ssefs-data", "one/"+objstore.MarkerName, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t, dir, false); err == nil || !strings.Contains(err.Error(), "has no "+objstore.MarkerName) {
		t.Fatalf("no marker: %v", err)
	}
	// A marker of another store: refused.
	if _, err := c.PutObject(ctx, "ssefs-data", "one/"+objstore.MarkerName, strings.NewReader(`{"ssefs_store":"00112233445566778899aabbccddeeff"}`), -1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t, dir, false); err == nil || !strings.Contains(err.Error(), "belongs to another") {
		t.Fatalf("foreign marker: %v", err)
	}
}

// A creation cut short after the record but before (or after) the marker is finished by
// the next start; a prefix with objects but no marker is refused for a new store.
func TestS3DataDirCreationResumes(t *testing.T) {
	clearStoreEnv(t)
	clearKMSEnv(t)
	t.Setenv(ssefsMasterKey, testMasterKey)
	m := miniotest.Start(t)
	m.MakeBucket(t, "resume")
	minioEnv(t, m, "resume", "p")
	dir := t.TempDir()
	rec := storeRecord{URL: "s3://resume/p", ID: objstore.NewID().String(), Endpoint: m.Endpoint}
	if err := writeStoreRecord(dir, &rec); err != nil {
		t.Fatal(err)
	}
	d := mustOpenStore(t, dir, true)
	d.close()
	got, err := readStoreRecord(dir)
	if err != nil || !got.Ready || got.ID != rec.ID {
		t.Fatalf("after resuming: %+v %v", got, err)
	}
	objs := m.Objects(t, "resume", "p/"+objstore.MarkerName)
	if len(objs) != 1 || !strings.Contains(string(objs[0].Data), rec.ID) {
		t.Fatalf("marker: %+v", objs)
	}

	// Chunk objects without a marker: someone else's store.
	ctx := context.Background()
	if _, err := m.Client(t).PutObject(ctx, "resume", "q/"+objstore.NewID().String(), strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSEFS_STORE", "s3://resume/q")
	if _, err := openStore(t, t.TempDir(), true); err == nil || !strings.Contains(err.Error(), "already holds ssefs chunk objects") {
		t.Fatalf("a prefix with objects: %v", err)
	}
}

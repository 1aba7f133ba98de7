package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssefs/ssefs/internal/kestest"
	"github.com/ssefs/ssefs/keys"
)

// TestAgainstKES runs the KMS configuration, the key commands and a data directory against
// a real KES server, configured the way a MinIO deployment is (MINIO_KMS_KES_*).
func TestAgainstKES(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KES server")
	}
	srv := kestest.New(t)
	ssefsID := srv.NewIdentity(t)
	srv.SetPolicy("ssefs", []string{"/v1/key/create/*", "/v1/key/generate/*", "/v1/key/decrypt/*", "/v1/key/list/*"}, nil, ssefsID)
	srv.Start(t)
	stranger := srv.NewIdentity(t) // in no policy

	useKES := func(t *testing.T, id kestest.Identity) {
		clearKMSEnv(t)
		t.Setenv("MINIO_KMS_KES_ENDPOINT", srv.Endpoint)
		t.Setenv("MINIO_KMS_KES_CERT_FILE", id.CertFile)
		t.Setenv("MINIO_KMS_KES_KEY_FILE", id.KeyFile)
		t.Setenv("MINIO_KMS_KES_CAPATH", srv.CAFile)
		t.Setenv("MINIO_KMS_KES_KEY_NAME", "ssefs-key")
	}
	useKES(t, ssefsID)

	r := runCmd("key", "create", "ssefs-key")
	r.wantOK(t)
	runCmd("key", "create", "ssefs-key").wantRefusal(t, 1, "already exists")
	runCmd("key", "create", "other-key").wantOK(t)
	if r = runCmd("key", "list", "ssefs-*"); r.stdout != "ssefs-key\n" {
		t.Errorf("key list ssefs-*: %q (%s)", r.stdout, r.stderr)
	}
	// The key commands name their key themselves: no default key name is needed.
	t.Setenv("MINIO_KMS_KES_KEY_NAME", "")
	runCmd("key", "create", "third-key").wantOK(t)
	if r = runCmd("key", "list", "third-*"); r.stdout != "third-key\n" {
		t.Errorf("key list third-* without a default key name: %q (%s)", r.stdout, r.stderr)
	}
	t.Setenv("MINIO_KMS_KES_KEY_NAME", "ssefs-key")
	if r = runCmd("key", "status", "ssefs-key"); r.code != 0 || !strings.Contains(r.stdout, "Decryption: OK") {
		t.Errorf("key status: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCmd("key", "status", "no-such-key")
	r.wantRefusal(t, 1, "no-such-key")
	if !strings.Contains(r.stdout, "Decryption: not tried") {
		t.Errorf("key status of a missing key:\n%s", r.stdout)
	}

	dir := t.TempDir()
	d := mustOpenStore(t, dir, true)
	if d.kms.kind != kindKES || d.kms.identity != ssefsID.ID {
		t.Errorf("opened %q with identity %q, want KES with %q", d.kms.kind, d.kms.identity, ssefsID.ID)
	}
	if key, err := d.rotateMetaKey(t.Context(), "other-key"); err != nil || key != "other-key" {
		t.Fatalf("rotate meta.key to other-key: %q, %v", key, err)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	if got := metaKeyName(t, dir); got != "other-key" {
		t.Fatalf("meta.key sealed under %q", got)
	}
	mustOpenStore(t, dir, false).close()

	t.Run("identity in no policy", func(t *testing.T) {
		useKES(t, stranger)
		_, err := openStore(t, dir, false)
		t.Log(err)
		if !errors.Is(err, keys.ErrForbidden) {
			t.Fatalf("%v, want ErrForbidden", err)
		}
		for _, w := range []string{`"other-key"`, "KES at " + srv.Endpoint, stranger.ID} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not name %q", err, w)
			}
		}
	})
	t.Run("KES down", func(t *testing.T) {
		useKES(t, ssefsID)
		srv.Stop()
		t.Setenv("SSEFS_KMS_TIMEOUT", "2s")
		_, err := openStore(t, dir, false)
		t.Log(err)
		if !errors.Is(err, keys.ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%v, want ErrUnavailable saying unreachable", err)
		}
	})
}

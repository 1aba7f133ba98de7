package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/keys"
)

// clearKMSEnv blanks every SSEFS_* and MINIO_* variable for the test (empty counts as
// unset everywhere), so the developer's own environment cannot leak into a case.
func clearKMSEnv(t *testing.T) {
	t.Helper()
	names := []string{ssefsMasterKey, ssefsMasterKeyFile, minioMasterKey, minioMasterKeyFile,
		"SSEFS_KMS_VAULT_APPROLE_SECRET", "SSEFS_KMS_VAULT_APPROLE_SECRET_FILE"}
	for _, l := range [][]string{minioKESEndpoint, minioKESKeyFile, minioKESCertFile, minioKESCAPath,
		minioKESKeyName, minioKESEnclave, minioKESAPIKey, minioKESKeyPassword, minioVaultEndpoint,
		minioVaultAuthType, minioVaultRoleID, minioVaultSecret, minioVaultKeyName, minioVaultNamespace, minioVaultCAPath} {
		names = append(names, l...)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SSEFS_") || strings.HasPrefix(k, "MINIO_") {
			names = append(names, k)
		}
	}
	for _, n := range names {
		t.Setenv(n, "")
	}
}

// parseKMS parses args as a command would and resolves the KMS settings.
func parseKMS(t *testing.T, args ...string) (*kmsConfig, error) {
	t.Helper()
	f := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	c := addKMSFlags(f)
	if err := f.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	if err := flagsFromEnv(f); err != nil {
		return c, err
	}
	return c, c.resolve()
}

// tempFile writes content to a new file in a test directory and returns its path.
func tempFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKMSConfigNothingIsTheGeneratedKey(t *testing.T) {
	clearKMSEnv(t)
	c, err := parseKMS(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.res.kind != kindGenerated {
		t.Fatalf("kind %q, want %q", c.res.kind, kindGenerated)
	}
}

func TestKMSConfigKESSources(t *testing.T) {
	cert, key, ca := tempFile(t, "c.crt", "cert"), tempFile(t, "c.key", "key"), t.TempDir()
	t.Run("flags", func(t *testing.T) {
		clearKMSEnv(t)
		c, err := parseKMS(t, "--kms-kes-endpoint", "https://a:7373,https://b:7373", "--kms-kes-endpoint", "https://c:7373",
			"--kms-kes-cert-file", cert, "--kms-kes-key-file", key, "--kms-kes-ca-path", ca, "--kms-kes-key-name", "k1")
		if err != nil {
			t.Fatal(err)
		}
		s := c.res
		if s.kind != kindKES || !slices.Equal(s.kesEndpoints, []string{"https://a:7373", "https://b:7373", "https://c:7373"}) {
			t.Fatalf("kind %q endpoints %q", s.kind, s.kesEndpoints)
		}
		if s.kesCertFile != (setting{cert, "--kms-kes-cert-file"}) || s.kesKeyFile != (setting{key, "--kms-kes-key-file"}) ||
			s.kesCAPath != (setting{ca, "--kms-kes-ca-path"}) || s.kesKeyName != (setting{"k1", "--kms-kes-key-name"}) {
			t.Fatalf("settings %+v", s)
		}
	})
	t.Run("SSEFS variables", func(t *testing.T) {
		clearKMSEnv(t)
		t.Setenv("SSEFS_KMS_KES_ENDPOINT", "https://a:7373, https://b:7373")
		t.Setenv("SSEFS_KMS_KES_CERT_FILE", cert)
		t.Setenv("SSEFS_KMS_KES_KEY_FILE", key)
		t.Setenv("SSEFS_KMS_KES_KEY_NAME", "k2")
		c, err := parseKMS(t)
		if err != nil {
			t.Fatal(err)
		}
		s := c.res
		if s.kind != kindKES || len(s.kesEndpoints) != 2 || s.kesEndpoint.source != "SSEFS_KMS_KES_ENDPOINT" ||
			s.kesKeyName != (setting{"k2", "SSEFS_KMS_KES_KEY_NAME"}) || s.kesCertFile.source != "SSEFS_KMS_KES_CERT_FILE" {
			t.Fatalf("settings %+v", s)
		}
	})
	t.Run("MinIO variables", func(t *testing.T) {
		for _, caVar := range []string{"MINIO_KMS_KES_CAPATH", "MINIO_KMS_KES_CA_PATH"} {
			clearKMSEnv(t)
			t.Setenv("MINIO_KMS_KES_ENDPOINT", "https://a:7373,https://b:7373")
			t.Setenv("MINIO_KMS_KES_CERT_FILE", cert)
			t.Setenv("MINIO_KMS_KES_KEY_FILE", key)
			t.Setenv("MINIO_KMS_KES_KEY_NAME", "minio-key")
			t.Setenv("MINIO_KMS_KES_ENCLAVE", "tenant-1")
			t.Setenv(caVar, ca)
			c, err := parseKMS(t)
			if err != nil {
				t.Fatal(err)
			}
			s := c.res
			if s.kind != kindKES || len(s.kesEndpoints) != 2 || s.kesEndpoint.source != "MINIO_KMS_KES_ENDPOINT" ||
				s.kesKeyName != (setting{"minio-key", "MINIO_KMS_KES_KEY_NAME"}) || s.kesCAPath != (setting{ca, caVar}) ||
				s.kesEnclave != (setting{"tenant-1", "MINIO_KMS_KES_ENCLAVE"}) {
				t.Fatalf("%s: settings %+v", caVar, s)
			}
		}
	})
	t.Run("priority flag, SSEFS, MinIO", func(t *testing.T) {
		clearKMSEnv(t)
		t.Setenv("MINIO_KMS_KES_ENDPOINT", "https://minio:7373")
		t.Setenv("MINIO_KMS_KES_CERT_FILE", cert)
		t.Setenv("MINIO_KMS_KES_KEY_FILE", key)
		t.Setenv("MINIO_KMS_KES_KEY_NAME", "from-minio")
		t.Setenv("SSEFS_KMS_KES_KEY_NAME", "from-ssefs")
		t.Setenv("SSEFS_KMS_KES_ENDPOINT", "https://ssefs:7373")
		c, err := parseKMS(t, "--kms-kes-endpoint", "https://flag:7373")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.res.kesEndpoints; !slices.Equal(got, []string{"https://flag:7373"}) {
			t.Errorf("endpoints %q: the flag must win", got)
		}
		if got := c.res.kesKeyName; got != (setting{"from-ssefs", "SSEFS_KMS_KES_KEY_NAME"}) {
			t.Errorf("key name %+v: SSEFS_* must win over MINIO_*", got)
		}
		if got := c.res.kesCertFile; got != (setting{cert, "MINIO_KMS_KES_CERT_FILE"}) {
			t.Errorf("cert file %+v: MINIO_* must fill what nothing else sets", got)
		}
	})
}

func TestKMSConfigVaultSources(t *testing.T) {
	t.Run("flags and secret files", func(t *testing.T) {
		clearKMSEnv(t)
		idFile := tempFile(t, "role-id", "  role-1234\n")
		secretFile := tempFile(t, "secret-id", "s3cr3t-from-file\n")
		c, err := parseKMS(t, "--kms-vault-endpoint", "https://vault:8200", "--kms-vault-key-name", "transit-key",
			"--kms-vault-approle-id-file", idFile, "--kms-vault-approle-secret-file", secretFile,
			"--kms-vault-namespace", "ns1", "--kms-vault-transit-mount", "kv-transit")
		if err != nil {
			t.Fatal(err)
		}
		s := c.res
		if s.kind != kindVault || s.vaultRoleID.value != "role-1234" || s.vaultSecret.value != "s3cr3t-from-file" ||
			s.vaultApproleMount != "approle" || s.vaultTransitMount != "kv-transit" || s.vaultNamespace.value != "ns1" ||
			s.vaultKeyName.value != "transit-key" {
			t.Fatalf("settings %+v", s)
		}
		if !strings.Contains(s.vaultSecret.source, "--kms-vault-approle-secret-file") || strings.Contains(s.vaultSecret.source, "s3cr3t") {
			t.Errorf("secret source %q: want the flag and file, never the secret", s.vaultSecret.source)
		}
	})
	t.Run("SSEFS variables and _FILE", func(t *testing.T) {
		clearKMSEnv(t)
		secretFile := tempFile(t, "secret-id", "s3cr3t-from-file\n")
		t.Setenv("SSEFS_KMS_VAULT_ENDPOINT", "https://vault:8200")
		t.Setenv("SSEFS_KMS_VAULT_APPROLE_ID", "role-env")
		t.Setenv("SSEFS_KMS_VAULT_APPROLE_SECRET_FILE", secretFile)
		t.Setenv("SSEFS_KMS_VAULT_KEY_NAME", "k")
		t.Setenv("MINIO_SSE_VAULT_APPROLE_SECRET", "minio-secret") // below SSEFS_*_FILE
		c, err := parseKMS(t)
		if err != nil {
			t.Fatal(err)
		}
		if s := c.res; s.vaultRoleID != (setting{"role-env", "SSEFS_KMS_VAULT_APPROLE_ID"}) || s.vaultSecret.value != "s3cr3t-from-file" {
			t.Fatalf("settings %+v", s)
		}
	})
	t.Run("command line wins over SSEFS variables", func(t *testing.T) {
		clearKMSEnv(t)
		secretFile := tempFile(t, "secret-id", "from-flag-file")
		t.Setenv("SSEFS_KMS_VAULT_APPROLE_SECRET", "from-env")
		t.Setenv("MINIO_SSE_VAULT_ENDPOINT", "http://127.0.0.1:8200")
		t.Setenv("MINIO_SSE_VAULT_APPROLE_ID", "role")
		t.Setenv("MINIO_SSE_VAULT_KEY_NAME", "k")
		c, err := parseKMS(t, "--kms-vault-approle-secret-file", secretFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.res.vaultSecret.value; got != "from-flag-file" {
			t.Fatalf("secret %q: the flag's file must win over SSEFS_KMS_VAULT_APPROLE_SECRET", got)
		}
	})
	t.Run("MinIO variables", func(t *testing.T) {
		for _, prefix := range []string{"MINIO_SSE_VAULT_", "MINIO_KMS_VAULT_"} {
			clearKMSEnv(t)
			ca := t.TempDir()
			t.Setenv(prefix+"ENDPOINT", "https://vault:8200")
			t.Setenv(prefix+"AUTH_TYPE", "approle")
			t.Setenv(prefix+"APPROLE_ID", "minio-role")
			t.Setenv(prefix+"APPROLE_SECRET", "minio-secret")
			t.Setenv(prefix+"KEY_NAME", "minio-key")
			t.Setenv(prefix+"NAMESPACE", "ns")
			t.Setenv(prefix+"CAPATH", ca)
			c, err := parseKMS(t)
			if err != nil {
				t.Fatal(err)
			}
			s := c.res
			if s.kind != kindVault || s.vaultEndpoint.source != prefix+"ENDPOINT" || s.vaultRoleID.value != "minio-role" ||
				s.vaultSecret != (setting{"minio-secret", prefix + "APPROLE_SECRET"}) || s.vaultKeyName.value != "minio-key" ||
				s.vaultNamespace.value != "ns" || s.vaultCAPath.value != ca {
				t.Fatalf("%s: settings %+v", prefix, s)
			}
		}
	})
}

func TestKMSConfigMasterKeySources(t *testing.T) {
	key := "mk:" + strings.Repeat("ab", 32)
	keyFile := tempFile(t, "master.key", key+"\n")
	cases := []struct {
		name       string
		env        map[string]string
		args       []string
		wantSource string
		wantFile   bool
	}{
		{"SSEFS_KMS_MASTER_KEY", map[string]string{ssefsMasterKey: key}, nil, ssefsMasterKey, false},
		{"SSEFS_KMS_MASTER_KEY_FILE", map[string]string{ssefsMasterKeyFile: keyFile}, nil, ssefsMasterKeyFile, true},
		{"MINIO_KMS_MASTER_KEY", map[string]string{minioMasterKey: key}, nil, minioMasterKey, false},
		{"MINIO_KMS_MASTER_KEY_FILE", map[string]string{minioMasterKeyFile: keyFile}, nil, minioMasterKeyFile, true},
		{"--master-key-file", nil, []string{"--master-key-file", keyFile}, "--master-key-file", true},
		{"flag over SSEFS", map[string]string{ssefsMasterKey: key}, []string{"--master-key-file", keyFile}, "--master-key-file", true},
		{"SSEFS over MinIO", map[string]string{minioMasterKey: key, ssefsMasterKeyFile: keyFile}, nil, ssefsMasterKeyFile, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearKMSEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			kc, err := parseKMS(t, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			if kc.res.kind != kindStatic || kc.res.master.source != c.wantSource || kc.res.masterIsFile != c.wantFile {
				t.Fatalf("kind %q source %q file %v; want static from %s (file %v)", kc.res.kind, kc.res.master.source, kc.res.masterIsFile, c.wantSource, c.wantFile)
			}
			k, err := kc.open(context.Background(), t.TempDir(), io.Discard, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k.defaultKey != "mk" || k.kind != kindStatic || strings.Contains(k.describe, "abab") {
				t.Errorf("opened %q %q %q", k.kind, k.defaultKey, k.describe)
			}
		})
	}
}

// TestKMSConfigErrors: every incomplete or contradictory setting is refused with one line
// that names the flag or variable at fault, and never quotes a secret.
func TestKMSConfigErrors(t *testing.T) {
	cert, key := tempFile(t, "c.crt", "cert"), tempFile(t, "c.key", "key")
	missing := filepath.Join(t.TempDir(), "no-such-file")
	emptyFile := tempFile(t, "empty", "\n")
	const secret = "TOPSECRET-0123456789"
	kes := []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-cert-file", cert, "--kms-kes-key-file", key, "--kms-kes-key-name", "k"}
	vault := map[string]string{"SSEFS_KMS_VAULT_ENDPOINT": "https://vault:8200", "SSEFS_KMS_VAULT_APPROLE_ID": "role",
		"SSEFS_KMS_VAULT_APPROLE_SECRET": secret, "SSEFS_KMS_VAULT_KEY_NAME": "vk"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		usage bool     // a usage error (exit 2), else a plain one (exit 1)
		want  []string // every one must be in the message
	}{
		{"KES and Vault", vault, kes, true, []string{"KES (--kms-kes-endpoint)", "Vault (SSEFS_KMS_VAULT_ENDPOINT)", "one KMS"}},
		{"KES and master key", map[string]string{ssefsMasterKey: "mk:" + strings.Repeat("00", 32)}, kes, true, []string{"--kms-kes-endpoint", ssefsMasterKey}},
		{"Vault from MinIO and master key from MinIO", with(nil, "MINIO_SSE_VAULT_ENDPOINT", "https://v:8200", minioMasterKey, "mk:"+strings.Repeat("00", 32)), nil, true, []string{"MINIO_SSE_VAULT_ENDPOINT", minioMasterKey}},
		{"KES without cert and key", nil, []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-key-name", "k"}, true, []string{"--kms-kes-cert-file", "--kms-kes-key-file"}},
		{"KES cert without key", nil, []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-cert-file", cert, "--kms-kes-key-name", "k"}, true, []string{"without its private key", "--kms-kes-key-file"}},
		{"KES key without cert (MinIO)", with(nil, "MINIO_KMS_KES_ENDPOINT", "https://kes:7373", "MINIO_KMS_KES_KEY_FILE", key, "MINIO_KMS_KES_KEY_NAME", "k"), nil, true, []string{"MINIO_KMS_KES_KEY_FILE", "--kms-kes-cert-file"}},
		{"KES without key name", nil, []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-cert-file", cert, "--kms-kes-key-file", key}, true, []string{"--kms-kes-key-name"}},
		{"KES endpoint http", with(nil, "SSEFS_KMS_KES_ENDPOINT", "http://kes:7373"), kes[2:], true, []string{"SSEFS_KMS_KES_ENDPOINT", "https://"}},
		{"KES endpoint not a URL", with(nil, "MINIO_KMS_KES_ENDPOINT", "kes:7373"), kes[2:], true, []string{"MINIO_KMS_KES_ENDPOINT", "kes:7373"}},
		{"KES empty endpoint list", nil, append([]string{"--kms-kes-endpoint", ","}, kes[2:]...), true, []string{"--kms-kes-endpoint"}},
		{"KES unreadable cert", nil, []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-cert-file", missing, "--kms-kes-key-file", key, "--kms-kes-key-name", "k"}, false, []string{"--kms-kes-cert-file", missing}},
		{"KES unreadable CA", with(nil, "MINIO_KMS_KES_CAPATH", missing), kes, false, []string{"MINIO_KMS_KES_CAPATH", missing}},
		{"KES encrypted key", with(nil, "MINIO_KMS_KES_KEY_PASSWORD", secret), kes, true, []string{"MINIO_KMS_KES_KEY_PASSWORD"}},
		{"KES API key", with(nil, "MINIO_KMS_KES_API_KEY", secret), []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-key-name", "k"}, true, []string{"MINIO_KMS_KES_API_KEY", "client certificate"}},
		{"KES setting without endpoint", nil, []string{"--kms-kes-key-name", "k"}, true, []string{"--kms-kes-key-name", "--kms-kes-endpoint"}},
		{"KES setting from SSEFS without endpoint", with(nil, "SSEFS_KMS_KES_CERT_FILE", cert), nil, true, []string{"SSEFS_KMS_KES_CERT_FILE"}},
		{"Vault endpoint not a URL", with(vault, "SSEFS_KMS_VAULT_ENDPOINT", "vault:8200"), nil, true, []string{"SSEFS_KMS_VAULT_ENDPOINT", "not a URL"}},
		{"Vault over http to another host", with(vault, "SSEFS_KMS_VAULT_ENDPOINT", "http://vault:8200"), nil, true, []string{"SSEFS_KMS_VAULT_ENDPOINT", "https://"}},
		{"Vault auth type", with(vault, "MINIO_SSE_VAULT_AUTH_TYPE", "kubernetes"), nil, true, []string{"MINIO_SSE_VAULT_AUTH_TYPE", "approle"}},
		{"Vault without role ID", with(vault, "SSEFS_KMS_VAULT_APPROLE_ID", ""), nil, true, []string{"role ID", "SSEFS_KMS_VAULT_APPROLE_ID"}},
		{"Vault without secret", with(vault, "SSEFS_KMS_VAULT_APPROLE_SECRET", ""), nil, true, []string{"secret ID", "SSEFS_KMS_VAULT_APPROLE_SECRET"}},
		{"Vault without key name", with(vault, "SSEFS_KMS_VAULT_KEY_NAME", ""), nil, true, []string{"--kms-vault-key-name"}},
		{"Vault secret and its file", with(vault, "SSEFS_KMS_VAULT_APPROLE_SECRET_FILE", emptyFile), nil, true, []string{"SSEFS_KMS_VAULT_APPROLE_SECRET", "SSEFS_KMS_VAULT_APPROLE_SECRET_FILE", "one way"}},
		{"Vault secret flag and file flag", vault, []string{"--kms-vault-approle-secret", secret, "--kms-vault-approle-secret-file", emptyFile}, true, []string{"--kms-vault-approle-secret", "--kms-vault-approle-secret-file"}},
		{"Vault secret file missing", with(vault, "SSEFS_KMS_VAULT_APPROLE_SECRET", "", "SSEFS_KMS_VAULT_APPROLE_SECRET_FILE", missing), nil, false, []string{"SSEFS_KMS_VAULT_APPROLE_SECRET_FILE", missing}},
		{"Vault secret file empty", with(vault, "SSEFS_KMS_VAULT_APPROLE_SECRET", ""), []string{"--kms-vault-approle-secret-file", emptyFile}, false, []string{"--kms-vault-approle-secret-file", emptyFile, "empty"}},
		{"Vault unreadable CA", with(vault, "MINIO_SSE_VAULT_CAPATH", missing), nil, false, []string{"MINIO_SSE_VAULT_CAPATH", missing}},
		{"Vault setting without endpoint", nil, []string{"--kms-vault-namespace", "ns"}, true, []string{"--kms-vault-namespace", "--kms-vault-endpoint"}},
		{"master key and its file", with(nil, ssefsMasterKey, "mk:"+strings.Repeat("00", 32), ssefsMasterKeyFile, emptyFile), nil, true, []string{ssefsMasterKey, ssefsMasterKeyFile}},
		{"MinIO master key and its file", with(nil, minioMasterKey, "mk:"+strings.Repeat("00", 32), minioMasterKeyFile, emptyFile), nil, true, []string{minioMasterKey, minioMasterKeyFile}},
		{"timeout", nil, []string{"--kms-timeout", "0s"}, true, []string{"--kms-timeout"}},
		{"timeout from SSEFS", with(nil, "SSEFS_KMS_TIMEOUT", "-1s"), nil, true, []string{"SSEFS_KMS_TIMEOUT"}},
		{"key name with space", nil, []string{"--kms-kes-endpoint", "https://kes:7373", "--kms-kes-cert-file", cert, "--kms-kes-key-file", key, "--kms-kes-key-name", "a b"}, true, []string{"--kms-kes-key-name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearKMSEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := parseKMS(t, c.args...)
			if err == nil {
				t.Fatalf("accepted; want an error naming %q", c.want)
			}
			msg := err.Error()
			t.Log(msg)
			var ue usageError
			if got := errors.As(err, &ue); got != c.usage {
				t.Errorf("usage error = %v, want %v: %s", got, c.usage, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not name %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("%q quotes the secret", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("%q is more than one line", msg)
			}
		})
	}
}

// TestMinIOLeftoversAreIgnored: a MinIO environment file may carry settings of a KMS it
// does not use; ssefs, like MinIO, ignores them rather than refusing to start.
func TestMinIOLeftoversAreIgnored(t *testing.T) {
	clearKMSEnv(t)
	t.Setenv("MINIO_KMS_KES_KEY_NAME", "unused")
	t.Setenv("MINIO_SSE_VAULT_NAMESPACE", "unused")
	t.Setenv(ssefsMasterKey, "mk:"+strings.Repeat("00", 32))
	c, err := parseKMS(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.res.kind != kindStatic {
		t.Fatalf("kind %q", c.res.kind)
	}
}

// fakeKMS is an in-memory KMS with named keys (each a static master key of its own), for
// driving KES and Vault paths without a server.
type fakeKMS struct {
	mu      sync.Mutex
	keys    map[string]*keys.Static
	failAll error // every call fails with this (e.g. keys.ErrUnavailable)
	closed  bool
}

func newFakeKMS(names ...string) *fakeKMS {
	f := &fakeKMS{keys: map[string]*keys.Static{}}
	for _, n := range names {
		f.CreateKey(context.Background(), n)
	}
	return f
}

func (f *fakeKMS) key(name string) (*keys.Static, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return nil, fmt.Errorf("fake KMS: %w", f.failAll)
	}
	k, ok := f.keys[name]
	if !ok {
		return nil, fmt.Errorf("fake KMS: %w: %q", keys.ErrKeyNotFound, name)
	}
	return k, nil
}

func (f *fakeKMS) GenerateKey(ctx context.Context, name string, kctx keys.Context) (keys.DEK, error) {
	k, err := f.key(name)
	if err != nil {
		return keys.DEK{}, err
	}
	return k.GenerateKey(ctx, name, kctx)
}

func (f *fakeKMS) Decrypt(ctx context.Context, name string, ct []byte, kctx keys.Context) ([]byte, error) {
	k, err := f.key(name)
	if err != nil {
		return nil, err
	}
	return k.Decrypt(ctx, name, ct, kctx)
}

func (f *fakeKMS) CreateKey(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return f.failAll
	}
	if _, ok := f.keys[name]; ok {
		return fmt.Errorf("fake KMS: %w: %q", keys.ErrKeyExists, name)
	}
	k, err := keys.GenerateMasterKey(name)
	if err != nil {
		return err
	}
	f.keys[name] = k
	return nil
}

func (f *fakeKMS) ListKeys(_ context.Context, pattern string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.keys {
		if ok, _ := filepath.Match(pattern, n); ok || pattern == "" {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeKMS) setFail(err error) {
	f.mu.Lock()
	f.failAll = err
	f.mu.Unlock()
}

// useFakeKES makes the KES configuration path open kms instead of a KES client.
func useFakeKES(t *testing.T, kms *fakeKMS) *kesOptions {
	t.Helper()
	var got kesOptions
	old := openKES
	openKES = func(o kesOptions) (keys.KMS, func() error, error) {
		got = o
		return kms, func() error { kms.mu.Lock(); kms.closed = true; kms.mu.Unlock(); return nil }, nil
	}
	t.Cleanup(func() { openKES = old })
	return &got
}

// kesEnv configures KES through SSEFS_* variables with readable dummy cert and key files.
func kesEnv(t *testing.T, keyName string) {
	t.Helper()
	t.Setenv("SSEFS_KMS_KES_ENDPOINT", "https://127.0.0.1:7373")
	t.Setenv("SSEFS_KMS_KES_CERT_FILE", tempFile(t, "c.crt", "cert"))
	t.Setenv("SSEFS_KMS_KES_KEY_FILE", tempFile(t, "c.key", "key"))
	t.Setenv("SSEFS_KMS_KES_KEY_NAME", keyName)
}

func TestKMSOpenKES(t *testing.T) {
	clearKMSEnv(t)
	kms := newFakeKMS("k1")
	got := useFakeKES(t, kms)
	kesEnv(t, "k1")
	t.Setenv("SSEFS_KMS_TIMEOUT", "3s")
	c, err := parseKMS(t)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.open(context.Background(), t.TempDir(), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.kind != kindKES || k.defaultKey != "k1" || k.describe != "KES at https://127.0.0.1:7373" {
		t.Errorf("opened %q %q %q", k.kind, k.defaultKey, k.describe)
	}
	if got.Timeout != 3*time.Second || len(got.Endpoints) != 1 || got.CertFile == "" || got.KeyFile == "" {
		t.Errorf("KES options %+v", *got)
	}
	if err := k.Close(); err != nil || !kms.closed {
		t.Errorf("Close: %v, closed %v", err, kms.closed)
	}
}

// TestKMSOpenVaultLoginFailure: a refused login is one line naming Vault, the role ID's
// source and the cause, and never the secret.
func TestKMSOpenVaultLoginFailure(t *testing.T) {
	clearKMSEnv(t)
	old := openVault
	var got vaultOptions
	openVault = func(ctx context.Context, o vaultOptions) (keys.KMS, func() error, error) {
		got = o
		if _, ok := ctx.Deadline(); !ok {
			t.Errorf("the login has no deadline")
		}
		return nil, nil, fmt.Errorf("vault: login: %w: invalid role or secret ID", keys.ErrIdentityRejected)
	}
	t.Cleanup(func() { openVault = old })
	t.Setenv("MINIO_SSE_VAULT_ENDPOINT", "https://vault:8200")
	t.Setenv("MINIO_SSE_VAULT_APPROLE_ID", "role")
	t.Setenv("MINIO_SSE_VAULT_APPROLE_SECRET", "TOPSECRET")
	t.Setenv("MINIO_SSE_VAULT_KEY_NAME", "vk")
	c, err := parseKMS(t)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.open(context.Background(), t.TempDir(), io.Discard, nil)
	if !errors.Is(err, keys.ErrIdentityRejected) {
		t.Fatalf("err %v, want ErrIdentityRejected", err)
	}
	for _, want := range []string{"Vault at https://vault:8200", "MINIO_SSE_VAULT_APPROLE_ID", "MINIO_SSE_VAULT_APPROLE_SECRET", "refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("%q quotes the secret", err)
	}
	if got.SecretID != "TOPSECRET" || got.RoleID != "role" || got.TransitMount != "transit" || got.AppRoleMount != "approle" {
		t.Errorf("Vault options %+v", got)
	}
}

// TestKMSOpenVaultUnreachable goes through the real keys.NewVault: nothing listens, so the
// login fails as unreachable, naming Vault and never the secret.
func TestKMSOpenVaultUnreachable(t *testing.T) {
	clearKMSEnv(t)
	t.Setenv("SSEFS_KMS_VAULT_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("SSEFS_KMS_VAULT_APPROLE_ID", "role")
	t.Setenv("SSEFS_KMS_VAULT_APPROLE_SECRET", "TOPSECRET")
	t.Setenv("SSEFS_KMS_VAULT_KEY_NAME", "vk")
	t.Setenv("SSEFS_KMS_TIMEOUT", "2s")
	c, err := parseKMS(t)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.open(context.Background(), t.TempDir(), io.Discard, nil)
	t.Log(err)
	if !errors.Is(err, keys.ErrUnavailable) || !strings.Contains(err.Error(), "Vault at http://127.0.0.1:1") || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("%v: want ErrUnavailable naming Vault, without the secret", err)
	}
}

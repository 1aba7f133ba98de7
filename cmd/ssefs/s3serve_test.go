package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs/s3/sigv4"
)

func TestS3Flags(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-a-file-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		env       map[string]string
		args      []string
		wantErr   []string // substrings of the refusal; nil: accepted
		wantCreds sigv4.Credentials
	}{
		{name: "S3 off", args: nil},
		{name: "SSEFS_ROOT_*", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "127.0.0.1:0"}, wantCreds: sigv4.Credentials{AccessKey: "admin", SecretKey: "password-1"}},
		{name: "MINIO_ROOT_*", env: map[string]string{"MINIO_ROOT_USER": "minio", "MINIO_ROOT_PASSWORD": "minio-secret"},
			args: []string{"--s3-address", "127.0.0.1:0"}, wantCreds: sigv4.Credentials{AccessKey: "minio", SecretKey: "minio-secret"}},
		{name: "SSEFS_ROOT_* wins over MINIO_ROOT_*", env: map[string]string{"SSEFS_ROOT_USER": "ours", "SSEFS_ROOT_PASSWORD": "our-secret",
			"MINIO_ROOT_USER": "minio", "MINIO_ROOT_PASSWORD": "minio-secret"},
			args: []string{"--s3-address", "127.0.0.1:0"}, wantCreds: sigv4.Credentials{AccessKey: "ours", SecretKey: "our-secret"}},
		{name: "password file", args: []string{"--s3-address", "127.0.0.1:0", "--root-user", "admin", "--root-password-file", pwFile},
			wantCreds: sigv4.Credentials{AccessKey: "admin", SecretKey: "from-a-file-123"}},
		{name: "no credentials", args: []string{"--s3-address", "127.0.0.1:0"}, wantErr: []string{"SSEFS_ROOT_USER", "SSEFS_ROOT_PASSWORD"}},
		{name: "short password", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "short"},
			args: []string{"--s3-address", "127.0.0.1:0"}, wantErr: []string{"SSEFS_ROOT_PASSWORD", "at least 8"}},
		{name: "password twice", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "127.0.0.1:0", "--root-password-file", pwFile}, wantErr: []string{"SSEFS_ROOT_PASSWORD", "--root-password-file"}},
		{name: "missing password file", args: []string{"--s3-address", "127.0.0.1:0", "--root-user", "admin", "--root-password-file", pwFile + ".missing"},
			wantErr: []string{"--root-password-file", "pw.missing"}},
		{name: "cert without key", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "127.0.0.1:0", "--s3-cert", pwFile}, wantErr: []string{"--s3-cert", "--s3-key"}},
		{name: "unreadable cert", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "127.0.0.1:0", "--s3-cert", pwFile, "--s3-key", pwFile}, wantErr: []string{"--s3-cert", pwFile}},
		{name: "bad address", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "9000"}, wantErr: []string{"--s3-address", "9000"}},
		{name: "credentials without S3", args: []string{"--root-user", "admin"}, wantErr: []string{"--root-user", "--s3-address"}},
		{name: "domain without S3", args: []string{"--s3-domain", "s3.example.net"}, wantErr: []string{"--s3-domain", "--s3-address"}},
		{name: "no connections", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "127.0.0.1:0", "--s3-max-connections", "0"}, wantErr: []string{"--s3-max-connections"}},
		{name: "no header timeout", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1", "SSEFS_S3_READ_HEADER_TIMEOUT": "0s"},
			args: []string{"--s3-address", "127.0.0.1:0"}, wantErr: []string{"--s3-read-header-timeout"}},
		{name: "no io timeout", env: map[string]string{"SSEFS_ROOT_USER": "admin", "SSEFS_ROOT_PASSWORD": "password-1"},
			args: []string{"--s3-address", "127.0.0.1:0", "--s3-io-timeout", "0"}, wantErr: []string{"--s3-io-timeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearKMSEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, _, err := parseMountFlags(append(c.args, "/mnt/x"), io.Discard)
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cfg.s3.creds != c.wantCreds {
					t.Errorf("credentials %q, want %q", cfg.s3.creds.AccessKey, c.wantCreds.AccessKey)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want a refusal naming %q", c.wantErr)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "password-1") || strings.Contains(err.Error(), "from-a-file") {
				t.Errorf("refusal %q shows the secret", err)
			}
		})
	}
}

func TestServeNeedsAddress(t *testing.T) {
	clearKMSEnv(t)
	r := runCmd("serve", "--data-dir", t.TempDir())
	r.wantRefusal(t, 2, "--s3-address")
}

func TestS3DomainFromMinIOVariable(t *testing.T) {
	clearKMSEnv(t)
	t.Setenv("SSEFS_ROOT_USER", "admin")
	t.Setenv("SSEFS_ROOT_PASSWORD", "password-1")
	t.Setenv("MINIO_DOMAIN", "s3.example.net,s3.example.org")
	cfg, _, err := parseMountFlags([]string{"--s3-address", "127.0.0.1:0", "/mnt/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.s3.domains, ",") != "s3.example.net,s3.example.org" {
		t.Fatalf("domains %q", cfg.s3.domains)
	}
	cfg, _, err = parseMountFlags([]string{"--s3-address", "127.0.0.1:0", "--s3-domain", "ours.test", "/mnt/x"}, io.Discard)
	if err != nil || strings.Join(cfg.s3.domains, ",") != "ours.test" {
		t.Fatalf("--s3-domain over MINIO_DOMAIN: %q, %v", cfg.s3.domains, err)
	}
}

// TestS3HardeningFlags: the connection limit and the (hidden) timeouts have safe defaults,
// are read from SSEFS_*, and the hidden ones stay out of --help.
func TestS3HardeningFlags(t *testing.T) {
	clearKMSEnv(t)
	t.Setenv("SSEFS_ROOT_USER", "admin")
	t.Setenv("SSEFS_ROOT_PASSWORD", "password-1")
	cfg, _, err := parseMountFlags([]string{"--s3-address", "127.0.0.1:0", "/mnt/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.s3.maxConnections != 1024 || cfg.s3.readHeaderTimeout != 30*time.Second || cfg.s3.ioTimeout != 2*time.Minute {
		t.Errorf("defaults: %d connections, header timeout %s, io timeout %s; want 1024, 30s, 2m",
			cfg.s3.maxConnections, cfg.s3.readHeaderTimeout, cfg.s3.ioTimeout)
	}
	t.Setenv("SSEFS_S3_MAX_CONNECTIONS", "7")
	t.Setenv("SSEFS_S3_READ_HEADER_TIMEOUT", "3s")
	t.Setenv("SSEFS_S3_IO_TIMEOUT", "4s")
	cfg, _, err = parseMountFlags([]string{"--s3-address", "127.0.0.1:0", "/mnt/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.s3.maxConnections != 7 || cfg.s3.readHeaderTimeout != 3*time.Second || cfg.s3.ioTimeout != 4*time.Second {
		t.Errorf("from SSEFS_*: %d connections, header timeout %s, io timeout %s; want 7, 3s, 4s",
			cfg.s3.maxConnections, cfg.s3.readHeaderTimeout, cfg.s3.ioTimeout)
	}
	var help strings.Builder
	if err := runServe([]string{"--help"}, &help, io.Discard); !errors.Is(err, errHelp) {
		t.Fatalf("serve --help: %v", err)
	}
	if !strings.Contains(help.String(), "--s3-max-connections") {
		t.Errorf("serve --help does not list --s3-max-connections:\n%s", help.String())
	}
	for _, hidden := range []string{"--s3-read-header-timeout", "--s3-io-timeout"} {
		if strings.Contains(help.String(), hidden) {
			t.Errorf("serve --help lists the hidden %s", hidden)
		}
	}
}

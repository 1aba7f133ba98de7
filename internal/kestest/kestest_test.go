package kestest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServer checks the helper: start, keys, policies, backup/restore, restart.
func TestServer(t *testing.T) {
	ca := NewCA(t)
	app := ca.NewIdentity(t)
	s := Start(t, WithCA(ca), WithPolicy("app", []string{"/v1/key/generate/app-*", "/v1/key/decrypt/app-*"}, nil, app))
	if !s.Running() {
		t.Fatal("not running after Start")
	}
	for _, f := range []string{s.CAFile, s.Admin.CertFile, s.Admin.KeyFile, app.KeyFile, s.ConfigFile} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	s.CreateKey(t, "app-key")
	if _, err := os.Stat(filepath.Join(s.KeystoreDir, "app-key")); err != nil {
		t.Fatalf("fs keystore layout: %v", err)
	}
	gen := func() (int, []byte) {
		return s.Request(t, app, http.MethodPut, "/v1/key/generate/app-key", map[string][]byte{"context": []byte("c")})
	}
	code, body := gen()
	if code != http.StatusOK {
		t.Fatalf("generate as app: %d %s", code, body)
	}
	var dek struct{ Plaintext, Ciphertext []byte }
	if err := json.Unmarshal(body, &dek); err != nil || len(dek.Plaintext) != 32 || len(dek.Ciphertext) == 0 {
		t.Fatalf("generate answer %s: %v", body, err)
	}
	decrypt := func() (int, []byte) {
		return s.Request(t, app, http.MethodPut, "/v1/key/decrypt/app-key",
			map[string][]byte{"ciphertext": dek.Ciphertext, "context": []byte("c")})
	}

	backup := s.BackupKey(t, "app-key")
	s.DeleteKey(t, "app-key")
	if code, body := decrypt(); code != http.StatusNotFound {
		t.Fatalf("decrypt with a deleted key: %d %s", code, body)
	}
	s.RestoreKey(t, "app-key", backup)
	if code, body := decrypt(); code != http.StatusOK || !bytes.Contains(body, []byte("plaintext")) {
		t.Fatalf("decrypt with the restored key: %d %s", code, body)
	}

	endpoint := s.Endpoint
	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	s.Stop() // twice is fine
	s.Restart(t)
	if s.Endpoint != endpoint {
		t.Errorf("Restart moved the server from %s to %s", endpoint, s.Endpoint)
	}
	if code, body := decrypt(); code != http.StatusOK {
		t.Fatalf("decrypt after Restart (same keystore): %d %s", code, body)
	}

	// A policy changed with SetPolicy applies from the next Restart.
	s.SetPolicy("app", []string{"/v1/key/decrypt/app-*"}, nil, app)
	s.Restart(t)
	if code, _ := gen(); code != http.StatusForbidden {
		t.Fatalf("generate after the policy dropped it: %d, want 403", code)
	}
}

// TestWireFacts pins what the keys package's KES client relies on in KES v0.24.0, so a
// change of the pinned version that breaks one shows here.
func TestWireFacts(t *testing.T) {
	s := New(t)
	app := s.NewIdentity(t)
	unknown := s.NewIdentity(t)
	s.SetPolicy("app", []string{"/v1/key/generate/app-*", "/v1/key/list/*", "/v1/identity/self/describe"}, nil, app)
	s.Start(t)
	for _, k := range []string{"app-a", "app-b", "other"} {
		s.CreateKey(t, k)
	}
	for _, c := range []struct {
		id           Identity
		method, path string
		body         any
		code         int
		answer       string // a substring of the body
	}{
		// Errors are {"message": "..."} with these texts.
		{s.Admin, "PUT", "/v1/key/create/app-a", nil, 400, `{"message":"key already exists"`},
		{app, "PUT", "/v1/key/generate/app-missing", nil, 404, `{"message":"key does not exist"`},
		{s.Admin, "PUT", "/v1/key/decrypt/app-a", map[string][]byte{"ciphertext": []byte("x")}, 400,
			`{"message":"decryption failed: ciphertext is not authentic"`},
		{app, "PUT", "/v1/key/generate/other", nil, 403, `{"message":"not authorized: insufficient permissions"`},
		// An identity in no policy gets the very same answer as a forbidden call ...
		{unknown, "PUT", "/v1/key/generate/app-a", nil, 403, `{"message":"not authorized: insufficient permissions"`},
		// ... and self-describe cannot tell them apart: it knows only the admin.
		{unknown, "GET", "/v1/identity/self/describe", nil, 404, "identity does not exist"},
		{app, "GET", "/v1/identity/self/describe", nil, 404, "identity does not exist"},
		// Listing takes a literal prefix, "*" for all; a trailing '*' is not a wildcard.
		{app, "GET", "/v1/key/list/*", nil, 200, `{"names":["app-a","app-b","other"]}`},
		{app, "GET", "/v1/key/list/app", nil, 200, `{"names":["app-a","app-b"]}`},
		{app, "GET", "/v1/key/list/app-*", nil, 200, `{"names":[]}`},
		{app, "GET", "/v1/key/list/app-", nil, 400, "listing pattern"},
		// No enclaves in this version: the API has no such routes.
		{s.Admin, "POST", "/v1/enclave/create/tenant", nil, 404, "404 page not found"},
	} {
		code, body := s.Request(t, c.id, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(string(body), c.answer) {
			t.Errorf("%s %s: %d %s; want %d with %s", c.method, c.path, code, body, c.code, c.answer)
		}
	}
}

func TestBinaryFromEnv(t *testing.T) {
	t.Setenv(BinaryEnv, filepath.Join(t.TempDir(), "missing"))
	if _, err := findOrBuild(); err == nil || !strings.Contains(err.Error(), BinaryEnv) {
		t.Errorf("a missing $%s: %v", BinaryEnv, err)
	}
	notExec := filepath.Join(t.TempDir(), "kes")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600)
	t.Setenv(BinaryEnv, notExec)
	if _, err := findOrBuild(); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("a non-executable $%s: %v", BinaryEnv, err)
	}
}

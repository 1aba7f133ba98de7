package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// These tests run the Vault client against fakeVault, a request/response-level
// implementation of the documented HTTP API of Vault's AppRole auth method, token
// renew-self and transit secrets engine (paths, methods, headers, JSON bodies, status
// codes and {"errors":[...]} bodies as Vault's handlers produce them). No real Vault or
// OpenBao server can run here: Debian does not package either, `go install
// github.com/hashicorp/vault@v1.21.4` is refused for the replace directives in its go.mod,
// a module requiring it does not compile (its in-tree sdk differs from the published
// one), and the module proxy refuses github.com/openbao/openbao/v2 (403).
//
// fakeVault checks every request it gets and really encrypts: each transit key has a
// secret, a derived key's per-request key is HMAC-SHA256(secret, context), and data keys
// are sealed with AES-256-GCM, so a wrong context fails as it does in Vault.

const (
	fakeRoleID   = "0b5a4e1d-role-id-7c1f"
	fakeSecretID = "5e3c9a77-secret-id-d41f"
)

type fakeVault struct {
	t         *testing.T
	namespace string // expected X-Vault-Namespace ("" = must be absent)
	approle   string
	transit   string

	mu           sync.Mutex
	lease        int64 // seconds, of logins and renewals
	renewable    bool
	tokens       map[string]*fakeToken
	keys         map[string]*fakeKey
	denied       map[string]bool // transit keys the policy denies
	renewFail    bool            // renew-self answers 403
	sealed       bool
	loginMessage string // if set, a failed login answers this instead
	hang         bool   // transit requests never answer (until the client gives up)
	proxy404     bool   // transit requests get a proxy's HTML 404
	redirect     string // transit requests without ?hop=1 are redirected (307) there
	logins       int
	renewals     int
	staleUses    int // requests with an invalid or expired token
	events       chan string
	release      chan struct{} // closed by unblock: releases hanging handlers
	releaseOnce  sync.Once
}

// unblock releases the handlers that hang, for good.
func (f *fakeVault) unblock() { f.releaseOnce.Do(func() { close(f.release) }) }

type fakeToken struct {
	expires time.Time
}

type fakeKey struct {
	secret  [32]byte
	derived bool
}

func newFakeVault(t *testing.T) *fakeVault {
	return &fakeVault{
		t:         t,
		approle:   "approle",
		transit:   "transit",
		lease:     3600,
		renewable: true,
		tokens:    map[string]*fakeToken{},
		keys:      map[string]*fakeKey{},
		denied:    map[string]bool{},
		events:    make(chan string, 4096),
		release:   make(chan struct{}),
	}
}

// start serves f over TLS and returns the server and a PEM file of its certificate.
func (f *fakeVault) start() (*httptest.Server, string) {
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake errors are expected
	srv.StartTLS()
	f.t.Cleanup(srv.Close)
	f.t.Cleanup(f.unblock) // runs before srv.Close
	caFile := filepath.Join(f.t.TempDir(), "vault-ca.pem")
	writePEM(f.t, caFile, srv.Certificate().Raw)
	return srv, caFile
}

func (f *fakeVault) addKey(name string, derived bool) {
	k := &fakeKey{derived: derived}
	rand.Read(k.secret[:])
	f.mu.Lock()
	f.keys[name] = k
	f.mu.Unlock()
}

func (f *fakeVault) set(fn func(f *fakeVault)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeVault) counts() (logins, renewals, stale int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.renewals, f.staleUses
}

// expireTokens makes every token issued so far invalid, as a revocation or the end of
// its TTL does on the server.
func (f *fakeVault) expireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tok := range f.tokens {
		tok.expires = time.Time{}
	}
}

func (f *fakeVault) event(e string) {
	select {
	case f.events <- e:
	default:
	}
}

// waitEvent waits for the server to see e (skipping other events).
func (f *fakeVault) waitEvent(e string) {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-f.events:
			if got == e {
				return
			}
		case <-timeout:
			f.t.Fatalf("the server did not see %q within 10s", e)
		}
	}
}

func vaultErrors(w http.ResponseWriter, status int, msgs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if msgs == nil {
		msgs = []string{}
	}
	json.NewEncoder(w).Encode(map[string]any{"errors": msgs})
}

func vaultJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

const (
	vaultInvalidToken     = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
	vaultPermissionDenied = "1 error occurred:\n\t* permission denied\n\n"
)

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	// Read the body first: only then does the server notice a client that gives up
	// (and cancel r.Context()), which the handlers that hang rely on.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if got := r.Header.Get("X-Vault-Namespace"); got != f.namespace {
		t.Errorf("%s %s: X-Vault-Namespace = %q, want %q", r.Method, r.URL.Path, got, f.namespace)
	}
	if r.Header.Get("X-Vault-Request") != "true" {
		t.Errorf("%s %s: no X-Vault-Request header", r.Method, r.URL.Path)
	}
	f.mu.Lock()
	sealed := f.sealed
	f.mu.Unlock()
	if sealed {
		vaultErrors(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		t.Errorf("%s %s: path outside /v1/", r.Method, r.URL.Path)
		vaultErrors(w, http.StatusNotFound)
		return
	}
	switch {
	case p == "auth/"+f.approle+"/login":
		f.serveLogin(w, r)
	case p == "auth/token/renew-self":
		f.serveRenew(w, r)
	case strings.HasPrefix(p, f.transit+"/"):
		if f.checkToken(w, r) {
			f.serveTransit(w, r, strings.TrimPrefix(p, f.transit+"/"))
		}
	default:
		vaultErrors(w, http.StatusNotFound, fmt.Sprintf("1 error occurred:\n\t* no handler for route %q. route entry not found.\n\n", p))
	}
}

// body decodes a JSON object body and checks that its fields are among allowed.
func (f *fakeVault) body(r *http.Request, allowed ...string) map[string]json.RawMessage {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: Content-Type = %q", r.Method, r.URL.Path, ct)
	}
	var m map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m == nil {
		f.t.Errorf("%s %s: body is not a JSON object: %v", r.Method, r.URL.Path, err)
		return map[string]json.RawMessage{}
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			f.t.Errorf("%s %s: unexpected body field %q", r.Method, r.URL.Path, k)
		}
	}
	return m
}

func (f *fakeVault) noBody(r *http.Request) {
	if b, _ := io.ReadAll(r.Body); len(b) != 0 {
		f.t.Errorf("%s %s: unexpected body %q", r.Method, r.URL.Path, b)
	}
}

func str(f *fakeVault, m map[string]json.RawMessage, k string) string {
	var s string
	if raw, ok := m[k]; ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			f.t.Errorf("body field %q is not a string: %s", k, raw)
		}
	}
	return s
}

func (f *fakeVault) method(w http.ResponseWriter, r *http.Request, want ...string) bool {
	if !slices.Contains(want, r.Method) {
		f.t.Errorf("%s %s: method not in %v", r.Method, r.URL.Path, want)
		vaultErrors(w, http.StatusMethodNotAllowed, "1 error occurred:\n\t* unsupported operation\n\n")
		return false
	}
	return true
}

// checkToken answers 403 for a missing, unknown or expired X-Vault-Token.
func (f *fakeVault) checkToken(w http.ResponseWriter, r *http.Request) bool {
	tok := r.Header.Get("X-Vault-Token")
	f.mu.Lock()
	ft, ok := f.tokens[tok]
	valid := ok && time.Now().Before(ft.expires)
	if !valid {
		f.staleUses++
	}
	f.mu.Unlock()
	if tok == "" {
		f.t.Errorf("%s %s: no X-Vault-Token", r.Method, r.URL.Path)
		vaultErrors(w, http.StatusForbidden, vaultPermissionDenied)
		return false
	}
	if !valid {
		vaultErrors(w, http.StatusForbidden, vaultInvalidToken)
		return false
	}
	return true
}

func (f *fakeVault) authResponse(tok string) map[string]any {
	return map[string]any{
		"request_id": "4bd0b9e4-0f0c-4a8b-9e1e-0c6c3c9f5d2a", "lease_id": "", "renewable": false,
		"lease_duration": 0, "data": nil, "wrap_info": nil, "warnings": nil,
		"auth": map[string]any{
			"client_token": tok, "accessor": "acc-" + tok[4:12],
			"policies": []string{"default", "ssefs"}, "token_policies": []string{"default", "ssefs"},
			"metadata": map[string]string{"role_name": "ssefs"}, "lease_duration": f.lease,
			"renewable": f.renewable, "entity_id": "", "token_type": "service", "orphan": true,
		},
	}
}

func (f *fakeVault) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !f.method(w, r, http.MethodPost) {
		return
	}
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		f.t.Errorf("login sent a token")
	}
	m := f.body(r, "role_id", "secret_id")
	f.mu.Lock()
	defer f.mu.Unlock()
	if str(f, m, "role_id") != fakeRoleID || str(f, m, "secret_id") != fakeSecretID {
		msg := "invalid role or secret ID"
		if f.loginMessage != "" {
			msg = f.loginMessage
		}
		vaultErrors(w, http.StatusBadRequest, msg)
		return
	}
	var b [12]byte
	rand.Read(b[:])
	tok := "hvs." + base64.RawURLEncoding.EncodeToString(b[:])
	f.tokens[tok] = &fakeToken{expires: time.Now().Add(time.Duration(f.lease) * time.Second)}
	f.logins++
	f.event("login")
	vaultJSON(w, f.authResponse(tok))
}

func (f *fakeVault) serveRenew(w http.ResponseWriter, r *http.Request) {
	if !f.method(w, r, http.MethodPost) || !f.checkToken(w, r) {
		return
	}
	f.body(r, "increment")
	f.event("renew")
	tok := r.Header.Get("X-Vault-Token")
	f.mu.Lock()
	fail, renewable, hang := f.renewFail, f.renewable, f.hang
	f.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		panic(http.ErrAbortHandler) // no answer at all, not an empty 200
	}
	switch {
	case fail:
		vaultErrors(w, http.StatusForbidden, vaultPermissionDenied)
	case !renewable:
		vaultErrors(w, http.StatusBadRequest, "lease is not renewable")
	default:
		f.mu.Lock()
		if ft := f.tokens[tok]; !ft.expires.IsZero() {
			ft.expires = time.Now().Add(time.Duration(f.lease) * time.Second)
		}
		f.renewals++
		f.mu.Unlock()
		vaultJSON(w, f.authResponse(tok))
	}
}

// fakeContext decodes and checks the "context" field: base64 of the canonical JSON of a
// string map.
func (f *fakeVault) fakeContext(m map[string]json.RawMessage) []byte {
	s := str(f, m, "context")
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		f.t.Errorf("context %q is not base64: %v", s, err)
		return nil
	}
	var kctx map[string]string
	if err := json.Unmarshal(raw, &kctx); err != nil || kctx == nil {
		f.t.Errorf("context %q is not a JSON object of strings: %v", raw, err)
		return raw
	}
	var canon bytes.Buffer
	enc := json.NewEncoder(&canon)
	enc.SetEscapeHTML(false)
	enc.Encode(kctx)
	if want := bytes.TrimSuffix(canon.Bytes(), []byte("\n")); !bytes.Equal(raw, want) {
		f.t.Errorf("context %q is not canonical (want %q)", raw, want)
	}
	return raw
}

func (k *fakeKey) aead(kctx []byte) cipher.AEAD {
	key := k.secret[:]
	if k.derived {
		mac := hmac.New(sha256.New, k.secret[:])
		mac.Write(kctx)
		key = mac.Sum(nil)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return aead
}

func (f *fakeVault) serveTransit(w http.ResponseWriter, r *http.Request, p string) {
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		panic(http.ErrAbortHandler) // no answer at all, not an empty 200
	}
	f.mu.Lock()
	proxy404, redirect := f.proxy404, f.redirect
	f.mu.Unlock()
	if proxy404 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<html><body>404 Not Found</body></html>")
		return
	}
	if redirect != "" && r.URL.Query().Get("hop") == "" {
		http.Redirect(w, r, redirect+r.URL.Path+"?hop=1", http.StatusTemporaryRedirect)
		return
	}
	if p == "keys" {
		f.serveList(w, r)
		return
	}
	op, name, ok := strings.Cut(p, "/")
	if op == "datakey" {
		var kind string
		kind, name, ok = strings.Cut(name, "/")
		if kind != "plaintext" {
			f.t.Errorf("datakey kind %q", kind)
		}
	}
	if !ok || name == "" || strings.Contains(name, "/") {
		vaultErrors(w, http.StatusNotFound, "1 error occurred:\n\t* unsupported path\n\n")
		return
	}
	f.mu.Lock()
	key, denied := f.keys[name], f.denied[name]
	f.mu.Unlock()
	if denied {
		vaultErrors(w, http.StatusForbidden, vaultPermissionDenied)
		return
	}
	switch op {
	case "datakey":
		if !f.method(w, r, http.MethodPost) {
			return
		}
		m := f.body(r, "context", "bits")
		if string(m["bits"]) != "256" {
			f.t.Errorf("datakey bits = %s, want 256", m["bits"])
		}
		kctx := f.fakeContext(m)
		if key == nil {
			vaultErrors(w, http.StatusBadRequest, "encryption key not found")
			return
		}
		if key.derived && len(kctx) == 0 {
			vaultErrors(w, http.StatusBadRequest, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key")
			return
		}
		plaintext := make([]byte, 32)
		rand.Read(plaintext)
		aead := key.aead(kctx)
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		sealed := aead.Seal(nonce, nonce, plaintext, nil)
		vaultJSON(w, map[string]any{"request_id": "x", "lease_id": "", "renewable": false, "lease_duration": 0,
			"data": map[string]any{
				"ciphertext":  "vault:v1:" + base64.StdEncoding.EncodeToString(sealed),
				"key_version": 1,
				"plaintext":   base64.StdEncoding.EncodeToString(plaintext),
			}, "wrap_info": nil, "warnings": nil, "auth": nil})
	case "decrypt":
		if !f.method(w, r, http.MethodPost) {
			return
		}
		m := f.body(r, "ciphertext", "context")
		kctx := f.fakeContext(m)
		if key == nil {
			vaultErrors(w, http.StatusBadRequest, "encryption key not found")
			return
		}
		ct := str(f, m, "ciphertext")
		rest, ok := strings.CutPrefix(ct, "vault:v1:")
		if !ok {
			vaultErrors(w, http.StatusBadRequest, "invalid ciphertext: no prefix")
			return
		}
		sealed, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			vaultErrors(w, http.StatusBadRequest, "invalid ciphertext: could not decode base64")
			return
		}
		aead := key.aead(kctx)
		if len(sealed) < aead.NonceSize() {
			vaultErrors(w, http.StatusBadRequest, "invalid ciphertext length")
			return
		}
		plaintext, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
		if err != nil {
			vaultErrors(w, http.StatusBadRequest, err.Error()) // cipher: message authentication failed
			return
		}
		vaultJSON(w, map[string]any{"request_id": "x", "data": map[string]any{
			"plaintext": base64.StdEncoding.EncodeToString(plaintext)}})
	case "keys":
		switch r.Method {
		case http.MethodGet:
			f.noBody(r)
			if key == nil {
				vaultErrors(w, http.StatusNotFound)
				return
			}
			vaultJSON(w, map[string]any{"data": map[string]any{"name": name, "type": "aes256-gcm96",
				"derived": key.derived, "keys": map[string]int{"1": 1700000000}, "latest_version": 1}})
		case http.MethodPost:
			m := f.body(r, "type", "derived")
			if str(f, m, "type") != "aes256-gcm96" || string(m["derived"]) != "true" {
				f.t.Errorf("create key body: %v", m)
			}
			f.mu.Lock()
			if f.keys[name] == nil { // Vault's create is idempotent
				k := &fakeKey{derived: true}
				rand.Read(k.secret[:])
				f.keys[name] = k
			}
			f.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			f.method(w, r, http.MethodGet, http.MethodPost)
		}
	default:
		vaultErrors(w, http.StatusNotFound, "1 error occurred:\n\t* unsupported path\n\n")
	}
}

func (f *fakeVault) serveList(w http.ResponseWriter, r *http.Request) {
	if !(r.Method == "LIST" || r.Method == http.MethodGet && r.URL.Query().Get("list") == "true") {
		f.t.Errorf("%s %s?%s: not a LIST", r.Method, r.URL.Path, r.URL.RawQuery)
		vaultErrors(w, http.StatusMethodNotAllowed, "1 error occurred:\n\t* unsupported operation\n\n")
		return
	}
	f.noBody(r)
	f.mu.Lock()
	var names []string
	for k := range f.keys {
		names = append(names, k)
	}
	f.mu.Unlock()
	if len(names) == 0 {
		vaultErrors(w, http.StatusNotFound) // Vault: a LIST of nothing is a 404
		return
	}
	slices.Sort(names)
	vaultJSON(w, map[string]any{"data": map[string]any{"keys": names}})
}

func writePEM(t *testing.T, file string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeVault) config(url, caFile string) VaultConfig {
	return VaultConfig{Endpoint: url, RoleID: fakeRoleID, SecretID: fakeSecretID,
		CAPath: caFile, Namespace: f.namespace, Timeout: 5 * time.Second}
}

// testVaultOptions renew nothing unless a test says so.
func testVaultOptions() vaultOptions {
	o := defaultVaultOptions()
	o.renewAfter = func(time.Duration) time.Duration { return 100 * time.Hour }
	o.retryAfter = func(int) time.Duration { return 10 * time.Millisecond }
	o.log = slog.New(slog.DiscardHandler)
	return o
}

func openVault(t *testing.T, cfg VaultConfig, opts vaultOptions) *Vault {
	t.Helper()
	v, err := newVault(t.Context(), cfg, opts)
	if err != nil {
		t.Fatalf("newVault: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func checkNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{fakeRoleID, fakeSecretID, "hvs."} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret (%q)", err, s)
		}
	}
}

func TestVaultRoundTrip(t *testing.T) {
	f := newFakeVault(t)
	f.namespace = "team-a/"
	f.addKey("my-minio-key", true)
	f.addKey("other-key", true)
	srv, ca := f.start()
	v := openVault(t, f.config(srv.URL, ca), testVaultOptions())
	f.waitEvent("login")
	ctx := t.Context()

	bucket := Context{"bucket": "photos"}
	dek, err := v.GenerateKey(ctx, "my-minio-key", bucket)
	if err != nil {
		t.Fatal(err)
	}
	if dek.KeyName != "my-minio-key" || len(dek.Plaintext) != 32 || !bytes.HasPrefix(dek.Ciphertext, []byte("vault:v1:")) {
		t.Fatalf("DEK = %q, %d-byte plaintext, ciphertext %q", dek.KeyName, len(dek.Plaintext), dek.Ciphertext)
	}
	dek2, err := v.GenerateKey(ctx, "my-minio-key", bucket)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dek.Plaintext, dek2.Plaintext) {
		t.Fatal("two data keys are equal")
	}
	got, err := v.Decrypt(ctx, "my-minio-key", dek.Ciphertext, Context{"bucket": "photos"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dek.Plaintext) {
		t.Fatal("Decrypt returned another key")
	}

	// A nil and an empty context are the same context.
	dek3, err := v.GenerateKey(ctx, "my-minio-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Decrypt(ctx, "my-minio-key", dek3.Ciphertext, Context{}); err != nil || !bytes.Equal(got, dek3.Plaintext) {
		t.Fatalf("empty context: %v", err)
	}

	for name, tc := range map[string]struct {
		key  string
		ct   []byte
		kctx Context
	}{
		"wrong context":       {"my-minio-key", dek.Ciphertext, Context{"bucket": "other"}},
		"extra context":       {"my-minio-key", dek.Ciphertext, Context{"bucket": "photos", "x": "y"}},
		"no context":          {"my-minio-key", dek.Ciphertext, nil},
		"other key":           {"other-key", dek.Ciphertext, bucket},
		"tampered":            {"my-minio-key", tamper(dek.Ciphertext), bucket},
		"not base64":          {"my-minio-key", []byte("vault:v1:!!!"), bucket},
		"not vault":           {"my-minio-key", []byte("garbage"), bucket},
		"empty":               {"my-minio-key", nil, bucket},
		"control characters":  {"my-minio-key", []byte("vault:v1:a\nb"), bucket},
		"invalid UTF-8 value": {"my-minio-key", dek.Ciphertext, Context{"bucket": "\xff"}},
	} {
		_, err := v.Decrypt(ctx, tc.key, tc.ct, tc.kctx)
		if !errors.Is(err, ErrDecrypt) && name != "invalid UTF-8 value" {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
		if name == "wrong context" {
			t.Log(err)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		checkNoSecret(t, err)
	}
	if logins, _, stale := f.counts(); logins != 1 || stale != 0 {
		t.Errorf("logins = %d, stale token uses = %d; want 1, 0", logins, stale)
	}
}

func tamper(ct []byte) []byte {
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(ct), "vault:v1:"))
	raw[len(raw)-1] ^= 1
	return []byte("vault:v1:" + base64.StdEncoding.EncodeToString(raw))
}

func TestVaultContextEncoding(t *testing.T) {
	got, err := vaultContext(Context{"bucket": "a<&>b", "a": "é"})
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString([]byte(`{"a":"é","bucket":"a<&>b"}`)); got != want {
		t.Errorf("context = %s, want %s", got, want)
	}
	for _, kctx := range []Context{nil, {}} {
		if got, _ := vaultContext(kctx); got != base64.StdEncoding.EncodeToString([]byte("{}")) {
			t.Errorf("vaultContext(%#v) = %s", kctx, got)
		}
	}
	if _, err := vaultContext(Context{"\xff": "x"}); err == nil {
		t.Error("invalid UTF-8 key accepted")
	}
}

func TestVaultBadCredentials(t *testing.T) {
	f := newFakeVault(t)
	srv, ca := f.start()
	cfg := f.config(srv.URL, ca)

	bad := cfg
	bad.SecretID = "wrong-" + fakeSecretID[:8]
	_, err := newVault(t.Context(), bad, testVaultOptions())
	if !errors.Is(err, ErrIdentityRejected) || !strings.Contains(err.Error(), "invalid role or secret ID") ||
		!strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("err = %v, want ErrIdentityRejected naming the endpoint", err)
	}
	if strings.Contains(err.Error(), bad.SecretID) {
		t.Errorf("error %q contains the secret ID", err)
	}
	t.Log(err)

	// AppRole echoes an invalid secret_id: it must not reach the error.
	f.set(func(f *fakeVault) { f.loginMessage = fmt.Sprintf("invalid secret_id %q", bad.SecretID) })
	_, err = newVault(t.Context(), bad, testVaultOptions())
	if !errors.Is(err, ErrIdentityRejected) || strings.Contains(err.Error(), bad.SecretID) ||
		!strings.Contains(err.Error(), "<redacted>") {
		t.Fatalf("err = %v, want ErrIdentityRejected with the secret redacted", err)
	}

	noMount := cfg
	noMount.AppRoleMount = "elsewhere"
	if _, err := newVault(t.Context(), noMount, testVaultOptions()); !errors.Is(err, ErrIdentityRejected) {
		t.Fatalf("missing AppRole mount: err = %v", err)
	}
	if logins, _, _ := f.counts(); logins != 0 {
		t.Errorf("logins = %d", logins)
	}
}

func TestVaultKeyNotFound(t *testing.T) {
	f := newFakeVault(t)
	srv, ca := f.start()
	v := openVault(t, f.config(srv.URL, ca), testVaultOptions())
	ctx := t.Context()
	_, err := v.GenerateKey(ctx, "missing", Context{"bucket": "b"})
	if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `"missing"`) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("GenerateKey: err = %v, want ErrKeyNotFound naming key and endpoint", err)
	}
	t.Log(err)
	if _, err := v.Decrypt(ctx, "missing", []byte("vault:v1:AAAA"), nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Decrypt: err = %v, want ErrKeyNotFound", err)
	}
	for _, name := range []string{"", "../sys/seal", "a/b", "-x", "a b", "ключ"} {
		if _, err := v.GenerateKey(ctx, name, nil); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("GenerateKey(%q): err = %v, want ErrKeyNotFound", name, err)
		}
		if err := v.CreateKey(ctx, name); err == nil {
			t.Errorf("CreateKey(%q) succeeded", name)
		}
	}
}

func TestVaultForbidden(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("secret-key", true)
	f.denied["secret-key"] = true
	srv, ca := f.start()
	v := openVault(t, f.config(srv.URL, ca), testVaultOptions())
	_, err := v.GenerateKey(t.Context(), "secret-key", Context{"bucket": "b"})
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v, want ErrForbidden", err)
	}
	t.Log(err)
	checkNoSecret(t, err)
	// One fresh login and one retry, no more.
	if logins, _, _ := f.counts(); logins != 2 {
		t.Errorf("logins = %d, want 2", logins)
	}
}

func TestVaultExpiredTokenLogsInAgain(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("k", true)
	srv, ca := f.start()
	v := openVault(t, f.config(srv.URL, ca), testVaultOptions())
	f.expireTokens()
	dek, err := v.GenerateKey(t.Context(), "k", Context{"bucket": "b"})
	if err != nil {
		t.Fatal(err)
	}
	f.expireTokens()
	if _, err := v.Decrypt(t.Context(), "k", dek.Ciphertext, Context{"bucket": "b"}); err != nil {
		t.Fatal(err)
	}
	if logins, _, stale := f.counts(); logins != 3 || stale != 2 {
		t.Errorf("logins = %d, stale uses = %d; want 3, 2", logins, stale)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// A token the client knows to have expired is not sent: the client logs in first.
func TestVaultExpiredLeaseLogsInFirst(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("k", true)
	f.lease = 60
	srv, ca := f.start()
	clock := &fakeClock{}
	opts := testVaultOptions()
	opts.now = clock.now
	opts.renewAfter = func(time.Duration) time.Duration { return 100 * time.Hour }
	v := openVault(t, f.config(srv.URL, ca), opts)
	clock.advance(61 * time.Second)
	if _, err := v.GenerateKey(t.Context(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if logins, _, stale := f.counts(); logins != 2 || stale != 0 {
		t.Errorf("logins = %d, stale uses = %d; want 2, 0", logins, stale)
	}
}

func TestVaultRenewal(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("k", true)
	srv, ca := f.start()
	opts := testVaultOptions()
	var asked atomic.Int64
	opts.renewAfter = func(lease time.Duration) time.Duration {
		asked.Store(int64(lease))
		return 20 * time.Millisecond
	}
	v := openVault(t, f.config(srv.URL, ca), opts)
	f.waitEvent("renew")
	f.waitEvent("renew")
	if time.Duration(asked.Load()) != time.Hour {
		t.Errorf("renewal scheduled for a lease of %v, want 1h", time.Duration(asked.Load()))
	}
	if _, err := v.GenerateKey(t.Context(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if logins, renewals, stale := f.counts(); logins != 1 || renewals < 2 || stale != 0 {
		t.Errorf("logins = %d, renewals = %d, stale = %d; want 1, >=2, 0", logins, renewals, stale)
	}

	// The default schedule renews at 2/3 of the lease.
	if d := defaultVaultOptions().renewAfter(90 * time.Second); d != 60*time.Second {
		t.Errorf("default renewal after %v for a 90s lease, want 60s", d)
	}
}

func TestVaultRenewalRefusedLogsIn(t *testing.T) {
	f := newFakeVault(t)
	f.renewFail = true
	srv, ca := f.start()
	opts := testVaultOptions()
	opts.renewAfter = func(time.Duration) time.Duration { return 20 * time.Millisecond }
	openVault(t, f.config(srv.URL, ca), opts)
	f.waitEvent("login")
	f.waitEvent("renew")
	f.waitEvent("login")
}

func TestVaultNotRenewableLogsIn(t *testing.T) {
	f := newFakeVault(t)
	f.renewable = false
	srv, ca := f.start()
	opts := testVaultOptions()
	opts.renewAfter = func(time.Duration) time.Duration { return 20 * time.Millisecond }
	openVault(t, f.config(srv.URL, ca), opts)
	f.waitEvent("login")
	f.waitEvent("login")
	if _, renewals, _ := f.counts(); renewals != 0 {
		t.Errorf("renewals = %d of a non-renewable token", renewals)
	}
	for len(f.events) > 0 {
		if e := <-f.events; e == "renew" {
			t.Error("renew-self of a non-renewable token")
		}
	}
}

func TestVaultUnavailable(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("k", true)
	srv, ca := f.start()
	cfg := f.config(srv.URL, ca)
	cfg.Timeout = 300 * time.Millisecond
	v := openVault(t, cfg, testVaultOptions())
	ctx := t.Context()

	f.set(func(f *fakeVault) { f.sealed = true })
	if _, err := v.GenerateKey(ctx, "k", nil); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("sealed: err = %v, want ErrUnavailable", err)
	}
	if _, err := newVault(ctx, cfg, testVaultOptions()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("sealed at start: err = %v, want ErrUnavailable", err)
	}
	f.set(func(f *fakeVault) { f.sealed = false; f.hang = true })
	_, err := v.GenerateKey(ctx, "k", nil)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no answer: err = %v, want ErrUnavailable only", err)
	}
	// The caller giving up is the caller's error, not the KMS's.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = v.GenerateKey(cctx, "k", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
	f.set(func(f *fakeVault) { f.hang = false })
	f.unblock()

	srv.Close()
	if _, err := v.Decrypt(ctx, "k", []byte("vault:v1:AAAA"), nil); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("server down: err = %v, want ErrUnavailable naming the endpoint", err)
	}
	if _, err := newVault(ctx, cfg, testVaultOptions()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("server down at start: err = %v, want ErrUnavailable", err)
	}
}

func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVaultCAPath(t *testing.T) {
	f := newFakeVault(t)
	srv, ca := f.start()
	cfg := f.config(srv.URL, ca)

	// A directory of CAs: the server's among others, and a file that is no PEM.
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "a-other.pem"), testCA(t))
	caPEM, _ := os.ReadFile(ca)
	os.WriteFile(filepath.Join(dir, "vault.crt"), caPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("CA bundle\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	withDir := cfg
	withDir.CAPath = dir
	v := openVault(t, withDir, testVaultOptions())
	v.Close()

	// A CA that did not sign the server's certificate.
	other := filepath.Join(t.TempDir(), "other.pem")
	writePEM(t, other, testCA(t))
	wrong := cfg
	wrong.CAPath = other
	_, err := newVault(t.Context(), wrong, testVaultOptions())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: err = %v", err)
	}
	t.Log(err)
	// System roots do not know the test server either.
	wrong.CAPath = ""
	if _, err := newVault(t.Context(), wrong, testVaultOptions()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("system roots: err = %v", err)
	}

	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(noPEM, []byte("not a certificate"), 0o600)
	for _, p := range []string{noPEM, t.TempDir(), filepath.Join(t.TempDir(), "missing.pem")} {
		bad := cfg
		bad.CAPath = p
		if _, err := newVault(t.Context(), bad, testVaultOptions()); err == nil || !strings.Contains(err.Error(), "CA path") {
			t.Errorf("CAPath %s: err = %v", p, err)
		}
	}
	if logins, _, _ := f.counts(); logins != 1 {
		t.Errorf("logins = %d, want 1", logins)
	}
}

func TestVaultConfigValidation(t *testing.T) {
	ok := VaultConfig{Endpoint: "https://vault:8200", RoleID: fakeRoleID, SecretID: fakeSecretID}
	for name, mod := range map[string]func(c *VaultConfig){
		"http non-loopback": func(c *VaultConfig) { c.Endpoint = "http://vault.example:8200" },
		"http private IP":   func(c *VaultConfig) { c.Endpoint = "http://10.0.0.1:8200" },
		"no endpoint":       func(c *VaultConfig) { c.Endpoint = "" },
		"no scheme":         func(c *VaultConfig) { c.Endpoint = "vault:8200" },
		"ftp":               func(c *VaultConfig) { c.Endpoint = "ftp://vault:8200" },
		"user info":         func(c *VaultConfig) { c.Endpoint = "https://u:" + fakeSecretID + "@vault:8200" },
		"query":             func(c *VaultConfig) { c.Endpoint = "https://vault:8200/?x=1" },
		"no role ID":        func(c *VaultConfig) { c.RoleID = "" },
		"no secret ID":      func(c *VaultConfig) { c.SecretID = "" },
		"secret newline":    func(c *VaultConfig) { c.SecretID = fakeSecretID + "\n" },
		"bad transit":       func(c *VaultConfig) { c.TransitMount = "../sys" },
		"bad approle":       func(c *VaultConfig) { c.AppRoleMount = "a b" },
		"bad namespace":     func(c *VaultConfig) { c.Namespace = "a\nb" },
		"negative timeout":  func(c *VaultConfig) { c.Timeout = -1 },
	} {
		c := ok
		mod(&c)
		_, err := newVaultClient(c, testVaultOptions())
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		checkNoSecret(t, err)
	}
	for _, ep := range []string{"https://vault:8200", "https://vault:8200/", "http://127.0.0.1:8200",
		"http://localhost:8200", "http://[::1]:8200", "https://vault.example/prefix"} {
		c := ok
		c.Endpoint = ep
		if _, err := newVaultClient(c, testVaultOptions()); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
	c := ok
	c.TransitMount, c.AppRoleMount = "/kms/transit/", "auth-approle"
	v, err := newVaultClient(c, testVaultOptions())
	if err != nil || v.transit != "kms/transit" || v.loginPath != "auth/auth-approle/login" || v.timeout != 10*time.Second {
		t.Errorf("mounts: %v, %+v", err, v)
	}
}

// Plain http on loopback works (a local Vault in dev mode).
func TestVaultLoopbackHTTP(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("k", true)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(f.unblock)
	v := openVault(t, f.config(srv.URL, ""), testVaultOptions())
	dek, err := v.GenerateKey(t.Context(), "k", Context{"bucket": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Decrypt(t.Context(), "k", dek.Ciphertext, Context{"bucket": "b"}); err != nil {
		t.Fatal(err)
	}
}

func TestVaultCreateAndListKeys(t *testing.T) {
	f := newFakeVault(t)
	f.transit = "kms/transit"
	f.approle = "ssefs-approle"
	srv, ca := f.start()
	cfg := f.config(srv.URL, ca)
	cfg.TransitMount, cfg.AppRoleMount = f.transit, f.approle
	v := openVault(t, cfg, testVaultOptions())
	ctx := t.Context()

	if names, err := v.ListKeys(ctx, ""); err != nil || names == nil || len(names) != 0 {
		t.Fatalf("ListKeys of nothing = %#v, %v", names, err)
	}
	for _, name := range []string{"my-minio-key", "my-other.key", "backup_1"} {
		if err := v.CreateKey(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.CreateKey(ctx, "my-minio-key"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second create: err = %v, want ErrKeyExists", err)
	}
	f.mu.Lock()
	derived := f.keys["my-minio-key"].derived
	f.mu.Unlock()
	if !derived {
		t.Error("created key is not derived")
	}
	dek, err := v.GenerateKey(ctx, "my-minio-key", Context{"bucket": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Decrypt(ctx, "my-minio-key", dek.Ciphertext, Context{"bucket": "c"}); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong context on a created key: %v", err)
	}
	for pattern, want := range map[string][]string{
		"":      {"backup_1", "my-minio-key", "my-other.key"},
		"*":     {"backup_1", "my-minio-key", "my-other.key"},
		"my-*":  {"my-minio-key", "my-other.key"},
		"none*": {},
	} {
		got, err := v.ListKeys(ctx, pattern)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ListKeys(%q) = %v, %v; want %v", pattern, got, err, want)
		}
	}
	if _, err := v.ListKeys(ctx, "my-["); err == nil {
		t.Error("bad pattern accepted")
	}
	// A 404 that is not Vault's (a proxy in front of a wrong path) is no empty list.
	f.set(func(f *fakeVault) { f.proxy404 = true })
	if names, err := v.ListKeys(ctx, ""); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("proxy 404: %v, %v", names, err)
	}
}

// A standby node redirects (307) to the active one: followed over https, refused to
// plain http on another host (the token would travel in clear text).
func TestVaultRedirect(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("k", true)
	srv, ca := f.start()
	v := openVault(t, f.config(srv.URL, ca), testVaultOptions())
	f.set(func(f *fakeVault) { f.redirect = srv.URL })
	dek, err := v.GenerateKey(t.Context(), "k", Context{"bucket": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Decrypt(t.Context(), "k", dek.Ciphertext, Context{"bucket": "b"}); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeVault) { f.redirect = "http://vault.invalid:8200" }) // never contacted
	_, err = v.GenerateKey(t.Context(), "k", nil)
	if err == nil || !strings.Contains(err.Error(), "refusing redirect") {
		t.Errorf("redirect to http: err = %v", err)
	}
}

// renewLoops counts the goroutines that newVault started (the renewal loop, before or
// after it has started running).
func renewLoops() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "created by github.com/ssefs/ssefs/keys.newVault ")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestVaultCloseStopsRenewal(t *testing.T) {
	before := renewLoops()
	f := newFakeVault(t)
	f.addKey("k", true)
	f.hang = true // renew-self never answers: Close must not wait for it
	srv, ca := f.start()
	opts := testVaultOptions()
	opts.renewAfter = func(time.Duration) time.Duration { return time.Millisecond }
	v, err := newVault(t.Context(), f.config(srv.URL, ca), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := renewLoops(); n != before+1 {
		t.Errorf("%d renewal loops running, want %d", n, before+1)
	}
	f.waitEvent("renew")
	start := time.Now()
	v.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case <-v.loopDone:
	default:
		t.Fatal("the renewal loop still runs after Close")
	}
	// The loop has returned; give the runtime a moment to retire the goroutine.
	for deadline := time.Now().Add(5 * time.Second); renewLoops() != before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d renewal loops running after Close, want %d", renewLoops(), before)
		}
	}
	v.Close() // idempotent
	f.set(func(f *fakeVault) { f.hang = false })
	if _, err := v.GenerateKey(t.Context(), "k", nil); err == nil {
		t.Error("GenerateKey after Close succeeded")
	}
}

func TestVaultConcurrent(t *testing.T) {
	f := newFakeVault(t)
	f.addKey("a", true)
	f.addKey("b", true)
	srv, ca := f.start()
	opts := testVaultOptions()
	opts.renewAfter = func(time.Duration) time.Duration { return 5 * time.Millisecond }
	v := openVault(t, f.config(srv.URL, ca), opts)

	// Tokens are revoked under the clients' feet, six times. A revocation waits until
	// every worker has finished two round trips since the last one, so no call can meet
	// two revocations (the fake cannot tell them from a policy 403 with a fresh token).
	const workers = 8
	var done [workers]atomic.Int64
	stop := make(chan struct{})
	expirer := make(chan struct{})
	go func() {
		defer close(expirer)
		for range 6 {
			var since [workers]int64
			for g := range done {
				since[g] = done[g].Load()
			}
			for g := 0; g < workers; {
				select {
				case <-stop:
					return
				default:
				}
				if done[g].Load() >= since[g]+2 {
					g++
				} else {
					time.Sleep(time.Millisecond)
				}
			}
			f.expireTokens()
		}
	}()
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			key := []string{"a", "b"}[g%2]
			kctx := Context{"bucket": fmt.Sprintf("b%d", g)}
			for range 100 {
				dek, err := v.GenerateKey(t.Context(), key, kctx)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := v.Decrypt(t.Context(), key, dek.Ciphertext, kctx)
				if err != nil || !bytes.Equal(got, dek.Plaintext) {
					t.Error("round trip:", err)
					return
				}
				done[g].Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-expirer
	logins, renewals, stale := f.counts()
	t.Logf("logins %d, renewals %d, stale token uses %d", logins, renewals, stale)
	if logins < 2 || stale == 0 {
		t.Errorf("no token was revoked during the run (logins %d, stale uses %d)", logins, stale)
	}
}

// FuzzVaultErrorMessages feeds arbitrary error bodies through the error path: no panic,
// one line of valid UTF-8, bounded, and never a credential or the token.
func FuzzVaultErrorMessages(f *testing.F) {
	f.Add(400, []byte(`{"errors":["invalid role or secret ID"]}`))
	f.Add(403, []byte(`{"errors":["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]}`))
	f.Add(400, []byte(`{"errors":["invalid secret_id \"`+fakeSecretID+`\""]}`))
	f.Add(400, []byte(`{"errors":["5e3c9a77-secret-`+"\x00"+`id-d41f"]}`))
	f.Add(503, []byte(`<html>Bad gateway</html>`))
	f.Add(404, []byte(`{"errors":[]}`))
	f.Add(500, []byte(`{"errors":null}`))
	v := &Vault{endpoint: "https://vault:8200", roleID: fakeRoleID, secretID: fakeSecretID,
		tok: vaultToken{value: "hvs.CAESIJ-token"}}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, c := range []vaultCall{{op: "decrypt", key: "k", decrypt: true}, {op: "list keys"}} {
			err := v.statusError(c, status, body)
			msg := err.Error()
			for _, s := range []string{fakeSecretID, fakeRoleID, "hvs.CAESIJ-token"} {
				if strings.Contains(msg, s) {
					t.Fatalf("message %q contains %q", msg, s)
				}
			}
			if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r\x00") || len(msg) > 3*vaultMaxMessage {
				t.Fatalf("message %q is not one bounded line of UTF-8", msg)
			}
		}
		a, err := decodeVaultAuth(body)
		if err == nil && (a.ClientToken == "" || !validHeaderValue(a.ClientToken) || a.lease() < 0 || a.lease() > vaultMaxLease) {
			t.Fatalf("decodeVaultAuth accepted %+v", a)
		}
	})
}

// Package kestest starts a real MinIO KES server (v0.24.0, see Binary) for tests. It is a
// test helper: only _test.go files may import it (integration/imports_test.go checks).
//
// A server runs as a child process on 127.0.0.1 with a filesystem keystore, a test CA that
// signed its certificate and the client certificates, an admin identity, and the policies
// given. Everything lives in a temporary directory of the test; t.Cleanup stops it.
//
//	s := kestest.New(t)                       // certificates and config; not running yet
//	app := s.NewIdentity(t)                   // a client certificate signed by the test CA
//	s.SetPolicy("app", []string{"/v1/key/generate/app-*", "/v1/key/decrypt/app-*"}, nil, app)
//	s.Start(t)                                // waits until /v1/status answers
//	s.CreateKey(t, "app-key")
//
// or in one call, kestest.Start(t, kestest.WithPolicy(...)) with identities of a CA made
// beforehand (kestest.NewCA, kestest.WithCA).
//
// KES v0.24.0 facts the helpers rely on (from its source): the config schema of
// kesconf/config.go, identities are the hex SHA-256 of the client certificate's
// SubjectPublicKeyInfo, and the fs keystore keeps each key in one file named like the key
// (internal/keystore/fs), which BackupKey and RestoreKey copy.
package kestest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssefs/ssefs/internal/proctest"
)

// Server is a KES server process for one test.
type Server struct {
	// Endpoint is the server's URL, https://127.0.0.1:PORT. The port stays the same
	// across Stop and Restart.
	Endpoint string
	// CAFile is the PEM certificate of the CA that signed the server's certificate and
	// the identities of NewIdentity: a client's CA path.
	CAFile string
	CA     *CA
	// Admin may call every API.
	Admin Identity
	// KeystoreDir is the fs keystore: one file per key, named like the key.
	KeystoreDir string
	// Dir holds the config, the keystore and the log. (Certificates and keys live in
	// the CA's directory.)
	Dir        string
	ConfigFile string
	// LogFile collects the server's stdout and stderr (all runs, appended).
	LogFile string

	bin           string
	addr          string
	verifyClients bool
	cacheAny      time.Duration
	cacheUnused   time.Duration
	serverCert    string
	serverKey     string

	sup proctest.Supervisor // the process; the port stays once it has served on it

	mu       sync.Mutex
	policies []policy
	clients  map[string]*http.Client
}

type policy struct {
	name        string
	allow, deny []string
	ids         []Identity
}

// Option configures a Server made by New or Start.
type Option func(*Server)

// WithCA makes the server use ca (for its own certificate and, with client verification,
// to verify client certificates) instead of a fresh CA, so that identities made by
// ca.NewIdentity before the server exists can go into WithPolicy.
func WithCA(ca *CA) Option { return func(s *Server) { s.CA = ca } }

// WithPolicy declares a KES policy: allow and deny are API path globs
// ("/v1/key/generate/my-key*"); a request is allowed if no deny and some allow pattern
// matches. ids are assigned to it (an identity may be in one policy only).
func WithPolicy(name string, allow, deny []string, ids ...Identity) Option {
	return func(s *Server) { s.policies = append(s.policies, policy{name, allow, deny, ids}) }
}

// WithClientVerification sets KES's tls.auth. On (the default here) the server verifies
// client certificates against the test CA during the TLS handshake, so a certificate of
// another CA fails the handshake. Off is KES's own default: any certificate passes the
// handshake, and an identity that is in no policy gets 403 like a forbidden call.
func WithClientVerification(on bool) Option { return func(s *Server) { s.verifyClients = on } }

// WithCacheExpiry sets the server's key cache expiry (cache.expiry.any and .unused).
// The default is 1s for both, so a key deleted behind the server's back (a file removed
// from KeystoreDir) is gone within about a second; keys deleted through the API (DeleteKey)
// are gone at once.
func WithCacheExpiry(any, unused time.Duration) Option {
	return func(s *Server) { s.cacheAny, s.cacheUnused = any, unused }
}

// Start makes a server (New) and starts it.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(t, opts...)
	s.Start(t)
	return s
}

// New prepares a server: CA (unless WithCA), server certificate, admin identity, keystore
// directory and port. It does not start it: add identities and policies, then Start.
// It fails the test (never skips it) when no KES binary can be found or built.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("kestest: no KES %s server to test against: %v", Version, err)
	}
	s := &Server{
		bin:           bin,
		verifyClients: true,
		cacheAny:      time.Second,
		cacheUnused:   time.Second,
		clients:       map[string]*http.Client{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.CA == nil {
		s.CA = NewCA(t)
	}
	s.CAFile = s.CA.CertFile
	s.Dir = t.TempDir()
	s.KeystoreDir = filepath.Join(s.Dir, "keystore")
	if err := os.Mkdir(s.KeystoreDir, 0o700); err != nil {
		t.Fatalf("kestest: %v", err)
	}
	s.ConfigFile = filepath.Join(s.Dir, "config.yml")
	s.LogFile = filepath.Join(s.Dir, "kes.log")
	s.sup = proctest.Supervisor{
		Name: "KES", Tag: "kestest", LogFile: s.LogFile,
		ReadyTimeout: 60 * time.Second, PollMin: 5 * time.Millisecond, PollMax: 100 * time.Millisecond,
		StopTimeout: 5 * time.Second,
	}
	s.serverCert, s.serverKey = s.CA.NewServerCert(t)
	s.Admin = s.CA.NewIdentity(t)
	s.pickPort(t)

	t.Cleanup(func() {
		s.Stop() // and closes the clients' idle connections
		if t.Failed() {
			t.Logf("kestest: KES server %s log (%s), last lines:\n%s", s.Endpoint, s.LogFile, s.LogTail(40))
		}
	})
	return s
}

// NewIdentity returns a new identity signed by the server's CA. Put it in a policy before
// Start (SetPolicy), or leave it out to have an identity the server does not know.
func (s *Server) NewIdentity(t testing.TB) Identity {
	t.Helper()
	return s.CA.NewIdentity(t)
}

// SetPolicy adds or replaces a policy. It takes effect at the next Start or Restart.
func (s *Server) SetPolicy(name string, allow, deny []string, ids ...Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.policies {
		if p.name == name {
			s.policies[i] = policy{name, allow, deny, ids}
			return
		}
	}
	s.policies = append(s.policies, policy{name, allow, deny, ids})
}

func (s *Server) pickPort(t testing.TB) {
	t.Helper()
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatalf("kestest: %v", err)
	}
	s.addr = addr
	s.Endpoint = "https://" + s.addr
}

// Start starts the server and waits until it answers /v1/status to the admin. A port taken
// by someone else in the meantime is replaced by a new one, on the first start only.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	var admin *http.Client
	prepare := func() (*exec.Cmd, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := os.WriteFile(s.ConfigFile, s.configYAMLLocked(), 0o600); err != nil {
			return nil, err
		}
		admin = s.clientLocked(s.Admin)
		cmd := exec.Command(s.bin, "server", "--config", s.ConfigFile)
		cmd.Dir = s.Dir
		return cmd, nil
	}
	// Ready means: the admin gets an answer to /v1/status. (admin is set by prepare and
	// the port may change: look both up for each probe.)
	ready := func(ctx context.Context) error {
		return proctest.HTTPReady(ctx, admin, s.Endpoint+"/v1/status")
	}
	if err := s.sup.Start(prepare, ready, func() { s.pickPort(t) }); err != nil {
		t.Fatalf("kestest: start KES %s at %s: %v\nlog %s, last lines:\n%s", Version, s.Endpoint, err, s.LogFile, s.LogTail(40))
	}
}

// Restart stops the server and starts it again on the same port with the same keystore
// (and the policies as they are now).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.Start(t)
}

// Stop stops the server (SIGTERM, then SIGKILL after 5s) and waits for it to exit, and
// closes the clients' idle connections. There is nothing to stop if it is not running.
func (s *Server) Stop() {
	s.sup.Stop(syscall.SIGTERM)
	// Kept-alive connections went to the process that is gone.
	s.mu.Lock()
	for _, c := range s.clients {
		c.CloseIdleConnections()
	}
	s.mu.Unlock()
}

// Running reports whether the server process is running.
func (s *Server) Running() bool { return s.sup.Running() }

// CreateKey creates a key as the admin.
func (s *Server) CreateKey(t testing.TB, name string) {
	t.Helper()
	if code, body := s.Request(t, s.Admin, http.MethodPut, "/v1/key/create/"+name, nil); code != http.StatusOK {
		t.Fatalf("kestest: create key %q: %d %s", name, code, body)
	}
}

// DeleteKey deletes a key as the admin; the server forgets it at once (cache included).
func (s *Server) DeleteKey(t testing.TB, name string) {
	t.Helper()
	if code, body := s.Request(t, s.Admin, http.MethodDelete, "/v1/key/delete/"+name, nil); code != http.StatusOK {
		t.Fatalf("kestest: delete key %q: %d %s", name, code, body)
	}
}

// BackupKey returns the keystore file of a key: with DeleteKey and RestoreKey it deletes a
// key and brings it back, the same key (secure erasure tests).
func (s *Server) BackupKey(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(s.keyFile(t, name))
	if err != nil {
		t.Fatalf("kestest: back up key %q: %v", name, err)
	}
	return b
}

// RestoreKey puts a key file from BackupKey back into the keystore. The key must not exist
// (DeleteKey it first). The server reads it at the next use: it caches only keys it found.
func (s *Server) RestoreKey(t testing.TB, name string, backup []byte) {
	t.Helper()
	f, err := os.OpenFile(s.keyFile(t, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = f.Write(backup)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("kestest: restore key %q: %v", name, err)
	}
}

func (s *Server) keyFile(t testing.TB, name string) string {
	t.Helper()
	if name == "" || strings.ContainsAny(name, `/\.`) {
		t.Fatalf("kestest: %q is not a KES key name", name)
	}
	return filepath.Join(s.KeystoreDir, name)
}

// Request sends one request to the server as id and returns the status code and body,
// for tests of the wire protocol. body, if not nil, is sent as JSON.
func (s *Server) Request(t testing.TB, id Identity, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("kestest: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.Endpoint+path, rd)
	if err != nil {
		t.Fatalf("kestest: %v", err)
	}
	s.mu.Lock()
	c := s.clientLocked(id)
	s.mu.Unlock()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("kestest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("kestest: %s %s: read answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// clientLocked returns an HTTPS client that presents id and trusts the CA.
func (s *Server) clientLocked(id Identity) *http.Client {
	if c, ok := s.clients[id.ID]; ok {
		return c
	}
	cert, err := tls.LoadX509KeyPair(id.CertFile, id.KeyFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(s.CAFile))
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		// No proxy from the environment: the server is on loopback.
		Proxy: nil,
	}
	if err == nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	s.clients[id.ID] = c
	return c
}

// configYAML writes the KES v0.24.0 config (kesconf/config.go ymlFile). Strings are JSON
// strings, which YAML reads as double-quoted scalars.
func (s *Server) configYAMLLocked() []byte {
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, "version: v1\naddress: %s\n", q(s.addr))
	fmt.Fprintf(&b, "admin:\n  identity: %s\n", q(s.Admin.ID))
	fmt.Fprintf(&b, "tls:\n  key: %s\n  cert: %s\n", q(s.serverKey), q(s.serverCert))
	if s.verifyClients {
		fmt.Fprintf(&b, "  auth: \"on\"\n  ca: %s\n", q(s.CAFile))
	} else {
		fmt.Fprintf(&b, "  auth: \"off\"\n")
	}
	fmt.Fprintf(&b, "cache:\n  expiry:\n    any: %s\n    unused: %s\n", s.cacheAny, s.cacheUnused)
	fmt.Fprintf(&b, "log:\n  error: \"on\"\n  audit: \"off\"\n")
	if len(s.policies) > 0 {
		b.WriteString("policy:\n")
		for _, p := range s.policies {
			fmt.Fprintf(&b, "  %s:\n", q(p.name))
			list := func(key string, vs []string) {
				if len(vs) == 0 {
					fmt.Fprintf(&b, "    %s: []\n", key)
					return
				}
				fmt.Fprintf(&b, "    %s:\n", key)
				for _, v := range vs {
					fmt.Fprintf(&b, "    - %s\n", q(v))
				}
			}
			list("allow", p.allow)
			list("deny", p.deny)
			ids := make([]string, len(p.ids))
			for i, id := range p.ids {
				ids[i] = id.ID
			}
			list("identities", ids)
		}
	}
	fmt.Fprintf(&b, "keystore:\n  fs:\n    path: %s\n", q(s.KeystoreDir))
	return []byte(b.String())
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string { return proctest.LogTail(s.LogFile, n) }

func mustRead(file string) []byte {
	b, _ := os.ReadFile(file)
	return b
}

// String describes the server for test logs.
func (s *Server) String() string {
	return "KES " + Version + " at " + s.Endpoint + " (pid " + s.pid() + ")"
}

func (s *Server) pid() string {
	pid, ok := s.sup.Pid()
	if !ok {
		return "none"
	}
	return strconv.Itoa(pid)
}

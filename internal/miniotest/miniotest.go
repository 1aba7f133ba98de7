// Package miniotest starts a real MinIO server for tests of ssefs' S3 object store. It is a
// test helper: only _test.go files may import it (integration/imports_test.go checks).
//
// A server runs as a child process on 127.0.0.1 with a fresh data directory (one drive),
// root credentials, and optionally a KMS key (for SSE-S3) and TLS with a test CA. t.Cleanup
// stops it. Stop and Start keep the directory and the port, so a test can take the server
// away in the middle of a write storm and bring it back.
//
//	m := miniotest.Start(t, miniotest.WithKMS())
//	m.MakeBucket(t, "chunks")
//	... --store s3://chunks/p --store-endpoint m.Endpoint, m.AccessKey, m.SecretKey ...
//	m.Stop(); ...; m.Start(t)
//
// MinIO is AGPL-3.0: it is never linked into anything, only run as a separate binary.
// scripts/lib/minio.sh builds the pinned version (Version) into a cache directory and
// sets SSEFS_MINIO_BIN; without one, the tests that need MinIO skip and say why, or
// fail when SSEFS_REQUIRE_MINIO=1 (as scripts/test.sh runs them).
package miniotest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ssefs/ssefs/internal/proctest"
)

// Version is the MinIO release the tests run against; scripts/lib/minio.sh pins the same.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// BinaryEnv points at a MinIO server binary; RequireEnv=1 turns a missing one into a
// failure instead of a skip.
const (
	BinaryEnv  = "SSEFS_MINIO_BIN"
	RequireEnv = "SSEFS_REQUIRE_MINIO"
)

// KMSKeyName is the key MinIO seals SSE-S3 objects with under WithKMS.
const KMSKeyName = "miniotest-key"

// Binary returns the MinIO server binary: $SSEFS_MINIO_BIN, else the one
// scripts/lib/minio.sh leaves in its cache directory, else `minio` on the PATH. It never
// builds one: that takes many minutes, and scripts/test.sh does it once.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	var tried []string
	for _, c := range cacheCandidates() {
		tried = append(tried, c)
		if executable(c) == nil {
			return c, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no MinIO server binary: $%s is unset, none in %s, none on the PATH (build it: source scripts/lib/minio.sh; ssefs_install_minio)",
		BinaryEnv, strings.Join(tried, ", "))
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// cacheCandidates are where scripts/lib/minio.sh puts the binary.
func cacheCandidates() []string {
	var out []string
	if goBin, err := exec.LookPath("go"); err == nil {
		if b, err := exec.Command(goBin, "env", "GOCACHE").Output(); err == nil {
			if gc := strings.TrimSpace(string(b)); filepath.IsAbs(gc) {
				out = append(out, filepath.Join(filepath.Dir(gc), "ssefs-minio-"+Version, "minio"))
			}
		}
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		out = append(out, filepath.Join(d, "ssefs", "minio-"+Version, "minio"))
	} else if h, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(h, ".cache", "ssefs", "minio-"+Version, "minio"))
	}
	return out
}

// Require returns the binary, or skips the test saying why (fails it under
// SSEFS_REQUIRE_MINIO=1).
func Require(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("miniotest: %v ($%s=1)", err, RequireEnv)
		}
		t.Skipf("miniotest: SKIP: %v", err)
	}
	return bin
}

// Server is one MinIO server process (or its directory and port while stopped).
type Server struct {
	// Endpoint is http(s)://127.0.0.1:PORT; Host is 127.0.0.1:PORT.
	Endpoint, Host string
	Secure         bool
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// CAFile is the PEM CA that signed the server's certificate (WithTLS only).
	CAFile string
	// Dir holds DataDir (the drive), the certificates and LogFile.
	Dir, DataDir, LogFile string
	// KMS is set under WithKMS: SSE-S3 works.
	KMS bool

	bin      string
	kmsKey   string
	certsDir string

	sup    proctest.Supervisor
	client *http.Client
}

// Option configures a Server.
type Option func(*Server)

// WithKMS gives MinIO a static KMS key (MINIO_KMS_SECRET_KEY), which SSE-S3 needs.
func WithKMS() Option { return func(s *Server) { s.KMS = true } }

// WithTLS serves https with a certificate for 127.0.0.1 signed by a fresh test CA
// (CAFile).
func WithTLS() Option { return func(s *Server) { s.Secure = true } }

// Start makes a server in a temporary directory and starts it.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(t, opts...)
	s.Start(t)
	return s
}

// New prepares a server (binary, directories, credentials, port, certificates) without
// starting it. It skips the test when there is no binary (see Require).
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{bin: Require(t)}
	for _, o := range opts {
		o(s)
	}
	s.Dir = t.TempDir()
	s.DataDir = filepath.Join(s.Dir, "data")
	s.certsDir = filepath.Join(s.Dir, "certs")
	s.LogFile = filepath.Join(s.Dir, "minio.log")
	s.sup = proctest.Supervisor{
		Name: "MinIO", Tag: "miniotest", LogFile: s.LogFile,
		ReadyTimeout: 60 * time.Second, PollMin: 10 * time.Millisecond, PollMax: 200 * time.Millisecond,
		StopTimeout: 10 * time.Second,
		// MinIO's own words for EADDRINUSE ("FATAL Unable to start the server: Specified
		// port is already in use"); the Go error text, in case a version passes it on.
		AddrInUse: []string{"port is already in use", "address already in use"},
	}
	for _, d := range []string{s.DataDir, s.certsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("miniotest: %v", err)
		}
	}
	s.AccessKey = "miniotest-" + randHex(4)
	s.SecretKey = randHex(20)
	if s.KMS {
		key := make([]byte, 32)
		rand.Read(key)
		s.kmsKey = KMSKeyName + ":" + base64.StdEncoding.EncodeToString(key)
	}
	tr := &http.Transport{Proxy: nil}
	if s.Secure {
		pool := s.makeCerts(t)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	s.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	s.pickPort(t)
	t.Cleanup(func() {
		s.Stop()
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("miniotest: MinIO %s log (%s), last lines:\n%s", s.Endpoint, s.LogFile, s.LogTail(30))
		}
	})
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) pickPort(t testing.TB) {
	t.Helper()
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	s.Host = addr
	scheme := "http"
	if s.Secure {
		scheme = "https"
	}
	s.Endpoint = scheme + "://" + s.Host
}

// makeCerts writes a CA (CAFile) and a server certificate for 127.0.0.1 where MinIO
// looks for them (--certs-dir: public.crt, private.key).
func (s *Server) makeCerts(t testing.TB) *x509.CertPool {
	t.Helper()
	fail := func(err error) { t.Fatalf("miniotest: certificates: %v", err) }
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "miniotest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		fail(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		fail(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fail(err)
	}
	s.CAFile = filepath.Join(s.Dir, "ca.crt")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{
		{s.CAFile, "CERTIFICATE", caDER},
		{filepath.Join(s.certsDir, "public.crt"), "CERTIFICATE", der},
		{filepath.Join(s.certsDir, "private.key"), "PRIVATE KEY", keyDER},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			fail(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

// Start starts the server (again: same directory, same port) and waits until it says it
// is ready. A port taken in the meantime is replaced, on the first start only.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	prepare := func() (*exec.Cmd, error) {
		cmd := exec.Command(s.bin, "server", s.DataDir, "--address", s.Host, "--certs-dir", s.certsDir, "--quiet")
		cmd.Dir = s.Dir
		cmd.Env = s.environ()
		return cmd, nil
	}
	// Ready means: /minio/health/ready answers 200. (The port may change: build the URL
	// for each start.)
	ready := func(ctx context.Context) error {
		return proctest.HTTPReady(ctx, s.client, s.Endpoint+"/minio/health/ready")
	}
	if err := s.sup.Start(prepare, ready, func() { s.pickPort(t) }); err != nil {
		t.Fatalf("miniotest: start MinIO at %s: %v\nlog %s, last lines:\n%s", s.Endpoint, err, s.LogFile, s.LogTail(30))
	}
}

// environ is the test's environment without MINIO_* (a developer's settings must not
// change the server), plus the server's own.
func (s *Server) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off",
		"HOME="+s.Dir, // nothing lands in the real home (~/.minio)
	)
	if s.kmsKey != "" {
		env = append(env, "MINIO_KMS_SECRET_KEY="+s.kmsKey)
	}
	return env
}

// Stop stops the server (SIGTERM, SIGKILL after 10s) and waits for it. Nothing if it is
// not running.
func (s *Server) Stop() { s.sup.Stop(syscall.SIGTERM) }

// Kill stops the server with SIGKILL: a crash.
func (s *Server) Kill() { s.sup.Stop(syscall.SIGKILL) }

// Running reports whether the server process is running.
func (s *Server) Running() bool { return s.sup.Running() }

// Client returns a minio-go client with the root credentials.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	if s.Secure {
		pool := x509.NewCertPool()
		b, err := os.ReadFile(s.CAFile)
		if err != nil || !pool.AppendCertsFromPEM(b) {
			t.Fatalf("miniotest: CA file %s: %v", s.CAFile, err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c, err := minio.New(s.Host, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Secure: s.Secure,
		Transport: tr, Region: "us-east-1", BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("miniotest: client: %v", err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("miniotest: make bucket %q: %v", name, err)
	}
}

// Object is one object as MinIO holds it.
type Object struct {
	Key  string
	Info minio.ObjectInfo // from StatObject: size, metadata, SSE headers
	Data []byte
}

// Objects returns every object in bucket (under prefix), with its content and StatObject
// info, for tests that scan what the backend holds.
func (s *Server) Objects(t testing.TB, bucket, prefix string) []Object {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := s.Client(t)
	var out []Object
	for info := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			t.Fatalf("miniotest: list %s/%s: %v", bucket, prefix, info.Err)
		}
		st, err := c.StatObject(ctx, bucket, info.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("miniotest: stat %s/%s: %v", bucket, info.Key, err)
		}
		obj, err := c.GetObject(ctx, bucket, info.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatalf("miniotest: get %s/%s: %v", bucket, info.Key, err)
		}
		data, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("miniotest: read %s/%s: %v", bucket, info.Key, err)
		}
		out = append(out, Object{Key: info.Key, Info: st, Data: data})
	}
	return out
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string { return proctest.LogTail(s.LogFile, n) }

// String describes the server for test logs.
func (s *Server) String() string { return "MinIO " + Version + " at " + s.Endpoint }

package kestest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Identity is a KES client identity: a certificate and its private key (PEM files, mode
// 0600) and the KES identity ID derived from the certificate.
type Identity struct {
	CertFile, KeyFile string
	// ID is what KES calls the identity: the hex SHA-256 of the certificate's
	// SubjectPublicKeyInfo (KES v0.24.0, auth.go identifyRequest).
	ID string
}

// CA is a test certificate authority: it signs the KES server certificate and client
// certificates. A CA made by NewCA that a server does not use stands for "some other CA".
type CA struct {
	// CertFile is the CA certificate (PEM): give it to a client as its CA path, and to the
	// KES server as tls.ca.
	CertFile string

	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    atomic.Int64 // names the files of the certificates it signs
}

// NewCA makes a new CA with its files in a temporary directory of t.
func NewCA(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "ssefs kestest CA", Organization: []string{"ssefs tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("kestest: create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("kestest: parse CA certificate: %v", err)
	}
	ca := &CA{dir: dir, cert: cert, key: key, CertFile: filepath.Join(dir, "ca.crt")}
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// NewIdentity returns a new client identity whose certificate the CA signs. It is known to
// a KES server only once it is in one of its policies (WithPolicy, Server.SetPolicy) or is
// its admin.
func (ca *CA) NewIdentity(t testing.TB) Identity {
	t.Helper()
	n := ca.n.Add(1)
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("kestest-client-%d", n)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("kestest: create client certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("kestest: parse client certificate: %v", err)
	}
	id := Identity{
		CertFile: filepath.Join(ca.dir, fmt.Sprintf("client-%d.crt", n)),
		KeyFile:  filepath.Join(ca.dir, fmt.Sprintf("client-%d.key", n)),
		ID:       IdentityOf(cert),
	}
	writePEM(t, id.CertFile, "CERTIFICATE", der)
	writeKey(t, id.KeyFile, key)
	return id
}

// NewServerCert writes a server certificate for 127.0.0.1, ::1 and localhost, signed by
// the CA (for a fake server in a test: tls.LoadX509KeyPair(certFile, keyFile)).
func (ca *CA) NewServerCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	n := ca.n.Add(1)
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("kestest: create server certificate: %v", err)
	}
	certFile = filepath.Join(ca.dir, fmt.Sprintf("server-%d.crt", n))
	keyFile = filepath.Join(ca.dir, fmt.Sprintf("server-%d.key", n))
	writePEM(t, certFile, "CERTIFICATE", der)
	writeKey(t, keyFile, key)
	return certFile, keyFile
}

// IdentityOf returns the KES identity of a certificate: the hex SHA-256 of its
// SubjectPublicKeyInfo.
func IdentityOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("kestest: generate key: %v", err)
	}
	return key
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("kestest: serial number: %v", err)
	}
	return n
}

func writeKey(t testing.TB, file string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("kestest: encode private key: %v", err)
	}
	writePEM(t, file, "PRIVATE KEY", der)
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("kestest: %v", err)
	}
}

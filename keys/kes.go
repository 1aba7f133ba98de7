package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// KESConfig configures a client of a MinIO KES server (MinIO's MINIO_KMS_KES_* settings).
type KESConfig struct {
	// Endpoints are https://HOST:PORT URLs of KES servers that share one keystore. A
	// request goes to the endpoint that answered last and fails over to the others, in
	// order, when that one is unreachable or answers with a server error.
	Endpoints []string
	// KeyFile and CertFile are the client's TLS identity (PEM). KES knows a client by the
	// SHA-256 of its certificate's public key (see KES.Identity).
	KeyFile, CertFile string
	// CAPath is a PEM file, or a directory of PEM files, with the CA certificates that
	// verify the servers' certificates: only they are trusted then. "" trusts the
	// system's roots.
	CAPath string
	// Enclave names a KES enclave. The KES server ssefs targets (v0.24) has no enclaves
	// and ignores the Kes-Enclave header that older clients sent, so NewKES refuses a
	// non-empty Enclave rather than let every key land in the one namespace unnoticed.
	Enclave string
	// Timeout bounds each request to one endpoint; 0 means 10s.
	Timeout time.Duration
}

// KES is a KMS backed by a MinIO KES server (API v1, as of KES v0.24.0). It speaks the
// KES HTTP API itself over net/http and crypto/tls: the KES client libraries are
// AGPL-licensed and must not be linked into ssefs.
//
// Data keys: GenerateKey asks KES for a fresh 32-byte key sealed under a named key,
// bound to the context as associated data; Decrypt asks KES to unseal it. The context is
// sent in the canonical encoding of Static (sorted, length-prefixed pairs), so the same
// Context always gives the same bytes.
//
// KES is safe for concurrent use. It logs nothing; its errors name the endpoint and the
// key, never secret material.
type KES struct {
	endpoints []string
	timeout   time.Duration
	client    *http.Client
	transport *http.Transport
	identity  string
	next      atomic.Uint32 // the endpoint that answered last: requests start there
	closed    atomic.Bool
}

var (
	_ KMS        = (*KES)(nil)
	_ KeyCreator = (*KES)(nil)
	_ KeyLister  = (*KES)(nil)
)

const (
	kesDefaultTimeout = 10 * time.Second
	kesMaxAnswer      = 1 << 20 // KES answers are small; a list of 1024 names is ~100 KB
	kesMaxKeyName     = 80      // KES v0.24 validName
)

// NewKES checks cfg and loads the client certificate, its key and the CA certificates. It
// does not contact a server. Its errors name the setting or file at fault.
func NewKES(cfg KESConfig) (*KES, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("keys: KES: no endpoint configured (want https://HOST:PORT)")
	}
	endpoints := make([]string, 0, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		norm, err := parseKESEndpoint(ep)
		if err != nil {
			return nil, err
		}
		endpoints = append(endpoints, norm)
	}
	if cfg.Enclave != "" {
		return nil, fmt.Errorf("keys: KES enclave %q: not supported: KES v0.24 has no enclaves (it would ignore the "+
			"Kes-Enclave header and use its one key namespace); leave the enclave unset and separate tenants "+
			"with KES policies and key name prefixes", cfg.Enclave)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("keys: KES: negative timeout %v", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = kesDefaultTimeout
	}

	cert, err := loadKESClientCert(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if cfg.CAPath != "" {
		if roots, err = loadKESCAs(cfg.CAPath); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)

	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots,
			MinVersion:   tls.VersionTLS12,
		},
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 64,
		// Below the KES server's idle timeout (90s), so that a connection is closed by us
		// rather than found closed by the server.
		IdleConnTimeout: 60 * time.Second,
	}
	return &KES{
		endpoints: endpoints,
		timeout:   timeout,
		transport: tr,
		// KES never redirects; following one would present the client certificate to
		// wherever it points.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		identity: hex.EncodeToString(sum[:]),
	}, nil
}

// Identity returns the client's KES identity: the hex SHA-256 of its certificate's
// SubjectPublicKeyInfo, which a KES policy lists. It is not secret.
func (k *KES) Identity() string { return k.identity }

// Endpoints returns the configured endpoints, normalised.
func (k *KES) Endpoints() []string { return slices.Clone(k.endpoints) }

// Close releases idle connections. Calls after Close fail with ErrUnavailable.
func (k *KES) Close() error {
	k.closed.Store(true)
	k.transport.CloseIdleConnections()
	return nil
}

// GenerateKey asks KES for a new data key sealed under the key name and bound to kctx.
func (k *KES) GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error) {
	const op = "generate data key with"
	if err := checkKESKeyName(name); err != nil {
		return DEK{}, fmt.Errorf("keys: KES %s key %q: %w: %w", op, name, ErrKeyNotFound, err)
	}
	body, err := json.Marshal(struct {
		Context []byte `json:"context"`
	}{canonicalContext(kctx)})
	if err != nil {
		return DEK{}, fmt.Errorf("keys: KES %s key %q: %w", op, name, err)
	}
	ans, err := k.do(ctx, op, name, http.MethodPut, "/v1/key/generate/"+name, body)
	if err != nil {
		return DEK{}, err
	}
	defer clear(ans.body) // the plaintext, base64-encoded
	var resp struct {
		Plaintext  []byte `json:"plaintext"`
		Ciphertext []byte `json:"ciphertext"`
	}
	err = json.Unmarshal(ans.body, &resp)
	if err != nil || len(resp.Plaintext) != 32 || len(resp.Ciphertext) == 0 {
		clear(resp.Plaintext)
		// Never quote the answer or the JSON error: both may hold key bytes.
		return DEK{}, fmt.Errorf("keys: KES %s key %q at %s: %w: malformed answer (want a 32-byte plaintext and a ciphertext)",
			op, name, ans.endpoint, ErrUnavailable)
	}
	return DEK{KeyName: name, Plaintext: resp.Plaintext, Ciphertext: resp.Ciphertext}, nil
}

// Decrypt asks KES to unseal a ciphertext of GenerateKey. A wrong context or a changed
// ciphertext is ErrDecrypt.
func (k *KES) Decrypt(ctx context.Context, name string, ciphertext []byte, kctx Context) ([]byte, error) {
	const op = "decrypt with"
	if err := checkKESKeyName(name); err != nil {
		return nil, fmt.Errorf("keys: KES %s key %q: %w: %w", op, name, ErrKeyNotFound, err)
	}
	if len(ciphertext) == 0 {
		return nil, fmt.Errorf("keys: KES %s key %q: empty ciphertext: %w", op, name, ErrDecrypt)
	}
	body, err := json.Marshal(struct {
		Ciphertext []byte `json:"ciphertext"`
		Context    []byte `json:"context"`
	}{ciphertext, canonicalContext(kctx)})
	if err != nil {
		return nil, fmt.Errorf("keys: KES %s key %q: %w", op, name, err)
	}
	ans, err := k.do(ctx, op, name, http.MethodPut, "/v1/key/decrypt/"+name, body)
	if err != nil {
		return nil, err
	}
	defer clear(ans.body)
	var resp struct {
		Plaintext []byte `json:"plaintext"`
	}
	if err := json.Unmarshal(ans.body, &resp); err != nil || len(resp.Plaintext) == 0 {
		clear(resp.Plaintext)
		return nil, fmt.Errorf("keys: KES %s key %q at %s: %w: malformed answer", op, name, ans.endpoint, ErrUnavailable)
	}
	return resp.Plaintext, nil
}

// CreateKey creates a key in KES. An existing key is ErrKeyExists.
func (k *KES) CreateKey(ctx context.Context, name string) error {
	const op = "create"
	if err := checkKESKeyName(name); err != nil {
		return fmt.Errorf("keys: KES %s key %q: %w", op, name, err)
	}
	_, err := k.do(ctx, op, name, http.MethodPut, "/v1/key/create/"+name, nil)
	return err
}

// ListKeys returns the sorted names of the keys that match pattern, a glob as path.Match
// takes it ("" and "*" match all, "my-*", "key-?"); a name without wildcards matches only
// itself.
//
// KES v0.24 itself lists by a literal name prefix ("*" for all), so ListKeys asks for the
// longest prefix that the pattern fixes and filters the answer. That server returns at
// most 1024 names and cannot continue a listing correctly: when it says there are more,
// ListKeys returns the names it got and an error.
func (k *KES) ListKeys(ctx context.Context, pattern string) ([]string, error) {
	if pattern == "" {
		pattern = "*"
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("keys: KES list keys %q: %w", pattern, err)
	}
	ans, err := k.do(ctx, "list", pattern, http.MethodGet, "/v1/key/list/"+kesListPrefix(pattern), nil)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Names      []string `json:"names"`
		ContinueAt string   `json:"continue_at"`
	}
	if err := json.Unmarshal(ans.body, &resp); err != nil {
		return nil, fmt.Errorf("keys: KES list keys %q at %s: %w: malformed answer: %v", pattern, ans.endpoint, ErrUnavailable, err)
	}
	names := make([]string, 0, len(resp.Names))
	for _, n := range resp.Names {
		if ok, _ := path.Match(pattern, n); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if resp.ContinueAt != "" {
		return names, fmt.Errorf("keys: KES list keys %q at %s: listing truncated after %d names (KES v0.24 cannot continue it); use a narrower pattern",
			pattern, ans.endpoint, len(resp.Names))
	}
	return names, nil
}

// kesListPrefix turns a glob into the literal prefix KES v0.24 lists by: the part before
// the first wildcard, cut to characters a key name may have, without a trailing '-' (which
// KES refuses at the end of a pattern); "*" when nothing is left.
func kesListPrefix(pattern string) string {
	i := strings.IndexAny(pattern, `*?[\`)
	if i < 0 {
		i = len(pattern)
	}
	prefix := pattern[:i]
	for j, r := range prefix {
		if !isKESNameChar(r) {
			prefix = prefix[:j]
			break
		}
	}
	if len(prefix) > kesMaxKeyName {
		prefix = prefix[:kesMaxKeyName]
	}
	prefix = strings.TrimRight(prefix, "-")
	if prefix == "" || prefix == "_" || prefix[0] == '-' {
		return "*"
	}
	return prefix
}

func isKESNameChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-' || r == '_'
}

// checkKESKeyName accepts the names KES v0.24 accepts (validName): 1 to 80 letters, digits,
// '-' and '_', no '-' first or last, not "_".
func checkKESKeyName(name string) error {
	ok := name != "" && name != "_" && len(name) <= kesMaxKeyName &&
		name[0] != '-' && name[len(name)-1] != '-'
	for _, r := range name {
		ok = ok && isKESNameChar(r)
	}
	if !ok {
		return errors.New("not a KES key name: 1 to 80 letters, digits, '-' and '_', no '-' at either end")
	}
	return nil
}

// kesAnswer is a 2xx answer of an endpoint.
type kesAnswer struct {
	endpoint string
	body     []byte
}

// do sends one request, failing over between the endpoints, and turns every other answer
// into an error. op and name describe the call for error messages.
func (k *KES) do(ctx context.Context, op, name, method, apiPath string, body []byte) (kesAnswer, error) {
	what := fmt.Sprintf("keys: KES %s key %q", op, name)
	if op == "list" {
		what = fmt.Sprintf("keys: KES list keys %q", name)
	}
	if k.closed.Load() {
		return kesAnswer{}, fmt.Errorf("%s: %w: the client is closed", what, ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return kesAnswer{}, fmt.Errorf("%s: %w", what, err)
	}
	// Go's HTTP client resends a request that has a body only when it is marked
	// idempotent: then a keep-alive connection the server closed just before reuse costs
	// a retry, not an error. These requests are safe to repeat when nothing was sent.
	var idem [16]byte
	mustRandom(idem[:])
	idemKey := hex.EncodeToString(idem[:])

	n := len(k.endpoints)
	first := int(k.next.Load()) % n
	var failures []string
	untrusted := 0
	for i := range n {
		idx := (first + i) % n
		ep := k.endpoints[idx]
		status, answer, err := k.roundTrip(ctx, method, ep+apiPath, body, idemKey)
		if err != nil {
			if ctx.Err() != nil { // the caller's deadline or cancellation, not the endpoint's
				return kesAnswer{}, fmt.Errorf("%s at %s: %w", what, ep, ctx.Err())
			}
			if kesCertRejected(err) {
				return kesAnswer{}, fmt.Errorf("%s at %s: %w: the server refused the client certificate (identity %s) in the TLS handshake: %v",
					what, ep, ErrIdentityRejected, k.identity, withoutURL(err))
			}
			if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
				untrusted++
			}
			failures = append(failures, fmt.Sprintf("%s: %s", ep, describeKESTransportError(err, k.timeout)))
			continue
		}
		if status >= 500 || status == http.StatusTooManyRequests {
			failures = append(failures, fmt.Sprintf("%s: answered %d %s", ep, status, kesMessage(answer)))
			continue
		}
		k.next.Store(uint32(idx))
		if status >= 200 && status < 300 {
			return kesAnswer{endpoint: ep, body: answer}, nil
		}
		return kesAnswer{}, k.answerError(what, ep, status, kesMessage(answer))
	}
	if untrusted == n {
		return kesAnswer{}, fmt.Errorf("%s: %w: %w: %s", what, ErrUnavailable, ErrServerUntrusted, strings.Join(failures, "; "))
	}
	return kesAnswer{}, fmt.Errorf("%s: %w: no endpoint answered: %s", what, ErrUnavailable, strings.Join(failures, "; "))
}

// roundTrip sends one request to one endpoint within the per-request timeout and reads the
// whole answer.
func (k *KES) roundTrip(ctx context.Context, method, url string, body []byte, idemKey string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, kesMaxAnswer+1))
	if err == nil && len(answer) > kesMaxAnswer {
		err = fmt.Errorf("answer larger than %d bytes", kesMaxAnswer)
	}
	if err != nil {
		clear(answer)
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, answer, nil
}

// answerError maps a definite (non-2xx, non-5xx) KES answer to the keys errors. The
// messages are KES v0.24's (kms-go/kes error.go).
func (k *KES) answerError(what, ep string, status int, msg string) error {
	answered := fmt.Sprintf("KES answered %d %q", status, msg)
	switch {
	case status == http.StatusNotFound && strings.Contains(msg, "key does not exist"):
		return fmt.Errorf("%s at %s: %w: %s", what, ep, ErrKeyNotFound, answered)
	case status == http.StatusForbidden:
		// KES v0.24 gives the same answer to an identity it does not know as to one whose
		// policy does not allow the call, and its self-describe API cannot tell them
		// apart either: both are ErrForbidden.
		return fmt.Errorf("%s at %s: %w: %s to identity %s: its policy does not allow this call, or KES does not know the identity",
			what, ep, ErrForbidden, answered, k.identity)
	case status == http.StatusUnauthorized,
		status == http.StatusBadRequest && (strings.Contains(msg, "client certificate is required") ||
			strings.Contains(msg, "TLS is required") || strings.Contains(msg, "more than one client certificate")):
		return fmt.Errorf("%s at %s: %w: %s (identity %s)", what, ep, ErrIdentityRejected, answered, k.identity)
	case status == http.StatusBadRequest && strings.Contains(msg, "decryption failed"):
		return fmt.Errorf("%s at %s: %w: %s", what, ep, ErrDecrypt, answered)
	case status == http.StatusBadRequest && strings.Contains(msg, "key already exists"):
		return fmt.Errorf("%s at %s: %w: %s", what, ep, ErrKeyExists, answered)
	case status == http.StatusNotFound:
		return fmt.Errorf("%s at %s: %s: is it a KES server with API v1?", what, ep, answered)
	}
	return fmt.Errorf("%s at %s: %s", what, ep, answered)
}

// kesMessage extracts the message of a KES error answer ({"message": "..."}, or "error"
// in older servers, or plain text), shortened and made printable.
func kesMessage(answer []byte) string {
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	msg := ""
	if json.Unmarshal(answer, &e) == nil {
		msg = e.Message
		if msg == "" {
			msg = e.Error
		}
	} else if utf8.Valid(answer) {
		msg = string(answer)
	}
	msg = strings.TrimSpace(msg)
	const max = 200
	if len(msg) > max {
		msg = strings.ToValidUTF8(msg[:max], "") + "..."
	}
	return msg
}

// kesCertRejected reports whether err is a TLS alert by which the server refuses the
// client's certificate. With TLS 1.3 it arrives after the client's side of the handshake,
// on the first read, so it is recognised by the alert, not by where it happened.
func kesCertRejected(err error) bool {
	msg := err.Error()
	i := strings.Index(msg, "remote error: tls: ")
	if i < 0 {
		return false
	}
	alert := msg[i+len("remote error: tls: "):]
	for _, a := range []string{"bad certificate", "unsupported certificate", "certificate revoked",
		"certificate expired", "certificate unknown", "unknown certificate authority", "access denied",
		"certificate required"} {
		if strings.HasPrefix(alert, a) {
			return true
		}
	}
	return false
}

// describeKESTransportError says why an endpoint gave no answer.
func describeKESTransportError(err error, timeout time.Duration) string {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return "the server's certificate is not trusted (check the CA path): " + verr.Err.Error()
	}
	err = withoutURL(err)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %v", timeout)
	}
	return err.Error()
}

// withoutURL drops the method and URL that net/http puts in front of an error: the
// messages name the endpoint already.
func withoutURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// parseKESEndpoint checks that ep is https://HOST[:PORT] and returns it without a trailing
// slash.
func parseKESEndpoint(ep string) (string, error) {
	ep = strings.TrimSpace(ep)
	u, err := url.Parse(ep)
	if err != nil {
		return "", fmt.Errorf("keys: KES endpoint %q: %w", ep, err)
	}
	switch {
	case u.Scheme != "https":
		return "", fmt.Errorf("keys: KES endpoint %q: want https://HOST:PORT (KES speaks only TLS)", ep)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("keys: KES endpoint %q: no host", ep)
	case u.User != nil:
		return "", fmt.Errorf("keys: KES endpoint %q: must not contain user information", u.Redacted())
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("keys: KES endpoint %q: want https://HOST:PORT without a path or query", ep)
	}
	return "https://" + u.Host, nil
}

// loadKESClientCert loads the client's certificate and key and zeroes the key's PEM.
func loadKESClientCert(certFile, keyFile string) (tls.Certificate, error) {
	switch {
	case certFile == "":
		return tls.Certificate{}, errors.New("keys: KES: no client certificate file: KES knows clients by their TLS certificate")
	case keyFile == "":
		return tls.Certificate{}, errors.New("keys: KES: no client key file: KES knows clients by their TLS certificate")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keys: KES client certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	defer clear(keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keys: KES client key: %w", err)
	}
	// The errors of X509KeyPair describe the PEM structure, never key bytes.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keys: KES client certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("keys: KES client certificate %s: %w", certFile, err)
		}
	}
	if cert.Leaf.IsCA {
		return tls.Certificate{}, fmt.Errorf("keys: KES client certificate %s is a CA certificate: KES does not take a CA certificate as a client identity", certFile)
	}
	return cert, nil
}

// loadKESCAs reads the CA certificates of a PEM file or of the files in a directory.
func loadKESCAs(caPath string) (*x509.CertPool, error) {
	fi, err := os.Stat(caPath)
	if err != nil {
		return nil, fmt.Errorf("keys: KES CA path: %w", err)
	}
	pool := x509.NewCertPool()
	if !fi.IsDir() {
		n, err := appendPEMCerts(pool, caPath)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("keys: KES CA file %s: no PEM certificate in it", caPath)
		}
		return pool, nil
	}
	entries, err := os.ReadDir(caPath)
	if err != nil {
		return nil, fmt.Errorf("keys: KES CA directory: %w", err)
	}
	total := 0
	for _, e := range entries {
		file := filepath.Join(caPath, e.Name())
		if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
			continue // subdirectories, broken links
		}
		n, err := appendPEMCerts(pool, file)
		if err != nil {
			return nil, err
		}
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("keys: KES CA directory %s: no PEM certificate in it", caPath)
	}
	return pool, nil
}

// appendPEMCerts adds every CERTIFICATE block of a file to pool and returns how many.
func appendPEMCerts(pool *x509.CertPool, file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("keys: KES CA: %w", err)
	}
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return 0, fmt.Errorf("keys: KES CA file %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
}

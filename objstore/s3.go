package objstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// ErrUnavailable is returned (wrapped) when a remote store did not answer, or answered only
// with errors worth retrying (5xx, throttling, timeouts, refused or broken connections),
// until the operation's deadline passed. The store may well come back: nothing it
// acknowledged is lost, and the next operation tries again.
var ErrUnavailable = errors.New("object store unavailable")

// PathStyle chooses how the bucket is addressed.
type PathStyle int

const (
	// PathStyleAuto is path-style (http://HOST/BUCKET/KEY) except on AWS and Google's
	// endpoints, which get virtual-host style (http://BUCKET.HOST/KEY), as minio-go decides.
	PathStyleAuto PathStyle = iota
	PathStyleOn
	PathStyleOff // virtual-host style
)

// S3 defaults.
const (
	DefaultS3MaxInFlight = 16
	DefaultS3Timeout     = 60 * time.Second
	// S3VirtualCapacity is what Usage reports: S3 has no capacity to ask for, and a statfs
	// that says 0 bytes free makes cp, rsync and installers refuse to write. 1 PiB is a
	// figure no client should run into; s3fs and goofys report similar made-up sizes.
	S3VirtualCapacity = 1 << 50
)

// S3Config says where an S3 store lives and how to talk to it.
type S3Config struct {
	// Endpoint is HOST[:PORT] or a URL http(s)://HOST[:PORT]; "" is AWS
	// (s3.amazonaws.com, the region's endpoint with Region).
	Endpoint string
	// Insecure uses http for an Endpoint without a scheme (a URL's scheme wins).
	Insecure bool
	Bucket   string
	// Prefix is prepended to every key, with a "/" added when it lacks one; "" is the
	// bucket's root.
	Prefix string
	// Region; "" lets minio-go ask the bucket's location once (AWS), or use the
	// endpoint's region.
	Region string
	// AccessKey, SecretKey (and SessionToken) are static credentials. Without them the
	// usual AWS chain is tried: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
	// AWS_SESSION_TOKEN, then the shared credentials file (CredentialsFile, else
	// AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) with Profile (else AWS_PROFILE,
	// else "default").
	AccessKey, SecretKey, SessionToken string
	CredentialsFile, Profile           string
	PathStyle                          PathStyle
	// CAFile is a PEM file of CA certificates trusted for https besides the system's.
	CAFile string
	// SSE asks the backend to encrypt at rest as well: "" (nothing asked), "s3" (SSE-S3) or
	// "kms:KEY-ID" (SSE-KMS). It is sent on every PUT. The objects are ssefs ciphertext
	// either way: this is a second layer, under the backend's keys.
	SSE string
	// MaxInFlight bounds the requests on the wire at once (0: DefaultS3MaxInFlight).
	MaxInFlight int
	// Timeout bounds one operation, all its retries and waits for a free request slot
	// included (0: DefaultS3Timeout). Past it the operation fails with ErrUnavailable.
	Timeout time.Duration
	// AttemptTimeout bounds one request (0: a third of Timeout, at least 1s, at most 30s),
	// so that a server that hangs is retried rather than waited for until Timeout.
	AttemptTimeout time.Duration
	// RetryBase and RetryMax shape the backoff: a wait before retry n is random in
	// [0, min(RetryMax, RetryBase*2^n)] ("full jitter", so that clients that failed
	// together do not retry together). 0: 100ms and 5s.
	RetryBase, RetryMax time.Duration
	// CacheDir, with CacheBytes > 0, keeps recently used objects (ciphertext, as stored)
	// in that local directory, up to CacheBytes. See s3cache.go.
	CacheDir   string
	CacheBytes int64
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// S3 keeps objects in an S3 bucket (AWS, MinIO or any S3-compatible service), one object
// per ID, named PREFIX + 32 hex digits.
//
// The names are flat, without the fan-out directories of Local: S3 has no directories to
// keep small, random hex keys already spread over a service's partitions, and a flat
// prefix lists in one pass.
type S3 struct {
	cfg     S3Config
	client  *minio.Client
	core    minio.Core
	bucket  string
	prefix  string // "" or ending in "/"
	sse     encrypt.ServerSide
	sem     chan struct{}
	attempt time.Duration
	cache   *diskCache
	closed  atomic.Bool
	desc    string
	tr      http.RoundTripper

	// inFlight counts requests on the wire (tests watch it).
	inFlight atomic.Int64
	// down is set when an operation gave up with ErrUnavailable, and cleared by the next
	// answer from the service. While it is set, operations get one attempt timeout
	// instead of Timeout (see do).
	down atomic.Bool
}

var _ Store = (*S3)(nil)

// ParseS3URL splits s3://BUCKET[/PREFIX] into bucket and prefix.
func ParseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET[/PREFIX] URL", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return "", "", fmt.Errorf("%q: bucket name %q: %w", s, bucket, err)
	}
	prefix, err = normPrefix(prefix)
	if err != nil {
		return "", "", fmt.Errorf("%q: %w", s, err)
	}
	return bucket, strings.TrimSuffix(prefix, "/"), nil
}

// normPrefix returns "" or the prefix ending in exactly one "/".
func normPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if strings.Contains(p, "//") {
		return "", fmt.Errorf("prefix %q has an empty path segment", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("prefix %q has a control character", p)
		}
	}
	if len(p) > 512 {
		return "", fmt.Errorf("prefix %q is longer than 512 bytes", p)
	}
	return p + "/", nil
}

// ParseSSE checks an SSE setting: "", "s3" or "kms:KEY-ID".
func ParseSSE(s string) (encrypt.ServerSide, error) {
	switch {
	case s == "":
		return nil, nil
	case s == "s3":
		return encrypt.NewSSE(), nil
	case strings.HasPrefix(s, "kms:"):
		key := strings.TrimPrefix(s, "kms:")
		if key == "" || strings.ContainsAny(key, " \t\r\n") {
			return nil, fmt.Errorf("SSE %q: want kms:KEY-ID with a key ID and no spaces", s)
		}
		return encrypt.NewSSEKMS(key, nil)
	}
	return nil, fmt.Errorf("SSE %q: want s3 or kms:KEY-ID", s)
}

// endpointOf parses Endpoint into host[:port] and whether to use https.
func endpointOf(cfg S3Config) (string, bool, error) {
	return ParseEndpoint(cfg.Endpoint, cfg.Insecure)
}

// ParseEndpoint parses an S3 endpoint, HOST[:PORT] (https, or http if insecure) or
// http(s)://HOST[:PORT], into HOST[:PORT] and whether it is https. "" is AWS.
func ParseEndpoint(ep string, insecure bool) (host string, secure bool, err error) {
	if ep == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(ep, "://") {
		if strings.ContainsAny(ep, "/?#@ ") {
			return "", false, fmt.Errorf("endpoint %q: want HOST[:PORT] or http(s)://HOST[:PORT]", ep)
		}
		return ep, !insecure, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("endpoint %q: want HOST[:PORT] or http(s)://HOST[:PORT], without a path", ep)
	}
	return u.Host, u.Scheme == "https", nil
}

// NewS3 makes an S3 store. It checks the configuration and finds credentials, but sends
// nothing: the first operation shows whether the bucket answers.
func NewS3(cfg S3Config) (*S3, error) {
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("objstore: bucket %q: %w", cfg.Bucket, err)
	}
	prefix, err := normPrefix(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	host, secure, err := endpointOf(cfg)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	sse, err := ParseSSE(cfg.SSE)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultS3MaxInFlight
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultS3Timeout
	}
	attempt := cfg.AttemptTimeout
	if attempt <= 0 {
		attempt = min(max(cfg.Timeout/3, time.Second), 30*time.Second)
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	creds, err := credentialsOf(cfg)
	if err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		if tr, err = newTransport(cfg, secure); err != nil {
			return nil, err
		}
	}
	lookup := minio.BucketLookupAuto
	switch cfg.PathStyle {
	case PathStyleOn:
		lookup = minio.BucketLookupPath
	case PathStyleOff:
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(host, &minio.Options{
		Creds: creds, Secure: secure, Transport: tr, Region: cfg.Region, BucketLookup: lookup,
		// One attempt per call: the retries are ours (do), so that they share one deadline
		// and one limit on requests in flight, and tests can count them.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: s3 endpoint %s: %w", host, err)
	}
	client.SetAppInfo("ssefs", "")
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	s := &S3{
		cfg: cfg, client: client, core: minio.Core{Client: client},
		bucket: cfg.Bucket, prefix: prefix, sse: sse,
		sem:     make(chan struct{}, cfg.MaxInFlight),
		attempt: attempt,
		tr:      tr,
		desc:    fmt.Sprintf("s3://%s/%s at %s://%s", cfg.Bucket, prefix, scheme, host),
	}
	if cfg.CacheBytes > 0 {
		if cfg.CacheDir == "" {
			return nil, errors.New("objstore: a cache size without a cache directory")
		}
		if s.cache, err = newDiskCache(cfg.CacheDir, cfg.CacheBytes); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// credentialsOf builds the credentials chain and checks that it yields a key: minio-go
// would otherwise send anonymous requests, whose AccessDenied says nothing of the cause.
func credentialsOf(cfg S3Config) (*credentials.Credentials, error) {
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		if cfg.AccessKey == "" || cfg.SecretKey == "" {
			return nil, errors.New("objstore: an S3 access key needs its secret key, and a secret key its access key")
		}
		return credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken), nil
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Filename: cfg.CredentialsFile, Profile: cfg.Profile},
	})
	v, err := creds.GetWithContext(nil)
	if err != nil {
		return nil, fmt.Errorf("objstore: S3 credentials: %w", err)
	}
	if v.AccessKeyID == "" || v.SecretAccessKey == "" || v.SignerType.IsAnonymous() {
		return nil, errors.New("objstore: no S3 credentials: give an access key and secret key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in the shared credentials file (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE)")
	}
	return creds, nil
}

func newTransport(cfg S3Config, secure bool) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// Keep a connection for every request that may be in flight: with Go's default of
		// 2 idle connections per host, a burst of parallel PUTs would open and close
		// connections (and TLS sessions) all the time.
		MaxIdleConns:          2 * cfg.MaxInFlight,
		MaxIdleConnsPerHost:   2 * cfg.MaxInFlight,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Objects are ciphertext: never let the transport decode a Content-Encoding.
		DisableCompression: true,
	}
	if secure {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("objstore: CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("objstore: CA file %s holds no PEM certificate", cfg.CAFile)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	return tr, nil
}

// String names the store for messages: bucket, prefix and endpoint, never credentials.
func (s *S3) String() string { return s.desc }

// Bucket and Prefix (without its trailing "/") say where the objects are.
func (s *S3) Bucket() string { return s.bucket }
func (s *S3) Prefix() string { return strings.TrimSuffix(s.prefix, "/") }

// Key is the S3 key of an object.
func (s *S3) Key(id ID) string { return s.prefix + id.String() }

func (s *S3) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// permanentError marks an answer that retrying will not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// do runs attempt until it succeeds, fails for good, or the operation's deadline passes.
// Every attempt holds one of the MaxInFlight request slots while it is on the wire (not
// while it waits to retry) and has its own timeout.
//
// Once an operation has given up (the service did not answer for a whole Timeout), the
// next ones get only one AttemptTimeout, retries included, until the service answers
// again: a circuit breaker. One system call can make several store operations (the
// kernel flushes a file at fsync and again at close, and retries a failed read), and
// each of them waiting the whole Timeout for a service known to be down would stretch one
// call to a multiple of it. Every operation still tries, so the first one after the
// service is back succeeds and closes the breaker.
func (s *S3) do(ctx context.Context, attempt func(ctx context.Context) error) error {
	start := time.Now()
	timeout := s.cfg.Timeout
	if s.down.Load() {
		timeout = min(timeout, s.attempt)
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	tries := 0
	for {
		if err := s.acquire(octx); err != nil {
			if last == nil {
				last = errors.New("no request slot became free")
			}
			break
		}
		tries++
		actx, acancel := context.WithTimeout(octx, s.attempt)
		err := attempt(actx)
		acancel()
		s.release()
		if err == nil {
			s.down.Store(false)
			return nil
		}
		if ctx.Err() != nil {
			// The caller gave up (or its own deadline passed): say so, not "unavailable",
			// unless it was a deadline, which the engine reads as unavailable too.
			return fmt.Errorf("%w (after %d attempts: %w)", ctx.Err(), tries, err)
		}
		var perm *permanentError
		if errors.As(err, &perm) || !retryable(err) {
			if r := errResp(err); perm != nil || r.Code != "" || r.StatusCode != 0 {
				s.down.Store(false) // an answer, if not the one wanted: the service is there
			}
			return err
		}
		// An attempt cut short by the operation's own deadline says less than the answer
		// before it (503 SlowDown, connection refused): keep that one for the message.
		if last == nil || octx.Err() == nil {
			last = err
		}
		wait := s.backoff(tries - 1)
		if dl, ok := octx.Deadline(); ok && time.Until(dl) < wait {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-octx.Done():
			t.Stop()
		}
		if octx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (after %d attempts: %w)", ctx.Err(), tries, last)
	}
	s.down.Store(true)
	return fmt.Errorf("%w: gave up after %d attempts in %s: %w", ErrUnavailable, tries,
		time.Since(start).Round(time.Millisecond), last)
}

func (s *S3) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	default:
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.inFlight.Add(1)
	return nil
}

func (s *S3) release() {
	s.inFlight.Add(-1)
	<-s.sem
}

// backoff is the wait before retry n (0-based): full jitter over an exponential bound.
func (s *S3) backoff(n int) time.Duration {
	bound := s.cfg.RetryMax
	if n < 30 {
		bound = min(bound, s.cfg.RetryBase<<n)
	}
	return time.Duration(rand.Int64N(int64(bound) + 1))
}

// retryableCodes are S3 error codes that a later attempt may not get (AWS's documented
// throttling and transient codes, and MinIO's own), and, listed as false, codes that are
// final although their status is 5xx (a full MinIO answers 507).
var retryableCodes = map[string]bool{
	"SlowDown": true, "SlowDownRead": true, "SlowDownWrite": true, "Throttling": true,
	"ThrottlingException": true, "RequestLimitExceeded": true, "RequestThrottled": true,
	"TooManyRequests": true, "RequestTimeout": true, "RequestTimeTooSkewed": false,
	"InternalError": true, "ServiceUnavailable": true, "ExpiredToken": true,
	"ExpiredTokenException": true, "XMinioServerNotInitialized": true,
	"XMinioStorageFull": false, "XMinioReadQuorum": true, "XMinioWriteQuorum": true,
}

// retryable reports whether an attempt's failure is worth another attempt: the service
// is overloaded, broken for the moment, slow, or not reachable.
func retryable(err error) bool {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code != "" || resp.StatusCode != 0) {
		if r, ok := retryableCodes[resp.Code]; ok {
			return r
		}
		switch {
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests,
			resp.StatusCode == http.StatusRequestTimeout:
			return true
		}
		return false
	}
	if isTLSError(err) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false // no such host: a wrong endpoint (or bucket, virtual-host style)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue) // a transport failure that is none of the above
}

// isTLSError: a certificate the client does not trust will not become trusted by retrying.
func isTLSError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		rec tls.RecordHeaderError
		cv  *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		errors.As(err, &rec) || errors.As(err, &cv) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// errResp finds minio-go's S3 error answer in err's chain (minio.ToErrorResponse looks at
// err itself only).
func errResp(err error) minio.ErrorResponse {
	var r minio.ErrorResponse
	errors.As(err, &r)
	return r
}

func isNotFound(err error) bool {
	r := errResp(err)
	return r.Code == "NoSuchKey" || r.Code == "NotFound" || r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket"
}

// describe adds the store and what to check to a failure that will not go away by itself.
func (s *S3) describe(err error) error {
	var resp minio.ErrorResponse
	switch {
	case errors.As(err, &resp) && resp.Code == "NoSuchBucket":
		return fmt.Errorf("%s: the bucket does not exist (create it first): %w", s.desc, err)
	case errors.As(err, &resp) && (resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" ||
		resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%s: the credentials were refused: %w", s.desc, err)
	case isTLSError(err):
		return fmt.Errorf("%s: TLS: the server's certificate is not trusted (give its CA file): %w", s.desc, err)
	}
	return fmt.Errorf("%s: %w", s.desc, err)
}

func (s *S3) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// Chunk objects are small (a chunk plus DARE overhead): one PUT, never multipart,
		// so that an acknowledged object is whole and nothing is left over on failure.
		DisableMultipart:     true,
		ServerSideEncryption: s.sse,
	}
}

// Put uploads the object in one PUT (with the SSE headers, if configured). S3 replaces
// an object atomically: a reader sees the old or the new content, never a mix. Put is
// safe for concurrent use; concurrent Puts share the MaxInFlight request slots.
func (s *S3) Put(ctx context.Context, id ID, data []byte) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("objstore: put %s: %w", id, err)
	}
	key := s.Key(id)
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), s.putOptions())
		return err
	})
	if err != nil {
		if r := errResp(err); r.Code == "XMinioStorageFull" || r.StatusCode == http.StatusInsufficientStorage {
			// As a full disk under Local: the engine frees deleted objects and tries again,
			// and otherwise the write fails with ENOSPC, not EIO.
			return fmt.Errorf("objstore: put %s: %s is full: %w (%w)", id, s.desc, syscall.ENOSPC, err)
		}
		return fmt.Errorf("objstore: put %s: %w", id, s.describe(err))
	}
	if s.cache != nil {
		s.cache.put(id, data)
	}
	return nil
}

// errRangeEnd marks a GET whose range starts at or past the end of the object.
var errRangeEnd = errors.New("range starts past the end")

// ReadAt fetches exactly the range asked for with one ranged GET (a GET of the whole
// object when the cache is on), so a reader of a few DARE packages downloads only those.
func (s *S3) ReadAt(ctx context.Context, id ID, p []byte, off int64) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("objstore: read %s: %w", id, err)
	}
	if off < 0 {
		return 0, fmt.Errorf("objstore: read %s: negative offset %d", id, off)
	}
	if s.cache != nil {
		if n, ok, err := s.cache.readAt(id, p, off); ok {
			return n, err
		}
		return s.readThroughCache(ctx, id, p, off)
	}
	if len(p) == 0 {
		// A GET cannot ask for no bytes; a HEAD still tells a missing object apart.
		return 0, s.stat(ctx, id)
	}
	key := s.Key(id)
	var n int
	var eof bool
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		n, eof, err = s.getRange(ctx, key, p, off)
		return err
	})
	switch {
	case errors.Is(err, errRangeEnd):
		return 0, io.EOF
	case err != nil && isNotFound(err):
		return 0, fmt.Errorf("objstore: read %s: %w", id, ErrNotExist)
	case err != nil:
		return 0, fmt.Errorf("objstore: read %s: %w", id, s.describe(err))
	case eof:
		return n, io.EOF
	}
	return n, nil
}

// getRange is one attempt at reading [off, off+len(p)). eof is set when the object ended
// before p was full.
func (s *S3) getRange(ctx context.Context, key string, p []byte, off int64) (n int, eof bool, err error) {
	var opts minio.GetObjectOptions
	opts.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	body, _, hdr, err := s.core.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		r := errResp(err)
		if r.Code == "InvalidRange" || r.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return 0, false, &permanentError{errRangeEnd}
		}
		if isNotFound(err) {
			return 0, false, &permanentError{err}
		}
		return 0, false, err
	}
	defer body.Close()
	if hdr.Get("Content-Range") == "" && off > 0 {
		// A server that ignores Range sends the whole object: skip to off.
		skipped, err := io.CopyN(io.Discard, body, off)
		if errors.Is(err, io.EOF) && skipped < off {
			return 0, false, &permanentError{errRangeEnd}
		}
		if err != nil {
			return 0, false, err
		}
	}
	// Read until p is full or the body ends cleanly. A connection cut short surfaces as
	// io.ErrUnexpectedEOF from the body (it knows Content-Length), which is retried; a
	// clean io.EOF before p is full means the object itself ends there.
	for n < len(p) {
		m, rerr := body.Read(p[n:])
		n += m
		if rerr == io.EOF {
			return n, n < len(p), nil
		}
		if rerr != nil {
			return n, false, rerr
		}
	}
	return n, false, nil
}

func (s *S3) stat(ctx context.Context, id ID) error {
	key := s.Key(id)
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
		if err != nil && isNotFound(err) {
			return &permanentError{err}
		}
		return err
	})
	switch {
	case err != nil && isNotFound(err):
		return fmt.Errorf("objstore: read %s: %w", id, ErrNotExist)
	case err != nil:
		return fmt.Errorf("objstore: read %s: %w", id, s.describe(err))
	}
	return nil
}

// getAll is one attempt at reading a whole object, at most limit bytes.
func (s *S3) getAll(ctx context.Context, key string, limit int64) ([]byte, error) {
	body, info, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil, &permanentError{err}
		}
		return nil, err
	}
	defer body.Close()
	if info.Size > limit {
		return nil, &permanentError{fmt.Errorf("object %s is %d bytes, more than the %d expected", key, info.Size, limit)}
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &permanentError{fmt.Errorf("object %s is more than the %d bytes expected", key, limit)}
	}
	return b, nil
}

// maxCachedObject bounds what readThroughCache downloads whole: ssefs' chunk objects are
// a chunk (1 MiB by default) plus DARE overhead; anything larger is read by range.
const maxCachedObject = 16 << 20

func (s *S3) readThroughCache(ctx context.Context, id ID, p []byte, off int64) (int, error) {
	key := s.Key(id)
	var data []byte
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		data, err = s.getAll(ctx, key, maxCachedObject)
		return err
	})
	if err != nil {
		if isNotFound(err) {
			return 0, fmt.Errorf("objstore: read %s: %w", id, ErrNotExist)
		}
		return 0, fmt.Errorf("objstore: read %s: %w", id, s.describe(err))
	}
	s.cache.put(id, data)
	if off >= int64(len(data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Delete removes an object; S3 answers a DELETE of a missing key with success too.
func (s *S3) Delete(ctx context.Context, id ID) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", id, err)
	}
	if s.cache != nil {
		s.cache.remove(id)
	}
	if err := s.removeKey(ctx, s.Key(id)); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", id, s.describe(err))
	}
	return nil
}

// removeKey deletes key, with retries. A key that is not there counts as deleted: S3
// answers success for it anyway, and a server that answers NoSuchKey means the same.
func (s *S3) removeKey(ctx context.Context, key string) error {
	return s.do(ctx, func(ctx context.Context) error {
		err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
		if err != nil && isNotFound(err) {
			return nil
		}
		return err
	})
}

// Sync does nothing: S3 acknowledges a PUT only once the object is stored durably (AWS
// stores it redundantly before it answers; MinIO writes it to its drives), so every
// object Put returned for is as durable as the backend makes anything. Checking that the
// objects exist would cost a HEAD per chunk on every fsync and prove nothing more.
func (s *S3) Sync(ctx context.Context, ids []ID) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("objstore: sync: %w", err)
	}
	return nil
}

// walkPage is how many keys one listing request asks for (S3's maximum; a variable for
// the tests of paging).
var walkPage = 1000

// Walk lists the prefix, one page per request (each retried on its own), and calls fn for
// every key that is PREFIX + a canonical ID. Anything else under the prefix (the store
// marker, a human's files, "sub-directories") is skipped. fn is called between requests,
// never while one is on the wire; an error from fn stops the walk and is returned as is.
func (s *S3) Walk(ctx context.Context, fn func(id ID, size int64) error) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("objstore: walk: %w", err)
	}
	type entry struct {
		key  string
		size int64
	}
	after := ""
	for {
		var page []entry
		var more bool
		err := s.do(ctx, func(ctx context.Context) error {
			page, more = page[:0], false
			lctx, cancel := context.WithCancel(ctx)
			defer cancel() // stops the listing after one page
			fetchOwner := false
			for obj := range s.client.ListObjectsIter(lctx, s.bucket, minio.ListObjectsOptions{
				// Recursive (no delimiter): a page then never ends on a common prefix,
				// after which StartAfter would list the same "directory" again.
				Prefix: s.prefix, Recursive: true, StartAfter: after, MaxKeys: walkPage, FetchOwner: &fetchOwner,
			}) {
				if obj.Err != nil {
					return obj.Err
				}
				page = append(page, entry{obj.Key, obj.Size})
				if len(page) == walkPage {
					more = true
					break
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("objstore: walk: %w", s.describe(err))
		}
		for _, e := range page {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("objstore: walk: %w", err)
			}
			name, ok := strings.CutPrefix(e.key, s.prefix)
			if !ok || len(name) != 2*len(ID{}) {
				continue
			}
			id, err := ParseID(name)
			if err != nil || id.String() != name {
				continue
			}
			if err := fn(id, e.size); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after = page[len(page)-1].key
	}
}

// MarkerName is the key, under the prefix, of the store's marker object: a small JSON
// document that says which data directory the prefix belongs to (cmd/ssefs writes and
// checks it). It is never an object ID, so Walk skips it and fsck never collects it.
const MarkerName = "ssefs-store.json"

// maxMarker bounds what ReadMarker downloads.
const maxMarker = 64 << 10

// ReadMarker returns the marker object, or an error wrapping ErrNotExist.
func (s *S3) ReadMarker(ctx context.Context) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("objstore: read marker: %w", err)
	}
	var data []byte
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		data, err = s.getAll(ctx, s.prefix+MarkerName, maxMarker)
		return err
	})
	switch {
	case err != nil && isNotFound(err):
		return nil, fmt.Errorf("objstore: %s: no %s: %w", s.desc, MarkerName, ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("objstore: read marker: %w", s.describe(err))
	}
	return data, nil
}

// WriteMarker stores the marker object (with the SSE headers, as every PUT).
func (s *S3) WriteMarker(ctx context.Context, data []byte) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("objstore: write marker: %w", err)
	}
	if len(data) > maxMarker || !json.Valid(data) {
		return fmt.Errorf("objstore: write marker: want a JSON document of at most %d bytes", maxMarker)
	}
	opts := s.putOptions()
	opts.ContentType = "application/json"
	err := s.do(ctx, func(ctx context.Context) error {
		_, err := s.client.PutObject(ctx, s.bucket, s.prefix+MarkerName, bytes.NewReader(data), int64(len(data)), opts)
		return err
	})
	if err != nil {
		return fmt.Errorf("objstore: write marker: %w", s.describe(err))
	}
	return nil
}

// Usage reports S3VirtualCapacity, all of it free: S3 has no capacity to ask for, and
// the metadata beside it lives on another disk, so S3 has no KeepFree either.
func (s *S3) Usage() (Usage, error) {
	return Usage{TotalBytes: S3VirtualCapacity, FreeBytes: S3VirtualCapacity, AvailBytes: S3VirtualCapacity}, nil
}

// InFlight is the number of requests on the wire now.
func (s *S3) InFlight() int { return int(s.inFlight.Load()) }

// Close makes later calls fail and closes idle connections. Calls in progress finish.
func (s *S3) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if tr, ok := s.tr.(interface{ CloseIdleConnections() }); ok {
		tr.CloseIdleConnections()
	}
	if s.cache != nil {
		s.cache.close()
	}
	return nil
}

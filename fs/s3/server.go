// Package s3 is the S3 frontend of ssefs: net/http handlers that authenticate every
// request with Signature V4 (package sigv4), translate it into engine calls, and map
// the engine's errors, once, to S3 error codes (errors.go).
//
// Addressing is path-style (http://host:port/bucket/key), and virtual-host style
// (http://bucket.domain:port/key) for the domains in Config.Domains (as MinIO's
// MINIO_DOMAIN): without a configured domain a bucket label cannot be told from a host
// name.
//
// Calls answered 501 NotImplemented (kept here for the operator's notes):
//   - PutBucketVersioning, GetObjectAttributes
//   - PutBucketPolicy, PutBucketTagging, PutObjectTagging, PutBucketLifecycle,
//     PutObjectLockConfiguration, PutObjectRetention, PutObjectLegalHold, GetObjectRetention,
//     GetObjectLegalHold, PutBucketAcl, PutObjectAcl, PutBucketCors, PutBucketWebsite,
//     PutBucketReplication, PutBucketNotification, PutBucketLogging
//   - RestoreObject, SelectObjectContent, GetObjectTorrent, POST-policy uploads (POST /bucket)
//   - CreateBucket with object lock enabled
//   - conditional writes: PutObject / CompleteMultipartUpload with If-Match or If-None-Match
//   - x-amz-tagging on PutObject, CopyObject and CreateMultipartUpload
//   - anything else this router does not know
//
// Calls answered without failing although the feature does not exist (clients make
// them at startup): GetBucketVersioning (empty configuration), ListObjectVersions (each
// object as its only version, "null", as S3 lists an unversioned bucket), GetBucketPolicy
// (NoSuchBucketPolicy), GetBucketTagging (NoSuchTagSet), GetObjectTagging (empty tag
// set), GetObjectLockConfiguration (ObjectLockConfigurationNotFoundError),
// GetBucketLifecycleConfiguration (NoSuchLifecycleConfiguration), GetBucketCors
// (NoSuchCORSConfiguration), GetBucketWebsite (NoSuchWebsiteConfiguration),
// GetBucketReplication (ReplicationConfigurationNotFoundError), GetBucketNotification
// (empty configuration), GetBucketAcl/GetObjectAcl (the owner, FULL_CONTROL), and
// DeleteBucketPolicy/-Tagging/-Lifecycle/-Cors/-Website, DeleteObjectTagging (204).
package s3

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
)

// Config configures the S3 frontend.
type Config struct {
	Credentials sigv4.CredentialStore // required; no anonymous access
	Region      string                // "" = "us-east-1"
	Logger      *slog.Logger          // nil = discard; never log keys, secrets, SSE-C keys, or signatures
	// Owner is the uid/gid/mode of files and directories created through S3 (Mode 0 =
	// 0644 files, 0755 dirs).
	Owner fs.Owner
	// Domains enable virtual-host style requests: a Host of BUCKET.DOMAIN (any port)
	// addresses BUCKET, for each DOMAIN here. Other hosts are path-style.
	Domains []string
	// AllowInsecureSSEC accepts SSE-C keys over plain HTTP from other hosts. Off, such
	// requests are refused as AWS and MinIO refuse them: the key would travel in the
	// clear. Requests from loopback are accepted either way.
	AllowInsecureSSEC bool
	// IOTimeout bounds how long one read of a request body, or one write of a response,
	// may make no progress (0: no bound). It is a deadline set anew before every read and
	// write, not one for the whole request: a client that stops reading a GET (or stops
	// sending a PUT) is cut off after it, a large transfer that keeps moving never is.
	IOTimeout time.Duration
	// Observer, if set, is told of every request answered (metrics).
	Observer Observer
	// Ready, if set, tells whether the store works, for /minio/health/ready: nil when
	// it does, else why not (one line).
	Ready func(ctx context.Context) error
}

// Server serves the S3 API over one engine. It is safe for concurrent use.
type Server struct {
	e                 *fs.Engine
	verifier          *sigv4.Verifier
	region            string
	log               *slog.Logger
	owner             fs.Owner
	allowInsecureSSEC bool
	domains           []string
	ioTimeout         time.Duration
	obs               Observer                        // nil: none
	ready             func(ctx context.Context) error // nil: always ready
}

// New returns a Server for e.
func New(e *fs.Engine, cfg Config) (*Server, error) {
	if e == nil {
		return nil, errors.New("s3: no engine")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("s3: no credentials: anonymous access is not supported")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	var domains []string
	for _, d := range cfg.Domains {
		d = strings.ToLower(strings.Trim(d, "."))
		if d == "" || strings.ContainsAny(d, ":/ ") {
			return nil, fmt.Errorf("s3: domain %q: want a DNS name such as s3.example.net", d)
		}
		domains = append(domains, d)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		e: e,
		// Pinning the region makes a client configured for another region fail with a
		// clear AuthorizationHeaderMalformed instead of writing to the wrong place.
		verifier:          &sigv4.Verifier{Creds: cfg.Credentials, Region: region},
		region:            region,
		log:               log,
		owner:             cfg.Owner,
		allowInsecureSSEC: cfg.AllowInsecureSSEC,
		domains:           domains,
		ioTimeout:         max(cfg.IOTimeout, 0),
		obs:               cfg.Observer,
		ready:             cfg.Ready,
	}, nil
}

// request is what a handler needs of one S3 request.
type request struct {
	r      *http.Request
	ctx    context.Context
	bucket string
	key    string
	body   *sigv4.Body
	id     string
}

// statusWriter remembers whether the header went out, so an error after that is not
// answered with a second status line (and a panic is turned into an aborted connection).
type statusWriter struct {
	http.ResponseWriter
	status int
	// beforeHeader runs once, just before the status line goes out.
	beforeHeader func()
	// rc and timeout bound each write (Server.ioTimeout); rc is nil without a bound.
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.runBeforeHeader()
		w.status = code
	}
	w.extendWrite()
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.runBeforeHeader()
		w.status = http.StatusOK
	}
	w.extendWrite()
	return w.ResponseWriter.Write(p)
}

// extendWrite gives the next write (or the final flush) its own deadline, so a client
// that reads nothing fails the write after w.timeout instead of holding the handler, its
// connection and the open object forever, while a long download that keeps moving is
// never cut. (http.Server.WriteTimeout would bound the whole response instead.)
func (w *statusWriter) extendWrite() {
	if w.rc != nil {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) // ErrNotSupported: no bound to keep
	}
}

// stallReader is a request body whose every read must make progress within timeout.
type stallReader struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	ended   bool // a read returned an error (io.EOF included): no deadline is set any more
}

func (b *stallReader) Read(p []byte) (int, error) {
	if b.ended {
		return b.ReadCloser.Read(p)
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		// At the end of the body net/http starts its own read of the connection, to
		// notice a client that goes away: a deadline left behind would fire there and
		// cancel the request's context while the handler still works (a long
		// CompleteMultipartUpload, a settle).
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// finish bounds what net/http still reads of a body the handler left unread (it drains
// up to 256 KiB to keep the connection): a client stalling there is cut off as well.
func (b *stallReader) finish() {
	if !b.ended {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
}

// Unwrap lets http.ResponseController reach the connection (to flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) runBeforeHeader() {
	if f := w.beforeHeader; f != nil {
		w.beforeHeader = nil
		f()
	}
}

// settleMax bounds how long an answer waits for the mount's caches to drop what a
// request changed: past it, the mount's entry and attribute timeouts take over.
const settleMax = 2 * time.Second

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func newHostID() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	if s.ioTimeout > 0 {
		w.rc, w.timeout = http.NewResponseController(rw), s.ioTimeout
		// The previous request on this connection left its last deadline behind; this
		// one's writes set their own, but a 100-continue must not meet the stale one.
		_ = w.rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			orig := r.Body
			body := &stallReader{ReadCloser: r.Body, rc: w.rc, timeout: s.ioTimeout}
			r.Body = body
			defer func() {
				body.finish()
				// net/http decides whether to reuse the connection by looking at
				// r.Body, which must be its own *body again for that: behind the
				// wrapper it misses a body closed with data still unread (an error
				// answered before a large PUT was read) and parses the rest of that
				// body as the next request on the connection.
				r.Body = orig
			}()
		}
		// The response is flushed after ServeHTTP returns: that last write gets its bound too.
		defer w.extendWrite()
	}
	if s.serveHealth(w, r) {
		return
	}
	req := &request{r: r, id: newRequestID()}
	h := w.Header()
	h.Set("x-amz-request-id", req.id)
	h.Set("x-amz-id-2", newHostID())
	h.Set("Server", "ssefs")
	if s.obs != nil {
		defer s.observe(req, w, start) // after the recovery below: it sees the final status
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("s3: handler panicked", "method", r.Method, "bucket", req.bucket, "request", req.id, "panic", p)
			if w.status != 0 {
				// Half a response went out: only a broken connection tells the client.
				panic(http.ErrAbortHandler)
			}
			s.writeError(w, req, errors.New("handler panicked"))
		}
	}()

	if b, ok := s.hostBucket(r.Host); ok {
		req.bucket, req.key = b, strings.TrimPrefix(r.URL.Path, "/")
	} else {
		req.bucket, req.key = splitPath(r.URL.Path)
	}
	_, body, err := s.verifier.Verify(r)
	if err != nil {
		s.writeError(w, req, err)
		return
	}
	defer body.Close()
	req.body = body
	req.ctx = fs.WithOrigin(r.Context(), "s3")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// A client that changed something and then looks through the mount must see
		// the change: the answer waits until the mount's caches no longer hold the old.
		w.beforeHeader = func() {
			if !s.e.Settle(req.ctx, settleMax) {
				s.log.Warn("s3: the mount's caches did not drop a change in time", "method", r.Method, "bucket", req.bucket, "key", req.key, "request", req.id)
			}
		}
	}

	if err := s.route(w, req); err != nil {
		if w.status != 0 {
			// Headers are out (a GET body failed midway): abort, so the client sees a
			// truncated response and never takes it for the whole object.
			// Tampered data found mid-body is as serious as before the headers (logError):
			// an error, naming the object, not a warning like a client that went away.
			level := slog.LevelWarn
			if errors.Is(err, fs.ErrCorrupt) {
				level = slog.LevelError
			}
			s.log.Log(req.ctx, level, "s3: response aborted", "method", r.Method, "bucket", req.bucket, "key", req.key, "request", req.id, "err", err)
			panic(http.ErrAbortHandler)
		}
		s.writeError(w, req, err)
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	s.log.Debug("s3", "method", r.Method, "bucket", req.bucket, "key", req.key, "status", w.status, "request", req.id)
}

// hostBucket returns the bucket a virtual-host style Host names: BUCKET.DOMAIN for a
// configured DOMAIN, any port. Bucket names may hold dots, so the bucket is all of the
// host before ".DOMAIN".
func (s *Server) hostBucket(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, d := range s.domains {
		if b, ok := strings.CutSuffix(host, "."+d); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

// splitPath cuts a path-style URL path into bucket and key. The key is everything after
// "/bucket/", as decoded by net/http, without cleaning: "a//b" stays, so ValidObjectKey
// refuses it instead of silently storing another key.
func splitPath(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// unimplementedSub are sub-resources that, where no handler above takes them, answer
// NotImplemented instead of being mistaken for a plain bucket or object call (a PUT
// ?policy must not create a bucket, a GET ?versions must not list objects).
var unimplementedSub = []string{"versions", "versioning", "policy", "tagging", "lifecycle",
	"object-lock", "retention", "legal-hold", "acl", "cors", "website", "replication",
	"notification", "logging", "restore", "select", "torrent", "attributes", "accelerate",
	"requestPayment", "analytics", "inventory", "metrics", "intelligent-tiering",
	"ownershipControls", "publicAccessBlock", "policyStatus", "renameObject"}

func hasAny(q map[string][]string, names ...string) string {
	for _, n := range names {
		if _, ok := q[n]; ok {
			return n
		}
	}
	return ""
}

func (s *Server) route(w http.ResponseWriter, req *request) error {
	r := req.r
	q := r.URL.Query()
	has := func(n string) bool { _, ok := q[n]; return ok }
	switch {
	case req.bucket == "." || req.bucket == "..":
		// "/../x" is an attempt to climb out of the store, not a bucket that happens to be
		// missing: say so, whatever the method.
		return errInvalidBucketName(fmt.Sprintf("%q is a path segment, not a bucket name.", req.bucket))
	case req.bucket == "":
		if r.Method == http.MethodGet {
			return s.listBuckets(w, req)
		}
		return errNotImplemented
	case req.key == "":
		return s.routeBucket(w, req, q, has)
	}
	if err := checkKey(req.key); err != nil {
		// Reads and deletes of a key that cannot exist answer as for a missing key.
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if !has("uploadId") {
				return errNoSuchKey
			}
		case http.MethodDelete:
			if !has("uploadId") {
				w.WriteHeader(http.StatusNoContent)
				return nil
			}
		default:
			return err
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case has("uploadId") && r.Method == http.MethodGet:
			return s.listParts(w, req, q)
		case has("acl"):
			return s.getObjectACL(w, req)
		case has("tagging") && r.Method == http.MethodGet:
			return s.getObjectTagging(w, req)
		case hasAny(q, unimplementedSub...) != "":
			return errNotImplemented
		}
		return s.getObject(w, req, q)
	case http.MethodPut:
		switch {
		case has("partNumber") || has("uploadId"):
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return s.uploadPartCopy(w, req, q)
			}
			return s.uploadPart(w, req, q)
		case hasAny(q, unimplementedSub...) != "":
			return errNotImplemented
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return s.copyObject(w, req)
		}
		return s.putObject(w, req)
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return s.abortUpload(w, req, q)
		case has("tagging"):
			return s.noContentIfObject(w, req)
		case hasAny(q, unimplementedSub...) != "":
			return errNotImplemented
		}
		return s.deleteObject(w, req)
	case http.MethodPost:
		switch {
		case has("uploads"):
			return s.createUpload(w, req)
		case has("uploadId"):
			return s.completeUpload(w, req, q)
		}
		return errNotImplemented
	}
	return errNotImplemented
}

func (s *Server) routeBucket(w http.ResponseWriter, req *request, q url.Values, has func(string) bool) error {
	r := req.r
	switch r.Method {
	case http.MethodGet:
		switch {
		case has("location"):
			return s.getBucketLocation(w, req)
		case has("encryption"):
			return s.getBucketEncryption(w, req)
		case has("uploads"):
			return s.listUploads(w, req, q)
		case has("versioning"):
			return s.bucketConst(w, req, &versioningConfiguration{})
		case has("notification"):
			return s.bucketConst(w, req, &notificationConfiguration{})
		case has("acl"):
			return s.bucketACL(w, req)
		case has("policy"):
			return s.bucketErr(req, errNoSuchBucketPolicy)
		case has("tagging"):
			return s.bucketErr(req, errNoSuchTagSet)
		case has("object-lock"):
			return s.bucketErr(req, errNoObjectLockConfig)
		case has("lifecycle"):
			return s.bucketErr(req, errNoSuchLifecycle)
		case has("cors"):
			return s.bucketErr(req, errNoSuchCORS)
		case has("website"):
			return s.bucketErr(req, errNoSuchWebsite)
		case has("replication"):
			return s.bucketErr(req, errNoReplication)
		case has("versions"):
			return s.listObjectVersions(w, req, q)
		case hasAny(q, unimplementedSub...) != "":
			return errNotImplemented
		case q.Get("list-type") == "2":
			return s.listObjectsV2(w, req, q)
		case has("list-type"):
			return errInvalidArgument("list-type must be 2")
		}
		return s.listObjectsV1(w, req, q)
	case http.MethodHead:
		return s.headBucket(w, req)
	case http.MethodPut:
		switch {
		case has("encryption"):
			return s.putBucketEncryption(w, req)
		case hasAny(q, unimplementedSub...) != "":
			return errNotImplemented
		}
		return s.createBucket(w, req)
	case http.MethodDelete:
		switch {
		case has("encryption"):
			return s.deleteBucketEncryption(w, req)
		case has("policy"), has("tagging"), has("lifecycle"), has("cors"), has("website"):
			// Nothing of these is ever set: deleting it succeeds, as S3 answers.
			if err := s.bucketErr(req, nil); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		case hasAny(q, unimplementedSub...) != "":
			return errNotImplemented
		}
		return s.deleteBucket(w, req)
	case http.MethodPost:
		if has("delete") {
			return s.deleteObjects(w, req)
		}
		return errNotImplemented
	}
	return errNotImplemented
}

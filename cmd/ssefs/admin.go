package main

// The admin socket. A data directory is locked by the ssefs that serves it, so the admin
// commands cannot open it beside a running mount; that process serves DATA/admin.sock and
// does the work itself, with the same engine methods an offline command calls.
//
// Protocol: HTTP/1.1 over the unix socket, JSON bodies.
//
//	GET    /v1/info                         -> adminInfo
//	GET    /v1/buckets/{bucket}/encryption  -> {"bucket": B, "key": K}  (K "" = the default)
//	PUT    /v1/buckets/{bucket}/encryption  <- {"key": K}               -> {"bucket": B, "key": K}
//	DELETE /v1/buckets/{bucket}/encryption                              -> {"bucket": B, "key": ""}
//	POST   /v1/keys/rotate                  <- rotateRequest -> 200, application/x-ndjson:
//	       {"progress": {...}} lines while it runs, then one final line,
//	       {"progress": {...}, "done": true} or {"progress": {...}, "error": {...}}
//	POST   /v1/metadata-key/rotate          <- {"to_key": K}            -> {"key": K}
//	POST   /v1/backup                       <- backupRequest -> application/x-ndjson (backupcmd.go)
//	GET    /v1/usage[?bucket=B]                                         -> usageJSON ('ssefs df')
//
// Errors: a non-2xx status with {"error": "one line", "kinds": ["not_exist", ...]}; the
// kinds carry the engine's and the KMS's error kinds across, so the client tells them apart
// with errors.Is as if it had called the engine. Closing the connection cancels the call
// (a rotation stops and records where it was).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
)

const adminSocketFile = "admin.sock"

// adminInfo describes the process that serves a data directory.
type adminInfo struct {
	PID        int    `json:"pid"`
	DataDir    string `json:"data_dir"`
	KMS        string `json:"kms"`
	DefaultKey string `json:"default_key"`
}

// adminBackend is what the admin commands do to a data directory: an open dataStore
// (offline, or inside the serving mount) or an adminClient talking to that mount.
type adminBackend interface {
	Info(ctx context.Context) (adminInfo, error)
	BucketEncryption(ctx context.Context, bucket string) (string, error)
	SetBucketEncryption(ctx context.Context, bucket, key string) error
	RotateKeys(ctx context.Context, opt fs.RotateOptions) (fs.RotateProgress, error)
	RotateMetadataKey(ctx context.Context, toKey string) (string, error)
}

func (d *dataStore) Info(context.Context) (adminInfo, error) {
	return adminInfo{PID: os.Getpid(), DataDir: d.dir, KMS: d.kms.describe, DefaultKey: d.kms.defaultKey}, nil
}

func (d *dataStore) BucketEncryption(ctx context.Context, bucket string) (string, error) {
	return d.engine.BucketEncryption(ctx, bucket)
}

func (d *dataStore) SetBucketEncryption(ctx context.Context, bucket, key string) error {
	return d.engine.SetBucketEncryption(ctx, bucket, key)
}

func (d *dataStore) RotateKeys(ctx context.Context, opt fs.RotateOptions) (fs.RotateProgress, error) {
	return d.engine.RotateKeys(ctx, opt)
}

func (d *dataStore) RotateMetadataKey(ctx context.Context, toKey string) (string, error) {
	return d.rotateMetaKey(ctx, toKey)
}

// openAdmin gives an admin command the data directory: through the admin socket of the
// ssefs that holds it, or, when none does, opened here (and closed by the returned func).
func openAdmin(ctx context.Context, cfg storeConfig, stderr io.Writer) (adminBackend, func() error, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := openDataDir(ctx, cfg, stderr, log)
	var inUse *dataDirInUseError
	if errors.As(err, &inUse) {
		c, cerr := dialAdmin(ctx, inUse.dir)
		if cerr != nil {
			return nil, nil, fmt.Errorf("data directory %s is in use by ssefs pid %s, but its admin socket does not answer: %w", inUse.dir, inUse.pid, cerr)
		}
		return c, c.close, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return store, store.close, nil
}

// ---------------------------------------------------------------------------------------
// Server

type adminServer struct {
	path    string
	srv     *http.Server
	cancel  context.CancelFunc
	served  chan error
	stopped bool
}

// startAdminServer serves b on DATA/admin.sock. The caller holds the data directory's lock,
// so a socket file found there is a leftover of a process that died, and is replaced.
func startAdminServer(dir string, b adminBackend, log *slog.Logger) (*adminServer, error) {
	return startAdminServerAllowing(dir, b, log, allowPeer)
}

func startAdminServerAllowing(dir string, b adminBackend, log *slog.Logger, allow func(uid uint32) bool) (*adminServer, error) {
	path := filepath.Join(dir, adminSocketFile)
	ln, err := listenAdmin(path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &adminServer{path: path, cancel: cancel, served: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           newAdminHandler(b, log),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	pl := &peerListener{Listener: ln, allow: allow, log: log}
	go func() { s.served <- s.srv.Serve(pl) }()
	return s, nil
}

// stop cancels what the socket is running, waits for it to finish and removes the socket.
func (s *adminServer) stop() error {
	if s == nil || s.stopped {
		return nil
	}
	s.stopped = true
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.served
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// listenAdmin creates the socket under a temporary name, makes it 0600 and only then
// renames it into place, so it is never reachable with the umask's wider mode.
func listenAdmin(path string) (*net.UnixListener, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	tmpBase := fmt.Sprintf(".%s.%d", base, os.Getpid())
	_ = os.Remove(filepath.Join(dir, tmpBase))
	bindDir, release, err := shortDir(dir, tmpBase)
	if err != nil {
		return nil, err
	}
	defer release()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(bindDir, tmpBase), Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The socket file is renamed below and removed by stop: net must not unlink the old name.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		os.Remove(filepath.Join(dir, tmpBase))
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, tmpBase), 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(filepath.Join(dir, tmpBase), path); err != nil {
		return fail(err)
	}
	return ln, nil
}

// shortDir returns a name for dir under which dir/name fits a socket address (108 bytes on
// Linux): dir itself, or for a deep data directory /proc/self/fd/N of an open handle on it.
func shortDir(dir, name string) (string, func(), error) {
	if len(filepath.Join(dir, name)) < 100 {
		return dir, func() {}, nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), func() { unix.Close(fd) }, nil
}

// allowPeer: the socket's mode already keeps others out; the peer's credentials are checked
// as well, so a socket made reachable by a wrong mode or an ACL still admits only root and
// the user ssefs runs as.
func allowPeer(uid uint32) bool { return uid == 0 || uid == uint32(os.Getuid()) }

type peerListener struct {
	net.Listener
	allow func(uid uint32) bool
	log   *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && l.allow(uid) {
			return c, nil
		}
		l.log.Warn("admin socket: refused a connection", "peer_uid", uid, "err", err)
		c.Close()
	}
}

func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("not a unix socket connection (%T)", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// rotateRequest is the body of POST /v1/keys/rotate: fs.RotateOptions without the callback.
type rotateRequest struct {
	Bucket  string `json:"bucket,omitempty"`
	FromKey string `json:"from_key,omitempty"`
	ToKey   string `json:"to_key,omitempty"`
	Abandon bool   `json:"abandon,omitempty"`
}

type progressJSON struct {
	Total   uint64 `json:"total"`
	Done    uint64 `json:"done"`
	Skipped uint64 `json:"skipped"`
	Failed  uint64 `json:"failed,omitempty"`
	Resumed bool   `json:"resumed,omitempty"`
}

func toProgressJSON(p fs.RotateProgress) *progressJSON {
	return &progressJSON{Total: p.Total, Done: p.Done, Skipped: p.Skipped, Failed: p.Failed, Resumed: p.Resumed}
}

func (p *progressJSON) progress() fs.RotateProgress {
	return fs.RotateProgress{Total: p.Total, Done: p.Done, Skipped: p.Skipped, Failed: p.Failed, Resumed: p.Resumed}
}

type rotateEvent struct {
	Progress *progressJSON `json:"progress,omitempty"`
	Done     bool          `json:"done,omitempty"`
	Error    *adminError   `json:"error,omitempty"`
}

type bucketEncryptionJSON struct {
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key"`
}

type metadataRotateJSON struct {
	ToKey string `json:"to_key,omitempty"`
	Key   string `json:"key,omitempty"`
}

// progressInterval bounds how often rotation progress crosses the socket.
const progressInterval = 200 * time.Millisecond

func newAdminHandler(b adminBackend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		info, err := b.Info(r.Context())
		reply(w, log, info, err)
	})
	mux.HandleFunc("GET /v1/buckets/{bucket}/encryption", func(w http.ResponseWriter, r *http.Request) {
		bucket := r.PathValue("bucket")
		key, err := b.BucketEncryption(r.Context(), bucket)
		reply(w, log, bucketEncryptionJSON{bucket, key}, err)
	})
	mux.HandleFunc("PUT /v1/buckets/{bucket}/encryption", func(w http.ResponseWriter, r *http.Request) {
		var in bucketEncryptionJSON
		if !decodeBody(w, log, r, &in) {
			return
		}
		if in.Key == "" {
			writeError(w, log, fmt.Errorf("PUT needs a key; DELETE clears it: %w", fs.ErrInvalid))
			return
		}
		bucket := r.PathValue("bucket")
		log.Info("admin: setting bucket encryption", "bucket", bucket, "key", in.Key)
		reply(w, log, bucketEncryptionJSON{bucket, in.Key}, b.SetBucketEncryption(r.Context(), bucket, in.Key))
	})
	mux.HandleFunc("DELETE /v1/buckets/{bucket}/encryption", func(w http.ResponseWriter, r *http.Request) {
		bucket := r.PathValue("bucket")
		log.Info("admin: clearing bucket encryption", "bucket", bucket)
		reply(w, log, bucketEncryptionJSON{bucket, ""}, b.SetBucketEncryption(r.Context(), bucket, ""))
	})
	mux.HandleFunc("POST /v1/metadata-key/rotate", func(w http.ResponseWriter, r *http.Request) {
		var in metadataRotateJSON
		if !decodeBody(w, log, r, &in) {
			return
		}
		key, err := b.RotateMetadataKey(r.Context(), in.ToKey)
		if err == nil {
			log.Info("admin: re-sealed the metadata key", "key", key)
		}
		reply(w, log, metadataRotateJSON{Key: key}, err)
	})
	mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		ub, ok := b.(usageBackend)
		if !ok {
			writeError(w, log, fmt.Errorf("usage: %w", fs.ErrNotSupported))
			return
		}
		u, err := ub.Usage(r.Context(), r.URL.Query().Get("bucket"))
		reply(w, log, toUsageJSON(u), err)
	})
	mux.HandleFunc("POST /v1/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		var in rotateRequest
		if !decodeBody(w, log, r, &in) {
			return
		}
		serveRotation(w, r, b, in, log)
	})
	registerBackupRoutes(mux, b, log) // POST /v1/backup: see backupcmd.go
	return mux
}

// serveRotation runs a rotation for the client and streams its progress back. The client
// going away cancels the request's context, which stops the rotation resumably.
func serveRotation(w http.ResponseWriter, r *http.Request, b adminBackend, in rotateRequest, log *slog.Logger) {
	send := streamEvents[rotateEvent](w)
	log.Info("admin: key rotation started", "bucket", in.Bucket, "from_key", in.FromKey, "to_key", in.ToKey, "abandon", in.Abandon)
	p, err := b.RotateKeys(r.Context(), fs.RotateOptions{
		Bucket: in.Bucket, FromKey: in.FromKey, ToKey: in.ToKey, Abandon: in.Abandon,
		Progress: func(p fs.RotateProgress) { send(rotateEvent{Progress: toProgressJSON(p)}, false) },
	})
	final := rotateEvent{Progress: toProgressJSON(p), Done: err == nil}
	if err != nil {
		if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
			err = fmt.Errorf("interrupted (the client went away or ssefs is stopping): %w", err)
		}
		final.Error = toAdminError(err)
		log.Warn("admin: key rotation stopped", "done", p.Done, "total", p.Total, "err", err)
	} else {
		log.Info("admin: key rotation finished", "done", p.Done, "skipped", p.Skipped, "total", p.Total)
	}
	send(final, true)
}

// streamEvents answers 200 with an application/x-ndjson body and returns the function that
// sends one event on it, flushed at once. An event not forced is dropped when the last one
// went out less than progressInterval ago: progress comes faster than a client can use it.
func streamEvents[E any](w http.ResponseWriter) func(ev E, force bool) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex // the engine may report from more than one goroutine
	enc := json.NewEncoder(w)
	var last time.Time
	return func(ev E, force bool) {
		mu.Lock()
		defer mu.Unlock()
		if !force && time.Since(last) < progressInterval {
			return
		}
		last = time.Now()
		if err := enc.Encode(ev); err == nil {
			_ = rc.Flush()
		}
	}
}

// readEvent decodes the next event of a streamed reply into ev. The stream ending before
// the last event means the server went away, unless ctx was cancelled.
func readEvent(ctx context.Context, dec *json.Decoder, ev any, during string) error {
	if err := dec.Decode(ev); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w during %s: %v", errServerGone, during, err)
	}
	return nil
}

func decodeBody(w http.ResponseWriter, log *slog.Logger, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, log, fmt.Errorf("malformed request body: %v: %w", err, fs.ErrInvalid))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, log *slog.Logger, v any, err error) {
	if err != nil {
		writeError(w, log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// adminError carries an error across the socket: its text and its kinds.
type adminError struct {
	Message string   `json:"error"`
	Kinds   []string `json:"kinds,omitempty"`
}

// errorKinds are the errors a client may want to tell apart, with the HTTP status each
// maps to (the first that matches wins).
var errorKinds = []struct {
	name   string
	err    error
	status int
}{
	{"rotation_pending", fs.ErrRotationPending, http.StatusConflict},
	{"not_exist", fs.ErrNotExist, http.StatusNotFound},
	{"not_dir", fs.ErrNotDir, http.StatusBadRequest},
	{"invalid", fs.ErrInvalid, http.StatusBadRequest},
	{"access", fs.ErrAccess, http.StatusForbidden},
	{"corrupt", fs.ErrCorrupt, http.StatusInternalServerError},
	{"unavailable", fs.ErrUnavailable, http.StatusServiceUnavailable},
	{"not_supported", fs.ErrNotSupported, http.StatusNotImplemented},
	{"key_not_found", keys.ErrKeyNotFound, http.StatusNotFound},
	{"key_disabled", keys.ErrKeyDisabled, http.StatusForbidden},
	{"forbidden", keys.ErrForbidden, http.StatusForbidden},
	{"identity_rejected", keys.ErrIdentityRejected, http.StatusForbidden},
	{"decrypt", keys.ErrDecrypt, http.StatusInternalServerError},
	{"kms_unavailable", keys.ErrUnavailable, http.StatusServiceUnavailable},
	{"kms_not_supported", keys.ErrNotSupported, http.StatusNotImplemented},
	{"key_exists", keys.ErrKeyExists, http.StatusConflict},
	{"canceled", context.Canceled, http.StatusServiceUnavailable},
	{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable},
}

func toAdminError(err error) *adminError {
	e := &adminError{Message: err.Error()}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			e.Kinds = append(e.Kinds, k.name)
		}
	}
	return e
}

func (e *adminError) err() error {
	r := &remoteError{msg: e.Message}
	for _, name := range e.Kinds {
		for _, k := range errorKinds {
			if k.name == name {
				r.kinds = append(r.kinds, k.err)
			}
		}
	}
	return r
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	status := http.StatusInternalServerError
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			status = k.status
			break
		}
	}
	if status == http.StatusInternalServerError {
		log.Warn("admin: request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(toAdminError(err))
}

// remoteError is an error that the serving process returned: its message, and the kinds
// it wrapped there, so errors.Is works here as it did there.
type remoteError struct {
	msg   string
	kinds []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.kinds }

// ---------------------------------------------------------------------------------------
// Client

// adminClient is an adminBackend that asks the ssefs serving a data directory.
type adminClient struct {
	hc      *http.Client
	release func()
}

// dialAdmin connects to DATA/admin.sock and checks that something answers there.
func dialAdmin(ctx context.Context, dir string) (*adminClient, error) {
	path := filepath.Join(dir, adminSocketFile)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	sdir, release, err := shortDir(dir, adminSocketFile)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(sdir, adminSocketFile)
	c := &adminClient{release: release, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 1,
	}}}
	if _, err := c.Info(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *adminClient) close() error {
	c.hc.CloseIdleConnections()
	if c.release != nil {
		c.release()
		c.release = nil
	}
	return nil
}

// adminURL is the base of every request; the host is ignored on a unix socket.
const adminURL = "http://ssefs"

func (c *adminClient) request(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, adminURL+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var ae adminError
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ae); err != nil || ae.Message == "" {
			return nil, fmt.Errorf("admin socket: %s %s: %s", method, path, resp.Status)
		}
		return nil, ae.err()
	}
	return resp, nil
}

func (c *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("admin socket: %s %s: malformed reply: %w", method, path, err)
	}
	return nil
}

func (c *adminClient) Info(ctx context.Context) (adminInfo, error) {
	var info adminInfo
	err := c.call(ctx, http.MethodGet, "/v1/info", nil, &info)
	return info, err
}

func bucketPath(bucket string) string {
	return "/v1/buckets/" + url.PathEscape(bucket) + "/encryption"
}

func (c *adminClient) BucketEncryption(ctx context.Context, bucket string) (string, error) {
	var out bucketEncryptionJSON
	err := c.call(ctx, http.MethodGet, bucketPath(bucket), nil, &out)
	return out.Key, err
}

func (c *adminClient) SetBucketEncryption(ctx context.Context, bucket, key string) error {
	var out bucketEncryptionJSON
	if key == "" {
		return c.call(ctx, http.MethodDelete, bucketPath(bucket), nil, &out)
	}
	return c.call(ctx, http.MethodPut, bucketPath(bucket), bucketEncryptionJSON{Key: key}, &out)
}

func (c *adminClient) RotateMetadataKey(ctx context.Context, toKey string) (string, error) {
	var out metadataRotateJSON
	err := c.call(ctx, http.MethodPost, "/v1/metadata-key/rotate", metadataRotateJSON{ToKey: toKey}, &out)
	return out.Key, err
}

// errServerGone: the serving process stopped answering in the middle of a rotation.
var errServerGone = errors.New("the ssefs serving the data directory stopped answering")

func (c *adminClient) RotateKeys(ctx context.Context, opt fs.RotateOptions) (fs.RotateProgress, error) {
	var last fs.RotateProgress
	resp, err := c.request(ctx, http.MethodPost, "/v1/keys/rotate", rotateRequest{
		Bucket: opt.Bucket, FromKey: opt.FromKey, ToKey: opt.ToKey, Abandon: opt.Abandon,
	})
	if err != nil {
		return last, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev rotateEvent
		if err := readEvent(ctx, dec, &ev, "the rotation"); err != nil {
			return last, err
		}
		if ev.Progress != nil {
			last = ev.Progress.progress()
			if opt.Progress != nil && !ev.Done && ev.Error == nil {
				opt.Progress(last)
			}
		}
		switch {
		case ev.Error != nil:
			return last, ev.Error.err()
		case ev.Done:
			return last, nil
		}
	}
}

// ---------------------------------------------------------------------------------------
// Flags shared by the commands that work on a data directory or a KMS

type commandFlags struct {
	f       *pflag.FlagSet
	dataDir string
	kms     *kmsConfig
	help    *bool
}

// newCommandFlags starts a command's flag set with --data-dir and the KMS flags; the
// command adds its own before calling parse.
func newCommandFlags(name string) *commandFlags {
	f := pflag.NewFlagSet(name, pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	c := &commandFlags{f: f}
	f.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "data directory (for the admin socket of a running mount, or to open it offline)")
	c.kms = addKMSFlags(f)
	// Only a mount may create a data directory, and with it a generated master key.
	c.kms.noGenerate = true
	c.help = f.BoolP("help", "h", false, "show this help")
	return c
}

// parse parses args, prints the help on --help (errHelp), fills flags from SSEFS_* and
// resolves the KMS settings.
func (c *commandFlags) parse(args []string, usage string, stdout io.Writer) error {
	if err := c.f.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%s: %v", c.f.Name(), err)}
	}
	if *c.help {
		showHelp(stdout, usage+"\n"+kmsUsage+"\nFlags (each also read from SSEFS_<FLAG>):\n", c.f)
		return errHelp
	}
	if err := flagsFromEnv(c.f); err != nil {
		return err
	}
	return c.kms.resolve()
}

func (c *commandFlags) store() storeConfig {
	return storeConfig{dataDir: c.dataDir, kms: c.kms, keyCacheTTL: 5 * time.Minute, writeBufferMB: 64}
}

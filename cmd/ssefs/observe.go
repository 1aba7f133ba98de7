package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/cmd/ssefs/internal/metrics"
	"github.com/ssefs/ssefs/fs/fuse"
	"github.com/ssefs/ssefs/fs/s3"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// observeFlags are how mount and serve can be watched: logs (--log-format, --log-level)
// and Prometheus metrics with a health check (--metrics-address).
type observeFlags struct {
	metricsAddress string
	logFormat      string
	logLevel       string

	level   slog.Level   // resolved
	metrics *metrics.Set // made on first use, with --metrics-address only
}

func addObserveFlags(f *pflag.FlagSet) *observeFlags {
	o := &observeFlags{}
	f.StringVar(&o.metricsAddress, "metrics-address", "", "serve Prometheus metrics on http://HOST:PORT/metrics and a health check on /healthz (port 0 picks a free one)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text (key=value) or json (one object per line)")
	f.StringVar(&o.logLevel, "log-level", "info", "least severe log messages written: debug, info, warn or error")
	return o
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// resolve checks the flags. It has no side effects: 'ssefs config check' runs it too.
func (o *observeFlags) resolve() error {
	if o.logFormat != "text" && o.logFormat != "json" {
		return usageError{fmt.Sprintf("--log-format %q: want text or json", o.logFormat)}
	}
	level, ok := logLevels[o.logLevel]
	if !ok {
		return usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", o.logLevel)}
	}
	o.level = level
	if o.metricsAddress != "" {
		if _, _, err := net.SplitHostPort(o.metricsAddress); err != nil {
			return usageError{fmt.Sprintf("--metrics-address %q: %v", o.metricsAddress, err)}
		}
	}
	return nil
}

// set returns the metrics to hook into the store (nil without --metrics-address).
func (o *observeFlags) set() *metrics.Set {
	if o == nil || o.metricsAddress == "" {
		return nil
	}
	if o.metrics == nil {
		o.metrics = metrics.New()
	}
	return o.metrics
}

// logger builds the process's logger and makes it slog's default, so that what logs
// through slog.Default (the Vault client) comes out the same way. debug (mount's --debug)
// lowers the level to debug.
//
// With --log-format json, the log package's output (go-fuse's --debug trace and its rare
// warnings) is turned into records too, so every line is JSON; with text, it stays as
// it always was.
func (o *observeFlags) logger(w io.Writer, debug bool) *slog.Logger {
	level := o.level
	if debug && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	l := slog.New(h)
	out, flags := log.Writer(), log.Flags()
	slog.SetDefault(l)
	if o.logFormat != "json" {
		log.SetOutput(out)
		log.SetFlags(flags)
	}
	return l
}

// observer is the watching side of a running mount or serve: the metrics endpoint (with
// --metrics-address) and the health checks (always: the S3 port serves MinIO's).
type observer struct {
	set    *metrics.Set // nil: no metrics
	health *health
	srv    *http.Server
	done   chan error
}

// startObserve hooks the metrics to the open store and, with --metrics-address, serves
// them. It prints "ssefs: metrics listening on http://ADDR" once the port is bound.
func startObserve(cfg *observeFlags, d *dataStore, writeBufferMB int, log *slog.Logger, stderr io.Writer) (*observer, error) {
	o := &observer{set: cfg.set(), health: &health{db: d.db, store: d.store}}
	o.health.state.Store(&stateStarting)
	if o.set == nil {
		return o, nil
	}
	o.set.WriteBuffer(d.engine.WriteBufferBytes, int64(writeBufferMB)<<20)
	o.set.Badger(d.db.Size)
	ln, err := net.Listen("tcp", cfg.metricsAddress)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: %w", cfg.metricsAddress, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.set.Handler())
	mux.HandleFunc("GET /healthz", o.health.serveHTTP) // GET also answers HEAD
	o.srv = &http.Server{
		Handler: mux,
		// A scraper or a probe that stalls must not hold a connection for ever.
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	o.done = make(chan error, 1)
	go func() { o.done <- o.srv.Serve(ln) }()
	fmt.Fprintf(stderr, "ssefs: metrics listening on http://%s\n", ln.Addr())
	return o, nil
}

// fuse and s3 are the hooks for the frontends: nil interfaces without metrics.
func (o *observer) fuse() fuse.Observer {
	if o == nil || o.set == nil {
		return nil
	}
	return o.set.FUSE()
}

func (o *observer) s3() s3.Observer {
	if o == nil || o.set == nil {
		return nil
	}
	return o.set.S3()
}

// ready is the S3 port's readiness check (/minio/health/ready): the store works. The
// S3 API answering it is serving by definition.
func (o *observer) ready(ctx context.Context) error {
	if o == nil {
		return nil
	}
	return o.health.storeWorks(ctx)
}

// serving marks the frontends up: /healthz can say ok. stopping marks them going down,
// so a load balancer stops sending before the listeners close.
func (o *observer) serving() {
	if o != nil {
		o.health.state.Store(&stateServing)
	}
}

func (o *observer) stopping() {
	if o != nil {
		o.health.state.Store(&stateStopping)
	}
}

// stop closes the metrics endpoint; scrapes in flight get a moment to finish.
func (o *observer) stop(log *slog.Logger) {
	if o == nil || o.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.srv.Shutdown(ctx); err != nil {
		o.srv.Close()
	}
	if err := <-o.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics endpoint stopped", "err", err)
	}
	o.srv = nil
}

// What /healthz says of the frontends, besides the store.
var (
	stateStarting = "starting: not serving yet"
	stateServing  = ""
	stateStopping = "stopping: shutting down"
)

// storeProbeEvery bounds how often a health check reaches the object store: load
// balancers probe every few seconds from several places, and each probe of an S3 store
// is a request to it.
const storeProbeEvery = 2 * time.Second

// health answers whether this process is fit to take requests: the frontends serve, the
// metadata store (Badger) answers a read, and the object store answers a cheap request
// (an S3 store: a GET of its small marker object; a local one: statfs of its directory).
type health struct {
	db    *meta.DB
	store objstore.Store
	state atomic.Pointer[string] // "" serving, else why not

	mu        sync.Mutex // one store probe at a time; the others wait for its answer
	probed    time.Time
	probeErr  error
	probeTime func() time.Time // time.Now; replaced in tests
}

func (h *health) check(ctx context.Context) error {
	if s := h.state.Load(); s != nil && *s != "" {
		return errors.New(*s)
	}
	return h.storeWorks(ctx)
}

func (h *health) storeWorks(ctx context.Context) error {
	err := h.db.View(func(tx *meta.Tx) error {
		_, err := tx.Inode(meta.RootIno)
		return err
	})
	if err != nil {
		return fmt.Errorf("metadata store: %w", err)
	}
	return h.probeStore(ctx)
}

func (h *health) probeStore(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now
	if h.probeTime != nil {
		now = h.probeTime
	}
	if t := now(); !h.probed.IsZero() && t.Sub(h.probed) >= 0 && t.Sub(h.probed) < storeProbeEvery {
		return h.probeErr
	}
	var err error
	switch s := h.store.(type) {
	case markerReader:
		_, err = s.ReadMarker(ctx)
	case spaceReporter:
		_, err = s.Usage()
	}
	if err != nil {
		err = fmt.Errorf("object store: %w", err)
	}
	h.probed, h.probeErr = now(), err
	return err
}

// The cheap requests the object stores answer: an S3 store's marker object, a local
// store's statfs.
type (
	markerReader interface {
		ReadMarker(context.Context) ([]byte, error)
	}
	spaceReporter interface {
		Usage() (objstore.Usage, error)
	}
)

// healthTimeout bounds one health check: a probe that hangs is a failed one.
const healthTimeout = 5 * time.Second

// serveHTTP is /healthz: 200 "ok", or 503 and the reason on one line.
func (h *health) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := h.check(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	fmt.Fprintln(w, "ok")
}

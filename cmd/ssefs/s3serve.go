package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
)

// s3Flags configure the S3 API that mount (optionally) and serve run.
type s3Flags struct {
	address      string
	certFile     string
	keyFile      string
	region       string
	rootUser     string
	rootPassword string
	passwordFile string
	uploadExpiry time.Duration
	domains      []string
	// Hardening against slow and numerous clients (see startS3).
	readHeaderTimeout time.Duration
	ioTimeout         time.Duration
	maxConnections    int

	creds sigv4.Credentials // resolved
}

const (
	minRootUserLen     = 3 // MinIO's limits, so a MinIO credential pair carries over
	minRootPasswordLen = 8
)

func addS3Flags(f *pflag.FlagSet) *s3Flags {
	s := &s3Flags{}
	f.StringVar(&s.address, "s3-address", "", "serve the S3 API on this HOST:PORT (e.g. 127.0.0.1:9000; port 0 picks a free one)")
	f.StringVar(&s.certFile, "s3-cert", "", "TLS certificate (PEM) for the S3 API; with --s3-key it serves https")
	f.StringVar(&s.keyFile, "s3-key", "", "TLS private key (PEM) for the S3 API")
	f.StringVar(&s.region, "s3-region", "us-east-1", "region the S3 API reports and signatures are scoped to")
	f.StringVar(&s.rootUser, "root-user", "", "S3 access key (also MINIO_ROOT_USER)")
	f.StringVar(&s.rootPassword, "root-password", "", "S3 secret key: prefer --root-password-file or SSEFS_ROOT_PASSWORD, as other users see the command line (also MINIO_ROOT_PASSWORD)")
	f.StringVar(&s.passwordFile, "root-password-file", "", "file holding the S3 secret key")
	f.StringSliceVar(&s.domains, "s3-domain", nil, "enable virtual-host style requests (BUCKET.DOMAIN) for these domains, comma-separated (also MINIO_DOMAIN)")
	f.DurationVar(&s.uploadExpiry, "s3-stale-uploads-expiry", 24*time.Hour, "multipart uploads neither completed nor aborted this long after they started are aborted and their parts reclaimed (0: never)")
	f.IntVar(&s.maxConnections, "s3-max-connections", 1024, "S3 connections served at once; more wait until one closes")
	// Hidden: the defaults suit every real client; the tests shorten them to see a slow
	// client cut off in seconds.
	f.DurationVar(&s.readHeaderTimeout, "s3-read-header-timeout", 30*time.Second, "a client must send a request's headers within this")
	f.DurationVar(&s.ioTimeout, "s3-io-timeout", 2*time.Minute, "one read of a request body or one write of a response may stall this long")
	_ = f.MarkHidden("s3-read-header-timeout")
	_ = f.MarkHidden("s3-io-timeout")
	return s
}

// resolve checks the S3 settings; required says the command serves nothing else.
func (s *s3Flags) resolve(f *pflag.FlagSet, required bool) error {
	if s.address == "" {
		if required {
			return usageError{"serve needs --s3-address HOST:PORT (or SSEFS_S3_ADDRESS)"}
		}
		for _, fl := range []string{"s3-cert", "s3-key", "s3-domain", "root-user", "root-password", "root-password-file"} {
			if src := flagSource(f, fl); src != "" {
				return usageError{fmt.Sprintf("%s is set, but --s3-address is not: the S3 API is off", src)}
			}
		}
		return nil
	}
	if len(s.domains) == 0 {
		if v, _ := firstEnv("MINIO_DOMAIN"); v != "" {
			s.domains = strings.Split(v, ",")
		}
	}
	if s.uploadExpiry < 0 {
		return usageError{"--s3-stale-uploads-expiry must not be negative"}
	}
	if s.maxConnections < 1 {
		return usageError{"--s3-max-connections must be at least 1"}
	}
	if s.readHeaderTimeout <= 0 || s.ioTimeout <= 0 {
		// No "0 = forever": that is the hole these close.
		return usageError{"--s3-read-header-timeout and --s3-io-timeout must be positive"}
	}
	if _, _, err := net.SplitHostPort(s.address); err != nil {
		return usageError{fmt.Sprintf("--s3-address %q: %v", s.address, err)}
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return usageError{"--s3-cert and --s3-key go together: give both for https, or neither"}
	}
	if s.certFile != "" {
		if _, err := tls.LoadX509KeyPair(s.certFile, s.keyFile); err != nil {
			return fmt.Errorf("--s3-cert %s / --s3-key %s: %w", s.certFile, s.keyFile, err)
		}
	}

	user, userSrc := s.rootUser, flagSource(f, "root-user")
	if user == "" {
		user, userSrc = firstEnv("MINIO_ROOT_USER")
	}
	password, passwordSrc := s.rootPassword, flagSource(f, "root-password")
	if src := flagSource(f, "root-password-file"); src != "" {
		if password != "" {
			return usageError{fmt.Sprintf("%s and %s both give the S3 secret key: keep one", passwordSrc, src)}
		}
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		password, passwordSrc = strings.TrimRight(string(b), "\r\n"), src
	}
	if password == "" {
		password, passwordSrc = firstEnv("MINIO_ROOT_PASSWORD")
	}
	switch {
	case user == "" || password == "":
		return usageError{"the S3 API (--s3-address) needs credentials: set SSEFS_ROOT_USER and SSEFS_ROOT_PASSWORD (or --root-user and --root-password-file; MINIO_ROOT_USER and MINIO_ROOT_PASSWORD are read too)"}
	case len(user) < minRootUserLen:
		return usageError{fmt.Sprintf("%s: the S3 access key must be at least %d characters", userSrc, minRootUserLen)}
	case len(password) < minRootPasswordLen:
		return usageError{fmt.Sprintf("%s: the S3 secret key must be at least %d characters", passwordSrc, minRootPasswordLen)}
	case strings.ContainsAny(user, " \t\r\n/,="):
		// The access key is part of the Credential=AK/date/region/s3/aws4_request field.
		return usageError{fmt.Sprintf("%s: the S3 access key must not contain white space, '/', ',' or '='", userSrc)}
	}
	s.creds = sigv4.Credentials{AccessKey: user, SecretKey: password}
	return nil
}

// s3API is a running S3 server; the zero value (S3 off) does nothing.
type s3API struct {
	srv        *http.Server
	done       chan error
	stopExpiry context.CancelFunc
	expiryDone chan struct{}
}

// shutdownGrace is how long requests in flight may take to finish at shutdown.
const shutdownGrace = 10 * time.Second

// startS3 binds the S3 address and serves in the background. It prints
// "ssefs: S3 API listening on URL" once the port is bound (the port, when 0 was asked for,
// is the one the kernel chose).
func startS3(cfg *s3Flags, engine *fs.Engine, web *observer, log *slog.Logger, stderr io.Writer) (*s3API, error) {
	if cfg == nil || cfg.address == "" {
		return &s3API{}, nil
	}
	handler, err := s3.New(engine, s3.Config{
		Credentials: sigv4.Static(cfg.creds),
		Region:      cfg.region,
		Logger:      log,
		Owner:       fs.Owner{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())},
		Domains:     cfg.domains,
		IOTimeout:   cfg.ioTimeout,
		Observer:    web.s3(),
		Ready:       web.ready,
	})
	if err != nil {
		return nil, fmt.Errorf("--s3-domain: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.address)
	if err != nil {
		return nil, fmt.Errorf("--s3-address %s: %w", cfg.address, err)
	}
	ln = newLimitListener(ln, cfg.maxConnections)
	srv := &http.Server{
		Handler: handler,
		// Slow or idle clients must not hold connections (and goroutines) forever. Bodies
		// and responses are streamed, so there is no overall read or write timeout that a
		// large upload or download would hit: the handler bounds each stalled read and
		// write instead (s3.Config.IOTimeout).
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.certFile != "" {
		scheme = "https"
	}
	api := &s3API{srv: srv, done: make(chan error, 1)}
	go func() {
		var err error
		if cfg.certFile != "" {
			err = srv.ServeTLS(ln, cfg.certFile, cfg.keyFile)
		} else {
			err = srv.Serve(ln)
		}
		api.done <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	api.stopExpiry, api.expiryDone = cancel, make(chan struct{})
	go func() {
		defer close(api.expiryDone)
		expireUploads(ctx, engine, cfg.uploadExpiry, log)
	}()
	fmt.Fprintf(stderr, "ssefs: S3 API listening on %s://%s\n", scheme, ln.Addr())
	return api, nil
}

// expireUploads aborts stale multipart uploads now and then every tenth of the expiry
// (at most hourly), until ctx ends.
func expireUploads(ctx context.Context, engine *fs.Engine, expiry time.Duration, log *slog.Logger) {
	if expiry <= 0 {
		return
	}
	every := min(expiry/10, time.Hour)
	for {
		n, err := engine.ExpireUploads(ctx, time.Now().Add(-expiry))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("S3: expiring stale multipart uploads", "err", err)
		case n > 0:
			log.Info("S3: aborted stale multipart uploads", "count", n, "older than", expiry)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// stop lets requests in flight finish (up to shutdownGrace) and closes the listener. It
// may be called more than once.
func (a *s3API) stop(log *slog.Logger) {
	if a == nil || a.srv == nil {
		return
	}
	a.stopExpiry()
	<-a.expiryDone
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		log.Warn("S3 API: requests still running at shutdown were cut off", "err", err)
		a.srv.Close()
	}
	if err := <-a.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("S3 API stopped", "err", err)
	}
	a.srv = nil
}

// failed returns the S3 server's error if it stopped on its own.
func (a *s3API) failed() <-chan error {
	if a == nil || a.srv == nil {
		return nil
	}
	return a.done
}

const serveUsage = `Usage: ssefs serve --s3-address HOST:PORT [flags]

Serves the store's S3 API without a mount, in the foreground until SIGINT or SIGTERM. The
same data directory can be mounted later (or served by 'ssefs mount --s3-address', which
runs both at once): only one process serves a data directory at a time.

Credentials: SSEFS_ROOT_USER and SSEFS_ROOT_PASSWORD (or MINIO_ROOT_USER and
MINIO_ROOT_PASSWORD, or --root-user and --root-password-file). There is no anonymous access.
Addressing is path-style (http://HOST:PORT/BUCKET/KEY), and virtual-host style
(http://BUCKET.DOMAIN:PORT/KEY) for the domains of --s3-domain; the region is --s3-region.

Examples:
  SSEFS_ROOT_USER=admin SSEFS_ROOT_PASSWORD=$(cat /etc/ssefs/s3-secret) \
      ssefs serve --s3-address 127.0.0.1:9000
  ssefs serve --s3-address :9443 --s3-cert /etc/ssefs/tls.crt --s3-key /etc/ssefs/tls.key
  aws --endpoint-url http://127.0.0.1:9000 s3 ls

` + kmsUsage + `
Flags (each also read from SSEFS_<FLAG>, e.g. SSEFS_S3_ADDRESS):
`

func runServe(args []string, stdout, stderr io.Writer) error {
	var c mountConfig
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	c.addStoreFlags(f)
	c.s3 = addS3Flags(f)
	help := f.BoolP("help", "h", false, "show this help")
	if err := f.Parse(args); err != nil {
		return usageError{fmt.Sprintf("serve: %v", err)}
	}
	if *help {
		showHelp(stdout, serveUsage, f)
		return errHelp
	}
	if err := flagsFromEnv(f); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q (see 'ssefs serve --help')", f.Args())}
	}
	if err := c.checkStoreFlags(); err != nil {
		return err
	}
	if err := c.s3.resolve(f, true); err != nil {
		return err
	}
	if err := c.kms.resolve(); err != nil {
		return err
	}

	log := c.obs.logger(stderr, false)
	store, err := openDataDir(context.Background(), c.store(), stderr, log)
	if err != nil {
		return err
	}
	defer store.close()
	web, err := startObserve(c.obs, store, c.writeBufferMB, log, stderr)
	if err != nil {
		return err
	}
	defer web.stop(log)
	admin, err := startAdminServer(store.dir, store, log)
	if err != nil {
		log.Warn("no admin socket: 'ssefs key rotate' and 'ssefs bucket encryption' cannot reach this server", "err", err)
	}
	defer admin.stop()
	backups, err := startBackups(store, c.backup, log)
	if err != nil {
		return err
	}
	defer backups.stop()

	// Caught until the process exits (no signal.Stop), as in runMount: a second SIGTERM
	// while it shuts down must not kill it in the middle of closing the store.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	api, err := startS3(c.s3, store.engine, web, log, stderr)
	if err != nil {
		return err
	}
	web.serving()
	var served error
	select {
	case sig := <-signals:
		web.stopping()
		fmt.Fprintf(stderr, "ssefs: %v: stopping the S3 API and flushing\n", sig)
		api.stop(log)
	case served = <-api.failed():
		web.stopping()
		api.stopExpiry()
		served = fmt.Errorf("S3 API: %w", served)
	}
	if err := store.engine.SyncAll(context.Background()); err != nil {
		served = errors.Join(served, fmt.Errorf("flush: %w", err))
	}
	backups.stop() // a backup in progress ends before the store closes
	if err := admin.stop(); err != nil {
		log.Warn("stopping the admin socket", "err", err)
	}
	return errors.Join(served, store.close())
}

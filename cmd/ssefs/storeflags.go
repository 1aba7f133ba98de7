package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/objstore"
)

// Where the chunk objects live: the local directory DATA/objects (the default), or an S3
// bucket (--store s3://BUCKET[/PREFIX]).
//
// A data directory remembers its store. Its metadata names chunk objects by ID only, so
// the same data directory against another bucket (or another endpoint that also has the
// bucket) would read as missing or foreign objects, and fsck --repair would delete another
// store's objects as orphans. So:
//
//   - DATA/store.json records the store's URL, its non-secret settings (endpoint, region,
//     addressing, CA file, SSE), and a random store ID. A data directory without it keeps
//     its objects in DATA/objects, as every data directory did before S3 stores.
//   - The bucket holds the same ID in a marker object, PREFIX/ssefs-store.json
//     (objstore.MarkerName), written when the data directory is created.
//   - Opening checks both ways: a --store that is not the recorded URL is refused, and so
//     is a bucket whose marker is missing or names another ID (another endpoint, an
//     emptied bucket, another data directory's prefix). A new data directory refuses a
//     prefix that already holds another store's marker or objects.
//
// The record is written (not ready) before the marker and marked ready after it, so a
// creation cut short by a crash or an unreachable bucket is finished by the next start,
// never mistaken for a foreign store. Without --store, a data directory opens the store it
// records; flags given override its settings (an endpoint that moved), and the record
// keeps the new ones. Credentials are never recorded: they come from the flags, SSEFS_STORE_*
// or the AWS chain every time, also for fsck and the other offline commands.
const storeRecordFile = "store.json"

// storeCacheDir is the default directory of the S3 object cache.
const storeCacheDir = "store-cache"

// objStoreFlags are the --store* flags of mount and serve.
type objStoreFlags struct {
	f *pflag.FlagSet

	store, endpoint, region          string
	accessKey, secretKey, secretFile string
	pathStyle, caFile, sse, cacheDir string
	insecure, directIO               bool
	maxRequests, cacheMB             int
	timeout                          time.Duration
	secret                           string // from --store-secret-key or its file
	bucket, prefix                   string // of --store
	checked                          bool
}

// s3OnlyFlags mean nothing for a local store.
var s3OnlyFlags = []string{"store-endpoint", "store-region", "store-access-key", "store-secret-key",
	"store-secret-key-file", "store-path-style", "store-ca-file", "store-insecure", "store-sse",
	"store-max-requests", "store-timeout", "store-cache-dir", "store-cache-mb"}

func addObjStoreFlags(f *pflag.FlagSet) *objStoreFlags {
	s := &objStoreFlags{f: f}
	f.StringVar(&s.store, "store", "", "where chunk objects live: s3://BUCKET[/PREFIX] for an S3 bucket (default: DATA/objects, or the store the data directory was created with)")
	f.StringVar(&s.endpoint, "store-endpoint", "", "S3 endpoint, HOST[:PORT] or http(s)://HOST[:PORT] (default: the recorded one, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)")
	f.StringVar(&s.region, "store-region", "", "S3 region (default: the recorded one, AWS_REGION, AWS_DEFAULT_REGION, else the bucket's)")
	f.StringVar(&s.accessKey, "store-access-key", "", "S3 access key (default: AWS_ACCESS_KEY_ID, else the shared credentials file with AWS_PROFILE)")
	f.StringVar(&s.secretKey, "store-secret-key", "", "S3 secret key; prefer --store-secret-key-file or SSEFS_STORE_SECRET_KEY, since ps shows flags")
	f.StringVar(&s.secretFile, "store-secret-key-file", "", "file holding the S3 secret key")
	f.StringVar(&s.pathStyle, "store-path-style", "auto", "S3 addressing: on (HOST/BUCKET/KEY), off (virtual host, BUCKET.HOST/KEY) or auto (virtual host on AWS and Google only)")
	f.StringVar(&s.caFile, "store-ca-file", "", "PEM file of CA certificates to trust for the S3 endpoint besides the system's")
	f.BoolVar(&s.insecure, "store-insecure", false, "plain http to an endpoint given as HOST[:PORT] (objects are ciphertext, but requests can be seen and changed)")
	f.StringVar(&s.sse, "store-sse", "", "have the S3 backend encrypt at rest too: s3 (SSE-S3) or kms:KEY (SSE-KMS), on every PUT; ssefs' own encryption is always on")
	f.IntVar(&s.maxRequests, "store-max-requests", objstore.DefaultS3MaxInFlight, "bound on S3 requests in flight at once")
	f.DurationVar(&s.timeout, "store-timeout", objstore.DefaultS3Timeout, "how long an S3 operation may take, retries included, before it fails (EIO on the mount, 503 over S3)")
	f.StringVar(&s.cacheDir, "store-cache-dir", "", "directory of the local cache of S3 chunk objects, which stay ciphertext (default DATA/"+storeCacheDir+")")
	f.IntVar(&s.cacheMB, "store-cache-mb", 0, "size bound of the local cache of S3 chunk objects, in MiB (0: no cache)")
	f.BoolVar(&s.directIO, "store-direct-io", false, "write whole chunk objects of a local store around the page cache (O_DIRECT): no copy into it for streaming writes, but reads of recent objects go to the disk")
	return s
}

// objStoreFlagsFromEnv is the --store* settings of a command without those flags (fsck,
// key, bucket): SSEFS_STORE_* only, so that they can reach the data directory's S3 store.
func objStoreFlagsFromEnv() (*objStoreFlags, error) {
	f := pflag.NewFlagSet("store", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	s := addObjStoreFlags(f)
	if err := flagsFromEnv(f); err != nil {
		return nil, err
	}
	return s, s.check()
}

// src names where a flag's value came from, for messages.
func (s *objStoreFlags) src(name string) string {
	if src := flagSource(s.f, name); src != "" {
		return src
	}
	return "--" + name
}

func (s *objStoreFlags) changed(name string) bool {
	fl := s.f.Lookup(name)
	return fl != nil && fl.Changed
}

// check validates the flags (after flagsFromEnv) and reads the secret key file. Errors are
// one line naming the flag (or variable) and never show a secret.
func (s *objStoreFlags) check() error {
	if s == nil || s.checked {
		return nil
	}
	bad := func(name, format string, a ...any) error {
		return usageError{s.src(name) + ": " + fmt.Sprintf(format, a...)}
	}
	if s.store != "" {
		b, p, err := objstore.ParseS3URL(s.store)
		if err != nil {
			return bad("store", "%v (chunk objects live in DATA/objects without --store)", err)
		}
		s.bucket, s.prefix = b, p
	}
	if s.endpoint != "" {
		if _, _, err := objstore.ParseEndpoint(s.endpoint, s.insecure); err != nil {
			return bad("store-endpoint", "%v", err)
		}
	}
	switch s.pathStyle {
	case "auto", "on", "off":
	default:
		return bad("store-path-style", "%q: want auto, on or off", s.pathStyle)
	}
	if s.caFile != "" {
		if _, err := os.Stat(s.caFile); err != nil {
			return bad("store-ca-file", "%v", err)
		}
	}
	if _, err := objstore.ParseSSE(s.sse); err != nil {
		return bad("store-sse", "%v", err)
	}
	if s.maxRequests < 1 || s.maxRequests > 1024 {
		return bad("store-max-requests", "%d: want 1 to 1024", s.maxRequests)
	}
	if s.timeout < time.Second {
		return bad("store-timeout", "%s: want at least 1s", s.timeout)
	}
	if s.cacheMB < 0 {
		return bad("store-cache-mb", "must not be negative")
	}
	if s.cacheDir != "" && s.cacheMB == 0 {
		return bad("store-cache-dir", "needs --store-cache-mb, the cache's size")
	}
	s.secret = s.secretKey
	switch {
	case s.secretKey != "" && s.secretFile != "":
		return bad("store-secret-key-file", "give the secret key once: %s is set too", s.src("store-secret-key"))
	case s.secretFile != "":
		b, err := os.ReadFile(s.secretFile)
		if err != nil {
			return bad("store-secret-key-file", "%v", err)
		}
		s.secret = strings.TrimRight(string(b), "\r\n")
		if s.secret == "" {
			return bad("store-secret-key-file", "%s is empty", s.secretFile)
		}
	}
	switch {
	case s.accessKey != "" && s.secret == "":
		return bad("store-access-key", "needs --store-secret-key-file (or --store-secret-key, SSEFS_STORE_SECRET_KEY)")
	case s.accessKey == "" && s.secret != "":
		name := "store-secret-key"
		if s.secretFile != "" {
			name = "store-secret-key-file"
		}
		return bad(name, "needs --store-access-key")
	}
	s.checked = true
	return nil
}

// storeRecord is DATA/store.json.
type storeRecord struct {
	URL string `json:"url"` // s3://BUCKET[/PREFIX]
	// ID is the store's random identity, also in the bucket's marker object.
	ID string `json:"id"`
	// Ready is set once the marker is written.
	Ready     bool   `json:"ready"`
	Endpoint  string `json:"endpoint,omitempty"` // with its scheme; "" is AWS
	Region    string `json:"region,omitempty"`
	PathStyle string `json:"path_style,omitempty"`
	CAFile    string `json:"ca_file,omitempty"`
	SSE       string `json:"sse,omitempty"`
}

// storeMarker is the marker object's content.
type storeMarker struct {
	Store   string `json:"ssefs_store"` // the store ID
	Created string `json:"created,omitempty"`
}

func readStoreRecord(dir string) (*storeRecord, error) {
	path := filepath.Join(dir, storeRecordFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var r storeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", path, err)
	}
	if _, _, err := objstore.ParseS3URL(r.URL); err != nil || len(r.ID) != 32 {
		return nil, fmt.Errorf("%s is damaged: url %q, id %q", path, r.URL, r.ID)
	}
	return &r, nil
}

func writeStoreRecord(dir string, r *storeRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, storeRecordFile)
	if err := writeFileAtomic(path, append(b, '\n'), nil); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// s3URL is the canonical form of a bucket and prefix.
func s3URL(bucket, prefix string) string {
	if prefix == "" {
		return "s3://" + bucket
	}
	return "s3://" + bucket + "/" + prefix
}

// openObjStore opens the data directory's object store: see storeRecordFile. flags is nil
// for the commands without --store flags.
func openObjStore(ctx context.Context, flags *objStoreFlags, dir string, create bool, log *slog.Logger) (objstore.Store, error) {
	p, err := planObjStore(flags, dir, create)
	if err != nil {
		return nil, err
	}
	if p.local != "" {
		l, err := objstore.NewLocal(p.local)
		if err != nil {
			return nil, fmt.Errorf("object store in %s: %w", p.local, err)
		}
		l.WriteDirect(p.direct)
		return l, nil
	}
	rec, upd := p.rec, *p.upd
	s3, err := objstore.NewS3(p.cfg)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", upd.URL, err)
	}
	fail := func(err error) (objstore.Store, error) {
		s3.Close()
		return nil, err
	}
	if !upd.Ready {
		if err := writeStoreRecord(dir, &upd); err != nil {
			return fail(err)
		}
		if err := claimStore(ctx, s3, &upd); err != nil {
			return fail(err)
		}
		upd.Ready = true
		if err := writeStoreRecord(dir, &upd); err != nil {
			return fail(err)
		}
		log.Info("object store created", "store", s3.String(), "id", upd.ID)
		return s3, nil
	}
	if err := checkMarker(ctx, s3, &upd, dir); err != nil {
		return fail(err)
	}
	if upd != *rec {
		// Settings changed on the command line are remembered for the next start and for
		// the offline commands.
		if err := writeStoreRecord(dir, &upd); err != nil {
			return fail(err)
		}
	}
	log.Info("object store", "store", s3.String())
	return s3, nil
}

// storePlan is the object store a data directory opens with: a local directory, or an S3
// bucket with its record as stored (for a new store, as it is to be written) and the
// record with the flags' settings applied, and the client configuration.
type storePlan struct {
	local    string // DATA/objects; "" for S3
	direct   bool   // write the local store's chunks with O_DIRECT (--store-direct-io)
	rec, upd *storeRecord
	cfg      objstore.S3Config
}

// planObjStore decides which store openObjStore opens and how, from the flags and the
// data directory's record, without changing anything: 'ssefs config check' checks a
// store with it.
func planObjStore(flags *objStoreFlags, dir string, create bool) (storePlan, error) {
	if flags == nil {
		var err error
		if flags, err = objStoreFlagsFromEnv(); err != nil {
			return storePlan{}, err
		}
	} else if err := flags.check(); err != nil {
		return storePlan{}, err
	}
	p, err := planResolvedStore(flags, dir, create)
	if err != nil {
		return storePlan{}, err
	}
	if flags.directIO && p.local == "" {
		return storePlan{}, fmt.Errorf("%s is for a local object store, but data directory %s keeps its chunk objects in S3", flags.src("store-direct-io"), dir)
	}
	p.direct = flags.directIO
	return p, nil
}

// planResolvedStore is planObjStore once the flags are read and checked.
func planResolvedStore(flags *objStoreFlags, dir string, create bool) (storePlan, error) {
	rec, err := readStoreRecord(dir)
	if err != nil {
		return storePlan{}, err
	}
	localDir := filepath.Join(dir, objectsDir)
	want := ""
	if flags.store != "" {
		want = s3URL(flags.bucket, flags.prefix)
	}
	switch {
	case rec == nil && want == "":
		for _, name := range s3OnlyFlags {
			if flags.changed(name) {
				return storePlan{}, fmt.Errorf("%s is for an S3 store, but data directory %s keeps its chunk objects in %s (no --store s3://…)",
					flags.src(name), dir, localDir)
			}
		}
		return storePlan{local: localDir}, nil
	case rec == nil:
		if _, err := os.Stat(localDir); err == nil {
			return storePlan{}, fmt.Errorf("data directory %s keeps its chunk objects in %s: it cannot move to %s %s",
				dir, localDir, flags.src("store"), want)
		}
		if !create {
			return storePlan{}, fmt.Errorf("data directory %s records no S3 store (no %s): %s %s is not its store",
				dir, storeRecordFile, flags.src("store"), want)
		}
		rec = &storeRecord{URL: want, ID: objstore.NewID().String()}
	case want != "" && want != rec.URL:
		return storePlan{}, fmt.Errorf("data directory %s was created with --store %s (see %s); refusing %s %s: its chunk objects are not there",
			dir, rec.URL, filepath.Join(dir, storeRecordFile), flags.src("store"), want)
	}
	upd, cfg, err := s3Settings(flags, *rec)
	if err != nil {
		return storePlan{}, err
	}
	if flags.cacheMB > 0 {
		cfg.CacheDir, cfg.CacheBytes = flags.cacheDir, int64(flags.cacheMB)<<20
		if cfg.CacheDir == "" {
			cfg.CacheDir = filepath.Join(dir, storeCacheDir)
		}
	}
	return storePlan{rec: rec, upd: &upd, cfg: cfg}, nil
}

// s3Settings returns rec's settings with what the flags (or SSEFS_STORE_*, and AWS_* where
// neither rec nor a flag says) give instead, and the client configuration for them, without
// the cache, which only a mount's store has.
func s3Settings(flags *objStoreFlags, rec storeRecord) (storeRecord, objstore.S3Config, error) {
	upd := rec
	if flags.changed("store-endpoint") {
		host, secure, _ := objstore.ParseEndpoint(flags.endpoint, flags.insecure)
		upd.Endpoint = map[bool]string{true: "https://", false: "http://"}[secure] + host
	} else if upd.Endpoint == "" {
		if ep, _ := firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"); ep != "" {
			host, secure, err := objstore.ParseEndpoint(ep, flags.insecure)
			if err != nil {
				return storeRecord{}, objstore.S3Config{}, fmt.Errorf("AWS_ENDPOINT_URL: %w", err)
			}
			upd.Endpoint = map[bool]string{true: "https://", false: "http://"}[secure] + host
		}
	}
	if flags.changed("store-region") {
		upd.Region = flags.region
	} else if upd.Region == "" {
		upd.Region, _ = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if flags.changed("store-path-style") || upd.PathStyle == "" {
		upd.PathStyle = flags.pathStyle
	}
	if flags.changed("store-ca-file") {
		upd.CAFile = flags.caFile
	}
	if upd.CAFile != "" {
		// The record keeps it absolute: a later mount may run from another directory.
		if abs, err := filepath.Abs(upd.CAFile); err == nil {
			upd.CAFile = abs
		}
	}
	if flags.changed("store-sse") {
		upd.SSE = flags.sse
	}
	bucket, prefix, err := objstore.ParseS3URL(upd.URL)
	if err != nil {
		return storeRecord{}, objstore.S3Config{}, err
	}
	return upd, objstore.S3Config{
		Endpoint: upd.Endpoint, Bucket: bucket, Prefix: prefix, Region: upd.Region,
		AccessKey: flags.accessKey, SecretKey: flags.secret,
		PathStyle: map[string]objstore.PathStyle{"auto": objstore.PathStyleAuto, "on": objstore.PathStyleOn, "off": objstore.PathStyleOff}[upd.PathStyle],
		CAFile:    upd.CAFile, SSE: upd.SSE,
		MaxInFlight: flags.maxRequests, Timeout: flags.timeout,
	}, nil
}

// claimStore writes the marker of a new store into its prefix, unless the prefix already
// belongs to another store.
func claimStore(ctx context.Context, s3 *objstore.S3, rec *storeRecord) error {
	b, err := s3.ReadMarker(ctx)
	switch {
	case err == nil:
		var m storeMarker
		if json.Unmarshal(b, &m) != nil || m.Store != rec.ID {
			return fmt.Errorf("%s belongs to another ssefs data directory (its %s names store %q): give another bucket or prefix",
				s3, objstore.MarkerName, m.Store)
		}
		return nil // ours: a creation cut short after the marker
	case !errors.Is(err, objstore.ErrNotExist):
		return fmt.Errorf("object store: %w", err)
	}
	errFound := errors.New("found")
	err = s3.Walk(ctx, func(objstore.ID, int64) error { return errFound })
	if err == errFound {
		return fmt.Errorf("%s already holds ssefs chunk objects without a %s: another data directory's store? give another bucket or prefix",
			s3, objstore.MarkerName)
	}
	if err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	m, _ := json.Marshal(storeMarker{Store: rec.ID, Created: time.Now().UTC().Format(time.RFC3339)})
	if err := s3.WriteMarker(ctx, m); err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	return nil
}

// checkMarker refuses a bucket that is not the data directory's store.
func checkMarker(ctx context.Context, s3 *objstore.S3, rec *storeRecord, dir string) error {
	b, err := s3.ReadMarker(ctx)
	if errors.Is(err, objstore.ErrNotExist) {
		return fmt.Errorf("%s has no %s: it is not the store of data directory %s (store %s): is the endpoint right, or was the bucket emptied?",
			s3, objstore.MarkerName, dir, rec.ID)
	}
	if err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	var m storeMarker
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %s is damaged: %w", s3, objstore.MarkerName, err)
	}
	if _, err := hex.DecodeString(m.Store); err != nil || m.Store != rec.ID {
		return fmt.Errorf("%s belongs to another ssefs data directory (store %q); data directory %s has store %s",
			s3, m.Store, dir, rec.ID)
	}
	return nil
}

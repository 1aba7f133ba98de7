package main

// ssefs backup and ssefs restore: snapshots of the metadata (Badger), so that losing the
// host that holds the data directory loses nothing that the object store and the KMS
// still hold. See backupfmt.go for the file, fs/deferred.go for why a snapshot stays
// restorable while the store goes on changing.
//
// Where snapshots go (a "target"):
//   - an S3 store's own bucket, PREFIX/backups/NAME (the default for an S3 store): the
//     new host needs only the bucket's address, credentials and the KMS;
//   - a directory (--to DIR, an existing directory), as files DIR/NAME: for a store in
//     DATA/objects this must be on another disk or host, and so must a copy of objects/;
//   - a file (--to FILE): one snapshot, replaced atomically.
//
// NAME says when the snapshot was taken, its read timestamp and its store's lineage
// (backupName). After each backup the target keeps the --keep newest snapshots of this
// store and deletes the older ones; then the horizon (the oldest kept snapshot's read
// timestamp) is recorded, and the chunk objects freed before it are deleted: no kept
// snapshot names them. A FILE target keeps one snapshot, so its horizon is that one. The
// horizon follows the target backed up to last: snapshots elsewhere that are older than
// it may meet missing chunks when restored, and fsck after the restore says which.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/sio"
	"github.com/spf13/pflag"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

const defaultBackupKeep = 7

const backupUsage = `Usage: ssefs backup [--to DIR|FILE] [--keep N] [flags]
       ssefs backup --list [--to DIR]
       ssefs backup --disable

Writes a consistent snapshot of the data directory's metadata (every name, inode, chunk
map and sealed file key), encrypted under the metadata key and carrying meta.key as the
KMS sealed it, so that 'ssefs restore' can rebuild the data directory on another host
from the snapshot and the KMS alone.

The snapshot goes into the S3 store's bucket (PREFIX/backups/) when the chunk objects
live there, else to --to: an existing directory (a file per snapshot) or a file. A store
in DATA/objects lives on this host, so its snapshots (and a copy of objects/) belong on
another disk or host. A directory or the bucket keeps the --keep newest snapshots of this
store and the older ones are deleted.

From the first backup on, chunk objects that files no longer use are not deleted at once
but kept until every kept snapshot was taken after they were freed, so that restoring
any kept snapshot finds all its chunks. --list shows the snapshots and how many objects
wait; --disable switches that off (and deletes what waits): snapshots taken before may
then miss chunks when restored.

While a mount or 'ssefs serve' runs on the data directory, the command asks it through
its admin socket; mount and serve take --backup-interval to back up on their own.
Progress goes to stderr.

Examples:
  ssefs backup --data-dir /srv/ssefs
  ssefs backup --to /mnt/backup-disk/ssefs --keep 14
  ssefs backup --list
`

const restoreUsage = `Usage: ssefs restore --data-dir NEW [--from FILE] [--store s3://BUCKET[/PREFIX] ...] [flags]

Rebuilds a data directory from a snapshot written by 'ssefs backup': the newest snapshot
in the S3 store given with --store (or SSEFS_STORE), or the backup file --from. The KMS
that sealed the old data directory's meta.key must be configured (KES, Vault, or the
same master key): it unseals the snapshot's key, as a mount would.

NEW must not exist, or be empty (for a store in DATA/objects it may already hold the
objects/ directory copied from the old host). Nothing is written there until the snapshot
has been read and authenticated in full: a damaged or tampered snapshot leaves nothing
behind. Then every chunk record is checked against the object store, as
'ssefs fsck --quick' does, and the summary is printed; the exit status is 1 if chunks are
missing. Objects written after the snapshot show as unreferenced objects; they wait for
the next backup before 'ssefs fsck --repair' may delete them.

Make sure the old host is gone, or no longer serves the store, before mounting NEW: two
hosts writing one store lose data.

Examples:
  AWS_ACCESS_KEY_ID=minio AWS_SECRET_ACCESS_KEY=minio-secret \
    ssefs restore --store s3://ssefs-chunks/host1 --store-endpoint 127.0.0.1:9000 --store-insecure \
    --data-dir /srv/ssefs
  ssefs restore --from /mnt/backup-disk/ssefs/20260101T000000Z-...ssefs-backup --data-dir /srv/ssefs
`

// ---------------------------------------------------------------------------------------
// Flags of mount and serve

// backupFlags are mount's and serve's --backup-* flags.
type backupFlags struct {
	f        *pflag.FlagSet
	interval time.Duration
	keep     int
	to       string
}

func addBackupFlags(f *pflag.FlagSet) *backupFlags {
	b := &backupFlags{f: f}
	f.DurationVar(&b.interval, "backup-interval", 0, "back the metadata up this often while running (0: never; see 'ssefs help backup')")
	f.IntVar(&b.keep, "backup-keep", defaultBackupKeep, "snapshots of the metadata to keep (with --backup-interval)")
	f.StringVar(&b.to, "backup-to", "", "directory for the snapshots (default: the S3 store's bucket; needed for a store in DATA/objects)")
	return b
}

func (b *backupFlags) check() error {
	if b == nil {
		return nil
	}
	src := func(name string) string {
		if s := flagSource(b.f, name); s != "" {
			return s
		}
		return "--" + name
	}
	switch {
	case b.interval < 0:
		return usageError{src("backup-interval") + " must not be negative"}
	case b.interval > 0 && b.interval < time.Second:
		return usageError{fmt.Sprintf("%s %s: want at least 1s", src("backup-interval"), b.interval)}
	case b.keep < 1:
		return usageError{fmt.Sprintf("%s %d: keep at least 1", src("backup-keep"), b.keep)}
	}
	if b.to != "" {
		abs, err := filepath.Abs(b.to)
		if err != nil {
			return usageError{fmt.Sprintf("%s: %v", src("backup-to"), err)}
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return usageError{fmt.Sprintf("%s %s: want an existing directory", src("backup-to"), abs)}
		}
		b.to = abs
	}
	return nil
}

// backupLoop backs a serving data directory up every interval.
type backupLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startBackups starts the periodic backups of --backup-interval (nil when it is 0).
func startBackups(d *dataStore, b *backupFlags, log *slog.Logger) (*backupLoop, error) {
	if b == nil || b.interval == 0 {
		return nil, nil
	}
	req := backupRequest{Op: opBackup, To: b.to, Keep: b.keep}
	if _, err := d.backupTarget(req.To); err != nil {
		return nil, fmt.Errorf("--backup-interval: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &backupLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(b.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			res, err := d.Backup(ctx, req, nil)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("backup failed; trying again at the next interval", "err", err)
				}
				continue
			}
			log.Info("backup written", "where", res.Where, "bytes", res.Bytes, "kept", res.Kept,
				"pruned", len(res.Pruned), "objects_deleted", res.Released, "took", time.Since(start).Round(time.Millisecond))
		}
	}()
	return l, nil
}

// stop cancels a backup in progress (nothing half-written stays: see the targets) and
// waits for the loop to end.
func (l *backupLoop) stop() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}

// ---------------------------------------------------------------------------------------
// The work, on an open data directory (offline, or in the serving process)

const (
	opBackup  = "backup"
	opList    = "list"
	opDisable = "disable"
)

// backupRequest is what `ssefs backup` asks (also the admin socket's request body).
type backupRequest struct {
	Op   string `json:"op"`
	To   string `json:"to,omitempty"` // absolute; "" = the S3 store
	Keep int    `json:"keep,omitempty"`
}

type backupSnapshot struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ReadTs  uint64    `json:"read_ts"`
	Created time.Time `json:"created"`
}

// backupResult says what a backup, --list or --disable did or found.
type backupResult struct {
	Where    string   `json:"where,omitempty"` // the new snapshot
	ReadTs   uint64   `json:"read_ts,omitempty"`
	Bytes    int64    `json:"bytes,omitempty"`
	Kept     int      `json:"kept,omitempty"`
	Pruned   []string `json:"pruned,omitempty"`
	Released int      `json:"released,omitempty"` // deferred objects deleted
	Warning  string   `json:"warning,omitempty"`

	Target    string           `json:"target,omitempty"`
	On        bool             `json:"on"`
	Horizon   uint64           `json:"horizon,omitempty"`
	Last      int64            `json:"last,omitempty"`
	Deferred  int              `json:"deferred"`
	Snapshots []backupSnapshot `json:"snapshots,omitempty"`
}

// backupBackend is a data directory to back up: open here, or served by a mount.
type backupBackend interface {
	Backup(ctx context.Context, req backupRequest, progress func(bytes int64)) (backupResult, error)
}

// backupMu: one backup at a time in a process (the loop and the admin socket may meet).
var backupMu sync.Mutex

// Backup runs a backup request on the open data directory.
func (d *dataStore) Backup(ctx context.Context, req backupRequest, progress func(int64)) (backupResult, error) {
	backupMu.Lock()
	defer backupMu.Unlock()
	switch req.Op {
	case opList:
		return d.listBackups(ctx, req)
	case opDisable:
		n, err := d.engine.DisableDeferral(ctx)
		return backupResult{Released: n}, err
	case opBackup:
	default:
		return backupResult{}, fmt.Errorf("unknown backup operation %q: %w", req.Op, fs.ErrInvalid)
	}
	if req.Keep < 1 {
		req.Keep = defaultBackupKeep
	}
	target, err := d.backupTarget(req.To)
	if err != nil {
		return backupResult{}, err
	}
	d.metaMu.Lock() // meta.key as a rotation leaves it, never half-replaced
	keyFile, err := os.ReadFile(filepath.Join(d.dir, metaKeyFile))
	d.metaMu.Unlock()
	if err != nil {
		return backupResult{}, fmt.Errorf("backup: %w", err)
	}
	rec, err := readStoreRecord(d.dir)
	if err != nil {
		return backupResult{}, fmt.Errorf("backup: %w", err)
	}
	snap, st, err := d.engine.Snapshot(ctx)
	if err != nil {
		return backupResult{}, fmt.Errorf("backup: %w", err)
	}
	defer snap.Discard()
	hdr := backupHeader{Created: time.Now().UTC().Truncate(time.Second), ReadTs: snap.ReadTs(),
		Lineage: hex.EncodeToString(st.Lineage[:]), Store: rec, MetaKeyFile: keyFile}
	name := backupName(hdr.Created, hdr.ReadTs, st.Lineage)
	where, size, err := target.write(ctx, name, func(w io.Writer) error {
		return writeBackup(w, &hdr, d.metaKey, snap, progress)
	})
	if err != nil {
		return backupResult{}, fmt.Errorf("backup to %s: %w", target, err)
	}
	snap.Discard() // it holds Badger's garbage collection back
	res := backupResult{Where: where, ReadTs: hdr.ReadTs, Bytes: size}
	horizon, err := prune(ctx, target, name, hdr.ReadTs, st.Lineage, req.Keep, &res)
	if err != nil {
		// The snapshot is written; only the pruning (and so the release) waits.
		res.Warning = err.Error()
		return res, nil
	}
	if res.Released, err = d.engine.ReleaseDeferred(ctx, horizon); err != nil {
		res.Warning = fmt.Sprintf("deleting chunk objects no snapshot needs: %v (the next backup tries again)", err)
	}
	return res, nil
}

// writeBackup writes a whole backup file: header, then the encrypted snapshot.
func writeBackup(w io.Writer, hdr *backupHeader, metaKey []byte, snap *meta.Snapshot, progress func(int64)) error {
	cw := &countingWriter{w: w, report: progress}
	key, err := writeBackupHeader(cw, hdr, metaKey)
	if err != nil {
		return err
	}
	enc, err := sio.EncryptWriter(cw, backupSioConfig(key))
	clear(key)
	if err != nil {
		return err
	}
	if _, err := snap.WriteTo(enc); err != nil {
		return err
	}
	return enc.Close()
}

// prune keeps the keep newest snapshots of this lineage in the target (always the one
// just written) and deletes the others; it returns the horizon: the oldest kept read
// timestamp. A snapshot it fails to delete counts as kept.
func prune(ctx context.Context, target backupTarget, written string, readTs uint64, lineage [16]byte, keep int, res *backupResult) (uint64, error) {
	res.Kept = 1
	if target.single() {
		return readTs, nil
	}
	snaps, err := target.list(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing %s to prune it: %w", target, err)
	}
	ours := hex.EncodeToString(lineage[:8])
	var mine []parsedName
	for _, s := range snaps {
		if p, ok := parseBackupName(s.Name); ok && p.lineage == ours && p.name != written {
			mine = append(mine, p)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return newer(mine[i], mine[j]) })
	horizon := readTs
	var errs []error
	for i, p := range mine {
		if i < keep-1 {
			horizon = min(horizon, p.readTs)
			res.Kept++
			continue
		}
		if err := target.remove(ctx, p.name); err != nil {
			errs = append(errs, err)
			horizon = min(horizon, p.readTs)
			res.Kept++
			continue
		}
		res.Pruned = append(res.Pruned, p.name)
	}
	if len(errs) > 0 {
		return horizon, fmt.Errorf("pruning %s: %w", target, errors.Join(errs...))
	}
	return horizon, nil
}

func (d *dataStore) listBackups(ctx context.Context, req backupRequest) (backupResult, error) {
	status, err := d.engine.BackupStatus(ctx)
	if err != nil {
		return backupResult{}, err
	}
	res := backupResult{On: status.On, Horizon: status.State.Horizon, Last: status.State.Last, Deferred: status.Deferred}
	target, err := d.backupTarget(req.To)
	if err != nil {
		if req.To == "" {
			return res, nil // a local store without --to: nothing to list but the state
		}
		return res, err
	}
	res.Target = target.String()
	if target.single() {
		return res, nil
	}
	snaps, err := target.list(ctx)
	if err != nil {
		return res, err
	}
	ours := hex.EncodeToString(status.State.Lineage[:8])
	for _, s := range snaps {
		if p, ok := parseBackupName(s.Name); ok && (!status.On || p.lineage == ours) {
			s.ReadTs, s.Created = p.readTs, p.created
			res.Snapshots = append(res.Snapshots, s)
		}
	}
	return res, nil
}

// ---------------------------------------------------------------------------------------
// Targets

type backupTarget interface {
	fmt.Stringer
	// write makes name from what fill writes, whole or not at all.
	write(ctx context.Context, name string, fill func(io.Writer) error) (where string, size int64, err error)
	list(ctx context.Context) ([]backupSnapshot, error)
	remove(ctx context.Context, name string) error
	single() bool // one snapshot only, replaced by the next
}

// backupTarget resolves --to ("" = the S3 store).
func (d *dataStore) backupTarget(to string) (backupTarget, error) {
	if to == "" {
		named, ok := d.store.(objstore.NamedStore)
		if !ok {
			return nil, fmt.Errorf("data directory %s keeps its chunk objects in %s, on this host: give --to DIR (or FILE) on another disk or host, and copy objects/ there too",
				d.dir, filepath.Join(d.dir, objectsDir))
		}
		url := fmt.Sprint(named)
		if b, ok := named.(interface {
			Bucket() string
			Prefix() string
		}); ok {
			url = s3URL(b.Bucket(), b.Prefix())
		}
		return &s3Target{s: named, url: url}, nil
	}
	if !filepath.IsAbs(to) {
		return nil, fmt.Errorf("--to %s: want an absolute path: %w", to, fs.ErrInvalid)
	}
	if rel, err := filepath.Rel(d.dir, to); err == nil && !strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("--to %s is inside the data directory %s, which is what a backup is for losing: %w", to, d.dir, fs.ErrInvalid)
	}
	st, err := os.Stat(to)
	switch {
	case err == nil && st.IsDir():
		return dirTarget(to), nil
	case err == nil && !st.Mode().IsRegular():
		return nil, fmt.Errorf("--to %s is neither a directory nor a file: %w", to, fs.ErrInvalid)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("--to %s: %w", to, err)
	}
	if st, err := os.Stat(filepath.Dir(to)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--to %s: its directory does not exist: %w", to, fs.ErrInvalid)
	}
	return fileTarget(to), nil
}

// s3Target keeps snapshots as named objects in the S3 store.
type s3Target struct {
	s   objstore.NamedStore
	url string // s3://BUCKET[/PREFIX]
}

func (t *s3Target) String() string { return t.url + "/" + objstore.BackupsDir }
func (t *s3Target) single() bool   { return false }

func (t *s3Target) write(ctx context.Context, name string, fill func(io.Writer) error) (string, int64, error) {
	pr, pw := io.Pipe()
	filled := make(chan error, 1)
	go func() {
		err := fill(pw)
		pw.CloseWithError(err)
		filled <- err
	}()
	size, err := t.s.PutNamed(ctx, name, pr)
	pr.CloseWithError(errors.New("the upload ended")) // unblocks fill if the upload gave up
	ferr := <-filled
	switch {
	case err != nil: // the upload's own error says more than fill's broken pipe
		return "", 0, err
	case ferr != nil: // a failed fill fails the upload too (it reads the error): a safety net
		return "", 0, ferr
	}
	return t.String() + name, size, nil
}

func (t *s3Target) list(ctx context.Context) ([]backupSnapshot, error) {
	objs, err := t.s.ListNamed(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backupSnapshot, 0, len(objs))
	for _, o := range objs {
		out = append(out, backupSnapshot{Name: o.Name, Size: o.Size})
	}
	return out, nil
}

func (t *s3Target) remove(ctx context.Context, name string) error { return t.s.DeleteNamed(ctx, name) }

// dirTarget keeps snapshots as files in a directory.
type dirTarget string

func (t dirTarget) String() string { return string(t) + "/" }
func (t dirTarget) single() bool   { return false }

func (t dirTarget) write(ctx context.Context, name string, fill func(io.Writer) error) (string, int64, error) {
	path := filepath.Join(string(t), name)
	size, err := writeFileFrom(ctx, path, fill)
	return path, size, err
}

func (t dirTarget) list(context.Context) ([]backupSnapshot, error) {
	ents, err := os.ReadDir(string(t))
	if err != nil {
		return nil, err
	}
	var out []backupSnapshot
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), backupExt) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, backupSnapshot{Name: e.Name(), Size: info.Size()})
	}
	return out, nil
}

func (t dirTarget) remove(_ context.Context, name string) error {
	if err := objstore.CheckName(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(string(t), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// fileTarget is one backup file.
type fileTarget string

func (t fileTarget) String() string { return string(t) }
func (t fileTarget) single() bool   { return true }

func (t fileTarget) write(ctx context.Context, _ string, fill func(io.Writer) error) (string, int64, error) {
	size, err := writeFileFrom(ctx, string(t), fill)
	return string(t), size, err
}

func (t fileTarget) list(context.Context) ([]backupSnapshot, error) { return nil, nil }
func (t fileTarget) remove(context.Context, string) error           { return nil }

// writeFileFrom writes path (mode 0600) from fill through a temporary file beside it,
// synced and renamed into place, so that path is the old file or the whole new one.
func writeFileFrom(ctx context.Context, path string, fill func(io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	cw := &countingWriter{w: &ctxWriter{ctx, tmp}}
	err = fill(cw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDirOf(path)
	}
	return cw.n.Load(), err
}

func syncDirOf(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxWriter stops a write to a local file when ctx is done (a mount stopping mid-backup).
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// countingWriter counts bytes and reports the count (report may be nil).
type countingWriter struct {
	w      io.Writer
	n      atomic.Int64
	report func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	total := c.n.Add(int64(n))
	if c.report != nil {
		c.report(total)
	}
	return n, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.report != nil {
		c.report(c.n)
	}
	return n, err
}

// ---------------------------------------------------------------------------------------
// The admin socket's endpoint: POST /v1/backup <- backupRequest -> 200, application/x-ndjson:
// {"bytes": N} lines while it runs, then {"result": {...}, "done": true} or {"error": {...}}.

type backupEvent struct {
	Bytes  int64         `json:"bytes,omitempty"`
	Result *backupResult `json:"result,omitempty"`
	Done   bool          `json:"done,omitempty"`
	Error  *adminError   `json:"error,omitempty"`
}

// registerBackupRoutes adds the backup endpoint to the admin socket, when b can back up.
func registerBackupRoutes(mux *http.ServeMux, b adminBackend, log *slog.Logger) {
	bb, ok := b.(backupBackend)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		var in backupRequest
		if !decodeBody(w, log, r, &in) {
			return
		}
		send := streamEvents[backupEvent](w)
		log.Info("admin: backup", "op", in.Op, "to", in.To, "keep", in.Keep)
		res, err := bb.Backup(r.Context(), in, func(n int64) { send(backupEvent{Bytes: n}, false) })
		if err != nil {
			log.Warn("admin: backup failed", "op", in.Op, "err", err)
			send(backupEvent{Error: toAdminError(err)}, true)
			return
		}
		send(backupEvent{Result: &res, Done: true}, true)
	})
}

func (c *adminClient) Backup(ctx context.Context, req backupRequest, progress func(int64)) (backupResult, error) {
	resp, err := c.request(ctx, http.MethodPost, "/v1/backup", req)
	if err != nil {
		return backupResult{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev backupEvent
		if err := readEvent(ctx, dec, &ev, "the backup"); err != nil {
			return backupResult{}, err
		}
		switch {
		case ev.Error != nil:
			return backupResult{}, ev.Error.err()
		case ev.Done && ev.Result != nil:
			return *ev.Result, nil
		case progress != nil:
			progress(ev.Bytes)
		}
	}
}

// ---------------------------------------------------------------------------------------
// ssefs backup

func runBackup(args []string, stdout, stderr io.Writer) error {
	c := newCommandFlags("backup")
	var req backupRequest
	var list, disable bool
	c.f.StringVar(&req.To, "to", "", "an existing directory for the snapshots, or a backup file (default: the S3 store's bucket)")
	c.f.IntVar(&req.Keep, "keep", defaultBackupKeep, "snapshots of this store to keep in the directory or bucket")
	c.f.BoolVar(&list, "list", false, "list the snapshots and how many chunk objects wait for deletion")
	c.f.BoolVar(&disable, "disable", false, "stop keeping chunk objects for the snapshots, and delete those kept")
	if err := c.parse(args, backupUsage, stdout); err != nil {
		return err
	}
	if c.f.NArg() != 0 {
		return usageError{fmt.Sprintf("backup takes no arguments, got %q (see 'ssefs help backup')", c.f.Args())}
	}
	req.Op = opBackup
	switch {
	case list && disable:
		return usageError{"give --list or --disable, not both"}
	case list:
		req.Op = opList
	case disable:
		req.Op = opDisable
	}
	if req.Keep < 1 {
		return usageError{fmt.Sprintf("--keep %d: keep at least 1", req.Keep)}
	}
	if req.To != "" {
		abs, err := filepath.Abs(req.To)
		if err != nil {
			return usageError{fmt.Sprintf("--to: %v", err)}
		}
		req.To = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, closeFn, err := openBackupBackend(ctx, c.store(), stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, isTerminal(stderr), time.Now(), 2*time.Second, 250*time.Millisecond, bytesProgressLine("backup", 0), nil)
	res, err := b.Backup(ctx, req, prog.update)
	prog.finish()
	if cerr := closeFn(); err == nil && cerr != nil {
		err = fmt.Errorf("closing data directory %s: %w", c.dataDir, cerr)
	}
	if err != nil {
		return err
	}
	printBackupResult(stdout, req.Op, res)
	if res.Warning != "" {
		fmt.Fprintf(stderr, "ssefs: warning: %s\n", res.Warning)
	}
	return nil
}

// openBackupBackend is openAdmin for backups: the serving process, or the directory itself.
func openBackupBackend(ctx context.Context, cfg storeConfig, stderr io.Writer) (backupBackend, func() error, error) {
	b, closeFn, err := openAdmin(ctx, cfg, stderr)
	if err != nil {
		return nil, nil, err
	}
	bb, ok := b.(backupBackend)
	if !ok {
		closeFn()
		return nil, nil, fmt.Errorf("the data directory's backend %T cannot back up", b)
	}
	return bb, closeFn, nil
}

func printBackupResult(w io.Writer, op string, res backupResult) {
	switch op {
	case opDisable:
		fmt.Fprintf(w, "backup: chunk objects are no longer kept for snapshots; %d kept ones deleted (existing snapshots may miss chunks when restored)\n", res.Released)
	case opList:
		if res.Target != "" {
			fmt.Fprintf(w, "snapshots in %s:\n", res.Target)
		}
		for _, s := range res.Snapshots {
			fmt.Fprintf(w, "  %s  %s  %s\n", s.Name, humanBytes(s.Size), s.Created.Format(time.RFC3339))
		}
		state := "off (no backup yet, or --disable)"
		if res.On {
			state = fmt.Sprintf("on, %d chunk objects wait for newer snapshots", res.Deferred)
			if res.Last > 0 {
				state += ", last backup " + time.Unix(res.Last, 0).UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(w, "deferred deletion: %s\n", state)
	default:
		fmt.Fprintf(w, "backup: %s (%s); %d kept, %d pruned, %d chunk objects no snapshot needs deleted\n",
			res.Where, humanBytes(res.Bytes), res.Kept, len(res.Pruned), res.Released)
	}
}

// bytesProgressLine shows bytes done (of total, if known) and the rate.
func bytesProgressLine(what string, total int64) func(int64, time.Duration) string {
	return func(n int64, elapsed time.Duration) string {
		s := fmt.Sprintf("%s: %s", what, humanBytes(n))
		frac := 0.0
		if total > 0 {
			frac = float64(n) / float64(total)
			s = fmt.Sprintf("%s: %s  %s of %s", what, progressBar(frac), humanBytes(n), humanBytes(total))
		}
		if secs := elapsed.Seconds(); secs > 0 {
			s += fmt.Sprintf(" (%.1f MiB/s)", float64(n)/secs/(1<<20))
		}
		return s + etaSuffix(frac, elapsed)
	}
}

// ---------------------------------------------------------------------------------------
// ssefs restore

func runRestore(args []string, stdout, stderr io.Writer) error {
	c := newCommandFlags("restore")
	var from string
	c.f.StringVar(&from, "from", "", "the backup file to restore (default: the newest snapshot in the S3 store of --store)")
	storeFlags := addObjStoreFlags(c.f)
	if err := c.parse(args, restoreUsage, stdout); err != nil {
		return err
	}
	if c.f.NArg() != 0 {
		return usageError{fmt.Sprintf("restore takes no arguments, got %q (see 'ssefs help restore')", c.f.Args())}
	}
	if err := storeFlags.check(); err != nil {
		return err
	}
	if from == "" && storeFlags.store == "" {
		return usageError{"restore needs --store s3://BUCKET[/PREFIX] (the store whose newest snapshot to restore) or --from FILE"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &restorer{c: c, storeFlags: storeFlags, from: from, stdout: stdout, stderr: stderr, log: log}
	return r.run(ctx)
}

type restorer struct {
	c              *commandFlags
	storeFlags     *objStoreFlags
	from           string
	stdout, stderr io.Writer
	log            *slog.Logger

	dir, tmp   string
	movedObjs  bool // NEW/objects was moved into tmp
	source     string
	sourceSize int64
}

func (r *restorer) run(ctx context.Context) (err error) {
	if r.dir, err = filepath.Abs(r.c.dataDir); err != nil {
		return fmt.Errorf("--data-dir %s: %w", r.c.dataDir, err)
	}
	haveObjects, err := checkRestoreDir(r.dir)
	if err != nil {
		return err
	}
	body, hdr, raw, err := r.open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	if hdr.Store == nil && !haveObjects {
		return fmt.Errorf("%s is a snapshot of a data directory that kept its chunk objects in DATA/objects: copy that objects/ directory to %s first",
			r.source, filepath.Join(r.dir, objectsDir))
	}
	if hdr.Store == nil && r.storeFlags.store != "" {
		return fmt.Errorf("%s is a snapshot of a data directory that kept its chunk objects in DATA/objects, not in %s %s",
			r.source, r.storeFlags.src("store"), s3URL(r.storeFlags.bucket, r.storeFlags.prefix))
	}
	if hdr.Store != nil && r.storeFlags.store != "" && s3URL(r.storeFlags.bucket, r.storeFlags.prefix) != hdr.Store.URL {
		return fmt.Errorf("%s is a snapshot of the store %s, not of %s %s", r.source, hdr.Store.URL,
			r.storeFlags.src("store"), s3URL(r.storeFlags.bucket, r.storeFlags.prefix))
	}
	if err := os.MkdirAll(filepath.Dir(r.dir), 0o755); err != nil {
		return fmt.Errorf("--data-dir %s: %w", r.dir, err)
	}
	if r.tmp, err = os.MkdirTemp(filepath.Dir(r.dir), "."+filepath.Base(r.dir)+".restoring-"); err != nil {
		return fmt.Errorf("--data-dir %s: %w", r.dir, err)
	}
	defer func() {
		if err != nil {
			r.undo()
		}
	}()
	if err := os.Chmod(r.tmp, 0o700); err != nil {
		return err
	}
	metaKey, err := r.unseal(ctx, hdr)
	if err != nil {
		return err
	}
	defer clear(metaKey)
	if err := r.load(raw, metaKey, body); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(r.tmp, metaKeyFile), hdr.MetaKeyFile, nil); err != nil {
		return fmt.Errorf("writing %s: %w", metaKeyFile, err)
	}
	if hdr.Store != nil {
		rec := *hdr.Store
		rec.Ready = true // the marker is the old directory's, and stays
		if err := writeStoreRecord(r.tmp, &rec); err != nil {
			return err
		}
	}
	if haveObjects {
		if err := os.Rename(filepath.Join(r.dir, objectsDir), filepath.Join(r.tmp, objectsDir)); err != nil {
			return fmt.Errorf("moving %s into the restored data directory: %w", filepath.Join(r.dir, objectsDir), err)
		}
		r.movedObjs = true
	}
	rep, err := r.check(ctx)
	if err != nil {
		return err
	}
	if err := os.Remove(r.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--data-dir %s: %w", r.dir, err)
	}
	if err := os.Rename(r.tmp, r.dir); err != nil {
		return fmt.Errorf("moving the restored data directory into place at %s: %w", r.dir, err)
	}
	if err := syncDirOf(r.dir); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "restore: %s from %s (taken %s)\n", r.dir, r.source, hdr.Created.Format(time.RFC3339))
	for _, f := range rep.Findings {
		if f.Kind.Inconsistency() {
			fmt.Fprintln(r.stdout, f.String())
		}
	}
	opt := fs.FsckOptions{}
	fmt.Fprintln(r.stdout, fsckSummary(&rep, opt))
	if n := rep.Inconsistencies(); n > 0 {
		return reportedError{fmt.Sprintf("restored, but %d inconsistencies", n)}
	}
	return nil
}

// checkRestoreDir accepts a data directory that does not exist, is empty, or holds only
// objects/ (a local store's objects, copied over); it says whether objects/ is there.
func checkRestoreDir(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("--data-dir %s: %w", dir, err)
	}
	objects := false
	for _, e := range ents {
		if e.Name() == objectsDir && e.IsDir() {
			objects = true
			continue
		}
		return false, fmt.Errorf("--data-dir %s is not empty (it holds %s): restore makes a new data directory, and never overwrites one", dir, e.Name())
	}
	return objects, nil
}

// open finds the snapshot and reads its header.
func (r *restorer) open(ctx context.Context) (io.ReadCloser, *backupHeader, []byte, error) {
	var body io.ReadCloser
	if r.from != "" {
		f, err := os.Open(r.from)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--from: %w", err)
		}
		if st, err := f.Stat(); err == nil {
			r.sourceSize = st.Size()
		}
		body, r.source = f, r.from
	} else {
		s3, err := restoreS3(r.storeFlags, nil)
		if err != nil {
			return nil, nil, nil, err
		}
		defer s3.Close()
		name, err := newestSnapshot(ctx, s3)
		if err != nil {
			return nil, nil, nil, err
		}
		rc, size, err := s3.GetNamed(ctx, name)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading snapshot %s: %w", name, err)
		}
		body, r.source, r.sourceSize = rc, s3URL(s3.Bucket(), s3.Prefix())+"/"+objstore.BackupsDir+name, size
	}
	hdr, raw, err := readBackupHeader(body)
	if err != nil {
		body.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", r.source, err)
	}
	return body, hdr, raw, nil
}

// newestSnapshot picks the snapshot with the highest read timestamp in the store.
func newestSnapshot(ctx context.Context, s3 *objstore.S3) (string, error) {
	objs, err := s3.ListNamed(ctx)
	if err != nil {
		return "", err
	}
	var best *parsedName
	for _, o := range objs {
		if p, ok := parseBackupName(o.Name); ok && (best == nil || newer(p, *best)) {
			best = &p
		}
	}
	if best == nil {
		return "", fmt.Errorf("%s/%s holds no snapshot ('ssefs backup' writes them)", s3URL(s3.Bucket(), s3.Prefix()), objstore.BackupsDir)
	}
	return best.name, nil
}

// unseal opens the snapshot's meta.key with the configured KMS, as a mount opens its own.
func (r *restorer) unseal(ctx context.Context, hdr *backupHeader) ([]byte, error) {
	k, err := r.c.kms.open(ctx, r.dir, r.stderr, r.log)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	key, name, err := keys.OpenMetaKeyFile(ctx, k.kms, hdr.MetaKeyFile)
	if err != nil {
		if name == "" {
			return nil, fmt.Errorf("%s: the sealed metadata key: %w", r.source, err)
		}
		merr := metaKeyError(r.source, name, k, err)
		return nil, withMessage(strings.Replace(merr.Error(), "data directory "+r.source+" is sealed", "backup "+r.source+" is sealed", 1), merr)
	}
	return key, nil
}

// load decrypts the snapshot into tmp/meta, reading it to its authenticated end.
func (r *restorer) load(raw, metaKey []byte, body io.Reader) error {
	prog := newProgress(r.stderr, isTerminal(r.stderr), time.Now(), 2*time.Second, 250*time.Millisecond,
		bytesProgressLine("restore", r.sourceSize), nil)
	defer prog.finish()
	plain, err := openBackupBody(&countingReader{r: body, report: prog.update}, raw, metaKey)
	if err != nil {
		return fmt.Errorf("%s: %w", r.source, err)
	}
	// Badger's Load stops at the end of the last complete list; the DARE stream must end
	// there too, or something was cut or appended.
	tail := &tailCheck{r: plain}
	if err := meta.Restore(filepath.Join(r.tmp, metaDir), bytes32(metaKey), tail, meta.Options{Logger: r.log}); err != nil {
		var damaged sio.Error
		if errors.As(err, &damaged) {
			return fmt.Errorf("%s is damaged or was tampered with (%w); nothing was restored", r.source, damaged)
		}
		if tail.err != nil {
			return fmt.Errorf("%s could not be read to its end (%w); nothing was restored", r.source, tail.err)
		}
		return fmt.Errorf("%s: %w; nothing was restored", r.source, err)
	}
	if _, err := io.Copy(io.Discard, tail); err != nil {
		return fmt.Errorf("%s is damaged or was tampered with at its end (%w); nothing was restored", r.source, err)
	}
	return nil
}

// bytes32 copies the key: Badger may keep the slice it is given.
func bytes32(k []byte) []byte { return append([]byte(nil), k...) }

// tailCheck remembers a read error, so a failed load can tell damage from other causes.
type tailCheck struct {
	r   io.Reader
	err error
}

func (t *tailCheck) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// check opens the restored directory as fsck does and checks every chunk record against
// the object store (without decrypting: --quick).
func (r *restorer) check(ctx context.Context) (fs.FsckReport, error) {
	cfg := r.c.store()
	cfg.dataDir = r.tmp
	cfg.keepOrphans = true
	cfg.objStore = r.storeFlags
	d, err := openDataDir(ctx, cfg, r.stderr, r.log)
	if err != nil {
		return fs.FsckReport{}, fmt.Errorf("opening the restored data directory: %w", err)
	}
	prog := newFsckProgress(r.stderr, isTerminal(r.stderr), time.Now())
	rep, err := d.engine.Fsck(ctx, fs.FsckOptions{Progress: prog.update})
	prog.finish()
	if cerr := d.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return rep, fmt.Errorf("checking the restored data directory: %w", err)
	}
	return rep, nil
}

// undo removes what a failed restore made, and gives back objects/.
func (r *restorer) undo() {
	if r.tmp == "" {
		return
	}
	if r.movedObjs {
		if err := os.Rename(filepath.Join(r.tmp, objectsDir), filepath.Join(r.dir, objectsDir)); err != nil {
			fmt.Fprintf(r.stderr, "ssefs: could not move %s back to %s: %v\n", filepath.Join(r.tmp, objectsDir), r.dir, err)
			return // keep tmp rather than lose the objects
		}
	}
	os.RemoveAll(r.tmp)
}

// restoreS3 makes the S3 store client for a restore: the flags, with rec's settings
// (a snapshot's store record) where a flag is not given, as openObjStore does.
func restoreS3(flags *objStoreFlags, rec *storeRecord) (*objstore.S3, error) {
	var upd storeRecord
	if rec != nil {
		upd = *rec
	}
	if flags.store != "" {
		upd.URL = s3URL(flags.bucket, flags.prefix)
	}
	if upd.URL == "" {
		return nil, usageError{"give --store s3://BUCKET[/PREFIX]: where the snapshots are"}
	}
	upd, cfg, err := s3Settings(flags, upd)
	if err != nil {
		return nil, err
	}
	s3, err := objstore.NewS3(cfg)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", upd.URL, err)
	}
	return s3, nil
}

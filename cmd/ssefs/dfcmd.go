package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ssefs/ssefs/fs"
)

const dfUsage = `Usage: ssefs df [--json] [--bytes] [--bucket BUCKET] [flags]

Shows what every bucket (or only --bucket) holds, one line each and a total:

  FILES    regular files (a file with several hard links counts once)
  DIRS     directories below the bucket
  SIZE     the sum of the files' sizes
  STORED   what their content takes in the object store: the exact length of their
           chunk objects, as each chunk's record has it (fsck checks the objects against
           it). DARE adds 32 bytes per 64 KiB of content; the store's own block rounding
           is not counted. Multipart upload parts and files deleted while still open are
           included (shown below the table as unlinked). Tiny files keep their
           ciphertext in the metadata instead (shown below the table as inline).
  KEYS     the KMS keys that seal the files' keys, with how many files each seals;
           SSE-C counts files sealed with an S3 client's own key.

Below the table: the unlinked files, the size of the metadata, and the room left in the
object store where it knows it (a local directory). Symlinks, devices and FIFOs are
counted in the JSON output ("others").

If an 'ssefs mount' or 'ssefs serve' holds the data directory, that process answers
through DATA/admin.sock; otherwise df opens the data directory itself, with the KMS given
here (the metadata is encrypted). Either way it reads the metadata once, in one snapshot,
and asks the KMS nothing: key names are in the files' sealed-key records. A file being
written counts with what has been flushed.

--json prints one object, for scripts:
  {"data_dir": "/var/lib/ssefs", "served_by_pid": 1234,
   "buckets": [{"name": "photos", "default_key": "photos-key", "files": 5, "dirs": 1,
                "others": 0, "logical_bytes": 1000, "stored_bytes": 0, "inline_bytes": 1160,
                "chunks": 5, "unlinked_files": 0, "unlinked_stored_bytes": 0,
                "keys": [{"name": "photos-key", "files": 5}], "sse_c_files": 0}],
   "total": {... the same fields, without name and default_key ...},
   "metadata_bytes": 1048576, "store": {"total_bytes": ..., "avail_bytes": ...}}
served_by_pid is left out when df opened the data directory itself, default_key when a
bucket has none, store when the object store does not say.

Examples:
  ssefs df
  ssefs df --bucket photos --bytes
  ssefs df --data-dir /var/lib/ssefs --json | jq '.buckets[] | {name, stored_bytes}'
`

// usageBackend is what df needs of a data directory: an open dataStore, or the admin
// socket of the ssefs serving it.
type usageBackend interface {
	Usage(ctx context.Context, bucket string) (storeUsage, error)
}

// storeUsage is the engine's usage of a data directory and what its metadata takes on
// disk.
type storeUsage struct {
	fs.Usage
	MetadataBytes uint64
}

func (d *dataStore) Usage(ctx context.Context, bucket string) (storeUsage, error) {
	u, err := d.engine.Usage(ctx, bucket)
	if err != nil {
		return storeUsage{}, err
	}
	meta, err := diskUsage(filepath.Join(d.dir, metaDir))
	if err != nil {
		return storeUsage{}, fmt.Errorf("size of the metadata: %w", err)
	}
	return storeUsage{u, meta}, nil
}

// diskUsage is what the files under dir take on disk, as du counts it: Badger's value
// log is a sparse file of its full size from the start.
func diskUsage(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) && path != dir {
				return nil // removed meanwhile (a compaction)
			}
			return err
		}
		info, err := d.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += uint64(st.Blocks) * 512
		}
		return nil
	})
	return n, err
}

func (c *adminClient) Usage(ctx context.Context, bucket string) (storeUsage, error) {
	path := "/v1/usage"
	if bucket != "" {
		path += "?bucket=" + url.QueryEscape(bucket)
	}
	var out usageJSON
	if err := c.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return storeUsage{}, err
	}
	return out.usage(), nil
}

// usageJSON is 'ssefs df --json', and what GET /v1/usage answers (without data_dir and
// served_by_pid).
type usageJSON struct {
	DataDir       string             `json:"data_dir,omitempty"`
	ServedByPID   int                `json:"served_by_pid,omitempty"`
	Buckets       []bucketUsageJSON  `json:"buckets"`
	Total         bucketUsageJSON    `json:"total"`
	MetadataBytes uint64             `json:"metadata_bytes"`
	Store         *storeCapacityJSON `json:"store,omitempty"`
}

type bucketUsageJSON struct {
	Name                string         `json:"name,omitempty"`
	DefaultKey          string         `json:"default_key,omitempty"`
	Files               uint64         `json:"files"`
	Dirs                uint64         `json:"dirs"`
	Others              uint64         `json:"others"`
	LogicalBytes        uint64         `json:"logical_bytes"`
	StoredBytes         uint64         `json:"stored_bytes"`
	InlineBytes         uint64         `json:"inline_bytes"`
	Chunks              uint64         `json:"chunks"`
	UnlinkedFiles       uint64         `json:"unlinked_files"`
	UnlinkedStoredBytes uint64         `json:"unlinked_stored_bytes"`
	Keys                []keyUsageJSON `json:"keys"`
	SSECFiles           uint64         `json:"sse_c_files"`
}

type keyUsageJSON struct {
	Name  string `json:"name"`
	Files uint64 `json:"files"`
}

type storeCapacityJSON struct {
	TotalBytes uint64 `json:"total_bytes"`
	AvailBytes uint64 `json:"avail_bytes"`
}

func toUsageJSON(u storeUsage) usageJSON {
	j := usageJSON{Buckets: []bucketUsageJSON{}, Total: toBucketUsageJSON(u.Total), MetadataBytes: u.MetadataBytes}
	for _, b := range u.Buckets {
		j.Buckets = append(j.Buckets, toBucketUsageJSON(b))
	}
	if u.StoreTotal > 0 {
		j.Store = &storeCapacityJSON{TotalBytes: u.StoreTotal, AvailBytes: u.StoreAvail}
	}
	return j
}

func toBucketUsageJSON(b fs.BucketUsage) bucketUsageJSON {
	j := bucketUsageJSON{Name: b.Name, DefaultKey: b.DefaultKey, Files: b.Files, Dirs: b.Dirs, Others: b.Others,
		LogicalBytes: b.LogicalBytes, StoredBytes: b.StoredBytes, InlineBytes: b.InlineBytes, Chunks: b.Chunks,
		UnlinkedFiles: b.Unlinked, UnlinkedStoredBytes: b.UnlinkedBytes, Keys: []keyUsageJSON{}, SSECFiles: b.SSEC}
	for _, k := range b.Keys {
		j.Keys = append(j.Keys, keyUsageJSON{k.Name, k.Files})
	}
	return j
}

func (j usageJSON) usage() storeUsage {
	u := storeUsage{Usage: fs.Usage{Total: j.Total.usage()}, MetadataBytes: j.MetadataBytes}
	for _, b := range j.Buckets {
		u.Buckets = append(u.Buckets, b.usage())
	}
	if j.Store != nil {
		u.StoreTotal, u.StoreAvail = j.Store.TotalBytes, j.Store.AvailBytes
	}
	return u
}

func (j bucketUsageJSON) usage() fs.BucketUsage {
	b := fs.BucketUsage{Name: j.Name, DefaultKey: j.DefaultKey, Files: j.Files, Dirs: j.Dirs, Others: j.Others,
		LogicalBytes: j.LogicalBytes, StoredBytes: j.StoredBytes, InlineBytes: j.InlineBytes, Chunks: j.Chunks,
		Unlinked: j.UnlinkedFiles, UnlinkedBytes: j.UnlinkedStoredBytes, SSEC: j.SSECFiles}
	for _, k := range j.Keys {
		b.Keys = append(b.Keys, fs.KeyUsage{Name: k.Name, Files: k.Files})
	}
	return b
}

func runDf(args []string, stdout, stderr io.Writer) error {
	c := newCommandFlags("df")
	var bucket string
	var asJSON, exact bool
	c.f.StringVar(&bucket, "bucket", "", "only this bucket")
	c.f.BoolVar(&asJSON, "json", false, "print one JSON object (see above)")
	c.f.BoolVarP(&exact, "bytes", "b", false, "print sizes in bytes rather than KiB, MiB, GiB, ...")
	if err := c.parse(args, dfUsage, stdout); err != nil {
		return err
	}
	if c.f.NArg() != 0 {
		return usageError{fmt.Sprintf("df takes no arguments, got %q (see 'ssefs help df'; one bucket: --bucket)", c.f.Args())}
	}
	if bucket != "" {
		if err := fs.ValidBucketName(bucket); err != nil {
			return usageError{fmt.Sprintf("--bucket: %v", err)}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := c.store()
	// Offline, the engine must leave unlinked inodes alone: df reports them, it does
	// not reclaim them.
	cfg.keepOrphans = true
	b, closeFn, err := openAdmin(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	err = df(ctx, b, bucket, asJSON, exact, stdout)
	return errors.Join(err, closeFn())
}

func df(ctx context.Context, b adminBackend, bucket string, asJSON, exact bool, stdout io.Writer) error {
	info, err := b.Info(ctx)
	if err != nil {
		return err
	}
	ub, ok := b.(usageBackend)
	if !ok {
		return fmt.Errorf("data directory %s: usage: %w", info.DataDir, fs.ErrNotSupported)
	}
	u, err := ub.Usage(ctx, bucket)
	switch {
	case errors.Is(err, fs.ErrNotExist) && bucket != "":
		return withMessage(fmt.Sprintf("bucket %s does not exist in data directory %s", bucket, info.DataDir), err)
	case err != nil:
		return fmt.Errorf("usage of data directory %s: %w", info.DataDir, err)
	}
	remote := 0
	if _, ok := b.(*adminClient); ok {
		remote = info.PID
	}
	if asJSON {
		j := toUsageJSON(u)
		j.DataDir, j.ServedByPID = info.DataDir, remote
		return writeJSON(stdout, j)
	}
	printUsage(stdout, u, bucket == "", exact)
	fmt.Fprintf(stdout, "Data directory: %s", info.DataDir)
	if remote != 0 {
		fmt.Fprintf(stdout, " (answered by ssefs pid %d)", remote)
	}
	fmt.Fprintln(stdout)
	return nil
}

// printUsage prints df's table and the notes below it.
func printUsage(w io.Writer, u storeUsage, withTotal, exact bool) {
	size := func(n uint64) string {
		if exact {
			return strconv.FormatUint(n, 10)
		}
		return humanBytes(int64(n))
	}
	keys := func(b fs.BucketUsage) string {
		var parts []string
		for _, k := range b.Keys {
			parts = append(parts, fmt.Sprintf("%s (%d)", k.Name, k.Files))
		}
		if b.SSEC > 0 {
			parts = append(parts, fmt.Sprintf("SSE-C (%d)", b.SSEC))
		}
		if len(parts) == 0 {
			return "-"
		}
		return strings.Join(parts, ", ")
	}
	rows := [][]string{{"BUCKET", "FILES", "DIRS", "SIZE", "STORED", "DEFAULT KEY", "KEYS"}}
	row := func(name, dflt string, b fs.BucketUsage) {
		if dflt == "" {
			dflt = "-"
		}
		rows = append(rows, []string{name, strconv.FormatUint(b.Files, 10), strconv.FormatUint(b.Dirs, 10),
			size(b.LogicalBytes), size(b.StoredBytes), dflt, keys(b)})
	}
	for _, b := range u.Buckets {
		row(b.Name, b.DefaultKey, b)
	}
	if withTotal {
		row("total", "", u.Total)
	}
	// Names and keys flush left, numbers right, as df and ls -l align them.
	right := []bool{false, true, true, true, true, false, false}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, cell := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-len(cell))
			if right[i] {
				line.WriteString(pad + cell)
			} else if i < len(r)-1 {
				line.WriteString(cell + pad)
			} else {
				line.WriteString(cell)
			}
		}
		fmt.Fprintln(w, line.String())
	}
	fmt.Fprintln(w)
	if t := u.Total; t.InlineBytes > 0 {
		fmt.Fprintf(w, "Inline: %s of tiny files' ciphertext, kept in the metadata\n", size(t.InlineBytes))
	}
	if t := u.Total; t.Unlinked > 0 {
		fmt.Fprintf(w, "Unlinked: %d files, %s stored (parts of multipart uploads in progress, files deleted while open)\n",
			t.Unlinked, size(t.UnlinkedBytes))
	}
	fmt.Fprintf(w, "Metadata: %s on disk\n", size(u.MetadataBytes))
	if u.StoreTotal > 0 {
		fmt.Fprintf(w, "Object store: %s available of %s\n", size(u.StoreAvail), size(u.StoreTotal))
	}
}

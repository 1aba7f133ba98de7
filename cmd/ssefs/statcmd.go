package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

const statUsage = `Usage: ssefs stat [--json] FILE...

Shows how files on a running ssefs mount are encrypted, from their read-only
'ssefs.encryption' attribute: the SSE type, the KMS key that seals the file's key, the
algorithm and cipher, when the key was sealed, and what the content takes in the object
store. Like 'mc stat' for an object, with the store's details added.

With --json it prints a JSON array with one object per file, for scripts:
  [{"name": "/mnt/ssefs/photos/a.jpg", "size": 1234, "bucket": "photos",
    "sse": "SSE-KMS", "key": "photos-key", "context": null, "algorithm": "...",
    "cipher": "...", "chunk_size": 1048576, "sealed_at": "2026-01-02T03:04:05Z",
    "chunks": 1, "stored_bytes": 1298}]
Fields the mount does not report are null. A file that fails is reported on stderr and
left out; the exit code is then 1.

Examples:
  ssefs stat /mnt/ssefs/photos/2026/beach.jpg
  ssefs stat /mnt/photos/*.jpg
  ssefs stat --json /mnt/photos/*.jpg | jq -r '.[] | select(.key == "old-key") | .name'

Flags:
`

// encryptionXattrName is the attribute fs/fuse serves on every regular file.
const encryptionXattrName = "ssefs.encryption"

func runStat(args []string, stdout, stderr io.Writer) error {
	f := pflag.NewFlagSet("stat", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	asJSON := f.Bool("json", false, "print a JSON array, one object per file")
	help := f.BoolP("help", "h", false, "show this help")
	if err := f.Parse(args); err != nil {
		return usageError{fmt.Sprintf("stat: %v", err)}
	}
	if *help {
		showHelp(stdout, statUsage, f)
		return errHelp
	}
	if f.NArg() == 0 {
		return usageError{"stat needs at least one FILE (see 'ssefs help stat')"}
	}
	now := time.Now()
	failed := 0
	out := []statJSON{}
	for i, path := range f.Args() {
		st, err := statFile(path)
		if err != nil {
			// Each file's failure is its own line; the others are still shown.
			fmt.Fprintf(stderr, "ssefs: %s\n", oneLine(err))
			failed++
			continue
		}
		if *asJSON {
			out = append(out, toStatJSON(st))
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printStat(stdout, st, now)
	}
	if *asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return reportedError{fmt.Sprintf("%d of %d files failed", failed, f.NArg())}
	}
	return nil
}

// fileStat is what ssefs stat shows about one file.
type fileStat struct {
	Name string
	Size int64
	Enc  encryptionInfo
}

// encryptionInfo is the parsed ssefs.encryption attribute. Numbers are -1 and the time
// zero where the attribute does not say.
type encryptionInfo struct {
	Type        string
	Key         string
	Algorithm   string
	Cipher      string
	Bucket      string
	ChunkSize   int64
	SealedAt    time.Time
	Chunks      int64
	StoredBytes int64
	Context     map[string]string // the SSE-KMS encryption context an S3 client gave
}

func statFile(path string) (fileStat, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStat{}, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	switch {
	case st.IsDir():
		return fileStat{}, fmt.Errorf("%s: is a directory", path)
	case !st.Mode().IsRegular():
		return fileStat{}, fmt.Errorf("%s: not a regular file", path)
	}
	v, err := getxattr(path, encryptionXattrName)
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
		return fileStat{}, fmt.Errorf("%s: not a file on an ssefs mount", path)
	case err != nil:
		return fileStat{}, fmt.Errorf("%s: reading its %s attribute: %w", path, encryptionXattrName, err)
	}
	info, err := parseEncryptionXattr(v)
	if err != nil {
		return fileStat{}, fmt.Errorf("%s: %s attribute %q: %w", path, encryptionXattrName, v, err)
	}
	return fileStat{Name: path, Size: st.Size(), Enc: info}, nil
}

// getxattr reads a whole attribute, retrying if it grows between the size query and the read.
func getxattr(path, name string) (string, error) {
	for range 4 {
		n, err := unix.Getxattr(path, name, nil)
		if err != nil {
			return "", err
		}
		buf := make([]byte, n+64)
		n, err = unix.Getxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", unix.ERANGE
}

// parseEncryptionXattr parses "type=SSE-S3 key=NAME algorithm=... cipher=... bucket=B
// chunk-size=N sealed-at=RFC3339|unknown chunks=N stored-bytes=N [context=BASE64URL-JSON]".
// Fields it does not know
// are ignored and missing ones left unset, so older and newer mounts both show.
func parseEncryptionXattr(v string) (encryptionInfo, error) {
	info := encryptionInfo{ChunkSize: -1, Chunks: -1, StoredBytes: -1}
	for _, field := range strings.Fields(v) {
		k, val, ok := strings.Cut(field, "=")
		if !ok {
			return info, fmt.Errorf("field %q is not NAME=VALUE", field)
		}
		var err error
		switch k {
		case "type":
			info.Type = val
		case "key":
			info.Key = val
		case "algorithm":
			info.Algorithm = val
		case "cipher":
			info.Cipher = val
		case "bucket":
			info.Bucket = val
		case "chunk-size":
			info.ChunkSize, err = strconv.ParseInt(val, 10, 64)
		case "chunks":
			info.Chunks, err = strconv.ParseInt(val, 10, 64)
		case "stored-bytes":
			info.StoredBytes, err = strconv.ParseInt(val, 10, 64)
		case "context":
			var js []byte
			if js, err = base64.RawURLEncoding.DecodeString(val); err == nil {
				err = json.Unmarshal(js, &info.Context)
			}
		case "sealed-at":
			if val != "unknown" && val != "" {
				info.SealedAt, err = time.Parse(time.RFC3339, val)
			}
		}
		if err != nil {
			return info, fmt.Errorf("%s: %w", k, err)
		}
	}
	if info.Type == "" {
		return info, errors.New("no type")
	}
	return info, nil
}

func printStat(w io.Writer, st fileStat, now time.Time) {
	row := func(label, value string) { fmt.Fprintf(w, "%-12s: %s\n", label, value) }
	e := st.Enc
	row("Name", st.Name)
	row("Size", sizeString(st.Size))
	if e.Bucket != "" {
		row("Bucket", e.Bucket)
	}
	row("Encrypted", e.Type)
	switch {
	case e.Key != "":
		row("Key", e.Key)
	case e.Type == "SSE-C":
		row("Key", "(the client's own key: not stored)")
	}
	if len(e.Context) > 0 {
		// Keys sorted, so the same context always prints the same; '&' and '<' as written.
		var js strings.Builder
		enc := json.NewEncoder(&js)
		enc.SetEscapeHTML(false)
		enc.Encode(e.Context)
		row("Context", strings.TrimSuffix(js.String(), "\n"))
	}
	row("Algorithm", orUnknown(e.Algorithm))
	row("Cipher", orUnknown(e.Cipher))
	if e.SealedAt.IsZero() {
		row("Key sealed", "unknown")
	} else {
		row("Key sealed", fmt.Sprintf("%s (%s)", e.SealedAt.UTC().Format("2006-01-02 15:04:05 MST"), ago(now.Sub(e.SealedAt))))
	}
	if e.Chunks >= 0 {
		chunks := strconv.FormatInt(e.Chunks, 10)
		if e.ChunkSize > 0 {
			chunks += " (chunk size " + humanBytes(e.ChunkSize) + ")"
		}
		row("Chunks", chunks)
	}
	if e.StoredBytes >= 0 {
		row("Stored size", sizeString(e.StoredBytes))
	}
}

// statJSON is one file in 'ssefs stat --json'. What the attribute does not say is null.
type statJSON struct {
	Name        string            `json:"name"`
	Size        int64             `json:"size"`
	Bucket      *string           `json:"bucket"`
	SSE         string            `json:"sse"`
	Key         *string           `json:"key"`
	Context     map[string]string `json:"context"`
	Algorithm   *string           `json:"algorithm"`
	Cipher      *string           `json:"cipher"`
	ChunkSize   *int64            `json:"chunk_size"`
	SealedAt    *time.Time        `json:"sealed_at"`
	Chunks      *int64            `json:"chunks"`
	StoredBytes *int64            `json:"stored_bytes"`
}

func toStatJSON(st fileStat) statJSON {
	e := st.Enc
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	num := func(n int64) *int64 {
		if n < 0 {
			return nil
		}
		return &n
	}
	j := statJSON{Name: st.Name, Size: st.Size, Bucket: str(e.Bucket), SSE: e.Type, Key: str(e.Key),
		Context: e.Context, Algorithm: str(e.Algorithm), Cipher: str(e.Cipher),
		ChunkSize: num(e.ChunkSize), Chunks: num(e.Chunks), StoredBytes: num(e.StoredBytes)}
	if !e.SealedAt.IsZero() {
		t := e.SealedAt.UTC()
		j.SealedAt = &t
	}
	return j
}

// writeJSON prints v indented, with '<', '>' and '&' as they are: the reader is a script
// or a person, never an HTML page.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func sizeString(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%s (%d bytes)", humanBytes(n), n)
}

// humanBytes gives a size in binary units, as ls -h and mc do.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// ago says how long ago d was, in the largest unit that fits.
func ago(d time.Duration) string {
	if d < 0 {
		return "in the future: check the clocks"
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s ago", unit)
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		return plural(int64(d/(24*time.Hour)), "day")
	case d < 2*365*24*time.Hour:
		return plural(int64(d/(30*24*time.Hour)), "month")
	}
	return plural(int64(d/(365*24*time.Hour)), "year")
}

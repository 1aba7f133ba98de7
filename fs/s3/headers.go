package s3

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
)

const (
	// maxPutSize is the largest single PUT (and part), as S3 has it.
	maxPutSize = 5 << 30
	// maxUserMetaSize bounds the x-amz-meta-* names and values of one object, as S3's
	// 2 KB: they are xattrs the mount shows too, not a data store.
	maxUserMetaSize = 2 << 10
	metaPrefix      = "X-Amz-Meta-"
	defaultCType    = "binary/octet-stream"
)

// checkKey refuses a key that cannot be a path, with S3's codes and a message naming
// the problem. Nothing is stored for a refused key.
func checkKey(key string) error {
	if len(key) > 1024 {
		return errKeyTooLong
	}
	if err := fs.ValidObjectKey(key); err != nil {
		return errInvalidArgument("Object key is not valid here (keys are paths: no empty, '.' or '..' segments, no leading '/', no NUL, segments of at most 255 bytes): " + err.Error())
	}
	if backslashDotSegment(key) {
		return errInvalidArgument(fmt.Sprintf("Object key %q is not valid here: a '.' or '..' segment between backslashes would climb out of the bucket on any system or tool that takes '\\' as a path separator (Windows, Samba, a copy to another store).", key))
	}
	return nil
}

// backslashDotSegment reports whether key, cut at '/' and '\' both, has a "." or ".."
// segment. The mount stores '\' as an ordinary byte of a name, so such a key escapes
// nothing here; it is refused all the same (as MinIO does) because the name travels: a
// Windows client of the mount, an rsync to NTFS or an export to another store would
// read "..\x" as a way out of the bucket. A '\' elsewhere in a key is an ordinary byte.
func backslashDotSegment(key string) bool {
	if !strings.Contains(key, `\`) {
		return false
	}
	for seg := range strings.FieldsFuncSeq(key, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// userMeta collects the x-amz-meta-* headers, names lower-cased.
func userMeta(h http.Header) (map[string]string, error) {
	var m map[string]string
	size := 0
	for name, vals := range h {
		if len(name) <= len(metaPrefix) || !strings.EqualFold(name[:len(metaPrefix)], metaPrefix) {
			continue
		}
		k := strings.ToLower(name[len(metaPrefix):])
		v := strings.Join(vals, ",")
		size += len(k) + len(v)
		if m == nil {
			m = make(map[string]string)
		}
		m[k] = v
	}
	if size > maxUserMetaSize {
		return nil, errMetadataTooLarge
	}
	return m, nil
}

// systemMeta collects the HTTP headers S3 keeps with an object. aws-chunked is the
// transfer's coding, not the object's, and is dropped.
func systemMeta(h http.Header) fs.SystemMeta {
	return fs.SystemMeta{
		ContentType:        h.Get("Content-Type"),
		ContentEncoding:    sigv4.ContentEncoding(h),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentLanguage:    h.Get("Content-Language"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
	}
}

func quoteETag(etag string) string { return `"` + etag + `"` }

// setObjectHeaders writes what GET and HEAD return about an object, with the
// response-* query overrides.
func setObjectHeaders(h http.Header, info *fs.ObjectInfo, q url.Values) {
	ct := info.System.ContentType
	if ct == "" {
		ct = defaultCType
	}
	h.Set("Content-Type", ct)
	set := func(name, v string) {
		if v != "" {
			h.Set(name, v)
		}
	}
	set("Content-Encoding", info.System.ContentEncoding)
	set("Content-Disposition", info.System.ContentDisposition)
	set("Content-Language", info.System.ContentLanguage)
	set("Cache-Control", info.System.CacheControl)
	set("Expires", info.System.Expires)
	for _, o := range [...]struct{ param, header string }{
		{"response-content-type", "Content-Type"},
		{"response-content-language", "Content-Language"},
		{"response-expires", "Expires"},
		{"response-cache-control", "Cache-Control"},
		{"response-content-disposition", "Content-Disposition"},
		{"response-content-encoding", "Content-Encoding"},
	} {
		set(o.header, q.Get(o.param))
	}
	h.Set("ETag", quoteETag(info.ETag))
	h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	for k, v := range info.UserMeta {
		// Set directly: http.Header.Set would canonicalise the lower-case name.
		h["X-Amz-Meta-"+k] = []string{v}
	}
	setSSEHeaders(h, info.SSEType, info.KeyName, info.ClientKeyMD5, info.KMSContext)
}

// ---- conditions ----

// etagMatches implements If-Match/If-None-Match list matching: "*" matches anything,
// quotes and weak prefixes are ignored (S3 compares ETags strongly, but clients
// sometimes send them without quotes).
func etagMatches(header, etag string) bool {
	for c := range strings.SplitSeq(header, ",") {
		c = strings.TrimSpace(c)
		c = strings.TrimPrefix(c, "W/")
		if c == "*" || strings.Trim(c, `"`) == etag {
			return true
		}
	}
	return false
}

// checkConditions applies If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since (with names prefixed by prefix: "" or "X-Amz-Copy-Source-") in the
// order RFC 9110 gives them. A GET/HEAD whose If-None-Match or If-Modified-Since fails
// is 304; everything else that fails is 412 (copies always 412).
func checkConditions(h http.Header, prefix string, etag string, mod time.Time, read bool) error {
	mod = mod.Truncate(time.Second)
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !etagMatches(v, etag) {
			return errPreconditionFailed
		}
	} else if v := h.Get(prefix + "If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && mod.After(t) {
			return errPreconditionFailed
		}
	}
	notModified := errPreconditionFailed
	if read {
		notModified = errNotModified
	}
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		if etagMatches(v, etag) {
			return notModified
		}
	} else if v := h.Get(prefix + "If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !mod.After(t) {
			return notModified
		}
	}
	return nil
}

// ---- ranges ----

// parseRange interprets a Range header against an object of size bytes. ok is false
// when the whole object is to be sent: no header, a unit other than bytes, a
// syntactically invalid or multi-range value (S3 serves those whole, as RFC 9110
// allows). An unsatisfiable range is errInvalidRange.
func parseRange(v string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	if a == "" {
		n, perr := parseDigits(b)
		if perr != nil {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errInvalidRange
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	first, perr := parseDigits(a)
	if perr != nil {
		return 0, 0, false, nil
	}
	last := size - 1
	if b != "" {
		if last, perr = parseDigits(b); perr != nil || last < first {
			return 0, 0, false, nil
		}
	}
	if first >= size {
		return 0, 0, false, errInvalidRange
	}
	last = min(last, size-1)
	return first, last - first + 1, true, nil
}

// parseDigits parses a non-negative decimal without sign or spaces.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseCopySourceRange parses x-amz-copy-source-range, which must be "bytes=first-last"
// exactly; the range is checked against the source's size later.
func parseCopySourceRange(v string) (first, last int64, err error) {
	spec, found := strings.CutPrefix(v, "bytes=")
	a, b, cut := strings.Cut(spec, "-")
	if !found || !cut {
		return 0, 0, errInvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last.")
	}
	first, err1 := parseDigits(a)
	last, err2 := parseDigits(b)
	if err1 != nil || err2 != nil || last < first {
		return 0, 0, errInvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last, first <= last.")
	}
	return first, last, nil
}

// parseCopySource parses x-amz-copy-source: "[/]bucket/key[?versionId=v]", URL-encoded.
// The query is cut off before decoding, so a key holding an encoded "?" survives.
func parseCopySource(v string) (bucket, key, versionID string, err error) {
	src, query, _ := strings.Cut(v, "?")
	if query != "" {
		q, qerr := url.ParseQuery(query)
		if qerr != nil {
			return "", "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
		}
		versionID = q.Get("versionId")
	}
	dec, derr := url.PathUnescape(src)
	if derr != nil {
		return "", "", "", errInvalidArgument("Copy Source is not properly URL-encoded.")
	}
	dec = strings.TrimPrefix(dec, "/")
	bucket, key, _ = strings.Cut(dec, "/")
	if bucket == "" || key == "" {
		return "", "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	return bucket, key, versionID, nil
}

// nullVersion is the version ID of every object: buckets are never versioned.
const nullVersion = "null"

// checkVersionID accepts only what an unversioned bucket has: no version, or "null".
func checkVersionID(v string) error {
	if v != "" && v != nullVersion {
		return errNoSuchVersion
	}
	return nil
}

// partNumber parses a partNumber query value.
func partNumber(v string) (int, error) {
	n, err := parseDigits(v)
	if err != nil || n < 1 || n > 10000 {
		return 0, errInvalidArgument(fmt.Sprintf("Part number must be an integer between 1 and 10000, inclusive (got %.20q).", v))
	}
	return int(n), nil
}

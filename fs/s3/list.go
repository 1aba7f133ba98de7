package s3

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ssefs/ssefs/fs"
)

// s3URLEncode encodes a name for encoding-type=url as S3 does: form encoding (space
// as '+', which every client decodes with a query unescape), '/' left as is.
func s3URLEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// listParams are the parameters both ListObjects versions share.
type listParams struct {
	prefix, delimiter string
	maxKeys           int
	encode            bool
}

func parseListParams(q url.Values) (listParams, error) {
	p := listParams{prefix: q.Get("prefix"), delimiter: q.Get("delimiter"), maxKeys: fs.MaxListKeys}
	if v, ok := q["max-keys"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return p, errInvalidArgument("Argument max-keys must be an integer between 0 and 2147483647.")
		}
		p.maxKeys = min(n, fs.MaxListKeys)
	}
	switch e := q.Get("encoding-type"); e {
	case "":
	case "url":
		p.encode = true
	default:
		return p, errInvalidArgument("Invalid Encoding Method specified in Request: only url is supported.")
	}
	return p, nil
}

func (p *listParams) enc(s string) string {
	if p.encode && s != "" {
		return s3URLEncode(s)
	}
	return s
}

// list runs one page (an empty one for max-keys=0, which the engine would read as
// "the default").
func (s *Server) list(req *request, p listParams, after string) (fs.ListResult, error) {
	if p.maxKeys == 0 {
		if err := s.checkBucket(req); err != nil {
			return fs.ListResult{}, err
		}
		return fs.ListResult{}, nil
	}
	return s.e.ListObjects(req.ctx, req.bucket, fs.ListOptions{
		Prefix: p.prefix, Delimiter: p.delimiter, After: after, MaxKeys: p.maxKeys,
	})
}

func (p *listParams) fill(res *listBucketResult, page *fs.ListResult, withOwner bool) {
	for _, o := range page.Objects {
		e := listEntry{Key: p.enc(o.Key), LastModified: isoTime(o.ModTime), ETag: quoteETag(o.ETag),
			Size: o.Size, StorageClass: "STANDARD"}
		if withOwner {
			e.Owner = &theOwner
		}
		res.Contents = append(res.Contents, e)
	}
	for _, cp := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: p.enc(cp)})
	}
}

func (s *Server) listObjectsV1(w http.ResponseWriter, req *request, q url.Values) error {
	p, err := parseListParams(q)
	if err != nil {
		return err
	}
	marker := q.Get("marker")
	page, err := s.list(req, p, marker)
	if err != nil {
		return err
	}
	m := p.enc(marker)
	res := listBucketResult{Xmlns: xmlns, Name: req.bucket, Prefix: p.enc(p.prefix), Marker: &m,
		MaxKeys: p.maxKeys, Delimiter: p.enc(p.delimiter), IsTruncated: page.Truncated}
	if p.encode {
		res.EncodingType = "url"
	}
	if page.Truncated {
		// S3 sends NextMarker only with a delimiter; MinIO always, which clients that
		// page without a delimiter (using the last key) do not mind.
		res.NextMarker = p.enc(page.Next)
	}
	p.fill(&res, &page, true)
	return writeXML(w, &res)
}

// Continuation tokens are opaque to clients: the base64 of the key to continue after.
func encodeToken(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) > 1024 {
		return "", errInvalidArgument("The continuation token provided is incorrect.")
	}
	return string(b), nil
}

func (s *Server) listObjectsV2(w http.ResponseWriter, req *request, q url.Values) error {
	p, err := parseListParams(q)
	if err != nil {
		return err
	}
	after := q.Get("start-after")
	token, hasToken := q["continuation-token"]
	if hasToken {
		if after, err = decodeToken(token[0]); err != nil {
			return err
		}
	}
	page, err := s.list(req, p, after)
	if err != nil {
		return err
	}
	n := len(page.Objects) + len(page.CommonPrefixes)
	res := listBucketResult{Xmlns: xmlns, Name: req.bucket, Prefix: p.enc(p.prefix), KeyCount: &n,
		MaxKeys: p.maxKeys, Delimiter: p.enc(p.delimiter), IsTruncated: page.Truncated,
		StartAfter: p.enc(q.Get("start-after"))}
	if hasToken {
		res.ContinuationToken = token[0]
	}
	if p.encode {
		res.EncodingType = "url"
	}
	if page.Truncated {
		res.NextContinuationToken = encodeToken(page.Next)
	}
	p.fill(&res, &page, q.Get("fetch-owner") == "true")
	return writeXML(w, &res)
}

// listObjectVersions lists an unversioned bucket the way S3 does: each object once,
// with version ID "null". A version-id-marker other than "null" (or empty) names a
// version that cannot exist.
func (s *Server) listObjectVersions(w http.ResponseWriter, req *request, q url.Values) error {
	p, err := parseListParams(q)
	if err != nil {
		return err
	}
	keyMarker, vidMarker := q.Get("key-marker"), q.Get("version-id-marker")
	switch {
	case vidMarker != "" && keyMarker == "":
		return errInvalidArgument("A version-id marker cannot be specified without a key marker.")
	case vidMarker != "" && vidMarker != nullVersion:
		return errInvalidArgument("Invalid version id specified")
	}
	page, err := s.list(req, p, keyMarker)
	if err != nil {
		return err
	}
	res := listVersionsResult{Xmlns: xmlns, Name: req.bucket, Prefix: p.enc(p.prefix),
		KeyMarker: p.enc(keyMarker), VersionIdMarker: vidMarker, MaxKeys: p.maxKeys,
		Delimiter: p.enc(p.delimiter), IsTruncated: page.Truncated}
	if p.encode {
		res.EncodingType = "url"
	}
	if page.Truncated {
		res.NextKeyMarker = p.enc(page.Next)
		res.NextVersionIdMarker = nullVersion
	}
	for _, o := range page.Objects {
		res.Versions = append(res.Versions, versionEntry{Key: p.enc(o.Key), VersionId: nullVersion, IsLatest: true,
			LastModified: isoTime(o.ModTime), ETag: quoteETag(o.ETag), Size: o.Size, Owner: theOwner, StorageClass: "STANDARD"})
	}
	for _, cp := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: p.enc(cp)})
	}
	return writeXML(w, &res)
}

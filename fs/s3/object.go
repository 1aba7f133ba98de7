package s3

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/ssefs/ssefs/fs"
)

// sizedBody returns the request body for an object or part write: its size must be
// known and at most maxPutSize (S3's MissingContentLength and EntityTooLarge). A
// streamed body of unknown decoded length is bounded while it is read.
func sizedBody(req *request) (io.Reader, error) {
	n := req.body.Size()
	switch {
	case n > maxPutSize:
		return nil, errEntityTooLarge
	case n >= 0:
		return req.body, nil
	case req.r.ContentLength < 0 && !strings.Contains(req.r.Header.Get("X-Amz-Content-Sha256"), "STREAMING"):
		return nil, errMissingLength
	}
	return &limitReader{r: req.body, left: maxPutSize}, nil
}

// limitReader fails with EntityTooLarge once more than left bytes came.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.left -= int64(n); l.left < 0 {
		return n, errEntityTooLarge
	}
	return n, err
}

// refuseConditionalWrite: S3's conditional writes (If-Match / If-None-Match on PUT and
// CompleteMultipartUpload) would need the check and the link in one engine
// transaction. Ignoring them would silently break a client's lock or
// create-if-absent, so they are refused instead.
func refuseConditionalWrite(r *http.Request) bool {
	return r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != ""
}

// putOptions reads what a new object is: encryption, metadata, owner.
func (s *Server) putOptions(r *http.Request) (fs.PutOptions, error) {
	if r.Header.Get("X-Amz-Tagging") != "" {
		// Objects keep no tags: storing the object without them would lose what the
		// client asked to keep, so the request is refused instead.
		return fs.PutOptions{}, errTaggingNotImplemented
	}
	sse, err := s.parsePutSSE(r)
	if err != nil {
		return fs.PutOptions{}, err
	}
	um, err := userMeta(r.Header)
	if err != nil {
		return fs.PutOptions{}, err
	}
	return fs.PutOptions{SSE: sse, UserMeta: um, System: systemMeta(r.Header), Owner: s.owner}, nil
}

func (s *Server) putObject(w http.ResponseWriter, req *request) error {
	if refuseConditionalWrite(req.r) {
		return errNotImplemented
	}
	opt, err := s.putOptions(req.r)
	if err != nil {
		return err
	}
	body, err := sizedBody(req)
	if err != nil {
		return err
	}
	// The engine reads body to io.EOF before it links the object (fill, then
	// linkObject), and fails on any other error, so a body that fails sigv4's checks
	// (signature, Content-MD5, checksum, length) stores nothing.
	info, err := s.e.PutObject(req.ctx, req.bucket, req.key, body, opt)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", quoteETag(info.ETag))
	setSSEHeaders(h, info.SSEType, info.KeyName, info.ClientKeyMD5, info.KMSContext)
	if c, ok := req.body.Checksum(); ok {
		h.Set("X-Amz-Checksum-"+c.Algorithm, c.Value)
	}
	return nil
}

func (s *Server) getObject(w http.ResponseWriter, req *request, q url.Values) error {
	r := req.r
	clientKey, err := s.parseClientKey(r, ssecObject)
	if err != nil {
		return err
	}
	if err := checkVersionID(q.Get("versionId")); err != nil {
		return err
	}
	// The engine keeps no part boundaries: every object is one part, as for a single PUT.
	if v := q.Get("partNumber"); v != "" {
		if n, err := partNumber(v); err != nil {
			return err
		} else if n != 1 {
			return errInvalidPartNumber
		}
	}
	if r.Method == http.MethodHead {
		info, err := s.e.StatObject(req.ctx, req.bucket, req.key, fs.GetOptions{ClientKey: clientKey})
		if err != nil {
			return err
		}
		return s.serveObject(w, req, q, nil, &info)
	}
	rd, info, err := s.e.OpenObject(req.ctx, req.bucket, req.key, fs.GetOptions{ClientKey: clientKey})
	if err != nil {
		return err
	}
	defer rd.Close()
	return s.serveObject(w, req, q, rd, &info)
}

// serveObject answers GET (rd != nil) or HEAD for an open object.
func (s *Server) serveObject(w http.ResponseWriter, req *request, q url.Values, rd *fs.ObjectReader, info *fs.ObjectInfo) error {
	r := req.r
	if err := checkConditions(r.Header, "", info.ETag, info.ModTime, true); err != nil {
		if errors.Is(err, errNotModified) {
			h := w.Header()
			h.Set("ETag", quoteETag(info.ETag))
			h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
		}
		return err
	}
	start, length, partial, err := parseRange(r.Header.Get("Range"), info.Size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
		return err
	}
	if !partial {
		start, length = 0, info.Size
	}
	h := w.Header()
	setObjectHeaders(h, info, q)
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(info.Size, 10))
		status = http.StatusPartialContent
	}
	if rd == nil || length == 0 {
		w.WriteHeader(status)
		return nil
	}
	// The first block is read before the status goes out, so a failure there (a
	// tampered first chunk, a key just disabled) is a proper S3 error, not a cut body.
	sr := io.NewSectionReader(rd, start, length)
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	buf := *bp
	// A small first block: the status waits for it.
	n, err := io.ReadFull(sr, buf[:min(length, firstBlock)])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errShortObject
	} else if err != nil {
		return err
	}
	w.WriteHeader(status)
	if _, err := w.Write(buf[:n]); err != nil {
		return nil // the client went away; nothing to tell it
	}
	if int64(n) == length {
		return nil
	}
	copied, err := io.CopyBuffer(w, sr, buf)
	if err != nil || int64(n)+copied != length {
		// After the header, only an aborted connection can say the body is incomplete;
		// ServeHTTP does that for any error returned now.
		if err == nil {
			err = errShortObject
		}
		return err
	}
	return nil
}

// firstBlock is what a GET reads before it sends the status line.
const firstBlock = 256 << 10

// bodyBufs are the buffers GET bodies are copied through: a whole chunk, so that each
// read of a large object is one chunk read from the store and decrypted in one go, and
// pooled, so a GET does not allocate (and zero) a megabyte.
var bodyBufs = sync.Pool{New: func() any {
	b := make([]byte, fs.DefaultChunkSize)
	return &b
}}

// errShortObject: the object shrank (through the mount) while it was being sent.
var errShortObject = errors.New("object shorter than announced")

func (s *Server) deleteObject(w http.ResponseWriter, req *request) error {
	if err := checkVersionID(req.r.URL.Query().Get("versionId")); err != nil {
		return err
	}
	if err := s.e.DeleteObject(req.ctx, req.bucket, req.key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getObjectACL(w http.ResponseWriter, req *request) error {
	if _, err := s.e.StatObject(req.ctx, req.bucket, req.key, fs.GetOptions{}); err != nil && !isSSECError(err) {
		return err
	}
	return writeXML(w, fullControlACL())
}

func (s *Server) getObjectTagging(w http.ResponseWriter, req *request) error {
	if _, err := s.e.StatObject(req.ctx, req.bucket, req.key, fs.GetOptions{}); err != nil && !isSSECError(err) {
		return err
	}
	return writeXML(w, &tagging{Xmlns: xmlns})
}

func (s *Server) noContentIfObject(w http.ResponseWriter, req *request) error {
	if _, err := s.e.StatObject(req.ctx, req.bucket, req.key, fs.GetOptions{}); err != nil && !isSSECError(err) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// isSSECError tells that an object exists but needs its SSE-C key to be read: enough
// for calls that only ask whether it exists.
func isSSECError(err error) bool {
	return errors.Is(err, fs.ErrClientKeyRequired) || errors.Is(err, fs.ErrClientKeyMismatch)
}

// ---- DeleteObjects ----

// maxDeleteKeys is S3's limit of keys in one DeleteObjects request.
const maxDeleteKeys = 1000

func parseDeleteRequest(data []byte) (*deleteRequest, error) {
	var d deleteRequest
	if err := decodeXML(data, &d); err != nil {
		return nil, err
	}
	if len(d.Objects) == 0 {
		return nil, errMalformedXML("no Object to delete")
	}
	if len(d.Objects) > maxDeleteKeys {
		return nil, errMalformedXML("more than 1000 objects to delete")
	}
	return &d, nil
}

func (s *Server) deleteObjects(w http.ResponseWriter, req *request) error {
	// AWS requires Content-MD5 or a checksum here; sigv4 verifies one when present and
	// a request without one is accepted, as MinIO does.
	data, err := readXMLBody(req.body, maxDeleteXML)
	if err != nil {
		return err
	}
	d, err := parseDeleteRequest(data)
	if err != nil {
		return err
	}
	if err := s.checkBucket(req); err != nil {
		return err
	}
	res := deleteResult{Xmlns: xmlns}
	for _, o := range d.Objects {
		err := checkVersionID(o.VersionID)
		if err == nil && len(o.Key) > 0 && fs.ValidObjectKey(o.Key) == nil {
			err = s.e.DeleteObject(req.ctx, req.bucket, o.Key)
		} else if err == nil && len(o.Key) == 0 {
			err = errInvalidArgument("An object key is empty.")
		}
		if err != nil {
			ae := toAPIError(err, o.Key)
			if ae.Status >= 500 {
				s.log.Error("s3: delete failed", "bucket", req.bucket, "key", o.Key, "request", req.id, "err", err)
			}
			res.Error = append(res.Error, deleteError{Key: o.Key, Code: ae.Code, Message: ae.Message})
			continue
		}
		if !d.Quiet {
			res.Deleted = append(res.Deleted, deletedEntry{Key: o.Key})
		}
	}
	return writeXML(w, &res)
}

// ---- CopyObject ----

// copySource is a parsed, checked x-amz-copy-source with its SSE-C key and state.
type copySource struct {
	bucket, key string
	opt         fs.GetOptions
	info        fs.ObjectInfo
}

// openCopySource parses the copy source and checks its x-amz-copy-source-if-*
// conditions against what it is now. (The engine opens it again to copy: a change in
// between is copied as it then is, as with any concurrent write.)
func (s *Server) openCopySource(req *request) (*copySource, error) {
	bucket, key, version, err := parseCopySource(req.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return nil, err
	}
	if err := checkVersionID(version); err != nil {
		return nil, err
	}
	if len(key) > 1024 {
		return nil, errKeyTooLong
	}
	clientKey, err := s.parseClientKey(req.r, ssecSource)
	if err != nil {
		return nil, err
	}
	src := &copySource{bucket: bucket, key: key, opt: fs.GetOptions{ClientKey: clientKey}}
	if src.info, err = s.e.StatObject(req.ctx, bucket, key, src.opt); err != nil {
		if errors.Is(err, fs.ErrNoSuchBucket) {
			return nil, errNoSuchBucket
		}
		return nil, err
	}
	check := func(info fs.ObjectInfo) error {
		return checkConditions(req.r.Header, copySourcePrefix, info.ETag, info.ModTime, false)
	}
	if err := check(src.info); err != nil {
		return nil, err
	}
	// Checked again on the version the copy opens, in case a write came in between.
	src.opt.Check = check
	return src, nil
}

func (s *Server) copyObject(w http.ResponseWriter, req *request) error {
	r := req.r
	src, err := s.openCopySource(req)
	if err != nil {
		return err
	}
	replace := false
	switch d := r.Header.Get("X-Amz-Metadata-Directive"); d {
	case "", "COPY":
	case "REPLACE":
		replace = true
	default:
		return errInvalidArgument("Unknown metadata directive: must be COPY or REPLACE.")
	}
	dest, err := s.putOptions(r)
	if err != nil {
		return err
	}
	changesEncryption := r.Header.Get(hdrSSE) != "" || dest.SSE.ClientKey != nil || src.opt.ClientKey != nil
	if src.bucket == req.bucket && src.key == req.key && !replace && !changesEncryption {
		return errInvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	info, err := s.e.CopyObject(req.ctx, src.bucket, src.key, req.bucket, req.key, fs.CopyOptions{
		Source: src.opt, Dest: dest, ReplaceMetadata: replace,
	})
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), info.SSEType, info.KeyName, info.ClientKeyMD5, info.KMSContext)
	return writeXML(w, &copyObjectResult{Xmlns: xmlns, ETag: quoteETag(info.ETag), LastModified: isoTime(info.ModTime)})
}

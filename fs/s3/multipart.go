package s3

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ssefs/ssefs/fs"
)

// uploadOf loads an upload and checks that it is the upload of the request's bucket and
// key: upload IDs are global in the engine, S3 scopes them to the object.
func (s *Server) uploadOf(req *request, id string) (fs.UploadInfo, error) {
	res, err := s.e.ListParts(req.ctx, id, 0, 1)
	if err != nil {
		return fs.UploadInfo{}, err
	}
	if res.Upload.Bucket != req.bucket || res.Upload.Key != req.key {
		return fs.UploadInfo{}, fs.ErrNoSuchUpload
	}
	return res.Upload, nil
}

func (s *Server) createUpload(w http.ResponseWriter, req *request) error {
	if strings.HasSuffix(req.key, "/") {
		return errInvalidArgument("A multipart upload cannot create a directory key (ending in '/').")
	}
	opt, err := s.putOptions(req.r)
	if err != nil {
		return err
	}
	id, err := s.e.CreateUpload(req.ctx, req.bucket, req.key, opt)
	if err != nil {
		return err
	}
	u, err := s.uploadOf(req, id)
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), u.SSEType, u.KeyName, u.ClientKeyMD5, u.KMSContext)
	return writeXML(w, &initiateMultipartUploadResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: id})
}

// partRequest reads what UploadPart and UploadPartCopy share.
func (s *Server) partRequest(req *request, q url.Values) (id string, n int, opt fs.PartOptions, u fs.UploadInfo, err error) {
	id = q.Get("uploadId")
	if n, err = partNumber(q.Get("partNumber")); err != nil {
		return
	}
	if opt.ClientKey, err = s.parseClientKey(req.r, ssecObject); err != nil {
		return
	}
	u, err = s.uploadOf(req, id)
	return
}

func (s *Server) uploadPart(w http.ResponseWriter, req *request, q url.Values) error {
	id, n, opt, u, err := s.partRequest(req, q)
	if err != nil {
		return err
	}
	body, err := sizedBody(req)
	if err != nil {
		return err
	}
	// As PutObject, UploadPart reads the body to io.EOF before it records the part.
	etag, err := s.e.UploadPart(req.ctx, id, n, body, opt)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", quoteETag(etag))
	setSSEHeaders(h, u.SSEType, u.KeyName, u.ClientKeyMD5, u.KMSContext)
	if c, ok := req.body.Checksum(); ok {
		h.Set("X-Amz-Checksum-"+c.Algorithm, c.Value)
	}
	return nil
}

func (s *Server) uploadPartCopy(w http.ResponseWriter, req *request, q url.Values) error {
	id, n, opt, u, err := s.partRequest(req, q)
	if err != nil {
		return err
	}
	src, err := s.openCopySource(req)
	if err != nil {
		return err
	}
	off, length := int64(0), src.info.Size
	if v := req.r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		first, last, err := parseCopySourceRange(v)
		if err != nil {
			return err
		}
		if last >= src.info.Size {
			return errInvalidRange
		}
		off, length = first, last-first+1
	}
	if length > maxPutSize {
		return errEntityTooLarge
	}
	etag, err := s.e.UploadPartCopy(req.ctx, id, n, src.bucket, src.key, off, length, src.opt, opt)
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), u.SSEType, u.KeyName, u.ClientKeyMD5, u.KMSContext)
	return writeXML(w, &copyPartResult{Xmlns: xmlns, ETag: quoteETag(etag), LastModified: isoTime(src.info.ModTime)})
}

// parseCompleteRequest parses a CompleteMultipartUpload document. Order and ETags are
// checked by the engine (InvalidPartOrder, InvalidPart).
func parseCompleteRequest(data []byte) ([]fs.CompletedPart, error) {
	var c completeMultipartUpload
	if err := decodeXML(data, &c); err != nil {
		return nil, err
	}
	if len(c.Parts) == 0 {
		return nil, errMalformedXML("no Part listed")
	}
	if len(c.Parts) > fs.MaxPartNumber {
		return nil, errMalformedXML("more than 10000 parts listed")
	}
	parts := make([]fs.CompletedPart, len(c.Parts))
	for i, p := range c.Parts {
		parts[i] = fs.CompletedPart{Number: p.PartNumber, ETag: strings.TrimSpace(p.ETag)}
	}
	return parts, nil
}

func (s *Server) completeUpload(w http.ResponseWriter, req *request, q url.Values) error {
	id := q.Get("uploadId")
	if refuseConditionalWrite(req.r) {
		return errNotImplemented
	}
	clientKey, err := s.parseClientKey(req.r, ssecObject)
	if err != nil {
		return err
	}
	data, err := readXMLBody(req.body, maxCompleteXML)
	if err != nil {
		return err
	}
	parts, err := parseCompleteRequest(data)
	if err != nil {
		return err
	}
	upload, err := s.uploadOf(req, id)
	if err != nil {
		return err
	}
	type completed struct {
		info fs.ObjectInfo
		err  error
	}
	done := make(chan completed, 1)
	go func() {
		info, err := s.e.CompleteUpload(req.ctx, id, parts, fs.PartOptions{ClientKey: clientKey})
		done <- completed{info, err}
	}()
	loc := "/" + req.bucket + "/" + (&url.URL{Path: req.key}).EscapedPath()
	result := func(info fs.ObjectInfo) *completeMultipartUploadResult {
		return &completeMultipartUploadResult{Xmlns: xmlns, Location: loc, Bucket: req.bucket,
			Key: req.key, ETag: quoteETag(info.ETag)}
	}
	if completeKeepAliveAfter > 0 {
		timer := time.NewTimer(completeKeepAliveAfter)
		select {
		case c := <-done:
			timer.Stop()
			if c.err != nil {
				return c.err
			}
			setSSEHeaders(w.Header(), c.info.SSEType, c.info.KeyName, c.info.ClientKeyMD5, c.info.KMSContext)
			return writeXML(w, result(c.info))
		case <-timer.C:
		}
	}

	// Completing takes long (the engine re-encrypts the parts: seconds per GiB), longer
	// than clients wait for a first byte. As S3 and MinIO do, the status goes out now and
	// whitespace keeps the connection alive; the outcome, an error included, is the body
	// (the AWS SDKs, botocore and minio-go all look for an <Error> in a 200 answer here).
	h := w.Header()
	setSSEHeaders(h, upload.SSEType, upload.KeyName, upload.ClientKeyMD5, upload.KMSContext)
	h.Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	flush(w)
	tick := time.NewTicker(completeKeepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case c := <-done:
			if !s.e.Settle(req.ctx, settleMax) {
				s.log.Warn("s3: the mount's caches did not drop a change in time", "method", req.r.Method, "bucket", req.bucket, "key", req.key, "request", req.id)
			}
			if c.err != nil {
				w.Write(errorBody(s.logError(req, c.err), req, h))
				return nil
			}
			body, err := xml.Marshal(result(c.info))
			if err != nil {
				return fmt.Errorf("encoding the response: %w", err)
			}
			w.Write(body)
			return nil
		case <-tick.C:
			if _, err := w.Write([]byte(" ")); err != nil {
				// The client is gone; the upload completes or fails on its own.
				return nil
			}
			flush(w)
		}
	}
}

// How long CompleteMultipartUpload runs before its answer starts (0: it starts at once),
// and then how often a space is sent to keep the client waiting.
var (
	completeKeepAliveAfter = 10 * time.Second
	completeKeepAliveEvery = 10 * time.Second
)

func flush(w http.ResponseWriter) {
	_ = http.NewResponseController(w).Flush() // an error is the client gone: the next write says so
}

func (s *Server) abortUpload(w http.ResponseWriter, req *request, q url.Values) error {
	id := q.Get("uploadId")
	if _, err := s.uploadOf(req, id); err != nil {
		return err
	}
	if err := s.e.AbortUpload(req.ctx, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// intParam parses an optional non-negative integer query parameter.
func intParam(q url.Values, name string, def int) (int, error) {
	v, ok := q[name]
	if !ok || v[0] == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 0 {
		return 0, errInvalidArgument("Argument " + name + " must be a non-negative integer.")
	}
	return n, nil
}

func (s *Server) listParts(w http.ResponseWriter, req *request, q url.Values) error {
	id := q.Get("uploadId")
	marker, err := intParam(q, "part-number-marker", 0)
	if err != nil {
		return err
	}
	maxParts, err := intParam(q, "max-parts", 1000)
	if err != nil {
		return err
	}
	maxParts = min(maxParts, 1000)
	if _, err := s.uploadOf(req, id); err != nil {
		return err
	}
	res := listPartsResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: id,
		Initiator: theOwner, Owner: theOwner, StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts}
	if maxParts > 0 {
		page, err := s.e.ListParts(req.ctx, id, marker, maxParts)
		if err != nil {
			return err
		}
		res.IsTruncated, res.NextPartNumberMarker = page.Truncated, page.Next
		for _, p := range page.Parts {
			res.Parts = append(res.Parts, partEntry{PartNumber: p.Number, LastModified: isoTime(p.LastModified),
				ETag: quoteETag(p.ETag), Size: p.Size})
		}
		if !page.Truncated && len(page.Parts) > 0 {
			res.NextPartNumberMarker = page.Parts[len(page.Parts)-1].Number
		}
	}
	return writeXML(w, &res)
}

// listUploads answers ListMultipartUploads. A delimiter is ignored (every upload is
// listed, none rolled up into CommonPrefixes): uploads are few and short-lived here,
// and the engine lists them by key only.
func (s *Server) listUploads(w http.ResponseWriter, req *request, q url.Values) error {
	maxUploads, err := intParam(q, "max-uploads", 1000)
	if err != nil {
		return err
	}
	maxUploads = min(maxUploads, 1000)
	encode := false
	switch q.Get("encoding-type") {
	case "":
	case "url":
		encode = true
	default:
		return errInvalidArgument("Invalid Encoding Method specified in Request: only url is supported.")
	}
	enc := func(s string) string {
		if encode && s != "" {
			return s3URLEncode(s)
		}
		return s
	}
	opt := fs.ListUploadsOptions{Prefix: q.Get("prefix"), KeyMarker: q.Get("key-marker"),
		UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: maxUploads}
	res := listMultipartUploadsResult{Xmlns: xmlns, Bucket: req.bucket, KeyMarker: enc(opt.KeyMarker),
		UploadIDMarker: opt.UploadIDMarker, Prefix: enc(opt.Prefix), MaxUploads: maxUploads}
	if encode {
		res.EncodingType = "url"
	}
	if maxUploads == 0 {
		if err := s.checkBucket(req); err != nil {
			return err
		}
		return writeXML(w, &res)
	}
	page, err := s.e.ListUploads(req.ctx, req.bucket, opt)
	if err != nil {
		return err
	}
	res.IsTruncated = page.Truncated
	res.NextKeyMarker, res.NextUploadIDMarker = enc(page.NextKeyMarker), page.NextUploadIDMarker
	for _, u := range page.Uploads {
		res.Uploads = append(res.Uploads, uploadEntry{Key: enc(u.Key), UploadID: u.UploadID, Initiator: theOwner,
			Owner: theOwner, StorageClass: "STANDARD", Initiated: isoTime(u.Initiated)})
	}
	return writeXML(w, &res)
}

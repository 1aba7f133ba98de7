package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
)

// apiError is an S3 error as the client sees it. Handlers return their own as
// *apiError; engine and sigv4 errors are mapped by toAPIError, in this one place.
type apiError struct {
	Code    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return "s3: " + e.Code + ": " + e.Message }

func newErr(code string, status int, msg string) *apiError {
	return &apiError{Code: code, Message: msg, Status: status}
}

func errInvalidArgument(msg string) *apiError {
	return newErr("InvalidArgument", http.StatusBadRequest, msg)
}

func errInvalidRequest(msg string) *apiError {
	return newErr("InvalidRequest", http.StatusBadRequest, msg)
}

func errInvalidBucketName(msg string) *apiError {
	return newErr("InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid: "+msg)
}

func errMalformedXML(msg string) *apiError {
	return newErr("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema: "+msg)
}

var (
	errNotImplemented        = newErr("NotImplemented", http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented.")
	errTaggingNotImplemented = newErr("NotImplemented", http.StatusNotImplemented, "Object tagging (x-amz-tagging) is not implemented: ssefs keeps no tags.")
	errNoSuchKey             = newErr("NoSuchKey", http.StatusNotFound, "The specified key does not exist.")
	errNoSuchBucket          = newErr("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist.")
	errNoSuchBucketPolicy    = newErr("NoSuchBucketPolicy", http.StatusNotFound, "The bucket policy does not exist.")
	errNoSuchTagSet          = newErr("NoSuchTagSet", http.StatusNotFound, "The TagSet does not exist.")
	errNoObjectLockConfig    = newErr("ObjectLockConfigurationNotFoundError", http.StatusNotFound, "Object Lock configuration does not exist for this bucket.")
	errNoSuchLifecycle       = newErr("NoSuchLifecycleConfiguration", http.StatusNotFound, "The lifecycle configuration does not exist.")
	errNoSuchCORS            = newErr("NoSuchCORSConfiguration", http.StatusNotFound, "The CORS configuration does not exist.")
	errNoSuchWebsite         = newErr("NoSuchWebsiteConfiguration", http.StatusNotFound, "The specified bucket does not have a website configuration.")
	errNoReplication         = newErr("ReplicationConfigurationNotFoundError", http.StatusNotFound, "The replication configuration was not found.")
	errNoEncryptionConfig    = newErr("ServerSideEncryptionConfigurationNotFoundError", http.StatusNotFound, "The server side encryption configuration was not found.")
	errPreconditionFailed    = newErr("PreconditionFailed", http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold.")
	errInvalidRange          = newErr("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable.")
	errMissingLength         = newErr("MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header.")
	errEntityTooLarge        = newErr("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size.")
	errKeyTooLong            = newErr("KeyTooLongError", http.StatusBadRequest, "Your key is too long.")
	errMetadataTooLarge      = newErr("MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size.")
	errNoSuchVersion         = newErr("NoSuchVersion", http.StatusNotFound, "The specified version does not exist (versioning is not supported).")
	errInvalidPartNumber     = newErr("InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable, "The requested partnumber is not satisfiable.")
	errSSECNeedsTLS          = errInvalidRequest("Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.")
	errNotModified           = &apiError{Code: "NotModified", Status: http.StatusNotModified}
)

// toAPIError maps any error a handler returned to the S3 error the client gets. The
// engine's errors are matched with errors.Is, the specific S3 kinds before the general
// ones they are wrapped with. key == "" means a bucket-level request.
func toAPIError(err error, key string) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &apiError{Code: se.Code, Message: se.Message, Status: se.Status}
	}
	switch {
	case errors.Is(err, fs.ErrNoSuchBucket):
		return errNoSuchBucket
	case errors.Is(err, fs.ErrNoSuchUpload):
		return newErr("NoSuchUpload", http.StatusNotFound, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.")
	case errors.Is(err, fs.ErrInvalidPartOrder):
		return newErr("InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order by part number.")
	case errors.Is(err, fs.ErrInvalidPart):
		return newErr("InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
	case errors.Is(err, fs.ErrEntityTooSmall):
		return newErr("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size.")
	case errors.Is(err, fs.ErrNotSSEC):
		return errInvalidRequest("The encryption parameters are not applicable to this object.")
	case errors.Is(err, fs.ErrClientKeyRequired):
		return errInvalidRequest("The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
	case errors.Is(err, fs.ErrClientKeyMismatch):
		return newErr("AccessDenied", http.StatusForbidden, "Access Denied: the SSE-C key does not match the key the object was encrypted with.")
	case errors.Is(err, fs.ErrKeyNotFound):
		// A key that is gone reads like a disabled one: secure erasure is a 403.
		return newErr("AccessDenied", http.StatusForbidden, "Access Denied: the KMS key does not exist.")
	case errors.Is(err, fs.ErrKeyDisabled):
		return newErr("AccessDenied", http.StatusForbidden, "Access Denied: the KMS key is disabled.")
	case errors.Is(err, fs.ErrKeyForbidden):
		return newErr("AccessDenied", http.StatusForbidden, "Access Denied: prohibited by KMS policy.")
	case errors.Is(err, fs.ErrAccess), errors.Is(err, fs.ErrPermission):
		return newErr("AccessDenied", http.StatusForbidden, "Access Denied.")
	case errors.Is(err, fs.ErrNotExist):
		if key == "" {
			return errNoSuchBucket
		}
		return errNoSuchKey
	case errors.Is(err, fs.ErrNotEmpty):
		return newErr("BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty (or has multipart uploads in progress).")
	case errors.Is(err, fs.ErrExist):
		if key == "" {
			return newErr("BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it.")
		}
		return newErr("OperationAborted", http.StatusConflict, "A conflicting operation is in progress against this resource.")
	case errors.Is(err, fs.ErrNotDir):
		// Names the problem as MinIO does: the key and the tree do not fit together.
		return newErr("XMinioParentIsObject", http.StatusBadRequest, "Object-prefix is already an object, please choose a different object-prefix name.")
	case errors.Is(err, fs.ErrIsDir):
		return newErr("XMinioObjectExistsAsDirectory", http.StatusConflict, "Object name already exists as a directory.")
	case errors.Is(err, fs.ErrNameTooLong):
		if len(key) > 1024 {
			return errKeyTooLong
		}
		return errInvalidArgument("A name is too long: " + err.Error())
	case errors.Is(err, fs.ErrTooBig):
		return errMetadataTooLarge
	case errors.Is(err, fs.ErrInvalid):
		return errInvalidArgument(err.Error())
	case errors.Is(err, fs.ErrNotSupported):
		return errNotImplemented
	case errors.Is(err, fs.ErrCorrupt):
		return newErr("InternalError", http.StatusInternalServerError, "The stored data failed authentication; nothing was returned.")
	case errors.Is(err, fs.ErrUnavailable):
		return newErr("ServiceUnavailable", http.StatusServiceUnavailable, "The KMS or the object store is unavailable. Please retry.")
	case errors.Is(err, fs.ErrNoSpace):
		return newErr("XMinioStorageFull", http.StatusInsufficientStorage, "Storage backend has run out of space.")
	case errors.Is(err, context.Canceled):
		return newErr("RequestTimeout", http.StatusBadRequest, "The request was canceled.")
	}
	return newErr("InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again.")
}

type errorResponse struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	Key        string `xml:",omitempty"`
	BucketName string `xml:",omitempty"`
	Resource   string
	RequestID  string `xml:"RequestId"`
	HostID     string `xml:"HostId"`
}

// writeError answers a request with err. HEAD responses carry no body.
func (s *Server) writeError(w http.ResponseWriter, req *request, err error) {
	ae := s.logError(req, err)
	h := w.Header()
	if ae.Status == http.StatusNotModified {
		w.WriteHeader(ae.Status)
		return
	}
	if ae.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if req.r.Method == http.MethodHead {
		w.WriteHeader(ae.Status)
		return
	}
	h.Set("Content-Type", "application/xml")
	h.Del("Content-Length")
	h.Del("ETag")
	h.Del("Last-Modified")
	w.WriteHeader(ae.Status)
	w.Write([]byte(xml.Header))
	w.Write(errorBody(ae, req, h))
}

// errorBody is the S3 error document for ae.
func errorBody(ae *apiError, req *request, h http.Header) []byte {
	body, _ := xml.Marshal(errorResponse{
		Code: ae.Code, Message: ae.Message, Key: req.key, BucketName: req.bucket,
		Resource: req.r.URL.Path, RequestID: req.id, HostID: h.Get("x-amz-id-2"),
	})
	return body
}

// logError maps err and logs it: server faults as errors (naming the object, as the
// design wants for corrupt data), refusals at debug level.
func (s *Server) logError(req *request, err error) *apiError {
	ae := toAPIError(err, req.key)
	switch {
	case ae.Status >= 500:
		// The log line names the object, as the design wants for corrupt data.
		s.log.Error("s3: request failed", "method", req.r.Method, "bucket", req.bucket, "key", req.key,
			"request", req.id, "code", ae.Code, "err", err)
	default:
		s.log.Debug("s3: request refused", "method", req.r.Method, "bucket", req.bucket, "key", req.key,
			"request", req.id, "code", ae.Code, "err", err)
	}
	return ae
}

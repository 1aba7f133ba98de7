package sigv4

import "net/http"

// S3 error codes that this package returns in Error.Code.
const (
	CodeAccessDenied                      = "AccessDenied"
	CodeSignatureDoesNotMatch             = "SignatureDoesNotMatch"
	CodeInvalidAccessKeyID                = "InvalidAccessKeyId"
	CodeRequestTimeTooSkewed              = "RequestTimeTooSkewed"
	CodeAuthorizationHeaderMalformed      = "AuthorizationHeaderMalformed"
	CodeAuthorizationQueryParametersError = "AuthorizationQueryParametersError"
	CodeMissingSecurityHeader             = "MissingSecurityHeader"
	CodeXAmzContentSHA256Mismatch         = "XAmzContentSHA256Mismatch"
	CodeBadDigest                         = "BadDigest"
	CodeInvalidDigest                     = "InvalidDigest"
	CodeIncompleteBody                    = "IncompleteBody"
	CodeInvalidRequest                    = "InvalidRequest"
	CodeInvalidArgument                   = "InvalidArgument"
	CodeEntityTooLarge                    = "EntityTooLarge"
)

// Error is an authentication or payload-integrity failure, carrying the S3
// error code, a human-readable message and the HTTP status to answer with.
// Every error that Verify returns, and every integrity error that a body
// returned by Verify reports, wraps exactly one *Error: the S3 frontend maps
// it with errors.As, once.
//
// errors.Is(err, ErrSignatureDoesNotMatch) (and the other Err* values) is
// true when err wraps an *Error with the same Code, whatever its Message.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string {
	return "sigv4: " + e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Prototypes for errors.Is. Their messages are generic; the errors actually
// returned carry specific ones.
var (
	ErrAccessDenied                      = &Error{CodeAccessDenied, "Access Denied.", http.StatusForbidden}
	ErrSignatureDoesNotMatch             = &Error{CodeSignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.", http.StatusForbidden}
	ErrInvalidAccessKeyID                = &Error{CodeInvalidAccessKeyID, "The AWS Access Key Id you provided does not exist in our records.", http.StatusForbidden}
	ErrRequestTimeTooSkewed              = &Error{CodeRequestTimeTooSkewed, "The difference between the request time and the server's time is too large.", http.StatusForbidden}
	ErrAuthorizationHeaderMalformed      = &Error{CodeAuthorizationHeaderMalformed, "The authorization header is malformed.", http.StatusBadRequest}
	ErrAuthorizationQueryParametersError = &Error{CodeAuthorizationQueryParametersError, "Error parsing the X-Amz-Credential parameter.", http.StatusBadRequest}
	ErrMissingSecurityHeader             = &Error{CodeMissingSecurityHeader, "Your request is missing a required header.", http.StatusBadRequest}
	ErrXAmzContentSHA256Mismatch         = &Error{CodeXAmzContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.", http.StatusBadRequest}
	ErrBadDigest                         = &Error{CodeBadDigest, "The Content-MD5 or checksum you specified did not match what was received.", http.StatusBadRequest}
	ErrInvalidDigest                     = &Error{CodeInvalidDigest, "The Content-MD5 or checksum you specified is not valid.", http.StatusBadRequest}
	ErrIncompleteBody                    = &Error{CodeIncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header.", http.StatusBadRequest}
	ErrInvalidRequest                    = &Error{CodeInvalidRequest, "Invalid Request.", http.StatusBadRequest}
	ErrInvalidArgument                   = &Error{CodeInvalidArgument, "Invalid Argument.", http.StatusBadRequest}
	ErrEntityTooLarge                    = &Error{CodeEntityTooLarge, "Your proposed upload exceeds the maximum allowed size.", http.StatusBadRequest}
)

// errorf returns a copy of proto with msg as its message.
func errorf(proto *Error, msg string) *Error {
	return &Error{Code: proto.Code, Message: msg, Status: proto.Status}
}

package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestContentEncoding(t *testing.T) {
	for in, want := range map[string]string{
		"aws-chunked":        "",
		"aws-chunked,gzip":   "gzip",
		"gzip, AWS-Chunked":  "gzip",
		"":                   "",
		"br , aws-chunked,x": "br,x",
	} {
		h := http.Header{}
		if in != "" {
			h.Set("Content-Encoding", in)
		}
		if got := ContentEncoding(h); got != want {
			t.Errorf("ContentEncoding(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorsIs(t *testing.T) {
	err := fmt.Errorf("put: %w", errorf(ErrBadDigest, "specific"))
	if !errors.Is(err, ErrBadDigest) || errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Fatal("errors.Is by code")
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Message != "specific" {
		t.Fatalf("%+v", e)
	}
}

// A request dated only by the Date header (no x-amz-date), signed here with
// the package's own key derivation (checked against AWS by the examples).
func TestDateHeaderOnly(t *testing.T) {
	date := "Fri, 24 May 2013 00:00:00 GMT"
	creq := "GET\n/bucket/k\n\ndate:" + date + "\nhost:localhost\nx-amz-content-sha256:" + emptySHA256 + "\n\ndate;host;x-amz-content-sha256\n" + emptySHA256
	h := sha256.Sum256([]byte(creq))
	sts := "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" + hex.EncodeToString(h[:])
	sig := hex.EncodeToString(hmacSHA256(signingKey(exampleSK, "20130524", "us-east-1", "s3"), sts))
	raw := crlf("GET /bucket/k HTTP/1.1", "Host: localhost", "Date: "+date, "x-amz-content-sha256: "+emptySHA256,
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256, Signature="+sig, "", "")
	auth, _, err := verifyAll(exampleVerifier(exampleTime.Add(time.Minute)), wireRequest(t, []byte(raw)))
	if err != nil || !auth.Time.Equal(exampleTime) {
		t.Fatalf("%+v %v", auth, err)
	}
	_, _, err = verifyAll(exampleVerifier(exampleTime.Add(time.Hour)), wireRequest(t, []byte(raw)))
	wantCode(t, err, CodeRequestTimeTooSkewed)
	// Without any date.
	_, _, err = verifyAll(exampleVerifier(exampleTime), wireRequest(t, []byte(crlf("GET /bucket/k HTTP/1.1", "Host: localhost",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature="+sig, "", ""))))
	wantCode(t, err, CodeAccessDenied)
	// The credential scope of another day.
	_, _, err = verifyAll(exampleVerifier(exampleTime), wireRequest(t, []byte(crlf("GET /bucket/k HTTP/1.1", "Host: localhost", "x-amz-date: 20130524T000000Z",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130523/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig, "", ""))))
	wantCode(t, err, CodeAuthorizationHeaderMalformed)
	// host not signed.
	_, _, err = verifyAll(exampleVerifier(exampleTime), wireRequest(t, []byte(crlf("GET /bucket/k HTTP/1.1", "Host: localhost", "x-amz-date: 20130524T000000Z",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature="+sig, "", ""))))
	wantCode(t, err, CodeAuthorizationHeaderMalformed)
	// A body without x-amz-content-sha256.
	_, _, err = verifyAll(exampleVerifier(exampleTime), wireRequest(t, []byte(crlf("PUT /bucket/k HTTP/1.1", "Host: localhost", "x-amz-date: 20130524T000000Z", "Content-Length: 1",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig, "", "x"))))
	wantCode(t, err, CodeMissingSecurityHeader)
}

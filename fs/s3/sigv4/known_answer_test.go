package sigv4

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The examples of the S3 API reference ("Signature Calculations for the
// Authorization Header", "Authenticating Requests: Using Query Parameters",
// "Transferring Payload in Multiple Chunks" and "... with trailing headers"),
// with their published signatures: known answers from AWS itself.

const (
	exampleAK = "AKIAIOSFODNN7EXAMPLE"
	exampleSK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func exampleVerifier(now time.Time) *Verifier {
	return &Verifier{
		Creds:  Static(Credentials{exampleAK, exampleSK}),
		Region: "us-east-1",
		Now:    func() time.Time { return now },
	}
}

// wireRequest parses raw HTTP/1.1 request bytes as net/http's server does.
func wireRequest(t testing.TB, raw []byte) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("ReadRequest: %v", err)
	}
	return r
}

// verifyAll verifies r and reads its whole body.
func verifyAll(v *Verifier, r *http.Request) (Auth, []byte, error) {
	auth, body, err := v.Verify(r)
	if err != nil {
		return auth, nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	return auth, data, err
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v: want an *Error with code %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("error %v: code %s, want %s", err, e.Code, code)
	}
}

func crlf(lines ...string) string { return strings.Join(lines, "\r\n") }

func exampleGet(sig, rng string) []byte {
	return []byte(crlf(
		"GET /test.txt HTTP/1.1",
		"Host: examplebucket.s3.amazonaws.com",
		"Range: "+rng,
		"x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"x-amz-date: 20130524T000000Z",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature="+sig,
		"", ""))
}

func TestExampleGetObject(t *testing.T) {
	const sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	v := exampleVerifier(exampleTime)
	auth, data, err := verifyAll(v, wireRequest(t, exampleGet(sig, "bytes=0-9")))
	if err != nil {
		t.Fatal(err)
	}
	if auth.AccessKey != exampleAK || auth.Presigned || auth.Region != "us-east-1" || !auth.Time.Equal(exampleTime) || len(data) != 0 {
		t.Fatalf("auth %+v data %q", auth, data)
	}
	// Extra whitespace in a signed header value is canonicalized away.
	if _, _, err := verifyAll(v, wireRequest(t, exampleGet(sig, "  bytes=0-9  "))); err != nil {
		t.Fatalf("whitespace: %v", err)
	}
	// A signed header changed.
	_, _, err = verifyAll(v, wireRequest(t, exampleGet(sig, "bytes=0-8")))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// One byte of the signature flipped.
	_, _, err = verifyAll(v, wireRequest(t, exampleGet("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb40", "bytes=0-9")))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// Another key pair with the same access key.
	v2 := exampleVerifier(exampleTime)
	v2.Creds = Static(Credentials{exampleAK, exampleSK + "x"})
	_, _, err = verifyAll(v2, wireRequest(t, exampleGet(sig, "bytes=0-9")))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// Unknown access key.
	v2.Creds = Static(Credentials{"OTHER", exampleSK})
	_, _, err = verifyAll(v2, wireRequest(t, exampleGet(sig, "bytes=0-9")))
	wantCode(t, err, CodeInvalidAccessKeyID)
	// Clock skew, both ways; 14 minutes is fine.
	for _, d := range []time.Duration{16 * time.Minute, -16 * time.Minute} {
		_, _, err = verifyAll(exampleVerifier(exampleTime.Add(d)), wireRequest(t, exampleGet(sig, "bytes=0-9")))
		wantCode(t, err, CodeRequestTimeTooSkewed)
	}
	if _, _, err = verifyAll(exampleVerifier(exampleTime.Add(14*time.Minute)), wireRequest(t, exampleGet(sig, "bytes=0-9"))); err != nil {
		t.Fatal(err)
	}
	// Another region configured.
	v3 := exampleVerifier(exampleTime)
	v3.Region = "eu-west-1"
	_, _, err = verifyAll(v3, wireRequest(t, exampleGet(sig, "bytes=0-9")))
	wantCode(t, err, CodeAuthorizationHeaderMalformed)
	// No region configured: any.
	v3.Region = ""
	if _, _, err = verifyAll(v3, wireRequest(t, exampleGet(sig, "bytes=0-9"))); err != nil {
		t.Fatal(err)
	}
}

func examplePut(body string) []byte {
	return []byte(crlf(
		"PUT /test$file.text HTTP/1.1",
		"Host: examplebucket.s3.amazonaws.com",
		"Date: Fri, 24 May 2013 00:00:00 GMT",
		"x-amz-date: 20130524T000000Z",
		"x-amz-storage-class: REDUCED_REDUNDANCY",
		"x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		"Content-Length: "+itoa(len(body)),
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
		"", body))
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestExamplePutObject(t *testing.T) {
	v := exampleVerifier(exampleTime)
	_, data, err := verifyAll(v, wireRequest(t, examplePut("Welcome to Amazon S3.")))
	if err != nil || string(data) != "Welcome to Amazon S3." {
		t.Fatalf("%q %v", data, err)
	}
	// The body changed: the signature still matches (it covers the declared
	// hash), reading fails at the end.
	auth, body, err := v.Verify(wireRequest(t, examplePut("Welcome to Amazon S4.")))
	if err != nil {
		t.Fatal(err)
	}
	if auth.Payload != "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" {
		t.Fatal(auth.Payload)
	}
	_, err = io.ReadAll(body)
	wantCode(t, err, CodeXAmzContentSHA256Mismatch)
	if _, err := body.Read(make([]byte, 1)); !errors.Is(err, ErrXAmzContentSHA256Mismatch) {
		t.Fatalf("error not sticky: %v", err)
	}
	// A body cut short (Content-Length says more).
	raw := examplePut("Welcome to Amazon S3.")
	_, _, err = verifyAll(v, wireRequest(t, raw[:len(raw)-3]))
	wantCode(t, err, CodeIncompleteBody)
}

func exampleList(target, sig string) []byte {
	return []byte(crlf(
		"GET "+target+" HTTP/1.1",
		"Host: examplebucket.s3.amazonaws.com",
		"x-amz-date: 20130524T000000Z",
		"x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="+sig,
		"", ""))
}

func TestExampleBucketRequests(t *testing.T) {
	v := exampleVerifier(exampleTime)
	const lifecycle = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
	const list = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
	for _, target := range []string{"/?lifecycle", "/?lifecycle="} {
		if _, _, err := verifyAll(v, wireRequest(t, exampleList(target, lifecycle))); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
	}
	// Query order does not matter; its content does.
	for _, target := range []string{"/?max-keys=2&prefix=J", "/?prefix=J&max-keys=2"} {
		if _, _, err := verifyAll(v, wireRequest(t, exampleList(target, list))); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
	}
	_, _, err := verifyAll(v, wireRequest(t, exampleList("/?max-keys=3&prefix=J", list)))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	_, _, err = verifyAll(v, wireRequest(t, exampleList("/?policy", lifecycle)))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// An unsigned x-amz-* header is refused.
	raw := bytes.Replace(exampleList("/?lifecycle", lifecycle), []byte("Host:"), []byte("x-amz-copy-source: /other/secret\r\nHost:"), 1)
	_, _, err = verifyAll(v, wireRequest(t, raw))
	wantCode(t, err, CodeAccessDenied)
}

func examplePresigned(query string) []byte {
	return []byte(crlf(
		"GET /test.txt?"+query+" HTTP/1.1",
		"Host: examplebucket.s3.amazonaws.com",
		"", ""))
}

const examplePresignQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

func TestExamplePresigned(t *testing.T) {
	// Valid for a day from 2013-05-24T00:00:00Z.
	auth, _, err := verifyAll(exampleVerifier(exampleTime.Add(23*time.Hour)), wireRequest(t, examplePresigned(examplePresignQuery)))
	if err != nil {
		t.Fatal(err)
	}
	if !auth.Presigned || !auth.Expires.Equal(exampleTime.Add(24*time.Hour)) || auth.Payload != UnsignedPayload {
		t.Fatalf("%+v", auth)
	}
	_, _, err = verifyAll(exampleVerifier(exampleTime.Add(24*time.Hour+time.Second)), wireRequest(t, examplePresigned(examplePresignQuery)))
	wantCode(t, err, CodeAccessDenied)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatal(err)
	}
	// Not valid yet.
	_, _, err = verifyAll(exampleVerifier(exampleTime.Add(-time.Hour)), wireRequest(t, examplePresigned(examplePresignQuery)))
	wantCode(t, err, CodeAccessDenied)

	v := exampleVerifier(exampleTime.Add(time.Hour))
	for _, tc := range []struct{ old, new, code string }{
		{"X-Amz-Expires=86400", "X-Amz-Expires=86401", CodeSignatureDoesNotMatch},
		{"X-Amz-Expires=86400", "X-Amz-Expires=604801", CodeAuthorizationQueryParametersError},
		{"X-Amz-Expires=86400", "X-Amz-Expires=x", CodeAuthorizationQueryParametersError},
		{"f604d404", "f604d405", CodeSignatureDoesNotMatch},
		{"&X-Amz-Date=20130524T000000Z", "", CodeAuthorizationQueryParametersError},
		{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1", CodeAuthorizationQueryParametersError},
		{"X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524T000000Z&X-Amz-Date=20130524T000000Z", CodeAuthorizationQueryParametersError},
		{"X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host&acl", CodeSignatureDoesNotMatch},
	} {
		q := strings.Replace(examplePresignQuery, tc.old, tc.new, 1)
		_, _, err := verifyAll(v, wireRequest(t, examplePresigned(q)))
		wantCode(t, err, tc.code)
	}
	// Presigned and an Authorization header at once.
	raw := bytes.Replace(examplePresigned(examplePresignQuery), []byte("Host:"), []byte("Authorization: AWS4-HMAC-SHA256 x\r\nHost:"), 1)
	_, _, err = verifyAll(v, wireRequest(t, raw))
	wantCode(t, err, CodeInvalidRequest)
}

func TestAnonymous(t *testing.T) {
	v := exampleVerifier(exampleTime)
	_, _, err := verifyAll(v, wireRequest(t, []byte("GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n")))
	wantCode(t, err, CodeAccessDenied)
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatal("errors.Is")
	}
	_, _, err = verifyAll(v, wireRequest(t, []byte("GET /bucket/key HTTP/1.1\r\nHost: x\r\nAuthorization: AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=\r\n\r\n")))
	wantCode(t, err, CodeInvalidRequest)
}

// The streaming example: 66560 bytes of 'a' in chunks of 64 KiB, 1 KiB, 0.
func exampleChunkedBody(sigs [3]string, trailer string) string {
	a := strings.Repeat("a", 65536)
	body := "10000;chunk-signature=" + sigs[0] + "\r\n" + a + "\r\n" +
		"400;chunk-signature=" + sigs[1] + "\r\n" + a[:1024] + "\r\n" +
		"0;chunk-signature=" + sigs[2] + "\r\n"
	if trailer == "" {
		return body + "\r\n"
	}
	return body + trailer
}

var exampleChunkSigs = [3]string{
	"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
	"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
	"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
}

func exampleChunked(body string) []byte {
	return []byte(crlf(
		"PUT /examplebucket/chunkObject.txt HTTP/1.1",
		"Host: s3.amazonaws.com",
		"x-amz-date: 20130524T000000Z",
		"x-amz-storage-class: REDUCED_REDUNDANCY",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		"x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		"Content-Encoding: aws-chunked",
		"x-amz-decoded-content-length: 66560",
		"Content-Length: 66824",
		"", body))
}

func TestExampleChunked(t *testing.T) {
	v := exampleVerifier(exampleTime)
	body := exampleChunkedBody(exampleChunkSigs, "")
	if len(body) != 66824 {
		t.Fatalf("example body is %d bytes", len(body))
	}
	auth, b, err := v.Verify(wireRequest(t, exampleChunked(body)))
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() != 66560 || auth.Payload != StreamingPayload {
		t.Fatal(b.Size(), auth.Payload)
	}
	data, err := io.ReadAll(b)
	if err != nil || string(data) != strings.Repeat("a", 66560) {
		t.Fatalf("%d bytes, %v", len(data), err)
	}
	if _, ok := b.Checksum(); ok {
		t.Fatal("no checksum expected")
	}

	tamper := func(old, new string) string {
		t.Helper()
		if !strings.Contains(body, old) {
			t.Fatalf("%q not in body", old)
		}
		return strings.Replace(body, old, new, 1)
	}
	for _, tc := range []struct {
		name, body, code string
	}{
		{"chunk 2 data", tamper("aaaa\r\n0;", "aaab\r\n0;"), CodeSignatureDoesNotMatch},
		{"chunk 1 data", tamper("aaaa", "baaa"), CodeSignatureDoesNotMatch},
		{"chunk 1 signature", tamper("ad80c730", "ad80c731"), CodeSignatureDoesNotMatch},
		{"final signature", tamper("b6c6ea8a", "b6c6ea8b"), CodeSignatureDoesNotMatch},
		{"chunks swapped signatures", tamper(exampleChunkSigs[1], exampleChunkSigs[0]), CodeSignatureDoesNotMatch},
		{"chunk size", tamper("400;", "3ff;"), CodeIncompleteBody},
		{"signature not hex", tamper("ad80c730", "ad80c73z"), CodeIncompleteBody},
		{"no final chunk", tamper("0;chunk-signature="+exampleChunkSigs[2]+"\r\n\r\n", "\r\n"), CodeIncompleteBody},
		{"garbage after", body[:len(body)-2] + "xx", CodeIncompleteBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := exampleChunked(tc.body)
			// Content-Length must match what the body is now.
			raw = bytes.Replace(raw, []byte("Content-Length: 66824"), []byte("Content-Length: "+itoa(len(tc.body))), 1)
			r := wireRequest(t, raw)
			r.Header.Set("Content-Length", "66824") // as signed
			_, _, err := verifyAll(v, r)
			wantCode(t, err, tc.code)
		})
	}
	// Truncated anywhere (the connection closed before Content-Length
	// bytes): an error, never a clean EOF.
	for _, cut := range []int{0, 1, 2, 50, 87, 88, 1000, 65626, 66700, 66821} {
		_, _, err := verifyAll(v, wireRequest(t, exampleChunked(body[:cut])))
		wantCode(t, err, CodeIncompleteBody)
	}
	// The final CRLF may be missing.
	raw := bytes.Replace(exampleChunked(body[:len(body)-2]), []byte("Content-Length: 66824"), []byte("Content-Length: 66822"), 1)
	r := wireRequest(t, raw)
	r.Header.Set("Content-Length", "66824") // as signed
	if _, _, err := verifyAll(v, r); err != nil {
		t.Fatalf("without final CRLF: %v", err)
	}
}

func exampleTrailerChunked(body string) []byte {
	return []byte(crlf(
		"PUT /examplebucket/chunkObject.txt HTTP/1.1",
		"Host: s3.amazonaws.com",
		"x-amz-date: 20130524T000000Z",
		"x-amz-storage-class: REDUCED_REDUNDANCY",
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
		"x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
		"Content-Encoding: aws-chunked",
		"x-amz-decoded-content-length: 66560",
		"x-amz-trailer: x-amz-checksum-crc32c",
		"Content-Length: "+itoa(len(body)),
		"", body))
}

func TestExampleChunkedTrailer(t *testing.T) {
	sigs := [3]string{
		"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
		"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
		"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
	}
	const trailer = "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"
	v := exampleVerifier(exampleTime)
	body := exampleChunkedBody(sigs, trailer)
	_, b, err := v.Verify(wireRequest(t, exampleTrailerChunked(body)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(b)
	if err != nil || string(data) != strings.Repeat("a", 66560) {
		t.Fatalf("%d bytes, %v", len(data), err)
	}
	if c, ok := b.Checksum(); !ok || c != (Checksum{CRC32C, "sOO8/Q=="}) {
		t.Fatalf("checksum %+v %v", c, ok)
	}
	for _, tc := range []struct{ name, body, code string }{
		{"checksum value", strings.Replace(body, "sOO8/Q==", "sOO8/R==", 1), CodeSignatureDoesNotMatch},
		{"trailer signature", strings.Replace(body, "d81f82fc", "d81f82fd", 1), CodeSignatureDoesNotMatch},
		{"data", strings.Replace(body, "aaaa\r\n0;", "aaab\r\n0;", 1), CodeSignatureDoesNotMatch},
		{"no trailer signature", strings.Replace(body, "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n", "", 1), CodeIncompleteBody},
		{"no checksum", strings.Replace(body, "x-amz-checksum-crc32c:sOO8/Q==\r\n", "", 1), CodeIncompleteBody},
		{"other trailer", strings.Replace(body, "x-amz-checksum-crc32c:", "x-amz-checksum-crc32:", 1), CodeIncompleteBody},
		{"trailer after signature", strings.Replace(body, "\r\n\r\n", "\r\nx-amz-meta-a:b\r\n", 1), CodeIncompleteBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := verifyAll(v, wireRequest(t, exampleTrailerChunked(tc.body)))
			wantCode(t, err, tc.code)
		})
	}
}

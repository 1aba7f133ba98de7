package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// Real client signers as oracles: aws-sdk-go-v2's aws/signer/v4 and
// minio-go's pkg/signer sign requests; the requests go through the wire
// format (Request.Write, then http.ReadRequest, as net/http's server
// parses them) and must verify; one flipped byte must not.

var testCreds = Credentials{AccessKey: "AKIATESTKEY0001", SecretKey: "s3cr3t/key+with=odd chars"}

func testVerifier() *Verifier { return &Verifier{Creds: Static(testCreds)} }

// onWire returns the bytes a client sends for req.
func onWire(t testing.TB, req *http.Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("Request.Write: %v", err)
	}
	return buf.Bytes()
}

// bodyOffset is where the body starts in wire bytes.
func bodyOffset(t testing.TB, raw []byte) int {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no end of header")
	}
	return i + 4
}

// flip returns a copy of raw with the byte at i changed (a hex digit stays
// a hex digit).
func flip(raw []byte, i int) []byte {
	out := bytes.Clone(raw)
	switch c := out[i]; {
	case c == '0':
		out[i] = '1'
	case c >= '1' && c <= '9' || c >= 'a' && c <= 'f':
		out[i] = '0'
	default:
		out[i] ^= 0x01
	}
	return out
}

// replaceHeader replaces the first occurrence of old in the header part.
func replaceHeader(t testing.TB, raw []byte, old, new string) []byte {
	t.Helper()
	off := bodyOffset(t, raw)
	i := bytes.Index(raw[:off], []byte(old))
	if i < 0 {
		t.Fatalf("%q not in header", old)
	}
	return append(append(append([]byte{}, raw[:i]...), new...), raw[i+len(old):]...)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func awsCreds() aws.Credentials {
	return aws.Credentials{AccessKeyID: testCreds.AccessKey, SecretAccessKey: testCreds.SecretKey}
}

// s3Signer signs as the SDK's S3 client does: no double path escaping.
var s3Signer = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })

func TestAWSSignerHeader(t *testing.T) {
	ctx := context.Background()
	v := testVerifier()
	for _, target := range []string{
		"http://127.0.0.1:9000/bucket/key",
		"http://127.0.0.1:9000/",
		"http://localhost:9000/bucket/a%20b/c%2Bd~e_f.g-h",
		"http://localhost:9000/bucket/%C3%BC/%E2%82%AC%21%2A%27%28%29",
		"http://localhost:9000/bucket/a%2Fb/key",
		"http://bucket.localhost:9000/key?list-type=2&prefix=a%20b%2Bc%2F&delimiter=%2F&acl&empty=",
		"http://localhost/bucket?uploads",
	} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		req.Header.Set("Range", "bytes=0-  9")
		req.Header.Add("X-Amz-Meta-Multi", "one")
		req.Header.Add("X-Amz-Meta-Multi", "  two   three ")
		if err := s3Signer.SignHTTP(ctx, awsCreds(), req, emptySHA256, "s3", "eu-central-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		raw := onWire(t, req)
		if _, _, err := verifyAll(v, wireRequest(t, raw)); err != nil {
			t.Fatalf("%s: %v\n%s", target, err, raw)
		}
		_, _, err := verifyAll(v, wireRequest(t, replaceHeader(t, raw, "two", "twO")))
		wantCode(t, err, CodeSignatureDoesNotMatch)
		i := bytes.Index(raw, []byte("Signature=")) + len("Signature=") + 7
		_, _, err = verifyAll(v, wireRequest(t, flip(raw, i)))
		wantCode(t, err, CodeSignatureDoesNotMatch)
		// A different path.
		_, _, err = verifyAll(v, wireRequest(t, replaceHeader(t, raw, " /", " /x")))
		wantCode(t, err, CodeSignatureDoesNotMatch)
	}
}

func TestAWSSignerPut(t *testing.T) {
	ctx := context.Background()
	v := testVerifier()
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	md5sum := md5.Sum(data)
	crc := crc32.Checksum(data, castagnoliTable)
	crcB64 := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})

	sign := func(payload string, hdr map[string]string) []byte {
		req, _ := http.NewRequest(http.MethodPut, "http://localhost:9000/bucket/dir/obj.bin", bytes.NewReader(data))
		req.Header.Set("X-Amz-Content-Sha256", payload)
		req.Header.Set("Content-Type", "application/octet-stream")
		for k, val := range hdr {
			req.Header.Set(k, val)
		}
		if err := s3Signer.SignHTTP(ctx, awsCreds(), req, payload, "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		return onWire(t, req)
	}

	for _, tc := range []struct {
		name    string
		payload string
		hdr     map[string]string
	}{
		{"sha256", sha256Hex(data), nil},
		{"unsigned", UnsignedPayload, nil},
		{"sha256+md5", sha256Hex(data), map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(md5sum[:])}},
		{"unsigned+md5", UnsignedPayload, map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(md5sum[:])}},
		{"unsigned+crc32c", UnsignedPayload, map[string]string{"X-Amz-Checksum-Crc32c": crcB64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := sign(tc.payload, tc.hdr)
			_, b, err := v.Verify(wireRequest(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, data) || b.Size() != int64(len(data)) {
				t.Fatalf("%d bytes, %v", len(got), err)
			}
			if c, ok := b.Checksum(); tc.hdr["X-Amz-Checksum-Crc32c"] != "" && (!ok || c.Value != crcB64 || c.Algorithm != CRC32C) {
				t.Fatalf("checksum %+v %v", c, ok)
			}

			// One byte of the body flipped: the signature still matches
			// (unless the body is signed... it is signed only through
			// x-amz-content-sha256), the read fails at the end.
			off := bodyOffset(t, raw)
			tampered := flip(raw, off+len(data)-1)
			_, b, err = v.Verify(wireRequest(t, tampered))
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(b)
			switch {
			case tc.payload != UnsignedPayload:
				wantCode(t, err, CodeXAmzContentSHA256Mismatch)
			case tc.hdr != nil:
				wantCode(t, err, CodeBadDigest)
			default:
				if err != nil { // nothing protects an unsigned payload
					t.Fatal(err)
				}
			}
			// Shorter than Content-Length.
			_, _, err = verifyAll(v, wireRequest(t, raw[:len(raw)-1]))
			wantCode(t, err, CodeIncompleteBody)
		})
	}

	// Digest headers that are signed but wrong, or malformed.
	wrong := md5.Sum([]byte("other"))
	_, _, err := verifyAll(v, wireRequest(t, sign(UnsignedPayload, map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(wrong[:])})))
	wantCode(t, err, CodeBadDigest)
	_, _, err = verifyAll(v, wireRequest(t, sign(UnsignedPayload, map[string]string{"Content-MD5": "nope"})))
	wantCode(t, err, CodeInvalidDigest)
	_, _, err = verifyAll(v, wireRequest(t, sign(UnsignedPayload, map[string]string{"X-Amz-Checksum-Crc32c": "AAAAAA=="})))
	wantCode(t, err, CodeBadDigest)
	_, _, err = verifyAll(v, wireRequest(t, sign(UnsignedPayload, map[string]string{"X-Amz-Checksum-Crc32c": "AAAAAAAA"})))
	wantCode(t, err, CodeInvalidDigest)
	_, _, err = verifyAll(v, wireRequest(t, sign(UnsignedPayload, map[string]string{"X-Amz-Checksum-Crc32c": crcB64, "X-Amz-Checksum-Crc32": crcB64})))
	wantCode(t, err, CodeInvalidRequest)
	_, _, err = verifyAll(v, wireRequest(t, sign("beef", nil)))
	wantCode(t, err, CodeInvalidArgument)
	// Streaming forms are not for presigned URLs, and a signed header
	// that says so does not make a plain body chunked.
	_, _, err = verifyAll(v, wireRequest(t, sign(StreamingPayload, nil)))
	wantCode(t, err, CodeIncompleteBody)
}

func TestAWSSignerPresign(t *testing.T) {
	ctx := context.Background()
	signedAt := time.Now().UTC().Truncate(time.Second)
	presign := func(method, target string, expires int, hdr http.Header, payload string) (string, http.Header) {
		req, _ := http.NewRequest(method, target, nil)
		q := req.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(expires))
		req.URL.RawQuery = q.Encode()
		for k, vals := range hdr {
			req.Header[k] = vals
		}
		u, signed, err := s3Signer.PresignHTTP(ctx, awsCreds(), req, payload, "s3", "us-east-1", signedAt)
		if err != nil {
			t.Fatal(err)
		}
		return u, signed
	}
	use := func(method, u string, h http.Header, body string) *http.Request {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		for k, vals := range h {
			if k != "Host" {
				req.Header[k] = vals
			}
		}
		return wireRequest(t, onWire(t, req))
	}
	at := func(d time.Duration) *Verifier {
		v := testVerifier()
		v.Now = func() time.Time { return signedAt.Add(d) }
		return v
	}

	u, h := presign(http.MethodGet, "http://localhost:9000/bucket/some%20key.txt?versionId=abc", 3600, nil, UnsignedPayload)
	auth, _, err := verifyAll(at(59*time.Minute), use(http.MethodGet, u, h, ""))
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	if !auth.Presigned || auth.AccessKey != testCreds.AccessKey || !auth.Expires.Equal(signedAt.Add(time.Hour)) {
		t.Fatalf("%+v", auth)
	}
	_, _, err = verifyAll(at(61*time.Minute), use(http.MethodGet, u, h, ""))
	wantCode(t, err, CodeAccessDenied)
	_, _, err = verifyAll(at(0), use(http.MethodHead, u, h, ""))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	_, _, err = verifyAll(at(0), use(http.MethodGet, strings.Replace(u, "versionId=abc", "versionId=abd", 1), h, ""))
	wantCode(t, err, CodeSignatureDoesNotMatch)

	// A presigned PUT with signed headers (content type, metadata).
	hdr := http.Header{"Content-Type": {"text/plain"}, "X-Amz-Meta-Owner": {"me"}}
	u, h = presign(http.MethodPut, "http://localhost:9000/bucket/upload.txt", 600, hdr, UnsignedPayload)
	_, data, err := verifyAll(at(time.Minute), use(http.MethodPut, u, h, "hello"))
	if err != nil || string(data) != "hello" {
		t.Fatalf("%q %v (%s %v)", data, err, u, h)
	}
	h2 := h.Clone()
	h2.Set("Content-Type", "text/html")
	_, _, err = verifyAll(at(time.Minute), use(http.MethodPut, u, h2, "hello"))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// An x-amz-* header the URL did not sign.
	h2 = h.Clone()
	h2.Set("X-Amz-Copy-Source", "/bucket/secret")
	_, _, err = verifyAll(at(time.Minute), use(http.MethodPut, u, h2, "hello"))
	wantCode(t, err, CodeAccessDenied)

	// More than 7 days.
	u, h = presign(http.MethodGet, "http://localhost:9000/bucket/k", 604801, nil, UnsignedPayload)
	_, _, err = verifyAll(at(0), use(http.MethodGet, u, h, ""))
	wantCode(t, err, CodeAuthorizationQueryParametersError)
	// Exactly 7 days.
	u, h = presign(http.MethodGet, "http://localhost:9000/bucket/k", 604800, nil, UnsignedPayload)
	if _, _, err = verifyAll(at(6*24*time.Hour), use(http.MethodGet, u, h, "")); err != nil {
		t.Fatal(err)
	}
}

// minio-go's signer wants an md5simd.Hasher for SHA-256.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func newSHA256Hasher() sha256Hasher { return sha256Hasher{sha256.New()} }

func TestMinioSignV4(t *testing.T) {
	v := testVerifier()
	data := []byte("some object content")
	for _, payload := range []string{sha256Hex(data), UnsignedPayload} {
		req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/dir/a b+c(1).txt", bytes.NewReader(data))
		req.Header.Set("X-Amz-Content-Sha256", payload)
		req.Header.Set("X-Amz-Meta-Color", "blue")
		req = signer.SignV4(*req, testCreds.AccessKey, testCreds.SecretKey, "", "us-east-1")
		raw := onWire(t, req)
		_, got, err := verifyAll(v, wireRequest(t, raw))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%q %v\n%s", got, err, raw)
		}
		_, _, err = verifyAll(v, wireRequest(t, replaceHeader(t, raw, "blue", "bluE")))
		wantCode(t, err, CodeSignatureDoesNotMatch)
		_, _, err = verifyAll(v, wireRequest(t, flip(raw, len(raw)-1)))
		if payload == UnsignedPayload {
			if err != nil {
				t.Fatal(err)
			}
		} else {
			wantCode(t, err, CodeXAmzContentSHA256Mismatch)
		}
	}
}

func TestMinioPreSignV4(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bucket/photos/2024/ä b.jpg?response-content-type=image%2Fjpeg", nil)
	req = signer.PreSignV4(*req, testCreds.AccessKey, testCreds.SecretKey, "", "us-east-1", 300)
	signedAt := time.Now()
	get, _ := http.NewRequest(http.MethodGet, req.URL.String(), nil)
	raw := onWire(t, get)
	v := testVerifier()
	auth, _, err := verifyAll(v, wireRequest(t, raw))
	if err != nil || !auth.Presigned {
		t.Fatalf("%v\n%s", err, raw)
	}
	v.Now = func() time.Time { return signedAt.Add(6 * time.Minute) }
	_, _, err = verifyAll(v, wireRequest(t, raw))
	wantCode(t, err, CodeAccessDenied)
	v.Now = nil
	i := bytes.Index(raw, []byte("X-Amz-Signature=")) + len("X-Amz-Signature=") + 20
	_, _, err = verifyAll(v, wireRequest(t, flip(raw, i)))
	wantCode(t, err, CodeSignatureDoesNotMatch)
}

func crc32cB64(data []byte) string {
	c := crc32.Checksum(data, castagnoliTable)
	return base64.StdEncoding.EncodeToString([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
}

// minioStreaming signs data with minio-go's streaming signer: every chunk
// signed, with a signed trailer when trailer is not nil.
func minioStreaming(t testing.TB, data []byte, trailer http.Header) []byte {
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/stream.bin", io.NopCloser(bytes.NewReader(data)))
	req.Header.Set("X-Amz-Meta-Color", "blue")
	req.Trailer = trailer
	req = signer.StreamingSignV4(req, testCreds.AccessKey, testCreds.SecretKey, "", "us-east-1", int64(len(data)), time.Now().UTC(), newSHA256Hasher())
	return onWire(t, req)
}

// minioUnsignedTrailer signs like minio-go over TLS: the header signed,
// unsigned chunks, a checksum trailer.
func minioUnsignedTrailer(t testing.TB, data []byte, trailer http.Header) []byte {
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/stream.bin", io.NopCloser(bytes.NewReader(data)))
	req.ContentLength = int64(len(data))
	req.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedPayloadTrailer)
	req = signer.SignV4Trailer(*req, testCreds.AccessKey, testCreds.SecretKey, "", "us-east-1", trailer)
	return onWire(t, req)
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestMinioStreaming(t *testing.T) {
	v := testVerifier()
	for _, n := range []int{0, 1, 1000, 65536, 65537, 3*65536 + 17} {
		data := testData(n)
		for _, mode := range []string{StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer} {
			t.Run(mode+"/"+strconv.Itoa(n), func(t *testing.T) {
				trailer := http.Header{"X-Amz-Checksum-Crc32c": {crc32cB64(data)}}
				bad := http.Header{"X-Amz-Checksum-Crc32c": {crc32cB64(append(bytes.Clone(data), 'x'))}}
				var raw, rawBad []byte
				switch mode {
				case StreamingPayload:
					raw = minioStreaming(t, data, nil)
				case StreamingPayloadTrailer:
					if n == 0 {
						t.Skip("minio-go sends no trailer for an empty body")
					}
					raw, rawBad = minioStreaming(t, data, trailer), minioStreaming(t, data, bad)
				default:
					if n == 0 {
						t.Skip("minio-go sends no trailer for an empty body")
					}
					raw, rawBad = minioUnsignedTrailer(t, data, trailer), minioUnsignedTrailer(t, data, bad)
				}
				auth, b, err := v.Verify(wireRequest(t, raw))
				if err != nil {
					t.Fatalf("%v\n%s", err, raw[:bodyOffset(t, raw)])
				}
				if auth.Payload != mode {
					t.Fatalf("payload %s", auth.Payload)
				}
				got, err := io.ReadAll(b)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%d bytes, %v", len(got), err)
				}
				if mode != StreamingPayload {
					if c, ok := b.Checksum(); !ok || c.Value != trailer.Get("X-Amz-Checksum-Crc32c") {
						t.Fatalf("checksum %+v %v", c, ok)
					}
				}
				off := bodyOffset(t, raw)
				if rawBad != nil {
					_, _, err := verifyAll(v, wireRequest(t, rawBad))
					wantCode(t, err, CodeBadDigest)
				}
				if n == 0 {
					return
				}
				// A data byte, in the first and in the last chunk.
				hdrLen := bytes.Index(raw[off:], []byte("\r\n")) + 2
				final := bytes.LastIndex(raw, []byte("\r\n0;chunk-signature="))
				if mode == StreamingUnsignedPayloadTrailer {
					final = bytes.LastIndex(raw, []byte("\r\n0\r\n"))
				}
				for _, i := range []int{off + hdrLen, final - 1} {
					_, _, err = verifyAll(v, wireRequest(t, flip(raw, i)))
					if mode == StreamingUnsignedPayloadTrailer {
						wantCode(t, err, CodeBadDigest)
					} else {
						wantCode(t, err, CodeSignatureDoesNotMatch)
					}
				}
				if mode == StreamingUnsignedPayloadTrailer {
					return
				}
				// A chunk signature.
				_, _, err = verifyAll(v, wireRequest(t, flip(raw, off+hdrLen-10)))
				wantCode(t, err, CodeSignatureDoesNotMatch)
				// The trailer value, still valid base64 of the right size.
				if mode == StreamingPayloadTrailer {
					i := bytes.Index(raw[off:], []byte("x-amz-checksum-crc32c:")) + off + len("x-amz-checksum-crc32c:")
					tampered := bytes.Clone(raw)
					if tampered[i] == 'A' {
						tampered[i] = 'B'
					} else {
						tampered[i] = 'A'
					}
					_, _, err = verifyAll(v, wireRequest(t, tampered))
					wantCode(t, err, CodeSignatureDoesNotMatch)
				}
			})
		}
	}
}

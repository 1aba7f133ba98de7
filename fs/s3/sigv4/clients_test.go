package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// End to end with the real clients: aws-sdk-go-v2's S3 client and
// minio-go's Client talk to an httptest server whose handler calls Verify
// and reads the body, as the S3 frontend will.

// request is what the test server saw of one request.
type request struct {
	method, path, query string
	header              http.Header
	auth                Auth
	body                []byte
	checksum            Checksum
	err                 error
}

type testServer struct {
	*httptest.Server
	v       *Verifier
	skew    atomic.Int64 // added to the server's clock
	mu      sync.Mutex
	objects map[string][]byte
	log     []request
}

func newTestServer(t *testing.T, tls bool) *testServer {
	s := &testServer{objects: map[string][]byte{}}
	s.v = &Verifier{
		Creds:  Static(testCreds),
		Region: "us-east-1",
		Now:    func() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) },
	}
	if tls {
		s.Server = httptest.NewTLSServer(s)
	} else {
		s.Server = httptest.NewServer(s)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := request{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone()}
	auth, body, err := s.v.Verify(r)
	if err == nil {
		rec.auth = auth
		rec.body, err = io.ReadAll(body)
		body.Close()
		rec.checksum, _ = body.Checksum()
	}
	rec.err = err
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: "IncompleteBody", Message: err.Error(), Status: http.StatusBadRequest}
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(e.Status)
		xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string
			Message string
		}{Code: e.Code, Message: e.Message})
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut:
		// Only a clean io.EOF commits.
		s.mu.Lock()
		s.objects[r.URL.Path] = rec.body
		s.mu.Unlock()
		sum := md5.Sum(rec.body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		if rec.checksum.Algorithm != "" {
			w.Header().Set("x-amz-checksum-"+rec.checksum.Algorithm, rec.checksum.Value)
		}
	case r.Method == http.MethodGet && q.Has("list-type"):
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`)
	case r.Method == http.MethodPost && q.Has("delete"):
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>`)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>bucket</Bucket><Key>k</Key><ETag>"x-2"</ETag></CompleteMultipartUploadResult>`)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		s.mu.Lock()
		data, ok := s.objects[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Write(data)
	}
}

func (s *testServer) last(t *testing.T) request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) == 0 {
		t.Fatal("no request")
	}
	return s.log[len(s.log)-1]
}

func (s *testServer) object(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[path]
	return b, ok
}

// awsClient is an S3 client as config.LoadDefaultConfig makes it:
// RequestChecksumCalculation defaults to "when supported" there (s3.New
// alone leaves it unset, which means "when required").
func awsClient(s *testServer) *s3.Client {
	return s3.New(s3.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(testCreds.AccessKey, testCreds.SecretKey, ""),
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               true,
		HTTPClient:                 s.Client(),
		RetryMaxAttempts:           1,
	})
}

// onlyReader hides Seek (and everything else) of a reader.
type onlyReader struct{ io.Reader }

func TestAWSClientPutObject(t *testing.T) {
	ctx := context.Background()
	data := testData(300*1024 + 5)
	for _, tc := range []struct {
		name    string
		tls     bool
		body    func() io.Reader
		length  *int64
		alg     types.ChecksumAlgorithm
		payload string // the mode the client chose
		want    string // checksum algorithm seen
	}{
		{"tls/seekable", true, func() io.Reader { return bytes.NewReader(data) }, nil, "", StreamingUnsignedPayloadTrailer, CRC32},
		{"tls/non-seekable", true, func() io.Reader { return onlyReader{bytes.NewReader(data)} }, nil, "", StreamingUnsignedPayloadTrailer, CRC32},
		{"tls/non-seekable+length", true, func() io.Reader { return onlyReader{bytes.NewReader(data)} }, aws.Int64(int64(len(data))), "", StreamingUnsignedPayloadTrailer, CRC32},
		{"tls/crc32c", true, func() io.Reader { return bytes.NewReader(data) }, nil, types.ChecksumAlgorithmCrc32c, StreamingUnsignedPayloadTrailer, CRC32C},
		{"tls/crc64nvme", true, func() io.Reader { return bytes.NewReader(data) }, nil, types.ChecksumAlgorithmCrc64nvme, StreamingUnsignedPayloadTrailer, CRC64NVME},
		{"tls/sha1", true, func() io.Reader { return bytes.NewReader(data) }, nil, types.ChecksumAlgorithmSha1, StreamingUnsignedPayloadTrailer, SHA1},
		{"tls/sha256", true, func() io.Reader { return bytes.NewReader(data) }, nil, types.ChecksumAlgorithmSha256, StreamingUnsignedPayloadTrailer, SHA256},
		{"http/seekable", false, func() io.Reader { return bytes.NewReader(data) }, nil, "", sha256Hex(data), CRC32},
		{"http/crc64nvme", false, func() io.Reader { return bytes.NewReader(data) }, nil, types.ChecksumAlgorithmCrc64nvme, sha256Hex(data), CRC64NVME},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.tls)
			c := awsClient(s)
			key := "dir/key with space+plus~é(1)*!'.bin"
			_, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket:            aws.String("bucket"),
				Key:               aws.String(key),
				Body:              tc.body(),
				ContentLength:     tc.length,
				ChecksumAlgorithm: tc.alg,
				Metadata:          map[string]string{"color": "blue  and   green"},
			})
			if err != nil {
				t.Fatal(err)
			}
			r := s.last(t)
			if r.auth.Payload != tc.payload {
				t.Errorf("payload mode %s, want %s", r.auth.Payload, tc.payload)
			}
			if r.checksum.Algorithm != tc.want {
				t.Errorf("checksum %+v, want %s", r.checksum, tc.want)
			}
			if got, ok := s.object("/bucket/" + key); !ok || !bytes.Equal(got, data) {
				t.Fatalf("stored %d bytes (%v), want %d", len(got), ok, len(data))
			}
			t.Logf("%s: %s, content-encoding %q, decoded length %q, trailer %q, transfer %v",
				tc.name, r.auth.Payload, r.header.Get("Content-Encoding"), r.header.Get("X-Amz-Decoded-Content-Length"), r.header.Get("X-Amz-Trailer"), r.header.Get("Content-Length"))
		})
	}
}

func TestAWSClientOtherRequests(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t, true)
	c := awsClient(s)
	data := []byte("hello, world")
	key := "a/b c/ü€/x+y=z&w;v,u@t$s.txt"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("GetObject %q", got)
	}
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String("bucket"), Prefix: aws.String("a b+c/ü*~!'()&=?#%"), Delimiter: aws.String("/"), StartAfter: aws.String(""),
	}); err != nil {
		t.Fatal(err)
	}
	// DeleteObjects carries a checksum of its XML body.
	if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String("bucket"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("x")}, {Key: aws.String(key)}}},
	}); err != nil {
		t.Fatal(err)
	}
	if r := s.last(t); r.checksum.Algorithm == "" {
		t.Errorf("DeleteObjects: no checksum verified (%v)", r.header)
	}
	// CompleteMultipartUpload's checksum header is the object's, not the
	// body's: it must not be checked against the XML.
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("bucket"), Key: aws.String("k"), UploadId: aws.String("u1"),
		ChecksumCRC32: aws.String("AAAAAA=="), ChecksumType: types.ChecksumTypeFullObject,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: aws.String(`"e1"`), PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatal(err)
	}
	// Wrong secret.
	bad := s3.New(s3.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(testCreds.AccessKey, "wrong", ""),
		BaseEndpoint: aws.String(s.URL), UsePathStyle: true, HTTPClient: s.Client(), RetryMaxAttempts: 1,
	})
	_, err = bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	_, err = bad.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k2"), Body: bytes.NewReader(data)})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, ok := s.object("/bucket/k2"); ok {
		t.Fatal("object stored with a bad signature")
	}
}

func TestAWSClientPresign(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t, false)
	s.objects["/bucket/dir/file name.txt"] = []byte("presigned content")
	pc := s3.NewPresignClient(awsClient(s))
	p, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/file name.txt")},
		s3.WithPresignExpires(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		req, _ := http.NewRequest(p.Method, p.URL, nil)
		for k, v := range p.SignedHeader {
			if k != "Host" {
				req.Header[k] = v
			}
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "presigned content" {
		t.Fatalf("%d %s (%s)", code, body, p.URL)
	}
	if !s.last(t).auth.Presigned {
		t.Fatal("not seen as presigned")
	}
	s.skew.Store(int64(16 * time.Minute))
	if code, body := get(); code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("expired: %d %s", code, body)
	}

	// A presigned PUT.
	s.skew.Store(0)
	pp, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("up.txt")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(pp.Method, pp.URL, strings.NewReader("uploaded"))
	for k, v := range pp.SignedHeader {
		if k != "Host" {
			req.Header[k] = v
		}
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := s.object("/bucket/up.txt"); resp.StatusCode != 200 || string(got) != "uploaded" {
		t.Fatalf("presigned PUT: %d %q %v", resp.StatusCode, got, s.last(t).err)
	}
}

func minioClient(t *testing.T, s *testServer, tls, trailing bool) *minio.Client {
	opts := &minio.Options{
		Creds:           miniocreds.NewStaticV4(testCreds.AccessKey, testCreds.SecretKey, ""),
		Secure:          tls,
		Region:          "us-east-1",
		Transport:       s.Client().Transport,
		TrailingHeaders: trailing,
	}
	c, err := minio.New(strings.TrimPrefix(strings.TrimPrefix(s.URL, "https://"), "http://"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMinioClientPutObject(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		tls      bool
		trailing bool
		checksum minio.ChecksumType
		payload  string
		alg      string
	}{
		{"http", false, false, 0, StreamingPayload, ""},
		{"http/trailer", false, true, minio.ChecksumCRC32C, StreamingPayloadTrailer, CRC32C},
		{"http/trailer-crc64nvme", false, true, minio.ChecksumCRC64NVME, StreamingPayloadTrailer, CRC64NVME},
		{"tls", true, false, 0, UnsignedPayload, ""},
		// minio-go v7.4.1's automatic CRC32C (TrailingHeaders without an
		// explicit Checksum) puts x-amz-checksum-algorithm into the
		// metadata, and then sees that "user" checksum header and sends no
		// trailer at all on a single PUT.
		{"tls/trailer-auto", true, true, 0, UnsignedPayload, ""},
		{"tls/trailer-crc32c", true, true, minio.ChecksumCRC32C, StreamingUnsignedPayloadTrailer, CRC32C},
		{"tls/trailer-sha256", true, true, minio.ChecksumSHA256, StreamingUnsignedPayloadTrailer, SHA256},
	} {
		for _, n := range []int{1000, 3*64*1024 + 333} {
			t.Run(tc.name+"/"+itoa(n), func(t *testing.T) {
				s := newTestServer(t, tc.tls)
				c := minioClient(t, s, tc.tls, tc.trailing)
				data := testData(n)
				_, err := c.PutObject(ctx, "bucket", "dir/obj (1).bin", bytes.NewReader(data), int64(n),
					minio.PutObjectOptions{Checksum: tc.checksum, UserMetadata: map[string]string{"color": "blue"}})
				if err != nil {
					t.Fatal(err)
				}
				r := s.last(t)
				if r.auth.Payload != tc.payload {
					t.Errorf("payload mode %s, want %s", r.auth.Payload, tc.payload)
				}
				if r.checksum.Algorithm != tc.alg {
					t.Errorf("checksum %+v, want %s", r.checksum, tc.alg)
				}
				if got, ok := s.object("/bucket/dir/obj (1).bin"); !ok || !bytes.Equal(got, data) {
					t.Fatalf("stored %d bytes, want %d", len(got), n)
				}
			})
		}
	}
}

func TestMinioClientPresign(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t, false)
	s.objects["/bucket/photo ä.jpg"] = []byte("jpeg")
	c := minioClient(t, s, false, false)
	u, err := c.PresignedGetObject(ctx, "bucket", "photo ä.jpg", 10*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "jpeg" {
		t.Fatalf("%d %s", code, body)
	}
	s.skew.Store(int64(11 * time.Minute))
	if code, body := get(); code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("expired: %d %s", code, body)
	}
}

// flipTransport changes one byte of every PUT body on its way to the server.
type flipTransport struct {
	base http.RoundTripper
	at   int64
}

func (f flipTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || r.Body == nil {
		return f.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.Body = &flipBody{ReadCloser: r.Body, at: f.at}
	return f.base.RoundTrip(r2)
}

type flipBody struct {
	io.ReadCloser
	at, off int64
}

func (b *flipBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.at >= b.off && b.at < b.off+int64(n) {
		p[b.at-b.off] ^= 0x01
	}
	b.off += int64(n)
	return n, err
}

func TestClientsTamperedInFlight(t *testing.T) {
	ctx := context.Background()
	data := testData(200 * 1024)

	// aws-sdk-go-v2 over TLS: unsigned chunks, CRC32 trailer.
	s := newTestServer(t, true)
	c := s3.New(s3.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(testCreds.AccessKey, testCreds.SecretKey, ""),
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               true,
		HTTPClient:                 &http.Client{Transport: flipTransport{s.Client().Transport, 5000}},
		RetryMaxAttempts:           1,
	})
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k"), Body: bytes.NewReader(data)})
	if err == nil || !strings.Contains(err.Error(), "BadDigest") {
		t.Fatalf("aws: %v", err)
	}
	if _, ok := s.object("/bucket/k"); ok {
		t.Fatal("aws: tampered object stored")
	}
	// Over plain HTTP: the body's SHA-256 is signed.
	s = newTestServer(t, false)
	c = s3.New(s3.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(testCreds.AccessKey, testCreds.SecretKey, ""),
		BaseEndpoint:     aws.String(s.URL),
		UsePathStyle:     true,
		HTTPClient:       &http.Client{Transport: flipTransport{s.Client().Transport, 5000}},
		RetryMaxAttempts: 1,
	})
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k"), Body: bytes.NewReader(data)})
	if err == nil || !strings.Contains(err.Error(), "XAmzContentSHA256Mismatch") {
		t.Fatalf("aws http: %v", err)
	}

	// minio-go over HTTP: every chunk signed.
	for _, trailing := range []bool{false, true} {
		s = newTestServer(t, false)
		m, err := minio.New(strings.TrimPrefix(s.URL, "http://"), &minio.Options{
			Creds:           miniocreds.NewStaticV4(testCreds.AccessKey, testCreds.SecretKey, ""),
			Region:          "us-east-1",
			Transport:       flipTransport{s.Client().Transport, 150 * 1024},
			TrailingHeaders: trailing,
		})
		if err != nil {
			t.Fatal(err)
		}
		opts := minio.PutObjectOptions{}
		if trailing {
			opts.Checksum = minio.ChecksumCRC32C
		}
		_, err = m.PutObject(ctx, "bucket", "k", bytes.NewReader(data), int64(len(data)), opts)
		if err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("minio: %v", err)
		}
		if r := s.last(t); !errors.Is(r.err, ErrSignatureDoesNotMatch) {
			t.Fatalf("minio: server saw %v", r.err)
		}
		if _, ok := s.object("/bucket/k"); ok {
			t.Fatal("minio: tampered object stored")
		}
	}
}

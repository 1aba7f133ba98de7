package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

const (
	testAccess = "AKIATESTSSEFS"
	testSecret = "secret/test+key=for-ssefs"
	testKMSKey = "test-key"
	testChunk  = 128 << 10
)

// env is a real engine in a temporary directory served over HTTP(S).
type env struct {
	e      *fs.Engine
	srv    *httptest.Server
	store  *objstore.Local
	db     *meta.DB
	minio  *minio.Client
	aws    *awss3.Client
	tlsOn  bool
	server *Server
}

func newEnv(t *testing.T, useTLS bool) *env {
	t.Helper()
	dir := t.TempDir()
	master, err := keys.GenerateMasterKey(testKMSKey)
	if err != nil {
		t.Fatal(err)
	}
	metaKey := make([]byte, 32)
	rand.Read(metaKey)
	db, err := meta.Open(filepath.Join(dir, "meta"), metaKey, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := objstore.NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := fs.New(fs.Config{Meta: db, Store: store, Sealer: keys.NewSealer(master, master.Name(), time.Minute), ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(e, Config{Credentials: sigv4.Static(sigv4.Credentials{AccessKey: testAccess, SecretKey: testSecret}),
		Owner: fs.Owner{Uid: 1000, Gid: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	en := &env{e: e, store: store, db: db, tlsOn: useTLS, server: s}
	if useTLS {
		en.srv = httptest.NewTLSServer(s)
	} else {
		en.srv = httptest.NewServer(s)
	}
	t.Cleanup(func() {
		en.srv.Close()
		e.Close()
		db.Close()
		store.Close()
	})
	u, _ := url.Parse(en.srv.URL)
	en.minio, err = minio.New(u.Host, &minio.Options{
		Creds:        miniocreds.NewStaticV4(testAccess, testSecret, ""),
		Secure:       useTLS,
		Transport:    en.srv.Client().Transport,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	en.aws = awsClient(en, testSecret)
	return en
}

// awsClient is configured as config.LoadDefaultConfig would: checksums "when
// supported", so PUTs carry a CRC32 (in a trailer over TLS).
func awsClient(en *env, secret string) *awss3.Client {
	return awss3.New(awss3.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(testAccess, secret, ""),
		BaseEndpoint:               aws.String(en.srv.URL),
		UsePathStyle:               true,
		HTTPClient:                 en.srv.Client(),
		RetryMaxAttempts:           1,
	})
}

func (en *env) mkBucket(t *testing.T, name string) {
	t.Helper()
	if err := en.minio.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}

func (en *env) put(t *testing.T, bucket, key string, data []byte, opt minio.PutObjectOptions) minio.UploadInfo {
	t.Helper()
	info, err := en.minio.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), opt)
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return info
}

func (en *env) get(t *testing.T, bucket, key string, opt minio.GetObjectOptions) []byte {
	t.Helper()
	o, err := en.minio.GetObject(context.Background(), bucket, key, opt)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return b
}

// keysOf lists every key of a bucket through the engine (not through the frontend under
// test), so "nothing was stored" is checked independently.
func (en *env) keysOf(t *testing.T, bucket string) []string {
	t.Helper()
	res, err := en.e.ListObjects(context.Background(), bucket, fs.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.Key)
	}
	return out
}

func randData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// minioCode returns the S3 error code and status of a minio-go error.
func minioCode(err error) (string, int) {
	r := minio.ToErrorResponse(err)
	return r.Code, r.StatusCode
}

// awsCode returns the S3 error code of an aws-sdk-go-v2 error.
func awsCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantMinioErr(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	gotCode, gotStatus := minioCode(err)
	if gotCode != code || gotStatus != status {
		t.Fatalf("error %s/%d (%v), want %s/%d", gotCode, gotStatus, err, code, status)
	}
}

// s3Error is the error document as the client receives it.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Key       string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// do sends a raw request signed as aws-sdk-go-v2 signs (UNSIGNED-PAYLOAD), for
// requests no SDK lets us make.
func (en *env) do(t *testing.T, method, path string, hdr http.Header, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, en.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the path exactly as given (no cleaning, no re-encoding).
	if p, q, ok := strings.Cut(path, "?"); ok {
		req.URL.Opaque = ""
		req.URL.RawPath = ""
		req.URL.Path, _ = url.PathUnescape(p)
		req.URL.RawQuery = q
	} else {
		req.URL.Path, _ = url.PathUnescape(p)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("X-Amz-Content-Sha256", sigv4.UnsignedPayload)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccess, SecretAccessKey: testSecret},
		req, sigv4.UnsignedPayload, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := en.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readError decodes an error response and checks the request ID it carries.
func readError(t *testing.T, resp *http.Response) s3Error {
	t.Helper()
	var e s3Error
	b, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	if id := resp.Header.Get("X-Amz-Request-Id"); id == "" || e.RequestID != id {
		t.Fatalf("request id %q in the body, %q in the header", e.RequestID, id)
	}
	return e
}

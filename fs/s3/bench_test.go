package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/s3/sigv4"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// Benchmarks of the S3 frontend's http.Handler without a network: requests made with
// httptest.NewRequest, signed by aws-sdk-go-v2's signer as the AWS CLI signs over plain
// HTTP (x-amz-content-sha256 = the body's SHA-256), served by Server.ServeHTTP into a
// response writer that discards the body. The engine runs on real stores in b.TempDir()
// with the default chunk size. Run with -benchmem.

// benchServer is a Server over a fresh engine, with one bucket "bench".
func benchServer(b *testing.B) *Server {
	b.Helper()
	dir := b.TempDir()
	master, err := keys.GenerateMasterKey(testKMSKey)
	if err != nil {
		b.Fatal(err)
	}
	metaKey := make([]byte, 32)
	rand.Read(metaKey)
	db, err := meta.Open(filepath.Join(dir, "meta"), metaKey, meta.Options{})
	if err != nil {
		b.Fatal(err)
	}
	store, err := objstore.NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := fs.New(fs.Config{Meta: db, Store: store, Sealer: keys.NewSealer(master, master.Name(), 5*time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		e.Close()
		db.Close()
		store.Close()
	})
	s, err := New(e, Config{Credentials: sigv4.Static(sigv4.Credentials{AccessKey: testAccess, SecretKey: testSecret}),
		Owner: fs.Owner{Uid: 1000, Gid: 1000}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.CreateBucket(context.Background(), "bench", fs.Owner{Mode: 0o755}); err != nil {
		b.Fatal(err)
	}
	return s
}

var benchSigner = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })

// benchRequest makes a request to path signed over body's SHA-256.
func benchRequest(b *testing.B, method, path string, body []byte) *http.Request {
	b.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:9000"+path, bytes.NewReader(body))
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Content-Sha256", payload)
	if err := benchSigner.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccess, SecretAccessKey: testSecret},
		r, payload, "s3", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	return r
}

// discardWriter is an http.ResponseWriter that keeps the status and counts the body, so
// the benchmark measures the server, not a recorder's buffer.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += int64(len(p))
	return len(p), nil
}

func benchServe(b *testing.B, s *Server, r *http.Request) *discardWriter {
	w := &discardWriter{h: make(http.Header)}
	s.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Fatalf("%s %s: status %d", r.Method, r.URL.Path, w.status)
	}
	return w
}

var benchSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}}

// BenchmarkS3PutObject PUTs a new object per op (a new key: signing each request is left
// out of the timing).
func BenchmarkS3PutObject(b *testing.B) {
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			s := benchServer(b)
			data := make([]byte, bc.size)
			rand.Read(data)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				b.StopTimer()
				r := benchRequest(b, http.MethodPut, fmt.Sprintf("/bench/dir/obj-%08d", n), data)
				n++
				b.StartTimer()
				benchServe(b, s, r)
			}
		})
	}
}

// BenchmarkS3GetObject GETs a stored object whole per op, with the same signed request.
func BenchmarkS3GetObject(b *testing.B) {
	for _, bc := range benchSizes {
		b.Run(bc.name, func(b *testing.B) {
			s := benchServer(b)
			data := make([]byte, bc.size)
			rand.Read(data)
			benchServe(b, s, benchRequest(b, http.MethodPut, "/bench/dir/obj", data))
			r := benchRequest(b, http.MethodGet, "/bench/dir/obj", nil)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				r.Body = io.NopCloser(bytes.NewReader(nil))
				if w := benchServe(b, s, r); w.n != int64(bc.size) {
					b.Fatalf("got %d bytes, want %d", w.n, bc.size)
				}
			}
		})
	}
}

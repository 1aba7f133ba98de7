package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

type seenRequest struct {
	api    string
	status int
}

type recordingObserver struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (r *recordingObserver) Request(api string, status int, start time.Time) {
	if start.IsZero() || start.After(time.Now()) {
		panic("Request given a start time that is not when the request began")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, seenRequest{api, status})
}

func (r *recordingObserver) take() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

// TestObserverSeesEveryRequest: each request is reported once, under the S3 API it
// called and with the status the client got, failures included.
func TestObserverSeesEveryRequest(t *testing.T) {
	en := newEnv(t, false)
	obs := &recordingObserver{}
	en.server.obs = obs
	ctx := context.Background()

	en.mkBucket(t, "bkt")
	en.put(t, "bkt", "k", []byte("hello"), minio.PutObjectOptions{})
	if got := en.get(t, "bkt", "k", minio.GetObjectOptions{}); string(got) != "hello" {
		t.Fatalf("GET returned %q", got)
	}
	if _, err := en.minio.StatObject(ctx, "bkt", "missing", minio.StatObjectOptions{}); err == nil {
		t.Fatal("HEAD of a missing key succeeded")
	}
	if _, err := en.minio.CopyObject(ctx, minio.CopyDestOptions{Bucket: "bkt", Object: "k2"}, minio.CopySrcOptions{Bucket: "bkt", Object: "k"}); err != nil {
		t.Fatal(err)
	}
	for range en.minio.ListObjects(ctx, "bkt", minio.ListObjectsOptions{}) {
	}
	resp := en.do(t, http.MethodPut, "/bkt?tagging", nil, []byte("<Tagging/>"))
	io.Copy(io.Discard, resp.Body)
	if err := en.minio.RemoveObject(ctx, "bkt", "k2", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	want := []seenRequest{
		{"CreateBucket", 200}, {"PutObject", 200}, {"GetObject", 200}, {"HeadObject", 404},
		{"CopyObject", 200}, {"ListObjectsV2", 200}, {"PutBucketTagging", 501}, {"DeleteObject", 204},
	}
	got := obs.take()
	if len(got) != len(want) {
		t.Fatalf("observer saw %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: observer saw %v, want %v", i, got[i], want[i])
		}
	}
}

// TestAPINames: the API names follow S3's protocol, sub-resources included, and form a
// small fixed set (they are metric labels).
func TestAPINames(t *testing.T) {
	cases := []struct {
		method, path, copySource, want string
	}{
		{"GET", "/", "", "ListBuckets"},
		{"PUT", "/", "", "Unknown"},
		{"GET", "/b", "", "ListObjects"},
		{"GET", "/b?list-type=2&prefix=a", "", "ListObjectsV2"},
		{"GET", "/b?uploads", "", "ListMultipartUploads"},
		{"GET", "/b?versions", "", "ListObjectVersions"},
		{"GET", "/b?location", "", "GetBucketLocation"},
		{"PUT", "/b?encryption", "", "PutBucketEncryption"},
		{"DELETE", "/b?encryption", "", "DeleteBucketEncryption"},
		{"GET", "/b?object-lock", "", "GetObjectLockConfiguration"},
		{"HEAD", "/b", "", "HeadBucket"},
		{"PUT", "/b", "", "CreateBucket"},
		{"DELETE", "/b", "", "DeleteBucket"},
		{"POST", "/b?delete", "", "DeleteObjects"},
		{"POST", "/b", "", "PostObject"},
		{"GET", "/b/k", "", "GetObject"},
		{"HEAD", "/b/k", "", "HeadObject"},
		{"PUT", "/b/k", "", "PutObject"},
		{"PUT", "/b/k", "/b/src", "CopyObject"},
		{"DELETE", "/b/k", "", "DeleteObject"},
		{"GET", "/b/k?uploadId=1", "", "ListParts"},
		{"PUT", "/b/k?partNumber=1&uploadId=1", "", "UploadPart"},
		{"PUT", "/b/k?partNumber=1&uploadId=1", "/b/src", "UploadPartCopy"},
		{"DELETE", "/b/k?uploadId=1", "", "AbortMultipartUpload"},
		{"POST", "/b/k?uploads", "", "CreateMultipartUpload"},
		{"POST", "/b/k?uploadId=1", "", "CompleteMultipartUpload"},
		{"GET", "/b/k?tagging", "", "GetObjectTagging"},
		{"PUT", "/b/k?acl", "", "PutObjectAcl"},
		{"DELETE", "/b/k?tagging", "", "DeleteObjectTagging"},
		{"POST", "/b/k?select&select-type=2", "", "SelectObjectContent"},
		{"PATCH", "/b/k", "", "Unknown"},
	}
	for _, c := range cases {
		r, err := http.NewRequest(c.method, "http://h"+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.copySource != "" {
			r.Header.Set("X-Amz-Copy-Source", c.copySource)
		}
		bucket, key := splitPath(r.URL.Path)
		if got := apiName(r, bucket, key); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// TestHealthEndpoints: MinIO's health paths answer without credentials, ready follows
// Config.Ready, and a signed request to the same path is an S3 request as any other.
func TestHealthEndpoints(t *testing.T) {
	en := newEnv(t, false)
	var notReady error
	var mu sync.Mutex
	en.server.ready = func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return notReady
	}
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, en.srv.URL+path, nil)
		resp, err := en.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{healthLivePath, healthReadyPath} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			if code, _ := get(m, p); code != http.StatusOK {
				t.Errorf("%s %s: %d, want 200", m, p, code)
			}
		}
	}
	mu.Lock()
	notReady = errors.New("object store: connection refused")
	mu.Unlock()
	if code, body := get(http.MethodGet, healthReadyPath); code != http.StatusServiceUnavailable || body != "object store: connection refused\n" {
		t.Errorf("ready with a broken store: %d %q, want 503 and the reason", code, body)
	}
	if code, _ := get(http.MethodGet, healthLivePath); code != http.StatusOK {
		t.Errorf("live with a broken store: %d, want 200 (the process answers)", code)
	}
	// Other paths still need credentials.
	if code, _ := get(http.MethodGet, "/minio/health/other"); code != http.StatusForbidden {
		t.Errorf("anonymous GET of another path: %d, want 403", code)
	}
	// Signed, the path is bucket "minio", key "health/live": there is no such bucket.
	resp := en.do(t, http.MethodGet, healthLivePath, nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("signed GET %s: %d, want 404 NoSuchBucket", healthLivePath, resp.StatusCode)
	}
}

// TestRequestIDInLogsHeaderAndError: the request ID a client gets (header and error
// document) is on every log line the request wrote.
func TestRequestIDInLogsHeaderAndError(t *testing.T) {
	en := newEnv(t, false)
	var buf bytes.Buffer
	var mu sync.Mutex
	en.server.log = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	en.mkBucket(t, "bkt")
	resp := en.do(t, http.MethodGet, "/bkt/missing", nil, nil)
	e := readError(t, resp) // checks header == body
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	mu.Unlock()
	found := 0
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if id, _ := rec["request"].(string); id == "" {
			t.Errorf("S3 log line without a request ID: %s", l)
		} else if id == e.RequestID {
			found++
		}
	}
	if found == 0 {
		t.Errorf("no log line carries request ID %s; log:\n%s", e.RequestID, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

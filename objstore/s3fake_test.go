package objstore

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeS3 is a small in-memory S3 (path-style, one bucket, no auth) that fails on
// purpose: enough of PUT, GET with Range, HEAD, DELETE and ListObjectsV2 for minio-go,
// with hooks to fail or stall requests and counters of what arrived. The real thing
// (MinIO) runs the same contract in the tests that find its binary.
type fakeS3 struct {
	t      testing.TB
	bucket string
	srv    *httptest.Server

	mu      sync.Mutex
	objects map[string][]byte
	sse     map[string]string // key -> x-amz-server-side-encryption of its last PUT
	ranges  []string          // Range headers of GETs, in order
	served  int64             // body bytes sent by GETs
	vhost   int               // requests addressed virtual-host style

	// fail, if set, may answer a request instead of the store: it returns the status and
	// S3 error code to send, or 0.
	fail func(r *http.Request, n int64) (int, string)
	// truncate: so many GETs send half their body, then drop the connection.
	truncate atomic.Int32
	// delay stalls every request (until the client gives up, if it is longer).
	delay time.Duration

	requests atomic.Int64 // every request that arrived
	inFlight atomic.Int64
	maxIn    atomic.Int64
	byMethod sync.Map // method -> *atomic.Int64
}

func newFakeS3(t testing.TB) *fakeS3 {
	f := &fakeS3{t: t, bucket: "fake-bucket", objects: map[string][]byte{}, sse: map[string]string{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		f.srv.CloseClientConnections() // stalled handlers must not hold Close up
		f.srv.Close()
	})
	return f
}

func (f *fakeS3) config() S3Config {
	return S3Config{
		Endpoint: f.srv.URL, Bucket: f.bucket, Prefix: "pre/fix", Region: "us-east-1",
		AccessKey: "fake-access", SecretKey: "fake-secret", PathStyle: PathStyleOn,
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Timeout: 5 * time.Second,
	}
}

func (f *fakeS3) count(method string) int64 {
	v, ok := f.byMethod.Load(method)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (f *fakeS3) setFail(fn func(r *http.Request, n int64) (int, string)) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	c, _ := f.byMethod.LoadOrStore(r.Method, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	in := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxIn.Load()
		if in <= m || f.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	f.mu.Lock()
	fail, delay := f.fail, f.delay
	f.mu.Unlock()
	if delay > 0 {
		// Read the body first: the server notices a client that hangs up (and cancels
		// r.Context()) only once the body is consumed.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail != nil {
		if status, code := fail(r, n); status != 0 {
			io.Copy(io.Discard, r.Body)
			f.errorXML(w, r, status, code)
			return
		}
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if strings.HasPrefix(r.Host, f.bucket+".") { // virtual-host style
		bucket, key = f.bucket, strings.TrimPrefix(r.URL.Path, "/")
		f.mu.Lock()
		f.vhost++
		f.mu.Unlock()
	}
	if bucket != f.bucket {
		f.errorXML(w, r, http.StatusNotFound, "NoSuchBucket")
		return
	}
	switch {
	case key == "" && r.Method == http.MethodGet && r.URL.Query().Has("location"):
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">us-east-1</LocationConstraint>`))
	case key == "" && r.Method == http.MethodGet:
		f.list(w, r)
	case r.Method == http.MethodPut:
		f.put(w, r, key)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		f.get(w, r, key)
	case r.Method == http.MethodDelete:
		f.mu.Lock()
		delete(f.objects, key)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		f.errorXML(w, r, http.StatusNotImplemented, "NotImplemented")
	}
}

func (f *fakeS3) errorXML(w http.ResponseWriter, r *http.Request, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake %s</Message><Resource>%s</Resource><RequestId>1</RequestId></Error>`,
			code, code, r.URL.Path)
	}
}

func (f *fakeS3) put(w http.ResponseWriter, r *http.Request, key string) {
	var body []byte
	var err error
	if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		body, err = decodeAWSChunked(r.Body)
	} else {
		body, err = io.ReadAll(r.Body)
	}
	if err != nil {
		return // the client went away mid-body
	}
	if want := r.Header.Get("X-Amz-Decoded-Content-Length"); want != "" && want != strconv.Itoa(len(body)) {
		f.errorXML(w, r, http.StatusBadRequest, "IncompleteBody")
		return
	}
	f.mu.Lock()
	f.objects[key] = body
	f.sse[key] = r.Header.Get("X-Amz-Server-Side-Encryption")
	f.mu.Unlock()
	w.Header().Set("ETag", `"fake-etag"`)
	w.WriteHeader(http.StatusOK)
}

// decodeAWSChunked reads the aws-chunked body of a streaming SigV4 upload:
// "HEX;chunk-signature=...\r\nDATA\r\n" ..., ending with a chunk of size 0.
func decodeAWSChunked(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(r)
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		hexSize, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(hexSize, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("bad chunk header %q", line)
		}
		if n == 0 {
			return out, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		out = append(out, buf[:n]...)
	}
}

func (f *fakeS3) get(w http.ResponseWriter, r *http.Request, key string) {
	f.mu.Lock()
	data, ok := f.objects[key]
	if r.Method == http.MethodGet {
		f.ranges = append(f.ranges, r.Header.Get("Range"))
	}
	f.mu.Unlock()
	if !ok {
		f.errorXML(w, r, http.StatusNotFound, "NoSuchKey")
		return
	}
	h := w.Header()
	h.Set("Last-Modified", time.Unix(1700000000, 0).UTC().Format(http.TimeFormat))
	h.Set("ETag", `"fake-etag"`)
	h.Set("Content-Type", "application/octet-stream")
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && r.Method == http.MethodGet {
		var a, b int64
		if _, err := fmt.Sscanf(rg, "bytes=%d-%d", &a, &b); err != nil || a > b {
			f.errorXML(w, r, http.StatusBadRequest, "InvalidArgument")
			return
		}
		if a >= int64(len(data)) {
			f.errorXML(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
			return
		}
		b = min(b, int64(len(data))-1)
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(data)))
		data = data[a : b+1]
		status = http.StatusPartialContent
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	if r.Method == http.MethodGet && f.truncate.Add(-1) >= 0 {
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	if r.Method == http.MethodGet {
		// Counted before it is sent: the client may have it all before Write returns.
		f.mu.Lock()
		f.served += int64(len(data))
		f.mu.Unlock()
		w.Write(data)
	}
}

type fakeListResult struct {
	XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string
	Prefix                string
	KeyCount              int
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	IsTruncated           bool
	NextContinuationToken string `xml:",omitempty"`
	Contents              []fakeListObject
	CommonPrefixes        []struct{ Prefix string }
}

type fakeListObject struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
}

func (f *fakeS3) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	after := q.Get("start-after")
	if tok := q.Get("continuation-token"); tok != "" {
		after = tok
	}
	maxKeys := 1000
	if v, err := strconv.Atoi(q.Get("max-keys")); err == nil && v > 0 && v < maxKeys {
		maxKeys = v
	}
	f.mu.Lock()
	keys := make([]string, 0, len(f.objects))
	for k := range f.objects {
		keys = append(keys, k)
	}
	sizes := make(map[string]int64, len(keys))
	for _, k := range keys {
		sizes[k] = int64(len(f.objects[k]))
	}
	f.mu.Unlock()
	sort.Strings(keys)
	res := fakeListResult{Name: f.bucket, Prefix: prefix, MaxKeys: maxKeys, Delimiter: delim}
	seen := map[string]bool{}
	last := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		if res.KeyCount == maxKeys {
			res.IsTruncated = true
			res.NextContinuationToken = last
			break
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if !seen[cp] {
					seen[cp] = true
					res.CommonPrefixes = append(res.CommonPrefixes, struct{ Prefix string }{cp})
					res.KeyCount++
				}
				last = k
				continue
			}
		}
		res.Contents = append(res.Contents, fakeListObject{Key: k, LastModified: "2023-11-14T22:13:20.000Z",
			ETag: `"fake-etag"`, Size: sizes[k], StorageClass: "STANDARD"})
		res.KeyCount++
		last = k
	}
	w.Header().Set("Content-Type", "application/xml")
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(res); err != nil {
		f.t.Errorf("fake list: %v", err)
	}
	w.Write(buf.Bytes())
}

// object returns what the fake holds under key.
func (f *fakeS3) object(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[key]
	return b, ok
}

func (f *fakeS3) setObject(key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = data
}

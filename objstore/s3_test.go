package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssefs/ssefs/internal/miniotest"
)

func newTestS3(t *testing.T, cfg S3Config) *S3 {
	t.Helper()
	s, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The contract, against the fake (fast, and it runs everywhere).
func TestContractS3Fake(t *testing.T) {
	testContract(t, func(t *testing.T) Store { return newTestS3(t, newFakeS3(t).config()) })
}

// ... and with the local cache in front.
func TestContractS3FakeCached(t *testing.T) {
	testContract(t, func(t *testing.T) Store {
		cfg := newFakeS3(t).config()
		cfg.CacheDir, cfg.CacheBytes = t.TempDir(), 64<<20
		return newTestS3(t, cfg)
	})
}

func failN(n int64, status int, code string) func(*http.Request, int64) (int, string) {
	return func(_ *http.Request, i int64) (int, string) {
		if i <= n {
			return status, code
		}
		return 0, ""
	}
}

// 503 SlowDown, 500 InternalError and 429 are retried with backoff until one succeeds.
func TestS3RetriesTransientErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
	}{
		{503, "SlowDown"}, {500, "InternalError"}, {503, "ServiceUnavailable"}, {429, "TooManyRequests"}, {502, "BadGateway"},
	} {
		t.Run(c.code, func(t *testing.T) {
			f := newFakeS3(t)
			s := newTestS3(t, f.config())
			ctx := context.Background()
			id, data := NewID(), []byte("retried until stored")
			f.setFail(failN(3, c.status, c.code))
			if err := s.Put(ctx, id, data); err != nil {
				t.Fatalf("Put after 3 failures: %v", err)
			}
			if got := f.requests.Load(); got != 4 {
				t.Errorf("%d requests, want 4 (3 failed + 1)", got)
			}
			if b, _ := f.object(s.Key(id)); !bytes.Equal(b, data) {
				t.Fatalf("stored %q", b)
			}
			f.setFail(failN(f.requests.Load()+2, c.status, c.code))
			p := make([]byte, 7)
			if n, err := s.ReadAt(ctx, id, p, 8); err != nil || string(p[:n]) != "until s" {
				t.Fatalf("ReadAt after 2 failures: %q, %v", p[:n], err)
			}
			if got := f.count(http.MethodGet); got != 3 {
				t.Errorf("%d GETs, want 3", got)
			}
		})
	}
}

// A store that keeps failing makes the operation fail with ErrUnavailable once the
// operation's timeout has passed, not before (give or take the last backoff) and not long
// after, having retried more than once.
func TestS3GivesUpAtTheDeadline(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config()
	cfg.Timeout = 800 * time.Millisecond
	cfg.RetryBase, cfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	s := newTestS3(t, cfg)
	f.setFail(func(*http.Request, int64) (int, string) { return 503, "SlowDown" })
	start := time.Now()
	err := s.Put(context.Background(), NewID(), []byte("never stored"))
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put against a failing store: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "SlowDown") {
		t.Errorf("error %q does not say what the store answered", err)
	}
	if took < 600*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("gave up after %s, want about the 800ms timeout", took)
	}
	// How many attempts fit depends on how long each takes: under -race on a loaded
	// 2-core CI machine four took 776ms. What matters is that it kept retrying until
	// the deadline rather than a fixed number of times, which the bound on took above
	// checks (the first two waits are at most 60ms together).
	if n := f.requests.Load(); n < 3 {
		t.Errorf("only %d attempts in %s", n, took)
	}
	// The same holds for reads, deletes and listings.
	f.setFail(func(*http.Request, int64) (int, string) { return 500, "InternalError" })
	if _, err := s.ReadAt(context.Background(), NewID(), make([]byte, 4), 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ReadAt: %v, want ErrUnavailable", err)
	}
	if err := s.Delete(context.Background(), NewID()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Delete: %v, want ErrUnavailable", err)
	}
	if err := s.Walk(context.Background(), func(ID, int64) error { return nil }); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Walk: %v, want ErrUnavailable", err)
	}
}

// After an operation gave up, the next ones fail after one attempt timeout instead of the
// whole Timeout, until the service answers again; then the whole Timeout applies again.
func TestS3CircuitBreaker(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config()
	cfg.Timeout, cfg.AttemptTimeout = 1200*time.Millisecond, 200*time.Millisecond
	s := newTestS3(t, cfg)
	ctx := context.Background()
	f.setFail(func(*http.Request, int64) (int, string) { return 503, "SlowDown" })
	timed := func(what string, lo, hi time.Duration) {
		t.Helper()
		start := time.Now()
		err := s.Put(ctx, NewID(), []byte("x"))
		took := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: %v, want ErrUnavailable", what, err)
		}
		if took < lo || took > hi {
			t.Errorf("%s: gave up after %s, want %s to %s", what, took, lo, hi)
		}
	}
	timed("first failure", time.Second, 2*time.Second)
	for i := 0; i < 3; i++ {
		timed("while down", 100*time.Millisecond, 500*time.Millisecond)
	}
	f.setFail(nil)
	if err := s.Put(ctx, NewID(), []byte("x")); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	f.setFail(func(*http.Request, int64) (int, string) { return 503, "SlowDown" })
	timed("failing again", time.Second, 2*time.Second)
	// An answer that is not a success closes the breaker too.
	f.setFail(func(*http.Request, int64) (int, string) { return 403, "AccessDenied" })
	if err := s.Put(ctx, NewID(), []byte("x")); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("AccessDenied: %v", err)
	}
	f.setFail(func(*http.Request, int64) (int, string) { return 503, "SlowDown" })
	timed("after an answer", time.Second, 2*time.Second)
}

// A server that accepts the request and never answers: each attempt is cut at
// AttemptTimeout and retried, and the operation fails at Timeout.
func TestS3SlowServer(t *testing.T) {
	f := newFakeS3(t)
	f.delay = 10 * time.Second
	cfg := f.config()
	cfg.Timeout, cfg.AttemptTimeout = time.Second, 200*time.Millisecond
	s := newTestS3(t, cfg)
	start := time.Now()
	_, err := s.ReadAt(context.Background(), NewID(), make([]byte, 10), 0)
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadAt from a stalled server: %v, want ErrUnavailable wrapping a deadline", err)
	}
	if took < 800*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %s, want about 1s", took)
	}
	if n := f.requests.Load(); n < 3 || n > 6 {
		t.Errorf("%d attempts of 200ms in 1s, want 3 to 5", n)
	}
}

// Nothing listens: connection refused is retried until the timeout.
func TestS3ConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := newTestS3(t, S3Config{
		Endpoint: "http://" + addr, Bucket: "gone", Region: "us-east-1", AccessKey: "a", SecretKey: "b",
		Timeout: 600 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	start := time.Now()
	err = s.Put(context.Background(), NewID(), []byte("x"))
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put to nothing: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say the connection was refused", err)
	}
	if took < 400*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("gave up after %s, want about 600ms", took)
	}
}

// A store that comes back within the timeout: the operation waits and succeeds, and the
// same S3 value keeps working (no reopening).
func TestS3Recovers(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config()
	cfg.Timeout = 10 * time.Second
	s := newTestS3(t, cfg)
	down := time.Now().Add(400 * time.Millisecond)
	f.setFail(func(*http.Request, int64) (int, string) {
		if time.Now().Before(down) {
			return 503, "ServiceUnavailable"
		}
		return 0, ""
	})
	id := NewID()
	if err := s.Put(context.Background(), id, []byte("after the outage")); err != nil {
		t.Fatalf("Put across a 400ms outage: %v", err)
	}
	if time.Now().Before(down) {
		t.Fatal("Put returned during the outage")
	}
	if n := f.requests.Load(); n < 3 {
		t.Errorf("only %d requests across the outage", n)
	}
	p := make([]byte, 16)
	if n, err := s.ReadAt(context.Background(), id, p, 0); err != nil || string(p[:n]) != "after the outage" {
		t.Fatalf("read back: %q, %v", p[:n], err)
	}
}

// Errors that another attempt would not change are returned at once.
func TestS3PermanentErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		want   string
	}{
		{403, "AccessDenied", "credentials were refused"},
		{403, "SignatureDoesNotMatch", "credentials were refused"},
		{404, "NoSuchBucket", "bucket does not exist"},
		{400, "InvalidArgument", "InvalidArgument"},
	} {
		t.Run(c.code, func(t *testing.T) {
			f := newFakeS3(t)
			s := newTestS3(t, f.config())
			f.setFail(func(*http.Request, int64) (int, string) { return c.status, c.code })
			err := s.Put(context.Background(), NewID(), []byte("x"))
			if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Put: %v, want a permanent error saying %q", err, c.want)
			}
			if n := f.requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

// A full store is ENOSPC, at once, as a full disk is for Local.
func TestS3StoreFull(t *testing.T) {
	f := newFakeS3(t)
	s := newTestS3(t, f.config())
	f.setFail(func(*http.Request, int64) (int, string) { return 507, "XMinioStorageFull" })
	err := s.Put(context.Background(), NewID(), []byte("x"))
	if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put into a full store: %v, want ENOSPC", err)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// A caller that gives up is answered at once with its own reason, not "unavailable".
func TestS3CallerCancels(t *testing.T) {
	f := newFakeS3(t)
	f.delay = 10 * time.Second
	s := newTestS3(t, f.config())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err := s.Put(ctx, NewID(), []byte("x"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put canceled by the caller: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s to notice the cancel", took)
	}
}

// No more than MaxInFlight requests are ever on the wire, counted at the server, with
// many callers at once and retries among them; and the limit is reached (the callers do
// run in parallel).
func TestS3MaxInFlight(t *testing.T) {
	f := newFakeS3(t)
	f.delay = 20 * time.Millisecond
	cfg := f.config()
	cfg.MaxInFlight = 3
	s := newTestS3(t, cfg)
	f.setFail(func(_ *http.Request, n int64) (int, string) {
		if n%4 == 0 {
			return 503, "SlowDown"
		}
		return 0, ""
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var clientMax atomic.Int64
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				id := NewID()
				if err := s.Put(ctx, id, []byte("limited")); err != nil {
					failed.Add(1)
					t.Error(err)
					continue
				}
				if n := int64(s.InFlight()); n > clientMax.Load() {
					clientMax.Store(n)
				}
				p := make([]byte, 7)
				if _, err := s.ReadAt(ctx, id, p, 0); err != nil || string(p) != "limited" {
					failed.Add(1)
					t.Errorf("read back %q: %v", p, err)
				}
			}
		}()
	}
	wg.Wait()
	if got := f.maxIn.Load(); got > 3 {
		t.Fatalf("the server saw %d requests at once, limit 3", got)
	} else if got < 3 {
		t.Errorf("the server saw at most %d requests at once: the 24 callers did not run in parallel", got)
	}
	if c := clientMax.Load(); c > 3 {
		t.Errorf("InFlight reported %d", c)
	}
	if n := f.requests.Load(); n < 24*4*2 {
		t.Errorf("only %d requests", n)
	}
}

// A read of a range asks for exactly that range and transfers only it.
func TestS3RangedGet(t *testing.T) {
	f := newFakeS3(t)
	s := newTestS3(t, f.config())
	ctx := context.Background()
	id := NewID()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i % 251)
	}
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 64<<10)
	if n, err := s.ReadAt(ctx, id, p, 300000); err != nil || n != len(p) || !bytes.Equal(p, data[300000:300000+len(p)]) {
		t.Fatalf("ReadAt: n=%d err=%v", n, err)
	}
	f.mu.Lock()
	ranges, served := f.ranges, f.served
	f.mu.Unlock()
	if want := fmt.Sprintf("bytes=%d-%d", 300000, 300000+len(p)-1); len(ranges) != 1 || ranges[0] != want {
		t.Fatalf("GETs with ranges %q, want one with %q", ranges, want)
	}
	if served != int64(len(p)) {
		t.Fatalf("the server sent %d bytes for a %d-byte read", served, len(p))
	}
}

// A body cut short by the connection is retried, never returned as a short object.
func TestS3TruncatedBodyRetried(t *testing.T) {
	f := newFakeS3(t)
	s := newTestS3(t, f.config())
	id := NewID()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	f.truncate.Store(1) // the next GET promises the whole body, sends half, drops the connection
	p := make([]byte, len(data))
	n, err := s.ReadAt(context.Background(), id, p, 0)
	if err != nil || n != len(data) || !bytes.Equal(p, data) {
		t.Fatalf("ReadAt after an aborted response: n=%d err=%v", n, err)
	}
	if got := f.count(http.MethodGet); got != 2 {
		t.Errorf("%d GETs, want 2", got)
	}
}

// Virtual-host addressing sends BUCKET.HOST/KEY, path style HOST/BUCKET/KEY.
func TestS3PathStyle(t *testing.T) {
	for _, c := range []struct {
		style PathStyle
		vhost bool
	}{{PathStyleOn, false}, {PathStyleOff, true}, {PathStyleAuto, false}} {
		f := newFakeS3(t)
		cfg := f.config()
		addr := strings.TrimPrefix(f.srv.URL, "http://")
		_, port, _ := net.SplitHostPort(addr)
		cfg.Endpoint = "http://s3.example.test:" + port
		cfg.PathStyle = c.style
		// Every name resolves to the fake.
		cfg.Transport = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
		s := newTestS3(t, cfg)
		id := NewID()
		if err := s.Put(context.Background(), id, []byte("addressed")); err != nil {
			t.Fatalf("style %d: %v", c.style, err)
		}
		p := make([]byte, 9)
		if _, err := s.ReadAt(context.Background(), id, p, 0); err != nil || string(p) != "addressed" {
			t.Fatalf("style %d: read %q %v", c.style, p, err)
		}
		f.mu.Lock()
		vhost := f.vhost
		f.mu.Unlock()
		if (vhost > 0) != c.vhost || c.vhost && vhost != 2 {
			t.Errorf("style %d: %d of 2 requests virtual-host style, want virtual host %v", c.style, vhost, c.vhost)
		}
	}
}

// --store-sse: every PUT carries the SSE headers.
func TestS3SSEHeaders(t *testing.T) {
	for _, c := range []struct{ sse, want string }{{"", ""}, {"s3", "AES256"}, {"kms:my-key", "aws:kms"}} {
		f := newFakeS3(t)
		cfg := f.config()
		cfg.SSE = c.sse
		s := newTestS3(t, cfg)
		id := NewID()
		if err := s.Put(context.Background(), id, []byte("x")); err != nil {
			t.Fatalf("SSE %q: %v", c.sse, err)
		}
		f.mu.Lock()
		got := f.sse[s.Key(id)]
		f.mu.Unlock()
		if got != c.want {
			t.Errorf("SSE %q: PUT header %q, want %q", c.sse, got, c.want)
		}
	}
}

// Walk pages through long listings and reports only PREFIX + canonical IDs.
func TestS3WalkPagesAndSkipsForeignKeys(t *testing.T) {
	old := walkPage
	walkPage = 7
	defer func() { walkPage = old }()
	f := newFakeS3(t)
	s := newTestS3(t, f.config())
	ctx := context.Background()
	want := map[ID]int64{}
	for i := 0; i < 40; i++ {
		id := NewID()
		if err := s.Put(ctx, id, make([]byte, i)); err != nil {
			t.Fatal(err)
		}
		want[id] = int64(i)
	}
	some := NewID()
	for _, k := range []string{
		"pre/fix/" + MarkerName, "pre/fix/README", "pre/fix/sub/" + some.String(),
		"pre/fix/" + strings.ToUpper(some.String()), "pre/fix/" + some.String() + ".tmp",
		"pre/fixture/" + some.String(), "other/" + some.String(), some.String(),
	} {
		f.setObject(k, []byte("foreign"))
	}
	got := map[ID]int64{}
	if err := s.Walk(ctx, func(id ID, size int64) error { got[id] = size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Walk found %d, want %d: %v", len(got), len(want), got)
	}
	for id, size := range want {
		if got[id] != size {
			t.Errorf("%s: size %d, want %d", id, got[id], size)
		}
	}
	if n := f.count(http.MethodGet); n < 40/7 {
		t.Errorf("%d listing requests for %d keys in pages of 7", n, 48)
	}
}

func TestS3Marker(t *testing.T) {
	f := newFakeS3(t)
	s := newTestS3(t, f.config())
	ctx := context.Background()
	if _, err := s.ReadMarker(ctx); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadMarker on an empty prefix: %v", err)
	}
	m := []byte(`{"id":"x"}`)
	if err := s.WriteMarker(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadMarker(ctx); err != nil || !bytes.Equal(got, m) {
		t.Fatalf("ReadMarker: %q, %v", got, err)
	}
	if b, ok := f.object("pre/fix/" + MarkerName); !ok || !bytes.Equal(b, m) {
		t.Fatalf("marker object %q", b)
	}
	if err := s.WriteMarker(ctx, []byte("not json")); err == nil {
		t.Fatal("WriteMarker took a non-JSON marker")
	}
}

func TestS3Cache(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config()
	cfg.CacheDir, cfg.CacheBytes = t.TempDir(), 8<<20
	// Left over by an earlier process: object files go, anything else stays.
	stale := NewID()
	mustWrite(t, filepath.Join(cfg.CacheDir, stale.String()), "stale")
	mustWrite(t, filepath.Join(cfg.CacheDir, "keep-me"), "not the cache's")
	s := newTestS3(t, cfg)
	if _, err := os.Stat(filepath.Join(cfg.CacheDir, stale.String())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cached object of an earlier process survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.CacheDir, "keep-me")); err != nil {
		t.Errorf("the cache removed a file it did not write: %v", err)
	}
	ctx := context.Background()

	// Written through: read without a GET.
	id := NewID()
	data := bytes.Repeat([]byte("c"), 100<<10)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	if n, err := s.ReadAt(ctx, id, p, 50); err != nil || n != 10 || string(p) != "cccccccccc" {
		t.Fatalf("cached read: %q %v", p, err)
	}
	if n := f.count(http.MethodGet); n != 0 {
		t.Fatalf("%d GETs for an object just written", n)
	}
	// The cache holds ciphertext as stored, byte for byte.
	if b, err := os.ReadFile(filepath.Join(cfg.CacheDir, id.String())); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("cache file: %v", err)
	}
	// Read through: one GET of the whole object, then none.
	other := NewID()
	f.setObject(s.Key(other), []byte("fetched once"))
	for i := 0; i < 3; i++ {
		p := make([]byte, 4)
		if n, err := s.ReadAt(ctx, other, p, 8); n != 4 || err != nil || string(p) != "once" {
			t.Fatalf("read-through: %q %d %v", p, n, err)
		}
	}
	if n := f.count(http.MethodGet); n != 1 {
		t.Fatalf("%d GETs for three reads of one object", n)
	}
	f.mu.Lock()
	if f.ranges[0] != "" {
		t.Errorf("read-through asked for range %q, want the whole object", f.ranges[0])
	}
	f.mu.Unlock()
	// Delete drops the cached copy.
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAt(ctx, id, p, 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("read after delete: %v", err)
	}
	// The bound holds: 30 objects of 512 KiB in an 8 MiB cache.
	for i := 0; i < 30; i++ {
		if err := s.Put(ctx, NewID(), make([]byte, 512<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if b := s.cache.bytes(); b > 8<<20 || b < 6<<20 {
		t.Fatalf("cache holds %d bytes, bound %d", b, 8<<20)
	}
	var onDisk int64
	ents, _ := os.ReadDir(cfg.CacheDir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && e.Name() != "keep-me" {
			onDisk += info.Size()
		}
	}
	if onDisk != s.cache.bytes() {
		t.Fatalf("%d bytes on disk, %d accounted", onDisk, s.cache.bytes())
	}
}

func TestS3ConfigErrors(t *testing.T) {
	base := S3Config{Bucket: "bkt", AccessKey: "a", SecretKey: "b"}
	for _, c := range []struct {
		mod  func(*S3Config)
		want string
	}{
		{func(c *S3Config) { c.Bucket = "No_Such" }, "bucket"},
		{func(c *S3Config) { c.Prefix = "a//b" }, "empty path segment"},
		{func(c *S3Config) { c.SSE = "aes" }, "want s3 or kms:KEY-ID"},
		{func(c *S3Config) { c.SSE = "kms:" }, "kms:KEY-ID"},
		{func(c *S3Config) { c.SecretKey = "" }, "needs its secret key"},
		{func(c *S3Config) { c.Endpoint = "ftp://host" }, "want HOST[:PORT]"},
		{func(c *S3Config) { c.Endpoint = "http://host/path" }, "without a path"},
		{func(c *S3Config) { c.Endpoint = "https://host"; c.CAFile = "/nonexistent/ca.pem" }, "CA file"},
		{func(c *S3Config) { c.CacheBytes = 1 }, "without a cache directory"},
	} {
		cfg := base
		c.mod(&cfg)
		if _, err := NewS3(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", cfg, err, c.want)
		}
	}
	// No credentials anywhere: a clear error, not anonymous requests.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SECRET_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	if _, err := NewS3(S3Config{Bucket: "bkt"}); err == nil || !strings.Contains(err.Error(), "no S3 credentials") {
		t.Errorf("no credentials: %v", err)
	}
	// The AWS variables and the shared credentials file are found.
	t.Setenv("AWS_ACCESS_KEY_ID", "env-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	if _, err := NewS3(S3Config{Bucket: "bkt"}); err != nil {
		t.Errorf("credentials from AWS_*: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	file := filepath.Join(t.TempDir(), "credentials")
	mustWrite(t, file, "[other]\naws_access_key_id = file-key\naws_secret_access_key = file-secret\n")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
	t.Setenv("AWS_PROFILE", "other")
	if _, err := NewS3(S3Config{Bucket: "bkt"}); err != nil {
		t.Errorf("credentials from the shared file: %v", err)
	}
}

func TestParseS3URL(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix, err string }{
		{"s3://bkt", "bkt", "", ""},
		{"s3://bkt/", "bkt", "", ""},
		{"s3://bkt/a/b/", "bkt", "a/b", ""},
		{"s3://bkt//a", "bkt", "a", ""},
		{"s3://b", "", "", "bucket name"},
		{"s3://Bkt/x", "", "", "bucket name"},
		{"http://bkt/x", "", "", "not an s3://"},
		{"s3://bkt/a//b", "", "", "empty path segment"},
	} {
		b, p, err := ParseS3URL(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error saying %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("%q: %q %q %v, want %q %q", c.in, b, p, err, c.bucket, c.prefix)
		}
	}
}

// ---------------------------------------------------------------------------------------
// Against a real MinIO (skipped, saying why, when there is no binary; failed under
// SSEFS_REQUIRE_MINIO=1).

func minioStore(t *testing.T, m *miniotest.Server, bucket string, mod func(*S3Config)) *S3 {
	t.Helper()
	cfg := S3Config{
		Endpoint: m.Endpoint, Bucket: bucket, Prefix: "t/" + NewID().String()[:8],
		AccessKey: m.AccessKey, SecretKey: m.SecretKey, CAFile: m.CAFile,
		Timeout: 30 * time.Second, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	return newTestS3(t, cfg)
}

func TestContractS3MinIO(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "contract")
	testContract(t, func(t *testing.T) Store { return minioStore(t, m, "contract", nil) })
}

func TestContractS3MinIOCachedPathStyle(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "contract")
	testContract(t, func(t *testing.T) Store {
		return minioStore(t, m, "contract", func(c *S3Config) {
			c.CacheDir, c.CacheBytes = t.TempDir(), 32<<20
			c.PathStyle = PathStyleOn
		})
	})
}

// TLS with the test CA, and SSE-S3: MinIO's metadata shows the second layer on every
// object, and the bytes it returns are what ssefs stored.
func TestContractS3MinIOTLSAndSSE(t *testing.T) {
	m := miniotest.Start(t, miniotest.WithTLS(), miniotest.WithKMS())
	m.MakeBucket(t, "sealed")
	var stores []*S3
	var mu sync.Mutex
	testContract(t, func(t *testing.T) Store {
		s := minioStore(t, m, "sealed", func(c *S3Config) { c.SSE = "s3" })
		mu.Lock()
		stores = append(stores, s)
		mu.Unlock()
		return s
	})
	objs := m.Objects(t, "sealed", "")
	if len(objs) < 100 {
		t.Fatalf("MinIO holds only %d objects", len(objs))
	}
	for _, o := range objs {
		if got := o.Info.Metadata.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Fatalf("%s: SSE %q, want AES256 (metadata %v)", o.Key, got, o.Info.Metadata)
		}
	}
	// Without the CA the certificate is refused at once, saying so.
	s, err := NewS3(S3Config{Endpoint: m.Endpoint, Bucket: "sealed", AccessKey: m.AccessKey, SecretKey: m.SecretKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.Put(context.Background(), NewID(), []byte("x"))
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("Put to an untrusted server: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("an untrusted certificate was retried for %s", time.Since(start))
	}
}

// Walk on MinIO skips what is not an object of the store; the marker round-trips.
func TestS3MinIOWalkForeignAndMarker(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "walk")
	s := minioStore(t, m, "walk", nil)
	ctx := context.Background()
	ids := map[ID]bool{}
	for i := 0; i < 5; i++ {
		id := NewID()
		if err := s.Put(ctx, id, []byte("obj")); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := s.WriteMarker(ctx, []byte(`{"id":"abc"}`)); err != nil {
		t.Fatal(err)
	}
	c := m.Client(t)
	some := NewID()
	for _, k := range []string{s.Prefix() + "/README", s.Prefix() + "/sub/" + some.String(), s.Prefix() + "x/" + some.String()} {
		if _, err := c.PutObject(ctx, "walk", k, strings.NewReader("foreign"), 7, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	if err := s.Walk(ctx, func(id ID, size int64) error {
		if !ids[id] || size != 3 {
			t.Errorf("Walk reported %s (%d bytes)", id, size)
		}
		got++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != len(ids) {
		t.Fatalf("Walk found %d, want %d", got, len(ids))
	}
	if b, err := s.ReadMarker(ctx); err != nil || string(b) != `{"id":"abc"}` {
		t.Fatalf("ReadMarker: %q %v", b, err)
	}
}

// MinIO stopped: operations fail with ErrUnavailable within the timeout; what was
// acknowledged before is there when it is back, and the same S3 value works again.
func TestS3MinIOStopStart(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "outage")
	s := minioStore(t, m, "outage", func(c *S3Config) { c.Timeout = 2 * time.Second })
	ctx := context.Background()
	before := map[ID][]byte{}
	for i := 0; i < 20; i++ {
		id := NewID()
		data := []byte(fmt.Sprintf("acknowledged %d", i))
		if err := s.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		before[id] = data
	}
	m.Stop()
	start := time.Now()
	err := s.Put(ctx, NewID(), []byte("while down"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put while MinIO is down: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Put while down took %s, timeout 2s", took)
	}
	for id := range before {
		if _, err := s.ReadAt(ctx, id, make([]byte, 4), 0); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("ReadAt while down: %v", err)
		}
		break
	}
	m.Start(t)
	for id, data := range before {
		p := make([]byte, len(data))
		if _, err := s.ReadAt(ctx, id, p, 0); err != nil || !bytes.Equal(p, data) {
			t.Fatalf("after restart %s: %q %v", id, p, err)
		}
	}
	if err := s.Put(ctx, NewID(), []byte("after")); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	// A Put that overlaps the restart waits for it and succeeds.
	m.Stop()
	done := make(chan error, 1)
	id := NewID()
	go func() { done <- s.Put(ctx, id, []byte("across the restart")) }()
	time.Sleep(300 * time.Millisecond)
	m.Start(t)
	if err := <-done; err != nil {
		t.Fatalf("Put across a restart: %v", err)
	}
	p := make([]byte, 18)
	if _, err := s.ReadAt(ctx, id, p, 0); err != nil || string(p) != "across the restart" {
		t.Fatalf("read back: %q %v", p, err)
	}
}

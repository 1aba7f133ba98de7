package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs/fuse"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/objstore"
)

// scrape returns the exposition the handler serves.
func scrape(t *testing.T, s *Set) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// wantLines fails unless every line is in the exposition.
func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("exposition lacks %q", l)
		}
	}
}

// TestHooksMoveTheRightSeries: each hook counts under the labels it should, by the
// amounts it was called, with latencies in the histogram of its operation.
func TestHooksMoveTheRightSeries(t *testing.T) {
	s := New()
	start := time.Now().Add(-3 * time.Millisecond)
	f := s.FUSE()
	for range 3 {
		f.Op(fuse.OpRead, start, 0)
	}
	f.Op(fuse.OpLookup, start, syscall.ENOENT)
	f.Op(fuse.OpLookup, start, syscall.ENOENT)
	f.Op(fuse.OpWrite, start, syscall.Errno(9999)) // no errno Linux has: "other"

	s3 := s.S3()
	s3.Request("PutObject", 200, start)
	s3.Request("PutObject", 200, start)
	s3.Request("GetObject", 404, start)
	s3.Request("GetObject", 0, start)

	k := s.Keys()
	k.KMSCall(keys.KMSGenerateKey, start, nil)
	k.KMSCall(keys.KMSDecrypt, start, fmt.Errorf("keys: unsealing: %w", keys.ErrKeyDisabled))
	k.KMSCall(keys.KMSDecrypt, start, fmt.Errorf("x: %w", keys.ErrUnavailable))
	k.KeyCache(true)
	k.KeyCache(true)
	k.KeyCache(false)

	st := s.Store()
	st.Request(objstore.OpPut, start, nil)
	st.Request(objstore.OpRead, start, fmt.Errorf("x: %w", objstore.ErrNotExist))
	st.Request(objstore.OpDelete, start, errors.New("disk on fire"))

	s.WriteBuffer(func() int64 { return 12345 }, 256<<20)
	s.Badger(func() (int64, int64) { return 1000, 2000 })

	text := scrape(t, s)
	wantLines(t, text,
		`ssefs_fuse_operations_total{op="read",result="ok"} 3`,
		`ssefs_fuse_operations_total{op="lookup",result="ENOENT"} 2`,
		`ssefs_fuse_operations_total{op="write",result="other"} 1`,
		`ssefs_fuse_operations_total{op="write",result="ok"} 0`,
		`ssefs_fuse_operation_seconds_count{op="read"} 3`,
		`ssefs_fuse_operation_seconds_bucket{op="read",le="0.0025"} 0`,
		`ssefs_fuse_operation_seconds_bucket{op="read",le="0.01"} 3`,
		`ssefs_s3_requests_total{api="PutObject",code="200"} 2`,
		`ssefs_s3_requests_total{api="GetObject",code="404"} 1`,
		`ssefs_s3_requests_total{api="GetObject",code="aborted"} 1`,
		`ssefs_s3_request_seconds_count{api="GetObject"} 2`,
		`ssefs_kms_calls_total{op="generate_key",result="ok"} 1`,
		`ssefs_kms_calls_total{op="decrypt",result="key_disabled"} 1`,
		`ssefs_kms_calls_total{op="decrypt",result="unavailable"} 1`,
		`ssefs_kms_calls_total{op="decrypt",result="ok"} 0`,
		`ssefs_kms_call_seconds_count{op="decrypt"} 2`,
		`ssefs_key_cache_hits_total 2`,
		`ssefs_key_cache_misses_total 1`,
		`ssefs_objstore_requests_total{op="put",result="ok"} 1`,
		`ssefs_objstore_requests_total{op="read",result="not_found"} 1`,
		`ssefs_objstore_requests_total{op="delete",result="error"} 1`,
		`ssefs_objstore_request_seconds_count{op="put"} 1`,
		`ssefs_write_buffer_bytes 12345`,
		`ssefs_write_buffer_limit_bytes 2.68435456e+08`,
		`ssefs_badger_size_bytes{kind="lsm"} 1000`,
		`ssefs_badger_size_bytes{kind="vlog"} 2000`,
	)
	for _, name := range []string{"ssefs_bytes_encrypted_total", "ssefs_bytes_decrypted_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("exposition lacks %s", name)
		}
	}
}

// TestNoAllocationsOnHotPaths: once a series exists, recording into it allocates nothing.
func TestNoAllocationsOnHotPaths(t *testing.T) {
	s := New()
	f, s3, k, st := s.FUSE(), s.S3(), s.Keys(), s.Store()
	start := time.Now()
	// First use makes the lazily created series.
	f.Op(fuse.OpLookup, start, syscall.ENOENT)
	s3.Request("GetObject", 200, start)
	for name, fn := range map[string]func(){
		"fuse ok":        func() { f.Op(fuse.OpRead, start, 0) },
		"fuse error":     func() { f.Op(fuse.OpLookup, start, syscall.ENOENT) },
		"s3":             func() { s3.Request("GetObject", 200, start) },
		"kms ok":         func() { k.KMSCall(keys.KMSDecrypt, start, nil) },
		"key cache":      func() { k.KeyCache(true) },
		"objstore":       func() { st.Request(objstore.OpRead, start, nil) },
		"objstore error": func() { st.Request(objstore.OpRead, start, objstore.ErrNotExist) },
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

// BenchmarkFUSEOp is the cost the metrics add to every FUSE operation (a 4 KiB read is
// served in about 15 µs): the observer call, with the clock read that feeds it.
func BenchmarkFUSEOp(b *testing.B) {
	f := New().FUSE()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Op(fuse.OpRead, time.Now(), 0)
		}
	})
}

// BenchmarkFUSEOpError is the same for a failed operation (ENOENT from lookup is common).
func BenchmarkFUSEOpError(b *testing.B) {
	f := New().FUSE()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Op(fuse.OpLookup, time.Now(), syscall.ENOENT)
		}
	})
}

// BenchmarkObjstoreRequest: the cost per object store call (one per chunk read or write).
func BenchmarkObjstoreRequest(b *testing.B) {
	st := New().Store()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.Request(objstore.OpRead, time.Now(), nil)
		}
	})
}

// BenchmarkS3Request: the cost per S3 request.
func BenchmarkS3Request(b *testing.B) {
	s3 := New().S3()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s3.Request("GetObject", 200, time.Now())
		}
	})
}

// BenchmarkKeyCache: the cost per key-cache lookup.
func BenchmarkKeyCache(b *testing.B) {
	k := New().Keys()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.KeyCache(true)
		}
	})
}

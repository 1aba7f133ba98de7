// Package metrics keeps ssefs' Prometheus metrics. It is the one place that knows
// Prometheus: the frontends, the engine, the key sealer and the object store only offer
// small observer hooks (fuse.Observer, s3.Observer, keys.Observer, objstore.Observer),
// which a Set implements.
//
// The hooks run on hot paths (a FUSE read of 4 KiB is served in about 15 µs, tens of
// thousands a second), so what they update is resolved once: a counter and a histogram
// per operation, looked up by the operation's small integer, with no map lookup, lock or
// allocation per call. Labels are bounded sets (operation, result, S3 API, status code):
// never a path, a bucket, an object key or a key name.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/fs/fuse"
	"github.com/ssefs/ssefs/fs/s3"
	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/objstore"
)

const namespace = "ssefs"

// Buckets of the latency histograms, in seconds, from what each kind of call takes when
// all is well to what it takes when something is badly wrong.
var (
	fuseBuckets  = []float64{25e-6, 100e-6, 250e-6, 1e-3, 2.5e-3, 10e-3, 25e-3, 100e-3, 250e-3, 1, 2.5, 10}
	s3Buckets    = []float64{1e-3, 5e-3, 25e-3, 100e-3, 250e-3, 1, 2.5, 10, 30, 120}
	kmsBuckets   = []float64{1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1, 2.5, 10}
	storeBuckets = []float64{100e-6, 500e-6, 1e-3, 5e-3, 10e-3, 50e-3, 100e-3, 500e-3, 1, 5, 30}
)

// Set is the metrics of one ssefs process, in a registry of its own (not Prometheus'
// global one, which any imported library could write to).
type Set struct {
	reg   *prometheus.Registry
	fuse  fuseMetrics
	s3    s3Metrics
	keys  keyMetrics
	store storeMetrics
}

// New makes the metrics and registers those that need nothing else: the hooks' metrics,
// the bytes through the cipher, and Go's runtime and process metrics.
func New() *Set {
	s := &Set{reg: prometheus.NewRegistry()}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_encrypted_total",
			Help: "Plaintext bytes encrypted into chunk objects.",
		}, func() float64 { e, _ := fs.CryptoBytes(); return float64(e) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "bytes_decrypted_total",
			Help: "Plaintext bytes decrypted and authenticated from chunk objects (from the start of the first DARE package a read touches).",
		}, func() float64 { _, d := fs.CryptoBytes(); return float64(d) }),
	)
	s.fuse.init(s.reg)
	s.s3.init(s.reg)
	s.keys.init(s.reg)
	s.store.init(s.reg)
	return s
}

// Handler serves the metrics in Prometheus' text format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// FUSE, S3, Keys and Store are the hooks to give the mount, the S3 server, the key
// sealer and the object store.
func (s *Set) FUSE() fuse.Observer      { return &s.fuse }
func (s *Set) S3() s3.Observer          { return &s.s3 }
func (s *Set) Keys() keys.Observer      { return &s.keys }
func (s *Set) Store() objstore.Observer { return &s.store }

// WriteBuffer exports the write-back buffers' use (read when scraped) and their bound.
func (s *Set) WriteBuffer(used func() int64, limit int64) {
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "write_buffer_bytes",
			Help: "Memory held by write-back buffers now (all open files).",
		}, func() float64 { return float64(used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "write_buffer_limit_bytes",
			Help: "The bound on write-back buffers (--write-buffer-mb).",
		}, func() float64 { return float64(limit) }),
	)
}

// Badger exports the metadata store's size on disk (as Badger last measured it).
func (s *Set) Badger(size func() (lsm, vlog int64)) {
	const name, help = "badger_size_bytes", "Size of the metadata store (Badger) on disk, by part: LSM tree or value log."
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help,
			ConstLabels: prometheus.Labels{"kind": "lsm"}}, func() float64 { l, _ := size(); return float64(l) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help,
			ConstLabels: prometheus.Labels{"kind": "vlog"}}, func() float64 { _, v := size(); return float64(v) }),
	)
}

// ---------------------------------------------------------------------------------------
// FUSE

// maxErrno bounds the errnos kept apart; Linux's are all below it.
const maxErrno = 256

type counterRef struct{ c prometheus.Counter }

type fuseMetrics struct {
	ops  *prometheus.CounterVec
	ok   [fuse.NumOps]prometheus.Counter
	hist [fuse.NumOps]prometheus.Observer
	// errs holds each (operation, errno) counter once it has happened: made on first use
	// rather than at start, so the exposition lists only the failures there were.
	errs [fuse.NumOps][maxErrno]atomic.Pointer[counterRef]
}

func (m *fuseMetrics) init(reg *prometheus.Registry) {
	m.ops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "fuse", Name: "operations_total",
		Help: "FUSE operations served, by operation and result (ok, or the errno returned).",
	}, []string{"op", "result"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "fuse", Name: "operation_seconds",
		Help: "Time to serve a FUSE operation, by operation.", Buckets: fuseBuckets,
	}, []string{"op"})
	reg.MustRegister(m.ops, seconds)
	for op := fuse.Op(0); op < fuse.NumOps; op++ {
		m.ok[op] = m.ops.WithLabelValues(op.String(), "ok")
		m.hist[op] = seconds.WithLabelValues(op.String())
	}
}

// Op implements fuse.Observer.
func (m *fuseMetrics) Op(op fuse.Op, start time.Time, errno syscall.Errno) {
	if op >= fuse.NumOps {
		return
	}
	m.hist[op].Observe(time.Since(start).Seconds())
	if errno == 0 {
		m.ok[op].Inc()
		return
	}
	m.errCounter(op, errno).Inc()
}

func (m *fuseMetrics) errCounter(op fuse.Op, errno syscall.Errno) prometheus.Counter {
	slot := uintptr(errno)
	if slot >= maxErrno {
		slot = 0 // never a real errno: "other"
	}
	if ref := m.errs[op][slot].Load(); ref != nil {
		return ref.c
	}
	name := unix.ErrnoName(errno)
	if name == "" || slot == 0 {
		name = "other"
	}
	// Two first failures racing store the same child: WithLabelValues returns one per labels.
	ref := &counterRef{m.ops.WithLabelValues(op.String(), name)}
	m.errs[op][slot].Store(ref)
	return ref.c
}

// ---------------------------------------------------------------------------------------
// S3

type s3Key struct {
	api    string
	status int
}

type s3Metrics struct {
	reqs    *prometheus.CounterVec
	seconds *prometheus.HistogramVec

	// The children by API and status, made on first use: the S3 API has some 70 calls
	// and each sees a handful of statuses, most never.
	mu    sync.RWMutex
	count map[s3Key]prometheus.Counter
	hist  map[string]prometheus.Observer
}

func (m *s3Metrics) init(reg *prometheus.Registry) {
	m.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "s3", Name: "requests_total",
		Help: "S3 requests answered, by API and HTTP status code (\"aborted\": cut off after the header went out).",
	}, []string{"api", "code"})
	m.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "s3", Name: "request_seconds",
		Help: "Time to answer an S3 request, by API, body included.", Buckets: s3Buckets,
	}, []string{"api"})
	reg.MustRegister(m.reqs, m.seconds)
	m.count = make(map[s3Key]prometheus.Counter)
	m.hist = make(map[string]prometheus.Observer)
}

// Request implements s3.Observer.
func (m *s3Metrics) Request(api string, status int, start time.Time) {
	k := s3Key{api, status}
	m.mu.RLock()
	c, h := m.count[k], m.hist[api]
	m.mu.RUnlock()
	if c == nil || h == nil {
		c, h = m.children(k)
	}
	h.Observe(time.Since(start).Seconds())
	c.Inc()
}

func (m *s3Metrics) children(k s3Key) (prometheus.Counter, prometheus.Observer) {
	code := "aborted"
	if k.status != 0 {
		code = strconv.Itoa(k.status)
	}
	c, h := m.reqs.WithLabelValues(k.api, code), m.seconds.WithLabelValues(k.api)
	m.mu.Lock()
	m.count[k], m.hist[k.api] = c, h
	m.mu.Unlock()
	return c, h
}

// ---------------------------------------------------------------------------------------
// KMS and key cache

type kmsKey struct {
	op     keys.KMSOp
	result string
}

type keyMetrics struct {
	calls  *prometheus.CounterVec
	ok     [keys.NumKMSOps]prometheus.Counter
	hist   [keys.NumKMSOps]prometheus.Observer
	hits   prometheus.Counter
	misses prometheus.Counter

	mu     sync.Mutex
	failed map[kmsKey]prometheus.Counter
}

func (m *keyMetrics) init(reg *prometheus.Registry) {
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "kms", Name: "calls_total",
		Help: "Calls to the KMS, by call (generate_key, decrypt) and result (ok, or why it failed).",
	}, []string{"op", "result"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "kms", Name: "call_seconds",
		Help: "Time a KMS call took, by call.", Buckets: kmsBuckets,
	}, []string{"op"})
	m.hits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "key_cache_hits_total",
		Help: "Data keys found in the key cache (no KMS call).",
	})
	m.misses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "key_cache_misses_total",
		Help: "Data keys not in the key cache (a KMS call, made or waited for).",
	})
	reg.MustRegister(m.calls, seconds, m.hits, m.misses)
	for op := keys.KMSOp(0); op < keys.NumKMSOps; op++ {
		m.ok[op] = m.calls.WithLabelValues(op.String(), "ok")
		m.hist[op] = seconds.WithLabelValues(op.String())
	}
	m.failed = make(map[kmsKey]prometheus.Counter)
}

// KMSCall implements keys.Observer.
func (m *keyMetrics) KMSCall(op keys.KMSOp, start time.Time, err error) {
	if op >= keys.NumKMSOps {
		return
	}
	m.hist[op].Observe(time.Since(start).Seconds())
	if err == nil {
		m.ok[op].Inc()
		return
	}
	// Failures are rare and already cost a KMS round trip: a lock is cheap here.
	k := kmsKey{op, kmsResult(err)}
	m.mu.Lock()
	c := m.failed[k]
	if c == nil {
		c = m.calls.WithLabelValues(op.String(), k.result)
		m.failed[k] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// kmsResult names why a KMS call failed, from the errors the keys package defines.
func kmsResult(err error) string {
	switch {
	case errors.Is(err, keys.ErrKeyNotFound):
		return "key_not_found"
	case errors.Is(err, keys.ErrKeyDisabled):
		return "key_disabled"
	case errors.Is(err, keys.ErrForbidden):
		return "forbidden"
	case errors.Is(err, keys.ErrIdentityRejected):
		return "identity_rejected"
	case errors.Is(err, keys.ErrServerUntrusted):
		return "server_untrusted"
	case errors.Is(err, keys.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, keys.ErrDecrypt):
		return "decrypt_failed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// KeyCache implements keys.Observer.
func (m *keyMetrics) KeyCache(hit bool) {
	if hit {
		m.hits.Inc()
	} else {
		m.misses.Inc()
	}
}

// ---------------------------------------------------------------------------------------
// Object store

const (
	storeOK = iota
	storeNotFound
	storeError
	numStoreResults
)

var storeResultNames = [numStoreResults]string{"ok", "not_found", "error"}

type storeMetrics struct {
	count [objstore.NumOps][numStoreResults]prometheus.Counter
	hist  [objstore.NumOps]prometheus.Observer
}

func (m *storeMetrics) init(reg *prometheus.Registry) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "objstore", Name: "requests_total",
		Help: "Object store calls, by call (put, read, delete, sync, walk) and result (ok, not_found, error); an S3 store's retries are inside one call.",
	}, []string{"op", "result"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "objstore", Name: "request_seconds",
		Help: "Time an object store call took, by call, retries included.", Buckets: storeBuckets,
	}, []string{"op"})
	reg.MustRegister(reqs, seconds)
	for op := objstore.Op(0); op < objstore.NumOps; op++ {
		for r := range numStoreResults {
			m.count[op][r] = reqs.WithLabelValues(op.String(), storeResultNames[r])
		}
		m.hist[op] = seconds.WithLabelValues(op.String())
	}
}

// Request implements objstore.Observer.
func (m *storeMetrics) Request(op objstore.Op, start time.Time, err error) {
	if op >= objstore.NumOps {
		return
	}
	m.hist[op].Observe(time.Since(start).Seconds())
	r := storeOK
	switch {
	case err == nil:
	case errors.Is(err, objstore.ErrNotExist):
		r = storeNotFound
	default:
		r = storeError
	}
	m.count[op][r].Inc()
}

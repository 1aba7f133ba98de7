package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssefs/ssefs/fs"
)

// The end-to-end tests of --metrics-address: a known workload through the mount and the S3
// API, then a scrape whose counters must have moved by exactly (or at least) what the
// workload did; and the health endpoints load balancers probe.

const metricsListenPrefix = "ssefs: metrics listening on "

var metricsListenRE = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metricsListenPrefix) + `(http://\S+)\s*$`)

// metricsURL is the base URL of the metrics endpoint the listening line names.
func metricsURL(t testing.TB, stderr string) string {
	t.Helper()
	m := metricsListenRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("ssefs printed no %q line; stderr:\n%s", metricsListenPrefix, stderr)
	}
	if !strings.HasPrefix(m[1], "http://127.0.0.1:") || strings.HasSuffix(m[1], ":0") {
		t.Fatalf("metrics listening line names %q: want the bound loopback port for 127.0.0.1:0", m[1])
	}
	return m[1]
}

// metricSample is one scrape: series ("name{labels}" as exposed) to value.
type metricSample map[string]float64

// scrapeMetrics fetches /metrics and parses Prometheus' text format (the subset the
// client library writes: one sample per line, no timestamps).
func scrapeMetrics(t testing.TB, base string) metricSample {
	t.Helper()
	resp, err := (&http.Client{Timeout: time.Minute}).Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/metrics: %s\n%s", base, resp.Status, body)
	}
	s := metricSample{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s[line[:i]] = v
	}
	return s
}

// get returns a series' value, failing the test if the scrape does not have it.
func (s metricSample) get(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := s[series]
	if !ok {
		t.Errorf("the scrape has no series %s", series)
	}
	return v
}

// sum adds every series of metric name whose labels contain all of the given pairs
// (`op="create"`).
func (s metricSample) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range s {
		n, lbl, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(lbl, l) {
				ok = false
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// httpGet returns the status and body of a plain, unauthenticated GET.
func httpGet(t testing.TB, u string) (int, string) {
	t.Helper()
	return rawRequest(t, http.MethodGet, u, nil)
}

// TestMetricsEndpoint: after N files through the mount and K objects PUT and GET over S3,
// the counters moved by what was done: creates and S3 calls exactly, bytes through the
// cipher and objects stored at least by what the data needs; failures are counted under
// their errno and status; the gauges are there; /healthz and MinIO's health paths say ok.
func TestMetricsEndpoint(t *testing.T) {
	c := newS3Creds()
	cfg := s3Config(t, c)
	cfg.Args = append(cfg.Args, "--metrics-address", "127.0.0.1:0")
	m, ep := startS3Mount(t, cfg, c)
	base := metricsURL(t, m.Stderr())
	if li, mi := strings.Index(m.Stderr(), metricsListenPrefix), strings.Index(m.Stderr(), readyPrefix); li > mi {
		t.Errorf("the metrics listening line comes after the mounted line; stderr:\n%s", m.Stderr())
	}
	if code, body := httpGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz of a serving mount: %d %q, want 200 \"ok\"", code, body)
	}
	for _, p := range []string{"/minio/health/live", "/minio/health/ready"} {
		if code, _ := httpGet(t, ep.URL+p); code != 200 {
			t.Errorf("GET %s on the S3 port without credentials: %d, want 200", p, code)
		}
	}
	must(t, os.Mkdir(m.P("metrics"), 0o755), "mkdir bucket")

	before := scrapeMetrics(t, base)
	rnd := rng(t)
	// The chunks of an n-byte file that get an object of their own: the engine keeps
	// chunks of up to fs.DefaultInlineMax bytes in their metadata record.
	chunks := func(n int) int {
		objects := 0
		for off := 0; off < n; off += ChunkSize {
			if min(ChunkSize, n-off) > fs.DefaultInlineMax {
				objects++
			}
		}
		return objects
	}
	fuseSizes := []int{1, 4096, ChunkSize, ChunkSize + 1, 5 * ChunkSize / 2}
	s3Sizes := []int{10 << 10, 100 << 10, ChunkSize, 3*ChunkSize + 5}
	var fuseBytes, s3Bytes, wantObjects int
	fuseData := map[string][]byte{}
	for i, n := range fuseSizes {
		name := m.P("metrics", fmt.Sprintf("fuse-%d", i))
		fuseData[name] = randBytes(rnd, n)
		writeFile(t, name, fuseData[name], 0o644)
		fuseBytes += n
		wantObjects += chunks(n)
	}
	const missing = 7
	for i := range missing {
		if _, err := os.Stat(m.P("metrics", fmt.Sprintf("no-such-file-%d", i))); !os.IsNotExist(err) {
			t.Fatalf("stat of a missing file: %v", err)
		}
	}
	for name, data := range fuseData {
		dropPageCache(t, name)
		assertContent(t, name, data)
	}
	mc := ep.minio(t)
	for i, n := range s3Sizes {
		data := randBytes(rnd, n)
		key := fmt.Sprintf("s3-%d", i)
		s3Put(t, mc, "metrics", key, data, minio.PutObjectOptions{})
		assertS3Content(t, mc, "metrics", key, data)
		s3Bytes += n
		wantObjects += chunks(n)
	}
	if _, err := mc.StatObject(s3ctx(t), "metrics", "no-such-key", minio.StatObjectOptions{}); minio.ToErrorResponse(err).StatusCode != 404 {
		t.Fatalf("HEAD of a missing key: %v, want 404", err)
	}
	after := scrapeMetrics(t, base)

	delta := func(series string) float64 { return after.get(t, series) - before[series] }
	sumDelta := func(name string, labels ...string) float64 {
		return after.sum(name, labels...) - before.sum(name, labels...)
	}
	K, N := float64(len(s3Sizes)), float64(len(fuseSizes))
	exact := []struct {
		series string
		want   float64
	}{
		{`ssefs_s3_requests_total{api="PutObject",code="200"}`, K},
		{`ssefs_s3_requests_total{api="GetObject",code="200"}`, K},
		{`ssefs_s3_requests_total{api="HeadObject",code="404"}`, 1},
		{`ssefs_s3_request_seconds_count{api="PutObject"}`, K},
		{`ssefs_fuse_operations_total{op="create",result="ok"}`, N},
		{`ssefs_fuse_operation_seconds_count{op="create"}`, N},
	}
	for _, e := range exact {
		if got := delta(e.series); got != e.want {
			t.Errorf("%s moved by %v, want exactly %v", e.series, got, e.want)
		}
	}
	atLeast := []struct {
		what      string
		got, want float64
	}{
		{"bytes encrypted", sumDelta("ssefs_bytes_encrypted_total"), float64(fuseBytes + s3Bytes)},
		{"bytes decrypted", sumDelta("ssefs_bytes_decrypted_total"), float64(fuseBytes + s3Bytes)},
		{"object store puts", sumDelta("ssefs_objstore_requests_total", `op="put"`, `result="ok"`), float64(wantObjects)},
		{"object store reads", sumDelta("ssefs_objstore_requests_total", `op="read"`, `result="ok"`), float64(wantObjects)},
		{"FUSE writes", sumDelta("ssefs_fuse_operations_total", `op="write"`, `result="ok"`), N},
		{"FUSE lookups of missing names", sumDelta("ssefs_fuse_operations_total", `op="lookup"`, `result="ENOENT"`), missing},
		// Every new file seals a key: from the key cache, or from the KMS on a miss.
		{"key cache lookups", sumDelta("ssefs_key_cache_hits_total") + sumDelta("ssefs_key_cache_misses_total"), N + K},
	}
	for _, a := range atLeast {
		if a.got < a.want {
			t.Errorf("%s moved by %v, want at least %v", a.what, a.got, a.want)
		}
	}
	// The first file in a new bucket needs a data key for it from the KMS.
	if got := sumDelta("ssefs_kms_calls_total", `op="generate_key"`, `result="ok"`); got < 1 {
		t.Errorf("KMS generate_key calls moved by %v, want at least 1", got)
	}
	if got, misses := sumDelta("ssefs_kms_calls_total"), sumDelta("ssefs_key_cache_misses_total"); got > misses {
		t.Errorf("%v KMS calls but only %v key-cache misses: every call should come from a miss", got, misses)
	}
	if ok, all := after.sum("ssefs_kms_calls_total", `result="ok"`), after.sum("ssefs_kms_calls_total"); ok != all {
		t.Errorf("%v of %v KMS calls failed in a workload that has no reason to", all-ok, all)
	}
	for _, g := range []string{`ssefs_write_buffer_bytes`, `ssefs_write_buffer_limit_bytes`, `ssefs_badger_size_bytes{kind="lsm"}`, `ssefs_badger_size_bytes{kind="vlog"}`} {
		if v := after.get(t, g); v < 0 {
			t.Errorf("%s = %v", g, v)
		}
	}
	if v := after.get(t, `ssefs_write_buffer_limit_bytes`); v != 256<<20 {
		t.Errorf("ssefs_write_buffer_limit_bytes = %v, want the default 256 MiB", v)
	}
	// Labels stay bounded: no series names a bucket, a key or a file.
	for series := range after {
		_, labels, _ := strings.Cut(series, "{")
		for _, name := range []string{`"metrics"`, "fuse-", "s3-", "no-such"} {
			if strings.Contains(labels, name) {
				t.Errorf("series %s names a file, object or bucket", series)
			}
		}
	}
	m.Stop(t)
}

// TestMetricsServe: `ssefs serve --metrics-address` exports the S3 side the same way.
func TestMetricsServe(t *testing.T) {
	c := newS3Creds()
	cfg := s3Config(t, c)
	s := StartServe(t, cfg, c, "--metrics-address", "127.0.0.1:0")
	base := metricsURL(t, s.Stderr())
	if code, body := httpGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz of a serving serve: %d %q, want 200 \"ok\"", code, body)
	}
	mc := s.S3.minio(t)
	must(t, mc.MakeBucket(s3ctx(t), "served", minio.MakeBucketOptions{}), "make bucket")
	for i := range 3 {
		s3Put(t, mc, "served", fmt.Sprintf("o%d", i), bytes.Repeat([]byte{byte(i)}, 1000), minio.PutObjectOptions{})
	}
	got := scrapeMetrics(t, base)
	if v := got.get(t, `ssefs_s3_requests_total{api="PutObject",code="200"}`); v != 3 {
		t.Errorf("PutObject 200 = %v, want 3", v)
	}
	if v := got.get(t, `ssefs_s3_requests_total{api="CreateBucket",code="200"}`); v != 1 {
		t.Errorf("CreateBucket 200 = %v, want 1", v)
	}
	if v := got.sum("ssefs_fuse_operations_total"); v != 0 {
		t.Errorf("serve counted %v FUSE operations", v)
	}
	if v := got.sum("ssefs_bytes_encrypted_total"); v < 3000 {
		t.Errorf("bytes encrypted = %v, want at least 3000", v)
	}
	s.Stop(t)
}

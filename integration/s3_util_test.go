package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Helpers for the S3 tests (s3_test.go): starting ssefs with its S3 API, and running the real
// S3 clients (aws cli, s3cmd, mc, curl) against it with an environment of their own.

const (
	// s3ListenPrefix starts the one line ssefs prints when its S3 API listens; for `ssefs
	// serve` it is the ready line, for `ssefs mount` it comes before the mounted line.
	s3ListenPrefix = "ssefs: S3 API listening on "
	// s3KeyName is the name of the master key newConfig puts in SSEFS_KMS_MASTER_KEY: with the
	// static master key it is the only key the KMS has, so the only valid SSE-KMS key ID.
	s3KeyName = "it-key"
	// clientTimeout bounds one run of an external client, so a hung client fails the test
	// with its output instead of eating the whole go test timeout.
	clientTimeout = 5 * time.Minute
)

var s3ListenRE = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s3ListenPrefix) + `(https?://\S+)\s*$`)

// s3Creds are the root credentials ssefs is started with; fresh per test so that nothing
// can pass by accident with a default or a value from the host.
type s3Creds struct {
	User     string
	Password string
}

func newS3Creds() s3Creds {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return s3Creds{User: "it-user-" + hex.EncodeToString(b[:4]), Password: hex.EncodeToString(b[4:])}
}

// s3Config is newConfig with the S3 API on a free loopback port, credentials in
// SSEFS_ROOT_USER/SSEFS_ROOT_PASSWORD, and no --bucket: the mount root lists every bucket,
// which is what the cross-view tests need (the S3 API always sees all buckets).
func s3Config(t testing.TB, c s3Creds) Config {
	t.Helper()
	cfg := newConfig(t)
	cfg.Bucket = ""
	cfg.Args = append(cfg.Args, "--s3-address", "127.0.0.1:0")
	cfg.Env = append(cfg.Env, "SSEFS_ROOT_USER="+c.User, "SSEFS_ROOT_PASSWORD="+c.Password)
	return cfg
}

// S3Endpoint is where a running ssefs serves S3, and with which credentials.
type S3Endpoint struct {
	URL   string // http://127.0.0.1:PORT
	Host  string // 127.0.0.1:PORT
	Creds s3Creds
}

// parseListenURL returns the URL of the listening line in stderr.
func parseListenURL(stderr string) (string, bool) {
	m := s3ListenRE.FindStringSubmatch(stderr)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func newEndpoint(t testing.TB, rawURL string, c s3Creds) *S3Endpoint {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Fatalf("listening line names %q, not a URL: %v", rawURL, err)
	}
	if !strings.HasPrefix(u.Host, "127.0.0.1:") || strings.HasSuffix(u.Host, ":0") {
		t.Fatalf("listening line names %q: want the bound loopback port (127.0.0.1:N, N != 0) for --s3-address 127.0.0.1:0", rawURL)
	}
	return &S3Endpoint{URL: strings.TrimRight(rawURL, "/"), Host: u.Host, Creds: c}
}

// startS3Mount mounts cfg (which must carry --s3-address) and returns the S3 endpoint of the
// same process. The contract is that exactly one listening line comes before the mounted line,
// so the URL is in the captured stderr by the time StartMount has seen the ready line.
func startS3Mount(t testing.TB, cfg Config, c s3Creds) (*Mount, *S3Endpoint) {
	t.Helper()
	m := StartMount(t, cfg)
	stderr := m.Stderr()
	raw, ok := parseListenURL(stderr)
	if !ok {
		t.Fatalf("ssefs mounted but printed no %q line before the mounted line; stderr:\n%s", s3ListenPrefix, stderr)
	}
	if n := strings.Count(stderr, s3ListenPrefix); n != 1 {
		t.Errorf("ssefs printed %d %q lines, want exactly 1; stderr:\n%s", n, s3ListenPrefix, stderr)
	}
	if li, mi := strings.Index(stderr, s3ListenPrefix), strings.Index(stderr, readyPrefix); mi >= 0 && li > mi {
		t.Errorf("the S3 listening line comes after the mounted line; stderr:\n%s", stderr)
	}
	return m, newEndpoint(t, raw, c)
}

// Serve is a running `ssefs serve` (S3 only, no mount).
type Serve struct {
	*Proc
	S3     *S3Endpoint
	t      testing.TB
	reaped bool
}

// StartServe runs `ssefs serve --data-dir cfg.DataDir --s3-address 127.0.0.1:0 cfg.Args...`
// and waits for its ready line (the listening line). startProc skips where FUSE mounts are
// impossible, although serve itself needs no /dev/fuse: TestMain builds the binary only where
// mounts work, and the serve tests end with a mount of the same data dir anyway.
//
// startProc only recognises the mounted line as ready, so this polls the captured stderr
// for the listening line (the event), bounded by readyTimeout, and stops early if ssefs exits.
func StartServe(t testing.TB, cfg Config, c s3Creds, extra ...string) *Serve {
	t.Helper()
	args := []string{"serve"}
	if cfg.DataDir != "" {
		args = append(args, "--data-dir", cfg.DataDir)
	}
	args = append(args, "--s3-address", "127.0.0.1:0")
	args = append(args, extra...)
	p := startProc(t, cfg, args...)
	s := &Serve{Proc: p, t: t}
	t.Cleanup(func() {
		if !s.reaped {
			s.stop(t, cleanTimeout)
		}
		if t.Failed() {
			t.Logf("ssefs %q stderr (tail):\n%s", s.args, tail(s.Stderr(), 4000))
		}
	})
	var raw string
	ok := waitCond(readyTimeout, func() bool {
		var found bool
		raw, found = parseListenURL(p.Stderr())
		return found || p.Exited()
	})
	if raw == "" {
		if p.Exited() {
			t.Fatalf("ssefs %q exited with code %d before it listened; stderr:\n%s", args, p.ExitCode(), p.Stderr())
		}
		t.Fatalf("ssefs %q printed no %q line within %s (ok=%v); stderr so far:\n%s", args, s3ListenPrefix, readyTimeout, ok, p.Stderr())
	}
	if strings.Contains(p.Stderr(), readyPrefix) {
		t.Errorf("ssefs serve printed a mounted line; stderr:\n%s", p.Stderr())
	}
	s.S3 = newEndpoint(t, raw, c)
	return s
}

// Stop sends SIGTERM and asserts a clean exit (code 0, no DATA RACE).
func (s *Serve) Stop(t testing.TB) {
	t.Helper()
	s.stop(t, stopTimeout)
}

func (s *Serve) stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !s.reaped {
		s.terminate(t, timeout)
	}
}

// ---------------------------------------------------------------------------------------
// Running the external clients

// clientResult is one finished run of an external client.
type clientResult struct {
	Cmd    string
	Stdout string
	Stderr string
	Err    error
}

func (r clientResult) String() string {
	return fmt.Sprintf("$ %s\n(exit: %v)\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, r.Err, tail(r.Stdout, 6000), tail(r.Stderr, 6000))
}

// requireClient returns the path of a client binary. When it is missing the test skips,
// unless SSEFS_REQUIRE_S3_CLIENTS is set (scripts/test.sh sets it, so CI fails instead).
func requireClient(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	requireMount(t) // every client test needs ssefs itself first
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c
		}
	}
	msg := fmt.Sprintf("S3 client %s not found (looked at %q); scripts/test.sh installs it", name, candidates)
	if os.Getenv("SSEFS_REQUIRE_S3_CLIENTS") != "" {
		t.Fatalf("%s, and SSEFS_REQUIRE_S3_CLIENTS is set", msg)
	}
	t.Skip(msg + " (set SSEFS_REQUIRE_S3_CLIENTS=1 to fail instead)")
	return ""
}

// clientEnv is the test process' environment without anything that would steer a client
// elsewhere: AWS_*, MC_*, S3CMD*, proxies, and HOME (each client gets a temp HOME, so no
// ~/.aws, ~/.s3cfg or ~/.mc of the host is read).
func clientEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		uk := strings.ToUpper(k)
		if strings.HasPrefix(uk, "AWS_") || strings.HasPrefix(uk, "MC_") || strings.HasPrefix(uk, "S3CMD") ||
			strings.HasSuffix(uk, "_PROXY") || uk == "HOME" || strings.HasPrefix(uk, "BOTO") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+t.TempDir(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	return append(env, extra...)
}

// runClient runs bin with args in env, bounded by clientTimeout.
func runClient(t testing.TB, env []string, bin string, args ...string) clientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %s: %w (%v)", clientTimeout, ctx.Err(), err)
	}
	return clientResult{Cmd: bin + " " + strings.Join(args, " "), Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// client is one configured external client (binary + environment + fixed leading args).
type client struct {
	t    testing.TB
	bin  string
	env  []string
	pre  []string // flags put before every command's args
	name string
}

func (c *client) run(args ...string) clientResult {
	c.t.Helper()
	return runClient(c.t, c.env, c.bin, append(append([]string{}, c.pre...), args...)...)
}

// ok runs args and fails the test (printing the client's output) unless it succeeds.
func (c *client) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.Err != nil {
		c.t.Fatalf("%s failed:\n%s", c.name, r)
	}
	return r.Stdout
}

// fail runs args and reports an error unless the client fails; the result is returned so the
// caller can check which S3 error the client saw.
func (c *client) fail(args ...string) clientResult {
	c.t.Helper()
	r := c.run(args...)
	if r.Err == nil {
		c.t.Errorf("%s succeeded where it should have failed:\n%s", c.name, r)
	}
	return r
}

// aws returns the aws cli (/usr/bin/aws explicitly: a pyenv shim or a pip install may come
// first on PATH) for e, with config and credentials files of its own, so nothing from the host
// leaks in. The config pins path-style addressing and the multipart sizes that the ETag
// checks of the tests compute with.
func (e *S3Endpoint) aws(t testing.TB) *client {
	t.Helper()
	bin := requireClient(t, "aws cli", "/usr/bin/aws")
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	writeFile(t, conf, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    multipart_threshold = 8MB\n    multipart_chunksize = 8MB\n"), 0o600)
	writeFile(t, creds, nil, 0o600)
	env := clientEnv(t,
		"AWS_ACCESS_KEY_ID="+e.Creds.User,
		"AWS_SECRET_ACCESS_KEY="+e.Creds.Password,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+conf,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	return &client{t: t, bin: bin, env: env, pre: []string{"--endpoint-url", e.URL, "--no-cli-pager"}, name: "aws"}
}

// withCreds returns a copy of c (an aws client) whose credentials are replaced.
func (c *client) withCreds(user, password string) *client {
	n := *c
	n.env = nil
	for _, kv := range c.env {
		if strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") || strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") {
			continue
		}
		n.env = append(n.env, kv)
	}
	n.env = append(n.env, "AWS_ACCESS_KEY_ID="+user, "AWS_SECRET_ACCESS_KEY="+password)
	return &n
}

// s3cmd returns s3cmd with a config file of its own: path-style (host_bucket without
// %(bucket)s), plain http, Signature V4.
func (e *S3Endpoint) s3cmd(t testing.TB) *client {
	t.Helper()
	bin := requireClient(t, "s3cmd", "/usr/bin/s3cmd")
	conf := filepath.Join(t.TempDir(), "s3cfg")
	body := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\n"+
		"use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\ncheck_ssl_certificate = False\n"+
		"progress_meter = False\n", e.Creds.User, e.Creds.Password, e.Host, e.Host)
	writeFile(t, conf, []byte(body), 0o600)
	return &client{t: t, bin: bin, env: clientEnv(t), pre: []string{"--config", conf}, name: "s3cmd"}
}

// mcBin finds the MinIO client: SSEFS_MC_BIN (set by scripts/test.sh), else an `mc` on PATH
// that says it is MinIO's (Midnight Commander is also called mc).
func mcBin(t testing.TB) string {
	t.Helper()
	cands := []string{os.Getenv("SSEFS_MC_BIN")}
	if p, err := exec.LookPath("mc"); err == nil {
		out, _ := exec.Command(p, "--version").CombinedOutput()
		if strings.Contains(string(out), "MinIO") || strings.Contains(string(out), "mc version") {
			cands = append(cands, p)
		}
	}
	return requireClient(t, "mc (MinIO client; SSEFS_MC_BIN)", cands...)
}

// mc returns the MinIO client with a config dir of its own and the alias "it" set to e
// (path-style, Signature V4, so mc does not probe).
func (e *S3Endpoint) mc(t testing.TB) *client {
	t.Helper()
	bin := mcBin(t)
	env := clientEnv(t, "MC_CONFIG_DIR="+t.TempDir(), "MC_NO_COLOR=1", "MC_DISABLE_PAGER=1")
	c := &client{t: t, bin: bin, env: env, name: "mc"}
	c.ok("alias", "set", "it", e.URL, e.Creds.User, e.Creds.Password, "--api", "S3v4", "--path", "on")
	return c
}

// rclone returns rclone with the remote "ssefs:" configured through its environment
// (provider Minio, path-style, v4 signatures) and no config file of the host's.
func (e *S3Endpoint) rclone(t testing.TB) *client {
	t.Helper()
	bin := requireClient(t, "rclone", "/usr/bin/rclone")
	env := clientEnv(t, "RCLONE_CONFIG="+filepath.Join(t.TempDir(), "rclone.conf"),
		"RCLONE_CONFIG_SSEFS_TYPE=s3", "RCLONE_CONFIG_SSEFS_PROVIDER=Minio",
		"RCLONE_CONFIG_SSEFS_ACCESS_KEY_ID="+e.Creds.User, "RCLONE_CONFIG_SSEFS_SECRET_ACCESS_KEY="+e.Creds.Password,
		"RCLONE_CONFIG_SSEFS_ENDPOINT="+e.URL, "RCLONE_CONFIG_SSEFS_REGION=us-east-1",
		"RCLONE_CONFIG_SSEFS_FORCE_PATH_STYLE=true")
	return &client{t: t, bin: bin, env: env, pre: []string{"--retries", "1", "--low-level-retries", "1"}, name: "rclone"}
}

// curl returns curl; it never gets credentials (presigned URLs carry their own, and the
// anonymous checks must have none).
func curlClient(t testing.TB) *client {
	t.Helper()
	bin := requireClient(t, "curl", "/usr/bin/curl")
	return &client{t: t, bin: bin, env: clientEnv(t), pre: []string{"-sS", "--max-time", "120"}, name: "curl"}
}

// curlGet fetches u with curl (no redirects followed) into a temp file and returns the
// HTTP status and the body.
func curlGet(t testing.TB, cu *client, u string, extra ...string) (int, []byte) {
	t.Helper()
	f, err := os.CreateTemp("", "ssefs-it-curl-")
	if err != nil {
		t.Fatal(err)
	}
	out := f.Name()
	f.Close()
	defer os.Remove(out)
	args := append([]string{"-o", out, "-w", "%{http_code}"}, extra...)
	r := cu.run(append(args, u)...)
	if r.Err != nil {
		t.Fatalf("curl failed:\n%s", r)
	}
	var code int
	if _, err := fmt.Sscanf(strings.TrimSpace(r.Stdout), "%d", &code); err != nil {
		t.Fatalf("curl printed %q, not a status code", r.Stdout)
	}
	body, _ := os.ReadFile(out)
	return code, body
}

// minio returns a minio-go client for e: the S3 side of the cross-view tests, in-process so
// that a write through one view and a read through the other follow each other at once.
func (e *S3Endpoint) minio(t testing.TB) *minio.Client {
	t.Helper()
	return e.minioWith(t, e.Creds.User, e.Creds.Password)
}

func (e *S3Endpoint) minioWith(t testing.TB, user, password string) *minio.Client {
	t.Helper()
	c, err := minio.New(e.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(user, password, ""),
		Secure:       false,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1, // a failure must show as one, not be retried away
	})
	if err != nil {
		t.Fatalf("minio.New(%s): %v", e.Host, err)
	}
	return c
}

// ---------------------------------------------------------------------------------------
// S3 operations through minio-go, failing the test with the S3 error on failure

func s3ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	t.Cleanup(cancel)
	return ctx
}

func s3Put(t testing.TB, c *minio.Client, bucket, key string, data []byte, opts minio.PutObjectOptions) minio.UploadInfo {
	t.Helper()
	info, err := c.PutObject(s3ctx(t), bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("S3 PUT %s/%s (%d bytes): %v", bucket, key, len(data), s3ErrString(err))
	}
	return info
}

func s3Get(t testing.TB, c *minio.Client, bucket, key string) ([]byte, error) {
	t.Helper()
	obj, err := c.GetObject(s3ctx(t), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

// assertS3Content fails unless GET bucket/key returns exactly want.
func assertS3Content(t testing.TB, c *minio.Client, bucket, key string, want []byte) {
	t.Helper()
	got, err := s3Get(t, c, bucket, key)
	if err != nil {
		t.Errorf("S3 GET %s/%s: %v", bucket, key, s3ErrString(err))
		return
	}
	assertBytes(t, "S3 GET "+bucket+"/"+key, got, want)
}

// s3Keys lists every key of bucket (recursively), sorted.
func s3Keys(t testing.TB, c *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range c.ListObjects(s3ctx(t), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("S3 list %s: %v", bucket, s3ErrString(o.Err))
		}
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

// wantS3Error fails unless err is an S3 error response with status and one of codes.
func wantS3Error(t testing.TB, err error, what string, status int, codes ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want HTTP %d %v", what, status, codes)
		return
	}
	er := minio.ToErrorResponse(err)
	okCode := len(codes) == 0
	for _, c := range codes {
		if er.Code == c {
			okCode = true
		}
	}
	if er.StatusCode != status || !okCode {
		t.Errorf("%s: got %s, want HTTP %d with code %v", what, s3ErrString(err), status, codes)
	}
}

func s3ErrString(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return fmt.Sprintf("HTTP %d %s: %s (resource %s)", er.StatusCode, er.Code, er.Message, er.Resource)
	}
	return err.Error()
}

// ---------------------------------------------------------------------------------------
// Data and trees

// multipartETag is the S3 ETag of data uploaded in parts of partSize: hex MD5 of the
// concatenated binary MD5s of the parts, then "-N".
func multipartETag(data []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		s := md5.Sum(data[off:min(off+partSize, len(data))])
		sums = append(sums, s[:]...)
		n++
	}
	s := md5.Sum(sums)
	return fmt.Sprintf("%s-%d", hex.EncodeToString(s[:]), n)
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// fileTree maps every path below root to "dir" or "file <size> <sha256>", so two trees (a
// local source, a download, the mount's view) compare as strings with a readable diff.
func fileTree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %d %s", len(b), sha(b))
		default:
			out[rel] = "other " + d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// compareFileTrees reports every path that differs between got and want.
func compareFileTrees(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing (want %s)", p, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected (%s)", p, g))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		if len(diffs) > 40 {
			diffs = append(diffs[:40], fmt.Sprintf("... and %d more", len(diffs)-40))
		}
		t.Errorf("%s: %d differences:\n  %s", what, len(diffs), strings.Join(diffs, "\n  "))
	}
}

// jsonOut parses a client's JSON stdout (aws s3api ...), failing with the output if it is not.
func jsonOut(t testing.TB, what, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%s: output is not JSON (%v):\n%s", what, err, out)
	}
	return m
}

// jsonPath walks nested maps/arrays of v by keys (strings) and indexes (ints).
func jsonPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// rawRequest sends an unsigned request (no credentials at all) and returns status and body.
func rawRequest(t testing.TB, method, u string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// xmlCode returns the <Code> of an S3 error document ("" if there is none).
func xmlCode(body string) string {
	_, rest, ok := strings.Cut(body, "<Code>")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, "</Code>")
	return code
}

// convergeTimeout bounds the diagnostic poll after a failed "at once" check: it only says in
// the failure message whether the mount caught up later (a late cache invalidation) or
// never; the check has already failed.
const convergeTimeout = 10 * time.Second

// lateness polls cond (diagnostics only, see convergeTimeout) and describes when it held.
func lateness(cond func() bool) string {
	start := time.Now()
	if waitCond(convergeTimeout, cond) {
		return fmt.Sprintf("it showed only %s later", time.Since(start).Round(time.Millisecond))
	}
	return fmt.Sprintf("it still did not show %s later", convergeTimeout)
}

func readsAs(path string, want []byte) bool {
	got, err := os.ReadFile(path)
	return err == nil && bytes.Equal(got, want)
}

// assertAtOnce fails unless a fresh open+read of path, right now, returns want: a change made
// through the other view must show at once, not after a cache timeout. stale names earlier
// contents of the file, so the message can say which one the mount still showed.
func assertAtOnce(t testing.TB, what, path string, want []byte, stale ...[]byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err == nil && bytes.Equal(got, want) {
		return
	}
	desc := fmt.Sprintf("%d bytes, sha256 %.16s", len(got), sha(got))
	if err != nil {
		desc = "error " + err.Error()
	}
	for i, s := range stale {
		if err == nil && bytes.Equal(got, s) {
			desc += fmt.Sprintf(" = the OLD content #%d (stale kernel cache)", i+1)
		}
	}
	late := lateness(func() bool { return readsAs(path, want) })
	t.Errorf("%s: a fresh read of %s right after the change got %s; want %d bytes sha256 %.16s; %s", what, path, desc, len(want), sha(want), late)
}

// assertGoneAtOnce fails unless path is ENOENT right now (after a delete through S3).
func assertGoneAtOnce(t testing.TB, what, path string) {
	t.Helper()
	_, err := os.Stat(path)
	if errors.Is(err, syscall.ENOENT) {
		return
	}
	late := lateness(func() bool {
		_, err := os.Stat(path)
		return errors.Is(err, syscall.ENOENT)
	})
	t.Errorf("%s: stat %s right after the delete: %v, want ENOENT; %s", what, path, errOrNil(err), late)
}

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/sse"
)

// The log redaction tests: a realistic workload (a mount with S3, SSE-C, SSE-KMS, a
// multipart upload, refused requests, key creation and rotation through the running
// mount) logged at debug level, and then every line ssefs wrote is searched for the
// key material the test knows. --debug (go-fuse's trace of every request, with data) is
// a debugging aid that logs file contents by design and is not used.

// leakWindow is how many characters of a secret's spelling make a leak: 16 hex digits are
// 64 bits of a key, more than chance ever puts into a log line, and a key logged in part
// (truncated, wrapped) is still found.
const leakWindow = 16

// secretForms returns the ways a secret could show up in a log: as is, hex, and base64 in
// its four spellings.
func secretForms(secret []byte) []string {
	return []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret),
		base64.URLEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)}
}

// leaks returns, for each secret any leakWindow characters of whose spellings are in
// text, its name and the line.
func leaks(text string, secrets map[string][]byte) []string {
	windows := map[string]string{} // every leakWindow-long run of every spelling -> secret
	for name, s := range secrets {
		for _, form := range secretForms(s) {
			for i := 0; i+leakWindow <= len(form); i++ {
				windows[form[i:i+leakWindow]] = name
			}
		}
	}
	var found []string
	reported := map[string]bool{}
	for i := 0; i+leakWindow <= len(text); i++ {
		name, ok := windows[text[i:i+leakWindow]]
		if !ok || reported[name] {
			continue
		}
		reported[name] = true
		lo, hi := strings.LastIndexByte(text[:i], '\n')+1, len(text)
		if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
			hi = i + j
		}
		found = append(found, fmt.Sprintf("%s in line: %s", name, text[lo:hi]))
	}
	return found
}

// pemSecrets adds the body lines of a PEM private key file (each a run of the DER key in
// base64), so that any part of the key logged is found.
func pemSecrets(t *testing.T, secrets map[string][]byte, name, file string) {
	t.Helper()
	data := readFile(t, file)
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	secrets[name+" (DER)"] = block.Bytes
	for i, line := range strings.Split(string(data), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			secrets[fmt.Sprintf("%s (PEM line %d)", name, i)] = []byte(line)
		}
	}
}

// requestIDs records the x-amz-request-id of every response a client got.
type requestIDs struct {
	base http.RoundTripper
	mu   sync.Mutex
	ids  []string
}

func (r *requestIDs) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if resp != nil {
		if id := resp.Header.Get("X-Amz-Request-Id"); id != "" {
			r.mu.Lock()
			r.ids = append(r.ids, id)
			r.mu.Unlock()
		}
	}
	return resp, err
}

func (r *requestIDs) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// redactRun is one workload's setting.
type redactRun struct {
	cfg       Config
	creds     s3Creds
	format    string   // --log-format
	kmsKey    string   // the default key
	otherKey  string   // another key of the KMS, for SSE-KMS and rotation
	createKey []string // `ssefs key create` of a new key, or nil where the KMS cannot
	statusKey []string // `ssefs key status`
	secrets   map[string][]byte
}

// runRedactWorkload runs the workload and checks the logs: no secret in any line, and
// every S3 request's ID on a log line (JSON lines must parse).
func runRedactWorkload(t *testing.T, run redactRun) {
	cfg := run.cfg
	cfg.Args = append(cfg.Args, "--s3-address", "127.0.0.1:0", "--log-level", "debug", "--log-format", run.format)
	cfg.Env = append(cfg.Env, "SSEFS_ROOT_USER="+run.creds.User, "SSEFS_ROOT_PASSWORD="+run.creds.Password)
	for _, kv := range cfg.Env {
		if k, v, _ := strings.Cut(kv, "="); k == "SSEFS_STORE_SECRET_KEY" {
			run.secrets["object store secret key"] = []byte(v)
		}
	}
	run.secrets["S3 secret key"] = []byte(run.creds.Password)
	wrongPassword := newS3Creds().Password
	run.secrets["a wrong S3 secret key a client tried"] = []byte(wrongPassword)
	ssec1, ssec2 := make([]byte, 32), make([]byte, 32)
	rand.Read(ssec1)
	rand.Read(ssec2)
	run.secrets["SSE-C key"], run.secrets["another SSE-C key"] = ssec1, ssec2
	marker := "plaintext-marker-" + hex.EncodeToString(ssec2[:6])
	run.secrets["file content"] = []byte(marker)

	var outputs []string // everything ssefs wrote, beside the mount's own
	var cliRuns []RunResult
	m, ep := startS3Mount(t, cfg, run.creds)

	// Through the mount.
	bucket := m.P("redact")
	must(t, os.Mkdir(bucket, 0o755), "mkdir bucket")
	small := []byte(marker + " small file")
	large := append(bytes.Repeat([]byte(marker), ChunkSize/len(marker)+10), "end"...)
	writeFile(t, m.P("redact", "small.txt"), small, 0o644)
	writeFile(t, m.P("redact", "large.bin"), large, 0o600)
	for name, want := range map[string][]byte{"small.txt": small, "large.bin": large} {
		dropPageCache(t, m.P("redact", name))
		assertContent(t, m.P("redact", name), want)
	}
	assertSealed(t, m.P("redact", "small.txt"), "SSE-S3", run.kmsKey)
	must(t, os.Rename(m.P("redact", "small.txt"), m.P("redact", "renamed.txt")), "rename")
	if _, err := os.ReadFile(m.P("redact", "no-such-file")); !os.IsNotExist(err) {
		t.Errorf("read of a missing file: %v", err)
	}

	// Over S3, with every response's request ID recorded.
	ids := &requestIDs{base: http.DefaultTransport}
	client := func(user, password string) *minio.Client {
		c, err := minio.New(ep.Host, &minio.Options{
			Creds: credentials.NewStaticV4(user, password, ""), Transport: ids,
			Region: "us-east-1", BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
		})
		must(t, err, "minio client")
		return c
	}
	mc := client(run.creds.User, run.creds.Password)
	ctx := s3ctx(t)
	s3Put(t, mc, "redact", "plain.txt", []byte(marker+" plain"), minio.PutObjectOptions{})
	assertS3Content(t, mc, "redact", "plain.txt", []byte(marker+" plain"))
	kms, err := encrypt.NewSSEKMS(run.otherKey, nil)
	must(t, err, "SSE-KMS")
	s3Put(t, mc, "redact", "kms.txt", []byte(marker+" kms"), minio.PutObjectOptions{ServerSideEncryption: kms})
	assertS3Content(t, mc, "redact", "kms.txt", []byte(marker+" kms"))
	key1, err := encrypt.NewSSEC(ssec1)
	must(t, err, "SSE-C key")
	key2, _ := encrypt.NewSSEC(ssec2)
	s3Put(t, mc, "redact", "ssec.txt", []byte(marker+" ssec"), minio.PutObjectOptions{ServerSideEncryption: key1})
	obj, err := mc.GetObject(ctx, "redact", "ssec.txt", minio.GetObjectOptions{ServerSideEncryption: key1})
	must(t, err, "SSE-C GET")
	got, err := io.ReadAll(obj)
	obj.Close()
	must(t, err, "SSE-C read")
	assertBytes(t, "SSE-C object", got, []byte(marker+" ssec"))
	if _, err := mc.StatObject(ctx, "redact", "ssec.txt", minio.StatObjectOptions{ServerSideEncryption: key2}); minio.ToErrorResponse(err).StatusCode != 403 {
		t.Errorf("HEAD with the wrong SSE-C key: %v, want 403", err)
	}
	if _, err := mc.StatObject(ctx, "redact", "ssec.txt", minio.StatObjectOptions{}); minio.ToErrorResponse(err).StatusCode != 400 {
		t.Errorf("HEAD of an SSE-C object without its key: %v, want 400", err)
	}
	multi := bytes.Repeat([]byte(marker), (6<<20)/len(marker))
	if _, err := mc.PutObject(ctx, "redact", "multipart.bin", bytes.NewReader(multi), int64(len(multi)),
		minio.PutObjectOptions{ServerSideEncryption: key2, PartSize: 5 << 20}); err != nil {
		t.Fatalf("SSE-C multipart upload: %v", s3ErrString(err))
	}
	must(t, mc.SetBucketEncryption(ctx, "redact", sse.NewConfigurationSSEKMS(run.otherKey)), "PutBucketEncryption")
	if _, err := client(run.creds.User, wrongPassword).ListBuckets(ctx); minio.ToErrorResponse(err).StatusCode != 403 {
		t.Errorf("ListBuckets with a wrong secret key: %v, want 403", err)
	}

	// The KMS through the command line and the running mount's admin socket.
	if run.createKey != nil {
		cliRuns = append(cliRuns, cliOK(t, cfg, run.createKey...))
	}
	cliRuns = append(cliRuns, cliOK(t, cfg, run.statusKey...))
	cliRuns = append(cliRuns, cliOK(t, cfg, "key", "rotate", "--data-dir", cfg.DataDir, "--to-key", run.otherKey))
	cliRuns = append(cliRuns, cliOK(t, cfg, "key", "rotate", "--data-dir", cfg.DataDir, "--metadata"))
	if run.otherKey != run.kmsKey {
		assertSealed(t, m.P("redact", "renamed.txt"), "SSE-KMS", run.otherKey)
	}
	m.Stop(t)

	stderr := m.Stderr()
	outputs = append(outputs, stderr, m.Stdout())
	for _, r := range cliRuns {
		outputs = append(outputs, r.Stdout, r.Stderr)
	}
	all := strings.Join(outputs, "\n")
	for _, l := range leaks(all, run.secrets) {
		t.Errorf("key material in ssefs' output: %s", l)
	}
	if !strings.Contains(stderr, "level=DEBUG") && !strings.Contains(stderr, `"level":"DEBUG"`) {
		t.Fatalf("the mount logged nothing at debug level, so the scan proves little; stderr:\n%s", tail(stderr, 4000))
	}

	// Every S3 request the client made is on a log line, under the ID it got.
	sent := ids.all()
	if len(sent) < 10 {
		t.Fatalf("only %d request IDs recorded", len(sent))
	}
	logged := map[string]bool{}
	switch run.format {
	case "json":
		for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if strings.HasPrefix(line, "ssefs: ") {
				continue // the status lines (listening, mounted, stopping) stay plain
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("--log-format json wrote a line that is not JSON: %q", line)
				continue
			}
			id, _ := rec["request"].(string)
			if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "s3") && id == "" {
				t.Errorf("an S3 log line without a request ID: %s", line)
			}
			logged[id] = true
		}
	default:
		for _, line := range strings.Split(stderr, "\n") {
			if _, rest, ok := strings.Cut(line, " request="); ok {
				logged[strings.Fields(rest)[0]] = true
			}
		}
	}
	for _, id := range sent {
		if !logged[id] {
			t.Errorf("request %s (x-amz-request-id of a response) is on no log line", id)
		}
	}
}

// TestLogRedactionKES: with KES, JSON logs. The secrets are the KES client's private key,
// the S3 secrets, the SSE-C keys and file content.
func TestLogRedactionKES(t *testing.T) {
	t.Setenv("SSEFS_IT_DEBUG", "") // see the top of this file: --debug logs data by design
	k := startKES(t, kesAllowAll)
	k.srv.CreateKey(t, "redact-default")
	k.srv.CreateKey(t, "redact-other")
	cfg := withITStore(t, kesConfig(t, k, "redact-default"))
	secrets := map[string][]byte{}
	pemSecrets(t, secrets, "KES client private key", k.id.KeyFile)
	runRedactWorkload(t, redactRun{
		cfg: cfg, creds: newS3Creds(), format: "json",
		kmsKey: "redact-default", otherKey: "redact-other",
		createKey: cmdline("key create", k.flags("redact-default"), "redact-new"),
		statusKey: cmdline("key status", k.flags("redact-default"), "redact-other"),
		secrets:   secrets,
	})
}

// TestLogRedactionStaticKey: with a static master key, text logs. The secrets are the
// master key, the S3 secrets, the SSE-C keys and file content.
func TestLogRedactionStaticKey(t *testing.T) {
	t.Setenv("SSEFS_IT_DEBUG", "")
	cfg := newConfig(t)
	cfg.Bucket = ""
	var master string
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "SSEFS_KMS_MASTER_KEY="); ok {
			master = v
		}
	}
	name, hexKey, _ := strings.Cut(master, ":")
	raw, err := hex.DecodeString(hexKey)
	if err != nil || name != s3KeyName || len(raw) != 32 {
		t.Fatalf("newConfig's master key %q is not %s:64-hex (%v)", master, s3KeyName, err)
	}
	runRedactWorkload(t, redactRun{
		cfg: cfg, creds: newS3Creds(), format: "text",
		// A static master key is the only key there is: SSE-KMS names it, rotation gives
		// files new data keys of it.
		kmsKey: s3KeyName, otherKey: s3KeyName,
		statusKey: []string{"key", "status", s3KeyName},
		secrets:   map[string][]byte{"master key": raw},
	})
}

// TestLeakScanner: the scan finds a secret in each form a log could hold it in, so that
// the redaction tests passing means something.
func TestLeakScanner(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	secrets := map[string][]byte{"k": key}
	for _, line := range []string{
		`{"level":"DEBUG","msg":"s3","sse":"` + base64.StdEncoding.EncodeToString(key) + `"}`,
		`time=x level=INFO msg=x key=` + hex.EncodeToString(key),
		`time=x level=INFO msg=x key=` + strings.ToUpper(hex.EncodeToString(key)[:40]) + "...",
		"prefix " + base64.RawURLEncoding.EncodeToString(key) + " suffix",
	} {
		if got := leaks("first line\n"+line+"\nlast line", secrets); len(got) != 1 || !strings.HasSuffix(got[0], line) {
			t.Errorf("scan of %q found %q, want the secret on that line", line, got)
		}
	}
	if got := leaks("nothing here\n"+hex.EncodeToString(key[:4]), secrets); len(got) != 0 {
		t.Errorf("scan found %q in text without the secret", got)
	}
}

// secretsGiven are the secrets a test gave ssefs in its environment: a master key, and
// every password and secret key long enough to be told from chance.
func secretsGiven(cfg Config) map[string][]byte {
	secrets := map[string][]byte{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "SSEFS_KMS_MASTER_KEY" || k == "MINIO_KMS_MASTER_KEY":
			if _, h, ok := strings.Cut(v, ":"); ok {
				if raw, err := hex.DecodeString(h); err == nil && len(raw) == 32 {
					secrets[k] = raw
				}
			}
		case (strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET")) && len(v) >= leakWindow:
			secrets[k] = []byte(v)
		}
	}
	return secrets
}

// assertNoSecrets fails the test if output, all one ssefs process wrote, holds a secret
// the test gave it. The harness checks every process it reaps, so the whole end-to-end
// suite doubles as a test that no log line or message carries key material.
func assertNoSecrets(t testing.TB, cfg Config, args []string, output string) {
	t.Helper()
	for _, l := range leaks(output, secretsGiven(cfg)) {
		t.Errorf("ssefs %q wrote a secret it was given: %s", args, l)
	}
}

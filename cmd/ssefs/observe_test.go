package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// TestObserveFlags: the flags parse for mount and serve, come from SSEFS_* too, and a bad
// value is a usage error naming the flag.
func TestObserveFlags(t *testing.T) {
	t.Setenv("SSEFS_LOG_FORMAT", "json")
	cfg, _, err := parseMountFlags([]string{"--log-level", "debug", "--metrics-address", "127.0.0.1:0", "/mnt/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.obs.logFormat != "json" || cfg.obs.level != slog.LevelDebug || cfg.obs.metricsAddress != "127.0.0.1:0" {
		t.Errorf("parsed %+v", *cfg.obs)
	}
	if cfg.store().metrics == nil {
		t.Error("--metrics-address given, but the store gets no metrics to report to")
	}
	t.Setenv("SSEFS_LOG_FORMAT", "")
	plain, _, err := parseMountFlags([]string{"/mnt/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if plain.obs.logFormat != "text" || plain.obs.level != slog.LevelInfo || plain.store().metrics != nil {
		t.Errorf("defaults: format %q, level %v, metrics %v; want text, info, none", plain.obs.logFormat, plain.obs.level, plain.store().metrics)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml", "/mnt"}, "--log-format"},
		{[]string{"--log-level", "verbose", "/mnt"}, "--log-level"},
		{[]string{"--log-level", "INFO+2", "/mnt"}, "--log-level"},
		{[]string{"--metrics-address", "9100", "/mnt"}, "--metrics-address"},
	} {
		_, _, err := parseMountFlags(c.args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mount %v: %v; want a usage error naming %s", c.args, err, c.want)
		}
	}
	// serve registers the same flags (they are store flags).
	err = runServe([]string{"--log-format", "yaml", "--s3-address", "127.0.0.1:0"}, io.Discard, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("serve --log-format yaml: %v; want a usage error naming --log-format", err)
	}
}

// TestLogger: JSON lines parse, the level holds, mount's --debug lowers it, and in text
// format the log package keeps writing as before.
func TestLogger(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	defer log.SetOutput(log.Writer())
	defer log.SetFlags(log.Flags())

	var buf bytes.Buffer
	o := &observeFlags{logFormat: "json", logLevel: "warn"}
	if err := o.resolve(); err != nil {
		t.Fatal(err)
	}
	l := o.logger(&buf, false)
	l.Info("hidden")
	l.Warn("shown", "request", "ABC")
	slog.Error("through the default logger")
	log.Print("through the log package") // at info: below warn
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines at level warn, got:\n%s", buf.String())
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
	}
	if !strings.Contains(lines[0], `"request":"ABC"`) || !strings.Contains(lines[1], "default logger") {
		t.Errorf("lines: %q", lines)
	}

	buf.Reset()
	l = o.logger(&buf, true) // --debug
	l.Debug("debug shown")
	if !strings.Contains(buf.String(), "debug shown") {
		t.Errorf("--debug did not lower the level: %q", buf.String())
	}

	var pkgOut bytes.Buffer
	log.SetOutput(&pkgOut)
	buf.Reset()
	text := &observeFlags{logFormat: "text", logLevel: "info"}
	if err := text.resolve(); err != nil {
		t.Fatal(err)
	}
	l = text.logger(&buf, false)
	l.Info("text line", "k", "v")
	log.Print("go-fuse trace")
	if !strings.Contains(buf.String(), "level=INFO") || !strings.Contains(buf.String(), "k=v") {
		t.Errorf("text format: %q", buf.String())
	}
	if !strings.Contains(pkgOut.String(), "go-fuse trace") || strings.Contains(buf.String(), "go-fuse trace") {
		t.Errorf("text format: the log package's output moved: log package %q, slog %q", pkgOut.String(), buf.String())
	}
}

// testHealth is a health over a real Badger and local object store.
func testHealth(t *testing.T) (*health, string) {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	db, err := meta.Open(filepath.Join(dir, "meta"), key, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	objects := filepath.Join(dir, "objects")
	store, err := objstore.NewLocal(objects)
	if err != nil {
		t.Fatal(err)
	}
	h := &health{db: db, store: store}
	h.state.Store(&stateStarting)
	return h, objects
}

func healthz(t *testing.T, h *health) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.serveHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code, rec.Body.String()
}

// TestHealth: /healthz is 200 "ok" only while the frontends serve and both stores answer;
// otherwise 503 and one line saying which part is not well.
func TestHealth(t *testing.T) {
	h, objects := testHealth(t)
	now := time.Now()
	h.probeTime = func() time.Time { return now }

	if code, body := healthz(t, h); code != 503 || !strings.HasPrefix(body, "starting") {
		t.Errorf("before serving: %d %q, want 503 starting", code, body)
	}
	h.state.Store(&stateServing)
	if code, body := healthz(t, h); code != 200 || body != "ok\n" {
		t.Errorf("serving: %d %q, want 200 ok", code, body)
	}

	// The object store is probed at most every storeProbeEvery.
	if err := os.Rename(objects, objects+".gone"); err != nil {
		t.Fatal(err)
	}
	if code, _ := healthz(t, h); code != 200 {
		t.Errorf("store gone, probe not due yet: %d, want the last answer (200)", code)
	}
	now = now.Add(storeProbeEvery)
	if code, body := healthz(t, h); code != 503 || !strings.HasPrefix(body, "object store: ") || strings.Count(body, "\n") != 1 {
		t.Errorf("store gone: %d %q, want 503 and one line naming the object store", code, body)
	}
	if err := h.storeWorks(context.Background()); err == nil {
		t.Error("the S3 port's readiness check passes with the object store gone")
	}
	if err := os.Rename(objects+".gone", objects); err != nil {
		t.Fatal(err)
	}
	now = now.Add(storeProbeEvery)
	if code, _ := healthz(t, h); code != 200 {
		t.Errorf("store back: %d, want 200", code)
	}

	h.state.Store(&stateStopping)
	if code, body := healthz(t, h); code != 503 || !strings.HasPrefix(body, "stopping") {
		t.Errorf("stopping: %d %q, want 503 stopping", code, body)
	}
	h.state.Store(&stateServing)
	h.db.Close()
	if code, body := healthz(t, h); code != 503 || !strings.HasPrefix(body, "metadata store: ") {
		t.Errorf("metadata closed: %d %q, want 503 naming the metadata store", code, body)
	}
}

// TestObserverWithoutMetrics: without --metrics-address the frontends get no observer
// (a nil interface, not a typed nil) and the S3 port's readiness check still works.
func TestObserverWithoutMetrics(t *testing.T) {
	var o *observer
	if o.fuse() != nil || o.s3() != nil {
		t.Error("a nil observer hands out hooks")
	}
	h, _ := testHealth(t)
	o = &observer{health: h}
	if o.fuse() != nil || o.s3() != nil {
		t.Error("an observer without metrics hands out hooks")
	}
	if err := o.ready(context.Background()); err != nil {
		t.Errorf("ready: %v", err)
	}
	o.serving()
	if code, _ := healthz(t, h); code != 200 {
		t.Errorf("after serving(): %d", code)
	}
	o.stopping()
	if code, _ := healthz(t, h); code != 503 {
		t.Errorf("after stopping(): %d", code)
	}
}

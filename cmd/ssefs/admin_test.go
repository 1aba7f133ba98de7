package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
)

// fakeBackend records what the admin socket asks of it.
type fakeBackend struct {
	mu         sync.Mutex
	buckets    map[string]string // bucket -> key
	metaKey    string
	rotateOpts fs.RotateOptions
	// rotate, if set, runs the rotation; else it reports 3 batches and succeeds.
	rotate func(ctx context.Context, opt fs.RotateOptions) (fs.RotateProgress, error)
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{buckets: map[string]string{"photos": ""}}
}

func (b *fakeBackend) Info(context.Context) (adminInfo, error) {
	return adminInfo{PID: os.Getpid(), DataDir: "/data", KMS: "KES at https://kes:7373", DefaultKey: "default-key"}, nil
}

func (b *fakeBackend) BucketEncryption(_ context.Context, bucket string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.buckets[bucket]
	if !ok {
		return "", fmt.Errorf("bucket %q: %w", bucket, fs.ErrNotExist)
	}
	return k, nil
}

func (b *fakeBackend) SetBucketEncryption(_ context.Context, bucket, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.buckets[bucket]; !ok {
		return fmt.Errorf("bucket %q: %w", bucket, fs.ErrNotExist)
	}
	if key == "missing-key" {
		return fmt.Errorf("key %q: %w: %w", key, fs.ErrAccess, keys.ErrKeyNotFound)
	}
	b.buckets[bucket] = key
	return nil
}

func (b *fakeBackend) RotateKeys(ctx context.Context, opt fs.RotateOptions) (fs.RotateProgress, error) {
	b.mu.Lock()
	b.rotateOpts = opt
	rotate := b.rotate
	b.mu.Unlock()
	if rotate != nil {
		return rotate(ctx, opt)
	}
	var p fs.RotateProgress
	p.Total = 30
	for range 3 {
		p.Done += 10
		if opt.Progress != nil {
			opt.Progress(p)
		}
		time.Sleep(2 * progressInterval) // past the socket's throttle, so each batch crosses
	}
	return p, nil
}

func (b *fakeBackend) RotateMetadataKey(_ context.Context, toKey string) (string, error) {
	if toKey == "" {
		toKey = "default-key"
	}
	b.mu.Lock()
	b.metaKey = toKey
	b.mu.Unlock()
	return toKey, nil
}

// serveFake starts an admin socket in a fresh directory and connects a client to it.
func serveFake(t *testing.T, dir string, b adminBackend) (*adminServer, *adminClient) {
	t.Helper()
	srv, err := startAdminServer(dir, b, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	c, err := dialAdmin(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	return srv, c
}

func TestAdminSocketProtocol(t *testing.T) {
	dir := t.TempDir()
	b := newFakeBackend()
	srv, c := serveFake(t, dir, b)
	ctx := context.Background()

	fi, err := os.Stat(filepath.Join(dir, adminSocketFile))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.sock: %v %v; want a socket with mode 0600", fi.Mode(), err)
	}
	info, err := c.Info(ctx)
	if err != nil || info.DefaultKey != "default-key" || info.KMS != "KES at https://kes:7373" {
		t.Fatalf("Info: %+v, %v", info, err)
	}

	// Bucket encryption: set, get, clear, and the errors' kinds cross the socket.
	if err := c.SetBucketEncryption(ctx, "photos", "photo-key"); err != nil {
		t.Fatal(err)
	}
	if k, err := c.BucketEncryption(ctx, "photos"); err != nil || k != "photo-key" {
		t.Fatalf("get after set: %q, %v", k, err)
	}
	if err := c.SetBucketEncryption(ctx, "photos", ""); err != nil {
		t.Fatal(err)
	}
	if k, err := c.BucketEncryption(ctx, "photos"); err != nil || k != "" {
		t.Fatalf("get after clear: %q, %v", k, err)
	}
	if _, err := c.BucketEncryption(ctx, "nosuch"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("missing bucket: %v; want fs.ErrNotExist with the engine's message", err)
	}
	err = c.SetBucketEncryption(ctx, "photos", "missing-key")
	if !errors.Is(err, fs.ErrAccess) || !errors.Is(err, keys.ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing KMS key: %v; want ErrAccess and ErrKeyNotFound", err)
	}

	// Metadata key.
	if k, err := c.RotateMetadataKey(ctx, "new-key"); err != nil || k != "new-key" || b.metaKey != "new-key" {
		t.Errorf("RotateMetadataKey: %q, %v (backend has %q)", k, err, b.metaKey)
	}

	// Rotation: options arrive, progress streams back, the final count is returned.
	var seen []fs.RotateProgress
	p, err := c.RotateKeys(ctx, fs.RotateOptions{Bucket: "photos", FromKey: "a", ToKey: "b",
		Progress: func(p fs.RotateProgress) { seen = append(seen, p) }})
	if err != nil || p.Done != 30 || p.Total != 30 {
		t.Fatalf("RotateKeys: %+v, %v", p, err)
	}
	if len(seen) < 2 || seen[0].Done != 10 {
		t.Errorf("progress seen by the client: %+v; want the batches as they happened", seen)
	}
	if o := b.rotateOpts; o.Bucket != "photos" || o.FromKey != "a" || o.ToKey != "b" || o.Abandon {
		t.Errorf("the backend got %+v", o)
	}

	if err := srv.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, adminSocketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin.sock still there after stop: %v", err)
	}
}

// TestAdminSocketRotationCancel: the client going away (Ctrl-C) cancels the rotation in the
// serving process; the server stopping cancels it too and the client hears why.
func TestAdminSocketRotationCancel(t *testing.T) {
	dir := t.TempDir()
	b := newFakeBackend()
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	b.rotate = func(ctx context.Context, opt fs.RotateOptions) (fs.RotateProgress, error) {
		p := fs.RotateProgress{Total: 100, Done: 5}
		opt.Progress(p)
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- ctx.Err()
		return p, fmt.Errorf("rotation interrupted: %w", ctx.Err())
	}
	srv, c := serveFake(t, dir, b)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.RotateKeys(ctx, fs.RotateOptions{Progress: func(fs.RotateProgress) {}})
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("server-side context: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the client did not cancel the rotation in the server")
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v", err)
	}

	// Now the server stops while a rotation runs.
	go func() {
		p, err := c.RotateKeys(context.Background(), fs.RotateOptions{})
		if p.Done != 5 {
			err = fmt.Errorf("progress %+v, want the last count: %w", p, err)
		}
		done <- err
	}()
	<-started
	if err := srv.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	<-cancelled
	err := <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopping") {
		t.Errorf("client after the server stopped: %v", err)
	}
	var out, errOut bytes.Buffer
	err = rotateKeys(context.Background(), &errBackend{err}, fs.RotateOptions{}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "run the same command again") {
		t.Errorf("the CLI's message for a rotation stopped by the server: %v", err)
	}
}

// errBackend's rotation fails with err after reporting 5 of 100.
type errBackend struct{ err error }

func (e *errBackend) Info(context.Context) (adminInfo, error)                  { return adminInfo{}, nil }
func (e *errBackend) BucketEncryption(context.Context, string) (string, error) { return "", e.err }
func (e *errBackend) SetBucketEncryption(context.Context, string, string) error {
	return e.err
}
func (e *errBackend) RotateMetadataKey(context.Context, string) (string, error) { return "", e.err }
func (e *errBackend) RotateKeys(context.Context, fs.RotateOptions) (fs.RotateProgress, error) {
	return fs.RotateProgress{Total: 100, Done: 5}, e.err
}

func TestAdminSocketRefusesOtherUsers(t *testing.T) {
	dir := t.TempDir()
	// A peer check that admits nobody stands for a connection from another user.
	srv, err := startAdminServerAllowing(dir, newFakeBackend(), quietLog, func(uint32) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	if _, err := dialAdmin(context.Background(), dir); err == nil {
		t.Fatal("a peer that the check refuses got an answer")
	}
	if !allowPeer(uint32(os.Getuid())) || !allowPeer(0) {
		t.Error("allowPeer refuses the process's own user or root")
	}
	if os.Getuid() != 65534 && allowPeer(65534) {
		t.Error("allowPeer admits another user")
	}
}

// TestAdminSocketDeepDataDir: a data directory deeper than a socket address can name still
// gets its socket.
func TestAdminSocketDeepDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, c := serveFake(t, dir, newFakeBackend())
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, adminSocketFile)); err != nil {
		t.Fatal(err)
	}
}

func TestAdminSocketStaleSocketIsReplaced(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, adminSocketFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, c := serveFake(t, dir, newFakeBackend())
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
}

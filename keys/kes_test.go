package keys

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssefs/ssefs/internal/kestest"
)

// These tests run against a real KES v0.24.0 server (internal/kestest). When no KES binary
// can be found or built they fail, never skip.

// appPolicy is what an ssefs instance needs: create, generate, decrypt and list its keys.
var appPolicy = []string{
	"/v1/key/create/app-*",
	"/v1/key/generate/app-*",
	"/v1/key/decrypt/app-*",
	"/v1/key/list/*",
}

func newKESClient(t *testing.T, s *kestest.Server, id kestest.Identity, endpoints ...string) *KES {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = []string{s.Endpoint}
	}
	k, err := NewKES(KESConfig{Endpoints: endpoints, CertFile: id.CertFile, KeyFile: id.KeyFile, CAPath: s.CAFile})
	if err != nil {
		t.Fatalf("NewKES: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	if k.Identity() != id.ID {
		t.Fatalf("Identity() = %s, want %s (the KES identity of the certificate)", k.Identity(), id.ID)
	}
	return k
}

// startApp starts a KES server with one identity under appPolicy and returns a client.
func startApp(t *testing.T, opts ...kestest.Option) (*kestest.Server, *KES) {
	t.Helper()
	s := kestest.New(t, opts...)
	app := s.NewIdentity(t)
	s.SetPolicy("app", appPolicy, nil, app)
	s.Start(t)
	return s, newKESClient(t, s, app)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKESGenerateDecrypt(t *testing.T) {
	_, k := startApp(t)
	ctx := ctxT(t)
	if err := k.CreateKey(ctx, "app-key"); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	kctx := Context{"bucket": "photos", "path": "a/b", "": "empty key"}
	dek, err := k.GenerateKey(ctx, "app-key", kctx)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if dek.KeyName != "app-key" || len(dek.Plaintext) != 32 || len(dek.Ciphertext) == 0 {
		t.Fatalf("GenerateKey = name %q, %d-byte plaintext, %d-byte ciphertext; want app-key, 32, >0",
			dek.KeyName, len(dek.Plaintext), len(dek.Ciphertext))
	}
	// The same context, built in another order: the encoding is canonical.
	same := Context{}
	for _, k := range []string{"path", "", "bucket"} {
		same[k] = kctx[k]
	}
	pt, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, same)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(pt, dek.Plaintext) {
		t.Fatal("Decrypt returned another plaintext than GenerateKey")
	}

	dek2, err := k.GenerateKey(ctx, "app-key", kctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dek2.Plaintext, dek.Plaintext) || bytes.Equal(dek2.Ciphertext, dek.Ciphertext) {
		t.Fatal("two GenerateKey calls returned the same key")
	}

	// nil and empty contexts are the same context.
	dek3, err := k.GenerateKey(ctx, "app-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Decrypt(ctx, "app-key", dek3.Ciphertext, Context{}); err != nil || !bytes.Equal(pt, dek3.Plaintext) {
		t.Fatalf("Decrypt with an empty context of a key made with nil: %v", err)
	}
}

func TestKESDecryptFailures(t *testing.T) {
	s, k := startApp(t)
	ctx := ctxT(t)
	s.CreateKey(t, "app-key")
	s.CreateKey(t, "app-other")
	kctx := Context{"bucket": "b"}
	dek, err := k.GenerateKey(ctx, "app-key", kctx)
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string]struct {
		key  string
		ct   []byte
		kctx Context
	}{
		"wrong context value":  {"app-key", dek.Ciphertext, Context{"bucket": "c"}},
		"wrong context key":    {"app-key", dek.Ciphertext, Context{"bucket2": "b"}},
		"extra context pair":   {"app-key", dek.Ciphertext, Context{"bucket": "b", "x": ""}},
		"no context":           {"app-key", dek.Ciphertext, nil},
		"other key":            {"app-other", dek.Ciphertext, kctx},
		"truncated ciphertext": {"app-key", dek.Ciphertext[:len(dek.Ciphertext)-1], kctx},
		"garbage ciphertext":   {"app-key", []byte("not a ciphertext"), kctx},
		"empty ciphertext":     {"app-key", nil, kctx},
	}
	for _, i := range []int{0, len(dek.Ciphertext) / 3, len(dek.Ciphertext) / 2, len(dek.Ciphertext) - 1} {
		ct := slices.Clone(dek.Ciphertext)
		ct[i] ^= 0x01
		cases[fmt.Sprintf("ciphertext byte %d flipped", i)] = struct {
			key  string
			ct   []byte
			kctx Context
		}{"app-key", ct, kctx}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			pt, err := k.Decrypt(ctx, c.key, c.ct, c.kctx)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Decrypt = %d bytes, %v; want ErrDecrypt", len(pt), err)
			}
			if !strings.Contains(err.Error(), c.key) || (len(c.ct) > 0 && !strings.Contains(err.Error(), s.Endpoint)) {
				t.Errorf("error %q does not name the endpoint and the key", err)
			}
			assertNoKESSecret(t, err, dek.Plaintext)
		})
	}
}

func TestKESKeyNotFound(t *testing.T) {
	s, k := startApp(t)
	ctx := ctxT(t)
	s.CreateKey(t, "app-key")
	dek, err := k.GenerateKey(ctx, "app-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.GenerateKey(ctx, "app-missing", nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("GenerateKey of a missing key: %v, want ErrKeyNotFound", err)
	} else if !strings.Contains(err.Error(), "app-missing") || !strings.Contains(err.Error(), s.Endpoint) {
		t.Errorf("error %q does not name the key and the endpoint", err)
	}
	if _, err := k.Decrypt(ctx, "app-missing", dek.Ciphertext, nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Decrypt with a missing key: %v, want ErrKeyNotFound", err)
	}
	// Names KES cannot have: refused without asking.
	for _, name := range []string{"", "a/b", "a.b", "-a", "a-", "_", strings.Repeat("a", 81), "ä"} {
		if _, err := k.GenerateKey(ctx, name, nil); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("GenerateKey(%q): %v, want ErrKeyNotFound", name, err)
		}
		if err := k.CreateKey(ctx, name); err == nil {
			t.Errorf("CreateKey(%q) succeeded", name)
		}
	}
}

// TestKESSecureErasure: a key deleted in KES makes its data keys unreadable, and the same
// key restored makes them readable again.
func TestKESSecureErasure(t *testing.T) {
	s, k := startApp(t)
	ctx := ctxT(t)
	s.CreateKey(t, "app-key")
	dek, err := k.GenerateKey(ctx, "app-key", Context{"bucket": "b"})
	if err != nil {
		t.Fatal(err)
	}
	backup := s.BackupKey(t, "app-key")
	s.DeleteKey(t, "app-key")
	if _, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, Context{"bucket": "b"}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Decrypt after the key was deleted: %v, want ErrKeyNotFound", err)
	}
	s.RestoreKey(t, "app-key", backup)
	pt, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, Context{"bucket": "b"})
	if err != nil || !bytes.Equal(pt, dek.Plaintext) {
		t.Fatalf("Decrypt after the key was restored: %v", err)
	}
}

func TestKESCreateAndList(t *testing.T) {
	_, k := startApp(t)
	ctx := ctxT(t)
	for _, n := range []string{"app-a1", "app-a2", "app-b1", "app-c_1"} {
		if err := k.CreateKey(ctx, n); err != nil {
			t.Fatalf("CreateKey(%s): %v", n, err)
		}
	}
	if err := k.CreateKey(ctx, "app-a1"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("CreateKey of an existing key: %v, want ErrKeyExists", err)
	}
	if err := k.CreateKey(ctx, "other"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("CreateKey outside the policy: %v, want ErrForbidden", err)
	}

	for pattern, want := range map[string][]string{
		"":          {"app-a1", "app-a2", "app-b1", "app-c_1"},
		"*":         {"app-a1", "app-a2", "app-b1", "app-c_1"},
		"app-*":     {"app-a1", "app-a2", "app-b1", "app-c_1"},
		"app-?1":    {"app-a1", "app-b1"},
		"app-[ab]*": {"app-a1", "app-a2", "app-b1"},
		"app-a*":    {"app-a1", "app-a2"},
		"app*":      {"app-a1", "app-a2", "app-b1", "app-c_1"},
		"*_*":       {"app-c_1"},
		"app-a1":    {"app-a1"},
		"app-a":     {},
		"*1":        {"app-a1", "app-b1", "app-c_1"},
		"app.*":     {},
		"nomatch":   {},
	} {
		got, err := k.ListKeys(ctx, pattern)
		if err != nil {
			t.Errorf("ListKeys(%q): %v", pattern, err)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListKeys(%q) = %q, want %q", pattern, got, want)
		}
	}
	if _, err := k.ListKeys(ctx, "app-["); err == nil {
		t.Error("ListKeys with a malformed pattern succeeded")
	}
}

func TestKESListPrefix(t *testing.T) {
	for pattern, want := range map[string]string{
		"*": "*", "app-*": "app", "app-a*": "app-a", "app": "app", "app-?": "app", "-x*": "*",
		"_": "*", "_a*": "_a", "a.b*": "a", "[ab]*": "*", `a\*`: "a", "ä*": "*", "a--*": "a",
		strings.Repeat("x", 100): strings.Repeat("x", 80),
	} {
		if got := kesListPrefix(pattern); got != want {
			t.Errorf("kesListPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestKESForbidden(t *testing.T) {
	s := kestest.New(t)
	genOnly := s.NewIdentity(t)
	s.SetPolicy("gen-only", []string{"/v1/key/generate/app-*"}, []string{"/v1/key/generate/app-secret*"}, genOnly)
	s.Start(t)
	s.CreateKey(t, "app-key")
	s.CreateKey(t, "app-secret")
	s.CreateKey(t, "other")
	k := newKESClient(t, s, genOnly)
	ctx := ctxT(t)

	dek, err := k.GenerateKey(ctx, "app-key", nil)
	if err != nil {
		t.Fatalf("GenerateKey allowed by the policy: %v", err)
	}
	for name, call := range map[string]func() error{
		"decrypt (not allowed)":         func() error { _, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, nil); return err },
		"generate, other key":           func() error { _, err := k.GenerateKey(ctx, "other", nil); return err },
		"generate, denied key":          func() error { _, err := k.GenerateKey(ctx, "app-secret", nil); return err },
		"create (not allowed)":          func() error { return k.CreateKey(ctx, "app-new") },
		"list (not allowed)":            func() error { _, err := k.ListKeys(ctx, "*"); return err },
		"generate, missing, not policy": func() error { _, err := k.GenerateKey(ctx, "nokey", nil); return err },
	} {
		err := call()
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", name, err)
			continue
		}
		if errors.Is(err, ErrIdentityRejected) || errors.Is(err, ErrKeyNotFound) {
			t.Errorf("%s: %v is more than ErrForbidden", name, err)
		}
		if !strings.Contains(err.Error(), genOnly.ID) || !strings.Contains(err.Error(), s.Endpoint) {
			t.Errorf("%s: error %q does not name the identity and the endpoint", name, err)
		}
	}
}

// TestKESIdentityRejected: a certificate the server refuses in the TLS handshake is
// ErrIdentityRejected. KES v0.24 answers an identity it can verify but does not know (a
// certificate of its CA in no policy; with tls.auth off, any certificate) exactly as it
// answers a forbidden call, 403 "not authorized: insufficient permissions"; its
// self-describe API answers "identity does not exist" for every identity but the admin.
// So a client cannot tell an unknown identity from a forbidden call: that is ErrForbidden,
// with a message that names both causes and the identity to add to a policy.
func TestKESIdentityRejected(t *testing.T) {
	ctx := ctxT(t)
	t.Run("other CA, client verification on", func(t *testing.T) {
		s, _ := startApp(t)
		s.CreateKey(t, "app-key")
		stranger := kestest.NewCA(t).NewIdentity(t)
		k := newKESClient(t, s, stranger)
		_, err := k.GenerateKey(ctx, "app-key", nil)
		if !errors.Is(err, ErrIdentityRejected) {
			t.Fatalf("GenerateKey with a certificate of another CA: %v, want ErrIdentityRejected", err)
		}
		if !strings.Contains(err.Error(), stranger.ID) || !strings.Contains(err.Error(), s.Endpoint) {
			t.Errorf("error %q does not name the identity and the endpoint", err)
		}
		// The server's refusal is an answer: the client does not fail over past it.
		k2 := newKESClient(t, s, stranger, s.Endpoint, deadEndpoint(t))
		if err := k2.CreateKey(ctx, "app-x"); !errors.Is(err, ErrIdentityRejected) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("CreateKey with a refused certificate and a second endpoint: %v, want ErrIdentityRejected only", err)
		}
	})
	t.Run("known CA, in no policy", func(t *testing.T) {
		s := kestest.New(t)
		unknown := s.NewIdentity(t)
		s.Start(t)
		s.CreateKey(t, "app-key")
		k := newKESClient(t, s, unknown)
		_, err := k.GenerateKey(ctx, "app-key", nil)
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "does not know the identity") ||
			!strings.Contains(err.Error(), unknown.ID) {
			t.Fatalf("GenerateKey with an identity in no policy: %v, want ErrForbidden naming the identity as possibly unknown", err)
		}
	})
	t.Run("other CA, client verification off", func(t *testing.T) {
		s, _ := startApp(t, kestest.WithClientVerification(false))
		s.CreateKey(t, "app-key")
		k := newKESClient(t, s, kestest.NewCA(t).NewIdentity(t))
		if _, err := k.GenerateKey(ctx, "app-key", nil); !errors.Is(err, ErrForbidden) {
			t.Fatalf("GenerateKey with a certificate of another CA, tls.auth off: %v, want ErrForbidden", err)
		}
	})
	t.Run("server not trusted", func(t *testing.T) {
		s, _ := startApp(t)
		id := s.NewIdentity(t)
		k, err := NewKES(KESConfig{Endpoints: []string{s.Endpoint}, CertFile: id.CertFile, KeyFile: id.KeyFile,
			CAPath: kestest.NewCA(t).CertFile})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		if _, err := k.GenerateKey(ctx, "app-key", nil); !errors.Is(err, ErrUnavailable) ||
			!errors.Is(err, ErrServerUntrusted) || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("GenerateKey from a server whose CA is not trusted: %v, want ErrUnavailable saying so", err)
		}
	})
}

func TestKESUnavailableAndRestart(t *testing.T) {
	s, k := startApp(t)
	ctx := ctxT(t)
	s.CreateKey(t, "app-key")
	dek, err := k.GenerateKey(ctx, "app-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	for name, call := range map[string]func() error{
		"generate": func() error { _, err := k.GenerateKey(ctx, "app-key", nil); return err },
		"decrypt":  func() error { _, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, nil); return err },
		"create":   func() error { return k.CreateKey(ctx, "app-new") },
		"list":     func() error { _, err := k.ListKeys(ctx, "*"); return err },
	} {
		err := call()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the server stopped: %v, want ErrUnavailable", name, err)
		} else if !strings.Contains(err.Error(), s.Endpoint) {
			t.Errorf("%s: error %q does not name the endpoint", name, err)
		}
	}
	s.Restart(t)
	pt, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, nil)
	if err != nil || !bytes.Equal(pt, dek.Plaintext) {
		t.Fatalf("Decrypt after the server restarted: %v", err)
	}
}

// deadEndpoint returns an https endpoint on which nothing listens.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr
}

// fakeKES is a TLS server with a certificate of the test CA that answers with handler and
// counts requests.
type fakeKES struct {
	*httptest.Server
	hits atomic.Int64
}

func newFakeKES(t *testing.T, s *kestest.Server, handler http.HandlerFunc) *fakeKES {
	t.Helper()
	certFile, keyFile := s.CA.NewServerCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeKES{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		handler(w, r)
	}))
	f.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func kesFail(code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, "{\"message\":%q}\n", msg)
	}
}

func TestKESFailover(t *testing.T) {
	s := kestest.New(t)
	app := s.NewIdentity(t)
	s.SetPolicy("app", appPolicy, nil, app)
	s.Start(t)
	s.CreateKey(t, "app-key")
	ctx := ctxT(t)

	t.Run("dead first endpoint", func(t *testing.T) {
		dead := deadEndpoint(t)
		k := newKESClient(t, s, app, dead, s.Endpoint)
		dek, err := k.GenerateKey(ctx, "app-key", nil)
		if err != nil {
			t.Fatalf("GenerateKey with a dead first endpoint: %v", err)
		}
		if got := k.endpoints[k.next.Load()]; got != s.Endpoint {
			t.Errorf("next request starts at %s, want the endpoint that answered, %s", got, s.Endpoint)
		}
		if _, err := k.Decrypt(ctx, "app-key", dek.Ciphertext, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("503 and 502 first", func(t *testing.T) {
		f503 := newFakeKES(t, s, kesFail(http.StatusServiceUnavailable, "overloaded"))
		f502 := newFakeKES(t, s, kesFail(http.StatusBadGateway, "failed to read key"))
		k := newKESClient(t, s, app, f503.URL, f502.URL, s.Endpoint)
		for range 3 {
			if _, err := k.GenerateKey(ctx, "app-key", nil); err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
		}
		if f503.hits.Load() != 1 || f502.hits.Load() != 1 {
			t.Errorf("failing endpoints asked %d and %d times, want once each: later requests start at the one that answered",
				f503.hits.Load(), f502.hits.Load())
		}
	})
	t.Run("all fail", func(t *testing.T) {
		f503 := newFakeKES(t, s, kesFail(http.StatusServiceUnavailable, "overloaded"))
		dead := deadEndpoint(t)
		k := newKESClient(t, s, app, f503.URL, dead)
		_, err := k.GenerateKey(ctx, "app-key", nil)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), f503.URL) ||
			!strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), "overloaded") {
			t.Fatalf("GenerateKey with every endpoint failing: %v, want ErrUnavailable naming each endpoint", err)
		}
	})
	// A definite answer is final: the next endpoint is not asked.
	for name, c := range map[string]struct {
		h    http.HandlerFunc
		want error
	}{
		"404": {kesFail(http.StatusNotFound, "key does not exist"), ErrKeyNotFound},
		"403": {kesFail(http.StatusForbidden, "not authorized: insufficient permissions"), ErrForbidden},
		"400": {kesFail(http.StatusBadRequest, "decryption failed: ciphertext is not authentic"), ErrDecrypt},
	} {
		t.Run("no failover on "+name, func(t *testing.T) {
			f := newFakeKES(t, s, c.h)
			k := newKESClient(t, s, app, f.URL, s.Endpoint)
			_, err := k.Decrypt(ctx, "app-key", []byte("ciphertext"), nil)
			if !errors.Is(err, c.want) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("Decrypt: %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), f.URL) {
				t.Errorf("error %q does not name the endpoint that answered", err)
			}
		})
	}
}

func TestKESTimeouts(t *testing.T) {
	s := kestest.New(t)
	app := s.NewIdentity(t)
	s.SetPolicy("app", appPolicy, nil, app)
	s.Start(t)
	s.CreateKey(t, "app-key")
	release := make(chan struct{})
	defer close(release)
	hang := newFakeKES(t, s, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})

	t.Run("caller's deadline", func(t *testing.T) {
		k := newKESClient(t, s, app, hang.URL, s.Endpoint) // Timeout 10s
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := k.GenerateKey(ctx, "app-key", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GenerateKey past the caller's deadline: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("GenerateKey returned %v after the deadline", d)
		}
		if hits := hang.hits.Load(); hits == 0 {
			t.Error("the hanging endpoint was never asked")
		}
	})
	t.Run("canceled before the call", func(t *testing.T) {
		k := newKESClient(t, s, app)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := k.GenerateKey(ctx, "app-key", nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("GenerateKey with a canceled context: %v", err)
		}
	})
	t.Run("per-request timeout, then failover", func(t *testing.T) {
		k, err := NewKES(KESConfig{Endpoints: []string{hang.URL, s.Endpoint}, CertFile: app.CertFile, KeyFile: app.KeyFile,
			CAPath: s.CAFile, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		start := time.Now()
		if _, err := k.GenerateKey(ctxT(t), "app-key", nil); err != nil {
			t.Fatalf("GenerateKey with a hanging first endpoint: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("failover took %v with a 300ms timeout", d)
		}
		k2, err := NewKES(KESConfig{Endpoints: []string{hang.URL}, CertFile: app.CertFile, KeyFile: app.KeyFile,
			CAPath: s.CAFile, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer k2.Close()
		if _, err := k2.GenerateKey(ctxT(t), "app-key", nil); !errors.Is(err, ErrUnavailable) ||
			!strings.Contains(err.Error(), "no answer within 300ms") {
			t.Fatalf("GenerateKey with only a hanging endpoint: %v, want ErrUnavailable (no answer within 300ms)", err)
		}
	})
}

func TestKESMalformedAnswers(t *testing.T) {
	s := kestest.New(t)
	app := s.NewIdentity(t)
	ctx := ctxT(t)
	secret := []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	short := base64.StdEncoding.EncodeToString(secret[:16])
	for name, body := range map[string]string{
		"short plaintext": `{"plaintext":"` + short + `","ciphertext":"AAAA"}`,
		"no ciphertext":   `{"plaintext":"` + base64.StdEncoding.EncodeToString(secret) + `"}`,
		"not JSON":        `plaintext=` + base64.StdEncoding.EncodeToString(secret),
		"bad base64":      `{"plaintext":"` + string(secret) + `!","ciphertext":"AAAA"}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeKES(t, s, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
			k := newKESClient(t, s, app, f.URL)
			dek, err := k.GenerateKey(ctx, "app-key", nil)
			if err == nil {
				t.Fatalf("GenerateKey accepted %s: %d-byte plaintext", name, len(dek.Plaintext))
			}
			assertNoKESSecret(t, err, secret)
			if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(secret)) {
				t.Errorf("error %q quotes the answer", err)
			}
			if _, err := k.Decrypt(ctx, "app-key", []byte("ct"), nil); err != nil {
				assertNoKESSecret(t, err, secret)
			}
		})
	}
}

// assertNoKESSecret fails if err echoes part of secret, raw, in base64 or in hex.
func assertNoKESSecret(t *testing.T, err error, secret []byte) {
	t.Helper()
	if err == nil {
		return
	}
	assertNoSecret(t, err, string(secret))
	assertNoSecret(t, err, base64.StdEncoding.EncodeToString(secret))
	assertNoSecret(t, err, fmt.Sprintf("%x", secret))
}

func TestKESConcurrent(t *testing.T) {
	s, k := startApp(t)
	s.CreateKey(t, "app-key")
	s.CreateKey(t, "app-key2")
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"app-key", "app-key2"}[g%2]
			for i := range 20 {
				kctx := Context{"bucket": fmt.Sprint("b", g), "i": fmt.Sprint(i)}
				dek, err := k.GenerateKey(ctx, key, kctx)
				if err != nil {
					errs <- err
					return
				}
				pt, err := k.Decrypt(ctx, key, dek.Ciphertext, kctx)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(pt, dek.Plaintext) {
					errs <- errors.New("round trip returned another key")
					return
				}
				if i%5 == 0 {
					if _, err := k.ListKeys(ctx, "app-*"); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestKESClose(t *testing.T) {
	s, k := startApp(t)
	s.CreateKey(t, "app-key")
	if _, err := k.GenerateKey(ctxT(t), "app-key", nil); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.GenerateKey(ctxT(t), "app-key", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GenerateKey after Close: %v, want ErrUnavailable", err)
	}
}

func TestNewKESConfig(t *testing.T) {
	ca := kestest.NewCA(t)
	id := ca.NewIdentity(t)
	other := ca.NewIdentity(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.pem", "this is not PEM\n")
	badCert := write("badcert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o700)
	caDir := filepath.Join(dir, "cas")
	os.Mkdir(caDir, 0o700)
	caPEM, _ := os.ReadFile(ca.CertFile)
	os.WriteFile(filepath.Join(caDir, "ca.pem"), caPEM, 0o600)
	os.WriteFile(filepath.Join(caDir, "README"), []byte("no certificates here\n"), 0o600)
	os.Mkdir(filepath.Join(caDir, "sub"), 0o700)
	keyAsDir := filepath.Join(dir, "key-is-a-dir")
	os.Mkdir(keyAsDir, 0o700)
	missing := filepath.Join(dir, "missing.pem")
	caCertAsClient := ca.CertFile // a CA certificate is not a client identity

	good := KESConfig{Endpoints: []string{"https://127.0.0.1:7373"}, CertFile: id.CertFile, KeyFile: id.KeyFile, CAPath: ca.CertFile}
	with := func(f func(*KESConfig)) KESConfig {
		c := good
		c.Endpoints = slices.Clone(good.Endpoints)
		f(&c)
		return c
	}

	for _, c := range []struct {
		name string
		cfg  KESConfig
		want []string // substrings of the error; nil: no error
	}{
		{"good", good, nil},
		{"good, several endpoints, CA directory, trailing slash", with(func(c *KESConfig) {
			c.Endpoints = []string{"https://kes1.example:7373/", " https://[::1]:7373 "}
			c.CAPath = caDir
		}), nil},
		{"good, system roots", with(func(c *KESConfig) { c.CAPath = "" }), nil},
		{"no endpoints", with(func(c *KESConfig) { c.Endpoints = nil }), []string{"no endpoint"}},
		{"http endpoint", with(func(c *KESConfig) { c.Endpoints = []string{"http://127.0.0.1:7373"} }), []string{"http://127.0.0.1:7373", "https://"}},
		{"no scheme", with(func(c *KESConfig) { c.Endpoints = []string{"127.0.0.1:7373"} }), []string{"127.0.0.1:7373"}},
		{"no host", with(func(c *KESConfig) { c.Endpoints = []string{"https://"} }), []string{"no host"}},
		{"path", with(func(c *KESConfig) { c.Endpoints = []string{"https://kes:7373/v1"} }), []string{"https://kes:7373/v1", "path"}},
		{"user info", with(func(c *KESConfig) { c.Endpoints = []string{"https://u:secret@kes:7373"} }), []string{"user"}},
		{"second endpoint bad", with(func(c *KESConfig) { c.Endpoints = append(c.Endpoints, "ftp://x") }), []string{"ftp://x"}},
		{"no cert", with(func(c *KESConfig) { c.CertFile = "" }), []string{"no client certificate"}},
		{"no key", with(func(c *KESConfig) { c.KeyFile = "" }), []string{"no client key"}},
		{"missing cert", with(func(c *KESConfig) { c.CertFile = missing }), []string{missing}},
		{"missing key", with(func(c *KESConfig) { c.KeyFile = missing }), []string{missing}},
		{"unreadable key", with(func(c *KESConfig) { c.KeyFile = keyAsDir }), []string{keyAsDir}},
		{"key not PEM", with(func(c *KESConfig) { c.KeyFile = garbage }), []string{garbage}},
		{"cert not PEM", with(func(c *KESConfig) { c.CertFile = garbage }), []string{garbage}},
		{"key of another cert", with(func(c *KESConfig) { c.KeyFile = other.KeyFile }), []string{other.KeyFile, id.CertFile}},
		{"CA cert as client cert", with(func(c *KESConfig) { c.CertFile = caCertAsClient }), []string{caCertAsClient}},
		{"CA missing", with(func(c *KESConfig) { c.CAPath = missing }), []string{missing}},
		{"CA not PEM", with(func(c *KESConfig) { c.CAPath = garbage }), []string{garbage, "no PEM certificate"}},
		{"CA bad certificate", with(func(c *KESConfig) { c.CAPath = badCert }), []string{badCert}},
		{"CA empty directory", with(func(c *KESConfig) { c.CAPath = emptyDir }), []string{emptyDir}},
		{"enclave", with(func(c *KESConfig) { c.Enclave = "tenant-1" }), []string{"tenant-1", "enclave"}},
		{"negative timeout", with(func(c *KESConfig) { c.Timeout = -time.Second }), []string{"timeout"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := NewKES(c.cfg)
			if c.want == nil {
				if err != nil {
					t.Fatalf("NewKES: %v", err)
				}
				k.Close()
				return
			}
			if err == nil {
				k.Close()
				t.Fatalf("NewKES accepted the config")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats a password of the endpoint", err)
			}
		})
	}

	// The key file's content never shows in an error.
	keyPEM, _ := os.ReadFile(id.KeyFile)
	broken := write("broken.key", strings.Replace(string(keyPEM), "\n", "\n!", 3))
	if _, err := NewKES(with(func(c *KESConfig) { c.KeyFile = broken })); err == nil {
		t.Error("NewKES accepted a broken key")
	} else {
		for _, line := range strings.Split(string(keyPEM), "\n")[1:3] {
			if len(line) > 8 && strings.Contains(err.Error(), line[:8]) {
				t.Errorf("error %q quotes the key file", err)
			}
		}
	}
}

package keys

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func mustStatic(t testing.TB, name string) *Static {
	t.Helper()
	s, err := GenerateMasterKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertNoSecret fails if err's message contains any 8-character run of secret: a
// partial echo leaks as surely as a full one.
func assertNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	msg := err.Error()
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+8]) {
			t.Fatalf("error %q echoes part of the secret %q", msg, secret[i:i+8])
		}
	}
}

func TestParseMasterKey(t *testing.T) {
	good := []struct{ in, name string }{
		{"my-minio-key:" + testHex, "my-minio-key"},
		{"k:" + strings.ToUpper(testHex), "k"},
		{"my-key:" + testHex + "\n", "my-key"}, // as read from a key file
		{"  ünïcode_key.1:" + testHex, "ünïcode_key.1"},
	}
	for _, tc := range good {
		s, err := ParseMasterKey(tc.in)
		if err != nil {
			t.Errorf("ParseMasterKey(%q): %v", tc.in, err)
			continue
		}
		if s.Name() != tc.name {
			t.Errorf("ParseMasterKey(%q).Name() = %q, want %q", tc.in, s.Name(), tc.name)
		}
		if want := tc.name + ":" + testHex; s.String() != want {
			t.Errorf("ParseMasterKey(%q).String() = %q, want %q", tc.in, s.String(), want)
		}
	}

	bad := []struct{ desc, in, secret string }{
		{"empty", "", ""},
		{"no colon", testHex, testHex},
		{"name only", "my-key", ""},
		{"empty name", ":" + testHex, testHex},
		{"empty key", "my-key:", ""},
		{"space in name", "my key:" + testHex, testHex},
		{"tab in name", "my\tkey:" + testHex, testHex},
		{"colon in name", "a:b:" + testHex, testHex},
		{"control char in name", "a\x01b:" + testHex, testHex},
		{"short", "k:" + testHex[:62], testHex[:62]},
		{"odd length", "k:" + testHex[:63], testHex[:63]},
		{"long", "k:" + testHex + "00", testHex + "00"},
		{"not hex", "k:" + testHex[:40] + "zz" + testHex[42:], testHex[:40] + "zz" + testHex[42:]},
		{"secret first", testHex + ":my-key", testHex},
		{"base64 (MINIO_KMS_SECRET_KEY form)", "k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
	}
	for _, tc := range bad {
		t.Run(tc.desc, func(t *testing.T) {
			s, err := ParseMasterKey(tc.in)
			if err == nil {
				t.Fatalf("ParseMasterKey(%q) = %v, want error", tc.in, s)
			}
			if !errors.Is(err, ErrMasterKeyFormat) {
				t.Errorf("error %v does not wrap ErrMasterKeyFormat", err)
			}
			if !strings.Contains(err.Error(), "NAME:64-hex-digits") {
				t.Errorf("error %q does not say what the format is", err)
			}
			assertNoSecret(t, err, tc.secret)
		})
	}
}

func TestGenerateMasterKey(t *testing.T) {
	a, b := mustStatic(t, "k"), mustStatic(t, "k")
	if a.String() == b.String() {
		t.Fatal("two generated master keys are equal")
	}
	back, err := ParseMasterKey(a.String())
	if err != nil {
		t.Fatal(err)
	}
	if back.key != a.key || back.name != a.name {
		t.Fatal("String/ParseMasterKey does not round-trip")
	}
	for _, name := range []string{"", "a b", "a:b", "a\nb"} {
		if _, err := GenerateMasterKey(name); err == nil {
			t.Errorf("GenerateMasterKey(%q) succeeded", name)
		}
	}
}

// A Static is easy to pass to a log call by mistake; only String may reveal the key.
func TestStaticRedactedInLogs(t *testing.T) {
	s, err := ParseMasterKey("k:" + testHex)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("kms", "key", s)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("kms", "key", s)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprintf("%v", struct{ K *Static }{s}), logged.String(),
	} {
		if strings.Contains(out, testHex) || strings.Contains(out, testHex[:16]) {
			t.Errorf("formatted Static leaks the key: %q", out)
		}
		if !strings.Contains(out, "k:<redacted>") {
			t.Errorf("formatted Static %q does not show the redacted form", out)
		}
	}
}

func TestStaticRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := mustStatic(t, "k")
	kctx := Context{"bucket": "photos", "other": "x"}
	d1, err := s.GenerateKey(ctx, "k", kctx)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := s.GenerateKey(ctx, "k", kctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d1.Plaintext) != 32 || d1.KeyName != "k" {
		t.Fatalf("DEK: %d-byte plaintext, name %q", len(d1.Plaintext), d1.KeyName)
	}
	if bytes.Equal(d1.Plaintext, d2.Plaintext) || bytes.Equal(d1.Ciphertext, d2.Ciphertext) {
		t.Fatal("two GenerateKey calls returned the same DEK")
	}
	if d1.Ciphertext[0] != staticVersion1 {
		t.Fatalf("ciphertext version byte %#x", d1.Ciphertext[0])
	}
	if bytes.Contains(d1.Ciphertext, d1.Plaintext) {
		t.Fatal("ciphertext contains the plaintext")
	}
	// A fresh map with the same pairs: the encoding must not depend on map order.
	got, err := s.Decrypt(ctx, "k", d1.Ciphertext, Context{"other": "x", "bucket": "photos"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, d1.Plaintext) {
		t.Fatal("Decrypt returned another key")
	}
	// And a key parsed from the serialised form decrypts it too.
	again, err := ParseMasterKey(s.String())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Decrypt(ctx, "k", d1.Ciphertext, kctx); err != nil || !bytes.Equal(got, d1.Plaintext) {
		t.Fatalf("Decrypt with the re-parsed key: %v", err)
	}
}

func TestStaticWrongContext(t *testing.T) {
	ctx := context.Background()
	s := mustStatic(t, "k")
	d, err := s.GenerateKey(ctx, "k", Context{"bucket": "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []Context{
		nil, {}, {"bucket": "b"}, {"bucket": "A"}, {"Bucket": "a"}, {"bucket": "a", "x": ""},
	} {
		_, err := s.Decrypt(ctx, "k", d.Ciphertext, other)
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("Decrypt with context %v: %v, want ErrDecrypt", other, err)
		}
	}
	// nil and empty are the same context.
	d, err = s.GenerateKey(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decrypt(ctx, "k", d.Ciphertext, Context{}); err != nil {
		t.Errorf("nil vs empty context: %v", err)
	}
}

func TestCanonicalContextInjective(t *testing.T) {
	pairs := [][2]Context{
		{{"a": "b:c"}, {"a:b": "c"}},
		{{"a": "bc"}, {"ab": "c"}},
		{{"a": "\xff"}, {"a": "\xfe"}}, // JSON would turn both into U+FFFD
		{{"a": "", "b": ""}, {"a": "\x00\x00\x00\x01b\x00\x00\x00\x00"}},
	}
	for _, p := range pairs {
		if bytes.Equal(canonicalContext(p[0]), canonicalContext(p[1])) {
			t.Errorf("contexts %q and %q encode the same", p[0], p[1])
		}
	}
	c := Context{"z": "1", "a": "2", "m": "3", "b": "4"}
	first := canonicalContext(c)
	for range 100 {
		if !bytes.Equal(canonicalContext(c), first) {
			t.Fatal("canonicalContext depends on map order")
		}
	}
}

func TestStaticWrongKeyBytes(t *testing.T) {
	ctx := context.Background()
	a, b := mustStatic(t, "k"), mustStatic(t, "k")
	d, err := a.GenerateKey(ctx, "k", Context{"bucket": "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Decrypt(ctx, "k", d.Ciphertext, Context{"bucket": "x"})
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Decrypt under another master key: %v, want ErrDecrypt", err)
	}
	assertNoSecret(t, err, hex.EncodeToString(a.key[:]))
	assertNoSecret(t, err, hex.EncodeToString(b.key[:]))
}

func TestStaticWrongName(t *testing.T) {
	ctx := context.Background()
	s := mustStatic(t, "k")
	if _, err := s.GenerateKey(ctx, "other-key", nil); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "other-key") {
		t.Errorf("GenerateKey(other-key): %v, want ErrKeyNotFound naming the key", err)
	}
	d, err := s.GenerateKey(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decrypt(ctx, "other-key", d.Ciphertext, nil); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "other-key") {
		t.Errorf("Decrypt(other-key): %v, want ErrKeyNotFound naming the key", err)
	}
	// The name is authenticated too: the same bytes under another name do not decrypt.
	renamed, err := ParseMasterKey("k2:" + hex.EncodeToString(s.key[:]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := renamed.Decrypt(ctx, "k2", d.Ciphertext, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Decrypt under a renamed master key: %v, want ErrDecrypt", err)
	}
}

func TestStaticTampered(t *testing.T) {
	ctx := context.Background()
	s := mustStatic(t, "k")
	d, err := s.GenerateKey(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.Ciphertext {
		c := bytes.Clone(d.Ciphertext)
		c[i] ^= 0x01
		if _, err := s.Decrypt(ctx, "k", c, nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("bit flipped in byte %d: %v, want ErrDecrypt", i, err)
		}
	}
	for _, c := range [][]byte{nil, d.Ciphertext[:len(d.Ciphertext)-1], append(bytes.Clone(d.Ciphertext), 0)} {
		if _, err := s.Decrypt(ctx, "k", c, nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%d-byte ciphertext: %v, want ErrDecrypt", len(c), err)
		}
	}
}

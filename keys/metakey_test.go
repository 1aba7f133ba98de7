package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMetaKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	kms := mustStatic(t, "meta-key")
	metaKey, file, err := NewMetaKeyFile(ctx, kms, "meta-key")
	if err != nil {
		t.Fatal(err)
	}
	if len(metaKey) != 32 || bytes.Equal(metaKey, make([]byte, 32)) {
		t.Fatalf("metadata key of %d bytes", len(metaKey))
	}
	if bytes.Contains(file, metaKey) {
		t.Fatal("file contains the metadata key")
	}
	var f map[string]any
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatalf("file is not JSON: %v", err)
	}
	if f["version"] != 1.0 || f["kms_key"] != "meta-key" || f["ciphertext"] == "" || f["sealed_key"] == "" {
		t.Fatalf("file %s", file)
	}

	// Opened with the key re-parsed from its serialised form, as after a restart.
	again, err := ParseMasterKey(kms.String())
	if err != nil {
		t.Fatal(err)
	}
	got, name, err := OpenMetaKeyFile(ctx, again, file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, metaKey) || name != "meta-key" {
		t.Fatalf("OpenMetaKeyFile returned another key or name %q", name)
	}

	other, _, err := NewMetaKeyFile(ctx, kms, "meta-key")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, metaKey) {
		t.Fatal("two metadata keys are equal")
	}
}

func TestMetaKeyWrongKey(t *testing.T) {
	ctx := context.Background()
	_, file, err := NewMetaKeyFile(ctx, mustStatic(t, "meta-key"), "meta-key")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = OpenMetaKeyFile(ctx, mustStatic(t, "meta-key"), file)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("same name, other bytes: %v, want ErrDecrypt", err)
	}
	_, name, err := OpenMetaKeyFile(ctx, mustStatic(t, "another-name"), file)
	if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), `"meta-key"`) {
		t.Fatalf("other name: %v, want ErrKeyNotFound naming meta-key", err)
	}
	if name != "meta-key" {
		t.Fatalf("key name on error %q, want the file's", name)
	}
	if _, _, err := NewMetaKeyFile(ctx, mustStatic(t, "k"), "not-k"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("NewMetaKeyFile with an unknown key: %v, want ErrKeyNotFound", err)
	}
	if _, _, err := NewMetaKeyFile(ctx, mustStatic(t, "k"), ""); err == nil {
		t.Fatal("NewMetaKeyFile with no key name succeeded")
	}
}

func TestMetaKeyBadFile(t *testing.T) {
	ctx := context.Background()
	kms := mustStatic(t, "k")
	_, file, err := NewMetaKeyFile(ctx, kms, "k")
	if err != nil {
		t.Fatal(err)
	}
	var good metaKeyFile
	if err := json.Unmarshal(file, &good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*metaKeyFile)) []byte {
		m := good
		m.Ciphertext = bytes.Clone(good.Ciphertext)
		m.SealedKey = bytes.Clone(good.SealedKey)
		f(&m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A data key generated for a bucket, not for the metadata.
	bucketDEK, err := kms.GenerateKey(ctx, "k", Context{"bucket": "b"})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		desc string
		file []byte
		want error // nil: any error
	}{
		{"empty", nil, nil},
		{"not JSON", []byte("garbage\x00\xff"), nil},
		{"JSON array", []byte("[1,2]"), nil},
		{"empty object", []byte("{}"), nil},
		{"truncated", file[:len(file)/2], nil},
		{"version 2", edit(func(m *metaKeyFile) { m.Version = 2 }), nil},
		{"no kms_key", edit(func(m *metaKeyFile) { m.KMSKey = "" }), nil},
		{"no ciphertext", edit(func(m *metaKeyFile) { m.Ciphertext = nil }), nil},
		{"no sealed_key", edit(func(m *metaKeyFile) { m.SealedKey = nil }), nil},
		{"bad base64", bytes.Replace(file, []byte(`"ciphertext": "`), []byte(`"ciphertext": "!!!`), 1), nil},
		{"bit flipped in ciphertext", edit(func(m *metaKeyFile) { m.Ciphertext[20] ^= 1 }), ErrDecrypt},
		{"bit flipped in sealed_key", edit(func(m *metaKeyFile) { m.SealedKey[30] ^= 1 }), ErrDecrypt},
		{"sealed_key truncated", edit(func(m *metaKeyFile) { m.SealedKey = m.SealedKey[:40] }), ErrDecrypt},
		// Shorter than a package header: sio.DecryptBuffer panicked on it.
		{"sealed_key of one byte", edit(func(m *metaKeyFile) { m.SealedKey = m.SealedKey[:1] }), ErrDecrypt},
		{"bucket DEK as ciphertext", edit(func(m *metaKeyFile) { m.Ciphertext = bucketDEK.Ciphertext }), ErrDecrypt},
	}
	for _, tc := range cases {
		key, _, err := OpenMetaKeyFile(ctx, kms, tc.file)
		if err == nil {
			t.Errorf("%s: opened", tc.desc)
			continue
		}
		if key != nil {
			t.Errorf("%s: returned a key with the error", tc.desc)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.desc, err, tc.want)
		}
		if !strings.Contains(err.Error(), "metadata key") {
			t.Errorf("%s: error %q does not say what failed", tc.desc, err)
		}
	}
}

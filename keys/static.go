package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Static is a KMS backed by one 32-byte master key held in memory, in the format of
// MinIO's MINIO_KMS_MASTER_KEY (NAME:64-hex-digits). It is meant for trying ssefs out:
// whoever reads the key string can decrypt everything.
//
// Static is immutable and safe for concurrent use.
type Static struct {
	name string
	key  [32]byte
}

var _ KMS = (*Static)(nil)

const (
	staticVersion1 = 0x01
	// The per-ciphertext IV makes every DEK sealed under its own derived key, so random
	// GCM nonces never meet the birthday bound however many DEKs one master key seals.
	staticIVSize = 32
	// version ‖ IV ‖ nonce ‖ AES-GCM(32-byte DEK) ‖ tag
	staticCiphertextSize = 1 + staticIVSize + 12 + 32 + 16
)

// ErrMasterKeyFormat is returned (wrapped) by ParseMasterKey for any malformed input.
var ErrMasterKeyFormat = errors.New("master key must be NAME:64-hex-digits")

// ParseMasterKey parses a master key in MinIO's MINIO_KMS_MASTER_KEY format,
// NAME:64-hex-digits. Surrounding white space (a trailing newline from a key file) is
// ignored. Error messages never contain any part of the input: a NAME and key written
// the wrong way round would otherwise put the secret into a log.
func ParseMasterKey(s string) (*Static, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return nil, fmt.Errorf("keys: %w", ErrMasterKeyFormat)
	}
	name, hexKey := s[:i], s[i+1:]
	if err := checkKeyName(name); err != nil {
		return nil, fmt.Errorf("keys: %w: %w", ErrMasterKeyFormat, err)
	}
	if len(hexKey) != 2*len(Static{}.key) {
		return nil, fmt.Errorf("keys: %w: key part has %d characters, want 64 hex digits (32 bytes)",
			ErrMasterKeyFormat, len(hexKey))
	}
	st := &Static{name: name}
	// hex's own error quotes the offending character: a piece of the secret.
	if n, err := hex.Decode(st.key[:], []byte(hexKey)); err != nil || n != len(st.key) {
		clear(st.key[:])
		return nil, fmt.Errorf("keys: %w: key part is not hexadecimal", ErrMasterKeyFormat)
	}
	return st, nil
}

// GenerateMasterKey returns a new random master key called name.
func GenerateMasterKey(name string) (*Static, error) {
	if err := checkKeyName(name); err != nil {
		return nil, fmt.Errorf("keys: master key: %w", err)
	}
	st := &Static{name: name}
	mustRandom(st.key[:])
	return st, nil
}

// checkKeyName accepts names that survive the NAME:HEX form, a command line and a log
// line unchanged. Its errors never quote the name (see ParseMasterKey).
func checkKeyName(name string) error {
	switch {
	case name == "":
		return errors.New("key name is empty")
	case !utf8.ValidString(name):
		return errors.New("key name is not valid UTF-8")
	case strings.ContainsRune(name, ':'):
		return errors.New("key name must not contain ':'")
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return errors.New("key name must not contain white space")
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return errors.New("key name must not contain control characters")
	}
	return nil
}

// Name returns the name of the master key, which is the only key name Static knows.
func (s *Static) Name() string { return s.name }

// String returns the key in its NAME:HEX serialisation, for writing to a key file.
// It contains the secret: callers must never log it. fmt and log/slog print a
// redacted form instead (see Format and LogValue), so an accidental %v of a Static
// does not leak the key.
func (s *Static) String() string {
	return s.name + ":" + hex.EncodeToString(s.key[:])
}

// Format redacts the key for every fmt verb; only an explicit String call reveals it.
func (s *Static) Format(f fmt.State, verb rune) {
	io.WriteString(f, s.redacted())
}

// LogValue redacts the key for log/slog.
func (s *Static) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

func (s *Static) redacted() string {
	if s == nil {
		return "<nil>"
	}
	return s.name + ":<redacted>"
}

// GenerateKey returns a fresh random DEK sealed under the master key and bound to kctx.
func (s *Static) GenerateKey(_ context.Context, name string, kctx Context) (DEK, error) {
	if name != s.name {
		return DEK{}, fmt.Errorf("keys: static KMS: %w: %q", ErrKeyNotFound, name)
	}
	plaintext := make([]byte, 32)
	mustRandom(plaintext)

	ct := make([]byte, 1+staticIVSize+12, staticCiphertextSize)
	ct[0] = staticVersion1
	mustRandom(ct[1:])
	aead := s.aead(ct[1 : 1+staticIVSize])
	ct = aead.Seal(ct, ct[1+staticIVSize:], plaintext, s.associatedData(ct[0], kctx))
	return DEK{KeyName: name, Plaintext: plaintext, Ciphertext: ct}, nil
}

// Decrypt unseals a ciphertext from GenerateKey. Any mismatch (other master key,
// other context, tampering) is ErrDecrypt: AES-GCM cannot tell them apart.
func (s *Static) Decrypt(_ context.Context, name string, ciphertext []byte, kctx Context) ([]byte, error) {
	if name != s.name {
		return nil, fmt.Errorf("keys: static KMS: %w: %q", ErrKeyNotFound, name)
	}
	if len(ciphertext) != staticCiphertextSize || ciphertext[0] != staticVersion1 {
		return nil, fmt.Errorf("keys: static KMS key %q: malformed ciphertext: %w", name, ErrDecrypt)
	}
	iv := ciphertext[1 : 1+staticIVSize]
	nonce := ciphertext[1+staticIVSize : 1+staticIVSize+12]
	sealed := ciphertext[1+staticIVSize+12:]
	plaintext, err := s.aead(iv).Open(nil, nonce, sealed, s.associatedData(ciphertext[0], kctx))
	if err != nil {
		return nil, fmt.Errorf("keys: static KMS key %q: %w", name, ErrDecrypt)
	}
	return plaintext, nil
}

func (s *Static) aead(iv []byte) cipher.AEAD {
	mac := hmac.New(sha256.New, s.key[:])
	mac.Write([]byte("ssefs static KMS v1\x00"))
	mac.Write(iv)
	var k [32]byte
	mac.Sum(k[:0])
	defer clear(k[:])
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // unreachable: the key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // unreachable: AES has a 16-byte block
	}
	return aead
}

// associatedData binds the ciphertext to its format version, the key name and the
// context, so none of them can be swapped without Decrypt failing.
func (s *Static) associatedData(version byte, kctx Context) []byte {
	ad := []byte{version}
	ad = appendString32(ad, s.name)
	return append(ad, canonicalContext(kctx)...)
}

// canonicalContext encodes kctx as its pairs sorted by key, each string length-prefixed:
// map iteration order is random, and the encoding must be the same every time and
// injective (JSON would map every invalid UTF-8 byte to U+FFFD, so two contexts could
// collide). A nil and an empty context encode the same.
func canonicalContext(kctx Context) []byte {
	keys := slices.Sorted(maps.Keys(kctx))
	b := binary.BigEndian.AppendUint32(nil, uint32(len(keys)))
	for _, k := range keys {
		b = appendString32(b, k)
		b = appendString32(b, kctx[k])
	}
	return b
}

func appendString32(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// mustRandom fills b from crypto/rand. Without randomness no key is safe to make, so
// there is nothing sensible to return to.
func mustRandom(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
}

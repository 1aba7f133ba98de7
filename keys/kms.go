// Package keys talks to key-management systems and seals the per-file object keys.
//
// The hierarchy is MinIO's: the KMS holds named external keys (EK); ssefs asks it for a
// data key (DEK) bound to a context; a key-encryption key (KEK) is derived from the DEK
// and bound to the file; the KEK seals the file's object encryption key (OEK).
package keys

import (
	"context"
	"errors"
)

// Context binds a data key to where it is used, as MinIO does ({"bucket": B}).
type Context map[string]string

// DEK is a data key: its plaintext (memory only) and the KMS-sealed ciphertext (stored).
type DEK struct {
	KeyName    string
	Plaintext  []byte
	Ciphertext []byte
}

// KMS is what ssefs needs from a key-management system. The static master key
// implements it now; KES and Vault transit implement it next.
type KMS interface {
	// GenerateKey returns a fresh 32-byte data key sealed under the external key name,
	// bound to kctx: Decrypt must be given the same context.
	GenerateKey(ctx context.Context, name string, kctx Context) (DEK, error)
	// Decrypt unseals a ciphertext that GenerateKey returned for name and kctx.
	Decrypt(ctx context.Context, name string, ciphertext []byte, kctx Context) ([]byte, error)
}

// Errors a KMS returns (wrapped). The engine maps them to its own error set.
var (
	ErrKeyNotFound = errors.New("key not found")
	ErrKeyDisabled = errors.New("key is disabled")
	ErrDecrypt     = errors.New("key cannot be unsealed: wrong key or tampered ciphertext")
	ErrUnavailable = errors.New("KMS unavailable")
)

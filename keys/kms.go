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

// KMS is what ssefs needs from a key-management system: the static master key, KES
// and Vault transit implement it.
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
	// ErrServerUntrusted comes with ErrUnavailable when the KMS could not be reached
	// because its TLS certificate is not signed by a trusted CA: a configuration error,
	// not an outage, so the operator needs to be told which setting to fix.
	ErrServerUntrusted = errors.New("KMS server certificate not trusted")
	// ErrForbidden: the KMS knows the client but its policy does not allow the call.
	ErrForbidden = errors.New("prohibited by KMS policy")
	// ErrIdentityRejected: the KMS does not accept the client's identity (an unknown
	// TLS certificate for KES, a failed AppRole login for Vault).
	ErrIdentityRejected = errors.New("KMS rejected the client identity")
	ErrKeyExists        = errors.New("key already exists")
	// ErrNotSupported: the configured KMS cannot do this (e.g. create a key with a
	// static master key).
	ErrNotSupported = errors.New("not supported by this KMS")
)

// KeyCreator is a KMS that can create external keys (`ssefs key create`).
type KeyCreator interface {
	CreateKey(ctx context.Context, name string) error
}

// KeyLister is a KMS that can list its external keys (`ssefs key list`). pattern is a
// glob as KES takes it ("*" or "" for all, "my-*").
type KeyLister interface {
	ListKeys(ctx context.Context, pattern string) ([]string, error)
}

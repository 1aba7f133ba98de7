package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/minio/sio"

	"github.com/ssefs/ssefs/dare"
)

// The metadata key encrypts Badger. It is random rather than the KMS data key itself so
// that moving to another KMS key re-seals 32 bytes instead of rewriting the store.

const metaKeyFileVersion = 1

// metaContext binds the data key to this one use: a DEK generated for a bucket cannot
// be passed off as the metadata key's, nor the other way round.
var metaContext = Context{"ssefs": "metadata"}

type metaKeyFile struct {
	Version    int    `json:"version"`
	KMSKey     string `json:"kms_key"`
	Ciphertext []byte `json:"ciphertext"` // the KMS-sealed DEK (base64 in JSON)
	SealedKey  []byte `json:"sealed_key"` // the metadata key sealed with the DEK (DARE 2.0)
}

// NewMetaKeyFile makes a random 32-byte metadata key and the file that keeps it sealed
// under the KMS key keyName. Because opening the file authenticates, it also tells a
// wrong KMS key from a damaged store at start-up.
func NewMetaKeyFile(ctx context.Context, kms KMS, keyName string) (metaKey []byte, file []byte, err error) {
	metaKey = make([]byte, 32)
	mustRandom(metaKey)
	if file, err = SealMetaKey(ctx, kms, keyName, metaKey); err != nil {
		clear(metaKey)
		return nil, nil, err
	}
	return metaKey, file, nil
}

// SealMetaKey seals an existing metadata key under a fresh data key of the KMS key
// keyName and returns the file content (`ssefs key rotate --metadata`).
func SealMetaKey(ctx context.Context, kms KMS, keyName string, metaKey []byte) (file []byte, err error) {
	if keyName == "" {
		return nil, errors.New("keys: metadata key: no KMS key name")
	}
	if len(metaKey) != 32 {
		return nil, fmt.Errorf("keys: metadata key: %d bytes, want 32", len(metaKey))
	}
	dek, err := kms.GenerateKey(ctx, keyName, metaContext)
	defer clear(dek.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("keys: metadata key: generating data key with %q: %w", keyName, err)
	}
	if len(dek.Plaintext) != 32 || len(dek.Ciphertext) == 0 {
		return nil, fmt.Errorf("keys: metadata key: KMS key %q returned a %d-byte data key, want 32",
			keyName, len(dek.Plaintext))
	}
	var sealed bytes.Buffer
	if _, err := sio.Encrypt(&sealed, bytes.NewReader(metaKey), sioConfig(dek.Plaintext)); err != nil {
		return nil, fmt.Errorf("keys: metadata key: sealing: %w", err)
	}
	file, err = json.MarshalIndent(metaKeyFile{
		Version:    metaKeyFileVersion,
		KMSKey:     keyName,
		Ciphertext: dek.Ciphertext,
		SealedKey:  sealed.Bytes(),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: metadata key: encoding file: %w", err)
	}
	return append(file, '\n'), nil
}

// OpenMetaKeyFile unseals the metadata key from a file written by NewMetaKeyFile and
// returns it with the name of the KMS key that sealed it. The wrong master key is
// ErrDecrypt; a KMS without the file's key is ErrKeyNotFound naming that key.
func OpenMetaKeyFile(ctx context.Context, kms KMS, file []byte) (metaKey []byte, keyName string, err error) {
	var f metaKeyFile
	if err := json.Unmarshal(file, &f); err != nil {
		return nil, "", fmt.Errorf("keys: metadata key file is malformed: %w", err)
	}
	switch {
	case f.Version != metaKeyFileVersion:
		return nil, "", fmt.Errorf("keys: metadata key file has version %d, want %d", f.Version, metaKeyFileVersion)
	case f.KMSKey == "":
		return nil, "", errors.New(`keys: metadata key file is malformed: no "kms_key"`)
	case len(f.Ciphertext) == 0:
		return nil, "", errors.New(`keys: metadata key file is malformed: no "ciphertext"`)
	case len(f.SealedKey) == 0:
		return nil, "", errors.New(`keys: metadata key file is malformed: no "sealed_key"`)
	}
	dek, err := kms.Decrypt(ctx, f.KMSKey, f.Ciphertext, metaContext)
	defer clear(dek)
	if err != nil {
		return nil, f.KMSKey, fmt.Errorf("keys: metadata key file needs KMS key %q: %w", f.KMSKey, err)
	}
	if len(dek) != 32 {
		return nil, f.KMSKey, fmt.Errorf("keys: metadata key: KMS key %q unsealed a %d-byte data key, want 32: %w",
			f.KMSKey, len(dek), ErrDecrypt)
	}
	// dare, not sio.DecryptBuffer: sio panics on a sealed key shorter than a package
	// header (found by dare's fuzz target), and this one comes from a file.
	metaKey, err = dare.OpenAll(make([]byte, 0, 32), (*[32]byte)(dek), f.SealedKey)
	if err != nil || len(metaKey) != 32 {
		clear(metaKey)
		return nil, f.KMSKey, fmt.Errorf("keys: metadata key does not authenticate under KMS key %q: %w", f.KMSKey, ErrDecrypt)
	}
	return metaKey, f.KMSKey, nil
}

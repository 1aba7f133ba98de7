package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/minio/sio"

	"github.com/ssefs/ssefs/dare"
)

// SSE types, as S3 and MinIO name them. The type is also the KEK derivation's domain,
// so a key sealed as one type cannot be unsealed as another.
const (
	SSES3  = "SSE-S3"
	SSEKMS = "SSE-KMS"
	SSEC   = "SSE-C"
)

// AlgorithmDARE is the sealing algorithm: KEK = HMAC-SHA256 over the sealing context,
// OEK sealed with DARE 2.0. MinIO calls it the same.
const AlgorithmDARE = "DAREv2-HMAC-SHA256"

var (
	// ErrClientKeyMismatch: an SSE-C key was given but it is not the one the file was
	// sealed with (S3 403 AccessDenied).
	ErrClientKeyMismatch = errors.New("SSE-C key does not match the key the object was encrypted with")
	// ErrClientKeyRequired: the file is SSE-C and no client key was given (S3 400, FUSE EACCES).
	ErrClientKeyRequired = errors.New("object is encrypted with an SSE-C key: the key is required")
	// ErrInvalidContext: a user encryption context that cannot be used (on a type other
	// than SSE-KMS, naming the reserved key, not UTF-8, or too large).
	ErrInvalidContext = errors.New("invalid encryption context")
)

// ReservedContextKey is the context key ssefs itself binds every data key to (its value
// is the bucket). A user context may not name it: were the user's pair merged over
// ours, a record could claim another bucket's context; were ours merged over the user's,
// the user's value would be silently dropped. Refusing is the one unambiguous choice,
// and it keeps the context the KMS sees exactly {"bucket": B} plus what the user sent.
const ReservedContextKey = "bucket"

// SealedKey is the per-file crypto record that meta stores as opaque bytes. Nothing in
// it lets anyone recover the OEK without the KMS (or, for SSE-C, the client's key).
type SealedKey struct {
	SSEType      string   // SSE-S3, SSE-KMS, SSE-C
	KeyName      string   // external key name (empty for SSE-C)
	SealedDEK    []byte   // KMS ciphertext of the data key (empty for SSE-C)
	IV           [32]byte // random per seal
	Algorithm    string   // AlgorithmDARE
	Bucket       string   // key context: {"bucket": Bucket}
	SealedOEK    []byte   // the OEK sealed with the KEK (DARE 2.0)
	ClientKeyMD5 [16]byte // SSE-C only: MD5 of the customer key, to verify; never the key
	SealedAt     int64    // Unix nanoseconds of the seal: the key's age, and what rotation resumes by
	// Context is the user's encryption context (S3 x-amz-server-side-encryption-context),
	// SSE-KMS only, without the reserved "bucket" pair; nil if none. The data key is
	// generated for {"bucket": Bucket} plus these pairs and the KEK derivation includes
	// them, so a record whose context was altered does not unseal.
	Context Context
}

const (
	sealedKeyVersion1 = 0x01 // no SealedAt
	sealedKeyVersion2 = 0x02 // no Context: what every record without a user context is
	sealedKeyVersion3 = 0x03 // version 2 plus a non-empty Context
	// A bound on every variable field (the context, as one field, included), so a
	// corrupt length cannot ask for gigabytes and every record Marshal writes, Unmarshal
	// reads.
	maxSealedKeyField = 1 << 16
	oekSealedSize     = 32 + 32 // DARE 2.0: 16-byte header + 32-byte OEK + 16-byte tag
)

// MarshalBinary encodes the record as: version 2, then SSEType, KeyName, SealedDEK,
// IV (32), Algorithm, Bucket, SealedOEK, ClientKeyMD5 (16), SealedAt (8, big endian),
// where each variable field is a minimal uvarint length and its bytes. A record with a
// Context is version 3: the same, then the context as one more variable field whose
// bytes are the pair count (uvarint, at least 1) and each pair's key and value (each a
// variable field), keys strictly increasing. The encoding is canonical: one record, one
// byte string (an empty context is written as version 2, so version 3 never holds an
// empty one). Version 1 is version 2 without SealedAt.
//
// Records without a context stay version 2 so that they are byte for byte what earlier
// releases wrote, and those releases can still read them.
func (k *SealedKey) MarshalBinary() ([]byte, error) {
	fields := [...][]byte{[]byte(k.SSEType), []byte(k.KeyName), k.SealedDEK,
		[]byte(k.Algorithm), []byte(k.Bucket), k.SealedOEK, nil}
	version := byte(sealedKeyVersion2)
	if len(k.Context) > 0 {
		version = sealedKeyVersion3
		fields[6] = encodeContextField(k.Context)
	}
	n := 1 + len(k.IV) + len(k.ClientKeyMD5) + 8
	for _, f := range fields {
		if len(f) > maxSealedKeyField {
			return nil, fmt.Errorf("keys: sealed key field of %d bytes exceeds %d", len(f), maxSealedKeyField)
		}
		n += binary.MaxVarintLen32 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, version)
	b = appendField(b, fields[0])
	b = appendField(b, fields[1])
	b = appendField(b, fields[2])
	b = append(b, k.IV[:]...)
	b = appendField(b, fields[3])
	b = appendField(b, fields[4])
	b = appendField(b, fields[5])
	b = append(b, k.ClientKeyMD5[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(k.SealedAt))
	if version == sealedKeyVersion3 {
		b = appendField(b, fields[6])
	}
	return b, nil
}

// encodeContextField is the body of version 3's context field. Pairs are sorted by key
// because map order is random and the record must be canonical.
func encodeContextField(c Context) []byte {
	names := slices.Sorted(maps.Keys(c))
	b := binary.AppendUvarint(nil, uint64(len(names)))
	for _, name := range names {
		b = appendField(b, []byte(name))
		b = appendField(b, []byte(c[name]))
	}
	return b
}

// decodeContextField reverses encodeContextField, refusing what it would not write:
// no pairs, keys out of order or repeated, trailing bytes.
func decodeContextField(f []byte) (Context, error) {
	d := decoder{b: f}
	n, m := binary.Uvarint(d.b)
	switch {
	case m <= 0:
		return nil, errors.New("context: bad pair count")
	case m != len(binary.AppendUvarint(nil, n)):
		return nil, errors.New("context: non-minimal pair count")
	case n == 0:
		return nil, errors.New("context: empty (written as version 2)")
	case n > uint64(len(f)/2):
		// Every pair takes at least two length bytes: a larger count is corrupt, and
		// refusing it here keeps the map allocation bounded by the input.
		return nil, errors.New("context: pair count out of range")
	}
	d.b = d.b[m:]
	c := make(Context, n)
	prev := ""
	for i := range n {
		name := string(d.field())
		val := string(d.field())
		if d.err != nil {
			return nil, fmt.Errorf("context: %w", d.err)
		}
		if i > 0 && name <= prev {
			return nil, errors.New("context: keys not strictly increasing")
		}
		c[name], prev = val, name
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("context: %d trailing bytes", len(d.b))
	}
	return c, nil
}

func appendField(b, f []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// UnmarshalBinary decodes what MarshalBinary wrote. It rejects anything else
// (truncation, trailing bytes, an unknown version, non-minimal lengths) rather than
// guess, and never panics. It checks structure only; Unseal judges the contents.
func (k *SealedKey) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	version := d.byte()
	if d.err == nil && version != sealedKeyVersion1 && version != sealedKeyVersion2 && version != sealedKeyVersion3 {
		return fmt.Errorf("keys: sealed key: unsupported format version %d", version)
	}
	var out SealedKey
	out.SSEType = string(d.field())
	out.KeyName = string(d.field())
	out.SealedDEK = bytes.Clone(d.field())
	d.fixed(out.IV[:])
	out.Algorithm = string(d.field())
	out.Bucket = string(d.field())
	out.SealedOEK = bytes.Clone(d.field())
	d.fixed(out.ClientKeyMD5[:])
	if version >= sealedKeyVersion2 {
		var at [8]byte
		d.fixed(at[:])
		out.SealedAt = int64(binary.BigEndian.Uint64(at[:]))
	}
	if version == sealedKeyVersion3 {
		if f := d.field(); d.err == nil {
			out.Context, d.err = decodeContextField(f)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("keys: sealed key: %w", d.err)
	}
	*k = out
	return nil
}

type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errTruncated
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) fixed(dst []byte) {
	if d.err != nil {
		return
	}
	if len(d.b) < len(dst) {
		d.err = errTruncated
		return
	}
	copy(dst, d.b)
	d.b = d.b[len(dst):]
}

func (d *decoder) field() []byte {
	if d.err != nil {
		return nil
	}
	n, m := binary.Uvarint(d.b)
	switch {
	case m == 0:
		d.err = errTruncated
		return nil
	case m < 0 || n > maxSealedKeyField:
		d.err = errors.New("field length out of range")
		return nil
	case m != len(binary.AppendUvarint(nil, n)):
		// A padded varint would decode to the same record as the minimal one; refusing
		// it keeps one record ↔ one byte string.
		d.err = errors.New("non-minimal field length")
		return nil
	}
	d.b = d.b[m:]
	if uint64(len(d.b)) < n {
		d.err = errTruncated
		return nil
	}
	f := d.b[:n:n]
	d.b = d.b[n:]
	return f
}

// Sealer seals and unseals per-file OEKs, caching DEK plaintexts for a bounded time so
// that creating or reading many files does not cost a KMS round trip each. The cache
// bounds how long a key disabled in the KMS keeps working.
//
// Sealer is safe for concurrent use.
type Sealer struct {
	kms        KMS
	defaultKey string
	ttl        time.Duration
	now        func() time.Time // replaced in tests
	obs        Observer         // nil: none (Observe)

	mu      sync.Mutex
	gen     uint64 // bumped by Forget, so a fetch in flight does not refill the cache
	entries map[cacheKey]*cacheEntry
	flights map[cacheKey]*flight
	swept   time.Time
}

// NewSealer returns a Sealer that seals with defaultKey when no key is named and caches
// DEKs for ttl. A ttl of 0 (or less) disables caching: every Seal and Unseal asks the KMS.
func NewSealer(kms KMS, defaultKey string, ttl time.Duration) *Sealer {
	return &Sealer{
		kms:        kms,
		defaultKey: defaultKey,
		ttl:        max(ttl, 0),
		now:        time.Now,
		entries:    make(map[cacheKey]*cacheEntry),
		flights:    make(map[cacheKey]*flight),
	}
}

// Fork returns a Sealer on the same KMS with an empty cache of its own: key rotation
// seals with it so that every rotated file gets a data key generated for the rotation,
// not the one new files are sealed with.
func (s *Sealer) Fork() *Sealer {
	f := NewSealer(s.kms, s.defaultKey, s.ttl)
	f.obs = s.obs
	return f
}

// DefaultKey returns the external key name used when Seal is given none.
func (s *Sealer) DefaultKey() string { return s.defaultKey }

// Forget drops and zeroes every cached DEK, e.g. after a key was disabled and must stop
// working now rather than at the end of the TTL.
func (s *Sealer) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.dropAllLocked()
}

// Seal seals oek for the file fileID in bucket under the external key keyName (the
// default key if empty), as sseType (SSE-S3 or SSE-KMS), with no user context.
func (s *Sealer) Seal(ctx context.Context, sseType, keyName, bucket string, fileID [16]byte, oek [32]byte) (SealedKey, error) {
	return s.SealWithContext(ctx, sseType, keyName, bucket, nil, fileID, oek)
}

// SealWithContext is Seal with the user's encryption context userCtx (SSE-KMS only; nil
// or empty is Seal). The data key is generated for {"bucket": bucket} plus userCtx, as
// AWS and MinIO bind it, so it is the object's own: it neither comes from nor enters
// the sealing cache, which holds one data key per key name and bucket. The record keeps
// userCtx, and Unseal hands the same merged context to the KMS.
func (s *Sealer) SealWithContext(ctx context.Context, sseType, keyName, bucket string, userCtx Context, fileID [16]byte, oek [32]byte) (SealedKey, error) {
	if sseType != SSES3 && sseType != SSEKMS {
		return SealedKey{}, fmt.Errorf("keys: seal: SSE type %q is not %s or %s", sseType, SSES3, SSEKMS)
	}
	if len(userCtx) > 0 {
		if sseType != SSEKMS {
			return SealedKey{}, fmt.Errorf("keys: seal: %s takes no encryption context: %w", sseType, ErrInvalidContext)
		}
		if err := ValidateContext(userCtx); err != nil {
			return SealedKey{}, fmt.Errorf("keys: seal: %w", err)
		}
	}
	if keyName == "" {
		keyName = s.defaultKey
	}
	if keyName == "" {
		return SealedKey{}, errors.New("keys: seal: no key name and no default key")
	}
	var dek [32]byte
	var ct []byte
	var err error
	if len(userCtx) == 0 {
		dek, ct, err = s.sealingDEK(ctx, keyName, bucket)
	} else {
		dek, ct, err = s.generateDEK(ctx, keyName, keyContext(bucket, userCtx))
	}
	defer clear(dek[:])
	if err != nil {
		return SealedKey{}, err
	}
	k := SealedKey{
		SSEType:   sseType,
		KeyName:   keyName,
		SealedDEK: ct,
		Algorithm: AlgorithmDARE,
		Bucket:    bucket,
		SealedAt:  s.now().UnixNano(),
	}
	if len(userCtx) > 0 {
		// A copy: the caller's map must not be able to change the record afterwards.
		k.Context = maps.Clone(userCtx)
	}
	mustRandom(k.IV[:])
	if k.SealedOEK, err = sealOEK(dek[:], &k, fileID, oek); err != nil {
		return SealedKey{}, err
	}
	return k, nil
}

// ValidateContext checks a user encryption context: it must not name
// ReservedContextKey, must be UTF-8 (Vault's context and the S3 header are JSON, which
// would turn invalid bytes into U+FFFD, so two contexts could become one), and must fit
// a sealed-key record. Errors wrap ErrInvalidContext.
func ValidateContext(c Context) error {
	for name, val := range c {
		if name == ReservedContextKey {
			return fmt.Errorf("the context key %q is reserved (ssefs binds every data key to the bucket itself): %w", ReservedContextKey, ErrInvalidContext)
		}
		if !utf8.ValidString(name) || !utf8.ValidString(val) {
			return fmt.Errorf("the context is not valid UTF-8: %w", ErrInvalidContext)
		}
	}
	if n := len(encodeContextField(c)); n > maxSealedKeyField {
		return fmt.Errorf("the context takes %d bytes, the limit is %d: %w", n, maxSealedKeyField, ErrInvalidContext)
	}
	return nil
}

// Unseal recovers the OEK of the file fileID from k. A record that does not belong to
// this file or was altered (its context included) fails with ErrDecrypt; KMS errors
// (ErrKeyNotFound, ErrKeyDisabled, ErrUnavailable) come back wrapped.
func (s *Sealer) Unseal(ctx context.Context, k SealedKey, fileID [16]byte) ([32]byte, error) {
	switch {
	case k.SSEType == SSEC:
		return [32]byte{}, fmt.Errorf("keys: unseal: %w", ErrClientKeyRequired)
	case k.SSEType != SSES3 && k.SSEType != SSEKMS:
		return [32]byte{}, fmt.Errorf("keys: unseal: unknown SSE type: %w", ErrDecrypt)
	case k.KeyName == "" || len(k.SealedDEK) == 0:
		return [32]byte{}, fmt.Errorf("keys: unseal: record has no sealed data key: %w", ErrDecrypt)
	case len(k.Context) > 0 && k.SSEType != SSEKMS:
		return [32]byte{}, fmt.Errorf("keys: unseal: %s record with an encryption context: %w", k.SSEType, ErrDecrypt)
	}
	if err := checkAlgorithm(&k); err != nil {
		return [32]byte{}, err
	}
	dek, err := s.unsealDEK(ctx, k.KeyName, k.Bucket, k.Context, k.SealedDEK)
	defer clear(dek[:])
	if err != nil {
		return [32]byte{}, err
	}
	return unsealOEK(dek[:], &k, fileID)
}

// SealWithClientKey seals oek as SSE-C: the client's key takes the DEK's place as the
// KEK input, and only its MD5 is kept, to tell a wrong key from a damaged record.
func (s *Sealer) SealWithClientKey(bucket string, fileID [16]byte, clientKey [32]byte, oek [32]byte) (SealedKey, error) {
	k := SealedKey{
		SSEType:      SSEC,
		Algorithm:    AlgorithmDARE,
		Bucket:       bucket,
		ClientKeyMD5: md5.Sum(clientKey[:]),
		SealedAt:     s.now().UnixNano(),
	}
	mustRandom(k.IV[:])
	var err error
	if k.SealedOEK, err = sealOEK(clientKey[:], &k, fileID, oek); err != nil {
		return SealedKey{}, err
	}
	return k, nil
}

// UnsealWithClientKey recovers the OEK of an SSE-C file. A key whose MD5 differs from
// the stored one is ErrClientKeyMismatch; a matching key that still fails is a
// damaged or moved record, ErrDecrypt.
func (s *Sealer) UnsealWithClientKey(k SealedKey, fileID [16]byte, clientKey [32]byte) ([32]byte, error) {
	if k.SSEType != SSEC {
		return [32]byte{}, fmt.Errorf("keys: unseal: object is %q, not SSE-C: no client key may be given", k.SSEType)
	}
	if len(k.Context) > 0 {
		return [32]byte{}, fmt.Errorf("keys: unseal: SSE-C record with an encryption context: %w", ErrDecrypt)
	}
	if err := checkAlgorithm(&k); err != nil {
		return [32]byte{}, err
	}
	sum := md5.Sum(clientKey[:])
	if subtle.ConstantTimeCompare(sum[:], k.ClientKeyMD5[:]) != 1 {
		return [32]byte{}, fmt.Errorf("keys: unseal: %w", ErrClientKeyMismatch)
	}
	return unsealOEK(clientKey[:], &k, fileID)
}

func checkAlgorithm(k *SealedKey) error {
	if k.Algorithm != AlgorithmDARE {
		return fmt.Errorf("keys: unseal: unknown sealing algorithm %q: %w", k.Algorithm, ErrDecrypt)
	}
	return nil
}

// kek derives the key that seals one file's OEK. Every variable input is
// length-prefixed (IV and file ID have fixed sizes), so distinct tuples never feed
// HMAC the same bytes; binding the file ID rather than the path keeps renames O(1)
// and makes a record copied to another file useless. A user context, if any, comes
// last in its canonical (injective) form: the KMS binds it too, but not every KMS
// does (a Vault transit key created without derived=true ignores the context), and a
// cached DEK must not open a record whose context was changed. Without a context the
// input is what it always was, so existing records still unseal.
func kek(secret []byte, k *SealedKey, fileID [16]byte) [32]byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(k.IV[:])
	for _, f := range [...]string{k.SSEType, k.Algorithm, k.Bucket} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		mac.Write(n[:])
		mac.Write([]byte(f))
	}
	mac.Write(fileID[:])
	if len(k.Context) > 0 {
		mac.Write(canonicalContext(k.Context))
	}
	var out [32]byte
	mac.Sum(out[:0])
	return out
}

func sioConfig(key []byte) sio.Config {
	return sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20, Key: key}
}

func sealOEK(secret []byte, k *SealedKey, fileID [16]byte, oek [32]byte) ([]byte, error) {
	key := kek(secret, k, fileID)
	defer clear(key[:])
	// Not through sio's writer or reader: they take a 64 KiB buffer from a pool that
	// every GC empties, here for 32 bytes, on every file created.
	out, err := dare.Seal(make([]byte, 0, oekSealedSize), &key, dare.PreferredSuite, oek[:], rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing object key: %w", err)
	}
	return out, nil
}

func unsealOEK(secret []byte, k *SealedKey, fileID [16]byte) ([32]byte, error) {
	var oek [32]byte
	if len(k.SealedOEK) != oekSealedSize {
		return oek, fmt.Errorf("keys: unseal: sealed object key has %d bytes, want %d: %w",
			len(k.SealedOEK), oekSealedSize, ErrDecrypt)
	}
	key := kek(secret, k, fileID)
	defer clear(key[:])
	out, err := dare.OpenAll(oek[:0], &key, k.SealedOEK)
	if err != nil || len(out) != len(oek) {
		clear(oek[:])
		return oek, fmt.Errorf("keys: unseal: object key does not authenticate (wrong file, key or context, or tampered): %w", ErrDecrypt)
	}
	return oek, nil
}

// keyContext is the context a data key is bound to: the bucket, plus the user's
// pairs if any (ValidateContext keeps them from overriding the bucket).
func keyContext(bucket string, user Context) Context {
	c := make(Context, len(user)+1)
	maps.Copy(c, user)
	c[ReservedContextKey] = bucket
	return c
}

// contextSum identifies a user context in unseal cache keys; zero for none, which is
// what every record without a context had before.
func contextSum(user Context) [32]byte {
	if len(user) == 0 {
		return [32]byte{}
	}
	return sha256.Sum256(canonicalContext(user))
}

// generateDEK asks the KMS for a fresh data key bound to kctx, bypassing the cache.
func (s *Sealer) generateDEK(ctx context.Context, name string, kctx Context) ([32]byte, []byte, error) {
	var dek [32]byte
	d, err := s.kms.GenerateKey(ctx, name, kctx)
	defer clear(d.Plaintext)
	if err != nil {
		return dek, nil, fmt.Errorf("keys: generating data key with %q: %w", name, err)
	}
	if len(d.Plaintext) != len(dek) || len(d.Ciphertext) == 0 {
		return dek, nil, fmt.Errorf("keys: KMS key %q returned a %d-byte data key and a %d-byte ciphertext, want 32 and some",
			name, len(d.Plaintext), len(d.Ciphertext))
	}
	copy(dek[:], d.Plaintext)
	return dek, bytes.Clone(d.Ciphertext), nil
}

// sealingDEK returns the DEK (and its sealed form) to seal new files with in bucket.
func (s *Sealer) sealingDEK(ctx context.Context, name, bucket string) ([32]byte, []byte, error) {
	ck := cacheKey{name: name, bucket: bucket}
	dek, ct, err := s.cached(ctx, ck, func(ctx context.Context, gen uint64) ([32]byte, []byte, error) {
		dek, ct, err := s.generateDEK(ctx, name, keyContext(bucket, nil))
		if err != nil {
			return dek, nil, err
		}
		if s.ttl > 0 {
			// Reading a file back soon after writing it is common; this saves the Decrypt.
			s.mu.Lock()
			s.putLocked(gen, cacheKey{unseal: true, name: name, bucket: bucket, sum: sha256.Sum256(ct)}, dek, nil)
			s.mu.Unlock()
		}
		return dek, ct, nil
	})
	if err != nil {
		return dek, nil, err
	}
	// Each SealedKey gets its own copy, so no caller can alter the cached ciphertext.
	return dek, bytes.Clone(ct), nil
}

// unsealDEK returns the plaintext of a sealed DEK bound to bucket and the user context.
// The context is part of the cache key: a hit must mean the KMS would have accepted
// this very context.
func (s *Sealer) unsealDEK(ctx context.Context, name, bucket string, user Context, sealed []byte) ([32]byte, error) {
	ck := cacheKey{unseal: true, name: name, bucket: bucket, sum: sha256.Sum256(sealed), ctxSum: contextSum(user)}
	dek, _, err := s.cached(ctx, ck, func(ctx context.Context, _ uint64) ([32]byte, []byte, error) {
		var dek [32]byte
		p, err := s.kms.Decrypt(ctx, name, sealed, keyContext(bucket, user))
		defer clear(p)
		if err != nil {
			return dek, nil, fmt.Errorf("keys: unsealing data key with %q: %w", name, err)
		}
		if len(p) != len(dek) {
			return dek, nil, fmt.Errorf("keys: KMS key %q unsealed a %d-byte data key, want 32: %w", name, len(p), ErrDecrypt)
		}
		copy(dek[:], p)
		return dek, nil, nil
	})
	return dek, err
}

// NewOEK returns a fresh random object encryption key.
func NewOEK() [32]byte {
	var k [32]byte
	mustRandom(k[:])
	return k
}

// NewFileID returns a fresh random file ID.
func NewFileID() [16]byte {
	var id [16]byte
	mustRandom(id[:])
	return id
}

package fs

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ssefs/ssefs/dare"
)

// DARE packs plaintext in packages of 64 KiB, each with a 16-byte header and a 16-byte tag.
const (
	darePayload  = 64 << 10
	darePackage  = darePayload + 32
	dareOverhead = 32
)

// PackageSize is the plaintext one DARE package holds: a read authenticates and decrypts
// whole packages.
const PackageSize = darePayload

// cipherSuite is fixed per process from the CPU: AES-GCM where AES-NI makes it fast,
// ChaCha20-Poly1305 elsewhere. Decryption accepts both, so data moves between hosts.
var cipherSuite, cipherName = func() (byte, string) {
	if dare.PreferredSuite == dare.AES256GCM {
		return dare.AES256GCM, "AES-256-GCM"
	}
	return dare.ChaCha20Poly1305, "ChaCha20-Poly1305"
}()

// chunkKey derives the key of one version of one chunk. Binding the file ID, the index
// and the version means a chunk object moved to another file or position, or rolled
// back to an older version, fails authentication instead of returning wrong bytes, and
// that no key is ever used for two different plaintexts.
func chunkKey(oek *[32]byte, fileID [16]byte, index, version uint64) [32]byte {
	var msg [16 + 8 + 8]byte
	copy(msg[:16], fileID[:])
	binary.BigEndian.PutUint64(msg[16:], index)
	binary.BigEndian.PutUint64(msg[24:], version)
	mac := hmac.New(sha256.New, oek[:])
	mac.Write(msg[:])
	var key [32]byte
	mac.Sum(key[:0])
	return key
}

// sealChunk encrypts one chunk's plaintext as a single DARE stream.
func sealChunk(key *[32]byte, plaintext []byte) ([]byte, error) {
	return sealChunkInto(nil, key, plaintext)
}

// sealChunkInto is sealChunk writing into dst's storage when it is large enough.
func sealChunkInto(dst []byte, key *[32]byte, plaintext []byte) ([]byte, error) {
	sealed, err := dare.Seal(dst[:0], key, cipherSuite, plaintext, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("encrypting chunk: %w", err)
	}
	cryptoBytes.encrypted.Add(uint64(len(plaintext)))
	return sealed, nil
}

// sealedBufs recycles the ciphertext buffers of whole default chunks between sealers:
// the store is done with one when Put returns.
var sealedBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, DefaultChunkSize/darePayload*darePackage)
	return &b
}}

// encryptedSpan returns which ciphertext bytes hold plaintext [off, off+n) of a stream:
// the whole DARE packages the range touches.
func encryptedSpan(off, n int64) (start, end int64) {
	first := off / darePayload
	last := (off + n - 1) / darePayload
	return first * darePackage, (last + 1) * darePackage
}

// openChunkRange decrypts plaintext [off, off+len(p)) of a chunk whose ciphertext bytes
// [base, base+len(cipher)) are given; base is on a package boundary, at or before the
// package holding off. Only the packages in that span are decrypted and authenticated;
// packages wholly inside p are decrypted straight into it.
//
// sio's own ReaderAt is not used: at an offset on a package boundary it decrypts the
// package before too, and reads in the kernel's 128 KiB pieces are all on boundaries.
// Decrypting from a given package on needs only its sequence number.
func openChunkRange(key *[32]byte, cipher []byte, base int64, p []byte, off int64) error {
	if base%darePackage != 0 || off < base/darePackage*darePayload {
		return fmt.Errorf("chunk decryption: window at %d does not start a package before %d", base, off)
	}
	o := dare.NewOpener(key, uint32(base/darePackage))
	pos := base / darePackage * darePayload // plaintext offset of the package at cipher[0]
	end := off + int64(len(p))
	var scratch *[darePayload]byte
	defer func() {
		if scratch != nil {
			clear(scratch[:]) // plaintext does not linger in a pool
			scratchPool.Put(scratch)
		}
	}()
	for pos < end {
		n, err := dare.PackageLen(cipher)
		if err != nil {
			return decryptionError(err)
		}
		payload := int64(n - dareOverhead)
		if pos >= off && pos+payload <= end {
			if _, _, err := o.Open(p[pos-off:], cipher); err != nil {
				return decryptionError(err)
			}
		} else {
			if scratch == nil {
				scratch = scratchPool.Get().(*[darePayload]byte)
			}
			if _, _, err := o.Open(scratch[:], cipher); err != nil {
				return decryptionError(err)
			}
			lo, hi := max(off, pos), min(end, pos+payload)
			if lo < hi {
				copy(p[lo-off:hi-off], scratch[lo-pos:hi-pos])
			}
		}
		cryptoBytes.decrypted.Add(uint64(payload))
		cipher = cipher[n:]
		pos += payload
	}
	return nil
}

// scratchPool holds package buffers for reads that start or end inside a package.
var scratchPool = sync.Pool{New: func() any { return new([darePayload]byte) }}

// decryptionError makes a failure to authenticate (or a stream cut short) ErrCorrupt:
// tampered data reads as EIO, never as wrong bytes.
func decryptionError(err error) error {
	if errors.Is(err, dare.ErrAuth) {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return fmt.Errorf("chunk decryption: %w", err)
}

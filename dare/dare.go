// Package dare seals and opens DARE 2.0 streams, the format of github.com/minio/sio, in
// memory and straight into the caller's buffers.
//
// sio's readers and writers copy through 64 KiB buffers from a sync.Pool, which every
// garbage collection empties: sealing a 32-byte file key or a 4 KiB chunk allocated and
// cleared 64 KiB, as did opening one package for a 4 KiB read, and on small-file and
// random-read workloads that was most of the allocation and a tenth of the CPU. The bytes
// here are sio's, package for package; the tests check both directions against sio.
//
// A stream is a run of packages: a 16-byte header (version 0x20, cipher suite, payload
// length - 1 as little-endian uint16, and a 12-byte nonce whose first bit marks the final
// package), the sealed payload and a 16-byte tag. Every package but the last carries
// MaxPayload bytes. The AEAD nonce is the header's with its last four bytes XORed with
// the package's sequence number, and the first four header bytes are additional data, so
// packages cannot be reordered, resized, cut off or moved between streams.
package dare

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

const (
	HeaderSize = 16
	TagSize    = 16
	MaxPayload = 1 << 16
	// MaxPackage is the size of a full package.
	MaxPackage = HeaderSize + MaxPayload + TagSize

	version20 = 0x20
	finalFlag = 0x80
)

// The cipher suites, numbered as sio numbers them.
const (
	AES256GCM        byte = 0
	ChaCha20Poly1305 byte = 1
)

// PreferredSuite is the suite sio picks by default: AES-256-GCM where the CPU has AES
// instructions, ChaCha20-Poly1305 elsewhere. Opening accepts both, so data moves
// between hosts.
var PreferredSuite = func() byte {
	if cpu.X86.HasAES || cpu.ARM64.HasAES || cpu.S390X.HasAES {
		return AES256GCM
	}
	return ChaCha20Poly1305
}()

// ErrAuth is any failure to open: a tag that does not verify, or a header that is not a
// well-formed package of the stream. Which one is not told: either way the bytes are not
// what was sealed.
var ErrAuth = errors.New("dare: message authentication failed")

// SealedSize returns the bytes a stream of n plaintext bytes takes (0 for 0, as sio).
func SealedSize(n int) int {
	full, rest := n/MaxPayload, n%MaxPayload
	size := full * MaxPackage
	if rest > 0 {
		size += HeaderSize + rest + TagSize
	}
	return size
}

func newAEAD(suite byte, key *[32]byte) (cipher.AEAD, error) {
	switch suite {
	case AES256GCM:
		block, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key[:])
	}
	return nil, fmt.Errorf("dare: unknown cipher suite %d", suite)
}

// Seal appends to dst the stream sealing plain under key with the cipher suite, with a
// nonce read from random, and returns the extended slice. With enough capacity in dst
// it allocates nothing but the cipher.
func Seal(dst []byte, key *[32]byte, suite byte, plain []byte, random io.Reader) ([]byte, error) {
	aead, err := newAEAD(suite, key)
	if err != nil {
		return nil, err
	}
	var nonce [12]byte
	if _, err := io.ReadFull(random, nonce[:]); err != nil {
		return nil, fmt.Errorf("dare: reading a nonce: %w", err)
	}
	start := len(dst)
	dst = grow(dst, SealedSize(len(plain)))
	out := dst[start:]
	for seq := uint32(0); len(plain) > 0; seq++ {
		n := min(len(plain), MaxPayload)
		final := n == len(plain)
		h := out[:HeaderSize]
		h[0], h[1] = version20, suite
		binary.LittleEndian.PutUint16(h[2:4], uint16(n-1))
		copy(h[4:], nonce[:])
		if final {
			h[4] |= finalFlag
		} else {
			h[4] &^= finalFlag
		}
		var pn [12]byte
		copy(pn[:], h[4:])
		binary.LittleEndian.PutUint32(pn[8:], binary.LittleEndian.Uint32(pn[8:])^seq)
		aead.Seal(out[HeaderSize:HeaderSize], pn[:], plain[:n], h[:4])
		out = out[HeaderSize+n+TagSize:]
		plain = plain[n:]
	}
	return dst, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// Opener opens the packages of one stream, or a run of them from any package on, one
// package at a time into the caller's buffers.
type Opener struct {
	key   *[32]byte // the caller's: it clears the key when done with the Opener
	aead  cipher.AEAD
	suite byte
	seq   uint32
	ref   [12]byte // the first package's nonce, without the final flag
	seen  bool
	final bool
}

// NewOpener returns an Opener for a stream sealed under key whose next package has the
// sequence number seq (0 for the start of the stream).
func NewOpener(key *[32]byte, seq uint32) *Opener {
	return &Opener{key: key, seq: seq}
}

// PackageLen returns the length of the package at the start of src, from its header,
// or an error if src does not start with a whole well-formed package.
func PackageLen(src []byte) (int, error) {
	if len(src) < HeaderSize+TagSize+1 || src[0] != version20 {
		return 0, ErrAuth
	}
	n := HeaderSize + int(binary.LittleEndian.Uint16(src[2:4])) + 1 + TagSize
	if n > len(src) {
		return 0, ErrAuth
	}
	return n, nil
}

// Open decrypts the package at the start of src into dst (which must have room for its
// payload) and returns the payload's length and the package's length.
func (o *Opener) Open(dst, src []byte) (payload, consumed int, err error) {
	if o.final {
		return 0, 0, ErrAuth // nothing follows the final package
	}
	n, err := PackageLen(src)
	if err != nil {
		return 0, 0, err
	}
	h := src[:HeaderSize]
	payload = n - HeaderSize - TagSize
	final := h[4]&finalFlag != 0
	if !final && payload != MaxPayload {
		return 0, 0, ErrAuth
	}
	if len(dst) < payload {
		return 0, 0, fmt.Errorf("dare: %d bytes of room for a payload of %d", len(dst), payload)
	}
	var nonce [12]byte
	copy(nonce[:], h[4:HeaderSize])
	nonce[0] &^= finalFlag
	if !o.seen {
		if o.aead, err = newAEAD(h[1], o.key); err != nil {
			return 0, 0, ErrAuth
		}
		o.suite, o.ref, o.seen = h[1], nonce, true
	} else if h[1] != o.suite || subtle.ConstantTimeCompare(nonce[:], o.ref[:]) != 1 {
		return 0, 0, ErrAuth
	}
	copy(nonce[:], h[4:HeaderSize])
	binary.LittleEndian.PutUint32(nonce[8:], binary.LittleEndian.Uint32(nonce[8:])^o.seq)
	if _, err := o.aead.Open(dst[:0], nonce[:], src[HeaderSize:n], h[:4]); err != nil {
		return 0, 0, ErrAuth
	}
	o.seq++
	o.final = final
	return payload, n, nil
}

// Final reports whether the last package opened was the stream's final one.
func (o *Opener) Final() bool { return o.final }

// OpenAll opens a whole stream into dst (appending) and fails unless it ends with its
// final package: for small sealed values, as a file key, read back whole.
func OpenAll(dst []byte, key *[32]byte, src []byte) ([]byte, error) {
	o := NewOpener(key, 0)
	for len(src) > 0 {
		n, err := PackageLen(src)
		if err != nil {
			return nil, err
		}
		start := len(dst)
		dst = grow(dst, n-HeaderSize-TagSize)
		if _, _, err := o.Open(dst[start:], src); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	if !o.final {
		return nil, ErrAuth
	}
	return dst, nil
}

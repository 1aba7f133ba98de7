package fs

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/minio/sio"
	"golang.org/x/sys/cpu"
)

// DARE packs plaintext in packages of 64 KiB, each with a 16-byte header and a 16-byte tag.
const (
	darePayload  = 64 << 10
	darePackage  = darePayload + 32
	dareOverhead = 32
)

// cipherSuite is fixed per process from the CPU: AES-GCM where AES-NI makes it fast,
// ChaCha20-Poly1305 elsewhere. Decryption accepts both, so data moves between hosts.
var cipherSuite, cipherName = func() (byte, string) {
	if cpu.X86.HasAES || cpu.ARM64.HasAES || cpu.S390X.HasAES {
		return sio.AES_256_GCM, "AES-256-GCM"
	}
	return sio.CHACHA20_POLY1305, "ChaCha20-Poly1305"
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

func dareConfig(key *[32]byte) sio.Config {
	return sio.Config{
		MinVersion:   sio.Version20,
		MaxVersion:   sio.Version20,
		CipherSuites: []byte{cipherSuite},
		Key:          key[:],
	}
}

// sealChunk encrypts one chunk's plaintext as a single DARE stream.
func sealChunk(key *[32]byte, plaintext []byte) ([]byte, error) {
	size, err := sio.EncryptedSize(uint64(len(plaintext)))
	if err != nil {
		return nil, fmt.Errorf("chunk of %d bytes: %w", len(plaintext), err)
	}
	out := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := sio.Encrypt(out, bytes.NewReader(plaintext), dareConfig(key)); err != nil {
		return nil, fmt.Errorf("encrypting chunk: %w", err)
	}
	return out.Bytes(), nil
}

// encryptedSpan returns which ciphertext bytes hold plaintext [off, off+n) of a stream,
// as sio's ReaderAt reads them: it starts one package early when off is on a package
// boundary, so the span must too.
func encryptedSpan(off, n int64) (start, end int64) {
	first := off / darePayload
	if off > 0 && off%darePayload == 0 {
		first--
	}
	last := (off + n - 1) / darePayload
	return first * darePackage, (last + 1) * darePackage
}

// openChunkRange decrypts plaintext [off, off+len(p)) of a chunk whose ciphertext bytes
// [base, base+len(cipher)) are given, decrypting only the packages in that span.
func openChunkRange(key *[32]byte, cipher []byte, base int64, p []byte, off int64) error {
	r, err := sio.DecryptReaderAt(&offsetReaderAt{data: cipher, base: base}, dareConfig(key))
	if err != nil {
		return fmt.Errorf("chunk decryption setup: %w", err)
	}
	n, err := r.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err != nil {
		var sioErr sio.Error
		if errors.As(err, &sioErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return fmt.Errorf("chunk decryption: %w", err)
	}
	return nil
}

// offsetReaderAt serves a window of a larger stream that starts at base.
type offsetReaderAt struct {
	data []byte
	base int64
}

func (r *offsetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	off -= r.base
	if off < 0 {
		return 0, fmt.Errorf("read before fetched window")
	}
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

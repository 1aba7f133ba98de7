package sigv4

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// Checksum algorithms of the S3 flexible-checksum headers
// (x-amz-checksum-<name>), as they appear in the header name.
const (
	CRC32     = "crc32"     // CRC-32/ISO-HDLC (IEEE), big-endian
	CRC32C    = "crc32c"    // CRC-32/ISCSI (Castagnoli), big-endian
	CRC64NVME = "crc64nvme" // CRC-64/NVME, big-endian
	SHA1      = "sha1"
	SHA256    = "sha256"
)

// crc64NVMEPoly is the CRC-64/NVME polynomial 0xAD93D23594C93659 in the
// bit-reversed form that hash/crc64 expects. With hash/crc64's all-ones
// initial value and final inversion this gives CRC-64/NVME
// (check("123456789") = 0xAE8B14860A799888), the same as aws-sdk-go-v2.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

var (
	castagnoliTable = crc32.MakeTable(crc32.Castagnoli)
	nvmeTable       = crc64.MakeTable(crc64NVMEPoly)
)

// Checksum is a verified S3 flexible checksum of a request body: the
// algorithm (CRC32, CRC32C, ...) and the base64 value, as S3 returns it in
// x-amz-checksum-<algorithm>.
type Checksum struct {
	Algorithm string
	Value     string
}

// newChecksumHash returns the hash for a checksum algorithm name, or nil.
func newChecksumHash(alg string) hash.Hash {
	switch alg {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoliTable)
	case CRC64NVME:
		return crc64.New(nvmeTable)
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

// checksumSize is the digest size in bytes of a known algorithm, or 0.
func checksumSize(alg string) int {
	switch alg {
	case CRC32, CRC32C:
		return 4
	case CRC64NVME:
		return 8
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	}
	return 0
}

// checksumAlgorithm returns the algorithm of a checksum header or trailer
// name (any case), "x-amz-checksum-crc32" -> "crc32", or "" when name is not
// one of the five value-carrying checksum headers (x-amz-checksum-mode,
// -type and -algorithm are not).
func checksumAlgorithm(name string) string {
	const prefix = "x-amz-checksum-"
	name = strings.ToLower(name)
	if !strings.HasPrefix(name, prefix) {
		return ""
	}
	alg := name[len(prefix):]
	if checksumSize(alg) == 0 {
		return ""
	}
	return alg
}

// validChecksumValue reports whether v is the strict, padded base64
// encoding of a digest of alg's size.
func validChecksumValue(alg, v string) bool {
	b, err := base64.StdEncoding.Strict().DecodeString(v)
	return err == nil && len(b) == checksumSize(alg)
}

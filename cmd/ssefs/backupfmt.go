package main

// The backup file: one snapshot of the metadata, readable on a new host with nothing but
// the file (or the S3 store that holds it) and the KMS.
//
//	"ssefs-backup 1\n"     magic, 15 bytes
//	uint32, big-endian     length of the header
//	header                 JSON: backupHeader, in the clear
//	body                   DARE 2.0 (sio) of the snapshot stream (meta.Snapshot.WriteTo:
//	                       Badger's backup format), under the backup key
//
// The header carries meta.key as the data directory held it: the metadata key sealed by
// the KMS. So a restore asks the KMS to unseal it, exactly as a mount does, and nothing
// else is needed. The backup key is HMAC-SHA256(metadata key, "ssefs backup v1" ‖
// SHA-256(magic ‖ header)): fresh per backup (the header holds a random nonce), known to
// no one without the KMS, and bound to the header, so a header changed in any byte (the
// store it names, the read timestamp, the sealed key) makes the first package of the body
// fail authentication. DARE authenticates every 64 KiB package and the end of the stream,
// so a flipped, missing or truncated byte anywhere fails the restore before it is used.
//
// The header shows, in the clear: when the backup was taken, the store's URL and
// settings (no credentials), the KMS key name that sealed meta.key, and the size of the
// stream. Names, sizes and everything else of the metadata are only in the body.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/minio/sio"
)

const (
	backupMagic     = "ssefs-backup 1\n"
	backupVersion   = 1
	backupExt       = ".ssefs-backup"
	maxBackupHeader = 1 << 20
)

// backupHeader is the clear header of a backup.
type backupHeader struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// ReadTs is the snapshot's read timestamp in the metadata store: the deferred
	// deletions are measured against it (fs/deferred.go).
	ReadTs uint64 `json:"read_ts"`
	// Lineage tells this store's snapshots from others' (hex).
	Lineage string `json:"lineage"`
	// Store is the S3 store's record (store.json: URL, ID, endpoint, ... no credentials);
	// nil for a store in DATA/objects.
	Store *storeRecord `json:"store,omitempty"`
	// MetaKeyFile is DATA/meta.key: the metadata key sealed by the KMS.
	MetaKeyFile []byte `json:"meta_key_file"`
	Nonce       []byte `json:"nonce"`
}

// backupKey derives the key of a backup's body from the metadata key and the header.
func backupKey(metaKey, rawHeader []byte) []byte {
	h := sha256.New()
	h.Write([]byte(backupMagic))
	h.Write(rawHeader)
	mac := hmac.New(sha256.New, metaKey)
	mac.Write([]byte("ssefs backup v1"))
	mac.Write(h.Sum(nil))
	return mac.Sum(nil)
}

func backupSioConfig(key []byte) sio.Config {
	return sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20, Key: key}
}

// writeBackupHeader writes the magic and the header, and returns the key of the body.
func writeBackupHeader(w io.Writer, hdr *backupHeader, metaKey []byte) ([]byte, error) {
	hdr.Version = backupVersion
	hdr.Nonce = make([]byte, 32)
	if _, err := rand.Read(hdr.Nonce); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(raw)))
	var buf bytes.Buffer
	buf.WriteString(backupMagic)
	buf.Write(n[:])
	buf.Write(raw)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	return backupKey(metaKey, raw), nil
}

// errNotBackup: the input does not start like a backup at all.
var errNotBackup = errors.New("not an ssefs backup (no ssefs-backup header)")

// readBackupHeader reads the magic and the header. The header is not authenticated yet:
// openBackupBody does that, with the metadata key its sealed meta.key gives.
func readBackupHeader(r io.Reader) (*backupHeader, []byte, error) {
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, errNotBackup
		}
		return nil, nil, err
	}
	if string(magic) != backupMagic {
		if strings.HasPrefix(string(magic), "ssefs-backup ") {
			return nil, nil, fmt.Errorf("a backup of format %q, this ssefs reads %d", strings.TrimSpace(string(magic[13:])), backupVersion)
		}
		return nil, nil, errNotBackup
	}
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, nil, fmt.Errorf("the header is cut short: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxBackupHeader {
		return nil, nil, fmt.Errorf("the header length %d is not plausible: the file is damaged", size)
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, fmt.Errorf("the header is cut short: %w", err)
	}
	var hdr backupHeader
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return nil, nil, fmt.Errorf("the header is damaged: %w", err)
	}
	switch {
	case hdr.Version != backupVersion:
		return nil, nil, fmt.Errorf("a backup of version %d, this ssefs reads %d", hdr.Version, backupVersion)
	case len(hdr.MetaKeyFile) == 0:
		return nil, nil, errors.New("the header holds no sealed metadata key: the file is damaged")
	case len(hdr.Nonce) != 32:
		return nil, nil, errors.New("the header's nonce is not 32 bytes: the file is damaged")
	}
	return &hdr, raw, nil
}

// openBackupBody returns the decrypted snapshot stream. Reading it fails (sio.NotAuthentic)
// at the first package that does not authenticate, or at a stream cut short.
func openBackupBody(r io.Reader, rawHeader, metaKey []byte) (io.Reader, error) {
	return sio.DecryptReader(r, backupSioConfig(backupKey(metaKey, rawHeader)))
}

// backupName is a snapshot's name in the S3 store or a backup directory: its time, read
// timestamp and lineage, so that names sort by time and a listing says which snapshots
// are this store's, and which is the newest, without reading them.
func backupName(created time.Time, readTs uint64, lineage [16]byte) string {
	return fmt.Sprintf("%s-%020d-%s%s", created.UTC().Format("20060102T150405Z"), readTs,
		hex.EncodeToString(lineage[:8]), backupExt)
}

// parsedName is what a snapshot's name says.
type parsedName struct {
	name    string
	created time.Time
	readTs  uint64
	lineage string // 16 hex digits: the first 8 bytes of the lineage
}

func parseBackupName(name string) (parsedName, bool) {
	base, ok := strings.CutSuffix(name, backupExt)
	if !ok {
		return parsedName{}, false
	}
	parts := strings.Split(base, "-")
	if len(parts) != 3 || len(parts[1]) != 20 || len(parts[2]) != 16 {
		return parsedName{}, false
	}
	created, err := time.Parse("20060102T150405Z", parts[0])
	if err != nil {
		return parsedName{}, false
	}
	ts, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return parsedName{}, false
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return parsedName{}, false
	}
	return parsedName{name: name, created: created, readTs: ts, lineage: parts[2]}, true
}

// newer orders snapshots newest first: by read timestamp, which only grows in one
// store's life, then by time.
func newer(a, b parsedName) bool {
	if a.readTs != b.readTs {
		return a.readTs > b.readTs
	}
	return a.created.After(b.created)
}

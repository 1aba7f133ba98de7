package meta

// Every key and value layout of the metadata store lives in this file. The layouts are
// the on-disk format: changing one means a new FormatVersion (keys) or a new codec version
// byte (values).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is returned (wrapped) when a stored key or value cannot be decoded.
var ErrCorrupt = errors.New("meta: corrupt record")

// Key prefixes, one byte per kind. Badger keeps its own keys under "!badger!" (0x21), so
// ours stay below it. Never renumber: these are on disk.
const (
	pfxSuperblock byte = 0x01
	pfxSequence   byte = 0x02
	pfxInode      byte = 0x10
	pfxEntry      byte = 0x11
	pfxChunk      byte = 0x12
	pfxXattr      byte = 0x13
	pfxSealedKey  byte = 0x14
	pfxSymlink    byte = 0x15
	pfxBucket     byte = 0x16
	pfxOrphan     byte = 0x17
	pfxRotation   byte = 0x18 // one record: the key rotation in progress
)

// codecV1 leads every value so a later layout can be told apart from this one.
const codecV1 byte = 1

var be = binary.BigEndian

// ---- keys ----

func superblockKey() []byte { return []byte{pfxSuperblock} }

func sequenceKey(name string) []byte {
	return append([]byte{pfxSequence}, name...)
}

// inoKey is prefix|ino(8). Big-endian so that byte order is numeric order.
func inoKey(pfx byte, ino Ino) []byte {
	k := make([]byte, 9, 9+16)
	k[0] = pfx
	be.PutUint64(k[1:], uint64(ino))
	return k
}

func decodeInoKey(pfx byte, k []byte) (Ino, error) {
	if len(k) != 9 || k[0] != pfx {
		return 0, fmt.Errorf("%w: bad key %x for kind %#x", ErrCorrupt, k, pfx)
	}
	return Ino(be.Uint64(k[1:])), nil
}

func inodeKey(ino Ino) []byte     { return inoKey(pfxInode, ino) }
func sealedKeyKey(ino Ino) []byte { return inoKey(pfxSealedKey, ino) }
func symlinkKey(ino Ino) []byte   { return inoKey(pfxSymlink, ino) }
func bucketKey(ino Ino) []byte    { return inoKey(pfxBucket, ino) }
func orphanKey(ino Ino) []byte    { return inoKey(pfxOrphan, ino) }

// entryPrefix is the prefix shared by all entries of one directory. The parent is fixed
// width, so a name can never be mistaken for part of another parent's number.
func entryPrefix(parent Ino) []byte { return inoKey(pfxEntry, parent) }

func entryKey(parent Ino, name string) []byte {
	return append(entryPrefix(parent), name...)
}

func decodeEntryKey(k []byte) (Ino, string, error) {
	return decodeNamedKey(pfxEntry, k)
}

func xattrPrefix(ino Ino) []byte { return inoKey(pfxXattr, ino) }

func xattrKey(ino Ino, name string) []byte {
	return append(xattrPrefix(ino), name...)
}

func decodeXattrKey(k []byte) (Ino, string, error) {
	return decodeNamedKey(pfxXattr, k)
}

// decodeNamedKey rejects an empty name: such a key would equal the prefix of the whole
// range and is never written.
func decodeNamedKey(pfx byte, k []byte) (Ino, string, error) {
	if len(k) <= 9 || k[0] != pfx {
		return 0, "", fmt.Errorf("%w: bad key %x for kind %#x", ErrCorrupt, k, pfx)
	}
	return Ino(be.Uint64(k[1:9])), string(k[9:]), nil
}

func chunkPrefix(ino Ino) []byte { return inoKey(pfxChunk, ino) }

func chunkKey(ino Ino, index uint64) []byte {
	return be.AppendUint64(chunkPrefix(ino), index)
}

func decodeChunkKey(k []byte) (Ino, uint64, error) {
	if len(k) != 17 || k[0] != pfxChunk {
		return 0, 0, fmt.Errorf("%w: bad chunk key %x", ErrCorrupt, k)
	}
	return Ino(be.Uint64(k[1:9])), be.Uint64(k[9:]), nil
}

// ---- values ----
//
// Integers are varints, and decoding accepts only the shortest form, so every value has
// exactly one encoding: decode(x) succeeding implies encode(decode(x)) == x.

type reader struct {
	kind string
	b    []byte
	err  error
}

func newReader(kind string, b []byte) *reader {
	r, _ := newReaderUpTo(kind, b, codecV1)
	return r
}

// newReaderUpTo is newReader for a value with layouts codecV1..latest; it returns the
// one b has.
func newReaderUpTo(kind string, b []byte, latest byte) (*reader, byte) {
	r := &reader{kind: kind, b: b}
	if len(b) == 0 {
		r.fail("empty")
		return r, 0
	} else if b[0] < codecV1 || b[0] > latest {
		r.fail(fmt.Sprintf("unknown codec version %d", b[0]))
		return r, 0
	}
	r.b = b[1:]
	return r, b[0]
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s value: %s", ErrCorrupt, r.kind, why)
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.fail("truncated")
		return 0
	case n < 0:
		r.fail("varint overflow")
		return 0
	case n > 1 && r.b[n-1] == 0:
		r.fail("non-minimal varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (r *reader) u32() uint32 {
	v := r.uvarint()
	if v > math.MaxUint32 {
		r.fail("32-bit field out of range")
		return 0
	}
	return uint32(v)
}

func (r *reader) fixed(p []byte) {
	if r.err != nil {
		return
	}
	if len(r.b) < len(p) {
		r.fail("truncated")
		return
	}
	copy(p, r.b)
	r.b = r.b[len(p):]
}

func (r *reader) rest() []byte {
	b := r.b
	r.b = nil
	return b
}

func (r *reader) lenBytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// done reports the first error, or trailing bytes, which would mean a layout we do not
// know.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	return r.err
}

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// The superblock (format version) and the sequence leases are single counters.
func encodeSuperblock(format uint64) []byte     { return encodeCounter(format) }
func decodeSuperblock(b []byte) (uint64, error) { return decodeCounter("superblock", b) }
func encodeSequence(next uint64) []byte         { return encodeCounter(next) }
func decodeSequence(b []byte) (uint64, error)   { return decodeCounter("sequence", b) }

func encodeCounter(v uint64) []byte { return binary.AppendUvarint([]byte{codecV1}, v) }

func decodeCounter(what string, b []byte) (uint64, error) {
	r := newReader(what, b)
	v := r.uvarint()
	return v, r.done()
}

// encodeInode leaves out Ino: the key carries it.
func encodeInode(in *Inode) []byte {
	b := make([]byte, 1, 64)
	b[0] = codecV1
	b = binary.AppendUvarint(b, uint64(in.Mode))
	b = binary.AppendUvarint(b, uint64(in.Uid))
	b = binary.AppendUvarint(b, uint64(in.Gid))
	b = binary.AppendUvarint(b, uint64(in.Nlink))
	b = binary.AppendUvarint(b, uint64(in.Rdev))
	b = binary.AppendUvarint(b, in.Size)
	b = appendVarint(b, in.Atime)
	b = appendVarint(b, in.Mtime)
	b = appendVarint(b, in.Ctime)
	b = binary.AppendUvarint(b, in.Gen)
	b = binary.AppendUvarint(b, uint64(in.Parent))
	b = binary.AppendUvarint(b, uint64(in.Bucket))
	b = binary.AppendUvarint(b, uint64(in.ChunkSize))
	b = append(b, in.FileID[:]...)
	return b
}

func decodeInode(ino Ino, b []byte) (Inode, error) {
	r := newReader("inode", b)
	in := Inode{Ino: ino}
	in.Mode = r.u32()
	in.Uid = r.u32()
	in.Gid = r.u32()
	in.Nlink = r.u32()
	in.Rdev = r.u32()
	in.Size = r.uvarint()
	in.Atime = r.varint()
	in.Mtime = r.varint()
	in.Ctime = r.varint()
	in.Gen = r.uvarint()
	in.Parent = Ino(r.uvarint())
	in.Bucket = Ino(r.uvarint())
	in.ChunkSize = r.u32()
	r.fixed(in.FileID[:])
	if err := r.done(); err != nil {
		return Inode{}, err
	}
	return in, nil
}

// encodeEntry leaves out the name: the key carries it.
func encodeEntry(e *Entry) []byte {
	b := []byte{codecV1}
	b = binary.AppendUvarint(b, uint64(e.Ino))
	b = binary.AppendUvarint(b, uint64(e.Mode))
	return b
}

func decodeEntry(name string, b []byte) (Entry, error) {
	r := newReader("entry", b)
	e := Entry{Name: name}
	e.Ino = Ino(r.uvarint())
	e.Mode = r.u32()
	if err := r.done(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// encodeChunk leaves out the index: the key carries it. Inline ciphertext, if any, is
// the rest of the value (records written before it existed simply end earlier).
func encodeChunk(c *Chunk) []byte {
	b := make([]byte, 1, 1+16+10+5+5+len(c.Inline))
	b[0] = codecV1
	b = append(b, c.Object[:]...)
	b = binary.AppendUvarint(b, c.Version)
	b = binary.AppendUvarint(b, uint64(c.PlainLen))
	b = binary.AppendUvarint(b, uint64(c.StoredLen))
	return append(b, c.Inline...)
}

func decodeChunk(index uint64, b []byte) (Chunk, error) {
	r := newReader("chunk", b)
	c := Chunk{Index: index}
	r.fixed(c.Object[:])
	c.Version = r.uvarint()
	c.PlainLen = r.u32()
	c.StoredLen = r.u32()
	if r.err == nil && len(r.b) > 0 {
		c.Inline = r.rest()
		if len(c.Inline) != int(c.StoredLen) {
			r.fail(fmt.Sprintf("%d inline bytes, %d recorded", len(c.Inline), c.StoredLen))
		}
	}
	if err := r.done(); err != nil {
		return Chunk{}, err
	}
	return c, nil
}

// Blobs (xattr values, sealed keys, symlink targets) are opaque: version byte + bytes.
func encodeBlob(p []byte) []byte {
	b := make([]byte, 1+len(p))
	b[0] = codecV1
	copy(b[1:], p)
	return b
}

// decodeBlob returns a slice of b, not a copy.
func decodeBlob(kind string, b []byte) ([]byte, error) {
	r := newReader(kind, b)
	p := r.rest()
	if err := r.done(); err != nil {
		return nil, err
	}
	if p == nil {
		p = []byte{}
	}
	return p, nil
}

func encodeBucketConfig(c *BucketConfig) []byte {
	b := []byte{codecV1}
	b = binary.AppendUvarint(b, uint64(len(c.DefaultKey)))
	b = append(b, c.DefaultKey...)
	return b
}

func decodeBucketConfig(b []byte) (BucketConfig, error) {
	r := newReader("bucket config", b)
	var c BucketConfig
	c.DefaultKey = string(r.lenBytes())
	if err := r.done(); err != nil {
		return BucketConfig{}, err
	}
	return c, nil
}

func rotationKey() []byte { return []byte{pfxRotation} }

func encodeRotation(j *RotationJob) []byte {
	b := []byte{codecV1}
	b = binary.AppendVarint(b, j.Started)
	for _, s := range []string{j.Bucket, j.FromKey, j.ToKey} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, n := range []uint64{uint64(j.Next), j.Total, j.Done, j.Skipped} {
		b = binary.AppendUvarint(b, n)
	}
	return b
}

func decodeRotation(b []byte) (RotationJob, error) {
	r := newReader("rotation", b)
	var j RotationJob
	j.Started = r.varint()
	j.Bucket = string(r.lenBytes())
	j.FromKey = string(r.lenBytes())
	j.ToKey = string(r.lenBytes())
	j.Next = Ino(r.uvarint())
	j.Total = r.uvarint()
	j.Done = r.uvarint()
	j.Skipped = r.uvarint()
	if err := r.done(); err != nil {
		return RotationJob{}, err
	}
	return j, nil
}

func encodeOrphan() []byte { return []byte{codecV1} }

func decodeOrphan(b []byte) error {
	return newReader("orphan", b).done()
}

// ---- S3 object records and multipart uploads ----
//
// Keys (prefixes after pfxRotation, never renumbered):
//
//	pfxObject    | ino(8)                         -> Object
//	pfxUpload    | uploadID(16)                   -> Upload (without the ID)
//	pfxUploadKey | bucket(8) | key | 0x00 | id(16) -> codecV1 (index: a bucket's uploads in key, then ID, order)
//	pfxPart      | uploadID(16) | number(4)       -> Part (without the number)
//
// Object keys never contain NUL, so the 0x00 separator keeps the index in key order:
// "a" ‖ 0 ‖ id sorts before "a0" ‖ 0 ‖ id as "a" sorts before "a0".
const (
	pfxObject    byte = 0x19
	pfxUpload    byte = 0x1a
	pfxUploadKey byte = 0x1b
	pfxPart      byte = 0x1c
)

func objectKey(ino Ino) []byte { return inoKey(pfxObject, ino) }

func uploadKey(id UploadID) []byte { return append([]byte{pfxUpload}, id[:]...) }

func decodeUploadKey(k []byte) (UploadID, error) {
	var id UploadID
	if len(k) != 1+len(id) || k[0] != pfxUpload {
		return id, fmt.Errorf("%w: bad upload key %x", ErrCorrupt, k)
	}
	copy(id[:], k[1:])
	return id, nil
}

func uploadIndexPrefix(bucket Ino) []byte { return inoKey(pfxUploadKey, bucket) }

func uploadIndexKey(bucket Ino, key string, id UploadID) []byte {
	k := append(uploadIndexPrefix(bucket), key...)
	k = append(k, 0)
	return append(k, id[:]...)
}

func decodeUploadIndexKey(k []byte) (Ino, string, UploadID, error) {
	var id UploadID
	n := len(k) - len(id) - 1
	if n < 9 || k[0] != pfxUploadKey || k[n] != 0 {
		return 0, "", id, fmt.Errorf("%w: bad upload index key %x", ErrCorrupt, k)
	}
	key := k[9:n]
	for _, c := range key {
		if c == 0 {
			return 0, "", id, fmt.Errorf("%w: upload index key %x: NUL in object key", ErrCorrupt, k)
		}
	}
	copy(id[:], k[n+1:])
	return Ino(be.Uint64(k[1:9])), string(key), id, nil
}

func partPrefix(id UploadID) []byte { return append([]byte{pfxPart}, id[:]...) }

func partKey(id UploadID, number uint32) []byte { return be.AppendUint32(partPrefix(id), number) }

func decodePartKey(k []byte) (UploadID, uint32, error) {
	var id UploadID
	if len(k) != 1+len(id)+4 || k[0] != pfxPart {
		return id, 0, fmt.Errorf("%w: bad part key %x", ErrCorrupt, k)
	}
	copy(id[:], k[1:])
	return id, be.Uint32(k[1+len(id):]), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendSystemMeta(b []byte, m *SystemMeta) []byte {
	for _, s := range [...]string{m.ContentType, m.ContentEncoding, m.ContentDisposition,
		m.ContentLanguage, m.CacheControl, m.Expires} {
		b = appendString(b, s)
	}
	return b
}

func (r *reader) systemMeta() SystemMeta {
	var m SystemMeta
	for _, p := range [...]*string{&m.ContentType, &m.ContentEncoding, &m.ContentDisposition,
		&m.ContentLanguage, &m.CacheControl, &m.Expires} {
		*p = string(r.lenBytes())
	}
	return m
}

// encodeObject: flags, size, ETag, then the six system metadata strings.
func encodeObject(o *Object) []byte {
	b := []byte{codecV1}
	b = binary.AppendUvarint(b, uint64(o.Flags))
	b = binary.AppendUvarint(b, o.Size)
	b = appendString(b, o.ETag)
	return appendSystemMeta(b, &o.System)
}

func decodeObject(b []byte) (Object, error) {
	r := newReader("object", b)
	var o Object
	o.Flags = r.u32()
	o.Size = r.uvarint()
	o.ETag = string(r.lenBytes())
	o.System = r.systemMeta()
	if err := r.done(); err != nil {
		return Object{}, err
	}
	return o, nil
}

// uploadCodecV2 is an upload with a KMS encryption context: the version 1 layout, then
// the context as a pair count (at least 1) and its pairs, in strictly increasing key
// order. An upload without a context is still written as version 1, byte for byte what
// earlier releases wrote, so uploads in progress across an upgrade (or a downgrade,
// without contexts) keep working; a version byte rather than an optional trailing
// field, so that a record cut right before the context does not pass for one without.
const uploadCodecV2 byte = 2

// encodeUpload leaves out the ID (the key carries it). User metadata and the KMS
// context are encoded in strictly increasing name order, and decoding insists on it,
// so the encoding stays canonical.
func encodeUpload(u *Upload) []byte {
	version := codecV1
	if len(u.KMSContext) > 0 {
		version = uploadCodecV2
	}
	b := []byte{version}
	b = binary.AppendUvarint(b, uint64(u.Bucket))
	b = appendString(b, u.Key)
	b = appendVarint(b, u.Initiated)
	b = appendString(b, u.SSEType)
	b = appendString(b, u.KeyName)
	b = append(b, u.ClientKeyMD5[:]...)
	b = binary.AppendUvarint(b, uint64(u.Mode))
	b = binary.AppendUvarint(b, uint64(u.Uid))
	b = binary.AppendUvarint(b, uint64(u.Gid))
	b = appendSystemMeta(b, &u.System)
	b = appendStringMap(b, u.UserMeta)
	if version == uploadCodecV2 {
		b = appendStringMap(b, u.KMSContext)
	}
	return b
}

// appendStringMap writes a count and the pairs in strictly increasing key order.
func appendStringMap(b []byte, m map[string]string) []byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sortStrings(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

// stringMap reads what appendStringMap wrote; an empty map reads as nil.
func (r *reader) stringMap(what string) map[string]string {
	n := r.uvarint()
	if n > uint64(len(r.b)) { // every pair takes at least two bytes
		r.fail(what + " count out of range")
	}
	var m map[string]string
	prev := ""
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := string(r.lenBytes())
		v := string(r.lenBytes())
		if r.err != nil {
			break
		}
		if i > 0 && k <= prev {
			r.fail(what + " names not strictly increasing")
			break
		}
		if m == nil {
			m = make(map[string]string, n)
		}
		m[k] = v
		prev = k
	}
	return m
}

func decodeUpload(id UploadID, b []byte) (Upload, error) {
	r, version := newReaderUpTo("upload", b, uploadCodecV2)
	u := Upload{ID: id}
	u.Bucket = Ino(r.uvarint())
	u.Key = string(r.lenBytes())
	u.Initiated = r.varint()
	u.SSEType = string(r.lenBytes())
	u.KeyName = string(r.lenBytes())
	r.fixed(u.ClientKeyMD5[:])
	u.Mode = r.u32()
	u.Uid = r.u32()
	u.Gid = r.u32()
	u.System = r.systemMeta()
	u.UserMeta = r.stringMap("user metadata")
	if version == uploadCodecV2 {
		u.KMSContext = r.stringMap("KMS context")
		if r.err == nil && len(u.KMSContext) == 0 {
			r.fail("empty KMS context (written as version 1)")
		}
	}
	if err := r.done(); err != nil {
		return Upload{}, err
	}
	return u, nil
}

// encodePart leaves out the upload ID and number (the key carries them).
func encodePart(p *Part) []byte {
	b := []byte{codecV1}
	b = binary.AppendUvarint(b, uint64(p.Ino))
	b = binary.AppendUvarint(b, p.Size)
	b = append(b, p.MD5[:]...)
	b = appendVarint(b, p.Uploaded)
	return b
}

func decodePart(number uint32, b []byte) (Part, error) {
	r := newReader("part", b)
	p := Part{Number: number}
	p.Ino = Ino(r.uvarint())
	p.Size = r.uvarint()
	r.fixed(p.MD5[:])
	p.Uploaded = r.varint()
	if err := r.done(); err != nil {
		return Part{}, err
	}
	return p, nil
}

func encodeUploadIndex() []byte { return []byte{codecV1} }

func decodeUploadIndex(b []byte) error { return newReader("upload index", b).done() }

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

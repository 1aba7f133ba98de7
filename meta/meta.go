// Package meta keeps all of ssefs' metadata in an embedded, encrypted Badger store:
// inodes, directory entries, chunk maps, sealed keys (as opaque bytes), xattrs, symlink
// targets, bucket configs and orphans. Every namespace change is one transaction.
package meta

import "errors"

// Ino is an inode number. RootIno is the root of the store (its children are buckets).
type Ino uint64

const RootIno Ino = 1

// ErrNotFound is returned (wrapped) when a key is absent.
var ErrNotFound = errors.New("meta: not found")

// FormatVersion is the on-disk layout version written into the superblock.
const FormatVersion = 1

// Inode is one file, directory, symlink or special file.
type Inode struct {
	Ino       Ino
	Mode      uint32 // S_IFMT bits | permission bits (syscall.S_IF*)
	Uid, Gid  uint32
	Nlink     uint32
	Rdev      uint32
	Size      uint64
	Atime     int64 // unix nanoseconds
	Mtime     int64
	Ctime     int64
	Gen       uint64   // generation, for NFS-style handles and FUSE
	Parent    Ino      // directories: their parent; others: the parent they were created in
	Bucket    Ino      // the bucket directory this inode belongs to (0 for the root; a bucket's own ino for a bucket)
	FileID    [16]byte // random per file; binds chunk keys and the sealed key to this file
	ChunkSize uint32   // plaintext bytes per chunk, fixed when the file is created
}

// Entry is one name in a directory.
type Entry struct {
	Name string
	Ino  Ino
	Mode uint32 // S_IFMT bits of the child, for readdir's d_type
}

// Chunk is one element of a file's chunk map.
type Chunk struct {
	Index     uint64
	Object    [16]byte // object ID in the object store
	Version   uint64   // bound into the chunk key; new on every rewrite
	PlainLen  uint32   // plaintext bytes that count (a truncate may shorten it without a rewrite)
	StoredLen uint32   // ciphertext bytes of the object
	// Inline, when set, is the chunk's ciphertext itself, kept in this record instead of
	// in an object: a tiny file then costs no object to create, sync and delete. Object
	// is then an ID no stored object has; it still names this version of the chunk.
	Inline []byte
}

// BucketConfig is a bucket's settings.
type BucketConfig struct {
	DefaultKey string // external key name for new files; "" means the process default
}

// RotationJob is a key rotation in progress, kept so that an interrupted one resumes
// where it stopped. Files are rotated in inode order; Next is the first not yet done.
type RotationJob struct {
	Started              int64 // unix nanoseconds; files sealed since then are already fresh
	Bucket               string
	FromKey, ToKey       string
	Next                 Ino
	Total, Done, Skipped uint64
}

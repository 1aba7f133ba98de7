package meta

import (
	"fmt"
	"strings"
)

// Scans and deletions for fsck. The engine never needs them: it reaches every record
// through an inode it holds. fsck must also find records whose inode (or upload) is gone,
// which only a scan of a whole key range can.

// RecordKind names a kind of record that is keyed by an inode number.
type RecordKind string

// The per-inode record kinds RecordOwners reports.
const (
	RecordChunks       RecordKind = "chunk records"
	RecordXattrs       RecordKind = "xattrs"
	RecordSealedKey    RecordKind = "sealed key"
	RecordSymlink      RecordKind = "symlink target"
	RecordBucketConfig RecordKind = "bucket config"
	RecordOrphan       RecordKind = "orphan-list entry"
	RecordObject       RecordKind = "S3 object record"
)

var recordPrefixes = []struct {
	kind RecordKind
	pfx  byte
}{
	{RecordChunks, pfxChunk}, {RecordXattrs, pfxXattr}, {RecordSealedKey, pfxSealedKey},
	{RecordSymlink, pfxSymlink}, {RecordBucketConfig, pfxBucket}, {RecordOrphan, pfxOrphan},
	{RecordObject, pfxObject},
}

// RecordOwners visits, kind by kind and in inode order within a kind, every inode number
// that has at least one record of that kind, whether or not the inode itself exists.
// Kinds with many records per inode (chunks, xattrs) are skipped over inode by inode, so
// the cost is one seek per owner, not one step per record.
func (tx *Tx) RecordOwners(fn func(kind RecordKind, ino Ino) bool) error {
	for _, rp := range recordPrefixes {
		cont, err := tx.recordOwners(rp.pfx, func(ino Ino) bool { return fn(rp.kind, ino) })
		if err != nil {
			return wrap(err, "owners of %s", rp.kind)
		}
		if !cont {
			return nil
		}
	}
	return nil
}

func (tx *Tx) recordOwners(pfx byte, fn func(Ino) bool) (bool, error) {
	seek := inoKey(pfx, 0)
	batch := make([]Ino, 0, scanBatch)
	for {
		// As scan does: collect a batch, close the iterator, then call fn, so fn may use tx.
		it := tx.prefixIterator([]byte{pfx})
		batch = batch[:0]
		done := true
		for it.Seek(seek); it.Valid(); {
			k := it.Item().Key()
			if len(k) < 9 {
				it.Close()
				return false, fmt.Errorf("%w: short key %x", ErrCorrupt, k)
			}
			ino := Ino(be.Uint64(k[1:9]))
			batch = append(batch, ino)
			if ino == ^Ino(0) {
				break
			}
			seek = inoKey(pfx, ino+1)
			if len(batch) == scanBatch {
				done = false
				break
			}
			it.Seek(seek)
		}
		it.Close()
		for _, ino := range batch {
			if !fn(ino) {
				return false, nil
			}
		}
		if done {
			return true, nil
		}
	}
}

// DeleteInodeRecords removes every record keyed by ino except its chunk records, whether
// or not the inode exists: what fsck does to the leftovers of an inode that is gone. Chunk
// records are left to the caller, who must delete them in bounded batches (DeleteChunk)
// and their objects only after that commit is durable.
func (tx *Tx) DeleteInodeRecords(ino Ino) error {
	tx.freeing()
	var keys [][]byte
	err := tx.scan(xattrPrefix(ino), nil, true, func(k, _ []byte) (bool, error) {
		keys = append(keys, k)
		return true, nil
	})
	if err != nil {
		return wrap(err, "delete records of inode %d: xattrs", ino)
	}
	keys = append(keys, sealedKeyKey(ino), symlinkKey(ino), bucketKey(ino), orphanKey(ino), objectKey(ino), inodeKey(ino))
	for _, k := range keys {
		if err := tx.del(k); err != nil {
			return wrap(err, "delete records of inode %d", ino)
		}
	}
	return nil
}

// AllEntries visits every directory entry, in (parent, name) order.
func (tx *Tx) AllEntries(fn func(parent Ino, e Entry) bool) error {
	err := tx.scan([]byte{pfxEntry}, nil, false, func(k, v []byte) (bool, error) {
		parent, name, err := decodeEntryKey(k)
		if err != nil {
			return false, err
		}
		e, err := decodeEntry(name, v)
		if err != nil {
			return false, fmt.Errorf("entry %d/%q: %w", parent, name, err)
		}
		return fn(parent, e), nil
	})
	return wrap(err, "entries")
}

// AllParts visits every part record, in (upload, number) order, whether or not its upload
// record exists.
func (tx *Tx) AllParts(fn func(id UploadID, p Part) bool) error {
	err := tx.scan([]byte{pfxPart}, nil, false, func(k, v []byte) (bool, error) {
		id, n, err := decodePartKey(k)
		if err != nil {
			return false, err
		}
		p, err := decodePart(n, v)
		if err != nil {
			return false, fmt.Errorf("upload %x part %d: %w", id[:], n, err)
		}
		return fn(id, p), nil
	})
	return wrap(err, "parts")
}

// DeletePart removes one part record (not its inode).
func (tx *Tx) DeletePart(id UploadID, number uint32) error {
	tx.freeing()
	return wrap(tx.del(partKey(id, number)), "delete upload %x part %d", id[:], number)
}

// UploadIndexEntry is one entry of the per-bucket index of multipart uploads (what
// ListMultipartUploads walks), as stored: it names an upload, whose record may disagree.
type UploadIndexEntry struct {
	Bucket Ino
	Key    string
	ID     UploadID
}

// AllUploadIndex visits every upload index entry, in (bucket, key, ID) order, whether or
// not the upload it names exists.
func (tx *Tx) AllUploadIndex(fn func(UploadIndexEntry) bool) error {
	err := tx.scan([]byte{pfxUploadKey}, nil, false, func(k, v []byte) (bool, error) {
		bucket, key, id, err := decodeUploadIndexKey(k)
		if err != nil {
			return false, err
		}
		if err := decodeUploadIndex(v); err != nil {
			return false, fmt.Errorf("upload index entry %x: %w", k, err)
		}
		return fn(UploadIndexEntry{Bucket: bucket, Key: key, ID: id}), nil
	})
	return wrap(err, "upload index")
}

// PutUploadIndex writes one upload index entry (PutUpload writes it with the record; fsck
// restores one that is missing).
func (tx *Tx) PutUploadIndex(e UploadIndexEntry) error {
	if e.Bucket == 0 || strings.IndexByte(e.Key, 0) >= 0 {
		return fmt.Errorf("meta: put upload index entry for %x: bucket %d, key %q: %w", e.ID[:], e.Bucket, e.Key, ErrCorrupt)
	}
	return wrap(tx.set(uploadIndexKey(e.Bucket, e.Key, e.ID), encodeUploadIndex()), "put upload %x index", e.ID[:])
}

// DeleteUploadIndex removes one upload index entry and nothing else; a missing one is not
// an error.
func (tx *Tx) DeleteUploadIndex(e UploadIndexEntry) error {
	tx.freeing()
	return wrap(tx.del(uploadIndexKey(e.Bucket, e.Key, e.ID)), "delete upload %x index", e.ID[:])
}

// AllObjects visits every S3 object record, in inode order, whether or not its inode
// exists.
func (tx *Tx) AllObjects(fn func(ino Ino, o Object) bool) error {
	err := tx.scan([]byte{pfxObject}, nil, false, func(k, v []byte) (bool, error) {
		ino, err := decodeInoKey(pfxObject, k)
		if err != nil {
			return false, err
		}
		o, err := decodeObject(v)
		if err != nil {
			return false, fmt.Errorf("inode %d: %w", ino, err)
		}
		return fn(ino, o), nil
	})
	return wrap(err, "object records")
}

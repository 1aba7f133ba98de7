package meta

import (
	"errors"
	"fmt"
)

// UploadID identifies a multipart upload.
type UploadID [16]byte

// Upload is the state of a multipart upload in progress: where the object goes and how
// it is to be encrypted. Its parts are Part records.
type Upload struct {
	ID        UploadID
	Bucket    Ino
	Key       string
	Initiated int64 // unix nanoseconds
	// Encryption the parts and the final object use: SSE type, resolved external key
	// name (SSE-KMS / SSE-S3), and for SSE-C the client key's MD5.
	SSEType      string
	KeyName      string
	ClientKeyMD5 [16]byte
	// Owner of the final object.
	Mode, Uid, Gid uint32
	System         SystemMeta
	UserMeta       map[string]string
	// KMSContext is the user's encryption context (SSE-KMS only) the parts and the
	// final object are sealed with; nil if none.
	KMSContext map[string]string
}

// Part is one uploaded part: an unlinked inode that holds the part's (encrypted)
// content. The part record owns the inode: deleting the record must delete the inode.
type Part struct {
	Number   uint32
	Ino      Ino
	Size     uint64
	MD5      [16]byte
	Uploaded int64 // unix nanoseconds
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Upload returns an upload's record.
func (tx *Tx) Upload(id UploadID) (Upload, error) {
	v, err := tx.get(uploadKey(id))
	if err != nil {
		return Upload{}, notFound(err, "upload %x", id[:])
	}
	u, err := decodeUpload(id, v)
	return u, wrap(err, "upload %x", id[:])
}

// PutUpload stores an upload's record and its entry in the bucket's index. The bucket
// and key of an upload never change.
func (tx *Tx) PutUpload(u *Upload) error {
	if err := tx.set(uploadKey(u.ID), encodeUpload(u)); err != nil {
		return wrap(err, "put upload %x", u.ID[:])
	}
	return wrap(tx.set(uploadIndexKey(u.Bucket, u.Key, u.ID), encodeUploadIndex()), "put upload %x index", u.ID[:])
}

// DeleteUpload removes an upload's record, its index entry and its part records, and
// returns the parts so the caller can delete their inodes.
func (tx *Tx) DeleteUpload(id UploadID) ([]Part, error) {
	tx.freeing()
	u, err := tx.Upload(id)
	if err != nil {
		return nil, err
	}
	var parts []Part
	if err := tx.Parts(id, 0, func(p Part) bool { parts = append(parts, p); return true }); err != nil {
		return nil, err
	}
	for _, p := range parts {
		if err := tx.del(partKey(id, p.Number)); err != nil {
			return nil, wrap(err, "delete upload %x part %d", id[:], p.Number)
		}
	}
	if err := tx.del(uploadIndexKey(u.Bucket, u.Key, id)); err != nil {
		return nil, wrap(err, "delete upload %x index", id[:])
	}
	return parts, wrap(tx.del(uploadKey(id)), "delete upload %x", id[:])
}

// Uploads visits a bucket's uploads in (key, ID) order, starting with key `from`
// (inclusive; "" = the first).
func (tx *Tx) Uploads(bucket Ino, from string, fn func(key string, id UploadID) bool) error {
	prefix := uploadIndexPrefix(bucket)
	var start []byte
	if from != "" {
		start = append(append(uploadIndexPrefix(bucket), from...), 0)
	}
	err := tx.scan(prefix, start, false, func(k, v []byte) (bool, error) {
		_, key, id, err := decodeUploadIndexKey(k)
		if err != nil {
			return false, err
		}
		if err := decodeUploadIndex(v); err != nil {
			return false, err
		}
		return fn(key, id), nil
	})
	return wrap(err, "uploads of bucket %d", bucket)
}

// HasUploads tells whether a bucket has uploads in progress.
func (tx *Tx) HasUploads(bucket Ino) (bool, error) {
	found := false
	err := tx.scan(uploadIndexPrefix(bucket), nil, true, func([]byte, []byte) (bool, error) {
		found = true
		return false, nil
	})
	return found, wrap(err, "uploads of bucket %d", bucket)
}

// Part returns one part of an upload.
func (tx *Tx) Part(id UploadID, number uint32) (Part, error) {
	v, err := tx.get(partKey(id, number))
	if err != nil {
		return Part{}, notFound(err, "upload %x part %d", id[:], number)
	}
	p, err := decodePart(number, v)
	return p, wrap(err, "upload %x part %d", id[:], number)
}

// PutPart stores (or replaces) a part record.
func (tx *Tx) PutPart(id UploadID, p *Part) error {
	if p.Ino == 0 {
		return fmt.Errorf("meta: put upload %x part %d: inode number 0", id[:], p.Number)
	}
	return wrap(tx.set(partKey(id, p.Number), encodePart(p)), "put upload %x part %d", id[:], p.Number)
}

// Parts visits an upload's parts in number order, those numbered above `after`.
func (tx *Tx) Parts(id UploadID, after uint32, fn func(Part) bool) error {
	if after == ^uint32(0) {
		return nil
	}
	err := tx.scan(partPrefix(id), partKey(id, after+1), false, func(k, v []byte) (bool, error) {
		_, n, err := decodePartKey(k)
		if err != nil {
			return false, err
		}
		p, err := decodePart(n, v)
		if err != nil {
			return false, err
		}
		return fn(p), nil
	})
	return wrap(err, "parts of upload %x", id[:])
}

// AllUploads visits every upload record (for fsck: part inodes are referenced only
// from here).
func (tx *Tx) AllUploads(fn func(Upload) bool) error {
	err := tx.scan([]byte{pfxUpload}, nil, false, func(k, v []byte) (bool, error) {
		id, err := decodeUploadKey(k)
		if err != nil {
			return false, err
		}
		u, err := decodeUpload(id, v)
		if err != nil {
			return false, err
		}
		return fn(u), nil
	})
	return wrap(err, "uploads")
}

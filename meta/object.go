package meta

import "fmt"

// SystemMeta is the S3 system metadata an object keeps (not visible as user xattrs).
type SystemMeta struct {
	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	Expires            string
}

// Object flags.
const (
	// ObjectImplicitDir marks a directory that an S3 write created as a parent of a key:
	// it is removed again when it becomes empty through S3 (S3 has no empty implicit
	// prefixes). Directories without the flag (mkdir through the mount, a `dir/` PUT) stay.
	ObjectImplicitDir uint32 = 1 << 0
)

// Object is the per-inode S3 record: what the S3 view knows of a file or directory
// beyond the inode and its xattrs.
type Object struct {
	// ETag of the content as it was written through S3: hex MD5 for a single PUT,
	// MD5-of-MD5s "-N" for a multipart upload. "" once the content changed through
	// the mount (dropped in the transaction that commits the change).
	ETag string
	// Size is the content size the ETag describes.
	Size   uint64
	Flags  uint32
	System SystemMeta
}

// Object returns ino's S3 record (ErrNotFound if it has none).
func (tx *Tx) Object(ino Ino) (Object, error) {
	v, err := tx.get(objectKey(ino))
	if err != nil {
		return Object{}, notFound(err, "inode %d object record", ino)
	}
	o, err := decodeObject(v)
	return o, wrap(err, "inode %d object record", ino)
}

// PutObject stores ino's S3 record.
func (tx *Tx) PutObject(ino Ino, o *Object) error {
	if ino == 0 {
		return fmt.Errorf("meta: put object record: inode number 0")
	}
	return wrap(tx.set(objectKey(ino), encodeObject(o)), "put inode %d object record", ino)
}

// DeleteObject removes ino's S3 record; a missing one is not an error.
func (tx *Tx) DeleteObject(ino Ino) error {
	tx.freeing()
	return wrap(tx.del(objectKey(ino)), "delete inode %d object record", ino)
}

// DropETag forgets the ETag of ino's S3 record, if it has one: its content changed.
func (tx *Tx) DropETag(ino Ino) error {
	o, err := tx.Object(ino)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	if o.ETag == "" {
		return nil
	}
	o.ETag, o.Size = "", 0
	return tx.PutObject(ino, &o)
}

// EntriesFrom lists a directory in bytewise name order starting at `from` (inclusive;
// "" = the first), for listings that must start at a name that may itself exist.
func (tx *Tx) EntriesFrom(parent Ino, from string, fn func(Entry) bool) error {
	var start []byte
	if from != "" {
		start = entryKey(parent, from)
	}
	err := tx.scan(entryPrefix(parent), start, false, func(k, v []byte) (bool, error) {
		_, name, err := decodeEntryKey(k)
		if err != nil {
			return false, err
		}
		e, err := decodeEntry(name, v)
		if err != nil {
			return false, fmt.Errorf("%q: %w", name, err)
		}
		return fn(e), nil
	})
	return wrap(err, "entries of %d", parent)
}

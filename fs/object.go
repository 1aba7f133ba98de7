package fs

// The engine's S3-shaped API: objects are files, keys are paths. Everything the S3
// frontend needs is here, so that it never touches the metadata store, the KMS or the
// object store, and every change is published to the other frontends.
//
// Mapping: bucket = top-level directory; key "a/b/c.txt" = file a/b/c.txt; a key ending
// in "/" with an empty body = a directory. Only regular files and explicit directories
// are objects: symlinks, FIFOs, sockets and device nodes made through the mount are not
// listed and cannot be read, written or deleted through these calls.
//
// Directories a PutObject creates as parents of a key are implicit (meta.ObjectImplicitDir
// in their object record): DeleteObject removes them again when they become empty, up to
// the bucket, as S3 has no empty prefixes. Directories made by mkdir through the mount or
// by a "dir/" PUT are explicit and stay. A "dir/" PUT is an object "dir/" (listed, HEAD
// works) until a DELETE of "dir/" (which, if the directory still holds keys, only turns
// it implicit); a directory made through the mount is an object "dir/" while it is empty
// (as MinIO shows them). See isMarkerDir.

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"syscall"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
)

// S3-specific error kinds. Each is returned wrapped together with one of the engine's
// error kinds (ErrNotExist, ErrInvalid), so errors.Is finds both: a frontend that knows
// S3 asks for the specific one, anything else sees the general one.
var (
	ErrNoSuchBucket     = errors.New("no such bucket")                                            // with ErrNotExist
	ErrNoSuchUpload     = errors.New("no such multipart upload")                                  // with ErrNotExist
	ErrInvalidPart      = errors.New("a listed part was not uploaded or its ETag does not match") // with ErrInvalid
	ErrInvalidPartOrder = errors.New("parts are not listed in ascending order")                   // with ErrInvalid
	ErrEntityTooSmall   = errors.New("a part other than the last is smaller than the minimum")    // with ErrInvalid
	ErrNotSSEC          = errors.New("an SSE-C key was given for an object that is not SSE-C")    // with ErrInvalid
)

const (
	maxKeyLen = 1024
	// emptyMD5 is the ETag of empty content (directory markers).
	emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"
)

// SystemMeta is the S3 system metadata kept per object (not visible as an xattr).
type SystemMeta = meta.SystemMeta

// SSE says how a new object is encrypted.
type SSE struct {
	// Type is keys.SSES3, keys.SSEKMS or keys.SSEC; "" means the bucket's default
	// (SSE-KMS under the bucket's default key if it has one, else SSE-S3).
	Type string
	// KeyName is the external key for SSE-KMS; "" means the bucket's default key, then
	// the process default key.
	KeyName string
	// ClientKey is the customer's key for SSE-C (and only for SSE-C).
	ClientKey *[32]byte
	// Context is the user's encryption context (S3 x-amz-server-side-encryption-context)
	// for SSE-KMS, and only for SSE-KMS (ErrInvalid otherwise). The object's data key is
	// bound to it and to the bucket, and the record keeps it (ObjectInfo.KMSContext). The
	// key ReservedContextKey is ssefs's own and refused (ErrInvalid), as are keys or
	// values that are not UTF-8.
	Context map[string]string
}

// ReservedContextKey is the encryption-context key the engine binds every data key to
// (its value is the bucket): a user context may not use it.
const ReservedContextKey = keys.ReservedContextKey

// PutOptions are the settings of a new object.
type PutOptions struct {
	SSE SSE
	// UserMeta is the x-amz-meta-* metadata without the prefix, names lower-cased. It is
	// stored as user.<name> xattrs, so the mount sees it.
	UserMeta map[string]string
	System   SystemMeta
	// Owner of the file (permission bits of Mode; 0644 if none) and of the parent
	// directories created for it (0755, same uid/gid).
	Owner Owner
}

// GetOptions are what reading an object needs.
type GetOptions struct {
	// ClientKey is required for an SSE-C object (missing: ErrAccess wrapping
	// keys.ErrClientKeyRequired; wrong: ErrAccess wrapping keys.ErrClientKeyMismatch)
	// and refused for any other (ErrInvalid wrapping ErrNotSSEC).
	ClientKey *[32]byte
	// Check, if set, is called by OpenObject with the info of the object it opened,
	// before any byte can be read, and its error returned as is: preconditions
	// (x-amz-copy-source-if-*) hold for exactly the version that is read, not for one
	// that a racing write replaced after a separate stat.
	Check func(ObjectInfo) error
}

// ObjectInfo describes an object.
type ObjectInfo struct {
	Bucket, Key string
	Ino         Ino
	IsDir       bool // a "dir/" key: an explicit directory
	Size        int64
	ModTime     time.Time
	// ETag, without quotes. The hex MD5 of the content for a single PUT (or copy),
	// MD5-of-MD5s "-N" for a multipart upload, as S3 has them. Once the content changed
	// through the mount the engine no longer knows an MD5 and returns a synthetic ETag:
	// hex MD5 over the file ID, size and mtime, with "-1" appended. It is NOT an MD5 of
	// the content (AWS does the same for SSE-KMS and SSE-C objects); the "-1" suffix
	// makes clients that verify downloads against plain 32-hex ETags (rclone, s3cmd)
	// treat it as opaque instead of reporting corruption. It changes whenever size or
	// mtime change.
	ETag string
	// ETagIsMD5 tells whether ETag is the plain MD5 of the content.
	ETagIsMD5 bool
	System    SystemMeta
	UserMeta  map[string]string // nil in listings
	// Encryption (regular files; empty in listings): SSE type, the external key name
	// (SSE-S3 and SSE-KMS) and for SSE-C the client key's MD5.
	SSEType      string
	KeyName      string
	ClientKeyMD5 [16]byte
	// KMSContext is the user's encryption context of an SSE-KMS object; nil if none.
	KMSContext map[string]string
	Mode       uint32
	Uid, Gid   uint32
}

// ValidObjectKey refuses a key that cannot be a path: empty, longer than 1024 bytes,
// holding NUL, starting with "/", with an empty segment ("a//b"), a "." or ".." segment,
// or a segment longer than 255 bytes. A trailing "/" is allowed (a directory key).
// Keys that collide with what exists (a file "a" and a key "a/b") are refused by the
// writing calls with ErrNotDir or ErrIsDir. Nothing is stored on refusal.
func ValidObjectKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty object key: %w", ErrInvalid)
	case len(key) > maxKeyLen:
		return fmt.Errorf("object key of %d bytes, the limit is %d: %w", len(key), maxKeyLen, ErrNameTooLong)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("object key %q holds NUL: %w", key, ErrInvalid)
	case key[0] == '/':
		return fmt.Errorf("object key %q starts with '/': %w", key, ErrInvalid)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(key, "/"), "/") {
		switch {
		case seg == "":
			return fmt.Errorf("object key %q has an empty segment: %w", key, ErrInvalid)
		case seg == "." || seg == "..":
			return fmt.Errorf("object key %q has a %q segment: %w", key, seg, ErrInvalid)
		case len(seg) > maxNameLen:
			return fmt.Errorf("object key %q has a segment of %d bytes, the limit is %d: %w", key, len(seg), maxNameLen, ErrNameTooLong)
		}
	}
	return nil
}

// splitKey cuts a valid key into its parent directories and its last segment.
func splitKey(key string) (dirs []string, name string, isDir bool) {
	isDir = strings.HasSuffix(key, "/")
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	return segs[:len(segs)-1], segs[len(segs)-1], isDir
}

func noSuchBucket(bucket string) error {
	return &wrapped{ErrNotExist, fmt.Errorf("bucket %q: %w", bucket, ErrNoSuchBucket)}
}

// s3Bucket loads a bucket's directory inode by name.
func s3Bucket(tx *meta.Tx, bucket string) (meta.Inode, error) {
	if validName(bucket) != nil {
		return meta.Inode{}, noSuchBucket(bucket)
	}
	ent, err := tx.Lookup(meta.RootIno, bucket)
	if errors.Is(err, meta.ErrNotFound) || err == nil && !isDirMode(ent.Mode) {
		return meta.Inode{}, noSuchBucket(bucket)
	}
	if err != nil {
		return meta.Inode{}, err
	}
	in, err := tx.Inode(ent.Ino)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Inode{}, noSuchBucket(bucket)
	}
	return in, err
}

// objectRecord returns ino's S3 record; ok is false if it has none.
func objectRecord(tx *meta.Tx, ino meta.Ino) (rec meta.Object, ok bool, err error) {
	rec, err = tx.Object(ino)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Object{}, false, nil
	}
	return rec, err == nil, err
}

func isImplicitDir(tx *meta.Tx, ino meta.Ino) (bool, error) {
	rec, ok, err := objectRecord(tx, ino)
	return ok && rec.Flags&meta.ObjectImplicitDir != 0, err
}

// isDisposableDir tells whether a directory only exists to hold keys under it, and holds
// none now (implicit and empty): an object of the same name may replace it.
func isDisposableDir(tx *meta.Tx, ino meta.Ino) (bool, error) {
	implicit, err := isImplicitDir(tx, ino)
	if err != nil || !implicit {
		return false, err
	}
	has, err := tx.HasEntries(ino)
	return !has, err
}

// isMarkerDir tells whether a directory is itself an object, the key "dir/": one put as
// "dir/" through S3 (its record holds the marker's ETag) is, as long as it stays
// explicit; one made through the mount is while it is empty (as MinIO shows them).
// Implicit directories never are.
func isMarkerDir(tx *meta.Tx, ino meta.Ino) (bool, error) {
	rec, ok, err := objectRecord(tx, ino)
	if err != nil || ok && rec.Flags&meta.ObjectImplicitDir != 0 {
		return false, err
	}
	if ok && rec.ETag != "" {
		return true, nil
	}
	has, err := tx.HasEntries(ino)
	return !has, err
}

// ---- encryption of new objects ----

// sealSpec is a resolved SSE choice.
type sealSpec struct {
	sseType   string
	keyName   string       // SSE-S3 / SSE-KMS: the external key
	clientKey *[32]byte    // SSE-C
	kmsCtx    keys.Context // SSE-KMS: the user's context, nil if none
}

// resolveSSE turns what a request asked for into the key that seals: the named key,
// else the bucket's default key, else the process default key.
func (e *Engine) resolveSSE(bucket meta.Ino, s SSE) (sealSpec, error) {
	if s.ClientKey != nil && s.Type != keys.SSEC {
		return sealSpec{}, fmt.Errorf("an SSE-C key with SSE type %q: %w", s.Type, ErrInvalid)
	}
	if len(s.Context) > 0 {
		// Only an explicit SSE-KMS takes a context: S3 has it so, and a bucket default
		// that is not SSE-KMS would otherwise drop it silently.
		if s.Type != keys.SSEKMS {
			return sealSpec{}, fmt.Errorf("an encryption context with SSE type %q (only %s takes one): %w", s.Type, keys.SSEKMS, ErrInvalid)
		}
		if err := keys.ValidateContext(s.Context); err != nil {
			return sealSpec{}, fmt.Errorf("encryption context: %w: %w", err, ErrInvalid)
		}
	}
	var defaultKey string
	if s.Type == "" || s.Type == keys.SSEKMS && s.KeyName == "" {
		err := e.view(func(tx *meta.Tx) error {
			cfg, err := tx.BucketConfig(bucket)
			if errors.Is(err, meta.ErrNotFound) {
				return nil
			}
			defaultKey = cfg.DefaultKey
			return err
		})
		if err != nil {
			return sealSpec{}, err
		}
	}
	spec := sealSpec{sseType: s.Type, keyName: s.KeyName}
	switch s.Type {
	case "":
		spec.sseType, spec.keyName = keys.SSES3, ""
		if defaultKey != "" {
			spec.sseType, spec.keyName = keys.SSEKMS, defaultKey
		}
	case keys.SSES3:
		if s.KeyName != "" {
			return sealSpec{}, fmt.Errorf("a key name with SSE-S3: %w", ErrInvalid)
		}
	case keys.SSEKMS:
		if spec.keyName == "" {
			spec.keyName = defaultKey
		}
		if len(s.Context) > 0 {
			// A copy: the caller may reuse its map while the object is written.
			spec.kmsCtx = maps.Clone(keys.Context(s.Context))
		}
	case keys.SSEC:
		if s.ClientKey == nil {
			return sealSpec{}, fmt.Errorf("SSE-C without a key: %w", ErrInvalid)
		}
		if s.KeyName != "" {
			return sealSpec{}, fmt.Errorf("a key name with SSE-C: %w", ErrInvalid)
		}
		spec.clientKey = s.ClientKey
		return spec, nil
	default:
		return sealSpec{}, fmt.Errorf("SSE type %q: %w", s.Type, ErrInvalid)
	}
	if spec.keyName == "" {
		spec.keyName = e.sealer.DefaultKey()
	}
	return spec, nil
}

// sealFor makes a new OEK for fileID and seals it as spec says.
func (e *Engine) sealFor(ctx context.Context, spec sealSpec, bucketName string, fileID [16]byte) ([32]byte, keys.SealedKey, []byte, error) {
	oek := keys.NewOEK()
	var sk keys.SealedKey
	var err error
	if spec.sseType == keys.SSEC {
		sk, err = e.sealer.SealWithClientKey(bucketName, fileID, *spec.clientKey, oek)
	} else {
		sk, err = e.sealer.SealWithContext(ctx, spec.sseType, spec.keyName, bucketName, spec.kmsCtx, fileID, oek)
	}
	if err != nil {
		return oek, sk, nil, classify(fmt.Errorf("sealing the key of a new object in bucket %q (%s %q): %w", bucketName, spec.sseType, spec.keyName, err))
	}
	sealed, err := sk.MarshalBinary()
	return oek, sk, sealed, err
}

func filePerm(o Owner) uint32 {
	if p := o.Mode &^ syscall.S_IFMT; p != 0 {
		return p
	}
	return 0o644
}

// newOrphanFile creates an unlinked regular file in bucket b, sealed as spec says, and
// opens it. It is on the orphan list until linked (linkObject) or claimed by a part
// record, so a crash, an error or an abandoned handle reclaims its chunks.
func (e *Engine) newOrphanFile(ctx context.Context, b meta.Inode, bucketName string, spec sealSpec, o Owner) (*Handle, error) {
	fileID := keys.NewFileID()
	oek, sk, sealed, err := e.sealFor(ctx, spec, bucketName, fileID)
	if err != nil {
		return nil, err
	}
	ino, err := e.db.NextIno()
	if err != nil {
		return nil, classify(fmt.Errorf("allocating inode: %w", err))
	}
	t := now()
	in := meta.Inode{
		Ino: ino, Mode: syscall.S_IFREG | filePerm(o), Uid: o.Uid, Gid: o.Gid,
		Atime: t, Mtime: t, Ctime: t, Gen: 1, Parent: b.Ino, Bucket: b.Ino,
		FileID: fileID, ChunkSize: e.chunkSize,
	}
	// A fresh inode nothing refers to yet: its transaction needs no namespace lock.
	err = e.update(func(tx *meta.Tx) error {
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		if err := tx.PutSealedKey(in.Ino, sealed); err != nil {
			return err
		}
		return tx.AddOrphan(in.Ino)
	})
	if err != nil {
		return nil, fmt.Errorf("creating an object in bucket %q: %w", bucketName, err)
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	of := &openFile{e: e, inode: in, oek: oek, refs: 1, keyChecked: time.Now(), eofTrimmed: true} // new: nothing past its end
	if sk.SSEType == keys.SSEC {
		sum := sk.ClientKeyMD5
		of.sseC = &sum
	}
	e.orphans[uint64(ino)] = true
	e.files[uint64(ino)] = of
	return &Handle{of: of}, nil
}

// abandon drops what a handle on a never-linked file buffered and releases it, which
// deletes the orphan; its stored chunks are deleted with the next durable sync.
func (h *Handle) abandon() {
	of := h.of
	of.mu.Lock()
	// Sealed chunks are committed, and deleted with the orphan; their plaintext goes.
	if err := of.settle(context.Background()); err != nil {
		of.e.log.Warn("storing the chunks of an abandoned object failed", "ino", uint64(of.inode.Ino), "err", err)
	}
	for idx, buf := range of.dirty {
		of.release(buf)
		delete(of.dirty, idx)
	}
	of.changed = false
	of.mu.Unlock()
	if err := h.Release(context.Background()); err != nil {
		of.e.log.Warn("releasing an abandoned object failed; it is reclaimed at the next start", "ino", uint64(of.inode.Ino), "err", err)
	}
}

// fill streams body into the (new, empty) file behind h, one chunk at a time, and
// stores everything; it returns the size and MD5 of what it wrote. An error reading
// the body is returned wrapped as it came, so the frontend can recognise its own.
func (e *Engine) fill(ctx context.Context, h *Handle, body io.Reader) (int64, [16]byte, error) {
	var sum [16]byte
	cs := int(h.of.cs())
	buf := newBuffer(cs, cs) // pooled: a PUT of 4 KiB should not cost a fresh megabyte
	defer putBuffer(buf)
	hash := md5.New()
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return off, sum, err
		}
		n, err := readChunk(body, buf)
		if n > 0 {
			hash.Write(buf[:n])
			if _, werr := h.WriteAt(ctx, buf[:n], off); werr != nil {
				return off, sum, werr
			}
			off += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return off, sum, fmt.Errorf("reading the object body: %w", err)
		}
	}
	if err := h.Flush(ctx); err != nil {
		return off, sum, err
	}
	hash.Sum(sum[:0])
	return off, sum, nil
}

// readChunk fills buf from r. Unlike io.ReadFull it returns io.EOF for a body that ends
// (early or not) and every other error as it came: a body that itself fails with
// io.ErrUnexpectedEOF (a client that hung up mid-upload) must not pass for a short last
// chunk.
func readChunk(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ---- linking a finished object into the namespace ----

type linkReq struct {
	bucketName string
	bucket     meta.Ino
	dirs       []string
	name       string
	h          *Handle // the object's (orphan) file; nil for a directory marker
	rec        meta.Object
	userMeta   map[string]string
	owner      Owner
	// extra runs in the same transaction (multipart: retire the upload).
	extra func(tx *meta.Tx) error
}

// linkObject makes an object visible, in one transaction: it creates the missing parent
// directories (implicit), replaces what the key named before (whose inode is unlinked
// with the usual orphan semantics, so open handles keep reading it), links the new
// inode, and stores its object record and user metadata.
//
// Most PUTs name a key that does not exist yet: then nothing in memory (open files,
// kernel references, orphans) depends on the transaction, Badger's conflict detection
// alone keeps concurrent namespace changes consistent, and the transaction runs without
// nsMu, so concurrent PUTs commit in parallel instead of one after another. Replacing
// an existing entry decides from in-memory state whether the old inode stays (open) or
// goes, so that path runs under nsMu.
func (e *Engine) linkObject(ctx context.Context, r linkReq) (meta.Inode, error) {
	if r.h != nil && r.extra == nil {
		final, err := e.linkObjectTx(ctx, r, true)
		if !errors.Is(err, errNeedsNsMu) {
			return final, err
		}
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	return e.linkObjectTx(ctx, r, false)
}

// errNeedsNsMu stops linkObject's unlocked attempt at an existing entry.
var errNeedsNsMu = errors.New("replacing an entry needs the namespace lock")

func (e *Engine) linkObjectTx(ctx context.Context, r linkReq, unlocked bool) (meta.Inode, error) {
	var (
		changes []Change
		dropped []droppedInode
		final   meta.Inode
	)
	if unlocked {
		// A deferred create checks its name in one transaction and commits it in a later
		// one; this transaction adds names without nsMu, so it must not run in between
		// (stageMu). Only the transaction: what follows takes nsMu.
		e.stageMu.RLock()
	}
	err := e.update(func(tx *meta.Tx) error {
		changes, dropped = nil, nil
		t := now()
		dir, err := dirInode(tx, uint64(r.bucket))
		if errors.Is(err, ErrNotExist) || errors.Is(err, meta.ErrNotFound) {
			return noSuchBucket(r.bucketName)
		} else if err != nil {
			return err
		}
		if dir, err = e.mkdirAll(tx, dir, r.dirs, r.owner, &changes); err != nil {
			return err
		}
		if r.h == nil {
			final, err = e.putDirMarker(tx, &dir, r, t, &changes)
			return err
		}
		ent, err := tx.Lookup(dir.Ino, r.name)
		switch {
		case err == nil && unlocked:
			return errNeedsNsMu
		case err == nil:
			old, err := tx.Inode(ent.Ino)
			if err != nil {
				return err
			}
			if isDirMode(old.Mode) {
				disposable, err := isDisposableDir(tx, old.Ino)
				if err != nil {
					return err
				}
				if !disposable {
					return fmt.Errorf("key %q: a directory of that name exists: %w", r.name, ErrIsDir)
				}
				dir.Nlink--
			}
			if err := tx.DeleteEntry(dir.Ino, r.name); err != nil {
				return err
			}
			d, err := e.dropLink(tx, &old, t, true)
			if err != nil {
				return err
			}
			dropped = append(dropped, d)
			changes = append(changes, Change{Ino: uint64(old.Ino), Parent: uint64(dir.Ino), Name: r.name, Removed: true})
		case !errors.Is(err, meta.ErrNotFound):
			return err
		}
		in, err := tx.Inode(r.h.of.inode.Ino)
		if err != nil {
			return err
		}
		in.Nlink, in.Parent, in.Mtime, in.Ctime = 1, dir.Ino, t, t
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		if err := tx.RemoveOrphan(in.Ino); err != nil {
			return err
		}
		if err := addEntry(tx, &dir, r.name, &in); err != nil {
			return err
		}
		if err := tx.PutObject(in.Ino, &r.rec); err != nil {
			return err
		}
		if err := setUserMeta(tx, in.Ino, r.userMeta); err != nil {
			return err
		}
		if r.extra != nil {
			if err := r.extra(tx); err != nil {
				return err
			}
		}
		final = in
		changes = append(changes, Change{Ino: uint64(in.Ino), Parent: uint64(dir.Ino), Name: r.name})
		return nil
	})
	if unlocked {
		e.stageMu.RUnlock()
	}
	if err != nil {
		return meta.Inode{}, err
	}
	if r.h != nil {
		ino := uint64(final.Ino)
		if unlocked {
			// Between the commit and here the new name may have been unlinked again
			// (through the mount), which put the inode back on the orphan list: ask the
			// store, under the lock, which is current.
			e.nsMu.Lock()
			var in meta.Inode
			err := e.view(func(tx *meta.Tx) (err error) { in, err = tx.Inode(final.Ino); return err })
			if err == nil && in.Nlink > 0 {
				delete(e.orphans, ino)
			}
			e.nsMu.Unlock()
		} else {
			delete(e.orphans, ino)
		}
		of := r.h.of
		of.mu.Lock()
		of.inode.Nlink, of.inode.Parent, of.inode.Mtime, of.inode.Ctime = final.Nlink, final.Parent, final.Mtime, final.Ctime
		of.contentChanged = false // its content is what the record's ETag describes
		of.mu.Unlock()
	}
	for i := range dropped {
		e.afterDrop(dropped[i])
	}
	for _, c := range changes {
		e.publish(ctx, c)
	}
	return final, nil
}

// mkdirAll walks (creating where missing, as implicit directories) the directories
// dirs below dir, and returns the last one.
func (e *Engine) mkdirAll(tx *meta.Tx, dir meta.Inode, dirs []string, o Owner, changes *[]Change) (meta.Inode, error) {
	for i, seg := range dirs {
		ent, err := tx.Lookup(dir.Ino, seg)
		if err == nil {
			if !isDirMode(ent.Mode) {
				return dir, fmt.Errorf("key prefix %q is an object, not a directory: %w", strings.Join(dirs[:i+1], "/"), ErrNotDir)
			}
			if dir, err = dirInode(tx, uint64(ent.Ino)); err != nil {
				return dir, err
			}
			continue
		}
		if !errors.Is(err, meta.ErrNotFound) {
			return dir, err
		}
		in, err := e.prepareNew(dir, seg, Owner{Mode: syscall.S_IFDIR | 0o755, Uid: o.Uid, Gid: o.Gid})
		if err != nil {
			return dir, err
		}
		if err := tx.PutInode(&in); err != nil {
			return dir, err
		}
		if err := addEntry(tx, &dir, seg, &in); err != nil {
			return dir, err
		}
		if err := tx.PutObject(in.Ino, &meta.Object{Flags: meta.ObjectImplicitDir}); err != nil {
			return dir, err
		}
		*changes = append(*changes, Change{Ino: uint64(in.Ino), Parent: uint64(dir.Ino), Name: seg})
		dir = in
	}
	return dir, nil
}

// putDirMarker makes r.name under dir an explicit directory with r's metadata.
func (e *Engine) putDirMarker(tx *meta.Tx, dir *meta.Inode, r linkReq, t int64, changes *[]Change) (meta.Inode, error) {
	var in meta.Inode
	ent, err := tx.Lookup(dir.Ino, r.name)
	switch {
	case err == nil:
		if !isDirMode(ent.Mode) {
			return in, fmt.Errorf("key %q: an object of that name exists: %w", r.name+"/", ErrNotDir)
		}
		if in, err = tx.Inode(ent.Ino); err != nil {
			return in, err
		}
		names, err := tx.Xattrs(in.Ino)
		if err != nil {
			return in, err
		}
		for _, n := range names {
			if strings.HasPrefix(n, "user.") {
				if err := tx.RemoveXattr(in.Ino, n); err != nil {
					return in, err
				}
			}
		}
		in.Ctime = t
		if err := tx.PutInode(&in); err != nil {
			return in, err
		}
	case errors.Is(err, meta.ErrNotFound):
		o := Owner{Mode: syscall.S_IFDIR | 0o755, Uid: r.owner.Uid, Gid: r.owner.Gid}
		if in, err = e.prepareNew(*dir, r.name, o); err != nil {
			return in, err
		}
		if err := tx.PutInode(&in); err != nil {
			return in, err
		}
		if err := addEntry(tx, dir, r.name, &in); err != nil {
			return in, err
		}
	default:
		return in, err
	}
	if err := tx.PutObject(in.Ino, &r.rec); err != nil {
		return in, err
	}
	if err := setUserMeta(tx, in.Ino, r.userMeta); err != nil {
		return in, err
	}
	*changes = append(*changes, Change{Ino: uint64(in.Ino), Parent: uint64(dir.Ino), Name: r.name})
	return in, nil
}

func checkUserMeta(m map[string]string) error {
	for k, v := range m {
		name := "user." + k
		switch {
		case k == "" || strings.IndexByte(k, 0) >= 0:
			return fmt.Errorf("user metadata name %q: %w", k, ErrInvalid)
		case len(name) > maxXattrNameLen:
			return fmt.Errorf("user metadata name of %d bytes: %w", len(k), ErrNameTooLong)
		case len(v) > maxXattrValueLen:
			return fmt.Errorf("user metadata value of %d bytes: %w", len(v), ErrTooBig)
		}
	}
	return nil
}

func setUserMeta(tx *meta.Tx, ino meta.Ino, m map[string]string) error {
	for k, v := range m {
		if err := tx.SetXattr(ino, "user."+k, []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

func userMetaOf(tx *meta.Tx, ino meta.Ino) (map[string]string, error) {
	names, err := tx.Xattrs(ino)
	if err != nil {
		return nil, err
	}
	var m map[string]string
	for _, n := range names {
		if k, ok := strings.CutPrefix(n, "user."); ok {
			v, err := tx.Xattr(ino, n)
			if err != nil {
				return nil, err
			}
			if m == nil {
				m = make(map[string]string)
			}
			m[k] = string(v)
		}
	}
	return m, nil
}

// ---- PutObject ----

// precheckKey fails early, before a body is read, when a key cannot be written because
// of what exists: a parent that is a file (ErrNotDir) or a directory in the key's place
// (ErrIsDir). linkObject checks again, atomically.
func (e *Engine) precheckKey(bucket, key string) (meta.Inode, error) {
	dirs, name, isDir := splitKey(key)
	var b meta.Inode
	err := e.view(func(tx *meta.Tx) (err error) {
		if b, err = s3Bucket(tx, bucket); err != nil {
			return err
		}
		dir := b.Ino
		for i, seg := range dirs {
			ent, err := tx.Lookup(dir, seg)
			if errors.Is(err, meta.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if !isDirMode(ent.Mode) {
				return fmt.Errorf("key prefix %q is an object, not a directory: %w", strings.Join(dirs[:i+1], "/"), ErrNotDir)
			}
			dir = ent.Ino
		}
		ent, err := tx.Lookup(dir, name)
		if errors.Is(err, meta.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		switch {
		case isDir && !isDirMode(ent.Mode):
			return fmt.Errorf("key %q: an object %q exists: %w", key, strings.TrimSuffix(key, "/"), ErrNotDir)
		case !isDir && isDirMode(ent.Mode):
			disposable, err := isDisposableDir(tx, ent.Ino)
			if err != nil {
				return err
			}
			if !disposable {
				return fmt.Errorf("key %q: a directory of that name exists: %w", key, ErrIsDir)
			}
		}
		return nil
	})
	return b, err
}

// PutObject stores body as the object bucket/key. The body is streamed chunk by chunk
// (never held whole), encrypted under a new object key, and its MD5 (the ETag) and size
// computed on the way. The object appears only once the body ended cleanly, atomically
// replacing what the key named before (open handles on the old inode keep reading the
// old content); on any error (including one from body) nothing is visible and the
// chunks written are reclaimed. Missing parent directories are created (implicit).
// A key ending in "/" makes an explicit directory and needs an empty body.
//
// Errors: ErrNotExist+ErrNoSuchBucket, ErrInvalid/ErrNameTooLong (key, options),
// ErrNotDir (a parent is a file, or "dir/" where a file "dir" exists), ErrIsDir (a
// directory holds the key's name), ErrAccess/ErrUnavailable (KMS), or body's error.
func (e *Engine) PutObject(ctx context.Context, bucket, key string, body io.Reader, opt PutOptions) (ObjectInfo, error) {
	if err := ValidObjectKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkUserMeta(opt.UserMeta); err != nil {
		return ObjectInfo{}, err
	}
	b, err := e.precheckKey(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	dirs, name, isDir := splitKey(key)
	req := linkReq{bucketName: bucket, bucket: b.Ino, dirs: dirs, name: name,
		userMeta: opt.UserMeta, owner: opt.Owner, rec: meta.Object{System: opt.System}}
	if isDir {
		var one [1]byte
		if n, err := io.ReadFull(body, one[:]); n > 0 {
			return ObjectInfo{}, fmt.Errorf("directory key %q with a non-empty body: %w", key, ErrInvalid)
		} else if err != io.EOF {
			return ObjectInfo{}, fmt.Errorf("reading the object body: %w", err)
		}
		req.rec.ETag = emptyMD5
		if _, err := e.linkObject(ctx, req); err != nil {
			return ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
		}
		return e.StatObject(ctx, bucket, key, GetOptions{})
	}
	spec, err := e.resolveSSE(b.Ino, opt.SSE)
	if err != nil {
		return ObjectInfo{}, err
	}
	h, err := e.newOrphanFile(ctx, b, bucket, spec, opt.Owner)
	if err != nil {
		return ObjectInfo{}, err
	}
	size, sum, err := e.fill(ctx, h, body)
	if err != nil {
		h.abandon()
		return ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	req.h = h
	req.rec.ETag, req.rec.Size = hex.EncodeToString(sum[:]), uint64(size)
	return e.finishObject(ctx, req, key, spec)
}

// finishObject links a filled orphan file as the object and releases its handle.
func (e *Engine) finishObject(ctx context.Context, req linkReq, key string, spec sealSpec) (ObjectInfo, error) {
	if _, err := e.linkObject(ctx, req); err != nil {
		req.h.abandon()
		return ObjectInfo{}, fmt.Errorf("put %s/%s: %w", req.bucketName, key, err)
	}
	info := e.infoFromHandle(req, key, spec)
	if err := req.h.Release(ctx); err != nil {
		// Everything was stored and linked before: this only reports a failed cleanup.
		e.log.Warn("releasing a new object failed", "key", key, "err", err)
	}
	return info, nil
}

func (e *Engine) infoFromHandle(req linkReq, key string, spec sealSpec) ObjectInfo {
	of := req.h.of
	of.mu.Lock()
	in := of.inode
	of.mu.Unlock()
	info := ObjectInfo{
		Bucket: req.bucketName, Key: key, Ino: uint64(in.Ino), Size: int64(in.Size),
		ModTime: time.Unix(0, in.Mtime), ETag: req.rec.ETag, ETagIsMD5: !strings.Contains(req.rec.ETag, "-"),
		System: req.rec.System, UserMeta: req.userMeta, SSEType: spec.sseType, KeyName: spec.keyName,
		KMSContext: maps.Clone(spec.kmsCtx), Mode: in.Mode, Uid: in.Uid, Gid: in.Gid,
	}
	if of.sseC != nil {
		info.KeyName, info.ClientKeyMD5 = "", *of.sseC
	}
	return info
}

// ---- reading ----

// syntheticETag stands for the ETag of content whose MD5 is not known (see ObjectInfo).
func syntheticETag(in *meta.Inode) string {
	var b [16 + 8 + 8]byte
	copy(b[:16], in.FileID[:])
	binary.BigEndian.PutUint64(b[16:], in.Size)
	binary.BigEndian.PutUint64(b[24:], uint64(in.Mtime))
	sum := md5.Sum(b[:])
	return hex.EncodeToString(sum[:]) + "-1"
}

// openView overlays an open file's newer size and times on in, and tells whether it
// holds content changes not yet committed.
func (e *Engine) openView(of *openFile, in *meta.Inode) (dirty bool) {
	if of == nil {
		return false
	}
	of.mu.Lock()
	defer of.mu.Unlock()
	in.Size, in.Mtime, in.Atime = of.inode.Size, of.inode.Mtime, of.inode.Atime
	return of.contentChanged
}

// baseInfo fills what a listing shows of a file or directory inode. of is the inode's
// open state, if any.
func (e *Engine) baseInfo(tx *meta.Tx, bucket, key string, in meta.Inode, of *openFile) (ObjectInfo, error) {
	dirty := e.openView(of, &in)
	rec, ok, err := objectRecord(tx, in.Ino)
	if err != nil {
		return ObjectInfo{}, err
	}
	info := ObjectInfo{Bucket: bucket, Key: key, Ino: uint64(in.Ino), Size: int64(in.Size),
		ModTime: time.Unix(0, in.Mtime), System: rec.System, Mode: in.Mode, Uid: in.Uid, Gid: in.Gid}
	switch {
	case isDirMode(in.Mode):
		info.IsDir, info.Size, info.ETag, info.ETagIsMD5 = true, 0, emptyMD5, true
	case ok && rec.ETag != "" && rec.Size == in.Size && !dirty:
		info.ETag, info.ETagIsMD5 = rec.ETag, !strings.Contains(rec.ETag, "-")
	default:
		info.ETag = syntheticETag(&in)
	}
	return info, nil
}

// resolveKey finds the inode a valid key names: a regular file for a file key, an
// explicit directory for a "dir/" key; anything else is ErrNotExist.
func resolveKey(tx *meta.Tx, b meta.Inode, key string) (meta.Inode, error) {
	dirs, name, isDir := splitKey(key)
	dir := b.Ino
	notExist := fmt.Errorf("key %q: %w", key, ErrNotExist)
	for _, seg := range append(dirs, name) {
		ent, err := tx.Lookup(dir, seg)
		if errors.Is(err, meta.ErrNotFound) {
			return meta.Inode{}, notExist
		} else if err != nil {
			return meta.Inode{}, err
		}
		dir = ent.Ino // a file in the middle has no entries: the next lookup misses
	}
	in, err := tx.Inode(dir)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Inode{}, notExist
	} else if err != nil {
		return meta.Inode{}, err
	}
	if isDir {
		if !isDirMode(in.Mode) {
			return meta.Inode{}, notExist
		}
		if marker, err := isMarkerDir(tx, in.Ino); err != nil {
			return meta.Inode{}, err
		} else if !marker {
			return meta.Inode{}, notExist
		}
		return in, nil
	}
	if !isRegMode(in.Mode) {
		return meta.Inode{}, notExist
	}
	return in, nil
}

// fullInfo is baseInfo plus user metadata and encryption; it returns the sealed-key
// record too.
func (e *Engine) fullInfo(tx *meta.Tx, bucket, key string, in meta.Inode, of *openFile) (ObjectInfo, *keys.SealedKey, error) {
	info, err := e.baseInfo(tx, bucket, key, in, of)
	if err != nil {
		return info, nil, err
	}
	if info.UserMeta, err = userMetaOf(tx, in.Ino); err != nil {
		return info, nil, err
	}
	if info.IsDir {
		return info, nil, nil
	}
	sealed, err := tx.SealedKey(in.Ino)
	if err != nil {
		return info, nil, err
	}
	var sk keys.SealedKey
	if err := sk.UnmarshalBinary(sealed); err != nil {
		return info, nil, fmt.Errorf("sealed key of inode %d: %w: %v", in.Ino, ErrCorrupt, err)
	}
	info.SSEType, info.KeyName, info.ClientKeyMD5 = sk.SSEType, sk.KeyName, sk.ClientKeyMD5
	info.KMSContext = sk.Context
	return info, &sk, nil
}

// checkClientKey applies GetOptions to an object's sealed key without unsealing it.
func checkClientKey(sk *keys.SealedKey, clientKey *[32]byte) error {
	if sk == nil || sk.SSEType != keys.SSEC {
		if clientKey != nil {
			return &wrapped{ErrInvalid, ErrNotSSEC}
		}
		return nil
	}
	if clientKey == nil {
		return classify(keys.ErrClientKeyRequired)
	}
	sum := md5.Sum(clientKey[:])
	if subtle.ConstantTimeCompare(sum[:], sk.ClientKeyMD5[:]) != 1 {
		return classify(keys.ErrClientKeyMismatch)
	}
	return nil
}

// StatObject describes an object (HEAD). An SSE-C object needs its key, as S3 wants.
func (e *Engine) StatObject(ctx context.Context, bucket, key string, opt GetOptions) (ObjectInfo, error) {
	if err := ValidObjectKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("key %q: %w", key, ErrNotExist)
	}
	var info ObjectInfo
	var sk *keys.SealedKey
	err := e.view(func(tx *meta.Tx) error {
		b, err := s3Bucket(tx, bucket)
		if err != nil {
			return err
		}
		in, err := resolveKey(tx, b, key)
		if err != nil {
			return err
		}
		info, sk, err = e.fullInfo(tx, bucket, key, in, e.openState(uint64(in.Ino)))
		return err
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s/%s: %w", bucket, key, err)
	}
	if err := checkClientKey(sk, opt.ClientKey); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s/%s: %w", bucket, key, err)
	}
	return info, nil
}

// openObjectLocked opens a regular file for S3: SSE-C files with their client key,
// others as Open does. Must hold nsMu.
func (e *Engine) openObjectLocked(ctx context.Context, in meta.Inode, sk *keys.SealedKey, clientKey *[32]byte) (*Handle, error) {
	if err := checkClientKey(sk, clientKey); err != nil {
		return nil, err
	}
	if sk.SSEType != keys.SSEC {
		return e.openLocked(ctx, uint64(in.Ino))
	}
	if of := e.files[uint64(in.Ino)]; of != nil {
		of.refs++
		return &Handle{of: of}, nil
	}
	oek, err := e.sealer.UnsealWithClientKey(*sk, in.FileID, *clientKey)
	if err != nil {
		return nil, classify(fmt.Errorf("unsealing the key of inode %d: %w", in.Ino, err))
	}
	sum := sk.ClientKeyMD5
	of := &openFile{e: e, inode: in, oek: oek, refs: 1, keyChecked: time.Now(), sseC: &sum}
	e.files[uint64(in.Ino)] = of
	return &Handle{of: of}, nil
}

// ObjectReader reads an object's content through an engine handle, so it sees what the
// mount wrote, including writes not yet flushed. It is bounded to the size the object
// had at OpenObject (ObjectInfo.Size): a read past it is io.EOF, and if the file shrank
// meanwhile a read that cannot be filled is io.ErrUnexpectedEOF. Reads use the context
// given to OpenObject. Not safe for concurrent Read/Seek; ReadAt may be concurrent.
type ObjectReader struct {
	ctx  context.Context
	h    *Handle // nil for a directory
	size int64
	off  int64
}

// Size is the object's size at open.
func (r *ObjectReader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt.
func (r *ObjectReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: %w", off, ErrInvalid)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > r.size-off {
		p = p[:r.size-off]
	}
	n, err := r.h.ReadAt(r.ctx, p, off)
	if err == io.EOF && n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		return n, err
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader.
func (r *ObjectReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker (for http.ServeContent).
func (r *ObjectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return r.off, fmt.Errorf("seek whence %d: %w", whence, ErrInvalid)
	}
	if offset < 0 {
		return r.off, fmt.Errorf("seek to %d: %w", offset, ErrInvalid)
	}
	r.off = offset
	return offset, nil
}

// Close releases the handle.
func (r *ObjectReader) Close() error {
	if r.h == nil {
		return nil
	}
	h := r.h
	r.h = nil
	return h.Release(context.WithoutCancel(r.ctx))
}

// OpenObject opens an object for reading (GET). The caller must Close the reader. A
// "dir/" key reads as empty. SSE-C objects need opt.ClientKey (see GetOptions).
func (e *Engine) OpenObject(ctx context.Context, bucket, key string, opt GetOptions) (*ObjectReader, ObjectInfo, error) {
	if err := ValidObjectKey(key); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("key %q: %w", key, ErrNotExist)
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var info ObjectInfo
	var sk *keys.SealedKey
	var in meta.Inode
	err := e.view(func(tx *meta.Tx) error {
		b, err := s3Bucket(tx, bucket)
		if err != nil {
			return err
		}
		if in, err = resolveKey(tx, b, key); err != nil {
			return err
		}
		info, sk, err = e.fullInfo(tx, bucket, key, in, e.files[uint64(in.Ino)])
		return err
	})
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	if opt.Check != nil {
		if err := opt.Check(info); err != nil {
			return nil, ObjectInfo{}, err
		}
	}
	if info.IsDir {
		if opt.ClientKey != nil {
			return nil, ObjectInfo{}, &wrapped{ErrInvalid, ErrNotSSEC}
		}
		return &ObjectReader{ctx: ctx}, info, nil
	}
	h, err := e.openObjectLocked(ctx, in, sk, opt.ClientKey)
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return &ObjectReader{ctx: ctx, h: h, size: info.Size}, info, nil
}

// ---- deleting ----

var errNoObject = errors.New("no such object")

type dirStep struct {
	parent meta.Ino
	name   string
	ino    meta.Ino
}

// DeleteObject deletes bucket/key. A key that names nothing (or something that is not
// an object: a symlink, a directory for a file key, an invalid key) is no error, as in
// S3. A "dir/" key removes an empty directory; for a directory that still holds keys it
// removes only the marker (the directory becomes implicit and goes with its last key).
// Implicit parent directories that become empty are removed, up to the bucket.
func (e *Engine) DeleteObject(ctx context.Context, bucket, key string) error {
	if ValidObjectKey(key) != nil {
		return nil
	}
	dirs, name, isDir := splitKey(key)
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var (
		changes []Change
		dropped []droppedInode
	)
	err := e.update(func(tx *meta.Tx) error {
		changes, dropped = nil, nil
		t := now()
		b, err := s3Bucket(tx, bucket)
		if err != nil {
			return err
		}
		chain := make([]dirStep, 0, len(dirs))
		dir := b.Ino
		for _, seg := range dirs {
			ent, err := tx.Lookup(dir, seg)
			if errors.Is(err, meta.ErrNotFound) {
				return errNoObject
			} else if err != nil {
				return err
			}
			if !isDirMode(ent.Mode) {
				return errNoObject
			}
			chain = append(chain, dirStep{parent: dir, name: seg, ino: ent.Ino})
			dir = ent.Ino
		}
		ent, err := tx.Lookup(dir, name)
		if errors.Is(err, meta.ErrNotFound) {
			return errNoObject
		} else if err != nil {
			return err
		}
		in, err := tx.Inode(ent.Ino)
		if err != nil {
			return err
		}
		parent, err := tx.Inode(dir)
		if err != nil {
			return err
		}
		if isDir {
			if !isDirMode(in.Mode) {
				return errNoObject
			}
			has, err := tx.HasEntries(in.Ino)
			if err != nil {
				return err
			}
			if has {
				// Only the marker goes: the directory turns implicit and goes with its
				// last key.
				if marker, err := isMarkerDir(tx, in.Ino); err != nil || !marker {
					return cmp.Or(err, errNoObject)
				}
				return tx.PutObject(in.Ino, &meta.Object{Flags: meta.ObjectImplicitDir})
			}
			parent.Nlink--
		} else if !isRegMode(in.Mode) {
			return errNoObject
		}
		if err := tx.DeleteEntry(dir, name); err != nil {
			return err
		}
		touch(&parent, t)
		if err := tx.PutInode(&parent); err != nil {
			return err
		}
		d, err := e.dropLink(tx, &in, t, false)
		if err != nil {
			return err
		}
		dropped = append(dropped, d)
		changes = append(changes, Change{Ino: uint64(in.Ino), Parent: uint64(dir), Name: name, Removed: true})
		return e.pruneImplicit(tx, chain, t, &changes, &dropped)
	})
	if errors.Is(err, errNoObject) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	for i := range dropped {
		e.afterDrop(dropped[i])
	}
	for _, c := range changes {
		e.publish(ctx, c)
	}
	return nil
}

// pruneImplicit removes the empty implicit directories at the end of chain, deepest
// first, stopping at the first that is explicit or not empty. Must hold nsMu.
func (e *Engine) pruneImplicit(tx *meta.Tx, chain []dirStep, t int64, changes *[]Change, dropped *[]droppedInode) error {
	for i := len(chain) - 1; i >= 0; i-- {
		st := chain[i]
		if disposable, err := isDisposableDir(tx, st.ino); err != nil || !disposable {
			return err
		}
		in, err := tx.Inode(st.ino)
		if err != nil {
			return err
		}
		parent, err := tx.Inode(st.parent)
		if err != nil {
			return err
		}
		if err := tx.DeleteEntry(st.parent, st.name); err != nil {
			return err
		}
		parent.Nlink--
		touch(&parent, t)
		if err := tx.PutInode(&parent); err != nil {
			return err
		}
		d, err := e.dropLink(tx, &in, t, false)
		if err != nil {
			return err
		}
		*dropped = append(*dropped, d)
		*changes = append(*changes, Change{Ino: uint64(in.Ino), Parent: uint64(st.parent), Name: st.name, Removed: true})
	}
	return nil
}

// ---- copying ----

// CopyOptions are the settings of CopyObject.
type CopyOptions struct {
	// Source opens the source (its SSE-C key, if it has one).
	Source GetOptions
	// Dest is how the copy is stored: its encryption always, and with ReplaceMetadata
	// its user and system metadata too. An unset Dest.Owner keeps the source's owner.
	Dest PutOptions
	// ReplaceMetadata is S3's REPLACE metadata directive; false is COPY, which keeps
	// the source's user and system metadata.
	ReplaceMetadata bool
}

// CopyObject copies an object, decrypting and re-encrypting it as a stream under a new
// object key (every file has its own). Source and destination may be the same key
// (S3 clients change metadata that way).
func (e *Engine) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, opt CopyOptions) (ObjectInfo, error) {
	r, info, err := e.OpenObject(ctx, srcBucket, srcKey, opt.Source)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer r.Close()
	put := opt.Dest
	if !opt.ReplaceMetadata {
		put.UserMeta, put.System = info.UserMeta, info.System
	}
	if put.Owner == (Owner{}) {
		put.Owner = Owner{Mode: info.Mode &^ syscall.S_IFMT, Uid: info.Uid, Gid: info.Gid}
	}
	return e.PutObject(ctx, dstBucket, dstKey, r, put)
}

// ---- buckets ----

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name string
	// Created is the bucket directory's change time: the engine keeps no birth time.
	Created time.Time
}

// ListBuckets lists the buckets in name order.
func (e *Engine) ListBuckets(ctx context.Context) ([]BucketInfo, error) {
	var out []BucketInfo
	err := e.view(func(tx *meta.Tx) error {
		out = nil
		var ents []meta.Entry
		if err := tx.Entries(meta.RootIno, "", func(ent meta.Entry) bool {
			if isDirMode(ent.Mode) {
				ents = append(ents, ent)
			}
			return true
		}); err != nil {
			return err
		}
		for _, ent := range ents {
			in, err := tx.Inode(ent.Ino)
			if err != nil {
				return err
			}
			out = append(out, BucketInfo{Name: ent.Name, Created: time.Unix(0, in.Ctime)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return out, nil
}

// CreateBucket makes a bucket (a directory at the root). An existing one is ErrExist
// (S3 BucketAlreadyOwnedByYou: there is one owner); a bad name ErrInvalid.
func (e *Engine) CreateBucket(ctx context.Context, name string, o Owner) error {
	if err := ValidBucketName(name); err != nil {
		return err
	}
	if o.Mode&^syscall.S_IFMT == 0 {
		o.Mode |= 0o755
	}
	_, err := e.Mkdir(ctx, RootIno, name, o)
	return err
}

// BucketExists tells whether a bucket exists.
func (e *Engine) BucketExists(ctx context.Context, name string) (bool, error) {
	err := e.view(func(tx *meta.Tx) error {
		_, err := s3Bucket(tx, name)
		return err
	})
	if errors.Is(err, ErrNoSuchBucket) {
		return false, nil
	}
	return err == nil, err
}

// DeleteBucket removes an empty bucket: one that holds any entry, or has multipart
// uploads in progress, is ErrNotEmpty.
func (e *Engine) DeleteBucket(ctx context.Context, name string) error {
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var in meta.Inode
	var dropped droppedInode
	err := e.update(func(tx *meta.Tx) (err error) {
		t := now()
		if in, err = s3Bucket(tx, name); err != nil {
			return err
		}
		if has, err := tx.HasEntries(in.Ino); err != nil {
			return err
		} else if has {
			return fmt.Errorf("bucket %q: %w", name, ErrNotEmpty)
		}
		if has, err := tx.HasUploads(in.Ino); err != nil {
			return err
		} else if has {
			return fmt.Errorf("bucket %q has multipart uploads in progress: %w", name, ErrNotEmpty)
		}
		root, err := tx.Inode(meta.RootIno)
		if err != nil {
			return err
		}
		if err := tx.DeleteEntry(meta.RootIno, name); err != nil {
			return err
		}
		root.Nlink--
		touch(&root, t)
		if err := tx.PutInode(&root); err != nil {
			return err
		}
		dropped, err = e.dropLink(tx, &in, t, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	e.afterDrop(dropped)
	e.bucketMu.Lock()
	delete(e.bucketNames, uint64(in.Ino))
	delete(e.bucketKeys, uint64(in.Ino))
	e.bucketMu.Unlock()
	e.publish(ctx, Change{Ino: uint64(in.Ino), Parent: RootIno, Name: name, Removed: true})
	return nil
}

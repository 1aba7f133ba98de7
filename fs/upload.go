package fs

// Multipart uploads. An upload is a meta.Upload record (bucket, key, how to encrypt,
// owner, metadata, initiated time); each part is an unlinked inode holding the part's
// content encrypted under the upload's SSE settings, owned by a meta.Part record. While
// a part is being written its inode is on the orphan list, so a crash, an error or a
// racing abort reclaims its chunks; the transaction that records the part takes it off
// the list, so committed parts survive restarts as S3 clients expect. Retiring an upload
// (complete, abort, or a part replaced by a re-upload) puts the part inodes back on the
// orphan list in the same transaction and then deletes them, so a crash midway is
// finished at the next start.
//
// Uploads never completed stay invisible in the namespace and hold their parts until
// AbortUpload, or until ExpireUploads finds them older than the frontend's expiry (as
// MinIO's stale-upload expiry does). fsck must count part inodes (meta.Tx.AllUploads,
// Parts) as referenced.

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
)

const (
	// MinPartSize is the smallest part but the last, as S3 has it.
	MinPartSize = 5 << 20
	// MaxPartNumber is the highest part number.
	MaxPartNumber = 10000
	// maxListParts bounds a ListParts or ListUploads page.
	maxListParts = 1000
)

// PartOptions carry what writing or completing an SSE-C upload needs: the client key
// (its MD5 must match the one CreateUpload was given).
type PartOptions struct {
	ClientKey *[32]byte
}

// UploadInfo describes an upload in progress.
type UploadInfo struct {
	Bucket, Key, UploadID string
	Initiated             time.Time
	SSEType, KeyName      string
	ClientKeyMD5          [16]byte
	// KMSContext is the user's encryption context of an SSE-KMS upload; nil if none.
	KMSContext map[string]string
	Uid, Gid   uint32
	System     SystemMeta
	UserMeta   map[string]string
}

// PartInfo describes an uploaded part.
type PartInfo struct {
	Number       int
	Size         int64
	ETag         string // hex MD5 of the part, without quotes
	LastModified time.Time
}

// CompletedPart is one entry of a CompleteMultipartUpload request.
type CompletedPart struct {
	Number int
	ETag   string // quotes are ignored
}

func noSuchUpload(id string) error {
	return &wrapped{ErrNotExist, fmt.Errorf("upload %q: %w", id, ErrNoSuchUpload)}
}

func parseUploadID(s string) (meta.UploadID, error) {
	var id meta.UploadID
	if len(s) != 2*len(id) {
		return id, noSuchUpload(s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, noSuchUpload(s)
	}
	return id, nil
}

func uploadIDString(id meta.UploadID) string { return hex.EncodeToString(id[:]) }

func uploadInfo(bucket string, u *meta.Upload) UploadInfo {
	return UploadInfo{Bucket: bucket, Key: u.Key, UploadID: uploadIDString(u.ID),
		Initiated: time.Unix(0, u.Initiated), SSEType: u.SSEType, KeyName: u.KeyName,
		ClientKeyMD5: u.ClientKeyMD5, KMSContext: u.KMSContext, Uid: u.Uid, Gid: u.Gid, System: u.System, UserMeta: u.UserMeta}
}

// CreateUpload starts a multipart upload of bucket/key with opt's settings (as
// PutObject takes them) and returns its ID. The key is checked against what exists now
// and again, atomically, at CompleteUpload.
func (e *Engine) CreateUpload(ctx context.Context, bucket, key string, opt PutOptions) (string, error) {
	if err := ValidObjectKey(key); err != nil {
		return "", err
	}
	if strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("multipart upload of a directory key %q: %w", key, ErrInvalid)
	}
	if err := checkUserMeta(opt.UserMeta); err != nil {
		return "", err
	}
	b, err := e.precheckKey(bucket, key)
	if err != nil {
		return "", err
	}
	spec, err := e.resolveSSE(b.Ino, opt.SSE)
	if err != nil {
		return "", err
	}
	// The context is stored with the upload so that every part and the final object
	// are sealed with it.
	u := meta.Upload{Bucket: b.Ino, Key: key, Initiated: now(), SSEType: spec.sseType, KeyName: spec.keyName,
		Mode: filePerm(opt.Owner), Uid: opt.Owner.Uid, Gid: opt.Owner.Gid, System: opt.System, UserMeta: opt.UserMeta,
		KMSContext: spec.kmsCtx}
	if spec.sseType == keys.SSEC {
		u.KeyName, u.ClientKeyMD5 = "", md5.Sum(spec.clientKey[:])
	} else if _, _, _, err := e.sealFor(ctx, spec, bucket, keys.NewFileID()); err != nil {
		return "", err // the key cannot seal: fail now rather than at the first part
	}
	rand.Read(u.ID[:])
	err = e.update(func(tx *meta.Tx) error {
		if _, err := dirInode(tx, uint64(b.Ino)); err != nil {
			return noSuchBucket(bucket)
		}
		return tx.PutUpload(&u)
	})
	if err != nil {
		return "", fmt.Errorf("create upload of %s/%s: %w", bucket, key, err)
	}
	return uploadIDString(u.ID), nil
}

// loadUpload reads an upload and its bucket.
func (e *Engine) loadUpload(uploadID string) (meta.Upload, meta.Inode, string, error) {
	id, err := parseUploadID(uploadID)
	if err != nil {
		return meta.Upload{}, meta.Inode{}, "", err
	}
	var u meta.Upload
	var b meta.Inode
	err = e.view(func(tx *meta.Tx) (err error) {
		if u, err = tx.Upload(id); errors.Is(err, meta.ErrNotFound) {
			return noSuchUpload(uploadID)
		} else if err != nil {
			return err
		}
		b, err = tx.Inode(u.Bucket)
		return err
	})
	if err != nil {
		return u, b, "", err
	}
	name, err := e.bucketName(u.Bucket)
	return u, b, name, err
}

// uploadSpec is how an upload's parts (and its object) are sealed; an SSE-C upload
// needs the client key it was created with.
func uploadSpec(u *meta.Upload, clientKey *[32]byte) (sealSpec, error) {
	if u.SSEType != keys.SSEC {
		if clientKey != nil {
			return sealSpec{}, &wrapped{ErrInvalid, ErrNotSSEC}
		}
		return sealSpec{sseType: u.SSEType, keyName: u.KeyName, kmsCtx: u.KMSContext}, nil
	}
	if clientKey == nil {
		return sealSpec{}, classify(keys.ErrClientKeyRequired)
	}
	sum := md5.Sum(clientKey[:])
	if subtle.ConstantTimeCompare(sum[:], u.ClientKeyMD5[:]) != 1 {
		return sealSpec{}, classify(keys.ErrClientKeyMismatch)
	}
	return sealSpec{sseType: keys.SSEC, clientKey: clientKey}, nil
}

func uploadOwner(u *meta.Upload) Owner { return Owner{Mode: u.Mode, Uid: u.Uid, Gid: u.Gid} }

// UploadPart stores part number (1..MaxPartNumber) of an upload from body, streamed and
// encrypted as PutObject does, and returns its ETag (hex MD5). Uploading a number again
// replaces the part. A body error stores nothing.
func (e *Engine) UploadPart(ctx context.Context, uploadID string, number int, body io.Reader, opt PartOptions) (string, error) {
	if number < 1 || number > MaxPartNumber {
		return "", fmt.Errorf("part number %d is not in 1..%d: %w", number, MaxPartNumber, ErrInvalid)
	}
	u, b, bucketName, err := e.loadUpload(uploadID)
	if err != nil {
		return "", err
	}
	spec, err := uploadSpec(&u, opt.ClientKey)
	if err != nil {
		return "", err
	}
	h, err := e.newOrphanFile(ctx, b, bucketName, spec, uploadOwner(&u))
	if err != nil {
		return "", err
	}
	size, sum, err := e.fill(ctx, h, body)
	if err != nil {
		h.abandon()
		return "", fmt.Errorf("upload %s part %d: %w", uploadID, number, err)
	}
	ino := h.of.inode.Ino
	var old meta.Part
	var hadOld bool
	e.nsMu.Lock()
	err = e.update(func(tx *meta.Tx) (err error) {
		hadOld = false
		if _, err := tx.Upload(u.ID); errors.Is(err, meta.ErrNotFound) {
			return noSuchUpload(uploadID)
		} else if err != nil {
			return err
		}
		if old, err = tx.Part(u.ID, uint32(number)); err == nil {
			hadOld = true
			if err := tx.AddOrphan(old.Ino); err != nil {
				return err
			}
		} else if !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if err := tx.PutPart(u.ID, &meta.Part{Number: uint32(number), Ino: ino, Size: uint64(size), MD5: sum, Uploaded: now()}); err != nil {
			return err
		}
		return tx.RemoveOrphan(ino)
	})
	if err == nil {
		delete(e.orphans, uint64(ino)) // the part record owns it now
	}
	e.nsMu.Unlock()
	if err != nil {
		h.abandon()
		return "", fmt.Errorf("upload %s part %d: %w", uploadID, number, err)
	}
	if rerr := h.Release(ctx); rerr != nil {
		e.log.Warn("releasing an uploaded part failed", "upload", uploadID, "part", number, "err", rerr)
	}
	if hadOld {
		e.deleteParts([]meta.Part{old})
	}
	return hex.EncodeToString(sum[:]), nil
}

// UploadPartCopy stores part number of an upload from a range of an existing object:
// length bytes from off (length < 0: to the end). A range outside the object is
// ErrInvalid (S3 InvalidRange).
func (e *Engine) UploadPartCopy(ctx context.Context, uploadID string, number int, srcBucket, srcKey string, off, length int64, src GetOptions, opt PartOptions) (string, error) {
	r, info, err := e.OpenObject(ctx, srcBucket, srcKey, src)
	if err != nil {
		return "", err
	}
	defer r.Close()
	if length < 0 {
		length = info.Size - off
	}
	if off < 0 || length < 0 || off+length > info.Size {
		return "", fmt.Errorf("range %d+%d of an object of %d bytes: %w", off, length, info.Size, ErrInvalid)
	}
	return e.UploadPart(ctx, uploadID, number, io.NewSectionReader(r, off, length), opt)
}

// deleteParts deletes retired part inodes (already back on the orphan list).
func (e *Engine) deleteParts(parts []meta.Part) {
	for _, p := range parts {
		if err := e.deleteInode(p.Ino); err != nil {
			e.log.Error("deleting a multipart part failed; it is reclaimed at the next start", "ino", uint64(p.Ino), "err", err)
		}
	}
}

// partHandle opens a part's inode for reading, privately: nothing else ever opens it.
func (e *Engine) partHandle(ctx context.Context, p meta.Part, spec sealSpec) (*Handle, error) {
	var in meta.Inode
	var sealed []byte
	err := e.view(func(tx *meta.Tx) (err error) {
		if in, err = tx.Inode(p.Ino); err != nil {
			return err
		}
		sealed, err = tx.SealedKey(p.Ino)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("part %d: %w", p.Number, err)
	}
	var oek [32]byte
	if spec.sseType == keys.SSEC {
		var sk keys.SealedKey
		if err := sk.UnmarshalBinary(sealed); err != nil {
			return nil, fmt.Errorf("sealed key of part %d: %w: %v", p.Number, ErrCorrupt, err)
		}
		if oek, err = e.sealer.UnsealWithClientKey(sk, in.FileID, *spec.clientKey); err != nil {
			return nil, classify(fmt.Errorf("part %d: %w", p.Number, err))
		}
	} else if oek, err = e.unsealFileKey(ctx, in, sealed); err != nil {
		return nil, fmt.Errorf("part %d: %w", p.Number, err)
	}
	return &Handle{of: &openFile{e: e, inode: in, oek: oek, keyChecked: time.Now()}}, nil
}

// CompleteUpload assembles the listed parts into the object and makes it visible
// atomically (replacing what the key named), retiring the upload and all its parts,
// listed or not. Checks, in S3's terms: at least one part (ErrInvalid), numbers strictly
// ascending (ErrInvalidPartOrder), each part uploaded with that ETag (ErrInvalidPart),
// each but the last at least MinPartSize (ErrEntityTooSmall); all wrap ErrInvalid. The
// ETag is the MD5 of the parts' binary MD5s, "-N". An SSE-C upload needs its key.
//
// The parts are streamed through decryption and re-encryption into the new file:
// O(size) work, simple and correct, and never more than a chunk in memory. This is the
// thing to optimise later (adopting the parts' chunk objects needs chunk keys that do
// not bind the file ID and index of the part).
func (e *Engine) CompleteUpload(ctx context.Context, uploadID string, parts []CompletedPart, opt PartOptions) (ObjectInfo, error) {
	u, b, bucketName, err := e.loadUpload(uploadID)
	if err != nil {
		return ObjectInfo{}, err
	}
	spec, err := uploadSpec(&u, opt.ClientKey)
	if err != nil {
		return ObjectInfo{}, err
	}
	if len(parts) == 0 {
		return ObjectInfo{}, fmt.Errorf("complete upload %s: no parts: %w", uploadID, ErrInvalid)
	}
	stored := map[uint32]meta.Part{}
	err = e.view(func(tx *meta.Tx) error {
		return tx.Parts(u.ID, 0, func(p meta.Part) bool { stored[p.Number] = p; return true })
	})
	if err != nil {
		return ObjectInfo{}, err
	}
	use := make([]meta.Part, len(parts))
	sums := md5.New()
	var total uint64
	for i, cp := range parts {
		if i > 0 && cp.Number <= parts[i-1].Number {
			return ObjectInfo{}, &wrapped{ErrInvalid, fmt.Errorf("part %d after part %d: %w", cp.Number, parts[i-1].Number, ErrInvalidPartOrder)}
		}
		p, ok := stored[uint32(cp.Number)]
		etag := strings.ToLower(strings.Trim(cp.ETag, `"`))
		if cp.Number < 1 || cp.Number > MaxPartNumber || !ok || etag != hex.EncodeToString(p.MD5[:]) {
			return ObjectInfo{}, &wrapped{ErrInvalid, fmt.Errorf("part %d with ETag %q: %w", cp.Number, cp.ETag, ErrInvalidPart)}
		}
		use[i] = p
		sums.Write(p.MD5[:])
		total += p.Size
	}
	for _, p := range use[:len(use)-1] {
		if p.Size < MinPartSize {
			return ObjectInfo{}, &wrapped{ErrInvalid, fmt.Errorf("part %d has %d bytes, the minimum is %d: %w", p.Number, p.Size, MinPartSize, ErrEntityTooSmall)}
		}
	}
	etag := hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(parts))

	h, err := e.newOrphanFile(ctx, b, bucketName, spec, uploadOwner(&u))
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := e.assemble(ctx, h, use, spec); err != nil {
		h.abandon()
		return ObjectInfo{}, fmt.Errorf("complete upload %s: %w", uploadID, err)
	}
	dirs, name, _ := splitKey(u.Key)
	var retired []meta.Part
	req := linkReq{bucketName: bucketName, bucket: b.Ino, dirs: dirs, name: name, h: h,
		rec: meta.Object{ETag: etag, Size: total, System: u.System}, userMeta: u.UserMeta, owner: uploadOwner(&u),
		extra: func(tx *meta.Tx) error {
			// The upload must still be the one assembled: not aborted or completed
			// meanwhile, no listed part re-uploaded.
			for _, p := range use {
				now, err := tx.Part(u.ID, p.Number)
				if errors.Is(err, meta.ErrNotFound) {
					if _, uerr := tx.Upload(u.ID); errors.Is(uerr, meta.ErrNotFound) {
						return noSuchUpload(uploadID)
					}
					return &wrapped{ErrInvalid, fmt.Errorf("part %d: %w", p.Number, ErrInvalidPart)}
				} else if err != nil {
					return err
				}
				if now.Ino != p.Ino {
					return &wrapped{ErrInvalid, fmt.Errorf("part %d was uploaded again meanwhile: %w", p.Number, ErrInvalidPart)}
				}
			}
			var err error
			if retired, err = tx.DeleteUpload(u.ID); err != nil {
				return err
			}
			for _, p := range retired {
				if err := tx.AddOrphan(p.Ino); err != nil {
					return err
				}
			}
			return nil
		}}
	info, err := e.finishObject(ctx, req, u.Key, spec)
	if err != nil {
		return ObjectInfo{}, err
	}
	e.deleteParts(retired)
	return info, nil
}

// assemble streams the parts' plaintext into the file behind h.
func (e *Engine) assemble(ctx context.Context, h *Handle, parts []meta.Part, spec sealSpec) error {
	buf := make([]byte, h.of.cs())
	var off int64
	for _, p := range parts {
		ph, err := e.partHandle(ctx, p, spec)
		if err != nil {
			return err
		}
		for pos := int64(0); pos < int64(p.Size); {
			n, err := ph.ReadAt(ctx, buf[:min(int64(len(buf)), int64(p.Size)-pos)], pos)
			if err != nil && !(err == io.EOF && n > 0) {
				if err == io.EOF {
					err = fmt.Errorf("part %d is shorter than recorded: %w", p.Number, ErrCorrupt)
				}
				return err
			}
			if _, err := h.WriteAt(ctx, buf[:n], off); err != nil {
				return err
			}
			pos += int64(n)
			off += int64(n)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return h.Flush(ctx)
}

// AbortUpload discards an upload and reclaims its parts' chunks.
func (e *Engine) AbortUpload(ctx context.Context, uploadID string) error {
	id, err := parseUploadID(uploadID)
	if err != nil {
		return err
	}
	var parts []meta.Part
	err = e.update(func(tx *meta.Tx) (err error) {
		parts, err = tx.DeleteUpload(id)
		if errors.Is(err, meta.ErrNotFound) {
			return noSuchUpload(uploadID)
		} else if err != nil {
			return err
		}
		for _, p := range parts {
			if err := tx.AddOrphan(p.Ino); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("abort upload %s: %w", uploadID, err)
	}
	e.deleteParts(parts)
	return nil
}

// ExpireUploads aborts every upload initiated before cutoff and returns how many it
// aborted. An upload completed or aborted meanwhile is skipped.
func (e *Engine) ExpireUploads(ctx context.Context, cutoff time.Time) (int, error) {
	var stale []meta.UploadID
	err := e.view(func(tx *meta.Tx) error {
		stale = stale[:0]
		return tx.AllUploads(func(u meta.Upload) bool {
			if u.Initiated < cutoff.UnixNano() {
				stale = append(stale, u.ID)
			}
			return ctx.Err() == nil
		})
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("expire uploads: %w", err)
	}
	n := 0
	for _, id := range stale {
		err := e.AbortUpload(ctx, uploadIDString(id))
		switch {
		case errors.Is(err, ErrNoSuchUpload):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

// ListPartsResult is one page of an upload's parts.
type ListPartsResult struct {
	Upload    UploadInfo
	Parts     []PartInfo
	Truncated bool
	Next      int // the part-number marker of the next page, when Truncated
}

// ListParts lists an upload's parts numbered above after, up to max (1..1000; other
// values mean 1000).
func (e *Engine) ListParts(ctx context.Context, uploadID string, after, max int) (ListPartsResult, error) {
	u, _, bucketName, err := e.loadUpload(uploadID)
	if err != nil {
		return ListPartsResult{}, err
	}
	after = min(MaxPartNumber, after)
	if after < 0 {
		after = 0
	}
	if max <= 0 || max > maxListParts {
		max = maxListParts
	}
	res := ListPartsResult{Upload: uploadInfo(bucketName, &u)}
	err = e.view(func(tx *meta.Tx) error {
		res.Parts, res.Truncated = nil, false
		return tx.Parts(u.ID, uint32(min(MaxPartNumber, after)), func(p meta.Part) bool {
			if len(res.Parts) == max {
				res.Truncated = true
				return false
			}
			res.Parts = append(res.Parts, PartInfo{Number: int(p.Number), Size: int64(p.Size),
				ETag: hex.EncodeToString(p.MD5[:]), LastModified: time.Unix(0, p.Uploaded)})
			return true
		})
	})
	if err != nil {
		return ListPartsResult{}, fmt.Errorf("list parts of %s: %w", uploadID, err)
	}
	if res.Truncated {
		res.Next = res.Parts[len(res.Parts)-1].Number
	}
	return res, nil
}

// ListUploadsOptions select a page of a bucket's uploads in progress.
type ListUploadsOptions struct {
	Prefix string
	// KeyMarker and UploadIDMarker continue a listing: uploads of keys after
	// KeyMarker, and of KeyMarker itself those with IDs after UploadIDMarker (if given).
	KeyMarker, UploadIDMarker string
	MaxUploads                int // 1..1000; other values mean 1000
}

// ListUploadsResult is one page of uploads, in key then upload-ID order.
type ListUploadsResult struct {
	Uploads                           []UploadInfo
	Truncated                         bool
	NextKeyMarker, NextUploadIDMarker string
}

// ListUploads lists a bucket's uploads in progress, with when each was initiated (the
// way to find stale ones).
func (e *Engine) ListUploads(ctx context.Context, bucket string, opt ListUploadsOptions) (ListUploadsResult, error) {
	max := opt.MaxUploads
	if max <= 0 || max > maxListParts {
		max = maxListParts
	}
	var res ListUploadsResult
	err := e.view(func(tx *meta.Tx) error {
		res = ListUploadsResult{}
		b, err := s3Bucket(tx, bucket)
		if err != nil {
			return err
		}
		var ferr error
		err = tx.Uploads(b.Ino, maxString(opt.Prefix, opt.KeyMarker), func(key string, id meta.UploadID) bool {
			if !strings.HasPrefix(key, opt.Prefix) {
				return key < opt.Prefix
			}
			ids := uploadIDString(id)
			if key < opt.KeyMarker || key == opt.KeyMarker && (opt.UploadIDMarker == "" || ids <= opt.UploadIDMarker) {
				return true
			}
			if len(res.Uploads) == max {
				res.Truncated = true
				return false
			}
			u, err := tx.Upload(id)
			if err != nil {
				ferr = err
				return false
			}
			res.Uploads = append(res.Uploads, uploadInfo(bucket, &u))
			return true
		})
		if err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		return ListUploadsResult{}, fmt.Errorf("list uploads of %s: %w", bucket, err)
	}
	if res.Truncated {
		last := res.Uploads[len(res.Uploads)-1]
		res.NextKeyMarker, res.NextUploadIDMarker = last.Key, last.UploadID
	}
	return res, nil
}

func maxString(a, b string) string { return max(a, b) }

package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
)

// ErrRotationPending: an interrupted key rotation with other options is recorded; run it
// again with the same options to finish it, or abandon it.
var ErrRotationPending = errors.New("an interrupted key rotation is pending")

// bucketIno resolves a bucket name to its directory inode.
func (e *Engine) bucketIno(bucket string) (meta.Ino, error) {
	if err := ValidBucketName(bucket); err != nil {
		return 0, fmt.Errorf("bucket %q: %w", bucket, err)
	}
	var ent meta.Entry
	err := e.view(func(tx *meta.Tx) (err error) {
		ent, err = tx.Lookup(meta.RootIno, bucket)
		return err
	})
	if err != nil {
		return 0, classify(fmt.Errorf("bucket %q: %w", bucket, err))
	}
	if !isDirMode(ent.Mode) {
		return 0, fmt.Errorf("bucket %q: %w", bucket, ErrNotDir)
	}
	return ent.Ino, nil
}

// BucketEncryption returns the bucket's default key name; "" means the process default.
func (e *Engine) BucketEncryption(ctx context.Context, bucket string) (string, error) {
	ino, err := e.bucketIno(bucket)
	if err != nil {
		return "", err
	}
	var cfg meta.BucketConfig
	err = e.view(func(tx *meta.Tx) (err error) {
		cfg, err = tx.BucketConfig(ino)
		if errors.Is(err, meta.ErrNotFound) {
			err = nil
		}
		return err
	})
	return cfg.DefaultKey, classify(err)
}

// SetBucketEncryption makes key the default for new files in bucket (key "" clears it).
// It first asks the KMS for a data key under key, so a typo or a forbidden key fails now
// rather than at the next write.
func (e *Engine) SetBucketEncryption(ctx context.Context, bucket, key string) error {
	ino, err := e.bucketIno(bucket)
	if err != nil {
		return err
	}
	if key != "" {
		if _, err := e.sealer.Seal(ctx, keys.SSEKMS, key, bucket, keys.NewFileID(), keys.NewOEK()); err != nil {
			return classify(fmt.Errorf("bucket %q: key %q cannot seal new files: %w", bucket, key, err))
		}
	}
	err = e.update(func(tx *meta.Tx) error {
		if _, err := tx.Inode(ino); err != nil {
			return err // removed meanwhile
		}
		return tx.PutBucketConfig(ino, meta.BucketConfig{DefaultKey: key})
	})
	if err != nil {
		return classify(fmt.Errorf("bucket %q: %w", bucket, err))
	}
	e.bucketMu.Lock()
	e.bucketKeys[uint64(ino)] = key
	e.bucketMu.Unlock()
	return classify(e.db.Sync())
}

// RotateOptions selects which files' keys a rotation re-seals and under what.
type RotateOptions struct {
	Bucket  string // only this bucket ("" = all)
	FromKey string // only files sealed under this external key ("" = any)
	ToKey   string // re-seal under this external key ("" = each file's current key, with a new data key)
	// Abandon drops a recorded interrupted rotation instead of running one.
	Abandon bool
	// Progress, if set, is called after each batch of files.
	Progress func(RotateProgress)
}

// RotateProgress counts a rotation's work.
type RotateProgress struct {
	Total   uint64 // files that matched the selection when the rotation started
	Done    uint64 // re-sealed so far (including those of an interrupted earlier run)
	Skipped uint64 // SSE-C files (no KMS key stands behind them) and files changed meanwhile
	Failed  uint64 // files whose key could not be unsealed (see the error RotateKeys returns)
	Resumed bool   // this run continued an interrupted one
}

// rotateBatch is how many files one rotation transaction re-seals: small enough to stay
// far below Badger's per-transaction limit, large enough that the job record's update
// costs little.
var rotateBatch = 256

// RotateKeys re-seals the object key of every selected file (content is not touched).
// It is safe while the filesystem is in use: each batch is one transaction that only
// replaces a sealed key still equal to the one it unsealed. It is resumable: the job
// record advances with each batch, so after an interruption (ctx cancelled, crash)
// calling it again with the same options goes on where it stopped; with other options
// it fails with ErrRotationPending. Files whose key cannot be unsealed (a deleted EK)
// are counted as Failed and reported at the end; the rest still rotate.
func (e *Engine) RotateKeys(ctx context.Context, opt RotateOptions) (RotateProgress, error) {
	var job meta.RotationJob
	found := true
	err := e.view(func(tx *meta.Tx) (err error) {
		job, err = tx.RotationJob()
		if errors.Is(err, meta.ErrNotFound) {
			found, err = false, nil
		}
		return err
	})
	if err != nil {
		return RotateProgress{}, classify(fmt.Errorf("rotation: %w", err))
	}
	if opt.Abandon {
		if !found {
			return RotateProgress{}, nil
		}
		err := e.update(func(tx *meta.Tx) error { return tx.DeleteRotationJob() })
		return progressOf(job, true), classify(err)
	}
	if opt.Bucket != "" {
		if _, err := e.bucketIno(opt.Bucket); err != nil {
			return RotateProgress{}, err
		}
	}
	if found && (job.Bucket != opt.Bucket || job.FromKey != opt.FromKey || job.ToKey != opt.ToKey) {
		return progressOf(job, true), fmt.Errorf("%w: %s, started %s, %d of %d files done; run it again with the same options, or abandon it: %w",
			ErrRotationPending, describeRotation(job), time.Unix(0, job.Started).UTC().Format(time.RFC3339), job.Done, job.Total, ErrExist)
	}
	rotator := &rotation{e: e, opt: opt, fork: e.sealer.Fork()}
	if opt.ToKey != "" {
		// A key that cannot seal would fail every file: say so once, before starting.
		if _, err := rotator.fork.Seal(ctx, keys.SSEKMS, opt.ToKey, "ssefs-rotation-check", keys.NewFileID(), keys.NewOEK()); err != nil {
			return RotateProgress{}, classify(fmt.Errorf("rotation: key %q cannot seal: %w", opt.ToKey, err))
		}
	}
	if !found {
		job = meta.RotationJob{Started: time.Now().UnixNano(), Bucket: opt.Bucket, FromKey: opt.FromKey, ToKey: opt.ToKey}
		if job.Total, err = rotator.count(); err != nil {
			return RotateProgress{}, err
		}
		if err := e.update(func(tx *meta.Tx) error { return tx.PutRotationJob(job) }); err != nil {
			return RotateProgress{}, classify(fmt.Errorf("rotation: recording the job: %w", err))
		}
	}
	return rotator.run(ctx, job, found)
}

func progressOf(j meta.RotationJob, resumed bool) RotateProgress {
	return RotateProgress{Total: j.Total, Done: j.Done, Skipped: j.Skipped, Resumed: resumed}
}

func describeRotation(j meta.RotationJob) string {
	s := "rotation of all files"
	if j.Bucket != "" {
		s += fmt.Sprintf(" in bucket %q", j.Bucket)
	}
	if j.FromKey != "" {
		s += fmt.Sprintf(" sealed under %q", j.FromKey)
	}
	if j.ToKey != "" {
		s += fmt.Sprintf(" to key %q", j.ToKey)
	} else {
		s += " to new data keys"
	}
	return s
}

type rotation struct {
	e    *Engine
	opt  RotateOptions
	fork *keys.Sealer // seals with data keys generated for this rotation
}

// selects tells whether a sealed key is one this rotation covers.
func (r *rotation) selects(sk *keys.SealedKey) bool {
	return (r.opt.Bucket == "" || sk.Bucket == r.opt.Bucket) &&
		(r.opt.FromKey == "" || sk.KeyName == r.opt.FromKey)
}

func (r *rotation) count() (uint64, error) {
	var n uint64
	err := r.e.view(func(tx *meta.Tx) error {
		return tx.SealedKeys(0, func(_ meta.Ino, b []byte) bool {
			var sk keys.SealedKey
			if sk.UnmarshalBinary(b) == nil && r.selects(&sk) {
				n++
			}
			return true
		})
	})
	if err != nil {
		return 0, classify(fmt.Errorf("rotation: counting files: %w", err))
	}
	return n, nil
}

type resealed struct {
	ino       meta.Ino
	old, next []byte // the record unsealed, and its replacement (nil: skip)
}

func (r *rotation) run(ctx context.Context, job meta.RotationJob, resumed bool) (RotateProgress, error) {
	p := progressOf(job, resumed)
	var firstFailure error
	for {
		if err := ctx.Err(); err != nil {
			return p, fmt.Errorf("rotation interrupted after %d of %d files (run it again to resume): %w", p.Done, p.Total, err)
		}
		batch, next, more, err := r.collect(job.Next)
		if err != nil {
			return p, err
		}
		var out []resealed
		for _, c := range batch {
			nb, err := r.reseal(ctx, c)
			switch {
			case err == nil:
				out = append(out, resealed{ino: c.ino, old: c.sealed, next: nb})
			case errors.Is(err, errSkipRotation):
				p.Skipped++
			case ctx.Err() != nil:
				return p, fmt.Errorf("rotation interrupted after %d of %d files (run it again to resume): %w", p.Done, p.Total, ctx.Err())
			case errors.Is(err, ErrUnavailable):
				// The KMS is down: every later file would fail too. Stop; the job resumes.
				return p, fmt.Errorf("rotation stopped after %d of %d files (run it again to resume): %w", p.Done, p.Total, err)
			default:
				p.Failed++
				if firstFailure == nil {
					firstFailure = err
				}
				r.e.log.Error("rotation: cannot re-seal file key", "ino", uint64(c.ino), "err", err)
			}
		}
		var done, changed uint64
		err = r.e.update(func(tx *meta.Tx) error {
			done, changed = 0, 0
			for _, o := range out {
				cur, err := tx.SealedKey(o.ino)
				if errors.Is(err, meta.ErrNotFound) || (err == nil && !bytes.Equal(cur, o.old)) {
					changed++ // deleted or re-sealed meanwhile: nothing to do
					continue
				}
				if err != nil {
					return err
				}
				if err := tx.PutSealedKey(o.ino, o.next); err != nil {
					return err
				}
				done++
			}
			j := job
			j.Next, j.Done, j.Skipped = next, p.Done+done, p.Skipped+changed
			return tx.PutRotationJob(j)
		})
		if err != nil {
			return p, classify(fmt.Errorf("rotation: committing a batch: %w", err))
		}
		job.Next = next
		p.Done += done
		p.Skipped += changed
		job.Done, job.Skipped = p.Done, p.Skipped
		if r.opt.Progress != nil {
			r.opt.Progress(p)
		}
		if !more {
			break
		}
	}
	if err := r.e.update(func(tx *meta.Tx) error { return tx.DeleteRotationJob() }); err != nil {
		return p, classify(fmt.Errorf("rotation: finishing: %w", err))
	}
	if err := r.e.db.Sync(); err != nil {
		return p, classify(fmt.Errorf("rotation: syncing metadata: %w", err))
	}
	if firstFailure != nil {
		return p, fmt.Errorf("rotation finished, but %d files could not be re-sealed (first: %w)", p.Failed, firstFailure)
	}
	return p, nil
}

type rotateCandidate struct {
	ino    meta.Ino
	fileID [16]byte
	sealed []byte
	sk     keys.SealedKey
}

// collect reads the next batch of selected files from inode `from` on; next is where
// the batch after it starts.
func (r *rotation) collect(from meta.Ino) (batch []rotateCandidate, next meta.Ino, more bool, err error) {
	next = from
	err = r.e.view(func(tx *meta.Tx) error {
		batch, more = batch[:0], false
		var inner error
		err := tx.SealedKeys(from, func(ino meta.Ino, b []byte) bool {
			if len(batch) == rotateBatch {
				more = true
				return false
			}
			next = ino + 1
			var sk keys.SealedKey
			if err := sk.UnmarshalBinary(b); err != nil {
				inner = fmt.Errorf("sealed key of inode %d: %w: %v", ino, ErrCorrupt, err)
				return false
			}
			if !r.selects(&sk) {
				return true
			}
			in, err := tx.Inode(ino)
			if err != nil {
				inner = err
				return false
			}
			batch = append(batch, rotateCandidate{ino: ino, fileID: in.FileID, sealed: bytes.Clone(b), sk: sk})
			return true
		})
		return errors.Join(err, inner)
	})
	if err != nil {
		return nil, 0, false, classify(fmt.Errorf("rotation: reading sealed keys: %w", err))
	}
	return batch, next, more, nil
}

var errSkipRotation = errors.New("not rotated")

// reseal unseals a file's OEK and seals it again under the target key with the
// rotation's data key. SSE-C files are skipped: their key is the client's.
func (r *rotation) reseal(ctx context.Context, c rotateCandidate) ([]byte, error) {
	if c.sk.SSEType == keys.SSEC {
		return nil, errSkipRotation
	}
	oek, err := r.e.sealer.Unseal(ctx, c.sk, c.fileID)
	defer clear(oek[:])
	if err != nil {
		return nil, classify(fmt.Errorf("inode %d: unsealing under %q: %w", c.ino, c.sk.KeyName, err))
	}
	keyName, sseType := c.sk.KeyName, c.sk.SSEType
	if r.opt.ToKey != "" && r.opt.ToKey != keyName {
		keyName, sseType = r.opt.ToKey, keys.SSEKMS
	}
	// The user's encryption context stays with the file: S3 clients read it back, and
	// whoever audits the KMS sees it on every later unseal. (Contexts are SSE-KMS only,
	// and rotation never turns an SSE-KMS file into anything else.)
	sk, err := r.fork.SealWithContext(ctx, sseType, keyName, c.sk.Bucket, c.sk.Context, c.fileID, oek)
	if err != nil {
		return nil, classify(fmt.Errorf("inode %d: sealing under %q: %w", c.ino, keyName, err))
	}
	return sk.MarshalBinary()
}

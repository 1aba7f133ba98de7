package fs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
)

// BucketUsage is what one bucket holds, as its committed metadata says: content still in
// a write-back buffer counts once it is flushed.
type BucketUsage struct {
	Name string
	// DefaultKey is the bucket's own default key ("" = the process default).
	DefaultKey string
	// Files are regular files with at least one name (a hard-linked file counts once),
	// Dirs the directories below the bucket, Others symlinks, devices, FIFOs and sockets.
	Files, Dirs, Others uint64
	// LogicalBytes is the sum of the files' sizes.
	LogicalBytes uint64
	// Chunks are the chunk records of every regular inode of the bucket. StoredBytes sums
	// the stored (ciphertext) sizes of those kept as objects: a record's stored size is
	// its object's exact length (written with the object, checked by fsck), so this is
	// what the bucket takes in the object store, not counting the store's own block
	// rounding. InlineBytes sums the ciphertext of the tiny files' chunks kept in their
	// records, in the metadata, instead.
	Chunks, StoredBytes, InlineBytes uint64
	// Unlinked counts regular inodes without a name, and UnlinkedBytes their share of
	// StoredBytes: parts of multipart uploads in progress, and files deleted while open
	// (or by a crash) that await deletion.
	Unlinked, UnlinkedBytes uint64
	// Keys are the KMS keys that seal the bucket's file keys, in name order, with the
	// number of inodes (unlinked ones included) sealed under each. SSEC counts the files
	// sealed with a client's own key (S3 SSE-C), which names no KMS key.
	Keys []KeyUsage
	SSEC uint64
}

// KeyUsage is one KMS key and how many file keys it seals.
type KeyUsage struct {
	Name  string
	Files uint64
}

// Usage is the per-bucket usage of the store, and the totals over those buckets.
type Usage struct {
	Buckets []BucketUsage // in name order
	Total   BucketUsage   // Name "", DefaultKey ""
	// StoreTotal and StoreAvail are the object store's capacity and the room left in it
	// for ssefs, where the store knows them (a local directory: its filesystem's); zero
	// otherwise.
	StoreTotal, StoreAvail uint64
}

// usageCheckEvery is how many records a scan visits between looks at the context.
const usageCheckEvery = 4096

// Usage scans the metadata once, in one snapshot, and sums up every bucket, or only
// bucket when it is not "". It asks the KMS nothing: key names come from the sealed-key
// records. Memory is 16 bytes per regular file, for the inode-to-bucket map that the
// chunk and sealed-key passes join against (all three scans run in inode order).
func (e *Engine) Usage(ctx context.Context, bucket string) (Usage, error) {
	if err := ctx.Err(); err != nil {
		return Usage{}, err
	}
	type fileRef struct {
		ino      meta.Ino
		bucket   int32 // index into buckets
		unlinked bool
	}
	var (
		buckets []BucketUsage
		byIno   = map[meta.Ino]int{}
		files   []fileRef // sorted by inode
		keyIdx  []map[string]int
		seen    int
		stopErr error
	)
	tick := func() bool {
		if seen++; seen%usageCheckEvery == 0 {
			if stopErr = ctx.Err(); stopErr != nil {
				return false
			}
		}
		return true
	}
	// fileAt finds ino's entry at or after *pos: the passes are in inode order, so the
	// join moves forward only.
	fileAt := func(pos *int, ino meta.Ino) (fileRef, bool) {
		for *pos < len(files) && files[*pos].ino < ino {
			*pos++
		}
		if *pos < len(files) && files[*pos].ino == ino {
			return files[*pos], true
		}
		return fileRef{}, false
	}
	err := e.view(func(tx *meta.Tx) error {
		var listErr error
		err := tx.Entries(meta.RootIno, "", func(ent meta.Entry) bool {
			if bucket != "" && ent.Name != bucket {
				return true
			}
			if !isDirMode(ent.Mode) {
				return true
			}
			cfg, err := tx.BucketConfig(ent.Ino)
			if err != nil && !errors.Is(err, meta.ErrNotFound) {
				listErr = err
				return false
			}
			byIno[ent.Ino] = len(buckets)
			buckets = append(buckets, BucketUsage{Name: ent.Name, DefaultKey: cfg.DefaultKey})
			keyIdx = append(keyIdx, map[string]int{})
			return true
		})
		if err = errors.Join(err, listErr); err != nil {
			return err
		}
		if bucket != "" && len(buckets) == 0 {
			return fmt.Errorf("bucket %q: %w", bucket, ErrNotExist)
		}

		err = tx.Inodes(func(in meta.Inode) bool {
			b, ok := byIno[in.Bucket]
			if !ok || in.Ino == in.Bucket {
				return tick()
			}
			u := &buckets[b]
			switch in.Mode & syscall.S_IFMT {
			case syscall.S_IFREG:
				files = append(files, fileRef{in.Ino, int32(b), in.Nlink == 0})
				if in.Nlink == 0 {
					u.Unlinked++
				} else {
					u.Files++
					u.LogicalBytes += in.Size
				}
			case syscall.S_IFDIR:
				u.Dirs++
			default:
				u.Others++
			}
			return tick()
		})
		if err != nil || stopErr != nil {
			return errors.Join(err, stopErr)
		}

		pos := 0
		var decodeErr error
		err = tx.SealedKeys(0, func(ino meta.Ino, b []byte) bool {
			f, ok := fileAt(&pos, ino)
			if !ok {
				return tick()
			}
			var sk keys.SealedKey
			if err := sk.UnmarshalBinary(b); err != nil {
				decodeErr = fmt.Errorf("the sealed key of inode %d does not decode ('ssefs fsck' checks the store): %w: %v", ino, ErrCorrupt, err)
				return false
			}
			u := &buckets[f.bucket]
			if sk.SSEType == keys.SSEC {
				u.SSEC++
				return tick()
			}
			i, ok := keyIdx[f.bucket][sk.KeyName]
			if !ok {
				i = len(u.Keys)
				keyIdx[f.bucket][sk.KeyName] = i
				u.Keys = append(u.Keys, KeyUsage{Name: sk.KeyName})
			}
			u.Keys[i].Files++
			return tick()
		})
		if err != nil || decodeErr != nil || stopErr != nil {
			return errors.Join(err, decodeErr, stopErr)
		}

		pos = 0
		err = tx.AllChunks(func(ino meta.Ino, c meta.Chunk) bool {
			f, ok := fileAt(&pos, ino)
			if !ok {
				return tick()
			}
			u := &buckets[f.bucket]
			u.Chunks++
			if c.Inline != nil {
				u.InlineBytes += uint64(len(c.Inline))
				return tick()
			}
			u.StoredBytes += uint64(c.StoredLen)
			if f.unlinked {
				u.UnlinkedBytes += uint64(c.StoredLen)
			}
			return tick()
		})
		return errors.Join(err, stopErr)
	})
	if err != nil {
		if ctx.Err() != nil {
			return Usage{}, ctx.Err()
		}
		return Usage{}, classify(fmt.Errorf("usage: %w", err))
	}
	u := Usage{Buckets: buckets}
	slices.SortFunc(u.Buckets, func(a, b BucketUsage) int { return cmp.Compare(a.Name, b.Name) })
	total := map[string]uint64{}
	for i := range u.Buckets {
		b := &u.Buckets[i]
		sortKeys(b.Keys)
		t := &u.Total
		t.Files += b.Files
		t.Dirs += b.Dirs
		t.Others += b.Others
		t.LogicalBytes += b.LogicalBytes
		t.Chunks += b.Chunks
		t.StoredBytes += b.StoredBytes
		t.InlineBytes += b.InlineBytes
		t.Unlinked += b.Unlinked
		t.UnlinkedBytes += b.UnlinkedBytes
		t.SSEC += b.SSEC
		for _, k := range b.Keys {
			total[k.Name] += k.Files
		}
	}
	for name, n := range total {
		u.Total.Keys = append(u.Total.Keys, KeyUsage{Name: name, Files: n})
	}
	sortKeys(u.Total.Keys)
	if s, ok := e.store.(usager); ok {
		if su, err := s.Usage(); err == nil {
			u.StoreTotal, u.StoreAvail = su.TotalBytes, su.AvailBytes
		} else {
			e.log.Warn("usage: the object store's capacity is unknown", "err", err)
		}
	}
	return u, nil
}

func sortKeys(ks []KeyUsage) {
	slices.SortFunc(ks, func(a, b KeyUsage) int { return cmp.Compare(a.Name, b.Name) })
}

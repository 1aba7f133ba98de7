package fs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// sealing is a chunk handed to a sealer: encrypted and stored off the file's lock, so the
// writer goes on filling the next chunk meanwhile and chunks of one or many files use
// every core. Its record is committed by the file's next reap. The plaintext stays
// readable (and counted in the write-back bound) until that commit.
type sealing struct {
	buf  []byte // plaintext; read-only while sealing
	done chan struct{}
	rec  meta.Chunk // set once done, when err is nil
	err  error
}

// sealChunkAsync starts storing chunk idx of a file whose identity is given by value:
// the sealer must not touch the openFile, whose fields its lock guards.
func (e *Engine) sealChunkAsync(ctx context.Context, oek [32]byte, fileID [16]byte, ino meta.Ino, idx uint64, buf []byte, inline bool) *sealing {
	s := &sealing{buf: buf, done: make(chan struct{})}
	ctx = context.WithoutCancel(ctx) // a writer that gave up does not cancel what it handed over
	go func() {
		defer close(s.done)
		e.sealers <- struct{}{}
		held := true
		release := func() {
			if held {
				held = false
				<-e.sealers
			}
		}
		defer release()
		s.rec, s.err = e.sealChunk(ctx, &oek, fileID, ino, idx, buf, inline, release)
	}()
	return s
}

// storeParallel bounds the chunk objects being stored at once: the S3 backend's default
// bound on requests in flight. A sealer's slot held across its PUT kept four in flight
// on two cores and the S3 store's writes at 97 MB/s; with eight, 219 MB/s.
const storeParallel = 16

// sealChunkNow stores a chunk on the caller's goroutine: for a small one, as the last
// chunk of a small file at close, the hand-over to a sealer and back costs more than
// the sealing.
func (e *Engine) sealChunkNow(ctx context.Context, oek [32]byte, fileID [16]byte, ino meta.Ino, idx uint64, buf []byte, inline bool) *sealing {
	s := &sealing{buf: buf, done: closedChan}
	s.rec, s.err = e.sealChunk(ctx, &oek, fileID, ino, idx, buf, inline, nil)
	return s
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// syncSealMax is the largest chunk sealed on the flushing goroutine.
const syncSealMax = 64 << 10

// DefaultInlineMax is the largest tiny file whose content is kept in its chunk record
// (meta.Chunk.Inline) rather than in an object of its own: creating, syncing and
// deleting an object file cost a tiny file more than all its metadata, and the sealed
// bytes (4 KiB + 32) stay small beside Badger's other values.
const DefaultInlineMax = 4 << 10

// spaceGuard is a store that keeps room on its disk for the metadata (objstore.Local):
// inline content goes into the metadata, on that disk, so it asks first too.
type spaceGuard interface {
	CheckFree(n uint64) error
}

// inlines tells whether chunk idx of a file with chunks of cs bytes, holding n bytes, is
// kept inline: the first chunk of a tiny file, which is the whole file.
func (e *Engine) inlines(idx uint64, n int, cs uint64) bool {
	return idx == 0 && n <= e.inlineMax && uint64(n) < cs
}

// sealChunk encrypts chunk idx under its own version's key and stores it: as a new
// object, or in the record when inline. handOff, if set, is called once the encryption
// is done and a storer slot is held: the caller's sealer slot can go.
func (e *Engine) sealChunk(ctx context.Context, oek *[32]byte, fileID [16]byte, ino meta.Ino, idx uint64, buf []byte, inline bool, handOff func()) (meta.Chunk, error) {
	version, err := e.db.NextVersion()
	if err != nil {
		return meta.Chunk{}, fmt.Errorf("chunk version: %w", err)
	}
	key := chunkKey(oek, fileID, idx, version)
	defer clear(key[:])
	// The ID names this version of the chunk even when no object holds it: the read
	// cache is keyed by it.
	id := objstore.NewID()
	if inline {
		sealed, err := sealChunkInto(nil, &key, buf)
		if err != nil {
			return meta.Chunk{}, err
		}
		if g, ok := e.store.(spaceGuard); ok {
			if err := g.CheckFree(uint64(len(sealed))); err != nil {
				return meta.Chunk{}, classify(fmt.Errorf("storing chunk %d of inode %d inline: %w", idx, ino, err))
			}
		}
		return meta.Chunk{Index: idx, Object: id, Version: version,
			PlainLen: uint32(len(buf)), StoredLen: uint32(len(sealed)), Inline: sealed}, nil
	}
	bp := sealedBufs.Get().(*[]byte)
	defer sealedBufs.Put(bp)
	sealed, err := sealChunkInto(*bp, &key, buf)
	if err != nil {
		return meta.Chunk{}, err
	}
	e.storers <- struct{}{}
	defer func() { <-e.storers }()
	if handOff != nil {
		handOff()
	}
	if err := e.putObject(ctx, id, sealed); err != nil {
		return meta.Chunk{}, classify(fmt.Errorf("storing chunk %d of inode %d: %w", idx, ino, err))
	}
	e.markUnsynced(id)
	return meta.Chunk{Index: idx, Object: id, Version: version,
		PlainLen: uint32(len(buf)), StoredLen: uint32(len(sealed))}, nil
}

// startSealing hands the named dirty chunks to sealers. A chunk still sealing from an
// earlier write is settled first: its record must be committed before the newer one, or
// the older would overwrite it.
func (of *openFile) startSealing(ctx context.Context, idxs []uint64) error {
	for _, idx := range idxs {
		if of.inflight[idx] != nil {
			if err := of.reap(ctx, true); err != nil {
				return err
			}
			break
		}
	}
	if of.inflight == nil {
		of.inflight = make(map[uint64]*sealing)
	}
	for _, idx := range idxs {
		buf, ok := of.dirty[idx]
		if !ok {
			continue
		}
		delete(of.dirty, idx)
		inline := of.e.inlines(idx, len(buf), of.cs())
		if len(idxs) == 1 && len(buf) <= syncSealMax {
			of.inflight[idx] = of.e.sealChunkNow(ctx, of.oek, of.inode.FileID, of.inode.Ino, idx, buf, inline)
			continue
		}
		of.inflight[idx] = of.e.sealChunkAsync(ctx, of.oek, of.inode.FileID, of.inode.Ino, idx, buf, inline)
	}
	return nil
}

// reap commits the records of the chunks whose sealing finished (with wait, of all
// of them, after waiting), with the inode, in one transaction. A chunk that failed to
// store goes back to the write-back buffer, unless written again meanwhile, so nothing
// acknowledged is lost and the next flush retries it; the error is returned, as the
// kernel reports a failed writeback at the next fsync or close.
func (of *openFile) reap(ctx context.Context, wait bool) error {
	var idxs []uint64
	for idx, s := range of.inflight {
		if wait {
			<-s.done
		} else {
			select {
			case <-s.done:
			default:
				continue
			}
		}
		idxs = append(idxs, idx)
	}
	if len(idxs) == 0 {
		return nil
	}
	slices.Sort(idxs)
	var errs []error
	records := make([]meta.Chunk, 0, len(idxs))
	for _, idx := range idxs {
		s := of.inflight[idx]
		if s.err != nil {
			errs = append(errs, s.err)
			of.requeue(idx, s)
			continue
		}
		records = append(records, s.rec)
	}
	for len(records) > 0 {
		n := min(len(records), chunkBatch)
		if err := of.commitChunks(records[:n]); err != nil {
			for _, r := range records {
				of.requeue(r.Index, of.inflight[r.Index])
			}
			of.e.discardObjects(idsOf(records))
			return errors.Join(append(errs, err)...)
		}
		records = records[n:]
	}
	return errors.Join(errs...)
}

// requeue puts the plaintext of a chunk whose sealing came to nothing back into the
// write-back buffer, unless the chunk was written again since (that buffer is newer).
func (of *openFile) requeue(idx uint64, s *sealing) {
	delete(of.inflight, idx)
	if _, newer := of.dirty[idx]; newer {
		of.release(s.buf)
		return
	}
	if of.dirty == nil {
		of.dirty = make(map[uint64][]byte)
	}
	of.dirty[idx] = s.buf
}

// commitChunks commits stored chunk records with the inode. Objects are written before
// the metadata that references them; replaced objects are deleted only once that commit
// is durable.
func (of *openFile) commitChunks(records []meta.Chunk) error {
	e := of.e
	// Chunks left out of this commit: the size it records must not cover them.
	var later []uint64
	for idx := range of.dirty {
		later = append(later, idx)
	}
	for idx := range of.inflight {
		if _, in := slices.BinarySearchFunc(records, idx, func(r meta.Chunk, idx uint64) int { return cmp.Compare(r.Index, idx) }); !in {
			later = append(later, idx)
		}
	}
	var replaced []meta.Chunk
	sizeCut := false
	err := e.update(func(tx *meta.Tx) error {
		replaced = replaced[:0]
		for i := range records {
			old, err := tx.Chunk(of.inode.Ino, records[i].Index)
			if err == nil {
				replaced = append(replaced, old)
			} else if !errors.Is(err, meta.ErrNotFound) {
				return err
			}
			if err := tx.PutChunk(of.inode.Ino, records[i]); err != nil {
				return err
			}
		}
		var err error
		sizeCut, err = of.putInodeBefore(tx, later)
		return err
	})
	if err != nil {
		return fmt.Errorf("committing chunks of inode %d: %w", of.inode.Ino, err)
	}
	// A size held back for chunks still in memory is committed with them.
	of.changed, of.contentChanged = sizeCut, false
	e.discardChunks(replaced)
	if of.chunks == nil {
		of.chunks = make(map[uint64]*meta.Chunk)
	}
	for i := range records {
		r := records[i]
		of.chunks[r.Index] = &r
		of.release(of.inflight[r.Index].buf)
		delete(of.inflight, r.Index)
	}
	return nil
}

package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"syscall"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// maxFileSize keeps chunk indexes and offsets far from overflow.
const maxFileSize = 1 << 50

// openFile is the state of a regular file while at least one handle has it open. All
// handles of one inode share it, so reads see every handle's writes (and mmap agrees
// with read/write).
type openFile struct {
	e    *Engine
	refs int // guarded by e.nsMu

	mu     sync.Mutex
	inode  meta.Inode // size and times here are newer than the stored ones
	oek    [32]byte
	chunks map[uint64]*meta.Chunk // stored chunk records seen so far; nil value = no such chunk
	dirty  map[uint64][]byte      // plaintext of chunks written since the last flush
	// inflight: chunks handed to sealers whose records are not committed yet (pipeline.go).
	inflight map[uint64]*sealing
	changed  bool // size or times changed since the inode was last committed

	// The OEK stays in memory while the file is open; keyChecked and keyErr are the last
	// re-check of the sealed key against the KMS (see authorize).
	keyChecked time.Time
	keyErr     error

	// contentChanged: content was written or truncated since the last commit, which
	// must drop the S3 ETag (object.go) in the same transaction.
	contentChanged bool
	// sizeHeldBack: the last putInode recorded a smaller size than the file has, for
	// dirty chunks still in memory (see putInodeBefore).
	sizeHeldBack bool
	// eofTrimmed: stale chunk data past the size was dropped (trimBeforeGrowing).
	eofTrimmed bool
	// writeEnd is where the last write ended: a write that starts there continues a
	// sequential stream (see WriteAt).
	writeEnd int64
	// sseC is set for an SSE-C file: the MD5 of its client key, which every open must
	// present (openObjectLocked); plain opens (FUSE) are refused.
	sseC *[16]byte
	// ghost is what the last shrinking truncate cut off, kept until the content next
	// changes for reads the kernel sized before it learnt of the truncate (ReadAtKernel).
	ghost *truncGhost
}

// truncGhost is the content a shrinking truncate cut off a file. The kernel sizes its
// page cache reads by the size it last heard of, and it hears of a truncate only in the
// reply to it, after the data is gone: a read it sent meanwhile would be answered short.
// FUSE takes a short read for the end of the file, but while the truncate is in flight
// (FUSE_I_SIZE_UNSTABLE) or other attributes arrived since the read was sent, it keeps
// the old size and still marks the pages it filled with zeros up to date, so readers
// see zeros that no writer wrote until the truncate's reply is processed. Answering such
// reads from the content as it was before the truncate is what a local filesystem gives
// them: the read ordered before the truncate.
type truncGhost struct {
	size uint64 // the file's size before the truncate
	// dirty holds the write-back buffers of the chunks the truncate cut, as they were;
	// recs the stored records it deleted or shortened, as they were. A chunk in neither
	// was a hole there, or lies below the cut and is unchanged.
	dirty map[uint64][]byte
	recs  map[uint64]*meta.Chunk
	from  uint64 // the first chunk the truncate cut
	// drop is the records it deleted: their objects go when the ghost goes.
	drop []meta.Chunk
}

// dropGhost forgets what the last truncate cut off: the content changes, so a read the
// kernel sized before that truncate can no longer be told apart from one sized before
// this change. The kernel has applied the truncate by then: it holds the inode lock
// from sending a truncate until it has processed the reply, and every write and
// truncate through the mount takes that lock. Called with of.mu held.
func (of *openFile) dropGhost() {
	g := of.ghost
	if g == nil {
		return
	}
	of.ghost = nil
	for _, buf := range g.dirty {
		of.release(buf)
	}
	of.e.discardChunks(g.drop)
}

// keyCheckInterval is how often an open file re-checks that its key may still be used.
// The check is a cache lookup until the key cache's TTL runs out, so a key disabled in
// the KMS stops working for open files within that TTL plus this interval.
var keyCheckInterval = time.Second

// Handle is one open of a regular file.
type Handle struct {
	of *openFile
}

// Ino returns the handle's inode number.
func (h *Handle) Ino() Ino { return uint64(h.of.inode.Ino) }

func (e *Engine) openState(ino Ino) *openFile {
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	return e.files[ino]
}

// Open opens a regular file for reading and writing.
func (e *Engine) Open(ctx context.Context, ino Ino) (*Handle, error) {
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	return e.openLocked(ctx, ino)
}

func (e *Engine) openLocked(ctx context.Context, ino Ino) (*Handle, error) {
	if of := e.files[ino]; of != nil {
		if of.sseC != nil {
			return nil, classify(fmt.Errorf("open %d: %w", ino, keys.ErrClientKeyRequired))
		}
		of.mu.Lock()
		err := of.authorize(ctx)
		of.mu.Unlock()
		if err != nil {
			return nil, err
		}
		of.refs++
		return &Handle{of: of}, nil
	}
	var in meta.Inode
	var sealed []byte
	err := e.view(func(tx *meta.Tx) (err error) {
		if in, err = tx.Inode(meta.Ino(ino)); err != nil {
			return err
		}
		switch {
		case isDirMode(in.Mode):
			return ErrIsDir
		case !isRegMode(in.Mode):
			return fmt.Errorf("mode %o has no content: %w", in.Mode, ErrInvalid)
		case in.Nlink == 0 && !e.orphans[ino]:
			return ErrNotExist
		}
		sealed, err = tx.SealedKey(in.Ino)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %d: %w", ino, err)
	}
	oek, err := e.unsealFileKey(ctx, in, sealed)
	if err != nil {
		return nil, fmt.Errorf("open %d: %w", ino, err)
	}
	of := &openFile{e: e, inode: in, oek: oek, refs: 1, keyChecked: time.Now()}
	e.files[ino] = of
	return &Handle{of: of}, nil
}

// trimBeforeGrowing drops what the file's stored chunk records hold past its size, before
// the first operation of this open state that grows the file. Only a crash leaves such
// data (a commit records a size held back for chunks still in memory, see
// putInodeBefore, and the process died before the rest), and it must not come back as
// content when the file grows by truncate or by a write past its end: zeros belong
// there. Reads never see it (they stop at the size), so a file that only gets read is
// left as it is, for fsck to report. Until this open state first grows the file, no
// record past its size can be its own (records past the size come only from writes
// that grew it), so everything past the size is stale. Called with of.mu held.
func (of *openFile) trimBeforeGrowing() error {
	if of.eofTrimmed {
		return nil
	}
	if err := of.e.trimPastEOF(&of.inode); err != nil {
		return err
	}
	of.eofTrimmed = true
	of.chunks = nil // the cached records may be among those dropped
	return nil
}

func (e *Engine) trimPastEOF(in *meta.Inode) error {
	if in.ChunkSize == 0 {
		return nil
	}
	cs := uint64(in.ChunkSize)
	keep := (in.Size + cs - 1) / cs
	tail := in.Size - min(in.Size, (max(keep, 1)-1)*cs)
	for {
		var past []meta.Chunk
		var clip *meta.Chunk
		err := e.view(func(tx *meta.Tx) error {
			if keep > 0 {
				c, err := tx.Chunk(in.Ino, keep-1)
				if err == nil && uint64(c.PlainLen) > tail {
					clip = &c
				} else if err != nil && !errors.Is(err, meta.ErrNotFound) {
					return err
				}
			}
			return tx.Chunks(in.Ino, keep, func(c meta.Chunk) bool {
				past = append(past, c)
				return len(past) < chunkBatch
			})
		})
		if err != nil {
			return fmt.Errorf("chunks past the end of inode %d: %w", in.Ino, err)
		}
		if len(past) == 0 && clip == nil {
			return nil
		}
		e.log.Info("dropping chunk data past the end of a file (left by a crash)", "ino", uint64(in.Ino), "size", in.Size, "chunks", len(past))
		err = e.update(func(tx *meta.Tx) error {
			for _, c := range past {
				if err := tx.DeleteChunk(in.Ino, c.Index); err != nil {
					return err
				}
			}
			if clip != nil {
				c := *clip
				c.PlainLen = uint32(tail)
				return tx.PutChunk(in.Ino, c)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("dropping chunks past the end of inode %d: %w", in.Ino, err)
		}
		e.discardChunks(past)
		if len(past) < chunkBatch {
			return nil
		}
	}
}

// unsealFileKey recovers a file's OEK from its stored sealed-key record.
func (e *Engine) unsealFileKey(ctx context.Context, in meta.Inode, sealed []byte) ([32]byte, error) {
	var sk keys.SealedKey
	if err := sk.UnmarshalBinary(sealed); err != nil {
		return [32]byte{}, fmt.Errorf("sealed key of inode %d: %w: %v", in.Ino, ErrCorrupt, err)
	}
	oek, err := e.sealer.Unseal(ctx, sk, in.FileID)
	if err != nil {
		err = classify(fmt.Errorf("unsealing the key of inode %d (%s %q): %w", in.Ino, sk.SSEType, sk.KeyName, err))
		e.log.Error("cannot unseal file key", "ino", uint64(in.Ino), "key", sk.KeyName, "err", err)
	}
	return oek, err
}

// authorize re-checks, at most once per keyCheckInterval, that the KMS still lets the
// file's key be unsealed. An open file keeps its OEK in memory, and without this a key
// disabled or deleted in the KMS (secure erasure) would keep working for as long as some
// process holds the file open. A failed check is remembered for the interval too, so a
// reader in a loop does not hammer the KMS. Called with of.mu held.
func (of *openFile) authorize(ctx context.Context) error {
	now := time.Now()
	if now.Sub(of.keyChecked) < keyCheckInterval {
		return of.keyErr
	}
	var sealed []byte
	err := of.e.view(func(tx *meta.Tx) (err error) {
		sealed, err = tx.SealedKey(of.inode.Ino)
		return err
	})
	if err == nil {
		var sk keys.SealedKey
		if sk.UnmarshalBinary(sealed) == nil && sk.SSEType == keys.SSEC {
			// The client's key was checked at open; no KMS key stands behind it.
			of.keyChecked, of.keyErr = now, nil
			return nil
		}
		var oek [32]byte
		oek, err = of.e.unsealFileKey(ctx, of.inode, sealed)
		if err == nil && oek != of.oek {
			err = fmt.Errorf("inode %d: its sealed key no longer unseals to the key it was opened with: %w", of.inode.Ino, ErrCorrupt)
		}
		clear(oek[:])
	}
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err // the caller gave up: nothing learnt about the key
	}
	of.keyChecked, of.keyErr = now, err
	return err
}

// Attr returns the open file's current attributes.
func (h *Handle) Attr() Attr {
	h.of.mu.Lock()
	defer h.of.mu.Unlock()
	return attrOf(&h.of.inode)
}

func (of *openFile) cs() uint64 { return uint64(of.inode.ChunkSize) }

// chunk returns the stored record of chunk idx, or nil for a hole.
func (of *openFile) chunk(idx uint64) (*meta.Chunk, error) {
	if c, ok := of.chunks[idx]; ok {
		return c, nil
	}
	var c *meta.Chunk
	err := of.e.view(func(tx *meta.Tx) error {
		got, err := tx.Chunk(of.inode.Ino, idx)
		if errors.Is(err, meta.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		c = &got
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chunk %d of %d: %w", idx, of.inode.Ino, err)
	}
	if of.chunks == nil {
		of.chunks = make(map[uint64]*meta.Chunk)
	}
	of.chunks[idx] = c
	return c, nil
}

// readStored decrypts plaintext [off, off+len(p)) of a stored chunk into p.
func (of *openFile) readStored(ctx context.Context, c *meta.Chunk, p []byte, off int64) error {
	return of.e.readStored(ctx, of.fileRef(), c, p, off)
}

// fileRef is what reading a file's stored chunks needs, copied so it can be used
// without the file's lock.
type fileRef struct {
	ino    meta.Ino
	fileID [16]byte
	oek    [32]byte
}

func (of *openFile) fileRef() fileRef {
	return fileRef{ino: of.inode.Ino, fileID: of.inode.FileID, oek: of.oek}
}

func (e *Engine) readStored(ctx context.Context, f fileRef, c *meta.Chunk, p []byte, off int64) error {
	end := off + int64(len(p))
	first, last := off/darePayload, (end-1)/darePayload
	// The packages the cache holds are copied out; the rest, from the first missing one
	// to the last, is read from the store in one request.
	lo, hi := int64(-1), int64(-1)
	for pkg := first; pkg <= last; pkg++ {
		segLo, segHi := max(off, pkg*darePayload), min(end, (pkg+1)*darePayload)
		if e.cache.copyOut(pkgKey{c.Object, uint32(pkg)}, p[segLo-off:segHi-off], int(segLo-pkg*darePayload)) {
			continue
		}
		if lo < 0 {
			lo = pkg
		}
		hi = pkg
	}
	if lo < 0 {
		return nil
	}
	start, stop := lo*darePackage, min((hi+1)*darePackage, int64(c.StoredLen))
	if start >= stop {
		return fmt.Errorf("chunk %d of inode %d: range beyond its %d stored bytes: %w", c.Index, f.ino, c.StoredLen, ErrCorrupt)
	}
	var cipher []byte
	if c.Inline != nil {
		cipher = c.Inline[start:stop]
	} else {
		var done func()
		cipher, done = getCipherBuf(stop - start)
		defer done()
		n, err := e.store.ReadAt(ctx, c.Object, cipher, start)
		if err != nil && !(errors.Is(err, io.EOF) && n == len(cipher)) {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("object %x is shorter than recorded: %w", c.Object, ErrCorrupt)
			}
			return e.reportCorrupt(f.ino, c.Index, classify(err))
		}
	}
	key := chunkKey(&f.oek, f.fileID, c.Index, c.Version)
	defer clear(key[:])
	// Packages wholly inside p are decrypted straight into it, a run at a time, and not
	// cached (sequential reads do not come back; the kernel caches pages). A package
	// only partly read is decrypted whole into the cache: a small random read is likely
	// followed by another in the same package.
	for pkg := lo; pkg <= hi; {
		segLo, segHi := max(off, pkg*darePayload), min(end, (pkg+1)*darePayload)
		pkgPlain := min(darePayload, int64(c.PlainLen)-pkg*darePayload)
		cstart := (pkg - lo) * darePackage
		if segHi-segLo == pkgPlain || e.cache == nil {
			run := pkg + 1
			for run <= hi && min(end, (run+1)*darePayload)-run*darePayload == min(darePayload, int64(c.PlainLen)-run*darePayload) {
				run++
			}
			runEnd := min(end, run*darePayload)
			if segHi-segLo != pkgPlain { // no cache: decrypt just this package's part
				run, runEnd = pkg+1, segHi
			}
			cend := min(int64(len(cipher)), (run-lo)*darePackage)
			if err := openChunkRange(&key, cipher[cstart:cend], pkg*darePackage, p[segLo-off:runEnd-off], segLo); err != nil {
				return e.reportCorrupt(f.ino, c.Index, err)
			}
			pkg = run
			continue
		}
		if pkgPlain <= 0 {
			return e.reportCorrupt(f.ino, c.Index, fmt.Errorf("package %d past the chunk's %d bytes: %w", pkg, c.PlainLen, ErrCorrupt))
		}
		plain := e.cache.reserve()[:pkgPlain]
		cend := min(int64(len(cipher)), cstart+darePackage)
		if err := openChunkRange(&key, cipher[cstart:cend], pkg*darePackage, plain, pkg*darePayload); err != nil {
			return e.reportCorrupt(f.ino, c.Index, err)
		}
		copy(p[segLo-off:segHi-off], plain[segLo-pkg*darePayload:])
		e.cache.add(pkgKey{c.Object, uint32(pkg)}, plain)
		pkg++
	}
	return nil
}

// reportCorrupt logs a chunk that failed authentication or went missing: tampered data
// is an error the operator must see, never wrong bytes.
func (e *Engine) reportCorrupt(ino meta.Ino, idx uint64, err error) error {
	err = fmt.Errorf("inode %d chunk %d: %w", ino, idx, err)
	if errors.Is(err, ErrCorrupt) {
		e.log.Error("chunk failed authentication", "ino", uint64(ino), "chunk", idx, "err", err)
	}
	return err
}

// ClearSetID drops the file's set-ID bits (setIDBits), as a write by an unprivileged
// caller must, and reports whether it had any. A frontend calls it before such a write
// when the kernel leaves the job to the filesystem (FUSE_HANDLE_KILLPRIV_V2); the change
// is published, as the kernel's cached mode still shows the bits.
func (h *Handle) ClearSetID(ctx context.Context) bool {
	of := h.of
	of.mu.Lock()
	kill := setIDBits(of.inode.Mode)
	if kill != 0 {
		of.inode.Mode &^= kill
		of.inode.Ctime = now()
		of.changed = true
	}
	of.mu.Unlock()
	if kill != 0 {
		// Not as the frontend that asked: its kernel must drop the mode it cached.
		of.e.publish(context.Background(), Change{Ino: uint64(of.inode.Ino)})
	}
	return kill != 0
}

// ReadAt reads with io.ReaderAt semantics: io.EOF when the file ends before p is full.
// What is buffered is copied under the file's lock; stored chunks are read and
// decrypted after it is dropped, so the kernel's parallel readahead requests, and
// writers, do not queue behind one another's I/O.
func (h *Handle) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return h.readAt(ctx, p, off, 0)
}

// ReadAtKernel is ReadAt for a page cache of pages of the given size (the FUSE
// frontend's kernel). A read that reaches past the page holding the file's end was sized
// by a size from before a truncate (the cache never asks past the page of the end it
// knows): it is answered from the content as it was before that truncate, while that is
// kept (see truncGhost). A read within that page could be either, and gets the content
// as it is now.
func (h *Handle) ReadAtKernel(ctx context.Context, p []byte, off int64, page int64) (int, error) {
	return h.readAt(ctx, p, off, page)
}

// PackageSpan returns the stretch of the file, as it is now, that the DARE package
// holding off covers: a read of any byte of it authenticates and decrypts all of it,
// and a small read keeps it in the read cache (see readStored). Empty past the end.
func (h *Handle) PackageSpan(off int64) (lo, hi int64) {
	of := h.of
	of.mu.Lock()
	defer of.mu.Unlock()
	size := int64(of.inode.Size)
	if off < 0 || off >= size {
		return off, off
	}
	cs := int64(of.cs())
	chunkLo := off - off%cs
	lo = chunkLo + (off-chunkLo)/darePayload*darePayload
	return lo, min(lo+darePayload, chunkLo+cs, size)
}

func (h *Handle) readAt(ctx context.Context, p []byte, off int64, page int64) (int, error) {
	of := h.of
	of.mu.Lock()
	locked := true
	defer func() {
		if locked {
			of.mu.Unlock()
		}
	}()
	if off < 0 {
		return 0, fmt.Errorf("read at %d: %w", off, ErrInvalid)
	}
	if err := of.authorize(ctx); err != nil {
		return 0, err
	}
	size := int64(of.inode.Size)
	if g := of.ghost; g != nil && page > 0 && off+int64(len(p)) > (size+page-1)/page*page {
		// Rare (a read racing a truncate), so the stored chunks are read under the lock.
		return of.readGhost(ctx, p, off)
	}
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	type storedPiece struct {
		c  *meta.Chunk
		p  []byte
		lo int64
	}
	var stored []storedPiece
	cs := int64(of.cs())
	for pc := range chunkPieces(p, off, cs) {
		idx, lo, piece := pc.idx, pc.lo, pc.buf
		if of.readBuffered(idx, piece, lo) {
			continue
		}
		c, err := of.chunk(idx)
		if err != nil {
			return 0, err
		}
		valid := 0
		if c != nil && lo < int64(c.PlainLen) {
			valid = int(min(int64(len(piece)), int64(c.PlainLen)-lo))
			stored = append(stored, storedPiece{c: c, p: piece[:valid], lo: lo})
		}
		clear(piece[valid:])
	}
	if len(stored) > 0 {
		// Held before the file's lock is dropped: a commit replacing these chunks and the
		// sync after it cannot delete their objects until the reads below are done.
		of.e.readers.RLock()
		defer of.e.readers.RUnlock()
		ref := of.fileRef()
		of.mu.Unlock()
		locked = false
		for _, sp := range stored {
			if err := of.e.readStored(ctx, ref, sp.c, sp.p, sp.lo); err != nil {
				// io.ReaderAt: the bytes before the failed piece are good.
				return int(int64(sp.c.Index)*cs + sp.lo - off), err
			}
		}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// chunkPiece is the part of a buffer, read or written at some file offset, that lies in
// one chunk.
type chunkPiece struct {
	idx uint64 // the chunk
	lo  int64  // where in the chunk the piece starts
	at  int    // where in the buffer it starts
	buf []byte
}

// chunkPieces cuts p, at file offset off, where chunks of cs bytes begin.
func chunkPieces(p []byte, off, cs int64) iter.Seq[chunkPiece] {
	return func(yield func(chunkPiece) bool) {
		for at := 0; at < len(p); {
			pos := off + int64(at)
			idx, lo := uint64(pos/cs), pos%cs
			piece := p[at:min(len(p), at+int(cs-lo))]
			if !yield(chunkPiece{idx: idx, lo: lo, at: at, buf: piece}) {
				return
			}
			at += len(piece)
		}
	}
}

// readGhost reads [off, off+len(p)) as the file was before the truncate that left
// of.ghost, with ReadAt's results. Nothing was written since (a write drops the ghost),
// so below the cut the content is the current one. Called with of.mu held.
func (of *openFile) readGhost(ctx context.Context, p []byte, off int64) (int, error) {
	g := of.ghost
	if off >= int64(g.size) {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > int64(g.size)-off {
		p = p[:int64(g.size)-off]
	}
	cs := int64(of.cs())
	for pc := range chunkPieces(p, off, cs) {
		idx, lo, piece := pc.idx, pc.lo, pc.buf
		if buf, ok := g.dirty[idx]; ok {
			clear(piece[copy(piece, buf[min(lo, int64(len(buf))):]):])
			continue
		}
		c := g.recs[idx]
		if c == nil && idx < g.from {
			if of.readBuffered(idx, piece, lo) {
				continue
			}
			var err error
			if c, err = of.chunk(idx); err != nil {
				return 0, err
			}
		}
		valid := 0
		if c != nil {
			// Never past the old size: stored bytes there were stale already.
			plain := min(int64(c.PlainLen), int64(g.size)-int64(idx)*cs)
			if lo < plain {
				valid = int(min(int64(len(piece)), plain-lo))
				if err := of.readStored(ctx, c, piece[:valid], lo); err != nil {
					return 0, err
				}
			}
		}
		clear(piece[valid:])
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readBuffered fills p with plaintext [lo, lo+len(p)) of chunk idx when the chunk is in
// the write-back buffer or being sealed, and reports whether it was.
func (of *openFile) readBuffered(idx uint64, p []byte, lo int64) bool {
	buf, ok := of.dirty[idx]
	if s := of.inflight[idx]; !ok && s != nil {
		buf, ok = s.buf, true
	}
	if !ok {
		return false
	}
	n := 0
	if lo < int64(len(buf)) {
		n = copy(p, buf[lo:])
	}
	clear(p[n:])
	return true
}

// WriteAt writes p at off into the file's write-back buffer; whole chunks are encrypted
// and stored as soon as they fill, the rest on flush, fsync, release or memory pressure.
func (h *Handle) WriteAt(ctx context.Context, p []byte, off int64) (int, error) {
	of := h.of
	of.mu.Lock()
	defer of.mu.Unlock()
	if off < 0 || off+int64(len(p)) > maxFileSize {
		return 0, fmt.Errorf("write of %d bytes at %d: %w", len(p), off, ErrTooBig)
	}
	if err := of.authorize(ctx); err != nil {
		return 0, err
	}
	// Commit what the sealers finished. A chunk they failed to store is back in the
	// buffer; its error fails this write before it changes anything, so the writer
	// learns of it at once (and a later flush retries the chunk).
	if err := of.reap(ctx, false); err != nil {
		return 0, err
	}
	if len(p) > 0 {
		of.dropGhost()
	}
	if end := uint64(off) + uint64(len(p)); end > of.inode.Size {
		if err := of.trimBeforeGrowing(); err != nil {
			return 0, err
		}
	}
	cs := int64(of.cs())
	// A chunk a sequential stream has written to its end is done with: it is stored at
	// once, to bound memory. A random writer that happens to write a chunk's last bytes
	// will most likely come back to it: storing it then would cost a seal and a store now
	// and a load and an open at its next write.
	sequential := off == of.writeEnd
	var full []uint64
	for pc := range chunkPieces(p, off, cs) {
		n := len(pc.buf)
		whole := pc.lo == 0 && int64(n) == cs
		buf, err := of.buffer(ctx, pc.idx, whole, int(pc.lo)+n)
		if err != nil {
			return pc.at, err
		}
		copy(buf[pc.lo:], pc.buf)
		if int64(len(buf)) == cs && pc.lo+int64(n) == cs && (sequential || whole) {
			full = append(full, pc.idx)
		}
	}
	of.writeEnd = off + int64(len(p))
	if end := uint64(off) + uint64(len(p)); end > of.inode.Size {
		of.inode.Size = end
	}
	if len(p) > 0 {
		touch(&of.inode, now())
		of.changed = true
		of.contentChanged = true
	}
	// Under global pressure, store everything this file holds.
	if of.e.dirtyBytes.Load() > of.e.bufLimit {
		// Chunks being sealed still count, and one written again meanwhile counts twice:
		// waiting for them may be all it takes. Otherwise a random writer whose file
		// fits the buffer would flush (and then reload and decrypt) every chunk each time
		// it rewrote one being sealed.
		err := of.reap(ctx, true)
		if err == nil && of.e.dirtyBytes.Load() > of.e.bufLimit {
			err = of.flushLocked(ctx)
		}
		if err != nil {
			return 0, err
		}
	} else if err := of.startSealing(ctx, full); err != nil {
		// An earlier chunk failed to store: it is buffered again, this write's data is
		// buffered too, and the next write, flush or fsync reports the failure.
		of.e.log.Debug("storing a chunk failed; retried at the next flush", "ino", uint64(of.inode.Ino), "err", err)
	}
	return len(p), nil
}

// buffer returns chunk idx's write-back buffer, grown to at least n bytes. Unless the
// caller overwrites the whole chunk, the buffer starts from the stored plaintext.
func (of *openFile) buffer(ctx context.Context, idx uint64, whole bool, n int) ([]byte, error) {
	buf, ok := of.dirty[idx]
	if s := of.inflight[idx]; !ok && s != nil && !whole {
		// Written again while sealing: the new buffer starts from what is being sealed.
		buf, ok = of.grow(nil, len(s.buf)), true
		copy(buf, s.buf)
	}
	// Stored bytes at or past the size are stale (see trimBeforeGrowing): a chunk that
	// starts there, as every chunk of a file being written from scratch does, is not
	// looked up (a transaction per chunk).
	if !ok && !whole && idx*of.cs() < of.inode.Size {
		c, err := of.chunk(idx)
		if err != nil {
			return nil, err
		}
		var stored int64
		if c != nil {
			stored = min(int64(c.PlainLen), int64(of.inode.Size)-int64(idx*of.cs()))
		}
		if stored > 0 {
			buf = of.grow(nil, int(stored))
			if err := of.readStored(ctx, c, buf, 0); err != nil {
				of.release(buf)
				return nil, err
			}
		}
	}
	if len(buf) < n {
		buf = of.grow(buf, n)
	}
	if of.dirty == nil {
		of.dirty = make(map[uint64][]byte)
	}
	of.dirty[idx] = buf
	return buf, nil
}

// grow extends buf to n bytes (zero-filled), doubling its capacity up to one chunk, so
// small files do not cost a whole chunk of memory each.
func (of *openFile) grow(buf []byte, n int) []byte {
	if n <= cap(buf) {
		old := len(buf)
		buf = buf[:n]
		clear(buf[old:])
		return buf
	}
	newCap := max(n, 2*cap(buf), 4096)
	newCap = min(newCap, int(of.cs()))
	nb := newBuffer(n, newCap)
	copy(nb, buf)
	clear(nb[len(buf):])
	of.e.dirtyBytes.Add(int64(newCap - cap(buf)))
	putBuffer(buf)
	return nb
}

func (of *openFile) release(buf []byte) {
	of.e.dirtyBytes.Add(-int64(cap(buf)))
	putBuffer(buf)
}

// chunkBufs recycles write-back buffers of a whole default chunk: sequential writes
// and S3 PUTs go through one per megabyte, and allocating each anew costs a page-fault
// and zeroing storm plus garbage collection. Only buffers nothing refers to any more
// come back (released after their commit, under the file's lock); one is cleared where
// it is handed out (grow), so no file ever sees another's bytes.
var chunkBufs = sync.Pool{New: func() any { return new([]byte) }}

func newBuffer(n, capacity int) []byte {
	if capacity == DefaultChunkSize {
		if bp := chunkBufs.Get().(*[]byte); cap(*bp) == DefaultChunkSize {
			return (*bp)[:n]
		}
	}
	return make([]byte, n, capacity)
}

func putBuffer(buf []byte) {
	if cap(buf) == DefaultChunkSize {
		buf = buf[:0]
		chunkBufs.Put(&buf)
	}
}

// idsOf returns the objects that hold chunks (inline chunks have none).
func idsOf(cs []meta.Chunk) []objstore.ID {
	ids := make([]objstore.ID, 0, len(cs))
	for _, c := range cs {
		if c.Inline == nil {
			ids = append(ids, c.Object)
		}
	}
	return ids
}

// putInode stores the fields an open file owns (size, times, mode, owner) over the
// stored inode, keeping what namespace operations own (links, parent).
// Dirty chunks stay in memory: see putInodeBefore.
func (of *openFile) putInode(tx *meta.Tx) error {
	later := make([]uint64, 0, len(of.dirty)+len(of.inflight))
	for idx := range of.dirty {
		later = append(later, idx)
	}
	for idx := range of.inflight {
		later = append(later, idx)
	}
	var err error
	of.sizeHeldBack, err = of.putInodeBefore(tx, later)
	return err
}

// putInodeBefore is putInode for a commit that leaves the dirty chunks `later` in
// memory. Where one of them extends the file past its stored size, the size recorded
// stops at that chunk (or at the stored size): committed with the larger size, the
// bytes the chunk holds would read back as zeros after a crash, which is neither the
// file's old content nor its new one. It reports whether it held the size back.
func (of *openFile) putInodeBefore(tx *meta.Tx, later []uint64) (sizeCut bool, err error) {
	stored, err := tx.Inode(of.inode.Ino)
	if err != nil {
		return false, err
	}
	size := of.inode.Size
	cs := uint64(of.cs())
	for _, idx := range later {
		if start, end := idx*cs, (idx+1)*cs; end > stored.Size && size > stored.Size {
			size = min(size, max(start, stored.Size))
		}
	}
	sizeCut = size < of.inode.Size
	stored.Size, stored.Mtime, stored.Atime = size, of.inode.Mtime, of.inode.Atime
	stored.Ctime = max(stored.Ctime, of.inode.Ctime)
	stored.Mode, stored.Uid, stored.Gid = of.inode.Mode, of.inode.Uid, of.inode.Gid
	of.inode.Nlink, of.inode.Parent, of.inode.Ctime = stored.Nlink, stored.Parent, stored.Ctime
	if of.contentChanged {
		if err := tx.DropETag(of.inode.Ino); err != nil {
			return false, err
		}
	}
	return sizeCut, tx.PutInode(&stored)
}

func (of *openFile) commitInodeLocked() error {
	if err := of.e.update(of.putInode); err != nil {
		return fmt.Errorf("committing inode %d: %w", of.inode.Ino, err)
	}
	of.changed, of.contentChanged = of.sizeHeldBack, false
	return nil
}

// uncommittedLocked tells whether the next flush commits: written content or changed
// attributes are still to be stored.
func (of *openFile) uncommittedLocked() bool {
	return of.changed || len(of.dirty) > 0 || len(of.inflight) > 0
}

// flushLocked stores every dirty chunk and the inode.
func (of *openFile) flushLocked(ctx context.Context) error {
	for len(of.dirty) > 0 || len(of.inflight) > 0 {
		// A large write buffer may hold more chunks than one transaction can commit.
		idxs := make([]uint64, 0, min(len(of.dirty), chunkBatch))
		for idx := range of.dirty {
			if len(idxs) == chunkBatch {
				break
			}
			idxs = append(idxs, idx)
		}
		if err := of.startSealing(ctx, idxs); err != nil {
			return err
		}
		if err := of.reap(ctx, true); err != nil {
			return err
		}
	}
	if of.changed {
		return of.commitInodeLocked()
	}
	return nil
}

// settle waits for every chunk being sealed and commits it, for operations that work
// on the stored chunk records (truncate) or drop the buffers (abandon).
func (of *openFile) settle(ctx context.Context) error { return of.reap(ctx, true) }

// Truncate sets the file's size. Shrinking drops whole chunks past the end and shortens
// the last one without rewriting it; growing leaves a hole that reads as zeros.
func (h *Handle) Truncate(ctx context.Context, size uint64) error {
	of := h.of
	of.mu.Lock()
	defer of.mu.Unlock()
	if size > maxFileSize {
		return fmt.Errorf("truncate to %d: %w", size, ErrTooBig)
	}
	if err := of.settle(ctx); err != nil {
		return err
	}
	of.dropGhost()
	if size > of.inode.Size {
		if err := of.trimBeforeGrowing(); err != nil {
			return err
		}
	}
	cs := of.cs()
	keep := (size + cs - 1) / cs // chunks [0, keep) survive
	tail := size - (keep-1)*cs   // plaintext bytes left in chunk keep-1
	// What is cut off stays readable as it was, for reads the kernel sized before it
	// hears of this truncate (truncGhost); not for a file so large that its tail goes in
	// batches, whose reads simply end at the new size as before.
	var g *truncGhost
	if size < of.inode.Size && fitsOneTransaction(&meta.Inode{Size: of.inode.Size - min(of.inode.Size, keep*cs), ChunkSize: of.inode.ChunkSize}) {
		g = &truncGhost{size: of.inode.Size, dirty: map[uint64][]byte{}, recs: map[uint64]*meta.Chunk{}, from: size / cs}
		of.ghost = g
	}
	if size < of.inode.Size {
		for idx, buf := range of.dirty {
			switch {
			case idx >= keep:
				if g != nil {
					g.dirty[idx] = buf
				} else {
					of.release(buf)
				}
				delete(of.dirty, idx)
			case idx == keep-1 && idx == size/cs:
				// The chunk the cut goes through: kept whole, cut or not, since its
				// buffer is newer than its stored record.
				if g != nil {
					whole := of.grow(nil, len(buf))
					copy(whole, buf)
					g.dirty[idx] = whole
				}
				if uint64(len(buf)) > tail {
					of.dirty[idx] = buf[:tail]
				}
			}
		}
	}
	if err := of.dropTailInBatches(keep); err != nil {
		return err
	}
	var dropped []meta.Chunk
	var shortened, cut *meta.Chunk
	of.inode.Size = size
	touch(&of.inode, now())
	of.contentChanged = true
	err := of.e.update(func(tx *meta.Tx) error {
		dropped, shortened, cut = dropped[:0], nil, nil
		err := tx.Chunks(of.inode.Ino, keep, func(c meta.Chunk) bool {
			dropped = append(dropped, c)
			return true
		})
		if err != nil {
			return err
		}
		for _, c := range dropped {
			if err := tx.DeleteChunk(of.inode.Ino, c.Index); err != nil {
				return err
			}
		}
		if keep > 0 {
			c, err := tx.Chunk(of.inode.Ino, keep-1)
			if err == nil {
				orig := c
				cut = &orig
			}
			if err == nil && uint64(c.PlainLen) > tail {
				c.PlainLen = uint32(tail)
				shortened = &c
				if err := tx.PutChunk(of.inode.Ino, c); err != nil {
					return err
				}
			} else if err != nil && !errors.Is(err, meta.ErrNotFound) {
				return err
			}
		}
		return of.putInode(tx)
	})
	if err != nil {
		of.dropGhost() // it would show nothing the store has
		return fmt.Errorf("truncate inode %d to %d: %w", of.inode.Ino, size, err)
	}
	of.changed, of.contentChanged = of.sizeHeldBack, false
	for _, c := range dropped {
		delete(of.chunks, c.Index)
	}
	if shortened != nil && of.chunks != nil {
		of.chunks[shortened.Index] = shortened
	}
	if g == nil {
		of.e.discardChunks(dropped)
		return nil
	}
	// The ghost reads the dropped chunks' objects, so they go with it (dropGhost).
	g.drop = dropped
	for i := range dropped {
		g.recs[dropped[i].Index] = &dropped[i]
	}
	if cut != nil && cut.Index == g.from {
		g.recs[cut.Index] = cut
	}
	return nil
}

// dropTailInBatches deletes stored chunks from index keep on, when there are more than
// one transaction may hold: highest first, lowering the size with each batch, so a crash
// midway leaves a shorter prefix of the file, never a hole in it.
func (of *openFile) dropTailInBatches(keep uint64) error {
	if fitsOneTransaction(&meta.Inode{Size: of.inode.Size - min(of.inode.Size, keep*of.cs()), ChunkSize: of.inode.ChunkSize}) {
		return nil
	}
	var idxs []uint64
	err := of.e.view(func(tx *meta.Tx) error {
		return tx.Chunks(of.inode.Ino, keep, func(c meta.Chunk) bool {
			idxs = append(idxs, c.Index)
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("listing the chunks of inode %d: %w", of.inode.Ino, err)
	}
	for len(idxs) > chunkBatch {
		batch := idxs[len(idxs)-chunkBatch:]
		idxs = idxs[:len(idxs)-chunkBatch]
		var dropped []meta.Chunk
		err := of.e.update(func(tx *meta.Tx) error {
			dropped = dropped[:0]
			for _, idx := range batch {
				c, err := tx.Chunk(of.inode.Ino, idx)
				if err != nil {
					return err
				}
				dropped = append(dropped, c)
				if err := tx.DeleteChunk(of.inode.Ino, idx); err != nil {
					return err
				}
			}
			of.inode.Size = min(of.inode.Size, batch[0]*of.cs())
			return of.putInode(tx)
		})
		if err != nil {
			return fmt.Errorf("truncating inode %d: %w", of.inode.Ino, err)
		}
		for _, c := range dropped {
			delete(of.chunks, c.Index)
		}
		of.e.discardChunks(dropped)
	}
	return nil
}

// Flush stores everything buffered for the file (close(2)): it survives a crash of
// the process, but is not forced to stable storage.
func (h *Handle) Flush(ctx context.Context) error {
	h.of.mu.Lock()
	defer h.of.mu.Unlock()
	return h.of.flushLocked(ctx)
}

// Fsync stores everything buffered for the file and makes it durable: its chunk
// objects first, then the metadata that references them.
func (h *Handle) Fsync(ctx context.Context) error {
	of := h.of
	of.mu.Lock()
	err := of.flushLocked(ctx)
	// What a truncate cut off goes too, with its objects at this sync: fsync(2) holds the
	// kernel's inode lock, so the kernel has applied any truncate before it.
	of.dropGhost()
	of.mu.Unlock()
	if err != nil {
		return err
	}
	return of.e.syncDurable(ctx)
}

// Release ends one open. At the last one the file's buffers are flushed, and a file
// unlinked meanwhile is deleted unless the kernel still references it.
func (h *Handle) Release(ctx context.Context) error {
	of := h.of
	err := h.Flush(ctx)
	e := of.e
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	of.refs--
	if of.refs > 0 {
		return err
	}
	delete(e.files, uint64(of.inode.Ino))
	of.mu.Lock()
	for idx, buf := range of.dirty {
		of.release(buf)
		delete(of.dirty, idx)
	}
	of.dropGhost() // no handle is left to read through
	of.mu.Unlock()
	return errors.Join(err, e.deleteOrphanLocked(uint64(of.inode.Ino)))
}

// SyncAll flushes every open file and makes everything durable (syncfs, unmount).
func (e *Engine) SyncAll(ctx context.Context) error {
	e.nsMu.Lock()
	open := make([]*openFile, 0, len(e.files))
	for _, of := range e.files {
		open = append(open, of)
	}
	e.nsMu.Unlock()
	var errs []error
	for _, of := range open {
		of.mu.Lock()
		if err := of.flushLocked(ctx); err != nil {
			errs = append(errs, err)
		}
		// What truncates cut off goes too, so that no object outlives the process
		// unreferenced (at unmount); a read racing both a truncate and a syncfs would
		// end at the new size, as all did before ghosts.
		of.dropGhost()
		of.mu.Unlock()
	}
	errs = append(errs, e.syncDurable(ctx))
	return errors.Join(errs...)
}

func (e *Engine) markUnsynced(id objstore.ID) {
	e.gcMu.Lock()
	e.unsynced[id] = true
	e.gcMu.Unlock()
}

// putObject stores an object. When the store is full while deleted objects wait for
// the next durable commit (see syncDurable), it makes that commit, which frees them,
// and tries once more: otherwise space freed by rm or DeleteObject would come back only
// with the background sync, up to syncInterval later, and writes would fail with
// ENOSPC meanwhile. ext4 does the same: it commits its journal and retries an
// allocation that failed while freed blocks were pending.
func (e *Engine) putObject(ctx context.Context, id objstore.ID, data []byte) error {
	err := e.store.Put(ctx, id, data)
	if err == nil || !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return err
	}
	e.gcMu.Lock()
	pending := len(e.garbage) > 0
	e.gcMu.Unlock()
	if !pending {
		return err
	}
	if serr := e.syncDurable(ctx); serr != nil {
		e.log.Warn("freeing deleted objects on a full store failed", "err", serr)
		return err
	}
	return e.store.Put(ctx, id, data)
}

// discardChunks schedules the objects of chunks that a committed transaction dropped.
func (e *Engine) discardChunks(cs []meta.Chunk) { e.discardObjects(idsOf(cs)) }

func (e *Engine) discardObjects(ids []objstore.ID) {
	if len(ids) == 0 {
		return
	}
	e.gcMu.Lock()
	e.garbage = append(e.garbage, ids...)
	e.gcMu.Unlock()
}

// syncDurable makes every written object durable, then the metadata, and only then
// deletes the objects that metadata no longer references. Syncing all pending objects,
// not only one file's, keeps durable metadata from pointing at non-durable objects.
//
// One sync runs at a time: two at once would each take their share of the pending and
// garbage objects, and the second could delete an object the first is still syncing.
func (e *Engine) syncDurable(ctx context.Context) error {
	if err := e.settlePending(); err != nil {
		return err
	}
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.gcMu.Lock()
	pending := make([]objstore.ID, 0, len(e.unsynced))
	garbage := e.garbage
	e.garbage = nil
	dead := make(map[objstore.ID]bool, len(garbage))
	for _, id := range garbage {
		dead[id] = true
	}
	for id := range e.unsynced {
		if !dead[id] {
			pending = append(pending, id)
		}
		delete(e.unsynced, id)
	}
	e.gcMu.Unlock()
	restore := func() {
		e.gcMu.Lock()
		for _, id := range pending {
			e.unsynced[id] = true
		}
		e.garbage = append(e.garbage, garbage...)
		e.gcMu.Unlock()
	}
	if err := e.store.Sync(ctx, pending); err != nil {
		restore()
		return classify(fmt.Errorf("syncing chunk objects: %w", err))
	}
	if err := e.db.Sync(); err != nil {
		restore()
		return classify(fmt.Errorf("syncing metadata: %w", err))
	}
	// Readers that picked a record of one of these objects before it was replaced hold
	// readers (see ReadAt) until they have read it: wait for them, and only them. A read
	// that starts later cannot reach these objects (their records were dropped, under
	// the file's lock, before this sync took them), so the deletions run unlocked: held
	// across deleting the 102,400 objects of a truncated 100 GiB file, the lock stalled
	// every read of every file for 33 s.
	e.readers.Lock()
	e.readers.Unlock() // an empty critical section: a barrier
	// While metadata snapshots exist, they may still name these objects (deferred.go).
	garbage = e.deferGarbage(garbage)
	for _, id := range garbage {
		if err := e.store.Delete(ctx, id); err != nil {
			// Left for fsck to collect: the metadata no longer references it.
			e.log.Warn("deleting a replaced chunk object failed", "object", id.String(), "err", err)
		}
	}
	return nil
}

func (e *Engine) syncLoop() {
	defer close(e.done)
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.gcMu.Lock()
			n := len(e.garbage) + len(e.unsynced)
			e.gcMu.Unlock()
			if n > 0 {
				if err := e.syncDurable(context.Background()); err != nil {
					e.log.Warn("background sync failed", "err", err)
				}
			}
		}
	}
}

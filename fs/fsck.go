package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/minio/sio"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// FsckKind is what an fsck finding is about.
type FsckKind string

// The kinds of findings. All are inconsistencies except FsckPendingDeletion (an unlinked
// inode the next start would delete anyway), FsckOrphanObject (garbage a crash leaves by
// design: objects are written before the commit that references them and deleted only
// after the commit that drops them, so a kill -9 between the two leaks them, and nothing
// but fsck collects them) and FsckKeyUnavailable (the KMS refuses or lacks a key: secure
// erasure or an outage, not damage to the store).
const (
	FsckDanglingEntry     FsckKind = "dangling entry"                    // an entry names a missing inode
	FsckBadParentEntry    FsckKind = "entry outside a directory"         // an entry's parent is missing or no directory
	FsckEntryType         FsckKind = "entry type mismatch"               // an entry's d_type differs from its inode's
	FsckWrongNlink        FsckKind = "wrong nlink"                       // nlink differs from the entries that count
	FsckWrongParent       FsckKind = "wrong parent"                      // a directory's Parent is not the directory holding it
	FsckDirLinkedTwice    FsckKind = "directory linked twice"            // more than one entry names a directory
	FsckUnreachable       FsckKind = "unreachable inode"                 // no entry, orphan record or part names it
	FsckMissingKey        FsckKind = "missing sealed key"                // a regular file without its key record
	FsckCorruptKey        FsckKind = "corrupt sealed key"                // the key record does not decode or unseal
	FsckKeyUnavailable    FsckKind = "key unavailable"                   // the KMS refuses or lacks the key (not corruption)
	FsckMissingObject     FsckKind = "missing chunk object"              // a chunk record's object is not in the store
	FsckObjectSize        FsckKind = "chunk object size mismatch"        // the object is not as long as the record says
	FsckChunkCorrupt      FsckKind = "chunk failed authentication"       // decrypting the object fails
	FsckChunkUnreadable   FsckKind = "chunk unreadable"                  // the store failed to read the object
	FsckSharedObject      FsckKind = "chunk object shared"               // two chunk records name one object
	FsckOrphanObject      FsckKind = "orphaned chunk object"             // an object no chunk record names
	FsckStrayRecords      FsckKind = "records of a missing inode"        // xattrs, chunks, keys... of an inode that is gone
	FsckObjectRecord      FsckKind = "S3 object record without inode"    // meta.Object of an inode that is gone
	FsckBrokenUpload      FsckKind = "broken multipart upload"           // a part's inode or the bucket is gone
	FsckPartWithoutUpload FsckKind = "part without upload"               // a part record whose upload is gone
	FsckLinkedOrphan      FsckKind = "linked inode on the orphan list"   // deleting it would cut live links
	FsckPendingDeletion   FsckKind = "pending deletion"                  // unlinked, awaiting deletion
	FsckChunklessRecords  FsckKind = "chunk records on a non-file inode" // chunks of a directory, symlink...
)

// Inconsistency tells whether a finding of this kind is damage (exit status 1).
func (k FsckKind) Inconsistency() bool {
	return k != FsckPendingDeletion && k != FsckKeyUnavailable && k != FsckOrphanObject
}

// FsckFinding is one thing fsck found, and what --repair did about it.
type FsckFinding struct {
	Kind   FsckKind
	Ino    Ino    // the inode concerned; 0 if none
	Path   string // where the inode is, e.g. "/bucket/dir/file", or how it is held; "" if unknown
	Object string // the chunk object concerned (hex ID); "" if none
	Detail string
	// Repaired says what --repair changed for it; "" if nothing. RepairErr is set when a
	// repair was attempted and failed.
	Repaired  string
	RepairErr string

	fix  func(ctx context.Context) (string, error) // nil: not repairable
	late bool                                      // fix after the metadata repairs are durable
}

// Repairable tells whether --repair can fix the finding.
func (f FsckFinding) Repairable() bool { return f.fix != nil }

func (f FsckFinding) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	b.WriteString(": ")
	switch {
	case f.Path != "" && f.Ino != 0:
		fmt.Fprintf(&b, "%s (inode %d)", f.Path, f.Ino)
	case f.Path != "":
		b.WriteString(f.Path)
	case f.Ino != 0:
		fmt.Fprintf(&b, "inode %d", f.Ino)
	}
	if f.Object != "" {
		if f.Ino != 0 || f.Path != "" {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "object %s", f.Object)
	}
	if f.Detail != "" {
		b.WriteString(": ")
		b.WriteString(f.Detail)
	}
	switch {
	case f.Repaired != "":
		fmt.Fprintf(&b, " [repaired: %s]", f.Repaired)
	case f.RepairErr != "":
		fmt.Fprintf(&b, " [repair failed: %s]", f.RepairErr)
	}
	return b.String()
}

// FsckOptions say what Fsck does besides checking.
type FsckOptions struct {
	// Repair fixes what can be fixed without losing data that could still be read:
	// stray records, dangling entries, link counts, pending deletions, unreferenced
	// objects. It never deletes an object a chunk record names, and never touches a chunk
	// that fails authentication (reading it must keep failing with EIO).
	Repair bool
	// VerifyChunks decrypts and authenticates every chunk whose key is available.
	VerifyChunks bool
	// Progress, if set, is called now and then from Fsck's goroutine; it must be quick.
	Progress func(FsckProgress)
}

// FsckProgress is how far a check has come.
type FsckProgress struct {
	Inodes, TotalInodes uint64
	Chunks              uint64 // chunk records checked
	Verified            uint64 // chunks decrypted and authenticated
	VerifiedBytes       uint64 // ciphertext bytes of those
}

// FsckReport is what a check found.
type FsckReport struct {
	Inodes   uint64 // inodes in the metadata
	Chunks   uint64 // chunk records
	Verified uint64 // chunks decrypted and authenticated
	// Skipped counts chunks that could not be verified: SSE-C files (no client key), and
	// files whose key is missing, corrupt or unavailable.
	Skipped  uint64
	Objects  uint64 // objects in the object store
	Findings []FsckFinding
}

// Inconsistencies counts the findings that are damage.
func (r *FsckReport) Inconsistencies() int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind.Inconsistency() {
			n++
		}
	}
	return n
}

// Unrepaired counts the inconsistencies that are still there.
func (r *FsckReport) Unrepaired() int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind.Inconsistency() && f.Repaired == "" {
			n++
		}
	}
	return n
}

// Repaired counts the findings --repair fixed, of every kind.
func (r *FsckReport) Repaired() int {
	n := 0
	for _, f := range r.Findings {
		if f.Repaired != "" {
			n++
		}
	}
	return n
}

// Count counts the findings of one kind.
func (r *FsckReport) Count(k FsckKind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// Fsck checks every reference of the store both ways: entries against inodes, link
// counts, key records against the KMS, chunk records against objects (and, with
// VerifyChunks, their authentication), objects against chunk records, orphan, S3 object
// and upload records against inodes. With Repair it fixes what it can (see FsckOptions).
//
// It is meant for an engine no frontend serves (ssefs fsck holds the data directory's
// lock): objects being written for a commit still to come would look unreferenced.
func (e *Engine) Fsck(ctx context.Context, opt FsckOptions) (FsckReport, error) {
	if opt.Repair {
		e.nsMu.Lock()
		busy := len(e.files) + len(e.kernelRefs)
		e.nsMu.Unlock()
		if busy > 0 {
			return FsckReport{}, fmt.Errorf("fsck --repair: the engine is in use (%d open or referenced inodes): %w", busy, ErrInvalid)
		}
	}
	// Settle this engine's own pending work, so that its replaced objects are gone and its
	// new ones are durable before they are judged.
	if err := e.SyncAll(ctx); err != nil {
		return FsckReport{}, fmt.Errorf("fsck: %w", err)
	}
	r := &fsckRun{e: e, opt: opt, objects: make(map[objstore.ID]*fsckObject),
		inodes: make(map[meta.Ino]*fsckInode), orphans: make(map[meta.Ino]bool),
		parts: make(map[meta.Ino]string)}
	steps := []func(context.Context) error{r.walkObjects, r.loadMeta, r.checkNamespace, r.checkFiles, r.checkLeftovers, r.checkObjects}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return r.report, err
		}
	}
	if opt.Repair {
		if err := r.repair(ctx); err != nil {
			return r.report, err
		}
	}
	sort.SliceStable(r.report.Findings, func(i, j int) bool {
		a, b := r.report.Findings[i], r.report.Findings[j]
		if (a.Ino == 0) != (b.Ino == 0) {
			return a.Ino != 0
		}
		if a.Ino != b.Ino {
			return a.Ino < b.Ino
		}
		return a.Object < b.Object
	})
	r.progress(true)
	return r.report, nil
}

// fsckInode is what fsck keeps of an inode: enough to check links, not the whole record.
type fsckInode struct {
	mode    uint32
	nlink   uint32
	parent  meta.Ino
	refs    uint32 // entries that name it (in directories that exist)
	subdirs uint32 // entries in it that name directories
	entries uint32 // entries in it
	// The first entry that names it, for its path and a directory's parent.
	entParent meta.Ino
	entName   string
}

type fsckObject struct {
	size int64
	refs uint32
}

type fsckRun struct {
	e      *Engine
	opt    FsckOptions
	report FsckReport
	mu     sync.Mutex // guards report.Findings while chunk verifiers run

	objects map[objstore.ID]*fsckObject
	inodes  map[meta.Ino]*fsckInode
	orphans map[meta.Ino]bool
	parts   map[meta.Ino]string // part inode -> what holds it, for its "path"
	// badEntries are entries to report once every name is known.
	badEntries []fsckEntry
	// strayParts are part records whose upload record is gone.
	strayParts []fsckPart
	uploads    []meta.Upload

	checked          atomic.Uint64 // inodes
	chunks           atomic.Uint64
	verified         atomic.Uint64
	verifiedBytes    atomic.Uint64
	lastProgressSent uint64
}

type fsckEntry struct {
	parent meta.Ino
	ent    meta.Entry
	kind   FsckKind
}

type fsckPart struct {
	id meta.UploadID
	p  meta.Part
}

func (r *fsckRun) add(f FsckFinding) {
	r.mu.Lock()
	r.report.Findings = append(r.report.Findings, f)
	r.mu.Unlock()
}

func (r *fsckRun) progress(force bool) {
	if r.opt.Progress == nil {
		return
	}
	p := FsckProgress{Inodes: r.checked.Load(), TotalInodes: uint64(len(r.inodes)),
		Chunks: r.chunks.Load(), Verified: r.verified.Load(), VerifiedBytes: r.verifiedBytes.Load()}
	// Calls are cheap for the callee but not free: one per 64 steps is plenty.
	if step := p.Inodes + p.Chunks; force || step-r.lastProgressSent >= 64 {
		r.lastProgressSent = step
		r.opt.Progress(p)
	}
}

func (r *fsckRun) walkObjects(ctx context.Context) error {
	err := r.e.store.Walk(ctx, func(id objstore.ID, size int64) error {
		r.objects[id] = &fsckObject{size: size}
		return nil
	})
	if err != nil {
		return classify(fmt.Errorf("fsck: listing the object store: %w", err))
	}
	r.report.Objects = uint64(len(r.objects))
	return nil
}

// loadMeta reads inodes, entries, orphans and uploads in one snapshot.
func (r *fsckRun) loadMeta(ctx context.Context) error {
	err := r.e.db.View(func(tx *meta.Tx) error {
		if err := tx.Inodes(func(in meta.Inode) bool {
			r.inodes[in.Ino] = &fsckInode{mode: in.Mode, nlink: in.Nlink, parent: in.Parent}
			return true
		}); err != nil {
			return err
		}
		if err := tx.AllEntries(func(parent meta.Ino, ent meta.Entry) bool {
			dir := r.inodes[parent]
			if dir == nil || !isDirMode(dir.mode) {
				r.badEntries = append(r.badEntries, fsckEntry{parent, ent, FsckBadParentEntry})
				return true
			}
			in := r.inodes[ent.Ino]
			if in == nil {
				r.badEntries = append(r.badEntries, fsckEntry{parent, ent, FsckDanglingEntry})
				return true
			}
			if in.refs == 0 {
				in.entParent, in.entName = parent, ent.Name
			}
			in.refs++
			dir.entries++
			if isDirMode(in.mode) {
				dir.subdirs++
			}
			if ent.Mode&syscall.S_IFMT != in.mode&syscall.S_IFMT {
				r.badEntries = append(r.badEntries, fsckEntry{parent, ent, FsckEntryType})
			}
			return true
		}); err != nil {
			return err
		}
		if err := tx.Orphans(func(ino meta.Ino) bool { r.orphans[ino] = true; return true }); err != nil {
			return err
		}
		if err := tx.AllUploads(func(u meta.Upload) bool { r.uploads = append(r.uploads, u); return true }); err != nil {
			return err
		}
		keyOf := make(map[meta.UploadID]string, len(r.uploads))
		for _, u := range r.uploads {
			keyOf[u.ID] = u.Key
		}
		return tx.AllParts(func(id meta.UploadID, p meta.Part) bool {
			key, ok := keyOf[id]
			if !ok {
				r.strayParts = append(r.strayParts, fsckPart{id, p})
			}
			r.parts[p.Ino] = fmt.Sprintf("(part %d of upload %x of %q)", p.Number, id[:], key)
			return true
		})
	})
	if err != nil {
		return classify(fmt.Errorf("fsck: reading the metadata: %w", err))
	}
	r.report.Inodes = uint64(len(r.inodes))
	return ctx.Err()
}

// path names an inode by its first entry, walking up to the root; unlinked inodes are
// named by what holds them.
func (r *fsckRun) path(ino meta.Ino) string {
	if ino == meta.RootIno {
		return "/"
	}
	var segs []string
	for cur, depth := ino, 0; cur != meta.RootIno; depth++ {
		in := r.inodes[cur]
		if in == nil || in.refs == 0 || depth > 4096 {
			if cur == ino {
				switch {
				case r.orphans[ino]:
					return "(unlinked)"
				case r.parts[ino] != "":
					return r.parts[ino]
				}
				return ""
			}
			segs = append(segs, "?")
			break
		}
		segs = append(segs, in.entName)
		cur = in.entParent
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return "/" + strings.Join(segs, "/")
}

// dirName names a directory by its path, or by its number if it has none.
func (r *fsckRun) dirName(ino meta.Ino) string {
	if p := r.path(ino); p != "" {
		return p
	}
	return fmt.Sprintf("directory inode %d", ino)
}

func (r *fsckRun) entryPath(parent meta.Ino, name string) string {
	p := r.path(parent)
	switch p {
	case "":
		return fmt.Sprintf("(directory inode %d)/%s", parent, name)
	case "/":
		return "/" + name
	}
	return p + "/" + name
}

// checkNamespace checks entries, link counts, parents and the orphan list.
func (r *fsckRun) checkNamespace(ctx context.Context) error {
	e := r.e
	for _, be := range r.badEntries {
		f := FsckFinding{Kind: be.kind, Ino: uint64(be.ent.Ino), Path: r.entryPath(be.parent, be.ent.Name)}
		switch be.kind {
		case FsckDanglingEntry:
			f.Detail = fmt.Sprintf("names inode %d, which does not exist", be.ent.Ino)
			f.fix = func(context.Context) (string, error) {
				return "entry removed", e.update(func(tx *meta.Tx) error { return tx.DeleteEntry(be.parent, be.ent.Name) })
			}
		case FsckBadParentEntry:
			what := "does not exist"
			if in := r.inodes[be.parent]; in != nil {
				what = fmt.Sprintf("is not a directory (mode %o)", in.mode)
			}
			f.Detail = fmt.Sprintf("its directory, inode %d, %s", be.parent, what)
			f.fix = func(context.Context) (string, error) {
				return "entry removed", e.update(func(tx *meta.Tx) error { return tx.DeleteEntry(be.parent, be.ent.Name) })
			}
		case FsckEntryType:
			in := r.inodes[be.ent.Ino]
			want := in.mode & syscall.S_IFMT
			f.Detail = fmt.Sprintf("entry says type %o, inode has %o", be.ent.Mode&syscall.S_IFMT, want)
			f.fix = func(context.Context) (string, error) {
				return fmt.Sprintf("entry type set to %o", want), e.update(func(tx *meta.Tx) error {
					ent := be.ent
					ent.Mode = want
					return tx.PutEntry(be.parent, ent)
				})
			}
		}
		r.add(f)
	}
	inos := r.sortedInos()
	for _, ino := range inos {
		if err := ctx.Err(); err != nil {
			return err
		}
		in := r.inodes[ino]
		isDir := isDirMode(in.mode)
		_, isPart := r.parts[ino]
		f := FsckFinding{Ino: uint64(ino), Path: r.path(ino)}
		switch {
		case ino == meta.RootIno:
			r.checkNlink(f, in, 2+in.subdirs)
		case r.orphans[ino] && (in.refs > 0 || isPart):
			f.Kind = FsckLinkedOrphan
			f.Detail = "still linked, or held by an upload, yet listed for deletion"
			f.fix = func(context.Context) (string, error) {
				return "taken off the orphan list", e.update(func(tx *meta.Tx) error { return tx.RemoveOrphan(ino) })
			}
			r.add(f)
			if in.refs > 0 {
				r.checkLinks(f, ino, in, isDir)
			}
		case r.orphans[ino]:
			f.Kind = FsckPendingDeletion
			f.Detail = "unlinked while open; deleted at the next start"
			f.fix = func(context.Context) (string, error) { return "deleted", e.deleteInode(ino) }
			r.add(f)
		case isPart:
			// A part's inode is unlinked by design; its record holds it.
		case in.refs == 0:
			f.Kind = FsckUnreachable
			f.Path = ""
			if in.nlink == 0 && in.entries == 0 {
				// Unlinked without being put on the orphan list: nothing can ever
				// reach it again, so deleting it is what the unlink meant.
				f.Detail = "nlink 0, on no list: an unlink that was never finished"
				f.fix = func(context.Context) (string, error) { return "deleted", e.deleteInode(ino) }
			} else {
				f.Detail = fmt.Sprintf("nlink %d, but no entry names it; it was created in %s; its content is kept",
					in.nlink, r.dirName(in.parent))
			}
			r.add(f)
		default:
			r.checkLinks(f, ino, in, isDir)
		}
	}
	return nil
}

func (r *fsckRun) checkLinks(f FsckFinding, ino meta.Ino, in *fsckInode, isDir bool) {
	if !isDir {
		r.checkNlink(f, in, in.refs)
		return
	}
	if in.refs > 1 {
		g := f
		g.Kind = FsckDirLinkedTwice
		g.Detail = fmt.Sprintf("%d entries name it; which one is right is a human's call", in.refs)
		r.add(g)
	}
	r.checkNlink(f, in, 2+in.subdirs)
	if in.parent != in.entParent {
		g := f
		g.Kind = FsckWrongParent
		want := in.entParent
		g.Detail = fmt.Sprintf("parent is inode %d, but inode %d holds it", in.parent, want)
		g.fix = func(context.Context) (string, error) {
			return fmt.Sprintf("parent set to %d", want), r.e.update(func(tx *meta.Tx) error {
				cur, err := tx.Inode(ino)
				if err != nil {
					return err
				}
				cur.Parent = want
				return tx.PutInode(&cur)
			})
		}
		r.add(g)
	}
}

func (r *fsckRun) checkNlink(f FsckFinding, in *fsckInode, want uint32) {
	if in.nlink == want {
		return
	}
	f.Kind = FsckWrongNlink
	f.Detail = fmt.Sprintf("nlink %d, want %d", in.nlink, want)
	ino := meta.Ino(f.Ino)
	f.fix = func(context.Context) (string, error) {
		return fmt.Sprintf("nlink set to %d", want), r.e.update(func(tx *meta.Tx) error {
			cur, err := tx.Inode(ino)
			if err != nil {
				return err
			}
			cur.Nlink = want
			return tx.PutInode(&cur)
		})
	}
	r.add(f)
}

func (r *fsckRun) sortedInos() []meta.Ino {
	inos := make([]meta.Ino, 0, len(r.inodes))
	for ino := range r.inodes {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	return inos
}

// verifyJob is one chunk to authenticate. It carries the chunk's derived key, never the
// file's OEK, so the OEK is cleared as soon as its file's chunks are queued.
type verifyJob struct {
	ino  meta.Ino
	path string
	c    meta.Chunk
	key  [32]byte
}

// checkFiles checks every regular file's key record and chunk records, and verifies the
// chunks on a few workers (decryption is CPU-bound; the store may be remote).
func (r *fsckRun) checkFiles(ctx context.Context) error {
	jobs := make(chan verifyJob, 64)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), 8)
	if !r.opt.VerifyChunks {
		workers = 0
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r.verify(ctx, j)
				clear(j.key[:])
			}
		}()
	}
	err := r.queueFiles(ctx, jobs)
	close(jobs)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	r.report.Chunks = r.chunks.Load()
	r.report.Verified = r.verified.Load()
	return err
}

func (r *fsckRun) queueFiles(ctx context.Context, jobs chan<- verifyJob) error {
	for _, ino := range r.sortedInos() {
		if err := ctx.Err(); err != nil {
			return err
		}
		in := r.inodes[ino]
		if isRegMode(in.mode) {
			if err := r.checkFile(ctx, ino, jobs); err != nil {
				return err
			}
		}
		r.checked.Add(1)
		r.progress(false)
	}
	return nil
}

func (r *fsckRun) checkFile(ctx context.Context, ino meta.Ino, jobs chan<- verifyJob) error {
	var inode meta.Inode
	var sealed []byte
	var sealedErr error
	err := r.e.db.View(func(tx *meta.Tx) (err error) {
		if inode, err = tx.Inode(ino); err != nil {
			return err
		}
		sealed, sealedErr = tx.SealedKey(ino)
		if sealedErr != nil && !errors.Is(sealedErr, meta.ErrNotFound) {
			return sealedErr
		}
		return nil
	})
	if err != nil {
		return classify(fmt.Errorf("fsck: inode %d: %w", ino, err))
	}
	path := r.path(ino)
	// The OEK, if it can be had: verification needs it.
	var oek *[32]byte
	finding := FsckFinding{Ino: uint64(ino), Path: path}
	if sealedErr != nil {
		finding.Kind, finding.Detail = FsckMissingKey, "no sealed-key record: the content cannot be decrypted"
		r.add(finding)
	} else {
		var sk keys.SealedKey
		if err := sk.UnmarshalBinary(sealed); err != nil {
			finding.Kind, finding.Detail = FsckCorruptKey, fmt.Sprintf("does not decode: %v", err)
			r.add(finding)
		} else if sk.SSEType != keys.SSEC { // an SSE-C client's key is not ours to have
			key, err := r.e.sealer.Unseal(ctx, sk, inode.FileID)
			err = classify(err)
			switch {
			case err == nil:
				oek = &key
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, ErrCorrupt), errors.Is(err, ErrInvalid):
				finding.Kind, finding.Detail = FsckCorruptKey, fmt.Sprintf("%s key %q does not unseal it: %v", sk.SSEType, sk.KeyName, err)
				r.add(finding)
			default:
				finding.Kind, finding.Detail = FsckKeyUnavailable, fmt.Sprintf("%s key %q: %v (chunks not verified)", sk.SSEType, sk.KeyName, err)
				r.add(finding)
			}
		}
	}
	defer func() {
		if oek != nil {
			clear(oek[:])
		}
	}()
	var chunks []meta.Chunk
	const batch = 1024 // chunk records in memory at once, for files of any size
	for from := uint64(0); ; {
		chunks = chunks[:0]
		err := r.e.db.View(func(tx *meta.Tx) error {
			chunks = chunks[:0]
			return tx.Chunks(ino, from, func(c meta.Chunk) bool {
				chunks = append(chunks, c)
				return len(chunks) < batch
			})
		})
		if err != nil {
			return classify(fmt.Errorf("fsck: chunks of inode %d: %w", ino, err))
		}
		for _, c := range chunks {
			if !r.checkChunk(ino, path, c) {
				continue
			}
			switch {
			case !r.opt.VerifyChunks:
			case oek == nil:
				r.report.Skipped++
			default:
				select {
				case jobs <- verifyJob{ino: ino, path: path, c: c, key: chunkKey(oek, inode.FileID, c.Index, c.Version)}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			r.progress(false)
		}
		if len(chunks) < batch {
			break
		}
		from = chunks[len(chunks)-1].Index + 1
	}
	return nil
}

// checkChunk checks a chunk record against the object store and counts the reference;
// it tells whether the object is there as recorded (and so worth verifying).
func (r *fsckRun) checkChunk(ino meta.Ino, path string, c meta.Chunk) bool {
	r.chunks.Add(1)
	id := objstore.ID(c.Object)
	f := FsckFinding{Ino: uint64(ino), Path: path, Object: id.String()}
	obj := r.objects[id]
	if obj == nil {
		f.Kind, f.Detail = FsckMissingObject, fmt.Sprintf("chunk %d: not in the object store (reads of it fail with EIO)", c.Index)
		r.add(f)
		return false
	}
	obj.refs++
	if obj.refs > 1 {
		f.Kind, f.Detail = FsckSharedObject, fmt.Sprintf("chunk %d: another chunk record names the same object", c.Index)
		r.add(f)
	}
	if obj.size != int64(c.StoredLen) {
		f.Kind, f.Detail = FsckObjectSize, fmt.Sprintf("chunk %d: object has %d bytes, the record says %d", c.Index, obj.size, c.StoredLen)
		r.add(f)
		return false
	}
	return true
}

// verify decrypts a whole chunk object with the engine's own chunk decryption
// (openChunkRange, as reads use it). A read authenticates only the packages a range
// touches; fsck asks for the whole stream, so every package of the object is checked.
func (r *fsckRun) verify(ctx context.Context, j verifyJob) {
	f := FsckFinding{Ino: uint64(j.ino), Path: j.path, Object: objstore.ID(j.c.Object).String()}
	if j.c.StoredLen == 0 {
		r.verified.Add(1)
		return
	}
	cipher := make([]byte, j.c.StoredLen)
	n, err := r.e.store.ReadAt(ctx, j.c.Object, cipher, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(cipher)) {
		if ctx.Err() != nil {
			return
		}
		f.Kind, f.Detail = FsckChunkUnreadable, fmt.Sprintf("chunk %d: %v", j.c.Index, err)
		r.add(f)
		return
	}
	plainLen, err := sio.DecryptedSize(uint64(j.c.StoredLen))
	if err == nil && uint64(j.c.PlainLen) > plainLen {
		err = fmt.Errorf("the record says %d plaintext bytes, the object holds %d", j.c.PlainLen, plainLen)
	}
	if err == nil {
		plain := make([]byte, plainLen)
		err = openChunkRange(&j.key, cipher, 0, plain, 0)
		clear(plain)
	}
	if err != nil {
		f.Kind, f.Detail = FsckChunkCorrupt, fmt.Sprintf("chunk %d: %v (reads of it fail with EIO)", j.c.Index, err)
		if !errors.Is(err, ErrCorrupt) && ctx.Err() == nil {
			f.Kind = FsckChunkUnreadable
		}
		if ctx.Err() == nil {
			r.add(f)
		}
		return
	}
	r.verified.Add(1)
	r.verifiedBytes.Add(uint64(j.c.StoredLen))
}

// checkLeftovers finds records whose inode is gone (and counts the objects their chunk
// records name, so that those are never taken for orphans), and broken uploads.
func (r *fsckRun) checkLeftovers(ctx context.Context) error {
	e := r.e
	type owner struct {
		ino   meta.Ino
		kinds []string
	}
	var stray []*owner
	byIno := map[meta.Ino]*owner{}
	var hasObjectRecord []meta.Ino
	var chunkOwners []meta.Ino
	err := e.db.View(func(tx *meta.Tx) error {
		return tx.RecordOwners(func(kind meta.RecordKind, ino meta.Ino) bool {
			in := r.inodes[ino]
			if kind == meta.RecordChunks && (in == nil || !isRegMode(in.mode)) {
				chunkOwners = append(chunkOwners, ino)
			}
			if in != nil {
				return true
			}
			if kind == meta.RecordObject {
				hasObjectRecord = append(hasObjectRecord, ino)
				return true
			}
			o := byIno[ino]
			if o == nil {
				o = &owner{ino: ino}
				byIno[ino] = o
				stray = append(stray, o)
			}
			o.kinds = append(o.kinds, string(kind))
			return true
		})
	})
	if err != nil {
		return classify(fmt.Errorf("fsck: scanning records: %w", err))
	}
	// Chunk records the file pass did not see: their objects are referenced all the same.
	for _, ino := range chunkOwners {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := 0
		err := e.db.View(func(tx *meta.Tx) error {
			return tx.Chunks(ino, 0, func(c meta.Chunk) bool {
				if obj := r.objects[objstore.ID(c.Object)]; obj != nil {
					obj.refs++
				}
				n++
				return true
			})
		})
		if err != nil {
			return classify(fmt.Errorf("fsck: chunks of inode %d: %w", ino, err))
		}
		r.chunks.Add(uint64(n))
		if in := r.inodes[ino]; in != nil {
			r.add(FsckFinding{Kind: FsckChunklessRecords, Ino: uint64(ino), Path: r.path(ino),
				Detail: fmt.Sprintf("%d chunk records on an inode of mode %o", n, in.mode)})
		}
	}
	r.report.Chunks = r.chunks.Load()
	for _, o := range stray {
		ino := o.ino
		r.add(FsckFinding{Kind: FsckStrayRecords, Ino: uint64(ino), Detail: strings.Join(o.kinds, ", "),
			fix: func(ctx context.Context) (string, error) {
				// deleteInode drops chunk records in batches and schedules their
				// objects for deletion after the commit is durable.
				if err := e.deleteInode(ino); err != nil {
					return "", err
				}
				return "records removed", e.update(func(tx *meta.Tx) error { return tx.DeleteInodeRecords(ino) })
			}})
	}
	for _, ino := range hasObjectRecord {
		r.add(FsckFinding{Kind: FsckObjectRecord, Ino: uint64(ino), Detail: "the inode does not exist",
			fix: func(context.Context) (string, error) {
				return "record removed", e.update(func(tx *meta.Tx) error { return tx.DeleteObject(ino) })
			}})
	}
	for _, u := range r.uploads {
		r.checkUpload(u)
	}
	for _, sp := range r.strayParts {
		r.add(FsckFinding{Kind: FsckPartWithoutUpload, Ino: uint64(sp.p.Ino), Path: r.parts[sp.p.Ino],
			Detail: "its upload record is gone",
			fix: func(context.Context) (string, error) {
				_, exists := r.inodes[sp.p.Ino]
				err := e.update(func(tx *meta.Tx) error {
					if err := tx.DeletePart(sp.id, sp.p.Number); err != nil {
						return err
					}
					if exists {
						return tx.AddOrphan(sp.p.Ino) // deleted right below; a crash leaves it listed
					}
					return nil
				})
				if err == nil && exists {
					err = e.deleteInode(sp.p.Ino)
				}
				return "part record and its inode removed", err
			}})
	}
	return ctx.Err()
}

func (r *fsckRun) checkUpload(u meta.Upload) {
	e := r.e
	var why []string
	if b := r.inodes[u.Bucket]; b == nil || !isDirMode(b.mode) {
		why = append(why, fmt.Sprintf("its bucket, inode %d, is gone", u.Bucket))
	}
	var parts []meta.Part
	err := e.db.View(func(tx *meta.Tx) error {
		return tx.Parts(u.ID, 0, func(p meta.Part) bool { parts = append(parts, p); return true })
	})
	if err != nil {
		why = append(why, fmt.Sprintf("its parts cannot be read: %v", err))
	}
	for _, p := range parts {
		if r.inodes[p.Ino] == nil {
			why = append(why, fmt.Sprintf("part %d's inode %d is gone", p.Number, p.Ino))
		}
	}
	if len(why) == 0 {
		return
	}
	id := u.ID
	r.add(FsckFinding{Kind: FsckBrokenUpload, Path: fmt.Sprintf("upload %x of %q", id[:], u.Key), Detail: strings.Join(why, "; "),
		fix: func(context.Context) (string, error) {
			// As AbortUpload does: the record goes, the parts' inodes are orphaned in the
			// same transaction and deleted after it.
			var held []meta.Ino
			err := e.update(func(tx *meta.Tx) error {
				held = held[:0]
				parts, err := tx.DeleteUpload(id)
				if err != nil {
					return err
				}
				for _, p := range parts {
					if _, err := tx.Inode(p.Ino); err == nil {
						held = append(held, p.Ino)
						if err := tx.AddOrphan(p.Ino); err != nil {
							return err
						}
					} else if !errors.Is(err, meta.ErrNotFound) {
						return err
					}
				}
				return nil
			})
			for _, ino := range held {
				if err == nil {
					err = e.deleteInode(ino)
				}
			}
			return fmt.Sprintf("upload aborted, %d part inodes deleted", len(held)), err
		}})
}

// checkObjects reports objects that no chunk record names.
func (r *fsckRun) checkObjects(ctx context.Context) error {
	ids := make([]objstore.ID, 0)
	for id, obj := range r.objects {
		if obj.refs == 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		size := r.objects[id].size
		r.add(FsckFinding{Kind: FsckOrphanObject, Object: id.String(),
			Detail: fmt.Sprintf("%d bytes, named by no chunk record", size), late: true,
			fix: func(ctx context.Context) (string, error) {
				return "deleted", classify(r.e.store.Delete(ctx, id))
			}})
	}
	return ctx.Err()
}

// repair runs the fixes: metadata first, made durable (which also deletes the objects
// those fixes freed), then the unreferenced objects, each checked once more against a
// fresh scan of every chunk record, so that no object a record names is ever deleted.
func (r *fsckRun) repair(ctx context.Context) error {
	all := r.report.Findings
	run := func(late bool) error {
		for i := range all {
			f := &all[i]
			if f.fix == nil || f.late != late {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			what, err := f.fix(ctx)
			if err != nil {
				f.RepairErr = err.Error()
				continue
			}
			f.Repaired = what
		}
		return nil
	}
	if err := run(false); err != nil {
		return err
	}
	if err := r.e.syncDurable(ctx); err != nil {
		return fmt.Errorf("fsck: making the repairs durable: %w", err)
	}
	referenced, err := r.referencedObjects(ctx)
	if err != nil {
		return err
	}
	for i := range all {
		f := &all[i]
		if f.Kind != FsckOrphanObject || f.fix == nil {
			continue
		}
		id, perr := objstore.ParseID(f.Object)
		if perr != nil || referenced[id] {
			// Never: referenced objects were counted. This guard keeps it so.
			f.fix = nil
			f.RepairErr = "a chunk record names it now; left alone"
		}
	}
	return run(true)
}

// referencedObjects scans every chunk record in the store.
func (r *fsckRun) referencedObjects(ctx context.Context) (map[objstore.ID]bool, error) {
	refs := make(map[objstore.ID]bool)
	var owners []meta.Ino
	err := r.e.db.View(func(tx *meta.Tx) error {
		return tx.RecordOwners(func(kind meta.RecordKind, ino meta.Ino) bool {
			if kind == meta.RecordChunks {
				owners = append(owners, ino)
			}
			return true
		})
	})
	for _, ino := range owners {
		if err != nil {
			break
		}
		err = r.e.db.View(func(tx *meta.Tx) error {
			return tx.Chunks(ino, 0, func(c meta.Chunk) bool {
				refs[objstore.ID(c.Object)] = true
				return true
			})
		})
	}
	if err != nil {
		return nil, classify(fmt.Errorf("fsck: rescanning chunk records: %w", err))
	}
	return refs, ctx.Err()
}

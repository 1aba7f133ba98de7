package fs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/sio"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// FsckKind is what an fsck finding is about.
type FsckKind string

// The kinds of findings. All are inconsistencies except those Inconsistency names: what a
// crash of the process leaves by design, what is still to be done, and what the KMS
// decides. FsckOrphanObject: objects are written before the commit that references them
// and deleted only after the commit that drops them, so a kill -9 between the two leaks
// them, and nothing but fsck collects them. FsckPastEOF: chunk records past the end of a
// file, which a kill -9 between two commits of one flush leaves (see fsckPastEOF).
// FsckPendingDeletion: an unlinked inode the next start would delete anyway.
// FsckRotationPending: an interrupted key rotation, which resumes when run again.
// FsckKeyUnavailable: the KMS refuses or lacks a key: secure erasure or an outage, not
// damage to the store.
const (
	FsckDanglingEntry     FsckKind = "dangling entry"                    // an entry names a missing inode
	FsckBadParentEntry    FsckKind = "entry outside a directory"         // an entry's parent is missing or no directory
	FsckEntryType         FsckKind = "entry type mismatch"               // an entry's d_type differs from its inode's
	FsckWrongNlink        FsckKind = "wrong nlink"                       // nlink differs from the entries that count
	FsckWrongParent       FsckKind = "wrong parent"                      // a directory's Parent is not the directory holding it
	FsckDirLinkedTwice    FsckKind = "directory linked twice"            // more than one entry names a directory
	FsckUnreachable       FsckKind = "unreachable inode"                 // no entry, orphan record or part names it
	FsckDirCycle          FsckKind = "directory cycle"                   // directories that hold each other, cut off from the root
	FsckWrongBucket       FsckKind = "wrong bucket"                      // Inode.Bucket is not the bucket the inode lives in
	FsckCrossBucketLinks  FsckKind = "links in two buckets"              // hard links to one file from two buckets
	FsckMissingKey        FsckKind = "missing sealed key"                // a regular file without its key record
	FsckCorruptKey        FsckKind = "corrupt sealed key"                // the key record does not decode or unseal
	FsckKeyUnavailable    FsckKind = "key unavailable"                   // the KMS refuses or lacks the key (not corruption)
	FsckMissingObject     FsckKind = "missing chunk object"              // a chunk record's object is not in the store
	FsckObjectSize        FsckKind = "chunk object size mismatch"        // the object is not as long as the record says
	FsckChunkCorrupt      FsckKind = "chunk failed authentication"       // decrypting the object fails
	FsckChunkUnreadable   FsckKind = "chunk unreadable"                  // the store failed to read the object
	FsckSharedObject      FsckKind = "chunk object shared"               // two chunk records name one object
	FsckPastEOF           FsckKind = "chunk data past end of file"       // chunk records beyond the file's size
	FsckOrphanObject      FsckKind = "orphaned chunk object"             // an object no chunk record names
	FsckStrayRecords      FsckKind = "records of a missing inode"        // xattrs, chunks, keys... of an inode that is gone
	FsckObjectRecord      FsckKind = "S3 object record without inode"    // meta.Object of an inode that is gone
	FsckStaleObjectRecord FsckKind = "stale S3 object record"            // an ETag that does not describe the file, a misplaced flag
	FsckBrokenUpload      FsckKind = "broken multipart upload"           // a part's inode or the bucket is gone
	FsckPartWithoutUpload FsckKind = "part without upload"               // a part record whose upload is gone
	FsckBadPart           FsckKind = "bad multipart part"                // a part's inode is linked, shared, of another size...
	FsckUploadIndex       FsckKind = "upload index mismatch"             // the bucket's upload index and the upload records disagree
	FsckLinkedOrphan      FsckKind = "linked inode on the orphan list"   // deleting it would cut live links
	FsckPendingDeletion   FsckKind = "pending deletion"                  // unlinked, awaiting deletion
	FsckChunklessRecords  FsckKind = "chunk records on a non-file inode" // chunks of a directory, symlink...
	FsckRotationPending   FsckKind = "interrupted key rotation"          // a rotation record: it resumes when run again
	FsckCorruptRotation   FsckKind = "corrupt key-rotation record"       // the rotation record does not decode
)

// Inconsistency tells whether a finding of this kind is damage (exit status 1).
func (k FsckKind) Inconsistency() bool {
	switch k {
	case FsckPendingDeletion, FsckKeyUnavailable, FsckOrphanObject, FsckPastEOF, FsckRotationPending:
		return false
	}
	return true
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

	fix   func(ctx context.Context) (string, error) // nil: not repairable
	phase fsckPhase                                 // when the fix runs
}

// fsckPhase orders the repairs: metadata first, then links into lost+found (which add to
// link counts that the first phase sets absolutely), then, once all that is durable and
// every chunk record has been scanned again, the deletion of objects nothing names.
type fsckPhase int

const (
	phaseMeta fsckPhase = iota
	phaseRelink
	phaseObjects
)

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
		if f.Ino != 0 || f.Path != "" || f.Object != "" {
			b.WriteString(": ")
		}
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
	// stray records, dangling entries, link counts, parents and buckets, pending
	// deletions, chunk records past the end of a file, upload index entries, stale S3
	// records, unreferenced objects; it links unreachable inodes into their bucket's
	// lost+found. It never deletes an object a chunk record names (an object is deleted
	// only after a fresh scan of every chunk record, once the repairs are durable), and
	// never touches a chunk that fails authentication (reading it must keep failing with
	// EIO).
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
// counts, parents and recorded buckets, that every inode is reachable from the root, key
// records against the KMS, chunk records against objects (and, with VerifyChunks, their
// authentication) and against the file's size, objects against chunk records, orphan, S3
// object and upload records against inodes, parts against their inodes, the upload index
// against the uploads, and the key rotation record. With Repair it fixes what it can (see
// FsckOptions).
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
		parts: make(map[meta.Ino]string), partHolders: make(map[meta.Ino]int), doomed: make(map[meta.Ino]bool)}
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
	size    uint64
	parent  meta.Ino
	bucket  meta.Ino // as recorded
	refs    uint32   // entries that name it (in directories that exist)
	subdirs uint32   // entries in it that name directories
	entries uint32   // entries in it
	// The first entry that names it, for its path and a directory's parent.
	entParent meta.Ino
	entName   string
	// moreParents are the directories of its other entries (hard links), for which
	// buckets it is linked from and whether any entry reaches it from the root.
	moreParents []meta.Ino
	// reach says whether a chain of entries leads to it from the root; home is then the
	// bucket it lives in (0 for the root itself). Set by resolve.
	reach fsckReach
	home  meta.Ino
}

type fsckReach uint8

const (
	reachUnknown  fsckReach = iota
	reachVisiting           // on the chain being resolved
	reachRoot               // entries lead to it from the root
	reachDetached           // no chain of entries leads to it from the root
)

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
	// partHolders counts the part records that name an inode (more than one is damage).
	partHolders map[meta.Ino]int
	uploadIndex []meta.UploadIndexEntry
	// rotation is the recorded key rotation, if any; rotationErr why it does not decode.
	rotation    *meta.RotationJob
	rotationErr error
	// cycles are sets of directories that hold each other, cut off from the root.
	cycles [][]meta.Ino
	// doomed are the inodes a namespace repair deletes: their other findings wait.
	doomed map[meta.Ino]bool

	// freed are the objects whose chunk records the repairs dropped, with the finding
	// whose repair dropped them: deleted only when a fresh scan finds no record naming
	// them (two records may share an object, which is damage, but not to be made worse).
	freed []fsckFreed
	cur   *FsckFinding // the finding whose fix is running

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

type fsckFreed struct {
	id objstore.ID
	f  *FsckFinding
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
			r.inodes[in.Ino] = &fsckInode{mode: in.Mode, nlink: in.Nlink, size: in.Size, parent: in.Parent, bucket: in.Bucket}
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
			} else {
				in.moreParents = append(in.moreParents, parent)
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
		if err := tx.AllUploadIndex(func(ie meta.UploadIndexEntry) bool { r.uploadIndex = append(r.uploadIndex, ie); return true }); err != nil {
			return err
		}
		if job, err := tx.RotationJob(); err == nil {
			r.rotation = &job
		} else if errors.Is(err, meta.ErrCorrupt) {
			r.rotationErr = err
		} else if !errors.Is(err, meta.ErrNotFound) {
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
			r.partHolders[p.Ino]++
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
	// A walk that is not known to end at the root (cut off, or not resolved yet) may go
	// round a cycle of directories: those note where they have been.
	var seen map[meta.Ino]bool
	for cur, depth := ino, 0; cur != meta.RootIno; depth++ {
		in := r.inodes[cur]
		if seen == nil && (depth == 64 || in != nil && in.reach != reachRoot) {
			seen = make(map[meta.Ino]bool)
		}
		if seen != nil {
			if seen[cur] {
				segs = append(segs, "?")
				break
			}
			seen[cur] = true
		}
		if in == nil || in.refs == 0 {
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
	r.resolve()
	for _, cycle := range r.cycles {
		names := make([]string, len(cycle))
		for i, ino := range cycle {
			names[i] = fmt.Sprint(ino)
		}
		// Cutting one of the entries would free the rest for lost+found, but which
		// one is a human's call; rename refuses to make a cycle, so this is damage.
		r.add(FsckFinding{Kind: FsckDirCycle, Ino: uint64(slices.Min(cycle)),
			Detail: fmt.Sprintf("directories %s hold each other and no chain of entries leads to them from the root; their content is kept",
				strings.Join(names, ", "))})
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
			f.fix = func(context.Context) (string, error) { return "deleted", r.dropInode(ino) }
			r.doomed[ino] = true
			r.add(f)
		case isPart && in.refs == 0:
			// A part's inode is unlinked by design; its record holds it.
		case in.refs == 0:
			r.checkLost(f, ino, in)
		default:
			r.checkLinks(f, ino, in, isDir)
		}
		r.checkBucket(f, ino, in)
	}
	return nil
}

// resolve finds, for every inode, whether a chain of entries leads to it from the root,
// and which bucket it then lives in. A directory is reached through its first entry (a
// second one is reported as damage); any other inode through any of its entries.
func (r *fsckRun) resolve() {
	for _, ino := range r.sortedInos() {
		if isDirMode(r.inodes[ino].mode) {
			r.resolveDir(ino)
		}
	}
	for _, in := range r.inodes {
		if isDirMode(in.mode) {
			continue
		}
		in.reach = reachDetached
		for _, p := range r.parentsOf(in) {
			if pd := r.inodes[p]; pd.reach == reachRoot {
				in.reach, in.home = reachRoot, pd.home
				break
			}
		}
	}
}

// resolveDir walks up from a directory through first entries until it meets the root,
// a directory no entry names (the top of a tree cut off from the root), a directory
// already resolved, or one on the walk itself (a cycle); then settles the walk.
func (r *fsckRun) resolveDir(ino meta.Ino) {
	var chain []meta.Ino
	cur := ino
	for {
		in := r.inodes[cur]
		if in.reach != reachUnknown {
			break
		}
		if cur == meta.RootIno {
			in.reach, in.home = reachRoot, 0
			break
		}
		if in.refs == 0 {
			in.reach = reachDetached
			break
		}
		in.reach = reachVisiting
		chain = append(chain, cur)
		cur = in.entParent
	}
	if r.inodes[cur].reach == reachVisiting {
		cycle := slices.Clone(chain[slices.Index(chain, cur):])
		r.cycles = append(r.cycles, cycle)
		for _, c := range cycle {
			r.inodes[c].reach = reachDetached
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		in := r.inodes[chain[i]]
		if in.reach != reachVisiting {
			continue // in the cycle
		}
		p := r.inodes[in.entParent]
		in.reach = p.reach
		if in.entParent == meta.RootIno {
			in.home = chain[i] // a bucket is its own
		} else {
			in.home = p.home
		}
	}
}

// parentsOf lists the directories whose entries name in.
func (r *fsckRun) parentsOf(in *fsckInode) []meta.Ino {
	if in.refs == 0 {
		return nil
	}
	return append([]meta.Ino{in.entParent}, in.moreParents...)
}

// isBucket tells whether ino is a bucket directory the root names.
func (r *fsckRun) isBucket(ino meta.Ino) bool {
	in := r.inodes[ino]
	return ino != meta.RootIno && in != nil && isDirMode(in.mode) && in.reach == reachRoot && in.entParent == meta.RootIno
}

// checkBucket checks Inode.Bucket: which bucket's key a new file in a directory is sealed
// under, and what refuses links and renames between buckets (sameBucket). It must be the
// bucket the inode's entries put it in; for the root, none.
func (r *fsckRun) checkBucket(f FsckFinding, ino meta.Ino, in *fsckInode) {
	if in.reach != reachRoot {
		return // cut off (reported above) or held by an upload (checkUpload)
	}
	want := in.home
	if !isDirMode(in.mode) {
		homes := []meta.Ino{}
		for _, p := range r.parentsOf(in) {
			if pd := r.inodes[p]; pd.reach == reachRoot && !slices.Contains(homes, pd.home) {
				homes = append(homes, pd.home)
			}
		}
		if len(homes) > 1 {
			names := make([]string, len(homes))
			for i, h := range homes {
				names[i] = r.dirName(h)
			}
			f.Kind = FsckCrossBucketLinks
			f.Detail = fmt.Sprintf("hard links from %s; a file belongs to one bucket (its key is sealed for it), which one is a human's call",
				strings.Join(names, " and "))
			r.add(f)
			return
		}
		if want == 0 {
			return // a file in the root itself: its entry is the damage (no bucket to want)
		}
	}
	if in.bucket == want {
		return
	}
	f.Kind = FsckWrongBucket
	if want == 0 {
		f.Detail = fmt.Sprintf("records bucket inode %d; the root belongs to no bucket", in.bucket)
	} else {
		f.Detail = fmt.Sprintf("records bucket inode %d, but it lives in bucket %s (inode %d)", in.bucket, r.dirName(want), want)
	}
	f.fix = func(context.Context) (string, error) {
		return fmt.Sprintf("bucket set to %d", want), r.e.update(func(tx *meta.Tx) error {
			cur, err := tx.Inode(ino)
			if err != nil {
				return err
			}
			cur.Bucket = want
			return tx.PutInode(&cur)
		})
	}
	r.add(f)
}

// checkLost reports an inode that no entry names and that no orphan or part record
// holds. With nlink 0 and nothing in it, it is an unlink that never finished, and goes.
// Anything else may hold content someone wants: as e2fsck does, the repair links it into
// the lost+found directory of its bucket, named by its number, instead of deleting it.
func (r *fsckRun) checkLost(f FsckFinding, ino meta.Ino, in *fsckInode) {
	f.Kind = FsckUnreachable
	f.Path = ""
	if in.nlink == 0 && in.entries == 0 {
		// Unlinked without being put on the orphan list: nothing can ever reach it
		// again, so deleting it is what the unlink meant.
		f.Detail = "nlink 0, on no list: an unlink that was never finished"
		f.fix = func(context.Context) (string, error) { return "deleted", r.dropInode(ino) }
		r.doomed[ino] = true
		r.add(f)
		return
	}
	f.Detail = fmt.Sprintf("nlink %d, but no entry names it; it was created in %s; its content is kept", in.nlink, r.dirName(in.parent))
	bucket := r.lostBucket(ino, in)
	switch {
	case bucket != 0:
		f.Detail += fmt.Sprintf(" (--repair links it into %s/%s)", r.dirName(bucket), lostFoundName)
		f.phase = phaseRelink
		f.fix = func(context.Context) (string, error) { return r.linkLost(ino, bucket) }
	case isDirMode(in.mode) && in.parent == meta.RootIno:
		f.Detail += "; it is a bucket directory the root no longer names, and --repair does not invent bucket names"
	default:
		f.Detail += fmt.Sprintf("; its bucket (inode %d) is gone, so there is no lost+found to link it into", in.bucket)
	}
	r.add(f)
}

// lostFoundName is the directory of a bucket that fsck links unreachable inodes into.
const lostFoundName = "lost+found"

// lostBucket picks the bucket whose lost+found takes an unreachable inode: the one it
// records, else the one of the directory it was created in; 0 if neither is there.
func (r *fsckRun) lostBucket(ino meta.Ino, in *fsckInode) meta.Ino {
	if in.bucket != ino && r.isBucket(in.bucket) {
		return in.bucket
	}
	if p := r.inodes[in.parent]; p != nil && isDirMode(p.mode) && p.reach == reachRoot && r.isBucket(p.home) {
		return p.home
	}
	return 0
}

// linkLost links ino as lost+found/#ino in bucket (lost+found is made, mode 0700 as
// e2fsck makes it, if missing), with the link count and parent that entry gives it.
func (r *fsckRun) linkLost(ino, bucket meta.Ino) (string, error) {
	e := r.e
	subdirs := r.inodes[ino].subdirs
	var name string
	err := e.update(func(tx *meta.Tx) error {
		b, err := dirInode(tx, uint64(bucket))
		if err != nil {
			return fmt.Errorf("bucket inode %d: %w", bucket, err)
		}
		lf, err := e.lostFound(tx, &b)
		if err != nil {
			return err
		}
		in, err := tx.Inode(ino)
		if err != nil {
			return err
		}
		// Named by number, as e2fsck does; a suffix if a name of that form is taken.
		name = fmt.Sprintf("#%d", ino)
		for n := 1; ; n++ {
			if _, err := tx.Lookup(lf.Ino, name); errors.Is(err, meta.ErrNotFound) {
				break
			} else if err != nil {
				return err
			}
			name = fmt.Sprintf("#%d.%d", ino, n)
		}
		in.Nlink = 1
		if isDirMode(in.Mode) {
			in.Nlink = 2 + subdirs
		}
		in.Parent, in.Bucket, in.Ctime = lf.Ino, bucket, now()
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		return addEntry(tx, &lf, name, &in)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("linked as %s/%s/%s", r.dirName(bucket), lostFoundName, name), nil
}

// lostFound returns bucket's lost+found directory, making it if missing.
func (e *Engine) lostFound(tx *meta.Tx, bucket *meta.Inode) (meta.Inode, error) {
	ent, err := tx.Lookup(bucket.Ino, lostFoundName)
	switch {
	case err == nil:
		if !isDirMode(ent.Mode) {
			return meta.Inode{}, fmt.Errorf("%s in bucket inode %d is not a directory: %w", lostFoundName, bucket.Ino, ErrNotDir)
		}
		return dirInode(tx, uint64(ent.Ino))
	case !errors.Is(err, meta.ErrNotFound):
		return meta.Inode{}, err
	}
	lf, err := e.prepareNew(*bucket, lostFoundName, Owner{Mode: syscall.S_IFDIR | 0o700})
	if err != nil {
		return meta.Inode{}, err
	}
	if err := tx.PutInode(&lf); err != nil {
		return meta.Inode{}, err
	}
	return lf, addEntry(tx, bucket, lostFoundName, &lf)
}

// dropInode deletes an inode and every record keyed by it (or the records of one that is
// gone), its chunk records in bounded batches as deleteInode does. The objects those
// records named are not scheduled for deletion here: repair deletes them only once a
// fresh scan finds no chunk record naming them.
func (r *fsckRun) dropInode(ino meta.Ino) error {
	if err := r.e.dropAllChunks(ino, r.free); err != nil {
		return err
	}
	var rest []meta.Chunk
	err := r.e.update(func(tx *meta.Tx) (err error) {
		rest, err = tx.DeleteInode(ino)
		if errors.Is(err, meta.ErrNotFound) {
			rest = nil
			return tx.DeleteInodeRecords(ino) // the leftovers of an inode that is gone
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting inode %d: %w", ino, err)
	}
	r.free(rest)
	return nil
}

// free notes the objects of chunk records the running repair dropped.
func (r *fsckRun) free(cs []meta.Chunk) {
	for _, c := range cs {
		if c.Inline == nil {
			r.freed = append(r.freed, fsckFreed{objstore.ID(c.Object), r.cur})
		}
	}
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
	past := fsckPastEOF{size: inode.Size, cs: uint64(inode.ChunkSize)}
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
			if past.beyond(c) {
				// Unreadable (reads stop at the size) and due to go: counted, so that
				// its object is no orphan, but neither checked nor verified.
				r.chunks.Add(1)
				if obj := r.objects[objstore.ID(c.Object)]; obj != nil {
					obj.refs++
				}
				continue
			}
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
	if past.found() && !r.doomed[ino] {
		r.add(FsckFinding{Kind: FsckPastEOF, Ino: uint64(ino), Path: path, Detail: past.String(),
			fix: func(context.Context) (string, error) { return r.trimPastEOF(ino) }})
	}
	return nil
}

// fsckPastEOF notes chunk data past the end of a file: chunk records at or past the size,
// or a last chunk whose PlainLen runs past it. None of it is readable (reads stop at the
// size), and it is what a crash legitimately leaves. A commit of stored chunks records the
// size that putInodeBefore holds back at the first chunk still in memory below it, so that
// a crash leaves a prefix of the file rather than a hole of zeros where that chunk was to
// be; a kill -9 before the commit of that chunk leaves the committed chunks past the size.
// (Truncate's batched tail drop commits each lower size with its drop, so it leaves
// nothing past it.) A later write into such a chunk starts from its stored plaintext and
// carries the data past the size into a chunk whose PlainLen then runs past it. So fsck
// counts neither as an inconsistency: after a kill -9 it must find none.
//
// The size is authoritative, so the repair (trimPastEOF) loses nothing readable: a write
// that flush, fsync or close acknowledged was committed with a size that covers it, and a
// size held back is by design the last consistent prefix; growing the size over the
// records instead would read zeros for the chunks the crash lost, content that was never
// the file's. The repair matters all the same: the engine does not drop chunk data between
// the old and the new size when a file grows (ftruncate up, a write past the end), so
// until it is trimmed, the data past the end comes back where zeros belong.
type fsckPastEOF struct {
	size, cs     uint64
	n            uint64 // chunk records wholly past the end
	first, last  uint64 // their indexes
	tail         uint64 // the last chunk's plaintext bytes past the end
	tailIndex    uint64
	tailReported bool
}

// beyond notes c if it reaches past the end; it tells whether c lies wholly past it.
func (p *fsckPastEOF) beyond(c meta.Chunk) bool {
	if p.cs == 0 {
		return false
	}
	keep := p.size/p.cs + min(p.size%p.cs, 1) // chunks [0, keep) hold the content
	if c.Index >= keep {
		if p.n == 0 {
			p.first = c.Index
		}
		p.n++
		p.last = c.Index
		return true
	}
	if end := c.Index*p.cs + uint64(c.PlainLen); end > p.size {
		p.tail, p.tailIndex, p.tailReported = end-p.size, c.Index, true
	}
	return false
}

func (p *fsckPastEOF) found() bool { return p.n > 0 || p.tailReported }

func (p *fsckPastEOF) String() string {
	var why []string
	switch {
	case p.n == 1:
		why = append(why, fmt.Sprintf("chunk %d lies wholly past the end", p.first))
	case p.n > 1:
		why = append(why, fmt.Sprintf("%d chunk records (chunks %d to %d) lie wholly past the end", p.n, p.first, p.last))
	}
	if p.tailReported {
		why = append(why, fmt.Sprintf("chunk %d holds %d bytes past the end", p.tailIndex, p.tail))
	}
	return fmt.Sprintf("size %d: %s; unreadable, left by a crash during a write (a growing file would show it where zeros belong)",
		p.size, strings.Join(why, "; "))
}

// trimPastEOF does to the chunk records what a truncate to the file's own size does:
// records past the end go (in bounded batches), the last one's PlainLen is shortened. The
// content up to the size is not touched.
func (r *fsckRun) trimPastEOF(ino meta.Ino) (string, error) {
	var dropped int
	var shortened bool
	for {
		var batch []meta.Chunk
		var short bool
		err := r.e.update(func(tx *meta.Tx) error {
			batch, short = batch[:0], false
			in, err := tx.Inode(ino)
			if err != nil {
				return err
			}
			cs := uint64(in.ChunkSize)
			if cs == 0 {
				return nil
			}
			keep := (in.Size + cs - 1) / cs
			err = tx.Chunks(ino, keep, func(c meta.Chunk) bool {
				batch = append(batch, c)
				return len(batch) < chunkBatch
			})
			if err != nil {
				return err
			}
			for _, c := range batch {
				if err := tx.DeleteChunk(ino, c.Index); err != nil {
					return err
				}
			}
			if keep == 0 {
				return nil
			}
			c, err := tx.Chunk(ino, keep-1)
			if errors.Is(err, meta.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if tail := in.Size - (keep-1)*cs; uint64(c.PlainLen) > tail {
				c.PlainLen, short = uint32(tail), true
				return tx.PutChunk(ino, c)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		shortened = shortened || short
		r.free(batch)
		dropped += len(batch)
		if len(batch) < chunkBatch {
			break
		}
	}
	var did []string
	if dropped > 0 {
		did = append(did, fmt.Sprintf("%d chunk records dropped", dropped))
	}
	if shortened {
		did = append(did, "last chunk shortened to the size")
	}
	if len(did) == 0 {
		did = append(did, "nothing left past the end")
	}
	return strings.Join(did, ", "), nil
}

// checkChunk checks a chunk record against the object store and counts the reference;
// it tells whether the object is there as recorded (and so worth verifying).
func (r *fsckRun) checkChunk(ino meta.Ino, path string, c meta.Chunk) bool {
	r.chunks.Add(1)
	if c.Inline != nil {
		return true // the record holds the ciphertext (its length is checked as it is read)
	}
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
	f := FsckFinding{Ino: uint64(j.ino), Path: j.path}
	if j.c.Inline == nil {
		f.Object = objstore.ID(j.c.Object).String()
	}
	if j.c.StoredLen == 0 {
		r.verified.Add(1)
		return
	}
	cipher := j.c.Inline
	var n int
	var err error
	if cipher == nil {
		cipher = make([]byte, j.c.StoredLen)
		n, err = r.e.store.ReadAt(ctx, j.c.Object, cipher, 0)
	}
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
			fix: func(ctx context.Context) (string, error) { return "records removed", r.dropInode(ino) }})
	}
	for _, ino := range hasObjectRecord {
		r.add(FsckFinding{Kind: FsckObjectRecord, Ino: uint64(ino), Detail: "the inode does not exist",
			fix: func(context.Context) (string, error) {
				return "record removed", e.update(func(tx *meta.Tx) error { return tx.DeleteObject(ino) })
			}})
	}
	if err := r.checkObjectRecords(); err != nil {
		return err
	}
	for _, u := range r.uploads {
		r.checkUpload(u)
	}
	for _, sp := range r.strayParts {
		r.add(FsckFinding{Kind: FsckPartWithoutUpload, Ino: uint64(sp.p.Ino), Path: r.parts[sp.p.Ino],
			Detail: "its upload record is gone",
			fix: func(context.Context) (string, error) {
				owned := r.ownsPart(sp.p.Ino)
				err := e.update(func(tx *meta.Tx) error {
					if err := tx.DeletePart(sp.id, sp.p.Number); err != nil {
						return err
					}
					if owned {
						return tx.AddOrphan(sp.p.Ino) // deleted right below; a crash leaves it listed
					}
					return nil
				})
				if err != nil {
					return "", err
				}
				if !owned {
					return "part record removed (its inode is not the record's alone, and stays)", nil
				}
				return "part record and its inode removed", r.dropInode(sp.p.Ino)
			}})
	}
	r.checkUploadIndex()
	r.checkRotation()
	return ctx.Err()
}

// ownsPart tells whether a part record is all that holds an inode, so that dropping the
// record may delete the inode: not when an entry links it too, nor when another part
// record names it (both damage, reported by checkPart).
func (r *fsckRun) ownsPart(ino meta.Ino) bool {
	in := r.inodes[ino]
	return in != nil && in.refs == 0 && r.partHolders[ino] == 1
}

func (r *fsckRun) checkUpload(u meta.Upload) {
	e := r.e
	var why []string
	switch b := r.inodes[u.Bucket]; {
	case b == nil || !isDirMode(b.mode):
		why = append(why, fmt.Sprintf("its bucket, inode %d, is gone", u.Bucket))
	case b.reach == reachRoot && b.entParent != meta.RootIno:
		why = append(why, fmt.Sprintf("its bucket, inode %d, is %s, a directory inside a bucket", u.Bucket, r.path(u.Bucket)))
	}
	var parts []meta.Part
	err := e.db.View(func(tx *meta.Tx) error {
		return tx.Parts(u.ID, 0, func(p meta.Part) bool { parts = append(parts, p); return true })
	})
	if err != nil {
		why = append(why, fmt.Sprintf("its parts cannot be read: %v", err))
	}
	for _, p := range parts {
		in := r.inodes[p.Ino]
		switch {
		case in == nil:
			why = append(why, fmt.Sprintf("part %d's inode %d is gone", p.Number, p.Ino))
		case !isRegMode(in.mode):
			why = append(why, fmt.Sprintf("part %d's inode %d is not a regular file (mode %o)", p.Number, p.Ino, in.mode))
		default:
			r.checkPart(u, p, in)
		}
	}
	if len(why) == 0 {
		return
	}
	id := u.ID
	r.add(FsckFinding{Kind: FsckBrokenUpload, Path: fmt.Sprintf("upload %x of %q", id[:], u.Key), Detail: strings.Join(why, "; "),
		fix: func(context.Context) (string, error) {
			// As AbortUpload does: the record goes, the parts' inodes are orphaned in the
			// same transaction and deleted after it; but not an inode that an entry or
			// another part record also holds.
			var held []meta.Ino
			err := e.update(func(tx *meta.Tx) error {
				held = held[:0]
				parts, err := tx.DeleteUpload(id)
				if err != nil {
					return err
				}
				for _, p := range parts {
					if !r.ownsPart(p.Ino) {
						continue
					}
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
					err = r.dropInode(ino)
				}
			}
			return fmt.Sprintf("upload aborted, %d part inodes deleted", len(held)), err
		}})
}

// checkPart checks a part record against its (regular file) inode: the record must be
// all that holds it, the sizes must agree, and the inode must be in the upload's bucket.
func (r *fsckRun) checkPart(u meta.Upload, p meta.Part, in *fsckInode) {
	id := u.ID
	f := FsckFinding{Kind: FsckBadPart, Ino: uint64(p.Ino), Path: fmt.Sprintf("(part %d of upload %x of %q)", p.Number, id[:], u.Key)}
	if in.refs > 0 {
		// The part record owns its inode: completing or aborting the upload deletes it,
		// and with it a file that entries name. Dropping the record keeps the file; the
		// client uploads that part again.
		g := f
		g.Detail = fmt.Sprintf("its inode is also linked as %s: completing or aborting the upload would delete that file", r.path(p.Ino))
		g.fix = func(context.Context) (string, error) {
			return "part record removed; the file stays (the part must be uploaded again)",
				r.e.update(func(tx *meta.Tx) error { return tx.DeletePart(id, p.Number) })
		}
		r.add(g)
	}
	if n := r.partHolders[p.Ino]; n > 1 {
		g := f
		g.Detail = fmt.Sprintf("its inode is named by %d part records: retiring one would delete another's content; which one is right is a human's call", n)
		r.add(g)
	}
	if in.size != p.Size {
		g := f
		g.Detail = fmt.Sprintf("the record says %d bytes, its inode holds %d: completing the upload would fail or store other bytes than the part's ETag describes (upload the part again)", p.Size, in.size)
		r.add(g)
	}
	if in.refs == 0 && in.bucket != u.Bucket {
		g := f
		g.Kind = FsckWrongBucket
		g.Detail = fmt.Sprintf("records bucket inode %d, but its upload is for bucket inode %d", in.bucket, u.Bucket)
		want, ino := u.Bucket, p.Ino
		g.fix = func(context.Context) (string, error) {
			return fmt.Sprintf("bucket set to %d", want), r.e.update(func(tx *meta.Tx) error {
				cur, err := tx.Inode(ino)
				if err != nil {
					return err
				}
				cur.Bucket = want
				return tx.PutInode(&cur)
			})
		}
		r.add(g)
	}
}

// checkUploadIndex checks the per-bucket index of uploads (what ListMultipartUploads
// walks) against the upload records, both ways. An entry naming no upload makes every
// listing of its bucket's uploads fail; an upload without its entry is missing from them
// (and so never aborted by a client that lists to clean up).
func (r *fsckRun) checkUploadIndex() {
	e := r.e
	byID := make(map[meta.UploadID]*meta.Upload, len(r.uploads))
	for i := range r.uploads {
		byID[r.uploads[i].ID] = &r.uploads[i]
	}
	indexed := make(map[meta.UploadID]bool, len(r.uploads))
	for _, ie := range r.uploadIndex {
		f := FsckFinding{Kind: FsckUploadIndex, Path: fmt.Sprintf("upload index of %s, key %q", r.dirName(ie.Bucket), ie.Key)}
		switch u := byID[ie.ID]; {
		case u == nil:
			f.Detail = fmt.Sprintf("names upload %x, which does not exist: listing the bucket's uploads fails on it", ie.ID[:])
		case u.Bucket != ie.Bucket || u.Key != ie.Key:
			f.Detail = fmt.Sprintf("names upload %x, whose record is for key %q in bucket inode %d", ie.ID[:], u.Key, u.Bucket)
		default:
			indexed[ie.ID] = true
			continue
		}
		f.fix = func(context.Context) (string, error) {
			return "entry removed", e.update(func(tx *meta.Tx) error { return tx.DeleteUploadIndex(ie) })
		}
		r.add(f)
	}
	for _, u := range r.uploads {
		if indexed[u.ID] || !r.isBucket(u.Bucket) {
			continue // a broken upload is aborted, index entry and all
		}
		ie := meta.UploadIndexEntry{Bucket: u.Bucket, Key: u.Key, ID: u.ID}
		r.add(FsckFinding{Kind: FsckUploadIndex, Path: fmt.Sprintf("upload %x of %q", u.ID[:], u.Key),
			Detail: fmt.Sprintf("not in the upload index of %s: listings of the bucket's uploads do not show it", r.dirName(u.Bucket)),
			fix: func(context.Context) (string, error) {
				return "entry added", e.update(func(tx *meta.Tx) error { return tx.PutUploadIndex(ie) })
			}})
	}
}

// checkRotation reports a key rotation record. One that decodes is an interrupted
// rotation, no damage: every batch re-seals its files in one transaction, so each file
// holds a whole sealed key, old or new; running the rotation again finishes it. Only the
// operator knows whether to finish or abandon it, and finishing needs the KMS, so repair
// leaves it. One that does not decode makes every rotation fail; dropping it loses only
// the progress it recorded, for the same reason.
func (r *fsckRun) checkRotation() {
	e := r.e
	switch {
	case r.rotationErr != nil:
		r.add(FsckFinding{Kind: FsckCorruptRotation,
			Detail: fmt.Sprintf("%v: every key rotation fails on it (sealed keys are whole either way; only the record's progress is lost)", r.rotationErr),
			fix: func(context.Context) (string, error) {
				return "record dropped", e.update(func(tx *meta.Tx) error { return tx.DeleteRotationJob() })
			}})
	case r.rotation != nil:
		j := *r.rotation
		detail := fmt.Sprintf("%s, started %s, %d of %d files done, %d skipped; run it again with the same options to finish it, or abandon it",
			describeRotation(j), time.Unix(0, j.Started).UTC().Format(time.RFC3339), j.Done, j.Total, j.Skipped)
		if j.Bucket != "" && !r.hasBucket(j.Bucket) {
			detail += fmt.Sprintf(" (its bucket %q is gone: it can only be abandoned)", j.Bucket)
		}
		r.add(FsckFinding{Kind: FsckRotationPending, Detail: detail})
	}
}

func (r *fsckRun) hasBucket(name string) bool {
	for ino, in := range r.inodes {
		if in.entName == name && r.isBucket(ino) {
			return true
		}
	}
	return false
}

// checkObjectRecords checks the S3 records of inodes that exist: a file's ETag must be
// well formed and describe the file's current size (the engine drops it in the
// transaction that changes the content; one that survived is ignored by S3 reads, which
// compare sizes, but is damage), only directories may be implicit, and only files and
// directories are S3 objects at all.
func (r *fsckRun) checkObjectRecords() error {
	e := r.e
	err := e.db.View(func(tx *meta.Tx) error {
		return tx.AllObjects(func(ino meta.Ino, o meta.Object) bool {
			in := r.inodes[ino]
			if in == nil {
				return true // FsckObjectRecord
			}
			isReg, isDir := isRegMode(in.mode), isDirMode(in.mode)
			var why []string
			var dropETag, clearImplicit bool
			switch {
			case !isReg && !isDir:
				why = append(why, fmt.Sprintf("an S3 record on an inode of mode %o, which is no S3 object", in.mode))
			case isReg && o.ETag != "" && !validETag(o.ETag):
				why, dropETag = append(why, fmt.Sprintf("ETag %q is malformed", o.ETag)), true
			case isReg && o.ETag != "" && o.Size != in.size:
				why, dropETag = append(why, fmt.Sprintf("ETag %s describes %d bytes, the file holds %d", o.ETag, o.Size, in.size)), true
			}
			if isReg && o.Flags&meta.ObjectImplicitDir != 0 {
				why, clearImplicit = append(why, "a file marked as an implicit directory"), true
			}
			if len(why) == 0 {
				return true
			}
			remove := !isReg && !isDir
			f := FsckFinding{Kind: FsckStaleObjectRecord, Ino: uint64(ino), Path: r.path(ino), Detail: strings.Join(why, "; ")}
			f.fix = func(context.Context) (string, error) {
				if remove {
					return "record removed", e.update(func(tx *meta.Tx) error { return tx.DeleteObject(ino) })
				}
				var did []string
				err := e.update(func(tx *meta.Tx) error {
					did = did[:0]
					cur, err := tx.Object(ino)
					if err != nil {
						return err
					}
					if dropETag {
						// What a write through the mount does: S3 then shows a
						// synthetic ETag, as it already did for a size mismatch.
						cur.ETag, cur.Size = "", 0
						did = append(did, "ETag dropped")
					}
					if clearImplicit {
						cur.Flags &^= meta.ObjectImplicitDir
						did = append(did, "implicit flag cleared")
					}
					return tx.PutObject(ino, &cur)
				})
				return strings.Join(did, ", "), err
			}
			r.add(f)
			return true
		})
	})
	if err != nil {
		return classify(fmt.Errorf("fsck: reading S3 object records: %w", err))
	}
	return nil
}

// validETag tells whether an ETag has a form the engine writes: 32 lowercase hex digits
// (an MD5), followed for a multipart upload by "-" and the number of parts.
func validETag(s string) bool {
	sum, parts, multi := strings.Cut(s, "-")
	if len(sum) != 32 || strings.ToLower(sum) != sum {
		return false
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return false
	}
	if !multi {
		return true
	}
	n, err := strconv.Atoi(parts)
	return err == nil && n >= 1 && n <= MaxPartNumber && strconv.Itoa(n) == parts
}

// checkObjects reports objects that no chunk record names.
func (r *fsckRun) checkObjects(ctx context.Context) error {
	// Objects freed while metadata snapshots may still name them wait for deletion
	// (deferred.go): they are not orphans.
	deferred, err := r.e.deferredObjects()
	if err != nil {
		return fmt.Errorf("fsck: listing deferred objects: %w", err)
	}
	ids := make([]objstore.ID, 0)
	for id, obj := range r.objects {
		if obj.refs == 0 && !deferred[id] {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		size := r.objects[id].size
		r.add(FsckFinding{Kind: FsckOrphanObject, Object: id.String(),
			Detail: fmt.Sprintf("%d bytes, named by no chunk record", size), phase: phaseObjects,
			fix: func(ctx context.Context) (string, error) {
				return r.e.dropObject(ctx, id)
			}})
	}
	return ctx.Err()
}

// repair runs the fixes: metadata first, then the links into lost+found, made durable
// (which also deletes the objects of this engine's own replaced chunks), then the objects
// the repairs freed and those nothing referenced, each checked once more against a fresh
// scan of every chunk record, so that no object a record names is ever deleted.
func (r *fsckRun) repair(ctx context.Context) error {
	all := r.report.Findings
	run := func(phase fsckPhase) error {
		for i := range all {
			f := &all[i]
			if f.fix == nil || f.phase != phase {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			r.cur = f
			what, err := f.fix(ctx)
			r.cur = nil
			if err != nil {
				f.RepairErr = err.Error()
				continue
			}
			f.Repaired = what
		}
		return nil
	}
	for _, phase := range []fsckPhase{phaseMeta, phaseRelink} {
		if err := run(phase); err != nil {
			return err
		}
	}
	if err := r.e.syncDurable(ctx); err != nil {
		return fmt.Errorf("fsck: making the repairs durable: %w", err)
	}
	referenced, err := r.referencedObjects(ctx)
	if err != nil {
		return err
	}
	for _, fr := range r.freed {
		if referenced[fr.id] || r.objects[fr.id] == nil {
			continue // another chunk record names it too (reported as shared), or it was missing
		}
		if _, err := r.e.dropObject(ctx, fr.id); err != nil && fr.f != nil {
			// The metadata repair stands; the object is an orphan the next fsck collects.
			fr.f.Repaired += fmt.Sprintf(" (object %s not deleted: %v)", fr.id, classify(err))
		}
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
	return run(phaseObjects)
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

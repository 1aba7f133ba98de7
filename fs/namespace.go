package fs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// Owner is who creates an inode and with what mode (S_IFMT bits included).
type Owner struct {
	Mode     uint32
	Uid, Gid uint32
	Rdev     uint32
}

func isDirMode(mode uint32) bool { return mode&syscall.S_IFMT == syscall.S_IFDIR }
func isRegMode(mode uint32) bool { return mode&syscall.S_IFMT == syscall.S_IFREG }

// update runs fn in one metadata transaction, which first stores the pending creates
// (pending.go), and classifies what fails.
func (e *Engine) update(fn func(tx *meta.Tx) error) error {
	if e.pending.n.Load() == 0 {
		return classify(e.db.Update(fn))
	}
	var applied []*pendingCreate
	err := e.db.UpdateEach(func() func(tx *meta.Tx) error {
		// Before the transaction begins: a create that left the list before this was
		// committed before it, so the transaction sees it; one still listed is applied.
		// Taken inside, a create committed by another transaction after this one began
		// would be neither listed nor visible.
		applied = e.pending.snapshot()
		return func(tx *meta.Tx) error {
			if err := e.applyPending(tx, applied); err != nil {
				return err
			}
			return fn(tx)
		}
	})
	if err == nil {
		e.pending.committed(applied)
	}
	return classify(err)
}

// view runs fn on a snapshot that holds every file created before it was called. When
// the space guard refuses to commit them, reads go on without them: a full disk must not
// stop reads, and those files' closes report the ENOSPC their creates would have.
func (e *Engine) view(fn func(tx *meta.Tx) error) error {
	if err := e.settlePending(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	return classify(e.db.View(fn))
}

// GetAttr returns an inode's attributes; an open file's size and times include what is
// still in its write-back buffer.
func (e *Engine) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	if of := e.openState(ino); of != nil {
		of.mu.Lock()
		defer of.mu.Unlock()
		return attrOf(&of.inode), nil
	}
	var in meta.Inode
	err := e.view(func(tx *meta.Tx) (err error) {
		in, err = tx.Inode(meta.Ino(ino))
		return err
	})
	if err != nil {
		return Attr{}, fmt.Errorf("getattr %d: %w", ino, err)
	}
	return attrOf(&in), nil
}

// Lookup finds name in the directory parent.
func (e *Engine) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	return e.lookup(parent, name, false)
}

// LookupRef is Lookup for a frontend that keeps what it finds (the kernel's node for
// it), taking the reference that Reference would take, in the same step: otherwise a
// replace through another frontend (an S3 PUT over the name) could delete the inode
// between the lookup and the reference, and the kernel's open of what it just looked up
// would find nothing. The caller drops the reference with Forget.
func (e *Engine) LookupRef(ctx context.Context, parent Ino, name string) (Attr, error) {
	return e.lookup(parent, name, true)
}

// lookup reads the entry and its inode in one transaction, under nsMu, so a concurrent
// replace is seen whole or not at all.
func (e *Engine) lookup(parent Ino, name string, ref bool) (Attr, error) {
	if err := validName(name); err != nil {
		return Attr{}, err
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var in meta.Inode
	err := e.view(func(tx *meta.Tx) error {
		ent, err := tx.Lookup(meta.Ino(parent), name)
		if err != nil {
			return err
		}
		in, err = tx.Inode(ent.Ino)
		return err
	})
	if err != nil {
		return Attr{}, classify(fmt.Errorf("lookup %q in %d: %w", name, parent, err))
	}
	return e.foundLocked(attrOf(&in), ref), nil
}

// foundLocked finishes a lookup under nsMu: an open file's view is the authority on size
// and times (see GetAttr), and a frontend that keeps what it found takes its kernel
// reference in the same hold of the lock.
func (e *Engine) foundLocked(a Attr, ref bool) Attr {
	if of := e.files[a.Ino]; of != nil {
		of.mu.Lock()
		a = attrOf(&of.inode)
		of.mu.Unlock()
	}
	if ref {
		e.referenceLocked(a.Ino)
	}
	return a
}

// Lookups holds what LookupMany read: several names of one directory with their
// inodes, in one transaction. A READDIRPLUS reply carries a few dozen entries, and a
// lookup each (the lock, a transaction, two reads) was most of what listing cost.
type Lookups struct {
	e     *Engine
	attrs []Attr
	errs  []error
	drops uint64 // e.drops before the transaction
}

// LookupMany looks up names in dir as Lookup would, in one transaction. Take hands out
// the results.
func (e *Engine) LookupMany(ctx context.Context, dir Ino, names []string) *Lookups {
	l := &Lookups{e: e, attrs: make([]Attr, len(names)), errs: make([]error, len(names)), drops: e.drops.Load()}
	err := e.view(func(tx *meta.Tx) error {
		// The names, then their inodes, each in one pass over the store (meta.LookupMany,
		// InodesMany): a listing's names, and their inodes when the files were made one
		// after another, are neighbours there.
		var which []int // indices of the valid names
		var valid []string
		for i, name := range names {
			if err := validName(name); err != nil {
				l.errs[i] = err
				continue
			}
			which, valid = append(which, i), append(valid, name)
		}
		ents, errs, err := tx.LookupMany(meta.Ino(dir), valid)
		if err != nil {
			return err
		}
		var found []int // indices into valid of the names found
		var inos []meta.Ino
		for k := range valid {
			if errs[k] == nil {
				found, inos = append(found, k), append(inos, ents[k].Ino)
			}
		}
		ins, inErrs, err := tx.InodesMany(inos)
		if err != nil {
			return err
		}
		for j, k := range found {
			errs[k] = inErrs[j]
			if errs[k] == nil {
				l.attrs[which[k]] = attrOf(&ins[j])
			}
		}
		for k, err := range errs {
			if err != nil {
				// Only a missing name or inode comes here: read errors ended the view.
				l.errs[which[k]] = classify(fmt.Errorf("lookup %q in %d: %w", valid[k], dir, err))
			}
		}
		return nil
	})
	if err != nil {
		for i := range l.errs {
			l.errs[i] = classify(fmt.Errorf("lookup %q in %d: %w", names[i], dir, err))
		}
	}
	return l
}

// Take returns the i-th result of LookupMany, with the kernel reference LookupRef takes
// when it found an inode. ok is false when an inode lost a link since the transaction:
// the result may name an inode that is gone now (a removed name's inode goes at once),
// and the caller must use LookupRef instead.
func (l *Lookups) Take(i int) (a Attr, err error, ok bool) {
	e := l.e
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	if e.drops.Load() != l.drops {
		return Attr{}, nil, false
	}
	if l.errs[i] != nil {
		return Attr{}, l.errs[i], true
	}
	return e.foundLocked(l.attrs[i], true), nil, true
}

// dirInode loads a directory that is to gain or lose an entry.
func dirInode(tx *meta.Tx, ino Ino) (meta.Inode, error) {
	dir, err := tx.Inode(meta.Ino(ino))
	if err != nil {
		return dir, err
	}
	if !isDirMode(dir.Mode) {
		return dir, fmt.Errorf("inode %d: %w", ino, ErrNotDir)
	}
	if dir.Nlink == 0 {
		// Removed while a process still had it as its working directory.
		return dir, fmt.Errorf("directory %d was removed: %w", ino, ErrNotExist)
	}
	return dir, nil
}

func touch(in *meta.Inode, t int64) { in.Mtime, in.Ctime = t, t }

// prepareNew builds a new inode under parent. Buckets are the only thing the root holds.
func (e *Engine) prepareNew(parent meta.Inode, name string, o Owner) (meta.Inode, error) {
	if parent.Ino == meta.RootIno {
		if !isDirMode(o.Mode) {
			return meta.Inode{}, fmt.Errorf("%q: only buckets (directories) live at the top level: %w", name, ErrPermission)
		}
		if err := ValidBucketName(name); err != nil {
			return meta.Inode{}, err
		}
	}
	ino, err := e.db.NextIno()
	if err != nil {
		return meta.Inode{}, fmt.Errorf("allocating inode: %w", err)
	}
	t := now()
	in := meta.Inode{
		Ino: ino, Mode: o.Mode, Uid: o.Uid, Gid: o.Gid, Rdev: o.Rdev, Nlink: 1,
		Atime: t, Mtime: t, Ctime: t, Gen: 1, Parent: parent.Ino, Bucket: parent.Bucket,
	}
	if isDirMode(o.Mode) {
		in.Nlink = 2
	}
	// A set-group-ID directory hands its group down, and to subdirectories the bit too,
	// as local filesystems do (the kernel leaves this to the filesystem).
	if parent.Mode&syscall.S_ISGID != 0 {
		in.Gid = parent.Gid
		if isDirMode(o.Mode) {
			in.Mode |= syscall.S_ISGID
		}
	}
	if parent.Ino == meta.RootIno {
		in.Bucket = ino
	}
	return in, nil
}

// nameFree refuses a name that parent already holds.
func nameFree(tx *meta.Tx, parent meta.Ino, name string) error {
	if _, err := tx.Lookup(parent, name); err == nil {
		return fmt.Errorf("%q: %w", name, ErrExist)
	} else if !errors.Is(err, meta.ErrNotFound) {
		return err
	}
	return nil
}

// addEntry adds in's entry to its parent within tx; the caller has checked the name is free.
func addEntry(tx *meta.Tx, parent *meta.Inode, name string, in *meta.Inode) error {
	if err := tx.PutEntry(parent.Ino, meta.Entry{Name: name, Ino: in.Ino, Mode: in.Mode & syscall.S_IFMT}); err != nil {
		return err
	}
	if isDirMode(in.Mode) {
		parent.Nlink++
	}
	touch(parent, in.Ctime)
	return tx.PutInode(parent)
}

func (e *Engine) parentInode(parent Ino) (meta.Inode, error) {
	var dir meta.Inode
	err := e.view(func(tx *meta.Tx) (err error) {
		dir, err = dirInode(tx, parent)
		return err
	})
	return dir, err
}

// Mkdir creates a directory; in the root it creates a bucket.
func (e *Engine) Mkdir(ctx context.Context, parent Ino, name string, o Owner) (Attr, error) {
	o.Mode = o.Mode&^syscall.S_IFMT | syscall.S_IFDIR
	return e.mknode(ctx, parent, name, o, nil)
}

// Mknod creates a FIFO, socket or device node (metadata only: there is no content).
func (e *Engine) Mknod(ctx context.Context, parent Ino, name string, o Owner) (Attr, error) {
	switch o.Mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	case syscall.S_IFREG, 0:
		a, h, err := e.Create(ctx, parent, name, Owner{Mode: o.Mode&^syscall.S_IFMT | syscall.S_IFREG, Uid: o.Uid, Gid: o.Gid}, true)
		if err == nil {
			err = h.Release(ctx)
		}
		return a, err
	default:
		return Attr{}, fmt.Errorf("mknod mode %o: %w", o.Mode, ErrInvalid)
	}
	return e.mknode(ctx, parent, name, o, nil)
}

// Symlink creates a symbolic link holding target.
func (e *Engine) Symlink(ctx context.Context, parent Ino, name, target string, o Owner) (Attr, error) {
	if target == "" || len(target) > 4095 {
		return Attr{}, fmt.Errorf("symlink target of %d bytes: %w", len(target), ErrInvalid)
	}
	o.Mode = syscall.S_IFLNK | 0o777
	return e.mknode(ctx, parent, name, o, func(tx *meta.Tx, in *meta.Inode) error {
		in.Size = uint64(len(target))
		return tx.PutSymlink(in.Ino, target)
	})
}

func (e *Engine) mknode(ctx context.Context, parent Ino, name string, o Owner, extra func(*meta.Tx, *meta.Inode) error) (Attr, error) {
	if err := validName(name); err != nil {
		return Attr{}, err
	}
	var in meta.Inode
	err := e.update(func(tx *meta.Tx) error {
		dir, err := dirInode(tx, parent)
		if err != nil {
			return err
		}
		if err := nameFree(tx, dir.Ino, name); err != nil {
			return err
		}
		if in, err = e.prepareNew(dir, name, o); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(tx, &in); err != nil {
				return err
			}
		}
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		return addEntry(tx, &dir, name, &in)
	})
	if err != nil {
		return Attr{}, fmt.Errorf("create %q in %d: %w", name, parent, err)
	}
	if parent == RootIno {
		e.bucketMu.Lock()
		e.bucketNames[uint64(in.Ino)] = name
		e.bucketMu.Unlock()
	}
	e.publish(ctx, Change{Ino: uint64(in.Ino), Parent: parent, Name: name})
	return attrOf(&in), nil
}

// bucketName returns the name of the bucket whose directory is ino.
func (e *Engine) bucketName(ino meta.Ino) (string, error) {
	e.bucketMu.Lock()
	name, ok := e.bucketNames[uint64(ino)]
	e.bucketMu.Unlock()
	if ok {
		return name, nil
	}
	err := e.view(func(tx *meta.Tx) error {
		return tx.Entries(meta.RootIno, "", func(ent meta.Entry) bool {
			if ent.Ino == ino {
				name, ok = ent.Name, true
				return false
			}
			return true
		})
	})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("bucket of inode %d: %w", ino, ErrNotExist)
	}
	e.bucketMu.Lock()
	e.bucketNames[uint64(ino)] = name
	e.bucketMu.Unlock()
	return name, nil
}

// bucketDefaultKey returns the bucket's default key name, "" for none.
func (e *Engine) bucketDefaultKey(bucket meta.Ino) (string, error) {
	e.bucketMu.Lock()
	key, ok := e.bucketKeys[uint64(bucket)]
	e.bucketMu.Unlock()
	if ok {
		return key, nil
	}
	var cfg meta.BucketConfig
	if err := e.view(func(tx *meta.Tx) (err error) {
		cfg, err = tx.BucketConfig(bucket)
		if errors.Is(err, meta.ErrNotFound) {
			err = nil
		}
		return err
	}); err != nil {
		return "", err
	}
	e.bucketMu.Lock()
	if _, ok := e.bucketKeys[uint64(bucket)]; !ok { // SetBucketEncryption's figure wins
		e.bucketKeys[uint64(bucket)] = cfg.DefaultKey
	}
	e.bucketMu.Unlock()
	return cfg.DefaultKey, nil
}

// sealNewKey makes a file's OEK and its sealed record, under the bucket's default key
// (SSE-KMS) or the process default key (SSE-S3). The data key is cached by the sealer,
// so this costs no KMS call per file.
func (e *Engine) sealNewKey(ctx context.Context, bucket meta.Ino, fileID [16]byte) ([32]byte, []byte, error) {
	oek := keys.NewOEK()
	name, err := e.bucketName(bucket)
	if err != nil {
		return oek, nil, err
	}
	defaultKey, err := e.bucketDefaultKey(bucket)
	if err != nil {
		return oek, nil, err
	}
	sseType := keys.SSES3
	if defaultKey != "" {
		sseType = keys.SSEKMS
	}
	sk, err := e.sealer.Seal(ctx, sseType, defaultKey, name, fileID, oek)
	if err != nil {
		return oek, nil, classify(fmt.Errorf("sealing the key of a new file in bucket %q: %w", name, err))
	}
	sealed, err := sk.MarshalBinary()
	return oek, sealed, err
}

// Create makes a regular file and opens it. With exclusive, an existing name is
// ErrExist; otherwise the existing file is opened (O_CREAT without O_EXCL).
func (e *Engine) Create(ctx context.Context, parent Ino, name string, o Owner, exclusive bool) (Attr, *Handle, error) {
	if err := validName(name); err != nil {
		return Attr{}, nil, err
	}
	o.Mode = o.Mode&^syscall.S_IFMT | syscall.S_IFREG
	for {
		a, h, err := e.create(ctx, parent, name, o, exclusive)
		if !errors.Is(err, errWrongBucket) {
			return a, h, err
		}
		// The remembered bucket was not the directory's (fsck moved it): read it afresh.
		e.lastCreateDir.Store(nil)
	}
}

// dirBucket is a directory and the bucket it belongs to (Engine.lastCreateDir).
type dirBucket struct{ dir, bucket meta.Ino }

// errWrongBucket: Create sealed the new key for another bucket than the directory's.
var errWrongBucket = errors.New("fs: the directory belongs to another bucket")

// createBucket returns the bucket a new file in parent is sealed for: the remembered one
// when parent was the last directory created in, else read from parent's inode.
func (e *Engine) createBucket(parent Ino) (meta.Ino, error) {
	if last := e.lastCreateDir.Load(); last != nil && last.dir == meta.Ino(parent) {
		return last.bucket, nil
	}
	dir, err := e.parentInode(parent)
	if err != nil {
		return 0, err
	}
	if dir.Ino == meta.RootIno {
		return 0, fmt.Errorf("only buckets (directories) live at the top level: %w", ErrPermission)
	}
	return dir.Bucket, nil
}

// create is Create for the bucket it guesses (createBucket); errWrongBucket, with nothing
// done, when the directory turned out to belong to another.
func (e *Engine) create(ctx context.Context, parent Ino, name string, o Owner, exclusive bool) (Attr, *Handle, error) {
	bucket, err := e.createBucket(parent)
	if err != nil {
		return Attr{}, nil, fmt.Errorf("create %q in %d: %w", name, parent, err)
	}
	fileID := keys.NewFileID()
	oek, sealed, err := e.sealNewKey(ctx, bucket, fileID)
	if err != nil {
		return Attr{}, nil, err
	}

	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	e.stageMu.Lock()
	var dir meta.Inode
	var existing *meta.Entry
	err = e.view(func(tx *meta.Tx) error {
		if dir, err = dirInode(tx, parent); err != nil {
			return err
		}
		if dir.Ino == meta.RootIno || dir.Bucket != bucket {
			return errWrongBucket
		}
		if ent, err := tx.Lookup(dir.Ino, name); err == nil {
			existing = &ent
		} else if !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		return nil
	})
	var in meta.Inode
	if err == nil && existing == nil {
		in, err = e.stageCreate(dir, name, o, fileID, sealed)
	}
	e.stageMu.Unlock()
	if errors.Is(err, errWrongBucket) {
		return Attr{}, nil, err
	}
	if err != nil {
		return Attr{}, nil, fmt.Errorf("create %q in %d: %w", name, parent, err)
	}
	if db := (dirBucket{dir: meta.Ino(parent), bucket: bucket}); e.lastCreateDir.Load() == nil || *e.lastCreateDir.Load() != db {
		e.lastCreateDir.Store(&db)
	}
	if existing != nil {
		if exclusive {
			return Attr{}, nil, fmt.Errorf("create %q: %w", name, ErrExist)
		}
		h, err := e.openLocked(ctx, uint64(existing.Ino))
		if err != nil {
			return Attr{}, nil, err
		}
		return attrOf(&h.of.inode), h, nil
	}
	// The key was sealed just now: the first write need not ask the KMS again. A new
	// inode has no chunk records past its end to trim. It is changed: its records are
	// pending, and the close must commit them even when nothing was written.
	of := &openFile{e: e, inode: in, oek: oek, refs: 1, keyChecked: time.Now(), eofTrimmed: true, changed: true}
	e.files[uint64(in.Ino)] = of
	e.publish(ctx, Change{Ino: uint64(in.Ino), Parent: parent, Name: name})
	return attrOf(&in), &Handle{of: of}, nil
}

// stageCreate makes the inode of a new file in dir and leaves its records pending
// (pending.go). Called with nsMu held, after the name was found free. The space guard is
// asked now, so that a full disk refuses the create, as when it committed at once.
func (e *Engine) stageCreate(dir meta.Inode, name string, o Owner, fileID [16]byte, sealed []byte) (meta.Inode, error) {
	in, err := e.prepareNew(dir, name, o)
	if err != nil {
		return in, classify(err)
	}
	in.FileID = fileID
	in.ChunkSize = e.chunkSize
	if err := e.db.RoomFor(pendingCreateBytes(name, sealed)); err != nil {
		return in, classify(err)
	}
	e.pending.add(&pendingCreate{dir: dir.Ino, name: name, inode: in, sealed: sealed})
	return in, nil
}

// Readlink returns a symlink's target.
func (e *Engine) Readlink(ctx context.Context, ino Ino) (string, error) {
	var target string
	err := e.view(func(tx *meta.Tx) (err error) {
		target, err = tx.Symlink(meta.Ino(ino))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("readlink %d: %w", ino, err)
	}
	return target, nil
}

// sameBucket refuses links and renames that would move an inode between buckets: each
// file's key is sealed for its bucket, as S3 has no cross-bucket rename either.
func sameBucket(a, b meta.Inode) error {
	if a.Bucket != b.Bucket {
		return ErrCrossBucket
	}
	return nil
}

// Link adds a hard link to ino under parent/name.
func (e *Engine) Link(ctx context.Context, ino, parent Ino, name string) (Attr, error) {
	if err := validName(name); err != nil {
		return Attr{}, err
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var in meta.Inode
	err := e.update(func(tx *meta.Tx) error {
		dir, err := dirInode(tx, parent)
		if err != nil {
			return err
		}
		if in, err = tx.Inode(meta.Ino(ino)); err != nil {
			return err
		}
		if isDirMode(in.Mode) {
			return fmt.Errorf("hard link to a directory: %w", ErrPermission)
		}
		if in.Nlink == 0 {
			return fmt.Errorf("inode %d was removed: %w", ino, ErrNotExist)
		}
		if err := sameBucket(in, dir); err != nil {
			return err
		}
		if err := nameFree(tx, dir.Ino, name); err != nil {
			return err
		}
		if of := e.files[ino]; of != nil {
			of.mu.Lock()
			in.Size, in.Mtime = of.inode.Size, of.inode.Mtime
			of.mu.Unlock()
		}
		in.Nlink++
		in.Ctime = now()
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		if err := addEntry(tx, &dir, name, &in); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Attr{}, fmt.Errorf("link %d as %q in %d: %w", ino, name, parent, err)
	}
	e.syncOpenInode(&in)
	e.publish(ctx, Change{Ino: ino, Parent: parent, Name: name})
	return attrOf(&in), nil
}

// syncOpenInode copies a namespace change of nlink/ctime into an open file's view.
func (e *Engine) syncOpenInode(in *meta.Inode) {
	if of := e.files[uint64(in.Ino)]; of != nil {
		of.mu.Lock()
		of.inode.Nlink, of.inode.Ctime = in.Nlink, in.Ctime
		of.mu.Unlock()
	}
}

// dropLink removes one link of in within tx: the inode goes when the last link goes,
// unless something still holds it, in which case it becomes an orphan until its last
// release. Open files always hold it. So do the kernel's references when the name stays
// bound to another inode (replaced: a rename or an S3 PUT over it): a lookup→open that
// resolved the name just before must still open the old inode, as the name never went
// missing. A removed name needs no such care: an open racing with the unlink gets ENOENT,
// as it would a moment later, so the inode and its chunk records go in the unlink's own
// transaction. Directories stay while referenced either way: a process may be in one.
// Must be called with nsMu held.
func (e *Engine) dropLink(tx *meta.Tx, in *meta.Inode, t int64, replaced bool) (droppedInode, error) {
	if isDirMode(in.Mode) {
		in.Nlink = 0
	} else if in.Nlink > 0 {
		in.Nlink--
	}
	in.Ctime = t
	if in.Nlink > 0 {
		return droppedInode{in: *in}, tx.PutInode(in)
	}
	ino := uint64(in.Ino)
	held := e.files[ino] != nil || (replaced || isDirMode(in.Mode)) && e.kernelRefs[ino] > 0
	if !held && fitsOneTransaction(in) {
		chunks, err := tx.DeleteInode(in.Ino)
		return droppedInode{in: *in, chunks: chunks}, err
	}
	// Held, or too large to delete in this transaction: keep it as an orphan, deleted
	// after the commit (afterDrop) or at its last release.
	if err := tx.PutInode(in); err != nil {
		return droppedInode{}, err
	}
	return droppedInode{in: *in, orphan: true}, tx.AddOrphan(in.Ino)
}

// droppedInode is an inode that lost a link in a transaction, for afterDrop.
type droppedInode struct {
	in     meta.Inode
	chunks []meta.Chunk // its chunk records the transaction deleted
	orphan bool         // it is unlinked but kept, to be deleted at its last release
}

// afterDrop settles in-memory state once a transaction that dropped links committed.
// Must hold nsMu.
func (e *Engine) afterDrop(d droppedInode) {
	e.drops.Add(1) // after the commit: see Lookups
	e.discardChunks(d.chunks)
	e.syncOpenInode(&d.in)
	if d.orphan {
		e.orphans[uint64(d.in.Ino)] = true
		if err := e.deleteOrphanLocked(uint64(d.in.Ino)); err != nil {
			e.log.Error("deleting a large unlinked file failed; it is reclaimed at the next start", "ino", uint64(d.in.Ino), "err", err)
		}
	}
}

// Unlink removes a non-directory entry.
func (e *Engine) Unlink(ctx context.Context, parent Ino, name string) error {
	return e.remove(ctx, parent, name, false)
}

// Rmdir removes an empty directory.
func (e *Engine) Rmdir(ctx context.Context, parent Ino, name string) error {
	return e.remove(ctx, parent, name, true)
}

func (e *Engine) remove(ctx context.Context, parent Ino, name string, wantDir bool) error {
	if err := validName(name); err != nil {
		return err
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var in meta.Inode
	var dropped droppedInode
	err := e.update(func(tx *meta.Tx) error {
		dir, err := dirInode(tx, parent)
		if err != nil {
			return err
		}
		ent, err := tx.Lookup(dir.Ino, name)
		if err != nil {
			return err
		}
		if in, err = tx.Inode(ent.Ino); err != nil {
			return err
		}
		isDir := isDirMode(in.Mode)
		switch {
		case wantDir && !isDir:
			return ErrNotDir
		case !wantDir && isDir:
			return ErrIsDir
		}
		if isDir {
			if has, err := tx.HasEntries(in.Ino); err != nil {
				return err
			} else if has {
				return ErrNotEmpty
			}
			dir.Nlink--
		}
		if err := tx.DeleteEntry(dir.Ino, name); err != nil {
			return err
		}
		t := now()
		touch(&dir, t)
		if err := tx.PutInode(&dir); err != nil {
			return err
		}
		dropped, err = e.dropLink(tx, &in, t, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove %q in %d: %w", name, parent, err)
	}
	e.afterDrop(dropped)
	if parent == RootIno {
		e.bucketMu.Lock()
		delete(e.bucketNames, uint64(in.Ino))
		delete(e.bucketKeys, uint64(in.Ino))
		e.bucketMu.Unlock()
	}
	e.publish(ctx, Change{Ino: uint64(in.Ino), Parent: parent, Name: name})
	return nil
}

// Rename flags, as renameat2(2) defines them.
const (
	RenameNoReplace = 1 << 0
	RenameExchange  = 1 << 1
)

// Rename moves an entry atomically, replacing or exchanging with the target as flags say.
func (e *Engine) Rename(ctx context.Context, oldParent Ino, oldName string, newParent Ino, newName string, flags uint32) error {
	if err := validName(oldName); err != nil {
		return err
	}
	if err := validName(newName); err != nil {
		return err
	}
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return fmt.Errorf("rename flags %#x: %w", flags, ErrInvalid)
	}
	if oldParent == RootIno || newParent == RootIno {
		return fmt.Errorf("rename %q to %q: buckets cannot be renamed or replaced: %w", oldName, newName, ErrPermission)
	}
	e.nsMu.Lock()
	defer e.nsMu.Unlock()
	var src, dst meta.Inode
	var hadDst bool
	var dropped droppedInode
	err := e.update(func(tx *meta.Tx) error {
		hadDst, dropped = false, droppedInode{}
		t := now()
		odir, err := dirInode(tx, oldParent)
		if err != nil {
			return err
		}
		ndir := odir
		if newParent != oldParent {
			if ndir, err = dirInode(tx, newParent); err != nil {
				return err
			}
		}
		sent, err := tx.Lookup(odir.Ino, oldName)
		if err != nil {
			return err
		}
		if src, err = tx.Inode(sent.Ino); err != nil {
			return err
		}
		if err := sameBucket(odir, ndir); err != nil {
			return err
		}
		dent, err := tx.Lookup(ndir.Ino, newName)
		switch {
		case err == nil:
			hadDst = true
			if dst, err = tx.Inode(dent.Ino); err != nil {
				return err
			}
		case errors.Is(err, meta.ErrNotFound):
		default:
			return err
		}
		if flags&RenameExchange != 0 && !hadDst {
			return fmt.Errorf("exchange with missing %q: %w", newName, ErrNotExist)
		}
		if flags&RenameNoReplace != 0 && hadDst {
			return fmt.Errorf("%q: %w", newName, ErrExist)
		}
		if hadDst && dst.Ino == src.Ino {
			return nil // two links to one inode: POSIX says do nothing
		}
		srcDir := isDirMode(src.Mode)
		if srcDir && newParent != oldParent {
			if err := notAncestor(tx, src.Ino, ndir.Ino); err != nil {
				return err
			}
		}
		if flags&RenameExchange != 0 {
			return exchange(tx, &odir, oldName, &src, &ndir, newName, &dst, t)
		}
		if hadDst {
			dstDir := isDirMode(dst.Mode)
			switch {
			case srcDir && !dstDir:
				return ErrNotDir
			case !srcDir && dstDir:
				return ErrIsDir
			case dstDir:
				if has, err := tx.HasEntries(dst.Ino); err != nil {
					return err
				} else if has {
					return ErrNotEmpty
				}
				ndir.Nlink--
			}
			if dropped, err = e.dropLink(tx, &dst, t, true); err != nil {
				return err
			}
		}
		if err := tx.DeleteEntry(odir.Ino, oldName); err != nil {
			return err
		}
		if err := tx.PutEntry(ndir.Ino, meta.Entry{Name: newName, Ino: src.Ino, Mode: src.Mode & syscall.S_IFMT}); err != nil {
			return err
		}
		if srcDir && odir.Ino != ndir.Ino {
			odir.Nlink--
			ndir.Nlink++
		}
		src.Parent = ndir.Ino
		src.Ctime = t
		if err := tx.PutInode(&src); err != nil {
			return err
		}
		return putDirs(tx, &odir, &ndir, t)
	})
	if err != nil {
		return fmt.Errorf("rename %q in %d to %q in %d: %w", oldName, oldParent, newName, newParent, err)
	}
	if hadDst && flags&RenameExchange == 0 && dst.Ino != src.Ino {
		e.afterDrop(dropped)
	}
	e.publish(ctx, Change{Ino: uint64(src.Ino), Parent: oldParent, Name: oldName})
	e.publish(ctx, Change{Ino: uint64(src.Ino), Parent: newParent, Name: newName})
	return nil
}

func putDirs(tx *meta.Tx, odir, ndir *meta.Inode, t int64) error {
	touch(odir, t)
	if odir.Ino == ndir.Ino {
		return tx.PutInode(odir)
	}
	touch(ndir, t)
	if err := tx.PutInode(odir); err != nil {
		return err
	}
	return tx.PutInode(ndir)
}

func exchange(tx *meta.Tx, odir *meta.Inode, oldName string, src *meta.Inode, ndir *meta.Inode, newName string, dst *meta.Inode, t int64) error {
	if isDirMode(dst.Mode) && odir.Ino != ndir.Ino {
		if err := notAncestor(tx, dst.Ino, odir.Ino); err != nil {
			return err
		}
	}
	if err := tx.PutEntry(odir.Ino, meta.Entry{Name: oldName, Ino: dst.Ino, Mode: dst.Mode & syscall.S_IFMT}); err != nil {
		return err
	}
	if err := tx.PutEntry(ndir.Ino, meta.Entry{Name: newName, Ino: src.Ino, Mode: src.Mode & syscall.S_IFMT}); err != nil {
		return err
	}
	if odir.Ino != ndir.Ino {
		if isDirMode(src.Mode) {
			odir.Nlink--
			ndir.Nlink++
		}
		if isDirMode(dst.Mode) {
			ndir.Nlink--
			odir.Nlink++
		}
	}
	src.Parent, dst.Parent = ndir.Ino, odir.Ino
	src.Ctime, dst.Ctime = t, t
	if err := tx.PutInode(src); err != nil {
		return err
	}
	if err := tx.PutInode(dst); err != nil {
		return err
	}
	return putDirs(tx, odir, ndir, t)
}

// notAncestor refuses to move directory ino under dir when dir lies inside ino.
func notAncestor(tx *meta.Tx, ino, dir meta.Ino) error {
	for cur := dir; cur != meta.RootIno && cur != 0; {
		if cur == ino {
			return fmt.Errorf("moving a directory into itself: %w", ErrInvalid)
		}
		in, err := tx.Inode(cur)
		if err != nil {
			return err
		}
		cur = in.Parent
	}
	return nil
}

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Ino  Ino
	Mode uint32 // S_IFMT bits
}

// ReadDir lists up to max entries of dir whose names sort after `after` ("" = start).
func (e *Engine) ReadDir(ctx context.Context, dir Ino, after string, max int) ([]DirEntry, error) {
	var out []DirEntry
	err := e.view(func(tx *meta.Tx) error {
		if _, err := dirInode(tx, dir); err != nil {
			return err
		}
		return tx.Entries(meta.Ino(dir), after, func(ent meta.Entry) bool {
			out = append(out, DirEntry{Name: ent.Name, Ino: uint64(ent.Ino), Mode: ent.Mode})
			return max <= 0 || len(out) < max
		})
	})
	if err != nil {
		return nil, fmt.Errorf("readdir %d: %w", dir, err)
	}
	return out, nil
}

// SetAttrIn says which attributes to change; nil fields stay as they are.
type SetAttrIn struct {
	Mode         *uint32 // permission bits only
	Uid, Gid     *uint32
	Size         *uint64
	Atime, Mtime *int64 // unix nanoseconds
	// KillSetID drops the set-ID bits of a regular file (setIDBits), after Mode: a
	// truncate or chown by an unprivileged caller, which the kernel leaves to the
	// filesystem when it hands it the job (FUSE_HANDLE_KILLPRIV_V2).
	KillSetID bool
}

// setIDBits returns the set-ID bits that a write, truncate or chown by an unprivileged
// caller drops from a regular file's mode, as the kernel's should_remove_suid does:
// set-user-ID, and set-group-ID where group execute is set (without it, the bit marks
// mandatory locking and stays).
func setIDBits(mode uint32) uint32 {
	if mode&syscall.S_IFMT != syscall.S_IFREG {
		return 0
	}
	kill := mode & syscall.S_ISUID
	if mode&syscall.S_ISGID != 0 && mode&syscall.S_IXGRP != 0 {
		kill |= syscall.S_ISGID
	}
	return kill
}

// SetAttr changes attributes; a size change truncates or extends the file's content.
func (e *Engine) SetAttr(ctx context.Context, ino Ino, in SetAttrIn) (Attr, error) {
	if in.Size != nil {
		h, err := e.Open(ctx, ino)
		if err != nil {
			return Attr{}, err
		}
		err = h.Truncate(ctx, *in.Size)
		if rerr := h.Release(ctx); err == nil {
			err = rerr
		}
		if err != nil {
			return Attr{}, err
		}
	}
	e.nsMu.Lock()
	of := e.files[ino]
	e.nsMu.Unlock()
	if of != nil {
		// The open file's view is the authority on size and times; route the change
		// through it so a later flush does not undo it.
		of.mu.Lock()
		applyAttr(&of.inode, in)
		var err error
		if in.timesOnly() && of.uncommittedLocked() {
			// The kernel's writeback cache keeps a written file's times itself and sends
			// them before every flush and fsync of it: a commit of its own would double
			// the metadata commits of every small file. The content these times describe
			// is not committed either, so they ride on its commit (flush, fsync, close or
			// the periodic sync) and are lost only with it.
			of.changed = true
		} else {
			err = of.commitInodeLocked()
		}
		a := attrOf(&of.inode)
		of.mu.Unlock()
		if err != nil {
			return Attr{}, err
		}
		// Open or not, other frontends' caches must hear of it.
		e.publish(ctx, Change{Ino: ino})
		return a, nil
	}
	var out meta.Inode
	err := e.update(func(tx *meta.Tx) (err error) {
		if out, err = tx.Inode(meta.Ino(ino)); err != nil {
			return err
		}
		applyAttr(&out, in)
		return tx.PutInode(&out)
	})
	if err != nil {
		return Attr{}, fmt.Errorf("setattr %d: %w", ino, err)
	}
	e.publish(ctx, Change{Ino: ino})
	return attrOf(&out), nil
}

// timesOnly tells whether a change sets nothing but the access and modification times.
func (a SetAttrIn) timesOnly() bool {
	return a.Mode == nil && a.Uid == nil && a.Gid == nil && a.Size == nil && !a.KillSetID
}

func applyAttr(in *meta.Inode, a SetAttrIn) {
	t := now()
	if a.Mode != nil {
		in.Mode = in.Mode&syscall.S_IFMT | *a.Mode&^syscall.S_IFMT
	}
	if a.KillSetID {
		in.Mode &^= setIDBits(in.Mode)
	}
	if a.Uid != nil {
		in.Uid = *a.Uid
	}
	if a.Gid != nil {
		in.Gid = *a.Gid
	}
	if a.Atime != nil {
		in.Atime = *a.Atime
	}
	if a.Mtime != nil {
		in.Mtime = *a.Mtime
	}
	in.Ctime = t
}

// Xattr namespaces a client may write. system.* (ACLs) is not supported; ssefs.* is the
// engine's own read-only view.
func xattrWritable(name string) error {
	switch {
	case len(name) > maxXattrNameLen:
		return fmt.Errorf("xattr name of %d bytes: %w", len(name), ErrRange)
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "trusted."), strings.HasPrefix(name, "security."):
		if len(name) == strings.Index(name, ".")+1 {
			return fmt.Errorf("xattr name %q: %w", name, ErrInvalid)
		}
		return nil
	case strings.HasPrefix(name, XattrPrefix):
		return fmt.Errorf("xattr %q is read-only: %w", name, ErrPermission)
	}
	return fmt.Errorf("xattr namespace of %q: %w", name, ErrNotSupported)
}

// XattrPrefix is the namespace of the engine's own read-only attributes.
const XattrPrefix = "ssefs."

// Xattr flags, as setxattr(2) defines them.
const (
	XattrCreate  = 1
	XattrReplace = 2
)

// errNoSuchXattr answers, without a lookup, for names nothing is stored under.
var errNoSuchXattr = fmt.Errorf("getxattr: %w", ErrNotExist)

// GetXattr returns an extended attribute's value.
func (e *Engine) GetXattr(ctx context.Context, ino Ino, name string) ([]byte, error) {
	if err := xattrWritable(name); errors.Is(err, ErrNotSupported) ||
		strings.HasPrefix(name, meta.SecurityXattrPrefix) && !e.securityXattrs.Load() {
		// Nothing is stored under such a name: no lookup, and no error to format. ls -l
		// asks for system.posix_acl_access and security.selinux of every file it lists.
		return nil, errNoSuchXattr
	}
	var v []byte
	err := e.view(func(tx *meta.Tx) (err error) {
		v, err = tx.Xattr(meta.Ino(ino), name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getxattr %q of %d: %w", name, ino, err)
	}
	return v, nil
}

// SetXattr sets an extended attribute; flags are XattrCreate or XattrReplace.
func (e *Engine) SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags uint32) error {
	if err := xattrWritable(name); err != nil {
		return err
	}
	if len(value) > maxXattrValueLen {
		return fmt.Errorf("xattr value of %d bytes: %w", len(value), ErrTooBig)
	}
	err := e.update(func(tx *meta.Tx) error {
		in, err := tx.Inode(meta.Ino(ino))
		if err != nil {
			return err
		}
		_, err = tx.Xattr(in.Ino, name)
		exists := err == nil
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if flags&XattrCreate != 0 && exists {
			return ErrExist
		}
		if flags&XattrReplace != 0 && !exists {
			return ErrNotExist
		}
		if strings.HasPrefix(name, meta.SecurityXattrPrefix) && !e.securityXattrs.Load() {
			// Before the commit: a getxattr that follows it must look the name up.
			e.securityXattrs.Store(true)
			if err := tx.NoteSecurityXattr(); err != nil {
				return err
			}
		}
		if err := tx.SetXattr(in.Ino, name, value); err != nil {
			return err
		}
		in.Ctime = now()
		return e.putInodeKeepingOpenView(tx, &in)
	})
	if err != nil {
		return fmt.Errorf("setxattr %q of %d: %w", name, ino, err)
	}
	return nil
}

// putInodeKeepingOpenView writes in, but keeps the size and mtime an open file holds
// in memory, which are newer than the stored ones.
func (e *Engine) putInodeKeepingOpenView(tx *meta.Tx, in *meta.Inode) error {
	if of := e.openState(uint64(in.Ino)); of != nil {
		of.mu.Lock()
		in.Size, in.Mtime = of.inode.Size, of.inode.Mtime
		of.inode.Ctime = in.Ctime
		of.mu.Unlock()
	}
	return tx.PutInode(in)
}

// RemoveXattr removes an extended attribute.
func (e *Engine) RemoveXattr(ctx context.Context, ino Ino, name string) error {
	if err := xattrWritable(name); err != nil && !errors.Is(err, ErrNotSupported) {
		return err
	}
	err := e.update(func(tx *meta.Tx) error {
		in, err := tx.Inode(meta.Ino(ino))
		if err != nil {
			return err
		}
		if err := tx.RemoveXattr(in.Ino, name); err != nil {
			return err
		}
		in.Ctime = now()
		return e.putInodeKeepingOpenView(tx, &in)
	})
	if err != nil {
		return fmt.Errorf("removexattr %q of %d: %w", name, ino, err)
	}
	return nil
}

// ListXattr returns the names of an inode's extended attributes.
func (e *Engine) ListXattr(ctx context.Context, ino Ino) ([]string, error) {
	var names []string
	err := e.view(func(tx *meta.Tx) (err error) {
		if _, err = tx.Inode(meta.Ino(ino)); err != nil {
			return err
		}
		names, err = tx.Xattrs(meta.Ino(ino))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listxattr %d: %w", ino, err)
	}
	return names, nil
}

// EncryptionInfo says how a file's content is protected.
type EncryptionInfo struct {
	SSEType   string
	KeyName   string
	Algorithm string
	Cipher    string
	Bucket    string
	// KMSContext is the user's encryption context an SSE-KMS file was sealed with; nil
	// if none.
	KMSContext map[string]string
	ChunkSize  uint32
	// For `ssefs stat`:
	SealedAt    time.Time // when the object key was last sealed (created or rotated); zero if unknown
	Chunks      uint64    // stored chunk objects
	StoredBytes uint64    // ciphertext bytes in the object store (in the metadata for a tiny file)
}

// Encryption returns how a regular file is encrypted.
func (e *Engine) Encryption(ctx context.Context, ino Ino) (EncryptionInfo, error) {
	var in meta.Inode
	var sealed []byte
	var chunks, stored uint64
	err := e.view(func(tx *meta.Tx) (err error) {
		if in, err = tx.Inode(meta.Ino(ino)); err != nil {
			return err
		}
		if !isRegMode(in.Mode) {
			return fmt.Errorf("only regular files have content keys: %w", ErrNotExist)
		}
		if sealed, err = tx.SealedKey(in.Ino); err != nil {
			return err
		}
		chunks, stored = 0, 0
		return tx.Chunks(in.Ino, 0, func(c meta.Chunk) bool {
			chunks++
			stored += uint64(c.StoredLen)
			return true
		})
	})
	if err != nil {
		return EncryptionInfo{}, fmt.Errorf("encryption of %d: %w", ino, err)
	}
	var sk keys.SealedKey
	if err := sk.UnmarshalBinary(sealed); err != nil {
		return EncryptionInfo{}, fmt.Errorf("sealed key of %d: %w: %v", ino, ErrCorrupt, err)
	}
	keyName := sk.KeyName
	info := EncryptionInfo{SSEType: sk.SSEType, KeyName: keyName, Algorithm: sk.Algorithm,
		Cipher: cipherName, Bucket: sk.Bucket, KMSContext: sk.Context, ChunkSize: in.ChunkSize, Chunks: chunks, StoredBytes: stored}
	if sk.SealedAt != 0 {
		info.SealedAt = time.Unix(0, sk.SealedAt)
	}
	return info, nil
}

// StatFS describes capacity, for statfs(2).
type StatFS struct {
	BlockSize                       uint32
	Blocks, BlocksFree, BlocksAvail uint64
	Files, FilesFree                uint64
}

type usager interface {
	Usage() (objstore.Usage, error)
}

// StatFS reports the object store's capacity where it knows it.
func (e *Engine) StatFS(ctx context.Context) (StatFS, error) {
	const bs = 4096
	st := StatFS{BlockSize: bs, Files: 1 << 40, FilesFree: 1 << 40}
	if u, ok := e.store.(usager); ok {
		usage, err := u.Usage()
		if err != nil {
			return st, classify(fmt.Errorf("statfs: %w", err))
		}
		st.Blocks, st.BlocksFree, st.BlocksAvail = usage.TotalBytes/bs, usage.FreeBytes/bs, usage.AvailBytes/bs
	}
	return st, nil
}

package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

const fsckChunk = 4096

// fsckStore is a store with a bit of everything: nested directories, a hard link, a
// symlink, a multi-chunk file, S3 objects (one SSE-C), and a multipart upload in progress.
type fsckStore struct {
	*testEnv
	d, f1, f2, sym, sseC, part, obj Ino
	sseCChunks                      uint64
	upload                          string // the upload in progress, of key "mp"
}

func newFsckStore(t *testing.T) *fsckStore {
	t.Helper()
	env := newTestEnv(t, fsckChunk, 0)
	s := &fsckStore{testEnv: env}
	e, ctx := env.e, context.Background()
	a, err := e.Mkdir(ctx, env.bucket, "d", Owner{Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	s.d = a.Ino
	s.f1 = writeFile(t, e, env.bucket, "f1", randBytes(3*fsckChunk+100))
	s.f2 = writeFile(t, e, s.d, "f2", randBytes(2*fsckChunk))
	if _, err := e.Link(ctx, s.f1, s.d, "link"); err != nil {
		t.Fatal(err)
	}
	sa, err := e.Symlink(ctx, s.d, "sym", "../f1", Owner{})
	if err != nil {
		t.Fatal(err)
	}
	s.sym = sa.Ino
	s.obj = put(t, e, "bucket", "obj/deep/key", randBytes(fsckChunk+1), PutOptions{}).Ino
	var ck [32]byte
	rand.Read(ck[:])
	s.sseC = put(t, e, "bucket", "secret", randBytes(2*fsckChunk+1), PutOptions{SSE: SSE{Type: keys.SSEC, ClientKey: &ck}}).Ino
	s.sseCChunks = 3
	id, err := e.CreateUpload(ctx, "bucket", "mp", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.upload = id
	uploadPart(t, e, id, 1, randBytes(fsckChunk+5), PartOptions{})
	if err := env.db.View(func(tx *meta.Tx) error {
		return tx.AllParts(func(_ meta.UploadID, p meta.Part) bool { s.part = uint64(p.Ino); return false })
	}); err != nil || s.part == 0 {
		t.Fatalf("part inode: %d, %v", s.part, err)
	}
	// Everything durable, as after a clean unmount, before a test damages it.
	if err := e.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *fsckStore) fsck(repair bool) FsckReport {
	s.t.Helper()
	rep, err := s.e.Fsck(context.Background(), FsckOptions{Repair: repair, VerifyChunks: true})
	if err != nil {
		s.t.Fatalf("fsck (repair %v): %v", repair, err)
	}
	for _, f := range rep.Findings {
		s.t.Logf("finding: %s", f)
	}
	return rep
}

func (s *fsckStore) update(fn func(tx *meta.Tx) error) {
	s.t.Helper()
	if err := s.db.Update(fn); err != nil {
		s.t.Fatal(err)
	}
}

func (s *fsckStore) chunk(ino Ino, idx uint64) meta.Chunk {
	s.t.Helper()
	var c meta.Chunk
	if err := s.db.View(func(tx *meta.Tx) (err error) { c, err = tx.Chunk(meta.Ino(ino), idx); return err }); err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *fsckStore) objectPath(id [16]byte) string {
	h := objstore.ID(id).String()
	return filepath.Join(s.dir, "objects", h[:2], h)
}

func (s *fsckStore) objectIDs() map[objstore.ID]bool {
	s.t.Helper()
	ids := map[objstore.ID]bool{}
	if err := s.store.Walk(context.Background(), func(id objstore.ID, _ int64) error { ids[id] = true; return nil }); err != nil {
		s.t.Fatal(err)
	}
	return ids
}

// tryRead reads a whole file by inode number.
func tryRead(e *Engine, ino Ino) ([]byte, error) {
	ctx := context.Background()
	h, err := e.Open(ctx, ino)
	if err != nil {
		return nil, err
	}
	defer h.Release(ctx)
	buf := make([]byte, h.Attr().Size)
	n, err := h.ReadAt(ctx, buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// readable reads every regular file that can be read (not SSE-C files, not damaged
// ones): what a repair must leave exactly as it is.
func (s *fsckStore) readable() map[Ino][]byte {
	s.t.Helper()
	var inos []Ino
	if err := s.db.View(func(tx *meta.Tx) error {
		return tx.Inodes(func(in meta.Inode) bool {
			if isRegMode(in.Mode) {
				inos = append(inos, uint64(in.Ino))
			}
			return true
		})
	}); err != nil {
		s.t.Fatal(err)
	}
	out := map[Ino][]byte{}
	for _, ino := range inos {
		if b, err := tryRead(s.e, ino); err == nil {
			out[ino] = b
		}
	}
	return out
}

// sameContent checks that every file readable before is, if it still exists, readable
// with the same bytes.
func (s *fsckStore) sameContent(t *testing.T, before map[Ino][]byte) {
	t.Helper()
	for ino, want := range before {
		got, err := tryRead(s.e, ino)
		if errors.Is(err, ErrNotExist) {
			continue // deleted on purpose: the case checks that itself
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("inode %d after repair: %d bytes (%v), want the %d it had", ino, len(got), err, len(want))
		}
	}
}

// referencedObjectsExist checks that every object a chunk record names, of those that
// were in the store before (had), is in the store.
func (s *fsckStore) referencedObjectsExist(t *testing.T, had map[objstore.ID]bool) {
	t.Helper()
	have := s.objectIDs()
	err := s.db.View(func(tx *meta.Tx) error {
		return tx.RecordOwners(func(kind meta.RecordKind, ino meta.Ino) bool {
			if kind != meta.RecordChunks {
				return true
			}
			tx.Chunks(ino, 0, func(c meta.Chunk) bool {
				if had[c.Object] && !have[c.Object] {
					t.Errorf("inode %d chunk %d: its object %x was deleted", ino, c.Index, c.Object)
				}
				return true
			})
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *fsckStore) inode(ino Ino) meta.Inode {
	s.t.Helper()
	var in meta.Inode
	if err := s.db.View(func(tx *meta.Tx) (err error) { in, err = tx.Inode(meta.Ino(ino)); return err }); err != nil {
		s.t.Fatal(err)
	}
	return in
}

func (s *fsckStore) setInode(ino Ino, fn func(in *meta.Inode)) {
	s.t.Helper()
	s.update(func(tx *meta.Tx) error {
		in, err := tx.Inode(meta.Ino(ino))
		if err != nil {
			return err
		}
		fn(&in)
		return tx.PutInode(&in)
	})
}

func (s *fsckStore) lookup(parent Ino, name string) (meta.Entry, error) {
	var ent meta.Entry
	err := s.db.View(func(tx *meta.Tx) (err error) { ent, err = tx.Lookup(meta.Ino(parent), name); return err })
	return ent, err
}

// kindsOf lists the findings' kinds, sorted, for comparing with what a test expects.
func kindsOf(rep FsckReport) string {
	var ks []string
	for _, f := range rep.Findings {
		ks = append(ks, string(f.Kind))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func only(t *testing.T, rep FsckReport, kind FsckKind) FsckFinding {
	t.Helper()
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != kind {
		t.Fatalf("want exactly one %q, got [%s]", kind, kindsOf(rep))
	}
	return rep.Findings[0]
}

func TestFsckCleanStore(t *testing.T) {
	s := newFsckStore(t)
	var last FsckProgress
	calls := 0
	rep, err := s.e.Fsck(context.Background(), FsckOptions{VerifyChunks: true, Progress: func(p FsckProgress) { last = p; calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("clean store: findings [%s]", kindsOf(rep))
	}
	var inodes uint64
	s.db.View(func(tx *meta.Tx) error { return tx.Inodes(func(meta.Inode) bool { inodes++; return true }) })
	// f1 4, f2 2, obj 2, secret 3, part 2.
	if rep.Inodes != inodes || rep.Chunks != 13 || rep.Skipped != s.sseCChunks || rep.Verified != rep.Chunks-s.sseCChunks {
		t.Errorf("counts: %+v (want %d inodes, 13 chunks, %d skipped)", rep, inodes, s.sseCChunks)
	}
	if rep.Objects != 13 {
		t.Errorf("objects: %d, want 13", rep.Objects)
	}
	if calls == 0 || last.Inodes != inodes || last.TotalInodes != inodes || last.Verified != rep.Verified || last.VerifiedBytes == 0 {
		t.Errorf("last progress %+v after %d calls", last, calls)
	}
	quick, err := s.e.Fsck(context.Background(), FsckOptions{})
	if err != nil || len(quick.Findings) != 0 || quick.Verified != 0 || quick.Chunks != 13 {
		t.Errorf("quick: %+v, %v", quick, err)
	}
}

type check func(t *testing.T, s *fsckStore, f FsckFinding)

// fsckCase plants one finding; plant returns what to check after the repair.
type fsckCase struct {
	name       string
	kind       FsckKind
	plant      func(t *testing.T, s *fsckStore) check
	repairable bool
}

// Each case plants one inconsistency, checks that fsck reports exactly it, repairs, and
// checks what a second run says. Every repair must leave each file that could be read
// before it with the same bytes, and every object a chunk record names in the store.
func TestFsckFindsAndRepairs(t *testing.T) {
	cases := []fsckCase{
		{"dangling entry", FsckDanglingEntry, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error {
				return tx.PutEntry(meta.Ino(s.d), meta.Entry{Name: "ghost", Ino: 999999, Mode: syscall.S_IFREG})
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != 999999 || f.Path != "/bucket/d/ghost" {
					t.Errorf("finding %s", f)
				}
			}
		}, true},
		{"wrong file nlink", FsckWrongNlink, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error {
				in, err := tx.Inode(meta.Ino(s.f1))
				in.Nlink = 5
				return errors.Join(err, tx.PutInode(&in))
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.f1 || f.Path != "/bucket/f1" || !strings.Contains(f.Detail, "nlink 5, want 2") {
					t.Errorf("finding %s", f)
				}
				if a, _ := s.e.GetAttr(context.Background(), s.f1); a.Nlink != 2 {
					t.Errorf("nlink after repair: %d", a.Nlink)
				}
			}
		}, true},
		{"wrong directory nlink", FsckWrongNlink, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error {
				in, err := tx.Inode(meta.Ino(s.bucket))
				in.Nlink = 2
				return errors.Join(err, tx.PutInode(&in))
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				// d and the implicit obj/ directory.
				if f.Ino != s.bucket || f.Path != "/bucket" || !strings.Contains(f.Detail, "want 4") {
					t.Errorf("finding %s", f)
				}
			}
		}, true},
		{"wrong parent", FsckWrongParent, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error {
				in, err := tx.Inode(meta.Ino(s.d))
				in.Parent = meta.RootIno
				return errors.Join(err, tx.PutInode(&in))
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.d || f.Path != "/bucket/d" {
					t.Errorf("finding %s", f)
				}
			}
		}, true},
		{"entry type", FsckEntryType, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error {
				return tx.PutEntry(meta.Ino(s.d), meta.Entry{Name: "sym", Ino: meta.Ino(s.sym), Mode: syscall.S_IFREG})
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.sym || f.Path != "/bucket/d/sym" {
					t.Errorf("finding %s", f)
				}
			}
		}, true},
		{"orphaned object", FsckOrphanObject, func(t *testing.T, s *fsckStore) check {
			junk := objstore.NewID()
			if err := s.store.Put(context.Background(), junk, []byte("junk")); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Object != junk.String() || f.Ino != 0 {
					t.Errorf("finding %s", f)
				}
				if s.objectIDs()[junk] {
					t.Errorf("the junk object survived the repair")
				}
			}
		}, true},
		{"missing object", FsckMissingObject, func(t *testing.T, s *fsckStore) check {
			c := s.chunk(s.f2, 1)
			if err := os.Remove(s.objectPath(c.Object)); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.f2 || f.Path != "/bucket/d/f2" || f.Object != objstore.ID(c.Object).String() || !strings.Contains(f.Detail, "chunk 1") {
					t.Errorf("finding %s", f)
				}
				if !reflect.DeepEqual(s.chunk(s.f2, 1), c) {
					t.Errorf("the repair changed the chunk record")
				}
			}
		}, false},
		{"flipped chunk", FsckChunkCorrupt, func(t *testing.T, s *fsckStore) check {
			c := s.chunk(s.f1, 2)
			path := s.objectPath(c.Object)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			raw[100] ^= 0x40
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.f1 || f.Path != "/bucket/f1" || f.Object != objstore.ID(c.Object).String() || !strings.Contains(f.Detail, "chunk 2") {
					t.Errorf("finding %s", f)
				}
				after, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(after, raw) {
					t.Errorf("the repair touched the flipped chunk object: %v", err)
				}
				h, err := s.e.Open(context.Background(), s.f1)
				if err != nil {
					t.Fatal(err)
				}
				defer h.Release(context.Background())
				if _, err := h.ReadAt(context.Background(), make([]byte, 10), 2*fsckChunk+5); !errors.Is(err, ErrCorrupt) {
					t.Errorf("read of the flipped chunk after repair: %v, want ErrCorrupt", err)
				}
			}
		}, false},
		{"wrong object size", FsckObjectSize, func(t *testing.T, s *fsckStore) check {
			c := s.chunk(s.f2, 0)
			f, err := os.OpenFile(s.objectPath(c.Object), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("tail"))
			f.Close()
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.f2 || !s.objectIDs()[c.Object] {
					t.Errorf("finding %s, or the object was deleted", f)
				}
			}
		}, false},
		{"S3 record without inode", FsckObjectRecord, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error { return tx.PutObject(888888, &meta.Object{ETag: "abc"}) })
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != 888888 {
					t.Errorf("finding %s", f)
				}
			}
		}, true},
		{"records of a missing inode", FsckStrayRecords, func(t *testing.T, s *fsckStore) check {
			// A chunk record names a real object: that object must not count as an
			// orphan while the record exists, and goes with the record.
			id := objstore.NewID()
			if err := s.store.Put(context.Background(), id, []byte("stray chunk")); err != nil {
				t.Fatal(err)
			}
			s.update(func(tx *meta.Tx) error {
				return errors.Join(tx.SetXattr(777777, "user.x", []byte("v")),
					tx.PutChunk(777777, meta.Chunk{Index: 0, Object: id, Version: 1, PlainLen: 1, StoredLen: 11}),
					tx.PutSealedKey(777777, []byte("sk")))
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != 777777 || !strings.Contains(f.Detail, "chunk records") || !strings.Contains(f.Detail, "xattrs") || !strings.Contains(f.Detail, "sealed key") {
					t.Errorf("finding %s", f)
				}
				if s.objectIDs()[id] {
					t.Errorf("the stray chunk record's object survived the repair")
				}
			}
		}, true},
		{"unfinished unlink", FsckUnreachable, func(t *testing.T, s *fsckStore) check {
			c := s.chunk(s.f2, 0)
			s.update(func(tx *meta.Tx) error {
				in, err := tx.Inode(meta.Ino(s.f2))
				in.Nlink = 0
				return errors.Join(err, tx.DeleteEntry(meta.Ino(s.d), "f2"), tx.PutInode(&in))
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.f2 {
					t.Errorf("finding %s", f)
				}
				if _, err := s.e.GetAttr(context.Background(), s.f2); !errors.Is(err, ErrNotExist) || s.objectIDs()[c.Object] {
					t.Errorf("after repair: inode %v, object kept %v", err, s.objectIDs()[c.Object])
				}
			}
		}, true},
		{"lost entry", FsckUnreachable, func(t *testing.T, s *fsckStore) check {
			want := readAll(t, s.e, s.f2)
			s.update(func(tx *meta.Tx) error { return tx.DeleteEntry(meta.Ino(s.d), "f2") })
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				name := fmt.Sprintf("#%d", s.f2)
				if f.Ino != s.f2 || !strings.Contains(f.Detail, "created in /bucket/d") || !strings.Contains(f.Detail, "/bucket/lost+found") ||
					f.Repaired != "linked as /bucket/lost+found/"+name {
					t.Errorf("finding %s", f)
				}
				// e2fsck's lost+found: mode 0700, in the bucket, the file in it by number.
				lf, err := s.lookup(s.bucket, "lost+found")
				if err != nil {
					t.Fatal(err)
				}
				lfi := s.inode(uint64(lf.Ino))
				if lfi.Mode != syscall.S_IFDIR|0o700 || lfi.Nlink != 2 || lfi.Parent != meta.Ino(s.bucket) || lfi.Bucket != meta.Ino(s.bucket) {
					t.Errorf("lost+found: %+v", lfi)
				}
				ent, err := s.lookup(uint64(lf.Ino), name)
				if err != nil || ent.Ino != meta.Ino(s.f2) || ent.Mode != syscall.S_IFREG {
					t.Fatalf("lost+found/%s: %+v, %v", name, ent, err)
				}
				if in := s.inode(s.f2); in.Nlink != 1 || in.Parent != lf.Ino || in.Bucket != meta.Ino(s.bucket) {
					t.Errorf("the relinked file: %+v", in)
				}
				if got := readAll(t, s.e, s.f2); !bytes.Equal(got, want) {
					t.Errorf("the relinked file's content: %d bytes, want %d", len(got), len(want))
				}
				// The bucket counts its new subdirectory.
				if in := s.inode(s.bucket); in.Nlink != 5 {
					t.Errorf("bucket nlink %d, want 5 (d, obj, lost+found)", in.Nlink)
				}
			}
		}, true},
		{"broken upload", FsckBrokenUpload, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error {
				chunks, err := tx.DeleteInode(meta.Ino(s.part))
				for _, c := range chunks {
					err = errors.Join(err, s.store.Delete(context.Background(), c.Object))
				}
				return err
			})
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if !strings.Contains(f.Path, `"mp"`) || !strings.Contains(f.Detail, "part 1") {
					t.Errorf("finding %s", f)
				}
				if ups, err := s.e.ListUploads(context.Background(), "bucket", ListUploadsOptions{}); err != nil || len(ups.Uploads) != 0 {
					t.Errorf("uploads after repair: %+v, %v", ups, err)
				}
			}
		}, true},
		{"corrupt sealed key", FsckCorruptKey, func(t *testing.T, s *fsckStore) check {
			s.update(func(tx *meta.Tx) error { return tx.PutSealedKey(meta.Ino(s.f2), []byte("not a key")) })
			return func(t *testing.T, s *fsckStore, f FsckFinding) {
				if f.Ino != s.f2 || f.Path != "/bucket/d/f2" {
					t.Errorf("finding %s", f)
				}
			}
		}, false},
	}
	cases = append(cases, fsckNewCases...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFsckStore(t)
			chk := tc.plant(t, s)
			before, had := s.readable(), s.objectIDs()
			rep := s.fsck(false)
			f := only(t, rep, tc.kind)
			wantIncons := 1
			if !tc.kind.Inconsistency() {
				wantIncons = 0
			}
			if rep.Inconsistencies() != wantIncons || f.Repaired != "" || f.Repairable() != tc.repairable {
				t.Errorf("report: %d inconsistencies, repaired %q, repairable %v", rep.Inconsistencies(), f.Repaired, f.Repairable())
			}
			rep = s.fsck(true)
			f = only(t, rep, tc.kind)
			if tc.repairable != (f.Repaired != "") || f.RepairErr != "" {
				t.Errorf("repair: %s", f)
			}
			chk(t, s, f)
			s.sameContent(t, before)
			s.referencedObjectsExist(t, had)
			rep = s.fsck(false)
			if tc.repairable && len(rep.Findings) != 0 {
				t.Errorf("after repair: [%s]", kindsOf(rep))
			}
			if !tc.repairable && (len(rep.Findings) != 1 || rep.Findings[0].Kind != tc.kind || rep.Unrepaired() != wantIncons) {
				t.Errorf("after a repair that cannot fix it: [%s]", kindsOf(rep))
			}
		})
	}
}

func TestFsckPendingDeletion(t *testing.T) {
	s := newFsckStore(t)
	ctx := context.Background()
	a, h, err := s.e.Create(ctx, s.bucket, "doomed", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, randBytes(3*fsckChunk), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.e.Unlink(ctx, s.bucket, "doomed"); err != nil {
		t.Fatal(err)
	}
	c := s.chunk(a.Ino, 0)
	// The process dies with the file open; fsck's engine leaves the orphan for it.
	s.crash()
	s.cfg.KeepOrphans = true
	s.open()
	rep := s.fsck(false)
	f := only(t, rep, FsckPendingDeletion)
	if f.Ino != a.Ino || f.Path != "(unlinked)" || rep.Inconsistencies() != 0 || rep.Unrepaired() != 0 {
		t.Errorf("finding %s, %d inconsistencies", f, rep.Inconsistencies())
	}
	if !s.objectIDs()[c.Object] {
		t.Fatal("a check without --repair deleted the orphan's chunks")
	}
	rep = s.fsck(true)
	if f := only(t, rep, FsckPendingDeletion); f.Repaired != "deleted" {
		t.Errorf("repair: %s", f)
	}
	if rep = s.fsck(false); len(rep.Findings) != 0 {
		t.Errorf("after repair: [%s]", kindsOf(rep))
	}
	if s.objectIDs()[c.Object] || countOrphans(t, s.testEnv) != 0 {
		t.Errorf("the orphan's chunks or record survived")
	}
}

func TestFsckKeyUnavailableIsNotCorruption(t *testing.T) {
	env, ring, _ := newRingEnv(t)
	s := &fsckStore{testEnv: env}
	ino := writeFile(t, env.e, env.bucket, "f", randBytes(3*4096))
	ring.remove("default")
	env.e.sealer.Forget()
	rep := s.fsck(false)
	f := only(t, rep, FsckKeyUnavailable)
	if f.Ino != ino || f.Path != "/bucket/f" || !strings.Contains(f.Detail, `"default"`) {
		t.Errorf("finding %s", f)
	}
	if rep.Inconsistencies() != 0 || rep.Skipped != 3 || rep.Verified != 0 || rep.Chunks != 3 {
		t.Errorf("report %+v", rep)
	}
}

// A repair deletes only objects no chunk record names: not those of chunks that fail
// (missing siblings, wrong size, failed authentication), not those named only by records
// fsck cannot tie to a file.
func TestFsckRepairNeverDeletesReferencedObjects(t *testing.T) {
	s := newFsckStore(t)
	ctx := context.Background()
	// A chunk record on a directory names an object.
	onDir := objstore.NewID()
	if err := s.store.Put(ctx, onDir, []byte("named by a directory's chunk record")); err != nil {
		t.Fatal(err)
	}
	s.update(func(tx *meta.Tx) error {
		return tx.PutChunk(meta.Ino(s.d), meta.Chunk{Index: 0, Object: onDir, Version: 1, PlainLen: 1, StoredLen: 35})
	})
	// A flipped chunk and a junk object.
	flipped := s.chunk(s.f1, 0)
	raw, _ := os.ReadFile(s.objectPath(flipped.Object))
	raw[len(raw)-1] ^= 1
	os.WriteFile(s.objectPath(flipped.Object), raw, 0o600)
	junk := objstore.NewID()
	s.store.Put(ctx, junk, []byte("junk"))

	rep := s.fsck(true)
	if got := kindsOf(rep); got != "chunk failed authentication, chunk records on a non-file inode, orphaned chunk object" {
		t.Fatalf("findings: [%s]", got)
	}
	have := s.objectIDs()
	if have[junk] {
		t.Error("the junk object was not deleted")
	}
	err := s.db.View(func(tx *meta.Tx) error {
		return tx.RecordOwners(func(kind meta.RecordKind, ino meta.Ino) bool {
			if kind != meta.RecordChunks {
				return true
			}
			tx.Chunks(ino, 0, func(c meta.Chunk) bool {
				if !have[c.Object] {
					t.Errorf("inode %d chunk %d: its object %x was deleted", ino, c.Index, c.Object)
				}
				return true
			})
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(s.objectPath(flipped.Object)); !bytes.Equal(after, raw) {
		t.Error("the flipped chunk object was changed")
	}
}

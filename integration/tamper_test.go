package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// Tamper evidence (issue #6): the design promises that a chunk object that was altered,
// moved to another position or file, or rolled back to an older version, and a sealed-key
// record that was altered, all read as EIO through the mount and as a 500 over S3 — never as
// other bytes — with a log line that names the file, while everything else stays readable
// and `ssefs fsck` reports every damaged file. These tests do the tampering an attacker with
// write access to the data directory (but not the KMS) could do, between two runs of ssefs.

const tamperBucket = "tamper"

// tamperFile is one file of the tamper test: its true content, how it was written, and
// which of its chunks the tampering makes unreadable (all = the whole file, for a broken
// sealed key, where even open fails).
type tamperFile struct {
	name    string // path below the bucket
	data    []byte
	viaS3   bool
	bad     map[uint64]bool
	all     bool
	ino     meta.Ino
	objects map[uint64]objstore.ID // chunk index -> object, from the chunk map, after the last write
}

func (f *tamperFile) tampered() bool { return f.all || len(f.bad) > 0 }

// storePath is the file's path from the store's root, as the mount root (no --bucket) and
// fsck show it.
func (f *tamperFile) storePath() string { return tamperBucket + "/" + f.name }

// chunks is the number of chunks of the file.
func (f *tamperFile) chunks() uint64 { return uint64((len(f.data) + ChunkSize - 1) / ChunkSize) }

func (f *tamperFile) chunkRange(idx uint64) (int64, int64) {
	start := int64(idx) * ChunkSize
	return start, min(start+ChunkSize, int64(len(f.data)))
}

// objectPath is where the local object store keeps an object (DATA/objects/xx/<32 hex>).
func objectPath(dataDir string, id objstore.ID) string {
	s := id.String()
	return filepath.Join(dataDir, "objects", s[:2], s)
}

// openMetaOffline opens the metadata store of a stopped ssefs the way ssefs does: the Badger
// key is in DATA/meta.key, sealed by the KMS, here the static master key of cfg.
func openMetaOffline(t *testing.T, cfg Config) *meta.DB {
	t.Helper()
	var master string
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "SSEFS_KMS_MASTER_KEY="); ok {
			master = v
		}
	}
	kms, err := keys.ParseMasterKey(master)
	must(t, err, "parse the test's master key")
	file, err := os.ReadFile(filepath.Join(cfg.DataDir, "meta.key"))
	must(t, err, "read meta.key")
	metaKey, _, err := keys.OpenMetaKeyFile(context.Background(), kms, file)
	must(t, err, "unseal meta.key")
	db, err := meta.Open(filepath.Join(cfg.DataDir, "meta"), metaKey, meta.Options{})
	must(t, err, "open the metadata store offline")
	return db
}

// lookupPath resolves bucket/name from the store's root.
func lookupPath(tx *meta.Tx, p string) (meta.Ino, error) {
	ino := meta.RootIno
	for _, name := range strings.Split(p, "/") {
		e, err := tx.Lookup(ino, name)
		if err != nil {
			return 0, err
		}
		ino = e.Ino
	}
	return ino, nil
}

// loadChunkMaps fills ino and objects of every file from the (offline) metadata store.
func loadChunkMaps(t *testing.T, db *meta.DB, files []*tamperFile) {
	t.Helper()
	err := db.View(func(tx *meta.Tx) error {
		for _, f := range files {
			ino, err := lookupPath(tx, f.storePath())
			if err != nil {
				return err
			}
			f.ino, f.objects = ino, map[uint64]objstore.ID{}
			if err := tx.Chunks(ino, 0, func(c meta.Chunk) bool {
				f.objects[c.Index] = objstore.ID(c.Object)
				return true
			}); err != nil {
				return err
			}
			if uint64(len(f.objects)) != f.chunks() {
				return fmt.Errorf("%s: %d chunk records, want %d", f.name, len(f.objects), f.chunks())
			}
		}
		return nil
	})
	must(t, err, "read the chunk maps")
}

// corruptSealedKey flips one byte of the sealed OEK (oek) or of the KMS-sealed DEK of
// f's sealed-key record, in a record that still decodes: the damage must be caught by
// authentication, not by a parser.
func corruptSealedKey(t *testing.T, db *meta.DB, f *tamperFile, oek bool) {
	t.Helper()
	err := db.Update(func(tx *meta.Tx) error {
		raw, err := tx.SealedKey(f.ino)
		if err != nil {
			return err
		}
		var sk keys.SealedKey
		if err := sk.UnmarshalBinary(raw); err != nil {
			return err
		}
		field := sk.SealedDEK
		if oek {
			field = sk.SealedOEK
		}
		if len(field) == 0 {
			return fmt.Errorf("%s: the sealed key record has an empty field to flip", f.name)
		}
		field[len(field)/2] ^= 0x40
		out, err := sk.MarshalBinary()
		if err != nil {
			return err
		}
		if bytes.Equal(out, raw) {
			return errors.New("the flipped record encodes as the original")
		}
		return tx.PutSealedKey(f.ino, out)
	})
	must(t, err, "corrupt the sealed key of "+f.name)
}

func readObject(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err, "read object file")
	return b
}

func writeObject(t *testing.T, p string, b []byte) {
	t.Helper()
	must(t, os.WriteFile(p, b, 0o600), "write object file")
}

// waitLogLine waits (bounded: the line is written before the failing reply goes out, but
// the test reads ssefs' stderr through a pipe) for a line after byte offset from of the
// process' stderr that contains every one of want, and returns it.
func waitLogLine(p *Proc, from int, want ...string) (string, bool) {
	var found string
	ok := waitCond(10*time.Second, func() bool {
		s := p.Stderr()
		if from > len(s) {
			from = 0
		}
		for _, line := range strings.Split(s[from:], "\n") {
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				found = line
				return true
			}
		}
		return false
	})
	return found, ok
}

// inoMentioned reports whether a log line names inode ino, the way ssefs writes it: slog's
// ino=N, or "inode N" in an error text.
func inoMentioned(line string, ino meta.Ino) bool {
	n := fmt.Sprint(uint64(ino))
	return strings.Contains(line, "ino="+n+" ") || strings.HasSuffix(line, "ino="+n) ||
		strings.Contains(line, "inode "+n+" ") || strings.Contains(line, "inode "+n+":")
}

// assertPrefix fails if got is not a prefix of want: a failed read may deliver less than
// asked, never other bytes.
func assertPrefix(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) > len(want) || !bytes.Equal(got, want[:len(got)]) {
		t.Errorf("%s: delivered %d bytes that are NOT the true content (first difference %s)", what, len(got), around(got, firstDiff(got, want)))
	}
}

func TestTamperEvidence(t *testing.T) {
	requireLocalStore(t)
	creds := newS3Creds()
	cfg := s3Config(t, creds)
	r := rng(t)
	m, ep := startS3Mount(t, cfg, creds)
	mc := ep.minio(t)
	if err := mc.MakeBucket(s3ctx(t), tamperBucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", s3ErrString(err))
	}

	// Several multi-chunk files through both views; each name is unique so a log line that
	// names it can only be about it.
	mk := func(name string, size int, viaS3 bool) *tamperFile {
		return &tamperFile{name: name, data: randBytes(r, size), viaS3: viaS3, bad: map[uint64]bool{}}
	}
	fa := mk("flip-a.bin", 3*ChunkSize+100, false)     // one byte of chunk 1 flipped
	fb := mk("swap-b.bin", 3*ChunkSize+7, true)        // chunks 0 and 1 swapped
	fc := mk("dir/cross-c.bin", 2*ChunkSize+5, false)  // chunk 0 swapped with d's chunk 0
	fd := mk("cross-d.bin", 2*ChunkSize+9, true)       // chunk 0 swapped with c's chunk 0
	fe := mk("rollback-e.bin", 2*ChunkSize+100, false) // chunk 0 rolled back
	ff := mk("sealed-oek-f.bin", 2*ChunkSize, true)    // sealed OEK flipped
	fg := mk("sealed-dek-g.bin", ChunkSize+3, false)   // sealed DEK flipped
	ok1 := mk("intact-1.bin", 2*ChunkSize+1, false)    // untouched
	ok2 := mk("dir/intact-2.bin", 3*ChunkSize, true)   // untouched
	ok3 := mk("intact-3.bin", 100, false)              // untouched, one small chunk
	files := []*tamperFile{fa, fb, fc, fd, fe, ff, fg, ok1, ok2, ok3}

	must(t, os.MkdirAll(m.P(tamperBucket, "dir"), 0o755), "mkdir")
	for _, f := range files {
		if f == fe {
			continue // below
		}
		if f.viaS3 {
			s3Put(t, mc, tamperBucket, f.name, f.data, minio.PutObjectOptions{})
		} else {
			writeFile(t, m.P(tamperBucket, f.name), f.data, 0o644)
		}
	}
	// e's first version: keep the content of every object it has now, so that after the
	// rewrite of chunk 0 (which stores a new object under a new name and a new version, and
	// deletes the old one) the old chunk 0 can be put back. Which of these objects was chunk
	// 0 is known only offline, from the chunk map: it is the one the map no longer names.
	objsBeforeE := objectFiles(t, cfg.DataDir)
	writeFile(t, m.P(tamperBucket, fe.name), fe.data, 0o644)
	oldE := map[string][]byte{}
	for _, p := range newObjectFiles(objsBeforeE, objectFiles(t, cfg.DataDir)) {
		oldE[filepath.Base(p)] = readObject(t, p)
	}
	if uint64(len(oldE)) != fe.chunks() {
		t.Fatalf("e: %d new objects, want %d", len(oldE), fe.chunks())
	}
	newChunk0 := randBytes(r, ChunkSize)
	ef, err := os.OpenFile(m.P(tamperBucket, fe.name), os.O_WRONLY, 0)
	must(t, err, "open e for the rewrite")
	_, err = ef.WriteAt(newChunk0, 0)
	must(t, err, "rewrite e's chunk 0")
	must(t, ef.Close(), "close e")
	copy(fe.data, newChunk0)

	// Everything reads back before the tampering, so a failure later is the tampering's.
	for _, f := range files {
		assertContent(t, m.P(tamperBucket, f.name), f.data)
		assertS3Content(t, mc, tamperBucket, f.name, f.data)
	}
	if t.Failed() {
		t.FailNow()
	}
	m.Stop(t)

	// ---- Offline tampering ----
	db := openMetaOffline(t, cfg)
	// Only the files to tamper with: an intact tiny file may one day live inline in Badger
	// with no chunk object, which is no concern of this test.
	loadChunkMaps(t, db, []*tamperFile{fa, fb, fc, fd, fe, ff, fg})
	// 4. the sealed-key records: one in the sealed OEK, one in the KMS-sealed DEK.
	corruptSealedKey(t, db, ff, true)
	ff.all = true
	corruptSealedKey(t, db, fg, false)
	fg.all = true
	must(t, db.Close(), "close the metadata store")

	// 1. one byte of a's chunk 1, past the middle of the object: inside the ciphertext of a
	// DARE package (the middle itself is a package header, whose damage a parser would
	// catch), so only authentication can tell.
	pa := objectPath(cfg.DataDir, fa.objects[1])
	raw := readObject(t, pa)
	raw[len(raw)/2+1000] ^= 0x01
	writeObject(t, pa, raw)
	fa.bad[1] = true

	// 2a. b's chunks 0 and 1 swapped within the file: both are full chunks of the same size,
	// so only the chunk key (index) tells them apart.
	swap := func(x, y string) {
		bx, by := readObject(t, x), readObject(t, y)
		writeObject(t, x, by)
		writeObject(t, y, bx)
	}
	swap(objectPath(cfg.DataDir, fb.objects[0]), objectPath(cfg.DataDir, fb.objects[1]))
	fb.bad[0], fb.bad[1] = true, true
	// 2b. chunk 0 of c and chunk 0 of d swapped across files: same index, other file ID/OEK.
	swap(objectPath(cfg.DataDir, fc.objects[0]), objectPath(cfg.DataDir, fd.objects[0]))
	fc.bad[0], fd.bad[0] = true, true

	// 3. rollback: the old object of e's chunk 0 under the name of the new one. Same index,
	// same file, same OEK: only the version in the chunk key tells them apart.
	var oldChunk0 []byte
	for id, b := range oldE {
		current := false
		for _, o := range fe.objects {
			current = current || o.String() == id
		}
		if !current {
			if oldChunk0 != nil {
				t.Fatalf("e: more than one of its first objects is no longer in its chunk map")
			}
			oldChunk0 = b
		}
	}
	if oldChunk0 == nil {
		t.Fatalf("e: the rewrite of chunk 0 did not replace its object")
	}
	pe := objectPath(cfg.DataDir, fe.objects[0])
	if cur := readObject(t, pe); len(cur) != len(oldChunk0) || bytes.Equal(cur, oldChunk0) {
		t.Fatalf("e: old chunk 0 object is %d bytes, new %d (want the same size, other bytes)", len(oldChunk0), len(cur))
	}
	writeObject(t, pe, oldChunk0)
	fe.bad[0] = true

	// ---- After restart ----
	m, ep = startS3Mount(t, cfg, creds)
	mc = ep.minio(t)
	for _, f := range files {
		checkTamperMount(t, m, f)
		checkTamperS3(t, m, mc, f)
	}
	m.Stop(t)

	// ---- fsck, offline ----
	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	t.Logf("fsck (exit %d):\n%s", res.Code, res.Stdout)
	if res.Code != 1 {
		t.Errorf("fsck of the tampered store: exit %d, want 1; stderr:\n%s", res.Code, res.Stderr)
	}
	for _, f := range files {
		named := strings.Contains(res.Stdout, "/"+f.storePath()+" ")
		switch {
		case f.tampered() && !named:
			t.Errorf("fsck does not report tampered file /%s", f.storePath())
		case !f.tampered() && named:
			t.Errorf("fsck reports intact file /%s", f.storePath())
		}
	}
}

// checkTamperMount reads f through the mount: a tampered range is EIO (with a log line
// naming the file and its inode), every other chunk reads byte-exact.
func checkTamperMount(t *testing.T, m *Mount, f *tamperFile) {
	t.Helper()
	p := m.P(tamperBucket, f.name)
	from := len(m.Stderr())
	got, err := os.ReadFile(p)
	if !f.tampered() {
		if err != nil {
			t.Errorf("mount: intact %s: %v", f.name, err)
		} else {
			assertBytes(t, "mount: intact "+f.name, got, f.data)
		}
		return
	}
	wantErrno(t, err, "mount: read of tampered "+f.name, syscall.EIO)
	assertPrefix(t, "mount: read of tampered "+f.name, got, f.data)
	// The operator needs the file (its path) and the inode on one line.
	if line, ok := waitLogLine(m.Proc, from, "level=ERROR", path.Base(f.name)); !ok {
		t.Errorf("mount: no log line names %s after its EIO; stderr since:\n%s", f.storePath(), tail(m.Stderr()[from:], 3000))
	} else if !strings.Contains(line, f.storePath()) || !inoMentioned(line, f.ino) {
		t.Errorf("mount: the log line about %s lacks its path %q or inode %d:\n%s", f.name, f.storePath(), f.ino, line)
	} else {
		t.Logf("mount log for %s: %s", f.name, line)
	}
	if f.all {
		return
	}
	// Chunk by chunk with pread: only the tampered chunks fail.
	h, err := os.Open(p)
	must(t, err, "open "+f.name)
	defer h.Close()
	for idx := range f.chunks() {
		start, end := f.chunkRange(idx)
		buf := make([]byte, end-start)
		n, err := h.ReadAt(buf, start)
		what := fmt.Sprintf("mount: pread chunk %d of %s", idx, f.name)
		if f.bad[idx] {
			wantErrno(t, err, what, syscall.EIO)
			assertPrefix(t, what, buf[:n], f.data[start:end])
		} else if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-start) {
			t.Errorf("%s (intact): %v", what, err)
		} else {
			assertBytes(t, what, buf[:n], f.data[start:end])
		}
	}
}

// checkTamperS3 GETs f over S3: a tampered file is a 500 InternalError when the damage is
// found before the headers go out (ssefs reads the first block first), or a cut connection
// after; either way what arrived is a prefix of the true content, and the log names bucket
// and key. Ranged GETs of the intact chunks return them byte-exact.
func checkTamperS3(t *testing.T, m *Mount, mc *minio.Client, f *tamperFile) {
	t.Helper()
	from := len(m.Stderr())
	got, err := s3Get(t, mc, tamperBucket, f.name)
	if !f.tampered() {
		if err != nil {
			t.Errorf("S3: intact %s: %v", f.name, s3ErrString(err))
		} else {
			assertBytes(t, "S3: intact "+f.name, got, f.data)
		}
		return
	}
	if err == nil {
		t.Errorf("S3: GET of tampered %s succeeded with %d bytes", f.name, len(got))
	}
	assertPrefix(t, "S3: GET of tampered "+f.name, got, f.data)
	er := minio.ToErrorResponse(err)
	if f.all || f.bad[0] {
		// The first block fails: that is before any header went out.
		wantS3Error(t, err, "S3: GET of tampered "+f.name, 500, "InternalError")
	} else if er.StatusCode != 0 && (er.StatusCode != 500 || er.Code != "InternalError") {
		t.Errorf("S3: GET of tampered %s: %s, want 500 InternalError or a cut body", f.name, s3ErrString(err))
	}
	t.Logf("S3 GET of %s: %d bytes, then %s", f.name, len(got), s3ErrString(err))
	// At error level, mid-body too: a cut body for tampered data is no client hang-up.
	if line, ok := waitLogLine(m.Proc, from, "level=ERROR", "bucket="+tamperBucket, "key="+f.name); !ok {
		t.Errorf("S3: no log line names bucket %s key %s after the failed GET; stderr since:\n%s", tamperBucket, f.name, tail(m.Stderr()[from:], 3000))
	} else {
		t.Logf("S3 log for %s: %s", f.name, line)
	}
	if f.all {
		return
	}
	for idx := range f.chunks() {
		if f.bad[idx] {
			continue
		}
		start, end := f.chunkRange(idx)
		var opts minio.GetObjectOptions
		must(t, opts.SetRange(start, end-1), "set range")
		obj, err := mc.GetObject(s3ctx(t), tamperBucket, f.name, opts)
		if err != nil {
			t.Errorf("S3: ranged GET of intact chunk %d of %s: %v", idx, f.name, s3ErrString(err))
			continue
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Errorf("S3: ranged GET of intact chunk %d of %s: %v", idx, f.name, s3ErrString(err))
			continue
		}
		assertBytes(t, fmt.Sprintf("S3: ranged GET of chunk %d of %s", idx, f.name), b, f.data[start:end])
	}
}

package integration

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// objectFiles lists the chunk object files of a data directory (DATA/objects/xx/<32 hex>).
func objectFiles(t *testing.T, dataDir string) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dataDir, "objects", "??", strings.Repeat("?", 32)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range paths {
		out[p] = true
	}
	return out
}

// newObjectFiles returns the object files in now that were not in before.
func newObjectFiles(before, now map[string]bool) []string {
	var out []string
	for p := range now {
		if !before[p] {
			out = append(out, p)
		}
	}
	return out
}

var fsckSummaryRE = regexp.MustCompile(`(?m)^fsck: \d+ inodes, (\d+) chunks \((\d+) verified\), (\d+) inconsistencies`)

func TestFsckThroughTheBinary(t *testing.T) {
	requireLocalStore(t)
	cfg := newConfig(t)
	r := rng(t)
	m := StartMount(t, cfg)
	writeFile(t, m.P("a"), randBytes(r, 2*ChunkSize+10), 0o644)
	m.Stop(t)
	objsA := objectFiles(t, cfg.DataDir)
	if len(objsA) != 3 {
		t.Fatalf("file a: %d objects, want 3", len(objsA))
	}

	m = StartMount(t, cfg)
	must(t, os.Mkdir(m.P("sub"), 0o755), "mkdir")
	writeFile(t, m.P("sub", "b"), randBytes(r, ChunkSize+1), 0o644)
	// While the mount holds the data directory, fsck refuses, naming it.
	res := runExpectExit(t, cfg, "fsck", "--repair", "--data-dir", cfg.DataDir)
	stderr := strings.TrimRight(res.Stderr, "\n")
	if res.Code != 1 || strings.Contains(stderr, "\n") || !strings.Contains(stderr, filepath.Join(cfg.DataDir, "admin.sock")) ||
		!strings.Contains(stderr, "pid ") || res.Stdout != "" {
		t.Errorf("fsck while mounted: exit %d, stdout %q, stderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	t.Logf("fsck while mounted: %s", stderr)
	m.Stop(t)
	objsB := newObjectFiles(objsA, objectFiles(t, cfg.DataDir))
	if len(objsB) != 2 {
		t.Fatalf("file b: %d new objects, want 2", len(objsB))
	}

	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	sm := fsckSummaryRE.FindStringSubmatch(res.Stdout)
	if res.Code != 0 || sm == nil || sm[1] != "5" || sm[2] != "5" || sm[3] != "0" {
		t.Fatalf("fsck of a clean store: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}

	// Damage: one of a's objects gone, a byte of one of b's flipped, and a junk object.
	var gone string
	for p := range objsA {
		gone = p
		break
	}
	must(t, os.Remove(gone), "remove an object of a")
	flipped := objsB[0]
	raw, err := os.ReadFile(flipped)
	must(t, err, "read an object of b")
	raw[len(raw)/2] ^= 0x01
	must(t, os.WriteFile(flipped, raw, 0o600), "flip a byte")
	junkID := "00" + strings.Repeat("5a", 15)
	junk := filepath.Join(cfg.DataDir, "objects", junkID[:2], junkID)
	must(t, os.MkdirAll(filepath.Dir(junk), 0o700), "mkdir fan-out")
	must(t, os.WriteFile(junk, []byte("not a chunk"), 0o600), "plant junk")

	idOf := func(p string) string { return filepath.Base(p) }
	wantLines := func(out string, repair bool) {
		t.Helper()
		for _, want := range []string{
			"missing chunk object: /test-bucket/a (inode ",
			"object " + idOf(gone) + ": chunk ",
			"chunk failed authentication: /test-bucket/sub/b (inode ",
			"object " + idOf(flipped) + ": chunk ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("fsck output lacks %q:\n%s", want, out)
			}
		}
		if repair && strings.Count(out, "[not repairable]") != 2 {
			t.Errorf("--repair should say the two damaged chunks are not repairable:\n%s", out)
		}
	}
	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if sm := fsckSummaryRE.FindStringSubmatch(res.Stdout); res.Code != 1 || sm == nil || sm[3] != "2" {
		t.Errorf("fsck of the damaged store: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	wantLines(res.Stdout, false)
	if !strings.Contains(res.Stdout, "orphaned chunk object: object "+junkID) {
		t.Errorf("the junk object is not reported:\n%s", res.Stdout)
	}

	res = runExpectExit(t, cfg, "fsck", "--repair", "--data-dir", cfg.DataDir)
	if res.Code != 1 {
		t.Errorf("fsck --repair with unrepairable damage: exit %d, want 1; stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	wantLines(res.Stdout, true)
	t.Logf("fsck --repair:\n%s", res.Stdout)
	if !strings.Contains(res.Stdout, "orphaned chunk object: object "+junkID+": 11 bytes, named by no chunk record [repaired: deleted]") {
		t.Errorf("--repair did not report deleting the junk object:\n%s", res.Stdout)
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Errorf("the junk object is still there: %v", err)
	}
	if after, err := os.ReadFile(flipped); err != nil || !bytes.Equal(after, raw) {
		t.Errorf("--repair touched the flipped chunk object: %v", err)
	}

	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	wantLines(res.Stdout, false)
	if res.Code != 1 || strings.Contains(res.Stdout, junkID) || strings.Count(res.Stdout, "\n") != 3 {
		t.Errorf("after --repair: exit %d, stdout:\n%s", res.Code, res.Stdout)
	}

	// The damage reads as EIO through the mount, never as other bytes.
	m = StartMount(t, cfg)
	_, err = os.ReadFile(m.P("sub", "b"))
	wantErrno(t, err, "read of the flipped chunk", syscall.EIO)
	m.Stop(t)
}

// TestFsckRepairsThroughTheBinary runs fsck on a store that a mixed workload through the
// mount and S3 left (it must find nothing), then on one damaged offline in the ways the
// newer checks look for: an inode no entry reaches, an inode recording another bucket, an
// upload missing from its bucket's index, a chunk record past the end of a file, and an
// interrupted key rotation. The repair must put each right and keep every byte readable,
// and the mount must then behave: the lost file readable in lost+found, link(2) and the
// upload listing working again, the file grown with zeros where the stray chunk was.
func TestFsckRepairsThroughTheBinary(t *testing.T) {
	requireLocalStore(t)
	const bucket = "fsck-bucket"
	creds := newS3Creds()
	cfg := s3Config(t, creds)
	r := rng(t)
	m, ep := startS3Mount(t, cfg, creds)
	mc := ep.minio(t)
	core := minio.Core{Client: mc}
	if err := mc.MakeBucket(s3ctx(t), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", s3ErrString(err))
	}

	// Through the mount: a tree with a hard link and a symlink, and a file truncated down
	// and grown again.
	lostData := randBytes(r, 2*ChunkSize+77)
	linkData := randBytes(r, ChunkSize+3)
	truncData := randBytes(r, 3*ChunkSize)
	must(t, os.Mkdir(m.P(bucket, "dir"), 0o755), "mkdir")
	writeFile(t, m.P(bucket, "dir", "lost.bin"), lostData, 0o644)
	writeFile(t, m.P(bucket, "linkme"), linkData, 0o644)
	must(t, os.Link(m.P(bucket, "linkme"), m.P(bucket, "dir", "hard")), "link")
	must(t, os.Symlink("../linkme", m.P(bucket, "dir", "sym")), "symlink")
	writeFile(t, m.P(bucket, "trunc"), truncData, 0o644)
	must(t, os.Truncate(m.P(bucket, "trunc"), ChunkSize+5), "truncate down")
	must(t, os.Truncate(m.P(bucket, "trunc"), 2*ChunkSize), "truncate up")
	truncData = append(truncData[:ChunkSize+5:ChunkSize+5], make([]byte, ChunkSize-5)...)

	// Through S3: a deep key, a directory marker, a completed multipart upload and one in
	// progress.
	objData := randBytes(r, ChunkSize+9)
	s3Put(t, mc, bucket, "deep/key/obj", objData, minio.PutObjectOptions{})
	s3Put(t, mc, bucket, "marker/", nil, minio.PutObjectOptions{})
	mpData := randBytes(r, ChunkSize/2)
	uid, err := core.NewMultipartUpload(s3ctx(t), bucket, "mp-done", minio.PutObjectOptions{})
	must(t, err, "S3 CreateMultipartUpload")
	op, err := core.PutObjectPart(s3ctx(t), bucket, "mp-done", uid, 1, bytes.NewReader(mpData), int64(len(mpData)), minio.PutObjectPartOptions{})
	must(t, err, "S3 UploadPart")
	_, err = core.CompleteMultipartUpload(s3ctx(t), bucket, "mp-done", uid, []minio.CompletePart{{PartNumber: 1, ETag: op.ETag}}, minio.PutObjectOptions{})
	must(t, err, "S3 CompleteMultipartUpload")
	openData := randBytes(r, 1000)
	openID, err := core.NewMultipartUpload(s3ctx(t), bucket, "mp-open", minio.PutObjectOptions{})
	must(t, err, "S3 CreateMultipartUpload")
	openPart, err := core.PutObjectPart(s3ctx(t), bucket, "mp-open", openID, 1, bytes.NewReader(openData), int64(len(openData)), minio.PutObjectPartOptions{})
	must(t, err, "S3 UploadPart")
	m.Stop(t)

	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if sm := fsckSummaryRE.FindStringSubmatch(res.Stdout); res.Code != 0 || sm == nil || strings.Count(res.Stdout, "\n") != 1 {
		t.Fatalf("fsck of the store the workload left: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}

	// The damage, offline.
	db := openMetaOffline(t, cfg)
	var bucketIno, dirIno, lost, linkme, trunc meta.Ino
	var openUpload meta.Upload
	junk := objstore.NewID()
	junkData := []byte("a chunk of a write that a crash cut short")
	must(t, os.MkdirAll(filepath.Dir(objectPath(cfg.DataDir, junk)), 0o700), "mkdir fan-out")
	must(t, os.WriteFile(objectPath(cfg.DataDir, junk), junkData, 0o600), "plant the junk chunk")
	err = db.Update(func(tx *meta.Tx) error {
		var err error
		for _, x := range []struct {
			p   string
			ino *meta.Ino
		}{{bucket, &bucketIno}, {bucket + "/dir", &dirIno}, {bucket + "/dir/lost.bin", &lost},
			{bucket + "/linkme", &linkme}, {bucket + "/trunc", &trunc}} {
			if *x.ino, err = lookupPath(tx, x.p); err != nil {
				return fmt.Errorf("%s: %w", x.p, err)
			}
		}
		if err := tx.DeleteEntry(dirIno, "lost.bin"); err != nil {
			return err
		}
		in, err := tx.Inode(linkme)
		if err != nil {
			return err
		}
		in.Bucket = dirIno
		if err := tx.PutInode(&in); err != nil {
			return err
		}
		if err := tx.AllUploads(func(u meta.Upload) bool { openUpload = u; return u.Key != "mp-open" }); err != nil {
			return err
		}
		if openUpload.Key != "mp-open" {
			return fmt.Errorf("upload of mp-open not found")
		}
		if err := tx.DeleteUploadIndex(meta.UploadIndexEntry{Bucket: openUpload.Bucket, Key: openUpload.Key, ID: openUpload.ID}); err != nil {
			return err
		}
		if err := tx.PutChunk(trunc, meta.Chunk{Index: 9, Object: junk, Version: 1 << 40, PlainLen: 10, StoredLen: uint32(len(junkData))}); err != nil {
			return err
		}
		return tx.PutRotationJob(meta.RotationJob{Started: time.Now().UnixNano(), Bucket: bucket, ToKey: "it-key", Total: 5, Done: 2})
	})
	must(t, err, "damage the metadata")
	must(t, db.Close(), "close the metadata store")

	// The damage is real: link(2) refuses across what it takes for two buckets, and the
	// upload is missing from the listing.
	m, ep = startS3Mount(t, cfg, creds)
	core = minio.Core{Client: ep.minio(t)}
	wantErrno(t, os.Link(m.P(bucket, "linkme"), m.P(bucket, "linkme2")), "link of the file that records another bucket", syscall.EXDEV)
	ups, err := core.ListMultipartUploads(s3ctx(t), bucket, "", "", "", "", 1000)
	must(t, err, "S3 ListMultipartUploads")
	if len(ups.Uploads) != 0 {
		t.Errorf("uploads listed without their index entry: %+v", ups.Uploads)
	}
	m.Stop(t)

	uploadHex := hex.EncodeToString(openUpload.ID[:])
	wantLines := []string{
		fmt.Sprintf("unreachable inode: inode %d: nlink 1, but no entry names it; it was created in /%s/dir; its content is kept (--repair links it into /%s/lost+found)", lost, bucket, bucket),
		fmt.Sprintf("wrong bucket: /%s/linkme (inode %d): records bucket inode %d, but it lives in bucket /%s (inode %d)", bucket, linkme, dirIno, bucket, bucketIno),
		fmt.Sprintf(`upload index mismatch: upload %s of "mp-open": not in the upload index of /%s`, uploadHex, bucket),
		fmt.Sprintf("chunk data past end of file: /%s/trunc (inode %d): size %d: chunk 9 lies wholly past the end", bucket, trunc, 2*ChunkSize),
		fmt.Sprintf(`interrupted key rotation: rotation of all files in bucket %q to key "it-key", started `, bucket),
	}
	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if sm := fsckSummaryRE.FindStringSubmatch(res.Stdout); res.Code != 1 || sm == nil || sm[3] != "3" {
		t.Errorf("fsck of the damaged store: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range wantLines {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("fsck output lacks %q:\n%s", want, res.Stdout)
		}
	}

	res = runExpectExit(t, cfg, "fsck", "--repair", "--data-dir", cfg.DataDir)
	t.Logf("fsck --repair:\n%s", res.Stdout)
	if res.Code != 0 {
		t.Errorf("fsck --repair: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("[repaired: linked as /%s/lost+found/#%d]", bucket, lost),
		fmt.Sprintf("[repaired: bucket set to %d]", bucketIno),
		"[repaired: entry added]",
		"[repaired: 1 chunk records dropped]",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("fsck --repair output lacks %q", want)
		}
	}
	if _, err := os.Stat(objectPath(cfg.DataDir, junk)); !os.IsNotExist(err) {
		t.Errorf("the dropped chunk's object is still there: %v", err)
	}
	res = runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if res.Code != 0 || strings.Count(res.Stdout, "\n") != 2 || !strings.HasPrefix(res.Stdout, "interrupted key rotation: ") {
		t.Errorf("after --repair: exit %d, stdout:\n%s", res.Code, res.Stdout)
	}

	// And the mount agrees.
	m, ep = startS3Mount(t, cfg, creds)
	mc = ep.minio(t)
	core = minio.Core{Client: mc}
	lf := m.P(bucket, "lost+found")
	if st, err := os.Stat(lf); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("lost+found: %v, %v", st, err)
	}
	got, err := readUncached(filepath.Join(lf, fmt.Sprintf("#%d", lost)))
	must(t, err, "read the file in lost+found")
	assertBytes(t, "the file in lost+found", got, lostData)
	must(t, os.Link(m.P(bucket, "linkme"), m.P(bucket, "linkme2")), "link after the repair")
	got, err = readUncached(m.P(bucket, "linkme2"))
	must(t, err, "read the new link")
	assertBytes(t, "linkme2", got, linkData)
	got, err = readUncached(m.P(bucket, "trunc"))
	must(t, err, "read trunc")
	assertBytes(t, "trunc", got, truncData)
	must(t, os.Truncate(m.P(bucket, "trunc"), 10*ChunkSize), "grow trunc over the dropped chunk")
	got, err = readUncached(m.P(bucket, "trunc"))
	must(t, err, "read trunc grown")
	assertBytes(t, "trunc grown", got, append(truncData, make([]byte, 8*ChunkSize)...))
	for key, want := range map[string][]byte{"deep/key/obj": objData, "mp-done": mpData} {
		obj, err := mc.GetObject(s3ctx(t), bucket, key, minio.GetObjectOptions{})
		must(t, err, "S3 GET "+key)
		got, err := io.ReadAll(obj)
		obj.Close()
		must(t, err, "S3 GET "+key)
		assertBytes(t, key, got, want)
	}
	ups, err = core.ListMultipartUploads(s3ctx(t), bucket, "", "", "", "", 1000)
	must(t, err, "S3 ListMultipartUploads")
	if len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != openID {
		t.Errorf("uploads after the repair: %+v, want %s", ups.Uploads, openID)
	}
	_, err = core.CompleteMultipartUpload(s3ctx(t), bucket, "mp-open", openID, []minio.CompletePart{{PartNumber: 1, ETag: openPart.ETag}}, minio.PutObjectOptions{})
	must(t, err, "S3 CompleteMultipartUpload of the upload the index lost")
	got, err = readUncached(m.P(bucket, "mp-open"))
	must(t, err, "read mp-open")
	assertBytes(t, "mp-open", got, openData)
	m.Stop(t)
}

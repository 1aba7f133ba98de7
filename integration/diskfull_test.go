package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"
)

// Disk full (issue #6): the data directory lives on a small tmpfs, ssefs fills it through
// the mount and over S3, and must report ENOSPC / 507 cleanly, never lose or corrupt what
// was stored before, never show a half-written object as complete, and work again as soon
// as space is freed, without a restart.

const diskFullSize = 64 << 20 // the tmpfs; small enough to fill in seconds with a race build

// smallTmpfs mounts a tmpfs of size bytes on a fresh temp dir and returns a directory inside
// it for --data-dir. The unmount is registered before ssefs is started, so (Cleanup is LIFO)
// it runs after ssefs has been stopped; MNT_DETACH because a failed test may leave ssefs
// holding files there.
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount tmpfs (size %d) on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("umount tmpfs %s: %v", dir, err)
		}
	})
	return filepath.Join(dir, "data")
}

// isNoSpace reports whether err is the errno of a full filesystem (EDQUOT is what a quota
// gives for the same condition, and POSIX allows either).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// isS3NoSpace reports whether err is the S3 answer for a full store: 507 XMinioStorageFull
// (what ssefs maps ErrNoSpace to) or, tolerated, a generic 500 InternalError.
func isS3NoSpace(err error) bool {
	er := minio.ToErrorResponse(err)
	return er.StatusCode == 507 && er.Code == "XMinioStorageFull" ||
		er.StatusCode == 500 && er.Code == "InternalError"
}

// fullWrite is the outcome of writing one file through the mount on a filling store.
type fullWrite struct {
	path    string
	data    []byte // everything the test tried to write
	written int    // bytes that write(2) accepted
	stage   string // where the first error showed ("" = write, fsync and close all succeeded)
	err     error
}

// writeThroughMount creates path and writes data in 1 MiB write(2)s, then fsyncs and closes,
// recording where the first error appears. ssefs buffers writes, so ENOSPC may come from
// write, from fsync or only from close (FUSE flush); all three are checked, and close is
// always called so the descriptor is not leaked.
func writeThroughMount(path string, data []byte) fullWrite {
	w := fullWrite{path: path, data: data}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		w.stage, w.err = "create", err
		return w
	}
	for w.written < len(data) {
		n, err := f.Write(data[w.written:min(w.written+ChunkSize, len(data))])
		w.written += n
		if err != nil {
			w.stage, w.err = "write", err
			break
		}
	}
	if w.err == nil {
		if err := f.Sync(); err != nil {
			w.stage, w.err = "fsync", err
		}
	}
	if err := f.Close(); err != nil && w.err == nil {
		w.stage, w.err = "close", err
	}
	return w
}

// assertStored fails unless path (through the mount, with readUncached from kes_test.go
// bypassing the page cache) and
// bucket/key (over S3) both read back exactly want.
func assertStored(t *testing.T, m *Mount, c *minio.Client, bucket, key string, want []byte) {
	t.Helper()
	path := m.P(bucket, key)
	got, err := readUncached(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
	} else {
		assertBytes(t, path, got, want)
	}
	assertS3Content(t, c, bucket, key, want)
}

// assertPrefixOrAbsent checks what POSIX allows for a file whose write failed: it may be
// absent, or hold a prefix of what was written (the part that was stored before the error),
// but never bytes that were not written, and never more than was accepted.
func assertPrefixOrAbsent(t *testing.T, m *Mount, c *minio.Client, bucket string, w fullWrite) {
	t.Helper()
	key, _ := filepath.Rel(m.P(bucket), w.path)
	got, err := readUncached(w.path)
	switch {
	case errors.Is(err, syscall.ENOENT):
		t.Logf("failed file %s is absent", key)
	case err != nil:
		t.Errorf("read failed file %s: %v (want ENOENT or a prefix of the written data)", w.path, err)
	case len(got) > len(w.data) || !bytes.Equal(got, w.data[:len(got)]):
		t.Errorf("failed file %s: %d bytes (sha256 %.16s) are not a prefix of the %d bytes written",
			key, len(got), sha(got), len(w.data))
	default:
		t.Logf("failed file %s holds a %d-byte prefix of the %d bytes written (%d accepted by write)",
			key, len(got), len(w.data), w.written)
		// S3 must show the same object as the mount, not a different, complete-looking one.
		if s3got, err := s3Get(t, c, bucket, key); err != nil {
			t.Errorf("S3 GET of failed file %s/%s, which the mount shows: %v", bucket, key, s3ErrString(err))
		} else {
			assertBytes(t, "S3 GET failed file "+key, s3got, got)
		}
	}
}

func TestDiskFull(t *testing.T) {
	requireLocalStore(t)
	requireMount(t)
	creds := newS3Creds()
	cfg := s3Config(t, creds)
	cfg.DataDir = smallTmpfs(t, diskFullSize)
	m, ep := startS3Mount(t, cfg, creds)
	c := ep.minio(t)
	core := minio.Core{Client: c}
	r := rng(t)
	const bucket = "full"
	must(t, c.MakeBucket(s3ctx(t), bucket, minio.MakeBucketOptions{Region: "us-east-1"}), "S3 MakeBucket")

	// --- Data stored while there is room: through the mount (several chunks, a partial
	// last chunk, a tiny file) and over S3 (single PUT and multipart).
	before := map[string][]byte{
		"pre/mount-big":   randBytes(r, 2*ChunkSize+12345),
		"pre/mount-small": randBytes(r, 100),
		"pre/s3-big":      randBytes(r, 3*ChunkSize+7),
		"pre/s3-multi":    randBytes(r, 5<<20+99),
	}
	must(t, os.MkdirAll(m.P(bucket, "pre"), 0o755), "mkdir pre")
	for _, k := range []string{"pre/mount-big", "pre/mount-small"} {
		w := writeThroughMount(m.P(bucket, k), before[k])
		must(t, w.err, w.stage+" "+k)
	}
	s3Put(t, c, bucket, "pre/s3-big", before["pre/s3-big"], minio.PutObjectOptions{})
	// 5 MiB parts force a real multipart upload of two parts.
	s3Put(t, c, bucket, "pre/s3-multi", before["pre/s3-multi"], minio.PutObjectOptions{PartSize: 5 << 20})
	for k, v := range before {
		assertStored(t, m, c, bucket, k, v)
	}

	// --- Fill the store through the mount. Each filler is 3 MiB (three whole chunks, so
	// chunks are stored while writing, and the failure can come at write as well as at
	// fsync/close). 64 MiB cannot hold 40 of them: not failing by then is a failure.
	must(t, os.Mkdir(m.P(bucket, "fill"), 0o755), "mkdir fill")
	var stored []fullWrite // fillers for which write, fsync and close all succeeded
	var failed *fullWrite
	for i := 0; i < 40 && failed == nil; i++ {
		w := writeThroughMount(m.P(bucket, "fill", fmt.Sprintf("m%02d", i)), randBytes(r, 3*ChunkSize))
		switch {
		case w.err == nil:
			stored = append(stored, w)
		case isNoSpace(w.err):
			t.Logf("mount filler %d: ENOSPC at %s after %d of %d bytes accepted by write: %v",
				i, w.stage, w.written, len(w.data), w.err)
			failed = &w
		default:
			t.Fatalf("mount filler %d: %s failed with %v, want ENOSPC or EDQUOT", i, w.stage, w.err)
		}
	}
	if failed == nil {
		t.Fatalf("wrote %d MiB through the mount onto a %d MiB tmpfs without ENOSPC", 3*len(stored), diskFullSize>>20)
	}
	if m.Exited() {
		t.Fatalf("ssefs exited when the store filled up (code %d)", m.ExitCode())
	}

	// Every filler whose write, fsync and close all succeeded must really be stored: a
	// success for data that is not there is the worst outcome of a full disk.
	for _, w := range stored {
		key, _ := filepath.Rel(m.P(bucket), w.path)
		assertStored(t, m, c, bucket, key, w.data)
	}
	assertPrefixOrAbsent(t, m, c, bucket, *failed)

	// --- S3 on the full store: a PUT must fail with 507 (or 500), and leave no object.
	err := func() error {
		_, err := c.PutObject(s3ctx(t), bucket, "fill/s3-when-full", bytes.NewReader(randBytes(r, 2*ChunkSize)),
			2*ChunkSize, minio.PutObjectOptions{})
		return err
	}()
	if err == nil || !isS3NoSpace(err) {
		t.Errorf("S3 PUT on the full store: %v, want HTTP 507 XMinioStorageFull (or 500 InternalError)", errOrNil(err))
	} else {
		t.Logf("S3 PUT on the full store: %s", s3ErrString(err))
	}
	assertS3Absent(t, c, bucket, "fill/s3-when-full")

	// --- Free two mount fillers (6 MiB) and fill that room over S3 until a PUT fails.
	if len(stored) < 2 {
		t.Fatalf("only %d mount fillers were stored before ENOSPC; the tmpfs is too small for the test", len(stored))
	}
	for _, w := range stored[len(stored)-2:] {
		must(t, os.Remove(w.path), "remove filler to make room for S3")
	}
	stored = stored[:len(stored)-2]
	s3Stored := map[string][]byte{}
	var s3Failed string
	for i := 0; i < 20 && s3Failed == ""; i++ {
		key := fmt.Sprintf("fill/s%02d", i)
		data := randBytes(r, 2*ChunkSize)
		_, err := c.PutObject(s3ctx(t), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		switch {
		case err == nil:
			s3Stored[key] = data
		case isS3NoSpace(err):
			t.Logf("S3 filler %d: %s", i, s3ErrString(err))
			s3Failed = key
		default:
			t.Fatalf("S3 filler %d: %s, want HTTP 507 XMinioStorageFull (or 500 InternalError)", i, s3ErrString(err))
		}
	}
	if s3Failed == "" {
		t.Fatalf("20 S3 PUTs of 2 MiB into 6 MiB of freed room all succeeded")
	}
	t.Logf("%d S3 fillers stored before the store was full again", len(s3Stored))
	// A failed PUT is atomic in S3: the key must not exist at all, not even partially.
	assertS3Absent(t, c, bucket, s3Failed)
	if _, err := os.Stat(m.P(bucket, s3Failed)); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat %s after its PUT failed: %v, want ENOENT", s3Failed, errOrNil(err))
	}
	for k, v := range s3Stored {
		assertStored(t, m, c, bucket, k, v)
	}

	// --- A multipart upload whose parts no longer fit: free one S3 filler (2 MiB), then
	// upload 5 MiB parts. A part must fail with 507/500, an abort must succeed, and the
	// object must never appear.
	var freedKey string
	for k := range s3Stored {
		freedKey = k
		break
	}
	if freedKey != "" {
		must(t, c.RemoveObject(s3ctx(t), bucket, freedKey, minio.RemoveObjectOptions{}), "S3 DeleteObject "+freedKey)
		delete(s3Stored, freedKey)
	}
	const mpKey = "fill/multipart"
	uploadID, err := core.NewMultipartUpload(s3ctx(t), bucket, mpKey, minio.PutObjectOptions{})
	must(t, err, "S3 CreateMultipartUpload on the nearly full store")
	var parts []minio.CompletePart
	partErr := error(nil)
	for p := 1; p <= 5 && partErr == nil; p++ {
		data := randBytes(r, 5<<20)
		op, err := core.PutObjectPart(s3ctx(t), bucket, mpKey, uploadID, p, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
		if err != nil {
			partErr = err
			t.Logf("multipart part %d: %s", p, s3ErrString(err))
			break
		}
		parts = append(parts, minio.CompletePart{PartNumber: p, ETag: op.ETag})
	}
	if partErr == nil || !isS3NoSpace(partErr) {
		t.Errorf("multipart upload of 25 MiB into ~2 MiB of room: last part error %v, want HTTP 507 XMinioStorageFull (or 500 InternalError)", errOrNil(partErr))
	}
	check(t, core.AbortMultipartUpload(s3ctx(t), bucket, mpKey, uploadID), "S3 AbortMultipartUpload on the full store")
	assertS3Absent(t, c, bucket, mpKey)
	if _, err := os.Stat(m.P(bucket, mpKey)); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat %s after its multipart upload failed and was aborted: %v, want ENOENT", mpKey, errOrNil(err))
	}

	// --- Still full: metadata-only operations and reads must keep working or fail cleanly;
	// the process must still be up. (Only the objects are out of space here: the last few
	// KiB are left to Badger; TestDiskFullMetadata takes those too.)
	if err := os.Mkdir(m.P(bucket, "full-mkdir"), 0o755); err != nil && !isNoSpace(err) {
		t.Errorf("mkdir on the full store: %v, want success or ENOSPC", err)
	}
	if m.Exited() {
		t.Fatalf("ssefs exited on the full store (code %d)", m.ExitCode())
	}
	for k, v := range before {
		assertStored(t, m, c, bucket, k, v)
	}

	// --- Free the space (fillers deleted through the mount and over S3) and show ssefs
	// works again in the same process.
	for _, w := range stored {
		must(t, os.Remove(w.path), "remove filler "+w.path)
	}
	if _, err := os.Stat(failed.path); err == nil {
		must(t, os.Remove(failed.path), "remove the failed filler")
	}
	for k := range s3Stored {
		must(t, c.RemoveObject(s3ctx(t), bucket, k, minio.RemoveObjectOptions{}), "S3 DeleteObject "+k)
	}
	// The now empty directories go too (the S3 listing shows an empty directory as "dir/").
	must(t, os.Remove(m.P(bucket, "fill")), "rmdir fill")
	if err := os.Remove(m.P(bucket, "full-mkdir")); err != nil && !errors.Is(err, syscall.ENOENT) {
		t.Errorf("rmdir full-mkdir: %v", err)
	}
	after := randBytes(r, 2*ChunkSize+333)
	must(t, os.Mkdir(m.P(bucket, "after"), 0o755), "mkdir after freeing space")
	w := writeThroughMount(m.P(bucket, "after/mount"), after)
	must(t, w.err, w.stage+" of a new file after freeing space")
	assertStored(t, m, c, bucket, "after/mount", after)
	afterS3 := randBytes(r, 3*ChunkSize+1)
	s3Put(t, c, bucket, "after/s3", afterS3, minio.PutObjectOptions{})
	assertStored(t, m, c, bucket, "after/s3", afterS3)
	for k, v := range before {
		assertStored(t, m, c, bucket, k, v)
	}

	// Nothing from the fill phase may linger: the listing holds exactly the survivors.
	want := []string{"after/mount", "after/s3", "pre/mount-big", "pre/mount-small", "pre/s3-big", "pre/s3-multi"}
	if got := s3Keys(t, c, bucket); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("S3 listing after freeing space: %q, want %q", got, want)
	}

	// --- A clean stop, and an offline fsck of the store that was full twice.
	m.Stop(t)
	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	sm := regexp.MustCompile(`(?m)^fsck: .* (\d+) inconsistencies`).FindStringSubmatch(res.Stdout)
	if res.Code != 0 || sm == nil || sm[1] != "0" {
		t.Errorf("fsck after the disk-full run: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	} else {
		t.Logf("fsck: %s", strings.TrimSpace(sm[0]))
	}
}

// fillBallast writes path (on the data directory's filesystem, outside ssefs) until the
// filesystem is completely full.
func fillBallast(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if isNoSpace(err) {
			return
		}
		t.Fatalf("create ballast: %v", err)
	}
	defer f.Close()
	// Large writes first, then single bytes for the last partial page.
	for _, size := range []int{64 << 10, 4 << 10, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !isNoSpace(err) {
					t.Fatalf("write ballast: %v", err)
				}
				break
			}
		}
	}
}

// assertS3Absent fails unless bucket/key does not exist (GET answers 404 NoSuchKey).
func assertS3Absent(t *testing.T, c *minio.Client, bucket, key string) {
	t.Helper()
	got, err := s3Get(t, c, bucket, key)
	if err == nil {
		t.Errorf("S3 GET %s/%s: an object of %d bytes exists, want NoSuchKey", bucket, key, len(got))
		return
	}
	wantS3Error(t, err, "S3 GET "+bucket+"/"+key, 404, "NoSuchKey")
}

// TestDiskFullMetadata takes the last byte of the data directory's filesystem (a ballast
// file written next to it, outside ssefs), then makes changes that write only metadata.
// Badger writes its log and tables through mmap, and a page the full filesystem cannot
// back used to kill ssefs with SIGBUS ("fatal error: fault"). Now creates must fail with
// ENOSPC, deletions must still work (on the room of DATA/meta.spare), ssefs must stay up,
// work again in the same process once the ballast is gone, and stop cleanly on a full
// disk too (Badger flushes its memtable into a table at close).
func TestDiskFullMetadata(t *testing.T) {
	requireMount(t)
	cfg := newConfig(t)
	cfg.DataDir = smallTmpfs(t, diskFullSize)
	m := StartMount(t, cfg)
	r := rng(t)
	keep := randBytes(r, ChunkSize+5)
	writeFile(t, m.P("keep"), keep, 0o644)
	must(t, os.Mkdir(m.P("meta"), 0o755), "mkdir meta")
	// Empty files to delete while the disk is full: deleting them frees no content, so the
	// disk stays full, and only the spare can give Badger's log its pages.
	const victims = 40
	must(t, os.Mkdir(m.P("del"), 0o755), "mkdir del")
	victim := func(i int) string { return m.P("del", fmt.Sprintf("d%02d", i)) }
	for i := range victims {
		writeFile(t, victim(i), nil, 0o644)
	}
	spare := filepath.Join(cfg.DataDir, "meta.spare")
	assertSpareFile(t, spare)

	ballast := filepath.Join(filepath.Dir(cfg.DataDir), "ballast")
	fillBallast(t, ballast)
	// Many creates: without the guard, the memtable log reaches pages the filesystem never
	// backed within a few of them. The first few may still fit; the rest must be refused.
	var created []string
	for i := 0; i < 2000 && !m.Exited(); i++ {
		path := m.P("meta", fmt.Sprintf("e%04d", i))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			err = f.Close()
		}
		switch {
		case err == nil && i < 10:
			created = append(created, path)
		case err == nil:
			t.Fatalf("create %d of an empty file on the completely full filesystem succeeded, want ENOSPC", i)
		case !isNoSpace(err):
			t.Fatalf("create %d of an empty file on the completely full filesystem: %v, want ENOSPC", i, err)
		}
	}
	if m.Exited() {
		t.Fatalf("ssefs exited (code %d) while its metadata store had no space left", m.ExitCode())
	}
	t.Logf("empty files created on the completely full filesystem: %d of 2000, the rest refused with ENOSPC", len(created))

	// Deletions must work on the full disk: they are how space comes back.
	for i := 0; i < victims/2; i++ {
		must(t, os.Remove(victim(i)), "delete an empty file on the completely full filesystem")
	}
	if _, err := os.Stat(spare); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spare file after deletions on the full filesystem: %v, want it released (the deletions had no other room)", errOrNil(err))
	}
	if err := os.Mkdir(m.P("meta", "still-full"), 0o755); !isNoSpace(err) {
		t.Errorf("mkdir after the deletions, still full: %v, want ENOSPC", errOrNil(err))
	}
	if m.Exited() {
		t.Fatalf("ssefs exited (code %d) on deletions on the full filesystem", m.ExitCode())
	}
	// Each change of state is logged once, not per refused commit.
	if n := strings.Count(m.Stderr(), "new metadata (creates, writes, renames) is refused"); n != 1 {
		t.Errorf("%d log lines saying new metadata is refused, want 1; stderr:\n%s", n, tail(m.Stderr(), 4000))
	}

	// Space is back: everything works again in the same process.
	must(t, os.Remove(ballast), "remove the ballast")
	got, err := readUncached(m.P("keep"))
	must(t, err, "read keep")
	assertBytes(t, "keep", got, keep)
	for _, p := range created {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, whose create succeeded on the full filesystem: %v", p, err)
		}
	}
	for i := range victims {
		_, err := os.Stat(victim(i))
		if deleted := i < victims/2; deleted && !errors.Is(err, os.ErrNotExist) || !deleted && err != nil {
			t.Errorf("stat %s (deleted: %v): %v", victim(i), deleted, errOrNil(err))
		}
	}
	after := randBytes(r, 3000)
	writeFile(t, m.P("meta", "after"), after, 0o644)
	if n := strings.Count(m.Stderr(), "space is back"); n != 1 {
		t.Errorf("%d log lines saying space is back, want 1", n)
	}
	assertSpareFile(t, spare) // made again on the commit that found room for it

	// Full again, and stopped while full: the deletions take the spare again, and Close
	// flushes Badger's memtable into a table through mmap.
	fillBallast(t, ballast)
	for i := victims / 2; i < victims/2+5; i++ {
		must(t, os.Remove(victim(i)), "delete on the full filesystem, second time")
	}
	m.Stop(t)
	must(t, os.Remove(ballast), "remove the ballast")

	m = StartMount(t, cfg)
	got, err = readUncached(m.P("keep"))
	must(t, err, "read keep after the restart")
	assertBytes(t, "keep", got, keep)
	got, err = readUncached(m.P("meta", "after"))
	must(t, err, "read after after the restart")
	assertBytes(t, "after", got, after)
	for i := range victims {
		_, err := os.Stat(victim(i))
		if deleted := i < victims/2+5; deleted && !errors.Is(err, os.ErrNotExist) || !deleted && err != nil {
			t.Errorf("after the restart: stat %s (deleted: %v): %v", victim(i), deleted, errOrNil(err))
		}
	}
	must(t, os.RemoveAll(m.P("meta")), "remove the empty files")
	must(t, os.RemoveAll(m.P("del")), "remove the rest of the files to delete")
	m.Stop(t)
	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	sm := regexp.MustCompile(`(?m)^fsck: .* (\d+) inconsistencies`).FindStringSubmatch(res.Stdout)
	if res.Code != 0 || sm == nil || sm[1] != "0" {
		t.Errorf("fsck after the metadata disk-full run: exit %d, stdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// assertSpareFile fails unless the metadata's spare file is there: a regular file of mode
// 0600 with all its blocks allocated (a sparse one would free nothing when released).
func assertSpareFile(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("spare file: %v", err)
	}
	blocks := st.Sys().(*syscall.Stat_t).Blocks * 512
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || st.Size() == 0 || blocks < st.Size() {
		t.Fatalf("spare file %s: mode %v, size %d, %d bytes allocated; want a regular 0600 file, allocated in full", path, st.Mode(), st.Size(), blocks)
	}
}

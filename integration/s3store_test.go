package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/internal/miniotest"
)

// End-to-end tests of `--store s3://BUCKET/PREFIX` against a real MinIO (internal/miniotest;
// they skip, saying why, without a MinIO binary, and fail under SSEFS_REQUIRE_MINIO=1).

// itStoreEnv, when set to "minio", makes newConfig put every test's objects into a MinIO
// of its own (withITStore): the POSIX and S3 suites run again on the S3 store.
const itStoreEnv = "SSEFS_IT_STORE"

// withMinIOStore points cfg's objects at bucket/prefix of m. Everything goes through the
// environment (SSEFS_STORE_*), so that tests that set Args keep it, and so do the fsck and
// the other commands run with cfg.
func withMinIOStore(cfg Config, m *miniotest.Server, bucket, prefix string) Config {
	cfg.Env = append(cfg.Env[:len(cfg.Env):len(cfg.Env)],
		"SSEFS_STORE=s3://"+bucket+"/"+prefix,
		"SSEFS_STORE_ENDPOINT="+m.Endpoint,
		"SSEFS_STORE_ACCESS_KEY="+m.AccessKey,
		"SSEFS_STORE_SECRET_KEY="+m.SecretKey,
	)
	if m.CAFile != "" {
		cfg.Env = append(cfg.Env, "SSEFS_STORE_CA_FILE="+m.CAFile)
	}
	return cfg
}

// withITStore is what newConfig applies under SSEFS_IT_STORE=minio: a MinIO per config
// (about a second to start; isolated, and stopped with the test).
func withITStore(t testing.TB, cfg Config) Config {
	t.Helper()
	switch v := os.Getenv(itStoreEnv); v {
	case "", "local":
		return cfg
	case "minio":
		m := miniotest.Start(t)
		m.MakeBucket(t, "ssefs-it")
		return withMinIOStore(cfg, m, "ssefs-it", "it")
	default:
		t.Fatalf("%s=%q: want local or minio", itStoreEnv, v)
		return cfg
	}
}

// requireLocalStore skips a test that works on DATA/objects directly (tampering, disk
// full, fsck of object files) when SSEFS_IT_STORE puts the objects elsewhere.
func requireLocalStore(t testing.TB) {
	t.Helper()
	if v := os.Getenv(itStoreEnv); v != "" && v != "local" {
		t.Skipf("this test works on DATA/objects; %s=%s keeps the objects in an S3 store", itStoreEnv, v)
	}
}

func randName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// diskFiles returns every regular file under dir with its content.
func diskFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[p] = b
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return out
}

// scanBackend fails the test if any object MinIO holds (its content, or its key), or any
// file of MinIO's drive, contains one of the secrets. It returns the objects' content.
func scanBackend(t testing.TB, m *miniotest.Server, bucket string, secrets ...string) []miniotest.Object {
	t.Helper()
	objs := m.Objects(t, bucket, "")
	if len(objs) == 0 {
		t.Fatalf("MinIO holds no object in %s", bucket)
	}
	for _, o := range objs {
		for _, s := range secrets {
			if bytes.Contains(o.Data, []byte(s)) || strings.Contains(o.Key, s) {
				t.Errorf("object %s/%s holds %q", bucket, o.Key, s)
			}
		}
	}
	for p, b := range diskFiles(t, m.DataDir) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) || strings.Contains(p, s) {
				t.Errorf("MinIO's drive file %s holds %q", p, s)
			}
		}
	}
	return objs
}

// onDisk reports whether b appears in any file of MinIO's drive.
func onDisk(t testing.TB, m *miniotest.Server, b []byte) bool {
	t.Helper()
	for _, data := range diskFiles(t, m.DataDir) {
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}

// largest returns the biggest object whose key is a chunk ID (32 hex digits).
func largest(objs []miniotest.Object) miniotest.Object {
	var best miniotest.Object
	for _, o := range objs {
		if len(filepath.Base(o.Key)) == 32 && len(o.Data) > len(best.Data) {
			best = o
		}
	}
	return best
}

// The mount on an S3 store: files of every size, renamed, truncated, removed, read back
// (whole and by range) before and after a restart; MinIO holds only ciphertext under
// random IDs (no plaintext marker, no file or directory name, neither in the objects nor
// on its drive); fsck checks the store.
func TestS3StoreEndToEnd(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "backend")
	cfg := withMinIOStore(newConfig(t), m, "backend", "tenant-a")
	mnt := StartMount(t, cfg)
	r := rng(t)

	marker := randName("PLAINTEXT-MARKER-")
	dirName, smallName, bigName, renamed, gone := randName("dir-name-"), randName("small-file-"),
		randName("big-file-"), randName("renamed-file-"), randName("removed-file-")
	names := []string{dirName, smallName, bigName, renamed, gone}

	// Over 4 KiB, so it has a chunk object (tiny files keep theirs in the metadata).
	small := bytes.Repeat([]byte(marker+"\n"), 200)
	tinyName, tiny := randName("tiny-file-"), []byte(marker+"\n")
	big := randBytes(r, 5*ChunkSize+12345)
	for _, off := range []int{0, ChunkSize - 10, 3*ChunkSize + 777, len(big) - len(marker)} {
		copy(big[off:], marker) // markers inside, and across, chunks
	}
	must(t, os.Mkdir(mnt.P(dirName), 0o755), "mkdir")
	writeFile(t, mnt.P(dirName, smallName), small, 0o644)
	writeFile(t, mnt.P(dirName, tinyName), tiny, 0o644)
	writeFile(t, mnt.P(bigName), big, 0o644)
	writeFile(t, mnt.P(gone), small, 0o644)
	must(t, os.Rename(mnt.P(bigName), mnt.P(dirName, renamed)), "rename")
	must(t, os.Remove(mnt.P(gone)), "unlink")
	cut := 3*ChunkSize + 1000
	must(t, os.Truncate(mnt.P(dirName, renamed), int64(cut)), "truncate")
	big = big[:cut]
	// An overwrite in the middle of a chunk, through an open file.
	f, err := os.OpenFile(mnt.P(dirName, renamed), os.O_RDWR, 0)
	must(t, err, "open")
	patch := bytes.Repeat([]byte{0xa5}, 4096)
	_, err = f.WriteAt(patch, ChunkSize+100)
	must(t, err, "pwrite")
	copy(big[ChunkSize+100:], patch)
	must(t, f.Sync(), "fsync")
	must(t, f.Close(), "close")

	check := func(what string) {
		t.Helper()
		for _, p := range []string{mnt.P(dirName, smallName), mnt.P(dirName, renamed)} {
			dropPageCache(t, p)
		}
		assertContent(t, mnt.P(dirName, smallName), small)
		assertContent(t, mnt.P(dirName, tinyName), tiny)
		assertContent(t, mnt.P(dirName, renamed), big)
		f, err := os.Open(mnt.P(dirName, renamed))
		must(t, err, what+": open")
		defer f.Close()
		for _, off := range []int{0, ChunkSize - 3, 2*ChunkSize + 4095, cut - 10} {
			buf := make([]byte, 100)
			n, _ := f.ReadAt(buf, int64(off))
			assertBytes(t, fmt.Sprintf("%s: pread at %d", what, off), buf[:n], big[off:min(off+100, cut)])
		}
		if _, err := os.Stat(mnt.P(gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the removed file: %v", what, err)
		}
	}
	check("mounted")
	mnt = mnt.Restart(t)
	check("after a restart")
	mnt.Stop(t)

	if _, err := os.Stat(filepath.Join(cfg.DataDir, "objects")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory has a local objects directory: %v", err)
	}
	objs := scanBackend(t, m, "backend", append(names, tinyName, marker)...)
	chunks := 0
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, "tenant-a/") {
			t.Errorf("object %s outside the prefix", o.Key)
		}
		if len(filepath.Base(o.Key)) == 32 {
			chunks++
		}
	}
	// 1 chunk of the small file, 4 of the big one, none of the tiny one (inline);
	// replaced and removed ones are gone.
	if chunks != 5 {
		t.Errorf("MinIO holds %d chunk objects, want 5", chunks)
	}
	// The scan of the drive can find what is there: without SSE, MinIO keeps the
	// ciphertext it was given as it is.
	if o := largest(objs); len(o.Data) < 2000 || !onDisk(t, m, o.Data[1000:1064]) {
		t.Errorf("a window of object %s is not on MinIO's drive: the drive scan proves nothing", o.Key)
	}
	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if res.Code != 0 || !strings.Contains(res.Stdout, "0 inconsistencies") {
		t.Errorf("fsck on the S3 store: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// --store-sse s3 over https with a custom CA: MinIO's metadata shows SSE-S3 on every object,
// and what it keeps on its drive is not even ssefs' ciphertext.
func TestS3StoreDoubleEncryption(t *testing.T) {
	m := miniotest.Start(t, miniotest.WithKMS(), miniotest.WithTLS())
	m.MakeBucket(t, "sealed")
	cfg := withMinIOStore(newConfig(t), m, "sealed", "")
	cfg.Env = append(cfg.Env, "SSEFS_STORE_SSE=s3")
	mnt := StartMount(t, cfg)
	r := rng(t)
	marker := randName("PLAINTEXT-MARKER-")
	name := randName("double-sealed-")
	data := randBytes(r, 2*ChunkSize+99)
	copy(data[5000:], marker)
	writeFile(t, mnt.P(name), data, 0o644)
	mnt = mnt.Restart(t)
	dropPageCache(t, mnt.P(name))
	assertContent(t, mnt.P(name), data)
	mnt.Stop(t)

	objs := scanBackend(t, m, "sealed", marker, name)
	if len(objs) < 4 { // 3 chunks and the marker
		t.Fatalf("MinIO holds %d objects", len(objs))
	}
	for _, o := range objs {
		if got := o.Info.Metadata.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Errorf("%s: x-amz-server-side-encryption %q, want AES256", o.Key, got)
		}
	}
	if o := largest(objs); len(o.Data) < 2000 || onDisk(t, m, o.Data[1000:1064]) {
		t.Errorf("object %s is on MinIO's drive as ssefs wrote it: no second layer", o.Key)
	}
}

// A data directory opens only against its own store: another prefix, or another data
// directory on its prefix, is refused with one line naming both.
func TestS3StoreRefusesAnotherStore(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "backend")
	cfg := withMinIOStore(newConfig(t), m, "backend", "a")
	mnt := StartMount(t, cfg)
	writeFile(t, mnt.P("f"), []byte("in a"), 0o644)
	mnt.Stop(t)

	other := withMinIOStore(cfg, m, "backend", "b") // the later SSEFS_STORE wins
	res := runExpectExit(t, other, other.mountArgs()...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "s3://backend/a") || !strings.Contains(res.Stderr, "s3://backend/b") ||
		strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
		t.Errorf("the data directory of s3://backend/a on s3://backend/b: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
	second := withMinIOStore(newConfig(t), m, "backend", "a")
	res = runExpectExit(t, second, second.mountArgs()...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "belongs to another ssefs data directory") {
		t.Errorf("a second data directory on s3://backend/a: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stderr, m.SecretKey) {
		t.Errorf("an error shows the secret key:\n%s", res.Stderr)
	}
	// Without --store the data directory finds its store by itself.
	cfg.Env = append(cfg.Env, "SSEFS_STORE=")
	mnt = StartMount(t, cfg)
	assertContent(t, mnt.P("f"), []byte("in a"))
}

// The S3 API of a mount on an S3 store: objects PUT over S3 read back (whole and by
// range) over S3 and through the mount.
func TestS3StoreS3API(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "backend")
	creds := newS3Creds()
	cfg := withMinIOStore(s3Config(t, creds), m, "backend", "api")
	mnt, ep := startS3Mount(t, cfg, creds)
	c := ep.minio(t)
	ctx := s3ctx(t)
	if err := c.MakeBucket(ctx, "photos", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randBytes(rng(t), 3*ChunkSize+17)
	s3Put(t, c, "photos", "2026/beach.jpg", data, minio.PutObjectOptions{})
	assertS3Content(t, c, "photos", "2026/beach.jpg", data)
	assertContent(t, mnt.P("photos", "2026", "beach.jpg"), data)
	got := s3GetRange(t, c, "photos", "2026/beach.jpg", ChunkSize-5, ChunkSize+5)
	assertBytes(t, "ranged GET", got, data[ChunkSize-5:ChunkSize+6])
}

// MinIO stopped in the middle of a write storm: the writes fail with EIO within the store
// timeout (nothing hangs), reads of stored content fail with EIO too; when MinIO is back,
// everything acknowledged before is intact and the same mount works again.
func TestS3StoreOutage(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "backend")
	const timeout = 4 * time.Second
	cfg := withMinIOStore(newConfig(t), m, "backend", "storm")
	cfg.Env = append(cfg.Env, "SSEFS_STORE_TIMEOUT="+timeout.String())
	mnt := StartMount(t, cfg)
	r := rng(t)

	var mu sync.Mutex
	acked := map[string][]byte{}
	// writeAcked writes, fsyncs and closes; the file counts as acknowledged only if all
	// three succeed. It returns the first error and how long the slowest call took.
	writeAcked := func(name string, data []byte) (error, time.Duration) {
		var slowest time.Duration
		timed := func(f func() error) error {
			start := time.Now()
			err := f()
			slowest = max(slowest, time.Since(start))
			return err
		}
		var f *os.File
		err := timed(func() (err error) { f, err = os.Create(mnt.P(name)); return })
		if err != nil {
			return err, slowest
		}
		werr := timed(func() error { _, err := f.Write(data); return err })
		serr := timed(f.Sync)
		cerr := timed(f.Close)
		if err := errors.Join(werr, serr, cerr); err != nil {
			return err, slowest
		}
		mu.Lock()
		acked[name] = data
		mu.Unlock()
		return nil, slowest
	}
	for i := 0; i < 8; i++ {
		if err, _ := writeAcked(fmt.Sprintf("before-%d", i), randBytes(r, ChunkSize+ChunkSize/2)); err != nil {
			t.Fatalf("write with MinIO up: %v", err)
		}
	}

	stop := make(chan struct{})
	type outcome struct {
		name    string
		err     error
		slowest time.Duration
	}
	results := make(chan outcome, 1000)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		data := randBytes(r, ChunkSize+ChunkSize/3)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("storm-%d-%d", w, i)
				err, slowest := writeAcked(name, data)
				results <- outcome{name, err, slowest}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	m.Stop()
	downAt := time.Now()
	// Let the storm run into the outage for a few timeouts.
	time.Sleep(3 * timeout)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * timeout):
		t.Fatalf("the writers still hang %s after MinIO went down (store timeout %s)", time.Since(downAt), timeout)
	}
	close(results)
	var okBefore, failed int
	var slowest time.Duration
	for o := range results {
		slowest = max(slowest, o.slowest)
		// Bound: the timeout, plus the race build's slowness and the kernel's flush of a
		// page-cache file in a few requests.
		if o.slowest > 2*timeout {
			t.Errorf("%s: a call took %s (store timeout %s)", o.name, o.slowest, timeout)
		}
		if o.err == nil {
			okBefore++
			continue
		}
		failed++
		if !errors.Is(o.err, syscall.EIO) {
			t.Errorf("%s: %v, want EIO", o.name, o.err)
		}
	}
	t.Logf("storm: %d files acknowledged, %d failed; the slowest call took %s", okBefore, failed, slowest)
	if failed == 0 {
		t.Fatal("no write failed while MinIO was down")
	}
	if okBefore == 0 {
		t.Error("no write of the storm succeeded before MinIO went down")
	}
	// A read that needs the store fails with EIO within the timeout, never wrong bytes.
	dropPageCache(t, mnt.P("before-0"))
	start := time.Now()
	_, err := os.ReadFile(mnt.P("before-0"))
	wantErrno(t, err, "read while MinIO is down", syscall.EIO)
	if took := time.Since(start); took > 3*timeout {
		t.Errorf("the read took %s (store timeout %s)", took, timeout)
	}
	// Metadata needs no store.
	if _, err := os.Stat(mnt.P("before-1")); err != nil {
		t.Errorf("stat while MinIO is down: %v", err)
	}

	m.Start(t)
	for name, data := range acked {
		dropPageCache(t, mnt.P(name))
		assertContent(t, mnt.P(name), data)
	}
	// The same mount works again.
	after := randBytes(r, 2*ChunkSize+1)
	if err, _ := writeAcked("after", after); err != nil {
		t.Fatalf("write after MinIO is back: %v", err)
	}
	dropPageCache(t, mnt.P("after"))
	assertContent(t, mnt.P("after"), after)
	stderr := mnt.Stderr()
	if !strings.Contains(stderr, "object store unavailable") {
		t.Errorf("the mount's log does not say the store was unavailable:\n%s", tail(stderr, 3000))
	}
	if strings.Contains(stderr, m.SecretKey) || strings.Contains(stderr, m.AccessKey) {
		t.Errorf("the mount's log shows the store's credentials")
	}
	mnt = mnt.Restart(t)
	for name, data := range acked {
		assertContent(t, mnt.P(name), data)
	}
	mnt.Stop(t)
	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	t.Logf("fsck after the outage (exit %d):\n%s", res.Code, tail(res.Stdout, 3000))
	if res.Code != 0 {
		t.Errorf("fsck after the outage: exit %d\n%s", res.Code, res.Stderr)
	}
}

// s3GetRange GETs bytes [from, to] of an object.
func s3GetRange(t testing.TB, c *minio.Client, bucket, key string, from, to int64) []byte {
	t.Helper()
	var opts minio.GetObjectOptions
	if err := opts.SetRange(from, to); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(s3ctx(t), bucket, key, opts)
	if err != nil {
		t.Fatalf("S3 GET %s/%s bytes %d-%d: %v", bucket, key, from, to, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("S3 GET %s/%s bytes %d-%d: %v", bucket, key, from, to, err)
	}
	return b
}

func statfs(t testing.TB, dir string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	must(t, unix.Statfs(dir, &st), "statfs")
	return st
}

// statfs on an S3 store reports a large capacity (S3 has none), never 0 free.
func TestS3StoreStatfs(t *testing.T) {
	m := miniotest.Start(t)
	m.MakeBucket(t, "backend")
	mnt := StartMount(t, withMinIOStore(newConfig(t), m, "backend", "df"))
	st := statfs(t, mnt.Dir)
	if free := st.Bavail * uint64(st.Bsize); free < 1<<40 {
		t.Errorf("statfs: %d bytes available, want the S3 store's large figure", free)
	}
}

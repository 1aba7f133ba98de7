package integration

// Crash consistency: ssefs is killed with SIGKILL at a random moment of a write storm
// through the mount and over S3, restarted, and every file is checked against what the
// load generator knows:
//
//   - an operation that returned success before the kill is durable (a closed file, a
//     fsynced one, a rename followed by fsync of the directory, a truncate, an unlink, an
//     S3 PUT, DeleteObject or CompleteMultipartUpload that answered);
//   - an operation that was still running shows its old state or its new one (for an
//     append: the old content followed by a prefix of what was appended; for a pwrite: at
//     every offset the old byte or the new one, as its pages may land apart), never bytes
//     that were not written;
//   - `ssefs fsck` then finds no inconsistency.
//
// SSEFS_CRASH_ROUNDS sets the number of rounds (default 20); scripts/soak.sh runs many.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// fileModel is what the generator knows of one name: its last acknowledged content
// (nil and !exists: absent) and, while an operation on it runs, what that operation may
// leave behind.
type fileModel struct {
	exists  bool
	content []byte
	// inflight, when set, accepts the states an unfinished operation may leave.
	inflight func(exists bool, got []byte) bool
	op       string
	newer    []byte // what the operation in flight writes, for the failure message
}

func (f *fileModel) accepts(exists bool, got []byte) bool {
	if exists == f.exists && (!exists || bytes.Equal(got, f.content)) {
		return true
	}
	return f.inflight != nil && f.inflight(exists, got)
}

func (f *fileModel) describe() string {
	if !f.exists {
		return "absent"
	}
	return fmt.Sprintf("%d bytes sha256 %.16s", len(f.content), sha(f.content))
}

// stormWorker owns a set of names no other worker touches, so each name has at most one
// operation in flight.
type stormWorker struct {
	mu    sync.Mutex
	files map[string]*fileModel
	ops   int
}

func (w *stormWorker) model(name string) *fileModel {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.files[name]
	if f == nil {
		f = &fileModel{}
		w.files[name] = f
	}
	return f
}

// snapshot returns name's model and its acknowledged state (old is never nil when the
// file exists, so oneOf tells an empty file from none).
func (w *stormWorker) snapshot(name string) (f *fileModel, exists bool, old []byte) {
	f = w.model(name)
	w.mu.Lock()
	exists, old = f.exists, f.content
	w.mu.Unlock()
	if exists {
		old = present(old)
	}
	return f, exists, old
}

// begin marks an operation in flight; end records its outcome (ok: acknowledged).
func (w *stormWorker) begin(f *fileModel, op string, newer []byte, accept func(exists bool, got []byte) bool) {
	w.mu.Lock()
	f.inflight, f.op, f.newer = accept, op, newer
	w.mu.Unlock()
}

func (w *stormWorker) end(f *fileModel, ok bool, exists bool, content []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok {
		return // the kill: the in-flight acceptance stays for the check
	}
	f.exists, f.content, f.inflight, f.op = exists, content, nil, ""
	w.ops++
}

func oneOf(states ...[]byte) func(bool, []byte) bool {
	return func(exists bool, got []byte) bool {
		for _, s := range states {
			if s == nil && !exists || s != nil && exists && bytes.Equal(got, s) {
				return true
			}
		}
		return false
	}
}

// emptyContent is an empty file, as opposed to nil: no file (see oneOf).
var emptyContent = []byte{}

// present makes content a file's state: never nil.
func present(b []byte) []byte {
	if b == nil {
		return emptyContent
	}
	return b
}

// stormFailure records an error a worker met while the mount was still alive: only
// errors after the kill are expected.
type stormFailure struct {
	dying atomic.Bool
	mu    sync.Mutex
	errs  []string
}

func (s *stormFailure) check(op, name string, err error) {
	if err == nil || s.dying.Load() {
		return
	}
	s.mu.Lock()
	s.errs = append(s.errs, fmt.Sprintf("%s %s: %v", op, name, err))
	s.mu.Unlock()
}

func crashRounds() int {
	if v, err := strconv.Atoi(os.Getenv("SSEFS_CRASH_ROUNDS")); err == nil && v > 0 {
		return v
	}
	return 20
}

func TestCrashStorm(t *testing.T) {
	creds := newS3Creds()
	cfg := s3Config(t, creds)
	r := rng(t)
	const bucket = "storm"
	mountWorkers, s3Workers := 4, 2
	workers := make([]*stormWorker, mountWorkers+s3Workers)
	for i := range workers {
		workers[i] = &stormWorker{files: map[string]*fileModel{}}
	}
	rounds := crashRounds()
	checked, totalOps := 0, 0
	for round := 1; round <= rounds; round++ {
		m, e := startS3Mount(t, cfg, creds)
		if round == 1 {
			must(t, os.Mkdir(m.P(bucket), 0o755), "mkdir the bucket")
		}
		c := e.minio(t)
		fail := &stormFailure{}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i, w := range workers {
			seed := r.Uint64()
			wg.Add(1)
			go func() {
				defer wg.Done()
				wr := mrand.New(mrand.NewPCG(seed, uint64(i)))
				if i < mountWorkers {
					mountStorm(m, bucket, fmt.Sprintf("w%d", i), w, wr, stop, fail)
				} else {
					s3Storm(c, bucket, fmt.Sprintf("s%d", i), w, wr, stop, fail)
				}
			}()
		}
		// Kill at a random moment once every worker had time to get going.
		delay := time.Duration(300+r.IntN(1700)) * time.Millisecond
		time.Sleep(delay) // the crash moment is random on purpose: no event to wait for
		fail.dying.Store(true)
		m.Kill(t)
		close(stop)
		wg.Wait()
		if len(fail.errs) > 0 {
			t.Fatalf("round %d: operations failed while ssefs was alive:\n%s", round, strings.Join(fail.errs, "\n"))
		}

		m, _ = startS3Mount(t, cfg, creds)
		n, bad := verifyStorm(t, m, bucket, workers)
		checked += n
		if bad > 0 {
			t.Fatalf("round %d (kill after %s): %d of %d files hold what was never acknowledged nor in flight", round, delay, bad, n)
		}
		// What the check read is now the acknowledged state of every file.
		for _, w := range workers {
			w.mu.Lock()
			for name, f := range w.files {
				got, err := os.ReadFile(m.P(bucket, name))
				f.exists, f.content, f.inflight, f.op = err == nil, got, nil, ""
				if err == nil {
					f.content = present(f.content)
				}
			}
			totalOps += w.ops
			w.ops = 0
			w.mu.Unlock()
		}
		m.Stop(t)
		fsckClean(t, cfg, fmt.Sprintf("round %d", round))
	}
	t.Logf("%d crash rounds survived: %d operations acknowledged, %d file states checked, 0 inconsistencies", rounds, totalOps, checked)
}

// mountStorm creates, appends to, replaces (write a temporary file, rename it over, fsync
// the directory), truncates and deletes files through the mount until the mount dies.
func mountStorm(m *Mount, bucket, prefix string, w *stormWorker, r *mrand.Rand, stop <-chan struct{}, fail *stormFailure) {
	dir := m.P(bucket)
	for {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("%s-%d", prefix, r.IntN(6))
		path := filepath.Join(dir, name)
		f, exists, old := w.snapshot(name)
		var err error
		switch op := r.IntN(5); {
		case !exists || op == 0: // create anew (or replace) by a temporary file and a rename
			data := present(randBytes(r, r.IntN(3*ChunkSize)))
			oldState := old
			if !exists {
				oldState = nil
			}
			w.begin(f, "replace", data, oneOf(oldState, data))
			tmp := path + ".tmp"
			if err = os.WriteFile(tmp, data, 0o644); err == nil {
				if err = os.Rename(tmp, path); err == nil {
					err = syncDir(dir)
				}
			}
			w.end(f, err == nil, true, data)
		case op == 1: // append, then close: a closed file survives a crash of the process
			add := randBytes(r, 1+r.IntN(ChunkSize+ChunkSize/2))
			full := append(bytes.Clone(old), add...)
			w.begin(f, "append", full, func(exists bool, got []byte) bool {
				return exists && len(got) >= len(old) && bytes.Equal(got, full[:len(got)])
			})
			var fh *os.File
			if fh, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				_, err = fh.Write(add)
				if cerr := fh.Close(); err == nil {
					err = cerr
				}
			}
			w.end(f, err == nil, true, full)
		case op == 2: // truncate
			n := r.IntN(len(old) + 1)
			old = present(old)
			w.begin(f, "truncate", old[:n], oneOf(old, old[:n]))
			err = os.Truncate(path, int64(n))
			w.end(f, err == nil, true, present(bytes.Clone(old[:n])))
		case op == 3: // pwrite in place and fsync
			if len(old) == 0 {
				continue
			}
			off := r.IntN(len(old))
			patch := randBytes(r, 1+r.IntN(min(len(old)-off, 64<<10)))
			newer := bytes.Clone(old)
			copy(newer[off:], patch)
			// A write in flight may be torn at page and chunk boundaries (the kernel's
			// writeback sends the pages of one pwrite as separate writes; no POSIX
			// filesystem makes an unsynced write atomic): each byte old or new, none other.
			w.begin(f, "pwrite", newer, func(exists bool, got []byte) bool {
				if !exists || len(got) != len(old) {
					return false
				}
				for i := range got {
					if got[i] != old[i] && got[i] != newer[i] {
						return false
					}
				}
				return true
			})
			var fh *os.File
			if fh, err = os.OpenFile(path, os.O_WRONLY, 0); err == nil {
				if _, err = fh.WriteAt(patch, int64(off)); err == nil {
					err = fh.Sync()
				}
				if cerr := fh.Close(); err == nil {
					err = cerr
				}
			}
			w.end(f, err == nil, true, newer)
		default: // delete
			w.begin(f, "unlink", nil, oneOf(old, nil))
			err = os.Remove(path)
			w.end(f, err == nil, false, nil)
		}
		if err != nil {
			fail.check("mount", name, err)
			return // the mount is gone
		}
	}
}

// s3Storm PUTs, deletes and uploads in parts (three parts: 5 MiB, 5 MiB, a little) until
// the server dies.
func s3Storm(c *minio.Client, bucket, prefix string, w *stormWorker, r *mrand.Rand, stop <-chan struct{}, fail *stormFailure) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("%s-%d", prefix, r.IntN(4))
		f, exists, old := w.snapshot(name)
		oldState := old
		if !exists {
			oldState = nil
		}
		var err error
		switch op := r.IntN(4); {
		case op == 3 && exists:
			w.begin(f, "s3 delete", nil, oneOf(oldState, nil))
			err = c.RemoveObject(ctx, bucket, name, minio.RemoveObjectOptions{})
			w.end(f, err == nil, false, nil)
		default:
			size := r.IntN(2 * ChunkSize)
			opts := minio.PutObjectOptions{}
			if op == 2 {
				size = 10<<20 + r.IntN(ChunkSize)
				opts.PartSize = 5 << 20 // a multipart upload of three parts
			}
			data := present(randBytes(r, size))
			w.begin(f, "s3 put", data, oneOf(oldState, data))
			_, err = c.PutObject(ctx, bucket, name, bytes.NewReader(data), int64(len(data)), opts)
			w.end(f, err == nil, true, data)
		}
		if err != nil {
			fail.check("s3", name, err)
			return
		}
	}
}

// verifyStorm reads every name the workers know and returns how many it checked and how
// many hold a state no operation could have left.
func verifyStorm(t *testing.T, m *Mount, bucket string, workers []*stormWorker) (checked, bad int) {
	t.Helper()
	for _, w := range workers {
		w.mu.Lock()
		names := make([]string, 0, len(w.files))
		for name := range w.files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			f := w.files[name]
			got, err := os.ReadFile(m.P(bucket, name))
			exists := err == nil
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after the crash: %v (want its content or ENOENT)", name, err)
				bad++
				continue
			}
			checked++
			if !f.accepts(exists, got) {
				state := "absent"
				if exists {
					state = fmt.Sprintf("%d bytes sha256 %.16s", len(got), sha(got))
				}
				t.Errorf("%s after the crash is %s; acknowledged: %s; in flight: %q%s", name, state, f.describe(), f.op, stormDiff(got, f.content, f.newer))
				bad++
			}
		}
		w.mu.Unlock()
	}
	// Temporary files of an interrupted replace may remain: they must hold only what was
	// written to them (a prefix is fine), which reading them at all checks for corruption.
	entries, err := os.ReadDir(m.P(bucket))
	must(t, err, "list the bucket after the crash")
	for _, ent := range entries {
		if strings.HasSuffix(ent.Name(), ".tmp") {
			fh, err := os.Open(m.P(bucket, ent.Name()))
			if err == nil {
				_, err = io.Copy(io.Discard, fh)
				fh.Close()
			}
			if err != nil {
				t.Errorf("leftover %s unreadable after the crash: %v", ent.Name(), err)
				bad++
			}
			must(t, os.Remove(m.P(bucket, ent.Name())), "remove a leftover temporary file")
		}
	}
	return checked, bad
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// fsckClean runs `ssefs fsck` on cfg's data directory and fails unless it reports no
// inconsistency.
func fsckClean(t *testing.T, cfg Config, what string) {
	t.Helper()
	res := runExpectExit(t, cfg, "fsck", "--data-dir", cfg.DataDir)
	if res.Code != 0 {
		t.Fatalf("%s: ssefs fsck exited %d:\n%s%s", what, res.Code, res.Stdout, res.Stderr)
	}
}

// stormDiff says where got first differs from the acknowledged content and from what the
// operation in flight wrote, and what the bytes there are.
func stormDiff(got, acked, newer []byte) string {
	at := func(want []byte) string {
		n := min(len(got), len(want))
		for i := 0; i < n; i++ {
			if got[i] != want[i] {
				end := min(len(got), i+16)
				zeros := bytes.Count(got[i:end], []byte{0}) == end-i
				return fmt.Sprintf("differs at %d (chunk %d, offset %d in it; got %x, zeros: %v)", i, i/ChunkSize, i%ChunkSize, got[i:end], zeros)
			}
		}
		if len(got) != len(want) {
			return fmt.Sprintf("same first %d bytes, length %d vs %d", n, len(got), len(want))
		}
		return "equal"
	}
	return fmt.Sprintf("; vs acknowledged: %s; vs in flight: %s", at(acked), at(newer))
}

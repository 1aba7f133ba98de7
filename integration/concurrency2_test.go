package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
)

// Concurrency between the two views of one ssefs process (issue #6): the mount and the S3
// API writing, reading, renaming and listing the same names at the same time. The mount-only
// cases are in concurrency_test.go.
//
// Every goroutine reports through a failures value instead of t.Fatal (which must not be
// called off the test goroutine), and stops early once there are many failures, so that a
// broken build gives a readable list instead of thousands of lines.

// failures collects errors from worker goroutines.
type failures struct {
	t testing.TB
	n atomic.Int64
}

const maxFailures = 30

func (f *failures) errorf(format string, args ...any) {
	f.t.Helper()
	if f.n.Add(1) <= maxFailures {
		f.t.Errorf(format, args...)
	}
}

// stop tells a worker to give up: enough has failed already.
func (f *failures) stop() bool { return f.n.Load() >= maxFailures }

// testCtx is one context for a whole test (s3ctx registers a cleanup per call, which the
// thousands of calls here need not do).
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*clientTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ctxGet is s3Get with the test's one context.
func ctxGet(ctx context.Context, c *minio.Client, bucket, key string) ([]byte, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

func isNoSuchKey(err error) bool {
	return minio.ToErrorResponse(err).Code == "NoSuchKey"
}

// ---------------------------------------------------------------------------------------
// 1. Mount and S3 writers on the same names

// xvContent is one content some writer wrote (or is writing) to a name. The bytes are a
// function of (seed, id), so the registry keeps only the id and size and a reader can
// regenerate any candidate; the first 8 bytes are the id, so a complete read says which
// write it claims to be.
type xvContent struct {
	id   uint64
	size int
	sum  string // sha256 of the whole content
}

func xvBytes(seed, id uint64, size int) []byte {
	b := randBytes(mrand.New(mrand.NewPCG(seed, id)), size)
	binary.LittleEndian.PutUint64(b, id)
	return b
}

// xvRegistry is, per name, every content that any writer has started to write to it. A
// content is registered before its write begins, so a reader can never see a content that
// is not (yet) in the registry.
type xvRegistry struct {
	seed uint64
	mu   sync.Mutex
	by   map[string]map[uint64]xvContent
}

func (g *xvRegistry) add(name string, id uint64, size int) []byte {
	b := xvBytes(g.seed, id, size)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.by[name] == nil {
		g.by[name] = map[uint64]xvContent{}
	}
	g.by[name][id] = xvContent{id: id, size: size, sum: sha(b)}
	return b
}

func (g *xvRegistry) candidates(name string) []xvContent {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]xvContent, 0, len(g.by[name]))
	for _, c := range g.by[name] {
		out = append(out, c)
	}
	return out
}

// checkComplete returns "" if got is exactly one content written to name, else why not.
func (g *xvRegistry) checkComplete(name string, got []byte) string {
	if len(got) < 8 {
		return fmt.Sprintf("%d bytes: shorter than any content written to it", len(got))
	}
	id := binary.LittleEndian.Uint64(got)
	g.mu.Lock()
	c, ok := g.by[name][id]
	g.mu.Unlock()
	if !ok {
		return fmt.Sprintf("%d bytes starting with id %#x, which no writer wrote to this name", len(got), id)
	}
	if len(got) != c.size || sha(got) != c.sum {
		return fmt.Sprintf("%d bytes starting like write %#x (%d bytes), but not equal to it (torn, truncated or corrupt)", len(got), id, c.size)
	}
	return ""
}

// checkPieces is the check for names that are also rewritten in place (O_TRUNC, then
// write): a read racing such a rewrite legitimately sees a prefix of the new content, and a
// read of several system calls (or an S3 GET spanning several chunk reads) can even start
// in the old content and continue in the new one, since POSIX makes read and write atomic
// only against each other within one call, not across calls. What must still hold is that
// every byte at offset i is byte i of some content written to this name: no zeros nobody
// wrote, no bytes of another name, no garbage from a wrong key or a torn chunk. The check
// goes by 4 KiB blocks, and byte by byte only for a block no single content matches.
func (g *xvRegistry) checkPieces(name string, got []byte) string {
	cands := g.candidates(name)
	full := make([][]byte, len(cands))
	for i, c := range cands {
		full[i] = xvBytes(g.seed, c.id, c.size)
	}
	const blk = 4096
	for off := 0; off < len(got); off += blk {
		end := min(off+blk, len(got))
		whole := false
		for _, f := range full {
			if len(f) >= end && bytes.Equal(f[off:end], got[off:end]) {
				whole = true
				break
			}
		}
		if whole {
			continue
		}
		for i := off; i < end; i++ {
			ok := false
			for _, f := range full {
				if i < len(f) && f[i] == got[i] {
					ok = true
					break
				}
			}
			if !ok {
				return fmt.Sprintf("%d bytes; byte %d is %#02x, which no content written to this name has at that offset (%d candidates)", len(got), i, got[i], len(full))
			}
		}
	}
	return ""
}

// TestConcurrentCrossViewWriters: writers through the mount (a temp file renamed over the
// name; an O_TRUNC rewrite in place) and over S3 (PutObject, CopyObject from another key, a
// two-part multipart upload) replace the contents of 8 names, while readers read them
// through both views. Names f0-f3 are only ever replaced atomically (rename or an S3
// commit, each of which binds the name to a new inode), so every read of them, through
// either view, must return exactly one complete content some writer wrote to that name,
// and never ENOENT/NoSuchKey (each name exists from the start). Names f4-f7 also get
// in-place rewrites; see checkPieces. At the end both views agree byte for byte.
func TestConcurrentCrossViewWriters(t *testing.T) {
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	ctx := testCtx(t)
	seed := rng(t).Uint64()
	const bucket = "xwrite"
	must(t, os.Mkdir(m.P(bucket), 0o755), "mkdir the bucket")
	must(t, os.Mkdir(m.P(bucket, "tmp"), 0o755), "mkdir tmp")

	const nNames = 8
	name := func(i int) string { return fmt.Sprintf("f%d", i) }
	inPlace := func(n string) bool { return n >= "f4" } // f4-f7 also get O_TRUNC rewrites
	reg := &xvRegistry{seed: seed, by: map[string]map[uint64]xvContent{}}

	// Every name exists before the race starts, so a missing name is always an error.
	c0 := e.minio(t)
	for i := 0; i < nNames; i++ {
		b := reg.add(name(i), uint64(1000+i), 4096+i)
		s3Put(t, c0, bucket, name(i), b, minio.PutObjectOptions{})
	}

	fl := &failures{t: t}
	const (
		writers     = 6
		writesEach  = 14
		readers     = 4 // half through the mount, half over S3
		minReadEach = 25
	)
	var writersLeft atomic.Int32
	writersLeft.Store(writers)
	var wwg, rwg sync.WaitGroup
	var opsDone [5]atomic.Int64 // per kind of write, to show that every kind ran

	for w := 0; w < writers; w++ {
		wwg.Add(1)
		go func(w int) {
			defer wwg.Done()
			defer writersLeft.Add(-1)
			r := mrand.New(mrand.NewPCG(seed, uint64(w)))
			c := e.minio(t)
			core := minio.Core{Client: c}
			for i := 0; i < writesEach && !fl.stop(); i++ {
				n := name(r.IntN(nNames))
				id := uint64(w+1)<<32 | uint64(i+1)
				kinds := 4
				if inPlace(n) {
					kinds = 5
				}
				kind := r.IntN(kinds)
				if kind == 3 && r.IntN(3) != 0 {
					kind = 1 // multipart (5 MiB and more) is the slow one; keep it rarer
				}
				size := 8 + r.IntN(3*ChunkSize/2)
				if kind == 3 {
					size = 5<<20 + 8 + r.IntN(ChunkSize)
				}
				data := reg.add(n, id, size)
				var err error
				switch kind {
				case 0: // mount: write a temp file, rename it over the name
					tmp := m.P(bucket, "tmp", fmt.Sprintf("w%d-%d", w, i))
					if err = os.WriteFile(tmp, data, 0o644); err == nil {
						err = os.Rename(tmp, m.P(bucket, n))
					}
				case 1: // S3 PutObject
					_, err = c.PutObject(ctx, bucket, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				case 2: // S3 CopyObject from this writer's own source key
					src := fmt.Sprintf("src/w%d", w)
					_, err = c.PutObject(ctx, bucket, src, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
					if err == nil {
						_, err = c.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: n}, minio.CopySrcOptions{Bucket: bucket, Object: src})
					}
				case 3: // S3 multipart upload of two parts (the first at the 5 MiB minimum)
					var uid string
					uid, err = core.NewMultipartUpload(ctx, bucket, n, minio.PutObjectOptions{})
					var parts []minio.CompletePart
					for p, span := range [][2]int{{0, 5 << 20}, {5 << 20, len(data)}} {
						if err != nil {
							break
						}
						var op minio.ObjectPart
						op, err = core.PutObjectPart(ctx, bucket, n, uid, p+1, bytes.NewReader(data[span[0]:span[1]]), int64(span[1]-span[0]), minio.PutObjectPartOptions{})
						parts = append(parts, minio.CompletePart{PartNumber: p + 1, ETag: op.ETag})
					}
					if err == nil {
						_, err = core.CompleteMultipartUpload(ctx, bucket, n, uid, parts, minio.PutObjectOptions{})
					}
				case 4: // mount: O_TRUNC rewrite in place, then close
					var f *os.File
					if f, err = os.OpenFile(m.P(bucket, n), os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644); err == nil {
						_, err = f.Write(data)
						if cerr := f.Close(); err == nil {
							err = cerr
						}
					}
				}
				if err != nil {
					fl.errorf("writer %d: write #%d (kind %d) of %d bytes to %s: %v", w, i, kind, size, n, s3ErrString(err))
					continue
				}
				opsDone[kind].Add(1)
			}
		}(w)
	}

	var reads atomic.Int64
	for rd := 0; rd < readers; rd++ {
		rwg.Add(1)
		go func(rd int) {
			defer rwg.Done()
			r := mrand.New(mrand.NewPCG(seed, uint64(100+rd)))
			viaMount := rd%2 == 0
			c := e.minio(t)
			// Read until every writer is done, and at least minReadEach times.
			for i := 0; (i < minReadEach || writersLeft.Load() > 0) && !fl.stop(); i++ {
				n := name(r.IntN(nNames))
				var got []byte
				var err error
				view := "S3 GET"
				if viaMount {
					view = "mount read"
					got, err = os.ReadFile(m.P(bucket, n))
				} else {
					got, err = ctxGet(ctx, c, bucket, n)
					if inPlace(n) && errors.Is(err, io.ErrUnexpectedEOF) {
						// The object shrank under the GET (an O_TRUNC rewrite through the
						// mount): ssefs cuts the answer rather than send fewer bytes than it
						// announced. What did arrive is still checked below.
						err = nil
					}
				}
				if err != nil {
					fl.errorf("reader %d: %s of %s: %v (the name always exists)", rd, view, n, s3ErrString(err))
					continue
				}
				var why string
				if inPlace(n) {
					why = reg.checkPieces(n, got)
				} else {
					why = reg.checkComplete(n, got)
				}
				if why != "" {
					fl.errorf("reader %d: %s of %s returned %s", rd, view, n, why)
				}
				reads.Add(1)
			}
		}(rd)
	}
	wwg.Wait()
	rwg.Wait()
	t.Logf("writes by kind (rename, put, copy, multipart, in place): %d %d %d %d %d; reads: %d",
		opsDone[0].Load(), opsDone[1].Load(), opsDone[2].Load(), opsDone[3].Load(), opsDone[4].Load(), reads.Load())

	// Quiet now: both views must show, for every name, the same complete content.
	for i := 0; i < nNames; i++ {
		n := name(i)
		viaMount, err := os.ReadFile(m.P(bucket, n))
		if err != nil {
			t.Errorf("final mount read of %s: %v", n, err)
			continue
		}
		if why := reg.checkComplete(n, viaMount); why != "" {
			t.Errorf("final mount read of %s: %s", n, why)
		}
		assertS3Content(t, c0, bucket, n, viaMount)
		if st, err := os.Stat(m.P(bucket, n)); err != nil || st.Size() != int64(len(viaMount)) {
			t.Errorf("final stat of %s: %v, %v; want size %d", n, st, err, len(viaMount))
		}
	}
	m.Stop(t)
}

// ---------------------------------------------------------------------------------------
// 2. Directories renamed while being listed

// TestConcurrentRenameWhileListing: one goroutine renames directory trees through the mount
// (the top directory t0 <-> t1, and the subtree B between a/b, a/b2 and m, a move to
// another parent), while others list the bucket recursively through the mount and over S3
// (ListObjectsV2 with small pages, with and without a delimiter) and read what they find.
// The renamer is the only writer, so every path any listing shows must be one the tree has
// in some state (the product of the states of its two renamed parts), no listing may show
// an entry twice (S3: keys and prefixes strictly ascending across the pages of one listing),
// every file read must have its own content, and the only error allowed is ENOENT /
// NoSuchKey for something renamed away. At the end the tree is intact in both views.
func TestConcurrentRenameWhileListing(t *testing.T) {
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	ctx := testCtx(t)
	r0 := rng(t)
	seed := r0.Uint64()
	const bucket = "rtree"
	must(t, os.Mkdir(m.P(bucket), 0o755), "mkdir the bucket")

	tops := []string{"t0", "t1"}
	blocs := []string{"a/b", "a/b2", "m"}
	topFiles := []string{"f-top1", "f-top2", "a/f-a"}                                                  // relative to the top
	bFiles := []string{"f-b1", "f-b2", "c/f-c1", "c/f-c2", "c/f-c3", "c/f-c4", "c/d/f-d", "c/d/f-big"} // relative to B
	content := map[string][]byte{}                                                                     // by basename (unique)
	for _, f := range append(append([]string{}, topFiles...), bFiles...) {
		size := 100 + r0.IntN(20000)
		if path.Base(f) == "f-big" {
			size = ChunkSize + 17 // spans two chunks
		}
		content[path.Base(f)] = randBytes(r0, size)
	}
	keysIn := func(top, bloc string) []string {
		var out []string
		for _, f := range topFiles {
			out = append(out, top+"/"+f)
		}
		for _, f := range bFiles {
			out = append(out, top+"/"+bloc+"/"+f)
		}
		sort.Strings(out)
		return out
	}
	dirsIn := func(top, bloc string) []string {
		return []string{top, top + "/a", top + "/" + bloc, top + "/" + bloc + "/c", top + "/" + bloc + "/c/d"}
	}
	allowedFile, allowedDir := map[string]bool{}, map[string]bool{}
	for _, top := range tops {
		for _, bloc := range blocs {
			for _, k := range keysIn(top, bloc) {
				allowedFile[k] = true
			}
			for _, d := range dirsIn(top, bloc) {
				allowedDir[d] = true
			}
		}
	}

	// The tree is created over S3 (its directories are implicit), then renamed through the
	// mount: the renames have to carry S3-made objects along.
	c0 := e.minio(t)
	for _, k := range keysIn("t0", "a/b") {
		s3Put(t, c0, bucket, k, content[path.Base(k)], minio.PutObjectOptions{})
	}

	fl := &failures{t: t}
	const (
		renames      = 200
		listers      = 4 // half through the mount, half over S3
		minListsEach = 6
	)
	top, bloc := "t0", "a/b" // the renamer's state; read by the test only after it is done
	renamerDone := make(chan struct{})
	var wg sync.WaitGroup
	var renamesDone atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(renamerDone)
		r := mrand.New(mrand.NewPCG(seed, 1))
		for i := 0; i < renames && !fl.stop(); i++ {
			var from, to string
			if r.IntN(2) == 0 {
				nt := "t1"
				if top == "t1" {
					nt = "t0"
				}
				from, to = top, nt
				top = nt
			} else {
				nb := blocs[r.IntN(len(blocs))]
				for nb == bloc {
					nb = blocs[r.IntN(len(blocs))]
				}
				from, to = top+"/"+bloc, top+"/"+nb
				bloc = nb
			}
			// Nothing else renames or removes, so every rename must succeed.
			if err := os.Rename(m.P(bucket, from), m.P(bucket, to)); err != nil {
				fl.errorf("rename %s -> %s: %v", from, to, err)
				return
			}
			renamesDone.Add(1)
		}
	}()

	done := func() bool {
		select {
		case <-renamerDone:
			return true
		default:
			return false
		}
	}
	var filesRead, keysSeen atomic.Int64

	// mountWalk lists rel (a directory below the bucket) and everything below it.
	var mountWalk func(who, rel string)
	mountWalk = func(who, rel string) {
		ents, err := os.ReadDir(m.P(bucket, rel))
		if errors.Is(err, syscall.ENOENT) {
			return // renamed away between the parent's listing and this one
		}
		if err != nil {
			fl.errorf("%s: readdir %s: %v", who, rel, err)
			return
		}
		seen := map[string]bool{}
		for _, de := range ents {
			if seen[de.Name()] {
				fl.errorf("%s: readdir %s lists %q twice", who, rel, de.Name())
			}
			seen[de.Name()] = true
			p := path.Join(rel, de.Name())
			switch {
			case de.IsDir():
				if !allowedDir[p] {
					fl.errorf("%s: readdir shows directory %s, which the tree never has", who, p)
					continue
				}
				mountWalk(who, p)
			case de.Type().IsRegular():
				if !allowedFile[p] {
					fl.errorf("%s: readdir shows file %s, which the tree never has", who, p)
					continue
				}
				got, err := os.ReadFile(m.P(bucket, p))
				if errors.Is(err, syscall.ENOENT) {
					continue
				}
				if err != nil {
					fl.errorf("%s: read %s: %v", who, p, err)
					continue
				}
				filesRead.Add(1)
				if want := content[path.Base(p)]; !bytes.Equal(got, want) {
					fl.errorf("%s: read %s: %d bytes sha256 %.16s, want %d bytes sha256 %.16s", who, p, len(got), sha(got), len(want), sha(want))
				}
			default:
				fl.errorf("%s: readdir shows %s of type %v", who, p, de.Type())
			}
		}
	}

	// s3List lists prefix (with delimiter "/" or recursively) in pages of 3 and checks every
	// page. It returns the object keys it saw.
	s3List := func(who string, core minio.Core, prefix, delim string) []string {
		var keys []string
		last, token := "", ""
		for page := 0; ; page++ {
			res, err := core.ListObjectsV2(bucket, prefix, "", token, delim, 3)
			if err != nil {
				fl.errorf("%s: ListObjectsV2 prefix %q delimiter %q page %d: %v", who, prefix, delim, page, s3ErrString(err))
				return keys
			}
			var entries []string
			for _, o := range res.Contents {
				k := o.Key
				entries = append(entries, k)
				keys = append(keys, k)
				rest := strings.TrimPrefix(k, prefix)
				if !allowedFile[k] || !strings.HasPrefix(k, prefix) || (delim != "" && strings.Contains(rest, delim)) {
					fl.errorf("%s: listing prefix %q delimiter %q shows key %q, which the tree never has there", who, prefix, delim, k)
				}
			}
			for _, cp := range res.CommonPrefixes {
				p := cp.Prefix
				entries = append(entries, p)
				rest := strings.TrimSuffix(strings.TrimPrefix(p, prefix), "/")
				if delim == "" || !strings.HasSuffix(p, "/") || !allowedDir[strings.TrimSuffix(p, "/")] || !strings.HasPrefix(p, prefix) || rest == "" || strings.Contains(rest, "/") {
					fl.errorf("%s: listing prefix %q delimiter %q shows common prefix %q, which the tree never has there", who, prefix, delim, p)
				}
			}
			sort.Strings(entries)
			for _, x := range entries {
				if x <= last {
					fl.errorf("%s: listing prefix %q delimiter %q page %d shows %q after %q: out of order or twice", who, prefix, delim, page, x, last)
				}
				last = x
			}
			if !res.IsTruncated {
				return keys
			}
			if res.NextContinuationToken == "" {
				fl.errorf("%s: listing prefix %q page %d is truncated but has no continuation token", who, prefix, page)
				return keys
			}
			token = res.NextContinuationToken
		}
	}

	for l := 0; l < listers; l++ {
		wg.Add(1)
		go func(l int) {
			defer wg.Done()
			who := fmt.Sprintf("lister %d", l)
			c := e.minio(t)
			core := minio.Core{Client: c}
			for i := 0; (i < minListsEach || !done()) && !fl.stop(); i++ {
				if l%2 == 0 {
					mountWalk(who+" (mount)", ".")
					continue
				}
				if i%2 == 0 {
					// Recursive, and GET every key listed: its content, or NoSuchKey if
					// it was renamed away since.
					for _, k := range s3List(who+" (S3)", core, "", "") {
						keysSeen.Add(1)
						got, err := ctxGet(ctx, c, bucket, k)
						if isNoSuchKey(err) {
							continue
						}
						if err != nil {
							fl.errorf("%s: S3 GET %s: %v", who, k, s3ErrString(err))
							continue
						}
						if want := content[path.Base(k)]; !bytes.Equal(got, want) {
							fl.errorf("%s: S3 GET %s: %d bytes sha256 %.16s, want %d bytes sha256 %.16s", who, k, len(got), sha(got), len(want), sha(want))
						}
					}
					continue
				}
				// With the delimiter, level by level, as a browser of the bucket does.
				_ = s3List(who+" (S3 /)", core, "", "/")
				for _, tp := range tops {
					_ = s3List(who+" (S3 /)", core, tp+"/", "/")
					_ = s3List(who+" (S3 /)", core, tp+"/a/", "/")
					for _, bl := range blocs {
						_ = s3List(who+" (S3 /)", core, tp+"/"+bl+"/c/", "/")
					}
				}
			}
		}(l)
	}
	wg.Wait()
	t.Logf("renames: %d; files read through the mount: %d; keys listed over S3 (recursive): %d", renamesDone.Load(), filesRead.Load(), keysSeen.Load())
	if fl.n.Load() > 0 {
		t.FailNow()
	}

	// Quiet now: the tree is where the renamer left it, every file once with its content.
	want := map[string]string{}
	for _, d := range dirsIn(top, bloc) {
		want[d] = "dir"
	}
	for _, k := range keysIn(top, bloc) {
		b := content[path.Base(k)]
		want[k] = fmt.Sprintf("file %d %s", len(b), sha(b))
	}
	compareFileTrees(t, "the tree through the mount after the renames", fileTree(t, m.P(bucket)), want)
	gotKeys := s3Keys(t, c0, bucket)
	if wantKeys := keysIn(top, bloc); strings.Join(gotKeys, "\n") != strings.Join(wantKeys, "\n") {
		t.Errorf("S3 lists after the renames:\n  %s\nwant:\n  %s", strings.Join(gotKeys, "\n  "), strings.Join(wantKeys, "\n  "))
	}
	for _, k := range keysIn(top, bloc) {
		assertS3Content(t, c0, bucket, k, content[path.Base(k)])
	}
	m.Stop(t)
}

// ---------------------------------------------------------------------------------------
// 3. Many clients at once

// TestConcurrentManyClients: 32 S3 clients (each its own minio-go client, so its own
// connections) and 8 mount workers each create, read back, list and delete files of their
// own at the same time. Each checks every result as it goes (a GET or read returns what it
// wrote, a deleted key is gone, a listing of its own prefix is exactly its live set); at
// the end both views list exactly the union of what every worker left, with its content,
// the server still answers, and the mount stops cleanly (Stop asserts exit 0 and no DATA
// RACE).
func TestConcurrentManyClients(t *testing.T) {
	creds := newS3Creds()
	m, e := startS3Mount(t, s3Config(t, creds), creds)
	ctx := testCtx(t)
	seed := rng(t).Uint64()
	const bucket = "many"
	must(t, os.Mkdir(m.P(bucket), 0o755), "mkdir the bucket")

	const (
		s3Clients    = 32
		mountWorkers = 8
		opsEach      = 10
	)
	fl := &failures{t: t}
	var mu sync.Mutex
	final := map[string][]byte{} // key -> content of everything the workers left
	var wg sync.WaitGroup

	size := func(r *mrand.Rand) int {
		if r.IntN(8) == 0 {
			return ChunkSize + r.IntN(ChunkSize/2) // a few span two chunks
		}
		return r.IntN(64 << 10) // including empty
	}

	for ci := 0; ci < s3Clients; ci++ {
		wg.Add(1)
		go func(ci int) {
			defer wg.Done()
			who := fmt.Sprintf("S3 client %d", ci)
			r := mrand.New(mrand.NewPCG(seed, uint64(ci)))
			c := e.minio(t)
			prefix := fmt.Sprintf("c%02d/", ci)
			live := map[string][]byte{}
			for j := 0; j < opsEach && !fl.stop(); j++ {
				k := fmt.Sprintf("%so%02d", prefix, j)
				data := randBytes(r, size(r))
				if _, err := c.PutObject(ctx, bucket, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
					fl.errorf("%s: PUT %s: %v", who, k, s3ErrString(err))
					return
				}
				live[k] = data
				got, err := ctxGet(ctx, c, bucket, k)
				if err != nil || !bytes.Equal(got, data) {
					fl.errorf("%s: GET %s right after its PUT: %d bytes, %v; want %d bytes", who, k, len(got), errOrNil(err), len(data))
				}
				// Delete an earlier key now and then (never o00, so the prefix stays).
				if j >= 2 && r.IntN(3) == 0 {
					dk := fmt.Sprintf("%so%02d", prefix, 1+r.IntN(j-1))
					if _, ok := live[dk]; ok {
						if err := c.RemoveObject(ctx, bucket, dk, minio.RemoveObjectOptions{}); err != nil {
							fl.errorf("%s: DELETE %s: %v", who, dk, s3ErrString(err))
						}
						delete(live, dk)
						if _, err := ctxGet(ctx, c, bucket, dk); !isNoSuchKey(err) {
							fl.errorf("%s: GET %s after its DELETE: %v, want NoSuchKey", who, dk, errOrNil(err))
						}
					}
				}
				// The listing of its own prefix is exactly its live set.
				var listed []string
				for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
					if o.Err != nil {
						fl.errorf("%s: list %s: %v", who, prefix, s3ErrString(o.Err))
						break
					}
					listed = append(listed, o.Key)
					if want, ok := live[o.Key]; ok && o.Size != int64(len(want)) {
						fl.errorf("%s: list shows %s with size %d, want %d", who, o.Key, o.Size, len(want))
					}
				}
				if got, want := strings.Join(listed, ","), strings.Join(sortedMapKeys(live), ","); got != want {
					fl.errorf("%s: list %s = [%s], want [%s]", who, prefix, got, want)
				}
			}
			mu.Lock()
			for k, v := range live {
				final[k] = v
			}
			mu.Unlock()
		}(ci)
	}

	for wi := 0; wi < mountWorkers; wi++ {
		wg.Add(1)
		go func(wi int) {
			defer wg.Done()
			who := fmt.Sprintf("mount worker %d", wi)
			r := mrand.New(mrand.NewPCG(seed, uint64(1000+wi)))
			dir := fmt.Sprintf("w%d", wi)
			if err := os.Mkdir(m.P(bucket, dir), 0o755); err != nil {
				fl.errorf("%s: mkdir %s: %v", who, dir, err)
				return
			}
			live := map[string][]byte{}
			for j := 0; j < opsEach && !fl.stop(); j++ {
				k := fmt.Sprintf("%s/o%02d", dir, j)
				data := randBytes(r, size(r))
				if err := os.WriteFile(m.P(bucket, k), data, 0o644); err != nil {
					fl.errorf("%s: write %s: %v", who, k, err)
					return
				}
				live[k] = data
				if got, err := os.ReadFile(m.P(bucket, k)); err != nil || !bytes.Equal(got, data) {
					fl.errorf("%s: read %s right after writing it: %d bytes, %v; want %d bytes", who, k, len(got), errOrNil(err), len(data))
				}
				if j >= 2 && r.IntN(3) == 0 {
					dk := fmt.Sprintf("%s/o%02d", dir, 1+r.IntN(j-1))
					if _, ok := live[dk]; ok {
						if err := os.Remove(m.P(bucket, dk)); err != nil {
							fl.errorf("%s: remove %s: %v", who, dk, err)
						}
						delete(live, dk)
						if _, err := os.Stat(m.P(bucket, dk)); !errors.Is(err, syscall.ENOENT) {
							fl.errorf("%s: stat %s after removing it: %v, want ENOENT", who, dk, errOrNil(err))
						}
					}
				}
				ents, err := os.ReadDir(m.P(bucket, dir))
				if err != nil {
					fl.errorf("%s: readdir %s: %v", who, dir, err)
					continue
				}
				var listed []string
				for _, de := range ents {
					listed = append(listed, dir+"/"+de.Name())
				}
				if got, want := strings.Join(listed, ","), strings.Join(sortedMapKeys(live), ","); got != want {
					fl.errorf("%s: readdir %s = [%s], want [%s]", who, dir, got, want)
				}
			}
			mu.Lock()
			for k, v := range live {
				final[k] = v
			}
			mu.Unlock()
		}(wi)
	}
	wg.Wait()
	if fl.n.Load() > 0 {
		t.FailNow()
	}

	// Both views list exactly what the workers left, with its content.
	c := e.minio(t)
	wantKeys := sortedMapKeys(final)
	if got := s3Keys(t, c, bucket); strings.Join(got, "\n") != strings.Join(wantKeys, "\n") {
		t.Errorf("S3 lists %d keys after the run, want %d:\n  got  %s\n  want %s", len(got), len(wantKeys), strings.Join(got, " "), strings.Join(wantKeys, " "))
	}
	want := map[string]string{}
	for k, v := range final {
		want[k] = fmt.Sprintf("file %d %s", len(v), sha(v))
		want[path.Dir(k)] = "dir"
		assertS3Content(t, c, bucket, k, v)
	}
	compareFileTrees(t, "the bucket through the mount after the run", fileTree(t, m.P(bucket)), want)

	// Still responsive through both views after the storm.
	probe := []byte("still answering after the storm")
	s3Put(t, c, bucket, "probe", probe, minio.PutObjectOptions{})
	assertContent(t, m.P(bucket, "probe"), probe)
	writeFile(t, m.P(bucket, "probe2"), probe, 0o644)
	assertS3Content(t, c, bucket, "probe2", probe)
	m.Stop(t)
}

func sortedMapKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

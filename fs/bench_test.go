package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync/atomic"
	"testing"
)

// Benchmarks of the engine alone (no FUSE, no HTTP): chunking, encryption, object writes
// and metadata commits, on real stores in b.TempDir(), with the default chunk size
// (DefaultChunkSize, 1 MiB) and write buffer. Run with -benchmem; the engine's hot paths
// are profiled with
//
//	go test ./fs -run '^$' -bench Engine -benchmem -cpuprofile cpu.out -memprofile mem.out

// benchRandom is a reproducible source of offsets, one per benchmark.
func benchRandom() *mrand.Rand { return mrand.New(mrand.NewPCG(1, 2)) }

// benchFillFile creates name in the bucket and writes size random bytes into it, 1 MiB at
// a time, then flushes: a file whose chunks are all stored. The handle stays open.
func benchFillFile(b *testing.B, env *testEnv, name string, size int64) *Handle {
	b.Helper()
	ctx := context.Background()
	_, h, err := env.e.Create(ctx, env.bucket, name, Owner{Mode: 0o644}, true)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := h.WriteAt(ctx, buf[:min(int64(len(buf)), size-off)], off); err != nil {
			b.Fatal(err)
		}
	}
	if err := h.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return h
}

func benchRelease(b *testing.B, h *Handle) {
	b.Helper()
	if err := h.Release(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSequentialWrite writes 1 MiB at a time at the end of one file: every write
// fills a chunk, which is encrypted, stored and committed at once.
func BenchmarkSequentialWrite(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	_, h, err := env.e.Create(ctx, env.bucket, "bench", Owner{Mode: 0o644}, true)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		if _, err := h.WriteAt(ctx, buf, off); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf))
	}
	benchRelease(b, h)
}

// BenchmarkSequentialRead reads a flushed 64 MiB file back 128 KiB at a time, as the
// kernel's readahead does.
func BenchmarkSequentialRead(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	const size = 64 << 20
	h := benchFillFile(b, env, "bench", size)
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		if _, err := h.ReadAt(ctx, buf, off); err != nil {
			b.Fatal(err)
		}
		off = (off + int64(len(buf))) % size
	}
	benchRelease(b, h)
}

// BenchmarkEngineRandomWrite4KiB writes 4 KiB at random page-aligned offsets of a stored
// 256 MiB file (a database or VM image): each write into a chunk that is not buffered
// reads and decrypts the whole 1 MiB chunk first, and each flush re-encrypts and stores
// every chunk written since. flush-every-write is write+close (or write+fsync without
// the sync) per 4 KiB; flush-every-256-writes lets the write-back buffer absorb a burst.
func BenchmarkEngineRandomWrite4KiB(b *testing.B) {
	const fileSize = 256 << 20
	for _, bc := range []struct {
		name       string
		flushEvery int
	}{{"flush-every-write", 1}, {"flush-every-256-writes", 256}} {
		b.Run(bc.name, func(b *testing.B) {
			env := newTestEnv(b, 0, 0)
			ctx := context.Background()
			h := benchFillFile(b, env, "image", fileSize)
			r := benchRandom()
			p := make([]byte, 4<<10)
			rand.Read(p)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				off := r.Int64N(fileSize/int64(len(p))) * int64(len(p))
				if _, err := h.WriteAt(ctx, p, off); err != nil {
					b.Fatal(err)
				}
				if n++; n%bc.flushEvery == 0 {
					if err := h.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			benchRelease(b, h)
		})
	}
}

// BenchmarkEngineRandomRead4KiB reads 4 KiB at random page-aligned offsets of a stored
// 256 MiB file, reopened so that no chunk record is cached at the start: each read
// fetches the ciphertext span from the object store and decrypts one DARE package (two
// when the offset is on a 64 KiB package boundary, see encryptedSpan).
func BenchmarkEngineRandomRead4KiB(b *testing.B) {
	const fileSize = 256 << 20
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	h := benchFillFile(b, env, "image", fileSize)
	ino := h.Ino()
	benchRelease(b, h)
	h, err := env.e.Open(ctx, ino)
	if err != nil {
		b.Fatal(err)
	}
	r := benchRandom()
	p := make([]byte, 4<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		off := r.Int64N(fileSize/int64(len(p))) * int64(len(p))
		if _, err := h.ReadAt(ctx, p, off); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	benchRelease(b, h)
}

// BenchmarkEngineSmallFileCreate creates, writes and releases one new file per op in one
// directory, as tar x or cp -r of small files does (without FUSE): key sealing, the
// create transaction, one chunk encrypted and stored, the commit at release.
func BenchmarkEngineSmallFileCreate(b *testing.B) {
	for _, size := range []int{0, 4 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			env := newTestEnv(b, 0, 0)
			ctx := context.Background()
			dir, err := env.e.Mkdir(ctx, env.bucket, "dir", Owner{Mode: 0o755})
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, size)
			rand.Read(data)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				_, h, err := env.e.Create(ctx, dir.Ino, fmt.Sprintf("file-%08d", n), Owner{Mode: 0o644}, true)
				if err != nil {
					b.Fatal(err)
				}
				if size > 0 {
					if _, err := h.WriteAt(ctx, data, 0); err != nil {
						b.Fatal(err)
					}
				}
				if err := h.Release(ctx); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

// BenchmarkEngineSmallFileDelete unlinks one 4 KiB file per op, as rm -r does (without
// FUSE): the files are made before the clock starts, in directories of 100. The kernel's
// lookup reference is taken as FUSE would, so the deletion path is the mount's.
func BenchmarkEngineSmallFileDelete(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	data := make([]byte, 4<<10)
	rand.Read(data)
	const perDir = 100
	var dirs []Ino
	n := 0
	for b.Loop() {
		if n == 0 || n%perDir == 0 && n/perDir >= len(dirs) {
			b.StopTimer()
			d, err := env.e.Mkdir(ctx, env.bucket, fmt.Sprintf("d%06d", len(dirs)), Owner{Mode: 0o755})
			if err != nil {
				b.Fatal(err)
			}
			dirs = append(dirs, d.Ino)
			for i := range perDir {
				writeFile(b, env.e, d.Ino, fmt.Sprintf("f%03d", i), data)
			}
			b.StartTimer()
		}
		dir, name := dirs[n/perDir], fmt.Sprintf("f%03d", n%perDir)
		a, err := env.e.LookupRef(ctx, dir, name)
		if err != nil {
			b.Fatal(err)
		}
		if err := env.e.Unlink(ctx, dir, name); err != nil {
			b.Fatal(err)
		}
		env.e.Forget(a.Ino)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "files/s")
}

// benchDir makes a directory of n empty files named file-00000000 ... in the bucket.
func benchDir(b *testing.B, env *testEnv, n int) Ino {
	b.Helper()
	ctx := context.Background()
	dir, err := env.e.Mkdir(ctx, env.bucket, "big", Owner{Mode: 0o755})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := env.e.Mknod(ctx, dir.Ino, fmt.Sprintf("file-%08d", i), Owner{Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
	}
	return dir.Ino
}

// BenchmarkEngineDir10000Entries looks names up in, and lists, a directory of 10,000
// files: Lookup of a name that exists (stat, open), of one that does not (the kernel's
// lookup before every create), and a whole ReadDir (ls, as FUSE reads a directory).
func BenchmarkEngineDir10000Entries(b *testing.B) {
	const entries = 10_000
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	dir := benchDir(b, env, entries)
	b.Run("Lookup-hit", func(b *testing.B) {
		r := benchRandom()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := env.e.Lookup(ctx, dir, fmt.Sprintf("file-%08d", r.IntN(entries))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Lookup-miss", func(b *testing.B) {
		r := benchRandom()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := env.e.Lookup(ctx, dir, fmt.Sprintf("new-%08d", r.IntN(entries))); err == nil {
				b.Fatal("found a name never created")
			}
		}
	})
	// Lookup holds nsMu across its read transaction: with -cpu 2 and more this shows
	// whether lookups (parallel stat, find) scale.
	b.Run("Lookup-hit-parallel", func(b *testing.B) {
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := mrand.New(mrand.NewPCG(uint64(next.Add(1)), 2))
			for pb.Next() {
				if _, err := env.e.Lookup(ctx, dir, fmt.Sprintf("file-%08d", r.IntN(entries))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("ReadDir-all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ents, err := env.e.ReadDir(ctx, dir, "", 0)
			if err != nil {
				b.Fatal(err)
			}
			if len(ents) != entries {
				b.Fatalf("%d entries, want %d", len(ents), entries)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/entries, "ns/entry")
	})
}

var objectSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}}

// BenchmarkEnginePutObject stores a new object per op through the engine's S3 API (what
// the S3 frontend calls after SigV4): key sealing, the orphan inode, chunks encrypted and
// stored, MD5, and the link transaction.
func BenchmarkEnginePutObject(b *testing.B) {
	for _, bc := range objectSizes {
		b.Run(bc.name, func(b *testing.B) {
			env := newTestEnv(b, 0, 0)
			ctx := context.Background()
			data := make([]byte, bc.size)
			rand.Read(data)
			body := bytes.NewReader(data)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				body.Reset(data)
				if _, err := env.e.PutObject(ctx, "bucket", fmt.Sprintf("dir/obj-%08d", n), body, PutOptions{}); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}

// benchGetObject reads a whole object as the S3 frontend's GET does: open, read in 256 KiB
// blocks, close.
func benchGetObject(e *Engine, key string, buf []byte) (int64, error) {
	ctx := context.Background()
	r, _, err := e.OpenObject(ctx, "bucket", key, GetOptions{})
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.Close()
			return total, err
		}
	}
	return total, r.Close()
}

// BenchmarkEngineGetObject reads a stored object whole per op through the engine's S3 API.
func BenchmarkEngineGetObject(b *testing.B) {
	for _, bc := range objectSizes {
		b.Run(bc.name, func(b *testing.B) {
			env := newTestEnv(b, 0, 0)
			ctx := context.Background()
			data := make([]byte, bc.size)
			rand.Read(data)
			if _, err := env.e.PutObject(ctx, "bucket", "dir/obj", bytes.NewReader(data), PutOptions{}); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				n, err := benchGetObject(env.e, "dir/obj", buf)
				if err != nil || n != int64(bc.size) {
					b.Fatalf("read %d bytes of %d: %v", n, bc.size, err)
				}
			}
		})
	}
}

// BenchmarkEngineParallelSequentialWrite128KiB has every goroutine write its own file
// sequentially in 128 KiB writes (FUSE's usual write size): the files share nothing but
// the engine, so a throughput that does not grow with -cpu shows lock contention (nsMu,
// the Badger commit path, the version sequence). Try -cpu 1,2,4.
func BenchmarkEngineParallelSequentialWrite128KiB(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	var next atomic.Int64
	buf := make([]byte, 128<<10)
	rand.Read(buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		_, h, err := env.e.Create(ctx, env.bucket, fmt.Sprintf("seq-%d", next.Add(1)), Owner{Mode: 0o644}, true)
		if err != nil {
			b.Error(err)
			return
		}
		var off int64
		for pb.Next() {
			if _, err := h.WriteAt(ctx, buf, off); err != nil {
				b.Error(err)
				break
			}
			off += int64(len(buf))
		}
		if err := h.Release(ctx); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkEngineParallelSmallFileCreate4KiB is BenchmarkEngineSmallFileCreate/4KiB from
// several goroutines into one directory (parallel untar, rsync): every create takes
// nsMu and commits a transaction on the same parent inode.
func BenchmarkEngineParallelSmallFileCreate4KiB(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	dir, err := env.e.Mkdir(ctx, env.bucket, "dir", Owner{Mode: 0o755})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4<<10)
	rand.Read(data)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, h, err := env.e.Create(ctx, dir.Ino, fmt.Sprintf("file-%08d", next.Add(1)), Owner{Mode: 0o644}, true)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := h.WriteAt(ctx, data, 0); err != nil {
				b.Error(err)
			}
			if err := h.Release(ctx); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(next.Load())/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkEngineParallelPutObject4KiB is BenchmarkEnginePutObject/4KiB from several
// goroutines (concurrent S3 clients): linkObject holds nsMu across its transaction.
func BenchmarkEngineParallelPutObject4KiB(b *testing.B) {
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	data := make([]byte, 4<<10)
	rand.Read(data)
	var next atomic.Int64
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := bytes.NewReader(data)
		for pb.Next() {
			body.Reset(data)
			if _, err := env.e.PutObject(ctx, "bucket", fmt.Sprintf("dir/obj-%08d", next.Add(1)), body, PutOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEngineParallelRandomRead4KiB reads 4 KiB at random offsets of stored 64 MiB
// files from several goroutines: one file shared by all (its openFile mutex is held
// across the object read and the decryption), or a file per goroutine.
func BenchmarkEngineParallelRandomRead4KiB(b *testing.B) {
	const fileSize = 64 << 20
	env := newTestEnv(b, 0, 0)
	ctx := context.Background()
	const files = 8
	handles := make([]*Handle, files)
	for i := range handles {
		handles[i] = benchFillFile(b, env, fmt.Sprintf("f%d", i), fileSize)
	}
	for _, bc := range []struct {
		name     string
		ownFiles bool
	}{{"same-file", false}, {"file-per-goroutine", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var next atomic.Int64
			b.SetBytes(4 << 10)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				g := next.Add(1)
				h := handles[0]
				if bc.ownFiles {
					h = handles[int(g)%files]
				}
				r := mrand.New(mrand.NewPCG(uint64(g), 2))
				p := make([]byte, 4<<10)
				for pb.Next() {
					off := r.Int64N(fileSize/int64(len(p))) * int64(len(p))
					if _, err := h.ReadAt(ctx, p, off); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	for _, h := range handles {
		benchRelease(b, h)
	}
}

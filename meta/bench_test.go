package meta

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"syscall"
	"testing"
)

// Benchmarks of the Badger store as the engine uses it (encrypted, SyncWrites off, the
// options of Open), in b.TempDir(). Run with -benchmem.

// benchDB opens a fresh store in a temporary directory, closed at the end; it returns
// the directory and key too, for benchReopen.
func benchDB(b *testing.B) (db *DB, dir string, key []byte) {
	b.Helper()
	return benchDBWith(b, Options{})
}

func benchDBWith(b *testing.B, opts Options) (db *DB, dir string, key []byte) {
	b.Helper()
	dir = b.TempDir()
	key = make([]byte, 32)
	rand.Read(key)
	db, err := Open(dir, key, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, dir, key
}

// benchReopen closes db and opens it again: what was written lies in Badger's tables on
// disk (flushed at close), not in the memtable, as for a file written long ago.
func benchReopen(b *testing.B, db *DB, dir string, key []byte) *DB {
	b.Helper()
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := Open(dir, key, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchInode(ino, parent Ino) Inode {
	return Inode{Ino: ino, Mode: syscall.S_IFREG | 0o644, Uid: 1000, Gid: 1000, Nlink: 1,
		Atime: 1, Mtime: 1, Ctime: 1, Gen: 1, Parent: parent, Bucket: parent,
		FileID: [16]byte{1, 2, 3}, ChunkSize: 1 << 20}
}

func benchChunkRecord(idx uint64) Chunk {
	return Chunk{Index: idx, Object: [16]byte{byte(idx), byte(idx >> 8), byte(idx >> 16), 9}, Version: idx + 1,
		PlainLen: 1 << 20, StoredLen: 1<<20 + 16*32}
}

// BenchmarkMetaCommitCreate commits what creating a file commits: a new inode (its number
// from the sequence), its sealed key, its entry, and the parent directory's inode
// (mtime), in one transaction.
func BenchmarkMetaCommitCreate(b *testing.B) { benchCommitCreate(b, Options{}) }

// BenchmarkMetaCommitCreateGuarded is BenchmarkMetaCommitCreate with the space guard on
// (a statfs before each commit), as ssefs opens the store; its floor is never reached.
func BenchmarkMetaCommitCreateGuarded(b *testing.B) { benchCommitCreate(b, Options{MinFree: 1}) }

func benchCommitCreate(b *testing.B, opts Options) {
	db, _, _ := benchDBWith(b, opts)
	const dir = Ino(100)
	parent := Inode{Ino: dir, Mode: syscall.S_IFDIR | 0o755, Nlink: 2, Parent: RootIno, Bucket: dir}
	if err := db.Update(func(tx *Tx) error { return tx.PutInode(&parent) }); err != nil {
		b.Fatal(err)
	}
	sealed := make([]byte, 180) // about the size of a marshalled keys.SealedKey
	rand.Read(sealed)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		ino, err := db.NextIno()
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("file-%08d", n)
		n++
		err = db.Update(func(tx *Tx) error {
			p, err := tx.Inode(dir)
			if err != nil {
				return err
			}
			if _, err := tx.Lookup(dir, name); err == nil {
				return fmt.Errorf("%q exists", name)
			}
			in := benchInode(ino, dir)
			if err := tx.PutInode(&in); err != nil {
				return err
			}
			if err := tx.PutSealedKey(ino, sealed); err != nil {
				return err
			}
			if err := tx.PutEntry(dir, Entry{Name: name, Ino: ino, Mode: in.Mode}); err != nil {
				return err
			}
			p.Mtime++
			return tx.PutInode(&p)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetaCommitChunks commits N new chunk records and the file's inode in one
// transaction, as a flush of N dirty chunks does (each replaced record read first).
func BenchmarkMetaCommitChunks(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("%d-chunks", n), func(b *testing.B) {
			db, _, _ := benchDB(b)
			const ino = Ino(100)
			in := benchInode(ino, RootIno)
			b.ReportAllocs()
			var next uint64
			for b.Loop() {
				err := db.Update(func(tx *Tx) error {
					for i := range uint64(n) {
						c := benchChunkRecord(next + i)
						if _, err := tx.Chunk(ino, c.Index); err == nil {
							return fmt.Errorf("chunk %d exists", c.Index)
						}
						if err := tx.PutChunk(ino, c); err != nil {
							return err
						}
					}
					in.Size = (next + uint64(n)) << 20
					return tx.PutInode(&in)
				})
				if err != nil {
					b.Fatal(err)
				}
				next += uint64(n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/chunk")
		})
	}
}

// BenchmarkMetaChunkLookup100000 looks one chunk record up in a file of 100,000 chunks
// (100 GiB at 1 MiB chunks), from Badger's on-disk tables: one read transaction per
// lookup (as openFile.chunk does for every chunk not yet cached), several lookups in one
// transaction, and a miss (a hole).
func BenchmarkMetaChunkLookup100000(b *testing.B) {
	const chunks = 100_000
	db, dir, key := benchDB(b)
	const ino = Ino(100)
	for start := 0; start < chunks; start += 5000 {
		err := db.Update(func(tx *Tx) error {
			for i := start; i < start+5000; i++ {
				if err := tx.PutChunk(ino, benchChunkRecord(uint64(i))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	db = benchReopen(b, db, dir, key)
	r := mrand.New(mrand.NewPCG(1, 2))
	b.Run("View-per-lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			idx := r.Uint64N(chunks)
			err := db.View(func(tx *Tx) error {
				c, err := tx.Chunk(ino, idx)
				if err == nil && c.Index != idx {
					err = fmt.Errorf("chunk %d for %d", c.Index, idx)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("100-lookups-per-View", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := db.View(func(tx *Tx) error {
				for range 100 {
					if _, err := tx.Chunk(ino, r.Uint64N(chunks)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/lookup")
	})
	b.Run("View-per-lookup-miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			idx := chunks + r.Uint64N(chunks)
			err := db.View(func(tx *Tx) error {
				_, err := tx.Chunk(ino, idx)
				return err
			})
			if !isNotFound(err) {
				b.Fatalf("chunk %d: %v, want not found", idx, err)
			}
		}
	})
}

// BenchmarkMetaEntries10000 iterates a directory of 10,000 entries in one read
// transaction (readdir, S3 listings), from Badger's on-disk tables.
func BenchmarkMetaEntries10000(b *testing.B) {
	const entries = 10_000
	db, dir, key := benchDB(b)
	const parent = Ino(100)
	err := db.Update(func(tx *Tx) error {
		for i := range entries {
			if err := tx.PutEntry(parent, Entry{Name: fmt.Sprintf("file-%08d", i), Ino: Ino(1000 + i), Mode: syscall.S_IFREG}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	db = benchReopen(b, db, dir, key)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := db.View(func(tx *Tx) error {
			return tx.Entries(parent, "", func(Entry) bool { n++; return true })
		})
		if err != nil || n != entries {
			b.Fatalf("%d entries, want %d: %v", n, entries, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/entries, "ns/entry")
}

// BenchmarkMetaCommitUnlink commits what unlinking a small file commits: its entry gone,
// the directory's inode (mtime), and the inode with its sealed key and its one (inline)
// chunk record deleted, in one transaction. The files were written before a reopen, so
// their records lie in Badger's tables, as after a remount.
func BenchmarkMetaCommitUnlink(b *testing.B) {
	db, dirPath, key := benchDB(b)
	const dir = Ino(100)
	parent := Inode{Ino: dir, Mode: syscall.S_IFDIR | 0o755, Nlink: 2, Parent: RootIno, Bucket: dir}
	sealed := make([]byte, 180)
	rand.Read(sealed)
	inline := make([]byte, 4<<10+32)
	rand.Read(inline)
	first := Ino(1000)
	err := db.Update(func(tx *Tx) error { return tx.PutInode(&parent) })
	for i := 0; err == nil && i < b.N; i += 500 {
		err = db.Update(func(tx *Tx) error {
			for k := i; k < min(i+500, b.N); k++ {
				ino := first + Ino(k)
				in := benchInode(ino, dir)
				in.Size = 4 << 10
				if err := tx.PutInode(&in); err != nil {
					return err
				}
				if err := tx.PutSealedKey(ino, sealed); err != nil {
					return err
				}
				c := benchChunkRecord(0)
				c.PlainLen, c.StoredLen, c.Inline = 4<<10, uint32(len(inline)), inline
				if err := tx.PutChunk(ino, c); err != nil {
					return err
				}
				if err := tx.PutEntry(dir, Entry{Name: fmt.Sprintf("f%08d", k), Ino: ino, Mode: in.Mode}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		b.Fatal(err)
	}
	db = benchReopen(b, db, dirPath, key)
	b.ReportAllocs()
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		name := fmt.Sprintf("f%08d", k)
		err := db.Update(func(tx *Tx) error {
			p, err := tx.Inode(dir)
			if err != nil {
				return err
			}
			e, err := tx.Lookup(dir, name)
			if err != nil {
				return err
			}
			if _, err := tx.Inode(e.Ino); err != nil {
				return err
			}
			if err := tx.DeleteEntry(dir, name); err != nil {
				return err
			}
			p.Mtime++
			if err := tx.PutInode(&p); err != nil {
				return err
			}
			_, err = tx.DeleteInode(e.Ino)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

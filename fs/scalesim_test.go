package fs

// The scale-out simulation behind docs/scale-out.md: it runs the engine's real operation
// sequences (what one FUSE request or one S3 call makes the engine do) against the real
// metadata store and counts what each costs in metadata round trips, as if Badger were a
// remote transactional key-value store (TiKV, FoundationDB), then works out what those
// round trips would cost at a given network round-trip time.
//
// What is measured and what is modelled:
//   - measured, exactly: point reads that reach the store (Badger's get_num_user: a read
//     of a key the transaction itself wrote is answered from its write buffer, as a
//     TiKV or FoundationDB client does too), range-scan batches (iterator_num_user: the
//     meta package reads a range 256 records at a time, one iterator each), commits of
//     transactions that wrote something and the keys and bytes they wrote (Badger's
//     commit stream, Subscribe), object store and KMS requests (counting wrappers), and
//     the local time per operation;
//   - modelled: the latency at a round-trip time R, as the local time plus R times the
//     round trips: one to get a read timestamp per operation (TiKV's TSO, FoundationDB's
//     read version; one more for each further write transaction of the operation), one
//     per point read and per scan batch (the engine reads one key after another), and one
//     per commit (one-phase or async commit; a classic two-phase commit costs a second).
//     Nothing sleeps: meta has no hook to inject latency per request.
//
// Run it with -v (SSEFS_SCALESIM_OUT=FILE also writes the tables to FILE):
//
//	go test -count=1 -v -run TestScaleOutSimulation ./fs
//
// It checks the properties the design in the doc relies on (a namespace change is one
// commit, reads write nothing, a 1 MiB write stores one object and commits at most once)
// and that several engines sharing one store ("hosts") create every file exactly once
// under conflicts.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"expvar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"

	"github.com/ssefs/ssefs/keys"
	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// simRTTs are the network round-trip times the tables are worked out for: same rack, same
// zone, neighbouring zones.
var simRTTs = []time.Duration{100 * time.Microsecond, time.Millisecond, 2 * time.Millisecond}

// badgerOf returns the Badger database under a meta.DB. meta offers no hook for counting,
// and the import rules keep engine code out of meta's own tests, so the simulation reads
// the unexported handle. It only subscribes to the commit stream; its sentinel keys (prefix
// simSentinel, which meta never uses) go through meta.DB.Mark.
func badgerOf(t testing.TB, db *meta.DB) *badger.DB {
	f := reflect.ValueOf(db).Elem().FieldByName("bdb")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*badger.DB]() {
		t.Fatal("meta.DB no longer keeps its *badger.DB in field bdb: update badgerOf")
	}
	return *(**badger.DB)(unsafe.Pointer(f.UnsafeAddr()))
}

var simSentinel = []byte{0xf0, 's', 'i', 'm'}

// kvMeter counts what reaches the metadata store.
type kvMeter struct {
	t   testing.TB
	db  *meta.DB
	bdb *badger.DB

	mu      sync.Mutex
	commits map[uint64]bool // commit versions seen
	keys    int64           // keys written (set or deleted)
	bytes   int64           // their key and value bytes
	seen    uint64          // last sentinel seen
	cond    *sync.Cond
	next    uint64 // next sentinel to write
	cancel  context.CancelFunc
	done    chan struct{}
}

func newKVMeter(t testing.TB, db *meta.DB) *kvMeter {
	m := &kvMeter{t: t, db: db, bdb: badgerOf(t, db), commits: map[uint64]bool{}, done: make(chan struct{})}
	m.cond = sync.NewCond(&m.mu)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		err := m.bdb.Subscribe(ctx, m.observe, []pb.Match{{Prefix: nil}})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("badger subscribe: %v", err)
		}
	}()
	// The subscription starts asynchronously: sentinels until one comes through.
	for {
		n := m.writeSentinel()
		if m.waitSentinel(n, 50*time.Millisecond) {
			break
		}
	}
	t.Cleanup(m.stop)
	return m
}

func (m *kvMeter) stop() {
	m.cancel()
	<-m.done
}

func (m *kvMeter) observe(kvs *badger.KVList) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, kv := range kvs.Kv {
		switch {
		case bytes.HasPrefix(kv.Key, []byte("!badger!")): // Badger's own transaction markers
		case bytes.HasPrefix(kv.Key, simSentinel):
			var n uint64
			fmt.Sscan(string(kv.Value), &n)
			m.seen = max(m.seen, n)
		default:
			m.commits[kv.Version] = true
			m.keys++
			m.bytes += int64(len(kv.Key) + len(kv.Value))
		}
	}
	m.cond.Broadcast()
	return nil
}

func (m *kvMeter) writeSentinel() uint64 {
	m.mu.Lock()
	m.next++
	n := m.next
	m.mu.Unlock()
	err := m.db.Mark(simSentinel, []byte(fmt.Sprint(n)))
	if err != nil {
		m.t.Fatalf("sentinel commit: %v", err)
	}
	return n
}

// waitSentinel waits until sentinel n came through the commit stream, which delivers
// commits in order: everything committed before it has been counted.
func (m *kvMeter) waitSentinel(n uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer timer.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.seen < n {
		if time.Now().After(deadline) {
			return false
		}
		m.cond.Wait()
	}
	return true
}

// kvCounts is what a stretch of work cost the metadata store.
type kvCounts struct {
	gets, scans, commits, keys, bytes int64
}

func expInt(t testing.TB, name string) int64 {
	v, ok := expvar.Get(name).(*expvar.Int)
	if !ok {
		t.Fatalf("badger metric %s is missing: are Badger's metrics off?", name)
	}
	return v.Value()
}

// snapshot returns the counts so far, once every commit before the call has been seen.
func (m *kvMeter) snapshot() kvCounts {
	if n := m.writeSentinel(); !m.waitSentinel(n, 30*time.Second) {
		m.t.Fatal("the commit stream did not deliver a sentinel within 30 s")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return kvCounts{
		gets:    expInt(m.t, "badger_get_num_user"),
		scans:   expInt(m.t, "badger_iterator_num_user"),
		commits: int64(len(m.commits)),
		keys:    m.keys,
		bytes:   m.bytes,
	}
}

func (a kvCounts) minus(b kvCounts) kvCounts {
	return kvCounts{a.gets - b.gets, a.scans - b.scans, a.commits - b.commits, a.keys - b.keys, a.bytes - b.bytes}
}

// simStore counts object store requests.
type simStore struct {
	objstore.Store
	puts, gets, dels, putBytes, getBytes atomic.Int64
}

func (s *simStore) Put(ctx context.Context, id objstore.ID, data []byte) error {
	s.puts.Add(1)
	s.putBytes.Add(int64(len(data)))
	return s.Store.Put(ctx, id, data)
}

func (s *simStore) ReadAt(ctx context.Context, id objstore.ID, p []byte, off int64) (int, error) {
	s.gets.Add(1)
	n, err := s.Store.ReadAt(ctx, id, p, off)
	s.getBytes.Add(int64(n))
	return n, err
}

func (s *simStore) Delete(ctx context.Context, id objstore.ID) error {
	s.dels.Add(1)
	return s.Store.Delete(ctx, id)
}

// simKMS counts KMS requests (the sealer's key cache is in front of it).
type simKMS struct {
	keys.KMS
	calls atomic.Int64
}

func (k *simKMS) GenerateKey(ctx context.Context, name string, kctx keys.Context) (keys.DEK, error) {
	k.calls.Add(1)
	return k.KMS.GenerateKey(ctx, name, kctx)
}

func (k *simKMS) Decrypt(ctx context.Context, name string, ct []byte, kctx keys.Context) ([]byte, error) {
	k.calls.Add(1)
	return k.KMS.Decrypt(ctx, name, ct, kctx)
}

// simOp is one kind of request, run n times: setup (not counted) prepares all n, run
// does request i, after (counted, not timed) finishes what the request leaves to
// background work, e.g. the sync that deletes replaced objects.
type simOp struct {
	name  string
	n     int
	per   string // what one request is, for the table
	setup func(t *testing.T)
	run   func(t *testing.T, i int)
	after func(t *testing.T)
}

// simResult is an op's cost per request.
type simResult struct {
	op                                 simOp
	gets, scans, commits, keys, bytes  float64
	objPuts, objGets, objDels, kmsCall float64
	objPutBytes, objGetBytes           float64
	local                              time.Duration
}

// roundTrips is the model of the header: a read timestamp per request (and per further
// write transaction), one per point read, scan batch and commit.
func (r simResult) roundTrips() float64 {
	if r.gets+r.scans+r.commits == 0 {
		return 0
	}
	return 1 + max(0, r.commits-1) + r.gets + r.scans + r.commits
}

func (r simResult) latency(rtt time.Duration) time.Duration {
	return r.local + time.Duration(r.roundTrips()*float64(rtt))
}

type simEnv struct {
	t     *testing.T
	dir   string
	db    *meta.DB
	store *simStore
	kms   *simKMS
	e     *Engine
	kv    *kvMeter
}

func newSimEnv(t *testing.T) *simEnv {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	db, err := meta.Open(filepath.Join(dir, "meta"), key, meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	local, err := objstore.NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := keys.GenerateMasterKey("sim-key")
	if err != nil {
		t.Fatal(err)
	}
	env := &simEnv{t: t, dir: dir, db: db, store: &simStore{Store: local}, kms: &simKMS{KMS: master}}
	// The mount's default key cache TTL: a warm cache is what a running host has.
	sealer := keys.NewSealer(env.kms, master.Name(), 5*time.Minute)
	if env.e, err = New(Config{Meta: db, Store: env.store, Sealer: sealer}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.e.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
		env.kv.stop()
		db.Close()
		local.Close()
	})
	env.kv = newKVMeter(t, db)
	return env
}

// measure runs op and returns its cost per request.
func (env *simEnv) measure(t *testing.T, op simOp) simResult {
	if op.setup != nil {
		op.setup(t)
	}
	st := env.store
	p0, g0, d0, pb0, gb0, k0 := st.puts.Load(), st.gets.Load(), st.dels.Load(), st.putBytes.Load(), st.getBytes.Load(), env.kms.calls.Load()
	kv0 := env.kv.snapshot()
	start := time.Now()
	for i := range op.n {
		op.run(t, i)
	}
	elapsed := time.Since(start)
	if op.after != nil {
		op.after(t)
	}
	kv := env.kv.snapshot().minus(kv0)
	n := float64(op.n)
	return simResult{
		op: op, gets: float64(kv.gets) / n, scans: float64(kv.scans) / n, commits: float64(kv.commits) / n,
		keys: float64(kv.keys) / n, bytes: float64(kv.bytes) / n,
		objPuts: float64(st.puts.Load()-p0) / n, objGets: float64(st.gets.Load()-g0) / n,
		objDels: float64(st.dels.Load()-d0) / n, objPutBytes: float64(st.putBytes.Load()-pb0) / n,
		objGetBytes: float64(st.getBytes.Load()-gb0) / n, kmsCall: float64(env.kms.calls.Load()-k0) / n,
		local: elapsed / time.Duration(op.n),
	}
}

// simOK(f())(t) is f's value, or the test's end when f failed.
func simOK[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func simCheck(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const simMiB = 1 << 20

func TestScaleOutSimulation(t *testing.T) {
	env := newSimEnv(t)
	e, ctx := env.e, context.Background()
	o := Owner{Mode: 0o644}
	bucket := simOK(e.Mkdir(ctx, RootIno, "sim", Owner{Mode: 0o755}))(t).Ino
	data := make([]byte, 16*simMiB)
	rand.Read(data)

	// Directories each op works in, and the files it works on.
	mkdir := func(name string) Ino { return simOK(e.Mkdir(ctx, bucket, name, Owner{Mode: 0o755}))(t).Ino }
	writeFile := func(dir Ino, name string, size int) Ino {
		a, h, err := e.Create(ctx, dir, name, o, true)
		simCheck(t, err)
		for off := 0; off < size; off += simMiB {
			simOK(h.WriteAt(ctx, data[off%len(data):off%len(data)+min(simMiB, size-off)], int64(off)))(t)
		}
		simCheck(t, h.Flush(ctx))
		simCheck(t, h.Release(ctx))
		return a.Ino
	}
	name := func(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

	var (
		nsDir, smallDir, bigDir Ino
		inos                    []Ino
		handles                 []*Handle
	)
	const perFile = 16 // MiB written or read per file in the 1 MiB write and read ops
	readBuf := make([]byte, simMiB)
	ops := []simOp{
		{name: "LOOKUP (miss)", n: 1000, per: "a name that is not there (before a create)",
			setup: func(t *testing.T) { nsDir = mkdir("ns") },
			run: func(t *testing.T, i int) {
				if _, err := e.Lookup(ctx, nsDir, name("f", i)); !errors.Is(err, ErrNotExist) {
					t.Fatalf("lookup of a missing name: %v", err)
				}
			}},
		{name: "CREATE", n: 1000, per: "O_CREAT|O_EXCL of a new file",
			run: func(t *testing.T, i int) {
				_, h, err := e.Create(ctx, nsDir, name("f", i), o, true)
				simCheck(t, err)
				handles = append(handles, h)
			}},
		{name: "FLUSH+RELEASE (empty)", n: 1000, per: "close(2) of the new file, nothing written",
			run: func(t *testing.T, i int) {
				simCheck(t, handles[i].Flush(ctx))
				simCheck(t, handles[i].Release(ctx))
			}},
		{name: "LOOKUP (hit)", n: 1000, per: "a name and its inode",
			run: func(t *testing.T, i int) {
				a := simOK(e.LookupRef(ctx, nsDir, name("f", i)))(t)
				inos = append(inos, a.Ino)
			},
			after: func(t *testing.T) {
				for _, ino := range inos {
					e.Forget(ino) // FUSE FORGET: memory only
				}
			}},
		{name: "GETATTR", n: 1000, per: "a closed file's inode",
			run: func(t *testing.T, i int) { simOK(e.GetAttr(ctx, inos[i]))(t) }},
		{name: "SETATTR (chmod)", n: 1000, per: "mode of a closed file",
			run: func(t *testing.T, i int) {
				m := uint32(0o600)
				simOK(e.SetAttr(ctx, inos[i], SetAttrIn{Mode: &m}))(t)
			}},
		{name: "MKDIR", n: 1000, per: "a new directory",
			run: func(t *testing.T, i int) { simOK(e.Mkdir(ctx, nsDir, name("d", i), Owner{Mode: 0o755}))(t) }},
		{name: "RENAME", n: 1000, per: "to a new name in the same directory",
			run: func(t *testing.T, i int) { simCheck(t, e.Rename(ctx, nsDir, name("f", i), nsDir, name("g", i), 0)) }},
		{name: "RENAME (replace)", n: 500, per: "over an existing empty file, which goes",
			run: func(t *testing.T, i int) {
				simCheck(t, e.Rename(ctx, nsDir, name("g", 2*i), nsDir, name("g", 2*i+1), 0))
			}},
		{name: "UNLINK (empty)", n: 500, per: "an empty file",
			run: func(t *testing.T, i int) { simCheck(t, e.Unlink(ctx, nsDir, name("g", 2*i+1))) }},
		{name: "READDIR (100 entries)", n: 200, per: "one page of 100 names",
			setup: func(t *testing.T) {
				smallDir = mkdir("small")
				for i := range 100 {
					writeFile(smallDir, name("s", i), 0)
				}
			},
			run: func(t *testing.T, i int) {
				if ents := simOK(e.ReadDir(ctx, smallDir, "", 0))(t); len(ents) != 100 {
					t.Fatalf("readdir: %d entries, want 100", len(ents))
				}
			}},
		{name: "READDIRPLUS (100 entries)", n: 50, per: "names and attributes (ls -l): READDIR + 100 LOOKUPs",
			run: func(t *testing.T, i int) {
				ents := simOK(e.ReadDir(ctx, smallDir, "", 0))(t)
				for _, ent := range ents {
					simOK(e.LookupRef(ctx, smallDir, ent.Name))(t)
					e.Forget(ent.Ino)
				}
			}},
		{name: "WRITE 1 MiB", n: 16 * perFile, per: "sequential, 1 MiB requests; with its share of the close",
			setup: func(t *testing.T) {
				bigDir = mkdir("big")
				handles = handles[:0]
				for i := range 16 {
					_, h, err := e.Create(ctx, bigDir, name("b", i), o, true)
					simCheck(t, err)
					handles = append(handles, h)
				}
			},
			run: func(t *testing.T, i int) {
				h, off := handles[i/perFile], i%perFile*simMiB
				simOK(h.WriteAt(ctx, data[off:off+simMiB], int64(off)))(t)
				if i%perFile == perFile-1 {
					simCheck(t, h.Flush(ctx))
					simCheck(t, h.Release(ctx))
				}
			}},
		{name: "OPEN", n: 16, per: "a closed file, looked up before (inode, sealed key, unseal)",
			setup: func(t *testing.T) {
				inos = inos[:0]
				for i := range 16 {
					inos = append(inos, simOK(e.Lookup(ctx, bigDir, name("b", i)))(t).Ino)
				}
			},
			run: func(t *testing.T, i int) { handles[i] = simOK(e.Open(ctx, inos[i]))(t) }},
		{name: "READ 1 MiB", n: 16 * perFile, per: "sequential, 1 MiB requests, nothing cached",
			run: func(t *testing.T, i int) {
				h, off := handles[i/perFile], i%perFile*simMiB
				if n := simOK(h.ReadAt(ctx, readBuf, int64(off)))(t); !bytes.Equal(readBuf[:n], data[off:off+simMiB]) {
					t.Fatalf("read of file %d at %d: wrong content", i/perFile, off)
				}
			},
			after: func(t *testing.T) {
				for _, h := range handles[:16] {
					simCheck(t, h.Release(ctx))
				}
			}},
		{name: "UNLINK (16 MiB)", n: 16, per: "a closed 16 MiB file; its objects go at the next sync",
			run:   func(t *testing.T, i int) { simCheck(t, e.Unlink(ctx, bigDir, name("b", i))) },
			after: func(t *testing.T) { simCheck(t, e.SyncAll(ctx)) }},
		{name: "PutObject 4 KiB", n: 500, per: "a new key, its directories there",
			setup: func(t *testing.T) {
				simOK(e.PutObject(ctx, "sim", "p/seed", bytes.NewReader(nil), PutOptions{}))(t)
			},
			run: func(t *testing.T, i int) {
				simOK(e.PutObject(ctx, "sim", name("p/s", i), bytes.NewReader(data[:4096]), PutOptions{}))(t)
			}},
		{name: "PutObject 1 MiB", n: 100, per: "a new key, its directories there",
			run: func(t *testing.T, i int) {
				simOK(e.PutObject(ctx, "sim", name("p/o", i), bytes.NewReader(data[:simMiB]), PutOptions{}))(t)
			}},
		{name: "HeadObject", n: 1000, per: "StatObject of a 1 MiB object",
			run: func(t *testing.T, i int) {
				if info := simOK(e.StatObject(ctx, "sim", name("p/o", i%100), GetOptions{}))(t); info.Size != simMiB {
					t.Fatalf("head: size %d", info.Size)
				}
			}},
		{name: "GetObject 1 MiB", n: 100, per: "open, read 256 KiB then the rest (as the S3 frontend does), close",
			run: func(t *testing.T, i int) {
				r, info, err := e.OpenObject(ctx, "sim", name("p/o", i), GetOptions{})
				simCheck(t, err)
				var got bytes.Buffer
				sr := io.NewSectionReader(r, 0, info.Size)
				n := simOK(io.ReadFull(sr, readBuf[:256<<10]))(t)
				got.Write(readBuf[:n])
				// Through a plain Writer: bytes.Buffer's ReadFrom would read in small pieces.
				simOK(io.CopyBuffer(struct{ io.Writer }{&got}, sr, readBuf))(t)
				simCheck(t, r.Close())
				if !bytes.Equal(got.Bytes(), data[:simMiB]) {
					t.Fatalf("get %s: wrong content", name("p/o", i))
				}
			}},
		{name: "ListObjects (100 keys)", n: 200, per: "one page of a prefix holding 100 keys",
			setup: func(t *testing.T) {
				for i := range 100 {
					simOK(e.PutObject(ctx, "sim", name("l/k", i), bytes.NewReader(data[:100]), PutOptions{}))(t)
				}
			},
			run: func(t *testing.T, i int) {
				res := simOK(e.ListObjects(ctx, "sim", ListOptions{Prefix: "l/", MaxKeys: 1000}))(t)
				if len(res.Objects) != 100 {
					t.Fatalf("list: %d keys, want 100", len(res.Objects))
				}
			}},
		{name: "DeleteObject 1 MiB", n: 100, per: "a 1 MiB object; its object goes at the next sync",
			run:   func(t *testing.T, i int) { simCheck(t, e.DeleteObject(ctx, "sim", name("p/o", i))) },
			after: func(t *testing.T) { simCheck(t, e.SyncAll(ctx)) }},
	}

	var results []simResult
	for _, op := range ops {
		r := env.measure(t, op)
		results = append(results, r)
		t.Logf("%-26s gets %.2f scans %.2f commits %.2f keys %.1f bytes %.0f obj put/get/del %.2f/%.2f/%.2f kms %.3f local %v",
			op.name, r.gets, r.scans, r.commits, r.keys, r.bytes, r.objPuts, r.objGets, r.objDels, r.kmsCall, r.local)
	}

	// What the design leans on: reads write nothing; a namespace change is one
	// transaction; a 1 MiB write stores one object and commits its record once; a cold
	// 1 MiB read fetches one object range.
	byName := map[string]simResult{}
	for _, r := range results {
		byName[r.op.name] = r
	}
	for _, n := range []string{"LOOKUP (miss)", "LOOKUP (hit)", "GETATTR", "READDIR (100 entries)", "READDIRPLUS (100 entries)", "READ 1 MiB", "HeadObject", "GetObject 1 MiB", "ListObjects (100 keys)", "OPEN"} {
		if r := byName[n]; r.commits != 0 || r.keys != 0 {
			t.Errorf("%s wrote to the metadata store: %.2f commits, %.2f keys per request", n, r.commits, r.keys)
		}
	}
	for _, n := range []string{"CREATE", "MKDIR", "RENAME", "RENAME (replace)", "UNLINK (empty)", "SETATTR (chmod)", "UNLINK (16 MiB)"} {
		// NextIno renews its lease of 1,000 numbers in a commit of its own: allow for it.
		if r := byName[n]; r.commits < 1 || r.commits > 1.01 {
			t.Errorf("%s: %.3f commits per request, want 1 (one transaction per namespace change)", n, r.commits)
		}
	}
	// Finished chunks are committed together, at the next write or the close: at most
	// one commit per chunk, and one chunk record per MiB (plus the inode's share).
	if r := byName["WRITE 1 MiB"]; r.objPuts != 1 || r.commits > 1 || r.keys < 1 || r.keys > 2 {
		t.Errorf("WRITE 1 MiB: %.2f object PUTs, %.2f commits and %.2f keys written per MiB, want 1, at most 1 and 1-2",
			r.objPuts, r.commits, r.keys)
	}
	if r := byName["READ 1 MiB"]; r.objGets != 1 {
		t.Errorf("READ 1 MiB: %.2f object reads per MiB, want 1", r.objGets)
	}
	if r := byName["UNLINK (16 MiB)"]; r.objDels != 16 {
		t.Errorf("UNLINK (16 MiB): %.2f object deletes, want 16", r.objDels)
	}

	conflicts := simHosts(t)

	var b strings.Builder
	writeSimTables(&b, results, conflicts)
	t.Log("\n" + b.String())
	if out := os.Getenv("SSEFS_SCALESIM_OUT"); out != "" {
		simCheck(t, os.WriteFile(out, []byte(b.String()), 0o644))
	}
}

// hostsResult is what several engines ("hosts") sharing one metadata store cost when
// they create files at once.
type hostsResult struct {
	hosts, perHost        int
	shared                bool
	getsPerCreate         float64
	commitsPerCreate      float64
	extraAttemptsPerWrite float64 // update transactions run again after a conflict
	createsPerSec         float64
}

// simHosts runs several engines over one meta.DB, as several hosts over one distributed
// store would run, each creating files: all in one shared directory, then each in its
// own. Badger checks transactions optimistically, as FoundationDB does (a transaction
// whose reads were overwritten by a commit after its start fails and meta runs it
// again), so the extra point reads of the shared case count the retries.
func simHosts(t *testing.T) []hostsResult {
	var out []hostsResult
	for _, shared := range []bool{false, true} {
		env := newSimEnv(t)
		ctx := context.Background()
		const hosts, perHost = 4, 300
		bucket := simOK(env.e.Mkdir(ctx, RootIno, "hosts", Owner{Mode: 0o755}))(t).Ino
		engines := []*Engine{env.e}
		for range hosts - 1 {
			sealer := keys.NewSealer(env.kms, "sim-key", 5*time.Minute)
			e, err := New(Config{Meta: env.db, Store: env.store, Sealer: sealer})
			simCheck(t, err)
			t.Cleanup(func() { e.Close() })
			engines = append(engines, e)
		}
		dirs := make([]Ino, hosts)
		for h := range hosts {
			if shared {
				if h == 0 {
					dirs[0] = simOK(env.e.Mkdir(ctx, bucket, "shared", Owner{Mode: 0o755}))(t).Ino
				}
				dirs[h] = dirs[0]
			} else {
				dirs[h] = simOK(env.e.Mkdir(ctx, bucket, fmt.Sprintf("host%d", h), Owner{Mode: 0o755}))(t).Ino
			}
			// Warm each engine's bucket-name cache, as a running host has it.
			_, hd, err := engines[h].Create(ctx, dirs[h], fmt.Sprintf("warm-%d", h), Owner{Mode: 0o644}, true)
			simCheck(t, err)
			simCheck(t, hd.Release(ctx))
		}
		kv0 := env.kv.snapshot()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, hosts)
		for h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perHost {
					_, hd, err := engines[h].Create(ctx, dirs[h], fmt.Sprintf("h%d-%05d", h, i), Owner{Mode: 0o644}, true)
					if err == nil {
						err = hd.Release(ctx)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		for err := range errs {
			t.Fatalf("create on a host: %v", err)
		}
		kv := env.kv.snapshot().minus(kv0)
		// Every file is there exactly once, whichever host made it, and the shared
		// directory's link count and entries agree.
		for h := range hosts {
			if shared && h > 0 {
				break
			}
			ents := simOK(env.e.ReadDir(ctx, dirs[h], "", 0))(t)
			want := perHost + 1
			if shared {
				want = hosts * (perHost + 1)
			}
			if len(ents) != want {
				t.Fatalf("directory of host %d lists %d entries, want %d", h, len(ents), want)
			}
		}
		n := float64(hosts * perHost)
		// A create's update transaction reads the directory's inode and the name: two
		// point reads per attempt; the rest of its reads (parent, bucket config) are
		// outside it and not repeated. The unshared run has no conflicts to repeat.
		r := hostsResult{hosts: hosts, perHost: perHost, shared: shared,
			getsPerCreate: float64(kv.gets) / n, commitsPerCreate: float64(kv.commits) / n,
			createsPerSec: n / elapsed.Seconds()}
		out = append(out, r)
	}
	base := out[0].getsPerCreate
	for i := range out {
		out[i].extraAttemptsPerWrite = max(0, out[i].getsPerCreate-base) / 2
	}
	for _, r := range out {
		if r.commitsPerCreate < 1 || r.commitsPerCreate > 1.01 {
			t.Errorf("%d hosts creating (shared directory: %v): %.3f commits per create, want 1", r.hosts, r.shared, r.commitsPerCreate)
		}
	}
	return out
}

func writeSimTables(b *strings.Builder, results []simResult, hosts []hostsResult) {
	fmt.Fprintf(b, "Per request: metadata point reads, scan batches, commits, keys and bytes written (measured);\n")
	fmt.Fprintf(b, "object store and KMS requests (measured); local time on Badger (measured); round trips\n")
	fmt.Fprintf(b, "and latency at a metadata round-trip time (modelled; object store time not included).\n\n")
	fmt.Fprintf(b, "| request | reads | scans | commits | keys written | bytes written | object PUT / GET / DELETE | KMS | local µs | round trips |")
	for _, rtt := range simRTTs {
		fmt.Fprintf(b, " ms @ %s | ops/s @ %s |", fmtRTT(rtt), fmtRTT(rtt))
	}
	fmt.Fprintf(b, "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for range simRTTs {
		fmt.Fprintf(b, "---:|---:|")
	}
	fmt.Fprintln(b)
	for _, r := range results {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %.0f | %s / %s / %s | %s | %.0f | %s |", r.op.name,
			num(r.gets), num(r.scans), num(r.commits), num(r.keys), r.bytes,
			num(r.objPuts), num(r.objGets), num(r.objDels), num(r.kmsCall),
			float64(r.local.Nanoseconds())/1e3, num(r.roundTrips()))
		for _, rtt := range simRTTs {
			if r.roundTrips() == 0 {
				fmt.Fprintf(b, " — | — |") // answered from memory
				continue
			}
			l := r.latency(rtt)
			fmt.Fprintf(b, " %.2f | %.0f |", float64(l.Nanoseconds())/1e6, 1/l.Seconds())
		}
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "\nWhat each request is:\n\n")
	for _, r := range results {
		fmt.Fprintf(b, "- %s: %s (%d runs)\n", r.op.name, r.op.per, r.op.n)
	}
	fmt.Fprintf(b, "\nSeveral engines (\"hosts\") on one metadata store, each creating files with its own goroutine:\n\n")
	fmt.Fprintf(b, "| hosts | directory | creates | reads per create | commits per create | update attempts repeated per create | creates/s (local) |\n")
	fmt.Fprintf(b, "|---:|---|---:|---:|---:|---:|---:|\n")
	for _, h := range hosts {
		where := "one per host"
		if h.shared {
			where = "one shared"
		}
		fmt.Fprintf(b, "| %d | %s | %d | %.2f | %.3f | %.3f | %.0f |\n", h.hosts, where, h.hosts*h.perHost,
			h.getsPerCreate, h.commitsPerCreate, h.extraAttemptsPerWrite, h.createsPerSec)
	}
}

// num prints a per-request count: whole numbers plainly, others with two decimals.
func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtRTT(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%g ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%g ms", float64(d.Milliseconds()))
}

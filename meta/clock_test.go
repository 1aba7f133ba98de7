package meta

import (
	"runtime"
	"sync"
	"testing"
)

// Commits stamped in one order may be written in the other. A read that begins meanwhile
// waits for both: reading below the lower one would miss the higher one, which its
// caller may have seen return already.
func TestClockOutOfOrderCommits(t *testing.T) {
	db, _ := newDB(t)
	c := db.clock
	before := db.clock.next - 1
	a, b := c.stamp(), c.stamp()
	if b != a+1 || a != before+1 {
		t.Fatalf("stamps %d, %d after %d", a, b, before)
	}
	c.written(b)
	read := make(chan uint64)
	go func() {
		txn := c.begin(false)
		c.end(txn)
		read <- txn.ReadTs()
	}()
	waiting := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.waiting
	}
	for waiting() == 0 {
		select {
		case ts := <-read:
			t.Fatalf("read at %d began with commit %d still being written", ts, a)
		default:
			runtime.Gosched()
		}
	}
	c.written(a)
	if ts := <-read; ts != b {
		t.Errorf("read at %d once both are written, want %d", ts, b)
	}
	if n := waiting(); n != 0 {
		t.Errorf("%d reads still waiting", n)
	}
}

// A transaction of several records is seen whole or not at all, under concurrent
// commits and reads.
func TestClockReadersSeeWholeTransactions(t *testing.T) {
	db, _ := newDB(t)
	update(t, db, func(tx *Tx) error {
		if err := tx.PutInode(&Inode{Ino: 100}); err != nil {
			return err
		}
		return tx.PutInode(&Inode{Ino: 101})
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				err := db.Update(func(tx *Tx) error {
					a, err := tx.Inode(100)
					if err != nil {
						return err
					}
					a.Size++
					a.Uid = uint32(w*1000 + i)
					b := a
					b.Ino = 101
					if err := tx.PutInode(&a); err != nil {
						return err
					}
					return tx.PutInode(&b)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := db.View(func(tx *Tx) error {
					a, err := tx.Inode(100)
					if err != nil {
						return err
					}
					b, err := tx.Inode(101)
					if err != nil {
						return err
					}
					if a.Size != b.Size || a.Uid != b.Uid {
						t.Errorf("half a transaction: inode 100 size %d uid %d, inode 101 size %d uid %d", a.Size, a.Uid, b.Size, b.Uid)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	view(t, db, func(tx *Tx) error {
		if a, _ := tx.Inode(100); a.Size != 600 {
			t.Errorf("size %d after 600 increments: lost updates", a.Size)
		}
		return nil
	})
}

// Badger may drop versions at or below the discard timestamp: it must not pass an open
// snapshot, and must follow the commits once none is open, or old versions and Badger's
// list of committed transactions would grow for ever.
func TestClockDiscardFollowsOpenReads(t *testing.T) {
	db, _ := newDB(t)
	put := func(size uint64) {
		update(t, db, func(tx *Tx) error { return tx.PutInode(&Inode{Ino: 55, Size: size}) })
	}
	put(1)
	put(2)
	// The last commit's own read was open while it was written: one behind at most.
	if d, v := db.clock.discard, db.clock.next-2; d < v {
		t.Fatalf("discard %d with nothing open, want at least %d", d, v)
	}
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(uint64(i + 3))
	}
	if d := db.clock.discard; d > snap.ReadTs() {
		t.Errorf("discard %d passed the open snapshot at %d", d, snap.ReadTs())
	}
	snap.Discard()
	snap.Discard() // a second call must not forget someone else's read
	held := db.clock.begin(false)
	defer db.clock.end(held)
	put(7)
	if d := db.clock.discard; d != held.ReadTs() {
		t.Errorf("discard %d after the snapshot went, want the open read at %d", d, held.ReadTs())
	}
}

// Timestamps continue from the newest version on disk: a clock that restarted lower
// would write new values under older versions than the old values, and reads would
// return the old ones.
func TestClockContinuesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	update(t, db, func(tx *Tx) error { return tx.PutInode(&Inode{Ino: 9, Size: 1}) })
	last := db.clock.next - 1
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	if db.clock.next <= last {
		t.Fatalf("next commit %d after reopening, the last one before was %d", db.clock.next, last)
	}
	update(t, db, func(tx *Tx) error { return tx.PutInode(&Inode{Ino: 9, Size: 2}) })
	view(t, db, func(tx *Tx) error {
		if in, _ := tx.Inode(9); in.Size != 2 {
			t.Errorf("size %d after reopening and writing 2", in.Size)
		}
		return nil
	})
}

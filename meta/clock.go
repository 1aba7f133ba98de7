package meta

import (
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// clock hands out Badger's read and commit timestamps: the store runs in Badger's managed
// mode. Badger's own oracle does this bookkeeping with two watermark goroutines fed by
// channel sends, two per read-only transaction and four per update; on two cores each send
// tends to wake a parked goroutine on another thread. That was 6.5% of the CPU of a
// small-file create (waking the watermark goroutine in NewTransaction alone); creating
// 5,000 files cost 288/308/276 µs of CPU per file with Badger's oracle and 248/238/254
// with this one (ops.sh, three rounds alternating). The same bookkeeping under one mutex
// is a few slice and map operations.
//
// What it keeps of Badger's guarantees:
//   - A transaction reads at the newest commit timestamp handed out, once every commit at
//     or below it has been written: so it sees every commit that returned before it began
//     (read your writes), never part of one, and nothing below its timestamp appears
//     later. Commit timestamps are handed out before Badger orders the writes, so two
//     concurrent commits may reach its log out of order; the read waits for both, as
//     Badger's own oracle waits for its commit watermark. A lone writer never waits.
//   - Conflict detection is Badger's: it compares a committing transaction's reads with
//     the commits above its read timestamp, whatever order they were written in.
//   - Badger drops old versions and forgets committed transactions at or below the discard
//     timestamp, so it never passes the oldest open transaction's read timestamp, never
//     goes back (Badger asserts that), and never reaches a commit still being written.
type clock struct {
	bdb *badger.DB

	mu      sync.Mutex
	next    uint64         // the next commit timestamp
	pending []uint64       // commit timestamps handed out, not yet written; ascending
	reads   map[uint64]int // read timestamps of open transactions, how many at each
	discard uint64         // the last discard timestamp given to Badger
	waiting int            // reads waiting in begin for a pending commit
	wrote   sync.Cond      // signalled when a pending commit is written
}

func newClock(bdb *badger.DB) *clock {
	last := bdb.MaxVersion()
	c := &clock{bdb: bdb, next: last + 1, reads: make(map[uint64]int), discard: last}
	c.wrote.L = &c.mu
	return c
}

// visible is the newest commit timestamp below which every commit has been written.
// Called with c.mu held.
func (c *clock) visible() uint64 {
	if len(c.pending) > 0 {
		return c.pending[0] - 1
	}
	return c.next - 1
}

// begin opens a transaction at the newest commit, once it and every commit below it are
// written. end must follow.
func (c *clock) begin(update bool) *badger.Txn {
	c.mu.Lock()
	ts := c.next - 1
	for len(c.pending) > 0 && c.pending[0] <= ts {
		c.waiting++
		c.wrote.Wait()
		c.waiting--
	}
	c.reads[ts]++
	c.mu.Unlock()
	return c.bdb.NewTransactionAt(ts, update)
}

// end discards txn (committed or not) and forgets its read.
func (c *clock) end(txn *badger.Txn) {
	txn.Discard()
	ts := txn.ReadTs()
	c.mu.Lock()
	if c.reads[ts]--; c.reads[ts] <= 0 {
		delete(c.reads, ts)
	}
	c.mu.Unlock()
}

// commit commits txn at a fresh timestamp and returns once Badger has written it.
func (c *clock) commit(txn *badger.Txn) error {
	ts := c.stamp()
	err := txn.CommitAt(ts, nil)
	c.written(ts)
	return err
}

// stamp hands out the next commit timestamp; written must follow, whatever became of
// the commit.
func (c *clock) stamp() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.next
	c.next++
	c.pending = append(c.pending, ts)
	return ts
}

// written records that the commit at ts is over: written, refused, or empty.
func (c *clock) written(ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.pending, ts); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
	}
	if c.waiting > 0 {
		c.wrote.Broadcast()
	}
	c.advanceDiscard()
}

// advanceDiscard moves Badger's discard timestamp up to what no open transaction can
// still need. Called with c.mu held, so that two calls cannot reach Badger out of order.
func (c *clock) advanceDiscard() {
	d := c.visible()
	for ts := range c.reads {
		d = min(d, ts)
	}
	if d > c.discard {
		c.discard = d
		c.bdb.SetDiscardTs(d)
	}
}

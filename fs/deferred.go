package fs

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"time"

	"github.com/ssefs/ssefs/meta"
	"github.com/ssefs/ssefs/objstore"
)

// Deferred deletion: what keeps metadata snapshots (ssefs backup) restorable.
//
// A snapshot names chunk objects by ID. Without backups, an object is deleted as soon as
// the durable metadata stops naming it (syncDurable). With backups, the newest snapshots
// may still name it, and a restore of one of them would meet a missing chunk. So from the
// first snapshot on (meta.BackupState exists), freed objects are not deleted but
// recorded (meta's deferred records), and deleted only when every snapshot that must stay
// restorable was taken after they were freed:
//
//   - A deferred record is written after the commit that dropped the object's last chunk
//     record, so its Badger version V is above that commit. A snapshot at read timestamp
//     T >= V cannot name the object; one below V may.
//   - After a backup, the caller (ssefs backup) sets the horizon H: the read timestamp of
//     the oldest snapshot it keeps. Every object deferred at V <= H is named by no kept
//     snapshot and goes (ReleaseDeferred).
//   - Deferral is switched on under syncMu before the first snapshot's read timestamp is
//     taken: a sync that deleted objects without deferring them had taken them after
//     their drop committed and before the switch, so below any snapshot.
//   - fsck treats deferred objects as neither orphans nor missing, and while deferral is
//     on, what fsck --repair frees (orphans included: a crash can leave an object freed
//     but not yet recorded, which an older snapshot may name) is deferred too.
//
// The cost: with backups on, freed space comes back only after the backups that follow,
// and each sync that frees objects writes their records and syncs the metadata once more.

// BackupState is the engine's view of its snapshots (meta.BackupState).
type BackupState = meta.BackupState

// deferGarbage is syncDurable's hook, called with syncMu held once the metadata that no
// longer names the garbage objects is durable. It returns the objects to delete now: all
// of them without backups, none with (they are recorded instead). If they cannot be
// recorded they go back on the garbage list for the next sync: deleting them could break
// a snapshot.
func (e *Engine) deferGarbage(garbage []objstore.ID) []objstore.ID {
	if len(garbage) == 0 {
		return garbage
	}
	on, err := e.deferring()
	if err == nil && !on {
		return garbage
	}
	if err == nil {
		err = e.recordDeferred(garbage)
	}
	if err == nil {
		err = e.db.Sync()
	}
	if err != nil {
		e.log.Warn("recording freed chunk objects for deferred deletion failed; retrying at the next sync", "objects", len(garbage), "err", err)
		e.gcMu.Lock()
		e.garbage = append(e.garbage, garbage...)
		e.gcMu.Unlock()
	}
	return nil
}

// deferring tells whether freed objects wait for the snapshots.
func (e *Engine) deferring() (bool, error) {
	var on bool
	err := e.view(func(tx *meta.Tx) (err error) {
		_, on, err = tx.BackupState()
		return err
	})
	return on, err
}

func (e *Engine) recordDeferred(ids []objstore.ID) error {
	for len(ids) > 0 {
		n := min(len(ids), chunkBatch)
		batch := make([][16]byte, n)
		for i, id := range ids[:n] {
			batch[i] = id
		}
		if err := e.update(func(tx *meta.Tx) error { return tx.Defer(batch) }); err != nil {
			return fmt.Errorf("recording deferred objects: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// Snapshot flushes every open file and returns a consistent snapshot of the metadata
// for a backup, with the backup state as it is in it. The first snapshot switches
// deferred deletion on (and makes that durable) before its read timestamp is taken.
// The caller must Discard the snapshot.
func (e *Engine) Snapshot(ctx context.Context) (*meta.Snapshot, BackupState, error) {
	if err := e.SyncAll(ctx); err != nil {
		return nil, BackupState{}, fmt.Errorf("snapshot: %w", err)
	}
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	var st BackupState
	err := e.update(func(tx *meta.Tx) error {
		s, on, err := tx.BackupState()
		if err != nil || on {
			st = s
			return err
		}
		st = BackupState{}
		if _, err := rand.Read(st.Lineage[:]); err != nil {
			return err
		}
		return tx.PutBackupState(st)
	})
	if err == nil {
		err = e.db.Sync()
	}
	if err != nil {
		return nil, BackupState{}, fmt.Errorf("snapshot: switching deferred deletion on: %w", err)
	}
	snap, err := e.db.Snapshot()
	if err != nil {
		return nil, BackupState{}, classify(fmt.Errorf("snapshot: %w", err))
	}
	return snap, st, nil
}

// ReleaseDeferred records horizon, the read timestamp of the oldest snapshot that must
// stay restorable, and deletes the deferred objects freed at or below it. It returns how
// many it deleted. Without backup state (deferral switched off meanwhile) it does nothing.
func (e *Engine) ReleaseDeferred(ctx context.Context, horizon uint64) (int, error) {
	on := false
	err := e.update(func(tx *meta.Tx) error {
		s, ok, err := tx.BackupState()
		if err != nil || !ok {
			on = false
			return err
		}
		on = true
		s.Horizon, s.Last = horizon, time.Now().Unix()
		return tx.PutBackupState(s)
	})
	if err != nil || !on {
		return 0, err
	}
	return e.deleteDeferred(ctx, horizon)
}

// DisableDeferral switches deferred deletion off and deletes every deferred object: the
// existing snapshots may then meet missing chunks when restored. It returns how many it
// deleted.
func (e *Engine) DisableDeferral(ctx context.Context) (int, error) {
	e.syncMu.Lock()
	err := e.update(func(tx *meta.Tx) error { return tx.DeleteBackupState() })
	if err == nil {
		err = e.db.Sync()
	}
	e.syncMu.Unlock()
	if err != nil {
		return 0, err
	}
	return e.deleteDeferred(ctx, math.MaxUint64)
}

// deleteDeferred deletes the objects deferred at or below upTo, a batch at a time: the
// objects, then their records, so a failure leaves records of objects that may be gone
// (deleting a missing object is no error), never an object without its record.
func (e *Engine) deleteDeferred(ctx context.Context, upTo uint64) (int, error) {
	done := 0
	for {
		var batch [][16]byte
		err := e.view(func(tx *meta.Tx) error {
			return tx.Deferred(upTo, func(id [16]byte, _ uint64) bool {
				batch = append(batch, id)
				return len(batch) < chunkBatch
			})
		})
		if err != nil {
			return done, err
		}
		if len(batch) == 0 {
			return done, nil
		}
		for _, id := range batch {
			if err := e.store.Delete(ctx, id); err != nil {
				return done, classify(fmt.Errorf("deleting deferred chunk object %s: %w", objstore.ID(id), err))
			}
		}
		if err := e.update(func(tx *meta.Tx) error { return tx.Undefer(batch) }); err != nil {
			return done, err
		}
		done += len(batch)
		if len(batch) < chunkBatch {
			return done, nil
		}
	}
}

// BackupStatus is what `ssefs backup --status` shows.
type BackupStatus struct {
	On       bool // deferred deletion is on: snapshots were taken
	State    BackupState
	Deferred int // objects waiting for the horizon
}

// BackupStatus reports the backup state and how many objects wait for deletion.
func (e *Engine) BackupStatus(ctx context.Context) (BackupStatus, error) {
	var s BackupStatus
	err := e.view(func(tx *meta.Tx) error {
		var err error
		if s.State, s.On, err = tx.BackupState(); err != nil {
			return err
		}
		return tx.Deferred(math.MaxUint64, func([16]byte, uint64) bool {
			s.Deferred++
			return ctx.Err() == nil
		})
	})
	if err == nil {
		err = ctx.Err()
	}
	return s, err
}

// deferredObjects returns the deferred objects, for fsck.
func (e *Engine) deferredObjects() (map[objstore.ID]bool, error) {
	set := make(map[objstore.ID]bool)
	err := e.view(func(tx *meta.Tx) error {
		return tx.Deferred(math.MaxUint64, func(id [16]byte, _ uint64) bool {
			set[id] = true
			return true
		})
	})
	return set, err
}

// dropObject is fsck --repair's deletion of an object nothing names any more: deferred
// while backups are on, deleted otherwise. It says which it did.
func (e *Engine) dropObject(ctx context.Context, id objstore.ID) (string, error) {
	on, err := e.deferring()
	if err != nil {
		return "", err
	}
	if on {
		if err := e.recordDeferred([]objstore.ID{id}); err != nil {
			return "", err
		}
		return "deferred until the backups no longer need it", nil
	}
	if err := e.store.Delete(ctx, id); err != nil {
		return "", classify(err)
	}
	return "deleted", nil
}

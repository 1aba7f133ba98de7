package fs

import (
	"context"
	"testing"
	"time"
)

// With --writeback-cache the kernel sends a file's times (SETATTR) before every flush of
// it. Times set on an open file whose content is still to be committed ride on that
// commit; on a file with nothing to commit, and any change beyond times, commit at once
// and survive a kill.
func TestTimesRideOnTheContentCommit(t *testing.T) {
	env := newTestEnv(t, 0, 0)
	ctx := context.Background()
	a, h, err := env.e.Create(ctx, env.bucket, "f", Owner{Mode: 0o644}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(ctx, []byte("written"), 0); err != nil {
		t.Fatal(err)
	}
	early := time.Unix(1_000_000_000, 0).UnixNano()
	before := env.db.Commits()
	if _, err := env.e.SetAttr(ctx, a.Ino, SetAttrIn{Mtime: &early}); err != nil {
		t.Fatal(err)
	}
	if n := env.db.Commits() - before; n != 0 {
		t.Errorf("setting the times of a file with buffered content made %d commits, want 0", n)
	}
	if got, err := env.e.GetAttr(ctx, a.Ino); err != nil || got.Mtime.UnixNano() != early {
		t.Fatalf("mtime before the flush: %v, %v; want %v", got.Mtime, err, time.Unix(0, early))
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Nothing left to commit: the next change of times is a commit of its own.
	later := time.Unix(1_100_000_000, 0).UnixNano()
	before = env.db.Commits()
	if _, err := env.e.SetAttr(ctx, a.Ino, SetAttrIn{Atime: &later}); err != nil {
		t.Fatal(err)
	}
	if n := env.db.Commits() - before; n != 1 {
		t.Errorf("setting the times of a flushed open file made %d commits, want 1", n)
	}
	// Killed with the file open: the committed times stay.
	env.crash()
	env.open()
	got, err := env.e.GetAttr(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mtime.UnixNano() != early || got.Atime.UnixNano() != later {
		t.Errorf("after a kill: mtime %v atime %v; want %v, %v", got.Mtime, got.Atime, time.Unix(0, early), time.Unix(0, later))
	}
	if data := readAll(t, env.e, a.Ino); string(data) != "written" {
		t.Errorf("content after a kill: %q, want %q", data, "written")
	}

	// A mode change commits at once, buffered content or not.
	h, err = env.e.Open(ctx, a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	if _, err := h.WriteAt(ctx, []byte("W"), 0); err != nil {
		t.Fatal(err)
	}
	mode := uint32(0o600)
	before = env.db.Commits()
	if _, err := env.e.SetAttr(ctx, a.Ino, SetAttrIn{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	if n := env.db.Commits() - before; n != 1 {
		t.Errorf("chmod of a file with buffered content made %d commits, want 1", n)
	}
}

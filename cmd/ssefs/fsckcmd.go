package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ssefs/ssefs/fs"
)

const fsckUsage = `Usage: ssefs fsck [--repair] [--quick] [flags]

Checks the store in the data directory, every reference both ways: directory entries
against inodes, link counts, parents and the bucket each inode records, that every inode
is reachable from the root, every file's sealed key (and that the KMS still unseals it),
every chunk record against its object in the object store (and, unless --quick, decrypts
and authenticates every chunk) and against the file's size, every object against the
chunk records, the orphan and S3 object records (and their ETags) against their inodes,
multipart uploads against their parts and the bucket's upload index, and any key rotation
record.

It prints one line per finding on stdout, then a summary that scripts can grep:

  fsck: 1234 inodes, 5678 chunks (5678 verified), 0 inconsistencies

Exit status: 0 when the store is consistent (or --repair fixed everything it found), 1
when inconsistencies remain, 2 for a usage error. Some findings are reported but are no
inconsistencies: files unlinked while open and still awaiting deletion ("pending
deletion"), chunk objects that no record names ("orphaned chunk object": the garbage a
crash leaves between writing an object and committing it, or between dropping it and
deleting it), chunk records past the end of a file ("chunk data past end of file": what a
crash during a write leaves; nothing of it is readable), a key rotation that was
interrupted ("interrupted key rotation": 'ssefs key rotate' with the same options finishes
it, 'ssefs key rotate --abandon' drops it), and keys that the KMS does not release ("key
unavailable": a disabled or deleted key, or a KMS that is down). SSE-C files cannot be
verified without their client keys; their chunks are counted as not verifiable.

With --repair, fsck also fixes what it can without losing anything that could still be
read: it removes dangling entries, records of inodes that are gone (S3 object records,
broken multipart uploads, xattrs, ...), chunk records past the end of a file, stale
upload index entries and S3 ETags, and chunk objects that no record names; it fixes link
counts, directory parents, recorded buckets and the upload index; it finishes pending
deletions. An inode that no entry reaches is not deleted but linked, as e2fsck does, into
the lost+found directory of its bucket (made with mode 0700 if missing), named #INODE. It
never deletes an object that a chunk record names, and it leaves chunks that fail
authentication as they are: reading them keeps failing with EIO rather than returning
wrong bytes. Every change is reported on its finding's line.

fsck runs offline only: it refuses while an 'ssefs mount' or 'ssefs serve' holds the data
directory. Progress goes to stderr.

Examples:
  ssefs fsck
  ssefs fsck --quick --data-dir /var/lib/ssefs
  ssefs fsck --repair
  ssefs fsck | grep -E '^fsck: .* 0 inconsistencies'
`

func runFsck(args []string, stdout, stderr io.Writer) error {
	c := newCommandFlags("fsck")
	var opt fs.FsckOptions
	var quick bool
	c.f.BoolVar(&opt.Repair, "repair", false, "fix what can be fixed without losing readable data (see above)")
	c.f.BoolVar(&quick, "quick", false, "do not decrypt the chunks: only check that their objects exist with the recorded size")
	if err := c.parse(args, fsckUsage, stdout); err != nil {
		return err
	}
	if c.f.NArg() != 0 {
		return usageError{fmt.Sprintf("fsck takes no arguments, got %q (see 'ssefs help fsck')", c.f.Args())}
	}
	opt.VerifyChunks = !quick
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := c.store()
	cfg.keepOrphans = true
	d, err := openDataDir(ctx, cfg, stderr, log)
	var inUse *dataDirInUseError
	if errors.As(err, &inUse) {
		return fsckRefusal(ctx, inUse)
	}
	if err != nil {
		return err
	}
	prog := newFsckProgress(stderr, isTerminal(stderr), time.Now())
	opt.Progress = prog.update
	rep, err := d.engine.Fsck(ctx, opt)
	prog.finish()
	if err != nil {
		cerr := d.close()
		if ctx.Err() != nil {
			err = fmt.Errorf("fsck interrupted after %d of %d inodes: %w", prog.p.Inodes, prog.p.TotalInodes, err)
		}
		return errors.Join(err, cerr)
	}
	for _, f := range rep.Findings {
		line := f.String()
		if opt.Repair && f.Kind.Inconsistency() && f.Repaired == "" && f.RepairErr == "" {
			line += " [not repairable]"
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintln(stdout, fsckSummary(&rep, opt))
	if err := d.close(); err != nil {
		return fmt.Errorf("closing data directory %s: %w", d.dir, err)
	}
	if n := rep.Unrepaired(); n > 0 {
		return reportedError{fmt.Sprintf("%d inconsistencies", n)}
	}
	return nil
}

// fsckRefusal explains that another ssefs holds the data directory. fsck does not go
// through the admin socket as the admin commands do: a live engine has objects in flight
// whose commits are still to come, which an fsck would take for orphans.
func fsckRefusal(ctx context.Context, inUse *dataDirInUseError) error {
	sock := filepath.Join(inUse.dir, adminSocketFile)
	c, err := dialAdmin(ctx, inUse.dir)
	if err != nil {
		return fmt.Errorf("data directory %s is in use by ssefs pid %s (its admin socket %s does not answer): fsck runs offline only; stop that process first",
			inUse.dir, inUse.pid, sock)
	}
	defer c.close()
	pid := inUse.pid
	if info, err := c.Info(ctx); err == nil {
		pid = fmt.Sprint(info.PID)
	}
	return fmt.Errorf("data directory %s is served by ssefs pid %s (admin socket %s): fsck runs offline only; unmount or stop it first",
		inUse.dir, pid, sock)
}

func fsckSummary(rep *fs.FsckReport, opt fs.FsckOptions) string {
	verified := fmt.Sprintf("%d verified", rep.Verified)
	if !opt.VerifyChunks {
		verified = "not verified: --quick"
	}
	s := fmt.Sprintf("fsck: %d inodes, %d chunks (%s), %d inconsistencies", rep.Inodes, rep.Chunks, verified, rep.Inconsistencies())
	if opt.Repair {
		s += fmt.Sprintf(", %d repaired", rep.Repaired())
	}
	if opt.VerifyChunks && rep.Skipped > 0 {
		s += fmt.Sprintf(", %d chunks not verifiable (SSE-C, or key unavailable)", rep.Skipped)
	}
	if n := rep.Count(fs.FsckKeyUnavailable); n > 0 {
		s += fmt.Sprintf(", %d files with keys unavailable", n)
	}
	if n := rep.Count(fs.FsckPendingDeletion); n > 0 {
		s += fmt.Sprintf(", %d pending deletions", n)
	}
	if n := rep.Count(fs.FsckOrphanObject); n > 0 {
		s += fmt.Sprintf(", %d unreferenced objects", n)
	}
	if n := rep.Count(fs.FsckPastEOF); n > 0 {
		s += fmt.Sprintf(", %d files with data past their end", n)
	}
	if rep.Count(fs.FsckRotationPending) > 0 {
		s += ", an interrupted key rotation ('ssefs key rotate --abandon' drops it)"
	}
	return s
}

// newFsckProgress shows how far a check has come: a plain line every two seconds when
// stderr is not a terminal.
func newFsckProgress(w io.Writer, tty bool, start time.Time) *progress[fs.FsckProgress] {
	return newProgress(w, tty, start, 2*time.Second, 250*time.Millisecond, fsckProgressLine, nil)
}

func fsckProgressLine(p fs.FsckProgress, elapsed time.Duration) string {
	frac := 1.0
	if p.TotalInodes > 0 {
		frac = float64(p.Inodes) / float64(p.TotalInodes)
	}
	s := fmt.Sprintf("fsck: %s  %d/%d inodes checked, %d chunks, %d verified", progressBar(frac), p.Inodes, p.TotalInodes, p.Chunks, p.Verified)
	if secs := elapsed.Seconds(); secs > 0 {
		s += fmt.Sprintf(" (%.0f inodes/s, %.1f MiB/s)", float64(p.Inodes)/secs, float64(p.VerifiedBytes)/secs/(1<<20))
	}
	return s + etaSuffix(frac, elapsed)
}

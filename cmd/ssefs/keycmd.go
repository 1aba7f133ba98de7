package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
)

const keyUsage = `Usage: ssefs key COMMAND [flags] [ARGS]

Commands:
  create NAME       create a key in the KMS (KES or Vault)
  list [PATTERN]    list the KMS's keys; PATTERN is a glob such as 'ssefs-*'
  status NAME       check that NAME can seal a data key and unseal it again
  rotate [flags]    re-seal the files' keys under another key or a new data key
                    (--metadata: re-seal the data directory's meta.key instead)

create, list and status talk to the KMS configured by the flags (or, with none, to the
generated master key of --data-dir). Run 'ssefs help key COMMAND' for each one's flags.

Examples:
  ssefs key create ssefs-2026
  ssefs key list 'ssefs-*'
  ssefs key status ssefs-2026
  ssefs key rotate --from-key ssefs-2025 --to-key ssefs-2026
`

const keyCreateUsage = `Usage: ssefs key create [flags] NAME

Creates the key NAME in the configured KMS (KES or Vault transit). A static or generated
master key has exactly one key and cannot create others.

Examples:
  ssefs key create --kms-kes-endpoint https://kes.example.net:7373 \
      --kms-kes-cert-file client.crt --kms-kes-key-file client.key ssefs-2026
  MINIO_KMS_KES_ENDPOINT=https://127.0.0.1:7373 ... ssefs key create ssefs-2026
`

const keyListUsage = `Usage: ssefs key list [flags] [PATTERN]

Lists the configured KMS's keys whose names match PATTERN (a glob, '*' by default), one a
line, sorted.

Examples:
  ssefs key list
  ssefs key list 'ssefs-*'
`

const keyStatusUsage = `Usage: ssefs key status [flags] NAME

Asks the KMS for a data key under NAME (with a test context) and to unseal it again, as
'mc admin kms key status' does, and prints:

  Key: NAME
    Encryption: OK
    Decryption: OK

with the KMS's error in place of OK where a step fails; the exit code is then 1.

Examples:
  ssefs key status ssefs-2026
  SSEFS_KMS_MASTER_KEY_FILE=/etc/ssefs/master.key ssefs key status my-master-key
`

const keyRotateUsage = `Usage: ssefs key rotate [flags]
       ssefs key rotate --metadata [--to-key NAME] [flags]

Re-seals the object key of every selected file under --to-key, or, without it, under a new
data key of the key it has now. File content is not touched. The selection is every file,
or those in --bucket, or those now sealed under --from-key; SSE-C files are skipped.

Progress goes to stderr. Ctrl-C stops the rotation where it is; running the same command
again resumes it. A rotation that was interrupted must be finished (same options) or
dropped (--abandon) before another one can run.

With --metadata, re-seals the data directory's meta.key (the key of the encrypted
metadata) under the KMS's default key, or --to-key: the file is replaced only after the
new one has been read back and opened.

If an 'ssefs mount' serves the data directory, that process does the work (through
DATA/admin.sock, with its own KMS); otherwise the command opens the data directory itself,
with the KMS given here.

Examples:
  ssefs key rotate --from-key ssefs-2025 --to-key ssefs-2026
  ssefs key rotate --bucket photos --to-key photos-key
  ssefs key rotate                      # a new data key for every file, same keys
  ssefs key rotate --abandon            # drop an interrupted rotation
  ssefs key rotate --metadata --to-key ssefs-2026
`

func runKey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"key needs a command: create, list, status or rotate (see 'ssefs help key')"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "create", "list", "status":
		return runKeyKMS(cmd, rest, stdout, stderr)
	case "rotate":
		return runKeyRotate(rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, keyUsage)
		return errHelp
	default:
		return usageError{fmt.Sprintf("unknown key command %q: want create, list, status or rotate (see 'ssefs help key')", cmd)}
	}
}

// runKeyKMS runs create, list and status: they talk to the KMS alone, no data directory.
func runKeyKMS(cmd string, args []string, stdout, stderr io.Writer) error {
	usage := map[string]string{"create": keyCreateUsage, "list": keyListUsage, "status": keyStatusUsage}[cmd]
	c := newCommandFlags("key " + cmd)
	c.kms.defaultKeyOptional = true
	if err := c.parse(args, usage, stdout); err != nil {
		return err
	}
	var name string
	switch {
	case cmd == "list" && c.f.NArg() > 1:
		return usageError{fmt.Sprintf("key list takes at most one PATTERN, got %d arguments", c.f.NArg())}
	case cmd == "list":
		name = c.f.Arg(0)
	case c.f.NArg() != 1:
		return usageError{fmt.Sprintf("key %s needs exactly one key NAME, got %d arguments", cmd, c.f.NArg())}
	default:
		name = c.f.Arg(0)
		if err := checkKeyName(setting{name, "NAME"}); err != nil || name == "" {
			return usageError{fmt.Sprintf("key %s: %q is not a key name (no white space or control characters)", cmd, name)}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := filepath.Abs(c.dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", c.dataDir, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	k, err := c.kms.open(ctx, dir, stderr, log)
	if err != nil {
		return err
	}
	defer k.Close()
	switch cmd {
	case "create":
		err = keyCreate(ctx, k, name, stdout)
	case "list":
		err = keyList(ctx, k, name, stdout)
	default:
		if !keyStatus(ctx, k.kms, name, stdout) {
			err = fmt.Errorf("key %q failed its status check with %s", name, k.describe)
		}
	}
	return errors.Join(err, k.Close())
}

// notSupported explains that the configured KMS cannot do what was asked.
func notSupported(k *openedKMS, what string, err error) error {
	if k.kind == kindStatic || k.kind == kindGenerated {
		return withMessage(fmt.Sprintf("%s is not supported by the static master key: it has exactly one key, %q; configure KES or Vault for more",
			what, k.defaultKey), keys.ErrNotSupported)
	}
	if err == nil {
		err = keys.ErrNotSupported
	}
	return withMessage(fmt.Sprintf("%s is not supported by %s", what, k.describe), err)
}

func keyCreate(ctx context.Context, k *openedKMS, name string, stdout io.Writer) error {
	kc, ok := k.kms.(keys.KeyCreator)
	if !ok {
		return notSupported(k, "creating keys", nil)
	}
	err := kc.CreateKey(ctx, name)
	switch {
	case errors.Is(err, keys.ErrNotSupported):
		return notSupported(k, "creating keys", err)
	case errors.Is(err, keys.ErrKeyExists):
		return withMessage(fmt.Sprintf("key %q already exists in %s", name, k.describe), err)
	case err != nil:
		return withMessage(fmt.Sprintf("creating key %q in %s: %s", name, k.describe, k.cause(err)), err)
	}
	fmt.Fprintf(stdout, "Created key %s in %s\n", name, k.describe)
	return nil
}

func keyList(ctx context.Context, k *openedKMS, pattern string, stdout io.Writer) error {
	kl, ok := k.kms.(keys.KeyLister)
	if !ok {
		return notSupported(k, "listing keys", nil)
	}
	if pattern == "" {
		pattern = "*"
	}
	names, err := kl.ListKeys(ctx, pattern)
	switch {
	case errors.Is(err, keys.ErrNotSupported):
		return notSupported(k, "listing keys", err)
	case err != nil:
		return withMessage(fmt.Sprintf("listing keys of %s: %s", k.describe, k.cause(err)), err)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return nil
}

// keyStatusContext binds the test data key to this check, so it is good for nothing else.
var keyStatusContext = keys.Context{"ssefs": "key status"}

// keyStatus generates a data key under name and unseals it again, printing each step's
// outcome; it reports whether both worked.
func keyStatus(ctx context.Context, k keys.KMS, name string, w io.Writer) bool {
	fmt.Fprintf(w, "Key: %s\n", name)
	dek, err := k.GenerateKey(ctx, name, keyStatusContext)
	defer clear(dek.Plaintext)
	if err != nil {
		fmt.Fprintf(w, "  Encryption: %s\n  Decryption: not tried\n", oneLine(err))
		return false
	}
	fmt.Fprintln(w, "  Encryption: OK")
	pt, err := k.Decrypt(ctx, name, dek.Ciphertext, keyStatusContext)
	defer clear(pt)
	switch {
	case err != nil:
		fmt.Fprintf(w, "  Decryption: %s\n", oneLine(err))
		return false
	case !bytes.Equal(pt, dek.Plaintext):
		fmt.Fprintln(w, "  Decryption: the KMS unsealed a different key")
		return false
	}
	fmt.Fprintln(w, "  Decryption: OK")
	return true
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

func runKeyRotate(args []string, stdout, stderr io.Writer) error {
	c := newCommandFlags("key rotate")
	var opt fs.RotateOptions
	var metadata bool
	c.f.StringVar(&opt.Bucket, "bucket", "", "only files in this bucket")
	c.f.StringVar(&opt.FromKey, "from-key", "", "only files now sealed under this key")
	c.f.StringVar(&opt.ToKey, "to-key", "", "re-seal under this key (default: each file's own key, with a new data key; with --metadata: the KMS's default key)")
	c.f.BoolVar(&opt.Abandon, "abandon", false, "drop an interrupted rotation instead of running one")
	c.f.BoolVar(&metadata, "metadata", false, "re-seal the data directory's meta.key instead of the files' keys")
	if err := c.parse(args, keyRotateUsage, stdout); err != nil {
		return err
	}
	if c.f.NArg() != 0 {
		return usageError{fmt.Sprintf("key rotate takes no arguments, got %q (see 'ssefs help key rotate')", c.f.Args())}
	}
	if metadata {
		for _, fl := range []string{"bucket", "from-key", "abandon"} {
			if src := flagSource(c.f, fl); src != "" {
				return usageError{fmt.Sprintf("key rotate --metadata re-seals meta.key only: %s does not apply", src)}
			}
		}
	}
	if opt.Bucket != "" {
		if err := fs.ValidBucketName(opt.Bucket); err != nil {
			return usageError{fmt.Sprintf("--bucket: %v", err)}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, closeFn, err := openAdmin(ctx, c.store(), stderr)
	if err != nil {
		return err
	}
	if metadata {
		err = rotateMetadata(ctx, b, opt.ToKey, stdout)
	} else {
		err = rotateKeys(ctx, b, opt, stdout, stderr)
	}
	return errors.Join(err, closeFn())
}

func rotateMetadata(ctx context.Context, b adminBackend, toKey string, stdout io.Writer) error {
	info, err := b.Info(ctx)
	if err != nil {
		return err
	}
	key, err := b.RotateMetadataKey(ctx, toKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Re-sealed %s under key %s of %s\n", filepath.Join(info.DataDir, metaKeyFile), key, info.KMS)
	return nil
}

func rotateKeys(ctx context.Context, b adminBackend, opt fs.RotateOptions, stdout, stderr io.Writer) error {
	start := time.Now()
	prog := newProgressPrinter(stderr, isTerminal(stderr), start)
	opt.Progress = prog.update
	p, err := b.RotateKeys(ctx, opt)
	prog.finish()
	switch {
	case err == nil && opt.Abandon:
		if p.Total == 0 && p.Done == 0 {
			fmt.Fprintln(stdout, "No interrupted key rotation to drop")
		} else {
			fmt.Fprintf(stdout, "Dropped the interrupted key rotation (%d of %d files had been re-sealed)\n", p.Done, p.Total)
		}
		return nil
	case err == nil, p.Failed > 0 && !errors.Is(err, fs.ErrRotationPending):
		fmt.Fprintln(stdout, rotationSummary(p, time.Since(start)))
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("key rotation interrupted after %d of %d files: run the same command again to resume it", p.Done, p.Total)
	case errors.Is(err, errServerGone), errors.Is(err, context.Canceled):
		return fmt.Errorf("key rotation stopped after %d of %d files (%v): run the same command again to resume it", p.Done, p.Total, err)
	case errors.Is(err, fs.ErrRotationPending):
		return withMessage(fmt.Sprintf("%v ('ssefs key rotate --abandon' drops it)", err), err)
	}
	return err
}

func rotationSummary(p fs.RotateProgress, took time.Duration) string {
	s := fmt.Sprintf("Key rotation done: %d of %d files re-sealed, %d skipped (SSE-C, or changed meanwhile)", p.Done, p.Total, p.Skipped)
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed", p.Failed)
	}
	if p.Resumed {
		s += ", resuming an interrupted rotation"
	}
	return s + fmt.Sprintf(", in %s", took.Round(100*time.Millisecond))
}

// isTerminal reports whether w is a terminal, where progress can redraw one line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newProgressPrinter shows a rotation's progress: a plain line every ten seconds when
// stderr is not a terminal; on a terminal the final state is drawn even for a rotation too
// short to have drawn any.
func newProgressPrinter(w io.Writer, tty bool, start time.Time) *progress[fs.RotateProgress] {
	return newProgress(w, tty, start, 10*time.Second, 100*time.Millisecond, progressLine,
		func(p fs.RotateProgress) bool { return p.Total > 0 })
}

func progressLine(p fs.RotateProgress, elapsed time.Duration) string {
	handled := p.Done + p.Skipped + p.Failed
	frac := 1.0
	if p.Total > 0 {
		frac = min(float64(handled)/float64(p.Total), 1)
	}
	s := fmt.Sprintf("rotating keys %s  %d/%d files", progressBar(frac), handled, p.Total)
	if p.Skipped > 0 || p.Failed > 0 {
		s += fmt.Sprintf(" (%d skipped, %d failed)", p.Skipped, p.Failed)
	}
	return s + etaSuffix(frac, elapsed)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ssefs/ssefs/fs"
	"github.com/ssefs/ssefs/keys"
)

const bucketUsage = `Usage: ssefs bucket encryption set --key NAME BUCKET
       ssefs bucket encryption get BUCKET
       ssefs bucket encryption clear BUCKET

A bucket's default key seals the new files written into it (existing files keep theirs:
'ssefs key rotate --bucket BUCKET --to-key NAME' re-seals them). Without one, the process
default key does (the KMS's key name, e.g. --kms-kes-key-name). S3 clients set the same
thing with PutBucketEncryption ('mc encrypt set sse-kms NAME ALIAS/BUCKET').

set checks with the KMS that NAME can seal a data key before it accepts it. get prints the
key name, or 'none (process default NAME)'.

If an 'ssefs mount' serves the data directory, that process does the work through
DATA/admin.sock; otherwise the command opens the data directory itself.

Examples:
  ssefs bucket encryption set --key photos-key photos
  ssefs bucket encryption get photos
  ssefs bucket encryption clear photos
`

func runBucket(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"bucket needs a command: encryption (see 'ssefs help bucket')"}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, bucketUsage)
		return errHelp
	case "encryption":
	default:
		return usageError{fmt.Sprintf("unknown bucket command %q: want encryption (see 'ssefs help bucket')", args[0])}
	}
	args = args[1:]
	if len(args) == 0 {
		return usageError{"bucket encryption needs set, get or clear (see 'ssefs help bucket')"}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, bucketUsage)
		return errHelp
	case "set", "get", "clear":
	default:
		return usageError{fmt.Sprintf("unknown bucket encryption command %q: want set, get or clear", sub)}
	}
	c := newCommandFlags("bucket encryption " + sub)
	var key string
	if sub == "set" {
		c.f.StringVar(&key, "key", "", "the KMS key that seals new files in the bucket")
	}
	if err := c.parse(args, bucketUsage, stdout); err != nil {
		return err
	}
	if c.f.NArg() != 1 {
		return usageError{fmt.Sprintf("bucket encryption %s needs exactly one BUCKET, got %d arguments", sub, c.f.NArg())}
	}
	bucket := c.f.Arg(0)
	if err := fs.ValidBucketName(bucket); err != nil {
		return usageError{fmt.Sprintf("BUCKET: %v", err)}
	}
	if sub == "set" {
		if key == "" {
			return usageError{"bucket encryption set needs --key NAME (to go back to the default key: bucket encryption clear)"}
		}
		if err := checkKeyName(setting{key, "--key"}); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, closeFn, err := openAdmin(ctx, c.store(), stderr)
	if err != nil {
		return err
	}
	err = bucketEncryption(ctx, b, sub, bucket, key, stdout)
	return errors.Join(err, closeFn())
}

func bucketEncryption(ctx context.Context, b adminBackend, sub, bucket, key string, stdout io.Writer) error {
	wrap := func(err error) error {
		// A KMS key that does not exist is the engine's ErrAccess, never ErrNotExist, but
		// a chain may carry both: only a plain ErrNotExist is the bucket.
		if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrAccess) && !errors.Is(err, keys.ErrKeyNotFound) {
			return withMessage(fmt.Sprintf("bucket %s does not exist", bucket), err)
		}
		if key != "" && errors.Is(err, fs.ErrAccess) {
			return withMessage(fmt.Sprintf("bucket %s: key %q cannot seal new files: %s", bucket, key, kmsCause(err)), err)
		}
		return err // the engine's message names the bucket already
	}
	switch sub {
	case "set":
		if err := b.SetBucketEncryption(ctx, bucket, key); err != nil {
			return wrap(err)
		}
		fmt.Fprintf(stdout, "Bucket %s: new files are sealed under key %s\n", bucket, key)
	case "clear":
		if err := b.SetBucketEncryption(ctx, bucket, ""); err != nil {
			return wrap(err)
		}
		info, err := b.Info(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Bucket %s: new files are sealed under the process default key %s\n", bucket, info.DefaultKey)
	default:
		k, err := b.BucketEncryption(ctx, bucket)
		if err != nil {
			return wrap(err)
		}
		if k != "" {
			fmt.Fprintln(stdout, k)
			return nil
		}
		info, err := b.Info(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "none (process default %s)\n", info.DefaultKey)
	}
	return nil
}

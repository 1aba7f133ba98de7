// Command ssefs is an encrypting filesystem: a FUSE mount and an S3 API over content
// stored as DARE chunks under per-file keys sealed by a KMS.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// usageError is a mistake on the command line: exit code 2, as getopt tools do.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	// mount(8) runs /sbin/mount.fuse.ssefs, a link to this binary (mounthelper.go).
	if isMountHelper(os.Args[0]) {
		os.Exit(exitCode(runMountHelper(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const topUsage = `ssefs — an encrypting filesystem with keys from a KMS

Usage:
  ssefs mount [flags] MOUNTPOINT          mount the store (all buckets, or one with --bucket);
                                          with --s3-address, serve S3 on it as well;
                                          --daemon: in the background once mounted
  ssefs umount [--lazy] MOUNTPOINT        unmount, and wait until ssefs has flushed and exited
  ssefs serve --s3-address HOST:PORT      serve the store's S3 API without a mount
  ssefs key create|list|status [NAME]     manage and check the KMS's keys
  ssefs key rotate [flags]                re-seal file keys (or --metadata: meta.key) under another key
  ssefs bucket encryption set|get|clear   a bucket's default key
  ssefs stat [--json] FILE...             how files on a mount are encrypted
  ssefs df [--json] [--bucket B]          files, bytes and keys of each bucket
  ssefs fsck [--repair]                   check (and repair) the store of an unmounted data directory
  ssefs backup [--to DIR|FILE]            snapshot the metadata (into the S3 store, or DIR/FILE)
  ssefs restore --data-dir NEW            rebuild a data directory from a snapshot and the KMS
  ssefs config check [flags] [MOUNTPOINT] check a mount's configuration without mounting
  ssefs completion bash|zsh               print a shell completion script
  ssefs man                               print the manual page (roff)
  ssefs version                           print the version and module versions
  ssefs help [COMMAND]                    show help

The KMS is KES (--kms-kes-*), Vault transit (--kms-vault-*), a static master key
(SSEFS_KMS_MASTER_KEY), or, with none of them, a key generated into the data directory
for trying ssefs out. MinIO's variables (MINIO_KMS_KES_*, MINIO_SSE_VAULT_*,
MINIO_KMS_MASTER_KEY) are read too.

Examples:
  ssefs mount /mnt/ssefs
  ssefs key status my-key
  ssefs bucket encryption set --key photos-key photos
  ssefs key rotate --from-key old-key --to-key new-key
  ssefs stat /mnt/ssefs/photos/beach.jpg

Run 'ssefs help COMMAND' (e.g. 'ssefs help key rotate') for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	return exitCode(dispatch(args, stdout, stderr), stderr)
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if args[0] == "mount" || args[0] == "serve" {
		if err := startProfiling(); err != nil {
			return err
		}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "mount":
		return runMount(rest, stdout, stderr)
	case "serve":
		return runServe(rest, stdout, stderr)
	case "umount":
		return runUmount(rest, stdout, stderr)
	case "key":
		return runKey(rest, stdout, stderr)
	case "bucket":
		return runBucket(rest, stdout, stderr)
	case "stat":
		return runStat(rest, stdout, stderr)
	case "fsck":
		return runFsck(rest, stdout, stderr)
	case "backup":
		return runBackup(rest, stdout, stderr)
	case "restore":
		return runRestore(rest, stdout, stderr)
	case "df":
		return runDf(rest, stdout, stderr)
	case "config":
		return runConfig(rest, stdout, stderr)
	case "completion":
		return runCompletion(rest, stdout, stderr)
	case "man":
		return runMan(rest, stdout, stderr)
	case "version", "--version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		if len(rest) > 0 && (rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help") {
			showHelp(stdout, helpUsage, nil)
			return nil
		}
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprint(stdout, topUsage)
			return nil
		}
		// 'ssefs help key rotate' is 'ssefs key rotate --help'.
		return dispatch(append(slices.Clone(rest), "--help"), stdout, stderr)
	default:
		return usageError{fmt.Sprintf("unknown command %q (try 'ssefs help')", cmd)}
	}
}

// reportedError: the command already printed what went wrong (one line per failure);
// only the exit status is left to set.
type reportedError struct{ summary string }

func (e reportedError) Error() string { return e.summary }

// exitCode prints err as the one line an operator reads and picks the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	var reported reportedError
	if errors.As(err, &reported) {
		return 1
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(stderr, "ssefs: %s\n", msg)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

var errHelp = errors.New("help requested")

func printVersion(w io.Writer) {
	version, deps := "(devel)", map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, d := range bi.Deps {
			deps[d.Path] = d.Version
		}
	}
	fmt.Fprintf(w, "ssefs %s (%s)\n", version, runtime.Version())
	for _, m := range versionModules {
		if v, ok := deps[m]; ok {
			fmt.Fprintf(w, "  %s %s\n", m, v)
		}
	}
	fmt.Fprintf(w, "  %s\n", kesClient)
}

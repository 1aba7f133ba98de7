// Command ssefs is an encrypting filesystem: a FUSE mount (and, soon, an S3 API) over
// content stored as DARE chunks under per-file keys sealed by a KMS.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// usageError is a mistake on the command line: exit code 2, as getopt tools do.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const topUsage = `ssefs — an encrypting filesystem with keys from a KMS

Usage:
  ssefs mount [flags] MOUNTPOINT   mount the store (all buckets, or one with --bucket)
  ssefs version                    print the version and module versions
  ssefs help [COMMAND]             show help

Run 'ssefs COMMAND --help' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "mount":
		err = runMount(rest, stderr)
	case "version", "--version":
		printVersion(stdout)
	case "help", "-h", "--help":
		if len(rest) > 0 && rest[0] == "mount" {
			err = runMount([]string{"--help"}, stderr)
		} else {
			fmt.Fprint(stdout, topUsage)
		}
	default:
		err = usageError{fmt.Sprintf("unknown command %q (try 'ssefs help')", cmd)}
	}
	return exitCode(err, stderr)
}

// exitCode prints err as the one line an operator reads and picks the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
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
	fmt.Fprintf(w, "ssefs %s\n", version)
	for _, m := range []string{"github.com/hanwen/go-fuse/v2", "github.com/minio/sio", "github.com/dgraph-io/badger/v4"} {
		if v, ok := deps[m]; ok {
			fmt.Fprintf(w, "  %s %s\n", m, v)
		}
	}
}

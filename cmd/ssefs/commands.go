package main

// The command table: every command's path, a one-line summary and what its arguments
// are, for 'ssefs help', shell completion and the man page.
//
// A command's usage text and flags are not copied here. describe asks the command itself,
// with --help, and the command hands its usage text and the very FlagSet it parses with to
// showHelp, which gives them to describe instead of printing them. So completion and the
// man page cannot drift from the parsers: a flag added to mount shows up in both without
// a change here.

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// argKind is what a command takes after its flags, for completion.
type argKind int

const (
	argNone  argKind = iota
	argDir           // a directory (a MOUNTPOINT)
	argFile          // files
	argWords         // one of command.words
	argName          // a name only the store or the KMS knows (a key, a bucket): not completed
)

type command struct {
	path    string // "key rotate"
	summary string
	args    argKind
	words   []string // argWords
	// run is the top-level command's entry point, given the rest of the path and then
	// the arguments; only top-level commands have one.
	run func(args []string, stdout, stderr io.Writer) error
	// env: the command reads every flag from SSEFS_<FLAG> as well.
	env bool
	// group: a command that only has subcommands.
	group bool
}

// commands lists every command, parents before their subcommands. It is a function, not
// a variable, because the completion and man commands in it read it themselves.
func commands() []command {
	return []command{
		{path: "mount", summary: "mount the store (all buckets, or one with --bucket)", args: argDir, run: runMount, env: true},
		{path: "umount", summary: "unmount, and wait until ssefs has flushed and exited", args: argDir, run: runUmount},
		{path: "serve", summary: "serve the store's S3 API without a mount", run: runServe, env: true},
		{path: "key", summary: "manage and check the KMS's keys, re-seal file keys", run: runKey, group: true},
		{path: "key create", summary: "create a key in the KMS", args: argName, env: true},
		{path: "key list", summary: "list the KMS's keys", args: argName, env: true},
		{path: "key status", summary: "check that a key can seal and unseal", args: argName, env: true},
		{path: "key rotate", summary: "re-seal file keys (or meta.key) under another key", env: true},
		{path: "bucket", summary: "a bucket's settings", run: runBucket, group: true},
		{path: "bucket encryption", summary: "a bucket's default key", group: true},
		{path: "bucket encryption set", summary: "set a bucket's default key", args: argName, env: true},
		{path: "bucket encryption get", summary: "show a bucket's default key", args: argName, env: true},
		{path: "bucket encryption clear", summary: "go back to the process default key", args: argName, env: true},
		{path: "stat", summary: "how files on a mount are encrypted", args: argFile, run: runStat},
		{path: "df", summary: "files, bytes and keys of each bucket", run: runDf, env: true},
		{path: "fsck", summary: "check (and repair) an unmounted data directory", run: runFsck, env: true},
		{path: "backup", summary: "snapshot the metadata, for a restore on another host", run: runBackup, env: true},
		{path: "restore", summary: "rebuild a data directory from a snapshot and the KMS", run: runRestore, env: true},
		{path: "config", summary: "check a configuration", run: runConfig, group: true},
		{path: "config check", summary: "check a mount's configuration without mounting", args: argDir, env: true},
		{path: "completion", summary: "print a bash or zsh completion script", args: argWords, words: []string{"bash", "zsh"}, run: runCompletion},
		{path: "man", summary: "print the manual page (roff)", run: runMan},
		{path: "version", summary: "print the version and module versions", run: runVersion},
		{path: "help", summary: "show help", args: argWords, run: runHelp},
	}
}

// lookupCommand finds a command by its path.
func lookupCommand(path string) (command, bool) {
	for _, c := range commands() {
		if c.path == path {
			return c, true
		}
	}
	return command{}, false
}

// subcommands lists the commands one word below path ("" = the top level).
func subcommands(path string) []command {
	var out []command
	for _, c := range commands() {
		parent := ""
		if i := strings.LastIndexByte(c.path, ' '); i >= 0 {
			parent = c.path[:i]
		}
		if parent == path {
			out = append(out, c)
		}
	}
	return out
}

func (c command) name() string { return c.path[strings.LastIndexByte(c.path, ' ')+1:] }

// helpCapture stands in for stdout when describe asks a command for its help.
type helpCapture struct {
	text  strings.Builder // what a command printed without showHelp (the groups' help)
	usage string
	flags *pflag.FlagSet
	shown bool
}

func (h *helpCapture) Write(p []byte) (int, error) { return h.text.Write(p) }

// showHelp prints a command's help: its usage text, then its flags (f may be nil).
func showHelp(w io.Writer, usage string, f *pflag.FlagSet) {
	if h, ok := w.(*helpCapture); ok {
		h.usage, h.flags, h.shown = usage, f, true
		return
	}
	fmt.Fprint(w, usage)
	if f != nil {
		fmt.Fprint(w, f.FlagUsages())
	}
}

// describe returns a command's usage text and its FlagSet (nil for commands without
// flags), as the command's own --help has them.
func describe(c command) (string, *pflag.FlagSet, error) {
	words := strings.Fields(c.path)
	top, ok := lookupCommand(words[0])
	if !ok || top.run == nil {
		return "", nil, fmt.Errorf("command %q has no entry point", c.path)
	}
	var h helpCapture
	err := top.run(append(words[1:], "--help"), &h, io.Discard)
	if err != nil && !errors.Is(err, errHelp) {
		return "", nil, fmt.Errorf("%s --help: %w", c.path, err)
	}
	if !h.shown {
		return h.text.String(), nil, nil
	}
	return h.usage, h.flags, nil
}

const helpUsage = `Usage: ssefs help [COMMAND...]

Shows the help of a command, as 'ssefs COMMAND --help' does; without a command, the list
of commands.

Examples:
  ssefs help
  ssefs help mount
  ssefs help key rotate
`

// runHelp is the table's entry point of help; dispatch handles 'ssefs help' itself.
func runHelp(args []string, stdout, stderr io.Writer) error {
	return dispatch(append([]string{"help"}, args...), stdout, stderr)
}

const versionUsage = `Usage: ssefs version

Prints the version of ssefs and of the modules that matter for its on-disk format and
its KMS and object store clients (go-fuse, sio, badger, minio-go), the KES client and
the Go release it was built with.

Examples:
  ssefs version
  ssefs --version
`

func runVersion(args []string, stdout, _ io.Writer) error {
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		showHelp(stdout, versionUsage, nil)
		return errHelp
	case len(args) > 0:
		return usageError{fmt.Sprintf("version takes no arguments, got %q", args)}
	}
	printVersion(stdout)
	return nil
}

// versionModules are the modules 'ssefs version' names: the FUSE library, the DARE
// format (sio), the metadata store (badger) and the object store's S3 client.
var versionModules = []string{
	"github.com/hanwen/go-fuse/v2",
	"github.com/minio/sio",
	"github.com/dgraph-io/badger/v4",
	"github.com/minio/minio-go/v7",
}

// kesClient says what talks to KES: ssefs does not link github.com/minio/kes-go but
// speaks KES's HTTP API itself (keys/kes.go), tested against the pinned KES server.
const kesClient = "KES client: ssefs' own (KES API v1, tested against KES v0.24.0; github.com/minio/kes-go is not linked)"

package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// ssefs is its own mount helper: mount(8) runs /sbin/mount.fuse.ssefs for
// 'mount -t fuse.ssefs' and fstab lines of type fuse.ssefs (and /sbin/mount.ssefs for
// type ssefs), so a symlink of either name to the ssefs binary makes those work. util-linux
// calls a helper as
//
//	mount.fuse.ssefs SOURCE TARGET [-s] [-f] [-n] [-v] [-o OPTIONS] [-t TYPE] [-N NAMESPACE]
//
// SOURCE is the data directory, TARGET the mountpoint, and each -o option NAME=VALUE is the
// flag --NAME=VALUE of 'ssefs mount' (underscores or dashes: key_cache_ttl=1m is
// --key-cache-ttl=1m; a bare NAME sets a boolean flag), plus key_file for
// --master-key-file. The generic options that mount(8), fstab and systemd use are skipped.
// A helper must return only once the mount is ready, so it runs as 'ssefs mount --daemon'.

var mountHelperNames = []string{"mount.fuse.ssefs", "mount.ssefs"}

func isMountHelper(argv0 string) bool {
	return slices.Contains(mountHelperNames, filepath.Base(argv0))
}

// mountOptionAliases are -o names that are not a flag's own name.
var mountOptionAliases = map[string]string{
	"key-file": flagMasterKeyFile, // the and fstab's short name for the static key
}

// genericMountOptions are mount(8)'s, fstab's and systemd's options, which mean nothing to
// ssefs or describe what an ssefs mount always is (rw, nosuid, nodev, exec; no access
// times are written on reads, as with noatime); so are x-* and X-* options. mount(8)
// drops some of them itself (defaults, noauto, x-systemd.*, comment=), but a helper run by
// hand may see them; user=NAME is what it passes for fstab's "user".
var genericMountOptions = map[string]bool{
	"defaults": true, "rw": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "_netdev": true, "nofail": true, "comment": true,
	"nosuid": true, "nodev": true, "exec": true, "async": true, "noatime": true,
	"nodiratime": true, "relatime": true, "lazytime": true, "silent": true, "loud": true,
}

// refusedMountOptions ask for what an ssefs mount cannot be: failing is better than a
// mount that quietly is not what fstab says.
var refusedMountOptions = map[string]string{
	"ro":          "ssefs has no read-only mode",
	"suid":        "an ssefs mount is always nosuid",
	"dev":         "an ssefs mount is always nodev",
	"noexec":      "ssefs cannot mount noexec",
	"sync":        "ssefs has no synchronous mode: fsync is the durability point",
	"dirsync":     "ssefs has no synchronous mode: fsync is the durability point",
	"mand":        "ssefs has no mandatory locks",
	"strictatime": "ssefs does not write access times on reads",
	"atime":       "ssefs does not write access times on reads",
	"data-dir":    "the data directory is the mount's source (fstab's first field)",
	"daemon":      "the mount helper always starts ssefs in the background",
	"help":        "not an option",
}

const mountHelperUsage = `Usage: mount.fuse.ssefs DATA_DIR MOUNTPOINT [-s] [-f] [-n] [-v] [-o OPTIONS]
(mount(8) runs it for 'mount -t fuse.ssefs DATA_DIR MOUNTPOINT -o OPTIONS' and fstab lines
of type fuse.ssefs; OPTIONS are the flags of 'ssefs mount' as NAME=VALUE, see 'ssefs help mount')`

// mountHelperArgs is a helper command line translated for 'ssefs mount'.
type mountHelperArgs struct {
	args    []string          // for runMount: --daemon --data-dir=SOURCE --FLAG=VALUE... -- TARGET
	options map[string]string // flag name -> the -o name it came from, for error messages
	skipped []string          // with -s: options ssefs does not know
	fake    bool              // -f: check everything, mount nothing
}

func parseMountHelperArgs(args []string) (mountHelperArgs, error) {
	h := mountHelperArgs{options: map[string]string{}}
	var positional, optstrs []string
	sloppy := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 == len(args) {
				return h, usageError{fmt.Sprintf("%s needs a value\n%s", a, mountHelperUsage)}
			}
			i++
			switch a {
			case "-o":
				optstrs = append(optstrs, args[i])
			case "-t":
				if t := args[i]; t != "fuse.ssefs" && t != "ssefs" {
					return h, usageError{fmt.Sprintf("-t %s: this is the mount helper of type fuse.ssefs", t)}
				}
			case "-N":
				return h, usageError{"-N (mounting in another mount namespace) is not supported: run mount(8) inside that namespace"}
			}
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			optstrs = append(optstrs, a[2:])
		case a == "-s":
			sloppy = true
		case a == "-f":
			h.fake = true
		case a == "-n", a == "-v":
			// no /etc/mtab to skip (the kernel's table is the only one); nothing more to say
		case strings.HasPrefix(a, "-") && a != "-":
			return h, usageError{fmt.Sprintf("unknown argument %s\n%s", a, mountHelperUsage)}
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) != 2 {
		return h, usageError{fmt.Sprintf("want DATA_DIR and MOUNTPOINT, got %d arguments\n%s", len(positional), mountHelperUsage)}
	}
	// The flags of 'ssefs mount' themselves, to know each option's flag and whether it
	// takes a value.
	var probe mountConfig
	flags, _ := probe.flagSet()
	h.args = []string{"--daemon", "--data-dir=" + positional[0]}
	for _, optstr := range optstrs {
		opts, err := splitMountOptions(optstr)
		if err != nil {
			return h, err
		}
		for _, o := range opts {
			name, value, hasValue := strings.Cut(o, "=")
			flag := strings.ReplaceAll(name, "_", "-")
			if alias, ok := mountOptionAliases[flag]; ok {
				flag = alias
			}
			if genericMountOptions[name] || strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "X-") {
				continue
			}
			if why := refusedMountOptions[flag]; why != "" {
				return h, usageError{fmt.Sprintf("-o %s: %s", name, why)}
			}
			fl := flags.Lookup(flag)
			switch {
			case fl == nil && sloppy:
				h.skipped = append(h.skipped, name)
				continue
			case fl == nil:
				return h, usageError{fmt.Sprintf("-o %s: unknown option; the options are the flags of 'ssefs mount' (see 'ssefs help mount') with _ or -, e.g. -o key_cache_ttl=1m for --key-cache-ttl=1m", name)}
			case !hasValue && fl.NoOptDefVal == "":
				return h, usageError{fmt.Sprintf("-o %s needs a value: -o %s=%s", name, name, strings.ToUpper(fl.Value.Type()))}
			}
			h.options[flag] = name
			if hasValue {
				h.args = append(h.args, "--"+flag+"="+unquoteMountOption(value))
			} else {
				h.args = append(h.args, "--"+flag)
			}
		}
	}
	// "--" ends the flags, so a mountpoint starting with "-" stays a mountpoint.
	h.args = append(h.args, "--", positional[1])
	return h, nil
}

// splitMountOptions splits an option string at commas outside double quotes, which is how
// libmount quotes a value holding a comma: -o 'root_password_file="/etc/a,b"'.
func splitMountOptions(s string) ([]string, error) {
	var opts []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			if cur.Len() > 0 {
				opts = append(opts, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		return nil, usageError{fmt.Sprintf("-o %s: a double quote is not closed", s)}
	}
	if cur.Len() > 0 {
		opts = append(opts, cur.String())
	}
	return opts, nil
}

func unquoteMountOption(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// runMountHelper is ssefs run by mount(8) as mount.fuse.ssefs.
func runMountHelper(args []string, stdout, stderr io.Writer) error {
	h, err := parseMountHelperArgs(args)
	if err != nil {
		return err
	}
	for _, name := range h.skipped {
		fmt.Fprintf(stderr, "ssefs: -o %s: unknown option, skipped (sloppy mount, -s)\n", name)
	}
	if h.fake {
		_, _, err := parseMountFlags(h.args, io.Discard)
		return h.optionError(err)
	}
	return h.optionError(runMount(h.args, stdout, stderr))
}

// optionError words a usage error about a flag in terms of the -o option the user wrote:
// "invalid argument "x" for "-o attr_timeout" flag", not "--attr-timeout".
func (h mountHelperArgs) optionError(err error) error {
	var ue usageError
	if !errors.As(err, &ue) {
		return err
	}
	msg := strings.TrimPrefix(ue.msg, "mount: ")
	// Longest first, so that --kms-kes-key-file is not taken for a --kms-kes-key.
	flags := make([]string, 0, len(h.options))
	for f := range h.options {
		flags = append(flags, f)
	}
	slices.SortFunc(flags, func(a, b string) int { return len(b) - len(a) })
	for _, f := range flags {
		msg = replaceFlag(msg, "--"+f, "-o "+h.options[f])
	}
	return usageError{msg}
}

// replaceFlag replaces flag where it is a whole word (not the start of a longer flag).
func replaceFlag(s, flag, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, flag)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(flag)
		if end < len(s) && (s[end] == '-' || s[end] >= 'a' && s[end] <= 'z' || s[end] >= '0' && s[end] <= '9') {
			b.WriteString(s[:end])
		} else {
			b.WriteString(s[:i] + repl)
		}
		s = s[end:]
	}
}

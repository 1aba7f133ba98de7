package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

const manUsage = `Usage: ssefs man

Prints ssefs' manual page, in roff (man(7)), generated from the same command table,
usage texts and flags as the commands' help, so it always matches the ssefs that printed
it.

Examples:
  ssefs man | man -l -
  ssefs man > /usr/local/share/man/man1/ssefs.1 && mandb -q
`

func runMan(args []string, stdout, _ io.Writer) error {
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		showHelp(stdout, manUsage, nil)
		return errHelp
	case len(args) > 0:
		return usageError{fmt.Sprintf("man takes no arguments, got %q (see 'ssefs help man')", args)}
	}
	page, err := manPage()
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, page)
	return err
}

// usageParts is a command's usage text cut into what the man page shows apart.
type usageParts struct {
	synopsis    []string // "ssefs mount [flags] MOUNTPOINT"
	description []string // lines; blank lines between paragraphs
	examples    []string // lines, indentation kept
}

// parseUsage cuts a usage text: the "Usage:" lines, the "Examples:" block, the flags
// header and the shared KMS text dropped, and the rest as description.
func parseUsage(text string) usageParts {
	text = strings.ReplaceAll(text, kmsUsage, "")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	// The flags header ("Flags:", "Flags (each also read from ...):") ends the text.
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "Flags") && strings.HasSuffix(lines[i], ":") {
			lines = lines[:i]
			break
		}
	}
	var p usageParts
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "Usage: "):
			p.synopsis = append(p.synopsis, strings.TrimPrefix(l, "Usage: "))
			for i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "ssefs ") && strings.HasPrefix(lines[i+1], " ") {
				i++
				p.synopsis = append(p.synopsis, strings.TrimSpace(lines[i]))
			}
		case l == "Examples:":
			for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || lines[i+1] == "" && i+2 < len(lines) && strings.HasPrefix(lines[i+2], " ")) {
				i++
				p.examples = append(p.examples, lines[i])
			}
		default:
			p.description = append(p.description, l)
		}
	}
	p.description = trimBlank(p.description)
	return p
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	// Runs of blank lines are one paragraph break.
	out := lines[:0:0]
	for i, l := range lines {
		if strings.TrimSpace(l) == "" && i > 0 && strings.TrimSpace(lines[i-1]) == "" {
			continue
		}
		out = append(out, l)
	}
	return out
}

// roffText escapes text for roff: backslashes, hyphens as \- (so that flags copied from
// the page are ASCII), and non-ASCII characters as \[uXXXX].
func roffText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r >= utf8.RuneSelf:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffLine is roffText for a whole input line, which must not start like a request.
func roffLine(s string) string {
	t := roffText(s)
	if strings.HasPrefix(t, ".") || strings.HasPrefix(t, "'") {
		t = `\&` + t
	}
	return t
}

// manWriter builds the page.
type manWriter struct{ b strings.Builder }

func (m *manWriter) req(format string, args ...any) { fmt.Fprintf(&m.b, format+"\n", args...) }

// paragraphs renders description lines: prose is filled; indented lines (lists, samples
// of output) are kept as they are.
func (m *manWriter) paragraphs(lines []string) {
	m.req(".PP")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			m.req(".PP")
		case strings.HasPrefix(l, " "):
			var block []string
			for ; i < len(lines) && (strings.HasPrefix(lines[i], " ") || strings.TrimSpace(lines[i]) == "" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ")); i++ {
				block = append(block, lines[i])
			}
			i--
			m.preformatted(block)
		default:
			m.req("%s", roffLine(strings.TrimSpace(l)))
		}
	}
}

func (m *manWriter) preformatted(lines []string) {
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	m.req(".RS 4\n.nf")
	for _, l := range lines {
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		m.req("%s", roffLine(l))
	}
	m.req(".fi\n.RE")
}

// flagGroup is a set of flags that several commands share, documented once.
type flagGroup struct {
	title string
	names map[string]bool
}

// sharedFlagGroups are registered by the same functions the commands call, so they hold
// exactly those flags.
func sharedFlagGroups() []flagGroup {
	group := func(title string, add func(*pflag.FlagSet)) flagGroup {
		f := pflag.NewFlagSet(title, pflag.ContinueOnError)
		add(f)
		g := flagGroup{title: title, names: map[string]bool{}}
		f.VisitAll(func(fl *pflag.Flag) { g.names[fl.Name] = true })
		return g
	}
	return []flagGroup{
		group("KMS OPTIONS", func(f *pflag.FlagSet) { addKMSFlags(f) }),
		group("OBJECT STORE OPTIONS", func(f *pflag.FlagSet) { addObjStoreFlags(f) }),
		group("S3 API OPTIONS", func(f *pflag.FlagSet) { addS3Flags(f) }),
	}
}

// flagEntry renders one flag as a tagged paragraph.
func (m *manWriter) flagEntry(fl *pflag.Flag, env bool) {
	varname, usage := pflag.UnquoteUsage(fl)
	tag := `\fB\-\-` + roffText(fl.Name) + `\fR`
	if fl.Shorthand != "" {
		tag = `\fB\-` + roffText(fl.Shorthand) + `\fR, ` + tag
	}
	if varname != "" && fl.NoOptDefVal == "" {
		tag += ` \fI` + roffText(varname) + `\fR`
	}
	m.req(".TP\n%s", tag)
	text := usage
	if def := manDefault(fl); def != "" {
		text += " (default " + def + ")"
	}
	m.req("%s", roffLine(text))
	if env && fl.Name != "help" {
		m.req(".br\nEnvironment: \\fB%s\\fR", roffText(envName(fl.Name)))
	}
}

// manDefault is a flag's default as the page shows it: none for the zero values, and the
// data directory's rule rather than this user's path.
func manDefault(fl *pflag.Flag) string {
	switch fl.DefValue {
	case "", "false", "0", "0s", "[]":
		return ""
	}
	if fl.Name == "data-dir" && fl.DefValue == defaultDataDir() {
		return "$XDG_DATA_HOME/ssefs, else ~/.local/share/ssefs"
	}
	return fl.DefValue
}

type describedCommand struct {
	command
	parts usageParts
	text  string
	flags *pflag.FlagSet
}

func manPage() (string, error) {
	var cmds []describedCommand
	for _, c := range commands() {
		text, f, err := describe(c)
		if err != nil {
			return "", err
		}
		cmds = append(cmds, describedCommand{command: c, parts: parseUsage(text), text: text, flags: f})
	}
	groups := sharedFlagGroups()
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}

	m := &manWriter{}
	m.req(`.\" Generated by 'ssefs man' from ssefs' command table and its commands' flags.`)
	m.req(`.TH SSEFS 1 "" "ssefs %s" "ssefs manual"`, roffText(version))
	// Flags and paths must not be hyphenated or stretched apart.
	m.req(".nh\n.ad l")
	m.req(".SH NAME\nssefs \\- an encrypting filesystem and S3 server with keys from a KMS")

	m.req(".SH SYNOPSIS\n.nf")
	var seen []string
	for _, c := range cmds {
		for _, s := range c.parts.synopsis {
			if slices.Contains(seen, s) {
				continue
			}
			seen = append(seen, s)
			rest := strings.TrimPrefix(s, "ssefs ")
			m.req(`\fBssefs\fR %s`, roffText(rest))
		}
	}
	m.req(".fi")

	m.req(".SH DESCRIPTION")
	m.paragraphs(strings.Split(manDescription, "\n"))
	m.paragraphs(strings.Split(strings.TrimRight(kmsUsage, "\n"), "\n"))

	m.req(".SH COMMANDS")
	described := map[string]string{} // usage text -> the command that showed it
	for _, c := range cmds {
		m.req(`.SS "ssefs %s"`, roffText(c.path))
		if first, ok := described[c.text]; ok {
			m.req(".PP\n%s", roffLine("See ssefs "+first+" above."))
		} else {
			described[c.text] = c.path
			m.paragraphs(c.parts.description)
		}
		if c.flags == nil {
			continue
		}
		var shared []string
		m.req(".PP\nOptions:")
		m.req(".RS 4")
		c.flags.VisitAll(func(fl *pflag.Flag) {
			if fl.Hidden {
				return
			}
			for _, g := range groups {
				if g.names[fl.Name] {
					if !slices.Contains(shared, g.title) {
						shared = append(shared, g.title)
					}
					return
				}
			}
			m.flagEntry(fl, c.env)
		})
		m.req(".RE")
		if len(shared) > 0 {
			var titles []string
			for _, t := range shared {
				titles = append(titles, `\fB`+t+`\fR`)
			}
			m.req(".PP\nAnd the options of %s below.", joinAnd(titles))
		}
	}

	for _, g := range groups {
		m.req(".SH %s", g.title)
		m.req(".PP\n%s", roffLine(sharedGroupIntro[g.title]))
		var f *pflag.FlagSet
		for _, c := range cmds {
			if c.flags != nil && c.flags.Lookup(firstName(g)) != nil {
				f = c.flags
				break
			}
		}
		if f == nil {
			continue
		}
		f.VisitAll(func(fl *pflag.Flag) {
			if g.names[fl.Name] && !fl.Hidden {
				m.flagEntry(fl, true)
			}
		})
	}

	m.req(".SH ENVIRONMENT")
	m.req(".PP\n%s", roffLine("Every flag of the commands that say so is also read from SSEFS_<FLAG>: the flag's name in capitals, with - as _. The command line wins over SSEFS_*, SSEFS_* over MinIO's variables. An empty variable counts as unset."))
	var envFlags []string
	usedBy := map[string][]string{}
	for _, c := range cmds {
		if !c.env || c.flags == nil {
			continue
		}
		c.flags.VisitAll(func(fl *pflag.Flag) {
			if fl.Hidden || fl.Name == "help" {
				return
			}
			if _, ok := usedBy[fl.Name]; !ok {
				envFlags = append(envFlags, fl.Name)
			}
			usedBy[fl.Name] = append(usedBy[fl.Name], c.path)
		})
	}
	slices.Sort(envFlags)
	for _, name := range envFlags {
		where := strings.Join(usedBy[name], ", ")
		for _, g := range groups {
			if g.names[name] {
				where = "see " + g.title
			}
		}
		m.req(".TP\n\\fB%s\\fR", roffText(envName(name)))
		m.req(`\-\-%s (%s)`, roffText(name), roffText(where))
	}
	for _, v := range manEnvironment() {
		m.req(".TP\n\\fB%s\\fR", roffText(strings.Join(v.names, ", ")))
		m.req("%s", roffLine(v.meaning))
	}

	m.req(".SH FILES")
	m.paragraphs(strings.Split(manFiles, "\n"))

	m.req(".SH EXIT STATUS")
	m.paragraphs(strings.Split(manExit, "\n"))

	m.req(".SH EXAMPLES")
	var exSeen []string
	for _, c := range cmds {
		ex := strings.Join(c.parts.examples, "\n")
		if ex == "" || slices.Contains(exSeen, ex) {
			continue
		}
		exSeen = append(exSeen, ex)
		m.req(".PP\n%s", roffLine("ssefs "+c.path+":"))
		m.preformatted(c.parts.examples)
	}

	m.req(".SH SEE ALSO")
	m.req("\\fBmount\\fR(8), \\fBumount\\fR(8), \\fBfuse\\fR(4), \\fBmc\\fR(1); the README and DESIGN.md of ssefs.")
	return m.b.String(), nil
}

func firstName(g flagGroup) string {
	for n := range g.names {
		return n
	}
	return ""
}

var sharedGroupIntro = map[string]string{
	"KMS OPTIONS":          "Where the keys come from: KES, Vault transit, or a static master key (see DESCRIPTION). Every command that opens a data directory or talks to the KMS takes them.",
	"OBJECT STORE OPTIONS": "Where the chunk objects live: DATA/objects by default, or an S3 bucket. The data directory records its store, so later commands find it without these flags. mount, serve and config check take them; the other commands read them from SSEFS_STORE_* only.",
	"S3 API OPTIONS":       "The S3 API that serve runs, and mount with --s3-address.",
}

type envVar struct {
	names   []string
	meaning string
}

// manEnvironment lists the variables that are not SSEFS_<FLAG>: MinIO's names for the
// KMS settings (the very lists kmsconfig.go reads), and the others ssefs reads.
func manEnvironment() []envVar {
	minio := func(names []string, flag string) envVar {
		return envVar{names, "as --" + flag + " (MinIO's name)"}
	}
	return []envVar{
		{[]string{ssefsMasterKey, minioMasterKey}, "the static master key itself, NAME:64-hex-digits"},
		{[]string{ssefsMasterKeyFile, minioMasterKeyFile}, "a file holding the static master key"},
		minio(minioKESEndpoint, flagKESEndpoint),
		minio(minioKESCertFile, flagKESCertFile),
		minio(minioKESKeyFile, flagKESKeyFile),
		minio(minioKESCAPath, flagKESCAPath),
		minio(minioKESKeyName, flagKESKeyName),
		minio(minioKESEnclave, flagKESEnclave),
		minio(minioVaultEndpoint, flagVaultEndpoint),
		minio(minioVaultRoleID, flagVaultRoleID),
		minio(minioVaultSecret, flagVaultSecret),
		minio(minioVaultKeyName, flagVaultKeyName),
		minio(minioVaultNamespace, flagVaultNamespace),
		minio(minioVaultCAPath, flagVaultCAPath),
		{minioVaultAuthType, "must be approle if set: ssefs logs in to Vault with AppRole only"},
		{[]string{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}, "the S3 API's credentials, as --root-user and --root-password"},
		{[]string{"MINIO_DOMAIN"}, "as --s3-domain"},
		{[]string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"},
			"the S3 object store's credentials when --store-access-key is not given"},
		{[]string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"}, "the S3 object store's endpoint and region when not given or recorded"},
		{[]string{"XDG_DATA_HOME"}, "the default data directory is $XDG_DATA_HOME/ssefs (else ~/.local/share/ssefs)"},
		{[]string{"GOMEMLIMIT"}, "overrides the memory limit ssefs sets from --write-buffer-mb, --read-cache-mb and the inodes the kernel holds"},
		{[]string{"SSEFS_DEBUG_PPROF"}, "a loopback HOST:PORT where mount and serve serve Go's profiler; for developers only: profiles can hold plaintext and keys"},
	}
}

const manDescription = `ssefs mounts a store of buckets through FUSE, so that every POSIX tool works on it, while
every byte of file content is encrypted at rest in MinIO's DARE format under a fresh key per
file. Those per-file keys are sealed, as MinIO's SSE-S3 and SSE-KMS do, by a key from a
key-management system: MinIO KES, HashiCorp Vault transit, or a static master key. All
metadata (names, sizes, extended attributes, sealed keys) lives in an encrypted Badger
store in the data directory; the object store, a local directory or an S3 bucket, sees only
random IDs and ciphertext.

The same process can serve an S3 API on the same store (mount --s3-address, or serve), so
S3 clients and POSIX tools see the same files at once. Buckets are the top-level
directories of the mount.

While a mount or serve runs, the admin commands (key rotate, bucket encryption, df) reach
it through DATA/admin.sock; otherwise they open the data directory themselves, with the KMS
given to them.`

const manFiles = `DATA is the data directory (--data-dir):
  DATA/master.key   the generated master key, only when no KMS is configured (mode 0600)
  DATA/meta.key     the metadata's key, sealed by the KMS
  DATA/meta/        the metadata (Badger), encrypted
  DATA/meta.spare   zeros: room the metadata falls back on when the disk is full
  DATA/objects/     the chunk objects, DARE ciphertext under random names (local store)
  DATA/store.json   the S3 store the data directory was created with (S3 store)
  DATA/admin.sock   while a mount or serve runs: the admin commands' socket (mode 0600)
  DATA/lock         held by the ssefs that serves the data directory`

const manExit = `0 on success; 1 when a command fails (for fsck: inconsistencies remain; for config
check: a check failed); 2 for a usage error.`

package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// Every command, group or not, has help with a Usage line, a description and Examples,
// printed with exit code 0 both as 'ssefs PATH --help' and as 'ssefs help PATH'.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	clearKMSEnv(t)
	for _, c := range commands() {
		text, _, err := describe(c)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		p := parseUsage(text)
		// Commands that share a text (bucket encryption set, get, clear) each have a line.
		if !strings.HasPrefix(text, "Usage: ") || !slices.ContainsFunc(p.synopsis, func(s string) bool {
			return s == "ssefs "+c.path || strings.HasPrefix(s, "ssefs "+c.path+" ")
		}) {
			t.Errorf("%s: the help has no Usage line for it:\n%s", c.path, text)
		}
		if len(p.description) == 0 {
			t.Errorf("%s: the help has no description:\n%s", c.path, text)
		}
		if !strings.Contains(text, "\nExamples:\n  ") || !slices.ContainsFunc(p.examples, func(l string) bool {
			return strings.Contains(l, "ssefs "+strings.Fields(c.path)[0])
		}) {
			t.Errorf("%s: the help has no Examples section with the command:\n%s", c.path, text)
		}
		if c.summary == "" {
			t.Errorf("%s: no summary", c.path)
		}
		args := append(strings.Fields(c.path), "--help")
		for _, r := range []result{runCmd(args...), runCmd(append([]string{"help"}, strings.Fields(c.path)...)...)} {
			if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, text) {
				t.Errorf("ssefs %s: exit %d, stderr %q, stdout does not start with the usage:\n%s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
			}
		}
	}
}

// The top-level usage lists exactly the commands of the table: a command added to
// dispatch and the usage, but not to the table, would lack completion and a man entry.
func TestTopUsageListsTheCommandTable(t *testing.T) {
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^  ssefs ([a-z]+)`).FindAllStringSubmatch(topUsage, -1) {
		if !slices.Contains(listed, m[1]) {
			listed = append(listed, m[1])
		}
	}
	var table []string
	for _, c := range subcommands("") {
		table = append(table, c.name())
	}
	slices.Sort(listed)
	slices.Sort(table)
	if !slices.Equal(listed, table) {
		t.Errorf("ssefs help lists %q, the command table has %q", listed, table)
	}
	for _, c := range commands() {
		if strings.Contains(c.path, " ") != (c.run == nil) {
			t.Errorf("%s: only top-level commands have (and must have) an entry point", c.path)
		}
		// (help shows the command list whatever follows it.)
		if r := runCmd(c.path, "--frobnicate"); c.run != nil && c.path != "help" && r.code != 2 {
			t.Errorf("ssefs %s --frobnicate: exit 0", c.path)
		}
	}
}

// describe hands out the FlagSet the command parses with, not a copy: mount's is the one
// mountConfig.flagSet builds (with whatever flags were added to it), and key rotate's has
// its own flags besides the KMS ones.
func TestDescribeGivesTheParsersFlags(t *testing.T) {
	names := func(f *pflag.FlagSet) []string {
		var out []string
		f.VisitAll(func(fl *pflag.Flag) { out = append(out, fl.Name) })
		return out
	}
	mount, _ := lookupCommand("mount")
	_, f, err := describe(mount)
	if err != nil || f == nil {
		t.Fatalf("describe mount: %v, %v", f, err)
	}
	var c mountConfig
	want, _ := c.flagSet()
	if got := names(f); !slices.Equal(got, names(want)) {
		t.Errorf("mount's flags from describe:\n%q\nfrom mountConfig.flagSet:\n%q", got, names(want))
	}
	check, _ := lookupCommand("config check")
	if _, cf, _ := describe(check); cf == nil || !slices.Equal(names(cf), names(want)) {
		t.Errorf("config check does not take mount's flags")
	}
	rotate, _ := lookupCommand("key rotate")
	_, rf, err := describe(rotate)
	if err != nil || rf == nil {
		t.Fatalf("describe key rotate: %v", err)
	}
	for _, n := range []string{"metadata", "from-key", "to-key", "abandon", "bucket", "data-dir", flagKESEndpoint, flagMasterKeyFile} {
		if rf.Lookup(n) == nil {
			t.Errorf("key rotate's flags lack --%s", n)
		}
	}
	for _, path := range []string{"key", "bucket", "bucket encryption", "config", "version", "man"} {
		c, _ := lookupCommand(path)
		if _, f, err := describe(c); err != nil || f != nil {
			t.Errorf("%s: flags %v, %v; want none", path, f, err)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCmd(args...)
		r.wantOK(t)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if !regexp.MustCompile(`^ssefs \S+ \(go1\.\d+`).MatchString(lines[0]) {
			t.Errorf("first line %q", lines[0])
		}
		// The test binary links the same modules as ssefs.
		for _, m := range versionModules {
			if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(m) + ` v\d`).MatchString(r.stdout) {
				t.Errorf("ssefs %s does not name %s with its version:\n%s", args[0], m, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "  KES client: ") {
			t.Errorf("no KES client line:\n%s", r.stdout)
		}
	}
	runCmd("version", "extra").wantRefusal(t, 2, "extra")
}

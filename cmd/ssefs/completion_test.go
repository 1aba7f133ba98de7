package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// completionScript writes 'ssefs completion SHELL' into a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	r := runCmd("completion", shell)
	r.wantOK(t)
	if r.stderr != "" {
		t.Fatalf("stderr: %s", r.stderr)
	}
	path := filepath.Join(t.TempDir(), "ssefs."+shell)
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bashComplete runs the completion function as bash would for the command line words,
// the cursor at the end of the last word, and returns what it offers, sorted.
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, bashQuote(w))
	}
	prog := `source "$1" || exit 9
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_ssefs
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "-c", prog, "bash", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	return got
}

func mountFlagNames(prefix string) []string {
	var c mountConfig
	f, _ := c.flagSet()
	return flagNames(f, prefix)
}

// flagNames are the long flags of f that start with prefix, sorted.
func flagNames(f *pflag.FlagSet, prefix string) []string {
	var out []string
	f.VisitAll(func(fl *pflag.Flag) {
		if !fl.Hidden && strings.HasPrefix("--"+fl.Name, prefix) {
			out = append(out, "--"+fl.Name)
		}
	})
	slices.Sort(out)
	return out
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	script := completionScript(t, "bash")
	dir := t.TempDir()
	for _, d := range []string{"mnt-a", "mnt-b", "mnt c"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "mk.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, c := range subcommands("") {
		top = append(top, c.name())
	}
	slices.Sort(top)
	p := dir + "/"
	cases := []struct {
		words []string
		want  []string
	}{
		{[]string{"ssefs", "mo"}, []string{"mount"}},
		{[]string{"ssefs", ""}, top},
		{[]string{"ssefs", "--ver"}, []string{"--version"}},
		{[]string{"ssefs", "mount", "--kms-k"}, mountFlagNames("--kms-k")},
		{[]string{"ssefs", "mount", "--"}, mountFlagNames("--")},
		{[]string{"ssefs", "key", "r"}, []string{"rotate"}},
		{[]string{"ssefs", "key", "rotate", "--me"}, []string{"--metadata"}},
		{[]string{"ssefs", "bucket", "encryption", "s"}, []string{"set"}},
		{[]string{"ssefs", "bucket", "encryption", "set", "--k"}, flagNames(newCommandFlags("x").f, "--k")},
		{[]string{"ssefs", "config", "c"}, []string{"check"}},
		{[]string{"ssefs", "completion", ""}, []string{"bash", "zsh"}},
		{[]string{"ssefs", "help", "ke"}, []string{"key"}},
		{[]string{"ssefs", "df", "--js"}, []string{"--json"}},
		{[]string{"ssefs", "stat", "--"}, []string{"--help", "--json"}},
		// A flag's value: directories for -dir flags, files for -file flags.
		{[]string{"ssefs", "mount", "--data-dir", p}, []string{p + "mnt c", p + "mnt-a", p + "mnt-b"}},
		{[]string{"ssefs", "mount", "--data-dir", "=", p}, []string{p + "mnt c", p + "mnt-a", p + "mnt-b"}},
		{[]string{"ssefs", "mount", "--master-key-file", p}, []string{p + "mk.key", p + "mnt c", p + "mnt-a", p + "mnt-b"}},
		// The mountpoint, after flags with and without values.
		{[]string{"ssefs", "mount", "--debug", "--bucket", "photos", p}, []string{p + "mnt c", p + "mnt-a", p + "mnt-b"}},
		{[]string{"ssefs", "mount", "--bucket", "photos", "--de"}, []string{"--debug"}},
		{[]string{"ssefs", "stat", p + "m"}, []string{p + "mk.key", p + "mnt c", p + "mnt-a", p + "mnt-b"}},
		// A value is not a subcommand, hidden flags are not offered, nor anything after
		// an argument where none is taken.
		{[]string{"ssefs", "key", "rotate", "--bucket", "r"}, nil},
		{[]string{"ssefs", "serve", "--s3-read-header"}, nil},
		{[]string{"ssefs", "mount", "--bucket", ""}, nil},
	}
	set := cases[8].want
	set = append(set, "--key")
	slices.Sort(set)
	cases[8].want = set
	for _, c := range cases {
		got := bashComplete(t, script, c.words...)
		if !slices.Equal(got, c.want) {
			t.Errorf("%q:\n got %q\nwant %q", c.words, got, c.want)
		}
	}
	// Sanity: the flags the other commands add to mount are in its completion.
	if !slices.Contains(cases[4].want, "--kms-kes-endpoint") || !slices.Contains(cases[4].want, "--store") || !slices.Contains(cases[4].want, "--s3-address") {
		t.Errorf("mount's flags lack the KMS, store or S3 ones: %q", cases[4].want)
	}
}

func TestZshCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed (scripts/test.sh installs it)")
	}
	script := completionScript(t, "zsh")
	if out, err := exec.Command("zsh", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	// Loaded the way a user loads it: compinit, then the script registers itself.
	out, err := exec.Command("zsh", "-f", "-c", `autoload -U compinit && compinit -u -D && source "$1" && print -r -- "${_comps[ssefs]}" && whence -w _ssefs _ssefs__mount _ssefs__key__rotate _ssefs__bucket__encryption__set`,
		"zsh", script).CombinedOutput()
	if err != nil {
		t.Fatalf("loading the zsh completion: %v\n%s", err, out)
	}
	want := "_ssefs\n_ssefs: function\n_ssefs__mount: function\n_ssefs__key__rotate: function\n_ssefs__bucket__encryption__set: function\n"
	if string(out) != want {
		t.Fatalf("after loading:\n%s\nwant:\n%s", out, want)
	}
	// What the functions hand _arguments and _describe.
	capture := func(call string) string {
		t.Helper()
		prog := `compdef() { :; }
source "$1" || exit 9
_arguments() { print -rl -- "$@"; state=cmd; return 1 }
_describe() { local arr=${@[-1]}; print -rl -- "${(@P)arr}" }
` + call + " || true"
		out, err := exec.Command("zsh", "-f", "-c", prog, "zsh", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", call, err, out)
		}
		return string(out)
	}
	specs := capture("_ssefs__mount")
	for _, name := range mountFlagNames("--") {
		if !strings.Contains(specs, name+"[") && !strings.Contains(specs, name+"=[") && !strings.Contains(specs, ","+name+"}") {
			t.Errorf("mount's zsh specs lack %s:\n%s", name, specs)
		}
	}
	for _, spec := range []string{"--data-dir=[", ":_files -/", "--master-key-file=[", "*--kms-kes-endpoint=[", "1:mountpoint:_files -/"} {
		if !strings.Contains(specs, spec) {
			t.Errorf("mount's zsh specs lack %q:\n%s", spec, specs)
		}
	}
	if strings.Contains(specs, "s3-read-header-timeout") {
		t.Errorf("a hidden flag is offered:\n%s", specs)
	}
	cmds := capture("_ssefs")
	for _, c := range subcommands("") {
		if !strings.Contains(cmds, c.name()+":"+c.summary+"\n") {
			t.Errorf("the top level does not offer %q:\n%s", c.name(), cmds)
		}
	}
	if got := capture("_ssefs__completion"); !strings.Contains(got, "1:completion:(bash zsh)") {
		t.Errorf("completion's argument:\n%s", got)
	}

	// And for real: an interactive zsh on a pseudo-terminal, a Tab after partial words.
	// Each read waits for the completed text to be drawn (or the test's timeout).
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prog := `zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'autoload -U compinit; compinit -u -D; source "` + script + `"; print RE""ADY'
zpty -r z out '*READY*' || exit 3
zpty -w -n z $'ssefs key ro\t'
zpty -r z out '*ssefs key rotate*' || exit 4
zpty -w -n z $'\C-u'
zpty -w -n z $'ssefs mount --kms-kes-end\t'
zpty -r z out '*--kms-kes-endpoint*' || exit 5
zpty -d z
print completed`
	out, err = exec.CommandContext(ctx, "zsh", "-f", "-c", prog).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "completed\n") {
		t.Errorf("interactive zsh completion: %v\n%q", err, out)
	}
}

func TestZshEscape(t *testing.T) {
	spec := zshFlagSpecs([]flagSpec{{name: "x", usage: `a [b]: c\d 'e'`, valued: true, varname: "string", kind: valueFile}})
	if len(spec) != 1 || spec[0] != `'--x=[a \[b\]\: c\\d '\''e'\'']:string:_files'` {
		t.Errorf("spec %q", spec)
	}
}

func TestCompletionRefusals(t *testing.T) {
	runCmd("completion").wantRefusal(t, 2, "bash or zsh")
	runCmd("completion", "fish").wantRefusal(t, 2, `"fish"`)
}

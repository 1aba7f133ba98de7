package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The man page renders without a single groff warning, has the sections a man page has,
// and documents every flag of mount, with its SSEFS_* variable.
func TestManPage(t *testing.T) {
	r := runCmd("man")
	r.wantOK(t)
	page := r.stdout
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "KMS OPTIONS", "OBJECT STORE OPTIONS",
		"S3 API OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"} {
		if !strings.Contains(page, "\n.SH "+sec+"\n") {
			t.Errorf("no section %s", sec)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(page, `.SS "ssefs `+roffText(c.path)+`"`) {
			t.Errorf("no entry for ssefs %s", c.path)
		}
	}
	var c mountConfig
	f, _ := c.flagSet()
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden {
			if strings.Contains(page, `\-\-`+roffText(fl.Name)+`\fR`) {
				t.Errorf("the hidden flag --%s is documented", fl.Name)
			}
			return
		}
		if !strings.Contains(page, `\fB\-\-`+roffText(fl.Name)+`\fR`) {
			t.Errorf("mount's flag --%s is not documented", fl.Name)
		}
		if fl.Name != "help" && !strings.Contains(page, `.TP`+"\n"+`\fB`+roffText(envName(fl.Name))+`\fR`) {
			t.Errorf("%s is not in ENVIRONMENT", envName(fl.Name))
		}
	})
	// The page does not depend on who runs it.
	if home := defaultDataDir(); strings.Contains(page, roffText(home)) {
		t.Errorf("the page names this user's data directory %s", home)
	}

	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed (scripts/test.sh installs groff-base)")
	}
	check := exec.Command(groff, "-ww", "-z", "-man", "-Tutf8")
	check.Stdin = strings.NewReader(page)
	if out, err := check.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff -ww -z: %v\n%s", err, out)
	}
	render := exec.Command(groff, "-man", "-Tutf8", "-P-cbou")
	render.Stdin = strings.NewReader(page)
	var stderr bytes.Buffer
	render.Stderr = &stderr
	out, err := render.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("groff -man -Tutf8: %v\n%s", err, stderr.String())
	}
	// groff draws \- as a minus sign and may hyphenate nothing (.nh): map the minus back.
	text := strings.NewReplacer("\u2212", "-", "\u2010", "-").Replace(string(out))
	f.VisitAll(func(fl *pflag.Flag) {
		if !fl.Hidden && !strings.Contains(text, "--"+fl.Name) {
			t.Errorf("the rendered page lacks --%s", fl.Name)
		}
	})
	for _, want := range []string{"ssefs mount [flags] MOUNTPOINT", "SSEFS_KMS_MASTER_KEY, MINIO_KMS_MASTER_KEY", "DATA/meta.key",
		"$XDG_DATA_HOME/ssefs, else ~/.local/share/ssefs"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
}

func TestRoffText(t *testing.T) {
	for in, want := range map[string]string{
		`a\b`:             `a\eb`,
		"--data-dir":      `\-\-data\-dir`,
		"ssefs — x ‖ y":   `ssefs \[u2014] x \[u2016] y`,
		".PP not a macro": `.PP not a macro`,
	} {
		if got := roffText(in); got != want {
			t.Errorf("roffText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := roffLine(".PP x"); got != `\&.PP x` {
		t.Errorf("roffLine: %q", got)
	}
	if got := roffLine("'quoted"); got != `\&'quoted` {
		t.Errorf("roffLine: %q", got)
	}
}

func TestParseUsage(t *testing.T) {
	p := parseUsage(`Usage: ssefs x [flags] A
       ssefs x --other B

First paragraph,
two lines.

  an indented block
    kept

Examples:
  ssefs x a
      --continued

  ssefs x b

` + kmsUsage + `
Flags (each also read from SSEFS_<FLAG>):
`)
	if strings.Join(p.synopsis, "|") != "ssefs x [flags] A|ssefs x --other B" {
		t.Errorf("synopsis %q", p.synopsis)
	}
	if strings.Join(p.description, "|") != "First paragraph,|two lines.||  an indented block|    kept" {
		t.Errorf("description %q", p.description)
	}
	if strings.Join(p.examples, "|") != "  ssefs x a|      --continued||  ssefs x b" {
		t.Errorf("examples %q", p.examples)
	}
}

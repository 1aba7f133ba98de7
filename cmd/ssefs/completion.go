package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

const completionUsage = `Usage: ssefs completion bash|zsh

Prints a shell completion script for ssefs: command names, every command's flags, and
files or directories where a flag or an argument names one. The script is generated from
the command table and each command's own flags, so it always matches the ssefs that
printed it.

bash (bash 4.2 or later; the bash-completion package is not needed):
  ssefs completion bash > /etc/bash_completion.d/ssefs        # system-wide
  echo 'source <(ssefs completion bash)' >> ~/.bashrc          # one user

zsh (compinit must be loaded):
  ssefs completion zsh > "${fpath[1]}/_ssefs"                   # then start a new shell
  echo 'source <(ssefs completion zsh)' >> ~/.zshrc            # after compinit

Examples:
  ssefs completion bash > /etc/bash_completion.d/ssefs
  source <(ssefs completion zsh)
`

func runCompletion(args []string, stdout, _ io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		showHelp(stdout, completionUsage, nil)
		return errHelp
	}
	if len(args) != 1 {
		return usageError{fmt.Sprintf("completion needs one shell, bash or zsh, got %d arguments (see 'ssefs help completion')", len(args))}
	}
	specs, err := completionSpecs()
	if err != nil {
		return err
	}
	switch args[0] {
	case "bash":
		_, err = io.WriteString(stdout, bashCompletion(specs))
	case "zsh":
		_, err = io.WriteString(stdout, zshCompletion(specs))
	default:
		return usageError{fmt.Sprintf("completion: unknown shell %q: want bash or zsh", args[0])}
	}
	return err
}

// valueKind is what a flag's value, or an argument, names.
type valueKind string

const (
	valueNone  valueKind = ""     // anything: not completed
	valueFile  valueKind = "file" // a file (or a directory of them, as a CA path)
	valueDir   valueKind = "dir"
	valueWords valueKind = "words"
)

type flagSpec struct {
	name, short string
	usage       string
	varname     string    // what the value is, for zsh's message ("string", "duration")
	valued      bool      // takes a value
	repeat      bool      // may be given more than once (lists)
	kind        valueKind // of the value
}

type cmdSpec struct {
	command
	subs  []command
	flags []flagSpec
}

// completionSpecs describes every command for the generators, flags from the commands'
// own FlagSets (describe).
func completionSpecs() ([]cmdSpec, error) {
	var out []cmdSpec
	for _, c := range commands() {
		_, f, err := describe(c)
		if err != nil {
			return nil, err
		}
		out = append(out, cmdSpec{command: c, subs: subcommands(c.path), flags: flagSpecs(f)})
	}
	return out, nil
}

func flagSpecs(f *pflag.FlagSet) []flagSpec {
	if f == nil {
		return nil
	}
	var out []flagSpec
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden || fl.Deprecated != "" {
			return
		}
		varname, usage := pflag.UnquoteUsage(fl)
		s := flagSpec{name: fl.Name, short: fl.Shorthand, usage: usage, varname: varname,
			valued: fl.NoOptDefVal == "", repeat: strings.HasSuffix(fl.Value.Type(), "Slice")}
		if s.valued {
			s.kind = flagValueKind(fl.Name)
		}
		out = append(out, s)
	})
	return out
}

// flagValueKind reads what a flag's value names from the flag's name: ssefs spells every
// file flag -file, -path, -cert or -key (the TLS pair of the S3 API), every directory
// flag -dir.
func flagValueKind(name string) valueKind {
	switch {
	case strings.HasSuffix(name, "-dir"):
		return valueDir
	case strings.HasSuffix(name, "-file"), strings.HasSuffix(name, "-path"), name == "s3-cert", name == "s3-key":
		return valueFile
	}
	return valueNone
}

func argValueKind(c command) valueKind {
	switch c.args {
	case argDir:
		return valueDir
	case argFile:
		return valueFile
	case argWords:
		return valueWords
	}
	return valueNone
}

// argWordsOf is what an argWords command completes: its words, or for help the commands.
func argWordsOf(c command) []string {
	if c.path != "help" {
		return c.words
	}
	var names []string
	for _, s := range subcommands("") {
		names = append(names, s.name())
	}
	return names
}

// ---- bash ----

func bashCompletion(specs []cmdSpec) string {
	// bash's associative arrays take no empty key: the top level is "ssefs", a command
	// "ssefs key rotate".
	key := func(path string) string { return bashQuote(strings.TrimSpace("ssefs " + path)) }
	var subs, flags, valued, kinds, args strings.Builder
	for _, s := range specs {
		if len(s.subs) > 0 || s.path == "" {
			var names []string
			for _, c := range s.subs {
				names = append(names, c.name())
			}
			fmt.Fprintf(&subs, "\t[%s]=%s\n", key(s.path), bashQuote(strings.Join(names, " ")))
		}
		var all, withValue []string
		for _, f := range s.flags {
			all = append(all, "--"+f.name)
			if f.short != "" {
				all = append(all, "-"+f.short)
			}
			if f.valued {
				withValue = append(withValue, "--"+f.name)
				if f.short != "" {
					withValue = append(withValue, "-"+f.short)
				}
				if f.kind != valueNone {
					fmt.Fprintf(&kinds, "\t[%s]=%s\n", key(s.path+" --"+f.name), f.kind)
				}
			}
		}
		if !slices.Contains(all, "--help") {
			all = append(all, "--help") // every command and group takes it
		}
		fmt.Fprintf(&flags, "\t[%s]=%s\n", key(s.path), bashQuote(strings.Join(all, " ")))
		if len(withValue) > 0 {
			fmt.Fprintf(&valued, "\t[%s]=%s\n", key(s.path), bashQuote(strings.Join(withValue, " ")))
		}
		if k := argValueKind(s.command); k != valueNone {
			v := string(k)
			if k == valueWords {
				v += ":" + strings.Join(argWordsOf(s.command), " ")
			}
			fmt.Fprintf(&args, "\t[%s]=%s\n", key(s.path), bashQuote(v))
		}
	}
	// The top level: its commands, and only --help and --version as flags.
	var top []string
	for _, c := range subcommands("") {
		top = append(top, c.name())
	}
	fmt.Fprintf(&subs, "\t[%s]=%s\n", key(""), bashQuote(strings.Join(top, " ")))
	fmt.Fprintf(&flags, "\t[%s]=%s\n", key(""), bashQuote("--help --version"))

	return fmt.Sprintf(bashTemplate, subs.String(), flags.String(), valued.String(), kinds.String(), args.String())
}

// bashQuote quotes s for bash, single quotes and all.
func bashQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bashTemplate walks the words before the cursor to find the command (skipping flags and
// their values, also where bash splits --flag=value at the '='), then completes the
// current word: a flag's value, a flag, a subcommand, or the command's argument.
const bashTemplate = `# bash completion for ssefs, generated by 'ssefs completion bash' from its command
# table and its commands' flags.

declare -gA _ssefs_subs=(
%s)
declare -gA _ssefs_flags=(
%s)
declare -gA _ssefs_valued=(
%s)
declare -gA _ssefs_kind=(
%s)
declare -gA _ssefs_args=(
%s)

# _ssefs_has LIST WORD: whether the space-separated LIST holds WORD.
_ssefs_has() {
	[[ " $1 " == *" $2 "* ]]
}

_ssefs_complete_kind() { # KIND CUR
	case $1 in
	file | dir)
		compopt -o filenames 2>/dev/null
		local IFS=$'\n' # file names may hold spaces
		COMPREPLY=($(compgen -"${1:0:1}" -- "$2"))
		;;
	words:*)
		COMPREPLY=($(compgen -W "${1#words:}" -- "$2"))
		;;
	esac
}

_ssefs() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev="" path=ssefs w i skip=0 nargs=0 dashdash=0
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((skip)); then
			# bash splits --flag=value into --flag, =, value: the = is no value.
			[[ $w == "=" ]] || skip=0
			continue
		fi
		if ((dashdash)); then
			nargs=$((nargs + 1))
			continue
		fi
		case $w in
		--)
			dashdash=1
			;;
		-*=*) ;;
		-*)
			if _ssefs_has "${_ssefs_valued[$path]}" "$w"; then
				skip=1
			fi
			;;
		*)
			if ((nargs == 0)) && [[ -n ${_ssefs_subs[$path]+set} ]] && _ssefs_has "${_ssefs_subs[$path]}" "$w"; then
				path="$path $w"
			else
				nargs=$((nargs + 1))
			fi
			;;
		esac
	done

	if ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD - 1]}
	fi
	if [[ $cur == "=" ]]; then
		cur=""
	elif [[ $prev == "=" ]] && ((COMP_CWORD > 2)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi
	if ((!dashdash)) && [[ $prev == -* ]] && _ssefs_has "${_ssefs_valued[$path]}" "$prev"; then
		_ssefs_complete_kind "${_ssefs_kind[$path $prev]}" "$cur"
		return 0
	fi
	if ((!dashdash)) && [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "${_ssefs_flags[$path]}" -- "$cur"))
		return 0
	fi
	if ((nargs == 0)) && [[ -n ${_ssefs_subs[$path]+set} ]]; then
		COMPREPLY=($(compgen -W "${_ssefs_subs[$path]}" -- "$cur"))
		return 0
	fi
	_ssefs_complete_kind "${_ssefs_args[$path]}" "$cur"
	return 0
}

complete -F _ssefs ssefs
`

// ---- zsh ----

func zshCompletion(specs []cmdSpec) string {
	var b strings.Builder
	b.WriteString(`#compdef ssefs
# zsh completion for ssefs, generated by 'ssefs completion zsh' from its command table
# and its commands' flags.

`)
	root := cmdSpec{command: command{group: true}, subs: subcommands(""),
		flags: []flagSpec{{name: "version", usage: "print the version and module versions"}}}
	for _, s := range append([]cmdSpec{root}, specs...) {
		if s.group {
			zshGroup(&b, s)
		} else {
			zshLeaf(&b, s)
		}
	}
	b.WriteString(`if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_ssefs "$@"
else
	compdef _ssefs ssefs
fi
`)
	return b.String()
}

func zshFunc(path string) string {
	if path == "" {
		return "_ssefs"
	}
	return "_ssefs__" + strings.ReplaceAll(path, " ", "__")
}

func zshGroup(b *strings.Builder, s cmdSpec) {
	fmt.Fprintf(b, "%s() {\n\tlocal curcontext=\"$curcontext\" state line\n\ttypeset -A opt_args\n\t_arguments -C \\\n", zshFunc(s.path))
	flags := s.flags
	if !slices.ContainsFunc(flags, func(f flagSpec) bool { return f.name == "help" }) {
		flags = append(flags, flagSpec{name: "help", short: "h", usage: "show this help"})
	}
	for _, spec := range zshFlagSpecs(flags) {
		fmt.Fprintf(b, "\t\t%s \\\n", spec)
	}
	b.WriteString("\t\t'1: :->cmd' \\\n\t\t'*:: :->args' && return 0\n\tcase $state in\n\tcmd)\n\t\tlocal -a cmds\n\t\tcmds=(\n")
	for _, c := range s.subs {
		fmt.Fprintf(b, "\t\t\t%s\n", zshQuote(zshEscape(c.name())+":"+c.summary))
	}
	what := strings.Join(strings.Fields("ssefs "+s.path+" command"), " ")
	fmt.Fprintf(b, "\t\t)\n\t\t_describe -t commands %s cmds\n\t\t;;\n\targs)\n\t\tcase $line[1] in\n", zshQuote(what))
	for _, c := range s.subs {
		fmt.Fprintf(b, "\t\t%s) %s ;;\n", c.name(), zshFunc(c.path))
	}
	b.WriteString("\t\tesac\n\t\t;;\n\tesac\n}\n\n")
}

func zshLeaf(b *strings.Builder, s cmdSpec) {
	fmt.Fprintf(b, "%s() {\n\t_arguments -s -S \\\n", zshFunc(s.path))
	specs := zshFlagSpecs(s.flags)
	switch s.args {
	case argDir:
		if s.path == "config check" {
			specs = append(specs, zshQuote("1::mountpoint:_files -/"))
		} else {
			specs = append(specs, zshQuote("1:mountpoint:_files -/"))
		}
	case argFile:
		specs = append(specs, zshQuote("*:file:_files"))
	case argWords:
		specs = append(specs, zshQuote("1:"+s.name()+":("+strings.Join(argWordsOf(s.command), " ")+")"))
	case argName:
		specs = append(specs, zshQuote("*:name: "))
	}
	for i, spec := range specs {
		sep := " \\"
		if i == len(specs)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "\t\t%s%s\n", spec, sep)
	}
	if len(specs) == 0 {
		b.WriteString("\t\t'--help[show this help]'\n")
	}
	b.WriteString("}\n\n")
}

// zshFlagSpecs turns flags into _arguments specs: --name[what]:value:action.
func zshFlagSpecs(flags []flagSpec) []string {
	var out []string
	for _, f := range flags {
		desc := "[" + zshEscape(shortUsage(f.usage)) + "]"
		value := ""
		if f.valued {
			action := ""
			switch f.kind {
			case valueFile:
				action = "_files"
			case valueDir:
				action = "_files -/"
			}
			varname := f.varname
			if varname == "" {
				varname = "value"
			}
			value = ":" + zshEscape(varname) + ":" + action
		}
		long, short := "--"+f.name, "-"+f.short
		if f.valued {
			long += "="
			short += "+"
		}
		repeat := ""
		if f.repeat {
			repeat = "*"
		}
		if f.short == "" {
			out = append(out, zshQuote(repeat+long+desc+value))
			continue
		}
		// '(-h --help)'{-h,--help}'[...]': both spellings, each excluding the other.
		out = append(out, zshQuote("(-"+f.short+" --"+f.name+")")+"{"+short+","+long+"}"+zshQuote(desc+value))
	}
	return out
}

// shortUsage is a flag's usage cut to fit a completion menu line.
func shortUsage(u string) string {
	const limit = 90
	if len(u) <= limit {
		return u
	}
	cut := strings.LastIndexByte(u[:limit-3], ' ')
	if cut < 0 {
		cut = limit - 3
	}
	return strings.TrimRight(u[:cut], " ,;:") + "..."
}

// zshEscape escapes what _arguments and _describe give a meaning to inside a spec.
func zshEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `:`, `\:`)
	return r.Replace(s)
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

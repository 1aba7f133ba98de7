package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// envSourceAnnotation marks a flag that flagsFromEnv filled, with the variable's name, so
// an error about its value can name where the operator set it.
const envSourceAnnotation = "ssefs-env"

// envName is the SSEFS_<FLAG> variable of a flag.
func envName(flag string) string {
	return "SSEFS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagsFromEnv fills every flag not given on the command line from SSEFS_<FLAG>. An
// empty variable counts as unset, so `SSEFS_BUCKET=` in a unit file clears it.
func flagsFromEnv(f *pflag.FlagSet) error {
	var err error
	f.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || fl.Name == "help" {
			return
		}
		name := envName(fl.Name)
		if v := os.Getenv(name); v != "" {
			if serr := f.Set(fl.Name, v); serr != nil {
				err = usageError{fmt.Sprintf("%s=%q: %v", name, v, serr)}
				return
			}
			_ = f.SetAnnotation(fl.Name, envSourceAnnotation, []string{name})
		}
	})
	return err
}

// flagSource says where a flag's value came from: "--NAME" for the command line, the
// SSEFS_* variable's name when flagsFromEnv set it, "" when it was not set at all.
func flagSource(f *pflag.FlagSet, name string) string {
	fl := f.Lookup(name)
	if fl == nil || !fl.Changed {
		return ""
	}
	if env := fl.Annotations[envSourceAnnotation]; len(env) > 0 {
		return env[0]
	}
	return "--" + name
}

// firstEnv returns the first of names that is set, and which one it was.
func firstEnv(names ...string) (value, name string) {
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok && v != "" {
			return v, n
		}
	}
	return "", ""
}

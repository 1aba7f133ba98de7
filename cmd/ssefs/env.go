package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// flagsFromEnv fills every flag not given on the command line from SSEFS_<FLAG>. An
// empty variable counts as unset, so `SSEFS_BUCKET=` in a unit file clears it.
func flagsFromEnv(f *pflag.FlagSet) error {
	var err error
	f.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || fl.Name == "help" {
			return
		}
		name := "SSEFS_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v := os.Getenv(name); v != "" {
			if serr := f.Set(fl.Name, v); serr != nil {
				err = usageError{fmt.Sprintf("%s=%q: %v", name, v, serr)}
			}
		}
	})
	return err
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

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The import rules of DESIGN.md: imports point downwards only,
//
//	cmd -> fs/fuse, fs/s3 -> fs -> keys, meta, objstore -> dare
//
// keys, meta and objstore import no other ssefs package but dare (they know nothing of each
// other); dare (the DARE format in memory) imports none;
// fs imports no frontend; a frontend talks to neither Badger nor a KMS directly; nothing
// imports integration or scripts, integration may import anything, scripts nothing of ssefs.
//
// internal/... holds test helpers (internal/kestest starts a KES server): any layer's
// _test.go files may import them, no non-test code may, and they import no other layer.
//
// No non-test code may depend, directly or through another module, on MinIO's KES
// libraries (kes, kes-go, kms-go): they are AGPL-3.0 and must never be linked into ssefs.
// Tests may start a KES server (built from the separate module scripts/kes) as a process.

const modulePath = "github.com/ssefs/ssefs"

// layerOf maps an ssefs import path to its layer ("" if it is in none).
func layerOf(importPath string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(importPath, modulePath), "/")
	if importPath == modulePath {
		return ""
	}
	for _, l := range []string{"fs/fuse", "fs/s3", "cmd", "fs", "keys", "meta", "objstore", "dare", "integration", "scripts", "internal"} {
		if rel == l || strings.HasPrefix(rel, l+"/") {
			return l
		}
	}
	return ""
}

// mayImport lists, for each layer, the other layers its non-test code may import.
var mayImport = map[string][]string{
	"cmd":         {"fs/fuse", "fs/s3", "fs", "keys", "meta", "objstore", "dare"},
	"fs/fuse":     {"fs"},
	"fs/s3":       {"fs"},
	"fs":          {"keys", "meta", "objstore", "dare"},
	"keys":        {"dare"},
	"meta":        {},
	"objstore":    {},
	"dare":        {},
	"scripts":     {},
	"integration": {"cmd", "fs/fuse", "fs/s3", "fs", "keys", "meta", "objstore", "dare", "scripts"},
	"internal":    {},
}

// testOnlyLayers may be imported only by _test.go files (and by each other).
var testOnlyLayers = map[string]bool{"internal": true}

// agplModules must not be in the dependencies of any non-test code: linked into the ssefs
// binary, they would put it under the AGPL.
var agplModules = []string{"github.com/minio/kes", "github.com/minio/kes-go", "github.com/minio/kms-go", "github.com/minio/minio"}

// isModule reports whether the import path imp is in module mod (not merely sharing a
// prefix: github.com/minio/kes-go is not in github.com/minio/kes).
func isModule(imp, mod string) bool {
	return imp == mod || strings.HasPrefix(imp, mod+"/")
}

// testMayImport relaxes one thing for _test.go files: a frontend's tests may build an engine
// from the layers below it. Everything else is as for non-test code.
var testMayImport = map[string][]string{
	"fs/fuse": {"fs", "keys", "meta", "objstore"},
	"fs/s3":   {"fs", "keys", "meta", "objstore"},
}

// externalBans: third-party modules a layer must not import (DESIGN.md: "No frontend talks to
// Badger, a KMS or the object store directly"; the engine knows no frontend library).
var externalBans = map[string][]string{
	"fs/fuse": {"github.com/dgraph-io/badger", "github.com/minio/kes-go", "github.com/hashicorp/vault"},
	"fs/s3":   {"github.com/dgraph-io/badger", "github.com/minio/kes-go", "github.com/hashicorp/vault", "github.com/hanwen/go-fuse"},
	"fs":      {"github.com/hanwen/go-fuse"},
}

type goPackage struct {
	ImportPath   string
	Imports      []string
	Deps         []string // every package the non-test code needs, transitively
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// importViolations returns every broken rule in pkgs.
func importViolations(pkgs []goPackage) []string {
	var out []string
	for _, p := range pkgs {
		from := layerOf(p.ImportPath)
		if from == "" {
			out = append(out, fmt.Sprintf("%s is in no layer of DESIGN.md (cmd, fs, fs/fuse, fs/s3, keys, meta, objstore, integration, scripts)", p.ImportPath))
			continue
		}
		check := func(imports []string, allowed []string, kind string) {
			for _, imp := range imports {
				if strings.HasPrefix(imp, modulePath+"/") || imp == modulePath {
					to := layerOf(imp)
					if to == from {
						continue
					}
					if testOnlyLayers[to] {
						if kind == "non-test code" {
							out = append(out, fmt.Sprintf("%s (%s) imports %s (layer %q): test helpers may be imported only by _test.go files",
								p.ImportPath, kind, imp, to))
						}
						continue
					}
					ok := false
					for _, a := range allowed {
						if a == to {
							ok = true
						}
					}
					if !ok {
						out = append(out, fmt.Sprintf("%s (%s) imports %s (layer %q): %s may import only %v", p.ImportPath, kind, imp, to, from, allowed))
					}
					continue
				}
				for _, ban := range externalBans[from] {
					if strings.HasPrefix(imp, ban) {
						out = append(out, fmt.Sprintf("%s (%s) imports %s: layer %s must not use %s directly", p.ImportPath, kind, imp, from, ban))
					}
				}
			}
		}
		check(p.Imports, mayImport[from], "non-test code")
		for _, dep := range append(slices.Clone(p.Imports), p.Deps...) {
			for _, mod := range agplModules {
				if isModule(dep, mod) {
					out = append(out, fmt.Sprintf("%s (non-test code) depends on %s: module %s is AGPL-3.0 and must not be linked into ssefs",
						p.ImportPath, dep, mod))
				}
			}
		}
		testAllowed := mayImport[from]
		if relaxed, ok := testMayImport[from]; ok {
			testAllowed = relaxed
		}
		check(p.TestImports, testAllowed, "test code")
		check(p.XTestImports, testAllowed, "external test code")
	}
	sort.Strings(out)
	return out
}

// TestImportRules runs `go list -json ./...` at the module root and fails on any import that
// breaks the rules.
func TestImportRules(t *testing.T) {
	cmd := exec.Command(goTool(), "list", "-e", "-json", "./...")
	cmd.Dir = moduleRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -e -json ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.Error != nil {
			t.Logf("note: go list reports for %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[layerOf(p.ImportPath)] = true
	}
	if !seen["integration"] {
		t.Errorf("go list did not list the integration package: is it running at the module root (%s)?", moduleRoot)
	}
	t.Logf("checked %d packages", len(pkgs))
	for _, v := range importViolations(pkgs) {
		t.Error(v)
	}
}

// TestImportRuleChecker makes sure the checker itself catches what it should.
func TestImportRuleChecker(t *testing.T) {
	m := func(rel string) string { return modulePath + "/" + rel }
	good := []goPackage{
		{ImportPath: m("cmd/ssefs"), Imports: []string{m("fs/fuse"), m("fs/s3"), m("fs"), m("keys"), "github.com/spf13/pflag"}},
		{ImportPath: m("fs/fuse"), Imports: []string{m("fs"), "github.com/hanwen/go-fuse/v2/fs"}, TestImports: []string{m("keys"), m("meta"), m("objstore")}},
		{ImportPath: m("fs"), Imports: []string{m("keys"), m("meta"), m("objstore"), "github.com/minio/sio"}},
		{ImportPath: m("keys/kes"), Imports: []string{m("keys"), "crypto/tls"}, TestImports: []string{m("internal/kestest")}},
		{ImportPath: m("keys"), Imports: []string{"net/http"}, Deps: []string{"github.com/minio/sio", "github.com/minio/kesfoo"},
			TestImports: []string{m("internal/kestest")}},
		{ImportPath: m("fs/fuse"), XTestImports: []string{m("internal/kestest"), m("fs")}},
		{ImportPath: m("internal/kestest"), Imports: []string{"crypto/x509", m("internal/other")}, TestImports: []string{m("internal/kestest")}},
		{ImportPath: m("integration"), TestImports: []string{m("internal/kestest"), "github.com/minio/kes-go"}},
		{ImportPath: m("meta"), Imports: []string{"github.com/dgraph-io/badger/v4"}, XTestImports: []string{m("meta")}},
		{ImportPath: m("integration"), TestImports: []string{m("fs"), m("meta")}},
	}
	if v := importViolations(good); len(v) != 0 {
		t.Errorf("valid imports reported as violations: %q", v)
	}
	bad := []goPackage{
		{ImportPath: m("meta"), Imports: []string{m("keys")}},
		{ImportPath: m("keys"), TestImports: []string{m("objstore")}},
		{ImportPath: m("objstore"), Imports: []string{m("fs")}},
		{ImportPath: m("fs"), Imports: []string{m("fs/fuse")}},
		{ImportPath: m("fs"), Imports: []string{"github.com/hanwen/go-fuse/v2/fuse"}},
		{ImportPath: m("fs/fuse"), Imports: []string{m("meta")}},
		{ImportPath: m("fs/fuse"), Imports: []string{"github.com/dgraph-io/badger/v4"}},
		{ImportPath: m("fs/s3"), Imports: []string{m("fs/fuse")}},
		{ImportPath: m("fs/s3"), Imports: []string{m("keys")}},
		{ImportPath: m("cmd/ssefs"), Imports: []string{m("integration")}},
		{ImportPath: m("scripts/kes"), Imports: []string{m("keys")}},
		{ImportPath: m("tools/x")},
		{ImportPath: m("keys"), Imports: []string{m("internal/kestest")}},
		{ImportPath: m("cmd/ssefs"), Imports: []string{m("internal/kestest")}},
		{ImportPath: m("integration"), Imports: []string{m("internal/kestest")}},
		{ImportPath: m("internal/kestest"), Imports: []string{m("keys")}},
		{ImportPath: m("internal/kestest"), TestImports: []string{m("keys")}},
		{ImportPath: m("keys"), Imports: []string{"github.com/minio/kes-go"}},
		{ImportPath: m("keys"), Imports: []string{"github.com/minio/kms-go/kes"}},
		{ImportPath: m("cmd/ssefs"), Deps: []string{"github.com/minio/kes/internal/api"}},
		{ImportPath: m("internal/kestest"), Deps: []string{"github.com/minio/kes"}},
	}
	for _, p := range bad {
		if v := importViolations([]goPackage{p}); len(v) == 0 {
			t.Errorf("the checker misses a violation: %s imports %v (tests %v)", p.ImportPath, p.Imports, p.TestImports)
		}
	}
}

package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cmdAllowed are the hull packages the command tree may import: the
// engine's API and what turns its results into output. Everything else a
// command needs goes through the engine, so the CRI server and `hull kube`
// reach the same code as the CLI.
var cmdAllowed = map[string]bool{
	"hull/internal/engine":    true,
	"hull/internal/ui":        true,
	"hull/internal/config":    true,
	"hull/internal/reference": true,
}

// entryPoints are the files that are processes of their own rather than
// commands over the engine, with what else they may import: `hull oci` is
// runc's command line over the runtime, for other tools.
var entryPoints = map[string][]string{
	"oci.go": {"hull/internal/runtime", "hull/internal/trace"},
}

func TestCommandTreeImportsOnlyTheEngineAPI(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		extra := map[string]bool{}
		for _, p := range entryPoints[name] {
			extra[p] = true
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, "hull/") || cmdAllowed[path] || extra[path] {
				continue
			}
			t.Errorf("%s imports %s: cmd/hull maps flags to engine calls and results to ui; move the logic behind the engine API", name, path)
		}
	}
	if _, err := os.Stat("oci.go"); err != nil {
		t.Errorf("oci.go: %v (update entryPoints)", err)
	}
}

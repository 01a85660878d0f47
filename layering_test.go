package switchboard_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/switchboard-inbox/switchboard"

// pkgImports is what a package's files import, production files and
// test files apart.
type pkgImports struct {
	prod, test map[string][]string // import path -> files importing it
}

func moduleImports(t *testing.T) map[string]*pkgImports {
	t.Helper()
	out := map[string]*pkgImports{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := module
		if dir := filepath.ToSlash(filepath.Dir(path)); dir != "." {
			pkg += "/" + dir
		}
		p := out[pkg]
		if p == nil {
			p = &pkgImports{prod: map[string][]string{}, test: map[string][]string{}}
			out[pkg] = p
		}
		m := p.prod
		if strings.HasSuffix(path, "_test.go") {
			m = p.test
		}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			m[ip] = append(m[ip], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("found %d packages: the walk is broken", len(out))
	}
	return out
}

// TestOnlyTheInboxWritesThroughTheStore holds the layering the service
// layer exists for: no package but the inbox (package inbox) reaches the
// store, so every write goes through one implementation of each
// operation, with its permission check, its channel policy and its event.
// The test helpers that open stores serve test files only.
func TestOnlyTheInboxWritesThroughTheStore(t *testing.T) {
	pkgs := moduleImports(t)
	store := module + "/store"
	helpers := []string{module + "/store/storetest", module + "/inbox/inboxtest"}
	allowed := append([]string{module + "/inbox"}, helpers...)
	var importers []string
	for pkg, p := range pkgs {
		if files, ok := p.prod[store]; ok {
			importers = append(importers, pkg)
			if !slices.Contains(allowed, pkg) {
				t.Errorf("%s imports the store (%s): only the inbox may; call the inbox instead", pkg, strings.Join(files, ", "))
			}
		}
		for _, h := range helpers {
			if files, ok := p.prod[h]; ok && !slices.Contains(helpers, pkg) {
				t.Errorf("%s imports the test helper %s outside tests (%s)", pkg, h, strings.Join(files, ", "))
			}
		}
	}
	if !slices.Contains(importers, module+"/inbox") {
		t.Fatal("the inbox does not import the store: the check looks at the wrong place")
	}
}

// TestRootImportsOnlyTheStandardLibrary: the domain package depends on
// nothing of ours and nothing outside the standard library.
func TestRootImportsOnlyTheStandardLibrary(t *testing.T) {
	root := moduleImports(t)[module]
	if root == nil || len(root.prod) == 0 {
		t.Fatal("root package not found")
	}
	for imp, files := range root.prod {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("the root package imports %s (%s)", imp, strings.Join(files, ", "))
		}
	}
}

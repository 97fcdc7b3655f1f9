package httpadapter

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestReadmeMountSnippet keeps the README's "Mount it" snippet the same
// as mountReset in example_mount_test.go, which Example_mount compiles
// and runs.
func TestReadmeMountSnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Mount it")
	if !ok {
		t.Fatal(`README.md has no "## Mount it" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")

	src, err := os.ReadFile("example_mount_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_mount_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "mountReset" {
			continue
		}
		code := string(src[fset.Position(fd.Doc.Pos()).Offset:fset.Position(fd.End()).Offset])
		if !strings.Contains(section, "```go\n"+code+"\n") {
			t.Errorf("README.md's \"Mount it\" snippet differs from mountReset in example_mount_test.go; paste this:\n%s", code)
		}
		return
	}
	t.Fatal("example_mount_test.go has no mountReset")
}

package feedback_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestReadmeSnippet keeps the README's "Delivery feedback" snippet the
// same as wireFeedback in example_test.go, which Example compiles and
// runs.
func TestReadmeSnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Delivery feedback")
	if !ok {
		t.Fatal(`README.md has no "## Delivery feedback" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "wireFeedback" {
			continue
		}
		code := string(src[fset.Position(fd.Doc.Pos()).Offset:fset.Position(fd.End()).Offset])
		if !strings.Contains(section, "```go\n"+code+"\n") {
			t.Errorf("README.md's \"Delivery feedback\" snippet differs from wireFeedback in example_test.go; paste this:\n%s", code)
		}
		return
	}
	t.Fatal("example_test.go has no wireFeedback")
}

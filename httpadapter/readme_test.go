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
	checkReadmeSnippet(t, "Mount it", "example_mount_test.go", "mountReset")
}

// TestReadmeInvitationSnippet keeps the README's "Invitations" snippet
// the same as inviteNewUser in reset's example_invite_test.go, which
// ExampleService_RequestTrusted_invitation compiles and runs.
func TestReadmeInvitationSnippet(t *testing.T) {
	checkReadmeSnippet(t, "Invitations", "../reset/example_invite_test.go", "inviteNewUser")
}

// checkReadmeSnippet checks that the README section whose heading starts
// with heading holds, as a Go code block, the function name of file,
// doc comment included.
func checkReadmeSnippet(t *testing.T, heading, file, name string) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## "+heading)
	if !ok {
		t.Fatalf("README.md has no %q section", "## "+heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")

	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != name {
			continue
		}
		code := string(src[fset.Position(fd.Doc.Pos()).Offset:fset.Position(fd.End()).Offset])
		if !strings.Contains(section, "```go\n"+code+"\n") {
			t.Errorf("README.md's %q snippet differs from %s in %s; paste this:\n%s", heading, name, file, code)
		}
		return
	}
	t.Fatalf("%s has no %s", file, name)
}

package core_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEExample keeps the README's example the code that Example runs:
// the README's go block under "## A 30-line example" must be, byte for
// byte, the code between the README markers of example_readme_test.go.
func TestREADMEExample(t *testing.T) {
	src, err := os.ReadFile("example_readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	code := between(t, string(src), "// README:begin\n", "// README:end\n", "example_readme_test.go")

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "\n## A 30-line example\n"
	text := string(readme)
	i := strings.Index(text, heading)
	if i < 0 {
		t.Fatalf("README.md has no section %q", strings.TrimSpace(heading))
	}
	section := text[i+len(heading):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	block := between(t, section, "```go\n", "```\n", "the README section")
	if block != code {
		t.Fatalf("the README example differs from example_readme_test.go; copy the code between the markers into README.md\n"+
			"README:\n%s\nexample_readme_test.go:\n%s", block, code)
	}

	// The section comes right after the one with the two commands.
	prev := text[:i]
	if k := strings.LastIndex(prev, "\n## "); k < 0 || !strings.HasPrefix(prev[k:], "\n## The two commands\n") {
		t.Errorf("the section %q does not follow \"## The two commands\"", strings.TrimSpace(heading))
	}
}

// between returns the text between the first begin and the next end, without
// the blank lines around it.
func between(t *testing.T, s, begin, end, where string) string {
	t.Helper()
	i := strings.Index(s, begin)
	if i < 0 {
		t.Fatalf("%s: no %q", where, strings.TrimSpace(begin))
	}
	s = s[i+len(begin):]
	j := strings.Index(s, end)
	if j < 0 {
		t.Fatalf("%s: no %q after %q", where, strings.TrimSpace(end), strings.TrimSpace(begin))
	}
	return strings.Trim(s[:j], "\n")
}

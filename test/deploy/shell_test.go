package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// splitShell splits one shell line into commands (at |, &&, || and ;) and
// each command into words, honouring single and double quotes and
// backslashes. It knows no more of the shell than the documents use.
func splitShell(line string) ([][]string, error) {
	var (
		cmds    [][]string
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	endWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			endWord()
		case r == '#' && !inWord:
			endCmd()
			return cmds, nil
		case r == '|' || r == ';' || r == '&':
			if r == '&' && (i+1 >= len(rs) || rs[i+1] != '&') {
				cur.WriteRune(r)
				inWord = true
				continue
			}
			if i+1 < len(rs) && rs[i+1] == r {
				i++
			}
			endCmd()
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("unterminated quote or escape in %q", line)
	}
	endCmd()
	return cmds, nil
}

// splitAssignments separates the leading NAME=value words of a command.
func splitAssignments(words []string) (env map[string]string, rest []string) {
	env = map[string]string{}
	for len(words) > 0 {
		k, v, ok := strings.Cut(words[0], "=")
		if !ok || k == "" || strings.ContainsAny(k, "-./") || strings.HasPrefix(k, "-") {
			break
		}
		env[k] = v
		words = words[1:]
	}
	return env, words
}

func TestSplitShell(t *testing.T) {
	cases := []struct {
		line string
		want [][]string
	}{
		{`azdurable partitions`, [][]string{{"azdurable", "partitions"}}},
		{`azdurable deadletters show '2026|x' -o json | jq .`, [][]string{{"azdurable", "deadletters", "show", "2026|x", "-o", "json"}, {"jq", "."}}},
		{`A=1 worker -host-id "w 1" && curl x # note`, [][]string{{"A=1", "worker", "-host-id", "w 1"}, {"curl", "x"}}},
		{`azdurable raise x approval --data '{"approved":true}'`, [][]string{{"azdurable", "raise", "x", "approval", "--data", `{"approved":true}`}}},
		{`a\ b; c || d`, [][]string{{"a b"}, {"c"}, {"d"}}},
	}
	for _, c := range cases {
		got, err := splitShell(c.line)
		if err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("splitShell(%s) = %q, want %q", c.line, got, c.want)
		}
	}
	if _, err := splitShell(`azdurable 'open`); err == nil {
		t.Error("an unterminated quote is not reported")
	}
	env, rest := splitAssignments([]string{"AZDURABLE_PARTITIONS=64", "worker", "-x=1"})
	if env["AZDURABLE_PARTITIONS"] != "64" || !slices.Equal(rest, []string{"worker", "-x=1"}) {
		t.Errorf("splitAssignments: %v %q", env, rest)
	}
}

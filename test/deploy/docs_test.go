package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const operationsGuide = "docs/operations.md"

// commandLine is a command line quoted in the guide.
type commandLine struct {
	line int
	text string
}

// guideCommands returns the command lines of the guide: every line of a
// fenced sh block (or, in a block with $ prompts, the prompted lines), and
// every inline code span, with continuation lines joined.
func guideCommands(t *testing.T, doc string) []commandLine {
	t.Helper()
	var cmds []commandLine
	lines := strings.Split(doc, "\n")
	inBlock, lang := false, ""
	var block []commandLine
	var para []string // the lines of the paragraph being read
	paraLine := 0
	flush := func() {
		prompted := slices.ContainsFunc(block, func(c commandLine) bool { return strings.HasPrefix(c.text, "$ ") })
		for _, c := range block {
			if prompted {
				rest, ok := strings.CutPrefix(c.text, "$ ")
				if !ok {
					continue
				}
				c.text = rest
			}
			cmds = append(cmds, c)
		}
		block = nil
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if fence, ok := strings.CutPrefix(strings.TrimSpace(l), "```"); ok {
			for _, span := range inlineCode.FindAllStringSubmatch(strings.Join(para, " "), -1) {
				cmds = append(cmds, commandLine{line: paraLine, text: span[1]})
			}
			para = nil
			if inBlock {
				if lang == "sh" || lang == "" {
					flush()
				}
				block, inBlock = nil, false
			} else {
				inBlock, lang = true, fence
			}
			continue
		}
		if inBlock {
			c := commandLine{line: i + 1, text: l}
			for strings.HasSuffix(c.text, `\`) && i+1 < len(lines) {
				i++
				c.text = strings.TrimSuffix(c.text, `\`) + " " + strings.TrimSpace(lines[i])
			}
			block = append(block, c)
			continue
		}
		// Inline code may wrap: read it from whole paragraphs.
		if strings.TrimSpace(l) != "" {
			if len(para) == 0 {
				paraLine = i + 1
			}
			para = append(para, strings.TrimSpace(l))
			if i+1 < len(lines) {
				continue
			}
		}
		for _, span := range inlineCode.FindAllStringSubmatch(strings.Join(para, " "), -1) {
			cmds = append(cmds, commandLine{line: paraLine, text: span[1]})
		}
		para = nil
	}
	return cmds
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// invocation is one run of worker or azdurable found in a command line.
type invocation struct {
	env  map[string]string
	bin  string
	args []string
}

// invocations finds the runs of the two binaries in a command line, also
// behind `docker compose exec|run SERVICE`.
func invocations(text string) ([]invocation, error) {
	cmds, err := splitShell(text)
	if err != nil {
		return nil, err
	}
	var out []invocation
	for _, words := range cmds {
		env, rest := splitAssignments(words)
		if len(rest) > 2 && rest[0] == "docker" && rest[1] == "compose" {
			i := slices.IndexFunc(rest, func(w string) bool { return w == "worker" || w == "azdurable" })
			if i < 0 {
				continue
			}
			rest = rest[i:]
		}
		if len(rest) > 0 && (rest[0] == "worker" || rest[0] == "azdurable") {
			out = append(out, invocation{env: env, bin: rest[0], args: rest[1:]})
		}
	}
	return out, nil
}

func readGuide(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, operationsGuide))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestGuideCommandsParse runs every worker and azdurable command line of the
// guide with -h/--help added: the binaries parse the flags (and the
// worker its environment) before they answer help, so an unknown command,
// flag or bad value fails.
func TestGuideCommandsParse(t *testing.T) {
	doc := readGuide(t)
	tree := getCLITree(t)
	n := 0
	for _, c := range guideCommands(t, doc) {
		invs, err := invocations(c.text)
		if err != nil {
			t.Errorf("%s:%d: %v", operationsGuide, c.line, err)
			continue
		}
		for _, inv := range invs {
			n++
			switch inv.bin {
			case "worker":
				env := map[string]string{}
				for k, v := range inv.env {
					env[k] = v
				}
				r := runBinary(t, "worker", env, append(slices.Clone(inv.args), "-h")...)
				if r.code != 0 {
					t.Errorf("%s:%d: `%s` does not parse: worker exits %d:\n%s", operationsGuide, c.line, c.text, r.code, r.out)
				}
			case "azdurable":
				checkCLICommand(t, tree, c, inv)
			}
		}
	}
	if n < 10 {
		t.Errorf("found %d command lines in %s; the guide quotes more", n, operationsGuide)
	}
}

// checkCLICommand runs an azdurable command line with --help and checks
// that its words name a command and that the words left over are arguments
// the command takes.
func checkCLICommand(t *testing.T, tree map[string]*cliCommand, c commandLine, inv invocation) {
	t.Helper()
	r := runBinary(t, "azdurable", nil, append(slices.Clone(inv.args), "--help")...)
	if r.code != 0 {
		t.Errorf("%s:%d: `%s` does not parse: azdurable exits %d:\n%s", operationsGuide, c.line, c.text, r.code, r.out)
		return
	}
	help, ok := parseCLIHelp(r.out)
	if !ok {
		t.Errorf("%s:%d: `%s`: no usage in the help:\n%s", operationsGuide, c.line, c.text, r.out)
		return
	}
	cmd := tree[strings.Join(help.path[1:], " ")]
	if cmd == nil {
		t.Errorf("%s:%d: `%s` resolves to %q, which is not in the command tree", operationsGuide, c.line, c.text, help.path)
		return
	}
	var words []string
	for i := 0; i < len(inv.args); i++ {
		a := inv.args[i]
		name, hasValue := strings.CutPrefix(a, "--")
		if !hasValue {
			name, hasValue = strings.CutPrefix(a, "-")
		}
		if !hasValue || a == "-" {
			words = append(words, a)
			continue
		}
		name, _, inline := strings.Cut(name, "=")
		if cmd.flags[name] && !inline {
			i++ // the flag's value
		}
	}
	// The leading words named the command (perhaps by an alias, so only
	// their number is compared); the rest are its arguments.
	path := cmd.path[1:]
	if len(words) < len(path) {
		t.Errorf("%s:%d: `%s` names %q, not a full command", operationsGuide, c.line, c.text, words)
		return
	}
	if extra := words[len(path):]; len(extra) > 0 && !cmd.takesArg {
		t.Errorf("%s:%d: `%s`: azdurable %s takes no arguments, but is given %q", operationsGuide, c.line, c.text, strings.Join(path, " "), extra)
	}
}

var (
	envInDoc    = regexp.MustCompile(`AZDURABLE_[A-Z_]+[A-Z]`)
	metricInDoc = regexp.MustCompile(`\bazdurable_[a-z_]+[a-z]\b`)
	flagSpan    = regexp.MustCompile(`^(--?)([a-z][a-z-]*)(?:[ =]\S+)?$`)
	mdLink      = regexp.MustCompile(`\]\(([^)#:]+\.md)(?:#[^)]*)?\)`)
)

// TestGuideNamesExist checks the flags, environment variables, metrics and
// links the guide names.
func TestGuideNamesExist(t *testing.T) {
	doc := readGuide(t)
	worker := getWorkerHelp(t)
	cli := cliFlags(t)
	env := cliEnv(t)
	for k := range worker.env {
		env[k] = true
	}
	for _, e := range envInDoc.FindAllString(doc, -1) {
		if !env[e] {
			t.Errorf("%s names %s, which neither worker nor azdurable reads", operationsGuide, e)
		}
	}
	for _, c := range guideCommands(t, doc) {
		m := flagSpan.FindStringSubmatch(c.text)
		if m == nil {
			continue
		}
		switch {
		case m[1] == "-" && !worker.flags[m[2]]:
			t.Errorf("%s:%d names `%s`: worker has no flag -%s", operationsGuide, c.line, c.text, m[2])
		case m[1] == "--" && !cli[m[2]]:
			t.Errorf("%s:%d names `%s`: azdurable has no flag --%s", operationsGuide, c.line, c.text, m[2])
		}
	}
	metricsDoc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range metricInDoc.FindAllString(doc, -1) {
		if !strings.Contains(string(metricsDoc), "`"+name+"`") {
			t.Errorf("%s names metric %s, which docs/metrics.md does not document", operationsGuide, name)
		}
	}
	for _, m := range mdLink.FindAllStringSubmatch(doc, -1) {
		if _, err := os.Stat(filepath.Join(repoRoot, "docs", m[1])); err != nil {
			t.Errorf("%s links %s: %v", operationsGuide, m[1], err)
		}
	}
	for _, must := range []string{"cli.md", "dashboard.md", "metrics.md"} {
		if !strings.Contains(doc, "]("+must+")") {
			t.Errorf("%s does not link %s", operationsGuide, must)
		}
	}
}

func TestInvocations(t *testing.T) {
	invs, err := invocations(`docker compose exec dashboard azdurable instances start HelloSequence --input '["Ann"]'`)
	if err != nil || len(invs) != 1 || invs[0].bin != "azdurable" || !slices.Equal(invs[0].args, []string{"instances", "start", "HelloSequence", "--input", `["Ann"]`}) {
		t.Errorf("docker compose exec: %+v, %v", invs, err)
	}
	invs, _ = invocations(`AZDURABLE_PARTITIONS=64 worker -host-id a && curl x`)
	if len(invs) != 1 || invs[0].env["AZDURABLE_PARTITIONS"] != "64" || invs[0].bin != "worker" {
		t.Errorf("assignments: %+v", invs)
	}
	if invs, _ := invocations(`docker compose stop worker-2`); len(invs) != 0 {
		t.Errorf("a service name is taken for a command: %+v", invs)
	}
}

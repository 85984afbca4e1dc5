package deploy

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// envRE finds the environment variables a help text names.
var envRE = regexp.MustCompile(`AZDURABLE_[A-Z_]+[A-Z]`)

// workerHelp is what `worker -h` says: its flags and environment variables.
type workerHelp struct {
	flags map[string]bool // without the dash
	env   map[string]bool
}

var workerFlagRE = regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)

func getWorkerHelp(t *testing.T) workerHelp {
	t.Helper()
	r := runBinary(t, "worker", nil, "-h")
	if r.code != 0 {
		t.Fatalf("worker -h exits %d:\n%s", r.code, r.out)
	}
	h := workerHelp{flags: map[string]bool{"h": true, "help": true}, env: map[string]bool{}}
	for _, m := range workerFlagRE.FindAllStringSubmatch(r.out, -1) {
		h.flags[m[1]] = true
	}
	for _, e := range envRE.FindAllString(r.out, -1) {
		h.env[e] = true
	}
	if len(h.flags) < 10 || !h.env["AZDURABLE_CONNECTION_STRING"] {
		t.Fatalf("worker -h does not list the flags and variables this test expects:\n%s", r.out)
	}
	return h
}

// cliCommand is what `azdurable ... --help` says about one command.
type cliCommand struct {
	path     []string        // azdurable instances show
	takesArg bool            // its usage line has an argument placeholder
	flags    map[string]bool // long and short names, without dashes → takes a value
	subs     []string
	env      []string
}

var (
	cliFlagRE = regexp.MustCompile(`^\s+(?:-([a-zA-Z]), )?--([a-z][a-z-]*)(?: ([a-zA-Z]+))?(?:\s|$)`)
	cliSubRE  = regexp.MustCompile(`^  ([a-z][a-z-]*) +\S`)
	cliWordRE = regexp.MustCompile(`^[a-z][a-z-]*$`)
)

// parseCLIHelp reads cobra's help output.
func parseCLIHelp(out string) (*cliCommand, bool) {
	c := &cliCommand{flags: map[string]bool{}, env: envRE.FindAllString(out, -1)}
	section := ""
	usageSeen := false
	for line := range strings.SplitSeq(out, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			section = line
			continue
		}
		switch {
		case section == "Usage:" && !usageSeen && strings.TrimSpace(line) != "":
			usageSeen = true
			for _, w := range strings.Fields(line) {
				if w == "[flags]" || w == "[command]" {
					break
				}
				if cliWordRE.MatchString(w) && !c.takesArg {
					c.path = append(c.path, w)
					continue
				}
				c.takesArg = true
			}
		case strings.Contains(section, "Flags"):
			if m := cliFlagRE.FindStringSubmatch(line); m != nil {
				c.flags[m[2]] = m[3] != ""
				if m[1] != "" {
					c.flags[m[1]] = m[3] != ""
				}
			}
		case strings.Contains(section, "ommands") || strings.HasPrefix(section, "Shortcuts"):
			if m := cliSubRE.FindStringSubmatch(line); m != nil && m[1] != "help" && m[1] != "completion" {
				c.subs = append(c.subs, m[1])
			}
		}
	}
	return c, usageSeen && len(c.path) > 0 && c.path[0] == "azdurable"
}

// cliTree is every azdurable command, by path ("instances show"), read once
// from their help.
var cliTree struct {
	once sync.Once
	cmds map[string]*cliCommand
	err  string
}

func getCLITree(t *testing.T) map[string]*cliCommand {
	t.Helper()
	cliTree.once.Do(func() {
		cliTree.cmds = map[string]*cliCommand{}
		var walk func(path []string)
		walk = func(path []string) {
			r := runBinary(t, "azdurable", nil, append(append([]string{}, path...), "--help")...)
			c, ok := parseCLIHelp(r.out)
			if r.code != 0 || !ok {
				cliTree.err += "azdurable " + strings.Join(path, " ") + " --help: exit " + strconv.Itoa(r.code) + "\n" + r.out + "\n"
				return
			}
			cliTree.cmds[strings.Join(path, " ")] = c
			for _, s := range c.subs {
				walk(append(append([]string{}, path...), s))
			}
		}
		walk(nil)
	})
	if cliTree.err != "" {
		t.Fatal(cliTree.err)
	}
	return cliTree.cmds
}

// cliEnv is every environment variable the CLI's help texts name.
func cliEnv(t *testing.T) map[string]bool {
	env := map[string]bool{}
	for _, c := range getCLITree(t) {
		for _, e := range c.env {
			env[e] = true
		}
	}
	return env
}

// cliFlags is every long flag of every command.
func cliFlags(t *testing.T) map[string]bool {
	flags := map[string]bool{"help": true}
	for _, c := range getCLITree(t) {
		for f := range c.flags {
			if len(f) > 1 {
				flags[f] = true
			}
		}
	}
	return flags
}

func TestCLIHelpParses(t *testing.T) {
	cmds := getCLITree(t)
	for _, path := range []string{"", "instances", "instances show", "partitions", "deadletters replay", "taskhub create", "hosts", "dashboard"} {
		if cmds[path] == nil {
			t.Errorf("azdurable %s is not in the command tree read from the help (%d commands)", path, len(cmds))
		}
	}
	if c := cmds["instances show"]; c != nil && !c.takesArg {
		t.Error("the usage of 'instances show' is read as taking no argument")
	}
	if c := cmds["dashboard"]; c != nil && !c.flags["addr"] {
		t.Errorf("'dashboard' has no --addr in its help: %v", c.flags)
	}
}

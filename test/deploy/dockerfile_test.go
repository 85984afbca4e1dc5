package deploy

import (
	"bufio"
	"errors"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerfile is the Dockerfile as instructions, continuation lines joined.
type dockerfile struct {
	instructions []instruction
}

type instruction struct {
	keyword string // upper case: FROM, RUN, COPY, ...
	args    string
}

func readDockerfile() (*dockerfile, error) {
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	df := &dockerfile{}
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		kw, args, _ := strings.Cut(cur.String(), " ")
		df.instructions = append(df.instructions, instruction{strings.ToUpper(kw), strings.TrimSpace(args)})
		cur.Reset()
	}
	return df, sc.Err()
}

// goBuildCmd is the Dockerfile's go build: its environment, flags and packages.
type goBuildCmd struct {
	env, flags, packages []string
	outDir               string
}

// runMounts are the BuildKit --mount options of a RUN instruction.
var runMounts = regexp.MustCompile(`--mount=\S+\s*`)

func (df *dockerfile) goBuild() (*goBuildCmd, error) {
	for _, in := range df.instructions {
		if in.keyword != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		cmds, err := splitShell(runMounts.ReplaceAllString(in.args, ""))
		if err != nil {
			return nil, err
		}
		for _, words := range cmds {
			env, rest := splitAssignments(words)
			if len(rest) < 2 || rest[0] != "go" || rest[1] != "build" {
				continue
			}
			b := &goBuildCmd{}
			for k, v := range env {
				b.env = append(b.env, k+"="+v)
			}
			for i := 2; i < len(rest); i++ {
				switch w := rest[i]; {
				case w == "-o" && i+1 < len(rest):
					b.outDir = rest[i+1]
					i++
				case strings.HasPrefix(w, "-"):
					b.flags = append(b.flags, w)
				default:
					b.packages = append(b.packages, w)
				}
			}
			return b, nil
		}
	}
	return nil, errors.New("the Dockerfile has no RUN instruction with a go build command")
}

// binaries are the names of the binaries the go build makes.
func (b *goBuildCmd) binaries() []string {
	var names []string
	for _, p := range b.packages {
		names = append(names, path.Base(p))
	}
	return names
}

// stages are the FROM instructions' images, in order.
func (df *dockerfile) stages() []string {
	var images []string
	for _, in := range df.instructions {
		if in.keyword == "FROM" {
			images = append(images, strings.Fields(in.args)[0])
		}
	}
	return images
}

func (df *dockerfile) last(keyword string) string {
	var args string
	for _, in := range df.instructions {
		if in.keyword == keyword {
			args = in.args
		}
	}
	return args
}

// goDirective is the go version of go.mod: "1.26.0".
func goDirective(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	df, err := readDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	b, err := df.goBuild()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("the go build runs without CGO_ENABLED=0 (env %q): the binaries would need the build image's C library", b.env)
	}
	if bins := b.binaries(); !slices.Contains(bins, "worker") || !slices.Contains(bins, "azdurable") {
		t.Errorf("the go build makes %q; want worker and azdurable", bins)
	}

	stages := df.stages()
	if len(stages) < 2 {
		t.Fatalf("the Dockerfile has stages %q; want a build stage and a runtime stage", stages)
	}
	mm := goDirective(t)
	if parts := strings.SplitN(mm, ".", 3); len(parts) >= 2 {
		mm = parts[0] + "." + parts[1]
	}
	if want := "golang:" + mm; !strings.HasPrefix(stages[0], want) {
		t.Errorf("the build stage is %s; go.mod asks for go %s: want %s", stages[0], mm, want)
	}

	// The runtime stage copies the binaries the build made and runs as a
	// user other than root.
	var copied []string
	for _, in := range df.instructions {
		if in.keyword != "COPY" || !strings.Contains(in.args, "--from=") {
			continue
		}
		f := strings.Fields(in.args)
		copied = append(copied, f[1:len(f)-1]...)
	}
	for _, bin := range b.binaries() {
		if want := path.Join(b.outDir, bin); !slices.Contains(copied, want) {
			t.Errorf("the runtime stage does not copy %s (it copies %q)", want, copied)
		}
	}
	user := df.last("USER")
	if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "root" || uid == "0" {
		t.Errorf("the runtime stage runs as user %q; want a non-root user", user)
	}
	cmd := strings.Trim(df.last("CMD"), `[]" `)
	if bin, _, _ := strings.Cut(cmd, `"`); !slices.Contains(b.binaries(), bin) {
		t.Errorf("CMD runs %q, which the image does not build", bin)
	}
}

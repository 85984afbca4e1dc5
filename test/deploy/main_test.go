// Package deploy checks the deployment files and the operations guide
// against the code: docker-compose.yml and the Dockerfile may only use flags,
// environment variables and binaries that exist, and every command line that
// docs/operations.md quotes must parse. It needs no storage and no Docker
// engine: it builds the two binaries the way the Dockerfile does and asks
// them for their help.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the module root, relative to this package.
const repoRoot = "../.."

// binDir holds the worker and azdurable binaries built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "azdurable-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildLikeDockerfile(dir); err != nil {
		fmt.Fprintln(os.Stderr, "deploy:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// buildLikeDockerfile runs the Dockerfile's go build command, with its
// output directory replaced by dir.
func buildLikeDockerfile(dir string) error {
	df, err := readDockerfile()
	if err != nil {
		return err
	}
	b, err := df.goBuild()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the binaries: %w", err)
	}
	args := append([]string{"build"}, b.flags...)
	args = append(args, "-o", dir+string(filepath.Separator))
	args = append(args, b.packages...)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("the Dockerfile's build (go %s) fails: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// result is what a binary printed and how it exited.
type result struct {
	out  string // stdout and stderr
	code int
}

// runBinary runs one of the built binaries with args and only the
// environment given (so that the caller's AZDURABLE_* settings do not leak
// in), and no storage to reach.
func runBinary(t *testing.T, name string, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return result{out: out.String()}
	case errors.As(err, &ee):
		return result{out: out.String(), code: ee.ExitCode()}
	}
	t.Fatalf("run %s: %v", name, err)
	return result{}
}

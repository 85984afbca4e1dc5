package badinput

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/test/azurite"
)

// secretWord stands for a secret inside a malformed connection string: it
// must never be printed.
const secretWord = "S3cretMustNotLeak"

// buildCommand compiles a command of the module into a temporary folder.
func buildCommand(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, "github.com/azdurable/azdurable/"+pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// runCommand runs bin with args and AZDURABLE_CONNECTION_STRING set to
// connStr, and returns its exit code and output. A process still running
// after a minute is killed and fails the test: bad configuration must end
// it, not leave it waiting for storage.
func runCommand(t *testing.T, bin, connStr string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AZDURABLE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "AZDURABLE_CONNECTION_STRING="+connStr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not exit within a minute; output:\n%s", filepath.Base(bin), args, out.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// The worker refuses a malformed connection string or flag with exit code
// 2 and a message that names the problem, and never prints the secret.
func TestWorkerRefusesBadConfiguration(t *testing.T) {
	worker := buildCommand(t, "cmd/worker")
	good := azurite.ForTest(t)
	hub := hubName(t)
	t.Cleanup(func() { deleteHubIfAny(t, good, hub) })
	for _, tc := range []struct {
		name    string
		connStr string
		args    []string
		want    string
	}{
		{"account name only", "AccountName=x", nil, "neither AccountKey nor SharedAccessSignature"},
		{"garbage", "garbage " + secretWord, nil, "not of the form Key=Value"},
		{"UseDevelopmentStorage=maybe", "UseDevelopmentStorage=maybe;AccountKey=" + secretWord, nil, "UseDevelopmentStorage must be true"},
		{"key not base64", "AccountName=acct;AccountKey=not*base64!" + secretWord, nil, "AccountKey is not base64"},
		{"empty part", ";;", nil, "AZDURABLE_CONNECTION_STRING"},
		{"partitions not a number", good, []string{"-partitions", "abc"}, `"abc" is not an integer`},
		{"partitions 0", good, []string{"-partitions", "0"}, "partitions is 0"},
		{"partitions 257", good, []string{"-partitions", "257"}, "257"},
		{"unknown flag", good, []string{"-no-such-flag"}, "no-such-flag"},
		{"task hub name", good, []string{"-taskhub", "Bad-Hub"}, `task hub name "Bad-Hub" is invalid`},
		{"negative duration", good, []string{"-drain-timeout", "-1s"}, "drain"},
		{"lease duration", good, []string{"-taskhub", hub, "-partitions", "1", "-lease-duration", "5s"}, "LeaseDuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCommand(t, worker, tc.connStr, tc.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; output:\n%s", code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
			for _, secret := range []string{secretWord, azurite.AccountKey} {
				if strings.Contains(out, secret) {
					t.Errorf("output prints a secret:\n%s", out)
				}
			}
		})
	}
}

// Cross-check of the CLI, whose bad input cmd/azdurable's tests cover.
func TestCLIRefusesBadConnectionString(t *testing.T) {
	cli := buildCommand(t, "cmd/azdurable")
	for _, connStr := range []string{"garbage " + secretWord, "AccountName=acct;AccountKey=not*base64!" + secretWord} {
		code, out := runCommand(t, cli, connStr, "instances", "list", "--taskhub", "badinputcli")
		if code != 2 || strings.Contains(out, secretWord) || !strings.Contains(out, "invalid input") {
			t.Errorf("exit code %d, output:\n%s", code, out)
		}
	}
}

// deleteHubIfAny deletes a task hub a worker may have created.
func deleteHubIfAny(t *testing.T, connStr, hub string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := azprovider.ReadTaskHub(ctx, azprovider.Options{ConnectionString: connStr, TaskHub: hub})
	if errors.Is(err, azprovider.ErrTaskHubNotFound) {
		return
	}
	if err != nil {
		t.Errorf("read task hub %s: %v", hub, err)
		return
	}
	p, err := azprovider.New(ctx, azprovider.Options{ConnectionString: connStr, TaskHub: hub, Partitions: info.Partitions})
	if err == nil {
		err = p.DeleteTaskHub(ctx)
	}
	if err != nil {
		t.Errorf("delete task hub %s: %v", hub, err)
	}
}

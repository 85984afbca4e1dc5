package deploy

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeService is the part of a docker compose service this test reads.
// Commands and environments must be written as lists and maps.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return f.Services
}

// interpolation is compose's ${NAME:-default}.
var interpolation = regexp.MustCompile(`\$\{[A-Z_]+(?::?-([^}]*))?\}`)

// composeEnv is a service's environment as the container sees it when the
// shell sets nothing.
func composeEnv(s composeService) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = interpolation.ReplaceAllString(v, "$1")
	}
	return env
}

// flagValue is the value of -name or --name in a command line.
func flagValue(cmd []string, name string) string {
	for i, w := range cmd {
		for _, p := range []string{"-" + name, "--" + name} {
			if w == p && i+1 < len(cmd) {
				return cmd[i+1]
			}
			if v, ok := strings.CutPrefix(w, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

// containerPort is the port of host:port, or "" when there is none.
func containerPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

func TestComposeWorkers(t *testing.T) {
	services := readCompose(t)
	help := getWorkerHelp(t)
	hostIDs := map[string]string{}
	taskHubs, partitions := map[string]bool{}, map[string]bool{}
	workers := 0
	for name, s := range services {
		if len(s.Command) == 0 || s.Command[0] != "worker" {
			continue
		}
		workers++
		t.Run(name, func(t *testing.T) {
			env := composeEnv(s)
			for k := range env {
				if strings.HasPrefix(k, "AZDURABLE_") && !help.env[k] {
					t.Errorf("environment variable %s is not one the worker reads (worker -h)", k)
				}
			}
			for _, w := range s.Command[1:] {
				if f, ok := strings.CutPrefix(w, "-"); ok {
					f, _, _ = strings.Cut(strings.TrimPrefix(f, "-"), "=")
					if !help.flags[f] {
						t.Errorf("flag %s is not a worker flag (worker -h)", w)
					}
				}
			}
			// The worker parses its environment and flags before it
			// answers -h, so bad values fail here.
			if r := runBinary(t, "worker", env, append(slices.Clone(s.Command[1:]), "-h")...); r.code != 0 {
				t.Errorf("worker %s -h with the service's environment exits %d:\n%s", strings.Join(s.Command[1:], " "), r.code, r.out)
			}

			id := flagValue(s.Command, "host-id")
			if id == "" {
				id = env["AZDURABLE_HOST_ID"]
			}
			if id == "" {
				t.Error("no host id: set -host-id or AZDURABLE_HOST_ID, so that each host is told apart in leases, logs and metrics")
			} else if other, dup := hostIDs[id]; dup {
				t.Errorf("host id %q is also %s's", id, other)
			}
			hostIDs[id] = name
			taskHubs[env["AZDURABLE_TASKHUB"]] = true
			partitions[env["AZDURABLE_PARTITIONS"]] = true

			checkStorage(t, services, env)

			httpAddr := flagValue(s.Command, "http")
			if httpAddr == "" {
				httpAddr = env["AZDURABLE_HTTP"]
			}
			host, port, err := net.SplitHostPort(httpAddr)
			if err != nil || port == "0" || (host != "0.0.0.0" && host != "") {
				t.Errorf("HTTP address %q: want 0.0.0.0 and a fixed port, so that the health check and a scraper reach it", httpAddr)
			}
			probe := strings.Join(s.Healthcheck.Test, " ")
			if !strings.Contains(probe, ":"+port+"/healthz") {
				t.Errorf("health check %q does not ask /healthz on port %s", probe, port)
			}
			if s.Image != "" && s.Build == nil {
				t.Errorf("image %s is not built here: add build: .", s.Image)
			}
		})
	}
	if workers < 3 {
		t.Errorf("%d worker services; want three", workers)
	}
	if len(taskHubs) != 1 || len(partitions) != 1 {
		t.Errorf("the workers disagree on the task hub (%v) or the partition count (%v): they must share both", taskHubs, partitions)
	}
}

// checkStorage checks that a service's connection string reaches the
// azurite service on the ports it listens on. It never prints the string.
func checkStorage(t *testing.T, services map[string]composeService, env map[string]string) {
	t.Helper()
	cs := env["AZDURABLE_CONNECTION_STRING"]
	if cs == "" {
		t.Error("AZDURABLE_CONNECTION_STRING is not set: the default reaches Azurite on the container's own loopback, where it is not")
		return
	}
	az, ok := services["azurite"]
	if !ok {
		t.Fatal("no azurite service")
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok {
			fields[strings.ToLower(k)] = v
		}
	}
	if fields["accountname"] != "devstoreaccount1" || fields["accountkey"] == "" {
		t.Error("the connection string is not the development account's (account devstoreaccount1 with its key)")
	}
	for svc, def := range map[string]string{"blob": "10000", "queue": "10001", "table": "10002"} {
		u, err := url.Parse(fields[svc+"endpoint"])
		if err != nil || u.Scheme != "http" || u.Hostname() != "azurite" || u.Path != "/devstoreaccount1" {
			t.Errorf("%sEndpoint is not http://azurite:PORT/devstoreaccount1", svc)
			continue
		}
		want := flagValue(az.Command, svc+"Port")
		if want == "" {
			want = def
		}
		if u.Port() != want {
			t.Errorf("%sEndpoint uses port %s; the azurite service listens on %s", svc, u.Port(), want)
		}
	}
}

func TestComposeAzurite(t *testing.T) {
	az, ok := readCompose(t)["azurite"]
	if !ok {
		t.Fatal("no azurite service")
	}
	image, tag, _ := strings.Cut(az.Image, ":")
	if image != "mcr.microsoft.com/azure-storage/azurite" {
		t.Errorf("azurite image %q", az.Image)
	}
	// The image runs the version the tests run (test/azurite/package.json).
	data, err := os.ReadFile(filepath.Join(repoRoot, "test", "azurite", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatal(err)
	}
	if want := pkg.Dependencies["azurite"]; tag != want {
		t.Errorf("azurite image tag %q; the tests pin azurite %s", tag, want)
	}
	for _, f := range []string{"--skipApiVersionCheck", "--loose", "--disableTelemetry"} {
		if !slices.Contains(az.Command, f) {
			t.Errorf("azurite runs without %s (shared/AZURITE.md)", f)
		}
	}
	if slices.Contains(az.Command, "--inMemoryPersistence") {
		t.Error("azurite runs with --inMemoryPersistence, which stalls under queue traffic (shared/AZURITE.md)")
	}
	for _, svc := range []string{"blob", "queue", "table"} {
		if h := flagValue(az.Command, svc+"Host"); h != "0.0.0.0" {
			t.Errorf("azurite's %sHost is %q: other containers cannot reach it unless it is 0.0.0.0", svc, h)
		}
	}
	for _, p := range az.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("azurite publishes %q beyond loopback", p)
		}
	}
}

func TestComposeDashboard(t *testing.T) {
	services := readCompose(t)
	d, ok := services["dashboard"]
	if !ok {
		t.Fatal("no dashboard service")
	}
	if len(d.Command) < 2 || d.Command[0] != "azdurable" || d.Command[1] != "dashboard" {
		t.Fatalf("the dashboard service runs %q; want azdurable dashboard", d.Command)
	}
	env := composeEnv(d)
	known := cliEnv(t)
	for k := range env {
		if strings.HasPrefix(k, "AZDURABLE_") && !known[k] {
			t.Errorf("environment variable %s is not one azdurable reads (azdurable --help)", k)
		}
	}
	if r := runBinary(t, "azdurable", env, append(slices.Clone(d.Command[1:]), "--help")...); r.code != 0 {
		t.Errorf("azdurable %s --help exits %d:\n%s", strings.Join(d.Command[1:], " "), r.code, r.out)
	}
	checkStorage(t, services, env)
	if env["AZDURABLE_TASKHUB"] == "" && flagValue(d.Command, "taskhub") == "" {
		t.Error("the dashboard names no task hub (AZDURABLE_TASKHUB or --taskhub)")
	}
	for name, s := range services {
		if len(s.Command) > 0 && s.Command[0] == "worker" && composeEnv(s)["AZDURABLE_TASKHUB"] != env["AZDURABLE_TASKHUB"] {
			t.Errorf("the dashboard shows task hub %q; %s serves %q", env["AZDURABLE_TASKHUB"], name, composeEnv(s)["AZDURABLE_TASKHUB"])
		}
	}
	port := containerPort(flagValue(d.Command, "addr"))
	if port == "" {
		t.Fatalf("the dashboard's --addr %q has no port", flagValue(d.Command, "addr"))
	}
	published := false
	for _, p := range d.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("the dashboard publishes %q beyond loopback", p)
		}
		published = published || strings.HasSuffix(p, ":"+port)
	}
	if !published {
		t.Errorf("the dashboard listens on port %s but publishes %q", port, d.Ports)
	}
}

package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A secret that must never appear in an error or a log.
const secretKey = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionString != "UseDevelopmentStorage=true" || c.TaskHub != "azdurable" || c.Partitions != 16 ||
		c.HTTPAddr != "127.0.0.1:0" || c.LogFormat != "json" || c.LogLevel != zerolog.InfoLevel ||
		c.DrainTimeout != 30*time.Second || c.ActivityConcurrency != 64 || c.OffloadActivities || c.HostID == "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigFlagsWinOverEnvironment(t *testing.T) {
	vars := map[string]string{
		"AZDURABLE_CONNECTION_STRING":  "AccountName=acct;AccountKey=" + secretKey,
		"AZDURABLE_TASKHUB":            "fromenv",
		"AZDURABLE_PARTITIONS":         "8",
		"AZDURABLE_HOST_ID":            "env-host",
		"AZDURABLE_CONCURRENCY":        "7",
		"AZDURABLE_LOG_LEVEL":          "debug",
		"AZDURABLE_LOG_FORMAT":         "console",
		"AZDURABLE_OFFLOAD_ACTIVITIES": "true",
		"AZDURABLE_DRAIN_TIMEOUT":      "5s",
		"AZDURABLE_HTTP":               "127.0.0.1:8080",
	}
	c, err := parseConfig([]string{"-taskhub", "fromflag", "-partitions", "32", "-log-level", "warn", "-drain-timeout=2s"}, env(vars), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.TaskHub != "fromflag" || c.Partitions != 32 || c.LogLevel != zerolog.WarnLevel || c.DrainTimeout != 2*time.Second {
		t.Fatalf("flags did not win: %+v", c)
	}
	if c.HostID != "env-host" || c.ActivityConcurrency != 7 || c.LogFormat != "console" || !c.OffloadActivities ||
		c.HTTPAddr != "127.0.0.1:8080" || !strings.Contains(c.ConnectionString, secretKey) {
		t.Fatalf("environment not applied: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad hub", []string{"-taskhub", "Bad_Hub"}, nil, "task hub name"},
		{"zero partitions", []string{"-partitions", "0"}, nil, "partitions is 0"},
		{"too many partitions", []string{"-partitions", "257"}, nil, "between 1 and 256"},
		{"partitions not a number", []string{"-partitions", "many"}, nil, `"many" is not an integer`},
		{"env partitions not a number", nil, map[string]string{"AZDURABLE_PARTITIONS": "x"}, "AZDURABLE_PARTITIONS"},
		{"concurrency", []string{"-concurrency", "0"}, nil, "concurrency is 0"},
		{"activity backlog", []string{"-activity-backlog", "-2"}, nil, "activity-backlog is -2"},
		{"log level", []string{"-log-level", "loud"}, nil, `log level "loud"`},
		{"log format", []string{"-log-format", "xml"}, nil, `log format "xml"`},
		{"drain timeout", []string{"-drain-timeout", "0s"}, nil, "drain-timeout"},
		{"duration", []string{"-drain-timeout", "soon"}, nil, "not a duration"},
		{"env bool", nil, map[string]string{"AZDURABLE_OFFLOAD_ACTIVITIES": "perhaps"}, "AZDURABLE_OFFLOAD_ACTIVITIES"},
		{"http address", []string{"-http", "8080"}, nil, "http address"},
		{"http port", []string{"-http", "127.0.0.1:99999"}, nil, "port"},
		{"http host", []string{"-http", "example.com:80"}, nil, "neither an IP address nor localhost"},
		{"unknown flag", []string{"-colour"}, nil, "flag provided but not defined"},
		{"arguments", []string{"extra"}, nil, "unexpected arguments"},
		{"host id", []string{"-host-id", "a\x01b"}, nil, "control character"},
		{"negative latency", []string{"-activity-latency", "-1s"}, nil, "activity-latency"},
		{"otlp scheme", []string{"-otlp-endpoint", "collector:4318"}, nil, "http or https URL"},
		{"otlp host", []string{"-otlp-endpoint", "http:///v1/traces"}, nil, "otlp-endpoint has no host"},
		{"otlp url", nil, map[string]string{"AZDURABLE_OTLP_ENDPOINT": "http://a b"}, "otlp-endpoint is not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, env(tc.env), &bytes.Buffer{})
			if !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestConfigConnectionStrings(t *testing.T) {
	for _, tc := range []struct {
		cs   string
		want string // "" when valid
	}{
		{"UseDevelopmentStorage=true", ""},
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + secretKey + ";EndpointSuffix=core.windows.net", ""},
		{"BlobEndpoint=https://a.blob/;QueueEndpoint=https://a.queue/;TableEndpoint=https://a.table/;SharedAccessSignature=sv=1&sig=" + secretKey, ""},
		{"AccountName=acct;AccountKey;" + strings.TrimRight(secretKey, "="), "not of the form Key=Value"},
		{"AccountName=acct;" + secretKey, "a key that connection strings do not have"},
		{"AccountName=acct", "neither AccountKey nor SharedAccessSignature"},
		{"AccountKey=" + secretKey, "no AccountName"},
		{"AccountName=acct;AccountKey=" + secretKey + ";BlobEndpoint=ftp://x", "blobendpoint is not an http"},
		{"UseDevelopmentStorage=false;AccountKey=" + secretKey, "must be true"},
		{";;", "empty"},
	} {
		_, err := parseConfig(nil, env(map[string]string{"AZDURABLE_CONNECTION_STRING": tc.cs}), &bytes.Buffer{})
		if tc.want == "" {
			if err != nil {
				t.Errorf("valid connection string rejected: %v", err)
			}
			continue
		}
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "AZDURABLE_CONNECTION_STRING") {
			t.Errorf("err = %v, want a configuration error of AZDURABLE_CONNECTION_STRING saying %q", err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), "acct") {
			t.Errorf("the error quotes the connection string: %v", err)
		}
	}
}

func TestRedacted(t *testing.T) {
	c, err := parseConfig(nil, env(map[string]string{"AZDURABLE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + secretKey +
		";TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=sv=2&sig=" + secretKey}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Redacted()["connection"].(string)
	if strings.Contains(conn, secretKey) || strings.Contains(conn, "sig=") {
		t.Fatalf("redacted connection string keeps a secret: %s", conn)
	}
	want := "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=REDACTED;TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=REDACTED"
	if conn != want {
		t.Fatalf("redacted %q, want %q", conn, want)
	}
	if got := redactConnectionString("UseDevelopmentStorage=true"); got != "UseDevelopmentStorage=true" {
		t.Fatalf("development storage redacted to %q", got)
	}
	if got := redactConnectionString("AccountName=a;" + secretKey); strings.Contains(got, secretKey) {
		t.Fatalf("a malformed part kept its secret: %q", got)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"AZDURABLE_CONNECTION_STRING", "-partitions", "AZDURABLE_PARTITIONS", "-http", "AZDURABLE_DRAIN_TIMEOUT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not mention %s:\n%s", want, out.String())
		}
	}
}

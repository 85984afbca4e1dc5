package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
)

// Environment variables. Each setting but the connection string also has a
// flag, which wins over the variable.
const (
	// EnvConnectionString is the storage connection string. It has no flag,
	// so that it never shows in a process list, and it is never printed.
	EnvConnectionString = "AZDURABLE_CONNECTION_STRING"
	envPrefix           = "AZDURABLE_"
	// EnvDashboardToken enables the dashboard's operator actions. Like the
	// connection string it has no flag and is never printed.
	EnvDashboardToken = "AZDURABLE_DASHBOARD_TOKEN"
)

// defaultConnectionString runs against a local Azurite on its default ports.
const defaultConnectionString = "UseDevelopmentStorage=true"

// errUsage marks a configuration error: the worker exits with code 2.
var errUsage = errors.New("invalid configuration")

// Config is the worker's configuration.
type Config struct {
	ConnectionString string // secret: never printed (see Redacted)
	TaskHub          string
	Partitions       int
	HostID           string

	ActivityConcurrency      int
	ActivityBacklog          int
	OrchestrationConcurrency int
	OffloadActivities        bool
	PollMaxInterval          time.Duration
	// LockDuration and ActivityLockDuration: how long fetched control
	// messages and work items stay hidden from others. After a crash they
	// reappear when it runs out, so keep it near the lease duration.
	LockDuration         time.Duration
	ActivityLockDuration time.Duration
	// ActivityLatency makes every sample activity take this long.
	ActivityLatency time.Duration

	// Partition manager timings; zero takes the manager's defaults.
	LeaseDuration      time.Duration
	RenewInterval      time.Duration
	AcquireInterval    time.Duration
	SteadyScanInterval time.Duration
	HandOverTimeout    time.Duration
	// DrainTimeout bounds a graceful shutdown's drain.
	DrainTimeout time.Duration

	HTTPAddr string
	// NoMessagePacking: azprovider.Options.NoMessagePacking.
	NoMessagePacking bool
	// QueueMetricsInterval is how often the queues are sampled for the
	// queue depth and age metrics; 0 turns the sampling off.
	QueueMetricsInterval time.Duration
	// DashboardAddr, when set, serves the web dashboard there;
	// DashboardToken (env only) enables its operator actions.
	DashboardAddr  string
	DashboardToken string // secret: never printed
	// OTLPEndpoint, when set, exports OpenTelemetry spans there (OTLP/HTTP).
	OTLPEndpoint string
	LogLevel     zerolog.Level
	LogFormat    string
}

// setting is one configuration value: its flag, its environment variable
// and where it goes.
type setting struct {
	flag, arg, usage string // arg names the value in -help; empty for booleans
	value            flag.Value
}

// parseConfig reads the configuration from args (the command line without
// the program name) and the environment, and validates it. Flags win over
// environment variables, which win over the defaults. Every error wraps
// errUsage and never quotes the connection string.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*Config, error) {
	c := &Config{
		TaskHub:                  "azdurable",
		Partitions:               16,
		ActivityConcurrency:      64,
		ActivityBacklog:          10000,
		OrchestrationConcurrency: 16,
		PollMaxInterval:          time.Second,
		LockDuration:             30 * time.Second,
		ActivityLockDuration:     30 * time.Second,
		DrainTimeout:             30 * time.Second,
		HTTPAddr:                 "127.0.0.1:0",
		LogFormat:                "json",
	}
	level := "info"
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(usage)
	settings := []setting{
		{"taskhub", "name", "task hub name: lower-case letters and digits, 3 to 41, starting with a letter", (*stringValue)(&c.TaskHub)},
		{"partitions", "count", "partition count of the task hub (1..256); fixed when the task hub is created", (*intValue)(&c.Partitions)},
		{"host-id", "id", "this host's id in leases, logs and the hosts record (default hostname-pid)", (*stringValue)(&c.HostID)},
		{"concurrency", "n", "activities this host runs at once", (*intValue)(&c.ActivityConcurrency)},
		{"activity-backlog", "n", "activities of this host's partitions that may wait in memory for a free slot; beyond it they go to the shared work-item queue (-1: none wait; 0: the default)", (*intValue)(&c.ActivityBacklog)},
		{"orchestration-concurrency", "n", "episodes one partition runs at once", (*intValue)(&c.OrchestrationConcurrency)},
		{"offload-activities", "", "send every activity through the shared work-item queue", (*boolValue)(&c.OffloadActivities)},
		{"no-message-packing", "", "send every control message and work item in a queue message of its own, for as long as hosts of a build that cannot read packs still run against the task hub", (*boolValue)(&c.NoMessagePacking)},
		{"poll-max-interval", "duration", "longest wait between polls of an idle queue", (*durationValue)(&c.PollMaxInterval)},
		{"activity-latency", "duration", "simulated latency of every sample activity", (*durationValue)(&c.ActivityLatency)},
		{"lease-duration", "duration", "partition lease duration, whole seconds from 15s to 60s; a killed host's partitions move after at most this plus -acquire-interval (0: the partition manager's default, 60s)", (*durationValue)(&c.LeaseDuration)},
		{"renew-interval", "duration", "partition lease renewal and heartbeat interval; one storage operation per partition each time (0: default, 40s)", (*durationValue)(&c.RenewInterval)},
		{"acquire-interval", "duration", "interval between scans of the leases, to take free partitions and balance, while partitions move (0: default, 1.5s)", (*durationValue)(&c.AcquireInterval)},
		{"steady-scan-interval", "duration", "interval between scans of the leases while this host holds its share and nothing moves; how long it takes to notice a host joining or shutting down (0: default, 10 acquire intervals)", (*durationValue)(&c.SteadyScanInterval)},
		{"handover-timeout", "duration", "how long a partition handed over to another host may finish its in-flight work (0: default, 5s)", (*durationValue)(&c.HandOverTimeout)},
		{"drain-timeout", "duration", "how long a shutdown lets in-flight work finish before it releases the partitions", (*durationValue)(&c.DrainTimeout)},
		{"lock-duration", "duration", "how long fetched control messages stay locked; after a crash they reappear when it runs out (keep it near the lease duration)", (*durationValue)(&c.LockDuration)},
		{"activity-lock-duration", "duration", "how long a fetched work item stays locked; running activities renew it every third of it", (*durationValue)(&c.ActivityLockDuration)},
		{"queue-metrics-interval", "duration", "how often to sample queue depth and message age for /metrics (2 storage operations per queue), e.g. 30s; 0, the default, turns it off", (*durationValue)(&c.QueueMetricsInterval)},
		{"dashboard", "address", "serve the web dashboard on this address, e.g. 127.0.0.1:8089 (default: none); operator token from AZDURABLE_DASHBOARD_TOKEN", (*stringValue)(&c.DashboardAddr)},
		{"otlp-endpoint", "url", "export OpenTelemetry spans of orchestrations, activities and timers to this OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (default: none)", (*stringValue)(&c.OTLPEndpoint)},
		{"http", "address", "listen address of the HTTP server (/healthz, /readyz, /metrics, /status); port 0 picks a free port", (*stringValue)(&c.HTTPAddr)},
		{"log-level", "level", "debug, info, warn or error", (*stringValue)(&level)},
		{"log-format", "format", "json, or console for people", (*stringValue)(&c.LogFormat)},
	}
	defaults := make([]string, len(settings))
	for i, s := range settings {
		env := envName(s.flag)
		defaults[i] = s.value.String()
		fs.Var(s.value, s.flag, s.usage)
		if v := getenv(env); v != "" {
			if err := s.value.Set(v); err != nil {
				return nil, fmt.Errorf("%w: %s=%q: %v", errUsage, env, v, err)
			}
		}
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: worker [flags]\n\nRuns a worker host of an azdurable task hub. The storage connection string comes from\n%s (default %s: Azurite on its default ports); it is never printed.\n\nFlags, each also set by the environment variable named after it:\n", EnvConnectionString, defaultConnectionString)
		for i, s := range settings {
			fmt.Fprintf(w, "  %s\n    \t%s\n    \t(%s", strings.TrimSpace("-"+s.flag+" "+s.arg), s.usage, envName(s.flag))
			if d := defaults[i]; d != "" && d != "0" && d != "0s" && d != "false" {
				fmt.Fprintf(w, ", default %s", d)
			}
			fmt.Fprintln(w, ")")
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q: the worker takes flags only", errUsage, fs.Args())
	}

	c.ConnectionString = getenv(EnvConnectionString)
	c.DashboardToken = getenv(EnvDashboardToken)
	if c.ConnectionString == "" {
		c.ConnectionString = defaultConnectionString
	}
	if c.HostID == "" {
		h, _ := os.Hostname()
		c.HostID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" || lvl > zerolog.ErrorLevel || lvl < zerolog.DebugLevel {
		return nil, fmt.Errorf("%w: log level %q: use debug, info, warn or error", errUsage, level)
	}
	c.LogLevel = lvl
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// envName is the environment variable of a flag: host-id → AZDURABLE_HOST_ID.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	if err := azprovider.ValidateTaskHubName(c.TaskHub); err != nil {
		return bad("%v", err)
	}
	if err := core.ValidateName("host id", c.HostID); err != nil {
		return bad("%v", err)
	}
	switch {
	case c.Partitions < 1 || c.Partitions > 256:
		return bad("partitions is %d; it must be between 1 and 256", c.Partitions)
	case c.ActivityConcurrency < 1:
		return bad("concurrency is %d; it must be at least 1", c.ActivityConcurrency)
	case c.ActivityBacklog < -1:
		return bad("activity-backlog is %d; it must be -1 (none wait) or more", c.ActivityBacklog)
	case c.OrchestrationConcurrency < 1:
		return bad("orchestration-concurrency is %d; it must be at least 1", c.OrchestrationConcurrency)
	case c.PollMaxInterval < 10*time.Millisecond:
		return bad("poll-max-interval is %s; it must be at least 10ms", c.PollMaxInterval)
	case c.ActivityLatency < 0:
		return bad("activity-latency is %s; it must not be negative", c.ActivityLatency)
	case c.LeaseDuration < 0 || c.RenewInterval < 0 || c.AcquireInterval < 0 || c.SteadyScanInterval < 0 || c.HandOverTimeout < 0:
		return bad("lease-duration, renew-interval, acquire-interval, steady-scan-interval and handover-timeout must not be negative")
	case c.DrainTimeout <= 0:
		return bad("drain-timeout is %s; it must be positive", c.DrainTimeout)
	case c.LockDuration < time.Second || c.ActivityLockDuration < time.Second:
		return bad("lock-duration (%s) and activity-lock-duration (%s) must be at least 1s", c.LockDuration, c.ActivityLockDuration)
	case c.QueueMetricsInterval < 0:
		return bad("queue-metrics-interval is %s; it must not be negative (0 turns the sampling off)", c.QueueMetricsInterval)
	case c.LogFormat != "json" && c.LogFormat != "console":
		return bad("log format %q: use json or console", c.LogFormat)
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return bad("http address %q: %v (want host:port, for example 127.0.0.1:8080)", c.HTTPAddr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad("http address %q: port %q is not a number from 0 to 65535", c.HTTPAddr, port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return bad("http address %q: host %q is neither an IP address nor localhost", c.HTTPAddr, host)
	}
	if err := checkConnectionString(c.ConnectionString); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, EnvConnectionString, err)
	}
	if err := checkPartitionOptions(c); err != nil {
		return bad("%v", err)
	}
	if c.OTLPEndpoint != "" {
		if err := checkOTLPEndpoint(c.OTLPEndpoint); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// connectionKeys are the keys of Azure Storage connection strings, in lower case.
var connectionKeys = map[string]bool{
	"defaultendpointsprotocol": true, "accountname": true, "accountkey": true, "sharedaccesssignature": true,
	"endpointsuffix": true, "blobendpoint": true, "queueendpoint": true, "tableendpoint": true, "fileendpoint": true,
	"blobsecondaryendpoint": true, "queuesecondaryendpoint": true, "tablesecondaryendpoint": true,
	"filesecondaryendpoint": true, "usedevelopmentstorage": true, "developmentstorageproxyuri": true,
}

// notSecret are the connection string keys whose values may be logged.
var notSecret = map[string]bool{
	"defaultendpointsprotocol": true, "accountname": true, "endpointsuffix": true, "usedevelopmentstorage": true,
	"blobendpoint": true, "queueendpoint": true, "tableendpoint": true, "fileendpoint": true,
	"blobsecondaryendpoint": true, "queuesecondaryendpoint": true, "tablesecondaryendpoint": true,
	"filesecondaryendpoint": true, "developmentstorageproxyuri": true,
}

// checkConnectionString checks the form of a connection string. Its errors
// name keys, never values: the string holds secrets.
func checkConnectionString(cs string) error {
	fields := map[string]string{}
	for part := range strings.SplitSeq(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return errors.New("a part is not of the form Key=Value (the string is not shown: it holds secrets)")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if !connectionKeys[k] {
			// Not named: a stray secret can look like a key.
			return errors.New("a part has a key that connection strings do not have (the string is not shown: it holds secrets)")
		}
		fields[k] = strings.TrimSpace(v)
	}
	if dev, ok := fields["usedevelopmentstorage"]; ok {
		if !strings.EqualFold(dev, "true") {
			return errors.New("UseDevelopmentStorage must be true when present")
		}
		return nil
	}
	switch {
	case len(fields) == 0:
		return errors.New("the connection string is empty")
	case fields["accountkey"] == "" && fields["sharedaccesssignature"] == "":
		return errors.New("the connection string has neither AccountKey nor SharedAccessSignature")
	case fields["accountkey"] != "" && fields["accountname"] == "":
		return errors.New("the connection string has an AccountKey but no AccountName")
	}
	if k := fields["accountkey"]; k != "" {
		if _, err := base64.StdEncoding.DecodeString(k); err != nil {
			return errors.New("AccountKey is not base64 (the key is not shown)")
		}
	}
	for _, k := range []string{"blobendpoint", "queueendpoint", "tableendpoint"} {
		if v := fields[k]; v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return fmt.Errorf("%s is not an http or https URL", k)
		}
	}
	return nil
}

// Redacted is the configuration as it may be logged: the connection string
// keeps its account and endpoints, and loses its key and signature.
func (c *Config) Redacted() map[string]any {
	return map[string]any{
		"connection":                redactConnectionString(c.ConnectionString),
		"taskhub":                   c.TaskHub,
		"partitions":                c.Partitions,
		"host_id":                   c.HostID,
		"concurrency":               c.ActivityConcurrency,
		"orchestration_concurrency": c.OrchestrationConcurrency,
		"offload_activities":        c.OffloadActivities,
		"no_message_packing":        c.NoMessagePacking,
		"poll_max_interval":         c.PollMaxInterval.String(),
		"activity_latency":          c.ActivityLatency.String(),
		"lease_duration":            c.LeaseDuration.String(),
		"renew_interval":            c.RenewInterval.String(),
		"acquire_interval":          c.AcquireInterval.String(),
		"steady_scan_interval":      c.SteadyScanInterval.String(),
		"handover_timeout":          c.HandOverTimeout.String(),
		"drain_timeout":             c.DrainTimeout.String(),
		"http":                      c.HTTPAddr,
		"dashboard":                 c.DashboardAddr,
		"queue_metrics_interval":    c.QueueMetricsInterval.String(),
		"lock_duration":             c.LockDuration.String(),
		"activity_lock_duration":    c.ActivityLockDuration.String(),
		"dashboard_token_set":       c.DashboardToken != "",
		"log_level":                 c.LogLevel.String(),
		"log_format":                c.LogFormat,
	}
}

// redactConnectionString keeps the known keys of a connection string and
// the values that are not secret.
func redactConnectionString(cs string) string {
	var out []string
	for part := range strings.SplitSeq(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, _, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		switch lk := strings.ToLower(k); {
		case ok && notSecret[lk]:
			out = append(out, part)
		case ok && connectionKeys[lk]:
			out = append(out, k+"=REDACTED")
		default:
			// Not a key=value part of a known key: it may be a stray secret.
			out = append(out, "REDACTED")
		}
	}
	return strings.Join(out, ";")
}

// Flag values that parse like the flag package's own.

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not an integer", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 500ms or 30s", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

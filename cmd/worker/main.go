// Command worker is a worker host of an azdurable task hub. It runs the
// orchestrations and activities of package samples for the partitions it
// leases, next to other worker hosts of the same task hub.
//
// Configuration comes from flags and AZDURABLE_* environment variables
// (worker -help lists them). The storage connection string comes from
// AZDURABLE_CONNECTION_STRING only, defaults to UseDevelopmentStorage=true
// (Azurite on its default ports) and is never printed.
//
// An HTTP server, on 127.0.0.1 and a free port by default, serves:
//
//	/healthz  200 while the process runs
//	/readyz   200 when storage answers and the host owns its partitions
//	/metrics  Prometheus metrics (docs/metrics.md)
//	/status   JSON: host id, owned partitions, runtime counters
//
// Once it listens, the worker logs a line with message "listening" and the
// address in field "addr", so that a parent process can find it. SIGTERM or
// SIGINT shuts it down gracefully: it stops fetching work, lets in-flight
// work finish for up to -drain-timeout, releases its partitions and exits 0.
// A second signal ends it at once. Bad configuration exits 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

// run is the whole program: it returns the exit code. Logs and errors go to
// stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\nRun worker -help for the flags and environment variables.\n", err)
		return exitUsage
	}
	return newHost(cfg, newLogger(cfg, stderr)).run(ctx)
}

// newLogger returns the worker's logger: JSON lines, or console output for people.
func newLogger(cfg *Config, w io.Writer) zerolog.Logger {
	if cfg.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(cfg.LogLevel).With().Timestamp().Logger()
}

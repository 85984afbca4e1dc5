// Command azdurable is the operator's tool for an azdurable task hub: list,
// inspect and control orchestration instances, read their histories as
// timelines, inspect partitions, queues and dead letters, and create or
// delete task hubs. docs/cli.md shows every command with an example.
//
// Global settings:
//
//	--taskhub NAME   the task hub (or AZDURABLE_TASKHUB)
//	--output FORMAT  table (for people, the default) or json (for scripts)
//	--timeout D      how long one command may take (default 1m)
//
// The storage connection string comes only from the environment variable
// AZDURABLE_CONNECTION_STRING, so that it never shows up in a shell's
// history or a process list, and defaults to UseDevelopmentStorage=true
// (Azurite on its default ports). It is never printed.
//
// Exit codes: 0 success; 1 the command failed (storage unreachable, instance
// not found, ...); 2 usage error (unknown command or flag, missing or
// malformed argument). Errors go to stderr and say what to do.
//
// The command tree is built with github.com/spf13/cobra, the most used Go
// CLI library (kubectl, Hugo and the GitHub CLI are built on it): nested
// subcommands, POSIX flags, generated help and shell completion
// (azdurable completion bash|zsh|fish|powershell) come with it, and
// operators already know its conventions.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

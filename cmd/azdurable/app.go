package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// Environment variables.
const (
	envTaskHub          = "AZDURABLE_TASKHUB"
	envConnectionString = "AZDURABLE_CONNECTION_STRING"
	// defaultConnectionString is Azurite on its default ports.
	defaultConnectionString = "UseDevelopmentStorage=true"
)

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// app is one run of the program: its settings, its streams and the task hub
// it opened.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	taskHub string
	output  string
	timeout time.Duration

	// ran is set once a command's own code runs: an error before that comes
	// from parsing the command line, a usage error.
	ran bool
	hub *ops.Hub
}

// run executes one command line and returns the exit code. Output goes to
// stdout, errors to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := a.exitCode(err)
	fmt.Fprintf(stderr, "azdurable: %v\n", err)
	if h := a.hint(err); h != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "azdurable",
		Short: "Operate an azdurable task hub: instances, histories, partitions, dead letters",
		Long: `azdurable operates a task hub of azdurable: it lists, inspects and controls
orchestration instances, shows their histories as timelines, and shows the
partitions, queues, dead letters and live hosts of the task hub.

The storage connection string comes from the environment variable
` + envConnectionString + ` only (default ` + defaultConnectionString + `: Azurite on
its default ports); it is never printed.

Exit codes: 0 success, 1 failure, 2 usage error.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.checkGlobalFlags,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.taskHub, "taskhub", a.getenv(envTaskHub), "task hub name (env "+envTaskHub+")")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", time.Minute, "how long the command may take")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))

	root.AddGroup(&cobra.Group{ID: "hub", Title: "Task hub commands:"},
		&cobra.Group{ID: "shortcuts", Title: "Shortcuts for 'azdurable instances ...':"})
	for _, c := range []*cobra.Command{
		a.instancesCommand(),
		a.partitionsCommand(),
		a.deadLettersCommand(),
		a.taskHubCommand(),
		a.hostsCommand(),
		a.dashboardCommand(),
	} {
		c.GroupID = "hub"
		root.AddCommand(c)
	}
	for _, c := range a.instanceActions() {
		c.GroupID = "shortcuts"
		root.AddCommand(c)
	}
	return root
}

// checkGlobalFlags validates the flags every command shares.
func (a *app) checkGlobalFlags(*cobra.Command, []string) error {
	switch a.output {
	case outputTable, outputJSON:
	default:
		return usagef("--output %q is not a format: use table or json", a.output)
	}
	if a.timeout <= 0 {
		return usagef("--timeout %s must be positive", a.timeout)
	}
	return nil
}

// runE adapts a command's code: it marks the command line as parsed and
// bounds the command by --timeout.
func (a *app) runE(fn func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
		defer cancel()
		return fn(ctx, cmd, args)
	}
}

// connectionString is the storage connection string; never print it.
func (a *app) connectionString() string {
	if cs := a.getenv(envConnectionString); cs != "" {
		return cs
	}
	return defaultConnectionString
}

// hubName returns the validated --taskhub.
func (a *app) hubName() (string, error) {
	if a.taskHub == "" {
		return "", usagef("no task hub given: pass --taskhub NAME or set %s", envTaskHub)
	}
	if err := azprovider.ValidateTaskHubName(a.taskHub); err != nil {
		return "", &usageError{fmt.Errorf("--taskhub: %w", err)}
	}
	return a.taskHub, nil
}

// instanceHub checks an instance id given on the command line, then opens
// the task hub: a bad id is a usage error that needs no storage.
func (a *app) instanceHub(ctx context.Context, id string) (*ops.Hub, error) {
	if err := checkInstanceID(id); err != nil {
		return nil, err
	}
	return a.openHub(ctx)
}

// openHub opens the existing task hub named by --taskhub.
func (a *app) openHub(ctx context.Context) (*ops.Hub, error) {
	if a.hub != nil {
		return a.hub, nil
	}
	name, err := a.hubName()
	if err != nil {
		return nil, err
	}
	h, err := ops.Open(ctx, a.connectionString(), name)
	if err != nil {
		return nil, err
	}
	a.hub = h
	return h, nil
}

// exitCode classifies an error: usage errors are the command line's fault.
func (a *app) exitCode(err error) int {
	var ue *usageError
	switch {
	case a.ran && errors.Is(err, ops.ErrDeadLetterNotFound):
		// The provider also marks it invalid input; the id was well formed.
		return exitFailed
	case !a.ran, errors.As(err, &ue), errors.Is(err, core.ErrInvalidInput), errors.Is(err, core.ErrPayloadTooLarge):
		return exitUsage
	}
	return exitFailed
}

// hint says what to do about an error, when the error itself does not.
func (a *app) hint(err error) string {
	var se *core.StorageError
	switch {
	case errors.Is(err, ops.ErrTaskHubNotFound):
		return fmt.Sprintf("create it with 'azdurable taskhub create --taskhub %s', or check --taskhub and %s", a.taskHub, envConnectionString)
	case errors.Is(err, ops.ErrDeadLetterNotFound):
		return "check the id; 'azdurable deadletters list' lists the dead letters of the task hub"
	case errors.Is(err, core.ErrInstanceNotFound):
		return "check the instance id; 'azdurable instances list' lists the instances of the task hub"
	case errors.Is(err, core.ErrInstanceCompleted):
		return "the instance has ended and takes no more events or commands; 'azdurable instances restart ID' runs it again"
	case errors.Is(err, core.ErrNotTerminal):
		return "the instance is still going: wait for it to end, or end it with 'azdurable instances terminate ID'"
	case errors.Is(err, core.ErrInstanceExists):
		return "choose another --id, or purge the ended instance first ('azdurable instances purge ID')"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the command did not finish within --timeout %s; check that storage is reachable, or raise --timeout", a.timeout)
	case errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden):
		return "storage refused the credentials: check the account name and key (or SAS) in " + envConnectionString
	case errors.As(err, &se) && se.Transient:
		return fmt.Sprintf("storage did not answer: check that it is reachable and that %s names the right account (default: Azurite on 127.0.0.1)", envConnectionString)
	}
	return ""
}

// usageError is an error in the command line: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// positional checks the positional arguments against their names.
func positional(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		switch {
		case len(got) < len(names):
			return usagef("missing %s: usage: %s", names[len(got)], cmd.UseLine())
		case len(got) > len(names):
			return usagef("unexpected argument %q: usage: %s", got[len(names)], cmd.UseLine())
		}
		return nil
	}
}

// group returns a command that only holds subcommands: alone it shows its
// help; with an unknown subcommand it is a usage error.
func group(c *cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, got []string) error {
		if len(got) > 0 {
			return usagef("unknown command %q for %q", got[0], cmd.CommandPath())
		}
		return nil
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return c
}

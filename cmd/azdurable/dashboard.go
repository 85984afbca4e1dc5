package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/azdurable/azdurable/dashboard"
)

// envDashboardToken enables the dashboard's operator actions. Like the
// connection string, it comes from the environment only.
const envDashboardToken = "AZDURABLE_DASHBOARD_TOKEN"

func (a *app) dashboardCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard of the task hub, on loopback by default",
		Long: "Serve the web dashboard of the task hub until interrupted. It is read-only unless " +
			envDashboardToken + " holds an operator token (16 bytes or more).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			octx, cancel := context.WithTimeout(ctx, a.timeout) // --timeout bounds opening only
			hub, err := a.openHub(octx)
			cancel()
			if err != nil {
				return err
			}
			h, err := dashboard.New(dashboard.Options{Hub: hub, OperatorToken: a.getenv(envDashboardToken)})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "dashboard of task hub %s on http://%s/; interrupt to stop\n", hub.Provider.TaskHub(), addr)
			return dashboard.ListenAndServe(ctx, addr, h)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", dashboard.DefaultAddr, "listen address; keep it on loopback unless something in front of it authenticates")
	return cmd
}

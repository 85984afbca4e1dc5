package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/dashboard"
	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/metrics"
	"github.com/azdurable/azdurable/ops"
	"github.com/azdurable/azdurable/samples"
)

// host is one worker process: its HTTP server, its storage connection, its
// partition manager and its runtime.
type host struct {
	cfg *Config
	log zerolog.Logger // the worker's own lines carry the host id

	mu   sync.Mutex
	prov *azprovider.Provider // set once storage answered
	own  ownership            // set with the runtime
	rt   *core.Runtime        // set once started

	stopping atomic.Bool
	metrics  atomic.Pointer[http.Handler]
	tracer   *sdktrace.TracerProvider // nil without -otlp-endpoint
}

func newHost(cfg *Config, log zerolog.Logger) *host {
	h := &host{cfg: cfg, log: log}
	h.setMetrics(metrics.Sources{HostID: cfg.HostID})
	return h
}

// run serves until a signal (or ctx) ends it and returns the exit code.
func (h *host) run(ctx context.Context) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := h.log.With().Str("host", h.cfg.HostID).Logger()
	log.Info().Interface("config", h.cfg.Redacted()).Msg("starting")

	ln, err := net.Listen("tcp", h.cfg.HTTPAddr)
	if err != nil {
		log.Error().Err(err).Str("addr", h.cfg.HTTPAddr).Msg("cannot listen")
		return exitFailed
	}
	srv := &http.Server{Handler: h.routes(), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("listening")

	code := h.start(ctx, log)
	if code != exitOK {
		return code
	}
	if ctx.Err() == nil {
		log.Info().Int("partitions", h.cfg.Partitions).Msg("running")
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received; shutting down")
	case err := <-serveErr:
		log.Error().Err(err).Msg("HTTP server failed; shutting down")
		code = exitFailed
	}
	// From here a second signal ends the process at once.
	stop()
	h.shutdown(log)
	return code
}

// start connects to storage, retrying until it answers, then starts the
// partition manager and the runtime. It returns exitUsage for configuration
// errors that only storage reveals (such as another partition count), and
// exitOK when ctx ended first.
func (h *host) start(ctx context.Context, log zerolog.Logger) int {
	prov, err := h.connect(ctx, log)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		if errors.Is(err, core.ErrInvalidInput) {
			log.Error().Err(err).Msg("invalid configuration; check -taskhub and -partitions (AZDURABLE_TASKHUB, AZDURABLE_PARTITIONS)")
			return exitUsage
		}
		log.Error().Err(err).Msg("cannot connect to storage")
		return exitFailed
	}
	reg := core.NewRegistry()
	if err := samples.RegisterWithOptions(reg, samples.Options{Latency: h.cfg.ActivityLatency}); err != nil {
		log.Error().Err(err).Msg("register samples")
		return exitFailed
	}
	own, err := newOwnership(h.cfg, prov, &h.log)
	if err != nil {
		log.Error().Err(err).Msg("invalid partition manager configuration")
		return exitUsage
	}
	var tp trace.TracerProvider
	if h.cfg.OTLPEndpoint != "" {
		p, err := newTracerProvider(ctx, h.cfg.OTLPEndpoint, h.cfg.HostID)
		if err != nil {
			log.Error().Err(err).Msg("invalid tracing configuration")
			return exitUsage
		}
		h.mu.Lock()
		h.tracer, tp = p, p
		h.mu.Unlock()
		log.Info().Str("otlp_endpoint", redactedEndpoint(h.cfg.OTLPEndpoint)).Msg("exporting spans")
	}
	rt, err := core.NewRuntime(core.Options{
		TracerProvider:           tp,
		Provider:                 prov,
		Registry:                 reg,
		Ownership:                own,
		HostID:                   h.cfg.HostID,
		Logger:                   &h.log,
		ActivityConcurrency:      h.cfg.ActivityConcurrency,
		ActivityBacklog:          h.cfg.ActivityBacklog,
		OrchestrationConcurrency: h.cfg.OrchestrationConcurrency,
		OffloadActivities:        h.cfg.OffloadActivities,
		PollMaxInterval:          h.cfg.PollMaxInterval,
		LockDuration:             h.cfg.LockDuration,
		ActivityLockDuration:     h.cfg.ActivityLockDuration,
	})
	if err != nil {
		log.Error().Err(err).Msg("invalid runtime configuration")
		return exitUsage
	}
	if err := rt.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start runtime")
		return exitFailed
	}
	h.mu.Lock()
	h.own, h.rt = own, rt
	h.mu.Unlock()
	var queues *metrics.QueueSampler
	if h.cfg.QueueMetricsInterval > 0 {
		queues = metrics.NewQueueSampler(prov, h.cfg.QueueMetricsInterval)
		go queues.Run(ctx)
	}
	h.setMetrics(metrics.Sources{HostID: h.cfg.HostID, Runtime: rt, Storage: prov, Ownership: own, Queues: queues})
	if h.cfg.DashboardAddr != "" {
		hub := &ops.Hub{Provider: prov, Client: rt.Client(), Leases: leases.NewBlobStore(prov.LeaseContainer())}
		dh, err := dashboard.New(dashboard.Options{Hub: hub, OperatorToken: h.cfg.DashboardToken, Logger: &h.log})
		if err != nil {
			log.Error().Err(err).Msg("invalid dashboard configuration")
			return exitUsage
		}
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", h.cfg.DashboardAddr)
		if err != nil {
			log.Error().Err(err).Msg("dashboard: listen")
			return exitFailed
		}
		log.Info().Str("dashboard", "http://"+ln.Addr().String()+"/").Msg("dashboard listening")
		go dashboard.Serve(ctx, ln, dh)
	}
	return exitOK
}

// connect opens the task hub, creating it when it is missing. Storage that
// does not answer is retried with backoff until ctx ends; configuration
// errors are returned at once.
func (h *host) connect(ctx context.Context, log zerolog.Logger) (*azprovider.Provider, error) {
	delay := 250 * time.Millisecond
	for {
		prov, err := azprovider.New(ctx, azprovider.Options{
			ConnectionString: h.cfg.ConnectionString,
			TaskHub:          h.cfg.TaskHub,
			Partitions:       h.cfg.Partitions,
			CreateIfMissing:  true,
			NoMessagePacking: h.cfg.NoMessagePacking,
		})
		if err == nil {
			h.mu.Lock()
			h.prov = prov
			h.mu.Unlock()
			log.Info().Str("taskhub", h.cfg.TaskHub).Msg("connected to storage")
			return prov, nil
		}
		if errors.Is(err, core.ErrInvalidInput) || ctx.Err() != nil {
			return nil, err
		}
		log.Warn().Err(err).Dur("retry_in", delay).Msg("storage unavailable; retrying")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// releaseGrace is how long a shutdown waits, after the drain, for the
// partition manager to release the leases.
const releaseGrace = 5 * time.Second

// shutdown stops the runtime: it stops fetching, drains in-flight work for
// up to the drain timeout, and releases every partition.
func (h *host) shutdown(log zerolog.Logger) {
	h.stopping.Store(true)
	_, own, rt := h.parts()
	if rt == nil {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DrainTimeout)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Dur("drain_timeout", h.cfg.DrainTimeout).Msg("shutdown did not finish draining in time; the rest was abandoned")
	}
	release := time.NewTimer(releaseGrace)
	defer release.Stop()
	select {
	case <-own.Done():
	case <-release.C:
		log.Warn().Dur("waited", releaseGrace).Msg("partitions not released in time; their leases will expire")
	}
	h.mu.Lock()
	tp := h.tracer
	h.mu.Unlock()
	if tp != nil {
		fctx, fcancel := context.WithTimeout(context.Background(), releaseGrace)
		if err := tp.Shutdown(fctx); err != nil {
			log.Warn().Err(err).Msg("tracing: spans not all exported before the exit")
		}
		fcancel()
	}
	log.Info().Dur("took", time.Since(start)).Msg("stopped")
}

// parts returns what has been started so far.
func (h *host) parts() (*azprovider.Provider, ownership, *core.Runtime) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.prov, h.own, h.rt
}

// setMetrics makes /metrics serve the sources. It keeps the previous
// sources if the new ones cannot be registered.
func (h *host) setMetrics(s metrics.Sources) {
	handler, err := metrics.Handler(s)
	if err != nil {
		h.log.Error().Err(err).Msg("register metrics")
		return
	}
	h.metrics.Store(&handler)
}

package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// DefaultAddr is where the dashboard listens unless told otherwise: loopback
// only, because the dashboard shows instance payloads to whoever connects.
const DefaultAddr = "127.0.0.1:8089"

// requestTimeout bounds the storage reads of one page or action.
const requestTimeout = 30 * time.Second

// MinTokenLength is the shortest operator token New accepts, in bytes.
const MinTokenLength = 16

// Options configure New.
type Options struct {
	// Hub is the task hub the dashboard shows: its client, its provider and
	// its lease store (ops.Open). Required.
	Hub *ops.Hub
	// OperatorToken, when set, lets an operator who presents it run actions
	// (terminate, suspend, resume, raise event, purge, replay and discard
	// dead letters). At least MinTokenLength bytes. Empty (the default)
	// makes the dashboard read-only: no action is shown or accepted.
	OperatorToken string
	// Logger receives the errors of requests (storage failures, rejected
	// actions) with structured fields; nil means no logs.
	Logger *zerolog.Logger
}

// handler is the dashboard: its routes and what they need.
type handler struct {
	hub   *ops.Hub
	op    *operator // nil when read-only
	log   zerolog.Logger
	pages *pages
	mux   *http.ServeMux
	now   func() time.Time
}

// New checks the options and returns the dashboard's handler.
func New(opts Options) (http.Handler, error) {
	switch {
	case opts.Hub == nil:
		return nil, fmt.Errorf("%w: dashboard.Options.Hub is nil: open the task hub with ops.Open", core.ErrInvalidInput)
	case opts.Hub.Client == nil || opts.Hub.Provider == nil || opts.Hub.Leases == nil:
		return nil, fmt.Errorf("%w: dashboard.Options.Hub lacks its client, provider or lease store: open the task hub with ops.Open", core.ErrInvalidInput)
	case opts.OperatorToken != "" && len(opts.OperatorToken) < MinTokenLength:
		return nil, fmt.Errorf("%w: the operator token is %d bytes long; use at least %d (for example 32 random hex digits from `openssl rand -hex 16`)",
			core.ErrInvalidInput, len(opts.OperatorToken), MinTokenLength)
	}
	h := &handler{hub: opts.Hub, log: zerolog.Nop(), now: time.Now}
	if opts.Logger != nil {
		h.log = opts.Logger.With().Str("component", "dashboard").Logger()
	}
	if opts.OperatorToken != "" {
		op, err := newOperator(opts.OperatorToken)
		if err != nil {
			return nil, err
		}
		h.op = op
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	h.pages = p
	h.routes()
	return h, nil
}

func (h *handler) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { redirect(w, "instances") })
	mux.HandleFunc("GET /instances", h.instances)
	mux.HandleFunc("GET /instance", h.instance)
	mux.HandleFunc("GET /tree", h.tree)
	mux.HandleFunc("GET /partitions", h.partitions)
	mux.HandleFunc("GET /deadletters", h.deadLetters)
	mux.HandleFunc("GET /deadletter", h.deadLetter)
	mux.HandleFunc("GET /signin", h.signInPage)
	mux.HandleFunc("POST /signin", h.signIn)
	mux.HandleFunc("POST /signout", h.signOut)
	for name, a := range h.actions() {
		mux.Handle("POST /"+name, h.action(a))
	}
	static, _ := fs.Sub(assets, "static") // cannot fail: the path is valid and embedded
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no such page.", nil)
	})
	h.mux = mux
}

// ServeHTTP sets the security headers and refuses cross-origin browser
// requests that change anything, then serves the page.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if err := crossOrigin.Check(r); err != nil {
		h.fail(w, r, http.StatusForbidden, "Cross-origin requests are refused: use the dashboard's own pages.", nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

// crossOrigin refuses unsafe requests that browsers mark as coming from
// another origin (Sec-Fetch-Site, Origin); requests without those headers
// (scripts, curl) pass and are judged by their credentials.
var crossOrigin = http.NewCrossOriginProtection()

// redirect sends the browser to a page of the dashboard after a POST. The
// location is relative, so that a dashboard mounted under a prefix keeps it.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// ListenAndServe serves h on addr (DefaultAddr when empty) until ctx is done,
// then shuts the server down, giving requests in flight five seconds. It
// returns nil after a shutdown caused by ctx.
func ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	if addr == "" {
		addr = DefaultAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, h)
}

// Serve serves h on ln until ctx is done, like ListenAndServe; it closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("dashboard: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("dashboard: shut down: %w", err)
	}
	return nil
}

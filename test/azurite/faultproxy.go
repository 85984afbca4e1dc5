package azurite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/internal/storageop"
)

// A FaultProxy is an HTTP reverse proxy on loopback in front of a storage
// account's blob, queue and table services, one listener per service, that
// injects faults. Point a client at it with ConnectionString; run one proxy
// per client (per worker host) to cut that client off alone.
//
// For each request it picks the operation (Operations lists them), draws the
// rules that select that operation in order, and applies the first that
// fires: an HTTP 500, a 503 throttle with the body Azure Storage sends, a
// timeout (the request is held until the client gives up, at most
// FaultProxyOptions.Hold, then its connection is reset), a connection reset,
// or added latency. A rule with After set lets storage apply the request
// first and replaces its answer with the fault: the client sees a failure
// for a change that was made, the case that makes retries dangerous.
//
// Cut makes the proxy refuse or blackhole every request, including the
// answers to requests already forwarded, until Reconnect.
//
// Decisions come from a random generator seeded with FaultProxyOptions.Seed:
// the same sequence of requests meets the same faults. Its methods are safe
// for concurrent use.
type FaultProxy struct {
	services [3]*proxyService // blob, queue, table
	connStr  string
	hold     time.Duration
	client   *http.Client

	mu          sync.Mutex
	rnd         *rand.Rand
	rules       []*ruleState
	cut         CutMode
	reconnected chan struct{} // closed by Reconnect; replaced by Cut
	closed      bool

	closing  chan struct{}  // closed by Close
	wg       sync.WaitGroup // the servers
	handlers sync.WaitGroup // requests being served; Add only while !closed

	// Counters of FaultStats.
	requests, cutRequests, upstreamErrors, after atomic.Int64
	byKind, byOp                                 sync.Map // FaultKind or operation → *atomic.Int64
}

// FaultKind is a kind of injected fault.
type FaultKind string

// Fault kinds.
const (
	// FaultServerError answers 500 InternalError.
	FaultServerError FaultKind = "500"
	// FaultThrottle answers 503 ServerBusy, as Azure Storage does when an
	// account or partition is over its scalability targets.
	FaultThrottle FaultKind = "503"
	// FaultTimeout holds the request, without an answer, until the client
	// gives up (its try timeout or its context) or FaultProxyOptions.Hold
	// passes; then the connection is reset.
	FaultTimeout FaultKind = "timeout"
	// FaultReset closes the connection at once with a TCP reset.
	FaultReset FaultKind = "reset"
	// FaultLatency delays the request (or, with After, its answer) by
	// FaultRule.Latency; the request itself succeeds.
	FaultLatency FaultKind = "latency"
)

// FaultKinds lists every fault kind.
func FaultKinds() []FaultKind {
	return []FaultKind{FaultServerError, FaultThrottle, FaultTimeout, FaultReset, FaultLatency}
}

// CutMode says how a cut-off proxy treats requests.
type CutMode int

const (
	// Connected forwards requests (the state after Reconnect).
	Connected CutMode = iota
	// CutRefuse resets every request's connection at once, like a host
	// whose packets are rejected.
	CutRefuse
	// CutBlackhole holds every request without an answer until the client
	// gives up, Reconnect, or FaultProxyOptions.Hold; then resets it. Like
	// a network partition that drops packets.
	CutBlackhole
)

func (m CutMode) String() string {
	switch m {
	case Connected:
		return "connected"
	case CutRefuse:
		return "refuse"
	case CutBlackhole:
		return "blackhole"
	}
	return "CutMode(" + strconv.Itoa(int(m)) + ")"
}

// FaultRule injects one kind of fault into a share of the requests of some
// operations.
type FaultRule struct {
	// Ops selects requests by operation: an operation of Operations
	// ("table.batch"), a service ("queue": all its operations), or "*".
	// Empty means every request.
	Ops []string
	// Kind is the fault to inject.
	Kind FaultKind
	// Share is the probability, from 0 to 1, that a selected request gets
	// the fault, if no earlier rule fired.
	Share float64
	// After applies the fault once storage has applied the request: the
	// client sees a failure (or a late answer) for a change that was made.
	After bool
	// Latency is the delay of FaultLatency (default 100ms).
	Latency time.Duration
	// Limit stops the rule once it has injected this many faults (0: no
	// limit). An After fault whose request fails on its own (storage down,
	// client gone) is not counted.
	Limit int
}

// FaultProxyOptions configure StartFaultProxy. The zero value forwards
// everything without faults.
type FaultProxyOptions struct {
	// Rules are tried in order for each request; the first that fires
	// applies.
	Rules []FaultRule
	// Seed seeds the draws.
	Seed uint64
	// Hold bounds how long a timeout fault or a blackholed request is held
	// when the client does not give up first; then its connection is reset.
	// Default 45s, longer than the Azure SDK's default try timeout (30s), so
	// that by default the client's own timeout ends the request.
	Hold time.Duration
}

const (
	defaultHold    = 45 * time.Second
	defaultLatency = 100 * time.Millisecond
)

// FaultStats count what a proxy did since it started.
type FaultStats struct {
	// Requests is every request the proxy received.
	Requests int64
	// Faults counts the injected faults by kind.
	Faults map[FaultKind]int64
	// ByOp counts the injected faults by operation.
	ByOp map[string]int64
	// After is how many of the faults were injected after storage had
	// applied the request.
	After int64
	// Cut is how many requests were refused or blackholed while cut off,
	// or lost their answer to a cut.
	Cut int64
	// UpstreamErrors is how many requests could not reach storage (it was
	// down); their connections were reset.
	UpstreamErrors int64
}

// Total is the number of injected faults of every kind.
func (s FaultStats) Total() int64 {
	var n int64
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// Failed is the number of injected faults that failed their request: all
// but latency. Requests lost to a cut are counted in Cut.
func (s FaultStats) Failed() int64 {
	return s.Total() - s.Faults[FaultLatency]
}

type ruleState struct {
	FaultRule
	fired int
}

// proxyService is the listener of one storage service.
type proxyService struct {
	name     string // blob, queue or table
	target   *url.URL
	listener net.Listener
	server   *http.Server
}

// serviceNames are the services in the order of FaultProxy.services.
var serviceNames = [3]string{"blob", "queue", "table"}

// StartFaultProxy starts a proxy in front of the storage of target, a
// connection string with explicit endpoints (or UseDevelopmentStorage=true,
// or an account name for Azure). Its errors never quote target, which holds
// the account key.
func StartFaultProxy(target string, opts FaultProxyOptions) (*FaultProxy, error) {
	if err := validateRules(opts.Rules); err != nil {
		return nil, err
	}
	if opts.Hold < 0 {
		return nil, fmt.Errorf("azurite: fault proxy: Hold is %v; it must not be negative", opts.Hold)
	}
	if opts.Hold == 0 {
		opts.Hold = defaultHold
	}
	parts, endpoints, err := splitConnectionString(Expand(target))
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	}
	p := &FaultProxy{
		hold:        opts.Hold,
		client:      &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		rnd:         rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		rules:       newRuleStates(opts.Rules),
		reconnected: make(chan struct{}),
		closing:     make(chan struct{}),
	}
	close(p.reconnected)
	var proxied []string
	for i, name := range serviceNames {
		ln, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("azurite: fault proxy: listen: %w", err)
		}
		s := &proxyService{name: name, target: endpoints[i], listener: ln}
		s.server = &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(s, w, r) }),
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
		p.services[i] = s
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			_ = s.server.Serve(ln)
		}()
		u := &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: endpoints[i].Path}
		key := strings.ToUpper(name[:1]) + name[1:] + "Endpoint"
		proxied = append(proxied, key+"="+u.String())
	}
	p.connStr = strings.Join(append(append([]string{"DefaultEndpointsProtocol=http"}, parts...), proxied...), ";") + ";"
	return p, nil
}

// splitConnectionString returns the parts of a connection string that are
// not endpoints, and the blob, queue and table endpoints.
func splitConnectionString(cs string) ([]string, [3]*url.URL, error) {
	var endpoints [3]*url.URL
	var keep []string
	fields := map[string]string{}
	for part := range strings.SplitSeq(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, endpoints, errors.New("azurite: fault proxy: the target connection string has a part without '=' (the string is not shown: it holds secrets)")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		fields[k] = strings.TrimSpace(v)
		switch k {
		case "blobendpoint", "queueendpoint", "tableendpoint", "defaultendpointsprotocol", "endpointsuffix":
		default:
			keep = append(keep, part)
		}
	}
	proto, suffix := fields["defaultendpointsprotocol"], fields["endpointsuffix"]
	if proto == "" {
		proto = "https"
	}
	if suffix == "" {
		suffix = "core.windows.net"
	}
	for i, name := range serviceNames {
		raw := fields[name+"endpoint"]
		if raw == "" {
			if fields["accountname"] == "" {
				return nil, endpoints, fmt.Errorf("azurite: fault proxy: the target connection string has neither a %sEndpoint nor an AccountName", name)
			}
			raw = fmt.Sprintf("%s://%s.%s.%s", proto, fields["accountname"], name, suffix)
		}
		u, err := url.Parse(strings.TrimSuffix(raw, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, endpoints, fmt.Errorf("azurite: fault proxy: the target's %s endpoint is not an http or https URL", name)
		}
		endpoints[i] = u
	}
	return keep, endpoints, nil
}

// ConnectionString is the target's connection string with its endpoints
// pointing at the proxy.
func (p *FaultProxy) ConnectionString() string { return p.connStr }

// Ports are the proxy's blob, queue and table ports.
func (p *FaultProxy) Ports() (blob, queue, table int) {
	port := func(s *proxyService) int { return s.listener.Addr().(*net.TCPAddr).Port }
	return port(p.services[0]), port(p.services[1]), port(p.services[2])
}

// SetRules replaces the rules (and restarts their limits).
func (p *FaultProxy) SetRules(rules []FaultRule) error {
	if err := validateRules(rules); err != nil {
		return err
	}
	p.mu.Lock()
	p.rules = newRuleStates(rules)
	p.mu.Unlock()
	return nil
}

// Cut cuts the client off from storage until Reconnect: every request,
// and the answer of every request in flight, is refused or blackholed.
func (p *FaultProxy) Cut(mode CutMode) {
	if mode != CutRefuse && mode != CutBlackhole {
		panic("azurite: FaultProxy.Cut: mode must be CutRefuse or CutBlackhole")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == Connected {
		p.reconnected = make(chan struct{})
	}
	p.cut = mode
}

// Reconnect ends a cut. Blackholed requests are reset, as the network would
// have lost them; the client's retries then go through.
func (p *FaultProxy) Reconnect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut != Connected {
		p.cut = Connected
		close(p.reconnected)
	}
}

// CutMode is the proxy's current state.
func (p *FaultProxy) CutMode() CutMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Stats returns the proxy's counters (a snapshot).
func (p *FaultProxy) Stats() FaultStats {
	s := FaultStats{
		Requests:       p.requests.Load(),
		Faults:         map[FaultKind]int64{},
		ByOp:           map[string]int64{},
		After:          p.after.Load(),
		Cut:            p.cutRequests.Load(),
		UpstreamErrors: p.upstreamErrors.Load(),
	}
	p.byKind.Range(func(k, v any) bool {
		s.Faults[k.(FaultKind)] = v.(*atomic.Int64).Load()
		return true
	})
	p.byOp.Range(func(k, v any) bool {
		s.ByOp[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// Close stops the listeners, resets the requests held, and waits until no
// request is being served. Calling it again does nothing.
func (p *FaultProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()
	var errs []error
	for _, s := range p.services {
		if s != nil {
			if err := s.server.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.wg.Wait()
	p.handlers.Wait()
	p.client.CloseIdleConnections()
	return errors.Join(errs...)
}

func newRuleStates(rules []FaultRule) []*ruleState {
	out := make([]*ruleState, len(rules))
	for i, r := range rules {
		r.Ops = slices.Clone(r.Ops)
		if r.Kind == FaultLatency && r.Latency == 0 {
			r.Latency = defaultLatency
		}
		out[i] = &ruleState{FaultRule: r}
	}
	return out
}

func validateRules(rules []FaultRule) error {
	for i, r := range rules {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("azurite: fault rule %d: "+format, append([]any{i}, a...)...)
		}
		if !slices.Contains(FaultKinds(), r.Kind) {
			return bad("unknown kind %q; use one of %v", r.Kind, FaultKinds())
		}
		if r.Share < 0 || r.Share > 1 || math.IsNaN(r.Share) {
			return bad("Share is %v; it must be from 0 to 1", r.Share)
		}
		if r.Latency < 0 || r.Limit < 0 {
			return bad("Latency and Limit must not be negative")
		}
		for _, op := range r.Ops {
			if op != "*" && !slices.Contains(serviceNames[:], op) && !slices.Contains(Operations(), op) {
				return bad("unknown operation %q: use \"*\", a service (blob, queue, table) or one of %v", op, Operations())
			}
		}
	}
	return nil
}

// selects reports whether the rule applies to the operation.
func (r *ruleState) selects(op string) bool {
	if len(r.Ops) == 0 {
		return true
	}
	service, _, _ := strings.Cut(op, ".")
	for _, o := range r.Ops {
		if o == "*" || o == op || o == service {
			return true
		}
	}
	return false
}

// decide draws the fault for a request of op, if any. Every selecting rule
// that has not hit its limit takes one draw, in order, until one fires, so
// that the sequence of draws depends only on the sequence of operations.
func (p *FaultProxy) decide(op string) *ruleState {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rules {
		if !r.selects(op) || (r.Limit > 0 && r.fired >= r.Limit) || r.Share == 0 {
			continue
		}
		if p.rnd.Float64() < r.Share {
			r.fired++
			return r
		}
	}
	return nil
}

// unfire gives a rule's draw back when its fault could not be injected (the
// request failed on its own first), so that Limit counts injected faults.
func (p *FaultProxy) unfire(r *ruleState) {
	p.mu.Lock()
	r.fired--
	p.mu.Unlock()
}

// cutState returns the cut mode and the channel Reconnect closes.
func (p *FaultProxy) cutState() (CutMode, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut, p.reconnected
}

func (p *FaultProxy) count(rule *ruleState, op string) {
	counter(&p.byKind, rule.Kind).Add(1)
	counter(&p.byOp, op).Add(1)
	if rule.After {
		p.after.Add(1)
	}
}

func counter[K comparable](m *sync.Map, k K) *atomic.Int64 {
	v, ok := m.Load(k)
	if !ok {
		v, _ = m.LoadOrStore(k, new(atomic.Int64))
	}
	return v.(*atomic.Int64)
}

// enter registers a request being served, unless the proxy is closed.
func (p *FaultProxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.handlers.Add(1)
	return true
}

func (p *FaultProxy) serve(s *proxyService, w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		resetConn(w)
		return
	}
	defer p.handlers.Done()
	p.requests.Add(1)
	op := Operation(s.name, r)
	if mode, reconnected := p.cutState(); mode != Connected {
		p.cutRequests.Add(1)
		p.cutOff(w, r, mode, reconnected)
		return
	}
	rule := p.decide(op)
	if rule != nil && !rule.After {
		p.count(rule, op)
		switch rule.Kind {
		case FaultLatency:
			if !p.sleep(r.Context(), rule.Latency) {
				resetConn(w)
				return
			}
		default:
			p.inject(s, w, r, rule.Kind)
			return
		}
	}
	resp, err := p.forward(s, r)
	if err != nil {
		// Storage is down or the client gave up: the client sees its
		// connection fail, as it would without the proxy.
		if r.Context().Err() == nil {
			p.upstreamErrors.Add(1)
		}
		if rule != nil && rule.After {
			p.unfire(rule)
		}
		resetConn(w)
		return
	}
	defer resp.Body.Close()
	if mode, reconnected := p.cutState(); mode != Connected {
		// Cut while the request was in flight: storage applied it, the
		// answer is lost.
		_, _ = io.Copy(io.Discard, resp.Body)
		if rule != nil && rule.After {
			p.unfire(rule)
		}
		p.cutRequests.Add(1)
		p.cutOff(w, r, mode, reconnected)
		return
	}
	if rule != nil && rule.After {
		p.count(rule, op)
		if rule.Kind == FaultLatency {
			if !p.sleep(r.Context(), rule.Latency) {
				resetConn(w)
				return
			}
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			p.inject(s, w, r, rule.Kind)
			return
		}
	}
	h := w.Header()
	for k, vs := range resp.Header {
		if !hopByHop(k) {
			h[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forward sends the request to storage and returns its answer.
func (p *FaultProxy) forward(s *proxyService, r *http.Request) (*http.Response, error) {
	u := *s.target
	u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	var body io.Reader = r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	out.ContentLength = r.ContentLength
	for k, vs := range r.Header {
		if !hopByHop(k) {
			out.Header[k] = vs
		}
	}
	return p.client.Do(out)
}

// hopByHop reports the headers that belong to one connection, not to the
// request.
func hopByHop(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// inject answers the request with a fault (not latency).
func (p *FaultProxy) inject(s *proxyService, w http.ResponseWriter, r *http.Request, kind FaultKind) {
	switch kind {
	case FaultServerError:
		writeStorageError(s.name, w, r, http.StatusInternalServerError, "InternalError",
			"The server encountered an internal error. Please retry the request.")
	case FaultThrottle:
		writeStorageError(s.name, w, r, http.StatusServiceUnavailable, "ServerBusy",
			"The server is busy.")
	case FaultTimeout:
		p.holdThenReset(w, r, nil)
	case FaultReset:
		resetConn(w)
	}
}

// cutOff treats a request of a cut-off client.
func (p *FaultProxy) cutOff(w http.ResponseWriter, r *http.Request, mode CutMode, reconnected <-chan struct{}) {
	if mode == CutBlackhole {
		p.holdThenReset(w, r, reconnected)
		return
	}
	resetConn(w)
}

// holdThenReset holds a request without an answer until the client gives
// up, until (when not nil) released is closed, until Hold passes or the
// proxy closes, and then resets its connection.
func (p *FaultProxy) holdThenReset(w http.ResponseWriter, r *http.Request, released <-chan struct{}) {
	// The server notices that the client closed the connection only once the
	// request body has been read.
	_, _ = io.Copy(io.Discard, r.Body)
	t := time.NewTimer(p.hold)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-released:
	case <-t.C:
	case <-p.closing:
	}
	resetConn(w)
}

// sleep waits d unless the client gives up or the proxy closes first.
func (p *FaultProxy) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-p.closing:
		return false
	}
}

// resetConn closes the request's connection with a TCP reset and no answer.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeStorageError answers with the error document of the service: XML for
// blobs and queues, JSON for tables, with the code in x-ms-error-code as
// the SDKs expect.
func writeStorageError(service string, w http.ResponseWriter, r *http.Request, status int, code, message string) {
	requestID := newRequestID()
	text := fmt.Sprintf("%s\nRequestId:%s\nTime:%s", message, requestID, time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"))
	var body bytes.Buffer
	h := w.Header()
	if service == "table" {
		h.Set("Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8")
		fmt.Fprintf(&body, `{"odata.error":{"code":%q,"message":{"lang":"en-US","value":%q}}}`, code, text)
	} else {
		h.Set("Content-Type", "application/xml")
		body.WriteString(`<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + text + `</Message></Error>`)
	}
	h.Set("x-ms-error-code", code)
	h.Set("x-ms-request-id", requestID)
	if v := r.Header.Get("x-ms-version"); v != "" {
		h.Set("x-ms-version", v)
	}
	if v := r.Header.Get("x-ms-client-request-id"); v != "" {
		h.Set("x-ms-client-request-id", v)
	}
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

func newRequestID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Operations lists the operations a FaultRule can select, by service, as
// azprovider.Provider.Stats names them.
func Operations() []string { return storageop.Operations() }

// Operation classifies a request to a storage service (blob, queue or
// table) the way azprovider counts its calls.
func Operation(service string, r *http.Request) string { return storageop.Operation(service, r) }

package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/partition"
)

func (h *host) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /status", h.status)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if m := h.metrics.Load(); m != nil {
			(*m).ServeHTTP(w, r)
			return
		}
		writeText(w, http.StatusServiceUnavailable, "metrics unavailable")
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text + "\n"))
}

// readyProbeID is the instance id /readyz reads to check that storage
// answers. Nothing ever creates it: the read costs one point read and
// answers "not found". Provider errors are redacted, unlike raw SDK errors.
const readyProbeID = "azdurable-readyz-probe"

// readyz answers 200 when the host is running, owns its partitions and
// storage answers now; 503 with the reason otherwise.
func (h *host) readyz(w http.ResponseWriter, r *http.Request) {
	if reason := h.notReady(); reason != "" {
		writeText(w, http.StatusServiceUnavailable, reason)
		return
	}
	prov, _, _ := h.parts()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if _, err := prov.GetInstance(ctx, readyProbeID, false); err != nil && !errors.Is(err, core.ErrInstanceNotFound) {
		h.log.Warn().Err(err).Msg("readiness probe: storage does not answer")
		writeText(w, http.StatusServiceUnavailable, "storage does not answer")
		return
	}
	writeText(w, http.StatusOK, "ready")
}

// notReady says why the host is not ready without asking storage, or "".
func (h *host) notReady() string {
	prov, own, rt := h.parts()
	switch {
	case h.stopping.Load():
		return "shutting down"
	case prov == nil:
		return "connecting to storage"
	case rt == nil:
		return "starting"
	case !own.Ready():
		return "acquiring partitions"
	}
	return ""
}

// Status is the /status document.
type Status struct {
	HostID     string `json:"hostId"`
	TaskHub    string `json:"taskHub"`
	Partitions int    `json:"partitions"`
	// State is connecting, starting, acquiring partitions, running or shutting down.
	State string `json:"state"`
	// Ready: running and the partition manager has finished its first scan.
	Ready bool `json:"ready"`
	// OwnedPartitions are the partitions whose leases this host holds;
	// RunningPartitions those whose dispatchers run now.
	OwnedPartitions   []int              `json:"ownedPartitions"`
	RunningPartitions []int              `json:"runningPartitions"`
	Runtime           *core.RuntimeStats `json:"runtime,omitempty"`
	Leases            *partition.Stats   `json:"leases,omitempty"`
	Storage           map[string]int64   `json:"storage,omitempty"`
}

func (h *host) status(w http.ResponseWriter, _ *http.Request) {
	prov, own, rt := h.parts()
	s := Status{HostID: h.cfg.HostID, TaskHub: h.cfg.TaskHub, Partitions: h.cfg.Partitions,
		OwnedPartitions: []int{}, RunningPartitions: []int{}, State: "running"}
	if reason := h.notReady(); reason != "" {
		s.State = reason
	}
	s.Ready = s.State == "running"
	if prov != nil {
		s.Storage = prov.Stats()
	}
	if rt != nil {
		st := rt.Stats()
		s.Runtime = &st
		s.RunningPartitions = rt.OwnedPartitions()
		s.OwnedPartitions = own.Owned()
		ls := own.Stats()
		s.Leases = &ls
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s)
}

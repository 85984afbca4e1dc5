package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/azdurable/azdurable/core"
)

// actionFunc carries out an operator's action from its form and returns
// the page to show next.
type actionFunc func(ctx context.Context, form url.Values) (next string, err error)

// actions are the POST routes an operator may use, by path.
func (h *handler) actions() map[string]actionFunc {
	c := h.hub.Client
	back := func(id, done string) string {
		return "instance?" + url.Values{"id": {id}, "done": {done}}.Encode()
	}
	return map[string]actionFunc{
		"terminate": func(ctx context.Context, f url.Values) (string, error) {
			id := f.Get("id")
			return back(id, "terminate"), c.Terminate(ctx, id, f.Get("reason"), f.Get("recursive") != "")
		},
		"suspend": func(ctx context.Context, f url.Values) (string, error) {
			id := f.Get("id")
			return back(id, "suspend"), c.Suspend(ctx, id, f.Get("reason"))
		},
		"resume": func(ctx context.Context, f url.Values) (string, error) {
			id := f.Get("id")
			return back(id, "resume"), c.Resume(ctx, id, f.Get("reason"))
		},
		"raise": func(ctx context.Context, f url.Values) (string, error) {
			id := f.Get("id")
			var data any
			if s := strings.TrimSpace(f.Get("data")); s != "" {
				if !json.Valid([]byte(s)) {
					return "", fmt.Errorf("%w: the event data is not JSON; write it as JSON, for example {\"approved\": true} or \"text\"", core.ErrInvalidInput)
				}
				data = core.RawPayload(s)
			}
			return back(id, "raise"), c.RaiseEvent(ctx, id, f.Get("name"), data)
		},
		"purge": func(ctx context.Context, f url.Values) (string, error) {
			return "instances?done=purge", c.Purge(ctx, f.Get("id"))
		},
		"replay": func(ctx context.Context, f url.Values) (string, error) {
			return "deadletters?done=replay", h.hub.ReplayDeadLetter(ctx, f.Get("id"))
		},
		"discard": func(ctx context.Context, f url.Values) (string, error) {
			return "deadletters?done=discard", h.hub.DiscardDeadLetter(ctx, f.Get("id"))
		},
	}
}

// action runs an actionFunc for an authorized operator, then redirects
// (POST, redirect, GET), so that reloading the page does not repeat it.
func (h *handler) action(run actionFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, http.StatusBadRequest, "The form could not be read.", err)
			return
		}
		if !h.authorize(w, r) {
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		next, err := run(r.Context(), r.PostForm)
		if err != nil {
			h.failErr(w, r, "The "+name+" action failed", err)
			return
		}
		h.log.Info().Str("action", name).Str("target", r.PostForm.Get("id")).Str("remote", r.RemoteAddr).Msg("dashboard operator action")
		redirect(w, next)
	})
}

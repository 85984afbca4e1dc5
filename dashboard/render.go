package dashboard

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// assets are the page templates and the stylesheet, built into the binary:
// the dashboard needs no files and no network.
//
//go:embed templates/*.html static/*
var assets embed.FS

// pageNames are the templates under templates/, each rendered inside layout.html.
var pageNames = []string{"instances", "instance", "tree", "partitions", "deadletters", "deadletter", "signin", "error"}

// pages holds one template set per page.
type pages struct {
	sets map[string]*template.Template
}

func parsePages() (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// view is what every page gets: the frame (task hub, navigation, operator
// state) and the page's own data.
type view struct {
	Title   string
	Nav     string
	TaskHub string
	// Operator: actions are shown; CSRF goes into every form.
	Operator bool
	CSRF     string
	// CanSignIn: an operator token is configured and this visitor has not signed in.
	CanSignIn bool
	// Here is this page's relative URL, where sign-in returns to.
	Here  string
	Flash string
	Data  any
}

// render writes a page. Templates run into a buffer first, so that a
// template error becomes a clean 500 instead of half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, page, title, nav string, data any) {
	c := h.credentialsOf(r)
	v := view{Title: title, Nav: nav, TaskHub: h.hub.Provider.TaskHub(), Operator: c.operator,
		CanSignIn: h.op != nil && !c.operator, Here: here(r), Flash: flashes[r.URL.Query().Get("done")], Data: data}
	if c.session != "" {
		v.CSRF = h.op.csrf(c.session)
	}
	var buf bytes.Buffer
	if err := h.pages.sets[page].Execute(&buf, v); err != nil {
		h.log.Error().Err(err).Str("page", page).Msg("dashboard template failed")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// here is the request's page as a relative URL.
func here(r *http.Request) string {
	s := strings.TrimPrefix(r.URL.Path, "/")
	if r.URL.RawQuery != "" {
		s += "?" + r.URL.RawQuery
	}
	return s
}

type errorData struct {
	Status  int
	Message string
	Detail  string
}

// fail writes an error page: a message that says what to do, and the
// error's text (provider errors carry no secrets).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	d := errorData{Status: status, Message: msg}
	if err != nil {
		d.Detail = err.Error()
		ev := h.log.Warn()
		if status >= 500 {
			ev = h.log.Error()
		}
		ev.Err(err).Str("path", r.URL.Path).Int("status", status).Msg("dashboard request failed")
	}
	h.render(w, r, status, "error", http.StatusText(status), "", d)
}

// failErr writes the error page for an error of the client or the provider,
// with the status its sentinel calls for.
func (h *handler) failErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, core.ErrInstanceNotFound):
		h.fail(w, r, http.StatusNotFound, what+": no such instance (it may have been purged).", err)
	case errors.Is(err, ops.ErrDeadLetterNotFound):
		h.fail(w, r, http.StatusNotFound, what+": no such dead letter (it may have been replayed or discarded).", err)
	case errors.Is(err, core.ErrInvalidInput), errors.Is(err, core.ErrPayloadTooLarge):
		h.fail(w, r, http.StatusBadRequest, what+": the request is invalid; correct it and try again.", err)
	case errors.Is(err, core.ErrInstanceCompleted), errors.Is(err, core.ErrNotTerminal), errors.Is(err, core.ErrInstanceExists):
		h.fail(w, r, http.StatusConflict, what+": the instance is not in a state that allows it.", err)
	default:
		h.fail(w, r, http.StatusBadGateway, what+": storage did not answer as expected; try again, and check the hosts' logs if it persists.", err)
	}
}

// flashes are the notes shown after an action, by the "done" parameter of
// the page it redirects to.
var flashes = map[string]string{
	"terminate": "Termination requested: the instance ends when a host processes the request.",
	"suspend":   "Suspension requested: the instance holds when a host processes the request.",
	"resume":    "Resumption requested: the instance continues when a host processes the request.",
	"raise":     "Event sent: the instance receives it when a host processes it.",
	"purge":     "Instance purged: its state and history are deleted.",
	"replay":    "Dead letter replayed: it is back on its queue.",
	"discard":   "Dead letter discarded.",
}

// maxShownPayload bounds the payload text a page shows.
const maxShownPayload = 64 << 10

var funcs = template.FuncMap{
	"payload":     payloadText,
	"ts":          timestamp,
	"dur":         duration,
	"since":       func(t time.Time) string { return duration(time.Since(t).Round(time.Second)) },
	"statusClass": func(s core.Status) string { return strings.ToLower(s.String()) },
	"queueName":   queueName,
	"names":       names,
}

// payloadText shows a payload: indented when it is JSON (the default
// codec), as text when it is other UTF-8, in base64 otherwise.
func payloadText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var s string
	var buf bytes.Buffer
	switch {
	case json.Valid(b) && json.Indent(&buf, b, "", "  ") == nil:
		s = unescapeHTML(buf.String())
	case utf8.Valid(b):
		s = string(b)
	default:
		s = "base64: " + base64.StdEncoding.EncodeToString(b)
	}
	if len(s) > maxShownPayload {
		cut := maxShownPayload
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + fmt.Sprintf("\n… (%d more bytes not shown)", len(s)-cut)
	}
	return s
}

// unescapeHTML undoes the escapes of <, > and & that Go's JSON encoder
// writes into strings: the page escapes them itself, and people should read
// the characters. Valid JSON has backslashes only inside strings.
func unescapeHTML(s string) string {
	if !strings.Contains(s, `\u00`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if s[i+1] == 'u' && i+6 <= len(s) {
			switch strings.ToLower(s[i+2 : i+6]) {
			case "003c":
				b.WriteByte('<')
				i += 5
				continue
			case "003e":
				b.WriteByte('>')
				i += 5
				continue
			case "0026":
				b.WriteByte('&')
				i += 5
				continue
			}
		}
		b.WriteString(s[i : i+2])
		i++
	}
	return b.String()
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// duration rounds d for people: milliseconds under ten seconds, seconds above.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// queueName names a partition's control queue, or the work-item queue for -1.
func queueName(partition int) string {
	if partition < 0 {
		return "work items"
	}
	return fmt.Sprintf("control %02d", partition)
}

// names lists registrations as name@version.
func names(nvs []core.NameVersion) string {
	out := make([]string, len(nvs))
	for i, nv := range nvs {
		out[i] = nv.Name
		if nv.Version != "" {
			out[i] += "@" + nv.Version
		}
	}
	return strings.Join(out, ", ")
}

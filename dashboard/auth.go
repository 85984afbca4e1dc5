package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// sessionCookie holds an operator's session: "<unix seconds>.<mac>".
	sessionCookie = "azdurable_operator"
	// sessionLifetime bounds a session; the operator signs in again after it.
	sessionLifetime = 12 * time.Hour
	// csrfField is the form field that carries the session's CSRF token.
	csrfField = "csrf"
	// maxFormBytes bounds the body of a POST (an event's data is the largest field).
	maxFormBytes = 1 << 20
)

// operator checks operator credentials: the token itself (sign-in form,
// Authorization header) and the sessions and CSRF tokens derived from a key
// that lives as long as the handler.
type operator struct {
	token []byte
	key   []byte
}

func newOperator(token string) (*operator, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dashboard: draw the session key: %w", err)
	}
	return &operator{token: []byte(token), key: key}, nil
}

// tokenMatches compares a presented token with the operator token in
// constant time.
func (o *operator) tokenMatches(presented string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), o.token) == 1
}

func (o *operator) mac(parts ...string) string {
	m := hmac.New(sha256.New, o.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// newSession returns the cookie value of a session issued at now.
func (o *operator) newSession(now time.Time) string {
	issued := strconv.FormatInt(now.Unix(), 10)
	return issued + "." + o.mac("session", issued)
}

// validSession reports whether v is a session this handler issued and that
// has not expired.
func (o *operator) validSession(v string, now time.Time) bool {
	issued, mac, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return false
	}
	if age := now.Sub(time.Unix(sec, 0)); age < -time.Minute || age > sessionLifetime {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(o.mac("session", issued)))
}

// csrf is the CSRF token of a session: forms of the session carry it, and
// a cookie-authenticated POST without it is refused.
func (o *operator) csrf(session string) string { return o.mac("csrf", session) }

// credentials is who made a request.
type credentials struct {
	operator bool
	// session is the cookie session, empty for a bearer token or none.
	session string
}

// credentialsOf reads a request's operator credentials: a bearer token or
// a valid session cookie.
func (h *handler) credentialsOf(r *http.Request) credentials {
	if h.op == nil {
		return credentials{}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		return credentials{operator: ok && strings.EqualFold(scheme, "Bearer") && h.op.tokenMatches(strings.TrimSpace(tok))}
	}
	if c, err := r.Cookie(sessionCookie); err == nil && h.op.validSession(c.Value, h.now()) {
		return credentials{operator: true, session: c.Value}
	}
	return credentials{}
}

// authorize checks that a POST comes from an operator and, for a session,
// carries its CSRF token. The form must be parsed.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if h.op == nil {
		h.fail(w, r, http.StatusForbidden, "The dashboard is read-only: it was started without an operator token.", nil)
		return false
	}
	c := h.credentialsOf(r)
	if !c.operator {
		h.fail(w, r, http.StatusForbidden, "Sign in with the operator token first.", nil)
		return false
	}
	if c.session != "" && !hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(h.op.csrf(c.session))) {
		h.fail(w, r, http.StatusForbidden, "The form is stale or did not come from this dashboard: reload the page and try again.", nil)
		return false
	}
	return true
}

func (h *handler) signInPage(w http.ResponseWriter, r *http.Request) {
	if h.op == nil {
		h.fail(w, r, http.StatusNotFound, "The dashboard is read-only: it was started without an operator token, so there is nothing to sign in to.", nil)
		return
	}
	h.render(w, r, http.StatusOK, "signin", "Sign in", "", signInData{Next: safeNext(r.FormValue("next"))})
}

type signInData struct {
	Next  string
	Error string
}

func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	if h.op == nil {
		h.fail(w, r, http.StatusForbidden, "The dashboard is read-only: it was started without an operator token.", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	next := safeNext(r.PostFormValue("next"))
	if !h.op.tokenMatches(r.PostFormValue("token")) {
		h.log.Warn().Str("remote", r.RemoteAddr).Msg("dashboard sign-in with a wrong operator token")
		h.render(w, r, http.StatusForbidden, "signin", "Sign in", "", signInData{Next: next, Error: "That is not the operator token."})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: h.op.newSession(h.now()), MaxAge: int(sessionLifetime / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	redirect(w, next)
}

func (h *handler) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !h.authorize(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	redirect(w, "instances")
}

// safeNext keeps a page to return to only when it is one of the dashboard's
// own relative pages, so that the sign-in form cannot send the browser away.
func safeNext(next string) string {
	page, _, _ := strings.Cut(next, "?")
	switch page {
	case "instances", "instance", "tree", "partitions", "deadletters", "deadletter":
		if !strings.ContainsAny(next, "\\\r\n") {
			return next
		}
	}
	return "instances"
}

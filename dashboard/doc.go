// Package dashboard is the operator's web dashboard of a task hub: instances
// with their histories drawn as timelines, parent/child trees, partitions,
// queues, hosts and dead letters. docs/dashboard.md describes each page.
//
//	h, err := dashboard.New(dashboard.Options{Hub: hub, OperatorToken: token})
//	if err != nil { ... }
//	err = dashboard.ListenAndServe(ctx, dashboard.DefaultAddr, h)
//
// The pages are rendered on the server with html/template, which escapes
// every value it prints; the one stylesheet is embedded in the binary, and
// there is no script at all, so the dashboard works without network access
// and under a strict Content-Security-Policy. All links are relative, so
// the handler can be mounted under a prefix with http.StripPrefix.
//
// # Read-only unless an operator signs in
//
// Without Options.OperatorToken the dashboard only reads: no page shows an
// action and every POST is refused. With a token, an operator signs in by
// typing it into the sign-in form (compared in constant time); the dashboard
// then sets a session cookie (HttpOnly, SameSite=Strict, a MAC under a key
// drawn when the handler is built, so it never holds the token and dies with
// the process) and shows the actions: terminate, suspend, resume, raise
// event, purge, and replay or discard a dead letter. Scripts may instead send
// the token in an "Authorization: Bearer" header. Actions are POST only; a
// cookie-authenticated action must also carry the session's CSRF token, and
// cross-origin browser requests are refused (http.CrossOriginProtection).
//
// The dashboard never holds a connection string: it reads storage through
// the ops.Hub it is given, whose errors do not carry secrets.
package dashboard

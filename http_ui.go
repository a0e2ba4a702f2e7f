package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
)

// The console's HTTP side: its routes, the headers of every answer, the
// session and CSRF checks, and rendering. Its pages call the same
// operations as the API (see job_ops.go, job_submit.go, ui_session.go).

// uiCSP is the console's Content-Security-Policy: nothing but its own
// files, no inline script or style, no framing, forms to itself only.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// uiFormMax bounds the body of the console's small forms (sign-in and the
// buttons); a restore's may be as large as -max-body.
const uiFormMax = 16 << 10

// uiFormMemory bounds the part of a form body held in memory.
const uiFormMemory = 32 << 20

// uiHandler is a console handler that runs inside a session.
type uiHandler func(w http.ResponseWriter, r *http.Request, s sessionRow)

// consoleRoutes registers the console under /ui/ on r, on a subrouter of
// its own so that its 404 and 405 answers are pages, not JSON.
func (a *app) consoleRoutes(r *mux.Router) {
	ui := r.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		return r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/")
	}).Subrouter()
	ui.Use(uiHeaders)
	// A subrouter of gorilla/mux reports a wrong method as not found once
	// it has two routes, so the 404 handler tells the two apart itself.
	ui.NotFoundHandler = uiHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if methodMismatch(ui, r) {
			a.uiFail(w, r, nil, newAPIError(codeMethodNotAllowed, "This page does not take a "+r.Method+" request."))
			return
		}
		a.uiFail(w, r, nil, newAPIError(codeNotFound, "There is no page at "+r.URL.Path+"."))
	}))
	ui.MethodNotAllowedHandler = ui.NotFoundHandler
	get := func(path string, h http.Handler) { ui.Handle(path, h).Methods(http.MethodGet, http.MethodHead) }
	post := func(path string, h http.Handler) { ui.Handle(path, h).Methods(http.MethodPost) }

	get("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	get("/ui/", http.HandlerFunc(a.uiHome))
	get("/ui/static/{name}", http.HandlerFunc(a.uiStaticFile))
	get("/ui/sign-in", http.HandlerFunc(a.uiSignInPage))
	post("/ui/sign-in", http.HandlerFunc(a.uiSignIn))
	post("/ui/sign-out", a.uiAction(uiFormMax, a.uiSignOut))

	get("/ui/jobs", a.uiPage(a.uiJobs))
	get("/ui/jobs/{uuid}", a.uiPage(a.uiJob))
	get("/ui/jobs/{uuid}/numbers/{number}", a.uiPage(a.uiNumber))
	get("/ui/jobs/{uuid}/webhook-payload", a.uiPage(a.uiWebhookPayload))
	get("/ui/jobs/{uuid}/results.csv", a.uiPage(a.uiResultsCSV))
	post("/ui/jobs/{uuid}/cancel", a.uiAction(uiFormMax, a.uiCancel))
	post("/ui/jobs/{uuid}/redeliver", a.uiAction(uiFormMax, a.uiRedeliver))
	post("/ui/jobs/{uuid}/retry", a.uiAction(uiFormMax, a.uiRetry))

	get("/ui/numbers", a.uiPage(a.uiNumberLookup))
	get("/ui/restore", a.uiPage(a.uiRestorePage))
	post("/ui/restore", a.uiAction(a.cfg.maxBody+uiFormMax, a.uiRestore(true)))
	post("/ui/restore/check", a.uiAction(a.cfg.maxBody+uiFormMax, a.uiRestore(false)))
	a.consoleAdminRoutes(get, post)
}

// methodMismatch reports whether a route of router has r's path but not
// its method.
func methodMismatch(router *mux.Router, r *http.Request) bool {
	found := false
	router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		var m mux.RouteMatch
		if !route.Match(r, &m) && errors.Is(m.MatchErr, mux.ErrMethodMismatch) {
			found = true
			return errFound
		}
		return nil
	})
	return found
}

// uiHeaders sets the security headers of every console answer; pages are
// never stored (a static file says otherwise for itself).
func uiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Add("Vary", "HX-Request, HX-Target")
		next.ServeHTTP(w, r)
	})
}

// uiStaticFile serves a file of ui/static, revalidated by its ETag (its
// address carries the same hash, so a page never mixes versions).
func (a *app) uiStaticFile(w http.ResponseWriter, r *http.Request) {
	f, ok := uiStatic[mux.Vars(r)["name"]]
	if !ok {
		a.uiFail(w, r, nil, newAPIError(codeNotFound, "There is no such file."))
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("Content-Type", f.contentType)
	h.Del("Vary")
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(f.body)
}

// uiHome sends a visitor to the jobs, or to sign in first.
func (a *app) uiHome(w http.ResponseWriter, r *http.Request) {
	if s, err := a.session(r.Context(), sessionID(r)); err == nil {
		to := "/ui/jobs"
		if s.Admin {
			to = "/ui/admin/users"
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
}

// sessionID is the session id the request's cookie carries, if any.
func sessionID(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// isLivePoll reports whether a request is a page polling one of its live
// parts (htmx names the element, whose id starts with "live-"): it is not
// the person's activity.
func isLivePoll(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && strings.HasPrefix(r.Header.Get("HX-Target"), "live-")
}

// uiPage runs h, a user's page, inside the request's session (see
// uiPageFor).
func (a *app) uiPage(h uiHandler) http.Handler { return a.uiPageFor(false, h) }

// uiAdminPage runs h, an admin page, inside the admin's session.
func (a *app) uiAdminPage(h uiHandler) http.Handler { return a.uiPageFor(true, h) }

// roleMismatch answers a session on a page of the other side: the admin,
// who has no jobs of its own, goes to the admin pages; a user finds no
// admin page at all. It reports whether it answered.
func (a *app) roleMismatch(w http.ResponseWriter, r *http.Request, s sessionRow, admin bool) bool {
	switch {
	case s.Admin == admin:
		return false
	case s.Admin && r.Method == http.MethodGet:
		http.Redirect(w, r, "/ui/admin/users", http.StatusSeeOther)
	default:
		a.uiFail(w, r, &s, newAPIError(codeNotFound, "There is no page at "+r.URL.Path+"."))
	}
	return true
}

// uiPageFor runs h inside the request's session, a user's or (admin) the
// admin's; without one, a page asks the visitor to sign in (and come
// back), and a poll tells htmx to go there.
func (a *app) uiPageFor(admin bool, h uiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := a.session(r.Context(), sessionID(r))
		switch {
		case errors.Is(err, errNotFound):
			target := "/ui/sign-in?next=" + url.QueryEscape(r.URL.RequestURI())
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Redirect", target)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		case err != nil:
			a.uiFail(w, r, nil, err)
			return
		}
		if a.roleMismatch(w, r, s, admin) || !a.uiAdmit(w, r, s) {
			return
		}
		if !isLivePoll(r) {
			a.touch(r.Context(), &s)
		}
		h(w, r, s)
	})
}

// uiAdmit applies the per-user rate limit to a console request, as the
// API's authentication does, and names the user in the request's log line.
func (a *app) uiAdmit(w http.ResponseWriter, r *http.Request, s sessionRow) bool {
	if a.userLimits != nil && !s.Admin {
		if wait, ok := a.userLimits.take(s.User.Name, a.now()); !ok {
			w.Header().Set("Retry-After", retryAfterSeconds(wait))
			a.uiFail(w, r, &s, newAPIError(codeRateLimited, "Too many requests; wait a moment and try again."))
			return false
		}
	}
	noteUser(r, s.name())
	return true
}

// uiAction runs h, a user's action, for a state-changing request (see
// uiActionFor).
func (a *app) uiAction(max int64, h uiHandler) http.Handler { return a.uiActionFor(false, max, h) }

// uiAdminAction runs h, an admin's action, for a state-changing request.
func (a *app) uiAdminAction(max int64, h uiHandler) http.Handler { return a.uiActionFor(true, max, h) }

// uiActionFor runs h for a state-changing request: from this site only, in
// a live session of the right side (a user's, or the admin's), with a body
// of at most max bytes (held in the body memory budget) carrying the
// session's CSRF token in the csrf_token field or the X-CSRF-Token header.
// Anything else is refused with 403 (404 for a user on an admin action)
// before h can change anything. Sign-out takes either side.
func (a *app) uiActionFor(admin bool, max int64, h uiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewCrossOriginProtection().Check(r); err != nil {
			a.uiError(w, r, nil, http.StatusForbidden, "This form was sent from another site.")
			return
		}
		s, err := a.session(r.Context(), sessionID(r))
		if errors.Is(err, errNotFound) {
			a.uiError(w, r, nil, http.StatusForbidden, "Your session has ended. Sign in again, then repeat what you did.")
			return
		}
		if err != nil {
			a.uiFail(w, r, nil, err)
			return
		}
		if r.URL.Path != "/ui/sign-out" && a.roleMismatch(w, r, s, admin) {
			return
		}
		if !a.uiAdmit(w, r, s) || !a.uiReadForm(w, r, &s, max) {
			return
		}
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = r.PostFormValue("csrf_token")
		}
		if !s.csrfOK(token) {
			a.uiError(w, r, &s, http.StatusForbidden, "This form is out of date (its security token does not match your session). Reload the page and try again.")
			return
		}
		a.touch(r.Context(), &s)
		h(w, r, s)
	})
}

// uiReadForm reads a form body of at most max bytes, holding its share of
// the body memory budget while the request runs; false when it answered.
func (a *app) uiReadForm(w http.ResponseWriter, r *http.Request, s *sessionRow, max int64) bool {
	if r.ContentLength > max {
		a.uiFail(w, r, s, newAPIError(codeTooLarge, "What you sent is larger than this server takes."))
		return false
	}
	body, ok := a.bodies.hold(r.Context(), r.Body, r.ContentLength, http.NewResponseController(w).SetReadDeadline)
	if !ok {
		a.uiFail(w, r, s, refuseBodyMemory(w))
		return false
	}
	r.Body = http.MaxBytesReader(w, body, max)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		// A restore's numbers are held in memory; a larger file (an
		// inventory) goes to a temporary file past uiFormMemory.
		err = r.ParseMultipartForm(min(max, uiFormMemory))
	} else {
		err = r.ParseForm()
	}
	// The form is in memory now: give the body's share back.
	body.Close()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		a.uiFail(w, r, s, newAPIError(codeTooLarge, "What you sent is larger than this server takes."))
		return false
	case err != nil:
		a.uiFail(w, r, s, newAPIError(codeInvalid, "The form could not be read: "+err.Error()))
		return false
	}
	return true
}

// uiWrite renders a page (or, for htmx asking for one of the page's live
// parts, that part alone) and sends it with status.
func (a *app) uiWrite(w http.ResponseWriter, r *http.Request, status int, page string, view any, fragments ...string) {
	fragment := ""
	if r.Header.Get("HX-Request") == "true" {
		target := r.Header.Get("HX-Target")
		for _, f := range fragments {
			if f == target {
				fragment = f
			}
		}
	}
	body, err := renderUI(page, fragment, view)
	if err != nil {
		a.log.Error("render console page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

// errorView is the error page.
type errorView struct {
	uiBase
	Message string
}

// uiFail answers with the error page: an *apiError with its status and
// message, anything else as a logged 500 that says nothing of the cause.
func (a *app) uiFail(w http.ResponseWriter, r *http.Request, s *sessionRow, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		a.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = newAPIError(codeInternal, "Something went wrong on the server. Try again, or tell the people who run it.")
	}
	a.uiError(w, r, s, httpStatus[e.code], e.message)
}

// uiError answers with the error page, status and message.
func (a *app) uiError(w http.ResponseWriter, r *http.Request, s *sessionRow, status int, message string) {
	a.uiWrite(w, r, status, "error", errorView{uiBase: uiBase{Title: http.StatusText(status), Session: s}, Message: message})
}

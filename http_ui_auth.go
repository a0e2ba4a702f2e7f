package main

import (
	"errors"
	"net/http"
	"strings"
)

// signInView is the sign-in page.
type signInView struct {
	uiBase
	Username string
	Next     string // where to go once signed in
	AdminOn  bool   // the admin token is set: the admin may sign in
}

// safeNext is where to send a visitor after sign-in: a console page, never
// another site (an open redirect), else the jobs.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/ui/") && !strings.ContainsAny(next, "\\\r\n") && !strings.HasPrefix(next, "/ui/sign-") {
		return next
	}
	return "/ui/jobs"
}

// uiSignInPage is GET /ui/sign-in. It reads nothing but where to go next:
// credentials in an address are never looked at.
func (a *app) uiSignInPage(w http.ResponseWriter, r *http.Request) {
	a.uiWrite(w, r, http.StatusOK, "sign_in", signInView{uiBase: uiBase{Title: "Sign in"}, Next: safeNext(r.URL.Query().Get("next")),
		AdminOn: a.cfg.adminToken != ""})
}

// uiSignIn is POST /ui/sign-in: a user's name and API key, from the form
// body only, checked as the API checks them (failures counted against the
// address by the same limiter). Success starts a new session, ending the
// one the browser had, and goes on.
func (a *app) uiSignIn(w http.ResponseWriter, r *http.Request) {
	if err := http.NewCrossOriginProtection().Check(r); err != nil {
		a.uiError(w, r, nil, http.StatusForbidden, "This form was sent from another site.")
		return
	}
	if !a.uiReadForm(w, r, nil, uiFormMax) {
		return
	}
	name, key, next := r.PostForm.Get("username"), r.PostForm.Get("api_key"), safeNext(r.PostForm.Get("next"))
	view := signInView{uiBase: uiBase{Title: "Sign in"}, Username: name, Next: next, AdminOn: a.cfg.adminToken != ""}
	var id string
	var who sessionRow
	var err error
	if r.PostForm.Has("admin_token") && view.AdminOn {
		id, who, err = a.signInAdmin(r.Context(), r.PostForm.Get("admin_token"), clientIP(r))
	} else {
		id, who, err = a.signIn(r.Context(), name, key, clientIP(r))
	}
	var blocked *errSignInBlocked
	switch {
	case errors.As(err, &blocked):
		w.Header().Set("Retry-After", retryAfterSeconds(blocked.wait))
		view.Error = blocked.Error()
		a.uiWrite(w, r, http.StatusTooManyRequests, "sign_in", view)
		return
	case err != nil:
		var e *apiError
		if !errors.As(err, &e) {
			a.uiFail(w, r, nil, err)
			return
		}
		view.Error = "Invalid user name or API key."
		if r.PostForm.Has("admin_token") {
			view.Error = "Invalid admin token."
		}
		a.uiWrite(w, r, httpStatus[e.code], "sign_in", view)
		return
	}
	if old, err := a.session(r.Context(), sessionID(r)); err == nil {
		if err := a.endSession(r.Context(), old); err != nil {
			a.log.Warn("end the previous console session", "err", err)
		}
	}
	noteUser(r, who.name())
	setSessionCookie(w, r, id, false)
	if who.Admin {
		next = "/ui/admin/users"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// uiSignOut is POST /ui/sign-out: the session is deleted, not just
// forgotten by the browser.
func (a *app) uiSignOut(w http.ResponseWriter, r *http.Request, s sessionRow) {
	if err := a.endSession(r.Context(), s); err != nil {
		a.uiFail(w, r, &s, err)
		return
	}
	setSessionCookie(w, r, "", true)
	http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
}

// setSessionCookie sets (or, with clear, removes) the session cookie:
// HttpOnly, SameSite=Strict, for /ui only, and Secure when the request
// came over TLS, to this server or (X-Forwarded-Proto: https) to a proxy
// in front of it. A client that claims https when it is not only loses its
// own cookie on plain HTTP.
func setSessionCookie(w http.ResponseWriter, r *http.Request, id string, clear bool) {
	c := &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/ui",
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	}
	if clear {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

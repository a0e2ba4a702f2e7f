package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"
)

// app holds what the HTTP handlers need.
type app struct {
	store    *Store
	writer   *writer
	pool     *pool
	webhooks *webhookSender
	backend  Restorer
	preview  previewer // what dry runs ask
	retry    retryPolicy
	cfg      serveConfig
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics
	progress *progressTracker // projects when jobs finish

	userLimits   *limiterSet // requests per user; nil when -rate-limit is 0
	authFailures *limiterSet // failed authentications per client address
	bodies       *bodyBudget // bytes request bodies may hold at once

	// idempotencyWait bounds a request's wait for the answer of an earlier
	// one with the same Idempotency-Key.
	idempotencyWait time.Duration
}

// userKey is the context key of the authenticated user.
type userKey struct{}

// routes registers every endpoint. The /v3 routes are registered whole on
// the root router (not on a subrouter), so a wrong method is a 405 and not
// a 404.
func (a *app) routes() http.Handler {
	// SkipClean: a path like //healthz gets a JSON 404, not a bodiless 301.
	r := mux.NewRouter().SkipClean(true)
	r.Use(a.nameRoute)
	r.HandleFunc("/healthz", a.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", a.readyz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/openapi.yaml", a.openAPI).Methods(http.MethodGet, http.MethodHead)
	if a.metrics != nil && a.cfg.metricsAddr == "" {
		r.Handle("/metrics", a.metrics.handler()).Methods(http.MethodGet)
	}
	api := func(path string, h http.HandlerFunc, methods ...string) {
		r.Handle(path, a.authenticate(a.wellFormedQuery(h))).Methods(methods...)
	}
	api("/v3/bulk_restore", a.budgeted(a.bulkRestore), http.MethodPost)
	api("/v3/bulk_restore_status", a.bulkRestoreStatus, http.MethodGet, http.MethodHead)
	api("/v3/restore/{number}", a.restoreOne, http.MethodGet, http.MethodPost)
	api("/v3/bulk_restore_cancel", a.bulkRestoreCancel, http.MethodPost)
	api("/v3/bulk_restore_webhook", a.bulkRestoreWebhook, http.MethodPost)
	api("/v3/bulk_restore_jobs", a.bulkRestoreJobs, http.MethodGet, http.MethodHead)
	api("/v3/bulk_restore_retry", a.bulkRestoreRetry, http.MethodPost)
	api("/v3/numbers/{number}/history", a.getNumberHistory, http.MethodGet, http.MethodHead)
	a.adminRoutes(r)
	a.consoleRoutes(r)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, newAPIError(codeNotFound, "no such endpoint: "+r.URL.Path))
	})
	r.MethodNotAllowedHandler = a.nameMethodMismatch(r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, newAPIError(codeMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path))
	}))
	return a.observeRequests(a.recoverPanics(r))
}

// wellFormedQuery answers 400 for a query string that does not parse (a
// pair holding a ';', a bad %-escape). Go's URL.Query drops such a pair
// without a word, and a dry_run or a status_code filter dropped so would
// change what the request does: a dry run would restore.
func (a *app) wellFormedQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			writeError(w, r, a.log, newAPIError(codeInvalid, "malformed query string: "+err.Error()))
			return
		}
		next(w, r)
	}
}

// recoverPanics turns a handler panic into a logged 500.
func (a *app) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				writeError(w, r, a.log, fmt.Errorf("panic: %v", p))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate checks HTTP Basic credentials and puts the user in the
// request context.
func (a *app) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, key, ok := r.BasicAuth()
		if !ok {
			a.unauthorized(w, r, "authentication required: HTTP Basic with your username and API key")
			return
		}
		ip, now := clientIP(r), a.now()
		if wait, blocked := a.authFailures.exhausted(ip, now); blocked {
			a.tooManyRequests(w, r, wait, "too many failed authentications from your address; retry later")
			return
		}
		u, err := a.store.authenticate(r.Context(), name, key)
		if errors.Is(err, errNotFound) {
			a.authFailures.take(ip, now)
			a.unauthorized(w, r, "invalid username or API key")
			return
		}
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if a.userLimits != nil {
			if wait, ok := a.userLimits.take(u.Name, now); !ok {
				a.tooManyRequests(w, r, wait, fmt.Sprintf("rate limit of %g requests a second exceeded; retry later", a.cfg.rateLimit))
				return
			}
		}
		noteUser(r, u.Name)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// unauthorized answers 401 with the Basic challenge.
func (a *app) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="bulkrestore"`)
	writeError(w, r, a.log, newAPIError(codeUnauthorized, msg))
}

// currentUser returns the authenticated user of a request.
func currentUser(r *http.Request) User {
	u, _ := r.Context().Value(userKey{}).(User)
	return u
}

// healthz answers while the process is up.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 while the database answers and takes writes, else
// 503.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Status: "error", Message: "database unreachable"})
		return
	}
	if err := a.writer.healthy(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Status: "error",
			Message: "database writes are failing, retrying: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// app holds what the HTTP handlers need.
type app struct {
	store     *Store
	writer    *writer
	pool      *pool
	webhooks  *webhookSender
	backend   Restorer
	retry     retryPolicy
	cfg       serveConfig
	log       *slog.Logger
	now       func() time.Time
	onCreated func(n int) // told how many numbers each new job has
}

// userKey is the context key of the authenticated user.
type userKey struct{}

// routes registers every endpoint.
func (a *app) routes() http.Handler {
	r := mux.NewRouter()
	r.HandleFunc("/healthz", a.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", a.readyz).Methods(http.MethodGet, http.MethodHead)

	api := r.PathPrefix("/v3").Subrouter()
	api.Use(a.authenticate)
	api.HandleFunc("/bulk_restore", a.bulkRestore).Methods(http.MethodPost)
	api.HandleFunc("/bulk_restore_status", a.bulkRestoreStatus).Methods(http.MethodGet, http.MethodHead)
	api.HandleFunc("/restore/{number}", a.restoreOne).Methods(http.MethodGet, http.MethodPost)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, newAPIError(codeNotFound, "no such endpoint: "+r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, newAPIError(codeMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path))
	})
	return a.recoverPanics(r)
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
		u, err := a.store.authenticate(r.Context(), name, key)
		if errors.Is(err, errNotFound) {
			a.unauthorized(w, r, "invalid username or API key")
			return
		}
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
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

// readyz answers 200 while the database answers, else 503.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.store.ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Status: "error", Message: "database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// bulkRestore is POST /v3/bulk_restore.
func (a *app) bulkRestore(w http.ResponseWriter, r *http.Request) {
	req, err := parseBulkRequest(w, r, a.limits())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	user := currentUser(r)
	if len(req.Numbers) <= a.cfg.syncLimit {
		job, results, webhookErr, err := a.runSync(r.Context(), user, req.Numbers, req.WebhookURL)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		a.writeFinal(w, r, job, results, webhookErr)
		return
	}
	job, err := a.enqueue(r.Context(), user, req.Numbers, req.WebhookURL)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	statusPath := "/v3/bulk_restore_status?job_uuid=" + job.UUID
	msg := "Restore job queued. Poll " + statusPath + " for results."
	if job.WebhookURL != "" {
		msg = "Restore job queued. Results will be POSTed to " + job.WebhookURL
	}
	w.Header().Set("Location", statusPath)
	writeJSON(w, http.StatusAccepted, queuedJSON{
		JobUUID: job.UUID, Status: job.Status, TotalNumbers: job.Total,
		WebhookURL: nullableString(job.WebhookURL), Message: msg,
	})
}

// queuedJSON is the 202 body.
type queuedJSON struct {
	JobUUID      string  `json:"job_uuid"`
	Status       string  `json:"status"`
	TotalNumbers int     `json:"total_numbers"`
	WebhookURL   *string `json:"webhook_url"`
	Message      string  `json:"message"`
}

// limits are the request limits of this server.
func (a *app) limits() requestLimits {
	return requestLimits{maxBody: a.cfg.maxBody, maxNumbers: a.cfg.maxNumbers, allowPrivate: a.cfg.allowPrivateWebhooks()}
}

// enqueue commits a job and all its numbers, then wakes the dispatcher.
func (a *app) enqueue(ctx context.Context, user User, numbers []string, webhookURL string) (Job, error) {
	job := Job{UUID: uuid.NewString(), UserID: user.ID, WebhookURL: webhookURL, CreatedAt: a.now()}
	err := a.writer.do(ctx, func(tx *sql.Tx) error { return insertQueuedJob(tx, &job, numbers) })
	if err != nil {
		return Job{}, fmt.Errorf("queue job: %w", err)
	}
	a.onCreated(len(numbers))
	a.pool.nudge()
	return job, nil
}

// runSync restores a few numbers now, concurrently, stores the finished
// job, and makes the first webhook attempt. It returns the job, its results
// and the webhook error, if the attempt failed.
func (a *app) runSync(ctx context.Context, user User, numbers []string, webhookURL string) (Job, []NumberResult, string, error) {
	// A client that hangs up does not cut the restores short: they are
	// recorded whole either way.
	work := context.WithoutCancel(ctx)
	job := Job{UUID: uuid.NewString(), UserID: user.ID, WebhookURL: webhookURL, CreatedAt: a.now()}
	done := make([]completedNumber, len(numbers))
	var wg sync.WaitGroup
	onPanic := func(v any, stack []byte) { a.log.Error("restore panicked", "panic", v, "stack", string(stack)) }
	for i, n := range numbers {
		wg.Go(func() {
			done[i] = completedNumber{Number: n, Attempts: restoreWithRetries(work, a.backend, a.retry, user.ID, n, onPanic)}
		})
	}
	wg.Wait()
	lease := a.now().Add(a.cfg.webhookTimeout + 30*time.Second)
	err := a.writer.do(work, func(tx *sql.Tx) error { return insertCompletedJob(tx, &job, done, lease) })
	if err != nil {
		return Job{}, nil, "", fmt.Errorf("store job: %w", err)
	}
	a.onCreated(len(numbers))
	results := make([]NumberResult, len(done))
	for i, d := range done {
		o := d.outcome()
		results[i] = NumberResult{
			Position: i, Number: d.Number, Status: o.status(), Message: o.Message, StatusCode: o.StatusCode,
			RequiresIdentityUpdate: o.RequiresIdentityUpdate, NeedsRegistration: o.NeedsRegistration,
			Attempts: len(d.Attempts), StartedAt: d.Attempts[0].Started, CompletedAt: d.Attempts[len(d.Attempts)-1].Finished,
		}
	}
	if webhookURL == "" {
		return job, results, "", nil
	}
	body, err := jobPayload{kind: finalPayload, job: job, results: sliceSource(results)}.bytes()
	if err != nil {
		return Job{}, nil, "", err
	}
	res, err := a.webhooks.attempt(work, job, []string{user.WebhookSecret}, body)
	if err != nil {
		a.log.Error("inline webhook attempt", "job", job.UUID, "err", err)
	}
	a.webhooks.nudge() // schedules the retry, if one is due
	return job, results, res.Err, nil
}

// writeFinal answers 200 with the final payload.
func (a *app) writeFinal(w http.ResponseWriter, r *http.Request, job Job, results []NumberResult, webhookErr string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	p := jobPayload{kind: finalPayload, job: job, results: sliceSource(results), webhookError: webhookErr}
	if err := p.write(w); err != nil {
		a.log.Warn("write response", "path", r.URL.Path, "err", err)
	}
}

// bulkRestoreStatus is GET /v3/bulk_restore_status.
func (a *app) bulkRestoreStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("job_uuid")
	if id == "" {
		writeError(w, r, a.log, newAPIError(codeInvalid, "job_uuid is required"))
		return
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		writeError(w, r, a.log, newAPIError(codeInvalid, "job_uuid must be a UUID like 8f6c1f0e-23d2-4717-8c8e-1a518e5738f0"))
		return
	}
	number := q.Get("number")
	if q.Has("number") && !isDigits(number) {
		writeError(w, r, a.log, newAPIError(codeInvalid, "number must be digits only"))
		return
	}
	offset, limit, err := pageParams(q.Get("offset"), q.Get("limit"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	job, err := a.store.jobForUser(r.Context(), currentUser(r).ID, uuid.MustParse(id).String())
	if errors.Is(err, errNotFound) {
		writeError(w, r, a.log, newAPIError(codeNotFound, "job not found"))
		return
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if number != "" {
		found, err := a.store.hasNumber(r.Context(), job.ID, number)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if !found {
			writeError(w, r, a.log, newAPIError(codeNotFound, "number "+number+" is not in this job"))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	p := jobPayload{
		kind: statusPayload, job: job, filteredNumber: number,
		results: func(fn func(NumberResult) error) error {
			return a.store.eachResult(r.Context(), job.ID, number, offset, limit, fn)
		},
	}
	if err := p.write(w); err != nil {
		a.log.Warn("write status", "job", job.UUID, "err", err)
	}
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// pageParams parses the optional offset and limit of the status endpoint.
func pageParams(offsetText, limitText string) (offset, limit int, err error) {
	parse := func(name, s string) (int, error) {
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, newAPIError(codeInvalid, name+" must be a non-negative integer")
		}
		return n, nil
	}
	if offset, err = parse("offset", offsetText); err != nil {
		return 0, 0, err
	}
	limit, err = parse("limit", limitText)
	return offset, limit, err
}

// singleJSON is the body of GET|POST /v3/restore/{number}.
type singleJSON struct {
	finalResultJSON
	JobUUID string `json:"job_uuid"`
}

// restoreOne is GET|POST /v3/restore/{number}: one number, recorded as a
// one-number job; the HTTP status is the result's status code.
func (a *app) restoreOne(w http.ResponseWriter, r *http.Request) {
	number := mux.Vars(r)["number"]
	if !validNumber(number) {
		writeError(w, r, a.log, newAPIError(codeInvalid, "number must be 7 to 15 digits"))
		return
	}
	job, results, _, err := a.runSync(r.Context(), currentUser(r), []string{number}, "")
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	res := results[0]
	status := http.StatusOK
	if res.Status != "success" {
		status = res.StatusCode
		if status < 400 || status > 599 {
			status = http.StatusBadGateway // a failure must not read as success
		}
	}
	writeJSON(w, status, singleJSON{finalResultJSON: finalResult(res), JobUUID: job.UUID})
}

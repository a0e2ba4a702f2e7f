package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The client's fixed knobs.
const (
	// defaultServerURL is where the client looks without -server: the
	// address `bulkrestore serve` listens on by default.
	defaultServerURL = "http://localhost:8080"
	// clientRequestTimeout bounds one HTTP exchange with the server.
	clientRequestTimeout = 2 * time.Minute
	// clientMaxReply caps how much of one answer the client reads.
	clientMaxReply = 64 << 20
	// clientRetryBase is the first wait before retrying a transient failure;
	// it doubles with each retry.
	clientRetryBase = time.Second
	// clientRetryAfterMax caps how long a Retry-After may make the client wait.
	clientRetryAfterMax = 2 * time.Minute
	// resultPageSize is how many results the client asks for at a time, so
	// that a large job is never held in memory whole.
	resultPageSize = 1000
)

// exitError ends the program with a chosen exit code: submit exits 1 when
// some numbers were not restored and 2 when the server could not be used.
type exitError struct {
	code int
	err  error
}

// Error implements error.
func (e *exitError) Error() string { return e.err.Error() }

// Unwrap lets errors.Is and errors.As see the cause.
func (e *exitError) Unwrap() error { return e.err }

// serverTrouble marks err as exit code 2 (auth failure, server error,
// network), unless it already carries a code or is a usage error (also 2).
func serverTrouble(err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) || errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: 2, err: err}
}

// connFlags are the flags every client command shares.
type connFlags struct {
	server  string
	user    string
	key     string
	retries int
}

// register adds the shared flags to fs.
func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", defaultServerURL, "base URL of the bulkrestore server")
	fs.StringVar(&c.user, "user", "", "API user name")
	fs.StringVar(&c.key, "key", "", "API key (better: the BULKRESTORE_API_KEY environment variable)")
	fs.IntVar(&c.retries, "retries", 5, "retries of a request that failed transiently (network, 429, 502, 503, 504)")
}

// parse parses a client command's flags and arguments: the shared flags
// give the API client, and check judges the positional arguments and the
// command's own flags.
func (c *connFlags) parse(fs *flag.FlagSet, args []string, getenv func(string) string, notes io.Writer, check func([]string) error) (*apiClient, []string, error) {
	rest, err := parseArgs(fs, args, getenv)
	if err != nil {
		return nil, nil, err
	}
	api, err := c.client(getenv, notes)
	if err != nil {
		return nil, nil, err
	}
	return api, rest, check(rest)
}

// client checks the shared flags, after parseArgs, and returns an API
// client. The key falls back to BULKRESTORE_API_KEY.
func (c *connFlags) client(getenv func(string) string, notes io.Writer) (*apiClient, error) {
	if c.key == "" {
		c.key = getenv("BULKRESTORE_API_KEY")
	}
	switch {
	case c.user == "":
		return nil, fmt.Errorf("%w: -user is required (or BULKRESTORE_USER)", errUsage)
	case c.key == "":
		return nil, fmt.Errorf("%w: an API key is required: BULKRESTORE_API_KEY or -key", errUsage)
	case c.retries < 0 || c.retries > 20:
		return nil, fmt.Errorf("%w: -retries must be 0 to 20", errUsage)
	}
	raw := strings.TrimSpace(c.server)
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.User != nil {
		return nil, fmt.Errorf("%w: -server %q must be an http or https URL like %s", errUsage, c.server, defaultServerURL)
	}
	base.RawQuery, base.Fragment = "", ""
	return &apiClient{
		base: base, user: c.user, key: c.key, retries: c.retries, retryBase: clientRetryBase, notes: notes,
		hc: &http.Client{Timeout: clientRequestTimeout}, pageSize: resultPageSize,
	}, nil
}

// apiClient talks to one bulkrestore server as one user.
type apiClient struct {
	base      *url.URL
	user, key string
	hc        *http.Client
	retries   int
	retryBase time.Duration
	notes     io.Writer // where retries are announced
	pageSize  int       // results asked for at a time
}

// apiReply is one answer from the server, read whole; or, for a 200
// streamed to a sink, its status and headers and how the copy went.
type apiReply struct {
	status  int
	header  http.Header
	body    []byte
	sinkErr error // the copy to the sink failed part way: not retried, bytes were written
}

// apiFailure is an answer the client cannot use: its HTTP status (0 for a
// network error) and the server's message.
type apiFailure struct {
	status  int
	message string
	invalid []string // invalid_numbers of a 400
}

// Error implements error.
func (e *apiFailure) Error() string {
	msg := e.message
	if e.status == http.StatusUnauthorized {
		msg = "authentication failed: " + msg
	}
	if e.status != 0 {
		msg = fmt.Sprintf("server answered %d: %s", e.status, msg)
	} else {
		msg = "cannot reach the server: " + msg
	}
	if len(e.invalid) > 0 {
		msg += " (" + strings.Join(e.invalid, ", ") + ")"
	}
	return msg
}

// failure describes a reply that is not what the caller wanted.
func (r apiReply) failure() *apiFailure {
	var body struct {
		Message        string   `json:"message"`
		InvalidNumbers []string `json:"invalid_numbers"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Message == "" {
		text := strings.TrimSpace(string(r.body))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		if text == "" {
			text = http.StatusText(r.status)
		}
		body.Message = text
	}
	return &apiFailure{status: r.status, message: body.Message, invalid: body.InvalidNumbers}
}

// decode unmarshals a 2xx reply into v.
func (r apiReply) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("server answered %d with a body that is not the expected JSON: %v", r.status, err)
	}
	return nil
}

// clientRetryable reports whether an HTTP status is worth retrying.
func clientRetryable(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// do sends one request, retrying network errors and transient statuses up
// to c.retries times with exponential backoff and jitter, honouring
// Retry-After. body is sent as JSON when not nil. A POST is only retried
// safely because the caller sends an Idempotency-Key. Any HTTP answer is
// returned as a reply; the error is for the network or a cancelled ctx.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body []byte, header http.Header) (apiReply, error) {
	return c.send(ctx, method, path, query, body, header, nil)
}

// send is do, with the body of a 200 copied to sink as it arrives, when
// sink is not nil, instead of being read into the reply: a download of
// any size. Only what fails before the first byte is retried.
func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body []byte, header http.Header, sink io.Writer) (apiReply, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	for attempt := 0; ; attempt++ {
		reply, err := c.once(ctx, method, u.String(), body, header, sink)
		if ctx.Err() != nil {
			return apiReply{}, ctx.Err()
		}
		if (err == nil && !clientRetryable(reply.status)) || attempt >= c.retries {
			if err != nil {
				return apiReply{}, &apiFailure{message: err.Error()}
			}
			return reply, nil
		}
		wait := backoff(c.retryBase, c.retryBase<<6, attempt+1)
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = fmt.Sprintf("HTTP %d: %s", reply.status, reply.failure().message)
			if after := parseRetryAfter(reply.header.Get("Retry-After"), time.Now()); after > 0 {
				wait = min(after, clientRetryAfterMax)
			}
		}
		fmt.Fprintf(c.notes, "%s %s: %s; retry %d of %d in %s\n", method, path, why, attempt+1, c.retries, wait.Round(time.Millisecond))
		if !sleepUntil(ctx, nil, time.Now().Add(wait)) {
			return apiReply{}, ctx.Err()
		}
	}
}

// once is a single HTTP exchange; a 200's body goes to sink when it is
// not nil.
func (c *apiClient) once(ctx context.Context, method, target string, body []byte, header http.Header, sink io.Writer) (apiReply, error) {
	hc, answered := c.hc, func() {}
	if sink != nil && c.hc.Timeout > 0 {
		// A download lasts as long as its file: only the wait for the
		// answer is bounded.
		unbounded := *c.hc
		unbounded.Timeout = 0
		hc = &unbounded
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		timer := time.AfterFunc(c.hc.Timeout, cancel)
		answered = func() { timer.Stop() }
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return apiReply{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent())
	req.SetBasicAuth(c.user, c.key)
	resp, err := hc.Do(req)
	answered()
	if err != nil {
		return apiReply{}, err
	}
	defer resp.Body.Close()
	if sink != nil && resp.StatusCode == http.StatusOK {
		_, err := io.Copy(sink, resp.Body)
		return apiReply{status: resp.StatusCode, header: resp.Header, sinkErr: err}, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, clientMaxReply))
	if err != nil {
		return apiReply{}, fmt.Errorf("read answer: %w", err)
	}
	return apiReply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// jobReply is what the client reads of a job: the 200 and 202 answers of
// a submit and the status answer share these fields.
type jobReply struct {
	jobSummaryJSON
	Message            string          `json:"message"`
	WebhookAttempts    int             `json:"webhook_attempts"`
	WebhookDeliveredAt *string         `json:"webhook_delivered_at"`
	WebhookError       *string         `json:"webhook_error"`
	Results            []clientResult  `json:"results"`
	Raw                json.RawMessage `json:"-"`
}

// clientResult is one number as the client reads and writes it.
type clientResult struct {
	Number                 string       `json:"number"`
	Status                 numberStatus `json:"status"`
	StatusCode             *int         `json:"status_code"`
	Message                *string      `json:"message"`
	RequiresIdentityUpdate int          `json:"requires_identity_update"`
	NeedsRegistration      int          `json:"needs_registration"`
	Attempts               *int         `json:"attempts"`
	JobUUID                string       `json:"job_uuid"`
}

// jobStatus fetches a job's status: limit results from offset; limit 0 is
// the summary alone.
func (c *apiClient) jobStatus(ctx context.Context, jobUUID string, offset, limit int) (jobReply, error) {
	return c.statusPage(ctx, jobUUID, "", offset, limit)
}

// statusPage fetches a job's status with the results in the states
// resultStatus names (comma-separated; "" for all): limit of them from
// offset, both counted among those.
func (c *apiClient) statusPage(ctx context.Context, jobUUID, resultStatus string, offset, limit int) (jobReply, error) {
	q := url.Values{"job_uuid": {jobUUID}, "limit": {strconv.Itoa(limit)}}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if resultStatus != "" {
		q.Set("result_status", resultStatus)
	}
	reply, err := c.do(ctx, http.MethodGet, "/v3/bulk_restore_status", q, nil, nil)
	if err != nil {
		return jobReply{}, err
	}
	if reply.status != http.StatusOK {
		return jobReply{}, reply.failure()
	}
	var s jobReply
	if err := reply.decode(&s); err != nil {
		return jobReply{}, err
	}
	s.Raw = reply.body
	return s, nil
}

// eachResult calls fn for every result of a job, in order, a page of
// c.pageSize at a time.
func (c *apiClient) eachResult(ctx context.Context, job jobReply, fn func(clientResult) error) error {
	return c.eachResultIn(ctx, job, "", fn)
}

// eachResultIn is eachResult for the results in the states resultStatus
// names, filtered by the server.
func (c *apiClient) eachResultIn(ctx context.Context, job jobReply, resultStatus string, fn func(clientResult) error) error {
	maxPages := job.TotalNumbers/c.pageSize + 2 // bounded even if the server misbehaves
	for page, offset := 0, 0; page < maxPages; page++ {
		s, err := c.statusPage(ctx, job.JobUUID, resultStatus, offset, c.pageSize)
		if err != nil {
			return err
		}
		for _, r := range s.Results {
			r.JobUUID = job.JobUUID
			if err := fn(r); err != nil {
				return err
			}
		}
		offset += len(s.Results)
		if len(s.Results) < c.pageSize || offset >= job.TotalNumbers {
			return nil
		}
	}
	return fmt.Errorf("job %s: results did not end after %d pages", job.JobUUID, maxPages)
}

// downloadResultsCSV copies a job's results, in the states resultStatus
// names ("" for all), as the server writes them as CSV, to w as they
// arrive: a job of any size in constant memory. A transfer cut short is an
// error, whatever reached w.
func (c *apiClient) downloadResultsCSV(ctx context.Context, jobUUID, resultStatus string, w io.Writer) error {
	q := url.Values{"job_uuid": {jobUUID}, "format": {"csv"}}
	if resultStatus != "" {
		q.Set("result_status", resultStatus)
	}
	reply, err := c.send(ctx, http.MethodGet, "/v3/bulk_restore_status", q, nil, nil, w)
	switch {
	case err != nil:
		return err
	case reply.status != http.StatusOK:
		return reply.failure()
	case reply.sinkErr != nil:
		return fmt.Errorf("the results were cut short: %w", reply.sinkErr)
	}
	return nil
}

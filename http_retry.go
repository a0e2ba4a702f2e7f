package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxRetryBody caps the body of a retry request: it holds a webhook_url
// at most.
const maxRetryBody = 64 << 10

// retryHTTPRequest is what a POST /v3/bulk_restore_retry asks, parsed.
type retryHTTPRequest struct {
	codes      []int
	webhookURL *string // nil: the job's own
	hash       []byte  // of what the request asks, for Idempotency-Key
}

// bulkRestoreRetry is POST /v3/bulk_restore_retry?job_uuid=&status_code=:
// a new job of the failed numbers of a finished job, answered as POST
// /v3/bulk_restore answers (Idempotency-Key included).
func (a *app) bulkRestoreRetry(w http.ResponseWriter, r *http.Request) {
	rq, err := parseRetryRequest(w, r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	job, err := a.jobFromQuery(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	req, err := a.retryFailures(r.Context(), job, rq.codes, rq.webhookURL)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	req.BodyHash = rq.hash
	a.submit(w, r, req)
}

// parseRetryRequest reads status_code and the optional body: JSON
// {"webhook_url":...} or the same as a form, or nothing. The hash covers
// the job, the codes and the body (with its Content-Type), so that the
// same Idempotency-Key on another retry is refused.
func parseRetryRequest(w http.ResponseWriter, r *http.Request) (retryHTTPRequest, error) {
	defer r.Body.Close()
	var rq retryHTTPRequest
	q := r.URL.Query()
	codes, err := parseStatusCodes(q["status_code"])
	if err != nil {
		return rq, err
	}
	rq.codes = codes
	if r.ContentLength > maxRetryBody {
		return rq, bodyTooLarge(maxRetryBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRetryBody))
	if err != nil {
		return rq, readError(w, err, maxRetryBody)
	}
	contentType := r.Header.Get("Content-Type")
	if rq.webhookURL, err = decodeRetryBody(contentType, body); err != nil {
		return rq, err
	}
	hash := sha256.New()
	list := make([]string, len(codes))
	for i, c := range codes {
		list[i] = strconv.Itoa(c)
	}
	io.WriteString(hash, "POST /v3/bulk_restore_retry\n"+strings.ToLower(q.Get("job_uuid"))+"\n"+
		strings.Join(list, ",")+"\n"+contentType+"\n")
	hash.Write(body)
	rq.hash = hash.Sum(nil)
	return rq, nil
}

// decodeRetryBody reads the webhook_url of a retry's body, if it gives one.
// Without a Content-Type, a body that starts with '{' is JSON and anything
// else a form, as for POST /v3/bulk_restore.
func decodeRetryBody(contentType string, body []byte) (*string, error) {
	trimmed := bytes.TrimSpace(body)
	mediaType := "application/x-www-form-urlencoded"
	switch {
	case contentType != "":
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, newAPIError(codeUnsupportedMedia, "malformed Content-Type: "+contentType)
		}
		mediaType = mt
	case len(trimmed) > 0 && trimmed[0] == '{':
		mediaType = "application/json"
	}
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		if len(trimmed) == 0 {
			return nil, nil
		}
		return decodeRetryJSON(trimmed)
	case mediaType == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, newAPIError(codeInvalid, "malformed form body: "+err.Error())
		}
		if vs, ok := form["webhook_url"]; ok {
			return &vs[0], nil
		}
		return nil, nil
	}
	return nil, newAPIError(codeUnsupportedMedia,
		"Content-Type must be application/json or application/x-www-form-urlencoded, not "+mediaType)
}

// decodeRetryJSON reads a retry's JSON body: an object whose only field is
// webhook_url (a string; null counts as absent), its name in any case.
func decodeRetryJSON(body []byte) (*string, error) {
	if body[0] != '{' {
		return nil, newAPIError(codeInvalid, "request body must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, jsonError(err)
	}
	if k := repeatedJSONKey(body); k != "" {
		return nil, newAPIError(codeInvalid, strconv.Quote(clipQuote(k))+" is given twice in the JSON body")
	}
	if len(fields) > 1 {
		return nil, newAPIError(codeInvalid, "the JSON body may hold one field, webhook_url")
	}
	var webhookURL *string
	for name, raw := range fields {
		if !strings.EqualFold(name, "webhook_url") {
			return nil, newAPIError(codeInvalid, "unknown field "+strconv.Quote(clipQuote(name))+
				" in the JSON body (the only field is webhook_url)")
		}
		if err := json.Unmarshal(raw, &webhookURL); err != nil {
			return nil, newAPIError(codeInvalid, "webhook_url must be a string")
		}
	}
	return webhookURL, nil
}

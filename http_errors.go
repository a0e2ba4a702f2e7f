package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// errorCode classifies what went wrong for the client.
type errorCode int

// The error codes; httpStatus maps each to its HTTP status.
const (
	codeInternal errorCode = iota
	codeInvalid
	codeUnauthorized
	codeNotFound
	codeMethodNotAllowed
	codeConflict
	codeTooLarge
	codeUnsupportedMedia
	codeUnprocessable
	codeRateLimited
	codeUnavailable
	codeTooSlow
)

// httpStatus is the one table from error code to HTTP status.
var httpStatus = map[errorCode]int{
	codeInternal:         http.StatusInternalServerError,
	codeInvalid:          http.StatusBadRequest,
	codeUnauthorized:     http.StatusUnauthorized,
	codeNotFound:         http.StatusNotFound,
	codeMethodNotAllowed: http.StatusMethodNotAllowed,
	codeConflict:         http.StatusConflict,
	codeTooLarge:         http.StatusRequestEntityTooLarge,
	codeUnsupportedMedia: http.StatusUnsupportedMediaType,
	codeUnprocessable:    http.StatusUnprocessableEntity,
	codeRateLimited:      http.StatusTooManyRequests,
	codeUnavailable:      http.StatusServiceUnavailable,
	codeTooSlow:          http.StatusRequestTimeout,
}

// apiError is an error meant for the client: a code and a message, plus the
// invalid numbers of a rejected request.
type apiError struct {
	code           errorCode
	message        string
	invalidNumbers []string
}

// newAPIError builds an apiError.
func newAPIError(code errorCode, message string) *apiError {
	return &apiError{code: code, message: message}
}

// Error implements error.
func (e *apiError) Error() string { return e.message }

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Status         string   `json:"status"`
	Message        string   `json:"message"`
	InvalidNumbers []string `json:"invalid_numbers,omitempty"`
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with err: an apiError as it says, anything else as a
// logged 500 with a generic message.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = newAPIError(codeInternal, "internal error, please try again or contact support")
		if isDatabaseError(err) && classifyStoreError(err) == storeTransient {
			w.Header().Set("Retry-After", retryAfterSeconds(5*time.Second))
			e = newAPIError(codeUnavailable, "storage is unavailable, please retry later")
		}
	}
	writeJSON(w, httpStatus[e.code], errorBody{Status: "error", Message: e.message, InvalidNumbers: e.invalidNumbers})
}

// clientIP is the address the request came from (the proxy's, behind one).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tooManyRequests answers 429 with a Retry-After in whole seconds.
func (a *app) tooManyRequests(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	writeError(w, r, a.log, newAPIError(codeRateLimited, msg))
}

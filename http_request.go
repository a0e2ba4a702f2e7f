package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxInvalidListed caps the invalid_numbers list of a 400.
const maxInvalidListed = 50

// bulkRequest is a validated POST /v3/bulk_restore, or the job a retry of
// another job's failures makes.
type bulkRequest struct {
	Numbers    numberList // unique, in input order
	WebhookURL string     // empty when none
	BodyHash   []byte     // SHA-256 of Content-Type and body, for Idempotency-Key
	DryRun     bool       // show what a restore would give now, change nothing
	RetryOf    string     // the uuid of the job whose failures these are; empty for a new request
}

// requestLimits are the knobs request parsing obeys.
type requestLimits struct {
	maxBody      int64
	maxNumbers   int
	allowPrivate bool // webhook URLs may name private addresses
}

// rawBulkRequest is the request as decoded, whatever its encoding, before
// the limits are applied.
type rawBulkRequest struct {
	numbers    *numberSet
	webhookURL string
	dryRun     optionalFlag
}

// errDryRunValue refuses a dry_run that is no spelling of yes or no.
var errDryRunValue = newAPIError(codeInvalid, "dry_run must be true or false (or 1 or 0)")

// optionalFlag is a yes-or-no setting of a request that may be absent, and
// may be given more than once (a form field repeated, the query and the
// body) as long as every value agrees.
type optionalFlag struct {
	given, value bool
}

// set records one more value.
func (f *optionalFlag) set(v bool) error {
	if f.given && f.value != v {
		return newAPIError(codeInvalid, "dry_run is given more than once, with different values")
	}
	f.given, f.value = true, v
	return nil
}

// setText records a value as a form field or a query parameter spells it:
// true or 1, false or 0, nothing else.
func (f *optionalFlag) setText(s string) error {
	switch s {
	case "true", "1":
		return f.set(true)
	case "false", "0":
		return f.set(false)
	}
	return errDryRunValue
}

// dryRunQuery reads the dry_run query parameters of a request (any number
// of them, all agreeing).
func dryRunQuery(r *http.Request) (optionalFlag, error) {
	var f optionalFlag
	for _, v := range r.URL.Query()["dry_run"] {
		if err := f.setText(v); err != nil {
			return f, err
		}
	}
	return f, nil
}

// parseBulkRequest reads, decodes and validates a bulk restore request. The
// body is decoded as it arrives, never held whole, and hashed on the way
// for Idempotency-Key. Closing the body at the end gives its share of the
// body memory budget back (see bodyBudget).
func parseBulkRequest(w http.ResponseWriter, r *http.Request, lim requestLimits) (bulkRequest, error) {
	defer r.Body.Close()
	query, err := dryRunQuery(r)
	if err != nil {
		return bulkRequest{}, err
	}
	if r.ContentLength > lim.maxBody {
		return bulkRequest{}, bodyTooLarge(lim.maxBody)
	}
	contentType := r.Header.Get("Content-Type")
	hash := sha256.New()
	io.WriteString(hash, contentType+"\n")
	body := &readTracker{r: io.TeeReader(http.MaxBytesReader(w, r.Body, lim.maxBody), hash)}
	raw, err := decodeBulkBody(contentType, body, newNumberSet(lim.maxNumbers, r.ContentLength))
	if err == nil {
		_, err = io.Copy(io.Discard, body) // what the decoder left unread, for the hash
	}
	if body.err != nil {
		return bulkRequest{}, readError(w, body.err, lim.maxBody)
	}
	if err == nil && query.given {
		err = raw.dryRun.set(query.value)
	}
	if err != nil {
		return bulkRequest{}, err
	}
	req, err := validateBulkRequest(raw, lim)
	req.BodyHash = hash.Sum(nil)
	return req, err
}

// readTracker remembers the first error that reading the body met, so that
// a decoder's view of it ("unexpected end of input") does not hide the
// cause (too large, out of memory budget, the client gone).
type readTracker struct {
	r   io.Reader
	err error
}

// Read implements io.Reader.
func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// bodyTooLarge is the 413 of a body over -max-body.
func bodyTooLarge(maxBody int64) error {
	return newAPIError(codeTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBody))
}

// readError turns an error reading the body into the client's answer.
func readError(w http.ResponseWriter, err error, maxBody int64) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return bodyTooLarge(maxBody)
	case errors.Is(err, errBodyMemory):
		return refuseBodyMemory(w)
	case errors.Is(err, errBodyTooSlow):
		return newAPIError(codeTooSlow, fmt.Sprintf("the request body arrived slower than %dKiB a second after its first %s; nothing was done",
			bodyMinRate>>10, bodyGrace))
	default:
		return newAPIError(codeInvalid, "could not read request body: "+err.Error())
	}
}

// decodeBulkBody decodes a JSON, form or plain-text body as it is read,
// gathering its numbers into the set given.
// Without a Content-Type, a body that starts with '{' is JSON and anything
// else a form.
func decodeBulkBody(contentType string, body io.Reader, numbers *numberSet) (rawBulkRequest, error) {
	br := bufio.NewReader(body)
	mediaType := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return rawBulkRequest{}, newAPIError(codeUnsupportedMedia, "malformed Content-Type: "+contentType)
		}
		mediaType = mt
	} else if skipBlanks(br) == '{' {
		mediaType = "application/json"
	} else {
		mediaType = "application/x-www-form-urlencoded"
	}
	d := &bulkDecoding{raw: rawBulkRequest{numbers: numbers}, seen: map[string]bool{}}
	var err error
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		err = d.decodeJSON(br)
	case mediaType == "application/x-www-form-urlencoded":
		err = d.decodeForm(br, contentType != "")
	case mediaType == "text/plain":
		err = d.decodeText(br)
	default:
		return rawBulkRequest{}, newAPIError(codeUnsupportedMedia,
			"Content-Type must be application/json, application/x-www-form-urlencoded or text/plain, not "+mediaType)
	}
	if err != nil {
		return rawBulkRequest{}, err
	}
	for _, text := range d.texts {
		d.raw.numbers.addText(text)
	}
	return d.raw, nil
}

// skipBlanks reads past leading blanks and returns the first other byte,
// unread; 0 at the end of the body.
func skipBlanks(br *bufio.Reader) byte {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0
		}
		if !isBlank(b) {
			br.UnreadByte()
			return b
		}
	}
}

// isBlank reports whether b is JSON whitespace (the blanks a body may start
// with, and that may surround the lines of a list of numbers).
func isBlank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r'
}

// numberSet gathers a request's numbers as they are decoded, in input
// order: trimmed, blanks skipped, duplicates dropped (first kept), invalid
// ones counted and the first maxInvalidListed of them kept. Past limit
// unique numbers it lets go of them and keeps counting only the invalid
// ones (the request will be refused as too large either way), so that a
// body costs memory by the limit, not by its size.
type numberSet struct {
	limit        int
	unique       numberList
	seen         map[uint64]struct{} // of unique, packed
	overLimit    bool
	invalid      []string
	invalidCount int
}

// newNumberSet is an empty set that keeps at most limit numbers, sized for
// a body of bodyLength bytes (when known, else -1).
func newNumberSet(limit int, bodyLength int64) *numberSet {
	size := 0
	if bodyLength > 0 {
		// A number takes at least 8 bytes of a body (7 digits and a
		// separator); beyond a first table the set grows as numbers come,
		// so a large body declared does not reserve memory up front.
		size = int(min(bodyLength/8, int64(limit), 1<<16))
	}
	return &numberSet{limit: limit, seen: make(map[uint64]struct{}, size), unique: make(numberList, 0, size)}
}

// add adds one entry of numbers.
func (s *numberSet) add(n string) {
	n = strings.TrimSpace(n)
	switch {
	case n == "":
	case !validNumber(n):
		s.invalidCount++
		if len(s.invalid) < maxInvalidListed {
			s.invalid = append(s.invalid, n)
		}
	case s.overLimit:
	case len(s.unique) == s.limit:
		if _, dup := s.seen[packNumber(n)]; !dup {
			s.overLimit = true
			s.unique, s.seen = nil, nil
		}
	default:
		p := packNumber(n)
		if _, dup := s.seen[p]; !dup {
			s.seen[p] = struct{}{}
			s.unique = append(s.unique, p)
		}
	}
}

// addLine adds one line of numbers_text; a carriage return anywhere in it
// is dropped.
func (s *numberSet) addLine(line []byte) {
	if bytes.IndexByte(line, '\r') >= 0 {
		line = bytes.ReplaceAll(line, []byte("\r"), nil)
	}
	if line = bytes.TrimSpace(line); len(line) > 0 {
		s.add(string(line))
	}
}

// addText adds every line of a numbers_text value.
func (s *numberSet) addText(text string) {
	for line := range strings.SplitSeq(text, "\n") {
		s.add(strings.ReplaceAll(line, "\r", ""))
	}
}

// validNumber reports whether s is 7 to 15 ASCII digits.
func validNumber(s string) bool {
	if len(s) < 7 || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validateBulkRequest applies the contract's rules to what the decoding
// gathered (numbers first, then the lines of numbers_text, trimmed, blanks
// skipped, duplicates dropped): any invalid number fails the request, then
// the count and the webhook URL are checked.
func validateBulkRequest(raw rawBulkRequest, lim requestLimits) (bulkRequest, error) {
	set := raw.numbers
	if set.invalidCount > 0 {
		e := newAPIError(codeInvalid, fmt.Sprintf("%d invalid number(s): a number is 7 to 15 digits", set.invalidCount))
		e.invalidNumbers = set.invalid
		return bulkRequest{}, e
	}
	if len(set.unique) == 0 && !set.overLimit {
		return bulkRequest{}, newAPIError(codeInvalid, "no numbers given: send numbers (an array) or numbers_text (one number a line)")
	}
	if set.overLimit || len(set.unique) > lim.maxNumbers {
		return bulkRequest{}, newAPIError(codeTooLarge,
			fmt.Sprintf("too many numbers: more than %d unique numbers given, at most %d per request", lim.maxNumbers, lim.maxNumbers))
	}
	if raw.webhookURL != "" {
		if err := checkWebhookURL(raw.webhookURL, lim.allowPrivate); err != nil {
			return bulkRequest{}, newAPIError(codeInvalid, err.Error())
		}
	}
	return bulkRequest{Numbers: set.unique, WebhookURL: raw.webhookURL, DryRun: raw.dryRun.value}, nil
}

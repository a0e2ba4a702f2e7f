package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxInvalidListed caps the invalid_numbers list of a 400.
const maxInvalidListed = 50

// bulkRequest is a validated POST /v3/bulk_restore.
type bulkRequest struct {
	Numbers    []string // unique, in input order
	WebhookURL string   // empty when none
	BodyHash   []byte   // SHA-256 of Content-Type and body, for Idempotency-Key
}

// requestLimits are the knobs request parsing obeys.
type requestLimits struct {
	maxBody      int64
	maxNumbers   int
	allowPrivate bool // webhook URLs may name private addresses
}

// rawBulkRequest is the request before validation, whatever its encoding.
type rawBulkRequest struct {
	numbers     []string
	numbersText string
	webhookURL  string
}

// parseBulkRequest reads, decodes and validates a bulk restore request.
func parseBulkRequest(w http.ResponseWriter, r *http.Request, lim requestLimits) (bulkRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lim.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return bulkRequest{}, newAPIError(codeTooLarge, fmt.Sprintf("request body is larger than %d bytes", lim.maxBody))
		}
		return bulkRequest{}, newAPIError(codeInvalid, "could not read request body: "+err.Error())
	}
	raw, err := decodeBulkBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return bulkRequest{}, err
	}
	req, err := validateBulkRequest(raw, lim)
	h := sha256.New()
	h.Write([]byte(r.Header.Get("Content-Type") + "\n"))
	h.Write(body)
	req.BodyHash = h.Sum(nil)
	return req, err
}

// decodeBulkBody decodes a JSON, form or plain-text body. Without a
// Content-Type, a body that starts with '{' is JSON and anything else a form.
func decodeBulkBody(contentType string, body []byte) (rawBulkRequest, error) {
	mediaType := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return rawBulkRequest{}, newAPIError(codeUnsupportedMedia, "malformed Content-Type: "+contentType)
		}
		mediaType = mt
	} else if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		mediaType = "application/json"
	} else {
		mediaType = "application/x-www-form-urlencoded"
	}
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		return decodeJSONBody(body)
	case mediaType == "application/x-www-form-urlencoded":
		return decodeFormBody(body)
	case mediaType == "text/plain":
		return rawBulkRequest{numbersText: string(body)}, nil
	default:
		return rawBulkRequest{}, newAPIError(codeUnsupportedMedia,
			"Content-Type must be application/json, application/x-www-form-urlencoded or text/plain, not "+mediaType)
	}
}

// decodeJSONBody decodes the JSON form, with a precise message for every
// way it can be wrong.
func decodeJSONBody(body []byte) (rawBulkRequest, error) {
	var doc struct {
		Numbers     json.RawMessage `json:"numbers"`
		NumbersText json.RawMessage `json:"numbers_text"`
		WebhookURL  json.RawMessage `json:"webhook_url"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return rawBulkRequest{}, newAPIError(codeInvalid, "request body is empty: send a JSON object with numbers or numbers_text")
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return rawBulkRequest{}, newAPIError(codeInvalid, describeJSONError(err))
	}
	var raw rawBulkRequest
	if isJSONValue(doc.Numbers) && !bytes.Contains(doc.Numbers, []byte("null")) &&
		json.Unmarshal(doc.Numbers, &raw.numbers) == nil {
		// The common case, decoded in one pass.
	} else if isJSONValue(doc.Numbers) {
		// Decode item by item to say which one is wrong.
		raw.numbers = nil
		var items []json.RawMessage
		if err := json.Unmarshal(doc.Numbers, &items); err != nil {
			return raw, newAPIError(codeInvalid, "numbers must be an array of strings")
		}
		for i, item := range items {
			var s string
			if string(item) == "null" || json.Unmarshal(item, &s) != nil {
				return raw, newAPIError(codeInvalid, fmt.Sprintf("numbers[%d] must be a string of digits, not %s", i, item))
			}
			raw.numbers = append(raw.numbers, s)
		}
	}
	if isJSONValue(doc.NumbersText) {
		if err := json.Unmarshal(doc.NumbersText, &raw.numbersText); err != nil {
			return raw, newAPIError(codeInvalid, "numbers_text must be a string")
		}
	}
	if isJSONValue(doc.WebhookURL) {
		if err := json.Unmarshal(doc.WebhookURL, &raw.webhookURL); err != nil {
			return raw, newAPIError(codeInvalid, "webhook_url must be a string")
		}
	}
	return raw, nil
}

// isJSONValue reports whether a field was present and not null.
func isJSONValue(m json.RawMessage) bool {
	return len(m) > 0 && string(m) != "null"
}

// describeJSONError turns a decoding error into a message for the client.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return "request body must be a JSON object, not " + typeErr.Value
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	default:
		return "malformed JSON: " + err.Error()
	}
}

// decodeFormBody decodes an application/x-www-form-urlencoded body;
// numbers may repeat (also as numbers[]).
func decodeFormBody(body []byte) (rawBulkRequest, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return rawBulkRequest{}, newAPIError(codeInvalid, "malformed form body: "+err.Error())
	}
	raw := rawBulkRequest{
		numbers:     append(values["numbers"], values["numbers[]"]...),
		numbersText: strings.Join(values["numbers_text"], "\n"),
		webhookURL:  values.Get("webhook_url"),
	}
	return raw, nil
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

// splitNumbersText splits numbers_text into trimmed, non-blank lines.
func splitNumbersText(text string) []string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(strings.ReplaceAll(line, "\r", ""))
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// validateBulkRequest applies the contract's rules: join numbers and
// numbers_text, trim, skip blanks, reject anything but 7-15 digits, drop
// duplicates (first kept), then check the count and the webhook URL.
func validateBulkRequest(raw rawBulkRequest, lim requestLimits) (bulkRequest, error) {
	var all []string
	for _, n := range raw.numbers {
		if n = strings.TrimSpace(n); n != "" {
			all = append(all, n)
		}
	}
	all = append(all, splitNumbersText(raw.numbersText)...)

	var invalid []string
	invalidCount := 0
	seen := make(map[string]struct{}, len(all))
	unique := make([]string, 0, len(all))
	for _, n := range all {
		if !validNumber(n) {
			invalidCount++
			if len(invalid) < maxInvalidListed {
				invalid = append(invalid, n)
			}
			continue
		}
		if _, dup := seen[n]; !dup {
			seen[n] = struct{}{}
			unique = append(unique, n)
		}
	}
	if invalidCount > 0 {
		e := newAPIError(codeInvalid, fmt.Sprintf("%d invalid number(s): a number is 7 to 15 digits", invalidCount))
		e.invalidNumbers = invalid
		return bulkRequest{}, e
	}
	if len(unique) == 0 {
		return bulkRequest{}, newAPIError(codeInvalid, "no numbers given: send numbers (an array) or numbers_text (one number a line)")
	}
	if len(unique) > lim.maxNumbers {
		return bulkRequest{}, newAPIError(codeTooLarge,
			fmt.Sprintf("too many numbers: %d given, at most %d per request", len(unique), lim.maxNumbers))
	}
	if raw.webhookURL != "" {
		if err := checkWebhookURL(raw.webhookURL, lim.allowPrivate); err != nil {
			return bulkRequest{}, newAPIError(codeInvalid, err.Error())
		}
	}
	return bulkRequest{Numbers: unique, WebhookURL: raw.webhookURL}, nil
}

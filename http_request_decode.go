package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// bulkField is one field of a bulk restore request: how a JSON body and a
// form set it.
type bulkField struct {
	name      string
	formAlias string // another name a form may use
	json      func(d *bulkDecoding, dec *json.Decoder) error
	form      func(d *bulkDecoding, value string) error
}

// bulkFields is the one list of the fields a bulk restore request may
// carry. A JSON body with any other field is refused, naming the closest
// of these; a form's other fields are ignored.
var bulkFields = []bulkField{
	{name: "numbers", formAlias: "numbers[]", json: (*bulkDecoding).jsonNumbers,
		form: func(d *bulkDecoding, v string) error { d.raw.numbers.add(v); return nil }},
	{name: "numbers_text", json: (*bulkDecoding).jsonNumbersText,
		form: func(d *bulkDecoding, v string) error { d.texts = append(d.texts, v); return nil }},
	{name: "webhook_url", json: (*bulkDecoding).jsonWebhookURL,
		form: func(d *bulkDecoding, v string) error {
			if !d.seen["webhook_url"] {
				d.raw.webhookURL = v // the first one, as url.Values.Get
			}
			return nil
		}},
	{name: "dry_run", json: (*bulkDecoding).jsonDryRun,
		form: func(d *bulkDecoding, v string) error { return d.raw.dryRun.setText(v) }},
}

// bulkDecoding is a request body being decoded.
type bulkDecoding struct {
	raw   rawBulkRequest
	texts []string        // numbers_text values: their lines follow the numbers
	seen  map[string]bool // fields met so far
}

// decodeJSON decodes a JSON object from the stream, field by field, each
// number straight into the set, with a precise message for every way the
// body can be wrong.
func (d *bulkDecoding) decodeJSON(r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return newAPIError(codeInvalid, "request body is empty: send a JSON object with numbers or numbers_text")
	}
	if err != nil {
		return jsonError(err)
	}
	if tok != json.Delim('{') {
		return newAPIError(codeInvalid, "request body must be a JSON object, not "+jsonKind(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		name, _ := tok.(string) // inside an object the decoder yields keys as strings
		f, ok := jsonField(name)
		if !ok {
			return unknownFieldError(name, "the JSON body")
		}
		if d.seen[f.name] {
			return newAPIError(codeInvalid, f.name+" is given twice in the JSON body")
		}
		d.seen[f.name] = true
		if err := f.json(d, dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return jsonError(err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonError(err)
		}
		return newAPIError(codeInvalid, "malformed JSON: "+jsonKind(tok)+" after the object")
	}
	return nil
}

// jsonField finds a field by its JSON name; like encoding/json, the case
// of the name does not matter.
func jsonField(name string) (bulkField, bool) {
	for _, f := range bulkFields {
		if strings.EqualFold(f.name, name) {
			return f, true
		}
	}
	return bulkField{}, false
}

// jsonNumbers decodes the numbers array one element at a time.
func (d *bulkDecoding) jsonNumbers(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if tok == nil {
		return nil // null: absent
	}
	if tok != json.Delim('[') {
		return newAPIError(codeInvalid, "numbers must be an array of strings")
	}
	for i := 0; dec.More(); i++ {
		s := notDecoded
		err := dec.Decode(&s)
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return newAPIError(codeInvalid, fmt.Sprintf("numbers[%d] must be a string of digits, not %s", i, withArticle(typeErr.Value)))
		case err != nil:
			return jsonError(err)
		case s == notDecoded:
			return newAPIError(codeInvalid, fmt.Sprintf("numbers[%d] must be a string of digits, not null", i))
		}
		d.raw.numbers.add(s)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return jsonError(err)
	}
	return nil
}

// notDecoded is what no JSON string decodes to (it is not UTF-8, and the
// decoder makes every string UTF-8): a string still holding it after a
// decode was given null.
const notDecoded = "\xff"

// withArticle is a JSON kind as a message names it: "a number", "an array".
func withArticle(kind string) string {
	if kind == "array" || kind == "object" {
		return "an " + kind
	}
	return "a " + kind
}

// jsonNumbersText decodes numbers_text.
func (d *bulkDecoding) jsonNumbersText(dec *json.Decoder) error {
	s, err := jsonString(dec, "numbers_text")
	if s != "" {
		d.texts = append(d.texts, s)
	}
	return err
}

// jsonWebhookURL decodes webhook_url.
func (d *bulkDecoding) jsonWebhookURL(dec *json.Decoder) (err error) {
	d.raw.webhookURL, err = jsonString(dec, "webhook_url")
	return err
}

// jsonDryRun decodes dry_run: true or false, 1 or 0 (as numbers or
// strings), or null (absent).
func (d *bulkDecoding) jsonDryRun(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	switch v := tok.(type) {
	case nil:
		return nil
	case bool:
		return d.raw.dryRun.set(v)
	case json.Number:
		return d.raw.dryRun.setText(string(v))
	case string:
		return d.raw.dryRun.setText(v)
	}
	return errDryRunValue
}

// jsonString decodes a field that must be a string or null (absent).
func jsonString(dec *json.Decoder, name string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", jsonError(err)
	}
	switch v := tok.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", newAPIError(codeInvalid, name+" must be a string")
}

// jsonKind names the kind of JSON value a token starts.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case json.Number:
		return "number"
	default:
		return "bool"
	}
}

// jsonError turns a decoding error into a message for the client.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return newAPIError(codeInvalid, fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return newAPIError(codeInvalid, "malformed JSON: unexpected end of input")
	default:
		return newAPIError(codeInvalid, "malformed JSON: "+err.Error())
	}
}

// repeatedJSONKey returns the first key at the top of a JSON object that
// repeats an earlier one in any case, or "" if none does (or if body is no
// object: that is the decoder's error to give). encoding/json keeps the
// last of the two without a word, and matches names in any case.
func repeatedJSONKey(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		key, isKey := t.(string)
		if err != nil || !isKey {
			return ""
		}
		if seen[strings.ToLower(key)] {
			return key
		}
		seen[strings.ToLower(key)] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return ""
		}
	}
	return ""
}

// decodeForm decodes an application/x-www-form-urlencoded body one
// name=value pair at a time; numbers may repeat (also as numbers[]). When
// no field of a request is found, it says what the body looks like
// instead: JSON, or lines of numbers, sent as a form (labelled says whether
// the client named the form type or sent no Content-Type at all).
func (d *bulkDecoding) decodeForm(br *bufio.Reader, labelled bool) error {
	pairs, unknown := 0, ""
	var looksJSON, looksLikeLines bool
	for {
		pair, err := br.ReadBytes('&')
		if err != nil && err != io.EOF {
			return err
		}
		if pair = bytes.TrimSuffix(pair, []byte("&")); len(pair) > 0 {
			if pairs == 0 {
				start := bytes.TrimLeft(pair, " \t\r\n")
				looksJSON = len(start) > 0 && (start[0] == '{' || start[0] == '[')
				looksLikeLines = digitsAndBlanks(pair)
			}
			pairs++
			if err := d.formPair(pair, &unknown); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(d.seen) > 0 {
		return nil
	}
	sent := "as a form (Content-Type: application/x-www-form-urlencoded, which curl -d and --data-binary send unless told otherwise)"
	if !labelled {
		sent = "without a Content-Type, so it was read as a form"
	}
	switch {
	case looksJSON:
		return newAPIError(codeInvalid, "the body looks like JSON but was sent "+sent+
			"; add -H 'Content-Type: application/json'")
	case pairs == 1 && looksLikeLines:
		return newAPIError(codeInvalid, "the body looks like a list of numbers but was sent "+sent+
			"; add -H 'Content-Type: text/plain' (one number a line), or send them as the form field numbers_text")
	case unknown != "":
		e := unknownFieldError(unknown, "the form")
		e.message = "no numbers given: " + e.message
		return e
	}
	return nil
}

// formPair decodes one name=value pair of a form, as url.ParseQuery would.
// The first name that is no field of a request is kept in unknown.
func (d *bulkDecoding) formPair(pair []byte, unknown *string) error {
	if bytes.IndexByte(pair, ';') >= 0 {
		return newAPIError(codeInvalid, "malformed form body: invalid semicolon separator in query")
	}
	rawName, rawValue, _ := bytes.Cut(pair, []byte("="))
	name, err := url.QueryUnescape(string(rawName))
	if err != nil {
		return newAPIError(codeInvalid, "malformed form body: "+err.Error())
	}
	value, err := url.QueryUnescape(string(rawValue))
	if err != nil {
		return newAPIError(codeInvalid, "malformed form body: "+err.Error())
	}
	for _, f := range bulkFields {
		if name == f.name || (name == f.formAlias && name != "") {
			err := f.form(d, value)
			d.seen[f.name] = true
			return err
		}
	}
	if *unknown == "" {
		*unknown = name
	}
	return nil
}

// digitsAndBlanks reports whether b holds digits and nothing but blanks
// besides.
func digitsAndBlanks(b []byte) bool {
	digits := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case !isBlank(c):
			return false
		}
	}
	return digits
}

// decodeText decodes a text/plain body: one number a line, read a line at
// a time.
func (d *bulkDecoding) decodeText(br *bufio.Reader) error {
	var long []byte // a line longer than the reader's buffer, so far
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line, long = append(long, chunk...), nil
		}
		d.raw.numbers.addLine(bytes.TrimSuffix(line, []byte("\n")))
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// unknownFieldError refuses a field that is not in bulkFields, suggesting
// the closest one.
func unknownFieldError(name, where string) *apiError {
	var names []string
	for _, f := range bulkFields {
		names = append(names, f.name)
	}
	msg := fmt.Sprintf("unknown field %q in %s", clipQuote(name), where)
	if near := closestField(name); near != "" {
		msg += fmt.Sprintf(`; did you mean "%s"?`, near)
	}
	return newAPIError(codeInvalid, msg+" (the fields are "+strings.Join(names, ", ")+")")
}

// closestField is the field a mistyped name most likely meant: within two
// edits, or one name containing the other; empty when none is close.
func closestField(name string) string {
	name = strings.ReplaceAll(strings.ToLower(clipQuote(name)), "-", "_")
	best, bestDist := "", 0
	for _, f := range bulkFields {
		d := editDistance(name, f.name)
		close := d <= 2 || (len(name) >= 3 && (strings.Contains(f.name, name) || strings.Contains(name, f.name)))
		if close && (best == "" || d < bestDist) {
			best, bestDist = f.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// clipQuote shortens what a client sent to quote it in a message.
func clipQuote(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

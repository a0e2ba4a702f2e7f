package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// reqDefaultLimits are the serve defaults: 4 MiB, 10000 numbers, public
// webhooks only.
var reqDefaultLimits = requestLimits{maxBody: 4 << 20, maxNumbers: 10000}

// reqParse runs parseBulkRequest on a body sent with the given Content-Type
// (none when empty).
func reqParse(t *testing.T, contentType, body string, lim requestLimits) (bulkRequest, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v3/bulk_restore", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return parseBulkRequest(httptest.NewRecorder(), r, lim)
}

// reqWantError checks that err is an apiError answered with the given HTTP
// status and returns it.
func reqWantError(t *testing.T, err error, status int) *apiError {
	t.Helper()
	if err == nil {
		t.Fatalf("err=nil, want an error answered with %d", status)
	}
	var e *apiError
	if !errors.As(err, &e) {
		t.Fatalf("err=%v (%T), want an *apiError", err, err)
	}
	if got := httpStatus[e.code]; got != status {
		t.Fatalf("status=%d, want %d (message %q)", got, status, e.message)
	}
	return e
}

// reqRaw is a decoded request of these numbers and numbers_text.
func reqRaw(numbers []string, text string) rawBulkRequest {
	raw := rawBulkRequest{numbers: newNumberSet(reqDefaultLimits.maxNumbers, -1)}
	for _, n := range numbers {
		raw.numbers.add(n)
	}
	raw.numbers.addText(text)
	return raw
}

// reqRawHook is a decoded request of these numbers and a webhook URL.
func reqRawHook(numbers []string, webhookURL string) rawBulkRequest {
	raw := reqRaw(numbers, "")
	raw.webhookURL = webhookURL
	return raw
}

// reqNums is n numbers from 15551230100 on, as strings.
func reqNums(n int) []string { return seqNumbers(15551230100, n) }

func TestParseBulkRequestAcceptsValidBodies(t *testing.T) {
	const (
		a, b, c = "15551230100", "15551230101", "15551230102"
		hook    = "https://client.example.com/restore-hook"
	)
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []string
		wantHook    string
	}{
		{"a JSON body with numbers keeps their order", "application/json",
			`{"numbers":["` + c + `","` + a + `","` + b + `"]}`, []string{c, a, b}, ""},
		{"a JSON body with numbers_text is split on newlines", "application/json",
			`{"numbers_text":"` + a + `\n` + b + `"}`, []string{a, b}, ""},
		{"numbers and numbers_text are joined with numbers first", "application/json",
			`{"numbers_text":"` + c + `","numbers":["` + a + `","` + b + `"]}`, []string{a, b, c}, ""},
		{"carriage returns are dropped from numbers_text", "application/json",
			`{"numbers_text":"` + a + `\r\n` + b + `\r\n"}`, []string{a, b}, ""},
		{"a carriage return inside a line is dropped", "application/json",
			`{"numbers_text":"15551\r230100"}`, []string{a}, ""},
		{"surrounding blanks are trimmed from numbers_text lines", "application/json",
			`{"numbers_text":"  ` + a + `\t\n\t ` + b + `  "}`, []string{a, b}, ""},
		{"surrounding blanks are trimmed from numbers entries", "application/json",
			`{"numbers":[" ` + a + ` ","\t` + b + `"]}`, []string{a, b}, ""},
		{"blank lines of numbers_text are skipped", "application/json",
			`{"numbers_text":"\n\n` + a + `\n   \n\r\n` + b + `\n\n"}`, []string{a, b}, ""},
		{"blank entries of numbers are skipped", "application/json",
			`{"numbers":["", "  ", "` + a + `"]}`, []string{a}, ""},
		{"duplicates are dropped keeping the first occurrence", "application/json",
			`{"numbers":["` + b + `","` + a + `","` + b + `"],"numbers_text":"` + a + `\n` + c + `\n` + b + `"}`, []string{b, a, c}, ""},
		{"a duplicate that differs only in blanks is still a duplicate", "application/json",
			`{"numbers":["` + a + `"],"numbers_text":"  ` + a + `  "}`, []string{a}, ""},
		{"a 7-digit number is valid", "application/json", `{"numbers":["1234567"]}`, []string{"1234567"}, ""},
		{"a 15-digit number is valid", "application/json", `{"numbers":["123456789012345"]}`, []string{"123456789012345"}, ""},
		{"leading zeros are kept", "application/json", `{"numbers":["0001234"]}`, []string{"0001234"}, ""},
		{"null fields count as absent", "application/json",
			`{"numbers":null,"numbers_text":"` + a + `","webhook_url":null}`, []string{a}, ""},
		{"the case of a JSON field name does not matter, as in encoding/json", "application/json",
			`{"Numbers":["` + a + `"],"NUMBERS_TEXT":"` + b + `"}`, []string{a, b}, ""},
		{"a form ignores fields it does not know", "application/x-www-form-urlencoded",
			"submit=go&numbers=" + a, []string{a}, ""},
		{"a JSON Content-Type with a charset is JSON", "application/json; charset=utf-8",
			`{"numbers":["` + a + `"]}`, []string{a}, ""},
		{"a JSON body carries the webhook_url", "application/json",
			`{"numbers":["` + a + `"],"webhook_url":"` + hook + `"}`, []string{a}, hook},
		{"a form may repeat numbers", "application/x-www-form-urlencoded",
			"numbers=" + a + "&numbers=" + b + "&numbers=" + c, []string{a, b, c}, ""},
		{"a form may repeat numbers[]", "application/x-www-form-urlencoded",
			"numbers[]=" + b + "&numbers[]=" + a, []string{b, a}, ""},
		{"a form numbers_text is split on encoded newlines", "application/x-www-form-urlencoded",
			"numbers_text=" + a + "%0D%0A" + b + "%0A%0A", []string{a, b}, ""},
		{"a form joins numbers before numbers_text whatever the field order", "application/x-www-form-urlencoded",
			"numbers_text=" + c + "&numbers=" + a + "&numbers=" + b, []string{a, b, c}, ""},
		{"a form carries the webhook_url", "application/x-www-form-urlencoded",
			"numbers=" + a + "&webhook_url=" + strings.ReplaceAll(hook, "/", "%2F"), []string{a}, hook},
		{"a form deduplicates too", "application/x-www-form-urlencoded",
			"numbers=" + a + "&numbers_text=" + b + "%0A" + a, []string{a, b}, ""},
		{"a text/plain body is one number a line", "text/plain",
			a + "\r\n\r\n  " + b + "  \r\n", []string{a, b}, ""},
		{"a text/plain body with a charset is read too", "text/plain; charset=utf-8",
			a + "\n", []string{a}, ""},
		{"without Content-Type a body starting with a brace is JSON", "",
			`{"numbers":["` + a + `","` + b + `"]}`, []string{a, b}, ""},
		{"without Content-Type a JSON body may start with blanks", "",
			"\n  \t{\"numbers_text\":\"" + b + "\"}", []string{b}, ""},
		{"without Content-Type anything else is a form", "",
			"numbers=" + a + "&numbers_text=" + b, []string{a, b}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := reqParse(t, tc.contentType, tc.body, reqDefaultLimits)
			if err != nil {
				t.Fatalf("err=%v, want none", err)
			}
			if !reflect.DeepEqual(got.Numbers.strings(), tc.want) {
				t.Fatalf("numbers=%q, want %q", got.Numbers.strings(), tc.want)
			}
			if got.WebhookURL != tc.wantHook {
				t.Fatalf("webhook_url=%q, want %q", got.WebhookURL, tc.wantHook)
			}
		})
	}
}

func TestValidateBulkRequestRejectsInvalidNumbers(t *testing.T) {
	valid := "15551230100"
	tests := []struct {
		name        string
		raw         rawBulkRequest
		wantInvalid []string
	}{
		{"a 6-digit number is invalid", reqRaw([]string{"123456"}, ""), []string{"123456"}},
		{"a 16-digit number is invalid", reqRaw([]string{"1234567890123456"}, ""), []string{"1234567890123456"}},
		{"letters are invalid", reqRaw([]string{"1555123010a"}, ""), []string{"1555123010a"}},
		{"a leading plus is invalid", reqRaw([]string{"+15551230100"}, ""), []string{"+15551230100"}},
		{"dashes are invalid", reqRaw([]string{"1555-123-0100"}, ""), []string{"1555-123-0100"}},
		{"an inner blank is invalid", reqRaw([]string{"1555 1230100"}, ""), []string{"1555 1230100"}},
		{"Arabic-Indic digits are invalid", reqRaw([]string{"١٢٣٤٥٦٧٨"}, ""), []string{"١٢٣٤٥٦٧٨"}},
		{"full-width digits are invalid", reqRaw([]string{"１２３４５６７８"}, ""), []string{"１２３４５６７８"}},
		{"superscript digits are invalid", reqRaw([]string{"¹²³⁴⁵⁶⁷"}, ""), []string{"¹²³⁴⁵⁶⁷"}},
		{"an invalid numbers_text line is invalid", reqRaw(nil, valid+"\nabcdefg"), []string{"abcdefg"}},
		{"one invalid number fails a request of valid ones", reqRaw([]string{valid, "12", "15551230101"}, ""), []string{"12"}},
		{"invalid numbers are listed in input order across both fields",
			reqRaw([]string{"x1", valid, "x2"}, "x3\n"+valid+"\nx4"), []string{"x1", "x2", "x3", "x4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validateBulkRequest(tc.raw, reqDefaultLimits)
			e := reqWantError(t, err, http.StatusBadRequest)
			if !reflect.DeepEqual(e.invalidNumbers, tc.wantInvalid) {
				t.Fatalf("invalid_numbers=%q, want %q", e.invalidNumbers, tc.wantInvalid)
			}
			if got.Numbers != nil {
				t.Fatalf("numbers=%q, want none on a rejected request", got.Numbers.strings())
			}
		})
	}
}

func TestValidateBulkRequestListsAtMost50InvalidNumbersInInputOrder(t *testing.T) {
	var numbers, lines, want []string
	for i := range 60 {
		bad := fmt.Sprintf("bad%03d", i)
		if i%2 == 0 {
			numbers = append(numbers, reqNums(1)[0], bad)
		} else {
			lines = append(lines, bad, "15551230199")
		}
	}
	// numbers come first, then the lines of numbers_text.
	for i := 0; i < 60; i += 2 {
		want = append(want, fmt.Sprintf("bad%03d", i))
	}
	for i := 1; i < 60; i += 2 {
		want = append(want, fmt.Sprintf("bad%03d", i))
	}
	want = want[:50]
	_, err := validateBulkRequest(reqRaw(numbers, strings.Join(lines, "\n")), reqDefaultLimits)
	e := reqWantError(t, err, http.StatusBadRequest)
	if len(e.invalidNumbers) != 50 {
		t.Fatalf("invalid_numbers has %d entries, want 50", len(e.invalidNumbers))
	}
	if !reflect.DeepEqual(e.invalidNumbers, want) {
		t.Fatalf("invalid_numbers=%q, want %q", e.invalidNumbers, want)
	}
	if !strings.Contains(e.message, "60") {
		t.Fatalf("message=%q, want it to count all 60 invalid numbers", e.message)
	}
}

func TestValidateBulkRequestCountLimits(t *testing.T) {
	lim := requestLimits{maxBody: 4 << 20, maxNumbers: 3}
	tests := []struct {
		name       string
		raw        rawBulkRequest
		wantStatus int // 0: accepted
		wantCount  int
	}{
		{"no fields at all is a 400", reqRaw(nil, ""), http.StatusBadRequest, 0},
		{"an empty numbers array is a 400", reqRaw([]string{}, ""), http.StatusBadRequest, 0},
		{"only blank entries is a 400", reqRaw([]string{" ", ""}, "\n \r\n\t\n"), http.StatusBadRequest, 0},
		{"exactly the maximum is accepted", reqRaw(reqNums(3), ""), 0, 3},
		{"one over the maximum is a 413", reqRaw(reqNums(4), ""), http.StatusRequestEntityTooLarge, 0},
		{"over the maximum across both fields is a 413", reqRaw(reqNums(2), "15551230150\n15551230151"), http.StatusRequestEntityTooLarge, 0},
		{"duplicates do not count toward the maximum", reqRaw(append(reqNums(3), reqNums(3)...), ""), 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validateBulkRequest(tc.raw, lim)
			if tc.wantStatus != 0 {
				e := reqWantError(t, err, tc.wantStatus)
				if e.message == "" {
					t.Fatalf("message is empty, want one that explains the %d", tc.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("err=%v, want none", err)
			}
			if len(got.Numbers) != tc.wantCount {
				t.Fatalf("numbers=%d, want %d", len(got.Numbers), tc.wantCount)
			}
		})
	}
}

func TestParseBulkRequestBodySizeLimit(t *testing.T) {
	body := `{"numbers":["15551230100"]}` // 27 bytes
	tests := []struct {
		name       string
		maxBody    int64
		wantStatus int // 0: accepted
	}{
		{"a body of exactly -max-body bytes is read", int64(len(body)), 0},
		{"a body one byte over -max-body is a 413", int64(len(body)) - 1, http.StatusRequestEntityTooLarge},
		{"a body far over -max-body is a 413", 8, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := reqDefaultLimits
			lim.maxBody = tc.maxBody
			_, err := reqParse(t, "application/json", body, lim)
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("err=%v, want none", err)
				}
				return
			}
			reqWantError(t, err, tc.wantStatus)
		})
	}
}

func TestDecodeBulkBodyReportsMalformedJSONAndWrongTypes(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantText []string // the message must contain each
	}{
		{"a truncated object is malformed JSON", `{"numbers": ["15551230100"`, []string{"JSON"}},
		{"garbage is malformed JSON", `{numbers: 1}`, []string{"JSON"}},
		{"trailing data after the object is malformed JSON", `{"numbers":["15551230100"]} x`, []string{"JSON"}},
		{"an empty body is a 400", ``, []string{"empty"}},
		{"numbers as a string names numbers", `{"numbers":"15551230100"}`, []string{"numbers", "array"}},
		{"numbers as an object names numbers", `{"numbers":{"0":"15551230100"}}`, []string{"numbers", "array"}},
		{"numbers with an integer element names the element", `{"numbers":["15551230100",15551230101]}`, []string{"numbers[1]", "string"}},
		{"numbers with a nested array names the element", `{"numbers":[["15551230100"]]}`, []string{"numbers[0]"}},
		{"numbers with a null element names the element", `{"numbers":["15551230100",null]}`, []string{"numbers[1]"}},
		{"numbers with a boolean element names the element", `{"numbers":["15551230100","15551230101",true]}`, []string{"numbers[2]"}},
		{"numbers_text as a number names numbers_text", `{"numbers_text":15551230100}`, []string{"numbers_text", "string"}},
		{"numbers_text as an array names numbers_text", `{"numbers_text":["15551230100"]}`, []string{"numbers_text", "string"}},
		{"webhook_url as a number names webhook_url", `{"numbers":["15551230100"],"webhook_url":42}`, []string{"webhook_url", "string"}},
		{"a top-level array says an object is wanted", `["15551230100"]`, []string{"object"}},
		{"a top-level string says an object is wanted", `"15551230100"`, []string{"object"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeBulkBody("application/json", strings.NewReader(tc.body), newNumberSet(reqDefaultLimits.maxNumbers, -1))
			reqWantMessage(t, reqWantError(t, err, http.StatusBadRequest).message, tc.wantText, nil)
		})
	}
}

func TestDecodeBulkBodyContentTypes(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int      // 0: decoded
		wantNumbers []string // numbers, then the lines of numbers_text
	}{
		{"application/json is decoded as JSON", "application/json", `{"numbers":["15551230100"]}`, 0, []string{"15551230100"}},
		{"a form is decoded as a form", "application/x-www-form-urlencoded", "numbers=15551230100", 0, []string{"15551230100"}},
		{"text/plain is one number a line", "text/plain", "15551230100\n15551230101", 0, []string{"15551230100", "15551230101"}},
		{"no Content-Type and a brace is JSON", "", ` {"numbers":["15551230100"]}`, 0, []string{"15551230100"}},
		{"no Content-Type and no brace is a form", "", "numbers=15551230100", 0, []string{"15551230100"}},
		{"no Content-Type and a broken JSON object is a JSON error", "", `{"numbers":`, http.StatusBadRequest, nil},
		{"application/xml is a 415", "application/xml", "<numbers/>", http.StatusUnsupportedMediaType, nil},
		{"multipart/form-data is a 415", "multipart/form-data; boundary=x", "--x--", http.StatusUnsupportedMediaType, nil},
		{"text/csv is a 415", "text/csv", "15551230100", http.StatusUnsupportedMediaType, nil},
		{"a malformed Content-Type is a 415", "not a media type", "numbers=15551230100", http.StatusUnsupportedMediaType, nil},
		{"a malformed form body is a 400", "application/x-www-form-urlencoded", "numbers=%zz", http.StatusBadRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := decodeBulkBody(tc.contentType, strings.NewReader(tc.body), newNumberSet(reqDefaultLimits.maxNumbers, -1))
			if tc.wantStatus != 0 {
				e := reqWantError(t, err, tc.wantStatus)
				if e.message == "" {
					t.Fatalf("message is empty, want one naming the problem")
				}
				return
			}
			if err != nil {
				t.Fatalf("err=%v, want none", err)
			}
			if !reflect.DeepEqual(raw.numbers.unique.strings(), tc.wantNumbers) {
				t.Fatalf("numbers=%q, want %q", raw.numbers.unique.strings(), tc.wantNumbers)
			}
		})
	}
}

func TestValidateBulkRequestWebhookURL(t *testing.T) {
	long := func(n int) string {
		prefix := "https://client.example.com/"
		return prefix + strings.Repeat("a", n-len(prefix))
	}
	tests := []struct {
		name         string
		url          string
		allowPrivate bool
		wantOK       bool
	}{
		{"an https URL with a host is accepted", "https://client.example.com/restore-hook", false, true},
		{"an http URL with a port and a query is accepted", "http://client.example.com:8080/h?x=1", false, true},
		{"a public literal IPv4 address is accepted", "https://93.184.216.34/hook", false, true},
		{"a public literal IPv6 address is accepted", "https://[2606:4700::1111]/hook", false, true},
		{"a URL of exactly 2048 characters is accepted", long(2048), false, true},
		{"a URL of 2049 characters is refused", long(2049), false, false},
		{"an ftp URL is refused", "ftp://client.example.com/hook", false, false},
		{"a mailto URL is refused", "mailto:ops@client.example.com", false, false},
		{"a javascript URL is refused", "javascript:alert(1)", false, false},
		{"a URL without a scheme is refused", "client.example.com/hook", false, false},
		{"a relative path is refused", "/hook", false, false},
		{"an https URL without a host is refused", "https:///hook", false, false},
		{"a bare scheme is refused", "https://", false, false},
		{"a port without a host is refused", "http://:8080/hook", false, false},
		{"a URL with user and password is refused", "https://user:password@client.example.com/hook", false, false},
		{"a URL with user and password is refused even when private is allowed", "https://user:password@client.example.com/hook", true, false},
		{"loopback IPv4 is refused", "http://127.0.0.1:9/hook", false, false},
		{"loopback IPv6 is refused", "http://[::1]:9/hook", false, false},
		{"IPv4-mapped loopback is refused", "http://[::ffff:127.0.0.1]/hook", false, false},
		{"10/8 is refused", "http://10.1.2.3/hook", false, false},
		{"172.16/12 is refused", "http://172.16.0.1/hook", false, false},
		{"192.168/16 is refused", "http://192.168.1.1/hook", false, false},
		{"link-local metadata address is refused", "http://169.254.169.254/latest", false, false},
		{"CGNAT is refused", "http://100.64.0.1/hook", false, false},
		{"the unspecified address is refused", "http://0.0.0.0/hook", false, false},
		{"multicast is refused", "http://224.0.0.1/hook", false, false},
		{"IPv6 unique-local is refused", "http://[fc00::1]/hook", false, false},
		{"IPv6 link-local is refused", "http://[fe80::1]/hook", false, false},
		{"loopback is accepted when private addresses are allowed", "http://127.0.0.1:9/hook", true, true},
		{"10/8 is accepted when private addresses are allowed", "http://10.1.2.3/hook", true, true},
		{"IPv6 loopback is accepted when private addresses are allowed", "http://[::1]:9/hook", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := reqDefaultLimits
			lim.allowPrivate = tc.allowPrivate
			got, err := validateBulkRequest(reqRawHook([]string{"15551230100"}, tc.url), lim)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("err=%v, want %q accepted", err, tc.url)
				}
				if got.WebhookURL != tc.url {
					t.Fatalf("webhook_url=%q, want %q", got.WebhookURL, tc.url)
				}
				return
			}
			e := reqWantError(t, err, http.StatusBadRequest)
			if !strings.Contains(e.message, "webhook_url") {
				t.Fatalf("message=%q, want it to name webhook_url", e.message)
			}
		})
	}
}

func TestParseBulkRequestRejectsWholeRequestsEndToEnd(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantInvalid []string
	}{
		{"a form with one bad number fails whole", "application/x-www-form-urlencoded",
			"numbers=15551230100&numbers=123456&numbers_text=15551230101%0A1234567890123456", http.StatusBadRequest, []string{"123456", "1234567890123456"}},
		{"a text/plain body with a bad line fails whole", "text/plain", "15551230100\nabc\n", http.StatusBadRequest, []string{"abc"}},
		{"an empty JSON object is a 400", "application/json", "{}", http.StatusBadRequest, nil},
		{"an empty form is a 400", "application/x-www-form-urlencoded", "", http.StatusBadRequest, nil},
		{"a blank text/plain body is a 400", "text/plain", "\r\n \n", http.StatusBadRequest, nil},
		{"a bad webhook_url in a form is a 400", "application/x-www-form-urlencoded",
			"numbers=15551230100&webhook_url=ftp%3A%2F%2Fx.example.com%2F", http.StatusBadRequest, nil},
		{"a private webhook_url is a 400 without allowPrivate", "application/json",
			`{"numbers":["15551230100"],"webhook_url":"http://192.168.0.10/hook"}`, http.StatusBadRequest, nil},
		{"an unsupported Content-Type is a 415", "application/xml", "<x/>", http.StatusUnsupportedMediaType, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reqParse(t, tc.contentType, tc.body, reqDefaultLimits)
			e := reqWantError(t, err, tc.wantStatus)
			if !reflect.DeepEqual(e.invalidNumbers, tc.wantInvalid) {
				t.Fatalf("invalid_numbers=%q, want %q", e.invalidNumbers, tc.wantInvalid)
			}
		})
	}
}

package main

import (
	"net/http"
	"strings"
	"testing"
)

// reqWantMessage checks that a message mentions each of want and none of
// not.
func reqWantMessage(t *testing.T, msg string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("message=%q, want it to contain %q", msg, w)
		}
	}
	for _, n := range not {
		if strings.Contains(msg, n) {
			t.Fatalf("message=%q, want it not to contain %q", msg, n)
		}
	}
}

func TestParseBulkRequestTellsANewcomerWhatWentWrong(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		contentType string
		body        string
		wantText    []string // the message must contain each
		notText     []string // and none of these
	}{
		{"JSON sent with curl -d's form Content-Type says so and how to fix it", form,
			`{"numbers":["15551230100","15551230101"]}`,
			[]string{"looks like JSON", "sent as a form", "-H 'Content-Type: application/json'"}, nil},
		{"JSON with a webhook query string sent as a form is still recognised", form,
			`{"numbers":["15551230100"],"webhook_url":"https://x.example.com/h?a=1&b=2"}`,
			[]string{"looks like JSON", "application/json"}, nil},
		{"a JSON array sent as a form is recognised as JSON", form,
			` ["15551230100"]`, []string{"looks like JSON"}, nil},
		{"lines of digits sent as a form point at text/plain and numbers_text", form,
			"15551230100\n15551230101\n",
			[]string{"looks like a list of numbers", "sent as a form", "Content-Type: text/plain", "numbers_text"}, nil},
		{"digits joined by curl -d's newline stripping point at text/plain", form,
			"1555123010015551230101", []string{"looks like a list of numbers", "text/plain"}, nil},
		{"lines of digits without any Content-Type say it was read as a form", "",
			"15551230100\r\n15551230101\r\n",
			[]string{"looks like a list of numbers", "without a Content-Type", "text/plain"}, []string{"curl -d"}},
		{"an unknown JSON field is named, with the closest field suggested", "application/json",
			`{"number":["15551230100"]}`, []string{`unknown field "number"`, `did you mean "numbers"?`}, nil},
		{"a misspelt numbers_text is named with its suggestion", "application/json",
			`{"numbers_txt":"15551230100"}`, []string{`"numbers_txt"`, `did you mean "numbers_text"?`}, nil},
		{"a hyphen for an underscore is suggested its field", "application/json",
			`{"webhook-url":"https://x.example.com/h","numbers":["15551230100"]}`, []string{`did you mean "webhook_url"?`}, nil},
		{"a part of a field's name suggests the field", "application/json",
			`{"numbers":["15551230100"],"webhook":"https://x.example.com/h"}`, []string{`did you mean "webhook_url"?`}, nil},
		{"an unknown field far from every name lists the fields without guessing", "application/json",
			`{"numbers":["15551230100"],"priority":1}`,
			[]string{`unknown field "priority"`, "numbers, numbers_text, webhook_url"}, []string{"did you mean"}},
		{"an unknown form field is named when the form gives no numbers", form,
			"number=15551230100", []string{"no numbers given", `unknown field "number"`, `did you mean "numbers"?`}, nil},
		{"a field given twice in JSON is refused", "application/json",
			`{"numbers":["15551230100"],"numbers":["15551230101"]}`, []string{"numbers is given twice"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reqParse(t, tc.contentType, tc.body, reqDefaultLimits)
			reqWantMessage(t, reqWantError(t, err, http.StatusBadRequest).message, tc.wantText, tc.notText)
		})
	}
}

func TestParseBulkRequestHintsLeaveGoodFormsAlone(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{"a form whose first field is junk but that has numbers is read", "%7Bx%7D=1&numbers=15551230100", 1},
		{"a form with only numbers_text of digits is read", "numbers_text=15551230100%0A15551230101", 2},
		{"a form with an unknown field and numbers is read", "numbers=15551230100&note=hello", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := reqParse(t, "application/x-www-form-urlencoded", tc.body, reqDefaultLimits)
			if err != nil {
				t.Fatalf("err=%v, want none", err)
			}
			if len(got.Numbers) != tc.want {
				t.Fatalf("numbers=%q, want %d", got.Numbers.strings(), tc.want)
			}
		})
	}
}

func TestCurlDashDWithJSONGetsTheHintOverHTTP(t *testing.T) {
	s := startServer(t, "-dev")
	resp := call(t, http.MethodPost, s.URL+"/v3/bulk_restore", "demo", "demo", `{"numbers":["15551230101"]}`)
	if resp.Status != http.StatusBadRequest {
		t.Fatalf("status=%d, want 400: %s", resp.Status, resp.Raw)
	}
	if msg, _ := resp.Body["message"].(string); !strings.Contains(msg, "-H 'Content-Type: application/json'") {
		t.Fatalf("message=%q, want the Content-Type to add", msg)
	}
}

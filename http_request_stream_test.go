package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// referenceJSONNumbers decodes a JSON body the simple way, whole, with
// encoding/json: the numbers and numbers_text lines gathered as the
// contract says, and whether the body is a valid request.
func referenceJSONNumbers(body []byte) (*numberSet, bool) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var doc struct {
		Numbers     []*string `json:"numbers"`
		NumbersText *string   `json:"numbers_text"`
		WebhookURL  *string   `json:"webhook_url"`
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	set := newNumberSet(1000, -1)
	for _, n := range doc.Numbers {
		if n == nil {
			return nil, false
		}
		set.add(*n)
	}
	if doc.NumbersText != nil {
		set.addText(*doc.NumbersText)
	}
	return set, true
}

// FuzzStreamingJSONMatchesWholeDecoding checks that decoding a JSON body
// as a stream accepts what decoding it whole accepts, with the same
// numbers, and refuses the rest (a field given twice, which encoding/json
// lets the last win, is refused by the stream alone).
func FuzzStreamingJSONMatchesWholeDecoding(f *testing.F) {
	for _, seed := range []string{
		`{"numbers":["15551230100"," 15551230101 ",""],"numbers_text":"15551230102\r\n\n15551230100"}`,
		`{"Numbers":["15551230100"],"webhook_url":null,"numbers_text":null}`,
		`{"numbers":null}`, `{"numbers":[null]}`, `{"numbers":[1]}`, `{"numbers":"1"}`, `{}`, `[]`, `null`, ``,
		`{"numbers":["1555123\u0030100","\ud800"]}`, `{"numbers":["15551230100"]} {}`, `{"numbers":["15551230100"]`,
		`{"numbers":["15551230100"],"numbers":[]}`, `{"numbers_text":"a\nb"}`, "{\"numbers\":[\"\xff1555\"]}",
		`{"numbers":["15551230100"],"extra":1}`, ` {"webhook_url":"http://x.example.com/","numbers":["1234567"]} `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantOK := referenceJSONNumbers(body)
		raw, err := decodeBulkBody("application/json", bytes.NewReader(body), newNumberSet(1000, -1))
		if err != nil && strings.Contains(err.Error(), "is given twice") {
			return
		}
		if (err == nil) != wantOK {
			t.Fatalf("stream err=%v, whole decoding ok=%v, for %q", err, wantOK, body)
		}
		if err != nil {
			return
		}
		got := raw.numbers
		if !reflect.DeepEqual(got.unique, want.unique) || !reflect.DeepEqual(got.invalid, want.invalid) {
			t.Fatalf("stream numbers=%q invalid=%q, whole decoding %q %q, for %q",
				got.unique.strings(), got.invalid, want.unique.strings(), want.invalid, body)
		}
	})
}

func TestParseBulkRequestKeepsMemoryByTheLimitNotTheBody(t *testing.T) {
	many := `{"numbers":["` + strings.Join(seqNumbers(15551230100, 5000), `","`) + `"]}`
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantKept   bool // whether the set still holds numbers at the end
	}{
		{"5,000 numbers over a limit of 10 are a 413, and the set let go of them",
			many, http.StatusRequestEntityTooLarge, false},
		{"an invalid number after the limit is passed is still found and listed",
			strings.TrimSuffix(many, `]}`) + `,"12"]}`, http.StatusBadRequest, false},
		{"10 numbers repeated 500 times fit a limit of 10",
			`{"numbers_text":"` + strings.Repeat(strings.Join(seqNumbers(15551230100, 10), `\n`)+`\n`, 500) + `"}`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := newNumberSet(10, int64(len(tc.body)))
			raw, err := decodeBulkBody("application/json", strings.NewReader(tc.body), set)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if kept := len(set.unique) > 0; kept != tc.wantKept || len(set.unique) > 10 {
				t.Fatalf("set holds %d numbers, want kept=%v and at most 10", len(set.unique), tc.wantKept)
			}
			req, err := validateBulkRequest(raw, requestLimits{maxBody: 1 << 20, maxNumbers: 10})
			if tc.wantStatus == 0 {
				if err != nil || len(req.Numbers) != 10 {
					t.Fatalf("err=%v numbers=%d, want 10 accepted", err, len(req.Numbers))
				}
				return
			}
			e := reqWantError(t, err, tc.wantStatus)
			if tc.wantStatus == http.StatusBadRequest && !reflect.DeepEqual(e.invalidNumbers, []string{"12"}) {
				t.Fatalf("invalid_numbers=%q, want [12]", e.invalidNumbers)
			}
		})
	}
}

func TestParseBulkRequestHashesTheWholeBodyWhateverItsFormat(t *testing.T) {
	tests := []struct {
		name, contentType, body string
	}{
		{"a JSON body with blanks after the object", "application/json", `{"numbers":["15551230100"]}` + "\n\n  \n"},
		{"a form", "application/x-www-form-urlencoded", "numbers=15551230100&numbers=15551230101"},
		{"a text/plain body", "text/plain", "15551230100\n15551230101\n"},
		{"a JSON body sent without a Content-Type", "", `  {"numbers_text":"15551230100"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is hashed with its Content-Type, every byte of it", func(t *testing.T) {
			req, err := reqParse(t, tc.contentType, tc.body, reqDefaultLimits)
			if err != nil {
				t.Fatalf("err=%v, want none", err)
			}
			want := sha256.Sum256([]byte(tc.contentType + "\n" + tc.body))
			if !bytes.Equal(req.BodyHash, want[:]) {
				t.Fatalf("body hash %x, want %x", req.BodyHash, want)
			}
		})
	}
}

package main

import (
	"context"
	"slices"
	"strings"
)

// restoreInput is what the console's restore form sent: pasted numbers, a
// file of numbers, a webhook URL.
type restoreInput struct {
	Text       string
	File       string
	FileName   string // empty when no file came
	WebhookURL string
}

// invalidLine is a line of the restore form that is not a number.
type invalidLine struct {
	Source string // "Text" or the file's name
	Line   int    // from 1
	Text   string
}

// restoreCheck is what the console shows about a restore before (or
// instead of) sending it.
type restoreCheck struct {
	Problem      string // why it cannot be sent, as the API would say; empty when it can
	Invalid      []invalidLine
	InvalidCount int
	Unique       int  // numbers that would be restored
	Duplicates   int  // lines dropped as repeats
	Queued       bool // more than -sync-limit: queued rather than restored at once
	Preview      *restorePreview
}

// restorePreview is a dry run of the form: what restoring it would give
// now, number by number, summed up by outcome.
type restorePreview struct {
	Succeed, Fail, Unknown int
	Outcomes               []previewOutcome
}

// previewOutcome is one outcome of a dry run and the numbers that would
// get it (the first few named).
type previewOutcome struct {
	Status  numberStatus
	Code    int // zero when not known
	Message string
	Count   int
	Numbers []string
}

// previewNumbersShown is how many numbers an outcome of the preview names.
const previewNumbersShown = 5

// previewRestore runs the API's dry run of a checked request for user and
// sums it up by outcome, most common first.
func (a *app) previewRestore(ctx context.Context, user User, req bulkRequest) (*restorePreview, error) {
	res, err := a.dryRun(ctx, user, req.Numbers.strings())
	if err != nil {
		return nil, err
	}
	p := &restorePreview{Succeed: res.SuccessCount, Fail: res.FailureCount, Unknown: res.UnknownCount}
	type outcomeKey struct {
		status  numberStatus
		code    int
		message string
	}
	index := map[outcomeKey]int{}
	for _, r := range res.Results {
		key := outcomeKey{status: r.Status, message: r.Message}
		if r.StatusCode != nil {
			key.code = *r.StatusCode
		}
		i, seen := index[key]
		if !seen {
			i = len(p.Outcomes)
			index[key] = i
			p.Outcomes = append(p.Outcomes, previewOutcome{Status: key.status, Code: key.code, Message: key.message})
		}
		o := &p.Outcomes[i]
		o.Count++
		if len(o.Numbers) < previewNumbersShown {
			o.Numbers = append(o.Numbers, r.Number)
		}
	}
	slices.SortStableFunc(p.Outcomes, func(x, y previewOutcome) int { return y.Count - x.Count })
	return p, nil
}

// checkRestore reads the form's numbers (the text's lines, then the
// file's) through the API's own parsing and rules, noting where each
// invalid line is, and returns the request the API would accept, or in the
// check what it would refuse and the *apiError it would answer.
func (a *app) checkRestore(in restoreInput) (bulkRequest, restoreCheck, error) {
	set := newNumberSet(a.cfg.maxNumbers, int64(len(in.Text)+len(in.File)))
	var check restoreCheck
	valid := 0
	addLines := func(source, text string) {
		for i, line := range strings.Split(text, "\n") {
			before := set.invalidCount
			set.add(strings.ReplaceAll(line, "\r", ""))
			switch {
			case set.invalidCount > before:
				if len(check.Invalid) < maxInvalidListed {
					check.Invalid = append(check.Invalid, invalidLine{Source: source, Line: i + 1, Text: clipQuote(strings.TrimSpace(line))})
				}
			case strings.TrimSpace(line) != "":
				valid++
			}
		}
	}
	addLines("Text", in.Text)
	if in.FileName != "" {
		addLines("File "+in.FileName, in.File)
	}
	check.InvalidCount = set.invalidCount
	req, err := validateBulkRequest(rawBulkRequest{numbers: set, webhookURL: strings.TrimSpace(in.WebhookURL)}, a.limits())
	if err != nil {
		check.Problem = err.Error()
		return bulkRequest{}, check, err
	}
	check.Unique = len(req.Numbers)
	check.Duplicates = valid - check.Unique
	check.Queued = check.Unique > a.cfg.syncLimit
	return req, check, nil
}

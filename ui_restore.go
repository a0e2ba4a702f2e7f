package main

import "strings"

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

package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
)

// resultsCSVHeader is the header row of a job's results as CSV: the
// status body's result fields, with the flags always written (0 or 1).
const resultsCSVHeader = "number,status,status_code,message,attempts,started_at,completed_at,requires_identity_update,needs_registration\n"

// writeResultsCSV writes the header and one row per result to w, a row at
// a time through a buffer of its own, and returns how many rows it wrote.
// Fields are quoted as RFC 4180 says (only those holding a comma, a quote
// or a line break; a quote doubled); a null is an empty field; lines end
// with \n.
func writeResultsCSV(w io.Writer, results resultSource) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(resultsCSVHeader)
	var row []byte
	var times csvTimes
	rows := 0
	err := results(func(r NumberResult) error {
		row = appendResultCSV(row[:0], r, &times)
		rows++
		_, err := bw.Write(row)
		return err
	})
	if err != nil {
		return rows, err
	}
	return rows, bw.Flush()
}

// appendResultCSV appends one result as a CSV row: what the status body
// shows of it, in the order of resultsCSVHeader.
func appendResultCSV(b []byte, r NumberResult, times *csvTimes) []byte {
	b = append(b, r.Number...)
	b = append(b, ',')
	b = append(b, r.Status...)
	b = append(b, ',')
	if r.Status.final() && r.StatusCode != 0 {
		b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	}
	b = append(b, ',')
	if r.Status.final() {
		b = appendCSVField(b, r.Message)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, ',')
	b = times.append(b, r.StartedAt)
	b = append(b, ',')
	b = times.append(b, r.CompletedAt)
	b = append(b, ',', byte('0'+boolInt(r.RequiresIdentityUpdate)), ',', byte('0'+boolInt(r.NeedsRegistration)), '\n')
	return b
}

// appendCSVField appends s, quoted when it holds a comma, a quote or a
// line break, with its quotes doubled.
func appendCSVField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// csvTimes formats timestamps for the rows, remembering the last two it
// formatted: the numbers of a group share their times, so most rows reuse
// them instead of formatting anew.
type csvTimes struct {
	unix [2]int64
	text [2]string
	next int
}

// append appends t as the API writes timestamps (to the second), or
// nothing for the zero time (null).
func (c *csvTimes) append(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	sec := t.Unix()
	for i, u := range c.unix {
		if u == sec && c.text[i] != "" {
			return append(b, c.text[i]...)
		}
	}
	s := t.UTC().Format(timeLayout)
	c.unix[c.next], c.text[c.next] = sec, s
	c.next = 1 - c.next
	return append(b, s...)
}

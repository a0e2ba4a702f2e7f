package main

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// wantsCSV reads whether a status request asks for CSV: format=csv or
// format=json says so outright (any other format is a 400); without it,
// the Accept header decides (see prefersCSV).
func wantsCSV(r *http.Request) (bool, error) {
	q := r.URL.Query()
	if q.Has("format") {
		switch q.Get("format") {
		case "csv":
			return true, nil
		case "json":
			return false, nil
		}
		return false, newAPIError(codeInvalid, "format must be json or csv")
	}
	return prefersCSV(r.Header.Values("Accept")), nil
}

// prefersCSV reports whether an Accept header ranks text/csv above
// application/json: by the q of the most specific range that matches each
// (text/csv, text/*, */*), and on a tie by which range comes first. JSON
// is the default: no header, */*, or a header that names neither.
func prefersCSV(accept []string) bool {
	csvQ, csvAt := acceptQ(accept, "text", "csv")
	jsonQ, jsonAt := acceptQ(accept, "application", "json")
	return csvQ > 0 && (csvQ > jsonQ || (csvQ == jsonQ && csvAt < jsonAt))
}

// acceptQ returns the q an Accept header gives to type/sub through its
// most specific matching range, and where that range stands; (0, -1)
// when none matches. Ranges that do not parse are ignored.
func acceptQ(accept []string, typ, sub string) (q float64, at int) {
	best, at := -1, -1
	i := 0
	for _, header := range accept {
		for _, part := range strings.Split(header, ",") {
			i++
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			t, s, _ := strings.Cut(mt, "/")
			specific := -1
			switch {
			case t == typ && s == sub:
				specific = 2
			case t == typ && s == "*":
				specific = 1
			case t == "*" && s == "*":
				specific = 0
			}
			if specific <= best {
				continue
			}
			best, at, q = specific, i, 1
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
					q = 0
				}
			}
		}
	}
	return q, at
}

// flushWriter sends what is written to the client at once, so that a
// large export leaves as it is read.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

// Write implements io.Writer.
func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// writeResultsCSV answers with the results as a CSV attachment, streamed.
// Everything that can fail with an error body has been checked before: a
// failure once rows are going out cannot change the status, so it cuts
// the answer short (the client sees the transfer fail, not a short file
// that looks whole).
func (a *app) writeResultsCSV(w http.ResponseWriter, r *http.Request, job Job, results resultSource) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="bulk_restore_`+job.UUID+`.csv"`)
	w.WriteHeader(http.StatusOK)
	if _, err := writeResultsCSV(flushWriter{w: w, rc: http.NewResponseController(w)}, results); err != nil {
		a.log.Warn("write results as CSV; answer cut short", "job", job.UUID, "err", err)
		panic(http.ErrAbortHandler)
	}
}

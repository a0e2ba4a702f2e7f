package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// output is where results go: standard output, or a temporary file that
// becomes -o only once it is written whole.
type output struct {
	w    io.Writer
	file *os.File // nil for standard output
	dest string
	done bool
}

// openOutput opens the destination of -o ("-" or "" is stdout).
func openOutput(dest string, stdout io.Writer) (*output, error) {
	if dest == "" || dest == "-" {
		return &output{w: stdout}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("%w: -o %s: %v", errUsage, dest, err)
	}
	return &output{w: f, file: f, dest: dest}, nil
}

// commit closes the temporary file and moves it into place.
func (o *output) commit() error {
	if o.file == nil {
		return nil
	}
	if err := o.file.Close(); err != nil {
		return err
	}
	o.done = true
	if err := os.Rename(o.file.Name(), o.dest); err != nil {
		os.Remove(o.file.Name())
		return err
	}
	return nil
}

// abort removes the temporary file unless it was committed.
func (o *output) abort() {
	if o.file != nil && !o.done {
		o.file.Close()
		os.Remove(o.file.Name())
	}
}

// registerOutputFlags adds -o and -format, the flags that say where and
// how results are written, to fs.
func registerOutputFlags(fs *flag.FlagSet, out, format *string) {
	fs.StringVar(out, "o", "", "write results to this file (.csv or .json), or - for standard output")
	fs.StringVar(format, "format", "", "results format, csv or json (default: from -o's extension, else csv)")
}

// resultFormat checks -format, or picks it from -o's extension.
func resultFormat(out, format string) (string, error) {
	switch {
	case format == "" && strings.EqualFold(filepath.Ext(out), ".json"):
		return "json", nil
	case format == "":
		return "csv", nil
	case format != "csv" && format != "json":
		return "", fmt.Errorf("%w: -format must be csv or json", errUsage)
	}
	return format, nil
}

// resultColumnsCSV is the CSV header of the results the client writes
// (submit's, whose rows may come from several jobs); status -o FILE.csv
// writes the server's CSV instead (resultsCSVHeader), a job at a time.
var resultColumnsCSV = []string{"number", "status", "status_code", "message", "requires_identity_update", "needs_registration", "attempts", "job_uuid"}

// resultTableRow is the layout of one line of the results table.
const resultTableRow = "%-15s  %-10s  %-4s  %s\n"

// resultWriter writes results as CSV rows, as a JSON array, or as a table
// for people, streaming.
type resultWriter struct {
	w      io.Writer
	format string      // csv, json or table
	csv    *csv.Writer // for csv
	count  int
	failed error
}

// newResultWriter starts writing results in a format: csv, json or table.
func newResultWriter(w io.Writer, format string) *resultWriter {
	rw := &resultWriter{w: w, format: format}
	switch format {
	case "csv":
		rw.csv = csv.NewWriter(w)
		rw.failed = rw.csv.Write(resultColumnsCSV)
	case "json":
		_, rw.failed = io.WriteString(w, "[")
	default:
		_, rw.failed = fmt.Fprintf(w, resultTableRow, "NUMBER", "STATUS", "CODE", "MESSAGE")
	}
	return rw
}

// optInt writes a number that may be null; null is empty.
func optInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

// write adds one result.
func (rw *resultWriter) write(r clientResult) error {
	if rw.failed != nil {
		return rw.failed
	}
	rw.count++
	msg := ""
	if r.Message != nil {
		msg = *r.Message
	}
	switch rw.format {
	case "csv":
		rw.failed = rw.csv.Write([]string{r.Number, string(r.Status), optInt(r.StatusCode), msg,
			strconv.Itoa(r.RequiresIdentityUpdate), strconv.Itoa(r.NeedsRegistration), optInt(r.Attempts), r.JobUUID})
	case "json":
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		sep := ",\n"
		if rw.count == 1 {
			sep = "\n"
		}
		_, rw.failed = io.WriteString(rw.w, sep+string(b))
	default:
		var notes []string
		if r.RequiresIdentityUpdate == 1 {
			notes = append(notes, "requires identity update")
		}
		if r.NeedsRegistration == 1 {
			notes = append(notes, "needs registration")
		}
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, ", ") + ")"
		}
		_, rw.failed = fmt.Fprintf(rw.w, resultTableRow, r.Number, r.Status, optInt(r.StatusCode), msg)
	}
	return rw.failed
}

// close ends the CSV or the JSON array.
func (rw *resultWriter) close() error {
	if rw.failed != nil {
		return rw.failed
	}
	switch rw.format {
	case "csv":
		rw.csv.Flush()
		return rw.csv.Error()
	case "json":
		end := "\n]\n"
		if rw.count == 0 {
			end = "]\n"
		}
		_, err := io.WriteString(rw.w, end)
		return err
	}
	return nil
}

// csvRowCounter passes CSV through to w and counts its records: the line
// ends outside quotes (a quoted field may hold line breaks; a doubled
// quote turns quoting off and on again).
type csvRowCounter struct {
	w      io.Writer
	lines  int
	quoted bool
}

// Write implements io.Writer.
func (c *csvRowCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch {
		case b == '"':
			c.quoted = !c.quoted
		case b == '\n' && !c.quoted:
			c.lines++
		}
	}
	return c.w.Write(p)
}

// records is how many rows passed, the header left out.
func (c *csvRowCounter) records() int { return max(0, c.lines-1) }

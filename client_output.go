package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
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

// resultColumnsCSV is the CSV header of the results.
var resultColumnsCSV = []string{"number", "status", "status_code", "message", "requires_identity_update", "needs_registration", "attempts", "job_uuid"}

// resultWriter writes results as CSV rows or as a JSON array, streaming.
type resultWriter struct {
	w      io.Writer
	csv    *csv.Writer // nil for JSON
	count  int
	failed error
}

// newResultWriter starts writing results in a format, csv or json.
func newResultWriter(w io.Writer, format string) *resultWriter {
	rw := &resultWriter{w: w}
	if format == "csv" {
		rw.csv = csv.NewWriter(w)
		rw.failed = rw.csv.Write(resultColumnsCSV)
	} else {
		_, rw.failed = io.WriteString(w, "[")
	}
	return rw
}

// write adds one result.
func (rw *resultWriter) write(r clientResult) error {
	if rw.failed != nil {
		return rw.failed
	}
	rw.count++
	if rw.csv != nil {
		optInt := func(p *int) string {
			if p == nil {
				return ""
			}
			return strconv.Itoa(*p)
		}
		msg := ""
		if r.Message != nil {
			msg = *r.Message
		}
		rw.failed = rw.csv.Write([]string{r.Number, r.Status, optInt(r.StatusCode), msg,
			strconv.Itoa(r.RequiresIdentityUpdate), strconv.Itoa(r.NeedsRegistration), optInt(r.Attempts), r.JobUUID})
		return rw.failed
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sep := ",\n"
	if rw.count == 1 {
		sep = "\n"
	}
	_, rw.failed = io.WriteString(rw.w, sep+string(b))
	return rw.failed
}

// close ends the CSV or the JSON array.
func (rw *resultWriter) close() error {
	if rw.failed != nil {
		return rw.failed
	}
	if rw.csv != nil {
		rw.csv.Flush()
		return rw.csv.Error()
	}
	end := "\n]\n"
	if rw.count == 0 {
		end = "]\n"
	}
	_, err := io.WriteString(rw.w, end)
	return err
}

package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"
)

// The inventory CSV of `numbers import`, `numbers export` and the admin
// API's inventory endpoints: a header row naming the columns, then one row a
// number. It is read and written one row at a time, so a file of any size
// takes the same memory.

// inventoryColumns are the CSV header's columns, in the order an export
// writes them; number and state are required, the rest optional.
var inventoryColumns = []string{"number", "state", "released_at", "requires_identity_update", "needs_registration"}

// The positions of inventoryColumns.
const (
	colNumber = iota
	colState
	colReleasedAt
	colRequiresIdentityUpdate
	colNeedsRegistration
	colCount // how many there are
)

// csvLineError is a bad line of an inventory CSV: its number (the header is
// line 1) and what is wrong with it, said as `line 3: ...`.
type csvLineError struct {
	Line   int
	Reason string
}

// Error implements error.
func (e *csvLineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// lineErrorf builds a csvLineError.
func lineErrorf(line int, format string, args ...any) error {
	return &csvLineError{Line: line, Reason: fmt.Sprintf(format, args...)}
}

// csvReadError names the line of a CSV syntax error; io.EOF passes as it
// is, and an error of the reader underneath (a body too large, a client
// gone) is kept for errors.As.
func csvReadError(err error) error {
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.As(err, &pe):
		return lineErrorf(pe.Line, "%v", pe.Err)
	default:
		return fmt.Errorf("read CSV: %w", err)
	}
}

// inventoryReader reads an inventory CSV one row at a time.
type inventoryReader struct {
	cr    *csv.Reader
	index [colCount]int // where each column is in a record; -1 when the header lacks it
	width int           // fields of the header
	now   time.Time     // an empty released_at
}

// newInventoryReader reads and checks the header of r.
func newInventoryReader(r io.Reader, now time.Time) (*inventoryReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a wrong count is said here, naming the line
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, lineErrorf(1, "empty file, want a header: %s", strings.Join(inventoryColumns, ","))
	}
	if err != nil {
		return nil, csvReadError(err)
	}
	ir := &inventoryReader{cr: cr, width: len(header), now: now}
	for c := range ir.index {
		ir.index[c] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		c := slices.Index(inventoryColumns, h)
		switch {
		case c < 0:
			return nil, lineErrorf(1, "unknown column %q, want %s", h, strings.Join(inventoryColumns, ","))
		case ir.index[c] >= 0:
			return nil, lineErrorf(1, "column %q appears twice", h)
		}
		ir.index[c] = i
	}
	for _, c := range []int{colNumber, colState} {
		if ir.index[c] < 0 {
			return nil, lineErrorf(1, "missing column %q", inventoryColumns[c])
		}
	}
	return ir, nil
}

// next reads the next row and returns it with its line; io.EOF after the
// last one.
func (ir *inventoryReader) next() (InventoryRow, int, error) {
	rec, err := ir.cr.Read()
	if err != nil {
		return InventoryRow{}, 0, csvReadError(err)
	}
	line, _ := ir.cr.FieldPos(0)
	if len(rec) > ir.width {
		return InventoryRow{}, line, lineErrorf(line, "%d fields, the header has %d", len(rec), ir.width)
	}
	field := func(c int) string {
		if i := ir.index[c]; i >= 0 && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	row := InventoryRow{Number: field(colNumber), State: field(colState), ReleasedAt: ir.now}
	if !validNumber(row.Number) {
		return row, line, lineErrorf(line, "number %q is not 7 to 15 digits", row.Number)
	}
	switch row.State {
	case "active", "released", "unavailable":
	default:
		return row, line, lineErrorf(line, "state %q is not active, released or unavailable", row.State)
	}
	if s := field(colReleasedAt); s != "" {
		if row.ReleasedAt, err = parseCSVTime(s); err != nil {
			return row, line, lineErrorf(line, "released_at %q is not RFC 3339 or YYYY-MM-DD HH:MM:SS", s)
		}
	}
	if row.RequiresIdentityUpdate, err = parseFlag(colRequiresIdentityUpdate, field(colRequiresIdentityUpdate)); err != nil {
		return row, line, lineErrorf(line, "%v", err)
	}
	if row.NeedsRegistration, err = parseFlag(colNeedsRegistration, field(colNeedsRegistration)); err != nil {
		return row, line, lineErrorf(line, "%v", err)
	}
	return row, line, nil
}

// parseCSVTime reads released_at: RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC.
func parseCSVTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation(timeLayout, s, time.UTC)
}

// parseFlag reads a 0/1 column; empty is 0.
func parseFlag(col int, s string) (bool, error) {
	switch s {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("%s %q is not 0 or 1", inventoryColumns[col], s)
	}
}

// seenNumbers are the numbers of one import, each with the line it came
// on, keyed by numberKey: about 20 bytes a number, a quarter of what the
// strings would take.
type seenNumbers map[uint64]int

// numberKey packs a valid number (7 to 15 digits, below 2^50) and its
// length (so that leading zeros count) into one integer.
func numberKey(n string) uint64 {
	var v uint64
	for i := 0; i < len(n); i++ {
		v = v*10 + uint64(n[i]-'0')
	}
	return v<<4 | uint64(len(n))
}

// has reports whether the import holds the number.
func (s seenNumbers) has(number string) bool {
	_, ok := s[numberKey(number)]
	return ok
}

// checkInventoryCSV reads a whole inventory CSV, checking every row, and
// returns the numbers it holds. The first bad row stops it: a row the
// reader refuses, or a number given twice.
func checkInventoryCSV(r io.Reader, now time.Time) (seenNumbers, error) {
	ir, err := newInventoryReader(r, now)
	if err != nil {
		return nil, err
	}
	seen := seenNumbers{}
	for {
		row, line, err := ir.next()
		if errors.Is(err, io.EOF) {
			return seen, nil
		}
		if err != nil {
			return nil, err
		}
		k := numberKey(row.Number)
		if first, dup := seen[k]; dup {
			return nil, lineErrorf(line, "number %s already given on line %d", row.Number, first)
		}
		seen[k] = line
	}
}

// inventoryCSVRows yields the rows of an inventory CSV, as read: the file is
// meant to have passed checkInventoryCSV, and any error ends the rows.
func inventoryCSVRows(r io.Reader, now time.Time) iter.Seq2[InventoryRow, error] {
	return func(yield func(InventoryRow, error) bool) {
		ir, err := newInventoryReader(r, now)
		if err != nil {
			yield(InventoryRow{}, err)
			return
		}
		for {
			row, _, err := ir.next()
			if errors.Is(err, io.EOF) || !yield(row, err) || err != nil {
				return
			}
		}
	}
}

// writeInventoryCSV writes the header, then each row that rows yields, in
// the format the import reads: released_at in RFC 3339 with its
// milliseconds, so that exporting and importing again changes nothing.
func writeInventoryCSV(w io.Writer, rows iter.Seq2[InventoryRow, error]) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(inventoryColumns); err != nil {
		return err
	}
	record := make([]string, len(inventoryColumns))
	for row, err := range rows {
		if err != nil {
			return err
		}
		record[colNumber], record[colState] = row.Number, row.State
		record[colReleasedAt] = row.ReleasedAt.UTC().Format(time.RFC3339Nano)
		record[colRequiresIdentityUpdate] = flagDigit(row.RequiresIdentityUpdate)
		record[colNeedsRegistration] = flagDigit(row.NeedsRegistration)
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// flagDigit writes a flag as the CSV's 0 or 1.
func flagDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

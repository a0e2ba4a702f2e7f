package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// The inventory CSV on its own: what the reader keeps of each number, what
// the writer writes, and what a failing reader becomes.

func TestNumberKeysTellEveryNumberApart(t *testing.T) {
	numbers := []string{"0000001", "00000001", "1000000", "10000000", "999999999999999", "000000000000000", "5551230100", "05551230100"}
	seen := map[uint64]string{}
	for _, n := range numbers {
		k := numberKey(n)
		if other, dup := seen[k]; dup {
			t.Fatalf("%s and %s share the key %d", n, other, k)
		}
		seen[k] = n
		if numberKey(n) != k {
			t.Fatalf("%s: the key changes", n)
		}
	}
}

func TestInventoryCSVWriterAndReaderRoundTrip(t *testing.T) {
	rows := []InventoryRow{
		{Number: "0015557000", State: "released", ReleasedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Number: "15557000001", State: "active", ReleasedAt: time.UnixMilli(1761647505123).UTC(), RequiresIdentityUpdate: true},
		{Number: "155570000012345", State: "unavailable", ReleasedAt: time.UnixMilli(1).UTC(), NeedsRegistration: true},
	}
	var b strings.Builder
	if err := writeInventoryCSV(&b, func(yield func(InventoryRow, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := checkInventoryCSV(strings.NewReader(b.String()), time.Now()); err != nil {
		t.Fatalf("the check refuses what the writer wrote: %v\n%s", err, b.String())
	}
	i := 0
	for got, err := range inventoryCSVRows(strings.NewReader(b.String()), time.Now()) {
		if err != nil {
			t.Fatal(err)
		}
		if !got.ReleasedAt.Equal(rows[i].ReleasedAt) || got.Number != rows[i].Number || got.State != rows[i].State ||
			got.RequiresIdentityUpdate != rows[i].RequiresIdentityUpdate || got.NeedsRegistration != rows[i].NeedsRegistration {
			t.Errorf("row %d read back as %+v, want %+v", i, got, rows[i])
		}
		i++
	}
	if i != len(rows) {
		t.Fatalf("read back %d rows, want %d:\n%s", i, len(rows), b.String())
	}
}

func TestInventoryCSVCheck(t *testing.T) {
	cases := []struct {
		name, csv, err string
	}{
		{"a number given twice names both lines", "number,state\n15551230001,active\n15551230002,active\n15551230001,released\n",
			"line 4: number 15551230001 already given on line 2"},
		{"the same digits with a leading zero are another number", "number,state\n5551230001,active\n05551230001,active\n", ""},
		{"a header with a byte order mark and odd case", "\ufeffNumber, STATE\n15551230001,active\n", ""},
		{"a header alone is an empty import", "number,state\n", ""},
		{"a column twice", "number,state,number\n", `line 1: column "number" appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkInventoryCSV(strings.NewReader(c.csv), time.Now())
			if got := errString(err); got != c.err {
				t.Fatalf("err %q, want %q", got, c.err)
			}
		})
	}
}

// errString is err's text, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestInventoryCSVReadErrorsKeepTheirCause(t *testing.T) {
	cause := errors.New("the client went away")
	body := io.MultiReader(strings.NewReader("number,state\n15551230001,active\n"), iotest.ErrReader(cause))
	_, err := checkInventoryCSV(body, time.Now())
	var line *csvLineError
	if !errors.Is(err, cause) || errors.As(err, &line) {
		t.Fatalf("err %v, want the reader's error, not a bad line", err)
	}
}

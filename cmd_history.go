package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// historyOptions are the flags of `bulkrestore history`, parsed.
type historyOptions struct {
	conn   connFlags
	raw    bool
	limit  int
	before string
}

// runHistory is `bulkrestore history NUMBER`: what happened to a number in
// the user's jobs, newest first, a page at a time.
func runHistory(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o historyOptions
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	o.conn.register(fs)
	fs.BoolVar(&o.raw, "json", false, "print the server's JSON answer as it is")
	fs.IntVar(&o.limit, "limit", historyPageDefault, "jobs on a page, 1 to 100")
	fs.StringVar(&o.before, "before", "", "start below this job_uuid (the next_before of the page before)")
	api, rest, err := o.conn.parse(fs, args, getenv, stderr, o.check)
	if err != nil {
		return err
	}
	h, raw, err := api.numberHistory(ctx, rest[0], o.limit, o.before)
	if err != nil {
		return serverTrouble(err)
	}
	if o.raw {
		_, err := stdout.Write(raw)
		return err
	}
	printHistory(stdout, h)
	if h.NextBefore != nil {
		fmt.Fprintf(stderr, "more: bulkrestore history -before %s %s\n", *h.NextBefore, h.Number)
	}
	return nil
}

// check validates the history flags other than the connection's.
func (o *historyOptions) check(rest []string) error {
	switch {
	case len(rest) != 1:
		return fmt.Errorf("%w: history takes one NUMBER, got %d arguments", errUsage, len(rest))
	case !isDigits(rest[0]):
		return fmt.Errorf("%w: %q is not a number: digits only", errUsage, rest[0])
	case o.limit < 1 || o.limit > historyPageMax:
		return fmt.Errorf("%w: -limit must be 1 to %d", errUsage, historyPageMax)
	}
	if _, err := uuid.Parse(o.before); o.before != "" && (err != nil || len(o.before) != 36) {
		return fmt.Errorf("%w: -before %q is not a job_uuid", errUsage, o.before)
	}
	return nil
}

// numberHistory fetches a page of a number's history, decoded and as the
// server sent it.
func (c *apiClient) numberHistory(ctx context.Context, number string, limit int, before string) (numberHistoryJSON, []byte, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if before != "" {
		q.Set("before", before)
	}
	var h numberHistoryJSON
	reply, err := c.do(ctx, http.MethodGet, "/v3/numbers/"+url.PathEscape(number)+"/history", q, nil, nil)
	if err != nil {
		return h, nil, err
	}
	if reply.status != http.StatusOK {
		return h, nil, reply.failure()
	}
	return h, reply.body, reply.decode(&h)
}

// historyTableRow is the layout of one line of the history table.
const historyTableRow = "%-36s  %-10s  %-4s  %-8s  %-19s  %s\n"

// printHistory writes a page of a number's history for people: the
// number, its inventory row, then a table of its jobs, newest first.
func printHistory(w io.Writer, h numberHistoryJSON) {
	inventory := "none"
	if inv := h.Inventory; inv != nil {
		parts := []string{inv.State}
		if inv.ReleasedAt != nil {
			parts = append(parts, "released "+*inv.ReleasedAt)
		}
		if inv.RequiresIdentityUpdate == 1 {
			parts = append(parts, "requires identity update")
		}
		if inv.NeedsRegistration == 1 {
			parts = append(parts, "needs registration")
		}
		inventory = strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "%-10s %s\n%-10s %s\n\n", "number", h.Number, "inventory", inventory)
	if len(h.History) == 0 {
		fmt.Fprintln(w, "no job of yours holds this number")
		return
	}
	fmt.Fprintf(w, historyTableRow, "JOB_UUID", "STATUS", "CODE", "ATTEMPTS", "COMPLETED_AT", "MESSAGE")
	for _, e := range h.History {
		completed, msg := "-", ""
		if e.CompletedAt != nil {
			completed = *e.CompletedAt
		}
		if e.Message != nil {
			msg = *e.Message
		}
		fmt.Fprintf(w, historyTableRow, e.JobUUID, e.Status, optInt(e.StatusCode), strconv.Itoa(e.Attempts), completed, msg)
	}
}

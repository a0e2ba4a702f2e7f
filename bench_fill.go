package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// benchFillSeed seeds every fill, so that two runs build the same file.
const benchFillSeed = 20261130

// filled returns a database of shape f, built on first use and kept for
// the other repeats and scenarios of the run (the scenarios that use one
// only read it), then removed by removeFills.
func (b *bench) filled(ctx context.Context, f benchFill) (*benchFilled, error) {
	if db, ok := b.fills[f]; ok {
		return db, nil
	}
	fmt.Fprintf(b.log, "bench: building a database of %d jobs, %d recorded numbers, %d users...\n", f.Jobs, f.Numbers, f.Users)
	db, err := fillBenchDB(ctx, f, benchFillSeed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.log, "bench: built in %s\n", db.took.Round(100_000_000))
	if b.fills == nil {
		b.fills = map[benchFill]*benchFilled{}
	}
	b.fills[f] = db
	return db, nil
}

// removeFills deletes the databases filled during the run.
func (b *bench) removeFills() {
	for _, db := range b.fills {
		db.remove()
	}
}

// serveFilled serves a database of shape f (built on first use).
func (b *bench) serveFilled(ctx context.Context, f benchFill) (*benchFilled, *benchServer, error) {
	db, err := b.filled(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	s, err := b.serveDB(ctx, db.db)
	return db, s, err
}

// benchResetPeakRSS frees what the heap can give back and resets the
// process's peak RSS (VmHWM) to its RSS now, which it returns, in kB: what
// a scenario measures its memory from.
func benchResetPeakRSS() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets the peak to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("reset peak RSS: %w", err)
	}
	return benchProcStatusKB("VmHWM")
}

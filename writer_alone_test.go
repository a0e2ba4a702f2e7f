package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// TestWriterCommitsLargeWritesAlone queues ordinary writes and large ones
// (doAlone) while the writer is busy: each large write commits in a group
// of its own, one that fails or panics leaves nothing behind, and the
// ordinary writes around them still share groups and commit.
func TestWriterCommitsLargeWritesAlone(t *testing.T) {
	store, w, groups := newLoggedWriter(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.do(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("CREATE TABLE scratch (k INTEGER PRIMARY KEY) STRICT")
		return err
	}); err != nil {
		t.Fatal(err)
	}

	release, blockerErr := holdWriter(t, ctx, w)
	const writes, failing, panicking = 30, 10, 20
	large := func(i int) bool { return i%5 == 0 } // 5, 10 (fails), 15, 20 (panics), 25, 30
	errBoom := errors.New("boom")
	results := make([]error, writes+1)
	var wg sync.WaitGroup
	for i := 1; i <= writes; i++ {
		do := w.do
		if large(i) {
			do = w.doAlone
		}
		wg.Go(func() {
			results[i] = do(ctx, func(tx *sql.Tx) error {
				groups.ran(i)
				if _, err := tx.Exec("INSERT INTO scratch VALUES (?), (?)", i, 1000+i); err != nil {
					return err
				}
				switch i {
				case failing:
					return errBoom
				case panicking:
					panic("large write gone wrong")
				}
				return nil
			})
		})
	}
	waitQueuedWrites(t, "TestWriterCommitsLargeWritesAlone", writes)
	release()
	waitGroupWithin(t, &wg, 30*time.Second)
	if err := <-blockerErr; err != nil {
		t.Fatalf("blocking write: %v", err)
	}

	groups.mu.Lock()
	defer groups.mu.Unlock()
	shared := false
	for i := 1; i <= writes; i++ {
		size := groups.sizes[groups.groupOf[i]]
		if large(i) && size != 1 {
			t.Errorf("large write %d committed in a group of %d, want 1 (groups %v)", i, size, groups.sizes)
		}
		shared = shared || (!large(i) && size > 1)
		wantErr := i == failing || i == panicking
		if (results[i] != nil) != wantErr {
			t.Errorf("write %d: error %v, want an error: %v", i, results[i], wantErr)
		}
		var n int
		if err := store.r.QueryRow("SELECT count(*) FROM scratch WHERE k IN (?, ?)", i, 1000+i).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 2}[wantErr]; n != want {
			t.Errorf("write %d left %d rows, want %d", i, n, want)
		}
	}
	if !errors.Is(results[failing], errBoom) {
		t.Errorf("the failing large write got %v, want its own error", results[failing])
	}
	if !shared {
		t.Errorf("no ordinary writes shared a group (groups %v): the test proves nothing of the mix", groups.sizes)
	}
}

// groupLog records the size of each group a writer commits, in order, and
// the group each write of a test ran in.
type groupLog struct {
	mu      sync.Mutex
	sizes   []int
	groupOf map[int]int // write -> index in sizes of its group
}

// ran notes that write i runs in the group being built.
func (g *groupLog) ran(i int) {
	g.mu.Lock()
	g.groupOf[i] = len(g.sizes)
	g.mu.Unlock()
}

// newLoggedWriter starts a writer on a fresh test store, stopped at the
// test's end, whose groups are logged.
func newLoggedWriter(t *testing.T) (*Store, *writer, *groupLog) {
	store := newTestStore(t)
	w := newWriter(store.w, slog.New(slog.DiscardHandler))
	groups := &groupLog{groupOf: map[int]int{}}
	w.observe = func(_ time.Duration, n int) {
		groups.mu.Lock()
		groups.sizes = append(groups.sizes, n)
		groups.mu.Unlock()
	}
	t.Cleanup(w.stop)
	return store, w, groups
}

package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// benchPGServer is the PostgreSQL server `bench -db postgres://...` runs
// against: every scenario gets a fresh database of its own on it, created
// through the URL given (whose role may create databases) and dropped
// after.
type benchPGServer struct {
	base  *url.URL
	admin *sql.DB
	seq   atomic.Int64
}

// openBenchPG connects to the server of the URL.
func openBenchPG(rawURL string) (*benchPGServer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, redactURLError(err)
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, redactURLError(err)
	}
	return &benchPGServer{base: u, admin: stdlib.OpenDB(*cfg)}, nil
}

// close closes the connection to the server.
func (p *benchPGServer) close() error { return p.admin.Close() }

// newDatabase creates an empty database and returns its URL and what drops
// it.
func (p *benchPGServer) newDatabase(ctx context.Context) (string, func(), error) {
	name := fmt.Sprintf("bulkrestore_bench_%d_%d", os.Getpid(), p.seq.Add(1))
	if _, err := p.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u := *p.base
	u.Path = "/" + name
	drop := func() {
		p.admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// rawPGRate measures batched updates on a fresh database of the server, as
// the service writes results: a table of rows rows updated perTx to a
// transaction, each batch one UPDATE naming its rows as a JSON array. It
// returns updates a second.
func (p *benchPGServer) rawPGRate(ctx context.Context, rows, perTx int) (float64, error) {
	dbURL, drop, err := p.newDatabase(ctx)
	if err != nil {
		return 0, err
	}
	defer drop()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return 0, err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE raw_rows (id bigint PRIMARY KEY, status text NOT NULL,
		attempts integer NOT NULL, completed_at bigint) WITH (fillfactor = 70)`); err != nil {
		return 0, fmt.Errorf("raw postgresql: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO raw_rows SELECT g, 'pending', 0 FROM generate_series(1, $1) AS g", rows); err != nil {
		return 0, fmt.Errorf("raw postgresql: fill: %w", err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE raw_rows"); err != nil {
		return 0, fmt.Errorf("raw postgresql: %w", err)
	}
	now := ms(time.Now())
	ids := make([]int64, 0, perTx)
	start := time.Now()
	for first := 1; first <= rows; first += perTx {
		ids = ids[:0]
		for id := first; id < first+perTx && id <= rows; id++ {
			ids = append(ids, int64(id))
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE raw_rows SET status = 'success', attempts = attempts + 1, completed_at = $1
			WHERE id = ANY(ARRAY(SELECT json_array_elements_text($2::json)::bigint))`, now, jsonList(ids))
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			tx.Rollback()
			return 0, fmt.Errorf("raw postgresql: update: %w", err)
		}
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}

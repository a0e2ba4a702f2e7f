package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgChannels are the channels an instance listens on.
var pgChannels = []string{pgWorkChannel, pgReleasedChannel, pgWebhookChannel, pgCancelChannel, pgCancelDoneChannel}

// listen keeps a connection of its own (pgx's, as database/sql cannot wait
// for a notification) listening on pgChannels, and calls wake for each
// notification. A broken connection is opened again with backoff; after
// each (re)connection wake is called for every channel with no payload,
// since notifications sent while no one listened are lost. The callers
// also poll at a bounded interval, so a notification lost any other way
// delays work by that interval at most.
func (q pgQueue) listen(ctx context.Context, wake func(channel, payload string), log *slog.Logger) {
	for try := 1; ctx.Err() == nil; try++ {
		conn, err := q.connectListener(ctx)
		if err == nil {
			try = 1
			for _, ch := range pgChannels {
				wake(ch, "")
			}
			err = waitNotifications(ctx, conn, wake)
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		wait := backoff(100*time.Millisecond, 5*time.Second, try)
		log.Warn("listening for other instances' work; will connect again (meanwhile the queue polls)", "err", err, "wait", wait)
		sleepUntil(ctx, nil, time.Now().Add(wait))
	}
}

// connectListener opens the listening connection, which also says that
// this instance is alive (pgLiveLockSpace).
func (q pgQueue) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, q.s.pg.config)
	if err != nil {
		return nil, err
	}
	// The lock first, so that an instance listening is always seen
	// connected (the other way round, seen connected a moment before it
	// listens, costs a canceller at most cancelAckWait).
	if err := holdLiveLock(cctx, conn, q.s.pg.instance); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	for _, ch := range pgChannels {
		if _, err := conn.Exec(cctx, "LISTEN "+ch); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	}
	return conn, nil
}

// holdLiveLock takes, on conn and for as long as it lives, the advisory
// lock that says instance is connected.
func holdLiveLock(ctx context.Context, conn *pgx.Conn, instance string) error {
	_, err := conn.Exec(ctx, "SELECT pg_advisory_lock_shared($1, hashtext($2))", int32(pgLiveLockSpace), instance)
	return err
}

// waitNotifications calls wake for each notification until the connection
// breaks or ctx ends.
func waitNotifications(ctx context.Context, conn *pgx.Conn, wake func(channel, payload string)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		wake(n.Channel, n.Payload)
	}
}

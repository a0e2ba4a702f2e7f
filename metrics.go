package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series the service exports, on a registry of
// its own (no globals: two services in one test process do not collide).
type metrics struct {
	registry         *prometheus.Registry
	jobsFinished     *prometheus.CounterVec
	numbersFinished  *prometheus.CounterVec
	restoreDuration  *prometheus.HistogramVec
	restoresInFlight prometheus.Gauge
	webhookAttempts  *prometheus.CounterVec
	webhookDuration  prometheus.Histogram
	commitDuration   prometheus.Histogram
	commitWrites     prometheus.Histogram
	httpRequests     *prometheus.CounterVec
	storeErrors      *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	adminRequests    *prometheus.CounterVec
}

// newMetrics registers every series; queued reports the numbers waiting in
// the queue at scrape time.
func newMetrics(queued func() float64) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.registry.MustRegister(c) }
	m.jobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkrestore_jobs_finished_total", Help: "Jobs that reached a final status, by status.",
	}, []string{"status"})
	m.numbersFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkrestore_numbers_finished_total", Help: "Numbers that reached a final result, by outcome and status code.",
	}, []string{"outcome", "status_code"})
	m.restoreDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bulkrestore_restore_duration_seconds", Help: "Time of one restore attempt, by backend.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"backend"})
	m.restoresInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bulkrestore_restores_in_flight", Help: "Restore attempts under way.",
	})
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkrestore_webhook_attempts_total", Help: "Webhook delivery attempts, by outcome (delivered, failed, refused).",
	}, []string{"outcome"})
	m.webhookDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bulkrestore_webhook_attempt_duration_seconds", Help: "Time of one webhook delivery attempt.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	})
	m.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bulkrestore_sqlite_commit_duration_seconds", Help: "Time of one group commit of the database writer.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10),
	})
	m.commitWrites = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bulkrestore_sqlite_commit_writes", Help: "Writes carried by one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 7),
	})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkrestore_http_requests_total", Help: "HTTP requests, by route, method and status code.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bulkrestore_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10),
	}, []string{"route"})
	m.adminRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkrestore_admin_requests_total", Help: "Admin API requests, by action (user.create, inventory.import...) and status code.",
	}, []string{"action", "code"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkrestore_store_errors_total",
		Help: "Database errors met by writes, by class: transient (retried) or permanent (the write is dropped or split).",
	}, []string{"class"})
	for _, class := range []storeErrorClass{storeTransient, storePermanent} {
		m.storeErrors.WithLabelValues(class.String())
	}
	for _, c := range []prometheus.Collector{m.storeErrors, m.jobsFinished, m.numbersFinished, m.restoreDuration, m.restoresInFlight,
		m.webhookAttempts, m.webhookDuration, m.commitDuration, m.commitWrites, m.httpRequests, m.httpDuration,
		m.adminRequests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bulkrestore_queued_numbers", Help: "Numbers of queued jobs waiting to be restored.",
	}, queued))
	// Series whose label values are known are there at 0 from the start, so
	// that a rate or an alert on them works before the first event.
	for _, status := range []string{string(jobCompleted), string(jobCancelled)} {
		m.jobsFinished.WithLabelValues(status)
	}
	for _, outcome := range []string{"delivered", "failed", "refused"} {
		m.webhookAttempts.WithLabelValues(outcome)
	}
	return m
}

// watchTurns exports the state of PostgreSQL's turn gate (see turnGate):
// statements of the request path queueing for the database, and those
// that went ahead or were let go after its patience: what a database too
// busy, or rows locked for long, show first.
func (m *metrics) watchTurns(g *turnGate) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bulkrestore_postgres_turns_waiting",
			Help: "Statements of the request path (authentication, inventory lookups, synchronous writes) waiting for a turn on PostgreSQL.",
		}, func() float64 { return float64(g.waiting()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bulkrestore_postgres_turns_skipped_total",
			Help: "Statements that waited " + pgTurnPatience.String() + " for a turn and went ahead without one.",
		}, func() float64 { return float64(g.skipped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bulkrestore_postgres_turns_lapsed_total",
			Help: "Turns held over " + pgTurnPatience.String() + " and let go while their statement ran on (slow, or waiting on a row lock).",
		}, func() float64 { return float64(g.lapsed.Load()) }),
	)
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// numbersFinishedAs counts n numbers that ended with outcome o.
func (m *metrics) numbersFinishedAs(o Outcome, n int) {
	m.numbersFinished.WithLabelValues(string(o.status()), strconv.Itoa(o.StatusCode)).Add(float64(n))
}

// webhookAttempt counts one delivery attempt.
func (m *metrics) webhookAttempt(r deliveryResult) {
	outcome := "delivered"
	switch {
	case r.Final && !r.ok():
		outcome = "refused"
	case !r.ok():
		outcome = "failed"
	}
	m.webhookAttempts.WithLabelValues(outcome).Inc()
	m.webhookDuration.Observe(r.Duration.Seconds())
}

// commit observes one group commit.
func (m *metrics) commit(d time.Duration, writes int) {
	m.commitDuration.Observe(d.Seconds())
	m.commitWrites.Observe(float64(writes))
}

// instrumentedRestorer times every restore and counts those under way.
type instrumentedRestorer struct {
	next     Restorer
	duration prometheus.Observer
	inFlight prometheus.Gauge
}

// instrumentedBatchRestorer is instrumentedRestorer for a batch backend.
type instrumentedBatchRestorer struct {
	*instrumentedRestorer
	batch batchRestorer
}

// instrument wraps a backend, keeping its ability to work in batches.
func (m *metrics) instrument(next Restorer, backend string) Restorer {
	r := &instrumentedRestorer{next: next, duration: m.restoreDuration.WithLabelValues(backend), inFlight: m.restoresInFlight}
	if b, ok := next.(batchRestorer); ok {
		return &instrumentedBatchRestorer{instrumentedRestorer: r, batch: b}
	}
	return r
}

// RestoreBatch implements batchRestorer; each number is observed with the
// batch's time shared out among them.
func (r *instrumentedBatchRestorer) RestoreBatch(ctx context.Context, userID int64, numbers []string) []Outcome {
	r.inFlight.Add(float64(len(numbers)))
	defer r.inFlight.Sub(float64(len(numbers)))
	start := time.Now()
	out := r.batch.RestoreBatch(ctx, userID, numbers)
	each := time.Since(start).Seconds() / float64(len(numbers))
	for range numbers {
		r.duration.Observe(each)
	}
	return out
}

// Restore implements Restorer.
func (r *instrumentedRestorer) Restore(ctx context.Context, userID int64, number string) Outcome {
	r.inFlight.Inc()
	defer r.inFlight.Dec()
	start := time.Now()
	defer func() { r.duration.Observe(time.Since(start).Seconds()) }()
	return r.next.Restore(ctx, userID, number)
}

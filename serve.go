package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRestoreRetryWait caps the wait before a number's next attempt, however
// long a Retry-After asks for.
const maxRestoreRetryWait = 10 * time.Minute

// serveConfig is every setting of `bulkrestore serve`.
type serveConfig struct {
	addr               string
	db                 string
	dev                bool
	allowPrivate       bool
	backend            string
	upstreamURL        string
	upstreamPreviewURL string
	upstreamUser       string
	upstreamPassword   string
	workers            int
	syncLimit          int
	maxNumbers         int
	maxBody            int64
	maxBodyMemory      int64
	restoreWindow      time.Duration
	restoreTimeout     time.Duration
	restoreMaxAttempts int
	restoreRetryBase   time.Duration
	webhookTimeout     time.Duration
	webhookMaxAttempts int
	webhookRetryBase   time.Duration
	webhookRetryMax    time.Duration
	shutdownTimeout    time.Duration
	logFormat          string
	logLevel           string
	showVersion        bool
	rateLimit          float64
	rateBurst          int
	maxActiveJobs      int
	retention          time.Duration
	readHeaderTimeout  time.Duration
	metricsAddr        string
	maxImportBody      int64
	lease              time.Duration // PostgreSQL: how long a claim holds without renewal
	// adminToken is the admin API's bearer token, read from
	// -admin-token-file or BULKRESTORE_ADMIN_TOKEN; empty: the admin API is
	// off. It is kept in memory only and never logged.
	adminToken string
	// adminTokenWarning, when set, is logged at start (a token file that
	// others may read).
	adminTokenWarning string
	consoleIdle       time.Duration
	consoleLifetime   time.Duration

	// restorer, when set (by tests), replaces the backend the flags name.
	restorer Restorer
	// listen, when set (by tests), opens the listeners instead of net.Listen.
	listen func(network, address string) (net.Listener, error)
	// bodyGrace, when set (by tests), replaces bodyGrace: how long a
	// request body may take before bodyMinRate applies.
	bodyGrace time.Duration
}

// devAddr is -addr under -dev when none is given: the demo user's key is
// known to everyone, so the development server answers this machine only.
const devAddr = "127.0.0.1:8080"

// allowPrivateWebhooks reports whether webhooks may reach private and
// loopback addresses.
func (c serveConfig) allowPrivateWebhooks() bool { return c.dev || c.allowPrivate }

// byteSize is a flag value in bytes that also takes KiB, MiB, GiB, KB, MB
// and GB suffixes.
type byteSize struct{ n *int64 }

// String implements flag.Value.
func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	return strconv.FormatInt(*b.n, 10)
}

// Set implements flag.Value.
func (b byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return errors.New("want a positive size such as 4194304 or 4MiB")
	}
	*b.n = n * mult
	return nil
}

// parseServeFlags reads serve's flags (and their environment fallbacks).
func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", ":8080", "address to listen on ("+devAddr+" under -dev)")
	fs.StringVar(&c.db, "db", "bulkrestore.db", "SQLite database file, or a PostgreSQL URL (postgres://...; give it in BULKRESTORE_DB, not here, when it holds a password)")
	fs.BoolVar(&c.dev, "dev", false, "development mode: demo user demo/demo, demo inventory 15551230100-15551230199, private webhooks allowed, listens on "+devAddr+" unless -addr is given")
	fs.BoolVar(&c.allowPrivate, "allow-private-webhooks", false, "let webhooks reach loopback and private addresses")
	fs.StringVar(&c.backend, "backend", "inventory", "restore backend: inventory or upstream")
	fs.StringVar(&c.upstreamURL, "upstream-url", "", "upstream single-number restore URL containing {number} (backend upstream)")
	fs.StringVar(&c.upstreamPreviewURL, "upstream-preview-url", "", "URL containing {number} that a dry run GETs to preview a restore (backend upstream; none: dry runs answer unknown)")
	fs.IntVar(&c.workers, "workers", 16, "concurrent restores of queued numbers")
	fs.IntVar(&c.syncLimit, "sync-limit", 10, "requests with at most this many numbers are answered synchronously")
	fs.IntVar(&c.maxNumbers, "max-numbers", 10000, "most numbers in one request")
	c.maxBody = 4 << 20
	fs.Var(byteSize{&c.maxBody}, "max-body", "largest request body (bytes, or with KiB/MiB suffix)")
	c.maxBodyMemory = 64 << 20
	fs.Var(byteSize{&c.maxBodyMemory}, "max-body-memory", "bytes all request bodies may hold at once; past it requests wait a moment, then get 503 (bytes, or with KiB/MiB suffix)")
	fs.DurationVar(&c.restoreWindow, "restore-window", 720*time.Hour, "how long after release a number can be restored (inventory backend)")
	fs.DurationVar(&c.restoreTimeout, "restore-timeout", 10*time.Second, "timeout of one upstream restore call")
	fs.IntVar(&c.restoreMaxAttempts, "restore-max-attempts", 3, "attempts per number for transient upstream failures")
	fs.DurationVar(&c.restoreRetryBase, "restore-retry-base", time.Second, "first wait before retrying a number")
	fs.DurationVar(&c.webhookTimeout, "webhook-timeout", 10*time.Second, "timeout of one webhook delivery")
	fs.IntVar(&c.webhookMaxAttempts, "webhook-max-attempts", 20, "delivery attempts per webhook message")
	fs.DurationVar(&c.webhookRetryBase, "webhook-retry-base", 5*time.Second, "first wait before retrying a webhook")
	fs.DurationVar(&c.webhookRetryMax, "webhook-retry-max", 2*time.Hour, "longest wait between webhook attempts")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for requests and restores under way")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	fs.Float64Var(&c.rateLimit, "rate-limit", 200, "requests a second per user (0: no limit)")
	fs.IntVar(&c.rateBurst, "rate-burst", 0, "requests a user may make at once above -rate-limit (default twice -rate-limit, at least 1)")
	fs.IntVar(&c.maxActiveJobs, "max-active-jobs", 100, "queued jobs a user may have unfinished at once (0: no limit)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics on this address instead of the API listener")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send its request headers")
	fs.DurationVar(&c.consoleIdle, "console-idle-timeout", time.Hour, "a console session unused this long ends")
	fs.DurationVar(&c.consoleLifetime, "console-session-lifetime", 12*time.Hour, "a console session ends this long after sign-in, however used")
	fs.DurationVar(&c.lease, "lease", defaultLease, "PostgreSQL: how long a number or webhook claimed by an instance stays its own without renewal; a dead instance's work is taken over after it")
	fs.DurationVar(&c.retention, "retention", 720*time.Hour, "finished jobs older than this are deleted (0: keep forever)")
	adminTokenFile := fs.String("admin-token-file", "", "file holding the admin API's bearer token, at least 32 characters; the admin API (/admin/v1) is off unless this or BULKRESTORE_ADMIN_TOKEN is set")
	c.maxImportBody = 256 << 20
	fs.Var(byteSize{&c.maxImportBody}, "max-import-body", "largest inventory CSV the admin API takes (bytes, or with KiB/MiB/GiB suffix)")
	rest, err := parseArgs(fs, args, getenv)
	if err != nil {
		return c, err
	}
	if len(rest) > 0 {
		return c, fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, rest)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true }) // the command line's and the environment's
	if c.dev && !set["addr"] {
		c.addr = devAddr
	}
	if !set["rate-burst"] {
		c.rateBurst = defaultBurst(c.rateLimit)
	}
	c.upstreamUser = getenv("BULKRESTORE_UPSTREAM_USER")
	c.upstreamPassword = getenv("BULKRESTORE_UPSTREAM_PASSWORD")
	if c.adminToken, c.adminTokenWarning, err = loadAdminToken(*adminTokenFile, getenv(adminTokenEnv)); err != nil {
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, c.validate()
}

// defaultBurst is -rate-burst when it is not given: twice the rate, at
// least 1, so that a low -rate-limit limits short bursts too.
func defaultBurst(limit float64) int {
	return int(max(1, min(math.Ceil(2*limit), math.MaxInt32)))
}

// validate rejects settings that cannot work.
func (c serveConfig) validate() error {
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	check(c.backend != "inventory" && c.backend != "upstream", "-backend must be inventory or upstream")
	if c.backend == "upstream" {
		if err := checkUpstreamURL(c.upstreamURL); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if c.upstreamPreviewURL != "" {
		check(c.backend != "upstream", "-upstream-preview-url needs -backend upstream")
		if err := checkURLTemplate("upstream-preview-url", c.upstreamPreviewURL); err != nil {
			problems = append(problems, err.Error())
		}
	}
	check(c.workers < 1, "-workers must be at least 1")
	check(c.syncLimit < 0, "-sync-limit must not be negative")
	check(c.maxNumbers < 1, "-max-numbers must be at least 1")
	check(c.restoreWindow <= 0, "-restore-window must be positive")
	check(c.restoreTimeout <= 0, "-restore-timeout must be positive")
	check(c.restoreMaxAttempts < 1, "-restore-max-attempts must be at least 1")
	check(c.restoreRetryBase <= 0, "-restore-retry-base must be positive")
	check(c.webhookTimeout <= 0, "-webhook-timeout must be positive")
	check(c.webhookMaxAttempts < 1, "-webhook-max-attempts must be at least 1")
	check(c.webhookRetryBase <= 0, "-webhook-retry-base must be positive")
	check(c.webhookRetryMax < c.webhookRetryBase, "-webhook-retry-max must be at least -webhook-retry-base")
	check(c.logFormat != "text" && c.logFormat != "json", "-log-format must be text or json")
	check(c.rateLimit < 0, "-rate-limit must not be negative")
	check(c.rateLimit > 0 && c.rateBurst < 1, "-rate-burst must be at least 1")
	check(c.maxActiveJobs < 0, "-max-active-jobs must not be negative")
	check(c.retention < 0, "-retention must not be negative")
	check(c.readHeaderTimeout <= 0, "-read-header-timeout must be positive")
	check(c.consoleIdle <= 0 || c.consoleLifetime <= 0, "-console-idle-timeout and -console-session-lifetime must be positive")
	check(c.lease < 100*time.Millisecond, "-lease must be at least 100ms")
	_, levelErr := parseLevel(c.logLevel)
	check(levelErr != nil, "-log-level must be debug, info, warn or error")
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
	return nil
}

// parseLevel reads a -log-level value.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// newLogger builds the process logger from the config.
func newLogger(c serveConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the server until ctx ends, then shuts down in reverse order of
// start. ready, when set, is told the address actually listened on. It
// takes the database's lock first, then opens every listener, and only
// then starts the service: a listener that cannot open leaves nothing to
// undo. A listener that fails later stops the server with an error.
func serve(ctx context.Context, cfg serveConfig, stderr io.Writer, ready func(addr string)) error {
	log := newLogger(cfg, stderr)
	if !isPostgresURL(cfg.db) { // several servers share a PostgreSQL database
		lock, err := lockDatabase(cfg.db)
		if err != nil {
			return err
		}
		defer lock.release() // deferred first, so it runs after the database is closed
	}
	listen := cfg.listen
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.metricsAddr != "" {
		if mln, err = listen("tcp", cfg.metricsAddr); err != nil {
			return fmt.Errorf("listen for metrics: %w", err)
		}
		defer mln.Close()
	}
	svc, err := startService(ctx, cfg, log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           svc.app.routes(),
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), srv.Serve(ln)) }()
	if mln != nil {
		msrv := &http.Server{Handler: svc.app.metrics.only(), ReadHeaderTimeout: cfg.readHeaderTimeout}
		go func() { serveErr <- fmt.Errorf("serve metrics %s: %w", mln.Addr(), msrv.Serve(mln)) }()
		defer msrv.Close() // after the API's shutdown, before the service stops
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	log.Info("bulkrestore listening", "addr", ln.Addr().String(), "db", redactDB(cfg.db), "backend", cfg.backend,
		"workers", cfg.workers, "version", version)
	if ready != nil {
		ready(ln.Addr().String())
	}

	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case failed = <-serveErr:
		log.Error("a listener failed; shutting down", "err", failed)
	}
	// One deadline for the whole shutdown: requests, then restores and
	// their results, then webhooks under way.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests still open at shutdown were cut", "err", err)
	}
	svc.stopBy(shutdownCtx)
	return failed
}
